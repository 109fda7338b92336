"""opentsp.fp: the bit-level floating-point algorithms against numpy and ml_dtypes (bf16),
exhaustively for the 16-bit formats and on a million random operands per fp32 operation, with
every special-value class; the DAZ/FTZ policy is applied to the reference, never the other way
round."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from opentsp import fp

F32, F64 = np.float32, np.float64
RANDOM = 1_000_000
ALL16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
#: One of every class: zeros, subnormals, the smallest and largest normals, ones, infinities,
#: NaNs (quiet, signalling, negative), and values that overflow or cancel.
SPECIALS = np.array([0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x80800000,
                     0x00800001, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000, 0x7F800000,
                     0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC12345, 0x3F800001, 0x33800000,
                     0x4B800000, 0x0C000000], dtype=np.uint32)


def _daz(bits):
    bits = np.asarray(bits, dtype=np.uint32)
    return np.where((bits & 0x7F800000) == 0, bits & 0x80000000, bits).astype(np.uint32)


def _reference(op, a, b):
    """The documented rule, from float64: the exact result (mul) or its correct rounding (add;
    rounding twice, to 53 then 24 bits, is innocuous since 53 >= 2 x 24 + 2), rounded to 24
    bits with an unbounded exponent, then FTZ and overflow; NaN canonical."""
    with np.errstate(all="ignore"):
        x, y = _daz(a).view(F32).astype(F64), _daz(b).view(F32).astype(F64)
        exact = op(x, y)
        mantissa, exponent = np.frexp(exact)
        value = np.ldexp(np.rint(mantissa * 2.0 ** 24) / 2.0 ** 24, exponent)
        value = np.where(np.abs(value) < 2.0 ** -126, np.copysign(0.0, value), value)
        value = np.where(np.abs(value) >= 2.0 ** 128, np.copysign(np.inf, value), value)
        bits = value.astype(F32).view(np.uint32)
    return np.where(np.isnan(exact), np.uint32(fp.FP32.nan), bits)


def _random_operands(rng, n):
    """Random bit patterns (every class), and pairs of nearby magnitudes (carries, cancellation,
    rounding ties)."""
    wild = rng.integers(0, 1 << 32, (2, n), dtype=np.uint64).astype(np.uint32)
    a = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    near = (a.astype(np.int64) + rng.integers(-(1 << 26), 1 << 26, n)) & 0x7FFFFFFF
    near |= rng.integers(0, 2, n).astype(np.int64) << 31
    return (np.concatenate([wild[0], a]), np.concatenate([wild[1], near.astype(np.uint32)]))


OPS = [(fp.add32, np.add), (fp.sub32, np.subtract), (fp.mul32, np.multiply)]


@pytest.mark.parametrize("ours, theirs", OPS, ids=["add", "sub", "mul"])
def test_fp32_arithmetic_follows_its_rule_on_random_operands(ours, theirs):
    a, b = _random_operands(np.random.default_rng(18), RANDOM)
    np.testing.assert_array_equal(ours(a, b), _reference(theirs, a, b))


@pytest.mark.parametrize("ours, theirs", OPS, ids=["add", "sub", "mul"])
def test_fp32_arithmetic_equals_numpy_where_no_subnormal_is_involved(ours, theirs):
    """numpy's float32 result itself, bit for bit, wherever neither the operands nor numpy's
    result are subnormal (there the policy differs from IEEE by design) and NaNs aside."""
    a, b = _random_operands(np.random.default_rng(19), RANDOM)
    with np.errstate(all="ignore"):
        numpy = theirs(a.view(F32), b.view(F32))
    tiny = np.abs(numpy) < F32(2.0 ** -126) * F32(1 + 2.0 ** -22)
    keep = ~np.isnan(numpy) & ((numpy == 0) | ~tiny)
    keep &= (_daz(a) == a) & (_daz(b) == b)
    assert keep.mean() > 0.9
    np.testing.assert_array_equal(ours(a, b)[keep], numpy.view(np.uint32)[keep])
    assert np.all(ours(a, b)[np.isnan(numpy)] == fp.FP32.nan)


@pytest.mark.parametrize("ours, theirs", OPS, ids=["add", "sub", "mul"])
def test_fp32_special_values(ours, theirs):
    a, b = np.meshgrid(SPECIALS, SPECIALS)
    a, b = a.ravel(), b.ravel()
    got = ours(a, b)
    np.testing.assert_array_equal(got, _reference(theirs, a, b))


def _one(op, a, b):
    return int(op(np.uint32([a]), np.uint32([b]))[0])


def test_fp32_rules_spelled_out():
    pz, nz, one, half, inf = 0x00000000, 0x80000000, 0x3F800000, 0x3F000000, 0x7F800000
    tiny, smallest, largest, nan = 0x00000001, 0x00800000, 0x7F7FFFFF, fp.FP32.nan
    assert _one(fp.add32, nz, nz) == nz and _one(fp.add32, nz, pz) == pz
    assert _one(fp.add32, one, one | nz) == pz                 # x + (-x) = +0
    assert _one(fp.sub32, nz, pz) == nz and _one(fp.sub32, one, one) == pz
    assert _one(fp.add32, inf, inf | nz) == nan and _one(fp.sub32, inf, inf) == nan
    assert _one(fp.add32, tiny, tiny) == pz                    # subnormals read as zero
    assert _one(fp.add32, one, tiny) == one
    assert _one(fp.mul32, nz, pz) == nz and _one(fp.mul32, nz, one | nz) == pz
    assert _one(fp.mul32, pz, inf) == nan and _one(fp.mul32, inf | nz, one) == inf | nz
    assert _one(fp.mul32, smallest, half) == pz                # FTZ
    assert _one(fp.mul32, smallest | nz, half) == nz
    assert _one(fp.mul32, largest, 0x40000000) == inf          # overflow
    assert _one(fp.add32, 0x7F800001, one) == nan              # a signalling NaN, canonical


def test_widen_is_exact_for_every_fp16_and_bf16_value():
    for fmt, reference in ((fp.FP16, ALL16.view(np.float16).astype(F32)),
                           (fp.BF16, ALL16.view(ml_dtypes.bfloat16).astype(F32))):
        got = fp.widen(ALL16, fmt)
        nan = np.isnan(reference)
        assert nan.sum() == 2 * ((1 << fmt.man_bits) - 1)
        np.testing.assert_array_equal(got[~nan], reference.view(np.uint32)[~nan])
        assert np.all(got[nan] == fp.FP32.nan)


@pytest.mark.parametrize("fmt, dtype", [(fp.FP16, np.float16), (fp.BF16, ml_dtypes.bfloat16)],
                         ids=["fp16", "bf16"])
def test_narrow_rounds_to_nearest_even_like_numpy(fmt, dtype):
    """Every 16-bit value round trips; random fp32 patterns (and ones near the format's range,
    its subnormals and its overflow) round as numpy / ml_dtypes round them."""
    rng = np.random.default_rng(20)
    roundtrip = fp.narrow(fp.widen(ALL16, fmt), fmt)
    nan = np.isnan(ALL16.view(dtype).astype(F32))
    np.testing.assert_array_equal(roundtrip[~nan], ALL16[~nan])
    assert np.all(roundtrip[nan] == fmt.nan)
    wild = rng.integers(0, 1 << 32, RANDOM, dtype=np.uint64).astype(np.uint32)
    scale = 2.0 ** rng.uniform(-2 - fmt.bias - fmt.man_bits, fmt.bias + 2, RANDOM)
    with np.errstate(all="ignore"):
        near = (scale * rng.choice([-1, 1], RANDOM)).astype(F32).view(np.uint32)
        bits = np.concatenate([wild, near])
        reference = bits.view(F32).astype(dtype)
    got = fp.narrow(bits, fmt)
    nan = np.isnan(reference.astype(F32))
    np.testing.assert_array_equal(got[~nan], reference.view(np.uint16)[~nan])
    assert np.all(got[nan] == fmt.nan)


def test_int32_conversions():
    rng = np.random.default_rng(21)
    ints = np.concatenate([rng.integers(-(1 << 31), 1 << 31, RANDOM),
                           [0, 1, -1, (1 << 31) - 1, -(1 << 31), (1 << 24) + 1, (1 << 25) + 2,
                            (1 << 25) + 6, -(1 << 24) - 3]]).astype(np.int32)
    np.testing.assert_array_equal(fp.from_int32(ints), ints.astype(F32).view(np.uint32))
    bits = np.concatenate([rng.integers(0, 1 << 32, RANDOM, dtype=np.uint64).astype(np.uint32),
                           rng.uniform(-3e9, 3e9, RANDOM).astype(F32).view(np.uint32),
                           (rng.integers(-40, 40, 1000) + 0.5).astype(F32).view(np.uint32),
                           SPECIALS])
    with np.errstate(invalid="ignore"):
        values = bits.view(F32).astype(F64)
        expected = np.clip(np.rint(values), -(2.0 ** 31), 2.0 ** 31 - 1)
    expected = np.where(np.isnan(values), 0, expected).astype(np.int64).astype(np.int32)
    np.testing.assert_array_equal(fp.to_int32(bits), expected)


def test_formats():
    assert (fp.FP32.bias, fp.FP16.bias, fp.BF16.bias) == (127, 15, 127)
    assert (fp.FP32.nan, fp.FP16.nan, fp.BF16.nan) == (0x7FC00000, 0x7E00, 0x7FC0)
    assert fp.canonical_nan(fp.FP16).dtype == np.uint16


# Functions of one operand ----------------------------------------------------------------------

BF16_ALL = np.arange(1 << 16, dtype=np.uint32) << 16      # every bf16 value, as fp32


def _inputs(rng, n):
    """Every bf16 value, random fp32 patterns and random values in the functions' busy range."""
    return np.concatenate([BF16_ALL, rng.integers(0, 1 << 32, n, dtype=np.uint64)
                           .astype(np.uint32), rng.uniform(-20, 20, n).astype(F32)
                           .view(np.uint32), SPECIALS])


