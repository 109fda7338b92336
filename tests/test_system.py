"""The multi-chip golden model (opentsp.sim.system) and the C2C slices' golden model: frames,
timing, deskew, CRC and every link error of docs/architecture.md section 7d."""

import random

import numpy as np
import pytest

from opentsp import hostmap, isa, topology
from opentsp.config import get_config
from opentsp.firmware.asm import assemble
from opentsp.sim.system import LinkFault, SystemError, random_latencies, run_system
from opentsp.topology import Port

C2C = get_config("c2c")
S, L, W = C2C.superlanes, C2C.c2c_latency, C2C.c2c_window
DATA, MARK = isa.FrameKind.DATA, isa.FrameKind.MARK
X = np.array([1, 2, 3, 4, 5, -6, 7, -128], dtype=np.int8)
EAST0, WEST0 = Port(0, "C2C_E", 0), Port(0, "C2C_W", 0)
# c2c positions: C2C_W 0, MEM_W3 3, VXM 7, MEM_E3 11, C2C_E 14
SEND = 4            # MEM_E3 reads in cycle 0: at C2C_E (3 hops) in cycle 4


def data_line(values):
    return ", ".join(str(int(v)) for v in values)


def loopback_program(recv_at, sends=(SEND,), recvs=None):
    """MEM_E3 word 0 sent from C2C_E.0 (to C2C_W.0 by the loopback cable) once per cycle in
    ``sends``; C2C_W takes a frame in each cycle of ``recvs`` (default ``recv_at``) and MEM_W3
    stores the first one in word 5."""
    recvs = recvs or (recv_at,)
    lines = [f".data MEM_E3, 0, i8: {data_line(X)}", ".queue MEM_E3"]
    lines += [f".at {t - 4}\n    read e0, 0" for t in sends]
    lines += [".queue C2C_E"] + [f".at {t}\n    send 0, e0" for t in sends]
    lines += [".queue C2C_W"] + [f".at {t}\n    recv e1, 0" for t in recvs]
    lines += [".queue MEM_W3", f".at {recvs[0] + 4}", "    write 5, e1"]
    return assemble("\n".join(lines), C2C)


def loop(program, latency=L, **kwargs):
    result = run_system([program.image], topology.loopback(C2C),
                        latencies={EAST0: latency}, **kwargs)
    return result.chips[0]


@pytest.mark.parametrize("latency", range(L, L + W + 1))
def test_a_vector_goes_round_the_loopback_at_every_latency_of_the_window(latency):
    arrival = isa.c2c_arrival(C2C, DATA, SEND, excess=W)    # the window's end
    chip = loop(loopback_program(arrival), latency)
    assert np.array_equal(chip.memory("MEM_W3")[5].view(np.int8), X)
    assert (chip.c2c_crc, chip.c2c_errors, chip.c2c_first) == (0, 0, None)
    assert chip.cycles == arrival + 4 + S - 1 + isa.DRAIN + 1


def test_a_frame_is_there_from_its_arrival_cycle_and_not_one_earlier():
    arrival = isa.c2c_arrival(C2C, DATA, SEND)              # latency c2c_latency exactly
    assert arrival == SEND + S + isa.c2c_frame_cycles(C2C, DATA) + L
    chip = loop(loopback_program(arrival))
    assert np.array_equal(chip.memory("MEM_W3")[5].view(np.int8), X)
    early = loop(loopback_program(arrival - 1))
    assert not early.memory("MEM_W3")[5].any()
    assert early.c2c_first == (hostmap.C2C_EMPTY, 0, 0, arrival - 1)
    # the frame that came later stays in the buffer: the run has no other error
    assert early.c2c_errors == 1 and early.c2c_crc == 0


