"""Integration: every example program on the RTL in Verilator under cocotb, compared with the
golden model bit for bit and cycle for cycle (one Verilated build, reused for every program).
``SIM=icarus`` (``make test-icarus``) runs these tests on Icarus Verilog instead."""


import pytest
from programs import (
    EXAMPLES_DIR,
    SESSION_CLEARS,
    SESSION_COUNTER,
    assert_all_match,
    checked_examples,
    four_lane_stream_pass,
    saved,
    session_counter_expected,
)

from opentsp.app import cli
from opentsp.compiler import derive_config
from opentsp.config import CONFIGS
from opentsp.firmware.asm import assemble
from opentsp.firmware.checker import check_or_raise
from opentsp.verif.randprog import random_image
from opentsp.verif.runner import run_images, run_sessions, simulator_name

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.s"))


def _images(tmp_path, config, sources):
    return saved(tmp_path, checked_examples(config, sources))


@pytest.mark.parametrize("config_name", ["default"])
def test_examples_on_verilator(tmp_path, capsys, config_name):
    config = CONFIGS[config_name]
    assert len(EXAMPLES) >= 10
    records = run_images(config, _images(tmp_path, config, EXAMPLES))
    with capsys.disabled():
        print(f"\ncocotb on {simulator_name()}, config {config_name}: {len(records)} tests, "
              f"{sum(r['match'] for r in records)} passed, "
              f"{sum(r['cycles_rtl'] or 0 for r in records)} RTL cycles compared")
    assert len(records) == len(EXAMPLES)
    assert_all_match(records)


@pytest.mark.slow      # a second Verilator build (~3 minutes on 2 cores): `make test-slow`
def test_medium_config_on_verilator(tmp_path):
    """A second configuration (4 superlanes, 8 MEM slices per hemisphere) builds and runs."""
    config = CONFIGS["medium"]
    sources = [EXAMPLES[0].parent / name for name in ("stream_pass.s", "dot_relu.s")]
    records = run_images(config, _images(tmp_path, config, sources))
    assert [r["match"] for r in records] == [True, True], records
    assert all(r["cycles_rtl"] == r["cycles_golden"] for r in records)


def test_program_that_never_ends_is_stopped_by_the_cycle_limit(tmp_path):
    config = CONFIGS["default"]
    source = tmp_path / "forever.s"
    source.write_text(".queue VXM\n" + "nop 65535\n" * 4)
    records = run_images(config, _images(tmp_path, config, [source]), max_cycles=5000)
    assert records[0]["error"] == "TimeoutError: program did not finish within 5000 cycles"


def test_cli_run_that_never_finishes_prints_one_line(tmp_path, capfd):
    """`opentsp run` of a program parked on a `sync` that nothing releases (assembled with
    --no-check): its one-line error and nothing else, no cocotb traceback of the
    TimeoutError, no Verilator `- :0: Verilog $finish` line (make demo printed one per run)."""
    source = tmp_path / "parked.s"
    source.write_text(".queue VXM\n    sync        ; no notify anywhere: parked for ever\n")
    image = tmp_path / "parked.bin"
    assert cli.main(["asm", str(source), "--no-check", "-o", str(image)]) == 0
    capfd.readouterr()
    assert cli.main(["run", str(image), "--max-cycles", "5000"]) == 1
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "$finish" not in out + err, out + err
    assert err == (f"opentsp: error: {image}: RTL run failed: TimeoutError: program did not "
                   f"finish within 5000 cycles\n"), out + err


