"""Golden model of the instruction queues (ICU): which instruction issues in which cycle.

A queue advances one slot per cycle (docs/architecture.md, section 5): ``nop N`` occupies N
slots and issues nothing, ``repeat n, d`` occupies n*d slots and re-issues the previous issued
instruction in slots ``d-1 + k*d`` of them, ``end`` stops the queue, anything else issues in its
single slot.

Sync and notify (section 5a) tie the queues together: ``sync`` parks its queue until a
``notify`` of any queue releases it, so issue cycles are a property of the whole program.
:func:`schedule` computes them for every queue at once, per instruction rather than per cycle;
:class:`Queue` is the cycle-by-cycle form, driven by the chip's notify bus.

Instruction fetch (section 5b): ``ifetch s, n`` occupies n slots and appends one word per slot,
taken from the streams at the slice input (the model's hook), to the queue, a ring buffer of
``queue_depth`` words; a word fetched in cycle c is executed from slot c + FETCH_LATENCY on.
:func:`schedule` sees the fetched words as the continuation of the queue's program (the checker
finds them) and stops a queue at a :class:`Stop`, where its next words are not known yet.
"""

import heapq
from dataclasses import dataclass, field

from opentsp import isa

__all__ = ["Queue", "FetchError", "Stop", "issue_schedule", "end_slot", "schedule",
           "QueueSchedule", "At", "AtError"]


class FetchError(RuntimeError):
    """A queue slot whose word is not an instruction the golden model can execute (section 5b:
    a word fetched from memory that does not decode)."""


class Queue:
    """Cycle-by-cycle model of one queue. :meth:`step` returns what issues this cycle.

    The queue memory is a ring of ``depth`` words (section 5b): the program is preloaded at
    indices ``0 ..``, the fill pointer starts after it and each ``ifetch`` slot (cycle ``c``)
    writes the word that ``fetch`` returns at the fill pointer, at the end of cycle ``c``. The
    program counter wraps; the word of slot ``t`` is read in cycle ``t - 1`` (the RTL's
    prefetch read port), so a word fetched in cycle ``c`` is executed from slot
    ``c + isa.FETCH_LATENCY`` on, and a slot executes whatever its index holds (an index never
    written holds 0, which takes one slot and issues nothing, as in the RTL after power-up).

    Parameters
    ----------
    program : sequence of opentsp.isa.Instr
        The queue's preloaded instructions (ending with ``end``, or containing an ``ifetch``).
    depth : int or None
        Words in the ring (``queue_depth``); None: the program's length, no fetching.
    fetch : callable or None
        ``fetch(instr)`` returns the 32-bit word that an ``ifetch`` slot takes this cycle
        (lane 0 of superlane 0 of its group at the slice input). None: fetched words are 0.

    Attributes
    ----------
    notified : bool
        The slot of the last :meth:`step` was a ``notify`` (it goes on the notify bus).
    parked : bool
        The last :meth:`step` was spent waiting on a ``sync``.
    fetched : list
        ``(cycle, word)`` of every word fetched.
    """

    def __init__(self, program, depth=None, fetch=None):
        program = list(program)
        self._depth = len(program) if depth is None else depth
        if len(program) > self._depth:
            raise ValueError(f"{len(program)} instructions for a queue of {self._depth}")
        self._ring = [instr.encode() for instr in program] + [0] * (self._depth - len(program))
        self._decoded = {}
        self._fill = len(program) % max(self._depth, 1)
        self._pending = None    # (index, word) fetched in the previous cycle
        self._fetch = fetch
        self._pc = 0
        self._count = 0         # slots (nop, ifetch) or copies (repeat) done in this word
        self._phase = 0         # slot within the repeat period
        self._last = None       # last issued instruction, for repeat
        self.cycle = 0
        self.ended = False
        self.end_cycle = None
        self.notified = False
        self.parked = False
        self.fetched = []

    def _word(self):
        word = self._ring[self._pc]
        if word not in self._decoded:
            try:
                self._decoded[word] = None if word == 0 else isa.decode(word)
            except isa.EncodingError as error:
                raise FetchError(f"cycle {self.cycle}: queue index {self._pc}: {error}") from None
        return self._decoded[word]

    def step(self, release=False):
        """Advance one cycle; return the :class:`~opentsp.isa.Instr` issued in it, or None.

        ``release`` is the notify bus in this cycle: high when some queue issued a ``notify``
        in cycle ``cycle - (isa.NOTIFY_LATENCY - 1)``. A queue on a ``sync`` leaves it at the
        end of a cycle with ``release`` high (its next instruction issues in the next cycle)
        and otherwise stays on it.
        """
        issued = None
        self.notified = self.parked = False
        if not self.ended:
            instr = self._word()            # read in the previous cycle (prefetch)
        if self._pending is not None:       # the previous cycle's fetch lands now
            index, word = self._pending
            self._ring[index] = word
            self._pending = None
        if not self.ended:
            # The RTL's registers: ``count`` (slots or copies done) and ``phase`` (slot within a
            # repeat period), both cleared when the queue moves to the next word; they are
            # applied to whatever word the index holds in each cycle.
            name = instr.op.mnemonic if instr is not None else "nop"
            advance = False
            if name == "end":
                self.ended = True
                self.end_cycle = self.cycle
            elif name == "repeat":
                if self._phase == instr["d"] - 1:
                    issued = self._last
                    self._phase = 0
                    advance = self._count + 1 >= instr["n"]
                    self._count += 1
                else:
                    self._phase += 1
            elif name == "sync":
                self.parked = not release
                advance = release
            elif name == "notify":
                self.notified = advance = True
            elif name in ("nop", "ifetch"):
                if name == "ifetch":
                    word = self._fetch(instr) if self._fetch is not None else 0
                    self.fetched.append((self.cycle, word))
                    self._pending = (self._fill, word)
                    self._fill = (self._fill + 1) % self._depth
                limit = 0 if instr is None else instr.slots     # the word 0 is `nop 0`
                advance = self._count + 1 >= limit
                self._count += 1
            else:
                issued = self._last = instr
                advance = True
            if advance:
                self._pc = (self._pc + 1) % self._depth
                self._count = self._phase = 0
        self.cycle += 1
        return issued


