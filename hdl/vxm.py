"""VXM slice: the vector ALU (every function of ``isa.VXM_FUNCS`` on i8/i16/i32 and f32, and the
conversions of f16 and bf16)."""

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data

from opentsp import isa
from opentsp.hdl.fp_alu import FpAlu
from opentsp.hdl.layouts import (
    dtype_bytes,
    is_op,
    merged_layout,
    select_stream,
)
from opentsp.hdl.slice import FunctionalSlice
from opentsp.hdl.stagger import Stagger

__all__ = ["VxmSlice", "alu"]

_WIDE = max(dtype.bytes for dtype in isa.DType)     # bytes of the widest type
_BITS = 8 * _WIDE
_ID_BITS = isa.STREAM_BITS + 1      # room for id + 3
#: The destination of a result, registered with the operands.
_CONTROL = data.StructLayout({"valid": 1, "dir": 1, "id": unsigned(_ID_BITS),
                              "bytes": unsigned(3)})


def _typed(code, raw):
    """``raw`` (``_BITS`` bits, little-endian bytes) read as a signed element of type
    ``code``, sign-extended to ``_BITS`` bits."""
    value = raw.as_signed()
    for dtype in sorted(isa.DType, key=lambda d: -d.bytes):
        value = Mux(code == dtype.value, raw[:8 * dtype.bytes].as_signed(), value)
    return value


def _limits(code):
    """Signed range of type ``code`` as ``_BITS``-bit constants (lo, hi)."""
    lo = Const(-(1 << (_BITS - 1)), signed(_BITS))
    hi = Const((1 << (_BITS - 1)) - 1, signed(_BITS))
    for dtype in isa.DType:
        bits = 8 * dtype.bytes
        lo = Mux(code == dtype.value, Const(-(1 << (bits - 1)), signed(_BITS)), lo)
        hi = Mux(code == dtype.value, Const((1 << (bits - 1)) - 1, signed(_BITS)), hi)
    return lo, hi


def _bits_mask(code):
    """``bits - 1`` of type ``code`` (the shift-amount mask), as a 5-bit value."""
    mask = Const(_BITS - 1, 5)
    for dtype in isa.DType:
        mask = Mux(code == dtype.value, Const(8 * dtype.bytes - 1, 5), mask)
    return mask


def alu(m, func, a, b, rtype, dtype=None, product=None, floating_point=True):
    """One lane of the ALU, combinational.

    Parameters
    ----------
    func : dict of str to Value
        One-hot function select, one entry per name of ``isa.VXM_FUNCS``.
    a, b : Value
        Operands, sign-extended to 32 bits.
    rtype : Value
        Result type code (saturation range of ``cvt``).
    dtype : Value or None
        Source type code (shift-amount modulus, ``mulh``'s half); ``None`` means ``rtype``,
        which is the source type of every function but ``cvt``.
    product : Value or None
        The signed 64-bit product ``a * b`` when the caller forms it (from registered partial
        products, :func:`partial_products`); ``None`` multiplies here.
    floating_point : bool
        Build the float half (:class:`~opentsp.hdl.fp_alu.FpAlu`); without it a float type
        computes as the integer of its width (the assembler refuses such programs).

    Returns
    -------
    Value
        32-bit result; the low ``8 * bytes(rtype)`` bits are the element (``docs/
        architecture.md`` section 8): wrapping add, sub, mul, neg, abs and shl keep the low
        half; min, max, cmpgt signed; relu = max(a, 0); cvt saturates to rtype; shr and rshr
        are arithmetic; mulh is the high half of the 64-bit product.

    Hardware shared between functions: one 32x32->64 signed multiplier (mul and mulh,
    :func:`_products`), one negator (neg, abs, :func:`_negations`), one left shifter and one
    arithmetic right shifter (shl, shr and rshr, :func:`_shifts`).
    """
    dtype = rtype if dtype is None else dtype
    lo, hi = _limits(rtype)
    zero = Const(0, signed(_BITS))
    ones = Const(-1, signed(_BITS))
    results = {
        "add": (a + b)[:_BITS],
        "sub": (a - b)[:_BITS],
        "min": Mux(a < b, a, b),
        "max": Mux(a > b, a, b),
        "relu": Mux(a < zero, zero, a),
        "cvt": Mux(a > hi, hi, Mux(a < lo, lo, a)),
        "and": a & b,
        "or": a | b,
        "xor": a ^ b,
        "cmpeq": Mux(a == b, ones, zero),
        "cmpgt": Mux(a > b, ones, zero),
        **{name: zero for name in isa.VXM_F32_ONLY},
        **_products(m, a, b, dtype, product),
        **_negations(m, a),
        **_shifts(m, func, a, b, dtype),
    }
    if set(results) != set(isa.VXM_FUNCS):
        raise ValueError(f"the ALU must implement {isa.VXM_FUNCS}, not {sorted(results)!r}")
    if floating_point:
        results.update(_floats(m, func, a, b, rtype, dtype, results, (lo, hi)))
    return _select(m, func, results)


