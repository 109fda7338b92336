"""fp32 to int32, rounded and saturated, as :func:`opentsp.fp.to_int32`."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp.hdl.fp_round import round_shift

__all__ = ["FpToInt"]


class FpToInt(wiring.Component):
    """fp32 to int32, combinational: the 24-bit significand shifted left (exponent 23 to 30)
    or right with rounding to nearest even (below 23; from a shift of 25 on, 0); saturated to
    ``[-2**31, 2**31 - 1]`` (infinities included); NaN gives 0.

    Ports
    -----
    bits : In(32)
    value : Out(32)
        Two's complement.
    """

    bits: In(32)
    value: Out(32)

    def elaborate(self, platform):
        m = Module()
        sign, exponent, field = self.bits[31], self.bits[23:31], self.bits[:23]
        significand = Signal(24)
        unbiased = Signal(signed(10))
        m.d.comb += [significand.eq(Mux(exponent != 0, Cat(field, 1), field)),
                     unbiased.eq(Mux(exponent == 0, 1, exponent) - 127)]
        right = Signal(range(26))
        m.d.comb += right.eq(Mux(unbiased >= 23, 1, Mux(unbiased < -2, 25, 23 - unbiased)))
        rounded = round_shift(m, significand, right, 25, "rounded")
        magnitude = Signal(40)
        m.d.comb += magnitude.eq(Mux(unbiased >= 23, significand << (unbiased - 23)[:3],
                                     rounded))
        big = (unbiased >= 31) | (magnitude >= (1 << 31))
        limit = Mux(sign, Const(1 << 31, 32), Const((1 << 31) - 1, 32))
        result = Signal(32)
        m.d.comb += result.eq(Mux(big, limit, magnitude[:32]))
        nan = (exponent == 0xFF) & field.any()
        m.d.comb += self.value.eq(Mux(nan, 0, Mux(sign, -result, result)))
        return m
