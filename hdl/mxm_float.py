"""The MXM's floating-point mode (ISA v6, chips with ``Config.floating_point``): the exact
products of 16-bit operands placed in a wide fixed-point value, their sums, and the one rounding
of a wide value to fp32 (:class:`opentsp.fp.Accumulator`, bit for bit). Helpers, not
components: each adds combinational statements to the caller's module.

A *wide* value (:data:`WIDE`) is a partial sum or an accumulator: ``total``, a two's complement
sum of ``fp.MXM_ACC_BITS`` bits in units of ``2**fp.MXM_ACC_LSB`` (wrapping), and the sticky
flags ``nan``, ``plus_inf`` and ``minus_inf``.

Every operand, int8 or 16-bit float, decodes (:func:`decode`) to a sign, an 11-bit
significand ``sig`` and an exponent ``exp`` with value ``sig * 2**(exp - BASE)``: fp16 and
bf16 significands aligned to 11 bits (subnormals kept, exponent field 0 read as 1), int8 its
magnitude at ``exp = BASE``. A product is then ``P * 2**(T - 2 BASE)`` with ``P`` the 22-bit
product of the significands and ``T`` the sum of the exponents, so one shift by ``T`` places
it (:func:`product`), the bits below the accumulator's LSB truncated.
"""

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned
from amaranth.lib import data

from opentsp import fp, isa, packing

__all__ = ["WIDE", "WIDE_BITS", "INT_LSB", "FORMATS", "FORMAT_BITS", "DECODED", "decode",
           "product", "superlane_sum", "accumulate", "int32_of", "round_f32"]

WIDE_BITS = fp.MXM_ACC_BITS
#: Bit of ``total`` that weighs ``2**0``: an int8 product's place, ``acc``'s bit 0.
INT_LSB = -fp.MXM_ACC_LSB
WIDE = data.StructLayout({"total": unsigned(WIDE_BITS), "nan": 1, "plus_inf": 1,
                          "minus_inf": 1})
#: Operand formats of ``lw``/``abc`` by code (an element's ``fmt``): int8, fp16, bf16.
FORMATS = (None, *isa.MXM_FLOAT_TYPES)
FORMAT_BITS = (len(FORMATS) - 1).bit_length()
_FP = {dtype: packing.FLOAT_FORMATS[dtype] for dtype in isa.MXM_FLOAT_TYPES}

_SIG_BITS = max(f.man_bits for f in _FP.values()) + 1           # 11
_EXP_BITS = max(f.exp_bits for f in _FP.values())               # 8
#: The exponent of 2**0 (``sig * 2**(exp - BASE)``): bf16's exponent field is ``exp`` itself.
BASE = fp.BF16.bias + _SIG_BITS - 1                             # 137
_PRODUCT_BITS = 2 * _SIG_BITS                                   # 22
#: ``T`` below this: the product is below the accumulator's LSB even at 22 bits (zero).
_T_LOW = 2 * BASE + fp.MXM_ACC_LSB - _PRODUCT_BITS              # 92
#: A product of ``2**128`` (fp32's overflow) or more is an infinity: units of the LSB.
_OVER = (fp.FP32.exp_max - fp.FP32.bias) - fp.MXM_ACC_LSB       # 288
_WORD = 32

DECODED = data.StructLayout({"sign": 1, "sig": _SIG_BITS, "exp": _EXP_BITS, "zero": 1,
                             "inf": 1, "nan": 1})

if WIDE_BITS % _WORD or _OVER >= WIDE_BITS - 1:
    raise ValueError("the MXM's wide accumulator must be whole 32-bit words above 2**128")


