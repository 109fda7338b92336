"""The compiler's input: a small graph of integer tensor operations, checked as it is built.

Every tensor is two-dimensional (rows, columns) or, for biases and per-column constants, one-
dimensional (columns); its element type is ``int8`` or ``int32``. The operations and their
exact semantics (:func:`evaluate` computes them in numpy int64 / Python integers, independently
of the golden model):

* ``matmul(x, w)``: int8 (M, K) x int8 (K, N) -> int32 (M, N), exact, wrapping modulo 2^32;
  ``w`` must be a constant (the compiler lays its columns out for the MXM's ``lw``).
* ``bias_add(h, b)``: int32 (M, N) + int32 (N,) broadcast over rows, wrapping.
* ``relu(h)``: ``max(h, 0)``, same type.
* ``requant(h, multiplier, shift)``: int32 -> int8, ``sat_i8(rshr(mulh(h, m), s))`` with
  ``mulh(h, m) = (h * m) >> 32`` (floor) and ``rshr(v, s) = (v + 2^(s-1)) >> s`` (``v`` for
  ``s = 0``), docs/architecture.md section 8; ``m`` in 0..2^31-1 and ``s`` in 0..31, scalars or
  per-column arrays of length N.
* ``add(a, b)``: elementwise, same shape and type, wrapping (the VXM's ``add``).

Bad input raises :class:`CompileError` at once, naming the node: shapes that do not match, an
unsupported type or operation, a name used twice.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CompileError", "Tensor", "Node", "Graph", "evaluate", "DTYPES", "wrap32",
           "requant_values"]

#: Element types the compiler handles: name -> (numpy type, bytes).
DTYPES = {"int8": (np.int8, 1), "int32": (np.int32, 4)}
#: Operations and what they compute (for messages).
OPS = ("input", "const", "matmul", "bias_add", "relu", "requant", "add")



def _a(word):
    """``word`` with its indefinite article: "an input", "a matmul"."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"

class CompileError(ValueError):
    """A graph the compiler cannot compile; the one-line message names the node or tensor."""


@dataclass(eq=False)
class Tensor:
    """A value of the graph: the output of ``node``.

    Attributes
    ----------
    name : str
        The producing node's name.
    shape : tuple of int
        ``(rows, columns)``, or ``(columns,)`` for a one-dimensional constant.
    dtype : str
        ``"int8"`` or ``"int32"``.
    node : Node
        The node that produces it.
    """
    name: str
    shape: tuple
    dtype: str
    node: "Node" = field(repr=False)

    @property
    def rows(self):
        return self.shape[0] if len(self.shape) == 2 else 1

    @property
    def cols(self):
        return self.shape[-1]

    @property
    def nbytes(self):
        return int(np.prod(self.shape)) * DTYPES[self.dtype][1]

    def __repr__(self):
        return f"Tensor({self.name!r}, {self.shape}, {self.dtype})"


@dataclass(eq=False)
class Node:
    """One operation: ``op`` applied to ``inputs`` (tensors), with ``params``."""
    name: str
    op: str
    inputs: tuple
    params: dict
    output: Tensor = None

    def describe(self):
        return f"node {self.name!r} ({self.op})"


