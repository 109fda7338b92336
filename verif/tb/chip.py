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
from opentsp.sim.model import run as golden_run
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


@cocotb.test()
@cocotb.parametrize(program=[p["name"] for p in JOB["programs"]] or ["(none)"])
async def run_firmware(dut, program):
    """Load one image through the host port, run it, compare with the golden model.

    The program's defined outcomes, a run that does not finish within ``max_cycles`` and a
    disagreement with the golden model, end the test quietly: the record carries them
    (``error``, ``mismatches``) to the caller, who reports them in one line. Anything else
    (a testbench or protocol fault) is recorded and raised, so cocotb shows where it happened.
    """
    if program == "(none)":
        raise AssertionError("no programs in the job (OPENTSP_JOB not set?)")
    entry = next(p for p in JOB["programs"] if p["name"] == program)
    config = Config.from_json(JOB["config"])
    max_cycles = JOB["max_cycles"]
    record = {"name": program, "cycles_rtl": None, "cycles_golden": None, "match": False,
              "mismatches": [], "seconds": None, "error": None, "memories": None}
    try:
        image = Image.load(entry["image"], config)
        faults = [Fault.from_dict(fault).check(config) for fault in entry.get("faults", ())]
        driver = HostDriver(dut, config)
        # taken, not read: a program that fails half-way leaves the memories unknown
        driver.shadow = _SHADOW.pop("memories", None)
        await driver.idle()
        dut.rst.value = 1
        await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        config_id = await driver.read(hostmap.control_addr(hostmap.REG_CONFIG))
        assert config_id == hostmap.config_word(config), \
            f"the RTL was built for another configuration than {config.name!r}"
        await driver.load(image)
        await driver.program_faults(faults)
        await driver.start()
        elapsed, seconds = await RunMonitor(dut).wait_done(max_cycles)
        await RisingEdge(dut.clk)
        cycles = await driver.read(hostmap.control_addr(hostmap.REG_CYCLES))
        status = await driver.read(hostmap.control_addr(hostmap.REG_STATUS))
        assert status & hostmap.STATUS_DONE and not status & hostmap.STATUS_RUNNING, \
            f"status {status:#x} after done"
        # done rises at the edge that ends the last running cycle: counter and time agree.
        assert elapsed == cycles, f"done after {elapsed} cycles, counter says {cycles}"
        ecc = await driver.read_ecc()
        memories = await driver.read_memories()
        # Injected flips stay in the SRAM until rewritten: after faults, reload every word.
        _SHADOW["memories"] = None if faults else driver.shadow
        if JOB.get("memories_dir"):     # the RTL's own memories, for checks beyond the model
            path = Path(JOB["memories_dir"]) / f"{program}.npy"
            np.save(path, memories)
            record["memories"] = str(path)
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
