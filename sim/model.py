"""Cycle-exact golden model of the whole chip: the executable form of docs/architecture.md.

The model holds every stream register of every position, every MEM slice's SRAM and every
slice's instruction queue, and steps them one clock cycle at a time:

1. each queue (:class:`opentsp.sim.icu.Queue`) issues at most one instruction to superlane 0;
   superlane ``k`` executes it ``k`` cycles later (the stagger);
2. executing instructions read their stream operands from their slice's input registers and
   the SRAM as it is at the start of the cycle, and schedule their effects: a stream write at
   the end of cycle ``t + latency``, a memory write at the end of cycle ``t + commit``;
3. at the end of the cycle every stream register takes its upstream neighbour's value, then the
   stream writes and memory commits due in this cycle land.

Every SRAM word is stored as SECDED code words (section 6b, :mod:`opentsp.secded`): encoded on
every write, decoded on every read, with the decoders' findings in ``Model.ecc``
(:class:`opentsp.sim.mem.EccLog`); ``faults`` flip stored bits during the run.

One function per unit executes an instruction (``_exec_read``, ``_exec_write``, ``_exec_vxm``,
and :func:`opentsp.sim.mxm.execute` for the MXMs, whose state lives in ``Model.mxms`` and
changes at the end of the cycle, and :func:`opentsp.sim.sxm.execute` for the SXMs, state in
``Model.sxms``). Latencies come from :func:`opentsp.isa.latency` (the SXM's depends on the
configuration).
"""

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from opentsp import c2c_frame, hostmap, isa, mem_sequence, packing, secded
from opentsp.sim import alu, c2c, mxm, sxm
from opentsp.sim import mem as mem_unit
from opentsp.sim.icu import Queue

__all__ = ["Model", "Result", "TraceRecord", "CycleLimitError", "run"]

E, W = int(isa.Dir.E), int(isa.Dir.W)


class CycleLimitError(RuntimeError):
    """The program did not finish within the cycle limit."""


@dataclass
class TraceRecord:
    """What happened in one cycle: instructions issued (superlane 0) and, if asked for, the
    stream registers at the end of the cycle (shape ``(2, positions, streams, lanes)``)."""
    cycle: int
    issued: list            # (slice name, Instr)
    streams: np.ndarray | None = None

    def __str__(self):
        text = "; ".join(f"{name}: {instr}" for name, instr in self.issued)
        return f"{self.cycle:>8}  {text}"


@dataclass
class Result:
    """Outcome of a run.

    ``memories`` has shape ``(2 * mem_slices, mem_words, lanes)``, memory numbering of
    :func:`opentsp.isa.mem_slices`: the data as the host reads it back (corrected, or the raw
    data bits of a word with a detected error). ``ecc_corrected``, ``ecc_detected`` and
    ``ecc_first`` (``(mem, word, lane, cycle)`` or None) are what the SRAM decoders saw during
    the run (section 6b), as the host reads them from ``REG_ECC_*``. ``c2c_crc``,
    ``c2c_errors`` and ``c2c_first`` (``(kind, side, link, cycle)`` or None) are the links'
    ``REG_C2C_*`` (section 7d). ``cycles`` is in the chip's time (after a ``deskew``, the
    sender's).
    """
    config: object
    cycles: int
    memories: np.ndarray
    trace: list = field(default_factory=list)
    ecc_corrected: int = 0
    ecc_detected: int = 0
    ecc_first: tuple | None = None
    c2c_crc: int = 0
    c2c_errors: int = 0
    c2c_first: tuple | None = None

    @property
    def status_c2c_error(self):
        """The sticky ``STATUS_C2C_ERROR`` bit: some link error happened (section 7d)."""
        return self.c2c_first is not None

    @property
    def status_ecc_error(self):
        """The sticky ``STATUS_ECC_ERROR`` bit: some read found an uncorrectable error."""
        return self.ecc_first is not None

    def memory(self, name):
        names = [s.name for s in isa.mem_slices(self.config)]
        return self.memories[names.index(name)]