def wrap32(values):
    """int64 values wrapped to int32 two's complement (returned as int64)."""
    return ((np.asarray(values, dtype=np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)


def requant_values(h, multiplier, shift):
    """``sat_i8(rshr(mulh(h, m), s))`` per column in Python integers; int8 array."""
    h = np.asarray(h, dtype=np.int64)
    multiplier = np.broadcast_to(np.asarray(multiplier, dtype=np.int64), h.shape[-1:])
    shift = np.broadcast_to(np.asarray(shift, dtype=np.int64), h.shape[-1:])
    out = np.empty(h.shape, dtype=np.int8)
    for index, value in np.ndenumerate(h):
        m, s = int(multiplier[index[-1]]), int(shift[index[-1]])
        high = (int(value) * m) >> 32
        rounded = (high + (1 << (s - 1))) >> s if s else high
        out[index] = min(127, max(-128, rounded))
    return out


class Graph:
    """A graph of integer tensor operations, built node by node and checked as it goes.

    Parameters
    ----------
    name : str
        The graph's name (used in the assembly's comments).

    Examples
    --------
    >>> g = Graph("layer")
    >>> x = g.input("x", (8, 64))
    >>> h = g.matmul(x, g.const("w", np.ones((64, 10), np.int8)), name="fc")
    >>> g.output("y", g.requant(g.relu(h), 1 << 30, 4))
    """

    def __init__(self, name="graph"):
        if not isinstance(name, str) or not name:
            raise CompileError(f"graph name must be a non-empty string, not {name!r}")
        self.name = name
        self.nodes = []
        self.outputs = {}        # output name -> Tensor
        self._names = set()
        self._counter = 0

    # Building -------------------------------------------------------------------------------

    def _name(self, name, op):
        if name is None:
            self._counter += 1
            name = f"{op}{self._counter}"
            while name in self._names:
                self._counter += 1
                name = f"{op}{self._counter}"
        if not isinstance(name, str) or not name or any(c.isspace() or c == ";" for c in name):
            raise CompileError(f"{op} name must be a non-empty string without spaces or ';', "
                               f"not {name!r}")
        if name in self._names:
            raise CompileError(f"node {name!r} ({op}): the name is already used")
        return name

    def _add(self, name, op, inputs, params, shape, dtype):
        for tensor in inputs:
            if not isinstance(tensor, Tensor) or tensor.node not in self.nodes:
                raise CompileError(f"node {name!r} ({op}): operand must be a tensor of graph "
                                   f"{self.name!r}, not {tensor!r}")
        node = Node(name, op, tuple(inputs), params)
        node.output = Tensor(name, tuple(int(d) for d in shape), dtype, node)
        self._names.add(name)
        self.nodes.append(node)
        return node.output

    def input(self, name, shape, dtype="int8"):
        """An input tensor of ``shape`` (rows, columns), filled in at run time."""
        name = self._name(name, "input")
        where = f"node {name!r} (input)"
        if dtype not in DTYPES:
            raise CompileError(f"{where}: unsupported dtype {dtype!r} (int8 or int32)")
        if (not isinstance(shape, tuple) or len(shape) != 2
                or not all(isinstance(d, int | np.integer) and d >= 1 for d in shape)):
            raise CompileError(f"{where}: shape must be (rows, columns) of positive integers, "
                               f"not {shape!r}")
        return self._add(name, "input", (), {}, shape, dtype)

    def const(self, name, value):
        """A constant: an int8 or int32 numpy array of one or two dimensions."""
        name = self._name(name, "const")
        where = f"node {name!r} (const)"
        if not isinstance(value, np.ndarray):
            raise CompileError(f"{where}: value must be a numpy array, not {type(value).__name__}")
        dtype = str(value.dtype)
        if dtype not in DTYPES:
            raise CompileError(f"{where}: unsupported dtype {dtype} (int8 or int32)")
        if value.ndim not in (1, 2) or value.size == 0:
            raise CompileError(f"{where}: must have one or two non-empty dimensions, not shape "
                               f"{value.shape}")
        return self._add(name, "const", (), {"value": value.copy()}, value.shape, dtype)

    def matmul(self, x, w, name=None):
        """``x @ w``: int8 (M, K) x int8 constant (K, N) -> int32 (M, N)."""
        name = self._name(name, "matmul")
        node = f"node {name!r} (matmul)"
        self._need_2d(node, x, "x")
        self._need_2d(node, w, "w")
        for operand, tensor in (("x", x), ("w", w)):
            if tensor.dtype != "int8":
                raise CompileError(f"{node}: unsupported dtype {tensor.dtype} for {operand} "
                                   f"(matmul takes int8)")
        if x.shape[1] != w.shape[0]:
            raise CompileError(f"{node}: inner dimensions differ: {x.shape} @ {w.shape}")
        if w.node.op != "const":
            raise CompileError(f"{node}: unsupported operand: the weights {w.name!r} must be a "
                               f"constant (g.const), not the output of {_a(w.node.op)}")
        return self._add(name, "matmul", (x, w), {}, (x.shape[0], w.shape[1]), "int32")

    def bias_add(self, h, b, name=None):
        """``h + b``: int32 (M, N) plus an int32 (N,) row broadcast over the rows, wrapping."""
        name = self._name(name, "bias_add")
        node = f"node {name!r} (bias_add)"
        self._need_2d(node, h, "h")
        if h.dtype != "int32" or b.dtype != "int32":
            raise CompileError(f"{node}: unsupported dtype {h.dtype} + {b.dtype} (bias_add "
                               f"takes int32 + int32)")
        if len(b.shape) != 1 or b.shape[0] != h.shape[1]:
            raise CompileError(f"{node}: bias shape {b.shape} does not match ({h.shape[1]},) "
                               f"for {h.shape}")
        return self._add(name, "bias_add", (h, b), {}, h.shape, "int32")

    def relu(self, h, name=None):
        """``max(h, 0)`` elementwise, same type."""
        name = self._name(name, "relu")
        node = f"node {name!r} (relu)"
        self._need_2d(node, h, "h")
        return self._add(name, "relu", (h,), {}, h.shape, h.dtype)

    def requant(self, h, multiplier, shift, name=None):
        """int32 -> int8: ``sat_i8(rshr(mulh(h, multiplier), shift))`` per column.

        ``multiplier`` (0..2^31-1) and ``shift`` (0..31) are Python ints or integer arrays of
        length N (one per column).
        """
        name = self._name(name, "requant")
        node = f"node {name!r} (requant)"
        self._need_2d(node, h, "h")
        if h.dtype != "int32":
            raise CompileError(f"{node}: unsupported dtype {h.dtype} (requant takes int32)")
        cols = h.shape[1]
        params = {}
        for what, value, high in (("multiplier", multiplier, (1 << 31) - 1),
                                  ("shift", shift, 31)):
            array = np.asarray(value)
            if array.dtype.kind not in "iu" or array.ndim > 1:
                raise CompileError(f"{node}: {what} must be an int or a 1-D integer array, not "
                                   f"{value!r}")
            if array.ndim == 1 and array.shape[0] != cols:
                raise CompileError(f"{node}: {what} has {array.shape[0]} values for {cols} "
                                   f"columns")
            if array.size and (array.min() < 0 or array.max() > high):
                raise CompileError(f"{node}: {what} must be in 0..{high}, not {value!r}")
            params[what] = np.broadcast_to(array.astype(np.int64), (cols,)).copy()
        return self._add(name, "requant", (h,), params, h.shape, "int8")

    def add(self, a, b, name=None):
        """``a + b`` elementwise: same shape and type, wrapping."""
        name = self._name(name, "add")
        node = f"node {name!r} (add)"
        self._need_2d(node, a, "a")
        self._need_2d(node, b, "b")
        if a.shape != b.shape:
            raise CompileError(f"{node}: shapes differ: {a.shape} + {b.shape}")
        if a.dtype != b.dtype:
            raise CompileError(f"{node}: dtypes differ: {a.dtype} + {b.dtype}")
        return self._add(name, "add", (a, b), {}, a.shape, a.dtype)

    def output(self, name, tensor):
        """Mark ``tensor`` as an output called ``name`` (read back with
        :meth:`CompiledProgram.outputs`)."""
        if not isinstance(name, str) or not name:
            raise CompileError(f"output name must be a non-empty string, not {name!r}")
        if name in self.outputs:
            raise CompileError(f"output {name!r}: the name is already used")
        if not isinstance(tensor, Tensor) or tensor.node not in self.nodes:
            raise CompileError(f"output {name!r}: must be a tensor of graph {self.name!r}, not "
                               f"{tensor!r}")
        if len(tensor.shape) != 2:
            raise CompileError(f"output {name!r}: must be two-dimensional, not {tensor.shape}")
        self.outputs[name] = tensor
        return tensor

    @staticmethod
    def _need_2d(node, tensor, what):
        if not isinstance(tensor, Tensor):
            raise CompileError(f"{node}: operand {what} must be a Tensor, not {tensor!r}")
        if len(tensor.shape) != 2:
            raise CompileError(f"{node}: operand {what} {tensor.name!r} must be two-"
                               f"dimensional, not {tensor.shape}")

    # Queries --------------------------------------------------------------------------------

    @property
    def inputs(self):
        """Input tensors by name."""
        return {n.name: n.output for n in self.nodes if n.op == "input"}

    def consumers(self, tensor):
        """Nodes that take ``tensor`` as an operand."""
        return [n for n in self.nodes if any(t is tensor for t in n.inputs)]

    def check_inputs(self, inputs):
        """The ``inputs`` dict checked against the graph's inputs: ``{name: array}``."""
        if not isinstance(inputs, dict):
            raise CompileError(f"inputs must be a dict {{name: array}}, not {inputs!r}")
        expected = self.inputs
        missing = sorted(set(expected) - set(inputs))
        unknown = sorted(set(inputs) - set(expected))
        if missing or unknown:
            raise CompileError(f"inputs must name exactly {sorted(expected)}: missing "
                               f"{missing}, unknown {unknown}")
        checked = {}
        for name, tensor in expected.items():
            value = np.asarray(inputs[name])
            if value.shape != tensor.shape or str(value.dtype) != tensor.dtype:
                raise CompileError(f"input {name!r} must be {tensor.dtype} {tensor.shape}, not "
                                   f"{value.dtype} {value.shape}")
            checked[name] = value
        return checked


def evaluate(graph, inputs):
    """Every tensor's value in numpy int64 / Python integer arithmetic (the graph's meaning).

    Returns
    -------
    dict
        ``{tensor name: ndarray}`` in the tensor's own dtype.
    """
    inputs = graph.check_inputs(inputs)
    values = {}
    for node in graph.nodes:
        args = [values[t.name] for t in node.inputs]
        if node.op == "input":
            value = inputs[node.name]
        elif node.op == "const":
            value = node.params["value"]
        elif node.op == "matmul":
            value = wrap32(args[0].astype(np.int64) @ args[1].astype(np.int64))
        elif node.op in ("bias_add", "add"):
            value = args[0].astype(np.int64) + args[1].astype(np.int64)
            if node.output.dtype == "int8":
                value = ((value + 128) % 256) - 128
            value = wrap32(value)
        elif node.op == "relu":
            value = np.maximum(args[0], 0)
        elif node.op == "requant":
            value = requant_values(args[0], node.params["multiplier"], node.params["shift"])
        else:   # pragma: no cover - the builders admit no other op
            raise CompileError(f"{node.describe()}: unsupported operation")
        values[node.name] = np.asarray(value).astype(DTYPES[node.output.dtype][0])
    return values
