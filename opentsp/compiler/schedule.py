"""The list scheduler: places every instruction of a kernel at the earliest cycle where all the
resources it needs are free (:mod:`opentsp.compiler.resources`).

Placement works on *operations*, each a small bundle of instructions whose cycles are tied to
each other by the timing rules of docs/architecture.md section 6:

* **MXM feed** (``lw`` / ``abc`` in cycle ``c``): the MEM slice holding the vector, ``h`` hops
  away, issues ``read`` in cycle ``c - 1 - h`` onto a stream towards the MXM.
* **Accumulator store** (``acc`` in cycle ``t``): the int32 row (``acc.f32``: the float32
  row of a float16 / bfloat16 matmul) leaves on an aligned group of four streams; four MEM
  slices on one side of the VXM, ``h_i`` hops away, issue ``write`` in cycle ``t + 1 + h_i``
  (commit one cycle later), one byte plane each.
* **VXM chain** (head in cycle ``v``, step ``i`` in ``v + 2 i``, ``isa.VXM_CHAIN_DISTANCE``
  cycles apart): operand ``a`` of the head comes from an ``acc`` issued in ``v - 1 - h``
  (fused matmul) or from memory; every later step takes ``r``, the result of the step before
  (ALU chaining, section 8), and its operand ``b`` from memory; every step's result goes onto
  the same output group, and the last one is captured by MEM slices downstream, ``write`` in
  ``v + 2 (len - 1) + 1 + h``. The VXM slots between a chain's steps are free for another
  chain's, so chains interleave.

Each MXM has a load sequencer and, per plane, a compute and a drain sequencer (ISA v4,
docs/architecture.md section 7a): its ``lw`` elements and each plane's ``abc`` and ``acc``
elements are placed in program order per sequencer, so the next tile's weights load while the
current tile's ``abc`` elements run and the previous unit's accumulators drain. An element in
the cycle after an element of its sequencer that it continues
(the same stream and flags, the next row or accumulator) extends that sequence and needs no
queue slot; any other needs its queue's slot (as does ``iw``). The weight buffers still see
``lw`` of tile k+1 after ``iw`` of tile k, ``iw`` of tile k+1 after its last ``lw`` and no
earlier than the last ``abc`` of tile k, every ``abc`` after its ``iw``; an ``acc`` reads its
accumulator ``span`` cycles after its last ``abc`` and no later than the ``abc`` that restarts
it. MEM and VXM instructions go into any free slot.
"""

from collections import defaultdict
from dataclasses import dataclass

from opentsp import isa
from opentsp.compiler import plan
from opentsp.compiler.graph import CompileError
from opentsp.compiler.plan import DTYPE_CODES, Copy, Step, Store, matmul_units
from opentsp.compiler.resources import ANY_BANK, Txn, path_registers, stream_key
from opentsp.compiler.sequences import MAX_SEQUENCE, continues, fields
from opentsp.isa import Dir, StreamRef

__all__ = ["Scheduler"]

#: Operand b of a pass-through step (``or a, a``): the same group as operand a.
_SAME = "=a"
#: Cycles a placement may slide before the scheduler gives up (a resource that never frees).
_MAX_SLIDE = 200_000
#: The MXM's instructions (``isa.OPS_BY_NAME``) for a matmul of each operand type: int8 (int32
#: accumulators), or the floating-point mode (exact wide accumulators, rounded once to f32).
MXM_OPS = {"int8": {"lw": "lw", "abc": "abc", "acc": "acc"},
           "float16": {"lw": "lw.f16", "abc": "abc.f16", "acc": "acc.f32"},
           "bfloat16": {"lw": "lw.bf16", "abc": "abc.bf16", "acc": "acc.f32"}}


def _key(mxm, kind, plane):
    """The sequencer (or ``iw`` stream) of ``kind`` on ``mxm``: one load sequencer per MXM,
    the compute and drain sequencers and the installs per plane."""
    return (mxm, kind, None if kind == "lw" else plane)


