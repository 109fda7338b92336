"""Run firmware images on the Verilated chip driven from C++ alone: no Python and no VPI in the
simulation loop (docs/verification.md, "The C++ harness").

:func:`run_harness` writes the host-port transactions of every image (:mod:`opentsp.host_protocol`:
reset, configuration check, load, fault injection, start, run to ``done``, readback) as a script
for ``verif/tb/tsp_harness.cpp``, a ``main`` compiled with the Verilated ``tsp_top``, and
compares what it read back with the golden model, which runs meanwhile in this process. The
records are those of :func:`opentsp.verif.runner.run_images`; the checks are the cocotb
testbench's (:mod:`opentsp.verif.tb.chip`), with the same :class:`Scoreboard`.

The harness measures the model's own speed (``bench/speed.py`` sets it beside cocotb's) and
runs large batches of programs where a cocotb round trip per host word would dominate.

:func:`run_harness_session` runs one image as a session (docs/architecture.md section 10: one
load, then ``runs`` starts with the memories carried over) with the same script commands, and
compares it with the golden model's session (:func:`opentsp.sim.session.run_session`).
"""

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from opentsp import host_protocol, hostmap
from opentsp.config import get_config
from opentsp.firmware.image import Image
from opentsp.sim.model import CycleLimitError
from opentsp.sim.model import run as golden_run
from opentsp.sim.session import SessionError, check_runs, run_session
from opentsp.verif import runner
from opentsp.verif.scoreboard import Scoreboard

__all__ = ["HARNESS_CPP", "HARNESS_EXE", "build_harness", "program_script", "run_harness",
           "session_script", "run_harness_session", "HarnessError"]

#: The C++ ``main`` that drives the model (its script format is in its header comment).
HARNESS_CPP = Path(__file__).resolve().parent / "tb" / "tsp_harness.cpp"
HARNESS_EXE = "tsp_harness"


class HarnessError(RuntimeError):
    """The harness itself failed (a malformed script, a host-port protocol fault)."""


def _verilate(build_dir):
    """The step that compiles the harness: Verilator, then make, in ``build_dir``."""
    def compile_model(source, log):
        jobs = str(os.cpu_count() or 1)
        top = runner.TOPLEVEL
        command = ["verilator", "--cc", "--exe", "--build", "-j", jobs, *runner.VERILATOR_ARGS,
                   "-Mdir", str(build_dir), "--top-module", top, "-o", HARNESS_EXE,
                   *runner.verilator_support_files(build_dir, top), str(source), str(HARNESS_CPP)]
        with open(log, "w") as out:
            status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
        if status:
            raise RuntimeError(f"verilator exited with status {status}")
    return compile_model


def build_harness(config):
    """Build the harness of ``config``'s chip unless an identical build exists (its stamp holds
    :func:`opentsp.verif.runner.model_key`, the harness source among the options). The Verilog
    is the one the cocotb models compile (:func:`opentsp.verif.runner.chip_verilog`). Returns
    the build directory, ``BUILD_ROOT/harness-<config>``."""
    config = get_config(config)
    runner.tool_env("verilator")
    build_dir = runner.BUILD_ROOT / f"harness-{config.name}"
    top = runner.TOPLEVEL
    key = runner.model_key(config, top, "harness", False, options=[HARNESS_CPP.read_text()])
    return runner.build_model(lambda: runner.chip_verilog(config), key, top, build_dir,
                              "harness", False, what=f"{top} for config {config.name}",
                              compile_model=_verilate(build_dir))


def _injections(faults):
    """The writes of every fault-injection entry: ``faults`` first, the others off."""
    return host_protocol.inject_writes(
        [(fault.cycle, hostmap.ecc_place(fault.mem, fault.word, fault.lane), fault.mask)
         for fault in faults])


def _writes(writes):
    return [f"w {addr:x} {value:x}" for addr, value in writes]


def _reads(addrs):
    return "r" + "".join(f" {addr:x}" for addr in addrs)


