"""Configurations: every parameter survives the JSON that carries a configuration to the
testbench (Config.to_json / Config.from_json), and bad JSON is refused in one line."""

import json

import pytest

from opentsp.compiler import derive_config
from opentsp.config import CONFIGS, Config


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_named_configurations_round_trip(name):
    config = CONFIGS[name]
    again = Config.from_json(config.to_json())
    assert again == config and again.hash == config.hash


def test_a_derived_configuration_round_trips():
    config = derive_config("default", "derived", superlanes=1, mem_words=16, clock_mhz=12.5)
    assert Config.from_json(config.to_json()) == config


REQUIRED = json.loads(CONFIGS["default"].to_json())


@pytest.mark.parametrize("text, message", [
    ("nope", r"^Config.from_json: not JSON: "),
    ("[1, 2]", r"^Config.from_json: must be an object of the parameters "),
    (json.dumps({"name": "x"}), r"\(at least \['lanes_per_superlane', 'mem_slices'"),
    (json.dumps({**REQUIRED, "bogus": 1}), r"^Config.from_json: must be an object"),
    (json.dumps({**REQUIRED, "superlanes": 0}),
     r"^Config.superlanes must be a positive integer, not 0$"),
    (json.dumps({**REQUIRED, "mem_words": 100}), r"^Config.mem_words must be a power of two"),
    (json.dumps({**REQUIRED, "mxm_planes": 3}), r"^Config.mxm_planes must be 1 to 2, not 3$"),
    (json.dumps({**REQUIRED, "mxm_load_rows": 9}),
     r"^Config.mxm_load_rows must be at most the streams and the MXM size \(4\), not 9$"),
])
def test_bad_json_is_refused_in_one_line(text, message):
    with pytest.raises(ValueError, match=message) as error:
        Config.from_json(text)
    assert "\n" not in str(error.value)
