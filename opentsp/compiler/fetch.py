"""Instruction fetch: queues longer than ``queue_depth`` stream their program from memory.

A queue whose program (after :mod:`~opentsp.compiler.sequences`) needs more words than its
``queue_depth`` preloads its first ``queue_depth`` words and brings the rest with ``ifetch s, n``
(docs/architecture.md section 5b), placed in its idle slots: ``n`` slots in which the queue
appends one word per cycle, lane 0 of the int32 group ``s`` at its input. The fetched words
are data: int32 words (byte ``i`` in the ``i``-th of four MEM slices upstream, the other lanes
zero) at consecutive addresses, read one per cycle by each slice so that the four bytes of word
``k`` reach the queue together in slot ``t + k`` of an ``ifetch`` issued in ``t``; those reads
take the scheduler's resources (slots, banks, stream registers) like any operand's and become
one ``sread`` sequence per slice and block.

Nothing the schedule placed moves: an ``ifetch`` fills slots the queue had idle, so the cycle
count is unchanged. The rules it keeps (section 5b), for the ``ifetch`` at program index ``i``
fetching indices ``f .. f + n - 1`` in cycles ``t .. t + n - 1``:

* every fetched word executes at least ``FETCH_LATENCY`` cycles after its fetch: ``f > i``
  (the words come after the ``ifetch``) and ``n >= 2`` or ``f >= i + 2`` give it;
* no fetch overwrites a word still to run: ``f + n - 1 < i + queue_depth`` (the fill pointer
  stays less than ``queue_depth`` words ahead of the ``ifetch``);
* a word is fetched before the queue reaches it; else the queue does not fit, and the
  compiler says so.

The MEM slices that feed a queue must not need fetching themselves (their own programs grow
by the ``sread`` sequences); the compiler raises :class:`CompileError` when none can.
"""

from dataclasses import dataclass, field

from opentsp import isa
from opentsp.compiler.graph import CompileError
from opentsp.compiler.resources import Txn
from opentsp.compiler.sequences import queue_words
from opentsp.isa import Dir, StreamRef

__all__ = ["Block", "FetchedQueue", "plan_fetch", "needs_fetch"]

_MAX_NOP = (1 << isa.COUNT_BITS) - 1
#: Positions in an idle gap where an ifetch is tried before the gap is left to nop.
_TRIES_PER_GAP = 8
#: The fewest words an ifetch brings (but for the program's last ones).
MIN_BLOCK = 4
#: Words a block adds to each slice that feeds it, at most: agi, sread and the nops that split
#: the idle run they land in.
_WORDS_PER_SOURCE = 4
#: Source sets tried per direction: the least busy four, then the next four, ...
_SOURCE_SETS = 3


@dataclass
class Block:
    """One ``ifetch``: program words ``first .. first + count - 1`` from ``addr`` on in
    ``mems`` (byte ``i`` in ``mems[i]``)."""
    first: int
    count: int
    mems: tuple
    addr: int


@dataclass
class FetchedQueue:
    """A queue's whole program: ``words[:preload]`` preloaded, the rest fetched by
    ``blocks`` in order. ``words`` are ``(Instr, comment, first slot)``."""
    words: list = field(default_factory=list)
    blocks: list = field(default_factory=list)
    preload: int = 0


def needs_fetch(merged, config):
    return queue_words(merged) > config.queue_depth


def plan_fetch(chip, scheduler, name, merged, avoid, words):
    """The fetched program of queue ``name`` (its merged table ``merged``), with the reads
    that bring its words reserved on ``chip``; ``avoid``: MEM slices that may not feed it;
    ``words``: every queue's words, updated as the fetches add ``sread`` sequences to the
    slices that feed them (which are chosen with the most room left).

    Raises
    ------
    CompileError
        If some word cannot be fetched before the queue reaches it.
    """
    return _Planner(chip, scheduler, name, merged, avoid, words).run()


