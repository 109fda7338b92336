"""The `opentsp` command line: the happy paths and every bad input's one-line error."""

from pathlib import Path

import pytest

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


def test_isa_lists_every_instruction(capsys):
    from opentsp import isa

    status, out, _ = opentsp(capsys, "isa", "--config", "groq")
    assert status == 0
    for op in isa.OPS:
        assert f"\n{op.mnemonic:<10}{op.opcode:#04x}" in out
    assert "92:MXM_E" in out
