"""The static timing checker: the rules of ``docs/architecture.md`` section 6 that the
programmer must guarantee ("What the compiler or programmer must guarantee").

1. Every stream operand a consumer reads holds a value some producer put there.
2. No stream register is written twice at the end of the same cycle.
3. No MEM slice reads a bank in the cycle in which a write commits to the same bank.

(Rules 4 and 5, ranges, alignment, ``repeat`` and queue depth, are the assembler's.)

And the two MXM rules of section 7a (:func:`_check_mxm`), numbered on:

6. An MXM queue issues no ``abc`` or ``acc`` before its first ``iw`` ("MXM used before weights
   are installed").
7. An ``acc a`` issues at least ``isa.mxm_span`` cycles after every earlier ``abc a`` of its
   queue (else it reads the accumulator before that ``abc`` has landed).

And the sync rule of section 5a (:func:`_check_sync`):

8. Every ``sync`` that a queue reaches is released by a ``notify`` (issue cycles come from
   :func:`opentsp.queue_timing.schedule`, which computes all queues together).

And the MEM sequencer rule of section 6a (:func:`_check_mem_seq`):

9. Every element of a ``sread``/``swrite`` sequence issues: none is lost to a ``read``,
   ``gather``, ``write`` or ``scatter`` of the queue on the same port, to a new
   ``sread``/``swrite`` or to the queue's ``end``. Sequence elements are checked as the plain
   ``read``/``write`` they are (rules 1 to 3, with their addresses); ``gather`` and ``scatter``
   addresses are data, so their bank use cannot be checked.

And the SXM rule of section 7b (:func:`_check_sxm`):

10. A ``permute`` issues after a ``perm_load`` of its queue, and a ``perm_load`` whose table is
    known statically (both bytes read from words holding their ``.data`` or zero) loads a
    permutation of the lanes.

And the instruction fetch rule of section 5b (:func:`_check_fetch`):

11. Every word an ``ifetch`` takes is known statically (lane 0 of words that MEM ``read``s
    deliver and that hold their ``.data``) and is an instruction of the queue; the program
    counter reaches a fetched word no earlier than ``isa.FETCH_LATENCY`` cycles after its fetch;
    no fetch overwrites a word that the queue has still to execute; no queue runs out of words.
    The fetched words extend the queue's program for every other rule (:class:`Timing` schedules
    what is known, decodes the words the reads deliver and schedules again).

How it works
------------
Issues are computed per instruction, not per cycle: a plain instruction issues once, a
``repeat n, d`` at slot ``t`` issues its copies as the arithmetic progression
``t + d - 1 + k*d`` (k = 0..n-1). A value written eastward by position ``p`` at the end of cycle
``w`` is in register ``E[r]`` during cycle ``w + 1 + (r - p)``, so ``cycle - position`` is
constant along its way: its *diagonal*. A consumer at ``q`` reading ``E[q-1]`` in cycle ``t``
sees diagonal ``t - q`` (westward: ``cycle + position``, and ``t + q``). Every producer's writes
are indexed by (direction, stream, diagonal); a read is then a look-up for a writer on its
diagonal upstream of the reader (the nearest one is the value it gets). Repeated producers and
consumers stay progressions and are intersected arithmetically, so a program of 100k cycles
costs work per instruction, not per cycle.
"""

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from opentsp import isa, mem_sequence, queue_timing
from opentsp.firmware.asm import AsmError, Program

__all__ = ["CheckError", "Timing", "check", "check_or_raise"]

#: Progressions with at most this many copies are indexed copy by copy.
_EXPAND = 16
#: Errors of rule 1 that get a hint (the hint costs a scan of the stream's writers).
_MAX_HINTS = 100
#: Rounds of "schedule, decode the fetched words, schedule again" (section 5b).
_MAX_FETCH_PASSES = 64


