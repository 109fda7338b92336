"""Golden model of the rest of the MEM slice (docs/architecture.md section 6a): ``gather`` and
``scatter`` with per-lane addresses, and the two address sequencers (``agi``, ``ago``,
``sread``, ``swrite``); and the SECDED-protected SRAM of section 6b (:class:`Fault`,
:class:`EccLog`, :func:`read_lanes`).

The sequencers act at issue, on superlane 0: in each cycle :func:`issue_cycle` turns what a
MEM queue issued, and what its running sequences generate, into at most one plain ``read`` or
``gather`` (the read port) and one plain ``write`` or ``scatter`` (the write port) per slice;
the model then runs these on superlane ``k`` ``k`` cycles later like any issued instruction.
So an element of a sequence has exactly the timing of a ``read``/``write`` issued in its
cycle.

Per port and cycle, the port priority of :mod:`opentsp.mem_sequence` (the specification)
decides between the queue's own instruction and a running sequence's element.

:func:`opentsp.mem_sequence.expand` gives the same schedule without stepping cycles (the
specification the checker plans with).
"""

from dataclasses import dataclass

import numpy as np

from opentsp import hostmap, isa, secded
from opentsp.mem_sequence import PORTS, SeqConfig

__all__ = ["Sequencer", "MemUnit", "issue_cycle", "execute", "Fault", "EccLog", "read_lanes",
           "inject"]

class Sequencer:
    """One address sequencer, stepped cycle by cycle (the RTL's registers, one to one)."""

    def __init__(self, config):
        self.mem_words = config.mem_words
        self.cfg = SeqConfig()
        self.active = False
        self.stream = self.addr = self.row = self.i_left = self.j_left = 0
        self.run_cfg = SeqConfig()

    def start(self, instr):
        """Latch the loop registers for ``sread``/``swrite`` ``instr``; return element 0."""
        self.run_cfg = self.cfg
        self.stream, self.addr = instr["s"], instr["addr"] % self.mem_words
        self.row = self.addr
        self.i_left, self.j_left = self.cfg.count - 1, self.cfg.ocount - 1
        self.active = True
        return self.next(isa.MEM_SEQ_STARTS[instr.op.mnemonic])

    def next(self, mnemonic, emit=True):
        """Advance a running sequence by one element; return it as a plain ``mnemonic``
        (``read`` or ``write``) or None (not running, or ``emit`` false: element lost)."""
        if not self.active:
            return None
        element = isa.encode(mnemonic, s=self.stream, addr=self.addr) if emit else None
        cfg, words = self.run_cfg, self.mem_words
        if self.i_left:
            self.addr = (self.addr + cfg.stride) % words
            self.i_left -= 1
        elif self.j_left:
            self.row = (self.row + cfg.ostride) % words
            self.addr = self.row
            self.i_left, self.j_left = cfg.count - 1, self.j_left - 1
        else:
            self.active = False
        return element


