"""Simulation speed benchmark: one long program on the RTL under cocotb in Verilator (and, with
``--sim icarus``, in Icarus Verilog) and in Amaranth's own Python simulator, in one run; prints
the rates in cycles per second and their ratios.

    .venv/bin/python bench/speed.py [--config default] [--program firmware/examples/long_run.s]
                                    [--sim verilator] [--sim icarus]

This is a benchmark, not a test: nothing here asserts a speed. It does check that every
simulator ends with the golden model's cycle count (and the cocotb runs with its memories).
The rates are of the free run to ``done``; building the models is not counted.
"""

import argparse
import tempfile
import time
from pathlib import Path

from amaranth.sim import Simulator

from opentsp import hostmap
from opentsp.app.cli import load_program
from opentsp.config import get_config
from opentsp.hdl.top import Chip
from opentsp.sim.model import run as golden_run
from opentsp.verif.runner import SIMULATORS, run_images

ROOT = Path(__file__).resolve().parent.parent


def pysim_run(config, image):
    """Load ``image`` through the host port in Amaranth's simulator and run it to done.
    Returns (cycles from the status register, seconds of the free run)."""
    chip = Chip(config)
    sim = Simulator(chip)
    sim.add_clock(1e-8)
    out = {}

    async def testbench(ctx):
        async def write(addr, data):
            ctx.set(chip.host_addr, addr)
            ctx.set(chip.host_wdata, data)
            ctx.set(chip.host_wen, 1)
            await ctx.tick()
            ctx.set(chip.host_wen, 0)

        for queue, program in enumerate(image.queues):
            for index, instr in enumerate(program):
                await write(hostmap.queue_addr(queue, index), instr.encode())
        lps = config.lanes_per_superlane
        for (mem, word), data in image.data.items():
            for superlane in range(config.superlanes):
                for chunk in range(hostmap.chunks_per_superlane(config)):
                    lanes = bytes(data[superlane * lps + 4 * chunk:][:min(4, lps - 4 * chunk)])
                    await write(hostmap.mem_addr(mem, word, superlane, chunk),
                                int.from_bytes(lanes, "little"))
        await write(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_START)
        wall = time.perf_counter()
        await ctx.tick().until(chip.done)
        out["seconds"] = time.perf_counter() - wall
        ctx.set(chip.host_addr, hostmap.control_addr(hostmap.REG_CYCLES))
        ctx.set(chip.host_ren, 1)
        await ctx.tick()
        out["cycles"] = ctx.get(chip.host_rdata)

    sim.add_testbench(testbench)
    sim.run()
    return out["cycles"], out["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default")
    parser.add_argument("--program", default=str(ROOT / "firmware/examples/long_run.s"))
    parser.add_argument("--sim", action="append", choices=SIMULATORS,
                        help="a cocotb simulator to measure (repeatable; default verilator)")
    args = parser.parse_args()
    config = get_config(args.config)
    image = load_program(args.program, config)
    golden = golden_run(image)
    print(f"program {Path(args.program).name}, config {config.name}: {golden.cycles} cycles")

    rows = {}       # simulator: (cycles, seconds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.bin"
        image.save(path)
        for simulator in dict.fromkeys(args.sim or ["verilator"]):
            record = run_images(config, [("bench", path)], simulator=simulator,
                                max_cycles=golden.cycles * 2, log_level="WARNING")[0]
            assert record["match"] and record["cycles_rtl"] == golden.cycles, record
            rows[f"{simulator} (cocotb)"] = record["cycles_rtl"], record["seconds"]

    cycles, seconds = pysim_run(config, image)
    assert cycles == golden.cycles, (cycles, golden.cycles)
    rows["amaranth pysim"] = cycles, seconds

    print(f"{'simulator':<22}{'cycles':>10}{'seconds':>10}{'cycles/s':>14}")
    for name, (cycles, seconds) in rows.items():
        print(f"{name:<22}{cycles:>10}{seconds:>10.3f}{cycles / seconds:>14,.0f}")
    rates = {name.split()[0]: cycles / seconds for name, (cycles, seconds) in rows.items()}
    pysim = rates.pop("amaranth")
    for simulator, rate in rates.items():
        print(f"ratio {simulator} / pysim: {rate / pysim:,.1f}x")
    if len(rates) == 2:
        print(f"ratio verilator / icarus: {rates['verilator'] / rates['icarus']:,.1f}x")


if __name__ == "__main__":
    main()
