"""Compiled programs (opentsp.compiler) on the RTL in Verilator: GEMMs of several shapes, M, N
and K not multiples of the MXM size among them, and a requantised MLP layer. The RTL's own
memories are read back through ``CompiledProgram.outputs`` and compared with numpy, and the
RTL's cycle count with the compiler's prediction (one Verilated build of ``default``, reused).
Elementwise adds (int8 and int32) cover the VXM kernels that read both operands from memory;
float32 conversions, tanh, exp and rsqrt the VXM's floating point; a bfloat16 matmul the
MXM's (lw.bf16, abc.bf16, acc.f32); attention's matmuls of computed tensors (q @ kᵀ loading
k's rows as weights, p @ v with v transposed on the MXM first) and a transpose.
GEMMs whose queues stream with ifetch run on a configuration of their own."""

import ml_dtypes
import numpy as np

from opentsp.compiler import Graph, compile_graph, derive_config
from opentsp.config import CONFIGS
from opentsp.verif.runner import run_images

GEMM_SHAPES = [(1, 4, 4), (4, 8, 4), (5, 7, 6), (3, 9, 5), (8, 8, 8), (2, 13, 3)]


def _gemm(rng, shape):
    m, k, n = shape
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    g = Graph(f"gemm_{m}x{k}x{n}")
    g.output("y", g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"))
    return g, {"x": x}, {"y": x.astype(np.int64) @ w.astype(np.int64)}


def _layer(rng):
    """relu(x @ w + b) requantised per column to int8, then a second matmul (int32 logits)."""
    m, k, hidden, n = 3, 12, 6, 5
    w1 = rng.integers(-128, 128, (k, hidden), dtype=np.int8)
    b1 = rng.integers(-4000, 4000, hidden, dtype=np.int32)
    w2 = rng.integers(-128, 128, (hidden, n), dtype=np.int8)
    multiplier = rng.integers(1 << 29, 1 << 31, hidden)
    shift = rng.integers(1, 12, hidden)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    g = Graph("mlp_layer")
    h = g.bias_add(g.matmul(g.input("x", (m, k)), g.const("w1", w1), name="fc1"),
                   g.const("b1", b1), name="fc1.bias")
    q = g.requant(g.relu(h), multiplier, shift, name="fc1.q")
    g.output("q", q)
    g.output("y", g.matmul(q, g.const("w2", w2), name="fc2"))
    acc = np.maximum(x.astype(np.int64) @ w1.astype(np.int64) + b1, 0)
    high = (acc * multiplier) >> 32
    q_expected = np.clip((high + (1 << (shift - 1))) >> shift, -128, 127).astype(np.int8)
    return g, {"x": x}, {"q": q_expected,
                         "y": q_expected.astype(np.int64) @ w2.astype(np.int64)}


def _elementwise(rng):
    """VXM kernels reading both operands from memory: int8 add (wrapping) then relu, and an
    int32 add whose operands share slices (passed through ``or a, a`` first)."""
    a, b = (rng.integers(-128, 128, (2, 6), dtype=np.int8) for _ in range(2))
    p, q = (rng.integers(-(1 << 31), 1 << 31, (2, 6), dtype=np.int64).astype(np.int32)
            for _ in range(2))
    g = Graph("elementwise")
    g.output("s", g.relu(g.add(g.input("a", a.shape), g.input("b", b.shape))))
    g.output("t", g.add(g.input("p", p.shape, "int32"), g.input("q", q.shape, "int32")))
    s = np.maximum((a.astype(np.int64) + b).astype(np.int8), 0)
    return g, {"a": a, "b": b, "p": p, "q": q}, {"s": s, "t": (p.astype(np.int64) + q)
                                                 .astype(np.int32)}


def _ulps(got, want):
    """Distance in float32 ulps (over the sign, so -0 and +0 are one apart)."""
    a, b = (np.asarray(v, dtype=np.float32).view(np.int32).astype(np.int64) for v in (got, want))
    return np.abs(np.where(a < 0, -(1 << 31) - a, a) - np.where(b < 0, -(1 << 31) - b, b))


def _floats(rng):
    """float32 on the VXM: a matmul's int32 result converted (cvt.i32.f32), scaled by a
    float32 input and through tanh, in one chain; exp, and rsqrt of a bfloat16 round trip,
    reading from memory. Expected: the graph's meaning (opentsp.fp, bit for bit), itself
    checked against numpy: the casts and mul exact, the functions within 2 ulp."""
    m, k, n = 3, 8, 4
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    scale = (rng.standard_normal((m, n)) / 2000).astype(np.float32)
    z = (rng.standard_normal((2, 6)) * 3).astype(np.float32)
    g = Graph("floats")
    h = g.cast(g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"), "float32")
    g.output("t", g.tanh(g.mul(h, g.input("scale", scale.shape, "float32"))))
    zin = g.input("z", z.shape, "float32")
    g.output("e", g.exp(zin))
    g.output("r", g.rsqrt(g.cast(g.cast(g.maximum(zin, g.const("one", np.ones_like(z))),
                                        "bfloat16"), "float32")))
    inputs = {"x": x, "scale": scale, "z": z}
    reference = compile_graph(g, CONFIGS["default"]).reference(inputs)
    product = (x.astype(np.int64) @ w.astype(np.int64)).astype(np.float32) * scale
    wide = {"t": np.tanh(product.astype(np.float64)), "e": np.exp(z.astype(np.float64)),
            "r": 1 / np.sqrt(np.maximum(z, 1).astype(ml_dtypes.bfloat16).astype(np.float64))}
    for name, value in wide.items():
        assert _ulps(reference[name], value.astype(np.float32)).max() <= 2, name
    return g, inputs, {name: reference[name] for name in ("t", "e", "r")}


def _float_matmul(rng):
    """A bfloat16 matmul on the MXM's floating-point mode (lw.bf16, abc.bf16 over two K tiles
    into one exact accumulator, acc.f32), fused into bias_add and relu (add.f32, relu.f32).
    Values are multiples of 1/16 and 1/8 below 16, so that float64 sums them exactly: numpy's
    float64 matmul rounded once to float32 is the exact result, and the graph's meaning
    (opentsp.fp.mxm_dot32) must equal it bit for bit."""
    m, k, n = 3, 8, 6
    x = (rng.integers(-255, 256, (m, k)) / 16).astype(ml_dtypes.bfloat16)
    w = (rng.integers(-127, 128, (k, n)) / 8).astype(ml_dtypes.bfloat16)
    b = (rng.standard_normal(n) * 4).astype(np.float32)
    g = Graph("bf16_matmul")
    h = g.matmul(g.input("x", (m, k), "bfloat16"), g.const("w", w), name="fc")
    g.output("y", g.relu(g.bias_add(h, g.const("b", b), name="bias"), name="act"))
    exact = (x.astype(np.float64) @ w.astype(np.float64)).astype(np.float32)
    expected = np.maximum(exact + b, np.float32(0))
    reference = compile_graph(g, CONFIGS["default"]).reference({"x": x})["y"]
    np.testing.assert_array_equal(reference.view(np.uint32), expected.view(np.uint32))
    return g, {"x": x}, {"y": expected}


def _attention(rng):
    """Matmuls of tensors the chip computed: ``s = q @ kᵀ`` (the rows of k, a cast of an input,
    loaded as weights), ``o = p @ v`` (v computed, so transposed on the MXM, then read by rows),
    ``vt = transpose(v)``. Values are multiples of 1/8 below 16 (exact in bfloat16 and their
    sums in float64), so numpy's float64 result rounded to float32 is the exact one."""
    def values(shape, dtype):
        return (rng.integers(-127, 128, shape) / 8).astype(dtype)
    q, p = values((2, 8), ml_dtypes.bfloat16), values((2, 8), ml_dtypes.bfloat16)
    kf, vf = values((6, 8), np.float32), values((8, 4), np.float32)
    g = Graph("attention")
    k = g.cast(g.input("kf", kf.shape, "float32"), "bfloat16", name="k")
    v = g.cast(g.input("vf", vf.shape, "float32"), "bfloat16", name="v")
    g.output("s", g.matmul(g.input("q", q.shape, "bfloat16"), g.transpose(k), name="s"))
    g.output("o", g.matmul(g.input("p", p.shape, "bfloat16"), v, name="o"))
    g.output("vt", g.transpose(v, name="vt"))
    wide = [a.astype(np.float64) for a in (q, kf, p, vf)]
    expected = {"s": (wide[0] @ wide[1].T).astype(np.float32),
                "o": (wide[2] @ wide[3]).astype(np.float32),
                "vt": vf.T.astype(ml_dtypes.bfloat16)}
    return g, {"q": q, "kf": kf, "p": p, "vf": vf}, expected


def test_compiled_programs_on_verilator(tmp_path, capsys):
    rng = np.random.default_rng(606)
    cases = [_gemm(rng, shape) for shape in GEMM_SHAPES] + [_layer(rng), _elementwise(rng),
                                                             _floats(rng), _float_matmul(rng),
                                                             _attention(rng)]
    records = _run_and_check(CONFIGS["default"], cases, tmp_path)
    with capsys.disabled():
        print(f"\ncompiled programs on verilator: {len(records)} runs, "
              f"{sum(r['cycles_rtl'] for r in records)} RTL cycles, predicted exactly")


#: One superlane of four lanes with 8 + 8 MEM slices of 256 words and 64-word queues: the
#: GEMMs below need more than 64 words in some queues, and the other slices have the room to
#: feed them (on default every MEM queue is as long as the MXM's, and memory is full). Integer
#: GEMMs only: no floating point, a quicker build.
FETCHING = derive_config("default", "fetching", superlanes=1, mem_slices=8, mem_words=256,
                         queue_depth=64, floating_point=False)


def test_compiled_programs_with_ifetch_on_verilator(tmp_path, capsys):
    """Queues longer than queue_depth preload 64 words and fetch the rest (the compiler's
    ifetch, section 5b) on the RTL: cycles = golden model = prediction, outputs = numpy."""
    rng = np.random.default_rng(707)
    cases = [_gemm(rng, shape) for shape in ((12, 16, 20), (8, 40, 12))]
    fetches = []
    for graph, _, _ in cases:
        prog = compile_graph(graph, FETCHING)
        fetches.append(sum(i.op.mnemonic == "ifetch" for q in prog.image.queues for i in q))
    assert all(count >= 1 for count in fetches), fetches
    records = _run_and_check(FETCHING, cases, tmp_path)
    with capsys.disabled():
        print(f"\ncompiled programs with ifetch on verilator: {len(records)} runs, "
              f"{sum(r['cycles_rtl'] for r in records)} RTL cycles, predicted exactly")


def _run_and_check(config, cases, tmp_path):
    """Compile, run on Verilator, compare cycles and outputs; the records."""
    programs, compiled = [], []
    for graph, inputs, expected in cases:
        prog = compile_graph(graph, config)
        path = tmp_path / f"{graph.name}.bin"
        prog.image_for(inputs).save(path)
        programs.append((graph.name, path))
        compiled.append((prog, inputs, expected))
    records = run_images(config, programs, memories_dir=tmp_path, log_level="WARNING")
    assert [r["name"] for r in records] == [name for name, _ in programs]
    for record, (prog, _, expected) in zip(records, compiled, strict=True):
        assert record["error"] is None and record["match"], record
        assert record["cycles_rtl"] == record["cycles_golden"] == prog.predicted_cycles, record
        got = prog.outputs(np.load(record["memories"]))
        for name, value in expected.items():
            if value.dtype.kind not in "iu":     # floats bit for bit (-0 is not +0)
                got[name], value = (np.ascontiguousarray(v).view(np.uint8)
                                    for v in (got[name], value))
            np.testing.assert_array_equal(got[name], value, err_msg=f"{record['name']} {name}")
    return records
