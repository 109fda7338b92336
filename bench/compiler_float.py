"""Float matmuls against int8 ones of the same shape: the compiler's predicted cycles, MXM
utilisation and longest MEM queue for int8 and bfloat16 (float16 times the same), the table of
docs/compiler.md ("Floating-point matmuls cost more cycles").

    .venv/bin/python bench/compiler_float.py [--quick]

Shapes up to 8 are also run on the golden model (predicted = measured cycles, asserted). A
benchmark: it prints figures.
"""

import argparse

import ml_dtypes
import numpy as np

from opentsp.compiler import Graph, compile_graph, derive_config, predict
from opentsp.config import get_config

DEFAULT_PLUS = derive_config("default", "default+", mem_words=8192, queue_depth=65536)
ROWS = [("default", 4), ("default", 8), ("default", 16), (DEFAULT_PLUS, 32),
        (DEFAULT_PLUS, 64), ("groq", 320), ("groq", 640)]
TYPES = {"int8": np.int8, "bfloat16": ml_dtypes.bfloat16}


def _graph(size, dtype):
    rng = np.random.default_rng(size)
    w = rng.integers(-3, 4, (size, size)).astype(TYPES[dtype])
    g = Graph(f"gemm_{dtype}_{size}")
    g.output("y", g.matmul(g.input("x", (size, size), dtype), g.const("w", w), name="fc"))
    return g


def _figures(config, size, dtype):
    """``(cycles, utilisation, longest queue)``; golden-checked for sizes up to 8."""
    g = _graph(size, dtype)
    figures = predict(g, config)
    if size <= 8:
        x = np.random.default_rng(1).integers(-3, 4, (size, size)).astype(TYPES[dtype])
        _, measured = compile_graph(g, config).run_golden({"x": x})
        assert measured == figures["predicted_cycles"], (measured, figures)
    return figures["predicted_cycles"], figures["mxm_utilisation"], figures["queue_words"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip groq's 640^3")
    args = parser.parse_args(argv)
    print(f"{'config':<10}{'M x K x N':>16}{'int8 cycles':>13}{'util':>8}"
          f"{'bf16 cycles':>13}{'util':>8}{'queue int8 / bf16':>20}")
    for name, size in ROWS[:-1] if args.quick else ROWS:
        config = get_config(name) if isinstance(name, str) else name
        (c8, u8, q8), (cb, ub, qb) = (_figures(config, size, t) for t in TYPES)
        print(f"{config.name:<10}{f'{size} x {size} x {size}':>16}{c8:>13,}{u8:>8.1%}"
              f"{cb:>13,}{ub:>8.1%}{f'{q8:,} / {qb:,}':>20}", flush=True)


if __name__ == "__main__":
    main()
