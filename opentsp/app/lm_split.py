"""The decoder model of `make demo` split over two chips of a ring (docs/multichip.md, "The
decoder over two chips").

    python -m opentsp.app.lm_split [--prompt TEXT] [--tokens N] [--cut K] [--rtl] [--seed S]

The Zen model's decode step (:mod:`opentsp.app.lm_chip`) is cut after layer ``K`` (default:
half the layers) into two stages, composed by :func:`opentsp.compiler.multichip.compose` on
``ring(2)`` of the ``lm_c2c`` configuration:

* chip 0, the *front*: input ``token`` (1, 1) int32, state ``pos``; the embedding and layers
  ``0 .. K-1`` with their KV caches; output ``x`` (1, d) float32, the residual stream;
* chip 1, the *back*: input ``x``; states ``tokens``, ``pos``, ``prompt_len`` and ``token``
  (the token at ``pos``); layers ``K ..``, the final RMSNorm, the logits and their argmax; it
  writes the next token into ``tokens`` and ``token`` and both chips advance ``pos``.

Two transfers join them: chip 1's state ``token`` goes to chip 0 *before* the stages (as the
last run left it) and lands as chip 0's input ``token``; chip 0's output ``x`` goes to chip 1
after chip 0's stage. Chip 0 leads (it marks the cable to chip 1 in cycle 0); chip 1 deskews on
it. Each chip's KV caches stay in its own memory, so nothing but a token and a residual vector
crosses the cable per step.

A *session* runs the system once per position. Every run of the golden model or the RTL starts
from images that carry the states the previous run left (read back from the memories), and its
latencies and start times are drawn anew (``--seed``). Each run is checked: every chip's cycles
equal the prediction, and the states equal the composed program's reference
(:meth:`~opentsp.compiler.multichip.MultiChipProgram.step_reference`). The tokens and KV caches
must also equal those of the single-chip step on ``lm`` (the same numerics, cut in two). The RTL
(``--rtl``: the Verilated 2-chip system, :func:`opentsp.verif.system_runner.run_system_rtl`)
is also compared with the multi-chip golden model, memory word for memory word, on every run.

Disagreement ends with status 1; bad input (a prompt outside the vocabulary, too many positions,
a cut that leaves a chip no layer) with one line and status 2.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from opentsp.app import lm_chip, lm_demo, lm_model
from opentsp.compiler import CompileError, Graph
from opentsp.compiler.multichip import Transfer, compose
from opentsp.config import get_config
from opentsp.sim.system import random_latencies
from opentsp.topology import ring
from opentsp.verif.runner import quiet_banners
from opentsp.verif.system_runner import run_system_rtl

__all__ = ["SPLIT_CONFIG", "LmSplitError", "front_graph", "back_graph", "split_program",
           "initial_states", "draw", "run"]

SPLIT_CONFIG = "lm_c2c"
DEFAULT_TOKENS = 8


class LmSplitError(RuntimeError):
    """A run disagreed with the prediction, the reference or the single chip."""


def _check_cut(params, cut):
    layers = params.config.n_layers
    if isinstance(cut, bool) or not isinstance(cut, int) or not 1 <= cut < layers:
        raise lm_model.LmModelError(f"--cut must be a layer from 1 to {layers - 1} (each chip "
                                    f"runs at least one of the {layers} layers), not {cut!r}")
    return cut


def _position(g, pos_state):
    zero = g.const("zero", np.zeros((1, 1), np.int32))
    one = g.const("one", np.ones((1, 1), np.int32))
    pos = g.read_row(pos_state, zero, name="pos.now")
    return pos, g.cast(pos, "float32", name="pos.f32"), (zero, one)


def front_graph(params, cut):
    """Chip 0's stage: the embedding of input ``token`` and layers ``0 .. cut-1``."""
    cut = _check_cut(params, cut)
    g = Graph("lm_front")
    token = g.input("token", (1, 1), "int32")
    pos_state = g.state("pos", (1, 1), "int32")
    pos, position, (zero, one) = _position(g, pos_state)
    x = lm_chip.embed(g, params, token, pos)
    for i in range(cut):
        x = lm_chip.layer(g, params, i, x, pos, position)
    g.output("x", x)
    g.output("pos", g.write_row(pos_state, zero, g.add(pos, one, name="pos.next"),
                                name="pos.written"))
    return g


