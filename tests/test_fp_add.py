"""hdl/fp_add.py: the fp32 adder in Amaranth's simulator against opentsp.fp (the reference,
itself tested against numpy in tests/test_fp.py) on every pair of special values and random
operands, adding and subtracting."""

import numpy as np
import pytest
from fp_cases import operand_pairs, run_comb

from opentsp import fp
from opentsp.hdl.fp_add import FpAdd


@pytest.mark.parametrize("subtract", [0, 1], ids=["add", "sub"])
def test_fp_add_equals_the_reference(subtract):
    a, b = operand_pairs(seed=30 + subtract, count=1500)
    got = run_comb(FpAdd(), [{"a": x, "b": y, "subtract": subtract}
                             for x, y in zip(a, b, strict=True)], "result")
    expected = (fp.sub32 if subtract else fp.add32)(a, b)
    mismatch = np.flatnonzero(got != expected)
    assert mismatch.size == 0, [(hex(a[i]), hex(b[i]), hex(int(got[i])), hex(expected[i]))
                                for i in mismatch[:5]]
