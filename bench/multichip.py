"""Figures of the multi-chip work (docs/multichip.md, "Commands and figures"):

    .venv/bin/python bench/multichip.py [--draws 100] [--layer-cycles 124111]
    .venv/bin/python bench/multichip.py --model 70b     # the projection of Llama-2 70B

1. The compiler across chips on ``c2c``: a 4-chip pipeline of int8 layers and a layer split by
   columns over 4 fully connected chips; every chip's predicted cycles, and ``--draws`` runs of
   the multi-chip golden model with random link latencies and start times, each of which must
   measure the prediction and give numpy's result.
2. What a hop costs on ``groq``: moving Llama-2 7B's residual stream (1 x 4096 float32, padded
   to 4160: 13 column blocks x 4 byte planes = 52 frames) from one chip to the next with the
   link timing of section 7d, over 1 link and spread over 8.
3. The projection at batch 1: the layer's pieces (``make bench-llama``: each piece one
   ``groq`` chip, run one after the other; ``--layer-cycles`` is its measured layer, 124,111
   cycles at context 2048 (ISA v8), and ``--pieces`` its 5 pieces) with a hop between
   consecutive pieces, 32 layers, in tokens per second at 900 MHz; Groq's published figure is
   about 750.

With ``--model 70b`` the third part is Llama-2 70B's (``bench/llama_layer.py --model 70b
--head``: a layer of 15 pieces, the LM head 5 more): the hop moves 1 x 8192 float32 (padded to
8320: 104 frames), 80 layers, chips = pieces x 80 + the head's; side by side with Groq's about
300 tokens/s on about 576 chips, and what the difference comes from (the pieces of a layer run
one after the other; arithmetic on the measured pieces for running them side by side).
"""

import argparse
import sys
import time

import numpy as np

from opentsp import isa
from opentsp.compiler import Graph
from opentsp.compiler.graph import CompileError
from opentsp.compiler.multichip import column_parallel, pipeline
from opentsp.config import get_config
from opentsp.sim.system import random_latencies

MULTIPLIER = 1 << 30

#: The projection's model: layers, the residual stream's padded width, Groq's figure; for 70B
#: the pieces measured by ``bench/llama_layer.py --model 70b --head`` (context 2048, cycles
#: per piece, in the order they run) and the LM head's pieces.
MODELS = {
    "7b": {"name": "Llama-2 7B", "layers": 32, "width": 4160, "groq": 750, "groq_chips": None,
           "layer_cycles": 124_111, "pieces": 5},
    "70b": {"name": "Llama-2 70B", "layers": 80, "width": 8320, "groq": 300, "groq_chips": 576,
            "pieces_cycles": {"qkv.a": 9_186, "qkv.b": 4_702, "attention": 110_732,
                              "wo.a": 5_324, "wo.b": 6_786,
                              **{f"ffn.{c}": 8_519 for c in "abcdefghij"}},
            "head_cycles": {"head.a": 8_057, "head.b": 5_876, "head.c": 5_876, "head.d": 5_876,
                            "head.e": 12_090}},
}


def _layer(name, w, b):
    g = Graph(name)
    x = g.input("x", (2, w.shape[0]))
    h = g.bias_add(g.matmul(x, g.const("w", w)), g.const("b", b))
    g.output("y", g.requant(g.relu(h), MULTIPLIER, 0))
    return g


def _numpy_layer(x, w, b):
    h = x.astype(np.int64) @ w.astype(np.int64) + b
    return np.clip((np.maximum(h, 0) * MULTIPLIER) >> 32, -128, 127).astype(np.int8)


def _draws(program, inputs, draws, check):
    chips, began = program.topology.chips, time.perf_counter()
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        starts = [0] + [int(s) for s in rng.integers(0, 8, chips - 1)]
        outputs, cycles = program.run_golden(
            inputs, latencies=random_latencies(program.topology, seed), starts=starts)
        if cycles != program.predicted_cycles or not check(outputs):
            sys.exit(f"multichip: draw {seed}: cycles {cycles}, predicted "
                     f"{program.predicted_cycles}, or the result differs from numpy")
    return time.perf_counter() - began


