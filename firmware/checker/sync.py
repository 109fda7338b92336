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
            cause = (f"sync of {timing.slices[q].name} reached in cycle {arrival} is never "
                     f"released: no notify issues in cycle {arrival + 1 - isa.NOTIFY_LATENCY} "
                     f"or later while it waits (the queue would wait forever)")
            yield error_at(timing, issue, RULE_SYNC, arrival, cause)