class CheckError(AsmError):
    """A broken timing rule, located at the offending instruction (one-line message).

    Attributes
    ----------
    rule : int
        The rule of section 6 (1, 2 or 3) or an MXM rule of section 7a (6 or 7, see the
        module's docstring).
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


@dataclass(frozen=True)
class _Issue:
    """An instruction issued ``n`` times, in cycles ``t0 + k*d``."""
    queue: int
    index: int          # index of the instruction in its queue (the repeat, for copies)
    instr: isa.Instr    # what is issued
    t0: int
    d: int
    n: int
    repeat: bool

    def cycle(self, k):
        return self.t0 + k * self.d

    @property
    def last(self):
        return self.t0 + (self.n - 1) * self.d


@dataclass(frozen=True)
class _Prog:
    """Writes on one (direction, stream): diagonals ``first + j*step``, j < count."""
    first: int
    step: int
    count: int
    pos: int
    issue: _Issue

    @property
    def last(self):
        return self.first + (self.count - 1) * self.step


def _ap_intersection(a, d, n, b, e, m):
    """k-values with ``a + k*d == b + j*e``, 0 <= k < n, 0 <= j < m, as (first, step, last).

    Returns None when there is none.
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


class Timing:
    """Issue times, stream writes and reads of a program, indexed for the timing rules.

    Parameters
    ----------
    program : Program or Image
        An assembled program (errors carry source locations) or a bare image.
    """

    def __init__(self, program):
        if isinstance(program, Program):
            self.image, self.locations = program.image, program.locations
        else:
            self.image, self.locations = program, {}
        self.config = self.image.config
        self.slices = isa.queues(self.config)
        self.fetch_locations = getattr(program, "fetch_locations", {})
        # Fetched words (section 5b) are memory data delivered by timed reads: find them by
        # scheduling what is known, decoding what the reads deliver and scheduling again, until
        # nothing changes. Without ifetch this is one pass.
        fetched = [[] for _ in self.image.queues]
        for _ in range(_MAX_FETCH_PASSES):
            self.programs = [list(pre) + [instr for instr, _ in words] + [queue_timing.Stop()]
                             for pre, words in zip(self.image.queues, fetched, strict=True)]
            self._build()
            found, self.fetch_problems = _resolve_fetches(self)
            if found == fetched:
                break
            fetched = found
        else:
            raise RuntimeError("fetched words do not settle")
        self.fetched = fetched
        self.locations = dict(self.locations)
        for q, words in enumerate(fetched):
            for j, (_, origin) in enumerate(words, start=len(self.image.queues[q])):
                if origin is not None:
                    self.locations[(q, j)] = origin

    def _build(self):
        """Schedule ``self.programs`` and index every issue's stream writes."""
        self.issues = []
        self.mem_losses = []        # MEM sequence elements that do not issue (rule 9)
        # Issue cycles of all queues together: a sync waits for other queues' notifies.
        self.schedule = queue_timing.schedule(self.programs, issues=False)
        for q, instrs in enumerate(self.programs):
            self.issues.extend(_expand_mem(self, q, self._issues(q, instrs,
                                                                 self.schedule[q].starts)))
        self.singles = defaultdict(lambda: defaultdict(list))   # (dir, s) -> diag -> [(p, ..)]
        self.progs = defaultdict(list)                          # (dir, s) -> [_Prog]
        for issue in self.issues:
            self._index_writes(issue)
        for key in self.progs:
            self.progs[key].sort(key=lambda prog: prog.first)
        self.prog_firsts = {key: [prog.first for prog in progs]
                            for key, progs in self.progs.items()}

    # Issue times ------------------------------------------------------------------------

    @staticmethod
    def _issues(q, instrs, starts):
        """Issues of queue ``q``; ``starts`` from :func:`opentsp.queue_timing.schedule`."""
        last = None
        for i, instr in enumerate(instrs):
            slot = starts[i]
            # slot None: after an unreleased sync
            if isinstance(instr, queue_timing.Stop) or slot is None:
                break
            name = instr.op.mnemonic
            if name == "end":
                break
            if name in ("sync", "notify"):
                continue
            if name == "ifetch":        # reads its group in each of its n slots; issues nothing
                yield _Issue(q, i, instr, slot, 1, instr["n"], False)
                continue
            if name == "repeat":
                n, d = instr["n"], instr["d"]
                if last is not None:
                    yield _Issue(q, i, last, slot + d - 1, d, n, True)
            elif name != "nop":
                yield _Issue(q, i, instr, slot, 1, 1, False)
                last = instr

    def position(self, q):
        return self.slices[q].position

    @staticmethod
    def _sign(direction):
        return -1 if direction == isa.Dir.E else 1

    def _index_writes(self, issue):
        op = issue.instr.op
        for name in op.writes:
            direction, ids = issue.instr.group(name)
            p = self.position(issue.queue)
            first = issue.t0 + isa.latency(op, self.config) + self._sign(direction) * p
            for s in ids:
                if issue.n <= _EXPAND:
                    bucket = self.singles[(direction, s)]
                    for k in range(issue.n):
                        bucket[first + k * issue.d].append((p, issue, k))
                else:
                    self.progs[(direction, s)].append(_Prog(first, issue.d, issue.n, p, issue))

    # Look-ups ---------------------------------------------------------------------------

    @staticmethod
    def _upstream(direction, p, q):
        return p < q if direction == isa.Dir.E else p > q

    def _nearer(self, direction, p, best):
        return best is None or (p > best if direction == isa.Dir.E else p < best)

    def _writer_at(self, direction, s, diag, q):
        """The nearest upstream writer (pos, issue, copy) on ``diag``, or None."""
        best = None
        for p, issue, k in self.singles.get((direction, s), {}).get(diag, ()):
            if self._upstream(direction, p, q) and (best is None
                                                    or self._nearer(direction, p, best[0])):
                best = (p, issue, k)
        key = (direction, s)
        if key in self.progs:
            progs = self.progs[key]
            stop = bisect.bisect_right(self.prog_firsts[key], diag)
            for prog in progs[:stop]:
                if (prog.last >= diag and (diag - prog.first) % prog.step == 0
                        and self._upstream(direction, prog.pos, q)
                        and (best is None or self._nearer(direction, prog.pos, best[0]))):
                    best = (prog.pos, prog.issue, (diag - prog.first) // prog.step)
        return best

    def _read_diag(self, issue, direction, k):
        q = self.position(issue.queue)
        return issue.cycle(k) + self._sign(direction) * q

    def source(self, queue, index, operand, copy=0, byte=0):
        """Which instruction's value a read sees.

        Parameters
        ----------
        queue, index : int
            The consumer (for a ``repeat`` copy, the ``repeat``'s index).
        operand : str
            The operand field, e.g. ``"a"`` or ``"s"``.
        copy : int
            Which copy of a ``repeat``.
        byte : int
            Which stream of a wide group.

        Returns
        -------
        tuple or None
            ``(queue, index, copy)`` of the producer, or None if no value is there.
        """
        for issue in self.issues:
            if issue.queue == queue and issue.index == index:
                direction, ids = issue.instr.group(operand)
                diag = self._read_diag(issue, direction, copy)
                found = self._writer_at(direction, ids[byte], diag, self.position(queue))
                if found is None:
                    return None
                _, producer, k = found
                return (producer.queue, producer.index, k)
        raise KeyError((queue, index))

    # Rules ------------------------------------------------------------------------------

    def errors(self):
        """Every broken rule, earliest cycle first."""
        found = []
        self._hints = 0
        for issue in self.issues:
            found.extend(self._check_reads(issue))
        found.extend(self._check_double_writes())
        found.extend(self._check_banks())
        found.extend(_check_mxm(self))
        found.extend(_check_sxm(self))
        found.extend(_check_sync(self))
        found.extend(_check_mem_seq(self))
        found.extend(_check_fetch(self))
        found.sort(key=lambda e: (e.cycle, e.loc.line if e.loc else 0, e.queue, e.index))
        return found

    def _error(self, issue, rule, cycle, cause, k=None):
        loc = self.locations.get((issue.queue, issue.index))
        if issue.repeat and k is not None:
            cause += f" (copy {k + 1} of {issue.n} of the repeated {issue.instr})"
        if loc is None:
            cause = f"queue {issue.queue} ({self.slices[issue.queue].name}) instruction " \
                    f"{issue.index}: {cause}"
        return CheckError(loc, cause, rule, cycle, issue.queue, issue.index)

    def _describe(self, issue):
        loc = self.locations.get((issue.queue, issue.index))
        where = f"line {loc.line}" if loc is not None else f"instruction {issue.index}"
        return f"{issue.instr} of {self.slices[issue.queue].name} ({where})"

    def _check_reads(self, issue):
        q = self.position(issue.queue)
        for name in issue.instr.stream_reads:
            direction, ids = issue.instr.group(name)
            for s in ids:
                k = self._first_unread(issue, direction, s, q)
                if k is not None:
                    t = issue.cycle(k)
                    cause = (f"read of {direction.name.lower()}{s} at "
                             f"{self.slices[issue.queue].name} in cycle {t} finds no value: "
                             f"read before its data arrives or after it has passed")
                    self._hints += 1
                    if self._hints <= _MAX_HINTS:
                        cause += self._hint(direction, s, q, t)
                    yield self._error(issue, 1, t, cause, k)
                    break           # one error per operand

    def _first_unread(self, issue, direction, s, q):
        """The first copy k whose read of stream ``s`` finds no value, or None."""
        a = self._read_diag(issue, direction, 0)
        if issue.n == 1:
            return None if self._writer_at(direction, s, a, q) is not None else 0
        d, n = issue.d, issue.n
        last = a + (n - 1) * d
        covers = []
        key = (direction, s)
        if key in self.progs:
            stop = bisect.bisect_right(self.prog_firsts[key], last)
            for prog in self.progs[key][:stop]:
                if prog.last < a or not self._upstream(direction, prog.pos, q):
                    continue
                hit = _ap_intersection(a, d, n, prog.first, prog.step, prog.count)
                if hit is None:
                    continue
                if hit == (0, 1, n - 1):
                    return None
                covers.append(hit)
        singles = self.singles.get(key, {})
        upstream = self._upstream
        for k in range(n):
            diag = a + k * d
            if any(upstream(direction, p, q) for p, _, _ in singles.get(diag, ())):
                continue
            if any(first <= k <= lst and (k - first) % step == 0
                   for first, step, lst in covers):
                continue
            return k
        return None

    def _hint(self, direction, s, q, t):
        """Where the nearest value on this stream passes the reader, as a message suffix."""
        sign = self._sign(direction)
        diag = t + sign * q
        best = None
        for d_, writers in self.singles.get((direction, s), {}).items():
            for p, issue, _ in writers:
                if self._upstream(direction, p, q) and (best is None
                                                        or abs(d_ - diag) < abs(best[0] - diag)):
                    best = (d_, issue)
        for prog in self.progs.get((direction, s), ()):
            if not self._upstream(direction, prog.pos, q):
                continue
            j = min(max(round((diag - prog.first) / prog.step), 0), prog.count - 1)
            d_ = prog.first + j * prog.step
            if best is None or abs(d_ - diag) < abs(best[0] - diag):
                best = (d_, prog.issue)
        if best is None:
            return f"; nothing upstream writes {direction.name.lower()}{s}"
        return (f"; the nearest value, from {self._describe(best[1])}, is readable here in "
                f"cycle {best[0] - sign * q}")

    def _check_double_writes(self):
        registers = defaultdict(list)     # (pos, dir, s) -> [(first_w, step, count, issue)]
        for issue in self.issues:
            op = issue.instr.op
            for name in op.writes:
                direction, ids = issue.instr.group(name)
                for s in ids:
                    registers[(self.position(issue.queue), direction, s)].append(
                        (issue.t0 + isa.latency(op, self.config), issue.d, issue.n, issue))
        for (_, direction, s), writes in registers.items():
            for a, b in _overlapping_pairs(writes):
                hit = _ap_intersection(a[0], a[1], a[2], b[0], b[1], b[2])
                if hit is not None:
                    w = a[0] + hit[0] * a[1]
                    cause = (f"stream register {direction.name.lower()}{s} of "
                             f"{self.slices[a[3].queue].name} is written twice at the end of "
                             f"cycle {w} (also by {self._describe(b[3])})")
                    yield self._error(a[3], 2, w, cause, hit[0])

    def _check_banks(self):
        banks = self.config.mem_banks
        for q, slice_ in enumerate(self.slices):
            if slice_.kind != isa.SliceKind.MEM:
                continue
            reads = defaultdict(list)
            commits = defaultdict(list)
            for issue in self.issues:
                if issue.queue != q:
                    continue
                op = issue.instr.op
                if issue.instr.get("addr") is None:
                    continue
                bank = issue.instr["addr"] % banks
                if op.commit is not None:
                    commits[bank].append((issue.t0 + op.commit, issue.d, issue.n, issue))
                elif op.writes:
                    reads[bank].append((issue.t0, issue.d, issue.n, issue))
            for bank, bank_reads in reads.items():
                for a, b in _overlapping_pairs(bank_reads, commits.get(bank, [])):
                    hit = _ap_intersection(a[0], a[1], a[2], b[0], b[1], b[2])
                    if hit is None:
                        continue
                    u = a[0] + hit[0] * a[1]
                    cause = (f"bank conflict in {slice_.name}: the read of word "
                             f"{a[3].instr['addr']} in cycle {u} and the commit of "
                             f"{self._describe(b[3])} (issued in cycle {u - b[3].instr.op.commit}"
                             f") both use bank {bank}")
                    yield self._error(a[3], 3, u, cause, hit[0])


def _overlapping_pairs(first, second=None):
    """Pairs (x, y) of progressions (start, step, count, ..) whose cycle ranges overlap.

    With one list: pairs within it; with two: pairs across them.
    """
    def span(item):
        return item[0], item[0] + (item[2] - 1) * item[1]

    if second is None:
        items = sorted(first, key=lambda item: item[0])
        active = []
        for item in items:
            lo, hi = span(item)
            active = [other for other in active if span(other)[1] >= lo]
            for other in active:
                yield other, item
            active.append(item)
        return
    others = sorted(second, key=lambda item: item[0])
    starts = [item[0] for item in others]
    for item in first:
        lo, hi = span(item)
        stop = bisect.bisect_right(starts, hi)
        for other in others[:stop]:
            if span(other)[1] >= lo:
                yield item, other


def check(program):
    """Check the timing rules; returns a list of :class:`CheckError`, earliest cycle first.

    Parameters
    ----------
    program : Program or Image
    """
    return Timing(program).errors()


def check_or_raise(program):
    """Raise the first :class:`CheckError` of :func:`check`, if any."""
    errors = check(program)
    if errors:
        raise errors[0]
    return program


# MXM rules (section 7a) --------------------------------------------------------------------------

RULE_MXM_WEIGHTS = 6
RULE_MXM_ACC = 7


def _check_mxm(timing):
    """Rules 6 and 7 for every MXM queue of ``timing`` (a :class:`Timing`)."""
    span = isa.mxm_span(timing.config)
    by_queue = defaultdict(list)
    for issue in timing.issues:
        if issue.instr.op.unit == isa.Unit.MXM:
            by_queue[issue.queue].append(issue)
    for q, issues in by_queue.items():
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
                yield timing._error(issue, RULE_MXM_WEIGHTS, issue.t0, cause, 0)
        yield from _check_acc_after_abc(timing, q, issues, span)


def _check_acc_after_abc(timing, q, issues, span):
    """Rule 7: no ``acc a`` in cycles ``t + 1 .. t + span - 1`` of an ``abc a`` issued in t."""
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
        items = abcs[a]
        # abc issues that can be 1..span-1 cycles before one of this acc's copies
        stop = bisect.bisect_left(starts[a], issue.last)
        for t0, d, n, abc in items[:stop]:
            if t0 + (n - 1) * d + span - 1 < issue.t0:
                continue
            found = None
            for gap in range(1, span):
                hit = _ap_intersection(issue.t0, issue.d, issue.n, t0 + gap, d, n)
                if hit is not None:
                    u = issue.cycle(hit[0])
                    if found is None or u < found[0]:
                        found = (u, gap, hit[0])
            if found is None:
                continue
            u, gap, k = found
            cause = (f"{issue.instr} issues in cycle {u}, {gap} cycle(s) after {abc.instr} "
                     f"(cycle {u - gap}, {timing._describe(abc)}): it reads accumulator {a} "
                     f"before that abc lands; issue it at least {span} cycles after the abc")
            yield timing._error(issue, RULE_MXM_ACC, u, cause, k)
            break           # one error per acc


# Sync and notify (section 5a) -------------------------------------------------------------------

RULE_SYNC = 8


def _check_sync(timing):
    """Rule 8: every ``sync`` a queue reaches is released by a later ``notify`` (else the queue
    waits forever and the run never finishes)."""
    for q, sched in enumerate(timing.schedule):
        for index, arrival, resume in sched.syncs:
            if resume is not None:
                continue
            instr = timing.programs[q][index]
            issue = _Issue(q, index, instr, arrival, 1, 1, False)
            cause = (f"sync of {timing.slices[q].name} reached in cycle {arrival} is never "
                     f"released: no notify issues in cycle {arrival + 1 - isa.NOTIFY_LATENCY} "
                     f"or later while it waits (the queue would wait forever)")
            yield timing._error(issue, RULE_SYNC, arrival, cause)


# MEM sequencers (section 6a) ----------------------------------------------------------------------

RULE_MEM_SEQ = 9


def _expand_mem(timing, q, issues):
    """Issues of queue ``q`` with its ``sread``/``swrite`` sequences expanded into the plain
    ``read``/``write`` elements they issue (:func:`opentsp.mem_sequence.expand`); ``agi``/``ago``
    issue nothing on a port. Other queues' issues pass unchanged."""
    issues = list(issues)
    fetches = [issue for issue in issues if issue.instr.op.mnemonic == "ifetch"]
    issues = [issue for issue in issues if issue.instr.op.mnemonic != "ifetch"]
    if timing.slices[q].kind != isa.SliceKind.MEM or not any(
            issue.instr.op.mnemonic in mem_sequence.MNEMONICS[2:] for issue in issues):
        return issues + fetches
    items = [(issue.cycle(k), (issue, k), issue.instr) for issue in issues
             for k in range(issue.n)]
    ports, losses = mem_sequence.expand(timing.config, items, timing.schedule[q].end)
    timing.mem_losses.extend(losses)
    # one issue per port instruction, located at its instruction (a sequence element at its
    # sread/swrite, a repeat copy at its repeat)
    return [_Issue(q, issue.index, instr, cycle, 1, 1, False)
            for cycle, (issue, _), instr, _ in ports] + fetches


def _check_mem_seq(timing):
    """Rule 9: no element of a MEM sequence is lost (see :func:`_expand_mem`)."""
    for cycle, (issue, k), why in timing.mem_losses:
        starter = issue.instr
        cause = f"{starter} (issued in cycle {issue.cycle(k)}): {why}"
        yield timing._error(issue, RULE_MEM_SEQ, cycle, cause, k)


# SXM rules (section 7b) --------------------------------------------------------------------------

#: A ``permute`` before any ``perm_load`` of its queue, or a ``perm_load`` whose table comes
#: from memory contents known statically (``.data``, or zero) that are not a permutation.
RULE_SXM_PERMUTATION = 10


def _check_sxm(timing):
    """Rule 10 for every SXM queue of ``timing`` (a :class:`Timing`).

    The permute table is data: it is checked where it is known statically, i.e. when both
    bytes of the ``perm_load``'s operand come from ``read`` instructions of words that no
    ``write`` of their MEM slice changes before the read (so they hold their ``.data``, or
    zero). Tables computed on the chip are not checked (docs/architecture.md section 7b).
    """
    lanes = timing.config.lanes
    mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(timing.config))}
    for q, slice_ in enumerate(timing.slices):
        if slice_.kind != isa.SliceKind.SXM:
            continue
        issues = [i for i in timing.issues if i.queue == q]
        loads = [i.t0 for i in issues if i.instr.op.mnemonic == "perm_load"]
        first_load = min(loads, default=None)
        for issue in issues:
            name = issue.instr.op.mnemonic
            if name == "permute" and (first_load is None or issue.t0 < first_load):
                cause = (f"permute in cycle {issue.t0} before any perm_load of {slice_.name}: "
                         f"its table is all zeros, not a permutation of lanes 0..{lanes - 1}")
                yield timing._error(issue, RULE_SXM_PERMUTATION, issue.t0, cause, 0)
            elif name == "perm_load":
                for k in range(min(issue.n, _EXPAND)):
                    found = _static_table(timing, issue, k, mem_index)
                    if found is None:
                        continue
                    table, origin = found
                    if not isa.is_permutation(table, lanes):
                        cause = (f"perm_load in cycle {issue.cycle(k)} loads {origin}, which is "
                                 f"not a permutation of lanes 0..{lanes - 1}: "
                                 f"{_not_permutation(table, lanes)}")
                        yield timing._error(issue, RULE_SXM_PERMUTATION, issue.cycle(k),
                                            cause, k)
                        break


