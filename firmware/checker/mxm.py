"""MXM rules (docs/architecture.md section 7a, ISA v4): rule 6, a plane's weights before its
use; rule 7, an ``acc p`` element no earlier than ``isa.mxm_span`` cycles after the ``abc p``
element of its accumulator; rule 12, no sequence element lost; rule 13, no ``iw`` of a plane
that a load element writes in the same cycle.

:func:`expand_mxm` turns each ``lw``/``abc``/``acc`` issue into the elements its sequence runs,
as one issue per sequence (cycles ``t .. t + run - 1``, one element per cycle): every element
of a sequence reads and writes the same streams, so the stream rules check them as a
progression; rules 7 and 13 work out each element's accumulator and plane.
"""

from collections import defaultdict

from opentsp import isa
from opentsp.firmware.checker.progressions import Issue
from opentsp.firmware.checker.report import describe, error_at

__all__ = ["RULE_MXM_ACC", "RULE_MXM_IW", "RULE_MXM_SEQ", "RULE_MXM_WEIGHTS", "check_mxm",
           "expand_mxm"]

#: An ``abc p`` or ``acc p`` before the first ``iw p`` of its queue.
RULE_MXM_WEIGHTS = 6
#: An ``acc p`` element less than ``isa.mxm_span`` cycles after an ``abc p`` element of its
#: accumulator.
RULE_MXM_ACC = 7
#: An element of an ``lw``/``abc``/``acc`` sequence that does not run.
RULE_MXM_SEQ = 12
#: An ``iw p`` in a cycle in which a load element writes plane ``p``.
RULE_MXM_IW = 13


def _count(instr):
    return instr["n"]


def expand_mxm(timing, q, issues):
    """Issues of queue ``q`` with its MXM sequences as the elements that run.

    Each copy of an ``lw``/``abc``/``acc`` becomes one issue of its sequence's elements (step 1,
    from the copy's cycle), cut short by the next instruction for its sequencer
    (:func:`opentsp.isa.mxm_sequencer`) or by the queue's ``end``; the elements that do not run
    go to ``timing.mxm_losses`` (rule 12). An ``abc``/``acc`` of a plane the MXM does not have
    runs nothing. Other issues pass unchanged.
    """
    issues = list(issues)
    if timing.slices[q].kind != isa.SliceKind.MXM:
        return issues
    end = timing.schedule[q].end
    planes = timing.config.mxm_planes
    starts = defaultdict(list)      # sequencer -> [(cycle, issue, copy)]
    out = []
    for issue in issues:
        if issue.instr.op.mnemonic not in isa.MXM_SEQUENCERS:
            out.append(issue)
            continue
        kind, plane = isa.mxm_sequencer(issue.instr)
        if plane is not None and plane >= planes:
            continue
        starts[kind, plane].extend((issue.cycle(k), issue, k) for k in range(issue.n))
    for runs in starts.values():
        runs.sort(key=lambda item: item[0])
        for i, (cycle, issue, k) in enumerate(runs):
            stop = cycle + _count(issue.instr)
            why = "the queue's end"
            if i + 1 < len(runs) and runs[i + 1][0] < stop:
                stop, why = runs[i + 1][0], f"{runs[i + 1][1].instr} (cycle {runs[i + 1][0]})"
            if end is not None and end < stop:
                stop, why = max(end, cycle + 1), "the queue's end"
            out.append(Issue(q, issue.index, issue.instr, cycle, 1, stop - cycle, False))
            lost = cycle + _count(issue.instr) - stop
            if lost > 0:
                timing.mxm_losses.append((stop, issue, k, lost, why))
    return out