def ring2_programs(early=0):
    """Chip 0 marks on C2C_E.0 in cycle 0 and sends X on it; chip 1 deskews on C2C_W.0, takes
    X at its exact arrival (``early`` cycles before it), doubles it and sends it back on its
    C2C_E.0 (another cable), which chip 0 takes at the end of its window (2 windows: the
    latency back and chip 1's shift) and stores in MEM_W3 word 7."""
    send = 10
    arrival = isa.c2c_arrival(C2C, DATA, send)
    vxm = arrival + 1 + 7                  # C2C_W (0) to the VXM (7)
    back = vxm + 1 + 7                     # the VXM to C2C_E (14)
    home = isa.c2c_arrival(C2C, DATA, back, excess=2 * W)
    chip0 = assemble(f"""
        .data MEM_E3, 0, i8: {data_line(X)}
        .queue C2C_E
            mark 0
        .at {send}
            send 0, e0
        .queue MEM_E3
        .at {send - 4}
            read e0, 0
        .queue C2C_W
        .at {home}
            recv e1, 0
        .queue MEM_W3
        .at {home + 4}
            write 7, e1
        """, C2C)
    lines = [".queue C2C_W", "    deskew 0", f".at {arrival - early}", "    recv e1, 0",
             ".queue VXM", "    sync", f".at {vxm}", "    add.i8 e2, e1, e1",
             ".queue C2C_E", "    sync", f".at {back}", "    send 0, e2"]
    for queue in isa.queues(C2C):
        if queue.name not in ("C2C_W", "VXM", "C2C_E"):
            lines += [f".queue {queue.name}", "    sync"]
    chip1 = assemble("\n".join(lines), C2C, deskew=isa.c2c_release(C2C, 0))
    return [chip0.image, chip1.image], home


def test_deskew_makes_two_chips_give_the_same_results_and_cycles_run_after_run():
    images, home = ring2_programs()
    ring = topology.ring(2, C2C)
    outcomes = set()
    for seed in range(40):
        rng = random.Random(seed)
        starts = [rng.randint(0, 4), rng.randint(0, 4)]
        result = run_system(images, ring, latencies=random_latencies(ring, seed), starts=starts)
        for chip in result.chips:
            assert (chip.c2c_crc, chip.c2c_errors) == (0, 0)
        stored = result.chips[0].memory("MEM_W3")[7].view(np.int8)
        assert np.array_equal(stored, (2 * X.astype(np.int16)).astype(np.int8))   # numpy
        outcomes.add((tuple(result.cycles), stored.tobytes()))
    assert outcomes == {((home + 4 + S - 1 + isa.DRAIN + 1,
                          isa.c2c_arrival(C2C, DATA, 10) + 17 + S - 1 + isa.DRAIN),
                         (2 * X.astype(np.int16)).astype(np.int8).tobytes())}


def test_after_deskew_the_marks_link_delivers_exactly_on_the_predicted_cycle():
    # one cycle earlier than predicted finds nothing, whatever the latency and the starts
    images, _ = ring2_programs(early=1)
    ring = topology.ring(2, C2C)
    for seed in range(10):
        result = run_system(images, ring, latencies=random_latencies(ring, seed),
                            starts=[seed % 3, 0])
        first = result.chips[1].c2c_first
        assert first[:3] == (hostmap.C2C_EMPTY, 0, 0), first


def test_every_single_and_double_bit_flip_of_a_frame_is_detected_and_never_used():
    arrival = isa.c2c_arrival(C2C, DATA, SEND, excess=W)
    program = loopback_program(arrival)
    bits = 8 * isa.c2c_frame_bytes(C2C, DATA)
    rng = random.Random(7)
    flips = [(b,) for b in range(bits)] + [tuple(rng.sample(range(bits), 2)) for _ in range(60)]
    for flip in flips:
        chip = loop(program, faults=[LinkFault(EAST0, 0, bit) for bit in flip])
        assert chip.c2c_crc == 1, flip
        assert not chip.memory("MEM_W3")[5].any(), flip      # zeros, not the bad data
        assert chip.c2c_first[:3] == (hostmap.C2C_CRC, 0, 0)


def test_a_send_into_a_busy_link_is_not_sent():
    frame = isa.c2c_frame_cycles(C2C, DATA)
    end = isa.c2c_arrival(C2C, DATA, SEND + frame - 1, excess=W)
    chip = loop(loopback_program(end, sends=(SEND, SEND + frame - 1), recvs=(end, end + 1)))
    assert chip.c2c_first == (hostmap.C2C_BUSY, 1, 0, SEND + frame - 1)
    assert chip.c2c_errors == 2             # busy, then the second recv finds nothing
    chip = loop(loopback_program(end + 1, sends=(SEND, SEND + frame), recvs=(end + 1, end + 2)))
    assert (chip.c2c_errors, chip.c2c_first) == (0, None)


