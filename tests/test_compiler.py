"""The compiler (opentsp.compiler): graph checks, and compiled programs on the golden model
against numpy, with predicted cycles equal to the golden model's and the checker's approval."""

import numpy as np
import pytest
from compiled import run_checked

from opentsp import isa, mem_sequence
from opentsp.compiler import CompileError, Graph, compile_graph, derive_config
from opentsp.queue_timing import issue_schedule

RNG_SEED = 2026


def _int8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def _numpy_requant(h, multiplier, shift):
    """requant with numpy int64 array arithmetic (floor shifts), independent of the compiler's
    Python-integer reference."""
    high = (h.astype(np.int64) * np.asarray(multiplier, np.int64)) >> 32
    shift = np.broadcast_to(np.asarray(shift, np.int64), high.shape)
    rounding = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 0)
    return np.clip((high + rounding) >> shift, -128, 127).astype(np.int8)


def _wrap32(values):
    return values.astype(np.int64).astype(np.uint32).view(np.int32) \
        if values.dtype != np.int64 else (values & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


# Bad input -------------------------------------------------------------------------------------

def test_matmul_inner_dimensions_differ():
    g = Graph()
    x = g.input("x", (8, 64))
    w = g.const("w1", np.zeros((32, 10), np.int8))
    with pytest.raises(CompileError, match=r"node 'fc1' \(matmul\): inner dimensions differ: "
                                           r"\(8, 64\) @ \(32, 10\)"):
        g.matmul(x, w, name="fc1")


def test_shape_errors_name_the_node():
    g = Graph()
    h = g.matmul(g.input("x", (2, 4)), g.const("w", np.zeros((4, 6), np.int8)), name="fc")
    with pytest.raises(CompileError, match=r"node 'fc.bias' \(bias_add\): bias shape \(5,\)"):
        g.bias_add(h, g.const("b", np.zeros(5, np.int32)), name="fc.bias")
    with pytest.raises(CompileError, match=r"node 's' \(add\): shapes differ"):
        g.add(h, g.matmul(g.input("y", (3, 4)), g.const("v", np.zeros((4, 6), np.int8))),
              name="s")
    with pytest.raises(CompileError, match=r"node 'q' \(requant\): multiplier has 5 values "
                                           r"for 6 columns"):
        g.requant(h, np.ones(5, np.int64), 3, name="q")
    with pytest.raises(CompileError, match=r"node 'q2' \(requant\): shift must be in 0..31"):
        g.requant(h, 1 << 30, 32, name="q2")


def test_unsupported_types_and_operations():
    g = Graph()
    with pytest.raises(CompileError, match=r"node 'x' \(input\): unsupported dtype 'int16'"):
        g.input("x", (2, 2), dtype="int16")
    with pytest.raises(CompileError, match=r"node 'f' \(const\): unsupported dtype float64"):
        g.const("f", np.zeros((2, 2), np.float64))
    x = g.input("x32", (2, 4), dtype="int32")
    w = g.const("w", np.zeros((4, 4), np.int8))
    with pytest.raises(CompileError, match=r"node 'mm' \(matmul\): unsupported dtype int32"):
        g.matmul(x, w, name="mm")
    x8 = g.input("x8", (4, 4))
    # Weights that are not a constant are transposed on the chip, then read by rows
    # (tests/test_lower.py runs such programs).
    g.matmul(x8, x8, name="mm2")
    assert [(n.name, n.op) for n in g.nodes[-3:]] == [
        ("mm2.wT", "transpose"), ("mm2.w", "transpose"), ("mm2", "matmul")]
    with pytest.raises(CompileError, match=r"node 'r' \(requant\): unsupported dtype int8"):
        g.requant(x8, 1, 1, name="r")
    with pytest.raises(CompileError, match=r"node 'x8' \(relu\): the name is already used"):
        g.relu(x8, name="x8")


def test_tensor_that_does_not_fit():
    g = Graph()
    x = g.input("x", (1, 512))
    w = g.const("w1", np.zeros((512, 8), np.int8))        # 1,024 weight words > 512
    g.output("y", g.matmul(x, w, name="fc1"))
    with pytest.raises(CompileError, match=r"tensor 'w1' \(4096 bytes\) does not fit"):
        compile_graph(g, "default")


def test_program_longer_than_a_queue():
    """default's 64-word MEM slices have no room for the words MXM_W would fetch."""
    g = Graph()
    x = g.input("x", (8, 128))
    g.output("y", g.matmul(x, g.const("w", np.zeros((128, 4), np.int8)), name="fc"))
    with pytest.raises(CompileError, match=r"^the program does not fit: the queue of MXM_W "
                                           r"needs more than its 128 words and no ifetch brings "
                                           r"word 128 \(cycle \d+\) in time"):
        compile_graph(g, "default")


def test_graph_without_outputs_and_bad_inputs():
    g = Graph("empty")
    x = g.input("x", (2, 4))
    with pytest.raises(CompileError, match="graph 'empty' has no outputs"):
        compile_graph(g, "default")
    g.output("y", g.relu(x))
    prog = compile_graph(g, "default")
    with pytest.raises(CompileError, match=r"input 'x' must be int8 \(2, 4\), not int32"):
        prog.image_for({"x": np.zeros((2, 4), np.int32)})
    with pytest.raises(CompileError, match=r"missing \['x'\]"):
        prog.reference({})


# Compiled programs on the golden model ----------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 4, 4), (4, 4, 4), (5, 7, 6), (3, 9, 5), (8, 8, 8),
                                   (1, 13, 3)])
