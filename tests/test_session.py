"""Sessions on the golden model (``opentsp.sim.session``): one load, then many starts, with the
memories and queue memories carried over and everything else cleared, as the chip does after
``CTRL_START`` (docs/architecture.md section 10, "What a start keeps"); and the bad input of
the session APIs of the golden model and of the RTL runners (refused before any build)."""

import numpy as np
import pytest
from programs import (
    EXAMPLES_DIR,
    SESSION_CLEARS,
    SESSION_COUNTER,
    session_counter_expected,
)

from opentsp.config import get_config
from opentsp.firmware.asm import assemble, assemble_file
from opentsp.firmware.checker import check
from opentsp.firmware.image import Image, ImageError
from opentsp.sim.mem import Fault
from opentsp.sim.model import Model
from opentsp.sim.model import run as golden_run
from opentsp.sim.session import SessionError, SessionResult, run_session
from opentsp.verif import harness, runner
from opentsp.verif.randprog import random_image

CONFIG = get_config("default")
W0, E0, E1, E3, W2, W3 = 3, 4, 5, 7, 1, 0   # memory numbers of MEM_W0, MEM_E0, ... on default


def _counter():
    program = assemble(SESSION_COUNTER, CONFIG)
    assert check(program) == []
    return program.image


def _with_memories(image, memories):
    """``image`` with ``memories`` as its data: a fresh load of what a run left."""
    data = {(mem, word): memories[mem, word].copy() for mem in range(memories.shape[0])
            for word in range(memories.shape[1]) if memories[mem, word].any()}
    return Image(image.config, image.queues, data)


def test_the_counter_holds_five_increments_after_five_runs():
    result = run_session(_counter(), 5, keep_memories=True)
    assert isinstance(result, SessionResult) and result.runs == 5
    assert result.cycles == [15] * 5
    assert result.ecc == [(0, 0, None)] * 5
    assert result.overwritten == [[]] * 5
    for runs, memories in enumerate(result.run_memories, start=1):
        c, acc = session_counter_expected(runs)
        np.testing.assert_array_equal(memories[W0, 0], c)
        np.testing.assert_array_equal(memories[E0, 1], acc)
    np.testing.assert_array_equal(result.memories, result.run_memories[-1])
    c, acc = session_counter_expected(5)
    assert c.tolist() == [5, 11, 17, 23, 29, 35, 41, 47]
    assert acc.astype(np.int8).tolist() == [15, 35, 55, 75, 95, 115, -121, -101]   # wraps


def test_one_run_is_the_golden_models_run():
    image = _counter()
    single = golden_run(image)
    session = run_session(image, 1)
    assert session.cycles == [single.cycles]
    np.testing.assert_array_equal(session.memories, single.memories)
    assert session.run_memories is None
    result = session.result(0)
    assert (result.cycles, result.ecc_first) == (single.cycles, None)
    np.testing.assert_array_equal(result.memories, single.memories)


def test_a_start_clears_the_vxm_mxm_sxm_and_sequencer_state():
    """Each unit's state is used before the run sets it and left set by the run: every run
    leaves exactly the memories of the first, and those are the cleared state's."""
    program = assemble(SESSION_CLEARS, CONFIG)
    assert {error.rule for error in check(program)} == {1, 6, 10}    # broken on purpose
    image = program.image
    single = golden_run(image)
    session = run_session(image, 3, keep_memories=True)
    assert session.cycles == [single.cycles] * 3 == [17] * 3
    for memories in session.run_memories:
        np.testing.assert_array_equal(memories, single.memories)
    m = single.memories
    x = np.arange(1, 9, dtype=np.uint8)
    np.testing.assert_array_equal(m[E0, 8], x)                      # r (0) + x
    np.testing.assert_array_equal(m[E0, 9], 2 * x)                  # what the run leaves in r
    assert m[W3, 16].tolist() == [0] * 8                            # accumulator 0 at the start
    q = np.array([21, 49, -21, 77])                                 # weights @ (1, 1, 2, 3)
    np.testing.assert_array_equal(m[W3, 17, :4], (q % 256).astype(np.uint8))
    np.testing.assert_array_equal(m[W2, 17, :4], ((q >> 8) % 256).astype(np.uint8))
    assert m[E3, 5].tolist() == [10] * 8                            # permute by a zero table
    assert m[E3, 7].tolist() == [13, 17, 10, 15, 11, 16, 12, 14]    # by the loaded one
    assert m[E1, 10].tolist() == [0] * 8 and m[E1, 11].tolist() == [0x55] * 8   # count 1
    assert [m[E1, w, 0] for w in range(20, 24)] == [0, 0, 0, 0x66]  # count 3 after agi


def test_model_restart_is_a_fresh_run_on_the_memories_left():
    image = _counter()
    model = Model(image)
    first = model.run()
    model.restart()
    second = model.run()
    fresh = golden_run(_with_memories(image, first.memories))
    assert second.cycles == fresh.cycles == first.cycles
    np.testing.assert_array_equal(second.memories, fresh.memories)


