"""The timing model: when every instruction issues, and where its stream writes go.

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
from collections import defaultdict

from opentsp import isa, queue_timing
from opentsp.firmware.asm import Program
from opentsp.firmware.checker.c2c import check_c2c
from opentsp.firmware.checker.fetch import check_fetch, resolve_fetches
from opentsp.firmware.checker.mem import check_banks, check_mem_seq, expand_mem
from opentsp.firmware.checker.mxm import check_mxm, expand_mxm
from opentsp.firmware.checker.progressions import EXPAND, Issue, WriteRun
from opentsp.firmware.checker.streams import check_double_writes, check_reads
from opentsp.firmware.checker.sxm import check_sxm
from opentsp.firmware.checker.sync import check_sync
from opentsp.firmware.checker.types import check_types

__all__ = ["Timing"]

#: Rounds of "schedule, decode the fetched words, schedule again" (section 5b).
_MAX_FETCH_PASSES = 64


class Timing:
    """Issue times, stream writes and reads of a program, indexed for the timing rules.

    Parameters
    ----------
    program : Program or Image
        An assembled program (errors carry source locations) or a bare image.
    deskew : int or None
        The cycle the chip's ``deskew`` releases its queues in (section 7d); default: the
        program's (:attr:`opentsp.firmware.asm.Program.deskew`).

    Attributes
    ----------
    programs : list
        Per queue, its preloaded and fetched instructions, ending in a ``queue_timing.Stop``.
    schedule : list
        Per queue, its :func:`opentsp.queue_timing.schedule` result.
    issues : list of Issue
        Every issue of every queue (MEM sequences expanded into their port instructions).
    fetched : list
        Per queue, ``[(Instr, origin Loc or None)]`` of the words its ``ifetch``es take.
    locations : dict
        ``(queue, index) -> Loc`` of the instructions, fetched ones included.
    """

    def __init__(self, program, deskew=None):
        self.deskew = getattr(program, "deskew", None) if deskew is None else deskew
        if isinstance(program, Program):
            self.image, self.locations = program.image, program.locations
        else:
            self.image, self.locations = program, {}
        self.config = self.image.config
        self.slices = isa.queues(self.config)
        self.fetch_locations = getattr(program, "fetch_locations", {})
        self.fetched = self._settle_fetches()
        self.locations = dict(self.locations)
        for q, words in enumerate(self.fetched):
            for j, (_, origin) in enumerate(words, start=len(self.image.queues[q])):
                if origin is not None:
                    self.locations[(q, j)] = origin

    def _settle_fetches(self):
        """Build the model with every word the queues fetch; returns those words.

        Fetched words (section 5b) are memory data delivered by timed reads: find them by
        scheduling what is known, decoding what the reads deliver and scheduling again, until
        nothing changes. Without ifetch this is one pass.
        """
        fetched = [[] for _ in self.image.queues]
        for _ in range(_MAX_FETCH_PASSES):
            self.programs = [list(pre) + [instr for instr, _ in words] + [queue_timing.Stop()]
                             for pre, words in zip(self.image.queues, fetched, strict=True)]
            self._build()
            found, self.fetch_problems = resolve_fetches(self)
            if found == fetched:
                return fetched
            fetched = found
        raise RuntimeError("fetched words do not settle")

    def _build(self):
        """Schedule ``self.programs`` and index every issue's stream writes."""
        self.issues = []
        self.mem_losses = []        # MEM sequence elements that do not issue (rule 9)
        self.mxm_losses = []        # MXM sequence elements that do not run (rule 12)
        # Issue cycles of all queues together: a sync waits for other queues' notifies.
        self.schedule = queue_timing.schedule(self.programs, issues=False,
                                              deskew=self.deskew)
        for q, instrs in enumerate(self.programs):
            queue_issues = _queue_issues(q, instrs, self.schedule[q].starts)
            self.issues.extend(expand_mxm(self, q, expand_mem(self, q, queue_issues)))
        self.singles = defaultdict(lambda: defaultdict(list))   # (dir, s) -> diag -> [(p, ..)]
        self.progs = defaultdict(list)                          # (dir, s) -> [WriteRun]
        for issue in self.issues:
            self._index_writes(issue)
        for key in self.progs:
            self.progs[key].sort(key=lambda prog: prog.first)
        self.prog_firsts = {key: [prog.first for prog in progs]
                            for key, progs in self.progs.items()}

    def _index_writes(self, issue):
        """Index the stream writes of ``issue``: short ones copy by copy, long ones as runs."""
        op = issue.instr.op
        for name in op.writes:
            direction, ids = issue.instr.group(name, self.config)
            p = self.position(issue.queue)
            first = issue.t0 + isa.latency(op, self.config) + self.sign(direction) * p
            for s in ids:
                if issue.n <= EXPAND:
                    bucket = self.singles[(direction, s)]
                    for k in range(issue.n):
                        bucket[first + k * issue.d].append((p, issue, k))
                else:
                    self.progs[(direction, s)].append(WriteRun(first, issue.d, issue.n, p,
                                                               issue))

    # Geometry ---------------------------------------------------------------------------

    def position(self, q):
        """Position of queue ``q``'s slice on the chip (west to east)."""
        return self.slices[q].position

    @staticmethod
    def sign(direction):
        """How position enters a diagonal: -1 eastward (``cycle - position``), else +1."""
        return -1 if direction == isa.Dir.E else 1

    @staticmethod
    def upstream(direction, p, q):
        """Whether position ``p`` is upstream of position ``q`` for a ``direction`` stream."""
        return p < q if direction == isa.Dir.E else p > q

    @staticmethod
    def _nearer(direction, p, best):
        """Whether position ``p`` is nearer downstream than ``best`` (None: anything is)."""
        return best is None or (p > best if direction == isa.Dir.E else p < best)

    # Look-ups ---------------------------------------------------------------------------

    def writer_at(self, direction, s, diag, q):
        """The nearest writer upstream of position ``q`` on diagonal ``diag`` of stream ``s``.

        Returns
        -------
        tuple or None
            ``(position, issue, copy)`` of the writer, or None.
        """
        best = None
        for p, issue, k in self.singles.get((direction, s), {}).get(diag, ()):
            if self.upstream(direction, p, q) and (best is None
                                                   or self._nearer(direction, p, best[0])):
                best = (p, issue, k)
        key = (direction, s)
        if key in self.progs:
            progs = self.progs[key]
            stop = bisect.bisect_right(self.prog_firsts[key], diag)
            for prog in progs[:stop]:
                if (prog.last >= diag and (diag - prog.first) % prog.step == 0
                        and self.upstream(direction, prog.pos, q)
                        and (best is None or self._nearer(direction, prog.pos, best[0]))):
                    best = (prog.pos, prog.issue, (diag - prog.first) // prog.step)
        return best

    def read_diagonal(self, issue, direction, k):
        """The diagonal that copy ``k`` of ``issue`` reads on a ``direction`` stream."""
        q = self.position(issue.queue)
        return issue.cycle(k) + self.sign(direction) * q

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
                direction, ids = issue.instr.group(operand, self.config)
                diag = self.read_diagonal(issue, direction, copy)
                found = self.writer_at(direction, ids[byte], diag, self.position(queue))
                if found is None:
                    return None
                _, producer, k = found
                return (producer.queue, producer.index, k)
        raise KeyError((queue, index))

    # Rules ------------------------------------------------------------------------------

    def errors(self):
        """Every broken rule, earliest cycle first.

        Returns
        -------
        list of CheckError
        """
        found = list(check_reads(self))
        found.extend(check_double_writes(self))
        found.extend(check_banks(self))
        found.extend(check_mxm(self))
        found.extend(check_sxm(self))
        found.extend(check_sync(self))
        found.extend(check_mem_seq(self))
        found.extend(check_fetch(self))
        found.extend(check_types(self))
        found.extend(check_c2c(self))
        found.sort(key=lambda e: (e.cycle, e.loc.line if e.loc else 0, e.queue, e.index))
        return found


def _queue_issues(q, instrs, starts):
    """Issues of queue ``q``.

    Parameters
    ----------
    q : int
        The queue.
    instrs : list
        Its instructions (preloaded, fetched, then a ``queue_timing.Stop``).
    starts : list
        Slot of each instruction, from :func:`opentsp.queue_timing.schedule` (None after an
        unreleased sync).

    Yields
    ------
    Issue
        ``ifetch``es too: one reads its group in each of its ``n`` slots and issues nothing.
    """
    last = None
    for i, instr in enumerate(instrs):
        slot = starts[i]
        if isinstance(instr, queue_timing.Stop) or slot is None:
            break
        name = instr.op.mnemonic
        if name == "end":
            break
        if name in ("sync", "notify"):
            continue
        if name == "ifetch":
            yield Issue(q, i, instr, slot, 1, instr["n"], False)
            continue
        if name == "repeat":
            n, d = instr["n"], instr["d"]
            if last is not None:
                yield Issue(q, i, last, slot + d - 1, d, n, True)
        elif name != "nop":
            yield Issue(q, i, instr, slot, 1, 1, False)
            last = instr
