"""Scheduling ``read_row`` (MEM ``gather``) and ``write_row`` (MEM ``scatter``).

An indexed tensor (``plan.Indexed``) keeps row ``r`` of every column block and byte plane at
word ``base + r`` of its own MEM slice, all slices on one side of the VXM. So one address
vector reaches every word of a row: the VXM adds the index (an int32 (1, 1) tensor, in every
lane) to the constant ``base`` (``add.i32``), and the sum travels outward on an aligned group
of four streams, whose low two bytes are the address pair of ``gather`` and ``scatter``
(section 6a). It passes slice ``S`` in cycle ``written + hops(S)``, and that is the cycle of
``S``'s ``gather`` or ``scatter``: every word of the row in one sweep.

* ``gather``: each word of the row goes onto a stream (latency 1) and a ``write`` stores it in
  another slice downstream (the planes of a vector in different slices of one side), giving an
  ordinary row-layout (1, C) tensor.
* ``scatter``: each word of the value, read from where the value lives so that it reaches
  ``S`` in the scatter's cycle, replaces word ``base + index`` of ``S`` (commit one cycle
  later). The state's next version is the same words, readable after the last commit.
* A striped state (``G`` slice groups, ``compiler.lower``) is scattered group by group, each
  with the address of its own row (the lowering's ``NAME.at{g}``, the dummy row in all groups
  but one): ``G`` times the sweeps, one row's worth of words changed.

The address is data, so the bank is unknown: no other read or commit of ``S`` shares the
cycle (``resources.ANY_BANK``). A scatter comes after every read of the version it replaces
that is scheduled so far (``plan`` schedules those readers first), and after that version's
own writes.
"""

from opentsp import isa
from opentsp.compiler.graph import CompileError
from opentsp.compiler.plan import Copy, Store
from opentsp.compiler.resources import ANY_BANK, Txn, path_registers, stream_key
from opentsp.isa import Dir, StreamRef

__all__ = ["schedule_indexed"]

#: Cycles a placement may slide before the scheduler gives up.
_MAX_SLIDE = 200_000


def schedule_indexed(sched, kernel):
    """Place ``kernel`` (a ``read_row`` or ``write_row``) on ``sched`` (a
    :class:`~opentsp.compiler.schedule.Scheduler`); the Store of its result.

    A gather sweeps the whole row at once. A scatter sweeps one column block at a time: the
    word for the slice ``h`` hops out must be read ``h`` cycles after the address left the
    VXM, less its own distance, which is the same cycle for every target a source slice
    could feed, so each word of a sweep needs a source slice of its own, and a vector's
    blocks share theirs."""
    node = kernel.indexed
    if node.op == "read_row":
        return _place(_Job(sched, node))
    where = sched.stores[node.inputs[0].name].indexed
    results = [_place(_Job(sched, node, block, group)) for group in range(where.stripes)
               for block in range(len(where.slices))]
    last = max(r for r in results)
    table = sched.stores[node.inputs[0].name]
    out = Store(node.name, node.output.dtype, "indexed", indexed=table.indexed)
    out.vectors = {key: [Copy(copies[0].planes, ready=last)]
                   for key, copies in table.vectors.items()}
    return out


def _place(job):
    """The first VXM cycle from ``job.earliest()`` on that takes the job; its result."""
    v = start = job.earliest()
    while True:
        txn = Txn(job.chip)
        result = job.attempt(txn, v)
        if result is not None:
            return result
        txn.rollback()
        v += 1
        if v - start > _MAX_SLIDE:
            job.sched.slide(start, job.comment)


