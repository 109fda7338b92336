"""cocotb testbench of the synthesised board netlist (Yosys's ``netlist.v`` of the FPGA flow,
ECP5 cells), touching nothing but the board's pins: the oscillator, the UART's two pins and the
two LEDs (``tsp_netlist``, written by :func:`opentsp.app.netlist_sim.wrapper_verilog`).

The host side is the bridge testbench's (:mod:`opentsp.verif.tb.bridge`): the host protocol's
operations over a :class:`~opentsp.verif.tb.bridge.UartLink` at the netlist's own UART divisor
(the chip clock over the baud rate it was built for). Each program is loaded, started, polled
until done and read back, and its cycle count and memories compared with the golden model's;
each record also carries the simulated cycles and the wall-clock seconds it took.

The job comes from the JSON file named by ``OPENTSP_JOB`` (written by
:func:`opentsp.app.netlist_sim.run`).
"""

import json
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles

from opentsp import isa
from opentsp.config import Config
from opentsp.firmware.image import Image
from opentsp.host_protocol import op_load, op_read_memories, op_run
from opentsp.sim.model import run as golden_run
from opentsp.verif.tb.bridge import CLOCK_NS, UartLink, _job, words_to_check

#: Clock cycles before the first UART frame: the PLL model locks after 16, the lock passes two
#: flip-flops; the rest is margin.
START_CYCLES = 64


@cocotb.test()
async def netlist_programs(dut):
    """Load, run and read back each program of the job through the board's UART pins."""
    job = _job()
    assert job["programs"], "no programs in the job (OPENTSP_JOB not set?)"
    config = Config.from_json(job["config"])
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.uart_rx.value = 1
    await ClockCycles(dut.clk, START_CYCLES)
    link = UartLink(dut, job["divisor"])
    cocotb.start_soon(link.monitor())

    holding = np.zeros((len(isa.mem_slices(config)), config.mem_words, config.lanes), np.uint8)
    results = []
    for entry in job["programs"]:
        start_ns, start_s = get_sim_time("ns"), time.monotonic()
        image = Image.load(entry["image"], config)
        expected = golden_run(image)
        await link.execute(op_load(config, image.queue_words(), image.memories(),
                                   holding=holding))
        cycles = await link.execute(op_run(max_polls=1000))
        leds = (int(dut.done.value), int(dut.running.value))
        words = words_to_check(config, image, expected.memories, holding, job["stride"])
        memories = await link.execute(op_read_memories(config, words))
        mismatches = [f"{isa.mem_slices(config)[m].name}[{w}]: netlist {memories[m, w].tolist()}, "
                      f"golden {expected.memories[m, w].tolist()}"
                      for m, w in words if not np.array_equal(memories[m, w],
                                                              expected.memories[m, w])]
        results.append({"name": entry["name"], "cycles_netlist": cycles,
                        "cycles_golden": expected.cycles, "leds_done_running": leds,
                        "words_checked": len(words),
                        "nonzero_words": int(expected.memories.any(axis=2).sum()),
                        "mismatches": mismatches[:10], "mismatch_count": len(mismatches),
                        "sim_cycles": round((get_sim_time("ns") - start_ns) / CLOCK_NS),
                        "seconds": round(time.monotonic() - start_s, 2)})
        holding = expected.memories.copy()
        holding[tuple(np.array(words).T)] = memories[tuple(np.array(words).T)]
        # records as they come, so that a caller sees progress (and what passed before a hang)
        with open(job["results"], "w") as file:
            json.dump(results, file, indent=1)
