"""The compiler across chips (opentsp/compiler/multichip.py): a stack of layers split by depth
over a ring, a layer split by columns over fully connected chips, each run on the multi-chip
golden model with random link latencies and start times: cycles equal to the prediction, and
results equal to numpy's and to the stages' references."""

import numpy as np
import pytest
from compiled import int8_layer, numpy_int8_layer

from opentsp.compiler.graph import CompileError
from opentsp.compiler.multichip import Transfer, column_parallel, compose, pipeline
from opentsp.config import get_config
from opentsp.sim.system import random_latencies
from opentsp.topology import ring

C2C = get_config("c2c")


def weights(seed, count, k, n):
    rng = np.random.default_rng(seed)
    return ([rng.integers(-4, 5, (k, n)).astype(np.int8) for _ in range(count)],
            [rng.integers(-8, 9, n).astype(np.int32) for _ in range(count)],
            rng.integers(-30, 31, (2, k)).astype(np.int8))


def runs(program, inputs, draws=4):
    """Outputs of several runs with random latencies and starts; every run's cycles must be
    the prediction."""
    chips = program.topology.chips
    for seed in range(draws):
        starts = [0] + [(seed + k) % 5 for k in range(chips - 1)]
        outputs, cycles = program.run_golden(
            inputs, latencies=random_latencies(program.topology, seed), starts=starts)
        assert cycles == program.predicted_cycles
        yield outputs


@pytest.mark.parametrize("chips", [2, 4])
def test_a_layer_stack_split_by_depth_over_a_ring(chips):
    ws, bs, x = weights(chips, chips, 4, 4)
    program = pipeline([int8_layer(f"l{k}", ws[k], bs[k]) for k in range(chips)], C2C)
    want = x
    for w, b in zip(ws, bs, strict=True):
        want = numpy_int8_layer(want, w, b)
    assert want.any()           # the data survive the stack: a wrong transfer would show
    chained = {"x": x}
    for stage in program.stages:
        chained = {"x": stage.reference(chained)["y"]}
    assert np.array_equal(chained["x"], want)
    # the prediction grows along the ring: every stage waits for the one before
    assert program.predicted_cycles == sorted(program.predicted_cycles)
    for outputs in runs(program, {0: {"x": x}}):
        assert np.array_equal(outputs[-1]["y"], want)


@pytest.mark.parametrize("chips", [2, 4])
def test_a_layer_split_by_columns_over_fully_connected_chips(chips):
    (w,), (b,), x = weights(10 + chips, 1, 4, 4 * chips)
    graphs = [int8_layer(f"c{k}", w[:, 4 * k:4 * k + 4], b[4 * k:4 * k + 4]) for k in range(chips)]
    program = column_parallel(graphs, C2C)
    want = numpy_int8_layer(x, w, b)
    assert want.any()
    for outputs in runs(program, {0: {"x": x}}):
        got = np.concatenate([outputs[k]["y"] for k in range(chips)], axis=1)
        assert np.array_equal(got, want)


def test_compose_refuses_what_it_cannot_build():
    ws, bs, _ = weights(0, 3, 4, 4)
    graphs = [int8_layer(f"l{k}", ws[k], bs[k]) for k in range(3)]
    topology = ring(3, C2C)
    with pytest.raises(CompileError, match=r"^ring3: 3 chips, 2 graphs$"):
        compose(topology, graphs[:2], [], {0: ["x"]})
    with pytest.raises(CompileError, match=r"chip 1: inputs \['x'\] are neither placed by the "
                                           r"host nor transferred"):
        compose(topology, graphs, [Transfer(1, "y", 2, "x")], {0: ["x"]})
    with pytest.raises(CompileError, match="no cable from chip 0 to chip 0"):
        compose(topology, graphs, [Transfer(0, "y", 0, "x")], {0: ["x"]})
    program = pipeline(graphs, C2C)
    with pytest.raises(CompileError, match=r"chip 0: the host places inputs \['x'\], not \[\]"):
        program.images_for({})