def check_mxm(timing):
    """Rules 6, 7, 12 and 13 for every MXM queue of ``timing`` (a :class:`Timing`).

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
        yield from _check_installs(timing, issues)
    for cycle, issue, k, lost, why in timing.mxm_losses:
        cause = (f"{issue.instr} (issued in cycle {issue.cycle(k)}) loses {lost} of its "
                 f"{_count(issue.instr)} elements to {why}")
        yield error_at(timing, issue, RULE_MXM_SEQ, cycle, cause, k)


def _check_weights_first(timing, q, issues):
    """Rule 6: no ``abc p`` or ``acc p`` of MXM queue ``q`` (``issues``) before its first
    ``iw p``."""
    name = timing.slices[q].name
    first_iw = {}
    for issue in issues:
        if issue.instr.op.mnemonic == "iw":
            plane = issue.instr["p"]
            first_iw[plane] = min(first_iw.get(plane, issue.t0), issue.t0)
    for issue in issues:
        if issue.instr.op.mnemonic not in ("abc", "acc"):
            continue
        plane = issue.instr["p"]
        installed = first_iw.get(plane)
        if installed is None or issue.t0 < installed:
            when = (f"before the first iw {plane} of {name} (cycle {installed})"
                    if installed is not None else f"and {name} has no iw {plane}")
            cause = (f"MXM used before weights are installed: {issue.instr} issues in "
                     f"cycle {issue.t0} {when}")
            yield error_at(timing, issue, RULE_MXM_WEIGHTS, issue.t0, cause, 0)


def _check_acc_after_abc(timing, issues, span):
    """Rule 7: no ``acc p`` element reads accumulator ``a`` 1..span-1 cycles after an
    ``abc p`` element of ``a``. At most one error per ``acc`` sequence."""
    if span < 2:
        return
    abcs = [issue for issue in issues if issue.instr.op.mnemonic == "abc"]
    for acc in (issue for issue in issues if issue.instr.op.mnemonic == "acc"):
        found = None
        for abc in abcs:
            if (abc.instr["p"] != acc.instr["p"] or abc.t0 > acc.last
                    or abc.last + span - 1 < acc.t0):
                continue
            hit = _early_read(abc, acc, span)
            if hit is not None and (found is None or hit[0] < found[0]):
                found = (*hit, abc)
        if found is not None:
            u, gap, a, abc = found
            cause = (f"{acc.instr} reads accumulator {a} of plane {acc.instr['p']} in cycle "
                     f"{u}, {gap} cycle(s) after the element of {abc.instr} that writes it "
                     f"(cycle {u - gap}, {describe(timing, abc)}), before it lands; read it at "
                     f"least {span} cycles after")
            yield error_at(timing, acc, RULE_MXM_ACC, u, cause, u - acc.t0)


def _early_read(abc, acc, span):
    """The earliest ``(cycle, gap, accumulator)`` at which an element of ``acc`` reads an
    accumulator 1..span-1 cycles after an element of ``abc`` wrote it, or None. Element ``e``
    of ``abc`` writes ``a_b + e`` in cycle ``t_b + e``; element ``f`` of ``acc`` reads
    ``a_c + f`` in ``t_c + f``: the same accumulator when ``f = e + a_b - a_c``, at a gap of
    ``t_c - t_b + a_b - a_c`` for every such pair."""
    delta = abc.instr["acc"] - acc.instr["acc"]
    gap = acc.t0 - abc.t0 + delta
    if not 1 <= gap < span:
        return None
    first = max(0, -delta)                      # the first element e with f = e + delta >= 0
    if first >= min(abc.n, acc.n - delta):
        return None
    return acc.t0 + first + delta, gap, abc.instr["acc"] + first


def _check_installs(timing, issues):
    """Rule 13: no ``iw p`` in a cycle in which an element of a load sequence writes ``p``."""
    loads = [issue for issue in issues if issue.instr.op.mnemonic == "lw"]
    for iw in (issue for issue in issues if issue.instr.op.mnemonic == "iw"):
        plane = iw.instr["p"]
        for k in range(iw.n):
            t = iw.cycle(k)
            load = next((lw for lw in loads if lw.instr["p"] == plane and lw.t0 <= t <= lw.last),
                        None)
            if load is not None:
                cause = (f"iw {plane} in cycle {t} installs plane {plane} while element "
                         f"{t - load.t0} of {describe(timing, load)} loads it")
                yield error_at(timing, iw, RULE_MXM_IW, t, cause, k)
                break
