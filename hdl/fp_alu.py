"""The floating-point half of one VXM lane: every f32 function of the ALU at once."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import fp
from opentsp.hdl.fp_add import FpAdd
from opentsp.hdl.fp_exp import FpExp
from opentsp.hdl.fp_from_int import FpFromInt
from opentsp.hdl.fp_mul import FpMul
from opentsp.hdl.fp_narrow import FpNarrow
from opentsp.hdl.fp_reciprocal import FpReciprocal
from opentsp.hdl.fp_rsqrt import FpRsqrt
from opentsp.hdl.fp_to_int import FpToInt
from opentsp.hdl.fp_widen import FpWiden

__all__ = ["FpAlu"]

_SIGN = 1 << 31
_MAGNITUDE = _SIGN - 1


class FpAlu(wiring.Component):
    """Every f32 result of one lane for operands ``a`` and ``b`` (bit patterns), combinational,
    as :mod:`opentsp.fp` defines them: the VXM's ALU selects one (``hdl/vxm.py``).

    Ports
    -----
    a, b : In(32)
        fp32 operands (``b`` unused by the unary functions); ``a`` is also the int32 operand
        of :attr:`from_int`.
    subtract : In(1)
        :attr:`sum` is ``a - b`` instead of ``a + b``.
    tanh : In(1)
        :attr:`exponential` is ``tanh(a)`` instead of ``e**a`` (one shared ``2**f`` core).
    sum, product, maximum, minimum, relu, negated, magnitude : Out(32)
        ``a ± b``, ``a * b``, ``max``, ``min``, ``max(a, +0)``, ``-a``, ``|a|`` (DAZ, ``-0 <
        +0``, NaN canonical).
    equal, greater : Out(1)
        ``a == b`` and ``a > b`` by value (false on NaN, ``+0 == -0``).
    to_int : Out(32)
        ``a`` rounded to an int32 (nearest even, saturating, NaN 0).
    from_int : Out(32)
        The int32 ``a`` rounded to f32.
    from_f16, from_bf16 : Out(32)
        The low 16 bits of ``a`` as an f16 (a bf16) widened to f32, exactly.
    to_f16, to_bf16 : Out(16)
        ``a`` narrowed to f16 (bf16), to nearest even.
    exponential, reciprocal, rsqrt : Out(32)
        ``e**a`` (or ``tanh(a)``), ``1 / a``, ``1 / sqrt(a)``: :func:`opentsp.fp.exp32`,
        :func:`~opentsp.fp.tanh32`, :func:`~opentsp.fp.reciprocal32`,
        :func:`~opentsp.fp.rsqrt32`.
    """

    a: In(32)
    b: In(32)
    subtract: In(1)
    tanh: In(1)
    sum: Out(32)
    product: Out(32)
    maximum: Out(32)
    minimum: Out(32)
    relu: Out(32)
    negated: Out(32)
    magnitude: Out(32)
    equal: Out(1)
    greater: Out(1)
    to_int: Out(32)
    from_int: Out(32)
    from_f16: Out(32)
    from_bf16: Out(32)
    to_f16: Out(16)
    to_bf16: Out(16)
    exponential: Out(32)
    reciprocal: Out(32)
    rsqrt: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.submodules.adder = adder = FpAdd()
        m.submodules.multiplier = multiplier = FpMul()
        m.submodules.to_int = to_int = FpToInt()
        m.submodules.from_int = from_int = FpFromInt()
        m.d.comb += [adder.a.eq(self.a), adder.b.eq(self.b), adder.subtract.eq(self.subtract),
                     multiplier.a.eq(self.a), multiplier.b.eq(self.b),
                     to_int.bits.eq(self.a), from_int.value.eq(self.a),
                     self.sum.eq(adder.result), self.product.eq(multiplier.result),
                     self.to_int.eq(to_int.value), self.from_int.eq(from_int.result)]
        self._conversions(m)
        self._functions(m)

        a, b = self._daz(m, self.a, "a"), self._daz(m, self.b, "b")
        nan_a, nan_b = self._nan(a), self._nan(b)
        key_a, key_b = self._key(m, a, "a"), self._key(m, b, "b")
        zeros = ((a | b) & _MAGNITUDE) == 0
        either_nan = nan_a | nan_b
        m.d.comb += [
            self.maximum.eq(Mux(either_nan, fp.FP32.nan, Mux(key_a >= key_b, a, b))),
            self.minimum.eq(Mux(either_nan, fp.FP32.nan, Mux(key_a <= key_b, a, b))),
            self.relu.eq(Mux(nan_a, fp.FP32.nan, Mux(a[31] | ((a & _MAGNITUDE) == 0), 0, a))),
            self.negated.eq(Mux(nan_a, fp.FP32.nan, a ^ _SIGN)),
            self.magnitude.eq(Mux(nan_a, fp.FP32.nan, a & _MAGNITUDE)),
            self.equal.eq(~either_nan & ((a == b) | zeros)),
            self.greater.eq(~either_nan & ~zeros & (key_a > key_b)),
        ]
        return m

    def _conversions(self, m):
        """The 16-bit float conversions, both ways, for both formats."""
        for fmt in (fp.FP16, fp.BF16):
            name = "bf16" if fmt is fp.BF16 else "f16"
            widen, narrow = FpWiden(fmt), FpNarrow(fmt)
            m.submodules[f"from_{name}"], m.submodules[f"to_{name}"] = widen, narrow
            m.d.comb += [widen.bits.eq(self.a[:16]), narrow.bits.eq(self.a),
                         getattr(self, f"from_{name}").eq(widen.result),
                         getattr(self, f"to_{name}").eq(narrow.result)]

    def _functions(self, m):
        """The transcendental functions: exp and tanh share one unit."""
        m.submodules.exponential = exponential = FpExp()
        m.submodules.reciprocal = reciprocal = FpReciprocal()
        m.submodules.rsqrt = rsqrt = FpRsqrt()
        m.d.comb += [exponential.a.eq(self.a), exponential.tanh.eq(self.tanh),
                     reciprocal.a.eq(self.a), rsqrt.a.eq(self.a),
                     self.exponential.eq(exponential.result),
                     self.reciprocal.eq(reciprocal.result), self.rsqrt.eq(rsqrt.result)]

    @staticmethod
    def _daz(m, bits, name):
        """``bits`` with a subnormal replaced by zero of its sign."""
        daz = Signal(32, name=f"{name}_daz")
        m.d.comb += daz.eq(Mux(bits[23:31] == 0, bits & _SIGN, bits))
        return daz

    @staticmethod
    def _nan(bits):
        return (bits[23:31] == 0xFF) & bits[:23].any()

    @staticmethod
    def _key(m, bits, name):
        """A signed value that orders fp32 numbers, ``-0 < +0``: the magnitude, or its
        complement for a negative number."""
        key = Signal(signed(33), name=f"{name}_key")
        magnitude = bits[:31]
        m.d.comb += key.eq(Mux(bits[31], -magnitude - 1, magnitude))
        return key
