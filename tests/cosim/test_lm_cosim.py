"""The language model on the RTL in Verilator (``lm`` chip): the short version of ``make
demo``. The compiler's reference runs the first twelve positions of the prompt; the RTL, loaded
once with those states, runs two more decode steps (the prompt's last position, which chooses
the first generated token, and the step that chooses the second), started twice in a row with
nothing loaded between. Its cycles and memories equal the golden model's session, and its
states (token buffer, position, KV cache) the reference's after 14 steps, bit for bit; its
tokens are the float model's text."""

import numpy as np

from opentsp.app import lm_chip, lm_model
from opentsp.compiler import compile_graph
from opentsp.verif.runner import run_session

#: The lm chip's build (about 3 minutes) runs on its own worker, beside the other co-simulations.
XDIST_GROUP = "lm"
PROMPT = "Beautiful is "
#: Decode steps the RTL runs after the reference's: the prompt's last, and one generated.
RTL_STEPS = 2


def test_decode_steps_on_verilator(tmp_path, capsys):
    params = lm_model.load()
    prog = compile_graph(lm_chip.decode_graph(params), "lm")
    states = lm_chip.initial_states(params, PROMPT)
    for _ in range(len(PROMPT) + 1 - RTL_STEPS):
        states = prog.step_reference({}, states)[1]
    path = tmp_path / "lm_step.bin"
    prog.image_for({}, states).save(path)
    record = run_session("lm", path, RTL_STEPS, memories_dir=tmp_path, log_level="WARNING")
    assert record["error"] is None and record["match"], record
    assert record["cycles_rtl"] == record["cycles_golden"] == [prog.predicted_cycles] * RTL_STEPS
    for _ in range(RTL_STEPS):
        states = prog.step_reference({}, states)[1]
    got = prog.states(np.load(record["memories"]))
    for name, value in states.items():
        assert np.array_equal(np.ascontiguousarray(got[name]).view(np.uint8),
                              np.ascontiguousarray(value).view(np.uint8)), name
    tokens = lm_chip.generated(got, len(PROMPT), 14)
    assert lm_model.decode(tokens) == lm_model.generate(params, PROMPT, 2)[0] == "be"
    with capsys.disabled():
        print(f"\nlm decode steps on verilator: {RTL_STEPS} runs of {prog.predicted_cycles} "
              f"cycles, predicted exactly, states = reference; tokens {lm_model.decode(tokens)!r}")