def program_script(config, image, faults, max_cycles, tag):
    """The script lines of one program: reset, read the configuration word, load every queue
    entry and memory word, program and read back the fault-injection entries, start, run to
    ``done`` (at most ``max_cycles``), read the cycle counter and status, the ECC registers and
    every memory word; ``end tag``."""
    injections = _injections(faults)
    return [
        "reset",
        _reads([hostmap.control_addr(hostmap.REG_CONFIG)]),
        *_writes(host_protocol.load_writes(config, image.queue_words(), image.memories())),
        *_writes(injections),
        _reads([addr for addr, _ in injections]),
        *_writes([host_protocol.start_write()]),
        f"run {max_cycles}",
        _reads([hostmap.control_addr(hostmap.REG_CYCLES),
                hostmap.control_addr(hostmap.REG_STATUS)]),
        _reads(host_protocol.ecc_reads()),
        _reads(host_protocol.memory_reads(config)),
        f"end {tag}",
    ]


def _values(line, count=None):
    words = line.split()
    if not words or words[0] != "r" or (count is not None and len(words) != count + 1):
        raise HarnessError(f"tsp_harness: expected {count} read values, got {line!r}")
    return [int(word, 16) for word in words[1:]]


def _program_output(lines):
    """Split the harness's output into one list of lines per program (ending at ``end``)."""
    programs, current = [], []
    for line in lines:
        current.append(line)
        if line.startswith("end "):
            programs.append(current)
            current = []
    return programs


def _check_run(config, injections, output, max_cycles):
    """The RTL's side of one program from its output lines: (cycles, seconds, ecc, memories),
    or raises AssertionError for a testbench check that failed, TimeoutError for a timeout."""
    config_line, inject_line, run_line, counters, ecc_line, memory_line, _ = output
    config_word = _values(config_line, 1)[0]
    assert config_word == hostmap.config_word(config), \
        f"the RTL was built for another configuration than {config.name!r}"
    got = _values(inject_line, len(injections))
    assert got == [value for _, value in injections], f"injection entries read back as {got}"
    run = run_line.split()
    if run[1] == "timeout":
        raise TimeoutError(f"program did not finish within {max_cycles} cycles")
    elapsed, seconds = int(run[1]), float(run[2])
    cycles, status = _values(counters, 2)
    assert status & hostmap.STATUS_DONE and not status & hostmap.STATUS_RUNNING, \
        f"status {status:#x} after done"
    assert elapsed == cycles, f"done after {elapsed} cycles, counter says {cycles}"
    ecc = host_protocol.ecc_from_reads(_values(ecc_line, len(host_protocol.ecc_reads())))
    memories = host_protocol.memories_from_reads(config, _values(memory_line))
    return cycles, seconds, ecc, memories


def _golden(image, max_cycles, faults):
    """The golden model's result, or the CycleLimitError of a program it did not finish."""
    try:
        return golden_run(image, max_cycles=max_cycles, faults=faults)
    except CycleLimitError as error:
        return error


def _empty_record(name):
    return {"name": name, "cycles_rtl": None, "cycles_golden": None, "match": False,
            "mismatches": [], "seconds": None, "error": None, "memories": None,
            "simulator": "harness"}


