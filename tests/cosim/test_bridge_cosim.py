"""The chip behind its UART bridge on Verilator: programs loaded, run and read back through the
UART pins alone, with the host protocol's operations, against the golden model."""

from programs import four_lane_stream_pass, saved

from opentsp.config import get_config
from opentsp.firmware.asm import assemble
from opentsp.firmware.checker import check_or_raise
from opentsp.verif.randprog import random_image
from opentsp.verif.runner import run_bridge


def test_programs_through_the_uart_bridge(tmp_path):
    config = get_config("fpga")
    program = assemble(four_lane_stream_pass(), config)
    check_or_raise(program)
    images = [("stream_pass", program.image)]
    # random differential programs (every unit's instructions, extreme values)
    images += [(f"random_{seed}", random_image(config, seed)) for seed in range(3)]
    programs = saved(tmp_path, images)
    records = run_bridge(config, programs)
    assert [r["name"] for r in records] == [name for name, _ in programs]
    for record in records:
        assert record["cycles_board"] == record["cycles_golden"], record
        assert record["mismatches"] == [], record
        # the readback covered every word the program leaves non-zero, and some zero words
        assert record["words_checked"] > record["nonzero_words"] > 0, record
