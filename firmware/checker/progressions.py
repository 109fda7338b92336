"""Issues as arithmetic progressions of cycles, and how two progressions meet.

A plain instruction issues once; a ``repeat n, d`` issues its copies in cycles ``t0 + k*d``
(k = 0..n-1). The timing rules intersect such progressions arithmetically rather than cycle by
cycle, so that a program of 100k cycles costs work per instruction.
"""

import bisect
import math
from dataclasses import dataclass

from opentsp import isa

__all__ = ["EXPAND", "Issue", "WriteRun", "ap_intersection", "overlapping_pairs"]

#: Progressions with at most this many copies are indexed copy by copy.
EXPAND = 16


@dataclass(frozen=True)
class Issue:
    """An instruction issued ``n`` times, in cycles ``t0 + k*d``.

    Attributes
    ----------
    queue : int
        The queue that issues it.
    index : int
        Index of the instruction in its queue (the ``repeat``, for repeated copies).
    instr : isa.Instr
        What is issued.
    t0, d, n : int
        First cycle, step and number of issues.
    repeat : bool
        Whether the issues are the copies of a ``repeat``.
    """

    queue: int
    index: int
    instr: isa.Instr
    t0: int
    d: int
    n: int
    repeat: bool

    def cycle(self, k):
        """The cycle of issue ``k`` (0-based)."""
        return self.t0 + k * self.d

    @property
    def last(self):
        """The cycle of the last issue."""
        return self.t0 + (self.n - 1) * self.d


@dataclass(frozen=True)
class WriteRun:
    """Writes of one issue on one (direction, stream): diagonals ``first + j*step``, j < count.

    Attributes
    ----------
    first, step, count : int
        The progression of diagonals written.
    pos : int
        Position of the writing slice.
    issue : Issue
        The writing issue.
    """

    first: int
    step: int
    count: int
    pos: int
    issue: Issue

    @property
    def last(self):
        """The last diagonal written."""
        return self.first + (self.count - 1) * self.step


def ap_intersection(a, d, n, b, e, m):
    """k-values with ``a + k*d == b + j*e``, 0 <= k < n, 0 <= j < m, as (first, step, last).

    Parameters
    ----------
    a, d, n : int
        Start, step and length of the first progression (the one k indexes).
    b, e, m : int
        Start, step and length of the second.

    Returns
    -------
    tuple or None
        ``(first, step, last)`` of the k-values, or None when there is none.
    """
    d = d if n > 1 else 1
    e = e if m > 1 else 1
    g = math.gcd(d, e)
    if (b - a) % g:
        return None
    modulus = e // g
    k0 = ((b - a) // g * pow(d // g, -1, modulus)) % modulus if modulus > 1 else 0
    lo = max(0, -((a - b) // d))                 # j >= 0
    hi = min(n - 1, (b + (m - 1) * e - a) // d)  # j <= m - 1
    first = lo + (k0 - lo) % modulus
    if first > hi:
        return None
    return first, modulus, first + (hi - first) // modulus * modulus


def _span(item):
    """First and last cycle of a progression ``(start, step, count, ..)``."""
    return item[0], item[0] + (item[2] - 1) * item[1]


def overlapping_pairs(first, second=None):
    """Pairs (x, y) of progressions (start, step, count, ..) whose cycle ranges overlap.

    Parameters
    ----------
    first : list
        Progressions ``(start, step, count, ..)``.
    second : list, optional
        With it, pairs across ``first`` and ``second``; without, pairs within ``first``.

    Yields
    ------
    tuple
        ``(x, y)``; across two lists, x from ``first`` and y from ``second``.
    """
    if second is None:
        yield from _overlapping_within(first)
        return
    others = sorted(second, key=lambda item: item[0])
    starts = [item[0] for item in others]
    for item in first:
        lo, hi = _span(item)
        stop = bisect.bisect_right(starts, hi)
        for other in others[:stop]:
            if _span(other)[1] >= lo:
                yield item, other


def _overlapping_within(items):
    """Pairs of :func:`overlapping_pairs` within one list, the earlier-starting one first."""
    active = []
    for item in sorted(items, key=lambda item: item[0]):
        lo, _ = _span(item)
        active = [other for other in active if _span(other)[1] >= lo]
        for other in active:
            yield other, item
        active.append(item)
