"""The decoder model split over two chips (opentsp/app/lm_split.py): a session on the
multi-chip golden model, every run's cycles equal to the prediction and its states equal to the
composed reference and to the single chip's, bit for bit; bad input. The RTL session is
`make multichip-lm`."""

import numpy as np
import pytest

from opentsp.app import lm_chip, lm_demo, lm_model, lm_split


@pytest.fixture(scope="module")
def params():
    return lm_model.load()


def test_the_split_session_generates_the_single_chips_tokens():
    lines = []
    got = lm_split.run(prompt="Be", tokens=2, seed=3, out=lines.append)
    plan = lm_demo.prepare("Be", 2)
    single = lm_chip.generated(lm_demo.reference_tokens(plan)[-1], 2, plan.runs)
    assert got == single and len(got) == 2
    assert any("= predicted" in line for line in lines), lines


def test_the_split_graphs_hold_the_layers_and_the_states_where_they_belong(params):
    front, back = lm_split.front_graph(params, 1), lm_split.back_graph(params, 1)
    assert sorted(front.states) == ["layer0.kcache", "layer0.vcache", "pos"]
    assert sorted(back.states) == ["layer1.kcache", "layer1.vcache", "pos", "prompt_len",
                                   "token", "tokens"]
    assert list(front.inputs) == ["token"] and list(back.inputs) == ["x"]
    states = lm_split.initial_states(params, "Be")
    assert states[1]["token"][0, 0] == lm_model.encode("Be")[0]
    assert np.array_equal(states[1]["tokens"][:2, 0], lm_model.encode("Be"))


def test_a_state_that_differs_is_named():
    want = [{"pos": np.zeros((1, 1), np.int32)}, {"pos": np.ones((1, 1), np.int32)}]
    got = [{"pos": np.zeros((1, 1), np.int32)}, {"pos": np.zeros((1, 1), np.int32)}]
    assert lm_split._differences(got, want, "the reference") == [
        "the reference: chip 1 state 'pos' differs"]
    assert lm_split._single_chip({"pos": np.zeros((1, 1), np.int32)}, want) == [
        "chip 1 state 'pos' differs from the single chip's"]


@pytest.mark.parametrize("argv, message", [
    (["--cut", "2"], "--cut must be a layer from 1 to 1 (each chip runs at least one of the 2 "
                     "layers), not 2"),
    (["--cut", "0"], "--cut must be a layer from 1 to 1"),
    (["--tokens", "0"], "--tokens must be a positive integer, not 0"),
    (["--prompt", "Be\u20ac"], "\u20ac"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    assert lm_split.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("opentsp lm split: error: "), err
    assert message in err, err
