"""Simulation speed benchmark: one long program on the RTL in every way this project simulates it,
in one run, per configuration; prints the rates in cycles per second and their ratios, the
Verilog's size and generation time, and each model's build time.

    .venv/bin/python bench/speed.py [--config default --config medium]
                                    [--program firmware/examples/long_run.s]
                                    [--sim verilator --sim icarus] [--pysim-cycles 20000]
                                    [--baseline COMMIT] [--reuse-models]

The ways: Verilator under cocotb (the testbenches' model), Verilator driven from C++ without
Python (:mod:`opentsp.verif.harness`: the model's own speed; the difference is cocotb's cost),
Icarus Verilog under cocotb, and Amaranth's Python simulator (stopped after ``--pysim-cycles``
cycles of the same program: its rate is steady, and the whole program would take minutes).

``--baseline COMMIT`` checks out COMMIT in a git worktree, installs it beside this one and runs
ITS OWN program (``--program`` as it was then) on ITS OWN Verilator model under cocotb, in the
same run, so that a speed-up is a ratio measured side by side. Its model is kept in
``build/baseline-COMMIT`` for the next run.

This is a benchmark, not a test: nothing here asserts a speed. It does check that every run
ends with the golden model's cycle count (and the cocotb and harness runs with its memories).
The rates are of the free run to ``done``. The models are built afresh in a temporary
directory (that is the build time printed) unless ``--reuse-models`` is given.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from amaranth.sim import Simulator

from opentsp import hostmap
from opentsp.app.cli import load_program
from opentsp.config import get_config
from opentsp.hdl.top import Chip
from opentsp.hdl.verilog import generate
from opentsp.sim.model import run as golden_run
from opentsp.verif import harness, runner

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = Path("firmware/examples/long_run.s")

#: Run in the baseline's own installation: its assembler, its runner, its model.
BASELINE_DRIVER = """
import json, sys, tempfile
from pathlib import Path
try:
    from opentsp.app.cli import load_program
except ImportError:
    from opentsp.cli import load_program
from opentsp.config import get_config
from opentsp.verif.runner import run_images
config = get_config(sys.argv[1])
image = load_program(sys.argv[2], config)
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "baseline.bin"
    image.save(path)
    record = run_images(config, [("baseline", path)], simulator="verilator",
                        log_level="WARNING")[0]
print("BASELINE " + json.dumps({key: record[key] for key in
                                ("cycles_rtl", "cycles_golden", "match", "seconds")}))
