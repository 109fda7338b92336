"""Reporting: the error a broken rule raises, located at the offending instruction."""

from opentsp.firmware.asm import AsmError

__all__ = ["CheckError", "describe", "error_at"]


class CheckError(AsmError):
    """A broken timing rule, located at the offending instruction (one-line message).

    Attributes
    ----------
    rule : int
        The broken rule, 1 to 11 (listed in the docstring of :mod:`opentsp.firmware.checker`).
    cycle : int
        The cycle (on superlane 0) in which the rule breaks.
    queue, index : int
        The instruction (for a ``repeat`` copy: the ``repeat``).
    """

    def __init__(self, loc, cause, rule, cycle, queue, index):
        super().__init__(loc, cause)
        self.rule = rule
        self.cycle = cycle
        self.queue = queue
        self.index = index


def error_at(timing, issue, rule, cycle, cause, copy=None):
    """A :class:`CheckError` for ``issue``, located at its source line if it has one.

    Parameters
    ----------
    timing : Timing
        The checked program.
    issue : Issue
        The offending issue.
    rule, cycle : int
        The broken rule and the cycle in which it breaks.
    cause : str
        What is wrong.
    copy : int, optional
        Which copy of a ``repeat`` breaks it (named in the message).

    Returns
    -------
    CheckError
    """
    loc = timing.locations.get((issue.queue, issue.index))
    if issue.repeat and copy is not None:
        cause += f" (copy {copy + 1} of {issue.n} of the repeated {issue.instr})"
    if loc is None:
        cause = f"queue {issue.queue} ({timing.slices[issue.queue].name}) instruction " \
                f"{issue.index}: {cause}"
    return CheckError(loc, cause, rule, cycle, issue.queue, issue.index)


def describe(timing, issue):
    """``issue`` for a message: its instruction, slice and source line (or index).

    Parameters
    ----------
    timing : Timing
        The checked program.
    issue : Issue
        The issue to name.

    Returns
    -------
    str
    """
    loc = timing.locations.get((issue.queue, issue.index))
    where = f"line {loc.line}" if loc is not None else f"instruction {issue.index}"
    return f"{issue.instr} of {timing.slices[issue.queue].name} ({where})"
