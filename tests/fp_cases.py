"""Operands for the floating-point RTL tests: every special class against every other, and
random fp32 patterns and nearby magnitudes (carries, cancellations, rounding ties)."""

import itertools

import numpy as np
from amaranth.sim import Simulator

#: Zeros, subnormals, the extreme normals, ones, infinities, NaNs, values that cancel or round.
SPECIALS = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x80800000,
            0x00800001, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000,
            0x7FC00000, 0x7F800001, 0xFFC12345, 0x3F800001, 0x33800000, 0x4B800000, 0x0C000000,
            0x3FFFFFFF, 0x34000000]


def operand_pairs(seed, count):
    """``(a, b)`` uint32 arrays: every pair of specials, then ``count`` random pairs (half
    random bit patterns, half pairs of nearby magnitudes of either sign)."""
    rng = np.random.default_rng(seed)
    pairs = list(itertools.product(SPECIALS, repeat=2))
    a = rng.integers(0, 1 << 32, count, dtype=np.uint64)
    b = np.where(np.arange(count) % 2 == 0, rng.integers(0, 1 << 32, count, dtype=np.uint64),
                 ((a.astype(np.int64) + rng.integers(-(1 << 25), 1 << 25, count)) & 0x7FFFFFFF)
                 | (rng.integers(0, 2, count).astype(np.int64) << 31)).astype(np.uint64)
    pairs += list(zip(a.tolist(), b.tolist(), strict=True))
    return (np.array([p[0] for p in pairs], dtype=np.uint32),
            np.array([p[1] for p in pairs], dtype=np.uint32))


def run_comb(dut, inputs, output):
    """Drive a combinational component with each ``{port name: value}`` of ``inputs`` and read
    port ``output`` after it settles; the values, in order."""
    results = []

    async def testbench(ctx):
        for values in inputs:
            for name, value in values.items():
                ctx.set(getattr(dut, name), int(value))
            await ctx.delay(1e-9)
            results.append(ctx.get(getattr(dut, output)))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(results, dtype=np.uint64)
