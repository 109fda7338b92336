"""Golden model of one instruction queue (ICU): which instruction issues in which cycle.

The queue advances one slot per cycle (docs/architecture.md, section 5): ``nop N`` occupies N
slots and issues nothing, ``repeat n, d`` occupies n*d slots and re-issues the previous issued
instruction in slots ``d-1 + k*d`` of them, ``end`` stops the queue, anything else issues in its
single slot.
"""

__all__ = ["Queue", "issue_schedule", "end_slot"]


class Queue:
    """Cycle-by-cycle model of one queue. :meth:`step` returns what issues this cycle.

    Parameters
    ----------
    program : sequence of opentsp.isa.Instr
        The queue's instructions; the last one is ``end``.
    """

    def __init__(self, program):
        self._program = list(program)
        self._pc = 0
        self._slot = 0          # slots already spent in the current instruction
        self._last = None       # last issued instruction, for repeat
        self.cycle = 0
        self.ended = False
        self.end_cycle = None

    def step(self):
        """Advance one cycle; return the :class:`~opentsp.isa.Instr` issued in it, or None."""
        issued = None
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
            elif name != "nop":
                issued = self._last = instr
            if not self.ended:
                self._slot += 1
                if self._slot == instr.slots:
                    self._pc += 1
                    self._slot = 0
        self.cycle += 1
        return issued


def issue_schedule(program):
    """All ``(cycle, instr)`` issues of a queue and the cycle of its ``end`` slot, without
    stepping cycle by cycle (cost per instruction, not per cycle)."""
    issues = []
    cycle = 0
    last = None
    for instr in program:
        name = instr.op.mnemonic
        if name == "end":
            return issues, cycle
        if name == "repeat":
            if last is not None:
                d = instr["d"]
                issues.extend((cycle + d - 1 + k * d, last) for k in range(instr["n"]))
        elif name != "nop":
            issues.append((cycle, instr))
            last = instr
        cycle += instr.slots
    raise ValueError("queue has no `end`")


def end_slot(program):
    """Cycle in which the queue's ``end`` issues."""
    return issue_schedule(program)[1]
