"""Accuracy of OpenTSP's floating-point functions (opentsp/fp.py) against numpy float64.

    .venv/bin/python bench/fp_accuracy.py [--random N]

For exp, reciprocal, rsqrt and tanh: the largest error in ulps (of the reference's binade) over
every bf16 input (65,536 values as fp32) and over N random fp32 inputs (default 10**6: half
random bit patterns, half uniform in [-20, 20]), only where the float64 reference is a normal
fp32 number (below 2**-126 results flush to zero, from 2**128 on they are infinite; both are
checked exactly by tests/test_fp.py). For add, sub and mul: the share of N random operand pairs
equal bit for bit to numpy's float32 result, where neither operand nor numpy's result is
subnormal (the DAZ/FTZ policy differs from IEEE there by design).
"""

import argparse
import time

import numpy as np

from opentsp import fp

F32, F64 = np.float32, np.float64
FUNCTIONS = (("exp", fp.exp32, np.exp), ("reciprocal", fp.reciprocal32, lambda x: 1 / x),
             ("rsqrt", fp.rsqrt32, lambda x: 1 / np.sqrt(x)), ("tanh", fp.tanh32, np.tanh))
OPS = (("add", fp.add32, np.add), ("sub", fp.sub32, np.subtract), ("mul", fp.mul32, np.multiply))


def as_float64(bits):
    """fp32 patterns as float64, subnormals read as zero (the functions' DAZ)."""
    with np.errstate(invalid="ignore"):
        values = bits.view(F32).astype(F64)
    return np.where((bits & 0x7F800000) == 0, np.copysign(0.0, values), values)


def max_ulp(got, reference):
    values = got.view(F32).astype(F64)
    normal = np.isfinite(reference) & (np.abs(reference) >= 2.0 ** -126) & \
        (np.abs(reference) < 2.0 ** 128)
    ulp = 2.0 ** (np.floor(np.log2(np.abs(reference[normal]))) - 23)
    return float(np.max(np.abs(values[normal] - reference[normal]) / ulp)), int(normal.sum())


def functions(count, rng):
    bf16 = np.arange(1 << 16, dtype=np.uint32) << 16
    random = np.concatenate([rng.integers(0, 1 << 32, count // 2, dtype=np.uint64)
                             .astype(np.uint32),
                             rng.uniform(-20, 20, count - count // 2).astype(F32)
                             .view(np.uint32)])
    print(f"{'function':<12}{'bf16: max ulp':>14}{'inputs':>9}{'random: max ulp':>17}"
          f"{'inputs':>10}{'seconds':>9}")
    for name, ours, reference in FUNCTIONS:
        start = time.time()
        row = []
        for bits in (bf16, random):
            with np.errstate(all="ignore"):
                exact = reference(as_float64(bits))
            row.append(max_ulp(ours(bits), exact))
        (a, na), (b, nb) = row
        print(f"{name:<12}{a:>14.3f}{na:>9}{b:>17.3f}{nb:>10}{time.time() - start:>9.1f}",
              flush=True)


def basic(count, rng):
    a = rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.uint32)
    print(f"\n{'operation':<12}{'pairs compared':>16}{'equal to numpy':>16}")
    for name, ours, theirs in OPS:
        with np.errstate(all="ignore"):
            numpy = theirs(a.view(F32), b.view(F32))
        normal = (a & 0x7F800000) != 0, (b & 0x7F800000) != 0
        keep = normal[0] & normal[1] & ~np.isnan(numpy) & \
            ((numpy == 0) | (np.abs(numpy) >= F32(2.0 ** -126) * F32(1 + 2.0 ** -22)))
        same = ours(a, b)[keep] == numpy.view(np.uint32)[keep]
        print(f"{name:<12}{int(keep.sum()):>16}{same.mean():>16.4%}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random", type=int, default=1_000_000, help="random inputs (10**6)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(2026)
    functions(args.random, rng)
    basic(args.random, rng)


if __name__ == "__main__":
    main()
