"""Golden model of the instruction queues (ICU): which instruction issues in which cycle.

A queue advances one slot per cycle (docs/architecture.md, section 5): ``nop N`` occupies N
slots and issues nothing, ``repeat n, d`` occupies n*d slots and re-issues the previous issued
instruction in slots ``d-1 + k*d`` of them, ``end`` stops the queue, anything else issues in its
single slot.

Sync and notify (section 5a) tie the queues together: ``sync`` parks its queue until a
``notify`` of any queue releases it, so issue cycles are a property of the whole program.
:func:`schedule` computes them for every queue at once, per instruction rather than per cycle;
:class:`Queue` is the cycle-by-cycle form, driven by the chip's notify bus.
"""

import heapq
from dataclasses import dataclass, field

from opentsp import isa

__all__ = ["Queue", "issue_schedule", "end_slot", "schedule", "QueueSchedule", "At",
           "AtError"]


class Queue:
    """Cycle-by-cycle model of one queue. :meth:`step` returns what issues this cycle.

    Parameters
    ----------
    program : sequence of opentsp.isa.Instr
        The queue's instructions; the last one is ``end``.

    Attributes
    ----------
    notified : bool
        The slot of the last :meth:`step` was a ``notify`` (it goes on the notify bus).
    parked : bool
        The last :meth:`step` was spent waiting on a ``sync``.
    """

    def __init__(self, program):
        self._program = list(program)
        self._pc = 0
        self._slot = 0          # slots already spent in the current instruction
        self._last = None       # last issued instruction, for repeat
        self.cycle = 0
        self.ended = False
        self.end_cycle = None
        self.notified = False
        self.parked = False

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
            if self._pc >= len(self._program):
                raise RuntimeError("queue ran past its last instruction without `end`")
            instr = self._program[self._pc]
            name = instr.op.mnemonic
            if name == "end":
                self.ended = True
                self.end_cycle = self.cycle
            elif name == "repeat":
                if self._slot % instr["d"] == instr["d"] - 1:
                    issued = self._last
            elif name == "sync":
                self.parked = not release
            elif name == "notify":
                self.notified = True
            elif name != "nop":
                issued = self._last = instr
            if not self.ended and not self.parked:
                self._slot += 1
                if self._slot == instr.slots:
                    self._pc += 1
                    self._slot = 0
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
    """
    starts: list
    issues: list = field(default_factory=list)
    end: int | None = None
    syncs: list = field(default_factory=list)
    notifies: list = field(default_factory=list)


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
