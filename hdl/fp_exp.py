"""fp32 ``e**a`` and ``tanh(a)`` on one shared ``2**f`` core, bit for bit as
:func:`opentsp.fp.exp32` and :func:`opentsp.fp.tanh32`."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import fp
from opentsp.hdl.fp_add import unpack32
from opentsp.hdl.fp_round import top_bit

__all__ = ["FpExp", "exp2_core", "shifted_product"]

_ONE = 0x3F800000
_INF = 0x7F800000
_REST_BITS = 57                     # the fraction's bits below the table index (Q63)


def _horner_bounds():
    """The largest value of each Horner step of :func:`opentsp.fp._exp2_q62` (every step is
    non-decreasing in ``rest``, so its largest value is at ``rest = 2**57 - 1``), and the
    largest ``2**f``; their bit lengths are the datapath's widths."""
    rest = (1 << _REST_BITS) - 1
    poly = fp.EXP2_POLY_Q62[5]
    bounds = [poly]
    for coefficient in fp.EXP2_POLY_Q62[4::-1]:
        poly = coefficient + ((poly * rest) >> 63)
        bounds.append(poly)
    return bounds, (max(fp.EXP2_TABLE_Q62) * poly) >> 62


def shifted_product(m, a, b, shift, width, name):
    """``(a * b) >> shift`` as a ``width``-bit signal (the caller's bound: the bits above are
    0), exactly, for operands of 33 to 64 bits: from the four products of their 32-bit halves
    and two sums, every value at most 64 bits wide (the 128-bit product is only wiring), so
    that Verilator computes each with a machine instruction rather than its multiword
    multiplication (about five times faster on :func:`exp2_core`; the same partial products
    for Yosys)."""
    assert 32 < len(a) <= 64 and 32 < len(b) <= 64 and shift + width <= 128 and width <= 64
    a_low, a_high, b_low, b_high = a[:32], a[32:], b[:32], b[32:]
    low, cross_a, cross_b, high = (Signal(bits, name=f"{name}_{part}") for bits, part in (
        (64, "ll"), (len(a_high) + 32, "hl"), (32 + len(b_high), "lh"),
        (len(a_high) + len(b_high), "hh")))
    middle = Signal(34, name=f"{name}_middle")      # bits 32 to 65 of the three low products
    top = Signal(64, name=f"{name}_top")            # the product's bits 64 to 127
    result = Signal(width, name=name)
    m.d.comb += [low.eq(a_low * b_low), cross_a.eq(a_high * b_low),
                 cross_b.eq(a_low * b_high), high.eq(a_high * b_high),
                 middle.eq(low[32:] + cross_a[:32] + cross_b[:32]),
                 top.eq(high + (cross_a[32:] + cross_b[32:] + middle[32:])),
                 result.eq(Cat(low[:32], middle[:32], top)[shift:shift + width])]
    return result


def exp2_core(m, fraction, name):
    """``2**f`` for a 63-bit fraction ``f`` (Q63), ``Q62``: :func:`opentsp.fp._exp2_q62`.

    ``EXP2_TABLE_Q62`` at the top 6 bits (63-bit entries) times the degree-5 polynomial of the
    other 57 (``rest < 2**57``) by Horner's rule, each product ``poly * rest`` truncated by 63
    bits (:func:`shifted_product`): the partial polynomials have 53, 56, 58, 60, 62 and 63
    bits (the last below ``1.011 * 2**62``), the multipliers 53x57 (a constant), 56x57,
    58x57, 60x57, 62x57 and the table's 63x63 (truncated by 62 bits), the result below
    ``2**63`` (63 bits, at least ``2**62``).
    """
    bounds, largest = _horner_bounds()
    index, rest = fraction[_REST_BITS:63], fraction[:_REST_BITS]
    poly = Const(bounds[0], bounds[0].bit_length())
    for step, (coefficient, bound) in enumerate(zip(fp.EXP2_POLY_Q62[4::-1], bounds[1:],
                                                    strict=True)):
        degree = 4 - step
        term = shifted_product(m, poly, rest, 63, (bound - coefficient).bit_length(),
                               f"{name}_term{degree}")
        following = Signal(bound.bit_length(), name=f"{name}_poly{degree}")
        m.d.comb += following.eq(coefficient + term)
        poly = following
    entry = Signal(63, name=f"{name}_entry")
    m.d.comb += entry.eq(Array(Const(value, 63) for value in fp.EXP2_TABLE_Q62)[index])
    return shifted_product(m, entry, poly, 62, largest.bit_length(), name)