class _Planner:
    def __init__(self, chip, scheduler, name, merged, avoid, words):
        self.chip, self.scheduler, self.name = chip, scheduler, name
        self.words = words
        self.config = chip.config
        self.depth = self.config.queue_depth
        self.events = sorted(merged.items())
        self.busy = max(c + entry[2] for c, entry in self.events)
        self.avoid = set(avoid) | {name}
        self.out = FetchedQueue(preload=self.depth)
        self.fetched = self.depth       # words in the queue so far (preloaded or fetched)
        self.slot = 0
        # words from event k on (its instruction, the idle slots after it, the end)
        self.suffix = [0] * (len(self.events) + 1)
        self.suffix[-1] = 1
        for k in range(len(self.events) - 1, -1, -1):
            cycle = self.events[k][0]
            after = self.events[k + 1][0] if k + 1 < len(self.events) else self.busy
            self.suffix[k] = 1 + _nops(after - cycle - 1) + self.suffix[k + 1]

    def run(self):
        for k, (cycle, (instr, comment, _)) in enumerate(self.events):
            self._gap(cycle, k)
            self._word(instr, comment)
            self.slot = cycle + 1
        self._gap(self.busy, len(self.events))
        self._word(isa.encode("end"), "")
        words = len(self.out.words)
        if self.fetched != words:
            raise CompileError(f"compiler bug: queue {self.name} fetches {self.fetched} words "
                               f"of its {words}")
        return self.out

    def _word(self, instr, comment):
        index = len(self.out.words)
        if index >= self.fetched:
            raise CompileError(
                f"the program does not fit: the queue of {self.name} needs more than its "
                f"{self.depth} words and no ifetch brings word {index} (cycle {self.slot}) "
                f"in time: no idle slots, streams or MEM slices free for it")
        self.out.words.append((instr, comment, self.slot))
        self.slot += instr.slots

    def _gap(self, until, k):
        """Fill the idle slots up to ``until`` (event ``k`` next): ifetch, else nop."""
        while self.slot < until:
            gap = until - self.slot
            index = len(self.out.words)
            room = index + self.depth - self.fetched
            # blocks of MIN_BLOCK words or more (each costs an ifetch word here and words in
            # the slices that feed it), as soon as the ring has room for one
            worth = room >= MIN_BLOCK and gap >= MIN_BLOCK
            if worth and self.fetched < index + _nops(gap) + self.suffix[k]:
                for offset in _offsets(gap):
                    block = self._try(offset, until, k)
                    if block is not None:
                        break
                else:
                    self._nop(gap)
                    continue
                continue
            self._nop(gap)

    def _nop(self, slots):
        while slots > 0:
            count = min(slots, _MAX_NOP)
            self._word(isa.encode("nop", count=count), "")
            slots -= count

    def _try(self, offset, until, k):
        """An ifetch ``offset`` slots into the gap ending at ``until``: its block or None."""
        start = self.slot + offset
        room = until - start
        index = len(self.out.words) + _nops(offset)     # the ifetch's own index
        count = min(room, index + self.depth - self.fetched)
        # no more than the program still has, counted as if this were the last fetch
        for _ in range(2):
            total = index + 1 + _nops(room - count) + self.suffix[k]
            count = min(count, total - self.fetched)
        # a fetched word runs FETCH_LATENCY slots after its fetch at the earliest
        if count < MIN_BLOCK and not (count >= 1 and count == total - self.fetched
                                      and self.fetched >= index + isa.FETCH_LATENCY):
            return None     # a short block only to bring the program's last words
        found = self._reserve(start, count)
        if found is None:
            return None
        mems, addr, ref = found
        for mem in mems:
            self.words[mem] += _WORDS_PER_SOURCE
        if offset:
            self._nop(offset)
        block = Block(self.fetched, count, mems, addr)
        self.out.blocks.append(block)
        self._word(isa.encode("ifetch", s=ref, n=count),
                   f"fetch words {self.fetched}..{self.fetched + count - 1}")
        self.fetched += count
        return block

    def _reserve(self, start, count):
        """Reads of ``count`` consecutive words from four slices arriving at the queue in
        cycles ``start ..``: ``(mems, first address, group StreamRef)`` or None."""
        chip = self.chip
        qpos = chip.pos[self.name]
        for direction, sources in self._source_sets(count):
            for group in range(0, self.config.streams, isa.INT32_GROUP):
                txn = Txn(chip)
                addr = _alloc_run(txn, sources, count)
                if addr is not None and all(
                        self.scheduler.read_plane(txn, mem, addr + k, qpos, start + k,
                                                  direction, group + i,
                                                  f"{self.name}: fetched word")
                        for k in range(count) for i, mem in enumerate(sources)):
                    return tuple(sources), addr, StreamRef(direction, group)
                txn.rollback()
        return None

    def _source_sets(self, count):
        """``(direction, four MEM slices)`` to try: the last block's first (its words continue
        there), then per direction the least busy slices upstream."""
        chip = self.chip
        qpos = chip.pos[self.name]
        if self.out.blocks:
            last = self.out.blocks[-1].mems
            if all(_run_start(chip, m, count) is not None
                   and self.words[m] + _WORDS_PER_SOURCE <= self.depth for m in last):
                yield (Dir.E if chip.pos[last[0]] < qpos else Dir.W), list(last)
        for direction in (Dir.E, Dir.W):
            upstream = [m for m in chip.mems if m not in self.avoid
                        and (chip.pos[m] < qpos if direction == Dir.E else chip.pos[m] > qpos)
                        and _run_start(chip, m, count) is not None
                        and self.words[m] + _WORDS_PER_SOURCE <= self.depth]
            upstream.sort(key=lambda m: (self.words[m], abs(chip.pos[m] - qpos)))
            for s in range(_SOURCE_SETS):
                sources = upstream[s * isa.INT32_GROUP:(s + 1) * isa.INT32_GROUP]
                if len(sources) == isa.INT32_GROUP:
                    yield direction, sources


def _offsets(gap):
    """Where in a gap of ``gap`` idle slots an ifetch is tried: its start, then a few later."""
    step = max(1, gap // _TRIES_PER_GAP)
    return range(0, max(1, gap - 1), step)


def _nops(slots):
    return -(-slots // _MAX_NOP) if slots > 0 else 0


def _run_start(chip, mem, count):
    """The first address of ``count`` consecutive free words of ``mem`` (past every bank's
    words in use), or None."""
    banks = chip.config.mem_banks
    base = max(chip.next_word[(mem, b)] for b in range(banks)) * banks
    return base if base + count <= chip.config.mem_words else None


def _alloc_run(txn, mems, count):
    """The same ``count`` consecutive addresses in each of ``mems``, allocated in ``txn``;
    the first, or None."""
    chip = txn.chip
    starts = [_run_start(chip, mem, count) for mem in mems]
    if any(s is None for s in starts):
        return None
    addr = max(starts)
    if addr + count > chip.config.mem_words:
        return None
    banks = chip.config.mem_banks
    for mem in mems:
        for b in range(banks):
            key = (mem, b)
            before = chip.next_word[key]
            chip.next_word[key] = -(-(addr + count - b) // banks)
            txn.undo.append(lambda key=key, before=before: chip.next_word.__setitem__(key,
                                                                                      before))
    return addr
