"""cocotb testbench of the whole chip (``tsp_top``), in the shape of cocotb's matrix_multiplier
example: a :class:`HostDriver` drives the host port, a :class:`RunMonitor` measures the run,
the :class:`GoldenModel` predicts, and a :class:`Scoreboard` compares memories bit for bit and
the cycle count exactly. If the job names a ``memories_dir``, the RTL's memories after each
program are saved there as ``NAME.npy``, for checks against an independent reference.

The job (which images, the whole configuration, where to put the results) comes from the JSON
file named by ``OPENTSP_JOB``, written by :func:`opentsp.verif.runner.run_images`. One cocotb test
runs per image; the chip is reset through the host port between them, so one Verilated build
serves every program.

SECDED ECC (docs/architecture.md section 6b): a program's job entry may carry ``faults`` (dicts
of :class:`opentsp.sim.mem.Fault`'s fields); the driver programs them into the injection
registers, the golden model runs with the same faults, and the scoreboard also compares the ECC
counters, ``STATUS_ECC_ERROR`` and the first error's place (for every program: without faults
both must report nothing).

Sessions (docs/architecture.md section 10, "What a start keeps"): a job entry with ``runs`` (written
by :func:`opentsp.verif.runner.run_sessions`) is loaded once and then started ``runs`` times, the
host pressing only start between runs (and rewriting the queue words with ``reload_queues``);
every run's cycle count and ECC report and the final memories (with ``memories_each_run`` also
the memories after every run) are compared with the golden model's session
(:func:`opentsp.sim.session.run_session`), which runs first: a session it refuses
(:class:`~opentsp.sim.session.SessionError`) or cannot finish is the record's ``error`` and the
RTL does not run it.
"""

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from opentsp import host_protocol, hostmap
from opentsp.config import CONFIGS, Config
from opentsp.firmware.image import Image
from opentsp.sim.mem import Fault
from opentsp.sim.model import CycleLimitError
from opentsp.sim.model import run as golden_run
from opentsp.sim.session import SessionError, run_session
from opentsp.verif.scoreboard import Scoreboard


def _job():
    path = os.environ.get("OPENTSP_JOB")
    if not path:
        return {"config": CONFIGS["default"].to_json(), "programs": [], "results": None,
                "max_cycles": 0, "clock_ns": 10}
    with open(path) as file:
        return json.load(file)


JOB = _job()
#: The clock period of the simulation top (``tsp_sim``, :func:`opentsp.verif.runner.run_images`),
#: which generates its own clock.
CLOCK_NS = JOB["clock_ns"]


class HostDriver:
    """Performs the host protocol's transactions (:mod:`opentsp.host_protocol`) on the host-port
    pins: word writes and reads, program loading, fault injection, start and readback.

    The driver changes inputs just after a rising edge; the chip samples them at the next one.
    """

    def __init__(self, dut, config):
        self.dut = dut
        self.config = config
        self.shadow = None      # what the RTL memories hold, once known

    async def idle(self):
        self.dut.host_wen.value = 0
        self.dut.host_ren.value = 0
        self.dut.host_addr.value = 0
        self.dut.host_wdata.value = 0

    async def write_many(self, writes):
        """Write ``(addr, value)`` pairs, one per cycle."""
        for addr, data in writes:
            self.dut.host_addr.value = addr
            self.dut.host_wdata.value = data
            self.dut.host_wen.value = 1
            await RisingEdge(self.dut.clk)
        self.dut.host_wen.value = 0

    async def read_many(self, addrs):
        """Read addresses back to back, one per cycle: a read's data is valid (``host_rvalid``)
        in the cycle after its strobe, while the next read is strobed, so each read costs one
        cycle and two waits (the host-port traffic, not the model, is most of a short
        program's simulation time)."""
        values = []
        addrs = list(addrs)
        if not addrs:
            return values
        self.dut.host_addr.value = addrs[0]
        self.dut.host_ren.value = 1
        await RisingEdge(self.dut.clk)      # the edge that takes read 0
        for i, addr in enumerate(addrs):
            # the cycle after read i's strobe: strobe read i + 1 for the coming edge
            if i + 1 < len(addrs):
                self.dut.host_addr.value = addrs[i + 1]
            else:
                self.dut.host_ren.value = 0
            await ReadOnly()
            assert int(self.dut.host_rvalid.value) == 1, f"host_rvalid low after reading {addr:#x}"
            values.append(int(self.dut.host_rdata.value))
            await RisingEdge(self.dut.clk)
        return values

    async def read(self, addr):
        return (await self.read_many([addr]))[0]

    async def load(self, image):
        """Load ``image``, skipping the memory words the RTL holds already."""
        target = image.memories()
        await self.write_many(host_protocol.load_writes(
            self.config, image.queue_words(), target, holding=self.shadow))
        self.shadow = target

    async def program_faults(self, faults):
        """Write every injection entry: ``faults`` (:class:`Fault`, places checked against the
        configuration) first, the other entries off; read the entries back."""
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"faults must hold Fault objects, not {fault!r}")
            fault.check(self.config)
        writes = host_protocol.inject_writes(
            [(fault.cycle, hostmap.ecc_place(fault.mem, fault.word, fault.lane), fault.mask)
             for fault in faults])
        await self.write_many(writes)
        got = await self.read_many([addr for addr, _ in writes])
        assert got == [value for _, value in writes], f"injection entries read back as {got}"

    async def read_ecc(self):
        """The ECC registers: ``(corrected, detected, first)``, ``first`` as ``(mem, word, lane,
        cycle)`` or None when ``STATUS_ECC_ERROR`` is clear."""
        return host_protocol.ecc_from_reads(await self.read_many(host_protocol.ecc_reads()))

    async def start(self):
        await self.write_many([host_protocol.start_write()])

    async def reload_queues(self, image):
        """Write every queue entry of ``image`` again (the memories are left as they are)."""
        await self.write_many([(hostmap.queue_addr(queue, index), word)
                               for queue, words in enumerate(image.queue_words())
                               for index, word in enumerate(words)])

    async def read_memories(self):
        values = await self.read_many(host_protocol.memory_reads(self.config))
        memories = host_protocol.memories_from_reads(self.config, values)
        self.shadow = memories.copy()
        return memories