def _floats(m, func, a, b, rtype, dtype, results, limits):
    """The results that floats change (:class:`~opentsp.hdl.fp_alu.FpAlu`, one per lane): the
    functions of ``sim.alu.FLOAT_FUNCS`` when the source type is f32, and ``cvt`` from or to
    f32 (rounded, saturated to an integer ``rtype``; f16 and bf16 widened or narrowed)."""
    fpu = FpAlu()
    m.submodules += fpu
    m.d.comb += [fpu.a.eq(a), fpu.b.eq(b), fpu.subtract.eq(func["sub"]),
                 fpu.tanh.eq(func["tanh"])]
    zero, ones = Const(0, signed(_BITS)), Const(-1, signed(_BITS))
    floats = {"add": fpu.sum, "sub": fpu.sum, "mul": fpu.product, "min": fpu.minimum,
              "max": fpu.maximum, "relu": fpu.relu, "neg": fpu.negated, "abs": fpu.magnitude,
              "cmpeq": Mux(fpu.equal, ones, zero), "cmpgt": Mux(fpu.greater, ones, zero),
              "exp": fpu.exponential, "tanh": fpu.exponential, "recip": fpu.reciprocal,
              "rsqrt": fpu.rsqrt}
    from_float = dtype == isa.DType.F32
    lo, hi = limits
    rounded = fpu.to_int.as_signed()
    as_int = Mux(rounded > hi, hi, Mux(rounded < lo, lo, rounded))
    changed = {name: Mux(from_float, value, results[name]) for name, value in floats.items()}
    to_f32 = fpu.from_int
    for dtype_, widened in ((isa.DType.F16, fpu.from_f16), (isa.DType.BF16, fpu.from_bf16)):
        to_f32 = Mux(dtype == dtype_, widened, to_f32)
    from_f32 = as_int
    for rtype_, narrowed in ((isa.DType.F16, fpu.to_f16), (isa.DType.BF16, fpu.to_bf16)):
        from_f32 = Mux(rtype == rtype_, narrowed, from_f32)
    # cvt has f32 on one side when a float is involved (opentsp.isa refuses the others)
    changed["cvt"] = Mux(from_float, from_f32,
                         Mux(rtype == isa.DType.F32, to_f32, results["cvt"]))
    return changed


def _products(m, a, b, dtype, product):
    """``mul`` and ``mulh`` from one signed 64-bit product (``product``, or ``a * b`` formed
    here): its low 32 bits, and the half above the low ``8 * bytes(dtype)`` bits."""
    full = Signal(signed(2 * _BITS), name="product")
    m.d.comb += full.eq(a * b if product is None else product)
    high = full[_BITS:]
    for t in isa.DType:
        high = Mux(dtype == t.value, full[8 * t.bytes:8 * t.bytes + _BITS], high)
    return {"mul": full[:_BITS], "mulh": high}


def _negations(m, a):
    """``neg`` and ``abs`` from one negator."""
    negated = Signal(signed(_BITS), name="negated")
    m.d.comb += negated.eq(-a)
    return {"neg": negated, "abs": Mux(a < Const(0, signed(_BITS)), negated, a)}


