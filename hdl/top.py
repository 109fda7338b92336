"""The chip: queues, slices, stream fabric, run control and the host port."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import hostmap, isa, secded
from opentsp.config import Config
from opentsp.hdl.fabric import StreamFabric
from opentsp.hdl.icu import InstructionQueue, NotifyBus
from opentsp.hdl.mem import HOST_CHUNK_BITS, HOST_SUPERLANE_BITS, HOST_WORD_BITS, MemSlice
from opentsp.hdl.mxm import MxmSlice
from opentsp.hdl.sxm import SxmSlice
from opentsp.hdl.vxm import VxmSlice

from . import mem as mem_slice

__all__ = ["Chip"]

_REGION_BITS = 32 - hostmap.REGION_SHIFT


class Chip(wiring.Component):
    """The whole TSP with a flat host port (the Verilog top level ``tsp_top``).

    Run control
        Writing ``CTRL_START`` to ``REG_CTRL`` while not running clears the run state (as
        ``CTRL_RESET`` does) and sets ``running`` from the next cycle on, which is cycle 0: every
        queue issues its first slot in it. ``CTRL_RESET`` clears the run state (stream
        registers, queue sequencers, stagger lines, pipeline registers, ``done``, the cycle
        counter) and stops the chip; queue and memory contents are kept. The slices' run state
        is held clear in every cycle in which the chip is not running (a registered ``clear``
        that is ``~running``): in the start cycle, as the start requires, and, after a reset
        mid-run, from the next cycle, with the commits and ECC reports due then dropped, so
        that nothing issued in the reset's cycle lands, as if it were cleared in that cycle.
    Done
        With ``E`` the cycle in which the last queue is in its ``end`` slot, the chip runs
        through cycle ``E + superlanes - 1 + isa.DRAIN - 1`` and then stops: ``running`` falls,
        ``done`` rises, and ``REG_CYCLES`` reads ``E + superlanes - 1 + isa.DRAIN`` (the counter
        counts the cycles with ``running`` high).
    Host port
        Decoded as in :mod:`opentsp.hostmap`. A write (``host_wen``) takes effect at the end of
        its cycle; a read (``host_ren``) answers in the next cycle on ``host_rdata`` with
        ``host_rvalid`` high. Queue and memory accesses are ignored (reads return 0) while
        running. Queue entries are write-only (they read as 0); writes to an index
        ``>= queue_depth`` are ignored. Memory word addresses wrap modulo ``mem_words``;
        superlanes and chunks that do not exist are not written and read as 0.
    ECC (section 6b)
        ``REG_ECC_CORRECTED`` and ``REG_ECC_DETECTED`` count (saturating) the code words the
        MEM slices' decoders corrected and found uncorrectable in reads and gathers of the
        run; the first uncorrectable one (earliest cycle, then lowest memory, then lowest lane)
        sets ``STATUS_ECC_ERROR`` and latches ``REG_ECC_FIRST_PLACE`` (``hostmap.ecc_place``)
        and ``REG_ECC_FIRST_CYCLE`` (the cycle of its SRAM read). All are cleared by
        ``CTRL_START`` and ``CTRL_RESET``. Each of the ``hostmap.INJECT_ENTRIES`` injection
        entries (cycle, place, 13-bit mask; read/write at any time, kept over runs, 0 after
        ``rst``) fires at the end of run cycle ``cycle`` in the memory its place names.

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    host_addr: In(32)
    host_wdata: In(32)
    host_wen: In(1)
    host_ren: In(1)
    host_rdata: Out(32)
    host_rvalid: Out(1)
    done: Out(1)
    running: Out(1)

    def __init__(self, config):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        if config.superlanes - 1 + isa.DRAIN < 1:
            raise ValueError(f"superlanes - 1 + DRAIN must be at least 1, not "
                             f"{config.superlanes - 1 + isa.DRAIN!r}")
        self._config = config
        super().__init__()

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        plan = isa.floorplan(cfg)
        last = len(plan) - 1
        addr, wdata = self.host_addr, self.host_wdata
        region = addr[hostmap.REGION_SHIFT:]
        in_control = region == hostmap.CONTROL
        in_queue = region == hostmap.QUEUE
        in_memory = region == hostmap.MEMORY

        running = Signal()
        done = Signal()
        cycles = Signal(32)
        tail_last = cfg.superlanes - 1 + isa.DRAIN - 1
        tail = Signal(range(tail_last + 1))
        m.d.comb += [self.running.eq(running), self.done.eq(done)]

        ctrl_write = self.host_wen & in_control & (addr[:hostmap.REGION_SHIFT] == hostmap.REG_CTRL)
        start = Signal()
        clear = Signal()
        m.d.comb += [
            start.eq(ctrl_write & ((wdata & hostmap.CTRL_START) != 0) & ~running),
            clear.eq(start | (ctrl_write & ((wdata & hostmap.CTRL_RESET) != 0))),
        ]
        host_idle = ~running
        # The slices' soft reset (run state: stream registers, queue sequencers, pipelines)
        # is high in every cycle in which the chip is not running, from a register: the same
        # cycles as a comb decode of the host's control write would clear (the start cycle,
        # the cycle after a reset), but the net that reaches every flip-flop of the chip starts
        # at a flip-flop rather than behind the host address decoder (the critical path of
        # the FPGA build until then: docs/fpga.md). Top-level state keeps the comb ``clear``.
        slice_clear = Signal(init=1)
        running_next = Signal()

        # Fault injection entries (section 6b): host registers, and which fires this cycle.
        reg = addr[:hostmap.REGION_SHIFT]
        inject = []
        for i in range(hostmap.INJECT_ENTRIES):
            entry = {"cycle": Signal(32, name=f"inject_cycle_{i}"),
                     "place": Signal(32, name=f"inject_place_{i}"),
                     "mask": Signal(secded.CODE_BITS, name=f"inject_mask_{i}")}
            for name, signal in entry.items():
                field = getattr(hostmap, f"INJECT_{name.upper()}")
                with m.If(self.host_wen & in_control
                          & (reg == hostmap.inject_reg(i, field))):
                    m.d.sync += signal.eq(wdata)
            inject.append(entry)

        m.submodules.fabric = fabric = StreamFabric(cfg)
        m.d.comb += fabric.clear.eq(slice_clear)

        mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(cfg))}
        mem_rdata = {}
        mem_units = {}
        ended = []
        notifies = []
        release = Signal()      # the notify bus at the queues (section 5a)
        queue_field = addr[hostmap.QUEUE_SHIFT:hostmap.REGION_SHIFT]
        mem_field = addr[hostmap.MEM_SHIFT:hostmap.REGION_SHIFT]
        for qi, sl in enumerate(isa.queues(cfg)):
            queue = InstructionQueue(cfg.queue_depth, cfg.streams)
            m.submodules[f"queue_{sl.name.lower()}"] = queue
            m.d.comb += [
                queue.w_en.eq(self.host_wen & host_idle & in_queue & (queue_field == qi)
                              & (addr[len(queue.w_addr):hostmap.QUEUE_SHIFT] == 0)),
                queue.w_addr.eq(addr[:len(queue.w_addr)]),
                queue.w_data.eq(wdata),
                queue.run.eq(running),
                queue.clear.eq(slice_clear),
            ]
            ended.append(queue.ended | queue.ending)
            notifies.append(queue.notify)
            m.d.comb += queue.release.eq(release)

            if sl.kind == isa.SliceKind.MEM:
                unit = MemSlice(cfg)
                # sequences issue nothing in or after the queue's end slot (section 6a)
                m.d.comb += unit.halt.eq(queue.ending | queue.ended)
                index = mem_index[sl.name]
                hit = host_idle & in_memory & (mem_field == index)
                m.d.comb += [
                    unit.host_word.eq(addr[hostmap.WORD_SHIFT:][:HOST_WORD_BITS]),
                    unit.host_superlane.eq(addr[hostmap.SUPERLANE_SHIFT:][:HOST_SUPERLANE_BITS]),
                    unit.host_chunk.eq(addr[:HOST_CHUNK_BITS]),
                    unit.host_we.eq(self.host_wen & hit),
                    unit.host_re.eq(self.host_ren & hit),
                    unit.host_wdata.eq(wdata),
                ]
                mem_rdata[index] = unit.host_rdata
                mem_units[index] = unit
                for i, entry in enumerate(inject):
                    place = entry["place"]
                    m.d.comb += [
                        unit.inject[i].fire.eq(
                            running & (cycles == entry["cycle"])
                            & (place[hostmap.PLACE_MEM_SHIFT:] == index)),
                        unit.inject[i].word.eq(place[hostmap.PLACE_WORD_SHIFT:][
                            :mem_slice.PLACE_WORD_BITS]),
                        unit.inject[i].lane.eq(place[:mem_slice.PLACE_LANE_BITS]),
                        unit.inject[i].mask.eq(entry["mask"]),
                    ]
            elif sl.kind == isa.SliceKind.VXM:
                unit = VxmSlice(cfg)
            elif sl.kind == isa.SliceKind.MXM:
                unit = MxmSlice(cfg)
            elif sl.kind == isa.SliceKind.SXM:
                unit = SxmSlice(cfg)
            else:
                raise NotImplementedError(f"no RTL for slice kind {sl.kind!r}")
            m.submodules[sl.name.lower()] = unit
            p = sl.position
            m.d.comb += [
                unit.issue_valid.eq(queue.issue_valid),
                unit.issue_word.eq(queue.issue_word),
                unit.clear.eq(slice_clear),
                fabric.e_we[p].eq(unit.e_we), fabric.w_we[p].eq(unit.w_we),
                fabric.e_wdata[p].eq(unit.e_wdata), fabric.w_wdata[p].eq(unit.w_wdata),
            ]
            # ifetch (section 5b): lane 0 of superlane 0 of every stream at the slice input
            if p > 0:
                m.d.comb += [unit.e_in.eq(fabric.e[p - 1]),
                             queue.fetch_e.eq(Cat(*(fabric.e[p - 1][s][0][0]
                                                    for s in range(cfg.streams))))]
            if p < last:
                m.d.comb += [unit.w_in.eq(fabric.w[p + 1]),
                             queue.fetch_w.eq(Cat(*(fabric.w[p + 1][s][0][0]
                                                    for s in range(cfg.streams))))]

        # The notify bus (section 5a): every queue's notify to every queue's release.
        m.submodules.notify_bus = notify_bus = NotifyBus(len(notifies))
        m.d.comb += [notify_bus.notify.eq(Cat(*notifies)), notify_bus.clear.eq(slice_clear),
                     release.eq(notify_bus.release)]

        # Run control and the cycle counter.
        all_ended = Cat(*ended).all()
        m.d.comb += running_next.eq(running)
        m.d.sync += [running.eq(running_next), slice_clear.eq(~running_next)]
        with m.If(clear):
            m.d.comb += running_next.eq(start)
            m.d.sync += [done.eq(0), cycles.eq(0), tail.eq(0)]
        with m.Elif(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(all_ended):
                with m.If(tail == tail_last):
                    m.d.comb += running_next.eq(0)
                    m.d.sync += done.eq(1)
                with m.Else():
                    m.d.sync += tail.eq(tail + 1)

        # ECC reports (section 6b): the decoders answer the cycle after a read's SRAM cycle.
        ecc_corrected = Signal(32)
        ecc_detected = Signal(32)
        ecc_error = Signal()
        ecc_first_place = Signal(32)
        ecc_first_cycle = Signal(32)
        units = [mem_units[index] for index in sorted(mem_units)]
        with m.If(clear):
            m.d.sync += [ecc_corrected.eq(0), ecc_detected.eq(0), ecc_error.eq(0),
                         ecc_first_place.eq(0), ecc_first_cycle.eq(0)]
        with m.Elif(~slice_clear):    # not the decode of a read issued in a reset's cycle
            for counter, name in ((ecc_corrected, "ecc_corrected"),
                                  (ecc_detected, "ecc_detected")):
                total = counter + sum(getattr(unit, name) for unit in units)
                m.d.sync += counter.eq(Mux(total > hostmap.ECC_COUNT_MAX,
                                           hostmap.ECC_COUNT_MAX, total))
            with m.If(~ecc_error):
                # the lowest memory wins: its assignment comes last
                for index in reversed(sorted(mem_units)):
                    unit = mem_units[index]
                    with m.If(unit.ecc_error):
                        m.d.sync += [
                            ecc_error.eq(1), ecc_first_cycle.eq(cycles - 1),
                            ecc_first_place.eq(Cat(unit.ecc_error_lane, unit.ecc_error_word,
                                                   Const(index, 32 - hostmap.PLACE_MEM_SHIFT))),
                        ]

        # Host reads: registers are sampled in the read cycle, memories answer next cycle.
        status = Signal(32)
        m.d.comb += status.eq(Mux(done, hostmap.STATUS_DONE, 0)
                              | Mux(running, hostmap.STATUS_RUNNING, 0)
                              | Mux(ecc_error, hostmap.STATUS_ECC_ERROR, 0))
        config_word = hostmap.config_word(cfg)
        ctrl_value = Signal(32)
        with m.If(in_control):
            with m.Switch(reg):
                with m.Case(hostmap.REG_STATUS):
                    m.d.comb += ctrl_value.eq(status)
                with m.Case(hostmap.REG_CYCLES):
                    m.d.comb += ctrl_value.eq(cycles)
                with m.Case(hostmap.REG_CONFIG):
                    m.d.comb += ctrl_value.eq(config_word)
                with m.Case(hostmap.REG_ECC_CORRECTED):
                    m.d.comb += ctrl_value.eq(ecc_corrected)
                with m.Case(hostmap.REG_ECC_DETECTED):
                    m.d.comb += ctrl_value.eq(ecc_detected)
                with m.Case(hostmap.REG_ECC_FIRST_PLACE):
                    m.d.comb += ctrl_value.eq(ecc_first_place)
                with m.Case(hostmap.REG_ECC_FIRST_CYCLE):
                    m.d.comb += ctrl_value.eq(ecc_first_cycle)
                for i, entry in enumerate(inject):
                    for name, signal in entry.items():
                        field = getattr(hostmap, f"INJECT_{name.upper()}")
                        with m.Case(hostmap.inject_reg(i, field)):
                            m.d.comb += ctrl_value.eq(signal)
        rvalid = Signal()
        ctrl_rdata = Signal(32)
        rd_mem = Signal()
        rd_index = Signal(unsigned(max(len(mem_field), 1)))
        m.d.sync += [rvalid.eq(self.host_ren), ctrl_rdata.eq(ctrl_value),
                     rd_mem.eq(self.host_ren & host_idle & in_memory), rd_index.eq(mem_field)]
        mem_value = Signal(32)
        with m.Switch(rd_index):
            for index, value in mem_rdata.items():
                with m.Case(index):
                    m.d.comb += mem_value.eq(value)
        m.d.comb += [self.host_rvalid.eq(rvalid),
                     self.host_rdata.eq(Mux(rvalid, Mux(rd_mem, mem_value, ctrl_rdata), 0))]
        return m
