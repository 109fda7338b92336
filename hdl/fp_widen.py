"""fp16 or bf16 to fp32, exactly, as :func:`opentsp.fp.widen`."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import fp
from opentsp.hdl.fp_round import half_format, top_bit

__all__ = ["FpWiden"]


class FpWiden(wiring.Component):
    """A 16-bit float (``fmt``: :data:`opentsp.fp.FP16` or :data:`~opentsp.fp.BF16`) to fp32,
    combinational and exact: normals re-biased; fp16 subnormals normalised (their top bit
    found); bf16 subnormals become fp32 subnormals; infinities kept; NaN canonical.

    Ports
    -----
    bits : In(16)
    result : Out(32)
    """

    bits: In(16)
    result: Out(32)

    def __init__(self, fmt):
        self._fmt = half_format(fmt, "FpWiden")
        super().__init__()

    @property
    def fmt(self):
        return self._fmt

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        man = fmt.man_bits
        sign, exponent, field = self.bits[15], self.bits[man:15], self.bits[:man]
        padded = Cat(Const(0, 23 - man), field)                  # the fp32 significand field
        if fmt is fp.BF16:          # fp32's exponent range: a bf16 subnormal is an fp32 one
            tiny = Cat(padded, Const(0, 8), sign)
        else:                       # field * 2**(1 - bias - man): normalise it
            top = top_bit(m, field, "top")
            left, shifted = Signal(range(24)), Signal(23)
            m.d.comb += [left.eq(23 - top),
                         shifted.eq(field << left)]              # the top bit drops out
            tiny = Cat(shifted, (top + (128 - fmt.bias - man))[:8], sign)
        with m.If(exponent == fmt.exp_max):
            m.d.comb += self.result.eq(Mux(field.any(), fp.FP32.nan,
                                           Cat(Const(0, 23), Const(0xFF, 8), sign)))
        with m.Elif(exponent != 0):
            m.d.comb += self.result.eq(Cat(padded, (exponent + (127 - fmt.bias))[:8], sign))
        with m.Elif(field == 0):
            m.d.comb += self.result.eq(sign << 31)
        with m.Else():
            m.d.comb += self.result.eq(tiny)
        return m
