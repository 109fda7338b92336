"""Lowering: the graph the user built, rewritten into what the plan handles, and the views.

Two rewrites, before kernels are formed (:func:`lower`):

* A ``transpose`` that a matmul takes as its weights stays a *view*: the MXM loads its
  weights by column, and column ``j`` of ``kᵀ`` is row ``j`` of ``k``, a vector already stored
  in row layout. Any other ``transpose`` (consumed by something else, or an output) becomes
  ``cast(eye(C) @ transpose(x))``: the identity streamed through the MXM against the view
  gives row ``i`` of ``xᵀ`` (one exact product per element, so the cast back is exact).
* ``concat`` and ``slice_cols`` stay views: their vectors are their parts' vectors.
* Where ``lw`` loads ``R = mxm_load_rows > 1`` weight columns a cycle, from ``R`` different MEM
  slices, a state whose rows some matmul loads (a KV cache) is *striped*: row ``r`` in slice
  group ``r mod G`` (``G``, the power of two from ``R`` on), word ``r // G`` of the group
  (``plan.Indexed``). A ``write_row`` into it then writes every group, each at its own
  address: ``index // G`` in group ``index mod G``, a spare word (the *dummy*, ``ceil(rows /
  G)``) in the others, computed on the VXM (:func:`_stripe_indexes`).

A view costs no instruction and no memory; :class:`ViewVectors` makes its vectors look like
those of a stored tensor for every reader (chains, matmuls, outputs). The plan wants column
boundaries on whole vectors (multiples of ``mxm_size``) and, where a transposed tensor's row
vectors are loaded as weights, no garbage in their padding lanes: :func:`lower` raises
:class:`~opentsp.compiler.graph.CompileError` naming the node otherwise.
"""

from collections.abc import Mapping

import ml_dtypes
import numpy as np

from opentsp.compiler import resources
from opentsp.compiler.graph import REDUCTIONS, VIEWS, CompileError, Graph
from opentsp.compiler.layers import split_bf16

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
    stripes = resources.stripes(config)
    striped = _striped_states(graph) if stripes > 1 else {}
    out = Graph(graph.name)
    new = {}            # original tensor name -> tensor of ``out``
    for node in graph.nodes:
        inputs = tuple(new[t.name] for t in node.inputs)
        _check_view(node, size)
        if striped.get(node.name) is not None:
            new[node.name] = _striped_node(out, node, inputs, config)
            continue
        if node.op == "read_row" and striped.get(node.inputs[0].name) is not None:
            raise CompileError(
                f"{node.describe()}: state {striped[node.inputs[0].name]!r} is striped over "
                f"{stripes} slice groups (a matmul loads its rows, {config.mxm_load_rows} a "
                f"cycle) and a striped state cannot be gathered; keep a second state for it")
        if node.op == "transpose" and node.name in other:
            new[node.name] = _transpose_on_mxm(out, node, inputs[0], size)
            continue
        if node.op in REDUCTIONS:
            new[node.name] = _reduce(out, node, inputs[0], size)
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


def _striped_states(graph):
    """``tensor name -> state name`` for every version (the state and the ``write_row``
    results) of each state that a ``transpose`` reads (directly or through views): its rows are
    loaded as weights, whether the transpose stays a view or is computed on the MXM."""
    state_of = {}
    for node in graph.nodes:
        if node.op == "state":
            state_of[node.name] = node.name
        elif node.op == "write_row":
            state_of[node.name] = state_of[node.inputs[0].name]
    bases = view_bases(graph)
    loaded = {state_of[b] for node in graph.nodes if node.op == "transpose"
              for b in bases[node.name] if b in state_of}
    return {name: state for name, state in state_of.items() if state in loaded}


def _striped_node(out, node, inputs, config):
    """A version of a striped state in ``out``: the state with ``stripes`` in its params, or a
    ``write_row`` with the index of each group appended to its inputs."""
    stripes = resources.stripes(config)
    params = {**node.params, "stripes": stripes}
    if node.op == "write_row":
        dummy = resources.striped_rows(node.output.shape[0], config) // stripes
        inputs = inputs + _stripe_indexes(out, node, inputs[1], stripes, dummy)
    return out._add(node.name, node.op, inputs, params, node.output.shape, node.output.dtype)


def _stripe_indexes(out, node, index, stripes, dummy):
    """The row of each group that ``write_row`` ``node`` writes: ``index // G`` in group
    ``index mod G``, the dummy row (``resources.striped_rows`` / G) in the others (``d + (eq &
    (hi - d))``, int32 on the VXM)."""
    name = node.name

    def const(value):
        return _shared_const(out, f"@int32.{value}", np.full((1, 1), value, np.int32))

    dummy = const(dummy)
    high = out.right_shift(index, const(stripes.bit_length() - 1), name=f"{name}.hi")
    low = out.bitwise_and(index, const(stripes - 1), name=f"{name}.lo")
    offset = out.sub(high, dummy, name=f"{name}.off")
    return tuple(
        out.add(out.bitwise_and(out.equal(low, const(g), name=f"{name}.is{g}"), offset,
                                name=f"{name}.pick{g}"), dummy, name=f"{name}.at{g}")
        for g in range(stripes))


