"""The compiler's input: a small graph of tensor operations, checked as it is built.

Every tensor is two-dimensional (rows, columns) or, for biases and per-column constants, one-
dimensional (columns); its element type is ``int8``, ``int32``, ``float32`` (numpy float32, four
bytes laid out like an int32: its bit pattern), ``float16`` or ``bfloat16`` (numpy float16 and
``ml_dtypes.bfloat16``, two bytes).
The operations and their exact semantics (:func:`evaluate` computes them in numpy int64 / Python
integers and, for floats, with :mod:`opentsp.fp` on bit patterns, independently of the golden
model):

* ``matmul(x, w)``: int8 (M, K) x int8 (K, N) -> int32 (M, N), exact, wrapping modulo 2^32;
  or float16 x float16 / bfloat16 x bfloat16 -> float32 (M, N), each element the exact sum of
  the exact products rounded once to float32 (``fp.mxm_dot32``: the MXM's wide accumulator,
  ``acc.f32``). ``w`` may be a constant (the compiler lays its columns out for the MXM's
  ``lw``), ``transpose(k)`` of any tensor (the rows of ``k`` are the columns ``lw`` loads: ``q
  @ kᵀ`` costs no transpose) or any other tensor (transposed on the chip first).
* ``transpose(x)``: int8, float16 or bfloat16 (R, C) -> (C, R). Free where a matmul takes
  it as its weights (the matmul reads the rows of ``x``: exact). Elsewhere the MXM computes it
  as ``cast(eye(C) @ transpose(x), x.dtype)`` and that is its value: ``xᵀ`` for int8 and for
  finite floats, except that -0 gives +0 and bfloat16 subnormals flush to zero (the wide sum
  rounded to float32), and an infinity or NaN in a row of ``x`` makes NaN of the rest of that
  column of the result (0 x inf).
* ``concat(parts)`` along the columns, ``slice_cols(x, start, stop)`` and
  ``broadcast_cols(x, n)`` (a single column repeated ``n`` times): views, no instructions (the
  compiler wants column boundaries on multiples of ``mxm_size``; it keeps every single-column
  tensor in every lane of its vectors).
* ``row_max(x)``, ``row_min(x)``: float32 (M, N) -> (M, 1), the largest (smallest) element of
  each row after ``x + 0`` (which makes -0 +0 and flushes subnormals); NaN if the row holds an
  infinity or NaN (the MXM moves the lanes: ``compiler.lower``).
* ``equal(a, b)``, ``greater(a, b)``: all ones (int8, int32: -1; float32: the bit pattern
  0xFFFFFFFF, a NaN) where true, else 0 (``fp.cmpeq32``, ``fp.cmpgt32`` by value for float32);
  ``bitwise_and``, ``bitwise_or``, ``bitwise_xor`` act on the bit patterns (a mask selects).
* ``right_shift(a, b)``: int8 or int32, ``a >> (b mod bits)``, arithmetic (the VXM's ``shr``).
* Elementwise operations of two operands broadcast numpy's way: a (N,) constant over the rows
  (as ``bias_add``), an (M, 1) tensor over the columns.
* ``state(name, shape, dtype, init)``: a tensor that stays in memory from one run of the
  program to the next (a KV cache, a token buffer, a counter); ``write_row(s, index, value)``
  is ``s`` with row ``index`` replaced by ``value`` (1, C), a new *version* of the state in the
  same memory (MEM ``scatter``); ``read_row(table, index)`` is row ``index`` of a constant, an
  input or a state version, (1, C) (MEM ``gather``). ``index`` is an int32 (1, 1) tensor, the
  row in 0..R-1 (the reference refuses others; the chip would reach another word).
* ``bias_add(h, b)``: int32 (M, N) + int32 (N,) broadcast over rows, wrapping; or float32 +
  float32 (``fp.add32``).
* ``relu(h)``: ``max(h, 0)``, same type (int8, int32, float32: ``fp.relu32``).
* ``requant(h, multiplier, shift)``: int32 -> int8, ``sat_i8(rshr(mulh(h, m), s))`` with
  ``mulh(h, m) = (h * m) >> 32`` (floor) and ``rshr(v, s) = (v + 2^(s-1)) >> s`` (``v`` for
  ``s = 0``), docs/architecture.md section 8; ``m`` in 0..2^31-1 and ``s`` in 0..31, scalars or
  per-column arrays of length N.
* ``add(a, b)``, ``sub(a, b)``, ``mul(a, b)``, ``maximum(a, b)``, ``minimum(a, b)``:
  elementwise, same type; int8 and int32 wrap (``mul`` keeps the low half), float32 is
  ``fp.add32``, ``fp.sub32``, ``fp.mul32``, ``fp.max32``, ``fp.min32``.
* ``exp(x)``, ``reciprocal(x)``, ``rsqrt(x)``, ``tanh(x)``: float32 only, ``fp.exp32``,
  ``fp.reciprocal32``, ``fp.rsqrt32``, ``fp.tanh32``.
* ``cast(x, dtype)``: int8 <-> int32 (saturating), int8 or int32 -> float32 (``fp.from_int32``,
  round to nearest even), float32 -> int8 or int32 (``fp.to_int32``: round to nearest even,
  saturate, NaN gives 0), float32 -> float16 or bfloat16 (``fp.narrow``), float16 or bfloat16
  -> float32 (``fp.widen``, exact).

Bad input raises :class:`CompileError` at once, naming the node: shapes that do not match, an
unsupported type or operation, a name used twice.
"""

