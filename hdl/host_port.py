"""The chip's host port: address decode, run control and the control and status registers.

:class:`HostPort` adds its logic to the :class:`~opentsp.hdl.top.Chip`'s own ``Module`` (it is
no submodule, so the Verilog keeps one flat ``tsp_top``). The chip builds it first, connects
every queue, MEM slice and C2C slice to it while it instantiates them, and then adds run
control, the ECC registers, the link registers (on a chip with links) and the read-back, in
this order (the order of the statements fixes the netlist).
"""

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned

from opentsp import hostmap, isa, secded
from opentsp.hdl.mem import (
    HOST_CHUNK_BITS,
    HOST_SUPERLANE_BITS,
    HOST_WORD_BITS,
    PLACE_LANE_BITS,
    PLACE_WORD_BITS,
)

__all__ = ["HostPort"]


class HostPort:
    """Host port decode, run control, fault injection, ECC registers and read-back of a chip.

    The timing is the one documented on :class:`~opentsp.hdl.top.Chip`: a host write takes
    effect at the end of its cycle, a read answers in the next cycle; ``start`` and ``clear``
    are combinational decodes of the write to ``REG_CTRL`` in the write's cycle.

    Parameters
    ----------
    m : Module
        The chip's module; every statement goes into it.
    chip : Chip
        The chip, for its host port and ``running``/``done`` outputs.
    config : Config
        Chip parameters.

    Attributes
    ----------
    running : Signal
        The chip runs this cycle (a register, loaded at the end of the start cycle).
    running_next : Signal
        The value ``running`` loads at the end of this cycle (combinational): the queues load
        their own copies from it.
    slice_clear : Signal
        The slices' soft reset: a register that is ``~running`` (high after ``rst``).
    clear : Signal
        The host's start or reset (``CTRL_START``/``CTRL_RESET`` written), combinational in
        the write's cycle: it empties the C2C slices' transmitters (``tx_clear``).
    """

    def __init__(self, m, chip, config):
        self._m = m
        self._chip = chip
        self._config = config
        self._memories = {}     # MEM slice index -> MemSlice, in the order of the floorplan
        self._links = []        # the C2C slices, west to east (section 7d)
        self._now = None        # the chip's time this cycle, with a deskew's load
        addr = chip.host_addr
        region = addr[hostmap.REGION_SHIFT:]
        self._in_control = region == hostmap.CONTROL
        self._in_queue = region == hostmap.QUEUE
        self._in_memory = region == hostmap.MEMORY
        self._add_run_state()
        self._reg = addr[:hostmap.REGION_SHIFT]
        self._add_inject_registers()
        self._queue_field = addr[hostmap.QUEUE_SHIFT:hostmap.REGION_SHIFT]
        self._mem_field = addr[hostmap.MEM_SHIFT:hostmap.REGION_SHIFT]

    def _add_run_state(self):
        """Create the run state and decode ``start``/``clear`` from a write to ``REG_CTRL``.

        ``start`` and ``clear`` are high in the cycle of the host's write (``start`` only while
        not running); run control (:meth:`add_run_control`) acts on them at its end.
        """
        m, chip = self._m, self._chip
        addr, wdata = chip.host_addr, chip.host_wdata
        running = Signal()
        done = Signal()
        cycles = Signal(32)
        self._tail_last = self._config.superlanes - 1 + isa.DRAIN - 1
        tail = Signal(range(self._tail_last + 1))
        m.d.comb += [chip.running.eq(running), chip.done.eq(done)]

        ctrl_write = (chip.host_wen & self._in_control
                      & (addr[:hostmap.REGION_SHIFT] == hostmap.REG_CTRL))
        start = Signal()
        clear = Signal()
        m.d.comb += [
            start.eq(ctrl_write & ((wdata & hostmap.CTRL_START) != 0) & ~running),
            clear.eq(start | (ctrl_write & ((wdata & hostmap.CTRL_RESET) != 0))),
        ]
        self._host_idle = ~running
        # The slices' soft reset (run state: stream registers, queue sequencers, pipelines)
        # is high in every cycle in which the chip is not running, from a register: the same
        # cycles as a comb decode of the host's control write would clear (the start cycle,
        # the cycle after a reset), but the net that reaches every flip-flop of the chip starts
        # at a flip-flop rather than behind the host address decoder (the critical path of
        # the FPGA build until then: docs/fpga.md). Top-level state keeps the comb ``clear``.
        slice_clear = Signal(init=1)
        running_next = Signal()
        self.running, self.slice_clear, self.running_next = running, slice_clear, running_next
        self._done, self._cycles, self._tail = done, cycles, tail
        self._start, self._clear, self._running_next = start, clear, running_next
        self.clear = clear

    def _add_inject_registers(self):
        """Add the fault-injection entries (section 6b) as host registers.

        A host write to an entry's register loads it at the end of the write's cycle (also
        while running); ``rst`` clears them, ``CTRL_START``/``CTRL_RESET`` do not.
        """
        m, chip = self._m, self._chip
        self._inject = []
        for i in range(hostmap.INJECT_ENTRIES):
            entry = {"cycle": Signal(32, name=f"inject_cycle_{i}"),
                     "place": Signal(32, name=f"inject_place_{i}"),
                     "mask": Signal(secded.CODE_BITS, name=f"inject_mask_{i}")}
            for name, signal in entry.items():
                with m.If(chip.host_wen & self._in_control
                          & (self._reg == _inject_reg(i, name))):
                    m.d.sync += signal.eq(chip.host_wdata)
            self._inject.append(entry)

    def connect_queue(self, queue, index):
        """Drive the host write port of queue ``index`` (written at the end of a write's cycle).

        Writes go through only while the chip is not running, and only to the queue's entries
        (address bits between its index and the queue field must be 0).
        """
        addr = self._chip.host_addr
        self._m.d.comb += [
            queue.w_en.eq(self._chip.host_wen & self._host_idle & self._in_queue
                          & (self._queue_field == index)
                          & (addr[len(queue.w_addr):hostmap.QUEUE_SHIFT] == 0)),
            queue.w_addr.eq(addr[:len(queue.w_addr)]),
            queue.w_data.eq(self._chip.host_wdata),
        ]

    def connect_memory(self, unit, index):
        """Drive the host port and the fault injection of MEM slice ``index``.

        The host port is enabled in the access's cycle while the chip is not running (the
        slice answers a read in the next cycle); entry ``i`` fires in the run cycle its
        ``cycle`` register names, if its place names this memory.
        """
        m, chip = self._m, self._chip
        addr = chip.host_addr
        hit = self._host_idle & self._in_memory & (self._mem_field == index)
        m.d.comb += [
            unit.host_word.eq(addr[hostmap.WORD_SHIFT:][:HOST_WORD_BITS]),
            unit.host_superlane.eq(addr[hostmap.SUPERLANE_SHIFT:][:HOST_SUPERLANE_BITS]),
            unit.host_chunk.eq(addr[:HOST_CHUNK_BITS]),
            unit.host_we.eq(chip.host_wen & hit),
            unit.host_re.eq(chip.host_ren & hit),
            unit.host_wdata.eq(chip.host_wdata),
        ]
        self._memories[index] = unit
        for i, entry in enumerate(self._inject):
            place = entry["place"]
            m.d.comb += [
                unit.inject[i].fire.eq(
                    self.running & (self._cycles == entry["cycle"])
                    & (place[hostmap.PLACE_MEM_SHIFT:] == index)),
                unit.inject[i].word.eq(place[hostmap.PLACE_WORD_SHIFT:][:PLACE_WORD_BITS]),
                unit.inject[i].lane.eq(place[:PLACE_LANE_BITS]),
                unit.inject[i].mask.eq(entry["mask"]),
            ]

    def connect_c2c(self, unit):
        """Give the C2C slice ``unit`` the chip's time (``time``: ``REG_CYCLES``'s counter, or
        the value a deskew loads in its cycle, section 7d); its ``time_load`` loads the
        counter (:meth:`add_run_control`) and its events count (:meth:`add_c2c_registers`)."""
        if self._now is None:
            self._now = Signal(32, name="c2c_now")
        self._m.d.comb += unit.time.eq(self._now)
        self._links.append(unit)

    def add_run_control(self, all_ended):
        """Add run control and the cycle counter.

        ``running`` loads at the end of every cycle (``slice_clear`` with its complement): set
        by ``start``, cleared by a reset, and cleared at the end of the last drain cycle, the
        ``tail_last``-th cycle after the first with ``all_ended`` high, which also sets
        ``done``. ``cycles`` counts the cycles with ``running`` high.

        Parameters
        ----------
        all_ended : Value
            Every queue is in or past its ``end`` slot this cycle.
        """
        m = self._m
        running, running_next = self.running, self._running_next
        done, cycles, tail = self._done, self._cycles, self._tail
        m.d.comb += running_next.eq(running)
        m.d.sync += [running.eq(running_next), self.slice_clear.eq(~running_next)]
        with m.If(self._clear):
            m.d.comb += running_next.eq(self._start)
            m.d.sync += [done.eq(0), cycles.eq(0), tail.eq(0)]
        with m.Elif(running):
            m.d.sync += cycles.eq(self._time() + 1)
            with m.If(all_ended):
                with m.If(tail == self._tail_last):
                    m.d.comb += running_next.eq(0)
                    m.d.sync += done.eq(1)
                with m.Else():
                    m.d.sync += tail.eq(tail + 1)

    def _time(self):
        """The chip's time this cycle: ``cycles``, or on a chip with links the value a C2C
        slice's ``time_load`` gives (the west slice's if both do), also on ``self._now``."""
        if not self._links:
            return self._cycles
        value = self._cycles
        for unit in reversed(self._links):      # the west slice's assignment comes last
            value = Mux(unit.time_load.valid, unit.time_load.value, value)
        self._m.d.comb += self._now.eq(value)
        return self._now

    def add_ecc_registers(self):
        """Add the ECC counters and the first-error latch (section 6b).

        The MEM slices' decoders report in the cycle after a read's SRAM cycle, so the
        registers read as loaded at the end of that cycle and ``REG_ECC_FIRST_CYCLE`` is
        ``cycles - 1``. ``clear`` empties them at the end of its cycle; the reports of a cycle
        with ``slice_clear`` high (the decode of a read issued in a reset's cycle) are dropped.

        Inside, each MEM slice registers its decoders' report in its own logic, and the
        registers the host reads are the stored counters and latch combined with those
        pending reports (:meth:`_add_ecc_pending`): a decoder's findings end at a flip-flop
        beside the slice's SRAM instead of running on across the chip into the 32-bit
        saturating sum (routed critical paths of 150a4e9 and 9f961b9), and the host reads
        exactly the values of loading the reports directly.
        """
        m = self._m
        units = [self._memories[index] for index in sorted(self._memories)]
        pending = self._add_ecc_pending(units)
        stored = {name: Signal(32, name=f"ecc_{name}_stored")
                  for name in ("corrected", "detected", "first_place", "first_cycle")}
        stored_error = Signal(name="ecc_error_stored")
        visible = {name: Signal(32, name=f"ecc_{name}")
                   for name in ("corrected", "detected", "first_place", "first_cycle")}
        visible_error = Signal(name="ecc_error")
        for name in ("corrected", "detected"):
            total = stored[name] + sum(getattr(p, name) for p in pending.units)
            m.d.comb += visible[name].eq(Mux(total > hostmap.ECC_COUNT_MAX,
                                             hostmap.ECC_COUNT_MAX, total))
        m.d.comb += visible_error.eq(stored_error | pending.error)
        for name in ("first_place", "first_cycle"):
            m.d.comb += visible[name].eq(Mux(stored_error, stored[name],
                                             getattr(pending, name)))
        with m.If(self._clear):
            m.d.sync += [signal.eq(0) for signal in (*stored.values(), stored_error)]
        with m.Else():
            m.d.sync += [stored[name].eq(visible[name]) for name in stored]
            m.d.sync += stored_error.eq(visible_error)
        self._ecc_corrected, self._ecc_detected = visible["corrected"], visible["detected"]
        self._ecc_error = visible_error
        self._ecc_first_place = visible["first_place"]
        self._ecc_first_cycle = visible["first_cycle"]

    def _add_ecc_pending(self, units):
        """The MEM slices' ECC reports of the previous cycle's decode, as the slices register
        them (none if ``clear`` or ``slice_clear`` was high in the decode cycle), with the first
        error's place and cycle (the decode cycle's ``cycles - 1``) worked out among them: the
        lowest memory with an error, 0 if none has one.

        Returns
        -------
        _EccPending
            ``units`` (per slice its ``corrected``/``detected`` counts), ``error``,
            ``first_place`` and ``first_cycle``.
        """
        m = self._m
        dropped = Signal(name="ecc_dropped")
        read_cycle = Signal(32, name="ecc_read_cycle")
        m.d.sync += [dropped.eq(self._clear | self.slice_clear), read_cycle.eq(self._cycles - 1)]
        pending = _EccPending()
        for index, unit in zip(sorted(self._memories), units, strict=True):
            counts = _EccCounts(unit, index)
            m.d.comb += [counts.corrected.eq(Mux(dropped, 0, unit.ecc_corrected)),
                         counts.detected.eq(Mux(dropped, 0, unit.ecc_detected))]
            pending.units.append(counts)
        place = Const(0, 32)
        for index, unit in zip(reversed(sorted(self._memories)), reversed(units), strict=True):
            place = Mux(unit.ecc_error, Cat(unit.ecc_error_lane, unit.ecc_error_word,
                                            Const(index, 32 - hostmap.PLACE_MEM_SHIFT)), place)
        any_error = Cat(*(unit.ecc_error for unit in units)).any() & ~dropped
        m.d.comb += [pending.error.eq(any_error),
                     pending.first_place.eq(Mux(any_error, place, 0)),
                     pending.first_cycle.eq(Mux(any_error, read_cycle, 0))]
        return pending

    def add_c2c_registers(self):
        """Add the link error counters and the first-error latch (section 7d).

        The C2C slices report a cycle's errors in that cycle; the registers load at its end,
        ``REG_C2C_FIRST_CYCLE`` with the chip's time of that cycle. The first error of the run
        is the earliest, then ``C2C_W``'s before ``C2C_E``'s (within a slice its own order:
        lowest link, then lowest kind). ``clear`` empties them at the end of its cycle; reports
        in a cycle with ``slice_clear`` high are dropped.
        """
        m = self._m
        c2c_crc = Signal(32)
        c2c_errors = Signal(32)
        c2c_error = Signal()
        c2c_first = Signal(32)
        c2c_first_cycle = Signal(32)
        with m.If(self._clear):
            m.d.sync += [c2c_crc.eq(0), c2c_errors.eq(0), c2c_error.eq(0), c2c_first.eq(0),
                         c2c_first_cycle.eq(0)]
        with m.Elif(~self.slice_clear):
            for counter, name in ((c2c_crc, "crc"), (c2c_errors, "errors")):
                total = counter + sum(getattr(unit.events, name) for unit in self._links)
                m.d.sync += counter.eq(Mux(total > hostmap.C2C_COUNT_MAX,
                                           hostmap.C2C_COUNT_MAX, total))
            with m.If(~c2c_error):
                for unit in reversed(self._links):     # the west slice's comes last
                    with m.If(unit.events.error):
                        m.d.sync += [
                            c2c_error.eq(1), c2c_first_cycle.eq(self._now),
                            c2c_first.eq(Cat(unit.events.link, Const(unit.side, 4),
                                             unit.events.kind)),
                        ]
        self._c2c = {hostmap.REG_C2C_CRC: c2c_crc, hostmap.REG_C2C_ERRORS: c2c_errors,
                     hostmap.REG_C2C_FIRST: c2c_first,
                     hostmap.REG_C2C_FIRST_CYCLE: c2c_first_cycle}
        self._c2c_error = c2c_error

    def add_readback(self):
        """Add host reads: ``host_rdata`` is valid (``host_rvalid``) in the cycle after a read.

        Registers are sampled in the read cycle; a memory answers in the next cycle, from the
        slice the read addressed (0 while running or for a memory that does not exist).
        """
        m, chip = self._m, self._chip
        ctrl_value = self._control_register_value()
        rvalid = Signal()
        ctrl_rdata = Signal(32)
        rd_mem = Signal()
        rd_index = Signal(unsigned(max(len(self._mem_field), 1)))
        m.d.sync += [rvalid.eq(chip.host_ren), ctrl_rdata.eq(ctrl_value),
                     rd_mem.eq(chip.host_ren & self._host_idle & self._in_memory),
                     rd_index.eq(self._mem_field)]
        mem_value = Signal(32)
        with m.Switch(rd_index):
            for index, unit in self._memories.items():
                with m.Case(index):
                    m.d.comb += mem_value.eq(unit.host_rdata)
        m.d.comb += [chip.host_rvalid.eq(rvalid),
                     chip.host_rdata.eq(Mux(rvalid, Mux(rd_mem, mem_value, ctrl_rdata), 0))]

    def _control_register_value(self):
        """Return the control register the host address names, combinationally (0 if none)."""
        m = self._m
        status = Signal(32)
        value = (Mux(self._done, hostmap.STATUS_DONE, 0)
                 | Mux(self.running, hostmap.STATUS_RUNNING, 0)
                 | Mux(self._ecc_error, hostmap.STATUS_ECC_ERROR, 0))
        if self._links:
            value = value | Mux(self._c2c_error, hostmap.STATUS_C2C_ERROR, 0)
        m.d.comb += status.eq(value)
        config_word = hostmap.config_word(self._config)
        registers = {
            hostmap.REG_STATUS: status,
            hostmap.REG_CYCLES: self._cycles,
            hostmap.REG_CONFIG: config_word,
            hostmap.REG_ECC_CORRECTED: self._ecc_corrected,
            hostmap.REG_ECC_DETECTED: self._ecc_detected,
            hostmap.REG_ECC_FIRST_PLACE: self._ecc_first_place,
            hostmap.REG_ECC_FIRST_CYCLE: self._ecc_first_cycle,
        }
        if self._links:
            registers.update(self._c2c)
        for i, entry in enumerate(self._inject):
            for name, signal in entry.items():
                registers[_inject_reg(i, name)] = signal
        ctrl_value = Signal(32)
        with m.If(self._in_control):
            with m.Switch(self._reg):
                for reg, value in registers.items():
                    with m.Case(reg):
                        m.d.comb += ctrl_value.eq(value)
        return ctrl_value


def _inject_reg(entry, name):
    """Return the register index of field ``name`` (``"cycle"``, ...) of injection ``entry``."""
    return hostmap.inject_reg(entry, getattr(hostmap, f"INJECT_{name.upper()}"))


class _EccCounts:
    """One MEM slice's ECC counts of the previous cycle (:meth:`HostPort._add_ecc_pending`)."""

    def __init__(self, unit, index):
        self.corrected = Signal.like(unit.ecc_corrected, name=f"ecc_pending_corrected_{index}")
        self.detected = Signal.like(unit.ecc_detected, name=f"ecc_pending_detected_{index}")


class _EccPending:
    """The MEM slices' registered ECC reports (:meth:`HostPort._add_ecc_pending`)."""

    def __init__(self):
        self.units = []
        self.error = Signal(name="ecc_pending_error")
        self.first_place = Signal(32, name="ecc_pending_first_place")
        self.first_cycle = Signal(32, name="ecc_pending_first_cycle")