def decode(m, bits, fmt, name):
    """A 16-bit operand ``bits`` of format code ``fmt`` (:data:`FORMATS`; int8 reads the low
    byte) -> a :data:`DECODED` signal ``name``, combinational: infinities and NaNs have
    ``sig = 0``; int8 never sets ``zero``, ``inf`` or ``nan``."""
    out = Signal(DECODED, name=name)
    small = bits[:8].as_signed()
    m.d.comb += [out.sign.eq(small[7]), out.sig.eq(Mux(small[7], -small, small)),
                 out.exp.eq(BASE)]
    for code, dtype in enumerate(FORMATS):
        if dtype is None:
            continue
        f = _FP[dtype]
        exponent, field = bits[f.man_bits:15], bits[:f.man_bits]
        special, low = exponent == f.exp_max, exponent == 0
        with m.If(fmt == code):
            m.d.comb += [
                out.sign.eq(bits[15]),
                out.sig.eq(Mux(special, 0, Cat(field, ~low) << (_SIG_BITS - 1 - f.man_bits))),
                out.exp.eq(Mux(low, 1, exponent) + fp.BF16.bias - f.bias),
                out.zero.eq(low & (field == 0)),
                out.inf.eq(special & (field == 0)),
                out.nan.eq(special & (field != 0))]
    return out


def product(m, x, w, name):
    """The exact product of two :data:`DECODED` operands ``x`` and ``w``, combinational: its
    magnitude in units of ``2**MXM_ACC_LSB`` (bits below truncated) as a ``WIDE_BITS`` term
    in one's complement (inverted when negative: add ``sign`` to negate), the sign, and the
    flags of :meth:`opentsp.fp.Accumulator.add_product` (``nan``; ``inf`` for an infinite
    operand or a finite product of ``2**128`` or more, whose term is then 0).

    ``P << (T - _T_LOW)`` is the magnitude with ``_PRODUCT_BITS`` more fractional bits: one
    shift by the low 5 bits of the amount (within 64 bits), then a whole-word placement."""
    sign = Signal(name=f"{name}_sign")
    nan, inf = Signal(name=f"{name}_nan"), Signal(name=f"{name}_inf")
    total = Signal(9, name=f"{name}_t")
    amount = Signal(9, name=f"{name}_d")
    part = Signal(_PRODUCT_BITS + _WORD - 1, name=f"{name}_part")
    magnitude = Signal(_OVER, name=f"{name}_mag")
    over = Signal(name=f"{name}_over")
    term = Signal(WIDE_BITS, name=f"{name}_term")
    m.d.comb += [
        sign.eq(x.sign ^ w.sign),
        nan.eq(x.nan | w.nan | (x.inf & w.zero) | (x.zero & w.inf)),
        total.eq(x.exp + w.exp),
        amount.eq(total - _T_LOW),
        part.eq(Mux(total < _T_LOW, 0, x.sig * w.sig) << amount[:5]),
        inf.eq(~nan & (x.inf | w.inf | over)),
        term.eq(Mux(over, 0, magnitude) ^ sign.replicate(WIDE_BITS)),
    ]
    with m.Switch(amount[5:]):
        for word in range(1 << (len(amount) - 5)):
            with m.Case(word):
                placed = Cat(Const(0, _WORD * word), part)
                m.d.comb += magnitude.eq(placed[_PRODUCT_BITS:_PRODUCT_BITS + _OVER])
                if len(placed) > _PRODUCT_BITS + _OVER:
                    m.d.comb += over.eq(placed[_PRODUCT_BITS + _OVER:].any())
    return term, sign, nan, inf


def superlane_sum(m, xs, ws, chain, name):
    """One output row on one superlane, combinational: ``chain`` (the previous superlane's
    :data:`WIDE` partial sum, or None) plus the products of the :data:`DECODED` operands
    ``xs[i]`` and ``ws[i]``, a :data:`WIDE` signal ``name``: totals wrap, flags OR."""
    out = Signal(WIDE, name=name)
    terms, signs, nans, plus, minus = [], [], [], [], []
    for i, (x, w) in enumerate(zip(xs, ws, strict=True)):
        term, sign, nan, inf = product(m, x, w, f"{name}_{i}")
        terms.append(term)
        signs.append(sign)
        nans.append(nan)
        plus.append(inf & ~sign)
        minus.append(inf & sign)
    if chain is not None:
        terms.append(chain.total)
        nans.append(chain.nan)
        plus.append(chain.plus_inf)
        minus.append(chain.minus_inf)
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    m.d.comb += [out.total.eq(total + sum(signs)), out.nan.eq(Cat(*nans).any()),
                 out.plus_inf.eq(Cat(*plus).any()), out.minus_inf.eq(Cat(*minus).any())]
    return out