def _static_table(timing, issue, k, mem_index):
    """The table copy ``k`` of a ``perm_load`` loads, if memory contents known statically give
    it: (entries, description), else None."""
    direction, ids = issue.instr.group("s")
    q = timing.position(issue.queue)
    diag = timing._read_diag(issue, direction, k)
    planes, words = [], []
    for s in ids:
        found = timing._writer_at(direction, s, diag, q)
        if found is None:
            return None
        _, producer, copy = found
        if producer.instr.op.mnemonic != "read":
            return None
        mem_slice = timing.slices[producer.queue]
        addr = producer.instr["addr"] % timing.config.mem_words
        read_cycle = producer.cycle(copy)
        for other in timing.issues:
            commit = other.instr.op.commit
            if other.queue != producer.queue or commit is None or other.t0 + commit >= read_cycle:
                continue
            target = other.instr.get("addr")
            if target is None or target % timing.config.mem_words == addr:
                return None         # written on the chip (or at a data address): not static
        word = timing.image.data.get((mem_index[mem_slice.name], addr))
        planes.append(np.zeros(timing.config.lanes, dtype=np.int64) if word is None
                      else np.asarray(word, dtype=np.int64))
        words.append(f"{mem_slice.name} word {addr}")
    table = sum(plane << (8 * i) for i, plane in enumerate(planes))
    return table, "the table in " + " and ".join(words)