def _run_script(build_dir, script, meanwhile):
    """Run the harness of ``build_dir`` on ``script`` (lines) and ``meanwhile()`` in this
    process while it runs; returns (the harness's output, what ``meanwhile`` returned)."""
    with tempfile.TemporaryDirectory(prefix="opentsp-harness-") as tmp:
        script_path = Path(tmp) / "script.txt"
        script_path.write_text("\n".join(script) + "\n")
        with subprocess.Popen([str(build_dir / HARNESS_EXE), str(script_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            result = meanwhile()
            stdout, stderr = proc.communicate()
    if proc.returncode:
        message = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
        raise HarnessError(f"{build_dir / HARNESS_EXE} exited with status {proc.returncode}: "
                           f"{message}")
    return stdout, result


def _record(config, name, injections, output, expected, max_cycles, memories_dir):
    record = _empty_record(name)
    try:
        cycles, seconds, ecc, memories = _check_run(config, injections, output, max_cycles)
    except (AssertionError, TimeoutError) as error:
        record["error"] = f"{type(error).__name__}: {error}"
        return record
    if isinstance(expected, CycleLimitError):      # the RTL finished, the golden model not
        record.update(cycles_rtl=cycles, seconds=seconds,
                      mismatches=[f"cycles: RTL {cycles}, golden model: {expected}"])
        return record
    record["cycles_golden"] = expected.cycles
    if memories_dir:
        path = Path(memories_dir) / f"{name}.npy"
        np.save(path, memories)
        record["memories"] = str(path)
    scoreboard = Scoreboard(config)
    record.update(cycles_rtl=cycles, seconds=seconds,
                  match=scoreboard.compare(expected, memories, cycles, ecc),
                  mismatches=scoreboard.mismatches,
                  ecc_rtl={"corrected": ecc[0], "detected": ecc[1], "first": ecc[2]},
                  ecc_golden={"corrected": expected.ecc_corrected,
                              "detected": expected.ecc_detected, "first": expected.ecc_first})
    return record


def run_harness(config, programs, *, max_cycles=1_000_000, memories_dir=None, concurrent=True):
    """Run images on the Verilated chip from C++ and compare each with the golden model.

    Parameters
    ----------
    config : Config or str
        The configuration, or the name of one of ``opentsp.config.CONFIGS``.
    programs : list of (name, path) or (name, path, faults)
        Firmware images (``.bin``) built for ``config``, as for
        :func:`opentsp.verif.runner.run_images`.
    max_cycles : int
        A program still running after this many cycles ends with a timeout record.
    memories_dir : path or None
        If given, each program's memories read back from the RTL are saved there as
        ``NAME.npy``.
    concurrent : bool
        Run the golden model while the harness runs (on another core), or only after it, so
        that the harness's time is measured alone (``bench/speed.py``).

    Returns
    -------
    list of dict
        One record per program, with the fields of :func:`opentsp.verif.runner.run_images`
        (``seconds`` is the free run's wall time in the harness) and ``simulator``
        ``"harness"``. A failed testbench check (another configuration's model, a status
        after ``done`` that is not done) is the record's ``error``, as is a timeout.
    """
    config = get_config(config)
    build_dir = build_harness(config)
    runs, script = [], []       # runs: (name, image, faults, script error or None)
    for name, path, *rest in programs:
        image = Image.load(path, config)
        faults = list(rest[0]) if rest else []
        try:        # as in the cocotb testbench, bad faults are this program's error
            for fault in faults:
                fault.check(config)
            lines = program_script(config, image, faults, max_cycles, len(runs))
        except (TypeError, ValueError) as error:
            runs.append((name, image, faults, f"{type(error).__name__}: {error}"))
            continue
        runs.append((name, image, faults, None))
        script += lines
    def predict():
        return [None if error else _golden(image, max_cycles, faults)
                for _, image, faults, error in runs]

    text, expected = _run_script(build_dir, script, predict if concurrent else list)
    if not concurrent:
        expected = predict()
    outputs = iter(_program_output(text.splitlines()))
    records = []
    for (name, _, faults, error), golden in zip(runs, expected, strict=True):
        if error:
            records.append({**_empty_record(name), "error": error})
            continue
        output = next(outputs, None)
        if output is None:
            raise HarnessError(f"tsp_harness: no report of program {name!r}")
        records.append(_record(config, name, _injections(faults), output, golden, max_cycles,
                               memories_dir))
    return records


def session_script(config, image, runs, max_cycles, tag, *, reload_queues=False,
                   memories_each_run=False):
    """The script lines of a session: reset, read the configuration word, load every queue entry
    and memory word; then ``runs`` times: (with ``reload_queues``, from the second run on)
    write every queue entry again, start, run to ``done``, read the cycle counter and status and
    the ECC registers (with ``memories_each_run``, every memory word too, but after the last
    run); finally read every memory word; ``end tag``."""
    reload = [(hostmap.queue_addr(queue, index), word)
              for queue, words in enumerate(image.queue_words())
              for index, word in enumerate(words)]
    lines = ["reset", _reads([hostmap.control_addr(hostmap.REG_CONFIG)]),
             *_writes(host_protocol.load_writes(config, image.queue_words(), image.memories()))]
    for run in range(1, runs + 1):
        if run > 1 and reload_queues:
            lines += _writes(reload)
        lines += [*_writes([host_protocol.start_write()]), f"run {max_cycles}",
                  _reads([hostmap.control_addr(hostmap.REG_CYCLES),
                          hostmap.control_addr(hostmap.REG_STATUS)]),
                  _reads(host_protocol.ecc_reads())]
        if memories_each_run and run < runs:
            lines.append(_reads(host_protocol.memory_reads(config)))
    return [*lines, _reads(host_protocol.memory_reads(config)), f"end {tag}"]


def _check_session(config, output, runs, max_cycles, each_run):
    """The RTL's side of a session from its output lines: per run ``(cycles, seconds, ecc)``,
    the memories after every run but the last (with ``each_run``) and after the last; raises
    AssertionError for a testbench check that failed, TimeoutError for a timeout."""
    output = iter(output)

    def line():
        text = next(output, None)
        if text is None:
            raise HarnessError("tsp_harness: the session's report ends early")
        return text

    config_word = _values(line(), 1)[0]
    assert config_word == hostmap.config_word(config), \
        f"the RTL was built for another configuration than {config.name!r}"
    measured, run_memories = [], []
    for run in range(1, runs + 1):
        words = line().split()
        if words[1] == "timeout":
            raise TimeoutError(f"run {run} of {runs}: program did not finish within "
                               f"{max_cycles} cycles")
        elapsed, seconds = int(words[1]), float(words[2])
        cycles, status = _values(line(), 2)
        assert status & hostmap.STATUS_DONE and not status & hostmap.STATUS_RUNNING, \
            f"run {run}: status {status:#x} after done"
        assert elapsed == cycles, f"run {run}: done after {elapsed} cycles, counter says {cycles}"
        ecc = host_protocol.ecc_from_reads(_values(line(), len(host_protocol.ecc_reads())))
        measured.append((cycles, seconds, ecc))
        if each_run and run < runs:
            run_memories.append(host_protocol.memories_from_reads(config, _values(line())))
    memories = host_protocol.memories_from_reads(config, _values(line()))
    return measured, run_memories, memories


def _save_memories(memories_dir, name, memories):
    if not memories_dir:
        return None
    path = Path(memories_dir) / f"{name}.npy"
    np.save(path, memories)
    return str(path)


def run_harness_session(config, image_path, runs, *, name=None, reload_queues=False,
                        allow_queue_changes=False, memories_each_run=False,
                        max_cycles=1_000_000, memories_dir=None):
    """Run one image as a session of ``runs`` starts on the Verilated chip from C++ and compare
    it with the golden model's session, which runs meanwhile in this process.

    The parameters are those of :func:`opentsp.verif.runner.run_session` (``name`` defaults to
    the file's stem); the record is the one it returns, with ``simulator`` ``"harness"``
    (``seconds``: each run's free run in the harness). A session the golden model refuses
    (``SessionError``) or cannot finish (``CycleLimitError``) is the record's ``error``.

    Raises
    ------
    TypeError, ValueError
        A ``runs`` that is not an integer of at least 1 (before anything is built).
    opentsp.firmware.image.ImageError
        An image that ``config`` refuses (built for another configuration, corrupted).
    """
    config = get_config(config)
    runs = check_runs(runs)
    image = Image.load(image_path, config)
    name = Path(image_path).stem if name is None else name
    build_dir = build_harness(config)
    script = session_script(config, image, runs, max_cycles, 0, reload_queues=reload_queues,
                            memories_each_run=memories_each_run)

    def predict():
        try:
            return run_session(image, runs, max_cycles=max_cycles, reload_queues=reload_queues,
                               allow_queue_changes=allow_queue_changes,
                               keep_memories=memories_each_run)
        except (SessionError, CycleLimitError) as error:
            return error

    text, expected = _run_script(build_dir, script, predict)
    record = {**_empty_record(name), "runs": runs,
              "run_memories": [] if memories_each_run else None}
    if isinstance(expected, Exception):
        record["error"] = f"{type(expected).__name__}: {expected}"
        return record
    try:
        measured, run_memories, memories = _check_session(
            config, text.splitlines(), runs, max_cycles, memories_each_run)
    except (AssertionError, TimeoutError) as error:
        record["error"] = f"{type(error).__name__}: {error}"
        return record
    cycles, seconds, ecc = (list(column) for column in zip(*measured, strict=True))
    if memories_each_run:
        run_memories.append(memories)
        record["run_memories"] = [_save_memories(memories_dir, f"{name}.run{run}", memories)
                                  for run, memories in enumerate(run_memories[:-1], start=1)]
    record["memories"] = _save_memories(memories_dir, name, memories)
    if memories_each_run:
        record["run_memories"].append(record["memories"])
    scoreboard = Scoreboard(config)
    record.update(
        cycles_rtl=cycles, cycles_golden=expected.cycles, seconds=seconds,
        match=scoreboard.compare_session(expected, memories, cycles, ecc,
                                         run_memories if memories_each_run else None),
        mismatches=scoreboard.mismatches,
        ecc_rtl=[dict(zip(("corrected", "detected", "first"), report, strict=True))
                 for report in ecc],
        ecc_golden=[dict(zip(("corrected", "detected", "first"), report, strict=True))
                    for report in expected.ecc])
    return record