def _transpose_on_mxm(out, node, x, size):
    """``cast(eye(C) @ transpose(x))`` in ``out``, the cast named as ``node``. ``eye(C)`` is a
    ``block_eye`` view: one stored ``size`` x ``size`` identity per type (``@eyeT``) on its
    diagonal blocks, the zero vector elsewhere."""
    block = np.zeros((size, size), dtype=np.asarray(_ONE[x.dtype]).dtype)
    np.fill_diagonal(block, _ONE[x.dtype])
    block = _shared_const(out, f"@eye.{x.dtype}", block)
    cols = x.shape[1]
    eye = out._add(f"{node.name}.eye", "block_eye", (block,), {}, (cols, cols), x.dtype)
    view = out.transpose(x, name=f"{node.name}.view")
    product = out.matmul(eye, view, name=f"{node.name}.mm")
    return out.cast(product, x.dtype, name=node.name)


def _reduce(out, node, x, size):
    """``row_max`` / ``row_min`` of ``x`` (M, N) in ``out``, named as ``node`` (a one-column
    view of a vector whose every lane holds the result).

    ``canon = ((x * 0) + x) + 0`` makes zeros +0, subnormals +0 and every infinity NaN (so a
    row with one gives NaN in every lane, as ``graph.reduction_values`` defines), the column
    blocks meet lane by lane on the VXM, then the lanes of the one block left do, by
    rotations of 1, 2, 4, ... lanes until every lane has seen all: a rotation is exact on the
    MXM once the float32 values are split into three bfloat16 parts (:func:`_rotate`)."""
    name, n = node.name, x.shape[1]
    if n % size:
        raise CompileError(f"{node.describe()}: N = {n} is not a multiple of mxm_size {size} "
                           f"(the lanes past the last column would take part)")
    pick = out.maximum if node.op == "row_max" else out.minimum
    zero = _shared_const(out, f"@zero32.{n}", np.zeros(n, np.float32))
    canon = out.add(out.add(out.mul(x, zero, name=f"{name}.nan"), x, name=f"{name}.keep"),
                    zero, name=f"{name}.canon")
    extreme = out.slice_cols(canon, 0, size, name=f"{name}.block0")
    for block in range(1, n // size):
        extreme = pick(extreme, out.slice_cols(canon, block * size, (block + 1) * size,
                                               name=f"{name}.block{block}"),
                       name=f"{name}.blocks{block}")
    shift = 1
    while shift < size:
        extreme = pick(extreme, _rotate(out, extreme, shift, size, f"{name}.rot{shift}"),
                       name=f"{name}.lanes{shift}")
        shift *= 2
    return out.slice_cols(extreme, 0, 1, name=name)


def _rotate(out, v, shift, size, name):
    """``v`` (M, size) float32 with lane ``i`` taking lane ``(i - shift) mod size``: ``v = hi +
    mid + lo`` exactly (three bfloat16 parts, each what is left rounded), and the MXM sums the
    parts of the one lane each output lane's weights pick, once rounded: the value itself."""
    parts = split_bf16(out, v, name)
    weights = np.zeros((3 * size, size), np.float32)
    for i in range(size):
        for part in range(3):
            weights[part * size + (i - shift) % size, i] = 1
    weights = _shared_const(out, f"@rotate{shift}", weights.astype(ml_dtypes.bfloat16))
    return out.matmul(parts, weights, name=name)


def _shared_const(out, name, value):
    """The constant ``name`` of ``out``, made from ``value`` the first time (the lowering's
    constants are the same for every node that needs them)."""
    node = next((n for n in out.nodes if n.name == name), None)
    return node.output if node is not None else out.const(name, value)


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
        The view's node (``transpose``, ``concat``, ``slice_cols``, ``broadcast_cols`` or
        ``block_eye``).
    size : int
        ``mxm_size``.
    per : int
        ``mxm_load_rows``: a transpose's padding column ``j`` reads the zero vector of group ``j
        mod per`` (``plan._place_zero``) so that an ``lw`` element's columns lie apart.
    """

    def __init__(self, stores, node, size, per=1):
        self._stores = stores
        self._node = node
        self._size = size
        self._per = per
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
            row = nb * size + j if x.shape[0] > 1 else 0     # one row: in every column
            if row >= x.shape[0] and not self._kept(x.name, (row, kb)):
                return (zero[0] + f".{row % self._per}", zero[1]) if self._per > 1 else zero
            return x.name, (row, kb)
        r, cb = key
        if node.op == "broadcast_cols":         # one column, in every lane of its vectors
            return node.inputs[0].name, (r, 0)
        if node.op == "block_eye":
            return (node.inputs[0].name, (r % size, 0)) if cb == r // size else zero
        if node.op == "slice_cols":
            return node.inputs[0].name, (r, cb + node.params["start"] // size)
        part = max(i for i, offset in enumerate(self._offsets) if offset <= cb)
        return node.inputs[part].name, (r, cb - self._offsets[part])

    def _kept(self, name, key):
        """Whether ``name`` keeps a vector ``key`` past its rows (a striped state's zero rows,
        ``resources.striped_rows``): in their own slices, as ``lw`` wants them."""
        try:
            self._stores[name].vectors[key]
        except KeyError:
            return False
        return True

    def __getitem__(self, key):
        name, inner = self._source(key)
        return self._stores[name].vectors[inner]

    def __iter__(self):
        raise TypeError("the vectors of a view are looked up by key, not listed")

    def __len__(self):
        raise TypeError("the vectors of a view are looked up by key, not counted")