def _not_permutation(table, lanes):
    for i, entry in enumerate(table):
        if entry >= lanes:
            return f"entry {i} is {int(entry)}"
    values, counts = np.unique(table, return_counts=True)
    twice = int(values[counts > 1][0])
    return f"lane {twice} appears {int(counts[values == twice][0])} times"


# Instruction fetch (section 5b) ------------------------------------------------------------------

#: A fetched word that cannot be known statically or is not an instruction of its queue, a word
#: executed before it has been fetched, a fetch that overwrites a word still to be executed, or a
#: queue that runs out of words.
RULE_FETCH = 11


def _static_word(timing, producer, copy, mem_index):
    """``(mem, addr)`` of the word that copy ``copy`` of ``producer`` puts on its stream, if it
    is a MEM ``read`` of a word that still holds its ``.data`` (or zero); else why not."""
    if producer.instr.op.mnemonic != "read":
        return (f"comes from {timing._describe(producer)}, not from a MEM read of a word that "
                f"holds its .data")
    mem_slice = timing.slices[producer.queue]
    addr = producer.instr["addr"] % timing.config.mem_words
    read_cycle = producer.cycle(copy)
    for other in timing.issues:
        commit = other.instr.op.commit
        if other.queue != producer.queue or commit is None or other.t0 + commit >= read_cycle:
            continue
        target = other.instr.get("addr")
        if target is None or target % timing.config.mem_words == addr:
            return (f"comes from word {addr} of {mem_slice.name}, which may be written on the "
                    f"chip before its read in cycle {read_cycle}")
    return mem_index[mem_slice.name], addr