def compiled(draws):
    config = get_config("c2c")
    rng = np.random.default_rng(4)
    ws = [rng.integers(-4, 5, (4, 4)).astype(np.int8) for _ in range(4)]
    bs = [rng.integers(-8, 9, 4).astype(np.int32) for _ in range(4)]
    x = rng.integers(-30, 31, (2, 4)).astype(np.int8)
    want = x
    for w, b in zip(ws, bs, strict=True):
        want = _numpy_layer(want, w, b)
    program = pipeline([_layer(f"l{k}", ws[k], bs[k]) for k in range(4)], config)
    stage = [s.predicted_cycles for s in program.stages]
    seconds = _draws(program, {0: {"x": x}}, draws,
                     lambda out: np.array_equal(out[-1]["y"], want))
    print(f"pipeline, 4 chips (ring4) of 2x4 @ 4x4 int8 layers: stages {stage} cycles alone; "
          f"predicted per chip {program.predicted_cycles}; {draws} draws of latencies and "
          f"starts measured exactly that, result = numpy ({seconds:.1f} s)")
    w = rng.integers(-4, 5, (4, 16)).astype(np.int8)
    b = rng.integers(-8, 9, 16).astype(np.int32)
    want = _numpy_layer(x, w, b)
    program = column_parallel([_layer(f"c{k}", w[:, 4 * k:4 * k + 4], b[4 * k:4 * k + 4])
                               for k in range(4)], config)
    seconds = _draws(program, {0: {"x": x}}, draws, lambda out: np.array_equal(
        np.concatenate([out[k]["y"] for k in range(4)], axis=1), want))
    print(f"columns, 4 chips (full4) of 2x4 @ 4x16: predicted per chip "
          f"{program.predicted_cycles}; {draws} draws measured exactly that, result = numpy "
          f"({seconds:.1f} s)")