def _shifts(m, func, a, b, dtype):
    """``shl``, ``shr`` and ``rshr`` by ``b mod bits(dtype)``, from one left shifter and one
    arithmetic right shifter: rshr shifts by n - 1, adds one and drops one more bit, which is
    ``(a + 2^(n-1)) >> n`` without the overflow of the addition (n = 0: ``a``)."""
    amount = Signal(5, name="amount")           # b mod bits
    m.d.comb += amount.eq(b[:5] & _bits_mask(dtype))
    right = Signal(5, name="right")             # rshr shifts by n - 1 first
    m.d.comb += right.eq(Mux(func["rshr"], amount - 1, amount))
    shifted = Signal(signed(_BITS), name="shifted")
    m.d.comb += shifted.eq(a >> right)
    rounded = ((shifted + 1) >> 1)[:_BITS]
    return {"shl": (a << amount)[:_BITS], "shr": shifted,
            "rshr": Mux(amount == 0, a, rounded)}


def _select(m, func, results):
    """The entry of ``results`` (by function name) that the one-hot ``func`` selects, as a
    ``_BITS``-bit signal."""
    # ``func`` is one-hot (distinct opcodes): an AND-OR tree selects the result in a few
    # logic levels where an if/elif chain would be a priority mux as deep as the list.
    terms = [Mux(func[name], results[name].as_unsigned(), 0) for name in isa.VXM_FUNCS]
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    result = Signal(unsigned(_BITS))
    m.d.comb += result.eq(terms[0][:_BITS])
    return result


#: The four partial products of a 32 x 32 signed multiply split at bit 16: each fits one
#: 18 x 18 signed DSP multiplier (the low halves as 17-bit non-negative values).
PARTIALS = data.StructLayout({"ll": unsigned(_BITS), "lh": signed(_BITS + 1),
                              "hl": signed(_BITS + 1), "hh": signed(_BITS)})


def partial_products(a, b):
    """The :data:`PARTIALS` of ``a * b`` (signed ``_BITS``-bit values), as a dict of values:
    ``ll = aL*bL``, ``lh = aL*bH``, ``hl = aH*bL``, ``hh = aH*bH`` with ``x = xH*2^16 + xL``
    (``xH`` signed, ``xL`` unsigned)."""
    half = _BITS // 2

    def low(x):                     # non-negative 17-bit signed: a signed DSP operand
        return Cat(x[:half], Const(0, 1)).as_signed()

    def high(x):
        return x[half:].as_signed()

    return {"ll": a[:half] * b[:half], "lh": low(a) * high(b), "hl": high(a) * low(b),
            "hh": high(a) * high(b)}


def product_of(partials):
    """The signed 64-bit product from its :data:`PARTIALS`."""
    half = _BITS // 2
    middle = partials.lh + partials.hl
    total = ((partials.hh << _BITS) + (middle << half) + partials.ll)
    return total[:2 * _BITS].as_signed()


