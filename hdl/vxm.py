"""VXM slice: the vector ALU (every function of ``isa.VXM_FUNCS`` on i8/i16/i32)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data

from opentsp import isa

from .layouts import (
    dtype_bytes,
    is_op,
    merged_layout,
    select_stream,
)
from .slice import FunctionalSlice
from .stagger import Stagger

__all__ = ["VxmSlice", "alu"]

_WIDE = max(dtype.bytes for dtype in isa.DType)     # bytes of the widest type
_BITS = 8 * _WIDE


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


def alu(m, func, a, b, rtype, dtype=None):
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

    Returns
    -------
    Value
        32-bit result; the low ``8 * bytes(rtype)`` bits are the element (``docs/
        architecture.md`` section 8): wrapping add, sub, mul, neg, abs and shl keep the low
        half; min, max, cmpgt signed; relu = max(a, 0); cvt saturates to rtype; shr and rshr
        are arithmetic; mulh is the high half of the 64-bit product.

    Hardware shared between functions: one 32x32->64 signed multiplier (mul and mulh), one
    negator (neg, abs), one left shifter and one arithmetic right shifter (shr and rshr: rshr
    shifts by n - 1, adds one and drops one more bit, which is ``(a + 2^(n-1)) >> n`` without
    the overflow of the addition).
    """
    dtype = rtype if dtype is None else dtype
    lo, hi = _limits(rtype)
    zero = Const(0, signed(_BITS))
    ones = Const(-1, signed(_BITS))

    product = Signal(signed(2 * _BITS), name="product")
    m.d.comb += product.eq(a * b)
    high = product[_BITS:]
    for t in isa.DType:
        high = Mux(dtype == t.value, product[8 * t.bytes:8 * t.bytes + _BITS], high)

    negated = Signal(signed(_BITS), name="negated")
    m.d.comb += negated.eq(-a)

    amount = Signal(5, name="amount")           # b mod bits
    m.d.comb += amount.eq(b[:5] & _bits_mask(dtype))
    right = Signal(5, name="right")             # rshr shifts by n - 1 first
    m.d.comb += right.eq(Mux(func["rshr"], amount - 1, amount))
    shifted = Signal(signed(_BITS), name="shifted")
    m.d.comb += shifted.eq(a >> right)
    rounded = ((shifted + 1) >> 1)[:_BITS]

    results = {
        "add": (a + b)[:_BITS],
        "sub": (a - b)[:_BITS],
        "mul": product[:_BITS],
        "min": Mux(a < b, a, b),
        "max": Mux(a > b, a, b),
        "relu": Mux(a < zero, zero, a),
        "cvt": Mux(a > hi, hi, Mux(a < lo, lo, a)),
        "neg": negated,
        "abs": Mux(a < zero, negated, a),
        "shl": (a << amount)[:_BITS],
        "shr": shifted,
        "rshr": Mux(amount == 0, a, rounded),
        "mulh": high,
        "and": a & b,
        "or": a | b,
        "xor": a ^ b,
        "cmpeq": Mux(a == b, ones, zero),
        "cmpgt": Mux(a > b, ones, zero),
    }
    if set(results) != set(isa.VXM_FUNCS):
        raise ValueError(f"the ALU must implement {isa.VXM_FUNCS}, not {sorted(results)!r}")
    # ``func`` is one-hot (distinct opcodes): an AND-OR tree selects the result in a few
    # logic levels where an if/elif chain would be a priority mux as deep as the list.
    terms = [Mux(func[name], results[name].as_unsigned(), 0) for name in isa.VXM_FUNCS]
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    result = Signal(unsigned(_BITS))
    m.d.comb += result.eq(terms[0][:_BITS])
    return result


