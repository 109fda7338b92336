"""`make demo`: a transformer decoder generates text on the RTL in Verilator, token for token.

    python -m opentsp.app.lm_demo [--prompt TEXT] [--tokens N] [--config NAME] [--golden]
                                  [--model FILE]

The committed character model (:mod:`opentsp.app.lm_model`: 2 layers, 4 heads, d = 32,
trained on the Zen of Python) is compiled as one decode step (:mod:`opentsp.app.lm_chip`) for
the ``lm`` chip. The image is loaded into the Verilated chip once with the prompt in its
``tokens`` state, and the chip is started once per position (``verif.runner.run_session``):
each run reads its token and position from memory, runs the two layers against the KV cache in
memory, picks the next token (argmax) and writes it and the next position back. Nothing is
loaded between runs. After the last run the demo reads the tokens and every state back from the
RTL's memories and compares them bit for bit with the compiler's reference of the same steps
(``prog.step_reference``: the graph's exact numerics in numpy, independent of the golden model
and the RTL), every run's cycle count with the compiler's prediction, and the text with the
float model's (numpy float32, which rounds no activation to bfloat16). ``--golden`` also runs
the golden model's session and compares the RTL with it (minutes: it simulates every cycle in
Python).

Any disagreement ends the demo with status 1 and a message; bad input (a prompt character
outside the vocabulary, more positions than the context, a missing or corrupt model file) with
one line and status 2.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from opentsp.app import lm_chip, lm_model
from opentsp.compiler import CompileError, compile_graph
from opentsp.config import CONFIGS, get_config
from opentsp.verif.runner import progress, quiet_banners, run_session

__all__ = ["DEMO_CONFIG", "DEFAULT_PROMPT", "DEFAULT_TOKENS", "LmDemoError", "Plan", "prepare",
           "reference_tokens", "run", "main"]

DEMO_CONFIG = "lm"
DEFAULT_PROMPT = "Beautiful is "
DEFAULT_TOKENS = 40


class LmDemoError(RuntimeError):
    """The RTL disagreed with the reference, or a run failed."""


class Plan:
    """A compiled decode step and the session that generates ``tokens`` after ``prompt``.

    Attributes
    ----------
    params, prog, prompt_ids, tokens, runs, states
        The model, the compiled step, the prompt's ids, tokens to generate, starts of the chip
        (one per position but the last), the states the session starts from.
    """

    def __init__(self, params, prog, prompt_ids, tokens):
        self.params, self.prog = params, prog
        self.prompt_ids, self.tokens = prompt_ids, tokens
        self.runs = len(prompt_ids) + tokens - 1
        self.states = lm_chip.initial_states(params, lm_model.decode(prompt_ids))


def prepare(prompt, tokens, config=DEMO_CONFIG, model=lm_model.DEFAULT):
    """Check the input, load the model file ``model`` and compile its step: a :class:`Plan`.
    Raises ``LmModelError`` (bad prompt, context, model file) or ``CompileError``."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        raise lm_model.LmModelError(f"--tokens must be a positive integer, not {tokens!r}")
    params = lm_model.load(model)
    ids = lm_model.encode(prompt)
    if not ids:
        raise lm_model.LmModelError("the prompt must hold at least one character, not ''")
    context = params.config.context
    if len(ids) + tokens > context:
        raise lm_model.LmModelError(
            f"a prompt of {len(ids)} characters and {tokens} tokens make {len(ids) + tokens} "
            f"positions, more than the model's context (KV cache) of {context}")
    prog = compile_graph(lm_chip.decode_graph(params), config)
    return Plan(params, prog, ids, tokens)


def reference_tokens(plan, bar=None):
    """The states after every step of the compiler's reference: a list, one per run."""
    states, after = plan.states, []
    for _ in range(plan.runs):
        states = plan.prog.step_reference({}, states)[1]
        after.append(states)
        if bar is not None:
            bar.update(1)
    return after


def _compare(plan, states):
    """The RTL's final states against the reference's, bit for bit; the mismatches."""
    bad = []
    for name, value in plan.reference[-1].items():
        got = np.ascontiguousarray(states[name]).view(np.uint8)
        if not np.array_equal(got, np.ascontiguousarray(value).view(np.uint8)):
            bad.append(name)
    return bad


