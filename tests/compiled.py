"""Helpers of the compiler's tests: a compiled program checked the way every such test checks
it (the checker, the assembly round trip, predicted = golden-model cycles, outputs = the graph's
reference bit for bit)."""

import numpy as np

from opentsp.compiler import Graph
from opentsp.firmware.asm import assemble
from opentsp.firmware.checker import check


def bits(values):
    """The unsigned bit patterns of ``values`` (any element width)."""
    values = np.ascontiguousarray(values)
    return values.view({4: np.uint32, 2: np.uint16, 1: np.uint8}[values.dtype.itemsize])


def run_checked(prog, inputs):
    """``prog``'s golden-model outputs for ``inputs``, after asserting the checker, the
    assembly, the cycle prediction and the reference (dtype and bits)."""
    assert check(prog.image) == []
    assert assemble(prog.asm, prog.config).image == prog.image
    outputs, cycles = prog.run_golden(inputs)
    assert cycles == prog.predicted_cycles
    reference = prog.reference(inputs)
    for name, value in outputs.items():
        assert value.dtype == reference[name].dtype
        np.testing.assert_array_equal(bits(value), bits(reference[name]), err_msg=name)
    return outputs


#: The multi-chip tests' requant: (h * 2**30) >> 32, i.e. floor(h / 4).
REQUANT_MULTIPLIER = 1 << 30


def int8_layer(name, w, b):
    """A graph ``y = requant(relu(x @ w + b))`` on a (2, K) int8 input ``x``."""
    g = Graph(name)
    x = g.input("x", (2, w.shape[0]))
    h = g.bias_add(g.matmul(x, g.const("w", w)), g.const("b", b))
    g.output("y", g.requant(g.relu(h), REQUANT_MULTIPLIER, 0))
    return g


def numpy_int8_layer(x, w, b):
    """:func:`int8_layer` in numpy."""
    h = x.astype(np.int64) @ w.astype(np.int64) + b
    return np.clip((np.maximum(h, 0) * REQUANT_MULTIPLIER) >> 32, -128, 127).astype(np.int8)