class RunTimeout(TimeoutError):
    """The program did not finish within the job's ``max_cycles``: a result, not a fault."""


class RunMonitor:
    """Waits for ``done`` without stepping the clock from Python, and measures the run: cycles
    from simulation time (independent of the chip's own counter) and wall-clock seconds."""

    def __init__(self, dut):
        self.dut = dut

    async def wait_done(self, max_cycles):
        start_ns = cocotb.simtime.get_sim_time("ns")
        wall = time.perf_counter()
        timeout = Timer(max_cycles * CLOCK_NS, "ns")
        fired = await First(RisingEdge(self.dut.done), timeout)
        seconds = time.perf_counter() - wall
        if fired is timeout:
            raise RunTimeout(f"program did not finish within {max_cycles} cycles")
        elapsed = round((cocotb.simtime.get_sim_time("ns") - start_ns) / CLOCK_NS)
        return elapsed, seconds


class GoldenModel:
    """The golden model's prediction for an image."""

    def __init__(self, image, max_cycles, faults=()):
        self.result = golden_run(image, max_cycles=max_cycles, faults=faults)


RESULTS = []
_SHADOW = {}    # what the RTL memories hold after the previous program, to skip rewrites


def _record(result):
    """Add ``result`` to the results file, replaced whole (the runner may read it meanwhile to
    show progress: it never sees half a file)."""
    RESULTS.append(result)
    if JOB.get("results"):
        path = Path(JOB["results"])
        partial = path.with_name(path.name + ".tmp")
        with open(partial, "w") as file:
            json.dump(RESULTS, file, indent=1)
        os.replace(partial, path)


async def _reset(dut, driver, config):
    """Reset the chip through ``rst`` and check the configuration it was built for."""
    await driver.idle()
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    config_id = await driver.read(hostmap.control_addr(hostmap.REG_CONFIG))
    assert config_id == hostmap.config_word(config), \
        f"the RTL was built for another configuration than {config.name!r}"


async def _run_once(dut, driver, max_cycles):
    """Start the loaded program and wait for ``done``; returns ``(cycles, seconds, ecc)``: the
    cycle counter, the free run's wall time and the ECC report."""
    await driver.start()
    elapsed, seconds = await RunMonitor(dut).wait_done(max_cycles)
    await RisingEdge(dut.clk)
    cycles = await driver.read(hostmap.control_addr(hostmap.REG_CYCLES))
    status = await driver.read(hostmap.control_addr(hostmap.REG_STATUS))
    assert status & hostmap.STATUS_DONE and not status & hostmap.STATUS_RUNNING, \
        f"status {status:#x} after done"
    # done rises at the edge that ends the last running cycle: counter and time agree.
    assert elapsed == cycles, f"done after {elapsed} cycles, counter says {cycles}"
    return cycles, seconds, await driver.read_ecc()


def _save(memories, name):
    """Save ``memories`` as ``NAME.npy`` in the job's ``memories_dir`` (if any); the path."""
    if not JOB.get("memories_dir"):
        return None
    path = Path(JOB["memories_dir"]) / f"{name}.npy"
    np.save(path, memories)
    return str(path)


