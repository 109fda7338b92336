"""The C++ harness (verif/tb/tsp_harness.cpp, opentsp.verif.harness): the chip's Verilated model
driven without Python, on the examples, the random batch and ECC faults, each compared with the
golden model bit for bit and cycle for cycle, and with cocotb's run of the same program."""

import subprocess
from dataclasses import asdict

import numpy as np
import pytest
from programs import (
    EXAMPLES_DIR,
    SESSION_CLEARS,
    SESSION_COUNTER,
    assert_all_match,
    checked_examples,
    saved,
    session_counter_expected,
)

from opentsp import hostmap, isa
from opentsp.compiler import Graph, compile_graph
from opentsp.config import CONFIGS, Config
from opentsp.firmware import gen_gemm
from opentsp.firmware.asm import assemble
from opentsp.sim.mem import Fault
from opentsp.verif import harness
from opentsp.verif.randprog import BATCH, random_image
from opentsp.verif.runner import run_images, run_sessions

CONFIG = CONFIGS["default"]
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.s"))
#: The harness models (build/harness-*) are built for these tests alone, so the other worker may
#: take them beside the cocotb co-simulations (tests/conftest.py).
XDIST_GROUP = "harness"


def test_examples_and_random_batch_on_the_harness(tmp_path, capsys):
    programs = saved(tmp_path, checked_examples(CONFIG, EXAMPLES)
                     + [(f"random{seed}", random_image(CONFIG, seed)) for seed in BATCH])
    records = harness.run_harness(CONFIG, programs, max_cycles=200_000, memories_dir=tmp_path)
    with capsys.disabled():
        print(f"\nC++ harness, config {CONFIG.name}: {len(records)} programs, "
              f"{sum(r['match'] for r in records)} matched, "
              f"{sum(r['cycles_rtl'] or 0 for r in records)} RTL cycles compared")
    assert [r["name"] for r in records] == [name for name, _ in programs]
    assert_all_match(records)
    # the RTL's own memories against numpy, not only against the golden model
    gemm = next(r for r in records if r["name"] == "gemm")
    a, b = gen_gemm.operands()
    product = gen_gemm.result_from_memories(np.load(gemm["memories"]), CONFIG)
    np.testing.assert_array_equal(product, np.matmul(a.astype(np.int32), b.astype(np.int32)))


def _uses_own_config(source):
    return any(line.split(";")[0].split()[:1] == [".config"]
               for line in source.read_text().splitlines())


@pytest.mark.slow
def test_mxm_across_two_superlanes_on_the_harness(tmp_path, capsys):
    """``wide``: an 8 x 8 MXM over both superlanes, so that every ``abc``'s partial sums ride
    the stagger from superlane 0 to superlane 1 (section 7a) in the RTL. The examples written
    for any configuration, 100 random programs, and compiled GEMMs (K up to 20 across the
    span) against the golden model, numpy, and the compiler's predicted cycles. In ``make
    test-slow``: its model's build is most of its three minutes, and ``make test`` runs a span
    of 2 on the RTL in ``tests/cosim/test_lm_cosim.py`` (the ``lm`` chip's 8 x 8 MXM) and
    spans of 2 and 3 in Amaranth's simulator (``tests/test_mxm.py``)."""
    config = CONFIGS["wide"]
    assert isa.mxm_span(config) == 2
    examples = [source for source in EXAMPLES if not _uses_own_config(source)]
    compiled = _compiled_gemms(config, [(4, 8, 8), (5, 7, 6), (3, 20, 12), (2, 16, 3)])
    programs = saved(tmp_path, checked_examples(config, examples)
                     + [(f"random{seed}", random_image(config, seed)) for seed in BATCH[:100]]
                     + [(name, image) for name, _, image, _ in compiled])
    records = harness.run_harness(config, programs, max_cycles=200_000, memories_dir=tmp_path)
    with capsys.disabled():
        print(f"\nC++ harness, config {config.name} (MXM span 2): {len(records)} programs, "
              f"{sum(r['match'] for r in records)} matched, "
              f"{sum(r['cycles_rtl'] or 0 for r in records)} RTL cycles compared")
    assert len(examples) >= 10 and [r["name"] for r in records] == [n for n, _ in programs]
    assert_all_match(records)
    _check_compiled(records, compiled)


def _compiled_gemms(config, shapes):
    """``[(name, CompiledProgram, image, numpy's product)]`` of GEMMs compiled for ``config``."""
    rng = np.random.default_rng(2026)
    compiled = []
    for m, k, n in shapes:
        w = rng.integers(-128, 128, (k, n), dtype=np.int8)
        x = rng.integers(-128, 128, (m, k), dtype=np.int8)
        graph = Graph(f"gemm_{m}x{k}x{n}")
        graph.output("y", graph.matmul(graph.input("x", (m, k)), graph.const("w", w)))
        prog = compile_graph(graph, config)
        compiled.append((graph.name, prog, prog.image_for({"x": x}),
                         x.astype(np.int64) @ w.astype(np.int64)))
    return compiled