from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from opentsp import fp

__all__ = ["CompileError", "Tensor", "Node", "Graph", "evaluate", "DTYPES", "FLOATS", "VIEWS",
           "wrap32",
           "requant_values", "numpy_dtype", "to_storage", "from_storage", "cast_values", "CASTS",
           "transpose_values", "reduction_values", "BINARY", "REDUCTIONS", "INDEXED",
           "MATMUL_TYPES", "matmul_values"]

#: Element types the compiler handles: name -> bytes per element.
DTYPES = {"int8": 1, "int32": 4, "float32": 4, "float16": 2, "bfloat16": 2}
#: The floating-point element types (the VXM computes float32 and converts the others).
FLOATS = ("float32", "float16", "bfloat16")
#: Operations and what they compute (for messages).
OPS = ("input", "const", "matmul", "bias_add", "relu", "requant", "add", "sub", "mul",
       "maximum", "minimum", "equal", "greater", "bitwise_and", "bitwise_or", "bitwise_xor",
       "right_shift", "exp", "reciprocal", "rsqrt", "tanh", "cast", "transpose", "concat",
       "slice_cols", "broadcast_cols", "row_max", "row_min", "state", "read_row", "write_row")
#: Operations on memory indexed at run time (MEM ``gather`` and ``scatter``).
INDEXED = ("read_row", "write_row")
#: Operations that only rename memory (the compiler emits no instruction for them);
#: ``block_eye`` is the lowering's (``compiler.lower``): an identity matrix made of one stored
#: ``mxm_size`` identity and zero vectors.
VIEWS = ("transpose", "concat", "slice_cols", "broadcast_cols", "block_eye")
#: Elementwise operations of two operands: the VXM instruction and the symbol for messages.
BINARY = {"add": ("add", "+"), "sub": ("sub", "-"), "mul": ("mul", "*"),
          "maximum": ("max", "and"), "minimum": ("min", "and"), "equal": ("cmpeq", "=="),
          "greater": ("cmpgt", ">"), "bitwise_and": ("and", "&"), "bitwise_or": ("or", "|"),
          "bitwise_xor": ("xor", "^"), "right_shift": ("shr", ">>")}
#: Row reductions (``compiler.lower`` computes them on the MXM and the VXM).
REDUCTIONS = ("row_max", "row_min")
#: The types the elementwise operations take (``right_shift``: the integers).
_ELEMENTWISE = ("int8", "int32", "float32")
_INTEGERS = ("int8", "int32")
#: The conversions ``cast`` makes: (from, to).
CASTS = {("int8", "int32"), ("int32", "int8"), ("int8", "float32"), ("int32", "float32"),
         ("float32", "int8"), ("float32", "int32"), ("float32", "float16"),
         ("float32", "bfloat16"), ("float16", "float32"), ("bfloat16", "float32")}
#: Unsigned bit-pattern containers and signed storage containers of the float types.
_BITS = {"float32": np.uint32, "float16": np.uint16, "bfloat16": np.uint16}
_SIGNED = {"int8": np.int8, "int32": np.int32, "float32": np.int32, "float16": np.int16,
           "bfloat16": np.int16}
_HALF_FORMATS = {"float16": fp.FP16, "bfloat16": fp.BF16}
#: The matmul's operand types (x and w alike) and its result type.
MATMUL_TYPES = {"int8": "int32", "float16": "float32", "bfloat16": "float32"}


def _names(types):
    """``"a, b or c"``."""
    return " or ".join([", ".join(types[:-1]), types[-1]]) if len(types) > 1 else types[0]


