"""cocotb testbench of several chips cabled by links (``tsp_system``,
:mod:`opentsp.verif.system_runner`), against the multi-chip golden model.

The job (``OPENTSP_JOB``, written by :func:`opentsp.verif.system_runner.run_system_rtl`) names
the configuration, the topology (its cables), one image per chip and the draws (latencies,
starts, faults). Per draw:

* :class:`CableDriver` sets every rx port's source (the topology) and every sending port's
  latency, and flips the faults' bits in flight (the XOR mask for one cycle: the cycle in which
  the golden model has the beat leave, :class:`GoldenSystem`);
* each chip's :class:`~opentsp.verif.tb.chip.HostDriver` (on :class:`ChipPins`, the chip's
  host port) loads its image, writes ``CTRL_START`` in the draw's cycle and reads the registers
  and memories back;
* a :class:`DoneMonitor` per chip waits for ``done`` and takes the global cycle it rose in;
* :class:`SystemScoreboard` compares each chip with :class:`GoldenSystem`'s result.

Global cycle 0 is the cycle after the one in which the first start write is driven (a chip
started in global cycle ``s`` runs its cycle 0 in global cycle ``s``), as in
:mod:`opentsp.sim.system`.
"""

from collections import defaultdict
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge, Timer

from opentsp import hostmap
from opentsp.config import Config
from opentsp.firmware.image import Image
from opentsp.hdl.top import link_port_prefix
from opentsp.sim.system import LinkFault, System
from opentsp.topology import SIDES, Cable, Port, Topology
from opentsp.verif.scoreboard import Scoreboard
from opentsp.verif.system_runner import link_port_index, port_from_json
from opentsp.verif.tb.chip import JOB, HostDriver
from opentsp.verif.tb.chip import _record as record_result

CLOCK_NS = JOB["clock_ns"]
#: The registers read after a run, in this order.
REGISTERS = (hostmap.REG_CYCLES, hostmap.REG_STATUS, hostmap.REG_C2C_CRC,
             hostmap.REG_C2C_ERRORS, hostmap.REG_C2C_FIRST, hostmap.REG_C2C_FIRST_CYCLE)


class ChipPins:
    """Chip ``chip``'s host port among ``tsp_system``'s ports, under the names
    :class:`~opentsp.verif.tb.chip.HostDriver` uses (``host_addr``, ..., ``clk``)."""

    def __init__(self, dut, chip):
        self.clk = dut.clk
        for name in ("host_addr", "host_wdata", "host_wen", "host_ren", "host_rdata",
                     "host_rvalid", "done", "running"):
            setattr(self, name, getattr(dut, f"c{chip}_{name}"))