"""


def pysim_run(config, image, max_cycles):
    """Load ``image`` through the host port in Amaranth's simulator and run it, to ``done`` or
    for ``max_cycles`` cycles, whichever comes first. Returns (cycles, seconds of the run,
    whether it reached ``done``)."""
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
        cycles = 0
        while cycles < max_cycles and not ctx.get(chip.done):
            await ctx.tick()
            cycles += 1
        out["seconds"] = time.perf_counter() - wall
        out["done"] = bool(ctx.get(chip.done))
        out["cycles"] = cycles

    sim.add_testbench(testbench)
    sim.run()
    return out["cycles"], out["seconds"], out["done"]


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def verilog_figures(config):
    """Seconds and bytes of ``opentsp verilog``'s text and of the purged text the models
    compile (:func:`opentsp.verif.runner.chip_verilog`)."""
    text, seconds = timed(generate, config)
    sim_text, sim_seconds = timed(runner.chip_verilog, config)
    return {"generate": (len(text), seconds), "simulation": (len(sim_text), sim_seconds)}


def build_models(config, simulators, reuse):
    """Build every model of ``config`` (timed); returns {name: seconds or None if reused}."""
    times = {}
    for simulator in simulators:
        times[f"{simulator} (cocotb)"] = timed(runner.build, config, simulator=simulator)[1]
    times["verilator (C++ harness)"] = timed(harness.build_harness, config)[1]
    if reuse:
        times = dict.fromkeys(times)
    return times


def run_all(config, image, golden, simulators, pysim_cycles, tmp):
    """{row name: (cycles, seconds)} of every way of simulating ``image``."""
    rows = {}
    path = Path(tmp) / f"bench-{config.name}.bin"
    image.save(path)
    for simulator in simulators:
        record = runner.run_images(config, [("bench", path)], simulator=simulator,
                                   max_cycles=golden.cycles * 2, log_level="WARNING")[0]
        assert record["match"] and record["cycles_rtl"] == golden.cycles, record
        rows[f"{simulator} (cocotb)"] = record["cycles_rtl"], record["seconds"]
    record = harness.run_harness(config, [("bench", path)], max_cycles=golden.cycles * 2,
                                 concurrent=False)[0]
    assert record["match"] and record["cycles_rtl"] == golden.cycles, record
    rows["verilator (C++ harness)"] = record["cycles_rtl"], record["seconds"]
    cycles, seconds, done = pysim_run(config, image, pysim_cycles)
    assert cycles == golden.cycles if done else cycles == pysim_cycles, (cycles, golden.cycles)
    rows["amaranth pysim" + ("" if done else f" ({cycles} cycles)")] = cycles, seconds
    return rows


def _lay_out_package(tree, site):
    """Make ``tree``'s package importable from ``site`` as setuptools would install it: the
    folders of its ``[tool.setuptools.package-dir]`` (``opentsp.hdl`` from ``hdl/``, ...)
    linked into place, without building anything."""
    folders = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    for package, folder in sorted(folders.items(), key=lambda item: item[0].count(".")):
        target = site.joinpath(*package.split("."))
        target.parent.mkdir(parents=True, exist_ok=True)
        if package == "opentsp":
            shutil.copytree(tree / folder, target, symlinks=True)
        else:
            target.symlink_to(tree / folder, target_is_directory=True)


def baseline_run(commit, config_name, program):
    """Run ``program`` (a path relative to the repository) of ``commit`` on that commit's own
    Verilator model under cocotb; returns (cycles, seconds) of its free run."""
    full = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{commit}^{{commit}}"],
                          capture_output=True, text=True)
    if full.returncode:
        raise SystemExit(f"bench/speed.py: --baseline {commit!r} is not a commit of this "
                         f"repository")
    short = full.stdout.strip()[:12]
    keep = ROOT / "build" / f"baseline-{short}"
    with tempfile.TemporaryDirectory(prefix="opentsp-baseline-") as tmp:
        tree, site = Path(tmp) / "tree", Path(tmp) / "site"
        added = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach",
                                str(tree), short], capture_output=True, text=True)
        if added.returncode:
            raise SystemExit(f"bench/speed.py: git worktree add {short} failed: "
                             f"{(added.stderr.strip().splitlines() or ['no message'])[-1]}")
        try:
            _lay_out_package(tree, site)
            env = {**os.environ, "PYTHONPATH": str(site), "OPENTSP_BUILD": str(keep)}
            result = subprocess.run([sys.executable, "-c", BASELINE_DRIVER, config_name,
                                     str(tree / program)], cwd=site, env=env,
                                    capture_output=True, text=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("BASELINE ")]
    if result.returncode or not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"bench/speed.py: the baseline {short} failed: {tail}")
    record = json.loads(lines[-1].split(" ", 1)[1])
    assert record["match"] and record["cycles_rtl"] == record["cycles_golden"], record
    return record["cycles_rtl"], record["seconds"]


def print_config(config, figures, builds, rows):
    print(f"\nconfig {config.name}: {config.superlanes} superlanes x "
          f"{config.lanes_per_superlane} lanes, {config.mem_slices} MEM slices per hemisphere "
          f"of {config.mem_words} words")
    for kind, (size, seconds) in figures.items():
        print(f"  Verilog ({kind}): {size / 1e6:.2f} MB in {seconds:.1f} s")
    for name, seconds in builds.items():
        print(f"  build {name}: " + ("reused" if seconds is None else f"{seconds:.1f} s"))
    print(f"  {'simulator':<38}{'cycles':>9}{'seconds':>10}{'cycles/s':>12}{'x pysim':>9}")
    pysim = next(cycles / seconds for name, (cycles, seconds) in rows.items()
                 if name.startswith("amaranth"))
    for name, (cycles, seconds) in rows.items():
        rate = cycles / seconds
        print(f"  {name:<38}{cycles:>9}{seconds:>10.3f}{rate:>12,.0f}{rate / pysim:>9,.1f}")
    rates = {name: cycles / seconds for name, (cycles, seconds) in rows.items()}
    cocotb, native = rates.get("verilator (cocotb)"), rates["verilator (C++ harness)"]
    if cocotb:
        print(f"  cocotb's cost in the free run: {native / cocotb - 1:.1%} of the model's time "
              f"(Verilator under cocotb {cocotb:,.0f}, from C++ {native:,.0f} cycles/s)")
    if cocotb and "icarus (cocotb)" in rates:
        print(f"  ratio verilator / icarus under cocotb: {cocotb / rates['icarus (cocotb)']:,.1f}x")
    for name, rate in rates.items():
        if name.startswith("baseline") and cocotb:
            print(f"  ratio verilator (cocotb) / {name}: {cocotb / rate:,.1f}x")


def main():
    # Amaranth's simulator writes the masks of wide signals (medium's stream bundles) as
    # decimal literals longer than Python's default limit for int-to-str conversions.
    sys.set_int_max_str_digits(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append",
                        help="a configuration to measure (repeatable; default: default, medium)")
    parser.add_argument("--program", default=str(PROGRAM),
                        help="the program, relative to the repository (default %(default)s)")
    parser.add_argument("--sim", action="append", choices=runner.SIMULATORS,
                        help="a cocotb simulator to measure (repeatable; default verilator)")
    parser.add_argument("--pysim-cycles", type=int, default=20_000,
                        help="stop Amaranth's simulator after this many cycles (%(default)s)")
    parser.add_argument("--baseline", metavar="COMMIT",
                        help="also run COMMIT's own model on its own program (config default)")
    parser.add_argument("--reuse-models", action="store_true",
                        help="use the models in build/ (built if missing), without build times")
    args = parser.parse_args()
    simulators = list(dict.fromkeys(args.sim or ["verilator"]))
    with tempfile.TemporaryDirectory(prefix="opentsp-bench-") as tmp:
        if not args.reuse_models:
            runner.BUILD_ROOT = Path(tmp) / "build"     # fresh builds: their time is measured
        for name in dict.fromkeys(args.config or ["default", "medium"]):
            config = get_config(name)
            image = load_program(ROOT / args.program, config)
            golden = golden_run(image)
            print(f"\nprogram {Path(args.program).name} on {name}: {golden.cycles} cycles",
                  flush=True)
            figures = verilog_figures(config)
            builds = build_models(config, simulators, args.reuse_models)
            rows = run_all(config, image, golden, simulators, args.pysim_cycles, tmp)
            if args.baseline and name == "default":
                rows[f"baseline {args.baseline} (cocotb)"] = baseline_run(
                    args.baseline, name, args.program)
            print_config(config, figures, builds, rows)


if __name__ == "__main__":
    main()
