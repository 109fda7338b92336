"""Striped states and pinned rows (``compiler.lower``, ``plan.Indexed``, ``Scheduler.row_pins``):
where ``lw`` loads ``R = mxm_load_rows > 1`` weight columns a cycle, a KV cache whose rows a
matmul loads is kept in ``G`` slice groups (``G`` the power of two from ``R`` on) and written
group by group; a computed tensor whose rows are loaded (V transposed on the MXM) is stored row
``r`` in weight-pin group ``r mod R``.

Each program passes the checker, runs on the golden model in the predicted cycles, run after
run from the states the last one left, its outputs and states equal to the graph's meaning bit
for bit and to numpy's (float64, within bfloat16 rounding).
"""

import ml_dtypes
import numpy as np
import pytest
from compiled import bits, run_checked

from opentsp.compiler import CompileError, Graph, compile_graph, derive_config
from opentsp.compiler.resources import striped_rows, stripes
from opentsp.firmware.checker import check
from opentsp.sim.model import run

BF16 = ml_dtypes.bfloat16


def _config(rows):
    return derive_config("wide", f"wide-lw{rows}", mem_slices=8, mem_words=1024,
                         queue_depth=4096, mxm_load_rows=rows)


def _attention(positions, width=8):
    """One head of attention over a cache of ``positions``: K and V written at ``pos``, the
    scores ``q Kᵀ``, a softmax by hand (exp of the scores less a constant, over their sum via
    a matmul with ones), ``p V``."""
    g = Graph("attention")
    pos = g.input("pos", (1, 1), "int32")
    k = g.write_row(g.state("kcache", (positions, width), "bfloat16"), pos,
                    g.input("k", (1, width), "bfloat16"), name="k1")
    v = g.write_row(g.state("vcache", (positions, width), "bfloat16"), pos,
                    g.input("v", (1, width), "bfloat16"), name="v1")
    q = g.input("q", (1, width), "bfloat16")
    scores = g.matmul(q, g.transpose(k, name="kT"), name="scores")
    g.output("scores", scores)
    p = g.cast(g.exp(scores, name="e"), "bfloat16", name="p")
    g.output("pv", g.matmul(p, v, name="pv"))
    return g


@pytest.mark.parametrize("load_rows, positions", [(4, 16), (3, 16), (2, 8), (4, 6)])
def test_a_kv_cache_striped_run_after_run(load_rows, positions):
    config = _config(load_rows)
    if positions % config.mxm_size:
        pytest.raises(CompileError, compile_graph, _attention(positions), config)
        graph = Graph("keys")       # p V needs whole blocks of K; scores alone do not
        pos = graph.input("pos", (1, 1), "int32")
        k = graph.write_row(graph.state("kcache", (positions, 8), "bfloat16"), pos,
                            graph.input("k", (1, 8), "bfloat16"), name="k1")
        graph.output("scores", graph.matmul(graph.input("q", (1, 8), "bfloat16"),
                                            graph.transpose(k, name="kT"), name="scores"))
    else:
        graph = _attention(positions)
    prog = compile_graph(graph, config)
    assert check(prog.image) == []
    where = prog._stores["kcache"].indexed
    assert where.stripes == stripes(config) >= load_rows
    assert len({m for group in where.groups for block in group for m in block}) == (
        2 * where.stripes)
    rng = np.random.default_rng([load_rows, positions])
    states = None
    for step in rng.permutation(positions)[:5]:
        inputs = {"pos": np.array([[step]], np.int32)}
        inputs.update({name: rng.normal(size=(1, 8)).astype(BF16) for name in ("k", "v", "q")
                       if name in graph.inputs})
        expected, after = prog.step_reference(inputs, states)
        result = run(prog.image_for(inputs, states))
        assert result.cycles == prog.predicted_cycles
        got, kept = prog.outputs(result.memories), prog.states(result.memories)
        for name, value in [*expected.items(), *after.items()]:
            np.testing.assert_array_equal(bits({**got, **kept}[name]), bits(value),
                                          err_msg=name)
        states = after
        # numpy: the row written is the input's, the scores are q Kᵀ
        np.testing.assert_array_equal(bits(states["kcache"][step]), bits(inputs["k"][0]))
        keys = states["kcache"].astype(np.float64)
        np.testing.assert_allclose(got["scores"][0], keys @ inputs["q"][0].astype(np.float64),
                                   rtol=1e-5, atol=1e-6)
        if "pv" in got:
            p = np.exp(got["scores"][0].astype(np.float64)).astype(BF16).astype(np.float64)
            np.testing.assert_allclose(got["pv"][0], p @ states["vcache"].astype(np.float64),
                                       rtol=2e-2, atol=1e-2)