async def _run_session(dut, driver, entry, image, record):
    """The session of ``entry`` (``runs`` starts after one load), compared with the golden
    model's session; fills ``record``. A session that the golden model refuses or cannot finish
    is the record's ``error``, and the RTL does not run it."""
    runs, max_cycles = entry["runs"], JOB["max_cycles"]
    each_run = entry.get("memories_each_run", False)
    expected = None
    try:
        if entry.get("golden", True):
            expected = run_session(image, runs, max_cycles=max_cycles,
                                   reload_queues=entry.get("reload_queues", False),
                                   allow_queue_changes=entry.get("allow_queue_changes", False),
                                   keep_memories=each_run)
    except (SessionError, CycleLimitError) as error:
        record["error"] = f"{type(error).__name__}: {error}"
        return
    cycles, seconds, ecc, run_memories = [], [], [], []
    for run in range(1, runs + 1):
        if run > 1 and entry.get("reload_queues"):
            await driver.reload_queues(image)
        try:
            counted, wall, report = await _run_once(dut, driver, max_cycles)
        except RunTimeout as error:
            raise RunTimeout(f"run {run} of {runs}: {error}") from None
        cycles.append(counted)
        seconds.append(wall)
        ecc.append(report)
        if each_run and run < runs:
            memories = await driver.read_memories()
            run_memories.append(memories)
            record["run_memories"].append(_save(memories, f"{record['name']}.run{run}"))
    memories = await driver.read_memories()
    record["memories"] = _save(memories, record["name"])
    if each_run:
        record["run_memories"].append(record["memories"])
        run_memories.append(memories)
    record.update(cycles_rtl=cycles, seconds=seconds,
                  ecc_rtl=[_ecc_dict(report) for report in ecc])
    if expected is None:            # the caller compares with a reference of its own
        record["match"] = None
        return
    scoreboard = Scoreboard(driver.config)
    record.update(
        cycles_golden=expected.cycles,
        ecc_golden=[_ecc_dict(report) for report in expected.ecc],
        match=scoreboard.compare_session(expected, memories, cycles, ecc,
                                         run_memories if each_run else None),
        mismatches=scoreboard.mismatches)


def _ecc_dict(ecc):
    corrected, detected, first = ecc
    return {"corrected": corrected, "detected": detected, "first": first}


@cocotb.test()
@cocotb.parametrize(program=[p["name"] for p in JOB["programs"]] or ["(none)"])
async def run_firmware(dut, program):
    """Load one image through the host port, run it (or run its session: ``runs`` in the job
    entry), compare with the golden model.

    The program's defined outcomes, a run that does not finish within ``max_cycles`` and a
    disagreement with the golden model (and for a session, one the golden model refuses or
    cannot finish), end the test quietly: the record carries them (``error``,
    ``mismatches``) to the caller, who reports them in one line. Anything else (a testbench
    or protocol fault) is recorded and raised, so cocotb shows where it happened.
    """
    if program == "(none)":
        raise AssertionError("no programs in the job (OPENTSP_JOB not set?)")
    entry = next(p for p in JOB["programs"] if p["name"] == program)
    config = Config.from_json(JOB["config"])
    max_cycles = JOB["max_cycles"]
    record = {"name": program, "cycles_rtl": None, "cycles_golden": None, "match": False,
              "mismatches": [], "seconds": None, "error": None, "memories": None}
    if entry.get("runs") is not None:
        record.update(runs=entry["runs"], run_memories=[] if entry.get("memories_each_run")
                      else None)
    try:
        image = Image.load(entry["image"], config)
        faults = [Fault.from_dict(fault).check(config) for fault in entry.get("faults", ())]
        driver = HostDriver(dut, config)
        # taken, not read: a program that fails half-way leaves the memories unknown
        driver.shadow = _SHADOW.pop("memories", None)
        await _reset(dut, driver, config)
        await driver.load(image)
        await driver.program_faults(faults)
        if entry.get("runs") is not None:
            await _run_session(dut, driver, entry, image, record)
            _SHADOW["memories"] = driver.shadow
            _record(record)
            if record["error"] or record["match"] is False:
                dut._log.info("%s: %s", program,
                              record["error"] or "; ".join(record["mismatches"]))
            return
        cycles, seconds, ecc = await _run_once(dut, driver, max_cycles)
        memories = await driver.read_memories()
        # Injected flips stay in the SRAM until rewritten: after faults, reload every word.
        _SHADOW["memories"] = None if faults else driver.shadow
        # the RTL's own memories, for checks beyond the model
        record["memories"] = _save(memories, program)
        expected = GoldenModel(image, max_cycles, faults).result
        record["cycles_golden"] = expected.cycles
        record["ecc_rtl"] = {"corrected": ecc[0], "detected": ecc[1], "first": ecc[2]}
        record["ecc_golden"] = {"corrected": expected.ecc_corrected,
                                "detected": expected.ecc_detected, "first": expected.ecc_first}
        scoreboard = Scoreboard(config)
        record.update(cycles_rtl=cycles, seconds=seconds,
                      match=scoreboard.compare(expected, memories, cycles, ecc),
                      mismatches=scoreboard.mismatches)
    except RunTimeout as error:     # a defined outcome: the record says it, no traceback
        record["error"] = f"TimeoutError: {error}"
        _record(record)
        dut._log.info("%s: %s", program, record["error"])
        return
    except Exception as error:      # recorded for the report, then re-raised for cocotb
        record["error"] = f"{type(error).__name__}: {error}"
        _record(record)
        raise
    _record(record)
    if not record["match"]:         # a defined outcome too: the caller reports the mismatches
        dut._log.info("%s: %s", program, "; ".join(record["mismatches"]))
