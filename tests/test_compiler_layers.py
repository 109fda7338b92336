"""Transformer layers as graph compositions (``opentsp.compiler.layers``) and the operations
under them: row reductions, compares and bit operations, broadcasting.

Every program passes the checker, assembles to its own image and runs on the golden model in
the predicted cycle count; its outputs equal the graph's meaning bit for bit and numpy's float64
result within the stated tolerance (exactly for reductions, compares and argmax).
"""

import numpy as np
import pytest
from compiled import bits, run_checked

from opentsp.compiler import CompileError, Graph, compile_graph, derive_config, layers

RNG_SEED = 2041
#: ``wide`` (8 x 8 MXMs) and ``default`` (4 x 4) with room for the layers' intermediates.
CONFIGS = [derive_config("wide", "wide+", mem_slices=8, mem_words=1024, queue_depth=2048),
           derive_config("default", "default+", mem_slices=8, mem_words=1024,
                         queue_depth=2048)]


def _run(g, config, inputs):
    return run_checked(compile_graph(g, config), inputs)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_layers_against_numpy(config):
    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(size=(2, 16)).astype(np.float32) * 3
    gain = rng.normal(size=16).astype(np.float32)
    g = Graph("layers")
    xi = g.input("x", x.shape, "float32")
    g.output("silu", layers.silu(g, xi, "silu"))
    g.output("sum", layers.row_sum(g, xi, "sum"))
    g.output("rms", layers.rms_norm(g, xi, g.const("gain", gain), "rms"))
    g.output("p", layers.softmax(g, xi, "p"))
    g.output("top", g.row_max(xi, name="top"))
    g.output("low", g.row_min(xi, name="low"))
    out = _run(g, config, {"x": x})
    wide = x.astype(np.float64)
    np.testing.assert_allclose(out["silu"], wide / (1 + np.exp(-wide)), rtol=1e-6, atol=1e-7)
    # the exact sum rounded once
    exact = [float(sum(np.float64(v) for v in row)) for row in x]     # 16 floats: exact
    np.testing.assert_array_equal(out["sum"][:, 0], np.float32(exact))
    rms = wide / np.sqrt((wide ** 2).mean(axis=1, keepdims=True) + 1e-5) * gain
    np.testing.assert_allclose(out["rms"], rms, rtol=1e-6, atol=1e-6)
    e = np.exp(wide - wide.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out["p"], e / e.sum(axis=1, keepdims=True), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(out["top"][:, 0], x.max(axis=1))
    np.testing.assert_array_equal(out["low"][:, 0], x.min(axis=1))


def test_argmax_mask_and_special_values():
    """argmax takes the lowest of tied columns; a row with an infinity or NaN gives NO_INDEX
    (and row_max NaN); -0 and +0 tie; the causal mask hides the columns after the position."""
    config = CONFIGS[0]
    x = np.array([[0.5, 2.0, -1.0, 2.0, 0.0, -3.0, 1.0, 1.5],
                  [-0.0, -1.0, -2.0, 0.0, -5.0, -4.0, -0.5, -6.0],
                  [1.0, np.inf, 0.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                  [1.0, 2.0, np.nan, 2.0, 3.0, 4.0, 5.0, 6.0]], np.float32)
    position = np.array([[3], [7], [0], [5]], np.float32)
    g = Graph("argmax")
    xi = g.input("x", x.shape, "float32")
    g.output("i", layers.argmax(g, xi, "i"))
    g.output("top", g.row_max(xi, name="top"))
    g.output("m", layers.causal_mask(g, xi, g.input("pos", (4, 1), "float32"), "m"))
    out = _run(g, config, {"x": x, "pos": position})
    np.testing.assert_array_equal(out["i"][:, 0], [1, 0, layers.NO_INDEX, layers.NO_INDEX])
    assert out["top"][0, 0] == 2 and bits(out["top"][1, 0]) == 0      # +0, not -0
    assert np.isnan(out["top"][2:, 0]).all()
    later = np.arange(8)[None, :] > position
    np.testing.assert_array_equal(out["m"][~later], x[~later])
    assert (out["m"][later & np.isfinite(x)] == layers.MASKED).all()


def test_compares_bits_and_broadcasting():
    """equal/greater give all-ones masks that bitwise_and selects with; a (N,) constant and an
    (M, 1) tensor broadcast; int32 too."""
    rng = np.random.default_rng(RNG_SEED + 1)
    a = rng.integers(-3, 3, (3, 8)).astype(np.float32)
    b = rng.integers(-3, 3, (3, 1)).astype(np.float32)
    g = Graph("bits")
    ai, bi = g.input("a", a.shape, "float32"), g.input("b", b.shape, "float32")
    g.output("gt", g.bitwise_and(g.greater(ai, bi, name="gt0"), ai, name="gt"))
    g.output("eq", g.equal(ai, bi, name="eq"))
    g.output("d", g.sub(bi, ai, name="d"))
    g.output("s", g.mul(ai, g.const("c", np.arange(8, dtype=np.float32)), name="s"))
    n = rng.integers(-100, 100, (3, 8), dtype=np.int32)
    ni = g.input("n", n.shape, "int32")
    g.output("x", g.bitwise_xor(g.minimum(ni, g.const("k", np.full(8, 7, np.int32))),
                                g.const("f", np.full(8, 5, np.int32)), name="x"))
    out = _run(g, CONFIGS[0], {"a": a, "b": b, "n": n})
    np.testing.assert_array_equal(out["gt"], np.where(a > b, a, 0))
    np.testing.assert_array_equal(bits(out["eq"]), np.where(a == b, 0xFFFFFFFF, 0))
    np.testing.assert_array_equal(out["d"], b - a)
    np.testing.assert_array_equal(out["s"], a * np.arange(8))
    np.testing.assert_array_equal(out["x"], np.minimum(n, 7) ^ 5)


def test_bad_reductions_and_broadcasts():
    g = Graph("bad")
    x = g.input("x", (2, 8), "float32")
    with pytest.raises(CompileError, match=r"^node 'r' \(row_max\): unsupported dtype int32 "
                                           r"\(row_max takes float32\)$"):
        g.row_max(g.input("i", (2, 8), "int32"), name="r")
    with pytest.raises(CompileError, match=r"^node 's' \(add\): shapes differ: \(2, 8\) \+ "
                                           r"\(3, 1\)$"):
        g.add(x, g.input("y", (3, 1), "float32"), name="s")
    with pytest.raises(CompileError, match=r"^node 's' \(mul\): shapes differ: \(2, 8\) \* "
                                           r"\(4,\)$"):
        g.mul(x, g.const("c", np.ones(4, np.float32)), name="s")
    with pytest.raises(CompileError, match=r"^node 'b' \(broadcast_cols\): x 'x' must have one "
                                           r"column, not \(2, 8\)$"):
        g.broadcast_cols(x, 4, name="b")
    g = Graph("ragged")
    g.output("m", g.row_max(g.input("x", (2, 6), "float32"), name="m"))
    with pytest.raises(CompileError, match=r"^node 'm' \(row_max\): N = 6 is not a multiple of "
                                           r"mxm_size 8"):
        compile_graph(g, CONFIGS[0])
