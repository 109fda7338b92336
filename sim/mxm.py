"""Golden model of the MXM (docs/architecture.md section 7a, ISA v4): planes of weights and
accumulators, the partial-sum chain that follows the superlane stagger, and the sequencers (one
load sequencer per MXM, a compute and a drain sequencer per plane).

:class:`Mxm` is the state of one MXM. :meth:`Mxm.issue` runs in the cycle the MXM's queue issues
(superlane 0): it starts sequences and returns the elements of that cycle; each element then
runs on every superlane ``k`` in cycle ``t + k`` (:func:`execute`). Every state change is
deferred to :meth:`Mxm.end_cycle`, so that everything executed in a cycle sees the state as it
was at the start of the cycle, as the registers of the RTL do. :func:`issue_cycle` and
:func:`execute` connect it to :class:`opentsp.sim.model.Model`.

Types are explicit. On a chip without floating point, weights are ``int8``, products and sums
``int32`` with wrap-around (computed in ``int64`` and wrapped by :func:`wrap32`). On a chip with
floating point (ISA v6), a weight is 16 bits (``int16``: an int8 ``lw`` stores it sign-extended,
an ``lw.f16``/``lw.bf16`` its bit pattern) and every partial sum and accumulator is
:class:`Wide`: the exact fixed-point sum of the products (Python ints in units of ``2**
fp.MXM_ACC_LSB``, wrapping at ``fp.MXM_ACC_BITS`` bits) and the sticky NaN and infinity flags of
:class:`opentsp.fp.Accumulator`; an int8 product counts at ``2**0``, an fp16 or bf16 product
exactly (:meth:`opentsp.fp.Accumulator.add_product`). ``acc`` reads the bits of weights ``2**0
.. 2**31`` (the integer part modulo ``2**32``), ``acc.f32`` rounds the whole once to f32.
"""

from dataclasses import dataclass, replace

import numpy as np

from opentsp import fp, isa, packing

__all__ = ["Mxm", "Sequence", "Wide", "wrap32", "issue_cycle", "execute", "MNEMONICS"]

MNEMONICS = tuple(dict.fromkeys(op.mnemonic for op in isa.OPS if op.unit == isa.Unit.MXM))
_WIDE_MODULUS = 1 << fp.MXM_ACC_BITS
_INT_SHIFT = -fp.MXM_ACC_LSB        # an integer's units in the wide accumulator