def numpy_dtype(dtype):
    """The numpy type of an element type's values (bfloat16: ``ml_dtypes.bfloat16``)."""
    return {"int8": np.int8, "int32": np.int32, "float32": np.float32,
            "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}[dtype]


def _bits(value, dtype):
    """The unsigned bit patterns of float values of ``dtype``."""
    return np.ascontiguousarray(value).view(_BITS[dtype])


def _from_bits(bits, dtype):
    """Float values of ``dtype`` from their bit patterns."""
    bits = np.ascontiguousarray(np.asarray(bits).astype(_BITS[dtype]))
    return bits.view(numpy_dtype(dtype))


def to_storage(value, dtype):
    """int64 values of the signed container the bytes travel in (``opentsp.packing``): the
    integers themselves, or a float's bit pattern read as int32 (float32) or int16."""
    value = np.asarray(value)
    if dtype in FLOATS:
        return _bits(value, dtype).view(_SIGNED[dtype]).astype(np.int64)
    return value.astype(np.int64)


def from_storage(ints, dtype):
    """The inverse of :func:`to_storage`: values of ``dtype`` from signed container integers."""
    ints = np.ascontiguousarray(np.asarray(ints).astype(_SIGNED[dtype]))
    if dtype in FLOATS:
        return ints.view(_BITS[dtype]).view(numpy_dtype(dtype))
    return ints


def _dtype_name(dtype):
    """A dtype given as a string or a numpy type, as its name (unknown ones as given)."""
    if isinstance(dtype, str):
        return dtype
    try:
        return np.dtype(dtype).name
    except TypeError:
        return dtype


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
        A key of :data:`DTYPES`: ``"int8"``, ``"int32"``, ``"float32"``, ``"float16"`` or
        ``"bfloat16"``.
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
        return int(np.prod(self.shape)) * DTYPES[self.dtype]

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
    """A graph of tensor operations, built node by node and checked as it goes.

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
            writer = self._writer(tensor)
            if writer is not None:
                # Its memory holds the next version once written: a later reader would see
                # that, not this one.
                raise CompileError(f"node {name!r} ({op}): state version {tensor.name!r} is "
                                   f"replaced by {writer.name!r} before this node; read "
                                   f"{writer.name!r} (or read {tensor.name!r} before writing)")
        node = Node(name, op, tuple(inputs), params)
        node.output = Tensor(name, tuple(int(d) for d in shape), dtype, node)
        self._names.add(name)
        self.nodes.append(node)
        return node.output

    def input(self, name, shape, dtype="int8"):
        """An input tensor of ``shape`` (rows, columns) and element type ``dtype`` (a name of
        :data:`DTYPES` or a numpy type), filled in at run time."""
        name = self._name(name, "input")
        where = f"node {name!r} (input)"
        dtype = _dtype_name(dtype)
        if dtype not in DTYPES:
            raise CompileError(f"{where}: unsupported dtype {dtype!r} ({_names(list(DTYPES))})")
        if (not isinstance(shape, tuple) or len(shape) != 2
                or not all(isinstance(d, int | np.integer) and d >= 1 for d in shape)):
            raise CompileError(f"{where}: shape must be (rows, columns) of positive integers, "
                               f"not {shape!r}")
        return self._add(name, "input", (), {}, shape, dtype)

    def state(self, name, shape, dtype, init=None):
        """A tensor of ``shape`` and ``dtype`` kept in memory across runs: ``init`` (an array,
        zeros if None) when the program is loaded, then whatever the runs wrote with
        :meth:`write_row`."""
        self._name(name, "state")           # the message names a state, not an input
        dtype = _dtype_name(dtype)
        if init is not None:
            value = np.asarray(init)
            if value.shape != tuple(shape) or str(value.dtype) != dtype:
                raise CompileError(f"node {name!r} (state): init must be {dtype} "
                                   f"{tuple(shape)}, not {value.dtype} {value.shape}")
        tensor = self.input(name, shape, dtype)
        node = tensor.node
        node.op = "state"
        node.params["init"] = (np.zeros(tensor.shape, numpy_dtype(tensor.dtype))
                               if init is None else np.asarray(init).copy())
        return tensor

    def read_row(self, table, index, name=None):
        """Row ``index`` of ``table`` (R, C), a constant, an input or a state version: (1, C).
        ``index`` is an int32 (1, 1) tensor (computed on the chip or not)."""
        name = self._name(name, "read_row")
        node = f"node {name!r} (read_row)"
        self._need_2d(node, table, "table")
        self._need_index(node, index)
        if table.node.op not in ("const", "input", "state", "write_row"):
            raise CompileError(f"{node}: the table {table.name!r} must be a constant, an input "
                               f"or a state, not the output of {_a(table.node.op)}")
        return self._add(name, "read_row", (table, index), {}, (1, table.shape[1]), table.dtype)

    def write_row(self, state, index, value, name=None):
        """``state`` with row ``index`` replaced by ``value`` (1, C): the state's next version
        (in the same memory). A version is written at most once."""
        name = self._name(name, "write_row")
        node = f"node {name!r} (write_row)"
        self._need_2d(node, state, "state")
        self._need_2d(node, value, "value")
        self._need_index(node, index)
        if state.node.op not in ("state", "write_row"):
            raise CompileError(f"{node}: {state.name!r} must be a state (g.state) or a version "
                               f"of one, not the output of {_a(state.node.op)}")
        writer = self._writer(state)
        if writer is not None:
            raise CompileError(f"{node}: state version {state.name!r} is already written by "
                               f"{writer.name!r} (write its new version)")
        if value.shape != (1, state.shape[1]) or value.dtype != state.dtype:
            raise CompileError(f"{node}: value must be {state.dtype} (1, {state.shape[1]}), not "
                               f"{value.dtype} {value.shape}")
        return self._add(name, "write_row", (state, index, value), {}, state.shape, state.dtype)

    def _writer(self, tensor):
        """The ``write_row`` node that replaces state version ``tensor``, if any."""
        if tensor.node.op not in ("state", "write_row"):
            return None
        return next((n for n in self.nodes if n.op == "write_row" and n.inputs[0] is tensor),
                    None)

    @staticmethod
    def _need_index(node, index):
        if not isinstance(index, Tensor) or index.shape != (1, 1) or index.dtype != "int32":
            raise CompileError(f"{node}: index must be an int32 (1, 1) tensor, not {index!r}")

    def const(self, name, value):
        """A constant: a numpy array of one or two dimensions of a type of :data:`DTYPES`
        (bfloat16: ``ml_dtypes.bfloat16``)."""
        name = self._name(name, "const")
        where = f"node {name!r} (const)"
        if not isinstance(value, np.ndarray):
            raise CompileError(f"{where}: value must be a numpy array, not {type(value).__name__}")
        dtype = str(value.dtype)
        if dtype not in DTYPES:
            raise CompileError(f"{where}: unsupported dtype {dtype} ({_names(list(DTYPES))})")
        if value.ndim not in (1, 2) or value.size == 0:
            raise CompileError(f"{where}: must have one or two non-empty dimensions, not shape "
                               f"{value.shape}")
        return self._add(name, "const", (), {"value": value.copy()}, value.shape, dtype)

    def matmul(self, x, w, name=None):
        """``x @ w``: int8 (M, K) x int8 constant (K, N) -> int32 (M, N), exact; float16 x
        float16 or bfloat16 x bfloat16 constant -> float32 (M, N), the exact sum rounded once
        (``opentsp.fp.mxm_dot32``)."""
        name = self._name(name, "matmul")
        node = f"node {name!r} (matmul)"
        self._need_2d(node, x, "x")
        self._need_2d(node, w, "w")
        for operand, tensor in (("x", x), ("w", w)):
            if tensor.dtype not in MATMUL_TYPES:
                raise CompileError(f"{node}: unsupported dtype {tensor.dtype} for {operand} "
                                   f"(matmul takes {_names(list(MATMUL_TYPES))})")
        if x.dtype != w.dtype:
            raise CompileError(f"{node}: dtypes differ: {x.dtype} @ {w.dtype} (matmul takes "
                               f"int8 @ int8, float16 @ float16 or bfloat16 @ bfloat16)")
        if x.shape[1] != w.shape[0]:
            raise CompileError(f"{node}: inner dimensions differ: {x.shape} @ {w.shape}")
        if w.node.op not in ("const", "transpose"):
            # The MXM loads its weights by column: the rows of a transposed tensor. So a
            # computed w is transposed on the chip, then read by rows (wᵀᵀ = w).
            w = self.transpose(self.transpose(w, name=f"{name}.wT"), name=f"{name}.w")
        return self._add(name, "matmul", (x, w), {}, (x.shape[0], w.shape[1]),
                         MATMUL_TYPES[x.dtype])

    def transpose(self, x, name=None):
        """``xᵀ``: int8, float16 or bfloat16 (R, C) -> (C, R), exact. No instructions where a
        matmul takes it as its weights; elsewhere the MXM computes ``eye(C) @ transpose(x)``."""
        name = self._name(name, "transpose")
        node = f"node {name!r} (transpose)"
        self._need_2d(node, x, "x")
        if x.dtype not in MATMUL_TYPES:
            raise CompileError(f"{node}: unsupported dtype {x.dtype} (transpose takes "
                               f"{_names(list(MATMUL_TYPES))})")
        return self._add(name, "transpose", (x,), {}, x.shape[::-1], x.dtype)

    def concat(self, parts, name=None):
        """The tensors ``parts`` side by side (numpy's ``concatenate(parts, axis=1)``): same rows
        and type. A view: the compiler wants every part but the last a whole number of
        ``mxm_size`` columns wide."""
        name = self._name(name, "concat")
        node = f"node {name!r} (concat)"
        if not isinstance(parts, list | tuple) or len(parts) < 2:
            raise CompileError(f"{node}: parts must be a list of at least two tensors, not "
                               f"{parts!r}")
        for i, part in enumerate(parts):
            self._need_2d(node, part, f"parts[{i}]")
        first = parts[0]
        for part in parts[1:]:
            if part.dtype != first.dtype:
                raise CompileError(f"{node}: dtypes differ: {first.dtype} and {part.dtype}")
            if part.shape[0] != first.shape[0]:
                raise CompileError(f"{node}: rows differ: {first.shape} and {part.shape}")
        cols = sum(part.shape[1] for part in parts)
        return self._add(name, "concat", tuple(parts), {}, (first.shape[0], cols), first.dtype)

    def slice_cols(self, x, start, stop, name=None):
        """Columns ``start .. stop - 1`` of ``x`` (``x[:, start:stop]``). A view: the compiler
        wants ``start`` a multiple of ``mxm_size``."""
        name = self._name(name, "slice_cols")
        node = f"node {name!r} (slice_cols)"
        self._need_2d(node, x, "x")
        if (not all(isinstance(v, int | np.integer) for v in (start, stop))
                or not 0 <= start < stop <= x.shape[1]):
            raise CompileError(f"{node}: columns must satisfy 0 <= start < stop <= "
                               f"{x.shape[1]}, not {start!r}..{stop!r}")
        return self._add(name, "slice_cols", (x,), {"start": int(start), "stop": int(stop)},
                         (x.shape[0], stop - start), x.dtype)

    def bias_add(self, h, b, name=None):
        """``h + b``: int32 (M, N) plus an int32 (N,) row broadcast over the rows, wrapping; or
        float32 plus float32."""
        name = self._name(name, "bias_add")
        node = f"node {name!r} (bias_add)"
        self._need_2d(node, h, "h")
        if not isinstance(b, Tensor):
            raise CompileError(f"{node}: operand b must be a Tensor, not {b!r}")
        if h.dtype != b.dtype or h.dtype not in ("int32", "float32"):
            raise CompileError(f"{node}: unsupported dtype {h.dtype} + {b.dtype} (bias_add "
                               f"takes int32 + int32 or float32 + float32)")
        if len(b.shape) != 1 or b.shape[0] != h.shape[1]:
            raise CompileError(f"{node}: bias shape {b.shape} does not match ({h.shape[1]},) "
                               f"for {h.shape}")
        return self._add(name, "bias_add", (h, b), {}, h.shape, h.dtype)

    def relu(self, h, name=None):
        """``max(h, 0)`` elementwise, same type (int8, int32 or float32)."""
        return self._unary("relu", h, name, _ELEMENTWISE)

    def exp(self, x, name=None):
        """``e**x`` elementwise (float32: ``opentsp.fp.exp32``)."""
        return self._unary("exp", x, name, ("float32",))

    def reciprocal(self, x, name=None):
        """``1 / x`` elementwise, correctly rounded (float32: ``opentsp.fp.reciprocal32``)."""
        return self._unary("reciprocal", x, name, ("float32",))

    def rsqrt(self, x, name=None):
        """``1 / sqrt(x)`` elementwise, correctly rounded (float32: ``opentsp.fp.rsqrt32``)."""
        return self._unary("rsqrt", x, name, ("float32",))

    def tanh(self, x, name=None):
        """``tanh(x)`` elementwise (float32: ``opentsp.fp.tanh32``)."""
        return self._unary("tanh", x, name, ("float32",))

    def _unary(self, op, x, name, types):
        name = self._name(name, op)
        node = f"node {name!r} ({op})"
        self._need_2d(node, x, "x" if op != "relu" else "h")
        if x.dtype not in types:
            raise CompileError(f"{node}: unsupported dtype {x.dtype} ({op} takes "
                               f"{_names(list(types))})")
        return self._add(name, op, (x,), {}, x.shape, x.dtype)

    def cast(self, x, dtype, name=None):
        """``x`` converted to ``dtype`` (a name of :data:`DTYPES` or a numpy type): int8 <->
        int32 saturating; int8 or int32 -> float32 rounding to nearest even; float32 -> int8 or
        int32 rounding to nearest even and saturating (NaN gives 0); float32 <-> float16 or
        bfloat16 (rounding to nearest even; widening is exact)."""
        name = self._name(name, "cast")
        node = f"node {name!r} (cast)"
        self._need_2d(node, x, "x")
        dtype = _dtype_name(dtype)
        if dtype not in DTYPES:
            raise CompileError(f"{node}: unknown dtype {dtype!r} ({_names(list(DTYPES))})")
        if dtype == x.dtype:
            raise CompileError(f"{node}: operand x {x.name!r} is already {dtype}")
        if (x.dtype, dtype) not in CASTS:
            half = x.dtype if x.dtype in ("float16", "bfloat16") else dtype
            raise CompileError(f"{node}: unsupported cast {x.dtype} -> {dtype} ({half} "
                               f"converts only to and from float32)")
        return self._add(name, "cast", (x,), {}, x.shape, dtype)

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
        """``a + b`` elementwise: same shape and type; int8 and int32 wrap, float32 rounds
        (``opentsp.fp.add32``)."""
        return self._binary("add", a, b, name)

    def sub(self, a, b, name=None):
        """``a - b`` elementwise: same shape and type; int8 and int32 wrap, float32 rounds
        (``opentsp.fp.sub32``)."""
        return self._binary("sub", a, b, name)

    def mul(self, a, b, name=None):
        """``a * b`` elementwise: same shape and type; int8 and int32 wrap (the low half),
        float32 rounds (``opentsp.fp.mul32``)."""
        return self._binary("mul", a, b, name)

    def maximum(self, a, b, name=None):
        """The larger of ``a`` and ``b`` elementwise: same shape and type (float32:
        ``opentsp.fp.max32``, ``-0 < +0``, NaN if either is NaN)."""
        return self._binary("maximum", a, b, name)

    def minimum(self, a, b, name=None):
        """The smaller of ``a`` and ``b`` elementwise (float32: ``opentsp.fp.min32``)."""
        return self._binary("minimum", a, b, name)

    def equal(self, a, b, name=None):
        """All ones where ``a == b`` (float32: by value, ``+0 == -0``, NaN equals nothing),
        else 0; the operands' type (a float32 mask of all ones is a NaN bit pattern)."""
        return self._binary("equal", a, b, name)

    def greater(self, a, b, name=None):
        """All ones where ``a > b`` (signed; float32 by value), else 0."""
        return self._binary("greater", a, b, name)

    def bitwise_and(self, a, b, name=None):
        """``a & b`` on the bit patterns (float32 too: a mask selects)."""
        return self._binary("bitwise_and", a, b, name)

    def bitwise_or(self, a, b, name=None):
        """``a | b`` on the bit patterns."""
        return self._binary("bitwise_or", a, b, name)

    def bitwise_xor(self, a, b, name=None):
        """``a ^ b`` on the bit patterns."""
        return self._binary("bitwise_xor", a, b, name)

    def right_shift(self, a, b, name=None):
        """``a >> (b mod bits)``, arithmetic; int8 or int32."""
        return self._binary("right_shift", a, b, name)

    def _binary(self, op, a, b, name):
        symbol = BINARY[op][1]
        name = self._name(name, op)
        node = f"node {name!r} ({op})"
        self._need_2d(node, a, "a")
        if not isinstance(b, Tensor):
            raise CompileError(f"{node}: operand b must be a Tensor, not {b!r}")
        if a.dtype != b.dtype:
            raise CompileError(f"{node}: dtypes differ: {a.dtype} {symbol} {b.dtype}")
        types = _INTEGERS if op == "right_shift" else _ELEMENTWISE
        if a.dtype not in types:
            raise CompileError(f"{node}: unsupported dtype {a.dtype} ({op} takes "
                               f"{_names(list(types))})")
        a, b = self._broadcast(node, name, symbol, a, b)
        return self._add(name, op, (a, b), {}, a.shape, a.dtype)

    def _broadcast(self, node, name, symbol, a, b):
        """``(a, b)`` of one shape, numpy's way: a (N,) constant ``b`` stays (the compiler
        reads its one row for every row), an (M, 1) operand becomes ``broadcast_cols``."""
        if len(b.shape) == 1:
            if b.shape[0] != a.shape[1]:
                raise CompileError(f"{node}: shapes differ: {a.shape} {symbol} {b.shape}")
            return a, b
        if a.shape == b.shape:
            return a, b
        if a.shape[0] == b.shape[0] and 1 in (a.shape[1], b.shape[1]):
            if b.shape[1] == 1:
                return a, self.broadcast_cols(b, a.shape[1], name=f"{name}.b")
            return self.broadcast_cols(a, b.shape[1], name=f"{name}.a"), b
        raise CompileError(f"{node}: shapes differ: {a.shape} {symbol} {b.shape}")

    def broadcast_cols(self, x, n, name=None):
        """The single column of ``x`` (M, 1) repeated ``n`` times: (M, n). A view."""
        name = self._name(name, "broadcast_cols")
        node = f"node {name!r} (broadcast_cols)"
        self._need_2d(node, x, "x")
        if x.shape[1] != 1:
            raise CompileError(f"{node}: x {x.name!r} must have one column, not {x.shape}")
        if not isinstance(n, int | np.integer) or n < 1:
            raise CompileError(f"{node}: n must be a positive integer, not {n!r}")
        return self._add(name, "broadcast_cols", (x,), {}, (x.shape[0], int(n)), x.dtype)

    def row_max(self, x, name=None):
        """The largest element of each row of float32 ``x`` (M, N): (M, 1). Computed as the
        largest of ``x + 0`` (-0 reads +0, subnormals flush); a row holding an infinity or
        NaN gives NaN."""
        return self._reduction("row_max", x, name)

    def row_min(self, x, name=None):
        """The smallest element of each row of float32 ``x`` (M, N), as :meth:`row_max`."""
        return self._reduction("row_min", x, name)

    def _reduction(self, op, x, name):
        name = self._name(name, op)
        node = f"node {name!r} ({op})"
        self._need_2d(node, x, "x")
        if x.dtype != "float32":
            raise CompileError(f"{node}: unsupported dtype {x.dtype} ({op} takes float32)")
        return self._add(name, op, (x,), {}, (x.shape[0], 1), "float32")

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

    @property
    def states(self):
        """State tensors (their first versions) by name."""
        return {n.name: n.output for n in self.nodes if n.op == "state"}

    def last_version(self, state):
        """The last version of ``state`` (a state tensor): what memory holds after a run."""
        version = state
        while (writer := self._writer(version)) is not None:
            version = writer.output
        return version

    def consumers(self, tensor):
        """Nodes that take ``tensor`` as an operand."""
        return [n for n in self.nodes if any(t is tensor for t in n.inputs)]

    def check_states(self, states):
        """The ``states`` dict (``{name: array}``, a subset of the states) checked: the state's
        dtype (bfloat16 also as uint16 bit patterns) and shape."""
        if not isinstance(states, dict):
            raise CompileError(f"states must be a dict {{name: array}}, not {states!r}")
        known = self.states
        unknown = sorted(set(states) - set(known))
        if unknown:
            raise CompileError(f"states {unknown} are not states of graph {self.name!r} "
                               f"({sorted(known)})")
        checked = {}
        for name, value in states.items():
            tensor, value = known[name], np.asarray(value)
            dtype = str(value.dtype)
            if tensor.dtype == "bfloat16" and dtype == "uint16":
                dtype, value = "bfloat16", _from_bits(value, "bfloat16")
            if value.shape != tensor.shape or dtype != tensor.dtype:
                raise CompileError(f"state {name!r} must be {tensor.dtype} {tensor.shape}, not "
                                   f"{value.dtype} {value.shape}")
            checked[name] = value
        return checked

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
            dtype = str(value.dtype)
            if tensor.dtype == "bfloat16" and dtype == "uint16":
                dtype = "bfloat16"              # bit patterns (ml_dtypes not needed)
            if value.shape != tensor.shape or dtype != tensor.dtype:
                raise CompileError(f"input {name!r} must be {tensor.dtype} {tensor.shape}, not "
                                   f"{value.dtype} {value.shape}")
            checked[name] = value
        return checked


def _wrap(values, dtype):
    """int64 values wrapped to ``dtype`` (int8 or int32) two's complement."""
    bits = 8 * DTYPES[dtype]
    return ((np.asarray(values, dtype=np.int64) + (1 << (bits - 1))) % (1 << bits)
            - (1 << (bits - 1))).astype(numpy_dtype(dtype))


#: float32 operations on bit patterns (the VXM's functions, :mod:`opentsp.fp`).
_F32 = {"add": fp.add32, "bias_add": fp.add32, "sub": fp.sub32, "mul": fp.mul32,
        "maximum": fp.max32, "minimum": fp.min32,
        "equal": lambda a, b: fp.cmpeq32(a, b).view(np.uint32),
        "greater": lambda a, b: fp.cmpgt32(a, b).view(np.uint32),
        "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or,
        "bitwise_xor": np.bitwise_xor,
        "relu": fp.relu32, "exp": fp.exp32, "reciprocal": fp.reciprocal32, "rsqrt": fp.rsqrt32,
        "tanh": fp.tanh32}
#: The same operations on integers, in int64 (wrapped to the type afterwards).
_INT = {"add": np.add, "bias_add": np.add, "sub": np.subtract, "mul": np.multiply,
        "maximum": np.maximum, "minimum": np.minimum,
        "equal": lambda a, b: -(a == b).astype(np.int64),
        "greater": lambda a, b: -(a > b).astype(np.int64),
        "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or,
        "bitwise_xor": np.bitwise_xor,
        "relu": lambda h: np.maximum(h, 0)}


def _elementwise(node, args):
    """``add``, ``bias_add``, ``mul``, ``maximum``, ``relu`` and the float32 functions."""
    dtype = node.output.dtype
    if dtype == "float32":
        bits = [_bits(a, "float32") for a in args]
        bits = np.broadcast_arrays(*bits) if len(bits) > 1 else bits
        return _from_bits(_F32[node.op](*bits), "float32")
    ints = [a.astype(np.int64) for a in args]
    if node.op == "right_shift":
        return _wrap(ints[0] >> (ints[1] % (8 * DTYPES[dtype])), dtype)
    return _wrap(_INT[node.op](*ints), dtype)


def cast_values(value, source, dtype):
    """``value`` (of element type ``source``) converted to ``dtype`` as ``cast`` (and the VXM's
    ``cvt``) does."""
    if source in ("float16", "bfloat16"):
        return _from_bits(fp.widen(_bits(value, source), _HALF_FORMATS[source]), "float32")
    if dtype in ("float16", "bfloat16"):
        return _from_bits(fp.narrow(_bits(value, "float32"), _HALF_FORMATS[dtype]), dtype)
    if source == "float32":
        ints = fp.to_int32(_bits(value, "float32")).astype(np.int64)
    elif dtype == "float32":
        return _from_bits(fp.from_int32(value.astype(np.int32)), "float32")
    else:
        ints = value.astype(np.int64)
    info = np.iinfo(numpy_dtype(dtype))
    return np.clip(ints, info.min, info.max).astype(numpy_dtype(dtype))


def matmul_values(x, w, dtype):
    """``x @ w`` as ``matmul`` computes it: int8 exact, wrapped to int32; float16 or bfloat16
    (values or bit patterns), every element the exact sum of the exact products rounded once to
    float32 (:func:`opentsp.fp.mxm_dot32`)."""
    if dtype == "int8":
        return wrap32(np.asarray(x).astype(np.int64) @ np.asarray(w).astype(np.int64)).astype(
            np.int32)
    fmt = _HALF_FORMATS[dtype]
    xb, wb = _bits(x, dtype), _bits(w, dtype)
    out = np.empty((xb.shape[0], wb.shape[1]), dtype=np.uint32)
    for (m, n), _ in np.ndenumerate(out):
        out[m, n] = fp.mxm_dot32(xb[m], wb[:, n], fmt)
    return out.view(np.float32)


def reduction_values(x, op):
    """``row_max`` or ``row_min`` of float32 ``x``: the extreme of ``x + 0`` per row, NaN for a
    row holding an infinity or NaN; (M, 1) float32."""
    bits = fp.add32(_bits(x, "float32"), np.uint32(0))
    pick = fp.max32 if op == "row_max" else fp.min32
    out = bits[:, :1].copy()
    for j in range(1, bits.shape[1]):
        out[:, 0] = pick(out[:, 0], bits[:, j])
    finite = (_bits(x, "float32") & 0x7F800000) != 0x7F800000
    out[~finite.all(axis=1), 0] = fp.FP32.nan
    return _from_bits(out, "float32")


def transpose_values(x, dtype):
    """``transpose(x)`` computed on the MXM: ``cast(eye(C) @ xᵀ)`` (int8: ``xᵀ``)."""
    if dtype == "int8":
        return np.asarray(x).T
    eye = np.eye(x.shape[1], dtype=np.float32).astype(numpy_dtype(dtype))
    return cast_values(matmul_values(eye, np.asarray(x).T, dtype), "float32", dtype)


def _input_value(node, args, inputs):
    value = inputs[node.name]
    if node.output.dtype == "bfloat16":
        value = _from_bits(_bits(value, "bfloat16"), "bfloat16")
    return value


def _matmul_value(node, args, inputs):
    if node.inputs[1].node.op == "transpose":       # the rows of w's operand, as they are
        return matmul_values(args[0], args[2].T, node.inputs[0].dtype)
    return matmul_values(args[0], args[1], node.inputs[0].dtype)


#: The value of each operation but the elementwise ones: ``f(node, args, inputs)``.
_VALUES = {
    "input": _input_value,
    "const": lambda node, args, inputs: node.params["value"],
    "state": lambda node, args, inputs: inputs.get(node.name, node.params["init"]),
    "read_row": lambda node, args, inputs: _indexed_value(node, args),
    "write_row": lambda node, args, inputs: _indexed_value(node, args),
    "matmul": _matmul_value,
    "requant": lambda node, args, inputs: requant_values(args[0], node.params["multiplier"],
                                                         node.params["shift"]),
    "cast": lambda node, args, inputs: cast_values(args[0], node.inputs[0].dtype,
                                                   node.output.dtype),
    "transpose": lambda node, args, inputs: transpose_values(args[0], node.output.dtype),
    "concat": lambda node, args, inputs: np.concatenate(args, axis=1),
    "slice_cols": lambda node, args, inputs: args[0][:, node.params["start"]:
                                                     node.params["stop"]],
    "broadcast_cols": lambda node, args, inputs: np.repeat(args[0], node.output.shape[1],
                                                           axis=1),
    "row_max": lambda node, args, inputs: reduction_values(args[0], "row_max"),
    "row_min": lambda node, args, inputs: reduction_values(args[0], "row_min"),
}


def _value(node, args, inputs):
    """The value of ``node`` from its operands' values ``args``."""
    if node.op in _VALUES:
        return _VALUES[node.op](node, args, inputs)
    if node.op in _F32 or node.op in BINARY:
        return _elementwise(node, args)
    raise CompileError(f"{node.describe()}: unsupported operation")   # pragma: no cover


def _row(node, table, index):
    """Row ``index`` (an int32 (1, 1) array) of ``table``, as ``read_row``/``write_row`` take
    it; ValueError naming the node if it is not a row."""
    row = int(np.asarray(index).reshape(-1)[0])
    if not 0 <= row < table.shape[0]:
        raise ValueError(f"{node.describe()}: index {row} is not a row of {node.inputs[0].name!r} "
                         f"(0..{table.shape[0] - 1})")
    return row


def _indexed_value(node, args):
    """``read_row`` and ``write_row``."""
    table, index = args[0], args[1]
    row = _row(node, table, index)
    if node.op == "read_row":
        return table[row:row + 1]
    updated = table.copy()
    updated[row] = args[2][0]
    return updated


def evaluate(graph, inputs, states=None):
    """Every tensor's value: integers in numpy int64 / Python integer arithmetic, floats with
    :mod:`opentsp.fp` on their bit patterns (the graph's meaning).

    ``states`` gives the states' values before the run (``{name: array}``, each its state's
    dtype and shape; a missing one takes its ``init``).

    Returns
    -------
    dict
        ``{tensor name: ndarray}`` in the tensor's own numpy type (:func:`numpy_dtype`).
    """
    inputs = graph.check_inputs(inputs)
    inputs.update(graph.check_states(states or {}))
    values = {}
    for node in graph.nodes:
        args = [values[t.name] for t in node.inputs]
        if node.op == "matmul" and node.inputs[1].node.op == "transpose":
            args.append(values[node.inputs[1].node.inputs[0].name])
        value = _value(node, args, inputs)
        values[node.name] = np.asarray(value).astype(numpy_dtype(node.output.dtype))
    return values