def max_ulp(got, reference):
    """The largest ``|got - reference|`` in ulps of the reference's binade, over references
    that are normal fp32 numbers (the rest are checked exactly)."""
    values = got.view(F32).astype(F64)
    normal = np.isfinite(reference) & (np.abs(reference) >= 2.0 ** -126) & \
        (np.abs(reference) < 2.0 ** 128)
    ulp = 2.0 ** (np.floor(np.log2(np.abs(reference[normal]))) - 23)
    return float(np.max(np.abs(values[normal] - reference[normal]) / ulp))


def _float64(bits):
    """fp32 patterns as float64 values, DAZ applied."""
    with np.errstate(invalid="ignore"):
        return _daz(bits).view(F32).astype(F64)


FUNCTIONS = [(fp.reciprocal32, lambda x: 1 / x), (fp.rsqrt32, lambda x: 1 / np.sqrt(x)),
             (fp.exp32, np.exp), (fp.tanh32, np.tanh)]


@pytest.mark.parametrize("ours, reference", FUNCTIONS, ids=["recip", "rsqrt", "exp", "tanh"])
def test_functions_within_one_ulp_of_float64(ours, reference):
    """Every bf16 input and random fp32 ones: within 1 ulp (measured: 0.5, see
    bench/fp_accuracy.py); results below 2**-126 flushed, overflow infinite, NaN canonical."""
    bits = _inputs(np.random.default_rng(22), 100_000)
    got = ours(bits)
    with np.errstate(all="ignore"):
        exact = reference(_float64(bits))
    assert max_ulp(got, exact) <= 1.0
    tiny = np.abs(exact) < 2.0 ** -126
    assert np.all((got[tiny & ~np.isnan(exact)] & 0x7FFFFFFF) == 0)
    assert np.all(got[np.isnan(exact)] == fp.FP32.nan)
    huge = np.isinf(exact) | (np.abs(exact) >= 2.0 ** 128)
    assert np.all((got[huge] & 0x7FFFFFFF) == 0x7F800000)


