"""Floating point, bit for bit: formats, rounding and special values, and the exact algorithm of
every basic operation (issue 18, first step: the specification that the golden model and the
RTL will both implement; no instruction uses it yet).

Values are bit patterns in unsigned integer arrays (``uint32`` for fp32, ``uint16`` for fp16
and bf16). Every algorithm works on integers of stated widths, never on host floats, so that an
RTL block can follow it step by step; the tests compare it with numpy and ``ml_dtypes``.

Rules
-----
* **Rounding**: to nearest, ties to even, everywhere.
* **fp32 arithmetic** (:func:`add32`, :func:`sub32`, :func:`mul32`): a subnormal operand is read
  as zero of its sign (*DAZ*); the exact result is rounded to 24 significant bits as if the
  exponent were unbounded; then a magnitude below ``2**-126`` becomes zero of its sign (*FTZ*)
  and one of ``2**128`` or more becomes infinity of its sign. Flushing keeps the arithmetic
  units free of subnormal alignment, as most accelerators do; language models do not live
  there (bf16 shares fp32's exponent range).
* **NaN**: every NaN result is the canonical quiet NaN (fp32 ``0x7FC00000``, fp16 ``0x7E00``,
  bf16 ``0x7FC0``), a NaN operand gives it, and so do ``inf - inf`` and ``0 x inf``.
* **Signed zeros**: ``x + (-x) = +0`` (and ``(-0) + (-0) = -0``); a product's sign is the XOR of
  its operands' signs, zero and infinity included.
* **Conversions keep subnormals** (they are exact shifts and rounding of one operand):
  :func:`widen` (fp16 or bf16 to fp32) is exact; :func:`narrow` (fp32 to fp16 or bf16) rounds
  with gradual underflow and overflows to infinity; :func:`from_int32` rounds;
  :func:`to_int32` rounds and saturates to ``[-2**31, 2**31 - 1]``, NaN giving 0.
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Format", "FP32", "FP16", "BF16", "add32", "sub32", "mul32", "widen", "narrow",
           "from_int32", "to_int32", "canonical_nan", "reciprocal32", "rsqrt32", "exp32",
           "tanh32", "max32", "min32", "relu32", "neg32", "abs32", "cmpeq32", "cmpgt32",
           "encode_float"]


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: ``exp_bits`` exponent bits, ``man_bits`` stored
    significand bits, bias ``2**(exp_bits - 1) - 1``."""
    name: str
    exp_bits: int
    man_bits: int

    @property
    def bias(self):
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_max(self):
        """The all-ones exponent field: infinities and NaNs."""
        return (1 << self.exp_bits) - 1

    @property
    def dtype(self):
        return np.uint32 if self.exp_bits + self.man_bits == 31 else np.uint16

    @property
    def nan(self):
        """The canonical quiet NaN: sign 0, exponent all ones, the top significand bit."""
        return (self.exp_max << self.man_bits) | (1 << (self.man_bits - 1))


FP32 = Format("fp32", 8, 23)
FP16 = Format("fp16", 5, 10)
BF16 = Format("bf16", 8, 7)

_MAN32 = (1 << 23) - 1
_HIDDEN32 = 1 << 23


def canonical_nan(fmt):
    """The canonical quiet NaN of ``fmt`` as that format's bit pattern."""
    return fmt.dtype(fmt.nan)


def _fields(bits, fmt):
    """``(sign, exponent field, significand field)`` as int64 arrays."""
    bits = np.asarray(bits).astype(np.int64)
    width = fmt.exp_bits + fmt.man_bits
    return ((bits >> width) & 1, (bits >> fmt.man_bits) & fmt.exp_max,
            bits & ((1 << fmt.man_bits) - 1))


def _pack32(sign, exponent, significand):
    """fp32 bits from a sign, a biased exponent field and 23 significand bits."""
    return ((sign << 31) | (exponent << 23) | significand).astype(np.uint32)


def _round_shift(value, shift):
    """``value >> shift`` rounded to nearest, ties to even (``value >= 0``, ``shift >= 0``,
    int64 arrays); a shift of 63 or more rounds every value below ``2**62`` to 0."""
    shift = np.minimum(shift, 63)
    kept = value >> shift
    rest = value - (kept << shift)
    half = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 0)
    up = (shift > 0) & ((rest > half) | ((rest == half) & ((kept & 1) == 1)))
    return kept + up


