"""hdl/fp_reciprocal.py, fp_rsqrt.py, fp_exp.py: the fp32 functions in Amaranth's simulator
against opentsp.fp (the reference, itself tested against numpy in tests/test_fp.py), bit for bit:
every special value, inputs on each side of every branch of the golden algorithms (the ranges
where a result overflows, flushes or is the operand itself, powers of two, exact results, every
exponent the datapath computes on), and random fp32 bit patterns; and their two integer helpers,
the square root and the 64-bit-word product."""

import math

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fp_cases import SPECIALS, run_comb

from opentsp import fp
from opentsp.hdl.fp_exp import FpExp, shifted_product
from opentsp.hdl.fp_reciprocal import FpReciprocal
from opentsp.hdl.fp_rsqrt import FpRsqrt, isqrt

_SIGN = 1 << 31


def _bits(values):
    return np.asarray(values, dtype=np.uint64).astype(np.uint32)


def _binades(rng, exponents, per_exponent, signs=(0, 1)):
    """``per_exponent`` random significands with each biased exponent and each sign, plus the
    smallest and largest significand of each (every branch's edges inside a binade)."""
    patterns = []
    for sign in signs:
        for exponent in exponents:
            fields = np.concatenate([[0, 1, (1 << 23) - 1],
                                     rng.integers(0, 1 << 23, per_exponent)])
            patterns.append((sign << 31) | (exponent << 23) | fields)
    return _bits(np.concatenate(patterns))


def _around(values, ulps):
    """fp32 patterns within ``ulps`` units in the last place of each float (either side)."""
    centre = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.int64)
    steps = np.arange(-ulps, ulps + 1)
    return _bits((centre[:, None] + steps[None, :]).ravel())


def _inputs(rng, *groups, random=1000):
    """SPECIALS, the given groups, and ``random`` random fp32 bit patterns."""
    return np.concatenate([_bits(SPECIALS), *groups,
                           _bits(rng.integers(0, 1 << 32, random, dtype=np.uint64))])


def _check(component, inputs, golden, **ports):
    got = run_comb(component, [{"a": value, **ports} for value in inputs], "result")
    expected = golden(inputs)
    mismatch = np.flatnonzero(got != expected)
    assert mismatch.size == 0, (f"{mismatch.size} mismatches of {inputs.size} (in, got, "
                                "expected): " + str([(hex(inputs[i]), hex(int(got[i])),
                                                      hex(int(expected[i])))
                                                     for i in mismatch[:5]]))


def test_reciprocal_equals_the_reference():
    rng = np.random.default_rng(60)
    powers = _bits([(s << 31) | (e << 23) for s in (0, 1) for e in range(256)])
    # results that overflow (subnormal operands read as zero: infinity) or stay normal
    tiny = _binades(rng, [0, 1, 2], 20)
    # results from 2**-126 down: 1 / 2**126 is normal, anything larger flushes
    huge = _binades(rng, [251, 252, 253, 254], 40)
    # significands next to a power of two, where the quotient is largest or smallest
    edges = _bits([(s << 31) | (e << 23) | f for s in (0, 1) for e in (1, 100, 127, 200, 253)
                   for f in (1, 2, 3, (1 << 23) - 1, (1 << 23) - 2, 1 << 22)])
    exact = np.float32([0.5, 2, 4, 0.25, 1024, 2.0 ** -100, 2.0 ** 100]).view(np.uint32)
    inputs = _inputs(rng, powers, tiny, huge, edges, exact, _binades(rng, range(1, 255), 3),
                     random=1500)
    _check(FpReciprocal(), inputs, fp.reciprocal32)