def _compiled_kv_caches(config):
    """A KV cache on a chip whose ``lw`` loads 4 columns a cycle: an int8 state (8, 4) written
    at row 5, then ``x @ Kᵀ`` (its rows loaded from 4 slice groups: striped) and ``x @ V``
    (transposed on the MXM first, the transpose's rows stored one group each), from a random
    state; the same tuples as :func:`_compiled_gemms`."""
    rng = np.random.default_rng(2027)
    compiled = []
    for kind in ("keys", "values"):
        g = Graph(f"kv_{kind}")
        cache = g.write_row(g.state("cache", (8, 4), "int8"), g.input("pos", (1, 1), "int32"),
                            g.input("new", (1, 4)), name="c1")
        weights = g.transpose(cache, name="t") if kind == "keys" else cache
        x = g.input("x", (1, 4 if kind == "keys" else 8))
        g.output("y", g.matmul(x, weights, name="y"))
        prog = compile_graph(g, config)
        assert prog._stores["cache"].indexed.stripes == 4
        state = rng.integers(-128, 128, (8, 4), dtype=np.int8)
        inputs = {"pos": np.array([[5]], np.int32),
                  "new": rng.integers(-128, 128, (1, 4), dtype=np.int8),
                  "x": rng.integers(-128, 128, x.shape, dtype=np.int8)}
        after = state.copy()
        after[5] = inputs["new"][0]
        cache_value = after.T if kind == "keys" else after
        compiled.append((g.name, prog, prog.image_for(inputs, {"cache": state}),
                         inputs["x"].astype(np.int64) @ cache_value.astype(np.int64)))
    return compiled


def _check_compiled(records, compiled):
    """Every compiled GEMM: RTL cycles = golden cycles = predicted, RTL memories = numpy."""
    by_name = {r["name"]: r for r in records}
    for name, prog, _, expected in compiled:
        record = by_name[name]
        assert record["cycles_rtl"] == record["cycles_golden"] == prog.predicted_cycles, name
        got = prog.outputs(np.load(record["memories"]))["y"]
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_mxm_planes_and_multi_row_loads_on_the_harness(tmp_path, capsys):
    """ISA v4's MXM on the whole chip: two planes per MXM, each with its own compute and drain
    sequencers, and weights loaded four rows a cycle (a configuration derived from
    ``default``): 100 random programs (sequences of every kind cut short, halted by ``end``,
    beyond the planes and streams), 20 checker-clean ones, and GEMMs compiled onto every plane
    of both MXMs, against the golden model, numpy and the predicted cycles. Without floating
    point: the MXM is what this build is for, and the VXM's float half would double it. With
    them, a KV cache striped over four slice groups (``compiler.lower``), written and loaded."""
    config = Config(**{**asdict(CONFIG), "name": "planes", "mxm_planes": 2,
                       "mxm_load_rows": 4, "floating_point": False})
    compiled = (_compiled_gemms(config, [(4, 4, 8), (5, 7, 6), (3, 9, 13), (2, 5, 3)])
                + _compiled_kv_caches(config))
    assert {i["p"] for _, prog, _, _ in compiled for q in prog.image.queues for i in q
            if i.op.mnemonic == "abc"} == {0, 1}
    programs = saved(tmp_path, [(f"random{seed}", random_image(config, seed))
                                for seed in BATCH[:100]]
                     + [(f"legal{seed}", random_image(config, seed, legal=True))
                        for seed in BATCH[:20]]
                     + [(name, image) for name, _, image, _ in compiled])
    records = harness.run_harness(config, programs, max_cycles=200_000, memories_dir=tmp_path)
    with capsys.disabled():
        print(f"\nC++ harness, config {config.name} (2 planes, 4-row loads): "
              f"{len(records)} programs, {sum(r['match'] for r in records)} matched")
    assert_all_match(records)
    _check_compiled(records, compiled)


def test_harness_and_cocotb_agree(tmp_path):
    """One program with a corrected flip: the same cycles, memories and ECC report from both
    drivers of the same Verilog."""
    programs = saved(tmp_path, [("random7", random_image(CONFIG, 7, length=24))])
    place = (0, 0, 1)
    faulty = [(name, path, [Fault(0, *place, 1 << 4)]) for name, path in programs]
    (tmp_path / "h").mkdir()
    (tmp_path / "c").mkdir()
    ours = harness.run_harness(CONFIG, faulty, memories_dir=tmp_path / "h")
    theirs = run_images(CONFIG, faulty, memories_dir=tmp_path / "c", simulator="verilator",
                        log_level="WARNING")
    assert_all_match(ours + theirs)
    assert ours[0]["cycles_rtl"] == theirs[0]["cycles_rtl"]
    assert ours[0]["ecc_rtl"] == theirs[0]["ecc_rtl"]
    np.testing.assert_array_equal(np.load(ours[0]["memories"]), np.load(theirs[0]["memories"]))