@dataclass(frozen=True)
class Fault:
    """One fault injection (section 6b): at the end of run cycle ``cycle``, after the cycle's
    writes have landed, the stored 13-bit code word of lane ``lane`` (``0..lanes-1``,
    superlane-major) of word ``word`` of memory ``mem`` (numbering of
    :func:`opentsp.isa.mem_slices`) is XORed with ``mask`` (1..0x1fff, bit layout of
    :mod:`opentsp.secded`). :meth:`check` checks the place against a configuration."""
    cycle: int
    mem: int
    word: int
    lane: int
    mask: int

    def __post_init__(self):
        for name in ("cycle", "mem", "word", "lane", "mask"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Fault.{name} must be a non-negative int, not {value!r}")
        if self.cycle >= 1 << 32:
            raise ValueError(f"Fault.cycle must be below 2**32, not {self.cycle!r}")
        if not 0 < self.mask <= secded.CODE_MASK:
            raise ValueError(f"Fault.mask must be a non-zero {secded.CODE_BITS}-bit mask "
                             f"(1..{secded.CODE_MASK:#x}), not {self.mask!r}")

    def check(self, config):
        """Raise ValueError unless memory, word and lane exist in ``config``; return self."""
        limits = {"mem": len(isa.mem_slices(config)), "word": config.mem_words,
                  "lane": config.lanes}
        for name, limit in limits.items():
            value = getattr(self, name)
            if value >= limit:
                raise ValueError(f"Fault.{name} must be below {limit} in configuration "
                                 f"{config.name!r}, not {value!r}")
        return self

    @classmethod
    def from_dict(cls, fields):
        return cls(**{name: fields[name] for name in ("cycle", "mem", "word", "lane", "mask")})

    def as_dict(self):
        return {"cycle": self.cycle, "mem": self.mem, "word": self.word, "lane": self.lane,
                "mask": self.mask}


@dataclass
class EccLog:
    """What the SRAM decoders saw during a run (section 6b): corrected and detected code words
    (each saturating at ``hostmap.ECC_COUNT_MAX``) and the first detected error's place
    ``(mem, word, lane, cycle)``: the earliest cycle, then the lowest memory, then the lowest
    lane."""
    corrected: int = 0
    detected: int = 0
    first: tuple | None = None

    def record(self, mem, words, superlane, cycle, corrected, detected, lanes_per_superlane):
        """Log one SRAM read of the lanes of ``superlane`` (per-lane ``words`` and flags)."""
        self.corrected = min(self.corrected + int(np.count_nonzero(corrected)),
                             hostmap.ECC_COUNT_MAX)
        self.detected = min(self.detected + int(np.count_nonzero(detected)),
                            hostmap.ECC_COUNT_MAX)
        for j in np.flatnonzero(detected):
            lane = superlane * lanes_per_superlane + int(j)
            place = (mem, int(words[j]), lane, cycle)
            if self.first is None or _order(place) < _order(self.first):
                self.first = place


def _order(place):
    """The order of detected errors: cycle, then memory, then lane."""
    mem, _, lane, cycle = place
    return cycle, mem, lane


def read_lanes(model, mem, words, superlane):
    """Read lane ``j`` of ``superlane`` from word ``words[j]`` of memory ``mem`` through the
    SECDED decoders in the current cycle; log what they find; return the data (uint8)."""
    lanes = np.arange(model.config.lanes_per_superlane)
    words = np.asarray(words, dtype=np.int64)
    data, corrected, detected = secded.decode(model.codes[mem, words, superlane, lanes])
    model.ecc.record(mem, words, superlane, model.time_of(model.cycle), corrected, detected,
                     model.config.lanes_per_superlane)
    return data


def inject(codes, fault, lanes_per_superlane):
    """Apply ``fault`` to the stored code words ``codes`` (the model's, in place)."""
    superlane, lane = divmod(fault.lane, lanes_per_superlane)
    codes[fault.mem, fault.word, superlane, lane] ^= np.uint16(fault.mask)


class MemUnit:
    """State of one MEM slice beyond its SRAM: two sequencers and lane-granular commits.

    Parameters
    ----------
    config : Config
    memory : numpy.ndarray
        The slice's SRAM code words (uint16), shape ``(mem_words, superlanes,
        lanes_per_superlane)`` (a view of the model's code words: commits land in it).
    """

    def __init__(self, config, memory):
        self.config = config
        self.memory = memory
        self.seqs = (Sequencer(config), Sequencer(config))
        self._lane_commits = {}         # cycle -> [(addr, superlane, lane, value)]

    def issue(self, instr, ended):
        """What the slice's ports run this cycle (superlane 0): the queue's ``instr`` (or
        None) and ``ended`` (the queue is in or past its ``end`` slot) -> plain instructions."""
        name = instr.op.mnemonic if instr is not None else None
        if name in ("agi", "ago"):
            seq = self.seqs[instr["g"]]
            seq.cfg = seq.cfg.set(instr)
        out = []
        for seq, (starter, plain) in zip(self.seqs, PORTS, strict=True):
            element = isa.MEM_SEQ_STARTS[starter]
            if name == starter:
                out.append(seq.start(instr))
            elif name in plain:
                out.append(instr)
                seq.next(element, emit=False)
            elif not ended:
                generated = seq.next(element)
                if generated is not None:
                    out.append(generated)
        return out

    def commit_lane(self, when, addr, superlane, lane, value):
        self._lane_commits.setdefault(when, []).append((addr, superlane, lane, value))

    def end_cycle(self, cycle):
        for addr, superlane, lane, value in self._lane_commits.pop(cycle, ()):
            self.memory[addr, superlane, lane] = secded.encode(value)


def issue_cycle(model, cycle, issued):
    """The MEM part of :meth:`opentsp.sim.model.Model.step`, after the queues have issued:
    schedule every MEM slice's port instructions on all superlanes. ``issued`` holds the
    cycle's ``(slice name, instr)`` pairs."""
    by_name = dict(issued)
    for slice_, queue in zip(model.queue_slices, model.queues, strict=True):
        unit = model.mem_units.get(slice_.name)
        if unit is None:
            continue
        issued_here = by_name.get(slice_.name)
        for instr in unit.issue(issued_here, queue.ended):
            if instr is issued_here:
                continue            # the queue's own read/write: already on its way
            for k in range(model.config.superlanes):
                model._executing[cycle + k].append((slice_, instr, k))


def _lane_addresses(model, slice_, instr, superlane):
    """Per lane of ``superlane``: the unsigned int16 of the pair ``a`` mod ``mem_words``."""
    direction, (lo, hi) = instr.group("a")
    low = model._input(slice_.position, direction, lo, superlane).astype(np.int64)
    high = model._input(slice_.position, direction, hi, superlane).astype(np.int64)
    return (low | high << 8) % model.config.mem_words


def execute(model, slice_, instr, superlane):
    """Executor of ``gather`` and ``scatter`` (``agi``, ``ago``, ``sread``, ``swrite`` act at
    issue through :func:`issue_cycle`; on the superlanes they do nothing)."""
    name = instr.op.mnemonic
    if name not in ("gather", "scatter"):
        return
    unit = model.mem_units[slice_.name]
    addrs = _lane_addresses(model, slice_, instr, superlane)
    lanes = range(model.config.lanes_per_superlane)
    direction, (stream,) = instr.group("s")
    if name == "gather":
        value = read_lanes(model, model._mem_index[slice_.name], addrs, superlane)
        when = model.cycle + isa.latency(instr.op, model.config)
        model._write_stream(when, slice_, direction, stream, superlane, value)
    else:
        value = model._input(slice_.position, direction, stream, superlane)
        for j in lanes:
            unit.commit_lane(model.cycle + instr.op.commit, int(addrs[j]), superlane, j,
                             value[j])
