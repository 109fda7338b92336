"""Icarus Verilog, the second simulator (docs/verification.md, "Simulators"), exercised in every
``make test`` whatever ``SIM`` says: the example programs (gemm.s and gemm_requant.s also
against numpy) and seeded random programs on the RTL in Icarus under cocotb, compared with the
golden model bit for bit and cycle for cycle, so that a Verilator-specific behaviour (two-state
values, ``--x-assign fast``, its scheduling) cannot hide a bug. ``make test-icarus`` runs every
cocotb test on Icarus instead.
"""

import subprocess

import numpy as np
import pytest
from programs import (
    EXAMPLES_DIR,
    SESSION_COUNTER,
    assert_all_match,
    checked_examples,
    saved,
    session_counter_expected,
)

from opentsp.config import CONFIGS
from opentsp.firmware.asm import assemble
from opentsp.verif import runner
from opentsp.verif.randprog import random_image

CONFIG = CONFIGS["default"]
#: A program's cost on Icarus is mostly the host port's load and read-back (~3 CPU-seconds),
#: so a dozen examples that between them use every unit and both directions keep this file
#: near two minutes; ``make test-icarus`` runs them all (long_run.s included).
ICARUS_EXAMPLES = [EXAMPLES_DIR / f"{name}.s" for name in (
    "bank_pingpong", "dot_relu", "gemm", "gemm_requant", "ifetch", "mem_gather", "mem_stride",
    "requant", "sxm_permute", "sync_notify", "vxm_i32", "westward")]
#: The first seeds of the Verilator batch (randprog.BATCH): the same programs on both.
RANDOM_SEEDS = range(10)


def _ports(verilog):
    header = verilog[verilog.index("module tsp_top("):].split(";", 1)[0]
    return sorted(header[header.index("(") + 1:header.index(")")].replace(" ", "").split(","))


def test_examples_and_random_programs_on_icarus(tmp_path, capsys):
    from opentsp.firmware import gen_gemm, gen_gemm_requant
    from opentsp.hdl.verilog import PORTS

    assert len(ICARUS_EXAMPLES) >= 10
    programs = saved(tmp_path, checked_examples(CONFIG, ICARUS_EXAMPLES)
                     + [(f"random{seed}", random_image(CONFIG, seed)) for seed in RANDOM_SEEDS])
    records = runner.run_images(CONFIG, programs, simulator="icarus", max_cycles=100_000,
                                memories_dir=tmp_path, log_level="WARNING")
    with capsys.disabled():
        print(f"\ncocotb on icarus, config {CONFIG.name}: {len(records)} programs, "
              f"{sum(r['match'] for r in records)} matched, "
              f"{sum(r['cycles_rtl'] or 0 for r in records)} RTL cycles compared")
    assert [r["name"] for r in records] == [name for name, _ in programs]
    assert_all_match(records)

    # The RTL's own memories against numpy, not only against the golden model.
    by_name = {record["name"]: record for record in records}
    a, b = gen_gemm.operands()
    product = gen_gemm.result_from_memories(np.load(by_name["gemm"]["memories"]), CONFIG)
    np.testing.assert_array_equal(product, np.matmul(a.astype(np.int32), b.astype(np.int32)))
    quantised = gen_gemm_requant.result_from_memories(
        np.load(by_name["gemm_requant"]["memories"]), CONFIG)
    np.testing.assert_array_equal(quantised, gen_gemm_requant.reference(a, b))

    # What Icarus compiled (runner.SIM_YOSYS_SCRIPT) has the chip's ports.
    compiled = (runner.BUILD_ROOT / f"icarus-{CONFIG.name}" / f"{runner.TOPLEVEL}.v").read_text()
    assert _ports(compiled) == sorted(PORTS + ("clk", "rst"))


def test_generated_verilog_compiles_under_icarus(tmp_path):
    """opentsp.hdl.verilog.generate's own text, as Verilator gets it, is accepted by Icarus 11."""
    from opentsp.hdl.verilog import generate

    runner.tool_env("icarus")
    source = tmp_path / "tsp_top.v"
    source.write_text(generate(CONFIG))
    result = subprocess.run(["iverilog", "-g2012", "-s", runner.TOPLEVEL, "-o",
                             str(tmp_path / "tsp_top.vvp"), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "tsp_top.vvp").stat().st_size > 0


def test_sim_variable_selects_the_simulator(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    assert runner.simulator_name() == "verilator"
    monkeypatch.setenv("SIM", "icarus")
    assert runner.simulator_name() == "icarus"
    assert runner.simulator_name("verilator") == "verilator"     # an argument beats SIM
    monkeypatch.setenv("SIM", "")
    assert runner.simulator_name() == "verilator"


def test_unknown_simulator_is_refused(monkeypatch):
    monkeypatch.setenv("SIM", "questa")
    with pytest.raises(ValueError, match=r"^SIM must be one of verilator, icarus, not 'questa'$"):
        runner.run_images(CONFIG, [])
    with pytest.raises(ValueError,
                       match=r"^simulator must be one of verilator, icarus, not 'iverilog'$"):
        runner.build(CONFIG, simulator="iverilog")


def test_missing_icarus_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))     # an empty directory: no iverilog, no vvp
    with pytest.raises(RuntimeError, match=r"^icarus: iverilog and vvp not found on PATH; "
                                           r"install Debian's iverilog: apt-get install "):
        runner.build(CONFIG, simulator="icarus")


def test_a_session_on_icarus(tmp_path):
    """A session (one load, three starts, memories carried over: docs/architecture.md section
    10) on Icarus against the golden session: the counter of tests/programs.py."""
    path = saved(tmp_path, [("counter", assemble(SESSION_COUNTER, CONFIG).image)])[0][1]
    record = runner.run_session(CONFIG, path, 3, simulator="icarus", memories_dir=tmp_path,
                                log_level="WARNING")
    assert record["simulator"] == "icarus" and record["error"] is None, record
    assert record["cycles_rtl"] == record["cycles_golden"] == [15] * 3, record
    assert record["match"], record["mismatches"]
    c, acc = session_counter_expected(3)
    memories = np.load(record["memories"])
    np.testing.assert_array_equal(memories[3, 0], c)
    np.testing.assert_array_equal(memories[4, 1], acc)
