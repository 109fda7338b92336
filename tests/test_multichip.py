"""Multi-chip programs (firmware/system.py, firmware/gen_multichip.py, opentsp system): the
assembler's sections and deskew releases, rule 16 across chips, rule 15 on one chip, the
system image file, and the examples on the multi-chip golden model against numpy."""

import numpy as np
import pytest

from opentsp import isa
from opentsp.app import cli
from opentsp.app.multichip import latency_regression
from opentsp.config import get_config
from opentsp.firmware import gen_multichip
from opentsp.firmware.asm import AsmError, assemble
from opentsp.firmware.checker import check
from opentsp.firmware.image import ImageError
from opentsp.firmware.system import (
    assemble_system,
    check_system,
    load_system,
    system_bytes,
)
from opentsp.sim.system import random_latencies, run_system
from opentsp.topology import ring

C2C = get_config("c2c")
EXAMPLES = sorted(gen_multichip.EXAMPLES.glob("*.s"))
CASES = [("ring", 2, gen_multichip.ring_relay), ("ring", 4, gen_multichip.ring_relay),
         ("full", 4, gen_multichip.full_gather)]


def test_the_saved_examples_are_what_the_generator_writes():
    texts = {path.name: path.read_text() for path in EXAMPLES}
    assert texts == {"ring2_relay.s": gen_multichip.ring_relay(2),
                     "ring4_relay.s": gen_multichip.ring_relay(4),
                     "full4_gather.s": gen_multichip.full_gather(4)}


@pytest.mark.parametrize("name, chips, generate", CASES)
def test_examples_pass_the_checker_and_agree_with_numpy_under_random_latencies(
        name, chips, generate):
    system = assemble_system(generate(chips))
    assert system.topology.name == f"{name}{chips}"
    assert check_system(system) == []
    # the followers are released where isa.c2c_release puts them: on the first mark they see
    assert [program.deskew is not None for program in system.programs] == (
        [False] + [True] * (chips - 1))
    first = None
    for seed in range(12):
        starts = [0] + [(seed * 3 + k) % 9 for k in range(chips - 1)]
        result = run_system(system.images, system.topology,
                            latencies=random_latencies(system.topology, seed), starts=starts)
        for (chip, mem, word), want in gen_multichip.expected(C2C, name, chips).items():
            assert np.array_equal(result.chips[chip].memory(mem)[word].view(np.int8), want)
        assert all(chip.c2c_first is None for chip in result.chips)
        first = first or result.cycles
        assert result.cycles == first


def test_the_ring_relay_doubles_on_every_chip():
    want = gen_multichip.expected(C2C, "ring", 4)[(0, "MEM_W3", 7)]
    x = gen_multichip.X.astype(np.int64)
    assert np.array_equal(want, ((x * 8 + 128) % 256 - 128).astype(np.int8))


def test_latency_regression_agrees_over_runs_and_names_a_disagreement():
    system = assemble_system(gen_multichip.ring_relay(4))
    outcome = latency_regression(system, 30, seed=5)
    assert outcome.mismatch is None and outcome.runs == 30 and len(outcome.cycles) == 4
    # a chip started after its mark went by hangs: the regression surfaces the one-line error
    with pytest.raises(Exception, match="when the chip is not started yet"):
        latency_regression(system, 3, max_start=200)


def _ring2(chip0, chip1):
    return f".config c2c\n.topology ring2\n.chip 0\n{chip0}\n.chip 1\n{chip1}\n"


def _follower(lines):
    """Chip 1 of ring2: deskew on C2C_W.0, every other queue parked, then ``lines``
    (``(queue, text)`` after the release)."""
    body = {"C2C_W": ["    deskew 0"]}
    for queue in isa.queues(C2C):
        body.setdefault(queue.name, ["    sync"])
    for queue, text in lines:
        body[queue].append(text)
    return "\n".join(f".queue {name}\n" + "\n".join(rows) for name, rows in body.items())