def _msb(value):
    """Index of the highest set bit of each positive int64 (below ``2**53``); -1 for 0."""
    _, exponent = np.frexp(value.astype(np.float64))     # exact for integers below 2**53
    return np.where(value > 0, exponent - 1, -1).astype(np.int64)


# fp32 arithmetic ----------------------------------------------------------------------------

def _operand32(bits):
    """``(sign, exponent field, 24-bit significand, nan, inf, zero)`` with DAZ applied."""
    sign, exponent, significand = _fields(np.asarray(bits, dtype=np.uint32), FP32)
    nan = (exponent == 255) & (significand != 0)
    inf = (exponent == 255) & (significand == 0)
    zero = exponent == 0                                   # zero or subnormal (DAZ)
    return sign, exponent, np.where(zero, 0, significand | _HIDDEN32), nan, inf, zero


def _finish32(sign, exponent, significand, nan, inf_sign, zero_sign):
    """Pack a rounded 24-bit ``significand`` (its hidden bit set) with its biased ``exponent``
    (any integer): FTZ below 1, infinity from 255; then the special cases, in priority order:
    NaN, infinity (``inf_sign`` >= 0), exact zero (``zero_sign`` >= 0)."""
    over = exponent >= 255
    under = exponent <= 0
    bits = _pack32(sign, np.clip(exponent, 0, 255) * ~(over | under) + 255 * over,
                   (significand & _MAN32) * ~(over | under))
    bits = np.where(zero_sign >= 0, _pack32(np.maximum(zero_sign, 0), 0, 0), bits)
    bits = np.where(inf_sign >= 0, _pack32(np.maximum(inf_sign, 0), 255, 0), bits)
    return np.where(nan, np.uint32(FP32.nan), bits).astype(np.uint32)


def add32(a, b):
    """``a + b`` for fp32 bit patterns (uint32 arrays).

    Algorithm (27-bit datapath): the operand of larger magnitude ``A`` keeps its 24-bit
    significand shifted left by 3 (guard, round, sticky bits); the other's is shifted right by
    the exponent difference, every bit shifted out ORed into the sticky bit; the two are added
    or subtracted (``A - B >= 0``); the sum is normalised (one right shift with sticky on a
    carry, else left shifts to bring its top bit to bit 26) and rounded on its three low bits;
    a carry out of rounding shifts once more.
    """
    sa, ea, ma, nan_a, inf_a, zero_a = _operand32(a)
    sb, eb, mb, nan_b, inf_b, zero_b = _operand32(b)
    swap = (eb > ea) | ((eb == ea) & (mb > ma))
    s_big, e_big, m_big = (np.where(swap, y, x) for x, y in ((sa, sb), (ea, eb), (ma, mb)))
    s_small, e_small, m_small = (np.where(swap, x, y) for x, y in ((sa, sb), (ea, eb), (ma, mb)))
    big = m_big << 3
    d = np.minimum(e_big - e_small, 27)
    small = m_small << 3
    lost = small & ((np.left_shift(1, d)) - 1)
    small = (small >> d) | (lost != 0)
    total = np.where(s_big == s_small, big + small, big - small)
    carry = total >= (1 << 27)
    total = np.where(carry, (total >> 1) | (total & 1), total)
    exponent = e_big + carry
    shift = np.where(total > 0, 26 - _msb(total), 0)
    total = total << np.maximum(shift, 0)
    exponent = exponent - np.maximum(shift, 0)
    significand = _round_shift(total, np.full_like(total, 3))
    rounded_over = significand >= (1 << 24)
    significand = np.where(rounded_over, significand >> 1, significand)
    exponent = exponent + rounded_over
    nan = nan_a | nan_b | (inf_a & inf_b & (sa != sb))
    inf_sign = np.where(inf_a, sa, np.where(inf_b, sb, -1))
    # two zeros: -0 only if both are; an exact cancellation of nonzero operands: +0
    zero_sign = np.where(zero_a & zero_b, sa & sb, np.where(total == 0, 0, -1))
    return _finish32(s_big, exponent, significand, nan, inf_sign, zero_sign)


def sub32(a, b):
    """``a - b``: :func:`add32` with ``b``'s sign flipped (a NaN stays a NaN)."""
    return add32(a, np.asarray(b, dtype=np.uint32) ^ np.uint32(1 << 31))


