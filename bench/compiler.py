"""The compiler's MXM utilisation and cycles for GEMMs from small to large, and the projection
of two networks to the real chip (issue 6, items 3 and 5).

    .venv/bin/python bench/compiler.py [--quick] [--golden-groq] [--rtl] [--study]

Every figure is the compiler's exact prediction (``CompiledProgram.predicted_cycles``, equal to
the golden model's and the RTL's count: tests/test_compiler.py, verif/test_compiled.py); the
"golden" column reruns the program on the golden model where that takes seconds, not hours.
Utilisation = MACs done / (cycles x peak of every plane of both MXMs), the whole program:
loading the weights, streaming, draining and storing the results included.

Configurations (stated in every table) are the named ones, with their own queue depths and
memories: ``default`` (the GEMMs whose operands fit its 8 x 64 words) and ``groq`` (4096-word
queues: the programs fit them because MEM reads and writes in consecutive cycles issue as
``sread``/``swrite`` sequences). Groq's own GEMM shapes (ISCA 2022, Fig. 13: ``[2304 x 4096] x
[4096 x N]``) run on ``groq`` beside the bound that tile padding alone allows.

``--study`` adds derived configurations that are not chips (``default`` with 8192-word MEM
slices and 65,536-word queues, and also 256 accumulators): what the scheduler reaches on 4 x 4
MXMs when memory and queues do not bound it.

"bound" is the sequencer bound of the plan (ISA v4): the units (up to ``mxm_accumulators`` rows
x one column block) are dealt to the planes of both MXMs; per unit and K tile a plane's compute
sequencer runs one ``abc`` per row, and its MXM's load sequencer (shared by the planes) one
element per ``mxm_load_rows`` weight columns, while the ``iw`` and the ``acc`` drain overlap
them. Utilisation <= MACs / (peak of every plane x the busiest sequencer's cycles).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from opentsp.compiler import CompileError, Graph, compile_graph, derive_config, predict
from opentsp.compiler.plan import matmul_units
from opentsp.config import get_config
from opentsp.verif.runner import run_images

#: Study configurations (--study), not chips: memory and queues that do not bound the GEMMs.
DEFAULT_PLUS = derive_config("default", "default+", mem_words=8192, queue_depth=65536)
ACC256 = derive_config("default", "default+acc256", mem_words=8192, queue_depth=65536,
                       mxm_accumulators=256)
GROQ = get_config("groq")
DEFAULT = get_config("default")


def gemm_graph(m, k, n, seed=0):
    rng = np.random.default_rng([seed, m, k, n])
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    g = Graph(f"gemm_{m}x{k}x{n}")
    g.output("y", g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"))
    return g, w


def _units(m, k, n, config):
    g, _ = gemm_graph(m, k, n)
    return matmul_units(next(nd for nd in g.nodes if nd.op == "matmul"), config)


def _load_elements(n, nb, config):
    size, per = config.mxm_size, config.mxm_load_rows
    return -(-min(size, n - nb * size) // per)


def sequencer_cycles(m, k, n, config):
    """Cycles of the plan's busiest sequencer: a plane's compute sequencer runs one ``abc`` per
    row and K tile of its units; an MXM's load sequencer, shared by its planes, one element per
    ``mxm_load_rows`` columns and K tile of all their units."""
    units = _units(m, k, n, config)
    busy = {}
    for rows, nb, mxm, plane in units.units:
        busy[mxm, plane] = busy.get((mxm, plane), 0) + units.kt * len(rows)
        busy[mxm] = busy.get(mxm, 0) + units.kt * _load_elements(n, nb, config)
    return max(busy.values())


def slot_bound(m, k, n, config):
    """Upper bound on utilisation from the plan's sequencer cycles (every plane's peak)."""
    planes = 2 * config.mxm_planes
    return m * k * n / (planes * config.mxm_size ** 2 * sequencer_cycles(m, k, n, config))


def gemm_row(m, k, n, config, golden, emitted=None):
    """One row of a table; ``emitted`` collects ``(CompiledProgram, x, numpy's product)`` of
    the programs emitted (for the RTL)."""
    g, w = gemm_graph(m, k, n)
    start = time.time()
    try:
        prog = compile_graph(g, config, check=golden)
        cycles, util, words = (prog.predicted_cycles, prog.mxm_utilisation,
                               max(prog.queue_words.values()))
    except CompileError:                # too long for a queue: schedule only
        prog = None
        figures = predict(g, config)
        cycles, util, words = (figures["predicted_cycles"], figures["mxm_utilisation"],
                               figures["queue_words"])
    seconds = time.time() - start
    check = "-"
    x = np.random.default_rng(1).integers(-128, 128, (m, k), dtype=np.int8)
    if prog is not None and emitted is not None:
        emitted.append((prog, x, x.astype(np.int64) @ w.astype(np.int64)))
    if golden and prog is not None:
        outputs, golden_cycles = prog.run_golden({"x": x})
        assert np.array_equal(outputs["y"], x.astype(np.int64) @ w.astype(np.int64))
        assert golden_cycles == cycles, (golden_cycles, cycles)
        check = f"{golden_cycles} ok"
    kind = "emitted" if prog is not None else "scheduled"
    print(f"  {f'{m} x {k} x {n}':<22}{cycles:>10}{m * k * n:>14}{util:>9.1%}"
          f"{slot_bound(m, k, n, config):>8.1%}{words:>7}  {check:<13}{kind:<10}"
          f"{seconds:>6.1f}s", flush=True)
    return cycles, util


def table(config, shapes, golden_upto, golden=True, emitted=None):
    size = config.mxm_size
    print(f"\nconfig {config.name}: two MXMs of {config.mxm_planes} {size}x{size} plane(s), "
          f"{config.mxm_load_rows} weight row(s) a cycle, {config.mxm_accumulators} "
          f"accumulators, {2 * config.mem_slices} MEM slices x {config.mem_words} words, "
          f"queues of {config.queue_depth}, {config.clock_mhz:g} MHz")
    print(f"  {'M x K x N':<22}{'cycles':>10}{'MACs':>14}{'util':>9}{'bound':>8}{'words':>7}  "
          f"{'golden':<13}{'program':<10}{'compile':>7}")
    results = {}
    for shape in shapes:
        results[shape] = gemm_row(*shape, config, golden and max(shape) <= golden_upto,
                                  emitted)
    return results


#: ISCA 2022, Fig. 13: [2304 x 4096] x [4096 x N]; Groq reports at least 80% MXM utilisation.
FIG13_N = (1376, 2048, 2560, 3500)


def padding_bound(m, k, n, config):
    """The utilisation that tile padding alone allows: MACs over the MACs of whole
    ``mxm_size`` tiles in K and N (M needs no padding: rows stream one per cycle)."""
    size = config.mxm_size
    return m * k * n / (m * -(-k // size) * size * -(-n // size) * size)


def fig13(config, golden=False):
    """Groq's own shapes, each compiled (emitted: it fits the queues; "words" is its longest
    queue); with ``golden``, the first also runs on the golden model (minutes)."""
    print(f"\nGroq's GEMM shapes (ISCA 2022, Fig. 13: at least 80% reported) on {config.name}: "
          f"{config.mxm_planes} plane(s) of {config.mxm_size}x{config.mxm_size} per MXM, "
          f"queues of {config.queue_depth}")
    print(f"  {'M x K x N':<22}{'cycles':>10}{'util':>9}{'padding':>9}{'bound':>8}{'words':>7}"
          f"{'compile':>9}")
    first = None
    for n in FIG13_N:
        m, k = 2304, 4096
        g, w = gemm_graph(m, k, n)
        start = time.time()
        prog = compile_graph(g, config, check=False)
        first = first or (prog, w)
        print(f"  {f'{m} x {k} x {n}':<22}{prog.predicted_cycles:>10}"
              f"{prog.mxm_utilisation:>9.1%}{padding_bound(m, k, n, config):>9.1%}"
              f"{slot_bound(m, k, n, config):>8.1%}{max(prog.queue_words.values()):>7}"
              f"{time.time() - start:>8.1f}s", flush=True)
    if golden:
        prog, w = first
        m, k = prog.graph.inputs["x"].shape
        x = np.random.default_rng(1).integers(-128, 128, (m, k), dtype=np.int8)
        start = time.time()
        outputs, cycles = prog.run_golden({"x": x})
        assert cycles == prog.predicted_cycles, (cycles, prog.predicted_cycles)
        assert np.array_equal(outputs["y"], x.astype(np.int64) @ w.astype(np.int64))
        print(f"  golden model, {m} x {k} x {FIG13_N[0]} on {config.name}: {cycles} cycles = "
              f"prediction, outputs = numpy ({time.time() - start:.0f}s)")


def rtl(config, emitted):
    """Run the emitted programs on the RTL (Verilator under cocotb, one model build): cycles
    and outputs against the prediction and numpy."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        programs = []
        for prog, x, _ in emitted:
            path = tmp / f"{prog.graph.name}.bin"
            prog.image_for({"x": x}).save(path)
            programs.append((prog.graph.name, path))
        start = time.time()
        records = run_images(config, programs, memories_dir=tmp, log_level="WARNING")
        print(f"\nRTL (Verilator), config {config.name}: {len(records)} programs, "
              f"{time.time() - start:.0f}s with the model build")
        for (prog, _, product), record in zip(emitted, records, strict=True):
            outputs = prog.outputs(np.load(record["memories"]))
            same = record["match"] and np.array_equal(outputs["y"], product)
            assert same and record["cycles_rtl"] == prog.predicted_cycles, record
            print(f"  {prog.graph.name:<22} predicted {prog.predicted_cycles:>6} = RTL "
                  f"{record['cycles_rtl']:>6} cycles, outputs = numpy = golden model")


