"""Test programs shared by several test modules (tests/ is on ``sys.path`` through
``tests/conftest.py``)."""

from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"


def four_lane_stream_pass():
    """``stream_pass.s`` with data for the ``fpga`` configuration's four lanes."""
    text = (EXAMPLES / "stream_pass.s").read_text()
    for eight, four in (("1, 2, 3, 4, 5, 6, 7, -8", "1, 2, 3, -8"),
                        ("-1, -2, -3, -4, -5, -6, -7, 8", "-1, -2, -3, 8")):
        assert eight in text
        text = text.replace(eight, four)
    return text