class FpExp(wiring.Component):
    """fp32 ``e**a`` (``tanh`` low) or ``tanh(a)`` (high), combinational (latency 0), exactly
    :func:`opentsp.fp.exp32` (``_exp_one``) and :func:`opentsp.fp.tanh32` (``_tanh_one``),
    one ``2**f`` core (:func:`exp2_core`) for both.

    Datapath:

    * ``t = x * log2(e)`` with 63 fractional bits (truncated), for ``x = a`` (exp) or ``2|a|``
      (tanh): the golden model's ``((m << (u - 23 + 63 + tanh)) * LOG2E_Q64) >> 64`` (``m``
      the 24-bit significand, ``u`` the unbiased exponent) is ``(m * LOG2E_Q64) >> (24 - u -
      tanh)``: one 24x65 product by the constant (89 bits), its low 18 bits dropped (every
      shift is at least 18: ``u <= 6`` for exp, ``<= 3`` for tanh) and 71 bits shifted right
      by ``133 - e - tanh`` (6 bits: 0 to 46 where the result is used); negated for a negative
      ``a`` in exp (72 bits, two's complement). ``n = floor(t)`` (9 bits, signed, ``[-185,
      184]``) and the fraction ``f`` (63 bits) feed the core: ``V = 2**f``, Q62, 63 bits.
    * exp: ``V`` rounded to 24 bits on its low 39 (a carry gives ``2**24`` exactly, whose low
      23 bits are the field), biased exponent ``n + 127 + carry`` (11 bits, signed): FTZ at or
      below 0, infinity from 255.
    * tanh (``n`` in ``[0, 46]``): ``(E - 1) / (E + 1)`` with ``E = V * 2**n`` is ``(V - c) /
      (V + c)`` with ``c = 2**(62 - n)`` (the golden model's numerator and denominator, both
      divided by ``2**n``: quotient, nonzero remainder and the difference of bit lengths
      unchanged). The denominator ``V + c`` has 63 or 64 bits; the numerator ``V - c`` (63
      bits, its top bit at 50 or above since ``2|a| >= 2**-12``) is shifted left by ``align``
      (0 to 13) to the same bit length, giving ``A`` (64 bits); ``q = (A * 2**25) // (V + c)``
      (89-bit dividend, 26-bit quotient in ``(2**24, 2**26)``: the golden model's ``numerator
      << shift``, ``shift = 25 + align``); the remainder, below ``2**64``, is the low 64 bits
      of the dividend minus those of ``q * (V + c)`` (two products of at most 58 bits).
      ``q`` is rounded to 24 bits on its 2 or 3 low bits and the remainder's sticky bit; the
      biased exponent is ``126 + q[25] - align + carry`` (in ``[113, 128]``).

    Special cases as the golden model: NaN canonical; exp: ``|a| < 2**-40`` (and zeros,
    subnormals) 1, ``|a| >= 128`` (and infinities) ``+inf`` or ``+0``; tanh: zeros and
    subnormals ``±0``, ``|a| < 2**-13`` ``a`` itself, ``|a| >= 16`` (and infinities) ``±1``.

    Ports
    -----
    a : In(32)
        fp32 operand (bit pattern).
    tanh : In(1)
        Compute ``tanh(a)`` instead of ``e**a``.
    result : Out(32)
    """

    a: In(32)
    tanh: In(1)
    result: Out(32)

    def elaborate(self, platform):
        m = Module()
        sign, exponent, significand, nan, _, zero = unpack32(m, self.a, "a")
        whole, fraction = self._scaled(m, sign, exponent, significand)
        value = exp2_core(m, fraction, "exp2")
        exp_field, exp_biased = self._exp_result(m, whole, value)
        tanh_field, tanh_biased = self._tanh_result(m, whole[:6], value)

        with m.If(nan):
            m.d.comb += self.result.eq(fp.FP32.nan)
        with m.Elif(self.tanh):
            with m.If(exponent >= 127 + 4):                  # |a| >= 16, infinities
                m.d.comb += self.result.eq(Cat(Const(_ONE, 31), sign))
            with m.Elif(zero):
                m.d.comb += self.result.eq(Cat(Const(0, 31), sign))
            with m.Elif(exponent < 127 - 13):
                m.d.comb += self.result.eq(self.a)
            with m.Else():
                m.d.comb += self.result.eq(Cat(tanh_field, tanh_biased, sign))
        with m.Else():
            with m.If(exponent >= 127 + 7):                  # |a| >= 128, infinities
                m.d.comb += self.result.eq(Mux(sign, 0, _INF))
            with m.Elif(zero | (exponent < 127 - 40)):
                m.d.comb += self.result.eq(_ONE)
            with m.Elif(exp_biased <= 0):
                m.d.comb += self.result.eq(0)
            with m.Elif(exp_biased >= 255):
                m.d.comb += self.result.eq(_INF)
            with m.Else():
                m.d.comb += self.result.eq(Cat(exp_field, exp_biased[:8], Const(0, 1)))
        return m

    def _scaled(self, m, sign, exponent, significand):
        """``t = x * log2(e)`` (Q63, ``x = a`` or ``2|a|``): ``(n, f)``, its floor (9 bits,
        signed) and its fraction (63 bits)."""
        product = Signal(89)
        shift = Signal(6)
        scaled = Signal(71)
        signed_scaled = Signal(signed(72))
        m.d.comb += [product.eq(significand * fp.LOG2E_Q64),
                     shift.eq(133 - exponent - self.tanh),
                     scaled.eq(product[18:] >> shift),
                     signed_scaled.eq(Mux(sign & ~self.tanh, -scaled, scaled))]
        return signed_scaled[63:].as_signed(), signed_scaled[:63]

    @staticmethod
    def _exp_result(m, whole, value):
        """exp: the 23-bit field and the biased exponent (11 bits, signed) of ``2**n * V``."""
        kept = value[39:63]
        up = value[38] & (value[:38].any() | kept[0])
        rounded = Signal(25)
        biased = Signal(signed(11))
        m.d.comb += [rounded.eq(kept + up),
                     biased.eq(whole + 127 + rounded[24])]
        return rounded[:23], biased

    @staticmethod
    def _tanh_result(m, whole, value):
        """tanh: the 23-bit field and the biased exponent (8 bits) of ``(V - c) / (V + c)``,
        ``c = 2**(62 - n)``, ``n`` the low 6 bits of ``whole``."""
        offset = Signal(63)
        numerator = Signal(63)
        denominator = Signal(64)
        m.d.comb += [offset.eq(Const(1 << 62, 63) >> whole),
                     numerator.eq(value - offset),
                     denominator.eq(value + offset)]
        align = Signal(4)
        aligned = Signal(64)
        # the numerator's top bit is at 50 to 62 (2|a| >= 2**-12), the denominator's 62 or 63
        m.d.comb += [align.eq(12 + denominator[63] - top_bit(m, numerator[50:], "tanh_top")),
                     aligned.eq(numerator << align)]
        quotient = Signal(26)
        m.d.comb += quotient.eq(Cat(Const(0, 25), aligned) // denominator)
        # the remainder is below 2**64: its low 64 bits, from those of the dividend and of
        # quotient * denominator (two products below 2**64), say whether it is 0
        product_low = Signal(58)
        product_high = Signal(32)
        remainder = Signal(64)
        m.d.comb += [product_low.eq(quotient * denominator[:32]),
                     product_high.eq(quotient * denominator[32:]),
                     remainder.eq(Cat(Const(0, 25), aligned[:39])
                                  - (product_low + Cat(Const(0, 32), product_high)))]

        high = quotient[25]
        kept = Mux(high, quotient[2:26], quotient[1:25])
        half = Mux(high, quotient[1], quotient[0])
        low = (high & quotient[0]) | remainder.any()
        rounded = Signal(25)
        biased = Signal(8)
        m.d.comb += [rounded.eq(kept + (half & (low | kept[0]))),
                     biased.eq(126 + high - align + rounded[24])]
        return rounded[:23], biased