def back_graph(params, cut):
    """Chip 1's stage: layers ``cut ..`` on input ``x``, then the next token."""
    cfg = params.config
    cut = _check_cut(params, cut)
    g = Graph("lm_back")
    x = g.input("x", (1, cfg.d_model), "float32")
    tokens = g.state("tokens", (cfg.context, 1), "int32")
    pos_state = g.state("pos", (1, 1), "int32")
    prompt_len = g.state("prompt_len", (1, 1), "int32")
    token = g.state("token", (1, 1), "int32")
    pos, position, constants = _position(g, pos_state)
    for i in range(cut, cfg.n_layers):
        x = lm_chip.layer(g, params, i, x, pos, position)
    value, after = lm_chip.next_token(g, params, x, (tokens, prompt_len), pos, constants)
    zero = constants[0]
    g.output("tokens", g.write_row(tokens, after, value, name="tokens.next"))
    g.output("pos", g.write_row(pos_state, zero, after, name="pos.written"))
    g.output("token.next", g.write_row(token, zero, value, name="token.written"))
    return g


def split_program(params, cut=None, config=SPLIT_CONFIG):
    """The :class:`~opentsp.compiler.multichip.MultiChipProgram` of the two stages."""
    cut = params.config.n_layers // 2 if cut is None else cut
    topology = ring(2, get_config(config))
    transfers = [Transfer(1, "token", 0, "token"), Transfer(0, "x", 1, "x")]
    return compose(topology, [front_graph(params, cut), back_graph(params, cut)], transfers,
                   {})


def initial_states(params, prompt):
    """``{chip: {state: array}}`` a session starts from: the single chip's (the prompt in
    ``tokens``, position 0) on chip 1 with ``token`` the prompt's first, position 0 on chip 0;
    the KV caches zero."""
    states = lm_chip.initial_states(params, prompt)
    first = states["tokens"][:1].copy()
    return {0: {"pos": states["pos"].copy()}, 1: {**states, "token": first}}


def draw(topology, seed):
    """The latencies and start times of run ``seed``: every cable's latency anywhere in the
    window, chip 1 started up to 4 cycles after chip 0."""
    return random_latencies(topology, seed), [0, seed % 5]


def _same(a, b):
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                          np.ascontiguousarray(b).view(np.uint8))


def _differences(got, want, what):
    """The states of ``got`` (per chip) that differ from ``want``'s."""
    return [f"{what}: chip {chip} state {name!r} differs" for chip, states in enumerate(want)
            for name, value in states.items() if not _same(got[chip][name], value)]


def _single_chip(single, split):
    """The single chip's states after a step against the split's: the tokens, the positions
    and every layer's KV cache, on whichever chip holds them."""
    return [f"chip {chip} state {name!r} differs from the single chip's"
            for chip, states in enumerate(split) for name, value in states.items()
            if name in single and not _same(value, single[name])]


class _Session:
    """The runs of one session and their checks."""

    def __init__(self, plan, program, seed, rtl, memories_dir):
        self.plan, self.program, self.seed = plan, program, seed
        self.rtl, self.memories_dir = rtl, memories_dir
        self.states = initial_states(plan.params, lm_model.decode(plan.prompt_ids))
        self.single = plan.states
        self.cycles, self.seconds = [], 0.0

    def step(self, run):
        """Run ``run`` of the session; the problems it shows."""
        program = self.program
        _, want = program.step_reference({}, self.states)
        self.single = self.plan.prog.step_reference({}, self.single)[1]
        latencies, starts = draw(program.topology, self.seed + run)
        started = time.time()
        if self.rtl:
            got, cycles, problems = self._rtl(run, latencies, starts)
        else:
            _, got, cycles = program.run_golden_states({}, self.states, latencies=latencies,
                                                       starts=starts)
            problems = []
        self.seconds += time.time() - started
        self.cycles.append(cycles)
        if cycles != program.predicted_cycles:
            problems.append(f"cycles {cycles}, predicted {program.predicted_cycles}")
        problems += _differences(got, want, "the reference")
        problems += _single_chip(self.single, want)
        self.states = {chip: got[chip] for chip in range(2)}
        return [f"run {run} (seed {self.seed + run}): {p}" for p in problems]

    def _rtl(self, run, latencies, starts):
        images = self.program.images_for({}, self.states)
        records = run_system_rtl(images, self.program.topology, [(latencies, starts, ())],
                                 max_cycles=50_000, memories_dir=self.memories_dir)
        record = records[0]
        if record["error"]:
            return None, None, [f"the RTL run failed: {record['error']}"]
        chips = record["chips"]
        memories = [np.load(c["memories"]) for c in chips]
        problems = [] if record["match"] else [
            f"chip {k}: the RTL differs from the golden model: {c['mismatches'][:3]}"
            for k, c in enumerate(chips) if not c["match"]]
        return self.program.states(memories), [c["cycles_rtl"] for c in chips], problems


