"""hdl/fp_mul.py: the fp32 multiplier in Amaranth's simulator against opentsp.fp on every pair
of special values and random operands."""

import numpy as np
from fp_cases import operand_pairs, run_comb

from opentsp import fp
from opentsp.hdl.fp_mul import FpMul


def test_fp_mul_equals_the_reference():
    a, b = operand_pairs(seed=40, count=1500)
    got = run_comb(FpMul(), [{"a": x, "b": y} for x, y in zip(a, b, strict=True)], "result")
    expected = fp.mul32(a, b)
    mismatch = np.flatnonzero(got != expected)
    assert mismatch.size == 0, [(hex(a[i]), hex(b[i]), hex(int(got[i])), hex(expected[i]))
                                for i in mismatch[:5]]
