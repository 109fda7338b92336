"""The `opentsp` command line: the happy paths and every bad input's one-line error."""

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from opentsp import isa
from opentsp.app import cli

EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"


def opentsp(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_asm_sim_disasm_round_trip(tmp_path, capsys):
    image = tmp_path / "dot.bin"
    status, out, _ = opentsp(capsys, "asm", EXAMPLES / "dot_relu.s", "-o", image)
    assert status == 0 and image.exists() and "instructions" in out
    status, out, _ = opentsp(capsys, "sim", image)
    assert status == 0
    assert "config default:" in out and " cycles " in out
    text = tmp_path / "dot.s"
    assert opentsp(capsys, "disasm", image, "-o", text)[0] == 0
    again = tmp_path / "again.bin"
    assert opentsp(capsys, "asm", text, "-o", again)[0] == 0
    assert again.read_bytes() == image.read_bytes()


def test_sim_prints_the_golden_results(tmp_path, capsys):
    status, out, _ = opentsp(capsys, "sim", EXAMPLES / "dot_relu.s")
    assert status == 0
    # y = cvt.i32.i8(relu(x*w+b)) lands in byte 0 of the spread result at word 20 of MEM_E0.
    assert "MEM_E0[20]: [5, 8, 0, 127, 0, 0, 0, 0]" in out


@pytest.mark.parametrize("text, where, cause", [
    (".queue VXM\n    frob.i8 e0, e1, e2\n", ":2:5:", "unknown mnemonic"),
    (".queue MEM_W0\n    read e0, 64\n", ":2:", "64"),
    (".queue MEM_W0\n    read e0\n", ":2:", "operand"),
    (".queue VXM\n    add.i32 e1, e0, w0\n", ":2:", "aligned"),
    (".queue VXM\n.at 3\n    add.i8 e1, e0, w0\n", ":3:", "no value"),
])
def test_asm_errors_are_one_line_with_place_and_cause(tmp_path, capsys, text, where, cause):
    source = tmp_path / "bad.s"
    source.write_text(text)
    output = tmp_path / "bad.bin"
    status, out, err = opentsp(capsys, "asm", source, "-o", output)
    assert status == 1
    assert err.count("\n") == 1 and err.startswith("opentsp: error: ")
    assert f"bad.s{where}" in err and cause in err
    assert not output.exists()      # no partial output


def test_truncated_and_foreign_images_are_refused(tmp_path, capsys, monkeypatch):
    image = tmp_path / "x.bin"
    assert opentsp(capsys, "asm", EXAMPLES / "stream_pass.s", "-o", image)[0] == 0
    cut = tmp_path / "cut.bin"
    cut.write_bytes(image.read_bytes()[:-7])
    status, _, err = opentsp(capsys, "sim", cut)
    assert status == 1 and err.count("\n") == 1
    assert "cut.bin: offset" in err and "truncated image" in err

    medium = tmp_path / "medium.bin"
    assert opentsp(capsys, "asm", EXAMPLES / "stream_pass.s", "--config", "medium",
                   "-o", medium)[0] == 0

    def no_simulator(*args, **kwargs):
        raise AssertionError("the simulator must not start for a foreign image")

    monkeypatch.setattr("opentsp.verif.runner.run_images", no_simulator)
    status, _, err = opentsp(capsys, "run", medium, "--config", "default")
    assert status == 1 and "'medium'" in err and "'default'" in err


def test_unknown_config_lists_the_known_ones(capsys):
    status, _, err = opentsp(capsys, "sim", EXAMPLES / "stream_pass.s", "--config", "tpu")
    assert status == 1 and "unknown configuration 'tpu'" in err and "groq" in err


def test_cycle_limit_on_the_golden_model(tmp_path, capsys):
    source = tmp_path / "long.s"
    source.write_text(".queue VXM\n    nop 60000\n")
    status, _, err = opentsp(capsys, "sim", source, "--max-cycles", "1000")
    assert status == 1 and "did not finish within 1000 cycles" in err


def test_isa_lists_every_instruction_in_separate_columns(capsys):
    status, out, _ = opentsp(capsys, "isa", "--config", "groq")
    assert status == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line[:1].strip()}
    for op in isa.OPS:
        # name, opcode, unit, latency and commit, each followed by at least two spaces
        cells = [op.name, f"{op.opcode:#04x}", op.unit.name]
        assert re.match(r"\s{2,}".join(map(re.escape, cells)) + r"\s{2,}\S+\s{2,}\S+",
                        rows[op.name]), rows[op.name]
    assert "distribute  0x3e" in out
    assert f"VXM_CHAIN_DISTANCE = {isa.VXM_CHAIN_DISTANCE} or more cycles before" in out
    assert "0:C2C_W 1:MXM_W" in out and "93:MXM_E 94:C2C_E" in out


