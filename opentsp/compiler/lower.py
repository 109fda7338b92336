"""Lowering: the graph the user built, rewritten into what the plan handles, and the views.

Two rewrites, before kernels are formed (:func:`lower`):

* A ``transpose`` that a matmul takes as its weights stays a *view*: the MXM loads its
  weights by column, and column ``j`` of ``kᵀ`` is row ``j`` of ``k``, a vector already stored
  in row layout. Any other ``transpose`` (consumed by something else, or an output) becomes
  ``cast(eye(C) @ transpose(x))``: the identity streamed through the MXM against the view
  gives row ``i`` of ``xᵀ`` (one exact product per element, so the cast back is exact).
* ``concat`` and ``slice_cols`` stay views: their vectors are their parts' vectors.

A view costs no instruction and no memory; :class:`ViewVectors` makes its vectors look like
those of a stored tensor for every reader (chains, matmuls, outputs). The plan wants column
boundaries on whole vectors (multiples of ``mxm_size``) and, where a transposed tensor's row
vectors are loaded as weights, no garbage in their padding lanes: :func:`lower` raises
:class:`~opentsp.compiler.graph.CompileError` naming the node otherwise.
"""

from collections.abc import Mapping

import ml_dtypes
import numpy as np

from opentsp.compiler.graph import VIEWS, CompileError, Graph

__all__ = ["lower", "view_bases", "ViewVectors", "ZERO"]

#: Store name prefix of the zero vectors that pad a transposed tensor's missing rows.
ZERO = "@zero"
#: Identity matrices by element type (the MXM's transpose).
_ONE = {"int8": np.int8(1), "float16": np.float16(1), "bfloat16": ml_dtypes.bfloat16(1)}
#: What a transpose's matmul gives and what it casts back to.
_WIDE = {"int8": "int32", "float16": "float32", "bfloat16": "float32"}


def _weight_users(graph):
    """Names of tensors that some matmul takes as its weights, and of all other uses."""
    as_weights, other = set(), set(t.name for t in graph.outputs.values())
    for node in graph.nodes:
        for i, tensor in enumerate(node.inputs):
            (as_weights if node.op == "matmul" and i == 1 else other).add(tensor.name)
    return as_weights, other


def lower(graph, config):
    """``graph`` rewritten for ``config``: every ``transpose`` not taken only as a matmul's
    weights computed on the MXM; views checked. Returns a new :class:`Graph` whose tensors keep
    the original names (the lowered transposes' helpers are ``NAME.eye``, ``NAME.view`` and
    ``NAME.mm``)."""
    size = config.mxm_size
    _, other = _weight_users(graph)
    out = Graph(graph.name)
    new = {}            # original tensor name -> tensor of ``out``
    for node in graph.nodes:
        inputs = tuple(new[t.name] for t in node.inputs)
        _check_view(node, size)
        if node.op == "transpose" and node.name in other:
            new[node.name] = _transpose_on_mxm(out, node, inputs[0], size)
            continue
        if node.op == "matmul" and node.inputs[1].node.op == "transpose":
            # The rows of the transpose's operand, whether or not the transpose is also
            # computed for other users.
            k = new[node.inputs[1].node.inputs[0].name]
            _check_transposed_weights(node, k, size)
            w = out.transpose(k, name=f"{node.name}.rows")
            inputs = (inputs[0], w)
        new[node.name] = out._add(node.name, node.op, inputs, node.params, node.output.shape,
                                  node.output.dtype)
    for name, tensor in graph.outputs.items():
        out.outputs[name] = new[tensor.name]
    return out


