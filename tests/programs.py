"""Test programs shared by several test modules (tests/ is on ``sys.path`` through
``tests/conftest.py``)."""

from pathlib import Path

import numpy as np

from opentsp.config import get_config
from opentsp.firmware.asm import assemble_file
from opentsp.firmware.checker import check_or_raise
from opentsp.firmware.image import Image

#: firmware/examples/, the example programs.
EXAMPLES_DIR = Path(__file__).parent.parent / "firmware" / "examples"


def four_lane_stream_pass():
    """``stream_pass.s`` with data for the ``fpga`` configuration's four lanes."""
    text = (EXAMPLES_DIR / "stream_pass.s").read_text()
    for eight, four in (("1, 2, 3, 4, 5, 6, 7, -8", "1, 2, 3, -8"),
                        ("-1, -2, -3, -4, -5, -6, -7, 8", "-1, -2, -3, 8")):
        assert eight in text
        text = text.replace(eight, four)
    return text


def small_fpga_image():
    """An ``fpga``-configuration image with two data words: memory 2 word 5 holds lanes 1..4,
    memory 7 word 1023 holds 0xEE in every lane; every queue only ends."""
    config = get_config("fpga")
    image = Image.empty(config)
    image.data[(2, 5)] = np.arange(1, config.lanes + 1, dtype=np.uint8)
    image.data[(7, 1023)] = np.full(config.lanes, 0xEE, np.uint8)
    return image


def saved(directory, images):
    """Save ``(name, Image)`` pairs as ``directory/NAME.bin``; returns ``(name, path)`` pairs, as
    the runner takes them."""
    programs = []
    for name, image in images:
        path = directory / f"{name}.bin"
        image.save(path)
        programs.append((name, path))
    return programs


def checked_examples(config, sources):
    """``(stem, Image)`` of each source assembled for ``config`` and passed by the checker."""
    images = []
    for source in sources:
        program = assemble_file(source, config)
        check_or_raise(program)
        images.append((source.stem, program.image))
    return images


def assert_all_match(records):
    """Every runner record: no error, the golden model's cycle count, bit-exact memories."""
    for record in records:
        assert record["error"] is None, f"{record['name']}: {record['error']}"
        assert record["cycles_rtl"] == record["cycles_golden"], record
        assert record["match"], f"{record['name']}: {record['mismatches']}"
