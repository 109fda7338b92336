"""The chip: queues, slices, stream fabric, run control and the host port."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import hostmap, isa
from opentsp.config import Config

from .fabric import StreamFabric
from .icu import InstructionQueue, NotifyBus
from .mem import HOST_CHUNK_BITS, HOST_SUPERLANE_BITS, HOST_WORD_BITS, MemSlice
from .mxm import MxmSlice
from .sxm import SxmSlice
from .vxm import VxmSlice

__all__ = ["Chip"]

_REGION_BITS = 32 - hostmap.REGION_SHIFT


class Chip(wiring.Component):
    """The whole TSP with a flat host port (the Verilog top level ``tsp_top``).

    Run control
        Writing ``CTRL_START`` to ``REG_CTRL`` while not running clears the run state (as
        ``CTRL_RESET`` does) and sets ``running`` from the next cycle on, which is cycle 0: every
        queue issues its first slot in it. ``CTRL_RESET`` clears the run state (stream
        registers, queue sequencers, stagger lines, pipeline registers, ``done``, the cycle
        counter) and stops the chip; queue and memory contents are kept.
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

        m.submodules.fabric = fabric = StreamFabric(cfg)
        m.d.comb += fabric.clear.eq(clear)

        mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(cfg))}
        mem_rdata = {}
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
                queue.clear.eq(clear),
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
                unit.clear.eq(clear),
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
        m.d.comb += [notify_bus.notify.eq(Cat(*notifies)), notify_bus.clear.eq(clear),
                     release.eq(notify_bus.release)]

        # Run control and the cycle counter.
        all_ended = Cat(*ended).all()
        with m.If(clear):
            m.d.sync += [running.eq(start), done.eq(0), cycles.eq(0), tail.eq(0)]
        with m.Elif(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(all_ended):
                with m.If(tail == tail_last):
                    m.d.sync += [running.eq(0), done.eq(1)]
                with m.Else():
                    m.d.sync += tail.eq(tail + 1)

        # Host reads: registers are sampled in the read cycle, memories answer next cycle.
        reg = addr[:hostmap.REGION_SHIFT]
        status = Signal(32)
        m.d.comb += status.eq(Mux(done, hostmap.STATUS_DONE, 0)
                              | Mux(running, hostmap.STATUS_RUNNING, 0))
        config_word = int.from_bytes(cfg.hash[:4], "little")
        ctrl_value = Signal(32)
        with m.If(in_control):
            with m.Switch(reg):
                with m.Case(hostmap.REG_STATUS):
                    m.d.comb += ctrl_value.eq(status)
                with m.Case(hostmap.REG_CYCLES):
                    m.d.comb += ctrl_value.eq(cycles)
                with m.Case(hostmap.REG_CONFIG):
                    m.d.comb += ctrl_value.eq(config_word)
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