def mul32(a, b):
    """``a * b`` for fp32 bit patterns.

    Algorithm: the 48-bit product of the two 24-bit significands, its top bit at 47 or 46; the
    top 24 bits kept, rounded on the bits below (24 or 23 of them); the exponent is the sum of
    the operands' unbiased exponents, plus one for a product at bit 47 or a carry out of
    rounding.
    """
    sa, ea, ma, nan_a, inf_a, zero_a = _operand32(a)
    sb, eb, mb, nan_b, inf_b, zero_b = _operand32(b)
    sign = sa ^ sb
    product = ma * mb
    high = product >= (1 << 47)
    significand = _round_shift(product, np.where(high, 24, 23))
    exponent = ea + eb - 127 + high
    rounded_over = significand >= (1 << 24)
    significand = np.where(rounded_over, significand >> 1, significand)
    exponent = exponent + rounded_over
    nan = nan_a | nan_b | (inf_a & zero_b) | (inf_b & zero_a)
    inf_sign = np.where(inf_a | inf_b, sign, -1)
    zero_sign = np.where(zero_a | zero_b, sign, -1)
    return _finish32(sign, exponent, significand, nan, inf_sign, zero_sign)


def _daz32(bits):
    """fp32 bits with subnormals replaced by zero of their sign."""
    bits = np.asarray(bits, dtype=np.uint32)
    return np.where((bits & 0x7F800000) == 0, bits & np.uint32(1 << 31), bits).astype(np.uint32)


def _is_nan32(bits):
    return ((bits & 0x7F800000) == 0x7F800000) & ((bits & _MAN32) != 0)


def _order_key(bits):
    """An int64 that orders fp32 values (DAZ applied, not NaN) with ``-0 < +0``."""
    magnitude = (bits & 0x7FFFFFFF).astype(np.int64)
    return np.where(bits >> 31 == 1, -magnitude - 1, magnitude)


def max32(a, b):
    """The larger of ``a`` and ``b`` (DAZ applied; ``-0 < +0``; a NaN operand gives NaN)."""
    a, b = _daz32(a), _daz32(b)
    result = np.where(_order_key(a) >= _order_key(b), a, b)
    return np.where(_is_nan32(a) | _is_nan32(b), np.uint32(FP32.nan), result).astype(np.uint32)


def min32(a, b):
    """The smaller of ``a`` and ``b`` (DAZ applied; ``-0 < +0``; a NaN operand gives NaN)."""
    a, b = _daz32(a), _daz32(b)
    result = np.where(_order_key(a) <= _order_key(b), a, b)
    return np.where(_is_nan32(a) | _is_nan32(b), np.uint32(FP32.nan), result).astype(np.uint32)


def relu32(a):
    """``max(a, +0)``: a negative number or zero gives +0, NaN gives NaN."""
    return max32(a, np.zeros_like(np.asarray(a, dtype=np.uint32)))


def neg32(a):
    """``-a``: the sign flipped (DAZ applied; NaN gives NaN)."""
    a = _daz32(a)
    return np.where(_is_nan32(a), np.uint32(FP32.nan), a ^ np.uint32(1 << 31)).astype(np.uint32)


def abs32(a):
    """``|a|``: the sign cleared (DAZ applied; NaN gives NaN)."""
    a = _daz32(a)
    return np.where(_is_nan32(a), np.uint32(FP32.nan),
                    a & np.uint32(0x7FFFFFFF)).astype(np.uint32)


def cmpeq32(a, b):
    """``-1`` (all ones, as the integer compares) where ``a == b`` by value, else 0: DAZ
    applied, ``+0 == -0``, a NaN equals nothing; int32."""
    a, b = _daz32(a), _daz32(b)
    equal = (a == b) | (((a | b) & 0x7FFFFFFF) == 0)
    return np.where(equal & ~_is_nan32(a) & ~_is_nan32(b), -1, 0).astype(np.int32)


def cmpgt32(a, b):
    """``-1`` where ``a > b`` by value, else 0 (DAZ applied, ``+0`` not above ``-0``, NaN
    compares false); int32."""
    a, b = _daz32(a), _daz32(b)
    zeros = ((a | b) & 0x7FFFFFFF) == 0
    above = (_order_key(a) > _order_key(b)) & ~zeros
    return np.where(above & ~_is_nan32(a) & ~_is_nan32(b), -1, 0).astype(np.int32)


