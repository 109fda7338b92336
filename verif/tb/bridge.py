"""cocotb testbench of the chip behind its UART bridge (``tsp_bridged``,
:class:`opentsp.hdl.board.shell.BridgedChip`), touching nothing but the two UART pins.

The host side is the host program's own code: the operations of :mod:`opentsp.host_protocol`
(configuration check, load, run, memory readback) run over a :class:`UartLink` that turns
their request bytes into UART frames on ``uart_rx`` and decodes the answers on ``uart_tx``.
Each program's cycle count and memories are compared with the golden model's.

The job comes from the JSON file named by ``OPENTSP_JOB`` (written by
:func:`opentsp.verif.runner.run_bridge`): the whole configuration, UART divisor, programs,
results.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import FallingEdge, RisingEdge, Timer, with_timeout

from opentsp import bridge_protocol as proto
from opentsp import isa
from opentsp.config import CONFIGS, Config
from opentsp.firmware.image import Image
from opentsp.host_protocol import HostTimeout, op_load, op_read_memories, op_run
from opentsp.sim.model import run as golden_run

CLOCK_NS = 10


class UartLink:
    """The host end of the UART: frames out on ``uart_rx``, frames in from ``uart_tx``.

    Bits change and are sampled half a clock away from the rising edges (on falling edges),
    so the testbench never races the design's registers.
    """

    def __init__(self, dut, divisor):
        self.dut = dut
        self.bit_ns = divisor * CLOCK_NS
        self.received = Queue()
        self.answer_timeout_ns = 200 * self.bit_ns

    async def monitor(self):
        """Decode every frame the design sends (start it with ``cocotb.start_soon``)."""
        while True:
            await FallingEdge(self.dut.uart_tx)
            await Timer(self.bit_ns // 2 + CLOCK_NS // 2, "ns")     # middle of the start bit
            assert int(self.dut.uart_tx.value) == 0, "start bit shorter than half a bit"
            byte = 0
            for i in range(8):
                await Timer(self.bit_ns, "ns")
                byte |= int(self.dut.uart_tx.value) << i
            await Timer(self.bit_ns, "ns")
            assert int(self.dut.uart_tx.value) == 1, f"no stop bit after {byte:#04x}"
            self.received.put_nowait(byte)

    async def send(self, data):
        await FallingEdge(self.dut.clk)
        for byte in data:
            for bit in proto.uart_frame(byte):
                self.dut.uart_rx.value = bit
                await Timer(self.bit_ns, "ns")

    async def receive(self, count):
        out = []
        for _ in range(count):
            try:
                out.append(await with_timeout(self.received.get(), self.answer_timeout_ns,
                                              "ns"))
            except cocotb.triggers.SimTimeoutError:
                raise HostTimeout(f"no answer from the bridge within "
                                   f"{self.answer_timeout_ns} ns ({len(out)} of {count} "
                                   f"bytes)") from None
        return bytes(out)

    async def execute(self, operation):
        """Drive an operation of :mod:`opentsp.host_protocol` to its end; returns its result."""
        try:
            request = next(operation)
            while True:
                data, count = request
                await self.send(data)
                request = operation.send(await self.receive(count))
        except StopIteration as stop:
            return stop.value


def _job():
    path = os.environ.get("OPENTSP_JOB")
    if not path:
        return {"config": CONFIGS["fpga"].to_json(), "divisor": 4, "programs": [],
                "results": None}
    with open(path) as file:
        return json.load(file)


def words_to_check(config, image, expected, holding, stride):
    """The memory words read back: every word the image, the golden result or the previous
    contents make non-zero, and every ``stride``-th word of each memory besides."""
    words = {(mem, word) for mem, word in image.data}
    for memories in (expected, holding):
        words |= {(int(m), int(w)) for m, w in np.argwhere(memories.any(axis=2))}
    for mem in range(len(isa.mem_slices(config))):
        words |= {(mem, word) for word in range(0, config.mem_words, stride)}
    return sorted(words)


@cocotb.test()
async def bridge_programs(dut):
    """Load, run and read back each program of the job through the UART pins only."""
    job = _job()
    assert job["programs"], "no programs in the job (OPENTSP_JOB not set?)"
    config = Config.from_json(job["config"])
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.uart_rx.value = 1
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    link = UartLink(dut, job["divisor"])
    cocotb.start_soon(link.monitor())
    await Timer(2 * link.bit_ns, "ns")

    # The memories start at zero (block RAM after configuration; the Verilog initialises them).
    holding = np.zeros((len(isa.mem_slices(config)), config.mem_words, config.lanes), np.uint8)
    results = []
    for entry in job["programs"]:
        image = Image.load(entry["image"], config)
        expected = golden_run(image)
        await link.execute(op_load(config, image.queue_words(), image.memories(),
                                          holding=holding))
        cycles = await link.execute(op_run(max_polls=1000))
        assert int(dut.done.value) == 1 and int(dut.running.value) == 0
        words = words_to_check(config, image, expected.memories, holding, job["stride"])
        memories = await link.execute(op_read_memories(config, words))
        mismatches = [f"{isa.mem_slices(config)[m].name}[{w}]: board {memories[m, w].tolist()}, "
                      f"golden {expected.memories[m, w].tolist()}"
                      for m, w in words if not np.array_equal(memories[m, w],
                                                              expected.memories[m, w])]
        results.append({"name": entry["name"], "cycles_board": cycles,
                        "cycles_golden": expected.cycles, "words_checked": len(words),
                        "nonzero_words": int(expected.memories.any(axis=2).sum()),
                        "mismatches": mismatches[:10]})
        holding = expected.memories.copy()
        holding[tuple(np.array(words).T)] = memories[tuple(np.array(words).T)]
    if job.get("results"):
        with open(job["results"], "w") as file:
            json.dump(results, file, indent=1)
    # A disagreement is a result, not a testbench fault: the records carry it to the caller
    # (run_bridge), who reports it in a line of its own, without cocotb's traceback.
    for record in results:
        if record["cycles_board"] != record["cycles_golden"] or record["mismatches"]:
            dut._log.info("%s disagrees with the golden model: %s", record["name"], record)
