"""fp32 adder: ``a + b`` or ``a - b``, bit for bit as :func:`opentsp.fp.add32`."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import fp

__all__ = ["FpAdd", "unpack32", "pack32"]


def unpack32(m, bits, name):
    """Fields of an fp32 operand with DAZ: ``(sign, exponent, 24-bit significand, nan, inf,
    zero)``; the significand is 0 for a zero or subnormal."""
    sign, exponent, field = bits[31], bits[23:31], bits[:23]
    significand = Signal(24, name=f"{name}_sig")
    nan, inf, zero = (Signal(name=f"{name}_{what}") for what in ("nan", "inf", "zero"))
    m.d.comb += [zero.eq(exponent == 0),
                 nan.eq((exponent == 0xFF) & field.any()),
                 inf.eq((exponent == 0xFF) & ~field.any()),
                 significand.eq(Mux(zero, 0, Cat(field, Const(1, 1))))]
    return sign, exponent, significand, nan, inf, zero


def pack32(m, out, sign, exponent, significand, nan, inf, inf_sign, zero, zero_sign):
    """Drive ``out`` (32 bits) from a rounded 24-bit ``significand`` and a signed biased
    ``exponent``: FTZ at or below 0, infinity from 255; then, by priority, NaN (canonical),
    infinity of ``inf_sign``, zero of ``zero_sign``."""
    with m.If(nan):
        m.d.comb += out.eq(fp.FP32.nan)
    with m.Elif(inf):
        m.d.comb += out.eq(Cat(Const(0, 23), Const(0xFF, 8), inf_sign))
    with m.Elif(zero):
        m.d.comb += out.eq(Cat(Const(0, 31), zero_sign))
    with m.Elif(exponent >= 255):
        m.d.comb += out.eq(Cat(Const(0, 23), Const(0xFF, 8), sign))
    with m.Elif(exponent <= 0):
        m.d.comb += out.eq(Cat(Const(0, 31), sign))
    with m.Else():
        m.d.comb += out.eq(Cat(significand[:23], exponent[:8], sign))


class FpAdd(wiring.Component):
    """fp32 ``a + b`` (``subtract`` low) or ``a - b`` (high), combinational (latency 0: the
    VXM registers its ALU's result), exactly :func:`opentsp.fp.add32` / ``sub32``.

    Datapath (docs/floating-point.md): order the operands by magnitude; the larger's 24-bit
    significand shifted left by 3 (guard, round, sticky); the smaller's shifted right by the
    exponent difference (at most 27) with every lost bit ORed into the sticky bit; add or
    subtract; normalise (a carry shifts right once with sticky, else a leading-zero count
    shifts left to bit 26); round to nearest even on the three low bits; a carry out of
    rounding shifts once more. DAZ on the operands, FTZ and overflow on the result, canonical
    NaN.

    Ports
    -----
    a, b : In(32)
        fp32 operands (bit patterns).
    subtract : In(1)
        Compute ``a - b``.
    result : Out(32)
    """

    a: In(32)
    b: In(32)
    subtract: In(1)
    result: Out(32)

    def elaborate(self, platform):
        m = Module()
        b = Signal(32)
        m.d.comb += b.eq(self.b ^ (self.subtract << 31))
        sa, ea, ma, nan_a, inf_a, zero_a = unpack32(m, self.a, "a")
        sb, eb, mb, nan_b, inf_b, zero_b = unpack32(m, b, "b")

        swap = Signal()
        m.d.comb += swap.eq(Cat(mb, eb) > Cat(ma, ea))
        s_big, e_big, m_big = (Mux(swap, y, x) for x, y in ((sa, sb), (ea, eb), (ma, mb)))
        s_small, e_small, m_small = (Mux(swap, x, y) for x, y in ((sa, sb), (ea, eb), (ma, mb)))
        big_sign = Signal()
        m.d.comb += big_sign.eq(s_big)

        # align the smaller operand, lost bits into the sticky bit
        distance = Signal(8)
        m.d.comb += distance.eq(Mux(e_big - e_small > 27, 27, e_big - e_small))
        small = Signal(27)
        shifted = Signal(27)
        aligned = Signal(27)
        m.d.comb += [small.eq(m_small << 3), shifted.eq(small >> distance),
                     aligned.eq(shifted | ((shifted << distance) != small))]
        total = Signal(28)
        m.d.comb += total.eq(Mux(s_big == s_small, (m_big << 3) + aligned,
                                 (m_big << 3) - aligned))

        # normalise: a carry shifts right once (sticky kept), else left to bit 26
        carried = Signal(27)
        m.d.comb += carried.eq(Mux(total[27], Cat(total[0] | total[1], total[2:28]), total))
        top = Signal(range(27))
        for i in range(27):
            with m.If(carried[i]):
                m.d.comb += top.eq(i)
        shift = Signal(range(27))
        m.d.comb += shift.eq(Mux(carried.any(), 26 - top, 0))
        normal = Signal(27)
        m.d.comb += normal.eq(carried << shift)

        # round to nearest even on the guard, round and sticky bits
        kept = normal[3:27]
        up = normal[2] & (normal[1] | normal[0] | kept[0])
        rounded = Signal(25)
        m.d.comb += rounded.eq(kept + up)
        significand = Signal(24)
        m.d.comb += significand.eq(Mux(rounded[24], rounded[1:25], rounded[:24]))
        exponent = Signal(signed(11))
        m.d.comb += exponent.eq(e_big + total[27] - shift + rounded[24])

        both_zero = zero_a & zero_b
        pack32(m, self.result, big_sign, exponent, significand,
               nan=nan_a | nan_b | (inf_a & inf_b & (sa != sb)),
               inf=inf_a | inf_b, inf_sign=Mux(inf_a, sa, sb),
               zero=both_zero | (total == 0), zero_sign=both_zero & sa & sb)
        return m