def test_timeout_and_bad_faults_are_records(tmp_path):
    source = tmp_path / "forever.s"
    source.write_text(".queue VXM\n" + "nop 65535\n" * 4)
    programs = saved(tmp_path, checked_examples(CONFIG, [source, EXAMPLES_DIR / "gemm.s"]))
    forever, gemm = programs
    records = harness.run_harness(
        CONFIG, [forever, (*gemm, [Fault(0, 0, 1, 1, 1)] * 5), gemm], max_cycles=5000)
    assert records[0]["error"] == "TimeoutError: program did not finish within 5000 cycles"
    assert records[1]["error"] == "ValueError: faults must be at most 4 (the injection " \
                                  "entries of the host port), not 5"
    assert_all_match(records[2:])


def test_a_wrong_configuration_word_is_an_error_record(tmp_path):
    """The harness's output parsed as the testbench checks it: a model of another
    configuration is refused by name."""
    output = [f"r {hostmap.config_word(CONFIGS['medium']):x}", "r", "run 5 0.1", "r 5 1",
              "r 0 0 0 0", "r", "end 0"]
    with pytest.raises(AssertionError, match="another configuration than 'default'"):
        harness._check_run(CONFIG, [], output, 100)


def test_a_malformed_script_stops_the_harness_with_one_line(tmp_path):
    build_dir = harness.build_harness(CONFIG)
    script = tmp_path / "bad.txt"
    script.write_text("reset\nw 10\n")
    result = subprocess.run([build_dir / harness.HARNESS_EXE, script], capture_output=True,
                            text=True)
    assert result.returncode == 1
    assert result.stderr == "tsp_harness: w needs ADDR VALUE\n"
    with pytest.raises(harness.HarnessError, match="w needs ADDR VALUE"):
        harness._run_script(build_dir, ["reset", "w 10"], lambda: None)


def test_sessions_on_the_harness_and_under_cocotb(tmp_path):
    """A session (one load, many starts: docs/architecture.md section 10) from C++: the same
    script commands, one load and then start, run, read the counters per run. The counter's 5
    runs and the clears program's 3 against the golden session, every run's memories read
    back, and against cocotb's session of the same image: the same cycles and memories."""
    images = [("counter", assemble(SESSION_COUNTER, CONFIG).image),
              ("clears", assemble(SESSION_CLEARS, CONFIG).image),
              ("ifetch", assemble(EXAMPLES_DIR.joinpath("ifetch.s").read_text(), CONFIG).image)]
    paths = dict(saved(tmp_path, images))
    (tmp_path / "cpp").mkdir()
    cpp = {name: harness.run_harness_session(CONFIG, paths[name], runs, memories_each_run=True,
                                             memories_dir=tmp_path / "cpp", **options)
           for name, runs, options in (("counter", 5, {}), ("clears", 3, {}),
                                       ("ifetch", 3, {"allow_queue_changes": True}))}
    for record in cpp.values():
        assert record["simulator"] == "harness" and record["error"] is None, record
        assert record["cycles_rtl"] == record["cycles_golden"], record
        assert record["match"], f"{record['name']}: {record['mismatches']}"
    assert cpp["counter"]["cycles_rtl"] == [15] * 5 and len(cpp["counter"]["seconds"]) == 5
    for run, path in enumerate(cpp["counter"]["run_memories"], start=1):
        c, acc = session_counter_expected(run)
        np.testing.assert_array_equal(np.load(path)[3, 0], c)
        np.testing.assert_array_equal(np.load(path)[4, 1], acc)
    refused = harness.run_harness_session(CONFIG, paths["ifetch"], 2)
    assert refused["error"].startswith("SessionError: run 1 of 2: its fetches wrote over"), refused
    (tmp_path / "cocotb").mkdir()
    records = run_sessions(CONFIG, [("counter", paths["counter"], 5)], memories_each_run=True,
                           memories_dir=tmp_path / "cocotb", log_level="WARNING")
    assert records[0]["cycles_rtl"] == cpp["counter"]["cycles_rtl"]
    for ours, theirs in zip(cpp["counter"]["run_memories"], records[0]["run_memories"],
                            strict=True):
        np.testing.assert_array_equal(np.load(ours), np.load(theirs))
