"""The compiler's lowering (``opentsp.compiler.lower``): matmuls whose weights the chip computed,
``transpose`` (free as a matmul's weights, on the MXM elsewhere), ``concat`` and ``slice_cols``
(views), and ``sub``.

Every program passes the checker, assembles to its own image and runs on the golden model in
the predicted cycle count; its outputs equal the graph's meaning (``prog.reference``) bit for
bit, and numpy's own result: exactly for transposes, views and integer matmuls, and for float
matmuls the float32 nearest to the exact sum (``fractions``), which for one product per element
is the product itself.
"""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from compiled import bits, run_checked

from opentsp import isa
from opentsp.compiler import CompileError, Graph, compile_graph
from opentsp.sim.model import run

RNG_SEED = 2031


def _exact_dot(x, w):
    """The float32 nearest to the exact ``x @ w`` (float values, every product exact)."""
    out = np.empty((x.shape[0], w.shape[1]), np.float32)
    for (m, n), _ in np.ndenumerate(out):
        pairs = zip(x[m], w[:, n], strict=True)
        total = sum(Fraction(float(a)) * Fraction(float(b)) for a, b in pairs)
        out[m, n] = np.float32(float(total))        # no ties at these magnitudes
    return out


def _bf16(rng, shape):
    return rng.normal(size=shape).astype(ml_dtypes.bfloat16)


def test_attention_shapes_with_computed_keys_and_values():
    """``q @ kᵀ`` with k computed (the rows of k loaded as weights, no transpose), ``p @ v``
    with v computed (transposed on the MXM first), a transpose as an output; on ``wide``
    (8 x 8 MXMs)."""
    rng = np.random.default_rng(RNG_SEED)
    g = Graph("attention")
    q = g.input("q", (2, 8), "bfloat16")
    k = g.cast(g.input("kf", (6, 8), "float32"), "bfloat16", name="k")
    g.output("s", g.matmul(q, g.transpose(k), name="s"))
    v = g.cast(g.input("vf", (8, 8), "float32"), "bfloat16", name="v")
    p = g.input("p", (2, 8), "bfloat16")
    g.output("o", g.matmul(p, v, name="o"))
    g.output("vt", g.transpose(v, name="vt"))
    inputs = {"q": _bf16(rng, (2, 8)), "kf": rng.normal(size=(6, 8)).astype(np.float32),
              "vf": rng.normal(size=(8, 8)).astype(np.float32), "p": _bf16(rng, (2, 8))}
    out = run_checked(compile_graph(g, "wide"), inputs)
    k16 = inputs["kf"].astype(ml_dtypes.bfloat16)
    v16 = inputs["vf"].astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(out["s"], _exact_dot(inputs["q"], k16.T))
    np.testing.assert_array_equal(out["o"], _exact_dot(inputs["p"], v16))
    np.testing.assert_array_equal(bits(out["vt"]), bits(v16.T))


@pytest.mark.parametrize("config", ["default", "wide"])
def test_int8_transposes_and_weights_from_an_input(config):
    """int8: a transpose on the MXM (int32 products of one 1 each, cast back exactly), weights
    read from the rows of an input whose K (5) is not a multiple of mxm_size (its padding lanes
    are zero), and a computed x."""
    rng = np.random.default_rng(RNG_SEED + 1)
    g = Graph("int8")
    x = g.input("x", (3, 5))
    k = g.input("k", (4, 5))
    g.output("xk", g.matmul(x, g.transpose(k), name="xk"))
    g.output("kt", g.transpose(k, name="kt"))
    h = g.cast(g.cast(x, "int32", name="x32"), "int8", name="x8")
    g.output("hk", g.matmul(h, g.transpose(k), name="hk"))
    inputs = {"x": rng.integers(-128, 128, (3, 5), dtype=np.int8),
              "k": rng.integers(-128, 128, (4, 5), dtype=np.int8)}
    out = run_checked(compile_graph(g, config), inputs)
    expected = inputs["x"].astype(np.int32) @ inputs["k"].T.astype(np.int32)
    np.testing.assert_array_equal(out["xk"], expected)
    np.testing.assert_array_equal(out["hk"], expected)
    np.testing.assert_array_equal(out["kt"], inputs["k"].T)


