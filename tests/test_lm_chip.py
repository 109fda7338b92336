"""The language model's decode step on the chip (``opentsp.app.lm_chip``) and the demo's input
checks (``opentsp.app.lm_demo``), on the golden model.

The compiled step passes the checker; a session of runs on the golden model (loaded once, then
started again and again, states carried over in memory) leaves exactly the states of the
compiler's reference after as many steps, each run in the predicted cycles; and the
reference's greedy text is the float model's.
"""

import numpy as np
import pytest

from opentsp.app import lm_chip, lm_demo, lm_model
from opentsp.compiler import compile_graph
from opentsp.firmware.checker import check
from opentsp.sim.session import run_session

PROMPT = "Beautiful is "


@pytest.fixture(scope="module")
def params():
    return lm_model.load()


@pytest.fixture(scope="module")
def prog(params):
    return compile_graph(lm_chip.decode_graph(params), "lm")


def _same(a, b):
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                          np.ascontiguousarray(b).view(np.uint8))


def test_the_step_is_clean_and_fits_the_lm_chip(prog):
    assert check(prog.image) == []
    assert max(prog.queue_words.values()) <= prog.config.queue_depth
    assert set(prog.graph.states) == {"tokens", "pos", "prompt_len"} | {
        f"layer{i}.{c}cache" for i in range(2) for c in "kv"}


def test_a_golden_session_equals_the_reference_step_by_step(params, prog):
    """Three starts after one load: the prompt's first positions; every state (the token
    buffer, the position, the KV cache rows) bit for bit, every run's cycles predicted."""
    states = lm_chip.initial_states(params, PROMPT)
    session = run_session(prog.image_for({}, states), 3)
    assert session.cycles == [prog.predicted_cycles] * 3
    for _ in range(3):
        states = prog.step_reference({}, states)[1]
    got = prog.states(session.memories)
    for name, value in states.items():
        assert _same(got[name], value), name
    assert int(got["pos"][0, 0]) == 3
    keys = got["layer0.kcache"].astype(np.float32)
    assert np.abs(keys[:3]).sum(axis=1).all() and not keys[3:].any()   # three rows written


def test_the_reference_decodes_the_float_models_text(params, prog):
    """The chip's numerics (bfloat16 activations into every matmul, exact sums, the VXM's
    functions) choose the same 12 characters as the float32 model."""
    states = lm_chip.initial_states(params, PROMPT)
    steps = len(PROMPT) + 12 - 1
    for _ in range(steps):
        states = prog.step_reference({}, states)[1]
    ids = lm_chip.generated(states, len(PROMPT), steps)
    assert ids == lm_model.generate(params, PROMPT, 12)[1]
    assert lm_model.decode(ids) == "better than "


def test_demo_input_errors(tmp_path, capsys):
    for argv, message in (
            (["--prompt", "Beautiful é"], "prompt character 'é' at position 10 is not in the "
                                          "vocabulary"),
            (["--tokens", "60"], "a prompt of 13 characters and 60 tokens make 73 positions, "
                                 "more than the model's context (KV cache) of 64"),
            (["--tokens", "0"], "--tokens must be a positive integer, not 0"),
            (["--model", str(tmp_path / "none.npz")], "none.npz"),
            (["--config", "wide", "--tokens", "3"], "tensor 'tok_emb' (3072 bytes) does not fit"),
            (["--config", "fpga", "--tokens", "3"], "configuration 'fpga' is built without "
                                                    "floating point")):
        assert lm_demo.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("opentsp lm demo: error: ") and message in err, err
        assert err.count("\n") == 1
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip")
    assert lm_demo.main(["--model", str(corrupt)]) == 2
    assert "corrupt.npz" in capsys.readouterr().err
