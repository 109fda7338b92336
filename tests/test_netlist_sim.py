"""The check of the bitstream's netlist without a board (opentsp/app/netlist_sim.py): its
one-line errors, the pieces it builds the simulation from, its default programs on the golden
model. The simulation of the synthesised ``fpga`` netlist itself takes tens of minutes
(``make fpga-netlist-sim``, docs/fpga.md) and runs here only under ``-m slow`` when a netlist
is there."""

import json

import numpy as np
import pytest

from opentsp.app import fpga, netlist_sim
from opentsp.app.netlist_sim import NetlistSimError
from opentsp.config import get_config
from opentsp.firmware import gen_gemm
from opentsp.sim.model import run as golden_run


def test_unknown_board_and_config_fail_in_one_line(capsys):
    with pytest.raises(NetlistSimError, match=r"^unknown board 'de0'; known boards: ulx3s-12f"):
        netlist_sim.fpga_dir("de0", "fpga")
    with pytest.raises(NetlistSimError, match=r"^unknown configuration 'tiny'; known: "):
        netlist_sim.fpga_dir("ulx3s-85f", "tiny")
    for argv in (["--board", "de0"], ["--config", "tiny"]):
        with pytest.raises(SystemExit) as exit_:
            netlist_sim.main(argv)
        assert exit_.value.code in (1, 2)
        err = capsys.readouterr().err
        assert err.startswith("python -m opentsp.app.netlist_sim: error: unknown ")
        assert len(err.strip().splitlines()) == 1


def test_missing_netlist_fails_in_one_line(tmp_path, capsys):
    out = tmp_path / "empty"
    with pytest.raises(NetlistSimError, match=r"netlist\.v: no such file; synthesise first"):
        netlist_sim.run(out_dir=out, synthesise="never", programs=[("p", None)])
    with pytest.raises(SystemExit) as exit_:
        netlist_sim.main(["-o", str(out), "--synthesise", "never"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "netlist.v: no such file; synthesise first (make fpga" in err
    assert len(err.strip().splitlines()) == 1


def test_netlist_of_another_configuration_is_refused(tmp_path):
    (tmp_path / fpga.NETLIST_NAME).write_text("module opentsp(); endmodule\n")
    (tmp_path / fpga.SYNTH_RECORD).write_text(json.dumps(
        {"config": get_config("default").to_json(), "divisor": 163}))
    with pytest.raises(NetlistSimError, match="synthesised for another configuration than "
                                              "'fpga'; synthesise again"):
        netlist_sim.read_netlist(tmp_path, "fpga")
    (tmp_path / fpga.SYNTH_RECORD).write_text(json.dumps(
        {"config": get_config("fpga").to_json(), "divisor": 163}))
    assert netlist_sim.read_netlist(tmp_path, "fpga")["divisor"] == 163


def test_an_unreadable_synthesis_record_is_refused(tmp_path):
    (tmp_path / fpga.NETLIST_NAME).write_text("module opentsp(); endmodule\n")
    (tmp_path / fpga.SYNTH_RECORD).write_text("{truncated")
    with pytest.raises(NetlistSimError, match=r"synth.json: not a synthesis record \(.*\); "
                                              r"synthesise again$"):
        netlist_sim.read_netlist(tmp_path, "fpga")


@pytest.mark.parametrize("options, message", [
    ({"stride": 0}, "stride must be a positive integer, not 0"),
    ({"stride": 1.5}, "stride must be a positive integer, not 1.5"),
    ({"jobs": 0}, "jobs must be a positive integer, not 0"),
    ({"synthesise": "sometimes"}, "synthesise must be missing, always or never, not "
                                  "'sometimes'"),
    ({"programs": []}, "no programs to run"),
])
def test_bad_options_fail_in_one_line(tmp_path, options, message):
    with pytest.raises(NetlistSimError, match=f"^{message}$"):
        netlist_sim.run(out_dir=tmp_path, **options)


def test_bad_program_files_fail_in_one_line(tmp_path):
    config = get_config("fpga")
    with pytest.raises(NetlistSimError, match=r"nothing\.s: no such file$"):
        netlist_sim.load_programs([tmp_path / "nothing.s"], config)
    bad = tmp_path / "bad.s"
    bad.write_text(".queue VXM\n    frobnicate 1\n")
    with pytest.raises(NetlistSimError) as error:
        netlist_sim.load_programs([bad], config)
    assert str(error.value).startswith(f"{bad}: ") and "\n" not in str(error.value)


def test_wrapper_names_the_board_pins():
    text = netlist_sim.wrapper_verilog()
    assert f"module {netlist_sim.TOPLEVEL}(clk, uart_rx, uart_tx, running, done);" in text
    assert (".clk25_0__io(clk), .uart_0__rx__io(uart_rx), .uart_0__tx__io(uart_tx), "
            ".led_0__io(running), .led_1__io(done)") in text


def test_cell_models_replace_only_the_io_cell():
    text = netlist_sim.cells_verilog()
    assert text.startswith("`define NO_INCLUDES\n")
    for cell in ("LUT4", "TRELLIS_FF", "CCU2C", "PFUMX", "L6MUX21", "TRELLIS_DPR16X4"):
        assert f"module {cell}" in text
    assert "module TRELLIS_IO" not in text
    models = netlist_sim.MODELS.read_text()
    for cell in ("DP16KD", "MULT18X18D", "EHXPLLL", "SGSR", "TRELLIS_IO"):
        assert f"module {cell}(" in models


def test_netlist_cells_counts_instances(tmp_path):
    netlist = tmp_path / "netlist.v"
    netlist.write_text(
        "module opentsp(a, b);\n  input a;\n  wire x;\n  output b;\n"
        "  LUT4 #(\n    .INIT(16'h8000)\n  ) _1_ (\n    .A(a)\n  );\n"
        "  LUT4 #(\n    .INIT(16'h0001)\n  ) \\design.x$2  (\n    .A(a)\n  );\n"
        "  SGSR _3_ (\n    .GSR(a)\n  );\n  assign b = x;\nendmodule\n")
    assert netlist_sim.netlist_cells(netlist) == {"LUT4": 2, "SGSR": 1}


def test_default_programs_include_a_gemm_the_golden_model_computes():
    config = get_config("fpga")
    programs = netlist_sim.default_programs(config)
    assert [name for name, _ in programs] == ["gemm_2x4x4", "random_0", "random_1"]
    a, b = gen_gemm.operands(shape=netlist_sim.GEMM_SHAPE)
    result = golden_run(programs[0][1])
    product = gen_gemm.result_from_memories(result.memories, config,
                                            shape=netlist_sim.GEMM_SHAPE)
    assert np.array_equal(product, a.astype(np.int32) @ b.astype(np.int32))


@pytest.mark.slow
def test_the_fpga_netlist_matches_the_golden_model():
    directory = netlist_sim.fpga_dir("ulx3s-85f", "fpga")
    if not (directory / fpga.NETLIST_NAME).exists():
        pytest.skip("no fpga netlist: make fpga or make fpga-netlist-sim first")
    summary = netlist_sim.run("ulx3s-85f", "fpga", synthesise="never")
    for record in summary["programs"]:
        assert record["cycles_netlist"] == record["cycles_golden"], record
        assert record["mismatch_count"] == 0, record