def run(prompt=lm_demo.DEFAULT_PROMPT, tokens=DEFAULT_TOKENS, cut=None, rtl=False, seed=0,
        model=lm_model.DEFAULT, out=print):
    """The split session; prints its report. Raises :class:`LmSplitError` on a disagreement."""
    started = time.time()
    if cut is not None:
        _check_cut(lm_model.load(model), cut)
    plan = lm_demo.prepare(prompt, tokens, lm_demo.DEMO_CONFIG, model)
    cut = plan.params.config.n_layers // 2 if cut is None else cut
    program = split_program(plan.params, cut)
    out(f"{plan.params.config.n_layers} layers cut after layer {cut - 1} over ring2 of "
        f"{SPLIT_CONFIG!r} (compiled in {time.time() - started:.1f} s): cycles predicted "
        f"{program.predicted_cycles} (chip 0, chip 1); one chip of 'lm': "
        f"{plan.prog.predicted_cycles}")
    with tempfile.TemporaryDirectory(prefix="opentsp-lm-split-") as tmp:
        session = _Session(plan, program, seed, rtl, Path(tmp))
        where = "the Verilated 2-chip system" if rtl else "the multi-chip golden model"
        out(f"{plan.runs} runs on {where}, latencies and starts drawn per run (seeds {seed} .. "
            f"{seed + plan.runs - 1})")
        for k in range(plan.runs):
            problems = session.step(k)
            if problems:
                raise LmSplitError(problems[0])
    got = lm_chip.generated(session.states[1], len(plan.prompt_ids), plan.runs)
    text = lm_model.decode(got)
    out(f"\n{prompt}|{text}\n")
    first = session.cycles[0]
    out(f"every run: cycles {first} = predicted, states = the composed reference = the single "
        f"chip's (tokens, positions, KV caches){', RTL = golden model' if rtl else ''}")
    rate = get_config(SPLIT_CONFIG).clock_mhz * 1e6 / max(first)
    out(f"{max(first)} cycles per token against {plan.prog.predicted_cycles} on one chip: "
        f"{rate:,.0f} tokens/s at {get_config(SPLIT_CONFIG).clock_mhz:g} MHz; runs took "
        f"{session.seconds:.1f} s, all {time.time() - started:.1f} s")
    return got


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.app.lm_split",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default=lm_demo.DEFAULT_PROMPT,
                        help=f"the text to continue (default {lm_demo.DEFAULT_PROMPT!r})")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS,
                        help=f"tokens to generate (default {DEFAULT_TOKENS})")
    parser.add_argument("--cut", type=int, default=None,
                        help="layers on chip 0 (default: half)")
    parser.add_argument("--rtl", action="store_true",
                        help="run on the Verilated 2-chip system (else the golden model)")
    parser.add_argument("--seed", type=int, default=0, help="first run's draw (default 0)")
    parser.add_argument("--model", type=Path, default=lm_model.DEFAULT,
                        help=f"the weights file (default {lm_model.DEFAULT})")
    args = parser.parse_args(argv)
    try:
        with quiet_banners():
            run(args.prompt, args.tokens, args.cut, args.rtl, args.seed, args.model)
    except (lm_model.LmModelError, CompileError, ValueError) as error:
        print(f"opentsp lm split: error: {error}", file=sys.stderr)
        return 2
    except LmSplitError as error:
        print(f"opentsp lm split: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
