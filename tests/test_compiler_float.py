"""The compiler on floating point (ISA v5): float32 elementwise operations and functions, and the
conversions between float32, the integers, float16 and bfloat16, on the VXM.

Every compiled program passes the checker (rule 14 included: ``cvt.i32.f32`` between the MXM's
int32 accumulators and f32 arithmetic), assembles to its own image, and runs on the golden model
in the predicted cycle count; its outputs equal the graph's meaning (``prog.reference``,
:mod:`opentsp.fp` on bit patterns) bit for bit, and numpy's own arithmetic: exactly for add, mul,
maximum and the conversions (IEEE float32 arithmetic, rounding to nearest even, on normal
numbers), within 2 ulp of float64 for the functions.
"""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from compiled import bits, run_checked

from opentsp.compiler import CompileError, Graph, compile_graph, derive_config

RNG_SEED = 2027
CONFIGS = ("default", "wide")
#: Unsigned integers of each type's width (bit patterns).
def _assert_bits_equal(got, expected):
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    np.testing.assert_array_equal(bits(got), bits(expected))


def _ulps(got, exact):
    """Distance in float32 ulps between float32 ``got`` and float64 ``exact`` rounded to float32
    (on the ordered integer line of the bit patterns)."""
    def key(values):
        ordered = bits(np.asarray(values, np.float32)).astype(np.int64)
        return np.where(ordered >> 31, -(ordered & 0x7FFFFFFF), ordered)
    with np.errstate(over="ignore"):
        return np.abs(key(got) - key(exact.astype(np.float32)))


def _normal(rng, shape, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(np.float32)


# Compiled programs on the golden model ---------------------------------------------------------

@pytest.mark.parametrize("config,shape", [("default", (1, 4)), ("default", (3, 6)),
                                          ("wide", (2, 8)), ("wide", (3, 11))])
def test_exp_of_an_input(config, shape):
    """float32 input -> exp -> output: one ``exp.f32`` per row block, read from memory; values
    from underflow (flushed to 0) to overflow (inf) included."""
    rng = np.random.default_rng([RNG_SEED, *shape])
    x = _normal(rng, shape, 4.0)
    x.flat[0] = -110.0          # below 2**-126: flushes to +0
    x.flat[-1] = 89.0           # above the largest float32: +inf
    g = Graph("exp")
    g.output("y", g.exp(g.input("x", shape, "float32"), name="e"))
    prog = compile_graph(g, config)
    assert "exp.f32" in prog.asm
    y = run_checked(prog, {"x": x})["y"]
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))
    assert y.flat[0] == 0 and np.isposinf(y.flat[-1])
    assert _ulps(y, exact).max() <= 2


#: Two planes per MXM, two weight columns per lw element: the chains drain every plane.
PLANES = derive_config("default", "planes", mxm_planes=2, mxm_load_rows=2)


@pytest.mark.parametrize("config,shape", [("default", (3, 5, 6)), ("default", (2, 9, 3)),
                                          ("wide", (3, 10, 8)), ("wide", (2, 5, 13)),
                                          (PLANES, (4, 6, 7))],
                         ids=lambda v: getattr(v, "name", str(v)))
