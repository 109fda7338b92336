"""fp32 multiplier: ``a * b``, bit for bit as :func:`opentsp.fp.mul32`."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp.hdl.fp_add import pack32, unpack32

__all__ = ["FpMul"]


class FpMul(wiring.Component):
    """fp32 ``a * b``, combinational (latency 0), exactly :func:`opentsp.fp.mul32`.

    Datapath: the 48-bit product of the two 24-bit significands; its top 24 bits (from bit 47
    or 46) rounded to nearest even on the bits below; the exponent ``ea + eb - 127``, plus one
    for a top bit at 47 or a carry out of rounding. DAZ, FTZ, overflow to infinity, canonical
    NaN (``0 x inf`` included); the sign is the XOR of the operands' signs, zeros and
    infinities included.

    Ports
    -----
    a, b : In(32)
        fp32 operands (bit patterns).
    result : Out(32)
    """

    a: In(32)
    b: In(32)
    result: Out(32)

    def elaborate(self, platform):
        m = Module()
        sa, ea, ma, nan_a, inf_a, zero_a = unpack32(m, self.a, "a")
        sb, eb, mb, nan_b, inf_b, zero_b = unpack32(m, self.b, "b")
        sign = Signal()
        product = Signal(48)
        m.d.comb += [sign.eq(sa ^ sb), product.eq(ma * mb)]
        high = product[47]
        kept = Signal(24)
        guard = Signal()
        sticky = Signal()
        m.d.comb += [kept.eq(Mux(high, product[24:48], product[23:47])),
                     guard.eq(Mux(high, product[23], product[22])),
                     sticky.eq(Mux(high, product[:23].any(), product[:22].any()))]
        rounded = Signal(25)
        m.d.comb += rounded.eq(kept + (guard & (sticky | kept[0])))
        significand = Signal(24)
        m.d.comb += significand.eq(Mux(rounded[24], rounded[1:25], rounded[:24]))
        exponent = Signal(signed(11))
        m.d.comb += exponent.eq(ea + eb - 127 + high + rounded[24])
        pack32(m, self.result, sign, exponent, significand,
               nan=nan_a | nan_b | (inf_a & zero_b) | (inf_b & zero_a),
               inf=inf_a | inf_b, inf_sign=sign, zero=zero_a | zero_b, zero_sign=sign)
        return m