def _fetched_word(timing, q, instr, cycle, mem_index):
    """The word an ``ifetch`` of queue ``q`` takes in ``cycle``: ``(word, origin, cause)``;
    ``word`` is None when unknown (``cause`` None: no value at all, which rule 1 reports)."""
    direction, ids = instr.group("s")
    pos = timing.position(q)
    diag = cycle + timing._sign(direction) * pos
    word, origin, where = 0, None, []
    for i, s in enumerate(ids):
        found = timing._writer_at(direction, s, diag, pos)
        if found is None:
            return None, None, None
        _, producer, copy = found
        source = _static_word(timing, producer, copy, mem_index)
        if isinstance(source, str):
            return None, None, f"byte {i} ({direction.name.lower()}{s}) {source}"
        data = timing.image.data.get(source)
        word |= (0 if data is None else int(data[0])) << (8 * i)
        name = isa.mem_slices(timing.config)[source[0]].name
        where.append(f"{name} word {source[1]}")
        if i == 0:
            origin = timing.fetch_locations.get(source)
    return word, origin, ", ".join(where)


def _resolve_fetches(timing):
    """Every word each queue fetches, in order, as far as it is known statically.

    Returns
    -------
    found : list
        Per queue, ``[(Instr, origin Loc or None)]`` of its fetched words, up to the first that
        is not known.
    problems : list
        ``(queue, ifetch index, k, cycle, cause)`` for that first unknown word (``cause`` None
        when no value arrives at all: rule 1 reports it).
    """
    mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(timing.config))}
    found, problems = [], []
    for q, sched in enumerate(timing.schedule):
        unit = isa.unit_of(timing.slices[q])
        words = []
        for pc, cycle in sched.fetches:
            instr = timing.programs[q][pc]
            n = instr["n"]
            for k in range(n):
                word, origin, where = _fetched_word(timing, q, instr, cycle + k, mem_index)
                cause = None
                if word is None:
                    cause = where
                else:
                    what = f"word {k + 1} of {n} of {instr} (cycle {cycle + k}), from {where}"
                    try:
                        fetched = isa.decode(word)
                    except isa.EncodingError as error:
                        cause = f"{what} lane 0, is {word:#010x}, not an instruction: {error}"
                    else:
                        if fetched.op.unit not in (isa.Unit.ICU, unit):
                            cause = (f"{what}, is {fetched}, a {fetched.op.unit.name} "
                                     f"instruction, not for the queue of "
                                     f"{timing.slices[q].name}")
                if word is None or cause is not None:
                    problems.append((q, pc, k, cycle + k, cause))
                    break
                words.append((fetched, origin))
            else:
                continue
            break
        found.append(words)
    return found, problems


