"""int32 to fp32, rounded, as :func:`opentsp.fp.from_int32`."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp.hdl.fp_round import round_shift, top_bit

__all__ = ["FpFromInt"]


class FpFromInt(wiring.Component):
    """int32 to fp32, combinational: the magnitude's top bit found, up to 24 bits kept (more
    rounded to nearest even), the exponent that top bit's index (plus a rounding carry).

    Ports
    -----
    value : In(32)
        A two's complement int32.
    result : Out(32)
    """

    value: In(32)
    result: Out(32)

    def elaborate(self, platform):
        m = Module()
        sign = self.value[31]
        magnitude = Signal(32)
        m.d.comb += magnitude.eq(Mux(sign, -self.value, self.value))
        top = top_bit(m, magnitude, "top")
        shift = Signal(range(9))
        m.d.comb += shift.eq(Mux(top > 23, top - 23, 1))
        rounded = round_shift(m, magnitude, shift, 25, "rounded")
        left = Signal(range(24))
        significand = Signal(25)
        m.d.comb += [left.eq(Mux(top > 23, 0, 23 - top)),
                     significand.eq(Mux(top > 23, rounded, magnitude << left))]
        carry = significand[24]
        exponent = Signal(8)
        m.d.comb += exponent.eq(top + 127 + carry)
        fraction = Mux(carry, significand[1:24], significand[:23])
        m.d.comb += self.result.eq(Mux(magnitude == 0, 0, Cat(fraction, exponent, sign)))
        return m