# Conversions --------------------------------------------------------------------------------

def encode_float(value, fmt):
    """The bits of Python float ``value`` (binary64) in ``fmt``, rounded to nearest even once,
    from the exact value: gradual underflow (subnormals kept, no flush: callers that cannot
    hold a subnormal check for one), infinity past the largest finite value, NaN canonical.
    The assembler's float literals (``.data``) are read with it."""
    width = fmt.exp_bits + fmt.man_bits
    if math.isnan(value):
        return fmt.nan
    sign = int(math.copysign(1.0, value) < 0) << width
    if math.isinf(value) or value == 0:
        return sign | (fmt.exp_max << fmt.man_bits if value else 0)
    numerator, denominator = abs(value).as_integer_ratio()      # denominator: a power of 2
    top = numerator.bit_length() - denominator.bit_length()     # 2**top <= value < 2**(top+2)
    if numerator << max(-top, 0) < denominator << max(top, 0):
        top -= 1                                                # now 2**top <= value < 2**(top+1)
    exponent = max(top, 1 - fmt.bias)                           # the subnormals' exponent floor
    ulp = exponent - fmt.man_bits
    quotient, remainder = divmod(numerator << max(-ulp, 0), denominator << max(ulp, 0))
    twice = 2 * remainder
    divisor = denominator << max(ulp, 0)
    quotient += twice > divisor or (twice == divisor and quotient & 1)
    # a normal quotient carries the hidden bit, which steps the field; a carry steps it again
    magnitude = ((exponent + fmt.bias - 1) << fmt.man_bits) + quotient
    return sign | min(magnitude, fmt.exp_max << fmt.man_bits)


def widen(bits, fmt):
    """fp16 or bf16 bit patterns (``fmt``) to fp32, exactly (subnormals become fp32 normals or,
    from bf16, fp32 subnormals); NaN gives the canonical fp32 NaN."""
    sign, exponent, significand = _fields(np.asarray(bits, dtype=np.uint16), fmt)
    shift = 23 - fmt.man_bits
    normal = _pack32(sign, exponent - fmt.bias + 127, significand << shift)
    # a subnormal: significand * 2**(1 - bias - man_bits), its top bit at p
    top = _msb(significand)
    e32 = top + 1 - fmt.bias - fmt.man_bits + 127
    tiny_normal = _pack32(sign, np.maximum(e32, 0),
                          ((significand << np.maximum(23 - top, 0)) & _MAN32))
    # below fp32's normals (bf16 only): significand * 2**(150 - bias - man_bits) * 2**-149
    tiny_sub = _pack32(sign, 0, significand << max(150 - fmt.bias - fmt.man_bits, 0))
    tiny = np.where(e32 >= 1, tiny_normal, tiny_sub)
    result = np.where(exponent == 0, np.where(significand == 0, _pack32(sign, 0, 0), tiny),
                      normal)
    result = np.where(exponent == fmt.exp_max, _pack32(sign, 255, 0), result)
    nan = (exponent == fmt.exp_max) & (significand != 0)
    return np.where(nan, np.uint32(FP32.nan), result).astype(np.uint32)


def narrow(bits, fmt):
    """fp32 bit patterns to ``fmt`` (fp16 or bf16): rounded to nearest even with gradual
    underflow (subnormal results kept), infinity from the format's largest exponent on.

    Algorithm: the value is ``sig * 2**(E - 23)`` (``sig`` with its hidden bit for a normal
    input, ``E = max(exponent, 1) - 127``); the target's exponent field would be ``T = E +
    bias``; ``sig`` is shifted right by ``23 - man_bits`` plus ``1 - T`` if ``T < 1`` (the
    subnormal grid) with rounding, and the result is ``((max(T, 1) - 1) << man_bits) + q``, so
    that a carry out of rounding steps the exponent field.
    """
    sign, exponent, significand = _fields(np.asarray(bits, dtype=np.uint32), FP32)
    sig = np.where(exponent > 0, significand | _HIDDEN32, significand)
    target = np.maximum(exponent, 1) - 127 + fmt.bias
    shift = 23 - fmt.man_bits + np.maximum(1 - target, 0)
    q = _round_shift(sig, shift)
    magnitude = ((np.maximum(target, 1) - 1) << fmt.man_bits) + q
    magnitude = np.minimum(magnitude, fmt.exp_max << fmt.man_bits)      # infinity
    width = fmt.exp_bits + fmt.man_bits
    result = (sign << width) | magnitude
    result = np.where(exponent == 255, (sign << width) | (fmt.exp_max << fmt.man_bits), result)
    nan = (exponent == 255) & (significand != 0)
    return np.where(nan, fmt.nan, result).astype(fmt.dtype)