def test_a_frame_arriving_at_a_full_buffer_is_dropped():
    frame = isa.c2c_frame_cycles(C2C, DATA)
    sends = tuple(SEND + frame * k for k in range(C2C.c2c_buffer + 1))
    last = isa.c2c_arrival(C2C, DATA, sends[-1])
    chip = loop(loopback_program(last, sends=sends, recvs=(last,)))
    assert chip.c2c_first == (hostmap.C2C_OVERFLOW, 0, 0, last)
    assert np.array_equal(chip.memory("MEM_W3")[5].view(np.int8), X)     # the oldest frame


def test_a_mark_with_no_deskew_waiting_is_stray():
    program = assemble(".queue C2C_E\n    mark 0\n.queue C2C_W\n.at 30\n    nop 1", C2C)
    chip = loop(program)
    arrival = isa.c2c_arrival(C2C, MARK, 0)
    assert chip.c2c_first == (hostmap.C2C_STRAY, 0, 0, arrival)


@pytest.mark.parametrize("kwargs, message", [
    ({"latencies": {EAST0: L + W + 1}},
     f"chip 0 C2C_E.0 -> chip 0 C2C_W.0: latency {L + W + 1} is outside the window "
     f"{L}..{L + W} that deskew absorbs"),
    ({"latencies": {EAST0: L - 1}}, "is outside the window"),
    ({"starts": [0, 1]}, "starts must be 1 cycles >= 0, one per chip"),
    ({"faults": [LinkFault(Port(0, "C2C_E", 1), 0, 0)]},
     "chip 0 C2C_E.1: a fault on a port without a cable"),
])
def test_bad_system_settings_are_refused_in_one_line(kwargs, message):
    program = loopback_program(isa.c2c_arrival(C2C, DATA, SEND, excess=W))
    with pytest.raises(SystemError) as caught:
        run_system([program.image], topology.loopback(C2C), **kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_chip_started_too_late_for_its_mark_never_deskews():
    images, _ = ring2_programs()
    with pytest.raises(SystemError) as caught:
        run_system(images, topology.ring(2, C2C), starts=[0, 40], max_cycles=300)
    assert str(caught.value) == (f"chip 1 C2C_W.0: a frame arrives in global cycle "
                                 f"{isa.c2c_arrival(C2C, MARK, 0)}, when the chip is not started "
                                 f"yet (started in cycle 40)")


def test_a_frame_for_a_finished_chip_and_images_that_do_not_match_are_errors():
    sender = assemble(".queue C2C_E\n    send 0, w0", C2C)
    with pytest.raises(SystemError, match=r"^chip 0 C2C_W.0: a frame arrives in global cycle "
                                          r"\d+, when the chip is finished"):
        run_system([sender.image], topology.loopback(C2C))
    with pytest.raises(SystemError, match="^ring2: 2 chips, but 1 images$"):
        run_system([sender.image], topology.ring(2, C2C))
    default = assemble(".queue VXM\n    nop 1", get_config("default"))
    with pytest.raises(SystemError, match="chip 0: image built for configuration 'default', "
                                          "the system is of 'c2c'"):
        run_system([default.image], topology.loopback(C2C))


def test_a_deskew_that_no_mark_releases_is_named_at_the_limit():
    lines = [".queue C2C_W", "    deskew 1"]
    program = assemble("\n".join(lines), C2C)
    with pytest.raises(SystemError, match="^chip 0: its deskew on C2C_W.1 was never released: "
                                          "no mark came by global cycle 200$"):
        run_system([program.image], topology.loopback(C2C), max_cycles=200)


def test_topologies_and_their_errors():
    assert [str(c.a) + "-" + str(c.b) for c in topology.ring(4, C2C).cables][-1] == (
        "chip 3 C2C_E.0-chip 0 C2C_W.0")
    full = topology.full(4, C2C)
    assert len(full.cables) == 6 and len(full.ports) == 12
    with pytest.raises(topology.TopologyError, match="full6: each chip needs 5 links"):
        topology.full(6, C2C)
    with pytest.raises(topology.TopologyError, match="has no links"):
        topology.ring(2, get_config("default"))
    with pytest.raises(topology.TopologyError, match="unknown topology 'star3'"):
        topology.get_topology("star3", C2C)
    port = Port(0, "C2C_E", 0)
    with pytest.raises(topology.TopologyError, match="chip 0 C2C_E.0 is cabled twice"):
        topology.Topology(C2C, 2, [topology.Cable(port, Port(1, "C2C_W", 0)),
                                   topology.Cable(port, Port(1, "C2C_W", 1))], "twice")