# Static schedule ----------------------------------------------------------------------------

@dataclass(frozen=True)
class At:
    """A placeholder in a program given to :func:`schedule`: the next instruction starts in
    cycle ``cycle`` (the assembler's ``.at`` after a ``sync``; it becomes ``nop`` padding of
    ``cycle - start`` slots). ``tag`` is the caller's (a source location)."""
    cycle: int
    tag: object = None


@dataclass(frozen=True)
class Stop:
    """A placeholder in a program given to :func:`schedule`: the queue's next words are not
    known (words still to be fetched, section 5b); the queue is not followed beyond it
    (``QueueSchedule.stopped``)."""


class AtError(ValueError):
    """An :class:`At` whose cycle has already passed when the queue reaches it."""

    def __init__(self, queue, index, at, cycle):
        self.queue, self.index, self.at, self.cycle = queue, index, at, cycle
        super().__init__(f"queue {queue} instruction {index}: .at {at.cycle} but the queue "
                         f"is already at cycle {cycle}")


@dataclass
class QueueSchedule:
    """When one queue does what (cycles on superlane 0), from :func:`schedule`.

    Attributes
    ----------
    starts : list
        Cycle of the first slot of each instruction (of an :class:`At`: the cycle the queue
        reaches it), ``None`` for instructions never reached (after a ``sync`` never released).
    issues : list
        ``(cycle, instr)`` of every issue, in cycle order.
    end : int or None
        Cycle of the ``end`` slot; ``None`` if the queue never gets there.
    syncs : list
        ``(index, arrival, resume)`` per ``sync`` reached: the queue is on it in cycles
        ``arrival .. resume - 1``; ``resume`` is ``None`` if it is never released.
    notifies : list
        ``(index, cycle)`` per ``notify`` issued.
    stopped : tuple or None
        ``(index, cycle)`` of a :class:`Stop` the queue reached (its next words are unknown).
    fetches : list
        ``(index, cycle)`` per ``ifetch`` reached: it takes one word in each of the cycles
        ``cycle .. cycle + n - 1`` (section 5b).
    """
    starts: list
    issues: list = field(default_factory=list)
    end: int | None = None
    syncs: list = field(default_factory=list)
    notifies: list = field(default_factory=list)
    stopped: tuple | None = None    # (index, cycle) of a Stop reached
    fetches: list = field(default_factory=list)     # (index, cycle) per ifetch reached