def from_int32(values):
    """int32 values to fp32 bit patterns, rounded to nearest even."""
    values = np.asarray(values, dtype=np.int32).astype(np.int64)
    sign = (values < 0).astype(np.int64)
    magnitude = np.abs(values)
    top = _msb(magnitude)
    shift = np.maximum(top - 23, 0)
    significand = _round_shift(magnitude, shift) << np.maximum(23 - top, 0)
    exponent = top + 127
    carry = significand >= (1 << 24)
    significand = np.where(carry, significand >> 1, significand)
    exponent = exponent + carry
    bits = _pack32(sign, exponent, significand & _MAN32)
    return np.where(magnitude == 0, np.uint32(0), bits).astype(np.uint32)


def to_int32(bits):
    """fp32 bit patterns to int32, rounded to nearest even, saturating; NaN gives 0."""
    sign, exponent, significand = _fields(np.asarray(bits, dtype=np.uint32), FP32)
    sig = np.where(exponent > 0, significand | _HIDDEN32, significand)
    unbiased = np.maximum(exponent, 1) - 127
    left = np.clip(unbiased - 23, 0, 8)
    right = np.maximum(23 - unbiased, 0)
    magnitude = _round_shift(sig, right) << left
    big = (unbiased >= 31) | (magnitude >= (1 << 31))
    limit = np.where(sign == 1, 1 << 31, (1 << 31) - 1)
    magnitude = np.where(big, limit, np.minimum(magnitude, limit))
    result = np.where(sign == 1, -magnitude, magnitude)
    nan = (exponent == 255) & (significand != 0)
    return np.where(nan, 0, result).astype(np.int32)


# Functions of one operand ---------------------------------------------------------------------
#
# reciprocal and rsqrt are correctly rounded (the exact value, rounded to nearest even: an RTL
# divider or square-root recurrence gives it exactly); exp and tanh are defined by the
# fixed-point algorithms below, whose every width is part of the definition. All four read
# subnormal operands as zero (DAZ) and flush subnormal results (FTZ), as the arithmetic does.
# They work on Python integers (exact at any width), one element at a time.

#: log2(e) with 64 fractional bits (a 65-bit constant), rounded to nearest.
LOG2E_Q64 = 26613026195688644983
#: 2**(i/64) with 62 fractional bits, i = 0..63, rounded to nearest.
EXP2_TABLE_Q62 = (
    4611686018427387904, 4661903986662671290, 4712668792719003884,
    4763986391269842979, 4815862801830788490, 4868304109465667592,
    4921316465500308116, 4974906088244084429, 5029079263719320435,
    5083842346398635251, 5139201759950318048, 5195163997991819502,
    5251735624851448219, 5308923276338361494, 5366733660520940721,
    5425173558513642752, 5484249825272419512, 5543969390398799154,
    5604339258952723100, 5665366512274234280, 5727058308814112983,
    5789421884973557729, 5852464555953009676, 5916193716610220111,
    5980616842327661685, 6045741489889385141, 6111575298367424380,
    6178125990017853852, 6245401371186603363, 6313409333225136570,
    6382157853416100552, 6451654995909055045, 6521908912666391106,
    6592927844419550153, 6664720121635655541, 6737294165494670078,
    6810658488877194079, 6884821697363019841, 6959792490240559659,
    7035579661527265796, 7112192101001162095, 7189638795243608238,
    7267928828693418961, 7347071384712461870, 7427075746662858866,
    7507951298995917514, 7589707528352920109, 7672354024677899536,
    7755900482342532474, 7840356701283281883, 7925732588150922155,
    8012038157472581778, 8099283532826439817, 8187478948029213993,
    8276634748336579668, 8366761391656660532, 8457869449776733335,
    8549969609603290562, 8643072674415606502, 8737189565132953757,
    8832331321595618838, 8928509103859867100, 9025734193507008925,
    9124017994966720698,
)
#: (ln 2)**k / k! with 62 fractional bits, k = 0..5: 2**r ~ sum C_k r**k for 0 <= r < 1/64.
EXP2_POLY_Q62 = (
    4611686018427387904, 3196577161300663915, 1107849223398934356,
    255967521894832113, 44355791529079737, 6149018367977265,
)