def test_matmul_shapes(shape):
    m, k, n = shape
    rng = np.random.default_rng([RNG_SEED, *shape])
    w = _int8(rng, (k, n))
    g = Graph("gemm")
    g.output("y", g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"))
    prog = compile_graph(g, "default")
    x = _int8(rng, (m, k))
    got = run_checked(prog, {"x": x})["y"]
    expected = np.matmul(x.astype(np.int64), w.astype(np.int64))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(prog.reference({"x": x})["y"], expected)
    assert prog.mac_ops == m * k * n
    assert 0 < prog.mxm_utilisation < 1


#: ISA v4 on the default chip: two planes per MXM, weights two or four columns per lw element.
PLANES = derive_config("default", "planes", mxm_planes=2, mxm_load_rows=2)
ROWS4 = derive_config("default", "rows4", mxm_planes=2, mxm_load_rows=4)


@pytest.mark.parametrize("config", [PLANES, ROWS4], ids=lambda c: c.name)
@pytest.mark.parametrize("shape", [(1, 4, 4), (5, 7, 6), (3, 9, 13), (20, 8, 16), (2, 5, 3)])
def test_matmul_on_every_plane_with_multi_row_loads(config, shape):
    """Every plane of both MXMs computes (units dealt round-robin), the weights load several
    columns per lw element (a partial block padded with zero columns), and the result equals
    numpy's and arrives in the predicted cycle on the golden model."""
    m, k, n = shape
    rng = np.random.default_rng([RNG_SEED, *shape, config.mxm_load_rows])
    w = _int8(rng, (k, n))
    g = Graph("gemm")
    g.output("y", g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"))
    prog = compile_graph(g, config)
    x = _int8(rng, (m, k))
    np.testing.assert_array_equal(run_checked(prog, {"x": x})["y"],
                                  x.astype(np.int64) @ w.astype(np.int64))
    instrs = [i for q in prog.image.queues for i in q]
    planes = {i["p"] for i in instrs if i.op.mnemonic == "abc"}
    assert planes == set(range(2)) if m * -(-n // 4) > 2 else planes
    assert all(i["row"] % config.mxm_load_rows == 0 for i in instrs if i.op.mnemonic == "lw")
    assert 0 < prog.mxm_utilisation < 1


def test_groq_loads_a_plane_in_20_cycles_on_all_four_planes():
    """groq: four 320 x 320 planes, 16 weight rows a cycle. A whole plane loads in one lw
    sequence of 20 elements, every plane of both MXMs computes, the weights come from the 16
    slices nearest each MXM and nothing else lives there; golden model = prediction = numpy."""
    rng = np.random.default_rng(RNG_SEED + 5)
    m, k, n = 6, 330, 650               # 2 K tiles, 3 column blocks (the last of 10 columns)
    w, x = _int8(rng, (k, n)), _int8(rng, (m, k))
    g = Graph("groq_gemm")
    g.output("y", g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"))
    prog = compile_graph(g, "groq")
    instrs = [(q, i) for q, queue in enumerate(prog.image.queues) for i in queue]
    mxms = {i: s.name for i, s in enumerate(isa.queues(prog.config)) if s.name.startswith("MXM")}
    assert {(mxms[q], i["p"]) for q, i in instrs if i.op.mnemonic == "abc"} == {
        (mxm, p) for mxm in ("MXM_W", "MXM_E") for p in (0, 1)}
    assert max(i["n"] for _, i in instrs if i.op.mnemonic == "lw") == 320 // 16
    names = [s.name for s in isa.queues(prog.config)]
    weight_slices = {f"MEM_{side}{i}" for side in "WE" for i in range(28, 44)}
    there = [i.op.mnemonic for q, i in instrs if names[q] in weight_slices]
    loads = sum(i["n"] for _, i in instrs if i.op.mnemonic == "lw")
    # every read there feeds an lw element (16 per element), nothing else is read or written;
    # an lw sequence's reads are sread sequences
    reads = sum(len(_port_ops(prog, q)) for q in weight_slices)
    assert reads == 16 * loads and set(there) <= {"read", "sread", "agi", "nop", "end"}
    assert there.count("sread") >= 2 * len(weight_slices)
    np.testing.assert_array_equal(run_checked(prog, {"x": x})["y"],
                                  x.astype(np.int64) @ w.astype(np.int64))


def _port_ops(prog, name):
    """The plain reads and writes (sequence elements included) MEM queue ``name`` issues."""
    index = [s.name for s in isa.queues(prog.config)].index(name)
    issues, end = issue_schedule(prog.image.queues[index])
    ports, losses = mem_sequence.expand(prog.config, [(c, None, i) for c, i in issues], end)
    assert not losses
    return [instr for _, _, instr, _ in ports]


def test_chain_drains_every_plane():
    """bias + relu + requant fused into the drains of both planes of both MXMs."""
    rng = np.random.default_rng(RNG_SEED + 3)
    m, k, n = 3, 8, 16
    w = _int8(rng, (k, n))
    b = rng.integers(-3000, 3000, n, dtype=np.int32)
    multiplier = rng.integers(1 << 29, 1 << 31, n)
    shift = rng.integers(0, 12, n)
    g = Graph("layer")
    h = g.bias_add(g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"),
                   g.const("b", b), name="fc.bias")
    g.output("q", g.requant(g.relu(h, name="fc.relu"), multiplier, shift, name="fc.q"))
    prog = compile_graph(g, PLANES)
    assert {i["p"] for q in prog.image.queues for i in q if i.op.mnemonic == "acc"} == {0, 1}
    x = _int8(rng, (m, k))
    acc = np.matmul(x.astype(np.int64), w.astype(np.int64)) + b
    np.testing.assert_array_equal(run_checked(prog, {"x": x})["q"],
                                  _numpy_requant(np.maximum(acc, 0), multiplier, shift))


def test_layer_bias_relu_requant_chain():
    """One MLP layer fused into the MXM's drain: acc -> add, relu, mulh, rshr, cvt."""
    rng = np.random.default_rng(RNG_SEED)
    m, k, n = 3, 10, 7
    w = _int8(rng, (k, n))
    b = rng.integers(-3000, 3000, n, dtype=np.int32)
    multiplier = rng.integers(1 << 29, 1 << 31, n)
    shift = rng.integers(0, 12, n)
    shift[0] = 0                                        # rshr by 0 is the identity
    g = Graph("layer")
    h = g.bias_add(g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"),
                   g.const("b", b), name="fc.bias")
    g.output("q", g.requant(g.relu(h, name="fc.relu"), multiplier, shift, name="fc.q"))
    prog = compile_graph(g, "default")
    assert "mulh.i32" in prog.asm and "fc->fc.bias+fc.relu+fc.q" in prog.asm
    x = _int8(rng, (m, k))
    got = run_checked(prog, {"x": x})["q"]
    acc = np.matmul(x.astype(np.int64), w.astype(np.int64)) + b
    expected = _numpy_requant(np.maximum(acc, 0), multiplier, shift)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(prog.reference({"x": x})["q"], expected)


def test_two_layers_and_an_intermediate_output():
    rng = np.random.default_rng(RNG_SEED + 1)
    m, k, hidden, n = 2, 8, 6, 5
    w1, w2 = _int8(rng, (k, hidden)), _int8(rng, (hidden, n))
    b2 = rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int64).astype(np.int32)
    g = Graph("mlp")
    q = g.requant(g.relu(g.matmul(g.input("x", (m, k)), g.const("w1", w1))), 1 << 30, 5,
                  name="q1")
    y = g.bias_add(g.matmul(q, g.const("w2", w2)), g.const("b2", b2), name="logits")
    g.output("h", q)
    g.output("y", y)
    prog = compile_graph(g, "default")
    x = _int8(rng, (m, k))
    got = run_checked(prog, {"x": x})
    h = _numpy_requant(np.maximum(x.astype(np.int64) @ w1.astype(np.int64), 0), 1 << 30, 5)
    y_expected = (h.astype(np.int64) @ w2.astype(np.int64) + b2) & 0xFFFFFFFF
    np.testing.assert_array_equal(got["h"], h)
    np.testing.assert_array_equal(got["y"], y_expected.astype(np.uint32).view(np.int32))
    for name, value in prog.reference({"x": x}).items():
        np.testing.assert_array_equal(got[name], value)


def test_elementwise_add_chains():
    """add of two inputs (a kernel reading both from memory), relu fused, add of a constant;
    int8 wrapping; an int32 add of two matmul results."""
    rng = np.random.default_rng(RNG_SEED + 2)
    a, b = _int8(rng, (3, 10)), _int8(rng, (3, 10))
    c = _int8(rng, (3, 10))
    w1, w2 = _int8(rng, (10, 5)), _int8(rng, (10, 5))
    g = Graph("adds")
    ta, tb = g.input("a", a.shape), g.input("b", b.shape)
    s = g.add(ta, tb, name="s")
    g.output("s", s)
    g.output("t", g.add(g.relu(s), g.const("c", c), name="t"))
    g.output("u", g.add(g.matmul(ta, g.const("w1", w1)), g.matmul(tb, g.const("w2", w2)),
                        name="u"))
    prog = compile_graph(g, "default")
    got = run_checked(prog, {"a": a, "b": b})
    s_expected = (a.astype(np.int64) + b).astype(np.int8)        # wraps mod 256
    t_expected = (np.maximum(s_expected, 0).astype(np.int64) + c).astype(np.int8)
    u_expected = a.astype(np.int64) @ w1.astype(np.int64) + b.astype(np.int64) @ w2
    np.testing.assert_array_equal(got["s"], s_expected)
    np.testing.assert_array_equal(got["t"], t_expected)
    np.testing.assert_array_equal(got["u"], u_expected)


def test_relu_of_an_input_and_an_output_that_is_an_input():
    rng = np.random.default_rng(RNG_SEED + 3)
    x = _int8(rng, (2, 6))
    g = Graph("copy")
    tx = g.input("x", x.shape)
    g.output("x", tx)
    g.output("r", g.relu(tx))
    prog = compile_graph(g, "default")
    got = run_checked(prog, {"x": x})
    np.testing.assert_array_equal(got["x"], x)
    np.testing.assert_array_equal(got["r"], np.maximum(x, 0))


def test_medium_config_and_derived_config():
    """Other configurations: medium (4 superlanes, mxm span 1) and a derived one with a wider
    MXM (8 x 8 over two superlanes, span 2)."""
    rng = np.random.default_rng(RNG_SEED + 4)
    wide = derive_config("medium", "medium-mxm8", mxm_size=8)
    for config, (m, k, n) in (("medium", (6, 9, 7)), (wide, (5, 17, 11))):
        w = _int8(rng, (k, n))
        g = Graph("gemm")
        g.output("y", g.matmul(g.input("x", (m, k)), g.const("w", w)))
        prog = compile_graph(g, config)
        x = _int8(rng, (m, k))
        got = run_checked(prog, {"x": x})["y"]
        np.testing.assert_array_equal(got, x.astype(np.int64) @ w.astype(np.int64))


def test_outputs_checks_the_memories_shape():
    g = Graph()
    g.output("y", g.relu(g.input("x", (1, 4))))
    prog = compile_graph(g, "default")
    with pytest.raises(ValueError, match=r"memories must be uint8 \(8, 64, 8\)"):
        prog.outputs(np.zeros((8, 64, 4), np.uint8))


def test_predict_schedules_without_emitting():
    """``predict`` gives the cycles ``compile_graph`` emits, and still schedules a program
    longer than a queue (where ``compile_graph`` refuses)."""
    from opentsp.compiler import predict

    rng = np.random.default_rng(RNG_SEED + 5)
    g = Graph("gemm")
    g.output("y", g.matmul(g.input("x", (6, 9)), g.const("w", _int8(rng, (9, 7)))))
    figures = predict(g, "default")
    prog = compile_graph(g, "default")
    assert figures["predicted_cycles"] == prog.predicted_cycles
    assert figures["mac_ops"] == prog.mac_ops == 6 * 9 * 7
    assert figures["queue_words"] == max(prog.queue_words.values())
    long = Graph("long")
    long.output("y", long.matmul(long.input("x", (8, 128)),
                                 long.const("w", _int8(rng, (128, 4)))))
    with pytest.raises(CompileError, match="needs more than its 128 words"):
        compile_graph(long, "default")
    assert predict(long, "default")["queue_words"] > 128


def test_adds_whose_operands_share_a_slice():
    """Operands that can never arrive together (one slice, one cycle): ``add(x, x)``, two int32
    inputs spread over the same four slices, and an operand whose nearest copy shares a slice
    with the other operand. The compiler passes one through the VXM first (``or a, a``) or
    takes another copy."""
    rng = np.random.default_rng(RNG_SEED + 6)
    x = _int8(rng, (2, 5))
    p = rng.integers(-(1 << 31), 1 << 31, (2, 5), dtype=np.int64).astype(np.int32)
    q = rng.integers(-(1 << 31), 1 << 31, (2, 5), dtype=np.int64).astype(np.int32)
    g = Graph("shared")
    tx, tp, tq = g.input("x", x.shape), g.input("p", p.shape, "int32"), g.input("q", q.shape,
                                                                                "int32")
    twice = g.add(tx, tx, name="twice")
    g.output("twice", twice)
    g.output("again", g.add(tx, twice, name="again"))
    g.output("pq", g.add(tp, tq, name="pq"))
    g.output("y", g.matmul(tx, g.const("w", _int8(rng, (5, 3)))))     # two copies of x
    for config in ("default", "medium"):
        prog = compile_graph(g, config)
        # default: the int32 inputs take all four slices of one side
        assert ("or.i32" in prog.asm) == (config == "default")
        got = run_checked(prog, {"x": x, "p": p, "q": q})
        twice_expected = (2 * x.astype(np.int64)).astype(np.int8)
        np.testing.assert_array_equal(got["twice"], twice_expected)
        np.testing.assert_array_equal(got["again"], (x.astype(np.int64) + twice_expected)
                                      .astype(np.int8))
        np.testing.assert_array_equal(got["pq"], (p.astype(np.int64) + q).astype(np.int32))


def test_weights_load_while_the_array_computes():
    """ISA v4 sequencers: the next K tile's lw elements run in cycles of the current tile's abc
    elements, sequences span several rows, and the result is still exact and on time."""
    rng = np.random.default_rng(RNG_SEED + 9)
    w = _int8(rng, (16, 4))
    g = Graph("overlap")
    g.output("y", g.matmul(g.input("x", (16, 16)), g.const("w", w)))
    prog = compile_graph(g, "default")
    x = _int8(rng, (16, 16))
    outputs, cycles = prog.run_golden({"x": x})
    np.testing.assert_array_equal(outputs["y"], x.astype(np.int64) @ w.astype(np.int64))
    assert cycles == prog.predicted_cycles
    names = [s.name for s in isa.queues(prog.config)]
    busy = {"lw": set(), "abc": set()}
    for name in ("MXM_W", "MXM_E"):
        cycle = 0
        for instr in prog.image.queues[names.index(name)]:
            kind = instr.op.mnemonic
            if kind in busy:
                busy[kind] |= {(name, cycle + e) for e in range(instr["n"])}
            cycle += instr.slots
    assert max(instr["n"] for q in prog.image.queues for instr in q
               if instr.op.mnemonic == "abc") > 1
    assert busy["lw"] & busy["abc"], "no weight load overlaps compute"


# Programs longer than a queue ------------------------------------------------------------------

#: groq with 64-word queues: a 640^3 GEMM's busiest MEM queues need 80 words.
SHORT_QUEUES = derive_config("groq", "groq-q64", queue_depth=64)


def test_queues_longer_than_their_depth_stream_with_ifetch():
    """The queues that need more than ``queue_depth`` words preload that many and fetch the
    rest (section 5b) from int32 words of four MEM slices; the checker approves, the assembly
    gives the same image, and the golden model equals numpy in the predicted cycle, which the
    fetches do not change."""
    rng = np.random.default_rng(RNG_SEED + 8)
    m = k = n = 640
    w, x = _int8(rng, (k, n)), _int8(rng, (m, k))
    g = Graph("gemm")
    g.output("y", g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"))
    prog = compile_graph(g, SHORT_QUEUES)
    fetching = {s.name: q for s, q in zip(isa.queues(prog.config), prog.image.queues,
                                          strict=True)
                if any(i.op.mnemonic == "ifetch" for i in q)}
    assert len(fetching) >= 2 and all(len(q) == 64 for q in fetching.values())
    assert prog.predicted_cycles == compile_graph(g, "groq").predicted_cycles
    assert ".fetched [MEM_" in prog.asm
    np.testing.assert_array_equal(run_checked(prog, {"x": x})["y"],
                                  x.astype(np.int64) @ w.astype(np.int64))


def test_a_queue_that_cannot_be_fetched_in_time_is_named():
    g = Graph("gemm")
    g.output("y", g.matmul(g.input("x", (640, 640)), g.const("w", np.ones((640, 640), np.int8)),
                           name="fc"))
    with pytest.raises(CompileError, match=r"^the program does not fit: the queue of MEM_\w+ "
                                           r"needs more than its 32 words and no ifetch brings "
                                           r"word \d+ \(cycle \d+\) in time"):
        compile_graph(g, derive_config("groq", "groq-q32", queue_depth=32))


def test_a_slice_that_outgrows_its_queue_feeding_fetches_is_named(monkeypatch):
    """With the planner told that feeding costs a slice no words, and fetching one word at a
    time, some slice's own queue outgrows its depth: the compiler names it and the queues it
    feeds."""
    from opentsp.compiler import fetch

    monkeypatch.setattr(fetch, "_WORDS_PER_SOURCE", 0)
    monkeypatch.setattr(fetch, "MIN_BLOCK", 1)
    g = Graph("gemm")
    g.output("y", g.matmul(g.input("x", (640, 640)), g.const("w", np.ones((640, 640), np.int8)),
                           name="fc"))
    with pytest.raises(CompileError, match=r"^graph 'gemm' does not fit: the queue of MEM_\w+ "
                                           r"needs \d+ words, configuration 'groq-q64' holds 64 "
                                           r"\(queue_depth\), and it cannot be fetched: it feeds "
                                           r"the fetches of MEM_"):
        compile_graph(g, SHORT_QUEUES)
