"""MXM utilisation of the generated GEMM (firmware/gen_gemm.py) for a few shapes.

    .venv/bin/python bench/gemm.py

Cycles come from the golden model, which is cycle-exact with the RTL (verif/test_chip.py runs
the example shape on Verilator); each result is checked against numpy.matmul. Utilisation is
MACs done / (MXM peak x cycles of the whole program, loading and draining included), for one
MXM's peak and for both MXMs (the plan uses both).
"""

import numpy as np

from opentsp.config import get_config
from opentsp.firmware import gen_gemm
from opentsp.firmware.asm import assemble
from opentsp.firmware.checker import check
from opentsp.sim.model import run

SHAPES = [(8, 8, 4), (16, 8, 4), (32, 8, 4), (32, 16, 4)]


def main():
    config = get_config("default")
    peak = config.mxm_size ** 2
    print(f"config {config.name}: MXM {config.mxm_size}x{config.mxm_size}, two MXMs")
    print(f"{'M x K x N':<14}{'cycles':>8}{'MACs':>8}{'one MXM':>10}{'both MXMs':>11}")
    for shape in SHAPES:
        a, b = gen_gemm.operands(shape=shape)
        program = assemble(gen_gemm.generate(a, b, config), config)
        assert check(program) == []
        result = run(program.image)
        got = gen_gemm.result_from_memories(result.memories, config, shape)
        assert np.array_equal(got, a.astype(np.int64) @ b.astype(np.int64))
        m, k, n = shape
        macs = m * k * n
        print(f"{f'{m} x {k} x {n}':<14}{result.cycles:>8}{macs:>8}"
              f"{macs / (peak * result.cycles):>10.1%}{macs / (2 * peak * result.cycles):>11.1%}")


if __name__ == "__main__":
    main()
