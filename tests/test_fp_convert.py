# amaranth: UnusedElaboratable=no
"""hdl/fp_widen.py, fp_narrow.py, fp_from_int.py, fp_to_int.py: the conversions in Amaranth's
simulator against opentsp.fp (itself tested against numpy and ml_dtypes in tests/test_fp.py):
every 16-bit value widened, and fp32 patterns (random, special, and near the 16-bit formats'
range, subnormals and overflow) narrowed and converted."""

import numpy as np
import pytest
from fp_cases import SPECIALS, run_comb

from opentsp import fp
from opentsp.hdl.fp_from_int import FpFromInt
from opentsp.hdl.fp_narrow import FpNarrow
from opentsp.hdl.fp_to_int import FpToInt
from opentsp.hdl.fp_widen import FpWiden

FORMATS = [fp.FP16, fp.BF16]


def _fp32_inputs(seed, count, fmt=fp.FP16):
    rng = np.random.default_rng(seed)
    wild = rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.uint32)
    scale = 2.0 ** rng.uniform(-2 - fmt.bias - fmt.man_bits, fmt.bias + 2, count)
    with np.errstate(over="ignore"):
        near = (scale * rng.choice([-1, 1], count)).astype(np.float32).view(np.uint32)
    ties = (rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.uint32)
            & ~np.uint32(0xFFF)) | np.uint32(0x1000)     # halfway cases for fp16 and bf16
    return np.concatenate([np.array(SPECIALS, dtype=np.uint32), wild, near, ties])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_widen_every_value(fmt):
    step = 7 if fmt is fp.FP16 else 5              # a spread sample of all 65,536 ...
    values = np.unique(np.concatenate([np.arange(0, 1 << 16, step),
                                       np.arange(0, 1 << 10), np.arange(0x7C00, 0x8400),
                                       np.arange(0xFC00, 1 << 16)])).astype(np.uint16)
    got = run_comb(FpWiden(fmt), [{"bits": v} for v in values], "result")
    np.testing.assert_array_equal(got, fp.widen(values, fmt))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_narrow(fmt):
    bits = _fp32_inputs(50, 1500, fmt)
    got = run_comb(FpNarrow(fmt), [{"bits": b} for b in bits], "result")
    np.testing.assert_array_equal(got, fp.narrow(bits, fmt))


def test_from_int32():
    rng = np.random.default_rng(51)
    ints = np.concatenate([rng.integers(-(1 << 31), 1 << 31, 2000),
                           [0, 1, -1, (1 << 31) - 1, -(1 << 31), (1 << 24) + 1, (1 << 25) + 2,
                            (1 << 25) + 6, -(1 << 24) - 3, 1 << 23]]).astype(np.int32)
    got = run_comb(FpFromInt(), [{"value": int(v) & 0xFFFFFFFF} for v in ints], "result")
    np.testing.assert_array_equal(got, fp.from_int32(ints))


def test_to_int32():
    rng = np.random.default_rng(52)
    bits = np.concatenate([_fp32_inputs(53, 800),
                           rng.uniform(-3e9, 3e9, 800).astype(np.float32).view(np.uint32),
                           (rng.integers(-40, 40, 200) + 0.5).astype(np.float32)
                           .view(np.uint32)])
    got = run_comb(FpToInt(), [{"bits": b} for b in bits], "value")
    np.testing.assert_array_equal(got.astype(np.uint32).view(np.int32), fp.to_int32(bits))


@pytest.mark.parametrize("component", [FpWiden, FpNarrow])
def test_formats_other_than_16_bit_are_refused(component):
    with pytest.raises(ValueError, match=r"format must be fp.FP16 or fp.BF16, not Format\("
                                         r"name='fp32'"):
        component(fp.FP32)