def test_gemm_on_verilator_matches_numpy(tmp_path, capsys):
    """firmware/examples/gemm.s (C = A @ B, int8 -> int32, on both MXMs) and gemm_requant.s
    (then Q = int8(relu(requant(C)))) on the RTL: the RTL's own memories give
    numpy.matmul(A, B) and an independent integer requantisation of it, not only the golden
    model's results."""
    import numpy as np

    from opentsp.firmware import gen_gemm, gen_gemm_requant

    config = CONFIGS["default"]
    sources = [gen_gemm.EXAMPLE, gen_gemm_requant.EXAMPLE]
    records = run_images(config, _images(tmp_path, config, sources), memories_dir=tmp_path)
    for record in records:
        assert record["error"] is None and record["match"], record
    a, b = gen_gemm.operands()
    expect = np.matmul(a.astype(np.int32), b.astype(np.int32))
    for record in records:
        got = gen_gemm.result_from_memories(np.load(record["memories"]), config)
        np.testing.assert_array_equal(got, expect)
    quantised = gen_gemm_requant.result_from_memories(np.load(records[1]["memories"]), config)
    np.testing.assert_array_equal(quantised, gen_gemm_requant.reference(a, b))
    assert quantised.any() and (quantised == 127).any()     # ReLU zeros and saturation seen
    m, k, n = gen_gemm.SHAPE
    macs = m * k * n
    with capsys.disabled():
        for record in records:
            cycles = record["cycles_rtl"]
            print(f"\n{record['name']} {m}x{k} @ {k}x{n} on the RTL: {cycles} cycles, {macs} "
                  f"MACs, MXM utilisation {macs / (config.mxm_size ** 2 * cycles):.1%} of one "
                  f"MXM's peak ({macs / (2 * config.mxm_size ** 2 * cycles):.1%} of both)")


LEGAL_BATCH = range(1000, 1050)    # checker-clean random programs, beside randprog.BATCH


def test_random_programs_on_verilator(tmp_path, capsys):
    """The fixed batch of seeded random programs (opentsp.verif.randprog.BATCH: every
    instruction, sync/notify and ifetch blocks included, every VXM function on every type,
    extreme data, out-of-range operands) on the RTL in Verilator agrees with the golden model
    bit for bit and cycle for cycle. Its functional coverage is tests/test_coverage.py's."""
    from opentsp import isa
    from opentsp.firmware.checker import check
    from opentsp.verif.randprog import BATCH, random_image

    config = CONFIGS["default"]
    programs, used = [], set()
    for seed in BATCH:
        image = random_image(config, seed)
        path = tmp_path / f"random{seed}.bin"
        image.save(path)
        programs.append((f"random{seed}", path))
        for queue in image.queues:
            used.update((i.op.mnemonic, i.dtype) for i in queue)
    assert len(programs) >= 200
    # every instruction of the units the chip has (default has no links: no C2C slices)
    units = {isa.Unit.ICU} | {isa.unit_of(s) for s in isa.queues(config)}
    assert {name for name, _ in used} == {op.mnemonic for op in isa.OPS if op.unit in units}
    assert {(f, d) for f in isa.VXM_FUNCS for d, _ in isa.type_pairs(isa.OPS_BY_NAME[f])} <= used
    # And programs that honour every timing rule (randprog.legalise): what a compiler emits.
    for seed in LEGAL_BATCH:
        image = random_image(config, seed, legal=True)
        assert check(image) == [], f"legal{seed} breaks a timing rule"
        path = tmp_path / f"legal{seed}.bin"
        image.save(path)
        programs.append((f"legal{seed}", path))
    records = run_images(config, programs, max_cycles=100_000, log_level="WARNING")
    with capsys.disabled():
        print(f"\nrandom programs on {simulator_name()}: {len(records)} compared, "
              f"{sum(r['cycles_rtl'] or 0 for r in records)} cycles, "
              f"{sum(r['match'] for r in records)} matched")
    assert len(records) == len(programs)
    for record in records:
        legal = record["name"].startswith("legal")
        replay = (f"replay: python -m opentsp.verif.regress "
                  f"--first {record['name'].removeprefix('legal').removeprefix('random')} "
                  f"--seeds 1{' --legal' if legal else ''}")
        assert record["error"] is None, f"{record['name']} ({replay}): {record['error']}"
        assert record["cycles_rtl"] == record["cycles_golden"], f"{record} ({replay})"
        assert record["match"], f"{record['name']} ({replay}): {record['mismatches']}"


