"""States, ``read_row`` (MEM gather) and ``write_row`` (MEM scatter) in the compiler
(``opentsp.compiler.indexed``): an embedding lookup, a KV cache row written at a position kept
on the chip, a counter that counts runs.

Every program passes the checker and runs on the golden model in the predicted cycle count;
its outputs and states equal the graph's meaning bit for bit after every run, each run
starting from the states the previous one left (``step_reference``), and numpy's indexing.
"""

import ml_dtypes
import numpy as np
import pytest
from compiled import bits

from opentsp.compiler import CompileError, Graph, compile_graph, derive_config
from opentsp.firmware.checker import check
from opentsp.sim.model import run

CONFIG = derive_config("wide", "wide+", mem_slices=8, mem_words=1024, queue_depth=2048)


def _decode_graph(table):
    """Look a token up, write it into row ``pos`` of a cache, count ``pos`` up, score a query
    against the cache (its rows loaded as weights)."""
    g = Graph("decode")
    tok = g.input("tok", (1, 1), "int32")
    row = g.read_row(g.const("emb", table), tok, name="row")
    pos = g.state("pos", (1, 1), "int32")
    zero = g.const("zero", np.zeros((1, 1), np.int32))
    p = g.read_row(pos, zero, name="p")
    cache = g.write_row(g.state("cache", (6, table.shape[1]), "bfloat16"), p, row, name="c1")
    g.write_row(pos, zero, g.add(p, g.const("one", np.ones((1, 1), np.int32)), name="p1"),
                name="pos1")
    q = g.cast(g.input("q", (1, table.shape[1]), "float32"), "bfloat16", name="qb")
    g.output("row", row)
    g.output("scores", g.matmul(q, g.transpose(cache), name="scores"))
    return g


def test_a_cache_fills_run_after_run():
    rng = np.random.default_rng(71)
    table = rng.normal(size=(10, 16)).astype(ml_dtypes.bfloat16)
    prog = compile_graph(_decode_graph(table), CONFIG)
    assert check(prog.image) == []
    states, tokens = None, [7, 2, 9, 2]
    for step, token in enumerate(tokens):
        inputs = {"tok": np.array([[token]], np.int32),
                  "q": rng.normal(size=(1, 16)).astype(np.float32)}
        expected, after = prog.step_reference(inputs, states)
        result = run(prog.image_for(inputs, states))
        assert result.cycles == prog.predicted_cycles
        got = prog.outputs(result.memories)
        for name, value in expected.items():
            np.testing.assert_array_equal(bits(got[name]), bits(value), err_msg=name)
        for name, value in prog.states(result.memories).items():
            np.testing.assert_array_equal(bits(value), bits(after[name]), err_msg=name)
        states = after
        # numpy: the row is the table's, the cache holds the tokens so far, pos counts runs
        np.testing.assert_array_equal(bits(got["row"][0]), bits(table[token]))
        assert int(states["pos"][0, 0]) == step + 1
        np.testing.assert_array_equal(bits(states["cache"][:step + 1]),
                                      bits(table[tokens[:step + 1]]))
        assert not bits(states["cache"][step + 1:]).any()


def test_states_start_from_init_and_given_values():
    g = Graph("counter")
    n = g.state("n", (1, 1), "int32", init=np.array([[40]], np.int32))
    zero = g.const("zero", np.zeros((1, 1), np.int32))
    v = g.read_row(n, zero, name="v")
    g.output("n", g.write_row(n, zero, g.add(v, v, name="twice"), name="n1"))
    prog = compile_graph(g, CONFIG)
    assert prog.reference({})["n"][0, 0] == 80
    assert prog.states(run(prog.image_for({})).memories)["n"][0, 0] == 80
    result = run(prog.image_for({}, {"n": np.array([[-3]], np.int32)}))
    assert prog.outputs(result.memories)["n"][0, 0] == -6


def test_bad_states_rows_and_orders():
    g = Graph("bad")
    table = g.input("t", (4, 8), "float32")
    idx = g.input("i", (1, 1), "int32")
    cache = g.state("cache", (4, 8), "float32")
    with pytest.raises(CompileError, match=r"^node 'r' \(read_row\): the table 'e' must be a "
                                           r"constant, an input or a state, not the output of "
                                           r"an exp$"):
        g.read_row(g.exp(table, name="e"), idx, name="r")
    with pytest.raises(CompileError, match=r"^node 'r' \(read_row\): index must be an int32 "
                                           r"\(1, 1\) tensor"):
        g.read_row(table, g.input("f", (1, 1), "float32"), name="r")
    with pytest.raises(CompileError, match=r"^node 'w' \(write_row\): 't' must be a state "
                                           r"\(g.state\) or a version of one, not the output of "
                                           r"an input$"):
        g.write_row(table, idx, g.read_row(table, idx, name="r0"), name="w")
    row = g.read_row(table, idx, name="row")
    with pytest.raises(CompileError, match=r"^node 'w' \(write_row\): value must be float32 "
                                           r"\(1, 8\), not float32 \(4, 8\)$"):
        g.write_row(cache, idx, table, name="w")
    g.write_row(cache, idx, row, name="c1")
    with pytest.raises(CompileError, match=r"^node 'c2' \(write_row\): state version 'cache' "
                                           r"is already written by 'c1' \(write its new "
                                           r"version\)$"):
        g.write_row(cache, idx, row, name="c2")
    with pytest.raises(CompileError, match=r"^node 'late' \(read_row\): state version 'cache' "
                                           r"is replaced by 'c1' before this node; read 'c1'"):
        g.read_row(cache, idx, name="late")
    with pytest.raises(CompileError, match=r"^node 's' \(state\): init must be int32 \(1, 1\), "
                                           r"not int64 \(1, 1\)$"):
        g.state("s", (1, 1), "int32", init=np.zeros((1, 1), np.int64))
    assert "s" not in g.states                  # nothing half-built
    g.output("row", row)
    prog = compile_graph(g, CONFIG)
    with pytest.raises(ValueError, match=r"^node 'r0' \(read_row\): index 4 is not a row of "
                                         r"'t' \(0..3\)$"):
        prog.reference({"t": np.zeros((4, 8), np.float32), "i": np.array([[4]], np.int32),
                        "f": np.zeros((1, 1), np.float32)})
    with pytest.raises(CompileError, match=r"^state 'cache' must be float32 \(4, 8\), not "
                                           r"float32 \(2, 8\)$"):
        prog.image_for({"t": np.zeros((4, 8), np.float32), "i": np.zeros((1, 1), np.int32),
                        "f": np.zeros((1, 1), np.float32)}, {"cache": np.zeros((2, 8), np.float32)})


def test_a_table_too_wide_for_one_side():
    g = Graph("wide_table")
    g.output("r", g.read_row(g.const("t", np.zeros((4, 40), np.float32)),
                             g.input("i", (1, 1), "int32"), name="r"))
    with pytest.raises(CompileError, match=r"^tensor 't' does not fit the indexed layout: a "
                                           r"row of it is 20 words \(5 blocks of 4 bytes\)"):
        compile_graph(g, CONFIG)