@pytest.mark.parametrize("argv, message", [
    (["sim", EXAMPLES / "dot_relu.s", "--limit", "-1"], "--limit: must be a whole number >= 0"),
    (["sim", EXAMPLES / "dot_relu.s", "--max-cycles", "-5"], "--max-cycles: must be a whole "
                                                            "number >= 1, not '-5'"),
    (["sim", EXAMPLES / "dot_relu.s", "--max-cycles", "0"], "--max-cycles: must be a whole"),
    (["run", EXAMPLES / "dot_relu.s", "--max-cycles", "-1"], "--max-cycles: must be a whole"),
    (["schedule", EXAMPLES / "dot_relu.s", "--text", "--max-cycles", "x"], "--max-cycles: must"),
    (["fpga", "--seed", "-1"], "--seed: must be a whole number >= 0"),
    (["fpga", "--baud", "0"], "--baud: must be a whole number >= 1"),
    (["fpga", "--clock-mhz", "-25"], "--clock-mhz: must be a number > 0, not '-25'"),
    (["board", "--timeout", "0", "run"], "--timeout: must be a number > 0"),
    (["board", "run", "--max-seconds", "nan"], "--max-seconds: must be a number > 0"),
])
def test_numbers_out_of_range_are_refused_before_anything_runs(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        cli.main([str(a) for a in argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_output_errors_name_the_path_given(tmp_path, capsys):
    source = EXAMPLES / "dot_relu.s"
    status, _, err = opentsp(capsys, "asm", source, "-o", tmp_path)
    assert (status, err) == (1, f"opentsp: error: {tmp_path}: Is a directory\n")
    missing = tmp_path / "missing" / "x.bin"
    status, _, err = opentsp(capsys, "asm", source, "-o", missing)
    assert (status, err) == (1, f"opentsp: error: {missing}: No such file or directory\n")
    image = tmp_path / "x.bin"
    assert opentsp(capsys, "asm", source, "-o", image)[0] == 0
    status, _, err = opentsp(capsys, "disasm", image, "-o", tmp_path)
    assert (status, err) == (1, f"opentsp: error: {tmp_path}: Is a directory\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]     # no temporary left


def test_written_files_follow_the_umask(tmp_path, capsys):
    old = os.umask(0o027)
    try:
        for command, name in (("asm", "x.bin"), ("disasm", "x.s")):
            source = EXAMPLES / "dot_relu.s" if command == "asm" else tmp_path / "x.bin"
            assert opentsp(capsys, command, source, "-o", tmp_path / name)[0] == 0
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name
    finally:
        os.umask(old)


def test_a_reader_that_goes_away_is_not_an_error():
    """``opentsp isa | head -1``: the pipe closes before opentsp writes; no message, status 1
    (Python's convention), where it used to print ``opentsp: error: Broken pipe``."""
    proc = subprocess.Popen([sys.executable, "-m", "opentsp.app.cli", "isa"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    assert (proc.wait(), err) == (1, b"")


@pytest.mark.parametrize("name", sorted(cli.EXAMPLES))
def test_every_subcommand_help_ends_with_an_example_that_parses(capsys, name):
    with pytest.raises(SystemExit) as stop:
        cli.main([name, "--help"])
    assert stop.value.code == 0
    example = cli.EXAMPLES[name]
    assert capsys.readouterr().out.rstrip().endswith(f"example: {example}")
    args = cli.build_parser().parse_args(shlex.split(example)[1:])
    assert args.command == name