class _Job:
    """One ``read_row`` or ``write_row``: its stores, words and constraints."""

    def __init__(self, sched, node, block=None, group=0):
        self.sched, self.node = sched, node
        self.chip, self.config = sched.chip, sched.config
        table = node.inputs[0]
        self.table = sched.stores[table.name]
        self.where = self.table.indexed
        # A striped state's write_row: the address of group ``group`` (compiler.lower).
        index = node.inputs[3 + group] if self.where.stripes > 1 else node.inputs[1]
        self.index = sched.stores[index.name]
        self.value = sched.stores[node.inputs[2].name] if node.op == "write_row" else None
        self.out_dir = Dir.W if self.where.side == "W" else Dir.E     # outward from the VXM
        vpos = self.chip.vxm
        self.words = [(cb, p, mem) for cb, mems in enumerate(self.where.groups[group])
                      for p, mem in enumerate(mems) if block in (None, cb)]
        self.hops = {mem: abs(self.chip.pos[mem] - vpos) for _, _, mem in self.words}
        self.comment = (f"{node.name}: {'gather' if node.op == 'read_row' else 'scatter'} "
                        f"{table.name}[{index.name}]")
        # Per slice, its first gather or scatter cycle: fixed while the job is placed (a job is
        # made just before it is placed, and its own reads are of other slices).
        self.not_before = {mem: self._not_before(mem, cb) for cb, _, mem in self.words}
        if self.value is not None:
            for cb, p, mem in self.words:
                if all(c.planes[p][0] == mem for c in self.value.vectors[(0, cb)]):
                    raise CompileError(
                        f"{self.comment}: every copy of the value {node.inputs[2].name!r} has "
                        f"its byte {p} of block {cb} in {mem}, the slice it must be scattered "
                        f"into (a slice cannot send a word to itself)")

    def earliest(self):
        """A first VXM cycle to try: the index and base are ready by then, and the address
        reaches no slice before it may gather or scatter (:attr:`not_before`)."""
        copies = self.index.vectors[(0, 0)] + self.where.base_store.vectors[(0, 0)]
        sweep = max(t - self.hops[mem] for mem, t in self.not_before.items()) - isa.VXM_LATENCY
        return max(min(c.ready for c in copies), 0, sweep - 2) + 2

    def _not_before(self, mem, cb):
        """The first cycle slice ``mem`` may gather or scatter in: after the table version's
        writes and, for a scatter, after every read of that slice scheduled so far."""
        ready = self.table.vectors[(0, cb)][0].ready
        if self.node.op == "write_row":
            reads = self.chip.reads[mem]
            ready = max(ready, max(reads, default=-1))
        return ready

    def attempt(self, txn, v):
        """Everything the operation needs with the address computed in VXM cycle ``v``; its
        result's Store, or None (``txn`` holds what it reserved)."""
        written = v + isa.VXM_LATENCY
        if any(written + self.hops[mem] < self.not_before[mem] for _, _, mem in self.words):
            return None
        group = self._address(txn, v, written)
        if group is None:
            return None
        if self.node.op == "read_row":
            return self._gathers(txn, written, group)
        return self._scatters(txn, written, group)

    def _address(self, txn, v, written):
        """The ``add.i32`` of index and base in VXM cycle ``v``, its sum on an aligned group
        towards the table's slices; the group's StreamRef or None."""
        sched, chip = self.sched, self.chip
        vpos = chip.vxm
        if not txn.slot("VXM", v, None, self.comment):
            return None
        a_ref = sched.read_group(txn, self.index.vectors[(0, 0)], vpos, v, 4, self.comment)
        b_ref = (sched.read_group(txn, self.where.base_store.vectors[(0, 0)], vpos, v, 4,
                                  self.comment) if a_ref is not None else None)
        if b_ref is None:
            return None
        far = max(self.hops.values())
        step = -1 if self.out_dir == Dir.W else 1
        key = stream_key(self.out_dir, written, vpos)
        for g in range(0, self.config.streams, 4):
            trial = Txn(chip)
            ends = [vpos + step * far] * 2 + [vpos] * 2     # the address pair goes out
            if all(trial.stream(self.out_dir, g + i,
                                key, *(path_registers(self.out_dir, vpos, end)
                                       if end != vpos else (vpos, vpos)))
                   for i, end in enumerate(ends)):
                txn.undo.extend(trial.undo)
                group = StreamRef(self.out_dir, g)
                chip.slots["VXM"][v] = (isa.encode("add", dtype=isa.DType.I32, dst=group,
                                                   a=a_ref, b=b_ref, chain=0), self.comment)
                return group
            trial.rollback()
        return None

    def _gathers(self, txn, written, group):
        """Every word of the row gathered and stored: the (1, C) row-layout Store or None."""
        out = Store(self.node.name, self.node.output.dtype, "rows")
        for cb, mems in enumerate(self.where.slices):
            planes, used = [], set()
            for mem in mems:
                t = written + self.hops[mem]
                if not (txn.slot(mem, t, None, self.comment)
                        and txn.read_bank(mem, t, ANY_BANK)):
                    return None
                placed = self._capture(txn, mem, t + isa.MEM_READ_LATENCY, used, planes)
                if placed is None:
                    return None
                dst, (target, addr, wc) = placed
                self.chip.slots[mem][t] = (isa.encode("gather", s=dst, a=group), self.comment)
                self.chip.slots[target][wc] = (isa.encode("write", addr=addr, s=dst),
                                               self.comment)
                planes.append((target, addr, wc))
                used.add(target)
            out.vectors[(0, cb)] = [Copy(tuple((m, a) for m, a, _ in planes),
                                         ready=max(wc for _, _, wc in planes) + 2)]
        return out

    def _capture(self, txn, src, written, used, planes):
        """A ``write`` downstream of ``src`` that stores what it gathers (the value loaded
        into its register at the end of ``written``): in a slice not in ``used``, on the side
        of the vector's other ``planes``; ``(stream, (slice, addr, write cycle))`` or None."""
        chip, sched = self.chip, self.sched
        src_pos = chip.pos[src]
        side = chip.side_of(planes[0][0]) if planes else None
        for direction in (Dir.E, Dir.W):
            step = 1 if direction == Dir.E else -1
            targets = sorted((m for m in chip.mems
                              if (chip.pos[m] - src_pos) * step > 0 and m not in used
                              and (side is None or chip.side_of(m) == side)),
                             key=lambda m: abs(chip.pos[m] - src_pos))
            for target in targets:
                wc = written + abs(chip.pos[target] - src_pos)
                trial = Txn(chip)
                addr = sched.write_word(trial, target, wc, self.comment)
                stream = (self._stream(trial, direction, written, src_pos, chip.pos[target])
                          if addr is not None else None)
                if stream is not None:
                    txn.undo.extend(trial.undo)
                    return stream, (target, addr, wc)
                trial.rollback()
        return None

    def _stream(self, txn, direction, written, src_pos, dst_pos):
        """A stream from the register at ``src_pos`` (loaded at the end of ``written``) to
        the slice at ``dst_pos``; its StreamRef or None."""
        key = stream_key(direction, written, src_pos)
        for s in range(self.config.streams):
            if txn.stream(direction, s, key, *path_registers(direction, src_pos, dst_pos)):
                return StreamRef(direction, s)
        return None

    def _scatters(self, txn, written, group):
        """The job's words of the value scattered into their row; the cycle from which they
        are read, or None."""
        chip = self.chip
        last = 0
        for cb, p, mem in self.words:
            t = written + self.hops[mem]
            if not (txn.slot(mem, t, None, self.comment)
                    and txn.commit_bank(mem, t + 1, ANY_BANK)):
                return None
            data = self._data(txn, cb, p, mem, t)
            if data is None:
                return None
            chip.slots[mem][t] = (isa.encode("scatter", a=group, s=data), self.comment)
            last = max(last, t + 2)
        return last

    def _data(self, txn, cb, p, mem, t):
        """Plane ``p`` of the value's block ``cb`` read so that it reaches ``mem`` in cycle
        ``t``; the stream it comes on, or None."""
        sched, chip = self.sched, self.chip
        dst = chip.pos[mem]
        for copy in self.value.vectors[(0, cb)]:
            source, addr = copy.planes[p]
            src = chip.pos[source]
            if src == dst or t - 1 - abs(src - dst) < copy.ready:
                continue
            direction = Dir.E if src < dst else Dir.W
            for s in range(self.config.streams):
                trial = Txn(chip)
                if sched.read_plane(trial, source, addr, dst, t, direction, s, self.comment):
                    txn.undo.extend(trial.undo)
                    return StreamRef(direction, s)
                trial.rollback()
        return None
