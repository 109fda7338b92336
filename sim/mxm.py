"""Golden model of the MXM (docs/architecture.md section 7a, ISA v4): planes of weights and
accumulators, the partial-sum chain that follows the superlane stagger, and the sequencers (one
load sequencer per MXM, a compute and a drain sequencer per plane).

:class:`Mxm` is the state of one MXM. :meth:`Mxm.issue` runs in the cycle the MXM's queue issues
(superlane 0): it starts sequences and returns the elements of that cycle; each element then
runs on every superlane ``k`` in cycle ``t + k`` (:func:`execute`). Every state change is
deferred to :meth:`Mxm.end_cycle`, so that everything executed in a cycle sees the state as it
was at the start of the cycle, as the registers of the RTL do. :func:`issue_cycle` and
:func:`execute` connect it to :class:`opentsp.sim.model.Model`.

Types are explicit: weights are ``int8``, products and sums ``int32`` with wrap-around
(computed in ``int64`` and wrapped by :func:`wrap32`).
"""

from dataclasses import dataclass, replace

import numpy as np

from opentsp import isa, packing

__all__ = ["Mxm", "Sequence", "wrap32", "issue_cycle", "execute", "MNEMONICS"]

MNEMONICS = tuple(op.mnemonic for op in isa.OPS if op.unit == isa.Unit.MXM)