RELEASE = isa.c2c_release(C2C, 0)
ARRIVAL = isa.c2c_arrival(C2C, isa.FrameKind.DATA, 10)
LEADER = ".queue C2C_E\n    mark 0\n.at 10\n    send 0, e0\n.queue MEM_E3\n.at 6\n    read e0, 0"


def rule16(text):
    return [str(error) for error in check_system(assemble_system(text, filename="s.s"))
            if getattr(error, "rule", 16) == 16]


def test_a_recv_before_its_frame_can_arrive_names_the_window():
    ok = _ring2(LEADER, _follower([("C2C_W", f".at {ARRIVAL}\n    recv e1, 0")]))
    assert rule16(ok) == []
    early = _ring2(LEADER, _follower([("C2C_W", f".at {ARRIVAL - 1}\n    recv e1, 0")]))
    (message,) = rule16(early)
    assert message.endswith(f"error: chip 1: recv on C2C_W.0 in cycle {ARRIVAL - 1} takes the "
                            f"frame chip 0 sends on C2C_E.0 in cycle 10, which arrives in "
                            f"cycles {ARRIVAL}..{ARRIVAL}: recv in cycle {ARRIVAL} or later")


def test_a_recv_with_no_send_and_a_send_never_received():
    (message,) = rule16(_ring2(".queue C2C_E\n    mark 0", _follower(
        [("C2C_W", f".at {ARRIVAL}\n    recv e1, 0")])))
    assert f"chip 1: recv on C2C_W.0 in cycle {ARRIVAL}: no frame for it (chip 0 sends 0" \
        in message
    (message,) = rule16(_ring2(LEADER, _follower([])))
    assert "chip 0: send on C2C_E.0 in cycle 10: chip 1 never receives it" in message


def test_a_stray_mark_and_chips_on_different_times():
    text = _ring2(".queue C2C_E\n    mark 0\n    nop 1\n    mark 0", _follower([]))
    (message,) = rule16(text)
    assert "chip 0: mark on C2C_E.0 in cycle 2: no deskew of chip 1 on C2C_W.0 waits" in message
    both_lead = _ring2(".queue C2C_E\n    send 0, e0", ".queue C2C_W\n.at 30\n    recv e1, 0")
    (message,) = rule16(both_lead)
    assert "the two chips are not on one time (no chain of deskews joins them)" in message


def test_a_buffer_that_may_overflow():
    frame = isa.c2c_frame_cycles(C2C, isa.FrameKind.DATA)
    depth = C2C.c2c_buffer
    sends = "\n".join(f".at {10 + frame * k}\n    send 0, e0" for k in range(depth + 1))
    last = isa.c2c_arrival(C2C, isa.FrameKind.DATA, 10 + frame * depth)
    recvs = "\n".join(f".at {last + k}\n    recv e1, 0" for k in range(depth + 1))
    messages = rule16(_ring2(".queue C2C_E\n    mark 0\n" + sends,
                             _follower([("C2C_W", recvs)])))
    assert any(f"C2C_W.0's buffer of {depth} frames may be full when the frame chip 0 sends in "
               f"cycle {10 + frame * depth} arrives" in m for m in messages), messages


@pytest.mark.parametrize("text, where, cause", [
    (".queue C2C_E\n    send 0, e0\n    send 0, e0", "4:5",
     "send on C2C_E.0 in cycle 1: the link is busy until cycle 2 with the frame of cycle 0"),
    (".queue C2C_E\n    send 0, w0", "3:5",
     "send of C2C_E reads w0: at this edge it reads only eastward streams"),
    (".queue C2C_W\n    recv w1, 0", "3:5",
     "recv of C2C_W writes w1: at this edge it writes only eastward streams"),
    (".queue C2C_W\n    nop 2\n    deskew 0", "4:5", "deskew must be its queue's first"),
    (".queue C2C_W\n    deskew 0\n.queue VXM\n    nop 1", "5:5",
     "nop 1 of VXM in cycle 0, on a chip that deskews: its queues must wait on sync"),
])
def test_rule_15_on_one_chip(text, where, cause):
    messages = [str(e) for e in check(assemble(".config c2c\n" + text, filename="t.s"))
                if e.rule == 15]
    assert any(m.startswith(f"t.s:{where}: error: ") and cause in m for m in messages), messages