class VxmSlice(FunctionalSlice):
    """The VXM slice: per superlane and lane, one 32-bit ALU (:func:`alu`).

    An instruction executed on superlane ``k`` in cycle ``t`` (issue cycle + ``k``, through a
    :class:`Stagger`) reads its operand groups (byte ``i`` of an element on stream ``id+i``,
    ids ``>= streams`` read zero) from the slice inputs ``e_in``/``w_in`` in cycle ``t``
    and drives the output stream registers of group ``dst`` so that they load at the end of
    cycle ``t + isa.VXM_LATENCY`` (stream ids ``>= streams`` are not written). ``chain``
    takes as operand ``a`` the superlane's result of the last VXM instruction executed in
    ``t - isa.VXM_CHAIN_DISTANCE`` or earlier (zero after ``clear``).

    Inside, the ALU spans the two cycles of the latency: ``t`` fetches and types the
    operands and forms the four 16-bit partial products of the multiplier (DSP blocks);
    registers hold them with the instruction's controls; ``t + 1`` sums the partials and
    selects and types the result, which the chaining register (``chain_k_j``) takes at the
    end of ``t + 1``. So no path runs from one instruction's result to the next one's
    multipliers in a cycle: that loop limited the FPGA's clock (docs/fpga.md).

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        ops = [isa.OPS_BY_NAME[name] for name in isa.VXM_FUNCS]
        latency = {isa.latency(op, cfg) for op in ops}
        if len(latency) != 1 or min(latency) < 1:
            raise ValueError(f"VXM latencies must be one value >= 1, not {sorted(latency)!r}")
        latency = latency.pop()
        layout = merged_layout(ops)

        m.submodules.stagger = stagger = Stagger(cfg)
        m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(self.issue.valid),
                     stagger.i_word.eq(self.issue.word)]

        for k in range(cfg.superlanes):
            ins = stagger.o[k]
            word = layout(ins.word)
            func = {name: is_op(ins.word, name) for name in isa.VXM_FUNCS}
            valid = ins.valid & Cat(*func.values()).any()
            rtype = Mux(func["cvt"], word.rtype, word.dtype)

            held = _Held.create(k, cfg.lanes_per_superlane, len(rtype), len(word.dtype))
            last = self._finish(m, k, held)
            chained = self._chaining_register(m, k, held.control.valid, last)
            a_lanes, b_lanes = self._operands(m, k, word, chained)
            self._execute(m, held, valid, func, rtype, word, a_lanes, b_lanes)
            stage = self._result_stages(m, k, held.control, last, latency)
            self._drive_group(m, k, stage)
        return m

    def _finish(self, m, k, held):
        """The second ALU cycle of superlane ``k`` (``t + 1``), combinational: each lane's
        result from the ``held`` registers (:func:`alu`, the product from the partials).

        Returns
        -------
        list of Signal
            ``last_k_j``: the last result of this superlane, sign-extended from its type to
            32 bits (the output data and the ``chain`` operand).
        """
        func_then = {name: held.func[i] for i, name in enumerate(isa.VXM_FUNCS)}
        last = []
        for j in range(self._config.lanes_per_superlane):
            result = alu(m, func_then, held.a[j], held.b[j], held.rtype, held.dtype,
                         product=product_of(held.partials[j]),
                         floating_point=self._config.floating_point)
            lane = Signal(_BITS, name=f"last_{k}_{j}")
            m.d.comb += lane.eq(_typed(held.rtype, result))
            last.append(lane)
        return last

    def _chaining_register(self, m, k, valid, last):
        """The chaining register of superlane ``k``: per lane, the ``last`` result of the
        instruction in its second cycle, taken at the end of that cycle if ``valid`` (an
        instruction executed in ``t - 1``), held otherwise, zero on ``clear``.

        Returns
        -------
        list of Signal
            ``chain_k_j``, what a chained instruction reads as operand ``a``.
        """
        chained = [Signal(_BITS, name=f"chain_{k}_{j}")
                   for j in range(self._config.lanes_per_superlane)]
        with m.If(self.clear):
            m.d.sync += [lane.eq(0) for lane in chained]
        with m.Elif(valid):
            m.d.sync += [lane.eq(value) for lane, value in zip(chained, last, strict=True)]
        return chained

    def _operands(self, m, k, word, chained):
        """The typed operands of superlane ``k`` in its execute cycle ``t``, combinational:
        ``a`` from its streams, or with ``chain`` the superlane's ``chained`` register; ``b``
        from its streams.

        Returns
        -------
        tuple of list
            ``a`` and ``b`` lanes, sign-extended to 32 bits.
        """
        streamed = self._fetch(m, k, word.a, word.dtype, "a")
        a_lanes = [Mux(word.chain, _typed(word.dtype, chained[j]), streamed[j])
                   for j in range(self._config.lanes_per_superlane)]
        b_lanes = self._fetch(m, k, word.b, word.dtype, "b")
        return a_lanes, b_lanes

    def _fetch(self, m, k, ref, dtype, name):
        """Operand group ``ref`` of superlane ``k``: per lane, the element of type
        ``dtype`` (bytes from streams ``id..id+3``) sign-extended to 32 bits."""
        vectors = [select_stream(m, self.e_in, self.w_in, ref.dir,
                                 ref.id + Const(i, _ID_BITS), k, self._config, f"{name}{i}_{k}")
                   for i in range(_WIDE)]
        return [_typed(dtype, Cat(*(vec[j] for vec in vectors)))
                for j in range(self._config.lanes_per_superlane)]

    def _execute(self, m, held, valid, func, rtype, word, a_lanes, b_lanes):
        """Load the ``held`` registers at the end of the execute cycle ``t`` (zero on
        ``clear``): the controls always, the function, types, operands and partial products
        only when a VXM instruction executes."""
        # Registered at the end of the execute cycle t: the instruction's controls, its
        # typed operands and the DSPs' partial products (held while no VXM instruction
        # executes). The ALU finishes from them in t + 1, combinationally, as the output
        # stream registers and the chaining register load (end of t + 1, as the latency
        # rule says): the second cycle holds the partial-product sum and the result select,
        # and the execute cycle ends at the multipliers (docs/fpga.md, timing).
        with m.If(self.clear):
            m.d.sync += [reg.eq(0) for reg in held.registers()]
        with m.Else():
            control = held.control
            m.d.sync += [control.valid.eq(valid), control.dir.eq(word.dst.dir),
                         control.id.eq(word.dst.id), control.bytes.eq(dtype_bytes(rtype))]
            with m.If(valid):
                m.d.sync += [held.func.eq(Cat(*func.values())), held.rtype.eq(rtype),
                             held.dtype.eq(word.dtype)]
                for j in range(self._config.lanes_per_superlane):
                    m.d.sync += [held.a[j].eq(a_lanes[j]), held.b[j].eq(b_lanes[j])]
                    for name, value in partial_products(a_lanes[j], b_lanes[j]).items():
                        m.d.sync += getattr(held.partials[j], name).eq(value)

    def _result_stages(self, m, k, control, last, latency):
        """The result of superlane ``k`` with its controls in ``t + 1`` (``result_k_1``,
        combinational), then registered ``latency - 1`` times (``result_k_i``).

        Returns
        -------
        Signal
            The stage that drives the streams in cycle ``t + latency``.
        """
        lps = self._config.lanes_per_superlane
        result_layout = data.StructLayout({
            "valid": 1, "dir": 1, "id": unsigned(_ID_BITS), "bytes": unsigned(3),
            "lanes": data.ArrayLayout(unsigned(_BITS), lps),
        })
        stage = Signal(result_layout, name=f"result_{k}_1")
        m.d.comb += [stage.valid.eq(control.valid), stage.dir.eq(control.dir),
                     stage.id.eq(control.id), stage.bytes.eq(control.bytes)]
        m.d.comb += [stage.lanes[j].eq(last[j]) for j in range(lps)]
        for i in range(1, latency):
            nxt = Signal(result_layout, name=f"result_{k}_{i + 1}")
            m.d.sync += nxt.eq(Mux(self.clear, 0, stage))
            stage = nxt
        return stage

    def _drive_group(self, m, k, stage):
        """Drive ``stage`` on superlane ``k``, combinationally: byte ``i`` of each lane's element
        onto stream ``id + i`` for ``i`` below its ``bytes``, loading at the end of this
        cycle."""
        for s in range(self._config.streams):
            offset = (Const(s, _ID_BITS) - stage.id)[:_ID_BITS]
            hit = stage.valid & (stage.id <= s) & (offset < stage.bytes)
            m.d.comb += [
                self.e_we[s][k].eq(hit & (stage.dir == int(isa.Dir.E))),
                self.w_we[s][k].eq(hit & (stage.dir == int(isa.Dir.W))),
            ]
            byte_index = offset[:(_WIDE - 1).bit_length()]
            for j in range(self._config.lanes_per_superlane):
                byte = stage.lanes[j].word_select(byte_index, 8)
                m.d.comb += [self.e_wdata[s][k][j].eq(byte), self.w_wdata[s][k][j].eq(byte)]


class _Held(NamedTuple):
    """The registers between the two ALU cycles of one superlane (end of ``t`` to ``t + 1``):
    the destination ``control``, the one-hot ``func``, the types, and per lane the operands and
    the multiplier's :data:`PARTIALS`."""

    control: Signal
    func: Signal
    rtype: Signal
    dtype: Signal
    a: list
    b: list
    partials: list

    @classmethod
    def create(cls, k, lps, rtype_bits, dtype_bits):
        """The registers of superlane ``k`` (``lps`` lanes), named ``<field>_k[_j]``."""
        return cls(
            control=Signal(_CONTROL, name=f"control_{k}"),
            func=Signal(len(isa.VXM_FUNCS), name=f"func_{k}"),
            rtype=Signal(rtype_bits, name=f"rtype_{k}"),
            dtype=Signal(dtype_bits, name=f"dtype_{k}"),
            a=[Signal(signed(_BITS), name=f"a_{k}_{j}") for j in range(lps)],
            b=[Signal(signed(_BITS), name=f"b_{k}_{j}") for j in range(lps)],
            partials=[Signal(PARTIALS, name=f"partials_{k}_{j}") for j in range(lps)],
        )

    def registers(self):
        """Every register, in field order."""
        return [self.control, self.func, self.rtype, self.dtype, *self.a, *self.b,
                *self.partials]