class VxmSlice(FunctionalSlice):
    """The VXM slice: per superlane and lane, one 32-bit ALU (:func:`alu`).

    An instruction executed on superlane ``k`` in cycle ``t`` (issue cycle + ``k``, through a
    :class:`Stagger`) reads its operand groups (byte ``i`` of an element on stream ``id+i``,
    ids ``>= streams`` read zero) from the slice inputs ``e_in``/``w_in`` in cycle ``t``,
    registers the result at the end of ``t`` and drives the output stream registers of group
    ``dst`` so that they load at the end of cycle ``t + isa.VXM_LATENCY`` (stream ids
    ``>= streams`` are not written).

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lps = cfg.lanes_per_superlane
        ops = [isa.OPS_BY_NAME[name] for name in isa.VXM_FUNCS]
        latency = {isa.latency(op, cfg) for op in ops}
        if len(latency) != 1 or min(latency) < 1:
            raise ValueError(f"VXM latencies must be one value >= 1, not {sorted(latency)!r}")
        latency = latency.pop()
        layout = merged_layout(ops)
        id_bits = isa.STREAM_BITS + 1       # room for id + 3

        m.submodules.stagger = stagger = Stagger(cfg)
        m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(self.issue_valid),
                     stagger.i_word.eq(self.issue_word)]

        result_layout = data.StructLayout({
            "valid": 1, "dir": 1, "id": unsigned(id_bits), "bytes": unsigned(3),
            "lanes": data.ArrayLayout(unsigned(_BITS), lps),
        })

        def fetch(ref, dtype, k, name):
            """Operand group ``ref`` of superlane ``k``: per lane, the element of type
            ``dtype`` (bytes from streams ``id..id+3``) sign-extended to 32 bits."""
            vectors = [select_stream(m, self.e_in, self.w_in, ref.dir,
                                     ref.id + Const(i, id_bits), k, cfg, f"{name}{i}_{k}")
                       for i in range(_WIDE)]
            return [_typed(dtype, Cat(*(vec[j] for vec in vectors))) for j in range(lps)]

        for k in range(cfg.superlanes):
            ins = stagger.o[k]
            word = layout(ins.word)
            func = {name: is_op(ins.word, name) for name in isa.VXM_FUNCS}
            valid = ins.valid & Cat(*func.values()).any()
            rtype = Mux(func["cvt"], word.rtype, word.dtype)

            # The first result register is also the chaining source: it holds the last
            # result of this superlane, sign-extended from its type to 32 bits.
            stage = Signal(result_layout, name=f"result_{k}_1")
            streamed = fetch(word.a, word.dtype, k, "a")
            a_lanes = [Mux(word.chain, _typed(word.dtype, stage.lanes[j]), streamed[j])
                       for j in range(lps)]
            b_lanes = fetch(word.b, word.dtype, k, "b")

            with m.If(self.clear):
                m.d.sync += stage.eq(0)
            with m.Else():
                m.d.sync += [stage.valid.eq(valid), stage.dir.eq(word.dst.dir),
                             stage.id.eq(word.dst.id), stage.bytes.eq(dtype_bytes(rtype))]
                with m.If(valid):
                    for j in range(lps):
                        result = alu(m, func, a_lanes[j], b_lanes[j], rtype, word.dtype)
                        m.d.sync += stage.lanes[j].eq(_typed(rtype, result))
            for i in range(1, latency):
                nxt = Signal(result_layout, name=f"result_{k}_{i + 1}")
                m.d.sync += nxt.eq(Mux(self.clear, 0, stage))
                stage = nxt

            for s in range(cfg.streams):
                offset = (Const(s, id_bits) - stage.id)[:id_bits]
                hit = stage.valid & (stage.id <= s) & (offset < stage.bytes)
                m.d.comb += [
                    self.e_we[s][k].eq(hit & (stage.dir == int(isa.Dir.E))),
                    self.w_we[s][k].eq(hit & (stage.dir == int(isa.Dir.W))),
                ]
                byte_index = offset[:(_WIDE - 1).bit_length()]
                for j in range(lps):
                    byte = stage.lanes[j].word_select(byte_index, 8)
                    m.d.comb += [self.e_wdata[s][k][j].eq(byte), self.w_wdata[s][k][j].eq(byte)]
        return m