def test_reciprocal_is_correctly_rounded():
    """1/x in float64 is correctly rounded, and rounding it again to 24 bits is innocuous
    (53 >= 2 x 24 + 2): so the fp32 reciprocal must equal it exactly, FTZ applied."""
    bits = _inputs(np.random.default_rng(23), 200_000)
    with np.errstate(all="ignore"):
        reference = (1 / _float64(bits)).astype(F32)
    reference = np.where(np.abs(reference) < F32(2.0 ** -126), np.copysign(F32(0), reference),
                         reference)
    nan = np.isnan(reference)
    np.testing.assert_array_equal(fp.reciprocal32(bits)[~nan], reference.view(np.uint32)[~nan])


def test_function_special_values():
    one, inf, nan = 0x3F800000, 0x7F800000, fp.FP32.nan
    pz, nz, tiny = 0x00000000, 0x80000000, 0x00000001
    cases = {fp.reciprocal32: {pz: inf, nz: inf | nz, tiny: inf, inf: pz, inf | nz: nz,
                               one: one, 0x40000000: 0x3F000000, nan: nan},
             fp.rsqrt32: {pz: inf, nz: inf | nz, inf: pz, one | nz: nan, 0x40800000: 0x3F000000,
                          nan: nan},
             fp.exp32: {pz: one, nz: one, tiny: one, inf: inf, inf | nz: pz, nan: nan,
                         0x42C80000: inf, 0xC2C80000: pz},           # e**100, e**-100
             fp.tanh32: {pz: pz, nz: nz, inf: one, inf | nz: one | nz, nan: nan,
                          0x41A00000: one, 0x33000000: 0x33000000}}  # tanh(20), tanh(2**-25)
    for function, table in cases.items():
        for x, expected in table.items():
            assert int(function(np.uint32([x]))[0]) == expected, (function.__name__, hex(x))


