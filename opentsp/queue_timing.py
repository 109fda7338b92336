"""Issue timing of the instruction queues (docs/architecture.md sections 5, 5a, 5b), computed
statically: which instruction issues in which cycle, for every queue of a program at once.

This is the timing rule itself, below both its users: the golden model's cycle-by-cycle queue
(:class:`opentsp.sim.icu.Queue`) must issue in exactly these cycles, and the assembler, the
static checker and the random program generator plan with :func:`schedule`.

A queue advances one slot per cycle: ``nop N`` occupies N slots and issues nothing,
``repeat n, d`` occupies n*d slots and re-issues the previous issued instruction in slots
``d-1 + k*d`` of them, ``end`` stops the queue, anything else issues in its single slot.
``sync`` parks its queue until a ``notify`` of any queue releases it, so issue cycles are a
property of the whole program. An ``ifetch s, n`` occupies n slots; :func:`schedule` sees the
fetched words as the continuation of the queue's program and stops a queue at a :class:`Stop`,
where its next words are not known yet.
"""

import heapq
from dataclasses import dataclass, field

from opentsp import isa

__all__ = ["Stop", "issue_schedule", "end_slot", "schedule", "QueueSchedule", "At", "AtError"]


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


def schedule(programs, notify_latency=isa.NOTIFY_LATENCY, issues=True, deskew=None):
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
    deskew : int or None
        The cycle ``R`` (:func:`opentsp.isa.c2c_release`, section 7d) in which the chip's
        ``deskew`` is released: its C2C queue notifies in ``R - notify_latency``, which
        releases the queues parked on ``sync`` as any notify does, and the queue on the
        ``deskew`` resumes in ``R``. None: a ``deskew`` is never released (a chip alone).

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
    run = _Schedule(programs, issues)
    for q in range(len(programs)):
        run.walk(q, 0, 0, None)
    run.release(notify_latency, deskew)
    return run.result


class _Schedule:
    """The state of :func:`schedule`: each queue's :class:`QueueSchedule`, the notifies not yet
    looked at and the queues parked on a ``sync``."""

    def __init__(self, programs, issues):
        self.programs, self.issues = programs, issues
        self.result = [QueueSchedule([None] * len(program)) for program in programs]
        self.notifies = []      # heap of notify cycles not yet looked at
        self.parked = {}        # queue -> (sync index, arrival, last issued)

    def walk(self, q, pc, cycle, last):
        """Run queue ``q`` from instruction ``pc`` in cycle ``cycle`` (``last``: the
        instruction a ``repeat`` re-issues) to its ``end``, a ``sync`` or a :class:`Stop`."""
        program, out = self.programs[q], self.result[q]
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
            if name in ("sync", "deskew"):
                self.parked[q] = (pc, cycle, last)
                return
            last = self._issue(out, pc, item, cycle, last)
            cycle += item.slots
            pc += 1
        raise ValueError(f"queue {q} has no `end`")

    def _issue(self, out, pc, item, cycle, last):
        """Record what instruction ``pc`` (not ``end``/``sync``) does in its slots from
        ``cycle``; returns the instruction a later ``repeat`` re-issues."""
        name = item.op.mnemonic
        if name == "notify":
            out.notifies.append((pc, cycle))
            heapq.heappush(self.notifies, cycle)
        elif name == "ifetch":
            out.fetches.append((pc, cycle))     # takes words in cycle .. cycle + n - 1
        elif name == "repeat":
            if last is not None and self.issues:
                d = item["d"]
                out.issues.extend((cycle + d - 1 + k * d, last) for k in range(item["n"]))
        elif name != "nop":
            if self.issues:
                out.issues.append((cycle, item))
            last = item
        return last

    def release(self, notify_latency, deskew=None):
        """Release parked queues notify by notify, earliest first, until none can be; the
        queues still parked never resume. A queue on a ``deskew`` is released only by the
        deskew's own notify, in ``deskew - notify_latency``."""
        notifies, parked = self.notifies, self.parked
        if deskew is not None:
            heapq.heappush(notifies, deskew - notify_latency)
        while parked:
            earliest = min(arrival for _, arrival, _ in parked.values())
            while notifies and notifies[0] + notify_latency - 1 < earliest:
                heapq.heappop(notifies)         # releases nobody, now or later
            if not notifies:
                break
            resume = heapq.heappop(notifies) + notify_latency
            for q in [q for q, (pc, arrival, _) in parked.items() if arrival <= resume - 1
                      and (self.programs[q][pc].op.mnemonic == "sync" or resume == deskew)]:
                pc, arrival, last = parked.pop(q)
                self.result[q].syncs.append((pc, arrival, resume))
                self.walk(q, pc + 1, resume, last)
        for q, (pc, arrival, _) in parked.items():
            self.result[q].syncs.append((pc, arrival, None))


def issue_schedule(program):
    """All ``(cycle, instr)`` issues of a queue running alone and the cycle of its ``end`` slot
    (``None`` if a ``sync`` is never released by the queue's own notifies)."""
    (one,) = schedule([program])
    return one.issues, one.end


def end_slot(program):
    """Cycle in which the queue's ``end`` issues."""
    return issue_schedule(program)[1]