class GoldenSystem(System):
    """The golden model's run, which also notes the global cycle in which the first beat of
    every frame leaves its port (``departures[port]``, frame by frame)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.departures = defaultdict(list)

    def _carry(self, chip, model, g):
        for frame in model.c2c_log.outbox:
            self.departures[Port(chip, frame.side, frame.link)].append(
                g + frame.leaves - (model.cycle - 1))
        super()._carry(chip, model, g)


def expected_registers(result):
    """The six :data:`REGISTERS` as the host reads them after the golden ``result``."""
    status = hostmap.STATUS_DONE | (hostmap.STATUS_C2C_ERROR if result.c2c_first else 0)
    kind, side, link, cycle = result.c2c_first or (0, 0, 0, 0)
    first = hostmap.c2c_first(kind, side, link) if result.c2c_first else 0
    return [result.cycles, status, result.c2c_crc, result.c2c_errors, first, cycle]


class CableDriver:
    """Drives the cables' controls: sources, latencies and the flips of bits in flight."""

    def __init__(self, dut, topology):
        self.dut, self.topology, self.config = dut, topology, topology.config

    def _control(self, port, what):
        prefix = link_port_prefix(port.side, port.link)
        return getattr(self.dut, f"c{port.chip}_{prefix}{what}")

    def all_ports(self):
        """Every link port of every chip, cabled or not."""
        return [Port(chip, side, link) for chip in range(self.topology.chips)
                for side in SIDES for link in range(self.config.c2c_links)]

    def cable(self, latencies):
        """Every rx port fed by its peer's line (or by nothing), every line's latency, no
        flips."""
        for port in self.all_ports():
            peer = self.topology.peer(port)
            self._control(port, "source").value = (
                0 if peer is None else 1 + link_port_index(self.config, peer))
            self._control(port, "latency").value = latencies.get(port, self.config.c2c_latency)
            self._control(port, "flip").value = 0

    def flips(self, golden, faults):
        """``{(port, global cycle): mask}``: the faults' bits on the beats that leave then."""
        width = 8 * self.config.c2c_bytes
        masks = defaultdict(int)
        for fault in faults:
            sent = golden.departures.get(fault.port, [])
            if fault.frame < len(sent):
                cycle = sent[fault.frame] + fault.bit // width
                masks[fault.port, cycle] |= 1 << fault.bit % width
        return masks

    async def flip(self, port, delay, mask):
        """XOR ``mask`` into what ``port`` sends in the ``delay``-th cycle from now."""
        if delay:
            await ClockCycles(self.dut.clk, delay)
        self._control(port, "flip").value = mask
        await RisingEdge(self.dut.clk)
        self._control(port, "flip").value = 0


class DoneMonitor:
    """Waits for one chip's ``done`` after its start; the global cycle it rose in (the golden
    model's ``finished``: the cycle after the chip's last)."""

    def __init__(self, dut, pins):
        self.dut, self.pins = dut, pins

    async def wait(self, start, base_ns, max_cycles):
        await ClockCycles(self.dut.clk, start + 1)      # the start write has been taken
        await ReadOnly()
        assert int(self.pins.done.value) == 0, "done still high after the start"
        timeout = Timer(max_cycles * CLOCK_NS, "ns")
        if await First(RisingEdge(self.pins.done), timeout) is timeout:
            raise TimeoutError(f"not done within {max_cycles} cycles of its start")
        return round((cocotb.simtime.get_sim_time("ns") - base_ns) / CLOCK_NS)


class SystemScoreboard:
    """Compares one chip's run with the golden model's: registers, finishing cycle, ECC and
    memories (:class:`~opentsp.verif.scoreboard.Scoreboard`)."""

    def __init__(self, config):
        self.config = config

    def compare(self, chip, result, finished, rtl):
        scoreboard = Scoreboard(self.config)
        scoreboard.compare(result, rtl["memories"], rtl["registers"][0], rtl["ecc"])
        mismatches = [f"chip {chip}: {text}" for text in scoreboard.mismatches]
        want = expected_registers(result)
        for reg, got, value in zip(REGISTERS, rtl["registers"], want, strict=True):
            if got != value:
                mismatches.append(f"chip {chip}: register {reg:#x}: RTL {got:#x}, golden "
                                  f"{value:#x}")
        if rtl["finished"] != finished:
            mismatches.append(f"chip {chip}: done in global cycle {rtl['finished']}, golden "
                              f"{finished}")
        return want, mismatches


def _topology(config):
    cables = [Cable(port_from_json(a), port_from_json(b)) for a, b in JOB["cables"]]
    return Topology(config, JOB["chips"], cables, JOB["name"])


def _draw(draw):
    latencies = {port_from_json(values[:3]): values[3] for values in draw["latencies"]}
    faults = [LinkFault(port_from_json(values[:3]), values[3], values[4])
              for values in draw["faults"]]
    return latencies, draw["starts"], faults


async def _reset(dut, drivers, config):
    for driver in drivers:
        await driver.idle()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    for driver in drivers:
        config_id = await driver.read(hostmap.control_addr(hostmap.REG_CONFIG))
        assert config_id == hostmap.config_word(config), "built for another configuration"