def hop(config, frames, links):
    """Cycles from the first send to the last frame in the receiver's buffer, ``frames``
    spread over ``links`` links of the same cable bundle (section 7d's timing, exact on the
    deskewed links)."""
    per_link = -(-frames // links)
    frame = isa.c2c_frame_cycles(config, isa.FrameKind.DATA)
    return isa.c2c_arrival(config, isa.FrameKind.DATA, frame * (per_link - 1))


def projection(layer_cycles, pieces, model=MODELS["7b"]):
    """Tokens per second of ``model``'s layers (``layer_cycles`` in ``pieces`` chips, one
    after the other, a hop of the residual stream after each) over 1 and 8 links: ``{links:
    (cycles of a hop, cycles a token)}``."""
    config = get_config("groq")
    clock = config.clock_mhz * 1e6
    frames = -(-model["width"] // config.mxm_size) * 4
    n = model["layers"]
    print(f"\ngroq links: a data frame {isa.c2c_frame_bytes(config, isa.FrameKind.DATA)} "
          f"bytes = {isa.c2c_frame_cycles(config, isa.FrameKind.DATA)} cycles at "
          f"{config.c2c_bytes} bytes a cycle; latency {config.c2c_latency} + up to "
          f"{config.c2c_window} (assumed, docs/architecture.md 7d)")
    found = {}
    for links in (1, 8):
        cycles = hop(config, frames, links)
        token = n * (layer_cycles + pieces * cycles)
        alone = clock / (n * layer_cycles)
        found[links] = (cycles, token)
        print(f"  hop of the residual stream ({frames} frames) over {links} link"
              f"{'s' if links > 1 else ''}: {cycles:,} cycles = {cycles / clock * 1e6:.2f} us;"
              f" {n} layers of {pieces} pieces: {token:,} cycles a token = "
              f"{clock / token:,.0f} tokens/s (without the hops {alone:,.0f})")
    return found


def _side_by_side(pieces_cycles):
    """Cycles of a layer whose weight pieces of one stage run side by side (tensor
    parallelism; arithmetic): the longest piece of each stage (``qkv.*``, ``attention``,
    ``wo.*``, ``ffn.*``) and the number of stages."""
    stages = {}
    for name, cycles in pieces_cycles.items():
        stage = name.split(".")[0]
        stages[stage] = max(stages.get(stage, 0), cycles)
    return sum(stages.values()), len(stages)


def projection_70b(model, layer_cycles, pieces):
    """Llama-2 70B: :func:`projection`, the LM head, the chips, Groq's figure and where the
    difference comes from (arithmetic on the measured pieces)."""
    config = get_config("groq")
    clock = config.clock_mhz * 1e6
    n, measured, head = model["layers"], model["pieces_cycles"], model["head_cycles"]
    print(f"\n{model['name']}: a layer of {pieces} pieces, {layer_cycles:,} cycles (bench/"
          f"llama_layer.py --model 70b --head, context 2048: "
          + ", ".join(f"{k} {v:,}" for k, v in measured.items()) + ")")
    found = projection(layer_cycles, pieces, model)
    chips = pieces * n + len(head)
    heads = sum(head.values())
    for links, (hop_cycles, token) in found.items():
        total = token + heads + len(head) * hop_cycles
        print(f"  with the LM head ({len(head)} pieces, {heads:,} cycles) over {links} link"
              f"{'s' if links > 1 else ''}: {total:,} cycles a token = {clock / total:,.0f} "
              f"tokens/s on {chips:,} chips ({pieces} x {n} + {len(head)})")
    groq = clock / model["groq"]
    print(f"  Groq: about {model['groq']} tokens/s on about {model['groq_chips']} chips: "
          f"{groq:,.0f} cycles a token at {config.clock_mhz:.0f} MHz, {groq / n:,.0f} a layer")
    hop8 = found[8][0]
    if measured and sum(measured.values()) == layer_cycles:
        attention = measured.get("attention", 0)
        weights = layer_cycles - attention
        wide, stages = _side_by_side(measured)
        token = n * (wide + stages * hop8)
        longest = max(c for k, c in measured.items() if k != "attention")
        print(f"  where the difference comes from (arithmetic on the measured pieces):\n"
              f"    the attention alone is {attention / (groq / n):.1f} times Groq's whole layer"
              f", the longest weight piece {longest:,} cycles\n"
              f"    the pieces run one after the other: at batch 1 one chip of {chips:,} works "
              f"at a time, each streaming its weights once through its 2 MXMs; the {pieces - 1} "
              f"weight pieces are {weights:,} cycles a layer ({100 * weights / layer_cycles:.0f}"
              f"%), the attention {attention:,} ({100 * attention / layer_cycles:.0f}%)\n"
              f"    the weight pieces of each of the {stages} stages side by side (tensor "
              f"parallelism within a layer, as Groq spreads a layer over many chips; the "
              f"partial sums' reduction not counted): {wide:,} cycles a layer, with a hop over 8 "
              f"links per stage {n} layers take {token:,} cycles = {clock / token:,.0f} "
              f"tokens/s\n"
              f"    bfloat16 weights: a tile loads in the same 20 cycles as int8 on groq, so int8"
              f" (or Groq's fp8) would halve the chips, not the cycles")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--model", choices=sorted(MODELS), default="7b",
                        help="the projection's model: Llama-2 7B (default) or 70B")
    parser.add_argument("--layer-cycles", type=int,
                        help="one layer on groq (bench/llama_layer.py; default for 7B: make "
                             "bench-llama's figure at b6daa37, context 2048; for 70B: the sum "
                             "of its measured pieces)")
    parser.add_argument("--pieces", type=int,
                        help="chips a layer is cut into (default 5 for 7B, 15 for 70B)")
    args = parser.parse_args(argv)
    model = MODELS[args.model]
    layer_cycles, pieces = args.layer_cycles, args.pieces
    if layer_cycles is None:
        layer_cycles = model.get("layer_cycles") or sum(model["pieces_cycles"].values())
    if pieces is None:
        pieces = model.get("pieces") or len(model["pieces_cycles"])
    if args.draws < 1 or layer_cycles < 1 or pieces < 1:
        parser.error("--draws, --layer-cycles and --pieces must be positive")
    try:
        compiled(args.draws)
    except CompileError as error:
        sys.exit(f"multichip: {error}")
    if args.model == "7b":
        projection(layer_cycles, pieces)
    else:
        projection_70b(model, layer_cycles, pieces)


if __name__ == "__main__":
    main()