def schedule(programs, notify_latency=isa.NOTIFY_LATENCY, issues=True):
    """Issue cycles of every queue of a chip, with sync/notify, without stepping cycles.

    Each queue runs on its own slot arithmetic up to a ``sync`` or its ``end``. Then the
    earliest pending ``notify`` (cycle ``t``) that releases a parked queue (one that reached
    its sync in a cycle ``a <= t + notify_latency - 1``) releases every such queue at
    ``t + notify_latency``; those run on to their next sync, adding their notifies, and so on.
    Notifies not yet known come from queues released later, hence are later than ``t``: the
    order is exact. Cost: per instruction and per notify, not per cycle.

    Parameters
    ----------
    programs : sequence of sequence
        Each queue's :class:`opentsp.isa.Instr` (and :class:`At`) items, ending with ``end``.
    notify_latency : int
        ``isa.NOTIFY_LATENCY``.
    issues : bool
        Fill ``QueueSchedule.issues`` (every copy of every ``repeat``: cost per issue); the
        checker leaves it empty and works from ``starts``.

    Returns
    -------
    list of QueueSchedule

    Raises
    ------
    ValueError
        A queue runs out of instructions without ``end``.
    AtError
        An :class:`At` whose cycle has passed.
    """
    result = [QueueSchedule([None] * len(program)) for program in programs]
    notifies = []           # heap of notify cycles not yet looked at
    parked = {}             # queue -> (sync index, arrival, last issued)

    def walk(q, pc, cycle, last):
        program, out = programs[q], result[q]
        while pc < len(program):
            item = program[pc]
            out.starts[pc] = cycle
            if isinstance(item, Stop):
                out.stopped = (pc, cycle)
                return
            if isinstance(item, At):
                if item.cycle < cycle:
                    raise AtError(q, pc, item, cycle)
                cycle = item.cycle
                pc += 1
                continue
            name = item.op.mnemonic
            if name == "end":
                out.end = cycle
                return
            if name == "sync":
                parked[q] = (pc, cycle, last)
                return
            if name == "notify":
                out.notifies.append((pc, cycle))
                heapq.heappush(notifies, cycle)
            elif name == "ifetch":
                out.fetches.append((pc, cycle))     # takes words in cycle .. cycle + n - 1
            elif name == "repeat":
                if last is not None and issues:
                    d = item["d"]
                    out.issues.extend((cycle + d - 1 + k * d, last) for k in range(item["n"]))
            elif name != "nop":
                if issues:
                    out.issues.append((cycle, item))
                last = item
            cycle += item.slots
            pc += 1
        raise ValueError(f"queue {q} has no `end`")

    for q in range(len(programs)):
        walk(q, 0, 0, None)
    while parked:
        earliest = min(arrival for _, arrival, _ in parked.values())
        while notifies and notifies[0] + notify_latency - 1 < earliest:
            heapq.heappop(notifies)         # releases nobody, now or later
        if not notifies:
            break
        resume = heapq.heappop(notifies) + notify_latency
        for q in [q for q, (_, arrival, _) in parked.items() if arrival <= resume - 1]:
            pc, arrival, last = parked.pop(q)
            result[q].syncs.append((pc, arrival, resume))
            walk(q, pc + 1, resume, last)
    for q, (pc, arrival, _) in parked.items():
        result[q].syncs.append((pc, arrival, None))
    return result


def issue_schedule(program):
    """All ``(cycle, instr)`` issues of a queue running alone and the cycle of its ``end`` slot
    (``None`` if a ``sync`` is never released by the queue's own notifies)."""
    (one,) = schedule([program])
    return one.issues, one.end


def end_slot(program):
    """Cycle in which the queue's ``end`` issues."""
    return issue_schedule(program)[1]
