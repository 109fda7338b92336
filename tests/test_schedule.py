"""`opentsp schedule`: the picture and the text form of a program's schedule, and bad input."""

from pathlib import Path

import numpy as np
import pytest

from opentsp import isa
from opentsp.app import cli
from opentsp.app.schedule_plot import ScheduleError, collect, plot, text
from opentsp.config import get_config
from opentsp.sim.model import run

EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"
CONFIG = get_config("default")


def opentsp(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def gemm_requant():
    return cli.load_program(EXAMPLES / "gemm_requant.s", CONFIG)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<svg")])
def test_plot_writes_a_picture(tmp_path, capsys, suffix, magic):
    picture = tmp_path / f"gemm{suffix}"
    status, out, _ = opentsp(capsys, "schedule", EXAMPLES / "gemm_requant.s", "--plot", picture)
    assert status == 0 and f"{picture}: schedule of gemm_requant.s (73 cycles" in out
    data = picture.read_bytes()
    assert len(data) > 10_000
    assert data.startswith(magic) if suffix == ".png" else magic in data[:2000]


def test_text_lists_every_issued_instruction_at_the_golden_cycle(gemm_requant):
    golden = run(gemm_requant, trace=True)
    expected = [f"{record.cycle:>7}  {name:<8} {instr}"
                for record in golden.trace for name, instr in record.issued]
    schedule = collect(gemm_requant, name="gemm_requant")
    listing = text(schedule)
    lines = listing.splitlines()
    assert len(expected) == 244 and schedule.cycles == golden.cycles == 73
    assert lines[2:2 + len(expected)] == expected       # in order, nothing more, nothing less
    assert lines[0].startswith("gemm_requant: 73 cycles on config default")
    # Per-queue summary: MXM_W issues 22 instructions from cycle 3 to 24; the SXMs nothing.
    assert "  MXM_W        22  3..24" in lines and "  SXM_W         0  -" in lines


def test_occupancy_follows_a_value_across_the_chip():
    # stream_pass.s: MEM_W3 (position 2) reads onto e0 and MEM_E3 (position 10) onto w1 in
    # cycle 0; each value lands at the end of cycle 1 (read latency 1) and moves one position a
    # cycle: e0 reaches the east edge (position 12) in cycle 11, w1 the west edge in cycle 11.
    schedule = collect(cli.load_program(EXAMPLES / "stream_pass.s", CONFIG))
    expected = np.zeros((2, CONFIG.streams, schedule.cycles), dtype=int)
    expected[isa.Dir.E, 0, 1:12] = 1
    expected[isa.Dir.W, 1, 1:12] = 1
    assert schedule.cycles == 12
    np.testing.assert_array_equal(schedule.occupancy, expected)


def test_text_and_plot_together(tmp_path, capsys):
    picture = tmp_path / "s.svg"
    status, out, _ = opentsp(capsys, "schedule", EXAMPLES / "stream_pass.s", "--text",
                             "--plot", picture)
    assert status == 0 and picture.exists()
    assert "      0  MEM_W3   read e0, 0" in out and "      9  MEM_E3   write 1, e0" in out


@pytest.mark.parametrize("args, cause", [
    (["firmware/examples/stream_pass.txt", "--text"], "program must be a .s or .bin file, "
                                                      "not '.txt'"),
    (["no/such/program.s", "--text"], "no/such/program.s: no such file"),
    ([str(EXAMPLES / "stream_pass.s"), "--plot", "x.pdf"], "x.pdf: plot file must end in "
                                                          ".png or .svg, not '.pdf'"),
    ([str(EXAMPLES / "stream_pass.s")], "schedule needs --plot FILE.png|svg or --text"),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, cause):
    status, _, err = opentsp(capsys, "schedule", *args)
    assert status == 1
    assert err.count("\n") == 1 and err.startswith("opentsp: error: ") and cause in err
    assert not Path("x.pdf").exists()


def test_plot_refuses_other_suffixes(tmp_path, gemm_requant):
    schedule = collect(gemm_requant)
    with pytest.raises(ScheduleError, match=r"x\.jpg: plot file must end in .png or .svg, "
                                            r"not '\.jpg'"):
        plot(schedule, tmp_path / "x.jpg")
    assert not (tmp_path / "x.jpg").exists()
