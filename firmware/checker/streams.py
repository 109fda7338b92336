"""Stream rules (docs/architecture.md section 6): rule 1, every read finds a value, and rule 2,
no stream register is written twice at the end of one cycle."""

import bisect
from collections import defaultdict

from opentsp import isa
from opentsp.firmware.checker.progressions import ap_intersection, overlapping_pairs
from opentsp.firmware.checker.report import describe, error_at

__all__ = ["RULE_DOUBLE_WRITE", "RULE_READ", "check_double_writes", "check_reads"]

#: A stream operand read where no producer has put a value.
RULE_READ = 1
#: A stream register written twice at the end of the same cycle.
RULE_DOUBLE_WRITE = 2
#: Errors of rule 1 that get a hint (the hint costs a scan of the stream's writers).
_MAX_HINTS = 100


def check_reads(timing):
    """Rule 1 for every issue of ``timing``: at most one error per operand.

    Parameters
    ----------
    timing : Timing
        The checked program.

    Yields
    ------
    CheckError
    """
    hints = 0
    for issue in timing.issues:
        q = timing.position(issue.queue)
        for name in issue.instr.stream_reads:
            direction, ids = issue.instr.group(name, timing.config)
            for s in ids:
                k = _first_unread(timing, issue, direction, s, q)
                if k is None:
                    continue
                t = issue.cycle(k)
                cause = (f"read of {direction.name.lower()}{s} at "
                         f"{timing.slices[issue.queue].name} in cycle {t} finds no value: "
                         f"read before its data arrives or after it has passed")
                hints += 1
                if hints <= _MAX_HINTS:
                    cause += _hint(timing, direction, s, q, t)
                yield error_at(timing, issue, RULE_READ, t, cause, k)
                break


def _first_unread(timing, issue, direction, s, q):
    """The first copy k of ``issue`` whose read of stream ``s`` finds no value, or None.

    Parameters
    ----------
    timing : Timing
        The checked program.
    issue : Issue
        The reader, at position ``q``.
    direction : isa.Dir
        Direction of stream ``s``.
    s, q : int
        The stream and the reader's position.
    """
    a = timing.read_diagonal(issue, direction, 0)
    if issue.n == 1:
        return None if timing.writer_at(direction, s, a, q) is not None else 0
    covers = _covering_runs(timing, issue, direction, s, q)
    if covers is None:
        return None
    singles = timing.singles.get((direction, s), {})
    upstream = timing.upstream
    for k in range(issue.n):
        diag = a + k * issue.d
        if any(upstream(direction, p, q) for p, _, _ in singles.get(diag, ())):
            continue
        if any(first <= k <= lst and (k - first) % step == 0 for first, step, lst in covers):
            continue
        return k
    return None


def _covering_runs(timing, issue, direction, s, q):
    """Which copies of ``issue`` the upstream write runs on stream ``s`` reach.

    Returns
    -------
    list or None
        ``(first, step, last)`` copy progressions, or None when one run reaches every copy.
    """
    a = timing.read_diagonal(issue, direction, 0)
    d, n = issue.d, issue.n
    key = (direction, s)
    covers = []
    if key not in timing.progs:
        return covers
    stop = bisect.bisect_right(timing.prog_firsts[key], a + (n - 1) * d)
    for prog in timing.progs[key][:stop]:
        if prog.last < a or not timing.upstream(direction, prog.pos, q):
            continue
        hit = ap_intersection(a, d, n, prog.first, prog.step, prog.count)
        if hit is None:
            continue
        if hit == (0, 1, n - 1):
            return None
        covers.append(hit)
    return covers


def _hint(timing, direction, s, q, t):
    """Where the nearest value on stream ``s`` passes the reader at ``q``, as a message suffix.

    Parameters
    ----------
    timing : Timing
        The checked program.
    direction : isa.Dir
        Direction of stream ``s``.
    s, q, t : int
        The stream, the reader's position and the cycle of its read.

    Returns
    -------
    str
    """
    sign = timing.sign(direction)
    diag = t + sign * q
    best = None
    for d_, writers in timing.singles.get((direction, s), {}).items():
        for p, issue, _ in writers:
            if timing.upstream(direction, p, q) and (best is None
                                                     or abs(d_ - diag) < abs(best[0] - diag)):
                best = (d_, issue)
    for prog in timing.progs.get((direction, s), ()):
        if not timing.upstream(direction, prog.pos, q):
            continue
        j = min(max(round((diag - prog.first) / prog.step), 0), prog.count - 1)
        d_ = prog.first + j * prog.step
        if best is None or abs(d_ - diag) < abs(best[0] - diag):
            best = (d_, prog.issue)
    if best is None:
        return f"; nothing upstream writes {direction.name.lower()}{s}"
    return (f"; the nearest value, from {describe(timing, best[1])}, is readable here in "
            f"cycle {best[0] - sign * q}")


def check_double_writes(timing):
    """Rule 2: no two writes land in one stream register at the end of one cycle.

    Parameters
    ----------
    timing : Timing
        The checked program.

    Yields
    ------
    CheckError
    """
    registers = defaultdict(list)     # (pos, dir, s) -> [(first_w, step, count, issue)]
    for issue in timing.issues:
        op = issue.instr.op
        for name in op.writes:
            direction, ids = issue.instr.group(name, timing.config)
            for s in ids:
                registers[(timing.position(issue.queue), direction, s)].append(
                    (issue.t0 + isa.latency(op, timing.config), issue.d, issue.n, issue))
    for (_, direction, s), writes in registers.items():
        for a, b in overlapping_pairs(writes):
            hit = ap_intersection(a[0], a[1], a[2], b[0], b[1], b[2])
            if hit is not None:
                w = a[0] + hit[0] * a[1]
                cause = (f"stream register {direction.name.lower()}{s} of "
                         f"{timing.slices[a[3].queue].name} is written twice at the end of "
                         f"cycle {w} (also by {describe(timing, b[3])})")
                yield error_at(timing, a[3], RULE_DOUBLE_WRITE, w, cause, hit[0])
