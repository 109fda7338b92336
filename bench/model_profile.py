"""Where the Verilated model spends its time: the C++ harness (no Python) built with Verilator's
``--prof-cfuncs`` (every C++ function named after the Verilog line it comes from), run on one
program under Linux ``perf``; the samples are summed per kind of module (every MEM slice
together, every SECDED codec together, ...) and per line of the RTL's Python source.

    .venv/bin/python bench/model_profile.py [--config default] [--lines 15]
                                            [--program firmware/examples/long_run.s]

Needs ``perf`` (Debian's ``linux-perf``). The profiled model is built in a temporary directory
(about half a minute for ``default``); ``--prof-cfuncs`` keeps Verilator from merging
functions, so this model runs several times slower than the one the tests use: the shares are
what counts, not the time.
"""

import argparse
import bisect
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from opentsp.app.cli import load_program
from opentsp.config import get_config
from opentsp.verif import harness, runner

ROOT = Path(__file__).resolve().parent.parent


def script_lines(config, image):
    """The harness script of one run of ``image`` (no faults)."""
    return harness.program_script(config, image, [], 10_000_000, 0)


def build(config, directory):
    """Build the profiling harness in ``directory``; returns (executable, Verilog path)."""
    runner.tool_env("verilator")
    source = directory / f"{runner.TOPLEVEL}.v"
    source.write_text(runner.chip_verilog(config, sources=True))
    command = ["verilator", "--cc", "--exe", "--build", "-j", "2", *runner.VERILATOR_ARGS,
               "--prof-cfuncs", "-Mdir", str(directory), "--top-module", runner.TOPLEVEL,
               "-o", "profiled", *runner.verilator_support_files(directory, runner.TOPLEVEL),
               str(source), str(harness.HARNESS_CPP)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"bench/model_profile.py: the Verilator build failed: "
                 f"{(result.stderr.strip().splitlines() or ['no message'])[-1]}")
    return directory / "profiled", source


def perf_samples(executable, script, directory):
    """``{symbol: percent}`` of a ``perf record`` of the harness running ``script``."""
    data = directory / "perf.data"
    subprocess.run(["perf", "record", "-q", "-F", "5000", "-o", str(data), str(executable),
                    str(script)], check=True, capture_output=True)
    report = subprocess.run(["perf", "report", "-i", str(data), "--sort", "sym", "--stdio"],
                            check=True, capture_output=True, text=True).stdout
    samples = {}
    for line in report.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+\[\.\]\s+(\S+)", line)
        if match:
            samples[match.group(2)] = samples.get(match.group(2), 0.0) + float(match.group(1))
    return samples


def module_kind(name):
    """``\\tsp_top.mem_e2.secded_1_0`` -> ``mem_*.secded``: instances of one kind together."""
    name = name.lstrip("\\").removeprefix(f"{runner.TOPLEVEL}.") or runner.TOPLEVEL
    name = re.sub(r"_\d+(_\d+)*$", "", name)
    return re.sub(r"^(mem|sxm|mxm|queue_mem|queue_sxm|queue_mxm)_[ew]\d*", r"\1_*", name)


def attribute(samples, verilog):
    """Sum the samples per module kind and per RTL source line (the ``src`` attribute nearest
    above the Verilog line a function is named after)."""
    lines = verilog.split("\n")
    starts, names = [], []
    for number, line in enumerate(lines, 1):
        if line.startswith("module "):
            starts.append(number)
            names.append(line.split()[1].split("(")[0])
    kinds, sources, other = collections.Counter(), collections.Counter(), collections.Counter()
    for symbol, percent in samples.items():
        match = re.search(r"__l(\d+)$", symbol)
        if not match:
            other[symbol] += percent
            continue
        number = int(match.group(1))
        kind = module_kind(names[bisect.bisect_right(starts, number) - 1])
        kinds[kind] += percent
        for above in range(number - 1, max(number - 8, 0), -1):
            found = re.findall(r'src = "([^"]+)"', lines[above])
            if found:
                where = Path(found[-1].split("|")[0]).name
                sources[f"{kind}  {re.sub(r'[.][0-9-]+$', '', where)}"] += percent
                break
    return kinds, sources, other


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default")
    parser.add_argument("--program", default=str(ROOT / "firmware/examples/long_run.s"))
    parser.add_argument("--lines", type=int, default=15, help="source lines to list")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        sys.exit("bench/model_profile.py: perf not found on PATH; install Debian's linux-perf")
    config = get_config(args.config)
    image = load_program(args.program, config)
    with tempfile.TemporaryDirectory(prefix="opentsp-profile-") as tmp:
        directory = Path(tmp)
        print(f"building the profiling harness of {config.name} ...", flush=True)
        executable, source = build(config, directory)
        script = directory / "script.txt"
        script.write_text("\n".join(script_lines(config, image)) + "\n")
        samples = perf_samples(executable, script, directory)
        kinds, sources, other = attribute(samples, source.read_text())
    print(f"{Path(args.program).name} on {config.name}: share of the model's time (perf "
          f"samples of the harness's run, per kind of module)")
    for kind, percent in kinds.most_common():
        if percent >= 0.1:
            print(f"  {percent:5.1f}%  {kind}")
    print(f"  {sum(other.values()):5.1f}%  outside the design's functions (Verilator's "
          f"scheduler and run-time library, the harness), most of it in:")
    for symbol, percent in other.most_common(5):
        print(f"           {percent:5.1f}%  {symbol}")
    print(f"the {args.lines} RTL source lines with the most samples:")
    for where, percent in sources.most_common(args.lines):
        print(f"  {percent:5.1f}%  {where}")


if __name__ == "__main__":
    main()