def _transpose_on_mxm(out, node, x, size):
    """``cast(eye(C) @ transpose(x))`` in ``out``, the cast named as ``node``. ``eye(C)`` is a
    ``block_eye`` view: one stored ``size`` x ``size`` identity per type (``@eyeT``) on its
    diagonal blocks, the zero vector elsewhere."""
    name = f"@eye.{x.dtype}"
    block = next((n.output for n in out.nodes if n.name == name), None)
    if block is None:
        block = np.zeros((size, size), dtype=np.asarray(_ONE[x.dtype]).dtype)
        np.fill_diagonal(block, _ONE[x.dtype])
        block = out.const(name, block)
    cols = x.shape[1]
    eye = out._add(f"{node.name}.eye", "block_eye", (block,), {}, (cols, cols), x.dtype)
    view = out.transpose(x, name=f"{node.name}.view")
    product = out.matmul(eye, view, name=f"{node.name}.mm")
    return out.cast(product, x.dtype, name=node.name)


def _check_view(node, size):
    """Column boundaries of ``concat`` and ``slice_cols`` on whole vectors."""
    if node.op == "concat":
        for i, part in enumerate(node.inputs[:-1]):
            if part.shape[1] % size:
                raise CompileError(
                    f"{node.describe()}: part {i} {part.name!r} is {part.shape[1]} columns wide, "
                    f"not a multiple of mxm_size {size} (a concat joins whole vectors)")
    if node.op == "slice_cols" and node.params["start"] % size:
        raise CompileError(
            f"{node.describe()}: the slice starts at column {node.params['start']}, not a "
            f"multiple of mxm_size {size} (a slice takes whole vectors)")


def _check_transposed_weights(node, k, size):
    """A matmul loading the rows of ``k`` as its weights: the lanes of those rows past column
    K meet the lanes of x past column K; an input's or a constant's are zero, a computed
    tensor's hold whatever the VXM left there (0 x inf is NaN, garbage x garbage is not 0)."""
    base = k
    while base.node.op in ("concat", "slice_cols"):
        base = base.node.inputs[0]
    if base.node.op not in ("input", "const") and k.shape[1] % size:
        raise CompileError(
            f"{node.describe()}: the weights are the rows of {k.name!r}, which is computed on the "
            f"chip, and K = {k.shape[1]} is not a multiple of mxm_size {size}: the lanes past its "
            f"last column hold whatever the VXM left there; make K a multiple of {size}")


def view_bases(graph):
    """``view name -> names of the stored tensors it reads`` (views of views resolved)."""
    bases = {}
    for node in graph.nodes:
        if node.op in VIEWS:
            bases[node.name] = [b for t in node.inputs for b in bases.get(t.name, [t.name])]
    return bases


class ViewVectors(Mapping):
    """The vectors of a view, read through ``stores`` when asked for (so that a view of a
    tensor the scheduler has not produced yet resolves once it has).

    Parameters
    ----------
    stores : dict
        ``name -> Store``, filled as kernels are scheduled.
    node : Node
        The view's node (``transpose``, ``concat``, ``slice_cols`` or ``block_eye``).
    size : int
        ``mxm_size``.
    """

    def __init__(self, stores, node, size):
        self._stores = stores
        self._node = node
        self._size = size
        if node.op == "concat":
            self._offsets, offset = [], 0
            for part in node.inputs:
                self._offsets.append(offset)
                offset += part.shape[1] // size

    def _source(self, key):
        node, size = self._node, self._size
        zero = f"{ZERO}{self._stores[node.inputs[0].name].width}", (0, 0)
        if node.op == "transpose":      # weights: (kb, nb, j) is row nb * size + j of x
            kb, nb, j = key
            x = node.inputs[0]
            row = nb * size + j
            return (x.name, (row, kb)) if row < x.shape[0] else zero
        r, cb = key
        if node.op == "block_eye":
            return (node.inputs[0].name, (r % size, 0)) if cb == r // size else zero
        if node.op == "slice_cols":
            return node.inputs[0].name, (r, cb + node.params["start"] // size)
        part = max(i for i, offset in enumerate(self._offsets) if offset <= cb)
        return node.inputs[part].name, (r, cb - self._offsets[part])

    def __getitem__(self, key):
        name, inner = self._source(key)
        return self._stores[name].vectors[inner]

    def __iter__(self):
        raise TypeError("the vectors of a view are looked up by key, not listed")

    def __len__(self):
        raise TypeError("the vectors of a view are looked up by key, not counted")