def test_rsqrt_equals_the_reference():
    rng = np.random.default_rng(61)
    # every exponent, even and odd, and the sign and zero and infinity cases
    binades = _binades(rng, range(0, 256), 2)
    squares = np.float32(np.arange(1, 400) ** 2).view(np.uint32)
    fractions = np.float32((np.arange(1, 200) / 64.0) ** 2).view(np.uint32)
    powers = _bits([e << 23 for e in range(1, 255)])
    positive = _bits(rng.integers(0, 1 << 31, 1000))
    inputs = _inputs(rng, binades, squares, fractions, powers, positive,
                     _bits(np.array(SPECIALS, dtype=np.uint32) & ~np.uint32(_SIGN)))
    _check(FpRsqrt(), inputs, fp.rsqrt32)


def test_exp_equals_the_reference():
    rng = np.random.default_rng(62)
    # exponents -40 to 7 (biased 87 to 134) and the binade below: every shift of t, the
    # overflow and flush ranges, and 1 for |x| < 2**-40
    binades = _binades(rng, range(127 - 41, 127 + 8), 18)
    # overflow from ln(2**128), flush below ln(2**-126), and IEEE's subnormal border (FTZ here)
    borders = _around([88.72283, -88.72283, 87.33654, -87.33654, 103.97208, -103.97208,
                       -103.27893, 128, -128, 2.0 ** -40, -(2.0 ** -40)], 24)
    small = _bits(rng.integers(0, 1 << 31, 500) | _SIGN * rng.integers(0, 2, 500))
    values = np.float32(rng.uniform(-90, 90, 600)).view(np.uint32)
    inputs = _inputs(rng, binades, borders, small, values)
    _check(FpExp(), inputs, fp.exp32, tanh=0)


def test_tanh_equals_the_reference():
    rng = np.random.default_rng(63)
    # x itself below 2**-13 (biased 114), +-1 from 16 (biased 131), and every exponent between
    binades = _binades(rng, range(127 - 15, 127 + 6), 30)
    borders = _around([2.0 ** -13, -(2.0 ** -13), 16, -16, 9.01, -9.01, 0.55, -0.55], 16)
    values = np.float32(rng.uniform(-10, 10, 600)).view(np.uint32)
    inputs = _inputs(rng, binades, borders, values)
    _check(FpExp(), inputs, fp.tanh32, tanh=1)


class _Isqrt(wiring.Component):
    value: In(51)
    root: Out(26)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.root.eq(isqrt(m, self.value, "root"))
        return m


class _Product(wiring.Component):
    a: In(63)
    b: In(63)
    result: Out(64)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.result.eq(shifted_product(m, self.a, self.b, 62, 64, "product"))
        return m


def test_isqrt_is_the_floor_of_the_square_root():
    rng = np.random.default_rng(64)
    roots = [int(r) for r in rng.integers(1, 1 << 25, 200)] + [1, 2, (1 << 25) - 1]
    values = ([int(v) for v in rng.integers(0, 1 << 51, 300, dtype=np.uint64)]
              + [r * r + d for r in roots for d in (-1, 0, 1, 2 * r)]
              + [0, 1, 2, 3, (1 << 51) - 1, 1 << 50])
    got = run_comb(_Isqrt(), [{"value": v} for v in values], "root")
    expected = [math.isqrt(v) for v in values]
    mismatch = [(hex(v), int(g), e) for v, g, e in zip(values, got, expected, strict=True)
                if int(g) != e]
    assert not mismatch, mismatch[:5]


def test_shifted_product_is_exact():
    rng = np.random.default_rng(65)
    top = (1 << 63) - 1
    pairs = ([tuple(int(x) for x in rng.integers(0, 1 << 63, 2, dtype=np.uint64))
              for _ in range(400)]
             + [(top, top), (top, 1), (1 << 32, (1 << 32) - 1), ((1 << 32) - 1, top), (0, top)])
    got = run_comb(_Product(), [{"a": a, "b": b} for a, b in pairs], "result")
    mismatch = [(hex(a), hex(b), hex(int(g))) for (a, b), g in zip(pairs, got, strict=True)
                if int(g) != (a * b) >> 62]
    assert not mismatch, mismatch[:5]
