"""The compiler across chips (opentsp/compiler/multichip.py): a stack of layers split by depth
over a ring, a layer split by columns over fully connected chips, each run on the multi-chip
golden model with random link latencies and start times: cycles equal to the prediction, and
results equal to numpy's and to the stages' references."""

import numpy as np
import pytest
from compiled import REQUANT_MULTIPLIER, int8_layer, numpy_int8_layer

from opentsp.compiler import Graph
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


def _loop_graphs(w0, b0, w1, b1):
    """Chip 0: ``y = layer0(a)``; chip 1: ``z = layer1(x)`` written into its state ``acc``,
    which goes back to chip 0 as ``a`` before the next run's stages."""
    front = Graph("front")
    a = front.input("a", (1, w0.shape[0]))
    h = front.bias_add(front.matmul(a, front.const("w", w0)), front.const("b", b0))
    front.output("y", front.requant(front.relu(h), REQUANT_MULTIPLIER, 0))
    back = Graph("back")
    x = back.input("x", (1, w1.shape[0]))
    acc = back.state("acc", (1, w1.shape[1]), "int8")
    h = back.bias_add(back.matmul(x, back.const("w", w1)), back.const("b", b1))
    z = back.requant(back.relu(h), REQUANT_MULTIPLIER, 0)
    back.output("acc.next", back.write_row(acc, back.const("zero", np.zeros((1, 1), np.int32)),
                                           z))
    return front, back


def test_a_state_goes_back_to_the_leading_chip_before_the_stages():
    """Chip 1's state crosses to chip 0 before the stages, chip 0's output comes back after
    chip 0's stage: a session of runs (states carried over) on the golden model with random
    latencies and starts equals the composed reference and numpy's loop."""
    ws, bs, _ = weights(5, 2, 4, 4)
    ws = [w + 2 for w in ws]            # positive weights: the loop does not die out at zero
    front, back = _loop_graphs(ws[0], bs[0], ws[1], bs[1])
    program = compose(ring(2, C2C), [front, back],
                      [Transfer(1, "acc", 0, "a"), Transfer(0, "y", 1, "x")], {})
    assert program.stage_order == [0, 1]
    acc = np.array([[3, -7, 11, 5]], np.int8)
    states, numpy_acc = {1: {"acc": acc}}, acc
    for run in range(3):
        outputs, want = program.step_reference({}, states)
        _, got, cycles = program.run_golden_states(
            {}, states, latencies=random_latencies(program.topology, run), starts=[0, run])
        assert cycles == program.predicted_cycles
        numpy_acc = numpy_int8_layer(numpy_int8_layer(numpy_acc, ws[0], bs[0]), ws[1], bs[1])
        assert numpy_acc.any()
        np.testing.assert_array_equal(got[1]["acc"], numpy_acc)
        np.testing.assert_array_equal(want[1]["acc"], numpy_acc)
        np.testing.assert_array_equal(outputs[1]["acc.next"], numpy_acc)
        states = {1: got[1]}


def test_compose_refuses_transfers_that_cannot_be():
    ws, bs, _ = weights(1, 2, 4, 4)
    front, back = _loop_graphs(ws[0], bs[0], ws[1], bs[1])
    topology = ring(2, C2C)
    with pytest.raises(CompileError, match=r"^chip 1: 'nope' is no output, input or state of "
                                           r"its stage$"):
        compose(topology, [front, back], [Transfer(1, "nope", 0, "a"),
                                          Transfer(0, "y", 1, "x")], {})
    with pytest.raises(CompileError, match=r"^chip 0: 'b' is no input of its stage$"):
        compose(topology, [front, back], [Transfer(1, "acc", 0, "b"),
                                          Transfer(0, "y", 1, "x")], {})
    other = int8_layer("other", ws[1], bs[1])           # input x is (2, 4), y is (1, 4)
    with pytest.raises(CompileError, match=r"^chip 1: input 'x' is int8 \(2, 4\), chip 0 "
                                           r"sends 'y' as int8 \(1, 4\)$"):
        compose(topology, [front, other], [Transfer(0, "y", 1, "x")], {0: ["a"]})
    with pytest.raises(CompileError, match=r"^chip 0: input 'a' lands from another chip, so it "
                                           r"cannot go on before its stage$"):
        compose(topology, [front, back], [Transfer(1, "acc", 0, "a"), Transfer(0, "a", 1, "x"),
                                          Transfer(0, "y", 1, "x")], {})
    with pytest.raises(CompileError, match=r"^chip 1: inputs \['x'\] are given twice \(by two "
                                           r"transfers, or by the host and a transfer\)$"):
        compose(topology, [front, back], [Transfer(1, "acc", 0, "a"), Transfer(0, "y", 1, "x")],
                {1: ["x"]})
    loop = int8_layer("loop", ws[0], bs[0])
    with pytest.raises(CompileError, match=r"^chips \[0, 1\] wait for one another's outputs: "
                                           r"the transfers after their stages form a cycle$"):
        compose(topology, [loop, int8_layer("back", ws[1], bs[1])],
                [Transfer(1, "y", 0, "x"), Transfer(0, "y", 1, "x")], {})