def digits_shape():
    """(64, hidden, 10) of opentsp.app.digits if it is there, else (64, 32, 10)."""
    try:
        from opentsp.app import digits
        return 64, digits.HIDDEN, 10
    except ImportError:
        return 64, 32, 10


def mlp_graph(batch, sizes, seed=0):
    """relu(x W1 + b1) requantised, then W2 + b2: the digits network's operations."""
    rng = np.random.default_rng(seed)
    k, hidden, n = sizes
    g = Graph("digits_mlp")
    h = g.bias_add(g.matmul(g.input("x", (batch, k)),
                            g.const("w1", rng.integers(-128, 128, (k, hidden), dtype=np.int8)),
                            name="fc1"),
                   g.const("b1", rng.integers(-999, 999, hidden, dtype=np.int32)), name="fc1.bias")
    q = g.requant(g.relu(h), 1 << 30, 6, name="q1")
    y = g.bias_add(g.matmul(q, g.const("w2", rng.integers(-128, 128, (hidden, n),
                                                          dtype=np.int8)), name="fc2"),
                   g.const("b2", rng.integers(-999, 999, n, dtype=np.int32)), name="logits")
    g.output("y", y)
    return g


def projection(golden_groq):
    config = GROQ
    mhz = config.clock_mhz
    sizes = digits_shape()
    print(f"\nprojection to the real chip: config {config.name}, {mhz:g} MHz")
    print(f"  {'workload':<34}{'cycles':>9}{'latency':>11}{'util':>8}  real chip (brief)")
    rows = []
    for batch in (1, 320):
        g = mlp_graph(batch, sizes)
        figures = predict(g, config)
        rows.append((f"digits MLP {sizes[0]}->{sizes[1]}->{sizes[2]}, batch {batch}", figures))
    g, _ = gemm_graph(1, 4096, 4096)
    rows.append(("4096 x 4096 int8 layer, batch 1", predict(g, config)))
    real = {0: "ResNet-50 batch 1: ~49 us (paper)",
            2: "Llama 2 7B: 750 tokens/s (vendor)"}
    for i, (label, figures) in enumerate(rows):
        cycles = figures["predicted_cycles"]
        print(f"  {label:<34}{cycles:>9}{cycles / mhz:>9.2f}us{figures['mxm_utilisation']:>8.2%}"
              f"  {real.get(i, '')}")
    if golden_groq:
        g = mlp_graph(1, sizes)
        prog = compile_graph(g, "groq")
        x = np.random.default_rng(2).integers(0, 17, (1, sizes[0]), dtype=np.int8)
        start = time.time()
        outputs, cycles = prog.run_golden({"x": x})
        assert cycles == prog.predicted_cycles
        assert np.array_equal(outputs["y"], prog.reference({"x": x})["y"])
        print(f"  golden model, groq itself, digits MLP batch 1: {cycles} cycles = prediction, "
              f"outputs = reference ({time.time() - start:.0f}s)")
    layer = rows[2][1]["predicted_cycles"]
    print("\n  Assumptions: one chip with the real chip's four 320x320 planes (two per MXM:")
    print("  4 x 320^2 x 2 x 0.9 GHz = 737 int8 TOPS); every weight is already in MEM (no host")
    print("  or chip-to-chip transfer); weights load 16 rows a cycle (a plane in 20 cycles),")
    print("  behind the abc of the current tile; every program fits the 4096-word queues.")
    print("  Real chip: a 7B-parameter model decoding 750 tokens/s spends 1.33 ms per token on")
    print(f"  ~6.5e9 weights, i.e. ~{1333 * 4096 * 4096 / 6.5e9:.1f} us per 4096x4096 layer "
          f"(over a multi-chip pipeline);")
    print(f"  this model: {layer / mhz:.1f} us per layer on one chip, bound by loading the "
          f"{(-(-4096 // 320)) ** 2} weight tiles, 20 cycles each, on 4 planes.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest shapes")
    parser.add_argument("--golden-groq", action="store_true",
                        help="also run the digits MLP and Groq's N = 1376 shape on groq on the "
                             "golden model (minutes)")
    parser.add_argument("--rtl", action="store_true",
                        help="also run the default table's programs on the RTL (Verilator)")
    parser.add_argument("--study", action="store_true",
                        help="also the derived configurations default+ and default+acc256 "
                             "(not chips: 8192-word MEM slices, 65,536-word queues)")
    args = parser.parse_args(argv)
    emitted = []
    table(DEFAULT, [(4, 4, 4), (8, 8, 8), (16, 16, 16), (12, 16, 20)], golden_upto=20,
          emitted=emitted)
    if args.rtl:
        rtl(DEFAULT, emitted)
    groq = [(20, 40, 30), (320, 320, 320), (640, 640, 640)]
    if not args.quick:
        groq.append((2560, 2560, 2560))
    table(GROQ, groq, golden_upto=0)
    if not args.quick:
        fig13(GROQ, args.golden_groq)
    projection(args.golden_groq)
    if args.study:
        small = [(32, 32, 32), (30, 33, 35), (64, 64, 64)]
        table(DEFAULT_PLUS, small if not args.quick else small[:1], golden_upto=35)
        table(ACC256, [(128, 64, 64)] + ([] if args.quick else [(256, 128, 64)]),
              golden_upto=0)


if __name__ == "__main__":
    main()