def test_matmul_cast_mul_tanh_chain(config, shape):
    """x int8 @ W -> cast float32 -> mul by a float32 input -> tanh: one chain fed by ``acc``
    (``cvt.i32.f32``, ``mul.f32`` with its operand from memory, ``tanh.f32``)."""
    m, k, n = shape
    rng = np.random.default_rng([RNG_SEED + 1, *shape])
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    s = _normal(rng, (m, n), 1e-4)
    g = Graph("mlp")
    h = g.cast(g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"), "float32", name="c")
    g.output("y", g.tanh(g.mul(h, g.input("s", (m, n), "float32"), name="m"), name="t"))
    prog = compile_graph(g, config)
    assert "fc->c+m+t" in prog.asm and "cvt.i32.f32" in prog.asm
    y = run_checked(prog, {"x": x, "s": s})["y"]
    acc = x.astype(np.int64) @ w.astype(np.int64)
    product = acc.astype(np.float32) * s                # IEEE float32, as mul.f32
    assert _ulps(y, np.tanh(product.astype(np.float64))).max() <= 2


@pytest.mark.parametrize("config", CONFIGS)
def test_float_requantisation_saturates_and_rounds_to_even(config):
    """acc -> cast float32 -> bias_add -> mul by a scale -> cast int8: a float requantisation
    fused into the drain, saturating beyond int8; acc -> cast float32 -> bias_add of halves ->
    relu -> cast int32: every value a tie, rounded to even."""
    rng = np.random.default_rng(RNG_SEED + 2)
    m, k, n = 3, 6, 5
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    b = np.array([0.5, -0.5, 1.5, 2.5, -3.5], np.float32)
    scale = rng.uniform(-0.02, 0.02, (m, n)).astype(np.float32)
    g = Graph("fq")
    tx = g.input("x", (m, k))
    h = g.cast(g.matmul(tx, g.const("w", w), name="fc"), "float32")
    h = g.mul(g.bias_add(h, g.const("b", b), name="bias"), g.const("scale", scale), name="sc")
    g.output("q", g.cast(h, "int8", name="q"))
    t = g.bias_add(g.cast(g.matmul(tx, g.const("w2", w)), "float32"), g.const("b2", b))
    g.output("q32", g.cast(g.relu(t), np.int32, name="q32"))
    prog = compile_graph(g, config)
    out = run_checked(prog, {"x": x})
    acc = x.astype(np.int64) @ w.astype(np.int64)
    scaled = (acc.astype(np.float32) + b) * scale
    assert (np.abs(scaled) > 128).any() and (np.abs(scaled) < 127).any()
    np.testing.assert_array_equal(out["q"], np.clip(np.rint(scaled), -128, 127).astype(np.int8))
    ties = np.maximum(acc.astype(np.float32) + b, 0)
    np.testing.assert_array_equal(out["q32"], np.rint(ties).astype(np.int32))
    assert (out["q32"] != np.floor(ties + 0.5)).any()


@pytest.mark.parametrize("config,shape", [("default", (2, 5)), ("wide", (3, 9))])
def test_half_precision_round_trips(config, shape):
    """float32 -> bfloat16 -> float32 and float32 -> float16 -> float32, fused and through
    memory (a stored half-precision output read back by a kernel of its own): bfloat16 and
    float16 values as ``ml_dtypes``/numpy round them (to nearest even, float16 overflow to inf
    and subnormals kept), widening exact."""
    rng = np.random.default_rng([RNG_SEED + 3, *shape])
    x = _normal(rng, shape, 10.0)
    x.flat[0], x.flat[1] = 1e6, -3e-6          # float16: inf, a subnormal
    g = Graph("halves")
    tx = g.input("x", shape, "float32")
    bf = g.cast(tx, "bfloat16", name="bf")
    g.output("bf", bf)
    g.output("bf32", g.cast(bf, "float32", name="bf32"))                  # from memory
    g.output("f32", g.cast(g.cast(tx, np.float16, name="h"), "float32", name="f32"))  # fused
    prog = compile_graph(g, config)
    assert {"cvt.f32.bf16", "cvt.bf16.f32", "cvt.f32.f16", "cvt.f16.f32"} <= set(prog.asm.split())
    out = run_checked(prog, {"x": x})
    _assert_bits_equal(out["bf"], x.astype(ml_dtypes.bfloat16))
    _assert_bits_equal(out["bf32"], x.astype(ml_dtypes.bfloat16).astype(np.float32))
    with np.errstate(over="ignore"):
        _assert_bits_equal(out["f32"], x.astype(np.float16).astype(np.float32))
    assert np.isposinf(out["f32"].flat[0]) and 0 > out["f32"].flat[1] > -6.2e-5


def test_half_precision_inputs_and_bit_pattern_inputs():
    """A bfloat16 input given as ml_dtypes values or as uint16 bit patterns, a float16 input,
    both widened, combined and narrowed again."""
    rng = np.random.default_rng(RNG_SEED + 4)
    a = _normal(rng, (2, 6)).astype(ml_dtypes.bfloat16)
    h = _normal(rng, (2, 6)).astype(np.float16)
    g = Graph("halves_in")
    wa = g.cast(g.input("a", (2, 6), "bfloat16"), "float32")
    wh = g.cast(g.input("h", (2, 6), "float16"), "float32")
    g.output("y", g.cast(g.add(wa, wh, name="s"), "bfloat16", name="y"))
    prog = compile_graph(g, "default")
    y = run_checked(prog, {"a": a, "h": h})["y"]
    expected = (a.astype(np.float32) + h.astype(np.float32)).astype(ml_dtypes.bfloat16)
    _assert_bits_equal(y, expected)
    _assert_bits_equal(run_checked(prog, {"a": a.view(np.uint16), "h": h})["y"], expected)


@pytest.mark.parametrize("config,shape", [("default", (3, 5)), ("wide", (2, 12))])
def test_reciprocal_and_rsqrt_of_positive_inputs(config, shape):
    """Correctly rounded: ``recip.f32`` equals float32(1 / float64 x) (double rounding is
    harmless for a quotient, 53 >= 2 x 24 + 2), ``rsqrt.f32`` is within 1 ulp of float64."""
    rng = np.random.default_rng([RNG_SEED + 5, *shape])
    x = np.exp(rng.uniform(-20, 20, shape)).astype(np.float32)
    g = Graph("recips")
    tx = g.input("x", shape, "float32")
    g.output("r", g.reciprocal(tx, name="r"))
    g.output("q", g.rsqrt(tx, name="q"))
    prog = compile_graph(g, config)
    assert "recip.f32" in prog.asm and "rsqrt.f32" in prog.asm
    out = run_checked(prog, {"x": x})
    _assert_bits_equal(out["r"], (1 / x.astype(np.float64)).astype(np.float32))
    assert _ulps(out["q"], 1 / np.sqrt(x.astype(np.float64))).max() <= 1


@pytest.mark.parametrize("config", CONFIGS)
def test_softmax_of_pairs(config):
    """Softmax over two tensors, elementwise: ``m = maximum(x1, x2)``, ``e_i = exp(x_i + (-1)
    m)``, ``p1 = e1 * reciprocal(e1 + e2)``. Kernels read from memory, tensors with two users
    stored once, chains of mul, add, exp; numpy float32 for the exact steps, float64 for the
    functions."""
    rng = np.random.default_rng(RNG_SEED + 6)
    shape = (3, 7) if config == "default" else (2, 10)
    x1, x2 = _normal(rng, shape, 3.0), _normal(rng, shape, 3.0)
    minus = np.full(shape, -1.0, np.float32)
    g = Graph("softmax2")
    t1, t2 = g.input("x1", shape, "float32"), g.input("x2", shape, "float32")
    neg = g.mul(g.maximum(t1, t2, name="m"), g.const("minus", minus), name="neg")
    e1 = g.exp(g.add(t1, neg, name="d1"), name="e1")
    e2 = g.exp(g.add(neg, t2, name="d2"), name="e2")
    g.output("e1", e1)
    g.output("e2", e2)
    g.output("p1", g.mul(e1, g.reciprocal(g.add(e1, e2, name="sum"), name="inv"), name="p1"))
    prog = compile_graph(g, config)
    assert "max.f32" in prog.asm
    out = run_checked(prog, {"x1": x1, "x2": x2})
    neg_np = np.maximum(x1, x2) * np.float32(-1)
    for name, x in (("e1", x1), ("e2", x2)):
        assert _ulps(out[name], np.exp((x + neg_np).astype(np.float64))).max() <= 2
    e1_np, e2_np = out["e1"], out["e2"]
    inv = (1 / (e1_np + e2_np).astype(np.float64)).astype(np.float32)
    _assert_bits_equal(out["p1"], e1_np * inv)
    assert (np.maximum(out["e1"], out["e2"]) == 1).all()


def test_adds_of_float_inputs_that_share_slices():
    """Two float32 inputs spread over the same four slices of ``default`` never reach the VXM in
    one cycle: the first passes through (``or.f32``, the bit pattern, still an f32 for rule
    14), then ``add.f32``; relu.f32 makes -0 and negatives +0."""
    rng = np.random.default_rng(RNG_SEED + 7)
    a, b = _normal(rng, (2, 5)), _normal(rng, (2, 5))
    b[0, 0] = -a[0, 0]                                  # x + (-x) = +0
    g = Graph("fadd")
    s = g.add(g.input("a", a.shape, "float32"), g.input("b", b.shape, "float32"), name="s")
    g.output("s", s)
    g.output("r", g.relu(g.mul(s, s, name="sq"), name="r"))
    g.output("n", g.relu(g.const("neg", -np.abs(a))))
    prog = compile_graph(g, "default")
    assert "or.f32" in prog.asm
    out = run_checked(prog, {"a": a, "b": b})
    _assert_bits_equal(out["s"], a + b)
    _assert_bits_equal(out["r"], (a + b) * (a + b))
    assert bits(out["s"])[0, 0] == 0 and (bits(out["n"]) == 0).all()


#: Special float32 bit patterns: NaNs (canonical, negative with a payload), infinities, zeros,
#: subnormals (read as zero), the extremes, ties for the conversions.
SPECIALS = np.array([0x7FC00000, 0xFFA00001, 0x7F800000, 0xFF800000, 0x80000000, 0x00000000,
                     0x00000001, 0x807FFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x00800000, 0x3F800000,
                     0xBFC00000, 0x40200000, 0x4F000000, 0xCF000001], np.uint32).view(np.float32)


@pytest.mark.parametrize("config", CONFIGS)
def test_special_values(config):
    """NaN, infinities, signed zeros and subnormals through every float32 operation and cast:
    the golden model equals the graph's meaning bit for bit (the canonical NaN, DAZ, FTZ,
    saturation) and the documented special cases hold."""
    x = SPECIALS.reshape(2, 8)
    g = Graph("specials")
    tx = g.input("x", x.shape, "float32")
    ones = g.const("ones", np.ones(x.shape, np.float32))
    for op in ("relu", "exp", "reciprocal", "rsqrt", "tanh"):
        g.output(op, getattr(g, op)(tx, name=op))
    g.output("add", g.add(tx, ones, name="add"))
    g.output("mul", g.mul(tx, tx, name="mul"))
    g.output("max", g.maximum(tx, g.const("zero", np.full(x.shape, -0.0, np.float32)),
                              name="max"))
    for dtype in ("int8", "int32", "bfloat16", "float16"):
        g.output(dtype, g.cast(tx, dtype, name=dtype))
    prog = compile_graph(g, config)
    out = run_checked(prog, {"x": x})
    nan = np.uint32(0x7FC00000)
    assert (bits(out["exp"])[0, :2] == nan).all() and (bits(out["add"])[0, :2] == nan).all()
    assert list(bits(out["reciprocal"])[0, 4:8]) == [0xFF800000, 0x7F800000, 0x7F800000,
                                                      0xFF800000]           # DAZ: 1/±0
    assert list(out["exp"][0, 2:4]) == [np.inf, 0] and list(out["tanh"][0, 2:4]) == [1, -1]
    assert (bits(out["relu"])[0, 4:8] == 0).all()                          # +0, subnormals
    assert list(out["int32"][1]) == [2**31 - 1, -2**31, 0, 1, -2, 2, 2**31 - 1, -2**31]
    assert list(out["int8"][0, :4]) == [0, 0, 127, -128]
    _assert_bits_equal(out["bfloat16"][0, 2:], x[0, 2:].astype(ml_dtypes.bfloat16))
    with np.errstate(over="ignore"):
        _assert_bits_equal(out["float16"][:, 2:], x[:, 2:].astype(np.float16))


def test_integer_mul_maximum_and_casts():
    """``mul`` and ``maximum`` of integers: int8 wraps (the low half), int32 maximum signed;
    ``cast`` int8 -> int32 sign-extends (``cvt.i8.i32``), int32 -> int8 saturates."""
    rng = np.random.default_rng(RNG_SEED + 8)
    a, b = (rng.integers(-128, 128, (2, 6), dtype=np.int8) for _ in range(2))
    p, q = (rng.integers(-(1 << 31), 1 << 31, (2, 6), dtype=np.int64).astype(np.int32)
            for _ in range(2))
    g = Graph("ints")
    g.output("ab", g.mul(g.input("a", a.shape), g.input("b", b.shape)))
    pq = g.maximum(g.input("p", p.shape, "int32"), g.input("q", q.shape, "int32"))
    g.output("pq", pq)
    g.output("a32", g.cast(g.input("a2", a.shape), "int32"))
    g.output("pq8", g.cast(pq, "int8"))
    prog = compile_graph(g, "default")
    assert "cvt.i8.i32" in prog.asm and "cvt.i32.i8" in prog.asm
    out = run_checked(prog, {"a": a, "b": b, "p": p, "q": q, "a2": a})
    np.testing.assert_array_equal(out["ab"], (a.astype(np.int64) * b).astype(np.int8))
    np.testing.assert_array_equal(out["pq"], np.maximum(p, q))
    np.testing.assert_array_equal(out["a32"], a.astype(np.int32))
    np.testing.assert_array_equal(out["pq8"], np.clip(np.maximum(p, q), -128, 127))


# Floating-point matmuls (ISA v6: lw.T, abc.T, acc.f32) -----------------------------------------

_HALF = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _round_f32(q):
    """The float32 nearest to the rational ``q`` (ties to even), for ``q`` in the normal range
    (asserted): the correctly rounded value, without float64's double rounding."""
    if q == 0:
        return np.float32(0.0)
    sign, q = (-1 if q < 0 else 1), abs(q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1                                         # 2**e <= q < 2**(e + 1)
    assert -126 <= e <= 127, q
    scaled = q / Fraction(2) ** (e - 23)               # in [2**23, 2**24)
    n = scaled.numerator // scaled.denominator
    rest = scaled - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2):
        n += 1
    return np.float32(sign * float(n) * 2.0 ** (e - 23))


def _exact_matmul(x, w):
    """float32 of the exact rational ``x @ w`` (float16 / bfloat16 -> float64 is exact)."""
    xf = [[Fraction(float(v)) for v in row] for row in x.astype(np.float64)]
    wf = [[Fraction(float(v)) for v in col] for col in w.astype(np.float64).T]
    return np.array([[_round_f32(sum((a * b for a, b in zip(row, col, strict=True)),
                                     Fraction(0))) for col in wf] for row in xf], np.float32)


def _float_matmul_graph(name, x, w, dtype, mm="fc"):
    g = Graph(name)
    h = g.matmul(g.input("x", x.shape, dtype), g.const("w", w), name=mm)
    return g, h


@pytest.mark.parametrize("config,shape,dtype", [
    ("default", (1, 4, 4), "bfloat16"), ("default", (3, 9, 6), "float16"),
    ("default", (5, 13, 10), "bfloat16"), ("default", (2, 5, 3), "float16"),
    ("wide", (4, 7, 9), "float16"), ("wide", (2, 17, 12), "bfloat16"),
    (PLANES, (4, 6, 7), "bfloat16"), (PLANES, (3, 10, 5), "float16")],
    ids=lambda v: getattr(v, "name", str(v)))
def test_float_matmul(config, shape, dtype):
    """x @ w of float16 or bfloat16 -> float32 on the MXM (``lw.T``, ``abc.T``, ``acc.f32``):
    K tiled over several ``abc ... add=1`` into one exact accumulator, N over column blocks, M
    over accumulators (and, on ``planes``, two planes per MXM, two weight columns per lw
    element): every element the float32 nearest the exact sum of the exact products (numpy's
    float32 matmul rounds at every addition; float64 is checked within a tolerance too)."""
    m, k, n = shape
    rng = np.random.default_rng([RNG_SEED + 20, *shape])
    x = rng.normal(size=(m, k)).astype(_HALF[dtype])
    w = (rng.normal(size=(k, n)) * 8).astype(_HALF[dtype])
    g, h = _float_matmul_graph("fmm", x, w, dtype)
    g.output("y", h)
    prog = compile_graph(g, config)
    suffix = {"float16": "f16", "bfloat16": "bf16"}[dtype]
    assert {f"lw.{suffix}", f"abc.{suffix}", "acc.f32"} <= set(prog.asm.split())
    assert h.dtype == "float32" and prog.mac_ops == m * k * n
    y = run_checked(prog, {"x": x})["y"]
    _assert_bits_equal(y, _exact_matmul(x, w))
    np.testing.assert_allclose(y, x.astype(np.float64) @ w.astype(np.float64), rtol=1e-6,
                               atol=1e-5)


def test_float_matmul_is_exact_across_k_tiles():
    """Products that cancel in different K tiles of ``default`` (K = 12, three tiles of 4) leave
    the small ones exactly: one rounding of the whole sum, where float32 summation in order
    loses them."""
    x = np.zeros((2, 12), ml_dtypes.bfloat16)
    x[0, [0, 5, 11]] = [2.0 ** 60, 3.0, -(2.0 ** 60)]
    x[1, [1, 6, 10]] = [1.0, 2.0 ** -20, 2.0 ** 30]
    w = np.ones((12, 4), ml_dtypes.bfloat16)
    w[:, 1] = -1
    w[10, 2:] = [2.0 ** -40, 0]
    g, h = _float_matmul_graph("cancel", x, w, "bfloat16")
    g.output("y", h)
    prog = compile_graph(g, "default")
    y = run_checked(prog, {"x": x})["y"]
    _assert_bits_equal(y, _exact_matmul(x, w))
    assert list(y[0]) == [3, -3, 3, 3]
    assert y[1, 2] == np.float32(1 + 2.0 ** -20 + 2.0 ** -10)
    in_order = np.float32(0)
    for v in x[0].astype(np.float32):
        in_order += v
    assert in_order == 0


def test_float_matmul_special_values():
    """Zeros, infinities and NaN in x and w, bfloat16 x as uint16 bit patterns too, float16
    subnormals: the MXM's sticky flags (NaN if any product is NaN or 0 x inf, or if +inf and
    -inf meet; else the infinity), +0 for an all-zero row, a product of 2**128 or more an
    infinity, a finite sum beyond float32 rounded to infinity, huge products that cancel
    exactly; the golden model equals ``fp.mxm_dot32`` bit for bit."""
    inf, nan, big = np.inf, np.nan, 2.0 ** 127
    x = np.array([[1, 2, 3, 4, 5],                   # plain
                  [0, 0, 0, 0, 0],                   # +0 (not -0); 0 x inf: NaN
                  [inf, 1, 1, 1, 1],                 # inf x w: +-inf, inf x 0: NaN
                  [nan, 0, 0, 0, 0],                 # NaN everywhere
                  [2.0 ** 64, 0, 0, big, big],       # sums beyond float32: inf
                  [2.0 ** 64, 0, 0, big, -big]],     # products that cancel exactly
                 np.float64).astype(ml_dtypes.bfloat16)
    w = np.array([[1, -1, 0, 2.0 ** 64],
                  [1, 1, 1, 1],
                  [1, 1, -inf, 1],
                  [1, 1, 1, 1],
                  [1, 1, 1, 1]], np.float64).astype(ml_dtypes.bfloat16)
    g, h = _float_matmul_graph("specials", x, w, "bfloat16")
    g.output("y", h)
    prog = compile_graph(g, "default")
    y = run_checked(prog, {"x": x.view(np.uint16)})["y"]
    _assert_bits_equal(y, run_checked(prog, {"x": x})["y"])
    expected = np.array([[15, 13, -inf, 2.0 ** 64],
                         [0, 0, nan, 0],
                         [inf, -inf, nan, inf],
                         [nan, nan, nan, nan],
                         [inf, inf, nan, inf],
                         [2.0 ** 64, -(2.0 ** 64), nan, inf]], np.float32)
    np.testing.assert_array_equal(y, expected)
    assert (bits(y[1, [0, 1, 3]]) == 0).all()               # +0, not -0
    assert (bits(y[np.isnan(y)]) == 0x7FC00000).all()        # the canonical NaN
    x16 = np.array([[65504, 65504, 0, -0.0], [2.0 ** -24, 3 * 2.0 ** -24, 0, 0]], np.float16)
    w16 = np.ones((4, 1), np.float16)
    g, h = _float_matmul_graph("specials16", x16, w16, "float16")
    g.output("y", h)
    y16 = run_checked(compile_graph(g, "default"), {"x": x16})["y"]
    assert list(y16[:, 0]) == [131008, 2.0 ** -22]           # beyond float16; subnormals kept


@pytest.mark.parametrize("config", CONFIGS)
def test_float_matmul_with_fused_epilogue_and_second_layer(config):
    """bfloat16 x @ w1 -> bias_add (float32) -> relu, fused into the drain (``acc.f32`` feeds
    ``add.f32`` then ``relu.f32``), cast to bfloat16 in the same chain and multiplied by w2
    (K = 8, a multiple of mxm_size); the matmul's float32 result is also an output and feeds a
    mul by a float32 input and tanh from memory."""
    rng = np.random.default_rng(RNG_SEED + 21)
    m, k, hidden, n = 3, 6, 8, 5
    x = rng.normal(size=(m, k)).astype(ml_dtypes.bfloat16)
    w1 = rng.normal(size=(k, hidden)).astype(ml_dtypes.bfloat16)
    b1 = rng.normal(size=hidden).astype(np.float32)
    w2 = rng.normal(size=(hidden, n)).astype(ml_dtypes.bfloat16)
    s = _normal(rng, (m, n), 0.5)
    g = Graph("fmlp")
    tx = g.input("x", x.shape, "bfloat16")
    h = g.relu(g.bias_add(g.matmul(tx, g.const("w1", w1), name="fc1"), g.const("b1", b1),
                          name="bias"), name="act")
    q = g.cast(h, "bfloat16", name="q")
    y = g.matmul(q, g.const("w2", w2), name="fc2")
    g.output("y", y)
    g.output("t", g.tanh(g.mul(y, g.input("s", s.shape, "float32"), name="sc"), name="t"))
    prog = compile_graph(g, config)
    assert "fc1->bias+act+q" in prog.asm and "sc+t" in prog.asm
    out = run_checked(prog, {"x": x, "s": s})
    h_np = np.maximum(_exact_matmul(x, w1) + b1, 0)            # IEEE float32 add, as add.f32
    q_np = h_np.astype(ml_dtypes.bfloat16)
    _assert_bits_equal(out["y"], _exact_matmul(q_np, w2))
    assert _ulps(out["t"], np.tanh((out["y"] * s).astype(np.float64))).max() <= 2


# Bad input -------------------------------------------------------------------------------------

def _graph():
    g = Graph()
    return g, g.input("x", (2, 3), "float32"), g.input("i", (2, 3), "int32")


@pytest.mark.parametrize("op", ["exp", "reciprocal", "rsqrt", "tanh"])
def test_functions_take_float32_only(op):
    g, _, i = _graph()
    with pytest.raises(CompileError, match=rf"^node 'e' \({op}\): unsupported dtype int32 "
                                           rf"\({op} takes float32\)$"):
        getattr(g, op)(i, name="e")


def test_elementwise_bad_inputs():
    g, x, i = _graph()
    h = g.cast(x, "float16", name="h")
    with pytest.raises(CompileError, match=r"^node 's' \(add\): unsupported dtype float16 \(add "
                                           r"takes int8, int32 or float32\)$"):
        g.add(h, h, name="s")
    with pytest.raises(CompileError, match=r"^node 'r' \(relu\): unsupported dtype float16 "
                                           r"\(relu takes int8, int32 or float32\)$"):
        g.relu(h, name="r")
    with pytest.raises(CompileError, match=r"^node 'm' \(mul\): shapes differ: \(2, 3\) \* "
                                           r"\(3, 2\)$"):
        g.mul(x, g.input("y", (3, 2), "float32"), name="m")
    with pytest.raises(CompileError, match=r"^node 'mx' \(maximum\): dtypes differ: float32 and "
                                           r"int32$"):
        g.maximum(x, i, name="mx")
    with pytest.raises(CompileError, match=r"^node 'b' \(bias_add\): unsupported dtype float32 "
                                           r"\+ int32 \(bias_add takes int32 \+ int32 or float32 "
                                           r"\+ float32\)$"):
        g.bias_add(x, g.const("c", np.zeros(3, np.int32)), name="b")
    with pytest.raises(CompileError, match=r"^node 'mm' \(matmul\): unsupported dtype float32 "
                                           r"for x \(matmul takes int8, float16 or bfloat16\)$"):
        g.matmul(x, g.const("w", np.zeros((3, 3), np.int8)), name="mm")
    with pytest.raises(CompileError, match=r"^node 'f' \(const\): unsupported dtype float64 "
                                           r"\(int8, int32, float32, float16 or bfloat16\)$"):
        g.const("f", np.zeros((2, 2)))


def test_cast_bad_inputs():
    g, x, i = _graph()
    with pytest.raises(CompileError, match=r"^node 'c' \(cast\): unknown dtype 'float64' \(int8, "
                                           r"int32, float32, float16 or bfloat16\)$"):
        g.cast(x, np.float64, name="c")
    with pytest.raises(CompileError, match=r"^node 'c' \(cast\): unknown dtype 'f32'"):
        g.cast(x, "f32", name="c")
    with pytest.raises(CompileError, match=r"^node 'c' \(cast\): operand x 'x' is already "
                                           r"float32$"):
        g.cast(x, "float32", name="c")
    with pytest.raises(CompileError, match=r"^node 'c' \(cast\): unsupported cast int32 -> "
                                           r"bfloat16 \(bfloat16 converts only to and from "
                                           r"float32\)$"):
        g.cast(i, "bfloat16", name="c")
    h = g.cast(x, "float16", name="h")
    with pytest.raises(CompileError, match=r"^node 'c' \(cast\): unsupported cast float16 -> "
                                           r"bfloat16 \(float16 converts only to and from "
                                           r"float32\)$"):
        g.cast(h, "bfloat16", name="c")


def test_float_inputs_must_match_and_chips_need_floating_point():
    g = Graph("e")
    g.output("y", g.exp(g.input("x", (2, 4), "float32"), name="e"))
    prog = compile_graph(g, "default")
    with pytest.raises(CompileError, match=r"^input 'x' must be float32 \(2, 4\), not float64 "
                                           r"\(2, 4\)$"):
        prog.image_for({"x": np.zeros((2, 4))})
    with pytest.raises(CompileError, match=r"^node 'e' \(exp\): configuration 'nofp' is built "
                                           r"without floating point \(Config.floating_point\)$"):
        compile_graph(g, derive_config("default", "nofp", floating_point=False))


def test_float_matmul_bad_inputs():
    """Mixed types name the node and both types; float weights must be constants like int8 ones;
    float32 is no matmul type; a computed float x whose K is not a multiple of mxm_size is
    refused (its padding lanes would meet zero weights: 0 x inf is NaN); no floating point, no
    float matmul."""
    g = Graph()
    xb = g.input("xb", (2, 4), "bfloat16")
    xh = g.input("xh", (2, 4), "float16")
    wb = g.const("wb", np.ones((4, 3), ml_dtypes.bfloat16))
    wh = g.const("wh", np.ones((4, 3), np.float16))
    w8 = g.const("w8", np.ones((4, 3), np.int8))
    with pytest.raises(CompileError, match=r"^node 'fc' \(matmul\): dtypes differ: bfloat16 @ "
                                           r"float16 \(matmul takes int8 @ int8, float16 @ "
                                           r"float16 or bfloat16 @ bfloat16\)$"):
        g.matmul(xb, wh, name="fc")
    with pytest.raises(CompileError, match=r"^node 'fc' \(matmul\): dtypes differ: float16 @ "
                                           r"int8 \("):
        g.matmul(xh, w8, name="fc")
    with pytest.raises(CompileError, match=r"^node 'fc' \(matmul\): dtypes differ: int8 @ "
                                           r"bfloat16 \("):
        g.matmul(g.input("x8", (2, 4)), wb, name="fc")
    with pytest.raises(CompileError, match=r"^node 'fc' \(matmul\): unsupported dtype float32 "
                                           r"for w \(matmul takes int8, float16 or bfloat16\)$"):
        g.matmul(xb, g.const("w32", np.ones((4, 3), np.float32)), name="fc")
    g = Graph("pad")
    x = g.cast(g.reciprocal(g.input("a", (2, 5), "float32")), "bfloat16", name="xc")
    g.output("y", g.matmul(x, g.const("w", np.ones((5, 3), ml_dtypes.bfloat16)), name="fc"))
    with pytest.raises(CompileError, match=r"^node 'fc' \(matmul\): x 'xc' is computed on the "
                                           r"chip and K = 5 is not a multiple of mxm_size 4: "):
        compile_graph(g, "default")
    g = Graph("nofp")
    g.output("y", g.matmul(g.input("x", (2, 4), "bfloat16"),
                           g.const("w", np.ones((4, 3), ml_dtypes.bfloat16)), name="fc"))
    with pytest.raises(CompileError, match=r"^node 'fc' \(matmul\): configuration 'fpga' is "
                                           r"built without floating point"):
        compile_graph(g, "fpga")