@pytest.mark.parametrize("seed", [*range(1000, 1010), 1016])   # 1009, 1016: ifetch
def test_a_session_is_fresh_runs_chained_through_the_memories(seed):
    """On rule-abiding random programs (randprog's legal ones, with ifetch blocks that do not
    wrap the ring), run k of a session is a fresh load of the image's queues with run k-1's
    memories: the fetched words a run leaves in the ring are fetched again before use."""
    image = random_image(CONFIG, seed, legal=True)
    session = run_session(image, 3, keep_memories=True)
    assert session.overwritten == [[]] * 3
    memories = image.memories()
    for run in range(3):
        fresh = golden_run(_with_memories(image, memories))
        assert session.cycles[run] == fresh.cycles, (seed, run)
        np.testing.assert_array_equal(session.run_memories[run], fresh.memories)
        memories = fresh.memories


def test_a_fetch_that_wraps_the_ring_stops_the_session():
    """ifetch.s fetches 129 words through the 128-word VXM queue: the ring wraps over its first
    preloaded word, so a second start would run a fetched word in its place."""
    image = assemble_file(EXAMPLES_DIR / "ifetch.s", CONFIG).image
    assert run_session(image, 1).overwritten == [[(6, "VXM", 0)]]
    with pytest.raises(SessionError) as error:
        run_session(image, 2)
    assert str(error.value) == (
        "run 1 of 2: its fetches wrote over preloaded word 0 of queue 6 (VXM), so the next start "
        "would run other instructions; reload the queues between runs (reload_queues=True) or "
        "allow it (allow_queue_changes=True)")
    reloaded = run_session(image, 3, reload_queues=True, keep_memories=True)
    assert reloaded.cycles == [326] * 3 and reloaded.reload_queues
    single = golden_run(image)
    np.testing.assert_array_equal(reloaded.run_memories[0], single.memories)
    kept = run_session(image, 3, allow_queue_changes=True)     # as the chip runs it
    assert kept.overwritten == [[(6, "VXM", 0)]] * 3


def test_restart_needs_a_finished_run_and_no_faults():
    image = _counter()
    model = Model(image)
    model.step()
    with pytest.raises(RuntimeError, match=r"^Model.restart: the run has not finished \(cycle "
                                           r"1\); the chip takes CTRL_START only when it is not "
                                           r"running$"):
        model.restart()
    faulty = Model(image, faults=[Fault(3, W0, 0, 0, 1)])
    faulty.run()
    with pytest.raises(RuntimeError, match=r"^Model.restart: a model with faults cannot be "
                                           r"restarted"):
        faulty.restart()


@pytest.mark.parametrize(("runs", "error", "message"), [
    (0, ValueError, "runs must be at least 1, not 0"),
    (-2, ValueError, "runs must be at least 1, not -2"),
    (2.0, TypeError, "runs must be an integer, not 2.0"),
    ("3", TypeError, "runs must be an integer, not '3'"),
    (True, TypeError, "runs must be an integer, not True"),
    (None, TypeError, "runs must be an integer, not None"),
])
def test_bad_runs_are_refused_in_one_line(tmp_path, runs, error, message):
    image = _counter()
    with pytest.raises(error) as raised:
        run_session(image, runs)
    assert str(raised.value) == message
    path = tmp_path / "counter.bin"
    image.save(path)
    # the RTL runners refuse it before building anything
    for call in (runner.run_session, harness.run_harness_session):
        with pytest.raises(error) as raised:
            call(CONFIG, path, runs)
        assert str(raised.value) == message


def test_results_of_runs_not_kept_are_refused():
    session = run_session(_counter(), 2)
    assert session.result(1).cycles == 15
    with pytest.raises(ValueError, match=r"^run 0: memories kept for the last run only "
                                         r"\(keep_memories=False\)$"):
        session.result(0)
    with pytest.raises(IndexError, match=r"^run must be 0..1, not 2$"):
        session.result(2)


def test_an_image_for_another_configuration_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"^image must be an opentsp.firmware.image.Image, "
                                        r"not 'x.bin'$"):
        run_session("x.bin", 2)
    path = tmp_path / "wide.bin"
    assemble(SESSION_COUNTER, get_config("wide")).image.save(path)
    for call in (runner.run_session, harness.run_harness_session):
        with pytest.raises(ImageError) as raised:
            call(CONFIG, path, 2)
        assert str(raised.value) == (
            f"{path}: offset 8: image built for configuration 'wide' (hash "
            f"{get_config('wide').hash.hex()}), this is configuration 'default' (hash "
            f"{CONFIG.hash.hex()})")


def test_an_unknown_session_option_is_refused(tmp_path):
    path = tmp_path / "counter.bin"
    _counter().save(path)
    with pytest.raises(ValueError) as raised:
        runner.run_sessions(CONFIG, [("counter", path, 2, {"reload": True})])
    assert str(raised.value) == ("session 'counter': unknown option 'reload' (options: "
                                 "reload_queues, allow_queue_changes, memories_each_run, golden)")
