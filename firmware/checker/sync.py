"""Sync rule (docs/architecture.md section 5a): rule 8, every ``sync`` a queue reaches is
released by a ``notify``."""

from opentsp import isa
from opentsp.firmware.checker.progressions import Issue
from opentsp.firmware.checker.report import error_at

__all__ = ["RULE_SYNC", "check_sync"]

#: A ``sync`` that no ``notify`` releases.
RULE_SYNC = 8


def check_sync(timing):
    """Rule 8: every ``sync`` a queue reaches is released by a later ``notify``.

    Otherwise the queue waits forever and the run never finishes. The issue cycles come from
    :func:`opentsp.queue_timing.schedule`, which computes all queues together.

    Parameters
    ----------
    timing : Timing
        The checked program.

    Yields
    ------
    CheckError
    """
    for q, sched in enumerate(timing.schedule):
        for index, arrival, resume in sched.syncs:
            if resume is not None:
                continue
            instr = timing.programs[q][index]
            issue = Issue(q, index, instr, arrival, 1, 1, False)
            cause = _cause(timing.slices[q].name, arrival)
            if instr.op.mnemonic == "deskew":
                cause = (f"{instr} of {timing.slices[q].name}: only a mark from another chip "
                         f"releases it; check the chips together "
                         f"(opentsp.firmware.system.check_system)")
            yield error_at(timing, issue, RULE_SYNC, arrival, cause)


def _cause(name, arrival):
    """The message of a sync of slice ``name`` reached in cycle ``arrival`` and never released.

    A notify issued in cycle ``t`` releases the syncs reached by ``t + NOTIFY_LATENCY - 1``
    (docs/architecture.md section 5a), so the notifies that would release this one are those
    of cycle ``arrival + 1 - NOTIFY_LATENCY`` on: every notify of the run when that is not after
    cycle 0.
    """
    first = arrival + 1 - isa.NOTIFY_LATENCY
    if first <= 0:
        missing = "no notify issues in the whole run (any notify would release it"
    else:
        lead = isa.NOTIFY_LATENCY - 1
        missing = (f"no notify issues in cycle {first} or later (a notify releases the syncs "
                   f"reached up to {lead} cycle{'s' if lead != 1 else ''} after it")
    return (f"sync of {name} reached in cycle {arrival} is never released: {missing}; the "
            f"queue would wait forever)")
