"""fp32 to fp16 or bf16, rounded, as :func:`opentsp.fp.narrow`."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp.hdl.fp_round import half_format, round_shift

__all__ = ["FpNarrow"]


class FpNarrow(wiring.Component):
    """fp32 to a 16-bit float (``fmt``: :data:`opentsp.fp.FP16` or :data:`~opentsp.fp.BF16`),
    combinational: the 24-bit significand shifted right by ``23 - man_bits``, plus ``1 - T``
    below the format's normals (``T``, the target exponent field), rounded to nearest even;
    the result ``((max(T, 1) - 1) << man_bits) + q``, so that a rounding carry steps the
    exponent; infinity from the largest exponent on; NaN canonical; subnormals kept.

    Ports
    -----
    bits : In(32)
    result : Out(16)
    """

    bits: In(32)
    result: Out(16)

    def __init__(self, fmt):
        self._fmt = half_format(fmt, "FpNarrow")
        super().__init__()

    @property
    def fmt(self):
        return self._fmt

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        man = fmt.man_bits
        sign, exponent, field = self.bits[31], self.bits[23:31], self.bits[:23]
        significand = Signal(24)
        target = Signal(signed(10))
        shift = Signal(range(26))
        m.d.comb += [
            significand.eq(Mux(exponent != 0, Cat(field, 1), field)),
            target.eq(Mux(exponent == 0, 1, exponent) - 127 + fmt.bias),
            # below the format's normals the grid is coarser; from 25 on everything rounds to 0
            shift.eq(Mux(target >= 1, 23 - man, Mux(target < -1 - man, 25, 24 - man - target))),
        ]
        q = round_shift(m, significand, shift, 25, "q")
        magnitude = Signal(signed(20))
        m.d.comb += magnitude.eq((Mux(target >= 1, target, 1) - 1) * (1 << man) + q)
        infinity = fmt.exp_max << man
        with m.If((exponent == 0xFF) & field.any()):
            m.d.comb += self.result.eq(fmt.nan)
        with m.Elif((exponent == 0xFF) | (magnitude >= infinity)):
            m.d.comb += self.result.eq(Cat(Const(infinity, 15), sign))
        with m.Else():
            m.d.comb += self.result.eq(Cat(magnitude[:15], sign))
        return m