def accumulate(old, add, q):
    """The accumulator update ``(add ? old : 0) + q`` of two :data:`WIDE` values: the totals
    add (wrapping), the flags OR when ``add``, else are ``q``'s. A value, ``WIDE``'s bits."""
    total = (Mux(add, old.total, 0) + q.total)[:WIDE_BITS]
    return Cat(total, *((add & getattr(old, f)) | getattr(q, f)
                        for f in ("nan", "plus_inf", "minus_inf")))


def int32_of(wide):
    """``acc``'s int32: bits of weights ``2**0 .. 2**31`` of the total (modulo ``2**32``)."""
    return wide.total[INT_LSB:INT_LSB + 32]


def round_f32(m, wide, name):
    """``acc.f32``'s word, :meth:`opentsp.fp.Accumulator.read`, combinational: NaN when the NaN
    flag or both infinity flags are set, else an infinity when one is; else the total rounded
    once to fp32 (nearest even), ``+0`` for 0, a signed zero below ``2**-126`` and a signed
    infinity from ``2**128`` on.

    The magnitude's highest non-zero 32-bit word and the one below make a 64-bit window (the
    words under it only give the sticky bit), normalised in five steps."""
    words = WIDE_BITS // _WORD
    negative = wide.total[-1]
    magnitude = Signal(WIDE_BITS, name=f"{name}_mag")
    m.d.comb += magnitude.eq(Mux(negative, -wide.total, wide.total))
    nonzero = Cat(*(magnitude.word_select(k, _WORD).any() for k in range(words)))
    window = Signal(2 * _WORD, name=f"{name}_window")
    top_word = Signal(range(words), name=f"{name}_top_word")
    below = Signal(name=f"{name}_below")       # a 1 in the words under the window
    for k in range(words):
        with m.If(nonzero[k]):
            low = magnitude.word_select(k - 1, _WORD) if k else Const(0, _WORD)
            m.d.comb += [window.eq(Cat(low, magnitude.word_select(k, _WORD))),
                         top_word.eq(k), below.eq(nonzero[:k - 1].any() if k > 1 else 0)]
    lead = []               # the leading zeros of the window's top word, bit by bit
    shifted = window
    for step in (16, 8, 4, 2, 1):
        empty = Signal(name=f"{name}_lz{step}")
        m.d.comb += empty.eq(shifted[-step:] == 0)
        stage = Signal(2 * _WORD, name=f"{name}_norm{step}")
        m.d.comb += stage.eq(Mux(empty, shifted << step, shifted))
        shifted = stage
        lead.insert(0, empty)
    significand = shifted[-24:]
    rounded = Signal(25, name=f"{name}_rounded")
    m.d.comb += rounded.eq(significand + (shifted[-25] & (
        below | shifted[:-25].any() | significand[0])))
    # the top bit's index is 32 top_word + 31 - lead; biased exponent top + LSB + 127
    biased = Signal(range(-64, 512), name=f"{name}_biased")
    m.d.comb += biased.eq(top_word * _WORD + (_WORD - 1) - Cat(*lead)
                          + fp.MXM_ACC_LSB + fp.FP32.bias + rounded[24])
    sign = negative << 31
    out = Signal(32, name=name)
    infinity = 0x7F800000
    with m.If(wide.nan | (wide.plus_inf & wide.minus_inf)):
        m.d.comb += out.eq(fp.FP32.nan)
    with m.Elif(wide.plus_inf | wide.minus_inf):
        m.d.comb += out.eq((wide.minus_inf << 31) | infinity)
    with m.Elif(~nonzero.any()):
        m.d.comb += out.eq(0)
    with m.Elif(biased <= 0):
        m.d.comb += out.eq(sign)
    with m.Elif(biased >= fp.FP32.exp_max):
        m.d.comb += out.eq(sign | infinity)
    with m.Else():
        m.d.comb += out.eq(sign | (biased[:8] << 23) | rounded[:23])
    return out