# Compares, min and max, sign operations -------------------------------------------------------

def test_compares_min_max_and_sign_operations_against_numpy():
    """numpy's float32 comparisons, minimum/maximum and negation on DAZ'd operands, with the
    documented rules where IEEE leaves a choice: -0 < +0 for min/max, NaN canonical."""
    a, b = _random_operands(np.random.default_rng(24), RANDOM)
    grid_a, grid_b = (g.ravel() for g in np.meshgrid(SPECIALS, SPECIALS))
    a, b = np.concatenate([a, grid_a]), np.concatenate([b, grid_b])
    x, y = _daz(a).view(F32), _daz(b).view(F32)
    nan = np.isnan(x) | np.isnan(y)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(fp.cmpeq32(a, b), np.where(x == y, -1, 0))
        np.testing.assert_array_equal(fp.cmpgt32(a, b), np.where(x > y, -1, 0))
    zero_pair = (x == 0) & (y == 0)
    for ours, theirs in ((fp.max32, np.maximum), (fp.min32, np.minimum)):
        got = ours(a, b)
        assert np.all(got[nan] == fp.FP32.nan)
        plain = ~nan & ~zero_pair
        np.testing.assert_array_equal(got[plain], theirs(x, y).view(np.uint32)[plain])
        # -0 < +0: max(+0, -0) = +0 and min = -0 (numpy's choice depends on the order)
        signs = (_daz(a)[zero_pair] >> 31) & (_daz(b)[zero_pair] >> 31) if ours is fp.max32 \
            else (_daz(a)[zero_pair] >> 31) | (_daz(b)[zero_pair] >> 31)
        np.testing.assert_array_equal(got[zero_pair], signs.astype(np.uint32) << 31)
    for ours, theirs in ((fp.neg32, np.negative), (fp.abs32, np.abs)):
        got = ours(a)
        nan_a = np.isnan(x)
        np.testing.assert_array_equal(got[~nan_a], theirs(x).view(np.uint32)[~nan_a])
        assert np.all(got[nan_a] == fp.FP32.nan)
    relu = fp.relu32(a)
    expected = np.where(x > 0, x, F32(0)).view(np.uint32)
    np.testing.assert_array_equal(relu[~np.isnan(x)], expected[~np.isnan(x)])