async def _all(coroutines):
    """Run ``coroutines`` at once; their results in order."""
    tasks = [cocotb.start_soon(coroutine) for coroutine in coroutines]
    return [await task for task in tasks]


async def _readback(driver):
    registers = await driver.read_many([hostmap.control_addr(reg) for reg in REGISTERS])
    ecc = await driver.read_ecc()
    return {"registers": registers, "ecc": ecc, "memories": await driver.read_memories()}


async def _run_draw(dut, drivers, cables, images, index, draw):
    """One draw on the loaded chips; the record."""
    config, topology = cables.config, cables.topology
    latencies, starts, faults = draw
    golden = GoldenSystem(images, topology, latencies=latencies, starts=starts, faults=faults,
                          max_cycles=JOB["max_cycles"] + max(starts))
    expected = golden.run()
    await _all([driver.load(image) for driver, image in zip(drivers, images, strict=True)])
    cables.cable(latencies)
    await RisingEdge(dut.clk)
    # now in the cycle of the first start write: global cycle 0 is the next
    base_ns = cocotb.simtime.get_sim_time("ns") + CLOCK_NS
    for (port, cycle), mask in cables.flips(golden, faults).items():
        cocotb.start_soon(cables.flip(port, cycle + 1, mask))
    monitors = [cocotb.start_soon(DoneMonitor(dut, ChipPins(dut, chip)).wait(
        start, base_ns, JOB["max_cycles"])) for chip, start in enumerate(starts)]

    async def start(driver, cycle):
        if cycle:
            await ClockCycles(dut.clk, cycle)
        await driver.start()

    await _all([start(driver, cycle) for driver, cycle in zip(drivers, starts, strict=True)])
    finished = [await monitor for monitor in monitors]
    await RisingEdge(dut.clk)
    rtl = await _all([_readback(driver) for driver in drivers])
    scoreboard = SystemScoreboard(config)
    chips = []
    for chip, result in enumerate(expected.chips):
        rtl[chip]["finished"] = finished[chip]
        want, mismatches = scoreboard.compare(chip, result, expected.finished[chip], rtl[chip])
        chips.append({"cycles_rtl": rtl[chip]["registers"][0], "cycles_golden": result.cycles,
                      "finished_rtl": finished[chip], "finished_golden": expected.finished[chip],
                      "registers_rtl": rtl[chip]["registers"], "registers_golden": want,
                      "match": not mismatches, "mismatches": mismatches,
                      "memories": _save(rtl[chip]["memories"], f"d{index}_chip{chip}")})
    return {"draw": index, "match": all(chip["match"] for chip in chips), "error": None,
            "chips": chips}


def _save(memories, name):
    if not JOB.get("memories_dir"):
        return None
    path = Path(JOB["memories_dir"]) / f"{name}.npy"
    np.save(path, memories)
    return str(path)


@cocotb.test()
async def run_system_draws(dut):
    """Every draw of the job on the chips of ``tsp_system``, each compared with the golden
    model; a record per draw (a mismatch is a record's, not the test's failure)."""
    config = Config.from_json(JOB["config"])
    topology = _topology(config)
    images = [Image.load(path, config) for path in JOB["images"]]
    drivers = [HostDriver(ChipPins(dut, chip), config) for chip in range(topology.chips)]
    cables = CableDriver(dut, topology)
    cables.cable({})
    await _reset(dut, drivers, config)
    for index, draw in enumerate(JOB["draws"]):
        try:
            record = await _run_draw(dut, drivers, cables, images, index, _draw(draw))
        except Exception as error:      # recorded for the report, then raised for cocotb
            record_result({"draw": index, "match": False, "chips": [],
                           "error": f"{type(error).__name__}: {error}"})
            raise
        record_result(record)
        if not record["match"]:
            dut._log.info("draw %d: %s", index, "; ".join(
                text for chip in record["chips"] for text in chip["mismatches"]))


__all__ = ["ChipPins", "GoldenSystem", "CableDriver", "DoneMonitor", "SystemScoreboard",
           "expected_registers", "run_system_draws"]
