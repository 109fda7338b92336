"""MXM rules (docs/architecture.md section 7a): rule 6, weights before use, and rule 7, an
``acc`` no earlier than ``isa.mxm_span`` cycles after the ``abc``s of its accumulator."""

import bisect
from collections import defaultdict

from opentsp import isa
from opentsp.firmware.checker.progressions import ap_intersection
from opentsp.firmware.checker.report import describe, error_at

__all__ = ["RULE_MXM_ACC", "RULE_MXM_WEIGHTS", "check_mxm"]

#: An ``abc`` or ``acc`` before the first ``iw`` of its queue.
RULE_MXM_WEIGHTS = 6
#: An ``acc a`` less than ``isa.mxm_span`` cycles after an ``abc a`` of its queue.
RULE_MXM_ACC = 7


def check_mxm(timing):
    """Rules 6 and 7 for every MXM queue of ``timing`` (a :class:`Timing`).

    Yields
    ------
    CheckError
    """
    span = isa.mxm_span(timing.config)
    by_queue = defaultdict(list)
    for issue in timing.issues:
        if issue.instr.op.unit == isa.Unit.MXM:
            by_queue[issue.queue].append(issue)
    for q, issues in by_queue.items():
        yield from _check_weights_first(timing, q, issues)
        yield from _check_acc_after_abc(timing, issues, span)


def _check_weights_first(timing, q, issues):
    """Rule 6: no ``abc`` or ``acc`` of MXM queue ``q`` (``issues``) before its first ``iw``."""
    name = timing.slices[q].name
    installs = [issue.t0 for issue in issues if issue.instr.op.mnemonic == "iw"]
    first_iw = min(installs, default=None)
    for issue in issues:
        mnemonic = issue.instr.op.mnemonic
        if mnemonic in ("abc", "acc") and (first_iw is None or issue.t0 < first_iw):
            when = (f"before the first iw of {name} (cycle {first_iw})"
                    if first_iw is not None else f"and {name} has no iw")
            cause = (f"MXM used before weights are installed: {issue.instr} issues in "
                     f"cycle {issue.t0} {when}")
            yield error_at(timing, issue, RULE_MXM_WEIGHTS, issue.t0, cause, 0)


def _check_acc_after_abc(timing, issues, span):
    """Rule 7: no ``acc a`` in cycles ``t + 1 .. t + span - 1`` of an ``abc a`` issued in t.

    At most one error per ``acc``.
    """
    if span < 2:
        return
    abcs = defaultdict(list)        # accumulator -> [(t0, d, n, issue)], sorted by t0
    for issue in issues:
        if issue.instr.op.mnemonic == "abc":
            abcs[issue.instr["acc"]].append((issue.t0, issue.d, issue.n, issue))
    for items in abcs.values():
        items.sort(key=lambda item: item[0])
    starts = {a: [item[0] for item in items] for a, items in abcs.items()}
    for issue in issues:
        if issue.instr.op.mnemonic != "acc" or issue.instr["acc"] not in abcs:
            continue
        a = issue.instr["acc"]
        # abc issues that can be 1..span-1 cycles before one of this acc's copies
        stop = bisect.bisect_left(starts[a], issue.last)
        for t0, d, n, abc in abcs[a][:stop]:
            found = _earliest_early_acc(issue, t0, d, n, span)
            if found is None:
                continue
            u, gap, k = found
            cause = (f"{issue.instr} issues in cycle {u}, {gap} cycle(s) after {abc.instr} "
                     f"(cycle {u - gap}, {describe(timing, abc)}): it reads accumulator {a} "
                     f"before that abc lands; issue it at least {span} cycles after the abc")
            yield error_at(timing, issue, RULE_MXM_ACC, u, cause, k)
            break


def _earliest_early_acc(acc, t0, d, n, span):
    """The first copy of ``acc`` that issues 1..span-1 cycles after an ``abc`` copy.

    Parameters
    ----------
    acc : Issue
        The ``acc``.
    t0, d, n : int
        The ``abc``'s issue progression.
    span : int
        ``isa.mxm_span``: cycles from an ``abc`` until its accumulator is readable.

    Returns
    -------
    tuple or None
        ``(cycle, gap, copy)``, the earliest such ``acc`` copy and its distance to the ``abc``.
    """
    if t0 + (n - 1) * d + span - 1 < acc.t0:
        return None
    found = None
    for gap in range(1, span):
        hit = ap_intersection(acc.t0, acc.d, acc.n, t0 + gap, d, n)
        if hit is not None:
            u = acc.cycle(hit[0])
            if found is None or u < found[0]:
                found = (u, gap, hit[0])
    return found
