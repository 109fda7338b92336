"""The chip behind its UART bridge on Verilator: programs loaded, run and read back through the
UART pins alone, with the host program's byte protocol, against the golden model.

Also the runner used by it: :func:`build_bridged` and :func:`run_bridge`.
"""

import hashlib
import json
import tempfile
from pathlib import Path

from opentsp.config import get_config
from opentsp.verif.runner import BUILD_ROOT, TIMESCALE, tool_env

__all__ = ["TOPLEVEL", "DIVISOR", "build_bridged", "run_bridge"]

TOPLEVEL = "tsp_bridged"
#: UART bit time in simulation: the fastest the UART allows, to keep the test short.
DIVISOR = 4
EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"


def generate_bridged(config, divisor):
    """Verilog of :class:`~opentsp.hdl.board.BridgedChip` (``tsp_bridged``)."""
    from amaranth.back import verilog

    from opentsp.hdl.board import BridgedChip

    design = BridgedChip(get_config(config), divisor)
    return verilog.convert(design, name=TOPLEVEL, ports=[design.uart_rx, design.uart_tx,
                                                         design.done, design.running])


def build_bridged(config, divisor=DIVISOR):
    """Build the Verilated model of the bridged chip unless an identical one exists."""
    from cocotb_tools.runner import get_runner

    config = get_config(config)
    source_text = generate_bridged(config, divisor)
    key = hashlib.sha256(source_text.encode()).hexdigest()[:16]
    build_dir = BUILD_ROOT / f"verilator-bridged-{config.name}"
    stamp = build_dir / "opentsp.stamp"
    if stamp.exists() and stamp.read_text() == key:
        return build_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{TOPLEVEL}.v"
    source.write_text(source_text)
    tool_env()
    get_runner("verilator").build(
        sources=[source], hdl_toplevel=TOPLEVEL, build_dir=build_dir,
        build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
                    "--x-initial", "fast"],
        timescale=TIMESCALE, always=True)
    stamp.write_text(key)
    return build_dir


def run_bridge(config, programs, *, divisor=DIVISOR, stride=64):
    """Run ``(name, image path)`` programs through the bridge; returns the testbench's records
    (``cycles_board``, ``cycles_golden``, ``words_checked``, ``mismatches``)."""
    from cocotb_tools.runner import get_runner

    config = get_config(config)
    build_dir = build_bridged(config, divisor)
    with tempfile.TemporaryDirectory(prefix="opentsp-bridge-") as tmp:
        job = Path(tmp) / "job.json"
        results = Path(tmp) / "results.json"
        job.write_text(json.dumps({
            "config": config.name, "divisor": divisor, "results": str(results),
            "stride": stride,
            "programs": [{"name": name, "image": str(Path(path).resolve())}
                         for name, path in programs],
        }))
        tool_env()
        try:
            get_runner("verilator").test(
                test_module="opentsp.verif.tb_bridge", hdl_toplevel=TOPLEVEL,
                hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=build_dir,
                extra_env={"OPENTSP_JOB": str(job), "COCOTB_LOG_LEVEL": "WARNING"},
                results_xml=str(Path(tmp) / "results.xml"))
        except SystemExit:
            pass    # cocotb_tools exits on a failed test under pytest: the records say why
        if not results.exists():
            raise RuntimeError("the bridge testbench wrote no results; see its log above")
        return json.loads(results.read_text())


def four_lane_stream_pass():
    """``stream_pass.s`` with data for the ``fpga`` configuration's four lanes."""
    text = (EXAMPLES / "stream_pass.s").read_text()
    for eight, four in (("1, 2, 3, 4, 5, 6, 7, -8", "1, 2, 3, -8"),
                        ("-1, -2, -3, -4, -5, -6, -7, 8", "-1, -2, -3, 8")):
        assert eight in text
        text = text.replace(eight, four)
    return text


def test_programs_through_the_uart_bridge(tmp_path):
    from opentsp.firmware.asm import assemble
    from opentsp.firmware.checker import check_or_raise
    from opentsp.verif.randprog import random_image

    config = get_config("fpga")
    program = assemble(four_lane_stream_pass(), config)
    check_or_raise(program)
    images = [("stream_pass", program.image)]
    # random differential programs (every unit's instructions, extreme values)
    images += [(f"random_{seed}", random_image(config, seed)) for seed in range(3)]
    programs = []
    for name, image in images:
        path = tmp_path / f"{name}.bin"
        image.save(path)
        programs.append((name, path))
    records = run_bridge(config, programs)
    assert [r["name"] for r in records] == [name for name, _ in programs]
    for record in records:
        assert record["cycles_board"] == record["cycles_golden"], record
        assert record["mismatches"] == [], record
        # the readback covered every word the program leaves non-zero, and some zero words
        assert record["words_checked"] > record["nonzero_words"] > 0, record
