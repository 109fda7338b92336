"""The OpenTSP compiler: a small graph of tensor operations (int8 matmuls, integer and float32
elementwise operations, conversions) to firmware.

    from opentsp.compiler import Graph, compile_graph
    g = Graph("mlp")
    x = g.input("x", (8, 64))
    h = g.matmul(x, g.const("w1", w1), name="fc1")          # int8 x int8 -> int32
    h = g.relu(g.bias_add(h, g.const("b1", b1)))
    g.output("y", g.requant(h, multiplier, shift, name="fc1.q"))
    prog = compile_graph(g, "default")
    prog.asm, prog.image, prog.predicted_cycles, prog.run_golden({"x": x_value})

Modules: :mod:`.graph` (the graph, its checks and its meaning), :mod:`.plan` (kernels, layouts,
static placement), :mod:`.resources` (reservation tables), :mod:`.schedule` (the list
scheduler), :mod:`.program` (``compile_graph``, emission). docs/compiler.md explains the plan.
"""

from opentsp.compiler.graph import CompileError, Graph, Tensor, evaluate
from opentsp.compiler.program import CompiledProgram, compile_graph, derive_config, predict

__all__ = ["Graph", "Tensor", "CompileError", "CompiledProgram", "compile_graph", "evaluate",
           "derive_config", "predict"]