def wrap32(values):
    """int64 values to int32, modulo 2**32 (two's complement wrap-around)."""
    values = np.asarray(values, dtype=np.int64)
    return ((values + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


@dataclass(frozen=True)
class Wide:
    """Partial sums or accumulators of a chip with floating point, one per output row: the
    fixed-point sums ``total`` (an object array of Python ints, units of ``2**MXM_ACC_LSB``,
    two's complement of ``MXM_ACC_BITS`` bits) and the sticky flags ``nan``, ``plus_inf`` and
    ``minus_inf`` (bool arrays of the same shape)."""
    total: np.ndarray
    nan: np.ndarray
    plus_inf: np.ndarray
    minus_inf: np.ndarray

    @classmethod
    def zeros(cls, shape):
        return cls(np.zeros(shape, dtype=object), *(np.zeros(shape, dtype=bool)
                                                    for _ in range(3)))

    @classmethod
    def from_int(cls, values):
        """Exact integers (int8 products summed) at ``2**0``; no flags."""
        shape = np.shape(values)
        total = np.array([int(v) << _INT_SHIFT for v in np.ravel(values)], dtype=object)
        return cls(total.reshape(shape), *(np.zeros(shape, dtype=bool) for _ in range(3)))

    @classmethod
    def from_accumulators(cls, accumulators):
        """A row of :class:`opentsp.fp.Accumulator`."""
        return cls(np.array([a.total for a in accumulators], dtype=object),
                   *(np.array([getattr(a, flag) for a in accumulators], dtype=bool)
                     for flag in ("nan", "plus_inf", "minus_inf")))

    def __add__(self, other):
        total = np.array([_wrap_wide(a + b) for a, b in zip(self.total.ravel(),
                                                            other.total.ravel(), strict=True)],
                         dtype=object).reshape(self.total.shape)
        return Wide(total, self.nan | other.nan, self.plus_inf | other.plus_inf,
                    self.minus_inf | other.minus_inf)

    def __getitem__(self, index):
        return Wide(*(getattr(self, f)[index] for f in ("total", "nan", "plus_inf",
                                                        "minus_inf")))

    def store(self, index, value):
        """``self[index] = value`` (in place)."""
        for name in ("total", "nan", "plus_inf", "minus_inf"):
            getattr(self, name)[index] = getattr(value, name)

    def int32(self):
        """The integer part modulo ``2**32`` (bits of weights ``2**0 .. 2**31``), int32."""
        return np.array([((int(t) >> _INT_SHIFT) + (1 << 31)) % (1 << 32) - (1 << 31)
                         for t in self.total.ravel()], dtype=np.int32).reshape(self.total.shape)

    def f32(self):
        """Each rounded once to f32 (:meth:`opentsp.fp.Accumulator.read`): bits in int32."""
        words = [fp.Accumulator(int(t), bool(n), bool(p), bool(m)).read() for t, n, p, m in
                 zip(self.total.ravel(), self.nan.ravel(), self.plus_inf.ravel(),
                     self.minus_inf.ravel(), strict=True)]
        return np.array(words, dtype=np.uint32).view(np.int32).reshape(self.total.shape)


def _wrap_wide(value):
    """``value`` modulo ``2**MXM_ACC_BITS``, as a two's complement integer."""
    half = _WIDE_MODULUS >> 1
    return (value + half) % _WIDE_MODULUS - half


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
    """One MXM: per plane ``p`` back weights ``back[p]``, front weights ``front[p]`` (``N x N``,
    ``int8`` or, with floating point, ``int16``) and accumulators ``acc[p]`` (``mxm_accumulators
    x N``: int32 or :class:`Wide`); the partial-sum registers ``chain[k][p]`` (``q_k`` of the
    ``abc`` element that superlane ``k`` ran in the previous cycle); the running sequences. All
    zero (idle) at reset.

    Parameters
    ----------
    config : Config
    """

    def __init__(self, config):
        self.config = config
        n = self.size = config.mxm_size
        planes = config.mxm_planes
        self.span = isa.mxm_span(config)
        self.wide = config.floating_point
        weight = np.int16 if self.wide else np.int8
        self.back = np.zeros((planes, n, n), dtype=weight)
        self.front = np.zeros((planes, n, n), dtype=weight)
        shapes = (planes, config.mxm_accumulators, n), (config.superlanes, planes, n)
        if self.wide:
            self.acc, self.chain = (Wide.zeros(shape) for shape in shapes)
        else:
            self.acc, self.chain = (np.zeros(shape, dtype=np.int32) for shape in shapes)
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

    # One element on one superlane; x is that superlane's slice of a stream (int8) or of a
    # stream pair (int16: the bit patterns of fp16 or bf16).

    def lw(self, superlane, plane, row, rows):
        """``B_p[row + r][i] = rows[r][i]`` for the lanes of ``superlane`` (rows >= N and
        planes beyond the MXM's: nothing); int8 rows are sign-extended into 16-bit weights."""
        lanes, width = self.lanes(superlane), self._width(superlane)
        if plane >= self.config.mxm_planes or not width:
            return
        for r, x in enumerate(rows):
            if row + r < self.size:
                values = np.asarray(x)[:width].astype(self.back.dtype)
                self._pending.append(lambda r=r, values=values: self.back.__setitem__(
                    (plane, row + r, lanes), values))

    def iw(self, superlane, plane):
        """``F_p[j][i] = B_p[j][i]`` for every row and the lanes of ``superlane``."""
        lanes = self.lanes(superlane)
        if plane < self.config.mxm_planes and self._width(superlane):
            values = self.back[plane][:, lanes].copy()
            self._pending.append(
                lambda: self.front.__setitem__((plane, slice(None), lanes), values))

    def _products(self, weights, x, dtype):
        """Per row ``j``: ``sum_i weights[j][i] * x[i]``, exactly; int8 (``dtype`` None) or
        fp16/bf16 bit patterns. int64 without floating point, else :class:`Wide`."""
        if dtype is None:
            total = weights.astype(np.int8).astype(np.int64) @ x.astype(np.int8).astype(np.int64)
            return Wide.from_int(total) if self.wide else total
        fmt = packing.FLOAT_FORMATS[dtype]
        rows = []
        for row in weights:
            accumulator = fp.Accumulator()
            for w, v in zip(row, x, strict=True):
                accumulator.add_product(int(v) & 0xFFFF, int(w) & 0xFFFF, fmt)
            rows.append(accumulator)
        return Wide.from_accumulators(rows)

    def abc(self, superlane, plane, acc, add, x, dtype=None):
        """Superlane ``k``'s share of an ``abc`` element of ``plane`` (of type ``dtype``, None
        for int8): ``q_k = q_(k-1) + F_p[:, lanes] @ x``; the last superlane of the span
        updates accumulator ``acc`` of the plane (if it exists)."""
        k = superlane
        lanes, width = self.lanes(k), self._width(k)
        if not width:
            return
        local = self._products(self.front[plane][:, lanes], np.asarray(x)[:width], dtype)
        if self.wide:
            partial = self.chain[k - 1, plane] + local if k else local
        else:
            previous = self.chain[k - 1, plane].astype(np.int64) if k else 0
            partial = wrap32(previous + local)
        if k < self.span - 1:
            self._pending.append(lambda: self._set(self.chain, (k, plane), partial))
        elif acc < self.config.mxm_accumulators:
            if self.wide:
                total = self.acc[plane, acc] + partial if add else partial
            else:
                base = self.acc[plane, acc].astype(np.int64) if add else 0
                total = wrap32(base + partial.astype(np.int64))
            self._pending.append(lambda: self._set(self.acc, (plane, acc), total))

    @staticmethod
    def _set(array, index, value):
        if isinstance(array, Wide):
            array.store(index, value)
        else:
            array[index] = value

    def read_acc(self, superlane, plane, acc, dtype=isa.DType.I32):
        """``acc_p[acc][j]`` of ``plane`` for the lanes ``j`` of ``superlane`` as ``dtype``
        (int32, or f32 bits): shape ``(lanes_per_superlane,)`` int32, zero for ``j >= N`` and
        for accumulators that do not exist."""
        out = np.zeros(self.config.lanes_per_superlane, dtype=np.int32)
        lanes, width = self.lanes(superlane), self._width(superlane)
        if width and acc < self.config.mxm_accumulators:
            value = self.acc[plane, acc, lanes]
            if self.wide:
                value = value.f32() if dtype == isa.DType.F32 else value.int32()
            out[:width] = value
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

    dtype = dict(instr.op.operand_types).get("s")     # None: int8

    def operands(field):
        """The elements of operand ``field``, one per group: int8, or 16-bit patterns."""
        direction, ids = instr.group(field, config)
        planes = np.array([model._input(slice_.position, direction, ident, superlane)
                           for ident in ids], dtype=np.uint8)
        width = 1 if dtype is None else dtype.bytes
        return [packing.unpack(planes[g:g + width], dtype or isa.DType.I8)
                for g in range(0, len(ids), width)]

    if name == "lw":
        unit.lw(superlane, instr["p"], instr["row"], operands("s"))
    elif name == "iw":
        unit.iw(superlane, instr["p"])
    elif name == "abc":
        unit.abc(superlane, instr["p"], instr["acc"], instr["add"], operands("s")[0], dtype)
    elif name == "acc":
        out_type = dict(instr.op.operand_types)["dst"]
        values = unit.read_acc(superlane, instr["p"], instr["acc"], out_type)
        direction, ids = instr.group("dst", config)
        for byte, ident in zip(packing.pack(values, out_type), ids, strict=True):
            model._write_stream(model.cycle + isa.latency(instr.op, config), slice_,
                                direction, ident, superlane, byte)
    else:
        raise ValueError(f"{name} is not an MXM instruction")
