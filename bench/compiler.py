"""The compiler's MXM utilisation and cycles for GEMMs from small to large, and the projection
of two networks to the real chip (issue 6, items 3 and 5).

    .venv/bin/python bench/compiler.py [--quick] [--golden-groq]

Every figure is the compiler's exact prediction (``CompiledProgram.predicted_cycles``, equal to
the golden model's and the RTL's count: tests/test_compiler.py, verif/test_compiled.py); the
"golden" column reruns the program on the golden model where that takes seconds, not hours.
Utilisation = MACs done / (cycles x peak of every plane of both MXMs), the whole program:
loading the weights, streaming, draining and storing the results included.

Configurations (stated in every table):

* ``default+`` is ``default`` (4 x 4 MXMs, 16 accumulators) with 8192 words per MEM slice and
  65,536-word queues, so that large GEMMs fit without ifetch (the compiler does not use it).
* ``default+acc256`` is ``default+`` with 256 accumulators per MXM: what it takes to pass 90%.
* ``groq+`` is ``groq`` with 65,536-word queues; longer programs are scheduled (exact cycles)
  without being emitted (``opentsp.compiler.predict``).

Groq's own GEMM shapes (ISCA 2022, Fig. 13: ``[2304 x 4096] x [4096 x N]``) are scheduled on
``groq+`` beside the bound that tile padding alone allows.

"bound" is the sequencer bound of the plan (ISA v4): the units (up to ``mxm_accumulators`` rows
x one column block) are dealt to the planes of both MXMs; per unit and K tile a plane's compute
sequencer runs one ``abc`` per row, and its MXM's load sequencer (shared by the planes) one
element per ``mxm_load_rows`` weight columns, while the ``iw`` and the ``acc`` drain overlap
them. Utilisation <= MACs / (peak of every plane x the busiest sequencer's cycles).
"""

import argparse
import time

import numpy as np

from opentsp.compiler import Graph, compile_graph, derive_config, predict
from opentsp.compiler.plan import matmul_units

DEFAULT_PLUS = derive_config("default", "default+", mem_words=8192, queue_depth=65536)
ACC256 = derive_config("default", "default+acc256", mem_words=8192, queue_depth=65536,
                       mxm_accumulators=256)
GROQ_PLUS = derive_config("groq", "groq+", queue_depth=65536)


def gemm_graph(m, k, n, seed=0):
    rng = np.random.default_rng([seed, m, k, n])
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    g = Graph(f"gemm_{m}x{k}x{n}")
    g.output("y", g.matmul(g.input("x", (m, k)), g.const("w", w), name="fc"))
    return g, w


def _units(m, k, n, config):
    g, _ = gemm_graph(m, k, n)
    return matmul_units(next(nd for nd in g.nodes if nd.op == "matmul"), config)


def mxm_slots(m, k, n, config):
    """MXM instructions of the plan before sequences, both MXMs together: per unit and K tile
    one ``lw`` per load element, ``iw`` and one ``abc`` per row, then one ``acc`` per row (an
    upper bound on the queue words, which sequences make far fewer)."""
    units = _units(m, k, n, config)
    return sum(units.kt * (_load_elements(n, nb, config) + 1 + len(rows)) + len(rows)
               for rows, nb, _, _ in units.units)


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


def mxm_words(m, k, n, config):
    """About the words of the longest MXM queue (half of the plan's MXM instructions)."""
    return mxm_slots(m, k, n, config) // 2 + 2


def slot_bound(m, k, n, config):
    """Upper bound on utilisation from the plan's sequencer cycles (every plane's peak)."""
    planes = 2 * config.mxm_planes
    return m * k * n / (planes * config.mxm_size ** 2 * sequencer_cycles(m, k, n, config))


def gemm_row(m, k, n, config, golden):
    g, w = gemm_graph(m, k, n)
    start = time.time()
    if mxm_words(m, k, n, config) <= config.queue_depth:
        prog = compile_graph(g, config, check=golden)
        cycles, util, macs = prog.predicted_cycles, prog.mxm_utilisation, prog.mac_ops
    else:                               # too long for a queue even so: schedule only
        prog = None
        figures = predict(g, config)
        cycles, util, macs = (figures["predicted_cycles"], figures["mxm_utilisation"],
                              figures["mac_ops"])
    seconds = time.time() - start
    check = "-"
    if golden and prog is not None:
        rng = np.random.default_rng(1)
        x = rng.integers(-128, 128, (m, k), dtype=np.int8)
        outputs, golden_cycles = prog.run_golden({"x": x})
        assert np.array_equal(outputs["y"], x.astype(np.int64) @ w.astype(np.int64))
        assert golden_cycles == cycles, (golden_cycles, cycles)
        check = f"{golden_cycles} ok"
    emitted = "emitted" if prog is not None else "scheduled"
    print(f"  {f'{m} x {k} x {n}':<22}{cycles:>10}{macs:>14}{util:>9.1%}"
          f"{slot_bound(m, k, n, config):>8.1%}  {check:<13}{emitted:<10}{seconds:>6.1f}s",
          flush=True)
    return cycles, util