class Model:
    """The golden model of one chip running one firmware image.

    Parameters
    ----------
    image : opentsp.firmware.image.Image
        Queues and initial memory contents (built for ``image.config``).
    trace : bool or "streams"
        Record a :class:`TraceRecord` per cycle; ``"streams"`` also snapshots the registers.
    max_cycles : int
        Stop with :class:`CycleLimitError` if the program has not finished by then.
    faults : iterable of opentsp.sim.mem.Fault
        Bit flips in the stored code words during the run (section 6b); any number, in any
        order. A fault whose cycle the run does not reach does nothing.
    """

    def __init__(self, image, *, trace=False, max_cycles=10_000_000, faults=()):
        config = self.config = image.config
        self._faults = defaultdict(list)    # cycle -> [Fault]
        for fault in faults:
            if not isinstance(fault, mem_unit.Fault):
                raise TypeError(f"faults must hold opentsp.sim.mem.Fault objects, not "
                                f"{fault!r}")
            self._faults[fault.check(config).cycle].append(fault)
        self._trace_mode = trace
        self.max_cycles = max_cycles
        self.slices = isa.floorplan(config)
        self.positions = len(self.slices)
        self.queue_slices = isa.queues(config)
        self._mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(config))}
        # The SRAMs' stored 13-bit code words (section 6b); `memories` decodes them.
        self.codes = np.broadcast_to(secded.encode(np.uint8(0)), (
            len(self._mem_index), config.mem_words, config.superlanes,
            config.lanes_per_superlane)).copy()
        for (mem, addr), data in image.data.items():
            self.codes[mem, addr] = secded.encode(np.asarray(data, dtype=np.uint8).reshape(
                config.superlanes, config.lanes_per_superlane))
        self.queues = [Queue(program, config.queue_depth, self._fetcher(slice_))
                       for slice_, program in zip(self.queue_slices, image.queues, strict=True)]
        self._faulted = bool(self._faults)
        self._clear_run_state()

    def _clear_run_state(self):
        """The run state as a start leaves it (section 10, "What a start keeps"): everything
        but the SRAMs' code words and the queues (whose sequencers :meth:`restart` clears)."""
        config = self.config
        shape = (2, self.positions, config.streams, config.superlanes, config.lanes_per_superlane)
        self.streams = np.zeros(shape, dtype=np.uint8)
        self.ecc = mem_unit.EccLog()
        # The VXM's results of each superlane for chaining: ``(cycle, int32 byte planes)`` of
        # the instructions executed, the newest last; ``r`` in cycle c is the newest of those
        # executed in a cycle <= c - VXM_CHAIN_DISTANCE (zero if none).
        self._vxm_results = [[] for _ in range(config.superlanes)]
        self.mxms = {s.name: mxm.Mxm(config) for s in self.slices if s.kind == isa.SliceKind.MXM}
        self.sxms = {s.name: sxm.Sxm(config) for s in self.slices if s.kind == isa.SliceKind.SXM}
        self.c2cs = {s.name: c2c.C2c(config, s.name) for s in self.slices
                     if s.kind == isa.SliceKind.C2C}
        self.c2c_log = c2c.C2cLog()
        self._marks = {}                # side -> [(link, stamp)] of marks arrived this cycle
        self._deskew_release = {}       # queue number -> cycle its deskew is released in
        self.time_shift = 0             # the chip's time minus the internal cycle (deskew)
        # MEM sequencers and lane commits (gather/scatter), see opentsp.sim.mem
        self.mem_units = {name: mem_unit.MemUnit(config, self.codes[index])
                          for name, index in self._mem_index.items()}
        self.cycle = 0
        self._executing = defaultdict(list)     # cycle -> [(slice, instr, superlane)]
        self._stream_writes = defaultdict(list)  # cycle -> [(dir, pos, stream, superlane, value)]
        self._commits = defaultdict(list)        # cycle -> [(mem, addr, superlane, value)]
        self.trace = []
        self.end_cycle = None
        self._notify_cycles = set()     # cycles in which some queue issued a notify

    def restart(self, *, reload_queues=False):
        """Start the finished program again, as ``CTRL_START`` does on the chip (section 10,
        "What a start keeps"): the SRAMs and the queue memories keep what the last run left
        in them (memory words it wrote, instruction words its ``ifetch`` wrote); everything
        else is cleared as after reset (stream registers, queue sequencers, notify bus, MEM
        address sequencers, the VXM's chaining register, the SXM tables, the MXM weights,
        accumulators and sequencers, the cycle count and the ECC counters). Then :meth:`run`
        runs from cycle 0.

        Parameters
        ----------
        reload_queues : bool
            The host writes every queue's preloaded words again before the start.

        Raises
        ------
        RuntimeError
            The run has not finished (the chip takes ``CTRL_START`` only when not running),
            or the model was built with ``faults`` (the chip's injected flips persist over a
            start and its entries fire again in every run: not modelled).
        """
        if self._faulted:
            raise RuntimeError("Model.restart: a model with faults cannot be restarted (the "
                               "chip's injected flips outlive a start: not modelled)")
        if self.cycle and not self.done:
            raise RuntimeError(f"Model.restart: the run has not finished (cycle {self.cycle}); "
                               f"the chip takes CTRL_START only when it is not running")
        for queue in self.queues:
            queue.restart(reload=reload_queues)
        self._clear_run_state()

    def overwritten_queue_words(self):
        """``(queue number, slice name, index)`` of every preloaded queue word that the ring
        no longer holds (a fetch that wrapped the ring wrote over it, section 5b)."""
        return [(number, slice_.name, index)
                for number, (slice_, queue) in enumerate(zip(self.queue_slices, self.queues,
                                                             strict=True))
                for index in queue.overwritten()]

    @property
    def memories(self):
        """The SRAMs' data as the host reads it (decoded, not logged), shape ``(mems,
        mem_words, superlanes, lanes_per_superlane)``."""
        return secded.decode(self.codes)[0]

    # Stream access -------------------------------------------------------------------------

    def _input(self, position, direction, stream, superlane):
        """The value at ``position``'s input: the upstream neighbour's output register."""
        upstream = position - 1 if direction == E else position + 1
        if stream >= self.config.streams or not 0 <= upstream < self.positions:
            return np.zeros(self.config.lanes_per_superlane, dtype=np.uint8)
        return self.streams[direction, upstream, stream, superlane].copy()

    def _fetcher(self, slice_):
        """The hook of ``slice_``'s queue for ``ifetch`` (section 5b): the 32-bit word that lane 0
        of superlane 0 of the int32 group ``s`` holds at the slice's input this cycle."""
        def fetch(instr):
            direction, ids = instr.group("s")
            return sum(int(self._input(slice_.position, direction, s, 0)[0]) << (8 * i)
                       for i, s in enumerate(ids))
        return fetch

    def _write_stream(self, when, slice_, direction, stream, superlane, value):
        if stream < self.config.streams:
            self._stream_writes[when].append(
                (direction, slice_.position, stream, superlane, value))

    # Executors, one per unit ----------------------------------------------------------------

    def _exec_read(self, slice_, instr, superlane):
        direction, (stream,) = instr.group("s")
        addr = instr["addr"] % self.config.mem_words
        value = mem_unit.read_lanes(self, self._mem_index[slice_.name],
                                    [addr] * self.config.lanes_per_superlane, superlane)
        self._write_stream(self.cycle + isa.latency(instr.op, self.config), slice_, direction,
                           stream, superlane, value)

    def _exec_write(self, slice_, instr, superlane):
        direction, (stream,) = instr.group("s")
        addr = instr["addr"] % self.config.mem_words
        value = self._input(slice_.position, direction, stream, superlane)
        self._commits[self.cycle + instr.op.commit].append(
            (self._mem_index[slice_.name], addr, superlane, value))

    def _exec_vxm(self, slice_, instr, superlane):
        operands = []
        for name in instr.op.reads:
            if name == "a" and instr.chained:
                # ALU chaining: an earlier result, sign-extended to int32, as this type.
                operands.append(self._chained(superlane)[:instr.dtype.bytes])
                continue
            direction, ids = instr.group(name)
            operands.append(np.stack([self._input(slice_.position, direction, s, superlane)
                                      for s in ids]))
        result = alu.execute(instr.op.mnemonic, instr.dtype, instr.rtype, *operands)
        self._chained(superlane)        # drops the results no later cycle can read
        self._vxm_results[superlane].append((self.cycle, packing.pack(
            packing.unpack(result, instr.rtype).astype(np.int32), isa.DType.I32)))
        direction, ids = instr.group("dst")
        for plane, stream in zip(result, ids, strict=True):
            self._write_stream(self.cycle + isa.latency(instr.op, self.config), slice_,
                               direction, stream, superlane, plane)

    def _chained(self, superlane):
        """The chained operand ``r`` of ``superlane`` in this cycle (int32 byte planes): the
        result of the last VXM instruction executed VXM_CHAIN_DISTANCE or more cycles ago."""
        results = self._vxm_results[superlane]
        source = isa.chain_source([cycle for cycle, _ in results], self.cycle)
        if source is None:
            return np.zeros((isa.INT32_GROUP, self.config.lanes_per_superlane), dtype=np.uint8)
        del results[:source]            # older results can never be read again
        return results[0][1]

    _EXECUTORS = {"read": _exec_read, "write": _exec_write}
    _EXECUTORS.update(dict.fromkeys(isa.VXM_FUNCS, _exec_vxm))
    _EXECUTORS.update(dict.fromkeys(mxm.MNEMONICS, mxm.execute))
    _EXECUTORS.update(dict.fromkeys(sxm.MNEMONICS, sxm.execute))
    _EXECUTORS.update(dict.fromkeys(mem_sequence.MNEMONICS, mem_unit.execute))
    _EXECUTORS.update(dict.fromkeys(c2c.MNEMONICS, c2c.execute))

    # The links ------------------------------------------------------------------------------

    def time_of(self, cycle):
        """The chip's time (its cycle counter, ``REG_CYCLES``) of internal cycle ``cycle``:
        the same until a ``deskew`` puts the chip on another's time (section 7d)."""
        return cycle + self.time_shift

    def deliver(self, side, link, data):
        """A frame's last beat came in on link ``link`` of C2C slice ``side`` in the previous
        cycle: it is in the receive buffer (a data frame) or releases a ``deskew`` (a mark) in
        this cycle, :attr:`cycle`. Call before :meth:`step`."""
        time = self.time_of(self.cycle)
        if c2c_frame.kind_of(data[0]) == isa.FrameKind.DATA:
            self.c2cs[side].receive(self.c2c_log, link, data, time)
            return
        frame = c2c_frame.parse(self.config, data)
        if not frame.good:
            self.c2c_log.error(hostmap.C2C_CRC, side, link, time)
        else:
            self._marks.setdefault(side, []).append((link, frame.payload))

    def _take_mark(self, t, slice_, number, queue):
        """After queue ``number`` (of C2C slice ``slice_``) stepped in cycle ``t``: a mark that
        arrived on the link of the deskew it is on releases it, else the mark is stray."""
        marks = self._marks.pop(slice_.name, ())
        taken = next((mark for mark in marks if mark[0] == queue.deskewing), None)
        for mark in marks:                  # stamped before the release moves the time
            if mark is not taken:
                self.c2c_log.error(hostmap.C2C_STRAY, slice_.name, mark[0], self.time_of(t))
        if taken is not None:
            self.time_shift = isa.c2c_arrival(self.config, isa.FrameKind.MARK, taken[1]) - t
            self._notify_cycles.add(t)
            self._deskew_release[number] = t + isa.NOTIFY_LATENCY - 1

    # The clock ------------------------------------------------------------------------------

    @property
    def done(self):
        return self.end_cycle is not None and self.cycle >= self._last_cycle

    @property
    def _last_cycle(self):
        """One past the run's last internal cycle."""
        return self.end_cycle + self.config.superlanes - 1 + isa.DRAIN

    @property
    def total_cycles(self):
        """``E + superlanes - 1 + DRAIN`` once every queue has reached its ``end``, in the
        chip's time (:meth:`time_of`)."""
        if self.end_cycle is None:
            return None
        return self.time_of(self._last_cycle)

    def step(self):
        """Run one clock cycle."""
        t = self.cycle
        if t >= self.max_cycles:
            raise CycleLimitError(f"program did not finish within {self.max_cycles} cycles")
        issued = self._issue(t)
        for slice_, instr, superlane in self._executing.pop(t, ()):
            self._EXECUTORS[instr.op.mnemonic](self, slice_, instr, superlane)
        self._end_of_cycle(t)
        if self._trace_mode:
            snapshot = None
            if self._trace_mode == "streams":
                snapshot = self.streams.reshape(*self.streams.shape[:3], -1).copy()
            self.trace.append(TraceRecord(self.time_of(t), issued, snapshot))
        self.cycle += 1

    def _issue(self, t):
        """Step every queue in cycle ``t``; the ``(slice name, Instr)`` issued to superlane 0."""
        issued = []
        # The notify bus (section 5a): a notify of cycle t releases syncs in t + LATENCY - 1.
        release = t - (isa.NOTIFY_LATENCY - 1) in self._notify_cycles
        self._notify_cycles.discard(t - (isa.NOTIFY_LATENCY - 1))
        for number, (slice_, queue) in enumerate(zip(self.queue_slices, self.queues,
                                                      strict=True)):
            instr = queue.step(release, self._deskew_release.get(number) == t)
            if queue.notified:
                self._notify_cycles.add(t)
            if slice_.kind == isa.SliceKind.C2C:
                self._take_mark(t, slice_, number, queue)
            if instr is not None:
                issued.append((slice_.name, instr))
                if slice_.kind != isa.SliceKind.MXM:    # the MXMs schedule their own
                    for k in range(self.config.superlanes):
                        self._executing[t + k].append((slice_, instr, k))
        mem_unit.issue_cycle(self, t, issued)     # MEM sequencers: elements issued this cycle
        mxm.issue_cycle(self, t, issued)          # MXM: iw and the sequences' elements
        if self.end_cycle is None and all(q.ended for q in self.queues):
            self.end_cycle = max(q.end_cycle for q in self.queues)
        return issued

    def _end_of_cycle(self, t):
        """End of cycle ``t``: every register takes its upstream neighbour's value, then writes
        land."""
        streams = self.streams
        streams[E, 1:] = streams[E, :-1].copy()
        streams[E, 0] = 0
        streams[W, :-1] = streams[W, 1:].copy()
        streams[W, -1] = 0
        # In order: where both planes of an MXM drain onto one stream, plane 1's value (written
        # after plane 0's, see mxm.Mxm.issue) is the one the stream takes (section 7a).
        for direction, position, stream, superlane, value in self._stream_writes.pop(t, ()):
            streams[direction, position, stream, superlane] = value
        for mem, addr, superlane, value in self._commits.pop(t, ()):
            self.codes[mem, addr, superlane] = secded.encode(value)
        for unit in self.mxms.values():
            unit.end_cycle()
        for unit in self.sxms.values():
            unit.end_cycle()
        for unit in self.mem_units.values():
            unit.end_cycle(t)
        # Fault injection (section 6b): after every write that lands in this cycle.
        for fault in self._faults.pop(self.time_of(t), ()):
            mem_unit.inject(self.codes, fault, self.config.lanes_per_superlane)

    def run(self):
        """Run to the end of the program and return a :class:`Result`."""
        while not self.done:
            self.step()
        return self.result()

    def result(self):
        """The :class:`Result` of the run so far (of the whole run once :attr:`done`)."""
        memories = self.memories.reshape(self.codes.shape[0], self.config.mem_words, -1)
        log = self.c2c_log
        return Result(self.config, self.total_cycles, memories, self.trace,
                      self.ecc.corrected, self.ecc.detected, self.ecc.first,
                      log.crc, log.errors, log.first)


def run(image, **kwargs):
    """Run ``image`` on the golden model; see :class:`Model` for the options."""
    return Model(image, **kwargs).run()