def test_a_derived_configuration_runs_on_the_rtl(tmp_path):
    """The configuration travels whole to the testbench (opentsp.config.Config.to_json), so one
    made by the compiler's derive_config, unknown to opentsp.config.CONFIGS, runs on the RTL:
    one superlane of 4 lanes, 4 + 4 streams, 16-word MEM slices, 32-entry queues, no floating
    point (a small, quick build; the random programs then hold no float instruction)."""
    config = derive_config("default", "derived-1x4", superlanes=1, streams=4, mem_words=16,
                           queue_depth=32, floating_point=False)
    assert config.name not in CONFIGS and config.to_json() != CONFIGS["default"].to_json()
    program = assemble(four_lane_stream_pass(), config)
    check_or_raise(program)
    images = [("stream_pass", program.image)]
    images += [(f"random_{seed}", random_image(config, seed)) for seed in range(4)]
    records = run_images(config, saved(tmp_path, images))
    assert [r["name"] for r in records] == [name for name, _ in images]
    assert_all_match(records)


def test_sessions_on_the_rtl_match_the_golden_sessions(tmp_path, capsys):
    """One load, then many starts with the memories carried over (docs/architecture.md
    section 10, "What a start keeps"), on the RTL against the golden model's session: every
    run's cycle count and ECC report and the memories after every run. The counter keeps its
    state in MEM (5 runs: 5 increments, checked on the RTL's own memories too); the second
    program uses the VXM's chaining register, an MXM accumulator, the SXM's permute table and
    a MEM write sequencer's count before each run sets them, so it matches only if the RTL's
    start clears them as the golden model's does; ifetch.s wraps its VXM queue's ring over a
    preloaded word, run with the queues reloaded before every start, and run on from the
    changed ring (as the chip does), and refused without either."""
    import numpy as np

    config = CONFIGS["default"]
    counter = assemble(SESSION_COUNTER, config)
    check_or_raise(counter)
    images = [("counter", counter.image), ("clears", assemble(SESSION_CLEARS, config).image),
              ("ifetch", assemble(EXAMPLES_DIR.joinpath("ifetch.s").read_text(), config).image)]
    paths = dict(saved(tmp_path, images))
    records = run_sessions(config, [
        ("counter", paths["counter"], 5),
        ("clears", paths["clears"], 3),
        ("ifetch_reloaded", paths["ifetch"], 3, {"reload_queues": True}),
        ("ifetch_changed", paths["ifetch"], 3, {"allow_queue_changes": True}),
        ("ifetch_refused", paths["ifetch"], 2),
    ], memories_each_run=True, memories_dir=tmp_path, log_level="WARNING")
    by_name = {record["name"]: record for record in records}
    refused = by_name.pop("ifetch_refused")
    assert refused["error"].startswith("SessionError: run 1 of 2: its fetches wrote over "
                                       "preloaded word 0 of queue 6 (VXM)"), refused
    assert refused["cycles_rtl"] is None
    for record in by_name.values():
        assert record["error"] is None, f"{record['name']}: {record['error']}"
        assert record["cycles_rtl"] == record["cycles_golden"], record
        assert record["match"], f"{record['name']}: {record['mismatches']}"
        assert len(record["cycles_rtl"]) == record["runs"] == len(record["run_memories"])
    assert by_name["counter"]["cycles_rtl"] == [15] * 5
    assert by_name["clears"]["cycles_rtl"] == [17] * 3
    assert by_name["ifetch_reloaded"]["cycles_rtl"] == [326] * 3
    for run, path in enumerate(by_name["counter"]["run_memories"], start=1):
        c, acc = session_counter_expected(run)
        memories = np.load(path)
        np.testing.assert_array_equal(memories[3, 0], c)       # MEM_W0 word 0
        np.testing.assert_array_equal(memories[4, 1], acc)     # MEM_E0 word 1
    with capsys.disabled():
        print(f"\nsessions on {simulator_name()}: "
              + ", ".join(f"{r['name']} {r['runs']} x {r['cycles_rtl'][0]} cycles"
                          for r in by_name.values()))
