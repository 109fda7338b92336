"""Figures of the multi-chip work (docs/multichip.md, "Commands and figures"):

    .venv/bin/python bench/multichip.py [--draws 100] [--layer-cycles 123947]

1. The compiler across chips on ``c2c``: a 4-chip pipeline of int8 layers and a layer split by
   columns over 4 fully connected chips; every chip's predicted cycles, and ``--draws`` runs of
   the multi-chip golden model with random link latencies and start times, each of which must
   measure the prediction and give numpy's result.
2. What a hop costs on ``groq``: moving Llama-2 7B's residual stream (1 x 4096 float32, padded
   to 4160: 13 column blocks x 4 byte planes = 52 frames) from one chip to the next with the
   link timing of section 7d, over 1 link and spread over 8.
3. The projection at batch 1: the layer's pieces (``make bench-llama``: each piece one
   ``groq`` chip, run one after the other; ``--layer-cycles`` is its measured layer, 123,947
   cycles at context 2048, and ``--pieces`` its 5 pieces) with a hop between consecutive pieces,
   32 layers, in tokens per second at 900 MHz; Groq's published figure is about 750.
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


def projection(layer_cycles, pieces):
    config = get_config("groq")
    clock = config.clock_mhz * 1e6
    frames = -(-4160 // config.mxm_size) * 4
    print(f"\ngroq links: a data frame {isa.c2c_frame_bytes(config, isa.FrameKind.DATA)} "
          f"bytes = {isa.c2c_frame_cycles(config, isa.FrameKind.DATA)} cycles at "
          f"{config.c2c_bytes} bytes a cycle; latency {config.c2c_latency} + up to "
          f"{config.c2c_window} (assumed, docs/architecture.md 7d)")
    for links in (1, 8):
        cycles = hop(config, frames, links)
        token = 32 * (layer_cycles + pieces * cycles)
        alone = clock / (32 * layer_cycles)
        print(f"  hop of the residual stream ({frames} frames) over {links} link"
              f"{'s' if links > 1 else ''}: {cycles:,} cycles = {cycles / clock * 1e6:.2f} us;"
              f" 32 layers of {pieces} pieces: {token:,} cycles a token = "
              f"{clock / token:,.0f} tokens/s (without the hops {alone:,.0f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--layer-cycles", type=int, default=123_947,
                        help="one Llama-2 7B layer on groq (make bench-llama; default: the "
                             "figure at b6daa37, context 2048)")
    parser.add_argument("--pieces", type=int, default=5, help="chips a layer is cut into")
    args = parser.parse_args(argv)
    if args.draws < 1 or args.layer_cycles < 1 or args.pieces < 1:
        parser.error("--draws, --layer-cycles and --pieces must be positive")
    try:
        compiled(args.draws)
    except CompileError as error:
        sys.exit(f"multichip: {error}")
    projection(args.layer_cycles, args.pieces)


if __name__ == "__main__":
    main()