def test_concat_slice_and_sub_are_views_and_one_instruction():
    """``concat`` and ``slice_cols`` emit nothing; a matmul's x may be a concat (its K tiles are
    the parts' vectors, one exact sum); ``sub`` is the VXM's ``sub.f32``."""
    rng = np.random.default_rng(RNG_SEED + 2)
    g = Graph("views")
    a = g.input("a", (2, 8), "bfloat16")
    b = g.input("b", (2, 8), "bfloat16")
    w = g.const("w", _bf16(rng, (16, 8)))
    cat = g.concat([a, b], name="cat")
    y = g.matmul(cat, w, name="y")
    g.output("y", y)
    g.output("d", g.sub(y, g.cast(g.slice_cols(cat, 8, 16, name="bs"), "float32", name="bf"),
                        name="d"))
    inputs = {"a": _bf16(rng, (2, 8)), "b": _bf16(rng, (2, 8))}
    prog = compile_graph(g, "wide")
    out = run_checked(prog, inputs)
    joined = np.concatenate([inputs["a"], inputs["b"]], axis=1)
    np.testing.assert_array_equal(out["y"], _exact_dot(joined, g.nodes[2].params["value"]))
    np.testing.assert_array_equal(
        out["d"], out["y"] - inputs["b"].astype(np.float32))    # IEEE float32 subtraction
    labels = set()
    for line in prog.asm.splitlines():
        code, _, comment = line.partition(";")
        if code.strip() and comment:
            labels |= set(comment.split(":")[0].strip().replace("->", "+").split("+"))
    assert "y" in labels and not labels & {"cat", "bs"}      # no instruction of a view
    assert sum("sub.f32" in line for line in prog.asm.splitlines()) == 2     # 2 rows


def test_matmul_of_a_computed_float_weight_matrix_spanning_k_tiles():
    """A computed weight matrix w (8 x 12) on ``default`` (4 x 4 MXMs): transposed on the chip
    (2 x 3 tiles), then read by rows; the result is the exact sum rounded once."""
    rng = np.random.default_rng(RNG_SEED + 3)
    g = Graph("computed_w")
    x = g.input("x", (2, 8), "bfloat16")
    w = g.cast(g.input("wf", (8, 12), "float32"), "bfloat16", name="w")
    g.output("y", g.matmul(x, w, name="y"))
    inputs = {"x": _bf16(rng, (2, 8)), "wf": rng.normal(size=(8, 12)).astype(np.float32)}
    out = run_checked(compile_graph(g, "default"), inputs)
    np.testing.assert_array_equal(
        out["y"], _exact_dot(inputs["x"], inputs["wf"].astype(ml_dtypes.bfloat16)))


def test_bad_views_and_transposes():
    g = Graph("bad")
    a = g.input("a", (2, 6), "bfloat16")
    b = g.input("b", (2, 8), "bfloat16")
    c = g.input("c", (3, 8), "bfloat16")
    f = g.input("f", (2, 8), "float32")
    with pytest.raises(CompileError, match=r"^node 't' \(transpose\): unsupported dtype "
                                           r"float32 \(transpose takes int8, float16 or "
                                           r"bfloat16\)$"):
        g.transpose(f, name="t")
    with pytest.raises(CompileError, match=r"^node 'j' \(concat\): rows differ"):
        g.concat([b, c], name="j")
    with pytest.raises(CompileError, match=r"^node 'j' \(concat\): dtypes differ"):
        g.concat([b, f], name="j")
    with pytest.raises(CompileError, match=r"^node 'j' \(concat\): parts must be a list of at "
                                           r"least two tensors"):
        g.concat([b], name="j")
    with pytest.raises(CompileError, match=r"^node 's' \(slice_cols\): columns must satisfy "
                                           r"0 <= start < stop <= 8, not 4..9$"):
        g.slice_cols(b, 4, 9, name="s")
    g.output("j", g.concat([a, b], name="j"))
    with pytest.raises(CompileError, match=r"^node 'j' \(concat\): part 0 'a' is 6 columns "
                                           r"wide, not a multiple of mxm_size 8"):
        compile_graph(g, "wide")