def run(prompt=DEFAULT_PROMPT, tokens=DEFAULT_TOKENS, config=DEMO_CONFIG, golden=False,
        model=lm_model.DEFAULT):
    """The demo; prints its report. Raises :class:`LmDemoError` on any disagreement."""
    config = get_config(config)
    started = time.time()
    plan = prepare(prompt, tokens, config, model)
    prog, p = plan.prog, len(plan.prompt_ids)
    compiled = time.time() - started
    print(f"model: {plan.params.config.n_layers} layers, {plan.params.config.n_heads} heads, "
          f"d = {plan.params.config.d_model}, context {plan.params.config.context}, vocabulary "
          f"{plan.params.config.vocab_size} (the Zen of Python, {lm_model.DEFAULT.name})")
    print(f"decode step compiled for {config.name!r} in {compiled:.1f} s: "
          f"{prog.predicted_cycles} cycles predicted, longest queue "
          f"{max(prog.queue_words.values())} of {config.queue_depth} words")
    with progress(total=plan.runs, desc="compiler reference", unit="step") as bar:
        plan.reference = reference_tokens(plan, bar)
    expected = lm_chip.generated(plan.reference[-1], p, plan.runs)
    with tempfile.TemporaryDirectory(prefix="opentsp-lm-") as tmp:
        path = Path(tmp) / "lm_step.bin"
        prog.image_for({}, plan.states).save(path)
        print(f"RTL: one load, then {plan.runs} starts ({p} prompt positions, {tokens} tokens)")
        simulated = time.time()
        record = run_session(config, path, plan.runs, name="lm_step", golden=golden,
                             memories_dir=tmp, log_level="WARNING")
        simulated = time.time() - simulated
        if record["error"]:
            raise LmDemoError(f"the RTL session failed: {record['error']}")
        states = prog.states(np.load(record["memories"]))
    measured = record["cycles_rtl"]
    got = lm_chip.generated(states, p, plan.runs)
    text = lm_model.decode(got)
    floats, _ = lm_model.generate(plan.params, prompt, tokens)
    print(f"\n{prompt}\033[1m{text}\033[0m\n" if sys.stdout.isatty() else f"\n{prompt}|{text}\n")
    same = got == expected
    print(f"tokens on the RTL = the compiler's reference: {same} ({len(got)} of {tokens})")
    print(f"every state on the RTL (tokens, positions, KV cache) = the reference: "
          f"{not _compare(plan, states)}")
    print(f"float32 model's text {'the same' if floats == text else 'differs: ' + repr(floats)}")
    if golden:
        print(f"golden model's session = the RTL's (cycles and memories): {record['match']}")
    exact = all(c == prog.predicted_cycles for c in measured)
    print(f"cycles per token: {prog.predicted_cycles} predicted, measured "
          f"{min(measured)}..{max(measured)} on {len(measured)} runs: "
          f"{'equal' if exact else 'DIFFERENT'}")
    rate = config.clock_mhz * 1e6 / prog.predicted_cycles
    cycles = sum(measured)
    micros = prog.predicted_cycles / config.clock_mhz
    running = sum(record["seconds"])
    print(f"at {config.clock_mhz:g} MHz: {rate:,.0f} tokens/s ({micros:.1f} us per token)")
    print(f"simulation: {cycles:,} cycles in {running:.1f} s of runs ({cycles / running:,.0f} "
          f"cycles/s under cocotb); the session took {simulated:.1f} s (build, load and "
          f"readback included)")
    print(f"demo time {time.time() - started:.1f} s")
    problems = ([] if same else ["the RTL's tokens differ from the reference's"])
    problems += [f"state {name!r} differs" for name in _compare(plan, states)]
    problems += [] if exact else ["measured cycles differ from the prediction"]
    problems += [] if record["match"] in (None, True) else ["the golden model disagrees"]
    if problems:
        raise LmDemoError("; ".join(problems))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.app.lm_demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default=DEFAULT_PROMPT,
                        help=f"the text to continue (default {DEFAULT_PROMPT!r})")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS,
                        help=f"tokens to generate (default {DEFAULT_TOKENS})")
    parser.add_argument("--config", default=DEMO_CONFIG,
                        help=f"one of {', '.join(CONFIGS)} (default {DEMO_CONFIG})")
    parser.add_argument("--golden", action="store_true",
                        help="also run the golden model's session and compare (slow)")
    parser.add_argument("--model", type=Path, default=lm_model.DEFAULT,
                        help=f"the weights file (default {lm_model.DEFAULT})")
    args = parser.parse_args(argv)
    try:
        with quiet_banners():
            run(args.prompt, args.tokens, args.config, args.golden, args.model)
    except (lm_model.LmModelError, CompileError, ValueError) as error:
        print(f"opentsp lm demo: error: {error}", file=sys.stderr)
        return 2
    except LmDemoError as error:
        print(f"opentsp lm demo: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