def test_the_cached_rows_and_the_dummy():
    """``striped_rows``: through the last column an ``lw`` element loads, in whole groups."""
    for load_rows, rows, kept in [(4, 16, 16), (4, 6, 8), (3, 7, 12), (3, 16, 20), (16, 2048,
                                                                                    2048)]:
        config = _config(load_rows) if load_rows < 16 else derive_config(
            "groq", "groq", queue_depth=4096)
        assert striped_rows(rows, config) == kept, (load_rows, rows)


def test_the_vxm_shift_right():
    g = Graph("shifts")
    a32, b32 = g.input("a32", (2, 8), "int32"), g.input("b32", (2, 8), "int32")
    a8, b8 = g.input("a8", (1, 8), "int8"), g.input("b8", (1, 8), "int8")
    g.output("s32", g.right_shift(a32, b32, name="s32"))
    g.output("s8", g.right_shift(a8, b8, name="s8"))
    rng = np.random.default_rng(5)
    inputs = {"a32": rng.integers(-2**31, 2**31, (2, 8), dtype=np.int32),
              "b32": rng.integers(-40, 70, (2, 8), dtype=np.int32),
              "a8": rng.integers(-128, 128, (1, 8), dtype=np.int8),
              "b8": rng.integers(-20, 20, (1, 8), dtype=np.int8)}
    out = run_checked(compile_graph(g, "default"), inputs)
    np.testing.assert_array_equal(out["s32"], inputs["a32"] >> (inputs["b32"] % 32))
    np.testing.assert_array_equal(out["s8"], inputs["a8"] >> (inputs["b8"] % 8))
    with pytest.raises(CompileError, match=r"^node 'f' \(right_shift\): unsupported dtype "
                                           r"float32 \(right_shift takes int8 or int32\)$"):
        g.right_shift(g.input("x", (1, 8), "float32"), g.input("y", (1, 8), "float32"),
                      name="f")


def test_bad_striped_states():
    config = _config(4)
    g = Graph("gather")
    pos = g.input("pos", (1, 1), "int32")
    cache = g.state("cache", (8, 8), "bfloat16")
    g.output("s", g.matmul(g.input("q", (1, 8), "bfloat16"), g.transpose(cache, name="t"),
                           name="s"))
    g.output("r", g.read_row(cache, pos, name="r"))
    with pytest.raises(CompileError, match=r"^node 'r' \(read_row\): state 'cache' is striped "
                                           r"over 4 slice groups \(a matmul loads its rows, 4 a "
                                           r"cycle\) and a striped state cannot be gathered"):
        compile_graph(g, config)
    g = Graph("wide")
    cache = g.state("cache", (8, 16), "bfloat16")
    g.output("s", g.matmul(g.input("q", (1, 16), "bfloat16"), g.transpose(cache, name="t"),
                           name="s"))
    with pytest.raises(CompileError, match=r"^tensor 'cache' does not fit the indexed layout: "
                                           r"a row of it is 4 words \(2 blocks of 2 bytes\), "
                                           r"each in its own MEM slice of one side in each of "
                                           r"4 slice groups, and 8 of configuration "
                                           r"'wide-lw4''s slices on a side have room$"):
        compile_graph(g, config)