def test_a_deskew_checked_alone_says_to_check_the_chips_together():
    errors = check(assemble(".config c2c\n.queue C2C_W\n    deskew 0", filename="t.s"))
    assert [e.rule for e in errors] == [8]
    assert "deskew 0 of C2C_W: only a mark from another chip releases it" in str(errors[0])


@pytest.mark.parametrize("text, message", [
    (".config c2c\n.chip 0\n.queue VXM\n    nop 1",
     "s.s:1:1: error: a system source needs a .topology line"),
    (".config c2c\n.topology ring3\n.chip 0\n.chip 1",
     "s.s:2:1: error: ring3 has chips 0..2, the source has sections for [0, 1]"),
    (".config c2c\n.topology star2\n.chip 0", "s.s:2:1: error: unknown topology 'star2'"),
    (".config c2c\n.topology ring2\n.chip 0\n.chip 0", "s.s:4:1: error: .chip 0 comes twice"),
    (".config c2c\n.topology ring2\n.chip x", "s.s:3:1: error: .chip takes a chip number"),
    (".config c2c\n.topology ring2\n.chip 0\n.queue C2C_W\n    deskew 0\n"
     ".chip 1\n.queue C2C_W\n    deskew 0",
     "s.s:5:1: error: chip 0's deskew waits on chips that deskew in turn: no chip leads them"),
    (".config c2c\n.topology ring2\n.chip 0\n.chip 1\n.queue C2C_W\n    deskew 0",
     "s.s:6:1: error: deskew on chip 1 C2C_W.0: chip 0 C2C_E.0 never sends a mark"),
    (".config c2c\n.topology ring2\n.chip 0\n.chip 1\n.queue C2C_W\n    deskew 1",
     "s.s:6:1: error: deskew on chip 1 C2C_W.1: the port has no cable in ring2"),
    (".config default\n.topology ring2\n.chip 0\n.chip 1",
     "s.s:2:1: error: configuration 'default' has no links"),
])
def test_bad_system_sources_are_one_line_errors(text, message):
    with pytest.raises(AsmError) as caught:
        assemble_system(text, filename="s.s")
    assert str(caught.value).startswith(message), str(caught.value)


def test_system_image_round_trip_and_mismatches():
    system = assemble_system(gen_multichip.ring_relay(4))
    blob = system_bytes(system)
    topology, images = load_system(blob, C2C)
    assert topology.name == "ring4" and images == system.images
    with pytest.raises(ImageError, match="^offset 8: images for topology 'ring4', the system "
                                         "is 'ring2'$"):
        load_system(blob, C2C, ring(2, C2C))
    name = b"ring4"
    with pytest.raises(ImageError, match="^offset 13: 2 chip images for 'ring4', which has 4"):
        load_system(blob[:8 + len(name)] + b"\x02\x00" + blob[10 + len(name):], C2C)
    with pytest.raises(ImageError, match="^offset 0: not a system image"):
        load_system(b"TSPI" + blob[4:], C2C)
    with pytest.raises(ImageError, match="^chip 0: offset 8: image built for configuration"):
        load_system(blob, get_config("default").__class__(**{**C2C.__dict__, "name": "other"}))


def test_cli_system_runs_checks_and_reports(tmp_path, capsys):
    out = tmp_path / "ring4.tsps"
    source = gen_multichip.EXAMPLES / "ring4_relay.s"
    assert cli.main(["system", str(source), "--runs", "5", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ring4, 4 chips of 'c2c', checked" in printed
    assert "5 runs with random link latencies (window 6..10) and start times: identical" in printed
    assert load_system(out.read_bytes(), C2C)[0].name == "ring4"
    bad = tmp_path / "bad.s"
    bad.write_text(_ring2(LEADER, _follower([("C2C_W", f".at {ARRIVAL - 1}\n    recv e1, 0")])))
    assert cli.main(["system", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"opentsp: error: {bad}:") and "recv on C2C_W.0" in err
    assert err.count("\n") == 1