def _split(bits):
    """``(sign, biased exponent, 24-bit significand)`` of one fp32 pattern, DAZ applied (a
    zero or subnormal has significand 0)."""
    bits = int(bits)
    sign, exponent, field = bits >> 31, (bits >> 23) & 0xFF, bits & _MAN32
    return sign, exponent, (field | _HIDDEN32) if 0 < exponent < 255 else field * (exponent == 255)


def _round_int(value, shift):
    """A non-negative Python integer shifted right by ``shift``, rounded to nearest even."""
    if shift <= 0:
        return value << -shift
    kept, rest = value >> shift, value & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    return kept + (rest > half or (rest == half and kept & 1))


def _make32(sign, exponent, significand):
    """fp32 bits of ``significand * 2**(exponent - 23)`` (a 24-bit significand, or 2**24 after
    a rounding carry; ``exponent`` unbiased, any integer): FTZ and overflow applied."""
    if significand >= 1 << 24:
        significand, exponent = significand >> 1, exponent + 1
    biased = exponent + 127
    if biased <= 0:
        return sign << 31
    if biased >= 255:
        return (sign << 31) | 0x7F800000
    return (sign << 31) | (biased << 23) | (significand & _MAN32)


def _elementwise(function, bits):
    bits = np.asarray(bits, dtype=np.uint32)
    return np.fromiter((function(b) for b in bits.ravel()), dtype=np.uint32,
                       count=bits.size).reshape(bits.shape)


def _reciprocal_one(bits):
    sign, exponent, significand = _split(bits)
    if exponent == 255:
        return FP32.nan if significand & _MAN32 else sign << 31         # 1/inf = 0
    if significand == 0:
        return (sign << 31) | 0x7F800000                                 # 1/0 = inf
    if significand == _HIDDEN32:                                         # a power of two
        return _make32(sign, 127 - exponent, _HIDDEN32)
    # 1/m for m = significand / 2**23 in (1, 2): 24 bits of 2**47 / significand, one more
    # to round on, and the remainder as the sticky bit
    quotient, remainder = divmod(1 << 48, significand)
    kept, guard = quotient >> 1, quotient & 1
    rounded = kept + (guard and (remainder != 0 or kept & 1))
    return _make32(sign, 126 - exponent, rounded)


def reciprocal32(bits):
    """``1 / x``, correctly rounded (to nearest even); ``1/±0 = ±inf``, ``1/±inf = ±0``."""
    return _elementwise(_reciprocal_one, bits)