def test_misaligned_slice_and_computed_weights_with_ragged_k():
    g = Graph("bad_slice")
    b = g.input("b", (2, 8), "bfloat16")
    g.output("s", g.slice_cols(b, 4, 8, name="s"))
    with pytest.raises(CompileError, match=r"^node 's' \(slice_cols\): the slice starts at "
                                           r"column 4, not a multiple of mxm_size 8"):
        compile_graph(g, "wide")
    g = Graph("bad_k")
    x = g.input("x", (2, 6), "bfloat16")
    k = g.cast(g.input("kf", (4, 6), "float32"), "bfloat16", name="k")
    g.output("y", g.matmul(x, g.transpose(k), name="y"))
    with pytest.raises(CompileError, match=r"^node 'y' \(matmul\): the weights are the rows of "
                                           r"'k', which is computed on the chip, and K = 6 is "
                                           r"not a multiple of mxm_size 8"):
        compile_graph(g, "wide")


def test_transpose_on_the_mxm_follows_its_definition_on_special_values():
    """A transpose computed on the MXM is ``cast(eye @ xᵀ)``: -0 gives +0, a bfloat16 subnormal
    flushes to zero, an infinity stays where it is and makes NaN of the rest of its column
    (0 x inf); a matmul that takes the same transpose as its weights reads x itself."""
    patterns = np.array([[0x8000, 0x0001, 0x3F80, 0x4000, 0xC040, 0x3F00, 0x0000, 0x4120],
                     [0x7F80, 0x3F80, 0x3F80, 0x3F80, 0x3F80, 0x3F80, 0x3F80, 0x3F80]],
                    dtype=np.uint16)
    x = patterns.view(ml_dtypes.bfloat16)
    g = Graph("special")
    xi = g.input("x", (2, 8), "bfloat16")
    t = g.transpose(xi, name="t")
    g.output("t", t)
    g.output("y", g.matmul(g.input("e", (1, 8), "bfloat16"), t, name="y"))
    e = np.zeros((1, 8), ml_dtypes.bfloat16)
    e[0, 2] = 1
    out = run_checked(compile_graph(g, "wide"), {"x": patterns, "e": e})
    got = bits(out["t"])
    assert got[0, 0] == 0x0000 and got[1, 0] == 0x0000      # -0 -> +0, subnormal -> 0
    np.testing.assert_array_equal(got[2:, 0], patterns[0, 2:])   # the rest of row 0, exact
    assert got[0, 1] == 0x7F80                               # inf stays
    assert all(np.isnan(out["t"][1:, 1].astype(np.float32)))  # 0 x inf elsewhere
    # y = e @ xᵀ reads x's rows: y[0] = x[0, 2]; row 1 holds inf, and 0 x inf is NaN
    assert out["y"][0, 0] == np.float32(x[0, 2]) and np.isnan(out["y"][0, 1])


@pytest.mark.parametrize("config", ["default", "wide"])
def test_single_columns_are_held_in_every_lane(config):
    """A tensor of one column is stored in every lane of its vectors: inputs, constants and
    matmul results (the weight column loaded into every column of the plane), so that it can
    meet every lane of another vector."""
    rng = np.random.default_rng(RNG_SEED + 4)
    g = Graph("columns")
    x = g.input("x", (3, 8))
    c = g.input("c", (3, 1), "int32")
    s = g.add(g.matmul(x, g.const("w", rng.integers(-9, 9, (8, 1), dtype=np.int8)), name="s"),
              c, name="sc")
    g.output("sc", s)
    g.output("k", g.matmul(x, g.transpose(g.input("k1", (1, 8))), name="k"))
    inputs = {"x": rng.integers(-128, 128, (3, 8), dtype=np.int8),
              "c": rng.integers(-1000, 1000, (3, 1), dtype=np.int32),
              "k1": rng.integers(-128, 128, (1, 8), dtype=np.int8)}
    prog = compile_graph(g, config)
    out = run_checked(prog, inputs)
    w = g.nodes[2].params["value"]
    np.testing.assert_array_equal(out["sc"], inputs["x"].astype(np.int32) @ w + inputs["c"])
    np.testing.assert_array_equal(out["k"], inputs["x"].astype(np.int32) @ inputs["k1"].T)
    memories = run(prog.image_for(inputs)).memories
    size = prog.config.mxm_size
    index = {s.name: i for i, s in enumerate(isa.mem_slices(prog.config))}
    for name in ("sc", "k", "c"):
        for copy in prog._stores[name].vectors[(1, 0)]:
            low = memories[index[copy.planes[0][0]], copy.planes[0][1], :size]
            assert (low == low[0]).all(), (name, low)