class Scheduler:
    """Schedules kernels onto a :class:`~opentsp.compiler.resources.ChipResources`.

    Parameters
    ----------
    chip : ChipResources
    stores : dict
        ``name -> Store`` of everything placed so far; kernels add their results.
    loaded_rows : iterable of str
        Computed tensors whose rows a matmul loads as weights: with ``R = mxm_load_rows > 1``
        row ``r`` is stored in the ``r mod R``-th of the weight pins (``plan.load_pins``),
        so that the ``R`` columns of an ``lw`` element come from ``R`` slice groups.
    """

    def __init__(self, chip, stores, loaded_rows=()):
        self.chip = chip
        self.config = chip.config
        self.stores = stores
        self.loaded_rows = set(loaded_rows)
        # per (mxm, kind, plane) (lw: plane None, see _key): the cycle of the last one placed
        self.frontier = defaultdict(lambda: -1)
        # per sequencer key: {cycle of an element: cycle of its sequence's start}
        self.elements = defaultdict(dict)
        # per (mxm, plane): {accumulator: cycle of its last acc}; an abc restarting it is later
        self.acc_reads = defaultdict(dict)
        self.span = isa.mxm_span(self.config)
        self.mac_ops = 0

    # Building blocks ------------------------------------------------------------------------

    def read_plane(self, txn, mem, addr, dst_pos, arrive, direction, stream, comment):
        """Reserve a ``read`` of ``mem``'s word ``addr`` onto ``stream`` that is at the input
        of the slice at ``dst_pos`` in cycle ``arrive`` (its slot, bank and registers); False
        if any is taken."""
        chip = self.chip
        src = chip.pos[mem]
        rc = arrive - 1 - abs(src - dst_pos)
        instr = isa.encode("read", s=StreamRef(direction, stream), addr=addr)
        return (txn.slot(mem, rc, instr, comment)
                and txn.read_bank(mem, rc, addr % self.config.mem_banks)
                and txn.stream(direction, stream, stream_key(direction, rc + 1, src),
                               *path_registers(direction, src, dst_pos)))

    def read_group(self, txn, copies, dst_pos, arrive, width, comment):
        """Reserve reads that bring one copy of a vector to ``dst_pos`` in cycle ``arrive``;
        returns the operand's :class:`StreamRef` or None."""
        chip = self.chip
        streams = self.config.streams
        for copy in sorted(copies, key=lambda c: abs(chip.pos[c.planes[0][0]] - dst_pos)):
            positions = [chip.pos[mem] for mem, _ in copy.planes]
            if all(p < dst_pos for p in positions):
                direction = Dir.E
            elif all(p > dst_pos for p in positions):
                direction = Dir.W
            else:
                continue
            if any(arrive - 1 - abs(p - dst_pos) < copy.ready for p in positions):
                continue
            if any(arrive - 1 - abs(p - dst_pos) in chip.slots[mem]
                   for p, (mem, _) in zip(positions, copy.planes, strict=True)):
                continue
            for g in range(0, streams, width):
                child = Txn(chip)
                if all(self.read_plane(child, mem, addr, dst_pos, arrive, direction, g + i,
                                        comment)
                       for i, (mem, addr) in enumerate(copy.planes)):
                    txn.undo.extend(child.undo)
                    return StreamRef(direction, g)
                child.rollback()
        return None

    def capture(self, txn, src_pos, written, direction, width, sides, comment, groups=None,
                pins=None):
        """Reserve ``write``s that store a value loaded into register ``src_pos`` at the end of
        cycle ``written`` on an aligned group (of ``width`` streams, towards ``direction``), one
        copy per entry of ``sides`` (each copy's planes on one side of the VXM; with ``pins``,
        ``side -> slices``, in those slices).

        Returns ``(group StreamRef, [Copy, ...])`` or None.
        """
        chip = self.chip
        downstream = [m for m in chip.mems
                      if (chip.pos[m] > src_pos if direction == Dir.E else chip.pos[m] < src_pos)]
        # Nearest first, the weight slices (resources.weight_slices) last: their reads are busy.
        reserved = {m for mems in chip.weight_mems.values() for m in mems}
        downstream.sort(key=lambda m: (m in reserved, abs(chip.pos[m] - src_pos)))
        child = Txn(chip)
        used, picks_of_copy = set(), []
        for side in sides:
            found = self._capture_copy(child, downstream, used, side, src_pos, written, width,
                                       comment, pins)
            if found is None:
                child.rollback()
                full = [m for m in downstream if not chip.words_free(m)]
                if len(full) == len(downstream):
                    raise CompileError(f"{comment}: does not fit: every MEM slice that can "
                                       f"store it is full")
                return None
            used |= {mem for mem, _, _ in found}
            picks_of_copy.append(found)
        group = self._capture_streams(child, src_pos, written, direction, width, picks_of_copy,
                                      groups)
        if group is None:
            child.rollback()
            return None
        txn.undo.extend(child.undo)
        return StreamRef(direction, group), self._fill_writes(picks_of_copy, direction, group,
                                                              comment)

    def _capture_copy(self, txn, downstream, used, side, src_pos, written, width, comment,
                      pins=None):
        """Words for one copy: ``width`` slices of ``downstream`` (not in ``used``; in
        ``pins[side]`` if given), all on ``side``, else all on the other side; ``[(mem, addr,
        write cycle), ...]`` reserved in ``txn``, or None."""
        for option in (side, "E" if side == "W" else "W"):
            trial = Txn(self.chip)
            picks = []
            if pins is not None and option not in pins:
                continue
            allowed = None if pins is None else pins[option]
            for mem in downstream:
                if (self.chip.side_of(mem) != option or mem in used
                        or (allowed is not None and mem not in allowed)):
                    continue
                wc = written + abs(self.chip.pos[mem] - src_pos)
                addr = self.write_word(trial, mem, wc, comment)
                if addr is not None:
                    picks.append((mem, addr, wc))
                if len(picks) == width:
                    txn.undo.extend(trial.undo)
                    return picks
            trial.rollback()
        return None

    def write_word(self, txn, mem, wc, comment):
        """Reserve ``mem``'s slot in cycle ``wc`` for a ``write`` (its instruction comes once
        the stream is known), a fresh word and its bank's commit; the word's address or None."""
        chip = self.chip
        if wc in chip.slots[mem]:
            return None
        for bank in sorted(range(self.config.mem_banks), key=lambda b: chip.next_word[(mem, b)]):
            if (chip.reads[mem].get(wc + 1) in (bank, ANY_BANK)
                    or wc + 1 in chip.commits[mem]):
                continue
            addr = txn.alloc(mem, bank)
            if addr is None:
                continue
            txn.slot(mem, wc, None, comment)
            txn.commit_bank(mem, wc + 1, bank)
            return addr
        return None

    def _capture_streams(self, txn, src_pos, written, direction, width, picks_of_copy, groups):
        """Reserve an aligned group of streams from ``src_pos`` to the farthest write of each
        plane (one of ``groups`` if given); the group's first stream or None."""
        chip = self.chip
        farthest = [max(abs(chip.pos[picks[i][0]] - src_pos) for picks in picks_of_copy)
                    for i in range(width)]
        key = stream_key(direction, written, src_pos)
        step = 1 if direction == Dir.E else -1
        for g in groups if groups is not None else range(0, self.config.streams, width):
            trial = Txn(chip)
            if all(trial.stream(direction, g + i, key,
                                *path_registers(direction, src_pos,
                                                src_pos + step * farthest[i]))
                   for i in range(width)):
                txn.undo.extend(trial.undo)
                return g
            trial.rollback()
        return None

    def _fill_writes(self, picks_of_copy, direction, group, comment):
        """Put the ``write`` instructions into their reserved slots; the stored copies."""
        copies = []
        for picks in picks_of_copy:
            for i, (mem, addr, wc) in enumerate(picks):
                instr = isa.encode("write", addr=addr, s=StreamRef(direction, group + i))
                self.chip.slots[mem][wc] = (instr, comment)
            copies.append(Copy(tuple((mem, addr) for mem, addr, _ in picks),
                               ready=max(wc for _, _, wc in picks) + 2))
        return copies

    def slide(self, start, what):
        """Give up on a placement that slid from ``start`` as far as allowed: CompileError."""
        raise CompileError(f"{what}: no cycle from {start} to {start + _MAX_SLIDE} has the "
                           f"streams, slots and words it needs (memory full?)")

    # MXM operations -------------------------------------------------------------------------

    def _mxm_place(self, txn, key, cycle, instr, comment):
        """Reserve an element (``lw``, ``abc`` or ``acc``, one element) on sequencer ``key`` in
        ``cycle``: as the next element of the sequence running in ``cycle - 1`` if it continues
        it, else as a sequence of its own in the queue's slot. False if neither can be had."""
        mxm, kind, plane = key
        units = self.elements[key]
        if cycle in units:
            return False
        if kind == "acc":
            self._note_acc_read(txn, (mxm, plane), instr["acc"], cycle)
        slots = self.chip.slots[mxm]
        first = units.get(cycle - 1)
        if first is not None:
            head, head_comment = slots[first]
            count = cycle - first
            if (count < MAX_SEQUENCE and head["n"] == count
                    and continues(head, count, instr, self.config)):
                slots[first] = (isa.encode(head.op.name, **{**fields(head), "n": count + 1}),
                                head_comment)
                units[cycle] = first
                txn.undo.append(lambda: (slots.__setitem__(first, (head, head_comment)),
                                         units.pop(cycle)))
                return True
        if not txn.slot(mxm, cycle, instr, comment):
            return False
        units[cycle] = cycle
        txn.undo.append(lambda: units.pop(cycle))
        return True

    def _note_acc_read(self, txn, engine, acc, cycle):
        reads = self.acc_reads[engine]
        before = reads.get(acc)
        reads[acc] = cycle
        txn.undo.append(lambda: reads.__setitem__(acc, before) if before is not None
                        else reads.pop(acc))

    def mxm_feed(self, key, make, copies, width, comment, not_before=0):
        """Place an element ``make(stream)`` (an ``lw`` or ``abc``) on sequencer ``key``, fed
        ``width`` streams from ``copies``, after the previous one of its sequencer and no
        earlier than ``not_before``; its cycle."""
        chip = self.chip
        mpos = chip.pos[key[0]]
        start = c = max(self.frontier[key] + 1, not_before)
        units = self.elements[key]
        while True:
            if c not in units:
                txn = Txn(chip)
                ref = self.read_group(txn, copies, mpos, c, width, comment)
                if ref is not None and self._mxm_place(txn, key, c, make(ref), comment):
                    self.frontier[key] = c
                    return c
                txn.rollback()
            c += 1
            if c - start > _MAX_SLIDE:
                self.slide(start, comment)

    def _loads_plane(self, mxm, cycle, plane):
        """A load element of ``mxm`` writes ``plane`` in ``cycle``."""
        first = self.elements[_key(mxm, "lw", None)].get(cycle)
        return first is not None and self.chip.slots[mxm][first][0]["p"] == plane

    def mxm_install(self, mxm, plane, comment, not_before):
        """Place ``iw plane`` in a free slot of the queue, no earlier than ``not_before`` and in
        no cycle of a load element writing the plane (rule 13); its cycle."""
        key = _key(mxm, "iw", plane)
        c = max(self.frontier[key] + 1, not_before)
        while c in self.chip.slots[mxm] or self._loads_plane(mxm, c, plane):
            c += 1
        Txn(self.chip).slot(mxm, c, isa.encode("iw", p=plane), comment)
        self.frontier[key] = c
        return c

    def acc_store(self, engine, acc, not_before, sides, comment, op="acc"):
        """``op`` (``acc``, or ``acc.f32``) of accumulator ``acc`` of ``engine`` (an MXM plane)
        stored as int32 (f32) copies; returns the copies."""
        chip = self.chip
        mxm, plane = engine
        key = _key(mxm, "acc", plane)
        mpos = chip.pos[mxm]
        direction = Dir.E if mxm == "MXM_W" else Dir.W
        start = t = max(self.frontier[key] + 1, not_before)
        while True:
            if t not in self.elements[key]:
                txn = Txn(chip)
                got = self.capture(txn, mpos, t + isa.MXM_ACC_LATENCY, direction, 4, sides,
                                   comment)
                if got is not None:
                    ref, copies = got
                    instr = isa.encode(op, p=plane, dst=ref, acc=acc, n=1)
                    if self._mxm_place(txn, key, t, instr, comment):
                        self.frontier[key] = t
                        return copies
                txn.rollback()
            t += 1
            if t - start > _MAX_SLIDE:
                self.slide(start, comment)

    def row_pins(self, tensor, r, sides):
        """``side -> slices`` where row ``r`` of ``tensor`` must be stored (None: anywhere):
        for a tensor whose rows a matmul loads (``loaded_rows``) with ``R = mxm_load_rows >
        1``, the ``r mod R``-th group of ``plan.load_pins`` on the first of ``sides`` (an
        ``lw`` element takes its columns from one side), as a constant's column ``r``."""
        rows = self.config.mxm_load_rows
        if rows == 1 or tensor.name not in self.loaded_rows:
            return None
        width = DTYPE_CODES[tensor.dtype].bytes
        pins = plan.load_pins(self.chip, width)
        group = r % rows
        return {sides[0]: set(pins[sides[0]][group * width:(group + 1) * width])}

    def side_by_side(self, store, keys, comment):
        """Copies that bring the vectors ``keys`` of ``store`` (int8, one word each, or 16-bit
        floats, two) to an MXM on consecutive streams in one cycle: per side where every vector
        has a copy, those copies' planes as the planes of one, if they lie in different MEM
        slices."""
        found = []
        for side in ("W", "E"):
            picks = [next((c for c in store.vectors[key]
                           if self.chip.side_of(c.planes[0][0]) == side), None) for key in keys]
            if None in picks:
                continue
            planes = tuple(plane for c in picks for plane in c.planes)
            if len({mem for mem, _ in planes}) == len(planes):
                found.append(Copy(planes, ready=max(c.ready for c in picks)))
        if not found:
            raise CompileError(f"{comment}: the {len(keys)} weight columns of one lw element "
                               f"share a MEM slice (or have no copies on one side)")
        return found

    # VXM chains -----------------------------------------------------------------------------

    def chain(self, head, steps, key, out_width, sides, comment, pins=None):
        """Place a chain; ``head`` is ``("acc", (mxm, plane), acc, not_before, op)`` (``op``:
        ``acc`` or ``acc.f32``) or ``("mem", copies, width)``; ``pins`` (``side -> slices``)
        where the result must be stored, if anywhere. Returns the result's copies."""
        chip = self.chip
        vpos = chip.vxm
        vslots = chip.slots["VXM"]
        if head[0] == "mem" and steps[0].b is not None:
            first = self.stores[steps[0].b].vectors[
                (0, key[1]) if steps[0].broadcast else key]
            if all({m for m, _ in hc.planes} & {m for m, _ in bc.planes}
                   for hc in head[1] for bc in first):
                # Both operands of the first step live in one slice: they can never arrive
                # in one cycle. Pass a through first (or a, a = a) and chain the step after it.
                steps = [Step(steps[0].node, "or", steps[0].dtype, steps[0].dtype, _SAME)] + steps
        length = len(steps)
        b_copies = []
        for step in steps:
            if step.b is None or step.b is _SAME:
                b_copies.append(None)
            else:
                store = self.stores[step.b]
                b_copies.append(store.vectors[(0, key[1]) if step.broadcast else key])
        if head[0] == "acc":
            _, (mxm, plane), acc, not_before, _ = head
            hops = abs(vpos - chip.pos[mxm])
            v = max(self.frontier[_key(mxm, "acc", plane)] + 1, not_before) + 1 + hops
        else:
            copies = head[1]
            v = min(c.ready for c in copies) + 2
        start = v
        out_dirs = [Dir.W, Dir.E] if sides[0] == "W" else [Dir.E, Dir.W]
        wide = any(DTYPE_CODES[s.rtype].bytes == 4 or DTYPE_CODES[s.dtype].bytes == 4
                   for s in steps)
        while True:
            if v - start > _MAX_SLIDE:
                self.slide(start, comment)
            if any(_step_cycle(v, i) in vslots for i in range(length)):
                v += 1
                continue
            # Each copy of a stored head in turn: the nearest may share a slice with operand b.
            heads = [head] if head[0] == "acc" else [("mem", [c], head[2]) for c in head[1]]
            for variant in heads:
                txn = Txn(chip)
                placed = self._try_chain(txn, variant, steps, b_copies, v, out_dirs,
                                         out_width, wide, sides, comment, pins)
                if placed is not None:
                    return placed
                txn.rollback()
            v += 1

    def _try_chain(self, txn, head, steps, b_copies, v, out_dirs, out_width, wide, sides,
                   comment, pins):
        """Reserve everything a chain with its head in cycle ``v`` needs (its operands, its VXM
        slots, its output streams and the capture of its result); the result's copies or None.
        """
        vpos = self.chip.vxm
        if head[0] == "acc":
            placed_acc = self._chain_acc(txn, head, v, comment)
            if placed_acc is None:
                return None
            a_ref, t = placed_acc
        else:
            a_ref = self.read_group(txn, head[1], vpos, v, head[2], comment)
            if a_ref is None:
                return None
        b_refs = []
        for i, copies in enumerate(b_copies):
            if copies is None:
                b_refs.append(a_ref if steps[i].b is _SAME else None)
                continue
            ref = self.read_group(txn, copies, vpos, _step_cycle(v, i),
                                  DTYPE_CODES[steps[i].dtype].bytes, comment)
            if ref is None:
                return None
            b_refs.append(ref)
        for i in range(len(steps)):
            txn.slot("VXM", _step_cycle(v, i), None, comment)
        copies = self._chain_output(txn, steps, v, a_ref, b_refs, out_dirs, out_width, wide,
                                    sides, comment, pins)
        if copies is not None and head[0] == "acc":
            self.frontier[_key(*head[1][:1], "acc", head[1][1])] = t
        return copies

    def _chain_acc(self, txn, head, v, comment):
        """Reserve the ``acc`` (and its group of streams to the VXM) that feeds operand ``a`` of
        a chain's head in cycle ``v``; ``(a StreamRef, acc cycle)`` or None."""
        chip, config = self.chip, self.config
        vpos = chip.vxm
        _, (mxm, plane), acc, not_before, op = head
        drain = _key(mxm, "acc", plane)
        mpos = chip.pos[mxm]
        t = v - 1 - abs(vpos - mpos)
        if t < not_before or t <= self.frontier[drain] or t in self.elements[drain]:
            return None
        a_dir = Dir.E if mxm == "MXM_W" else Dir.W
        key = stream_key(a_dir, t + isa.MXM_ACC_LATENCY, mpos)
        lo, hi = path_registers(a_dir, mpos, vpos)
        for g in range(0, config.streams, 4):
            trial = Txn(chip)
            if all(trial.stream(a_dir, g + i, key, lo, hi) for i in range(4)):
                txn.undo.extend(trial.undo)
                a_ref = StreamRef(a_dir, g)
                if not self._mxm_place(txn, drain, t,
                                       isa.encode(op, p=plane, dst=a_ref, acc=acc, n=1),
                                       comment):
                    return None
                return a_ref, t
            trial.rollback()
        return None

    def _chain_output(self, txn, steps, v, a_ref, b_refs, out_dirs, out_width, wide, sides,
                      comment, pins):
        """Reserve the output group of a chain (every step's result on it, the last captured
        downstream) and put the chain's instructions into their VXM slots; the result's copies
        or None."""
        chip, config = self.chip, self.config
        vpos = chip.vxm
        length = len(steps)
        align = 4 if wide else out_width
        for direction in out_dirs:
            side = "W" if direction == Dir.W else "E"
            for g in range(0, config.streams, align):
                trial = Txn(chip)
                got = (self._intermediate_streams(trial, steps, v, direction, g)
                       and self.capture(trial, vpos,
                                        _step_cycle(v, length - 1) + isa.VXM_LATENCY,
                                        direction, out_width, [side] * len(sides), comment,
                                        groups=[g], pins=pins))
                if not got:
                    trial.rollback()
                    continue
                txn.undo.extend(trial.undo)
                dst = StreamRef(direction, g)
                for i, step in enumerate(steps):
                    instr = _step_instr(step, dst, a_ref if i == 0 else None, b_refs[i])
                    chip.slots["VXM"][_step_cycle(v, i)] = (instr,
                                                            f"{comment} ({step.node.name})")
                return got[1]
        return None

    def _intermediate_streams(self, txn, steps, v, direction, group):
        """Reserve ``group`` at the VXM for the result of every step but the last (only
        ``capture`` takes the last); False if some stream is taken."""
        vpos = self.chip.vxm
        for i, step in enumerate(steps[:-1]):
            width = DTYPE_CODES[step.rtype].bytes
            key = stream_key(direction, _step_cycle(v, i) + isa.VXM_LATENCY, vpos)
            if not all(txn.stream(direction, group + j, key, vpos, vpos) for j in range(width)):
                return False
        return True

    # Kernels --------------------------------------------------------------------------------

    def matmul(self, kernel, sides):
        """Schedule a matmul kernel; returns the Store of its tail.

        The units (:func:`~opentsp.compiler.plan.matmul_units`) go in rounds of one per MXM
        plane; an MXM's units in a round go K tile by K tile across its planes, so that every
        plane computes while the MXM's shared load sequencer loads the next tile of each plane
        in turn."""
        node = kernel.matmul
        x, w = node.inputs
        units = matmul_units(node, self.config)
        tail = kernel.tail
        job = _Matmul(node, kernel, self.stores[x.name], self.stores[w.name + "@w"],
                      Store(tail.name, tail.dtype, "rows"), sides, MXM_OPS[x.dtype])
        self.mac_ops += x.shape[0] * x.shape[1] * w.shape[1]
        per_round = len(plan.engines(self.config))
        pending = {}        # engine -> (unit, last abc per accumulator) still to drain
        for first in range(0, len(units.units), per_round):
            group = [(unit, {}) for unit in units.units[first:first + per_round]]
            for mxm in ("MXM_W", "MXM_E"):
                planes = [(unit, last_abc) for unit, last_abc in group if unit[2] == mxm]
                for kb in range(units.kt):
                    for unit, last_abc in planes:
                        self._matmul_tile(job, unit, kb, last_abc, pending)
            pending.update({tuple(unit[2:]): (unit, last_abc) for unit, last_abc in group})
        for unit, last_abc in pending.values():
            for a in range(len(unit[0])):
                self._drain(job, unit, last_abc, a)
        return job.out

    def _matmul_tile(self, job, unit, kb, last_abc, pending):
        """K tile ``kb`` of ``unit`` on its plane: the weight loads (``lw`` elements of
        ``mxm_load_rows`` columns, after the plane's previous ``iw``), the ``iw`` (after the
        loads and no earlier than the plane's last ``abc``), then one ``abc`` per row. On the
        first tile, the previous unit's accumulators on this plane drain interleaved with the
        ``abc``s (``acc a`` just before the ``abc`` that restarts accumulator ``a``), so the MEM
        slices capturing results and those feeding the MXM share the cycles."""
        config, node = self.config, job.node
        x, w = node.inputs
        rows, nb, mxm, plane = unit
        size, per = config.mxm_size, config.mxm_load_rows
        lw_op, abc_op = job.ops["lw"], job.ops["abc"]
        ncols = plan.block_columns(size, w.shape[1], nb)
        ks = f"{kb * size}..{min((kb + 1) * size, x.shape[1]) - 1}"
        load_key = _key(mxm, "lw", plane)
        for e in range(plan.load_columns(config, ncols) // per):
            label = f"{node.name}: lw {w.name}[{ks}, {nb * size + e * per}]"
            keys = [(kb, nb, e * per + r) for r in range(per)]
            copies = (job.weights.vectors[keys[0]] if per == 1
                      else self.side_by_side(job.weights, keys, label))
            self.mxm_feed(load_key, lambda ref, row=e * per: isa.encode(
                lw_op, p=plane, row=row, s=ref, n=1), copies, per * job.weights.width, label,
                not_before=self.frontier[_key(mxm, "iw", plane)] + 1)
        installed = self.mxm_install(
            mxm, plane, f"{node.name}: iw {w.name}[{ks}, {_columns(nb, size, ncols)}]",
            max(self.frontier[load_key] + 1, self.frontier[_key(mxm, "abc", plane)]))
        previous = pending.pop((mxm, plane), None) if kb == 0 else None
        drains = len(previous[0][0]) if previous else 0
        for a in range(max(len(rows), drains)):
            if a < drains:
                self._drain(job, *previous, a)
            if a < len(rows):
                # after its iw, and no earlier than any acc of the accumulator it restarts
                restart = max(installed + 1, self.acc_reads[mxm, plane].get(a, -1))
                last_abc[a] = self.mxm_feed(
                    _key(mxm, "abc", plane), lambda ref, a=a: isa.encode(
                        abc_op, p=plane, acc=a, s=ref, add=int(kb > 0), n=1),
                    job.x.vectors[(rows[a], kb)], job.x.width,
                    f"{node.name}: abc {x.name}[{rows[a]}, {ks}]", not_before=restart)

    def _drain(self, job, unit, last_abc, a):
        """Accumulator ``a`` of ``unit`` (row ``rows[a]``) out of its plane, ``span`` cycles
        after its last ``abc``: through the kernel's VXM chain, or stored as int32."""
        rows, nb, mxm, plane = unit
        node, kernel = job.node, job.kernel
        size = self.config.mxm_size
        n_out = node.inputs[1].shape[1]
        r = rows[a]
        not_before = last_abc[a] + self.span
        label = f"{kernel.tail.name}[{r}, {_columns(nb, size, min(size, n_out - nb * size))}]"
        if kernel.steps:
            names = "+".join(dict.fromkeys(s.node.name for s in kernel.steps))
            out_width = DTYPE_CODES[kernel.tail.dtype].bytes
            job.out.vectors[(r, nb)] = self.chain(
                ("acc", (mxm, plane), a, not_before, job.ops["acc"]), kernel.steps, (r, nb),
                out_width, job.sides, f"{node.name}->{names}: {label}",
                self.row_pins(kernel.tail, r, job.sides))
        else:
            # One copy: on the MXM's own side, away from the other MXM's feeding slices.
            where = job.sides if len(job.sides) > 1 else [mxm[-1]]
            job.out.vectors[(r, nb)] = self.acc_store((mxm, plane), a, not_before, where,
                                                      f"{node.name}: acc -> {label}",
                                                      job.ops["acc"])

    def vxm(self, kernel, sides):
        """Schedule a VXM chain kernel reading its head from memory."""
        head = kernel.head
        hs = self.stores[head.name]
        tail = kernel.tail
        out = Store(tail.name, tail.dtype, "rows")
        out_width = DTYPE_CODES[tail.dtype].bytes
        names = "+".join(dict.fromkeys(s.node.name for s in kernel.steps))
        size = self.config.mxm_size
        for r in range(tail.rows):
            for cb in range(-(-tail.cols // size)):
                cols = f"{cb * size}..{min((cb + 1) * size, tail.cols) - 1}"
                out.vectors[(r, cb)] = self.chain(
                    ("mem", hs.vectors[(r, cb)], hs.width), kernel.steps, (r, cb), out_width,
                    sides, f"{names}: {tail.name}[{r}, {cols}]", self.row_pins(tail, r, sides))
        return out


@dataclass
class _Matmul:
    """What the parts of a matmul kernel's schedule share: its node and kernel, the stores of
    x (rows), the weights (columns) and the output, the sides of the output's copies, and the
    names of its MXM instructions (:data:`MXM_OPS`)."""
    node: object
    kernel: object
    x: Store
    weights: Store
    out: Store
    sides: list
    ops: dict


def _columns(nb, size, ncols):
    return f"columns {nb * size}..{nb * size + ncols - 1}"


def _step_cycle(v, i):
    """The cycle of step ``i`` of a VXM chain whose head is in cycle ``v``: each step reads the
    result of the one before as ``r``, ``isa.VXM_CHAIN_DISTANCE`` cycles later."""
    return v + i * isa.VXM_CHAIN_DISTANCE


def _step_instr(step, dst, a_ref, b_ref):
    chained = a_ref is None
    fields = {"dtype": DTYPE_CODES[step.dtype], "dst": dst, "a": 0 if chained else a_ref,
              "chain": int(chained)}
    if step.mnemonic == "cvt":
        fields["rtype"] = DTYPE_CODES[step.rtype]
    if step.mnemonic not in isa.VXM_UNARY:
        fields["b"] = b_ref
    return isa.encode(step.mnemonic, **fields)