def _check_fetch(timing):
    """Rule 11 (section 5b): every fetched word is known statically and is an instruction of its
    queue; the program counter reaches a fetched word no earlier than ``isa.FETCH_LATENCY``
    cycles after its fetch; a fetch never overwrites a word the queue has still to execute (the
    fill pointer stays less than ``queue_depth`` words ahead); a queue never runs out of
    words."""
    depth = timing.config.queue_depth
    late = isa.FETCH_LATENCY
    for q, sched in enumerate(timing.schedule):
        program = timing.programs[q]
        name = timing.slices[q].name
        pre = len(timing.image.queues[q])

        def ifetch(pc, cycle, q=q, program=program):
            return _Issue(q, pc, program[pc], cycle, 1, program[pc]["n"], False)

        problem = False
        for q2, pc, k, cycle, cause in timing.fetch_problems:
            if q2 == q:
                problem = True
                if cause is not None:
                    yield timing._error(ifetch(pc, cycle - k), RULE_FETCH, cycle,
                                        f"fetched word not known statically: {cause}")
        fetch_cycle = {}
        j = pre
        for pc, cycle in sched.fetches:
            for k in range(program[pc]["n"]):
                fetch_cycle[j] = (cycle + k, pc, k)
                j += 1
        for j in range(pre, len(program) - 1):
            start = sched.starts[j]
            if start is None:
                break
            fetched, pc, _ = fetch_cycle[j]
            if start < fetched + late:
                where = timing._describe(ifetch(pc, sched.starts[pc]))
                cause = (f"{program[j]} (word {j} of the queue of {name}) is reached in cycle "
                         f"{start} but fetched in cycle {fetched} by {where}: a fetched word "
                         f"executes from cycle fetch + {late} on")
                yield timing._error(_Issue(q, j, program[j], start, 1, 1, False), RULE_FETCH,
                                    start, cause)
                break
        for j, (fetched, pc, k) in sorted(fetch_cycle.items()):
            old = j - depth
            if old < 0:
                continue
            start = sched.starts[old]
            if program[old].op.mnemonic == "end":
                leave = None if start is None else start + 1
            else:
                leave = sched.starts[old + 1]
            if leave is None or leave > fetched + late:
                until = "is never finished" if leave is None else f"runs until cycle {leave - 1}"
                cause = (f"word {k + 1} of this ifetch (cycle {fetched}, word {j}) overwrites "
                         f"queue index {j % depth}, whose word {old} ({program[old]}) {until}: "
                         f"the fill pointer may be at most queue_depth {depth} words ahead of "
                         f"the program counter (the word must be done by cycle "
                         f"{fetched + late - 1})")
                yield timing._error(ifetch(pc, fetched - k), RULE_FETCH, fetched, cause)
                break
        if sched.stopped is not None and not problem:
            index, cycle = sched.stopped
            cause = (f"the queue of {name} runs out of words: word {index} (cycle {cycle}) is "
                     f"neither preloaded nor fetched by an ifetch; a queue ends with 'end'")
            last = max(index - 1, 0)
            yield timing._error(_Issue(q, last, program[last], cycle, 1, 1, False), RULE_FETCH,
                                cycle, cause)