# The MXM's dot products --------------------------------------------------------------------------

def _exact_dot(x, w, dtype):
    """The exact dot product of 16-bit floats as a Python Fraction (numpy's float64 values of
    the operands, every one exactly representable)."""
    xs, ws = x.view(dtype).astype(F64), w.view(dtype).astype(F64)
    return sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(xs, ws, strict=True)),
               Fraction(0))


def _round_fraction(value):
    """A Fraction rounded to fp32 by the documented rule (nearest even at 24 bits, FTZ, inf)."""
    if value == 0:
        return 0
    sign, magnitude = int(value < 0), abs(value)
    top = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if magnitude < Fraction(2) ** top:
        top -= 1
    scaled = magnitude / Fraction(2) ** (top - 23)
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * rest
    up = twice > scaled.denominator or (twice == scaled.denominator and whole & 1)
    return int(fp._make32(sign, top, whole + up))


@pytest.mark.parametrize("fmt, dtype", [(fp.FP16, np.float16), (fp.BF16, ml_dtypes.bfloat16)],
                         ids=["fp16", "bf16"])
def test_mxm_dot_is_the_exact_sum_rounded_once(fmt, dtype):
    """Random dot products of 4 to 640 terms (values over a wide range, so that sums cancel):
    equal bit for bit to the exact sum rounded once (Python fractions), so within half an ulp
    of float64's, and independent of the order of the terms."""
    rng = np.random.default_rng(25)
    for k in (4, 16, 320, 640):
        for _ in range(12):
            values = rng.standard_normal((2, k)) * 2.0 ** rng.integers(-12, 12, (2, k))
            x, w = (v.astype(dtype).view(np.uint16) for v in values)
            got = int(fp.mxm_dot32(x, w, fmt))
            assert got == _round_fraction(_exact_dot(x, w, dtype))
            order = rng.permutation(k)
            assert int(fp.mxm_dot32(x[order], w[order], fmt)) == got


def test_mxm_dot_special_values():
    one, inf, nan = 0x3C00, 0x7C00, 0x7E00                       # fp16
    dot = lambda x, w: int(fp.mxm_dot32(np.uint16(x), np.uint16(w), fp.FP16))  # noqa: E731
    assert dot([one, one], [one, one | 0x8000]) == 0              # exact cancellation: +0
    assert dot([inf, one], [one, one]) == 0x7F800000
    assert dot([inf, inf], [one, one | 0x8000]) == fp.FP32.nan    # +inf and -inf
    assert dot([inf, 0], [0, one]) == fp.FP32.nan                 # inf x 0
    assert dot([nan], [one]) == fp.FP32.nan
    assert dot([0x0001], [0x0001]) == 0x27800000                  # 2**-48: exact in fp32
    big = 0x7F7F                                                  # bf16 near 2**128
    assert int(fp.mxm_dot32(np.uint16([big]), np.uint16([big]), fp.BF16)) == 0x7F800000
    assert int(fp.mxm_dot32(np.uint16([big, big]), np.uint16([big, big | 0x8000]),
                            fp.BF16)) == fp.FP32.nan