def _rsqrt_one(bits):
    sign, exponent, significand = _split(bits)
    if exponent == 255 and significand:
        return FP32.nan
    if significand == 0 and exponent != 255:
        return (sign << 31) | 0x7F800000                                 # rsqrt(±0) = ±inf
    if sign:
        return FP32.nan                                                  # negative
    if exponent == 255:
        return 0                                                         # rsqrt(inf) = +0
    # x = X * 2**(2k), X = significand or 2 * significand, in [2**23, 2**25)
    power = exponent - 127 - 23
    big = power & 1
    value, k = significand << big, (power - big) // 2
    p = 36 if value > 1 << 24 else 35               # 2**p / sqrt(X) in [2**23, 2**24)
    target = 1 << (2 * p + 2)
    floor2 = math.isqrt(target // value)            # floor(2**(p+1) / sqrt(X))
    kept, guard = floor2 >> 1, floor2 & 1
    exact = floor2 * floor2 * value == target
    rounded = kept + (guard and (not exact or kept & 1))
    return _make32(0, 23 - k - p, rounded)


def rsqrt32(bits):
    """``1 / sqrt(x)``, correctly rounded; ``±0`` gives ``±inf``, ``+inf`` gives ``+0``, a
    negative number NaN."""
    return _elementwise(_rsqrt_one, bits)


def _exp2_q62(fraction):
    """``2**fraction`` for ``0 <= fraction < 1`` given with 63 fractional bits: the table
    entry of its top 6 bits times the degree-5 polynomial of the rest, ``Q62``."""
    index, rest = fraction >> 57, fraction & ((1 << 57) - 1)     # rest < 2**-6, Q63
    poly = EXP2_POLY_Q62[5]
    for coefficient in EXP2_POLY_Q62[4::-1]:
        poly = coefficient + ((poly * rest) >> 63)
    return (EXP2_TABLE_Q62[index] * poly) >> 62


def _exp_one(bits):
    sign, exponent, significand = _split(bits)
    if exponent == 255:
        return FP32.nan if significand & _MAN32 else (0 if sign else 0x7F800000)
    unbiased = exponent - 127
    if significand == 0 or unbiased < -40:
        return 0x3F800000                        # exp(0) = 1; |x| < 2**-40 rounds to 1
    if unbiased >= 7:                            # |x| >= 128: overflow or underflow
        return 0 if sign else 0x7F800000
    # t = x * log2(e) with 63 fractional bits (x exact: 24 bits shifted by at least 0)
    x_q63 = significand << (unbiased - 23 + 63)
    t = (x_q63 * LOG2E_Q64) >> 64
    if sign:
        t = -t
    n, fraction = t >> 63, t & ((1 << 63) - 1)   # floor and the fraction in [0, 1)
    value = _exp2_q62(fraction)                  # [2**62, 2**63)
    return _make32(0, n, _round_int(value, 62 - 23))


def exp32(bits):
    """``e**x``: ``t = x * log2(e)`` with 63 fractional bits (``LOG2E_Q64``, the product
    truncated), ``2**t = 2**n * 2**f`` with ``n = floor(t)``; ``2**f`` is ``EXP2_TABLE_Q62``
    at the top 6 bits of ``f`` times the degree-5 polynomial ``EXP2_POLY_Q62`` of the other
    57 (Horner, each product truncated to 63 fractional bits), truncated to 62 fractional bits
    and rounded to 24 significant bits. ``exp(-inf) = +0``, ``exp(+inf) = +inf``; results
    below ``2**-126`` flush to zero, from ``2**128`` on are infinite."""
    return _elementwise(_exp_one, bits)


def _tanh_one(bits):
    sign, exponent, significand = _split(bits)
    if exponent == 255:
        return FP32.nan if significand & _MAN32 else (sign << 31) | 0x3F800000
    unbiased = exponent - 127
    if significand == 0:
        return sign << 31
    if unbiased < -13:
        return int(bits)                         # tanh(x) = x within x**3/3 < 0.1 ulp
    if unbiased >= 4:                            # |x| >= 16: 1 - tanh < 2**-45
        return (sign << 31) | 0x3F800000
    # E = e**(2|x|) = 2**n * 2**f as in exp, Q62; tanh = (E - 1) / (E + 1)
    t = ((significand << (unbiased - 23 + 64)) * LOG2E_Q64) >> 64       # 2|x| log2 e, Q63
    n, fraction = t >> 63, t & ((1 << 63) - 1)
    big_e = _exp2_q62(fraction) << n                                     # Q62, n >= 0
    numerator, denominator = big_e - (1 << 62), big_e + (1 << 62)
    # 26 significant bits of the quotient, and a sticky bit from the remainder
    shift = 25 - (numerator.bit_length() - denominator.bit_length())
    quotient, remainder = divmod(numerator << shift, denominator)
    top = quotient.bit_length()
    extra = top - 24
    rounded = _round_int((quotient << 1) | (remainder != 0), extra + 1)
    return _make32(sign, top - 1 - shift, rounded)


def tanh32(bits):
    """``tanh(x)``: ``x`` itself for ``|x| < 2**-13`` (``x**3 / 3`` is below a tenth of an ulp);
    ``±1`` from ``|x| >= 16``; between, ``E = e**(2|x|)`` as :func:`exp32` computes it (63
    fractional bits, table and polynomial, ``Q62``), then ``(E - 1) / (E + 1)`` by an exact
    division rounded to 24 significant bits."""
    return _elementwise(_tanh_one, bits)


# The MXM's floating-point dot products -------------------------------------------------------
#
# Products of fp16 or bf16 operands are exact (two 8- or 11-bit significands) and are summed
# exactly, in a two's complement fixed-point accumulator whose least significant bit weighs
# 2**MXM_ACC_LSB, MXM_ACC_BITS wide. Fixed-point addition is associative: the result cannot
# depend on the order in which lanes, superlanes or K tiles add up. It is rounded once, to fp32,
# when the accumulator is read (``acc``). Every fp16 product is at least 2**-48 and sums exactly;
# a bf16 product below 2**-160 (far below fp32's normals) loses its bits below the LSB
# (truncated towards zero), an error under 2**-160 per product. A product of magnitude 2**128 or
# more (only bf16 has them) counts as an infinity of its sign, so the sum of fewer than 2**31
# products stays below 2**159 and the accumulator never wraps. Infinities and NaNs set sticky
# flags: a NaN, ``0 x inf``, or infinities of both signs give NaN; infinities of one sign give
# that infinity.

#: Weight of the MXM accumulator's least significant bit (bits below it are truncated).
MXM_ACC_LSB = -160
#: Width of the MXM accumulator (two's complement): sums below 2**(MXM_ACC_BITS - 161).
MXM_ACC_BITS = 320


@dataclass
class Accumulator:
    """An MXM accumulator in floating-point mode: the exact fixed-point sum ``total * 2**
    MXM_ACC_LSB`` and the sticky flags of NaN and of each infinity."""
    total: int = 0
    nan: bool = False
    plus_inf: bool = False
    minus_inf: bool = False

    def add_product(self, x, w, fmt):
        """Add the exact product of 16-bit floats ``x`` and ``w`` (bit patterns of ``fmt``)."""
        (sx, vx, kx), (sw, vw, kw) = _decode16(x, fmt), _decode16(w, fmt)
        sign = sx ^ sw
        if kx == "nan" or kw == "nan" or {kx, kw} == {"inf", "zero"}:
            self.nan = True
        elif "inf" in (kx, kw):
            self.minus_inf |= bool(sign)
            self.plus_inf |= not sign
        else:
            scaled = vx * vw                 # exact, in units of 2**unit
            unit = 2 * (1 - fmt.bias - fmt.man_bits)
            if scaled >= 1 << (128 - unit):  # 2**128 or more: an infinity
                self.minus_inf |= bool(sign)
                self.plus_inf |= not sign
                return
            shift = unit - MXM_ACC_LSB
            magnitude = scaled << shift if shift >= 0 else scaled >> -shift
            self.total += -magnitude if sign else magnitude

    def read(self):
        """The accumulator rounded once to fp32 (nearest even, FTZ, overflow to infinity), its
        flags applied; fp32 bits."""
        if self.nan or (self.plus_inf and self.minus_inf):
            return FP32.nan
        if self.plus_inf or self.minus_inf:
            return (int(self.minus_inf) << 31) | 0x7F800000
        sign, magnitude = int(self.total < 0), abs(self.total)
        if magnitude == 0:
            return 0
        top = magnitude.bit_length() - 1
        significand = _round_int(magnitude, top - 23)
        return _make32(sign, top + MXM_ACC_LSB, significand)


def _decode16(bits, fmt):
    """``(sign, integer significand, kind)`` of a 16-bit float: value ``significand *
    2**(exponent - bias - man_bits)`` scaled to units of ``2**(1 - bias - man_bits)``; kind is
    "zero", "finite", "inf" or "nan". Subnormals are kept (their products are exact too)."""
    bits = int(bits)
    man = fmt.man_bits
    sign, exponent, field = bits >> 15, (bits >> man) & fmt.exp_max, bits & ((1 << man) - 1)
    if exponent == fmt.exp_max:
        return sign, 0, "nan" if field else "inf"
    if exponent == 0:
        return sign, field, "zero" if field == 0 else "finite"
    return sign, (field | (1 << man)) << (exponent - 1), "finite"


def mxm_dot32(x, w, fmt):
    """The MXM's fp32 result for one output: ``sum(x[k] * w[k])`` of 16-bit floats of ``fmt``
    (bit patterns), summed exactly and rounded once (see :class:`Accumulator`)."""
    acc = Accumulator()
    for a, b in zip(np.asarray(x).ravel(), np.asarray(w).ravel(), strict=True):
        acc.add_product(a, b, fmt)
    return np.uint32(acc.read())
