"""Layers of a transformer as compositions of the graph's operations.

Each function adds the nodes of one layer to a :class:`~opentsp.compiler.graph.Graph` (named
``NAME.part``) and returns its result, so the graph's own semantics (``graph.evaluate``) are the
layer's exact numerics, and the compiler needs nothing new for them:

* ``sigmoid(x) = 0.5 + 0.5 * tanh(0.5 * x)`` and ``silu(x) = x * sigmoid(x)``, float32;
* ``row_sum(x)``: each float32 element split exactly into three bfloat16 parts (``hi`` the
  element rounded, ``mid`` what is left rounded, ``lo`` the rest), all ``3N`` parts summed on the
  MXM against ones: the exact sum of the row rounded once (for normal values);
* ``rms_norm(x, gain, eps) = x * rsqrt(row_sum(x * x) * (1/N) + eps) * gain``;
* ``softmax(x) = e / row_sum(e)`` with ``e = exp(x - row_max(x))`` (``reciprocal`` then
  ``mul``);
* ``argmax(x)``: the lowest column holding ``row_max(x)`` (int32, (M, 1));
* ``causal_mask(scores, position)``: ``-1e30`` added where the column is above ``position``.

The row reductions need the row's width a multiple of the configuration's ``mxm_size`` (the
compiler names the node otherwise).
"""

import ml_dtypes
import numpy as np

__all__ = ["sigmoid", "silu", "split_bf16", "row_sum", "rms_norm", "softmax", "argmax",
           "causal_mask", "MASKED", "NO_INDEX"]

#: What ``causal_mask`` adds to the scores of later positions: finite, so that ``row_max``
#: stays a number, and ``exp`` of it minus any score of a trained model is 0.
MASKED = np.float32(-1e30)
#: ``argmax`` of a row holding an infinity or NaN.
NO_INDEX = 1 << 20


def _shared(g, name, value):
    """The constant ``name`` of ``g``, made from ``value`` the first time (layers share
    their constants)."""
    node = next((n for n in g.nodes if n.name == name), None)
    return node.output if node is not None else g.const(name, value)


def _full(g, name, cols, value):
    """A shared (cols,) float32 constant of ``value``."""
    return _shared(g, name, np.full(cols, value, np.float32))


def sigmoid(g, x, name):
    """``0.5 + 0.5 * tanh(0.5 * x)`` of float32 ``x``."""
    half = _full(g, f"@half.{x.shape[1]}", x.shape[1], 0.5)
    t = g.tanh(g.mul(x, half, name=f"{name}.in"), name=f"{name}.tanh")
    return g.add(g.mul(t, half, name=f"{name}.scale"), half, name=name)


def silu(g, x, name):
    """``x * sigmoid(x)`` of float32 ``x``."""
    return g.mul(x, sigmoid(g, x, f"{name}.sigmoid"), name=name)


def split_bf16(g, x, name):
    """Float32 ``x`` (M, N) as its three bfloat16 parts side by side, (M, 3N): ``hi`` the
    value rounded, ``mid`` the rest rounded, ``lo`` what is left; ``hi + mid + lo`` is the
    value for normal numbers, so the MXM's exact sum of the parts against weights of 0 and 1
    moves or adds float32 values exactly (``row_sum``; ``lower``'s rotations)."""
    hi = g.cast(x, "bfloat16", name=f"{name}.hi")
    rest = g.sub(x, g.cast(hi, "float32", name=f"{name}.hi32"), name=f"{name}.rest")
    mid = g.cast(rest, "bfloat16", name=f"{name}.mid")
    low = g.cast(g.sub(rest, g.cast(mid, "float32", name=f"{name}.mid32"),
                       name=f"{name}.rest2"), "bfloat16", name=f"{name}.lo")
    return g.concat([hi, mid, low], name=f"{name}.parts")


def row_sum(g, x, name):
    """The sum of each row of float32 ``x`` (M, N), rounded once: (M, 1)."""
    n = x.shape[1]
    ones = _shared(g, f"@ones.{3 * n}", np.ones((3 * n, 1), ml_dtypes.bfloat16))
    return g.matmul(split_bf16(g, x, name), ones, name=name)


def rms_norm(g, x, gain, name, eps=1e-5, n=None):
    """``x * rsqrt(mean(x * x) + eps) * gain`` of float32 ``x`` (M, N), ``gain`` a (N,)
    float32 constant; the mean is ``row_sum`` times ``1/n`` (``n`` the real columns of an
    ``x`` padded with zeros; N if None)."""
    n = x.shape[1] if n is None else n
    total = row_sum(g, g.mul(x, x, name=f"{name}.square"), f"{name}.sum")
    scale = g.mul(total, g.const(f"{name}.inv_n", np.array([1 / n], np.float32)),
                  name=f"{name}.mean")
    shifted = g.add(scale, g.const(f"{name}.eps", np.array([eps], np.float32)),
                    name=f"{name}.eps_add")
    inverse = g.rsqrt(shifted, name=f"{name}.rsqrt")
    return g.mul(g.mul(x, inverse, name=f"{name}.normed"), gain, name=name)


def softmax(g, x, name):
    """``e / sum(e)`` with ``e = exp(x - row_max(x))`` along the rows of float32 ``x``."""
    top = g.row_max(x, name=f"{name}.max")
    e = g.exp(g.sub(x, top, name=f"{name}.shift"), name=f"{name}.exp")
    total = row_sum(g, e, f"{name}.sum")
    return g.mul(e, g.reciprocal(total, name=f"{name}.inverse"), name=name)


def argmax(g, x, name):
    """The lowest column of each row of float32 ``x`` (M, N) that holds its ``row_max``:
    int32 (M, 1); :data:`NO_INDEX` for a row with an infinity or NaN."""
    n = x.shape[1]
    top = g.row_max(x, name=f"{name}.max")
    hit = g.equal(x, top, name=f"{name}.hit")             # all ones (a NaN pattern) or 0
    columns = g.const(f"{name}.columns", np.arange(n, dtype=np.float32))
    none = _full(g, f"@no_index.{n}", n, NO_INDEX)
    all_ones = _shared(g, f"@all_ones.{n}", np.full(n, -1, np.int32).view(np.float32))
    flip = g.bitwise_xor(hit, all_ones, name=f"{name}.miss")
    candidates = g.bitwise_or(g.bitwise_and(hit, columns, name=f"{name}.at"),
                              g.bitwise_and(flip, none, name=f"{name}.far"),
                              name=f"{name}.candidates")
    return g.cast(g.row_min(candidates, name=f"{name}.min"), "int32", name=name)


def causal_mask(g, scores, position, name):
    """``scores`` (M, T) float32 plus :data:`MASKED` in the columns after ``position`` (an
    (M, 1) float32 tensor: the last column each row may see)."""
    t = scores.shape[1]
    columns = g.const(f"{name}.columns", np.arange(t, dtype=np.float32)[None, :].repeat(
        scores.shape[0], axis=0))
    later = g.greater(columns, position, name=f"{name}.later")
    masked = _full(g, f"@masked.{t}", t, MASKED)
    return g.add(scores, g.bitwise_and(later, masked, name=f"{name}.bias"), name=name)
