"""fp32 reciprocal: ``1 / a``, bit for bit as :func:`opentsp.fp.reciprocal32`."""

from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp.hdl.fp_add import pack32, unpack32

__all__ = ["FpReciprocal"]


class FpReciprocal(wiring.Component):
    """fp32 ``1 / a``, combinational (latency 0: the VXM registers its result), exactly
    :func:`opentsp.fp.reciprocal32` (``_reciprocal_one``), correctly rounded.

    Datapath: one division ``q = 2**48 // m`` of the constant by the 24-bit significand ``m``
    (a 49-bit dividend, ``q`` in ``(2**24, 2**25]``, 26 bits), and ``(q + 1) >> 1`` (25
    bits): the golden model keeps ``q >> 1`` and rounds up on its last bit unless the
    remainder is zero and the kept part even; but the remainder of ``2**48 / m`` is zero only
    for a power-of-two ``m = 2**23``, where ``q = 2**25`` is even, so rounding up on the last
    bit alone is the same. That power of two gives ``2**24``: the carry of the golden model's
    separate power-of-two case, whose exponent ``127 - e`` is ``126 - e`` plus the carry. The
    biased exponent ``253 - e + carry`` never overflows; at or below 0 (``|a| >= 2**126``) the
    result flushes to zero (FTZ). DAZ: a subnormal ``a`` is a zero, ``1/±0 = ±inf``, ``1/±inf
    = ±0``, NaN canonical.

    Ports
    -----
    a : In(32)
        fp32 operand (bit pattern).
    result : Out(32)
    """

    a: In(32)
    result: Out(32)

    def elaborate(self, platform):
        m = Module()
        sign, exponent, significand, nan, inf, zero = unpack32(m, self.a, "a")
        quotient = Signal(26)                       # 2**48 // m in (2**24, 2**25]
        rounded = Signal(25)                        # in [2**23, 2**24]
        m.d.comb += [quotient.eq(Const(1 << 48, 49) // significand),
                     rounded.eq((quotient + 1) >> 1)]
        # a carry leaves rounded == 2**24 exactly: its low 23 bits are the field either way
        biased = Signal(signed(10))
        m.d.comb += biased.eq(253 - exponent + rounded[24])
        pack32(m, self.result, sign, biased, rounded[:24], nan=nan, inf=zero, inf_sign=sign,
               zero=inf, zero_sign=sign)
        return m