def table(config, shapes, golden_upto, golden=True):
    size = config.mxm_size
    print(f"\nconfig {config.name}: two MXMs of {config.mxm_planes} {size}x{size} plane(s), "
          f"{config.mxm_load_rows} weight row(s) a cycle, {config.mxm_accumulators} "
          f"accumulators, {2 * config.mem_slices} MEM slices x {config.mem_words} words, "
          f"queues of {config.queue_depth}, {config.clock_mhz:g} MHz")
    print(f"  {'M x K x N':<22}{'cycles':>10}{'MACs':>14}{'util':>9}{'bound':>8}  "
          f"{'golden':<13}{'program':<10}{'compile':>7}")
    results = {}
    for shape in shapes:
        results[shape] = gemm_row(*shape, config, golden and max(shape) <= golden_upto)
    return results


#: ISCA 2022, Fig. 13: [2304 x 4096] x [4096 x N]; Groq reports at least 80% MXM utilisation.
FIG13_N = (1376, 2048, 2560, 3500)


def padding_bound(m, k, n, config):
    """The utilisation that tile padding alone allows: MACs over the MACs of whole
    ``mxm_size`` tiles in K and N (M needs no padding: rows stream one per cycle)."""
    size = config.mxm_size
    return m * k * n / (m * -(-k // size) * size * -(-n // size) * size)


def fig13(config, golden=False):
    """Groq's own shapes (scheduled with ``predict``: exact cycles, nothing emitted); with
    ``golden``, the first is also emitted and run on the golden model (minutes)."""
    print(f"\nGroq's GEMM shapes (ISCA 2022, Fig. 13: at least 80% reported) on {config.name}: "
          f"{config.mxm_planes} plane(s) of {config.mxm_size}x{config.mxm_size} per MXM")
    print(f"  {'M x K x N':<22}{'cycles':>10}{'util':>9}{'padding':>9}{'bound':>8}{'schedule':>10}")
    for n in FIG13_N:
        m, k = 2304, 4096
        g, _ = gemm_graph(m, k, n)
        start = time.time()
        figures = predict(g, config)
        print(f"  {f'{m} x {k} x {n}':<22}{figures['predicted_cycles']:>10}"
              f"{figures['mxm_utilisation']:>9.1%}{padding_bound(m, k, n, config):>9.1%}"
              f"{slot_bound(m, k, n, config):>8.1%}{time.time() - start:>9.1f}s", flush=True)
    if golden:
        m, k, n = 2304, 4096, FIG13_N[0]
        g, w = gemm_graph(m, k, n)
        prog = compile_graph(g, config, check=False)
        x = np.random.default_rng(1).integers(-128, 128, (m, k), dtype=np.int8)
        start = time.time()
        outputs, cycles = prog.run_golden({"x": x})
        assert cycles == prog.predicted_cycles, (cycles, prog.predicted_cycles)
        assert np.array_equal(outputs["y"], x.astype(np.int64) @ w.astype(np.int64))
        print(f"  golden model, {m} x {k} x {n} on {config.name}: {cycles} cycles = prediction, "
              f"outputs = numpy ({time.time() - start:.0f}s)")


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
    config = GROQ_PLUS
    mhz = config.clock_mhz
    sizes = digits_shape()
    print(f"\nprojection to the real chip: config {config.name} (groq with 65,536-word queues), "
          f"{mhz:g} MHz")
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
    print("  behind the abc of the current tile; queues long enough to hold the program (no")
    print("  ifetch).")
    print("  Real chip: a 7B-parameter model decoding 750 tokens/s spends 1.33 ms per token on")
    print(f"  ~6.5e9 weights, i.e. ~{1333 * 4096 * 4096 / 6.5e9:.1f} us per 4096x4096 layer "
          f"(over a multi-chip pipeline);")
    print(f"  this model: {layer / mhz:.1f} us per layer on one chip, bound by loading the "
          f"{(-(-4096 // 320)) ** 2} weight tiles, 20 cycles each, on 4 planes.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest shapes")
    parser.add_argument("--golden-groq", action="store_true",
                        help="also run the digits MLP on groq and Groq's N = 1376 shape on "
                             "groq+ on the golden model (minutes)")
    args = parser.parse_args(argv)
    small = [(4, 4, 4), (8, 8, 8), (16, 16, 16), (32, 32, 32), (30, 33, 35), (64, 64, 64)]
    table(DEFAULT_PLUS, small if not args.quick else small[:4], golden_upto=35)
    table(ACC256, [(128, 64, 64)] + ([] if args.quick else [(256, 64, 64), (256, 128, 64)]),
          golden_upto=0)
    groq = [(20, 40, 30), (320, 320, 320), (640, 640, 640)]
    if not args.quick:
        groq.append((2560, 2560, 2560))
    table(GROQ_PLUS, groq, golden_upto=0)
    if not args.quick:
        fig13(GROQ_PLUS, args.golden_groq)
    projection(args.golden_groq)


if __name__ == "__main__":
    main()