def wrap32(values):
    """int64 values to int32, modulo 2**32 (two's complement wrap-around)."""
    values = np.asarray(values, dtype=np.int64)
    return ((values + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


@dataclass(frozen=True)
class Sequence:
    """A running sequence: the instruction that started it and its next element."""
    instr: isa.Instr
    element: int

    @property
    def count(self):
        """Elements in all."""
        return self.instr["n"]


def element_instr(instr, element, config):
    """Element ``element`` of the sequence of ``instr``, as the one-element instruction that
    superlanes run: an ``lw`` on rows ``row + element * mxm_load_rows``, an ``abc``/``acc``
    on accumulator ``acc + element``."""
    step = {"lw": ("row", config.mxm_load_rows), "abc": ("acc", 1), "acc": ("acc", 1)}
    field, stride = step[instr.op.mnemonic]
    args = tuple((name, value + element * stride if name == field else
                  1 if name == "n" else value) for name, value in instr.args)
    return replace(instr, args=args)


class Mxm:
    """One MXM: per plane ``p`` back weights ``back[p]``, front weights ``front[p]`` (``N x N``
    int8) and accumulators ``acc[p]`` (``mxm_accumulators x N`` int32); the partial-sum
    registers ``chain[k][p]`` (``q_k`` of the ``abc`` element that superlane ``k`` ran in the
    previous cycle); the running sequences. All zero (idle) at reset.

    Parameters
    ----------
    config : Config
    """

    def __init__(self, config):
        self.config = config
        n = self.size = config.mxm_size
        planes = config.mxm_planes
        self.span = isa.mxm_span(config)
        self.back = np.zeros((planes, n, n), dtype=np.int8)
        self.front = np.zeros((planes, n, n), dtype=np.int8)
        self.acc = np.zeros((planes, config.mxm_accumulators, n), dtype=np.int32)
        self.chain = np.zeros((config.superlanes, planes, n), dtype=np.int32)
        # isa.mxm_sequencer keys: ("lw", None), ("abc", p), ("acc", p)
        self.sequences = dict.fromkeys([("lw", None)] + [(kind, p) for p in range(planes)
                                                          for kind in ("abc", "acc")])
        self._pending = []

    def lanes(self, superlane):
        """The MXM lanes (columns ``i < N``) of ``superlane``: a slice, empty beyond the span
        (a slice, not a list, so that numpy's indexing keeps the axes in order)."""
        lps = self.config.lanes_per_superlane
        return slice(min(superlane * lps, self.size), min((superlane + 1) * lps, self.size))

    def _width(self, superlane):
        lanes = self.lanes(superlane)
        return lanes.stop - lanes.start

    # Superlane 0, in the issue cycle: the sequencers.

    def issue(self, instr, ended):
        """The queue's ``instr`` of this cycle (or None) and ``ended`` (the queue is in or past
        its ``end`` slot) -> the instructions the superlanes run: an ``iw``, and one element of
        each running sequence. A sequence instruction starts its sequencer anew (element 0 in
        this cycle, the old sequence's remaining elements dropped); an ``abc``/``acc`` of a
        plane the MXM does not have has no sequencer and does nothing; after ``end``,
        sequences stop."""
        out = []
        name = instr.op.mnemonic if instr is not None else None
        if name == "iw":
            out.append(instr)
        started = isa.mxm_sequencer(instr) if name in isa.MXM_SEQUENCERS else None
        for key in self.sequences:
            if key == started:
                self.sequences[key] = Sequence(instr, 0)
            elif ended:
                self.sequences[key] = None
            seq = self.sequences[key]
            if seq is None:
                continue
            out.append(element_instr(seq.instr, seq.element, self.config))
            following = seq.element + 1
            self.sequences[key] = replace(seq, element=following) \
                if following < seq.count else None
        return out

    # One element on one superlane; x is that superlane's slice of a stream, int8.

    def lw(self, superlane, plane, row, rows):
        """``B_p[row + r][i] = rows[r][i]`` for the lanes of ``superlane`` (rows >= N and
        planes beyond the MXM's: nothing)."""
        lanes, width = self.lanes(superlane), self._width(superlane)
        if plane >= self.config.mxm_planes or not width:
            return
        for r, x in enumerate(rows):
            if row + r < self.size:
                values = np.asarray(x, dtype=np.int8)[:width].copy()
                self._pending.append(lambda r=r, values=values: self.back.__setitem__(
                    (plane, row + r, lanes), values))

    def iw(self, superlane, plane):
        """``F_p[j][i] = B_p[j][i]`` for every row and the lanes of ``superlane``."""
        lanes = self.lanes(superlane)
        if plane < self.config.mxm_planes and self._width(superlane):
            values = self.back[plane][:, lanes].copy()
            self._pending.append(
                lambda: self.front.__setitem__((plane, slice(None), lanes), values))

    def abc(self, superlane, plane, acc, add, x):
        """Superlane ``k``'s share of an ``abc`` element of ``plane``:
        ``q_k = q_(k-1) + F_p[:, lanes] @ x``; the last superlane of the span updates
        accumulator ``acc`` of the plane (if it exists)."""
        k = superlane
        lanes, width = self.lanes(k), self._width(k)
        if not width:
            return
        x = np.asarray(x, dtype=np.int8)[:width].astype(np.int64)
        local = self.front[plane][:, lanes].astype(np.int64) @ x    # (N,): exact products
        previous = self.chain[k - 1, plane].astype(np.int64) if k else 0
        partial = wrap32(previous + local)
        if k < self.span - 1:
            self._pending.append(lambda: self.chain.__setitem__((k, plane), partial))
        elif acc < self.config.mxm_accumulators:
            base = self.acc[plane, acc].astype(np.int64) if add else 0
            total = wrap32(base + partial.astype(np.int64))
            self._pending.append(lambda: self.acc.__setitem__((plane, acc), total))

    def read_acc(self, superlane, plane, acc):
        """``acc_p[acc][j]`` of ``plane`` for the lanes ``j`` of ``superlane``: shape
        ``(lanes_per_superlane,)`` int32, zero for ``j >= N`` and for accumulators that do not
        exist."""
        out = np.zeros(self.config.lanes_per_superlane, dtype=np.int32)
        lanes, width = self.lanes(superlane), self._width(superlane)
        if width and acc < self.config.mxm_accumulators:
            out[:width] = self.acc[plane, acc, lanes]
        return out

    def end_cycle(self):
        """Land the state changes of the cycle's elements."""
        for update in self._pending:
            update()
        self._pending.clear()


def issue_cycle(model, cycle, issued):
    """The MXM part of :meth:`opentsp.sim.model.Model.step`, after the queues have issued:
    schedule what every MXM runs this cycle (:meth:`Mxm.issue`) on all superlanes. ``issued``
    holds the cycle's ``(slice name, instr)`` pairs."""
    by_name = dict(issued)
    for slice_, queue in zip(model.queue_slices, model.queues, strict=True):
        unit = model.mxms.get(slice_.name)
        if unit is None:
            continue
        for instr in unit.issue(by_name.get(slice_.name), queue.ended):
            for k in range(model.config.superlanes):
                model._executing[cycle + k].append((slice_, instr, k))


def execute(model, slice_, instr, superlane):
    """Executor of the MXM's ``iw`` and of one element of an ``lw``, ``abc`` or ``acc``
    sequence (:func:`element_instr`) for :class:`opentsp.sim.model.Model`."""
    unit = model.mxms[slice_.name]
    name = instr.op.mnemonic
    config = model.config

    def streams(field):
        direction, ids = instr.group(field, config)
        return [model._input(slice_.position, direction, ident, superlane).view(np.int8)
                for ident in ids]

    if name == "lw":
        unit.lw(superlane, instr["p"], instr["row"], streams("s"))
    elif name == "iw":
        unit.iw(superlane, instr["p"])
    elif name == "abc":
        unit.abc(superlane, instr["p"], instr["acc"], instr["add"], streams("s")[0])
    elif name == "acc":
        values = unit.read_acc(superlane, instr["p"], instr["acc"])
        direction, ids = instr.group("dst", config)
        for byte, ident in zip(packing.pack(values, isa.DType.I32), ids, strict=True):
            model._write_stream(model.cycle + isa.latency(instr.op, config), slice_,
                                direction, ident, superlane, byte)
    else:
        raise ValueError(f"{name} is not an MXM instruction")
