"""One Llama-2 7B decoder layer at batch 1 (a decode step) scheduled by the compiler for
``groq``, and the picture of one decode step of the Zen model on ``lm`` (issue 19, items 4
and 5; docs/transformer.md).

    .venv/bin/python bench/llama_layer.py [--context 2048] [--head] [--whole]
    .venv/bin/python bench/llama_layer.py --check          # the padding is the same function
    .venv/bin/python bench/llama_layer.py --model 70b [--context 2048] [--check] [--head]
    .venv/bin/python bench/llama_layer.py --no-layer --plot docs/lm_step.png

**The layer** is the graph of ``opentsp.app.lm_chip.layer`` at Llama-2 7B's size: hidden
4096, 32 heads of 128, SwiGLU 11008, RMSNorm (eps 1e-5), bfloat16 weights (random, fixed
seed: cycles do not depend on values), float32 activations cast to bfloat16 before every
matmul, a KV cache of ``--context`` positions as two states per 320-column block written
with ``write_row`` at the position a state holds, attention over the whole cache with
``layers.causal_mask`` and ``layers.softmax``, ``q_h @ K_hᵀ`` and ``p_h @ V_h`` per head.
Every figure is ``opentsp.compiler.predict(graph, "groq")``: the compiler's exact schedule (no
emission); the busy counts come from the same call's reservation tables.

The compiler wants column boundaries of views and the width of row reductions on multiples
of ``mxm_size`` (320), so the layer is *padded*, computing exactly the same function
(``--check`` evaluates the graph's exact semantics, and the pieces' one after the other,
against a float64 Llama layer on a scaled down model):

* hidden 4096 -> 4160 (13 x 320) and the FFN 11008 -> 11200 (35 x 320): zero rows and
  columns in every weight, zero gains, so the padded columns stay 0; the RMSNorm divides by
  the real 4096;
* heads two to a 320-column block (columns 0..127 and 128..255, 64 zero columns): q, k, v
  and the KV cache are 16 x 320 = 5120 wide; ``q_h`` is its block with the other head's
  columns zeroed (a mask), and ``p_h @ V_block`` keeps its own head's 128 columns (a mask);
* the cache has the context rounded up to 320 rows (2048 -> 2240); the causal mask removes
  the rows past the position.

A layer's bfloat16 weights are 1.75 times one chip's SRAM, so the compiler refuses the whole
layer on ``groq`` (``--whole`` shows it). The layer is scheduled as *pieces*, each one program
that fits one ``groq`` chip, run one after the other for the token (a pipeline of chips; the
chip-to-chip transfer of a 1 x 4160 activation is not modelled): ``qkv`` (the attention
RMSNorm and the three projections), ``attention`` (the cache writes and the 32 heads), ``wo``
(and the residual), ``ffn.a`` and ``ffn.b`` (the FFN's RMSNorm and its hidden columns split
18 + 17 blocks, each with its rows of ``w2``; the second adds its partial sum to the first's).
``--head`` adds the final RMSNorm, the LM head (4096 x 32000, two pieces of 16000 columns) and
the argmax.

**Llama-2 70B** (``--model 70b``): hidden 8192 -> 8320 (26 x 320), 64 query heads of 128 with
*grouped-query attention*, 8 KV heads each shared by 8 query heads, SwiGLU 28672 -> 28800 (90 x
320), 80 layers. k, v and the cache are 4 blocks of 320 (two KV heads each); q is 32 blocks, 8
per KV block, block ``8m + i`` holding in the columns of KV head ``g`` (of KV block ``m``) its
``i``-th query head (:meth:`Dims.query_head`), so that the masked ``q_h @ K_blockᵀ`` and
``p_h @ V_block`` are head ``h``'s with its KV head; each KV block's cache views (and V
transposes) serve its 8 query blocks. On ``groq`` a bfloat16 weight column is pinned to 32 of a
side's 44 slices (the 16 columns of an ``lw`` element in 32 different slices), so a chip holds
at most 2 x 32 x 8192 words of weights, about 160 MiB, less with an RMSNorm's reduction tiles:
the layer is 15 pieces, ``qkv.a`` (the RMSNorm, ``wk``, ``wv`` and q's first 16 blocks),
``qkv.b`` (q's other 16 blocks, appended), ``attention`` (64 heads), ``wo.a`` and ``wo.b`` (16
row blocks of ``wo`` each; ``wo.b`` also the FFN's RMSNorm), ``ffn.a`` .. ``ffn.j`` (9 hidden
blocks each), and the LM head 5 pieces of 6400 columns. ``--check`` then checks grouped-query
attention on a small model (6 query heads sharing 3 KV heads) and the pieces run one after the
other. The compiler has no int8 x bfloat16 matmul (int8 weights would need int8 activations),
so the weights stay bfloat16.

On ``groq`` an ``lw`` element takes 16 weight columns from 16 different MEM slices (pairs):
the compiler stripes each cache state over 16 slice groups and stores the V transposes' rows
in the weight pins, group by row (docs/compiler.md, "Loading rows where lw takes several
columns a cycle"), so the attention is scheduled as written.

**The picture** (``--plot FILE.png``) is one decode step of the Zen model
(``opentsp.app.lm_chip.decode_graph``) compiled for ``lm`` and run on the golden model
(``opentsp.app.schedule_plot.collect``, which must count the predicted cycles): the busy cycles
of every MXM sequencer, MEM slice and the VXM (the compiler's reservation tables: the program
the golden model runs) in bins of cycles, coloured by the phase of the step the instruction
serves (from its comment), above the golden model's stream occupancy; the busy cycles per unit
and phase are printed.
"""

import argparse
import contextlib
import math
import re
import sys
import time
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from opentsp.compiler import CompileError, Graph, evaluate, layers, predict
from opentsp.compiler import program as compiler_program
from opentsp.compiler.lower import lower
from opentsp.config import get_config

BF16 = ml_dtypes.bfloat16
#: Llama-2 (Touvron et al. 2023): hidden, query heads, KV heads (70B: grouped-query attention,
#: each K/V head shared by 8 query heads), head width, FFN, layers, vocabulary; ``groq``: Groq's
#: published decode speed at batch 1 (../shared/docs/tsp-brief.md; 70B on several hundred
#: chips); ``ffn_parts`` and ``head_parts``: the pieces (chips) the FFN and the LM head are cut
#: into so that each fits one ``groq`` chip in bfloat16.
MODELS = {
    "7b": {"name": "Llama-2 7B", "hidden": 4096, "heads": 32, "kv_heads": 32, "head_dim": 128,
           "ffn": 11008, "layers": 32, "vocab": 32000, "eps": 1e-5, "groq": 750,
           "qkv_parts": 1, "wo_parts": 1, "ffn_parts": 2, "head_parts": 2},
    "70b": {"name": "Llama-2 70B", "hidden": 8192, "heads": 64, "kv_heads": 8, "head_dim": 128,
            "ffn": 28672, "layers": 80, "vocab": 32000, "eps": 1e-5, "groq": 300,
            "qkv_parts": 2, "wo_parts": 2, "ffn_parts": 10, "head_parts": 5},
}
LLAMA = MODELS["7b"]


def _up(n, size):
    """``n`` rounded up to a multiple of ``size``."""
    return -(-n // size) * size


@dataclass(frozen=True)
class Dims:
    """A decoder layer's sizes, real and padded to the chip's ``size`` (``mxm_size``).

    Parameters
    ----------
    hidden, heads, head_dim, ffn, context : int
        The model's sizes and the KV cache's positions.
    size : int
        The configuration's ``mxm_size``: view boundaries and reduction widths are multiples.
    eps : float
        The RMSNorm's epsilon.
    kv_heads : int or None
        Heads of K and V (grouped-query attention: each serves ``heads // kv_heads`` query
        heads); None: as many as the query heads.
    """

    hidden: int
    heads: int
    head_dim: int
    ffn: int
    context: int
    size: int
    eps: float = 1e-5
    kv_heads: int | None = None

    def __post_init__(self):
        if self.head_dim > self.size:
            raise ValueError(f"head_dim {self.head_dim} is wider than mxm_size {self.size}")
        if self.kv_heads is None:
            object.__setattr__(self, "kv_heads", self.heads)
        if self.kv_heads < 1 or self.heads % self.kv_heads:
            raise ValueError(f"{self.heads} query heads do not share {self.kv_heads} KV heads "
                             f"evenly")

    @property
    def hidden_p(self):
        return _up(self.hidden, self.size)

    @property
    def ffn_p(self):
        return _up(self.ffn, self.size)

    @property
    def rows(self):
        """Rows of the KV cache: the context rounded up to ``size``."""
        return _up(self.context, self.size)

    @property
    def per_block(self):
        """Heads in one ``size``-column block."""
        return self.size // self.head_dim

    @property
    def group(self):
        """Query heads that share one KV head."""
        return self.heads // self.kv_heads

    @property
    def kv_blocks(self):
        """Column blocks of k, v and the cache: KV head ``g`` in block ``g // per_block``."""
        return -(-self.kv_heads // self.per_block)

    @property
    def blocks(self):
        """Column blocks of q (and of the attention's output): ``group`` of them per KV block,
        each holding in the columns of KV head ``g`` one of the query heads ``g`` serves."""
        return self.kv_blocks * self.group

    @property
    def qkv_p(self):
        """Width of the padded q (and of k and v without grouped-query attention)."""
        return self.blocks * self.size

    @property
    def kv_p(self):
        """Width of the padded k, v and cache."""
        return self.kv_blocks * self.size

    def query_head(self, block, j):
        """The query head in the ``j``-th head columns of q's ``block``, or None: the ``i``-th
        query head of the KV head in the same columns of KV block ``block // group``."""
        g = (block // self.group) * self.per_block + j
        return g * self.group + block % self.group if g < self.kv_heads else None

    def head_columns(self, h):
        """Columns of query head ``h`` in the padded q: ``(block, start, stop)``, start and stop
        within the block (those of its KV head in the KV block)."""
        g = h // self.group
        start = (g % self.per_block) * self.head_dim
        return (g // self.per_block) * self.group + h % self.group, start, start + self.head_dim

    def qkv_index(self):
        """The padded column of every real column of q (and of the attention's output)."""
        index = []
        for h in range(self.heads):
            block, start, _ = self.head_columns(h)
            index += range(block * self.size + start, block * self.size + start + self.head_dim)
        return np.array(index)

    def kv_index(self):
        """The padded column of every real column of k and v."""
        index = []
        for g in range(self.kv_heads):
            start = (g // self.per_block) * self.size + (g % self.per_block) * self.head_dim
            index += range(start, start + self.head_dim)
        return np.array(index)


def llama_dims(context, size, model=LLAMA):
    """:class:`Dims` of a Llama-2 model (:data:`MODELS`; 7B unless said) with a cache of
    ``context`` positions."""
    return Dims(model["hidden"], model["heads"], model["head_dim"], model["ffn"], context, size,
                model["eps"], model["kv_heads"])


# Weights ------------------------------------------------------------------------------------

def real_weights(dims, seed):
    """Random weights of the real (unpadded) layer, bfloat16 matrices and float32 gains.

    The scale 1/sqrt(fan-in) keeps activations of order one; the softmax's 1/sqrt(head_dim) is
    folded into ``wq`` (as :mod:`opentsp.app.lm_model` does)."""
    rng = np.random.default_rng(seed)
    d, f = dims.hidden, dims.ffn
    dq, dkv = dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim

    def matrix(rows, cols, scale):
        return (rng.standard_normal((rows, cols), np.float32) * np.float32(scale)).astype(BF16)

    w = {"wq": matrix(d, dq, 1 / math.sqrt(d) / math.sqrt(dims.head_dim)),
         "wk": matrix(d, dkv, 1 / math.sqrt(d)), "wv": matrix(d, dkv, 1 / math.sqrt(d)),
         "wo": matrix(dq, d, 1 / math.sqrt(d)), "w1": matrix(d, f, 1 / math.sqrt(d)),
         "w3": matrix(d, f, 1 / math.sqrt(d)), "w2": matrix(f, d, 1 / math.sqrt(f))}
    w["g_attn"] = (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)
    w["g_ffn"] = (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)
    return w


def padded_weights(dims, w):
    """The weights laid out for the padded layer: zero rows and columns (zero gains) where the
    padding is, q, k, v columns two heads to a block (:meth:`Dims.qkv_index`,
    :meth:`Dims.kv_index`)."""
    hp, fp, qp = dims.hidden_p, dims.ffn_p, dims.qkv_p
    heads = dims.qkv_index()

    def place(matrix, rows, cols, row_index=None, col_index=None):
        out = np.zeros((rows, cols), BF16)
        r = np.arange(matrix.shape[0]) if row_index is None else row_index
        c = np.arange(matrix.shape[1]) if col_index is None else col_index
        out[np.ix_(r, c)] = matrix
        return out

    p = {"wq": place(w["wq"], hp, qp, col_index=heads)}
    for name in ("wk", "wv"):
        p[name] = place(w[name], hp, dims.kv_p, col_index=dims.kv_index())
    p["wo"] = place(w["wo"], qp, hp, row_index=heads)
    p["w1"] = place(w["w1"], hp, fp)
    p["w3"] = place(w["w3"], hp, fp)
    p["w2"] = place(w["w2"], fp, hp)
    for name in ("g_attn", "g_ffn"):
        p[name] = np.zeros(hp, np.float32)
        p[name][:dims.hidden] = w[name]
    return p


# The graph ----------------------------------------------------------------------------------

def _bf16(g, x):
    return g.cast(x, "bfloat16", name=f"{x.name}.bf16")


def rms_norm(g, x, gain, name, n, eps):
    """``layers.rms_norm`` with the mean over the ``n`` real columns of a padded ``x`` (its
    padding is zero, so the sum is the real one)."""
    return layers.rms_norm(g, x, gain, name, eps, n=n)


def attn_norm(g, dims, w, x):
    """The attention's RMSNorm, as bfloat16."""
    return _bf16(g, rms_norm(g, x, g.const("g_attn", w["g_attn"]), "attn_norm", dims.hidden,
                             dims.eps))


def kv_part(g, w, n):
    """The K and V projections of the normed ``n``, bfloat16."""
    k = _bf16(g, g.matmul(n, g.const("wk", w["wk"]), name="k"))
    v = _bf16(g, g.matmul(n, g.const("wv", w["wv"]), name="v"))
    return k, v


def qkv_part(g, dims, w, x):
    """The attention RMSNorm and the projections: q (float32), k and v (bfloat16)."""
    n = attn_norm(g, dims, w, x)
    q = g.matmul(n, g.const("wq", w["wq"]), name="q")
    return (q, *kv_part(g, w, n))


def _head_mask(g, dims, j):
    """(size,) float32: 1 in the columns of the ``j``-th head of a block, else 0."""
    name = f"head_mask{j}"
    node = next((nd for nd in g.nodes if nd.name == name), None)
    if node is not None:
        return node.output
    mask = np.zeros(dims.size, np.float32)
    mask[j * dims.head_dim:(j + 1) * dims.head_dim] = 1
    return g.const(name, mask)


def _cache_views(g, b, keys, values):
    """Block ``b`` of the caches as the matmuls take them: ``(K_bᵀ, V_b)`` (2 heads)."""
    k_b = g.transpose(keys, name=f"b{b}.kT")
    # p @ V_b loads the columns of V_b, the rows of V_bᵀ: transposed on the MXM once per
    # block (write_row writes rows; nothing keeps a transposed cache).
    v_t = g.transpose(values, name=f"b{b}.vT")
    return k_b, g.transpose(v_t, name=f"b{b}.vTT")


def _cache_block(g, dims, b, pos, name, new):
    """Column block ``b`` of a cache (a state of its own, ``NAME{b}``: on ``groq`` the compiler
    stripes it over 16 slice groups, two slices each, so that an ``lw`` element takes 16 of its
    rows at once) with row ``pos`` replaced by block ``b`` of ``new``."""
    cols = (b * dims.size, (b + 1) * dims.size)
    return g.write_row(g.state(f"{name}{b}", (dims.rows, dims.size), "bfloat16"), pos,
                       g.slice_cols(new, *cols, name=f"b{b}.{name[0]}new"),
                       name=f"{name}{b}.next")


def attention_part(g, dims, q, k, v):
    """The KV-cache writes at the position the state ``pos`` holds and attention over the whole
    cache per head: the heads side by side as in q, bfloat16 (1, qkv_p). With grouped-query
    attention each KV block's cache views serve its ``group`` blocks of q."""
    size = dims.size
    zero = g.const("zero", np.zeros((1, 1), np.int32))
    pos = g.read_row(g.state("pos", (1, 1), "int32"), zero, name="pos.now")
    position = g.cast(pos, "float32", name="pos.f32")
    blocks = []
    for m in range(dims.kv_blocks):
        k_b, v_b = _cache_views(g, m, *(_cache_block(g, dims, m, pos, name, new)
                                         for name, new in (("kcache", k), ("vcache", v))))
        for b in range(m * dims.group, (m + 1) * dims.group):
            q_b = g.slice_cols(q, b * size, (b + 1) * size, name=f"b{b}.q")
            out = None
            for j in range(dims.per_block):
                h = dims.query_head(b, j)
                if h is None:
                    continue
                hp = f"h{h}"
                mask = _head_mask(g, dims, j)
                q_h = _bf16(g, g.mul(q_b, mask, name=f"{hp}.q"))
                scores = g.matmul(q_h, k_b, name=f"{hp}.scores")
                probs = layers.softmax(g, layers.causal_mask(g, scores, position, f"{hp}.mask"),
                                       f"{hp}.p")
                a_h = g.mul(g.matmul(_bf16(g, probs), v_b, name=f"{hp}.pv"), mask,
                            name=f"{hp}.out")
                out = a_h if out is None else g.add(out, a_h, name=f"{hp}.join")
            blocks.append(out)
    return _bf16(g, g.concat(blocks, name="heads")) if len(blocks) > 1 else _bf16(g, blocks[0])


def output_part(g, w, heads, x):
    """``x + heads @ wo``."""
    return g.add(x, g.matmul(heads, g.const("wo", w["wo"]), name="attn"), name="resid1")


def ffn_norm(g, dims, w, x):
    """The FFN's RMSNorm, as bfloat16."""
    return _bf16(g, rms_norm(g, x, g.const("g_ffn", w["g_ffn"]), "ffn_norm", dims.hidden,
                             dims.eps))


def ffn_part(g, w, n, residual, lo, hi, name):
    """``residual + (silu(n @ w1) * (n @ w3)) @ w2`` over the FFN's hidden columns
    ``lo .. hi - 1``."""
    gate = layers.silu(g, g.matmul(n, g.const(f"{name}.w1", np.ascontiguousarray(
        w["w1"][:, lo:hi])), name=f"{name}.gate"), f"{name}.silu")
    up = g.matmul(n, g.const(f"{name}.w3", np.ascontiguousarray(w["w3"][:, lo:hi])),
                  name=f"{name}.up")
    down = g.matmul(_bf16(g, g.mul(gate, up, name=f"{name}.glu")),
                    g.const(f"{name}.w2", np.ascontiguousarray(w["w2"][lo:hi])),
                    name=f"{name}.down")
    return g.add(residual, down, name=f"{name}.resid")


def ffn_splits(dims, parts):
    """Column ranges of the FFN's hidden units, ``parts`` pieces of whole blocks."""
    return _splits(dims.ffn_p, dims.size, parts)


def layer_graph(dims, w):
    """The whole layer as one graph: ``x`` (1, hidden_p) float32 in, ``x`` out."""
    g = Graph("llama_layer")
    x = g.input("x", (1, dims.hidden_p), "float32")
    q, k, v = qkv_part(g, dims, w, x)
    x = output_part(g, w, attention_part(g, dims, q, k, v), x)
    n = ffn_norm(g, dims, w, x)
    x = ffn_part(g, w, n, x, 0, dims.ffn_p, "ffn")
    g.output("y", x)
    return g


def attention_graph(dims):
    """The ``attention`` piece: q (float32), k, v (bfloat16) in, the heads out."""
    g = Graph("attention")
    q = g.input("q", (1, dims.qkv_p), "float32")
    k, v = (g.input(name, (1, dims.kv_p), "bfloat16") for name in ("k", "v"))
    g.output("heads", attention_part(g, dims, q, k, v))
    return g


def _splits(width, size, parts):
    """Column ranges of ``width`` columns, ``parts`` pieces of whole ``size`` blocks."""
    blocks = width // size
    edges = [round(i * blocks / parts) * size for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _letter(i):
    return chr(ord("a") + i)


def _qkv_pieces(dims, w, parts):
    """The projections as pieces: one ``qkv``, or ``qkv.a`` (the RMSNorm, ``wk``, ``wv`` and
    the first columns of ``wq``: ``q.part``) and ``qkv.b`` ... (the next columns of ``wq``, each
    appended to the ``q.part`` so far; the last one's is ``q``)."""
    hp = dims.hidden_p
    g = Graph("qkv" if parts == 1 else "qkv.a")
    if parts == 1:
        q, k, v = qkv_part(g, dims, w, g.input("x", (1, hp), "float32"))
        for name, t in (("q", q), ("k", k), ("v", v)):
            g.output(name, t)
        return [("qkv", g)]
    pieces = []
    for i, (lo, hi) in enumerate(_splits(dims.qkv_p, dims.size, parts)):
        name = f"qkv.{_letter(i)}"
        if i:
            g = Graph(name)
            n = g.input("n", (1, hp), "bfloat16")
        else:
            n = attn_norm(g, dims, w, g.input("x", (1, hp), "float32"))
            g.output("n", n)
            for kv, t in zip("kv", kv_part(g, w, n), strict=True):
                g.output(kv, t)
        q = g.matmul(n, g.const(f"wq.{_letter(i)}", np.ascontiguousarray(w["wq"][:, lo:hi])),
                     name=f"q.{_letter(i)}")
        if i:
            q = g.concat([g.input("q.part", (1, lo), "float32"), q],
                         name=f"q.{_letter(i)}.join")
        g.output("q" if i == parts - 1 else "q.part", q)
        pieces.append((name, g))
    return pieces


def _wo_pieces(dims, w, parts):
    """``x + heads @ wo`` as pieces: one ``wo``, or ``wo.a`` ... each with its rows of ``wo``,
    adding its partial sum to the previous one's; the last of several also does the FFN's
    RMSNorm (``n``), so that the FFN's pieces hold only their weights."""
    hp, qp = dims.hidden_p, dims.qkv_p
    if parts == 1:
        g = Graph("wo")
        g.output("x1", output_part(g, w, g.input("heads", (1, qp), "bfloat16"),
                                   g.input("x", (1, hp), "float32")))
        return [("wo", g)]
    pieces = []
    for i, (lo, hi) in enumerate(_splits(qp, dims.size, parts)):
        name = f"wo.{_letter(i)}"
        g = Graph(name)
        heads = g.slice_cols(g.input("heads", (1, qp), "bfloat16"), lo, hi, name=f"{name}.in")
        part = g.matmul(heads, g.const(name, np.ascontiguousarray(w["wo"][lo:hi])),
                        name=f"{name}.attn")
        residual = g.input("x" if i == 0 else "partial", (1, hp), "float32")
        x1 = g.output("x1" if i == parts - 1 else "partial",
                      g.add(residual, part, name=f"{name}.resid"))
        if i == parts - 1:
            g.output("n", ffn_norm(g, dims, w, x1))
        pieces.append((name, g))
    return pieces


def piece_graphs(dims, w, ffn_parts=2, qkv_parts=1, wo_parts=1):
    """The layer as pieces that each fit one chip, in the order they run: ``[(name, graph)]``.
    Each piece's inputs are the previous pieces' outputs of the same names. ``qkv_parts`` and
    ``wo_parts``: the pieces of the projections (:func:`_qkv_pieces`) and of ``wo``
    (:func:`_wo_pieces`)."""
    hp = dims.hidden_p
    pieces = _qkv_pieces(dims, w, qkv_parts)
    pieces.append(("attention", attention_graph(dims)))
    pieces += _wo_pieces(dims, w, wo_parts)
    for i, (lo, hi) in enumerate(ffn_splits(dims, ffn_parts)):
        name = f"ffn.{_letter(i)}"
        g = Graph(name)
        residual = g.input("x1" if i == 0 else "partial", (1, hp), "float32")
        norm = i == 0 and wo_parts == 1
        n = ffn_norm(g, dims, w, residual) if norm else g.input("n", (1, hp), "bfloat16")
        if norm and ffn_parts > 1:
            g.output("n", n)
        g.output("partial" if i < ffn_parts - 1 else "y",
                 ffn_part(g, w, n, residual, lo, hi, name))
        pieces.append((name, g))
    return pieces


def head_graphs(dims, vocab, seed, parts=2):
    """The final RMSNorm, the LM head (hidden x vocab, bfloat16) in ``parts`` column pieces and
    the argmax of the logits (in the last piece): ``[(name, graph)]``."""
    rng = np.random.default_rng([seed, 1])
    hp, size = dims.hidden_p, dims.size
    gain = np.zeros(hp, np.float32)
    gain[:dims.hidden] = 1
    edges = [round(i * (_up(vocab, size) // size) / parts) * size for i in range(parts + 1)]
    edges[-1] = vocab
    pieces, logits = [], []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        name = f"head.{_letter(i)}"
        g = Graph(name)
        if i == 0:
            n = _bf16(g, rms_norm(g, g.input("x", (1, hp), "float32"), g.const("g_final", gain),
                                  "final_norm", dims.hidden, dims.eps))
            if parts > 1:
                g.output("n", n)
        else:
            n = g.input("n", (1, hp), "bfloat16")
        w = np.zeros((hp, hi - lo), BF16)
        w[:dims.hidden] = (rng.standard_normal((dims.hidden, hi - lo), np.float32)
                           / np.float32(math.sqrt(dims.hidden))).astype(BF16)
        part = g.matmul(n, g.const(f"{name}.w", w), name=f"{name}.logits")
        logits.append((f"logits.{i}", hi - lo))
        if i < parts - 1:
            g.output(f"logits.{i}", part)
        else:
            before = [g.input(n_, (1, cols), "float32") for n_, cols in logits[:-1]]
            whole = g.concat([*before, part], name="logits") if before else part
            g.output("next", layers.argmax(g, whole, "next"))
        pieces.append((name, g))
    return pieces


# Measuring ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _spy():
    """Record what ``predict`` schedules (the chip's reservation tables and the scheduler):
    ``predict`` itself gives the cycle count, this only counts busy slots."""
    seen = {}
    original = compiler_program._schedule

    def spy(graph, config):
        result = original(graph, config)
        seen["chip"], seen["scheduler"] = result[0], result[1]
        return result

    compiler_program._schedule = spy
    try:
        yield seen
    finally:
        compiler_program._schedule = original


#: The model's weight constants in the pieces' graphs (the rest are the compiler's).
WEIGHT_NAMES = re.compile(r"^(wq|wk|wv|wo|(wq|wo)\.\w|ffn\.\w\.w[123]|head\.\w\.w)$")


def tiles(graph, config):
    """Weight tiles the lowered ``graph``'s matmuls load: ``{"weights": n, "other": n}``, the
    model's weights and the rest (attention's K and V, the reductions' and transposes'
    constants)."""
    size = get_config(config).mxm_size
    count = {"weights": 0, "other": 0}
    for node in lower(graph, get_config(config)).nodes:
        if node.op == "matmul":
            k, n = node.inputs[1].shape
            kind = "weights" if WEIGHT_NAMES.match(node.inputs[1].name) else "other"
            count[kind] += -(-k // size) * -(-n // size)
    return count


def _head_spans(chip):
    """``{head: (first, last)}`` cycles of the instructions that serve head ``h`` (``hN.``)."""
    spans = {}
    for table in chip.slots.values():
        for cycle, (_, comment) in table.items():
            found = re.match(r"h(\d+)\.", comment or "")
            if found:
                h = int(found.group(1))
                lo, hi = spans.get(h, (cycle, cycle))
                spans[h] = (min(lo, cycle), max(hi, cycle))
    return spans


def measure(name, graph, config="groq"):
    """``predict`` of ``graph`` and the busy elements of each unit; prints one line (and for
    attention, how its heads run)."""
    start = time.time()
    with _spy() as seen:
        result = predict(graph, config)
    chip, sched = seen["chip"], seen["scheduler"]
    vxm = chip.slots.get("VXM", {})
    busy = {"vxm": len(vxm),
            "vxm.vT": sum(".vT" in (comment or "") for _, comment in vxm.values())}
    for mxm in ("MXM_W", "MXM_E"):
        busy[f"lw.{mxm}"] = len(sched.elements.get((mxm, "lw", None), {}))
        busy[f"abc.{mxm}"] = sum(len(sched.elements.get((mxm, "abc", p), {}))
                                 for p in range(get_config(config).mxm_planes))
    result.update(busy=busy, tiles=tiles(graph, config), seconds=time.time() - start,
                  name=name, config=get_config(config).name)
    print(f"  {name:<10} {get_config(config).name:<8} {result['predicted_cycles']:>9,} cycles  "
          f"{result['mac_ops'] / 1e6:>8.1f} M MACs  util {100 * result['mxm_utilisation']:5.2f}%"
          f"  VXM {busy['vxm']:>7,}  lw W/E {busy['lw.MXM_W']:,}/{busy['lw.MXM_E']:,}  "
          f"tiles {result['tiles']['weights']:,} + {result['tiles']['other']:,}  "
          f"longest queue {result['queue_words']:,} words  ({result['seconds']:.0f} s)",
          flush=True)
    ends = [hi for _, (_, hi) in sorted(_head_spans(chip).items())]
    if len(ends) > 1:
        starts = [lo for _, (lo, _) in sorted(_head_spans(chip).items())]
        print(f"{'':14}{len(ends)} heads: head 0 from cycle {starts[0]:,} to {ends[0]:,}, the "
              f"last from {starts[-1]:,} to {ends[-1]:,}, all done by {max(ends):,}; VXM "
              f"instructions of the V transposes {busy['vxm.vT']:,}", flush=True)
    return result


# Arithmetic on top of the schedule ----------------------------------------------------------

def real_macs(dims):
    """MACs of the real layer for one token, attention over ``context`` positions."""
    d, f = dims.hidden, dims.ffn
    dq, dkv = dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim
    return 2 * d * dq + 2 * d * dkv + 3 * d * f + 2 * dq * dims.context


def sram_table(dims, config, model=LLAMA):
    """Bytes of weights and KV cache against one chip's SRAM: a list of (what, bytes)."""
    d, f = dims.hidden, dims.ffn
    dq, dkv = dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim
    layer = 2 * d * dq + 2 * d * dkv + 3 * d * f
    padded = 2 * dims.hidden_p * dims.qkv_p + 2 * dims.hidden_p * dims.kv_p \
        + 3 * dims.hidden_p * dims.ffn_p
    cfg = get_config(config)
    chip = 2 * cfg.mem_slices * cfg.mem_words * cfg.lanes
    embed = 2 * model["vocab"] * d
    n = model["layers"]
    return [("one chip's SRAM (2 x 44 slices x 8192 x 320 B)", chip),
            ("weights of one layer, bfloat16", 2 * layer),
            ("weights of one layer, bfloat16, padded as scheduled", 2 * padded),
            ("weights of one layer, int8", layer),
            (f"KV cache of one layer, bfloat16, context {dims.context}",
             2 * 2 * dims.context * dkv),
            (f"KV cache of one layer as laid out ({dims.rows} x {dims.kv_p} x 2)",
             2 * 2 * dims.rows * dims.kv_p),
            (f"{n} layers, bfloat16", n * 2 * layer),
            (f"{n} layers, int8", n * layer),
            (f"embedding + LM head (2 x {model['vocab']} x {d}), bfloat16", 2 * embed),
            ("whole model, bfloat16", n * 2 * layer + 2 * embed),
            ("whole model, int8", n * layer + embed),
            (f"KV caches of {n} layers, bfloat16, context {dims.context}",
             n * 2 * 2 * dims.context * dkv)]


def _total(results):
    return sum(r["predicted_cycles"] for r in results)


def _tokens(what, cycles, clock, groq):
    seconds = cycles / clock
    print(f"per token, {what}: {cycles:,} cycles = {seconds * 1e3:.3f} ms -> "
          f"{1 / seconds:,.0f} tokens/s at batch 1 (Groq: about {groq})")


def _weight_bound(dims, cfg, vocab):
    """Load-sequencer cycles per token if every real weight tile (unpadded, tiled at
    ``mxm_size``) loads once and both MXMs load side by side: ``(layer, head)``."""
    size, rows = cfg.mxm_size, cfg.mxm_size // cfg.mxm_load_rows
    hidden, ffn = -(-dims.hidden // size), -(-dims.ffn // size)
    dq = -(-dims.heads * dims.head_dim // size)
    dkv = -(-dims.kv_heads * dims.head_dim // size)
    layer = (2 * hidden * dq + 2 * hidden * dkv + 3 * hidden * ffn) * rows // 2
    return layer, hidden * -(-vocab // size) * rows // 2


def report(dims, results, head, config="groq", model=LLAMA):
    """The figures and the arithmetic of docs/transformer.md, printed: ``results`` the pieces of
    the layer, ``head`` the LM head's pieces or None."""
    cfg = get_config(config)
    clock = cfg.clock_mhz * 1e6
    peak = 2 * cfg.mxm_planes * cfg.mxm_size ** 2
    layer = _total(results)
    macs = sum(r["mac_ops"] for r in results)
    print(f"\nmeasured, per layer ({' + '.join(r['name'] for r in results)}): {layer:,} cycles "
          f"= {layer / clock * 1e6:.1f} us at {cfg.clock_mhz:.0f} MHz")
    print(f"  MXM utilisation: {100 * macs / (layer * peak):.2f}% of the compiler's "
          f"{macs / 1e6:,.1f} M MACs (padded, transposes and reductions included), "
          f"{100 * real_macs(dims) / (layer * peak):.2f}% of the real layer's "
          f"{real_macs(dims) / 1e6:,.1f} M")
    weights = [r for r in results if r["tiles"]["weights"]]
    tiles_w = sum(r["tiles"]["weights"] for r in weights)
    rows = cfg.mxm_size // cfg.mxm_load_rows
    lw = {m: sum(r["busy"][f"lw.{m}"] for r in weights) for m in ("MXM_W", "MXM_E")}
    print(f"  the weight pieces ({' + '.join(r['name'] for r in weights)}): "
          f"{_total(weights):,} cycles for {tiles_w:,} weight tiles (+ "
          f"{sum(r['tiles']['other'] for r in weights):,} of reductions) x {rows} load cycles "
          f"= {tiles_w * rows:,} load-sequencer cycles, {tiles_w * rows // 2:,} on 2 MXMs "
          f"({100 * tiles_w * rows / 2 / _total(weights):.0f}% of the cycles); lw elements "
          f"placed W {lw['MXM_W']:,}, E {lw['MXM_E']:,}")
    for r in results:
        if not r["tiles"]["weights"]:
            print(f"  {r['name']}: {r['predicted_cycles']:,} cycles, VXM {r['busy']['vxm']:,} "
                  f"instructions ({r['busy']['vxm.vT']:,} for the V transposes), lw elements "
                  f"W {r['busy']['lw.MXM_W']:,}, E {r['busy']['lw.MXM_E']:,}")
    n, groq = model["layers"], model["groq"]
    tokens = [(f"{n} layers", n * layer)]
    if head:
        tokens.append((f"{n} layers + final norm, LM head, argmax", n * layer + _total(head)))
    for what, cycles in tokens:
        _tokens(f"measured, {what}", cycles, clock, groq)
    bound_layer, bound_head = _weight_bound(dims, cfg, model["vocab"])
    _tokens(f"arithmetic, every real weight tile loaded once on 2 MXMs ({n} layers + LM head)",
            n * bound_layer + bound_head, clock, groq)
    print("\nSRAM:")
    chip = None
    for what, nbytes in sram_table(dims, config, model):
        chip = chip or nbytes
        print(f"  {what:<55} {nbytes / 2**20:>10,.1f} MiB  {nbytes / chip:6.2f} chips")


# Checking the padding -----------------------------------------------------------------------

def reference_layer(dims, w, x, keys, values, pos):
    """A float64 Llama layer (unpadded): ``(y, k, v)`` for the token ``x`` at ``pos`` with
    caches ``keys``, ``values`` (context, kv_heads x head_dim); query head ``h`` attends with
    KV head ``h // group``."""
    f64 = {name: np.asarray(value, np.float64) for name, value in w.items()}

    def norm(v, gain):
        return v / np.sqrt(np.mean(v * v) + dims.eps) * gain

    n = norm(x, f64["g_attn"])
    q, k, v = n @ f64["wq"], n @ f64["wk"], n @ f64["wv"]
    keys, values = keys.copy(), values.copy()
    keys[pos], values[pos] = k, v
    out = np.zeros(dims.heads * dims.head_dim)
    for h in range(dims.heads):
        c = slice(h * dims.head_dim, (h + 1) * dims.head_dim)
        g = h // dims.group
        kv = slice(g * dims.head_dim, (g + 1) * dims.head_dim)
        s = keys[:pos + 1, kv] @ q[c]
        p = np.exp(s - s.max())
        out[c] = (p / p.sum()) @ values[:pos + 1, kv]
    x = x + out @ f64["wo"]
    n = norm(x, f64["g_ffn"])
    gate = n @ f64["w1"]
    return x + (gate / (1 + np.exp(-gate)) * (n @ f64["w3"])) @ f64["w2"], k, v


#: The small models of ``--check`` (padded for ``lm``, mxm_size 8): hidden 12 -> 16, 4 heads of
#: 3 two to a block, FFN 20 -> 24, context 5 -> 8; for 70B grouped-query attention as well:
#: hidden 18 -> 24, 6 query heads sharing 3 KV heads (2 KV blocks, the second half empty).
CHECK_DIMS = {"7b": {"hidden": 12, "heads": 4}, "70b": {"hidden": 18, "heads": 6, "kv_heads": 3}}


def check(seed, model="7b"):
    """The padded graph's exact semantics (``compiler.evaluate``) against the float64 layer,
    on the small model :data:`CHECK_DIMS` of ``model``. Returns the largest relative
    difference."""
    dims = Dims(head_dim=3, ffn=20, context=5, size=8, **CHECK_DIMS[model])
    w = real_weights(dims, seed)
    rng = np.random.default_rng([seed, 2])
    pos = 3
    x = rng.standard_normal(dims.hidden).astype(np.float32)
    dkv = dims.kv_heads * dims.head_dim
    keys = np.zeros((dims.context, dkv))
    values = np.zeros((dims.context, dkv))
    keys[:pos] = rng.standard_normal((pos, dkv))
    values[:pos] = rng.standard_normal((pos, dkv))
    y, _, _ = reference_layer(dims, w, x.astype(np.float64), keys, values, pos)
    graph = layer_graph(dims, padded_weights(dims, w))
    index = dims.kv_index()
    cache = {}
    for name, real in (("kcache", keys), ("vcache", values)):
        padded = np.zeros((dims.rows, dims.kv_p), np.float32)
        padded[:dims.context, index] = real
        for b in range(dims.kv_blocks):
            cache[f"{name}{b}"] = padded[:, b * dims.size:(b + 1) * dims.size].astype(BF16)
    xp = np.zeros((1, dims.hidden_p), np.float32)
    xp[0, :dims.hidden] = x
    states = {"pos": np.array([[pos]], np.int32), **cache}
    got = evaluate(graph, {"x": xp}, states)
    out = np.asarray(got[graph.outputs["y"].name], np.float64)[0]
    parts = MODELS[model]
    pieces = piece_graphs(dims, padded_weights(dims, w),
                          *(min(parts[f"{what}_parts"], width // dims.size) for what, width in
                            (("ffn", dims.ffn_p), ("qkv", dims.qkv_p), ("wo", dims.qkv_p))))
    chained = np.asarray(run_pieces(pieces, {"x": xp}, states)["y"], np.float64)[0]
    if np.any(out[dims.hidden:] != 0) or np.any(chained[dims.hidden:] != 0):
        raise SystemExit("check: the padded columns of the output are not zero")
    error = np.abs(out[:dims.hidden] - y).max() / np.abs(y).max()
    error_pieces = np.abs(chained[:dims.hidden] - y).max() / np.abs(y).max()
    kv = "" if dims.group == 1 else f" sharing {dims.kv_heads} KV heads"
    print(f"check: padded graph (hidden {dims.hidden}->{dims.hidden_p}, {dims.heads} heads of "
          f"{dims.head_dim}{kv}, {dims.per_block} to a block, ffn {dims.ffn}->{dims.ffn_p}, "
          f"context {dims.context}->{dims.rows}) vs float64 layer: largest difference "
          f"{error:.2e} of the largest output (bfloat16 activations), padding columns 0")
    print(f"check: the {len(pieces)} pieces ({', '.join(name for name, _ in pieces)}) run one "
          f"after the other: largest difference {error_pieces:.2e}")
    return max(error, error_pieces)


def run_pieces(pieces, inputs, states):
    """Evaluate ``pieces`` (:func:`piece_graphs`) one after the other, each taking its inputs
    from what ``inputs`` and the previous pieces' outputs hold by name: all the outputs."""
    values = dict(inputs)
    for _, graph in pieces:
        got = evaluate(graph, {name: values[name] for name in graph.inputs},
                       {name: states[name] for name in graph.states})
        values.update({name: got[t.name] for name, t in graph.outputs.items()})
    return values


# The decode-step picture --------------------------------------------------------------------

#: Phases of a decode step of :func:`opentsp.app.lm_chip.decode_graph`, by the graph node an
#: instruction serves (the first node its comment names; the first pattern that matches).
PHASES = [
    ("embedding", r"^(pos\.now|token$|tok\.row|pos\.row|pos\.f32)"),
    ("norms", r"(attn_norm|ffn_norm|^final)"),
    ("QKV", r"^layer\d+\.[qkv]$"),
    ("KV scatters", r"cache\.next$"),
    ("scores", r"\.h\d+\.(scores|mask)"),
    ("softmax", r"\.h\d+\.p\b"),
    ("V transposes", r"\.out\.wT"),
    ("p @ V", r"(\.h\d+\.out$|\.heads)"),
    ("wo", r"^layer\d+\.attn$"),
    ("FFN", r"^layer\d+\.(gate|up|silu|glu|down)"),
    ("LM head", r"^logits"),
    ("argmax", r"^next"),
    ("state writes", r"^(pos\.next|pos\.written|token\.next|tokens\.next|prompt|in_prompt|"
                     r"generating|chosen)"),
]
PHASE_COLOURS = ["#7f7f7f", "#E69F00", "#56B4E9", "#000000", "#009E73", "#D55E00", "#8C564B",
                 "#CC79A7", "#0072B2", "#C9B200", "#7F3C8D", "#E41A1C", "#4DAF4A", "#BBBBBB"]
PHASE_NAMES = [name for name, _ in PHASES] + ["other"]


def _phase(comment):
    """``(phase index, layer or -1)`` of an instruction from its comment (``node->chain:
    what``)."""
    node = (comment or "").split(":", 1)[0].split("->", 1)[0].strip()
    layer = re.match(r"layer(\d+)\.", node)
    return (next((i for i, (_, pattern) in enumerate(PHASES) if re.search(pattern, node)),
                 len(PHASES)), int(layer.group(1)) if layer else -1)


def step_activity(prog_graph, config="lm"):
    """Compile ``prog_graph`` for ``config`` and list its busy cycles from the compiler's
    reservation tables: ``(prog, rows, events)``, ``events`` a list of ``(row, cycle, phase,
    layer)``:
    every MEM ``read``/``write``/``gather``/``scatter`` and VXM instruction in its queue's row,
    and every element of an MXM sequence (``lw``, ``abc``, ``acc``; and ``iw``) in the row of its
    sequencer."""
    from opentsp import isa
    from opentsp.compiler import compile_graph

    with _spy() as seen:
        prog = compile_graph(prog_graph, config)
    chip, sched = seen["chip"], seen["scheduler"]
    cfg = get_config(config)
    rows, events = [], []
    for slice_ in isa.queues(cfg):
        name = slice_.name
        if name.startswith("MXM"):
            kinds = [("lw", None)] + [(k, p) for p in range(cfg.mxm_planes)
                                      for k in ("abc", "acc")]
            for kind, plane in kinds:
                rows.append(f"{name} {kind}" + (f" p{plane}" if cfg.mxm_planes > 1
                                                 and plane is not None else ""))
                for cycle, first in sched.elements.get((name, kind, plane), {}).items():
                    events.append((len(rows) - 1, cycle, *_phase(chip.slots[name][first][1])))
            for cycle, (instr, comment) in chip.slots.get(name, {}).items():
                if instr.op.name == "iw":
                    events.append((len(rows) - 1 - 2 * cfg.mxm_planes, cycle, *_phase(comment)))
        elif not name.startswith("SXM"):
            rows.append(name)
            events += [(len(rows) - 1, cycle, *_phase(comment))
                       for cycle, (_, comment) in chip.slots.get(name, {}).items()]
    return prog, rows, events


def _unit(row):
    return row.split()[0] if row.startswith("MXM") else re.sub(r"_[WE]\d+$", "", row)


def print_activity(rows, events, cycles):
    """Busy cycles per unit and phase, and each phase's first and last cycle, printed."""
    units = {}
    for row, _, phase, _ in events:
        unit = _unit(rows[row])
        units.setdefault(unit, np.zeros(len(PHASE_NAMES), int))[phase] += 1
    width = max(len(n) for n in PHASE_NAMES) + 1
    print(f"  {'phase':<{width}}" + "".join(f"{u:>9}" for u in units) + "   cycles")
    span, layers = {}, {}
    for _, cycle, phase, layer in events:
        lo, hi = span.get(phase, (cycle, cycle))
        span[phase] = (min(lo, cycle), max(hi, cycle))
        if layer >= 0:
            lo, hi = layers.get((layer, phase), (cycle, cycle))
            layers[(layer, phase)] = (min(lo, cycle), max(hi, cycle))
    for i, name in enumerate(PHASE_NAMES):
        if i in span:
            print(f"  {name:<{width}}" + "".join(f"{int(c[i]):>9,}" for c in units.values())
                  + f"   {span[i][0]:>6,}..{span[i][1]:,}")
    print(f"  {'total':<{width}}" + "".join(f"{int(c.sum()):>9,}" for c in units.values()))
    for layer in sorted({key[0] for key in layers}):
        print(f"  layer {layer}: " + ", ".join(
            f"{PHASE_NAMES[p]} {lo:,}..{hi:,}" for (n, p), (lo, hi) in sorted(
                layers.items(), key=lambda item: item[1]) if n == layer))
    per_row = np.bincount([event[0] for event in events], minlength=len(rows))
    print("  busy cycles per row: " + ", ".join(
        f"{rows[i]} {per_row[i]:,} ({100 * per_row[i] / cycles:.0f}%)" for i in range(len(rows))
        if not rows[i].startswith("MEM")) + ", MEM slices " + ", ".join(
        f"{per_row[i]:,}" for i in range(len(rows)) if rows[i].startswith("MEM")))
    mem_slices = sum(1 for r in rows if r.startswith("MEM"))
    print(f"  ({cycles:,} cycles; MEM counts are summed over {mem_slices} slices, one access a "
          f"slice a cycle; an MXM's are the elements of its load (with the iw), compute and "
          f"drain sequencers, each one a cycle; the VXM issues one instruction a cycle)")
    return units


def plot_step(path, bin_cycles=40, prompt="Beautiful is "):
    """One decode step of the Zen model on ``lm``: compile, run on the golden model, draw
    ``path`` and print where the cycles go."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.patches import Patch

    from opentsp import isa
    from opentsp.app import lm_chip, lm_model
    from opentsp.app.schedule_plot import collect

    start = time.time()
    params = lm_model.load()
    prog, rows, events = step_activity(lm_chip.decode_graph(params))
    schedule = collect(prog.image_for({}, lm_chip.initial_states(params, prompt)),
                       name="lm_step")
    if schedule.cycles != prog.predicted_cycles:
        raise SystemExit(f"decode step: the golden model ran {schedule.cycles} cycles, the "
                         f"compiler predicted {prog.predicted_cycles}")
    print(f"decode step on lm: {schedule.cycles:,} cycles on the golden model = predicted, "
          f"{len(schedule.issues):,} instructions issued ({time.time() - start:.0f} s)",
          flush=True)
    bins = -(-schedule.cycles // bin_cycles)
    counts = np.zeros((len(rows), len(PHASE_NAMES), bins))
    for row, cycle, phase, _ in events:
        counts[row, phase, min(cycle // bin_cycles, bins - 1)] += 1
    busy = np.minimum(counts.sum(axis=1) / bin_cycles, 1)[..., None]
    colours = np.array([matplotlib.colors.to_rgb(c) for c in PHASE_COLOURS])
    picture = colours[counts.argmax(axis=1)] * busy + (1 - busy)

    figure, (top, bottom) = pyplot.subplots(
        2, 1, sharex=True, figsize=(16, 9), layout="constrained",
        gridspec_kw={"height_ratios": [3.2, 1]})
    top.imshow(picture, aspect="auto", interpolation="nearest",
               extent=(0, bins * bin_cycles, len(rows) - 0.5, -0.5))
    top.set_yticks(range(len(rows)), rows, fontsize=7)
    top.set_ylabel("MXM sequencers, MEM slices and the VXM, west to east")
    top.set_title(f"one decode step of the Zen model (opentsp.app.lm_chip) on 'lm': "
                  f"{schedule.cycles:,} cycles (golden model = prediction); each cell is "
                  f"{bin_cycles} cycles, coloured by the phase most of its busy cycles serve, "
                  f"as dark as the unit is busy", fontsize=9, loc="left")
    top.legend(handles=[Patch(color=PHASE_COLOURS[i], label=name)
                        for i, name in enumerate(PHASE_NAMES)], loc="lower left",
               bbox_to_anchor=(0, 1.03), ncols=len(PHASE_NAMES), fontsize=7.5, frameon=False)
    streams = schedule.config.streams
    occupancy = schedule.occupancy.reshape(2 * streams, -1)
    width = occupancy.shape[1] // bin_cycles * bin_cycles
    binned = occupancy[:, :width].reshape(2 * streams, -1, bin_cycles).mean(axis=2)
    image = bottom.imshow(binned, aspect="auto", interpolation="nearest", cmap="Greys",
                          extent=(0, width, 2 * streams - 0.5, -0.5))
    bottom.set_yticks(range(2 * streams), [f"{d.name}{s}" for d in isa.Dir
                                           for s in range(streams)], fontsize=6)
    bottom.axhline(streams - 0.5, color="#D55E00", linewidth=0.8)
    bottom.set_ylabel("stream")
    bottom.set_xlabel("cycle")
    bottom.set_title(f"stream occupancy on the golden model (positions holding a value, mean "
                     f"over {bin_cycles} cycles, superlane 0): eastward E0.. above westward "
                     f"W0..", fontsize=9, loc="left")
    figure.colorbar(image, ax=bottom, pad=0.01, fraction=0.02)
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    print(f"{path}: written. Busy cycles per unit and phase (from the compiler's schedule):")
    return print_activity(rows, events, schedule.cycles)


# Main ---------------------------------------------------------------------------------------

def _layer(args):
    config = get_config("groq")
    model = MODELS[args.model]
    dims = llama_dims(args.context, config.mxm_size, model)
    dq, dkv = dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim
    qkv = (f"q/k/v {dims.hidden} -> {dims.qkv_p}" if dims.group == 1 else
           f"q {dq} -> {dims.qkv_p}, k/v {dkv} -> {dims.kv_p} ({dims.heads} query heads, "
           f"{dims.kv_heads} KV heads of {dims.group})")
    print(f"{model['name']} layer on groq, batch 1, context {dims.context} (cache {dims.rows} "
          f"rows): hidden {dims.hidden} -> {dims.hidden_p}, {qkv} "
          f"({dims.per_block} heads of {dims.head_dim} per {dims.size}-column block), "
          f"ffn {dims.ffn} -> {dims.ffn_p}", flush=True)
    start = time.time()
    w = padded_weights(dims, real_weights(dims, args.seed))
    print(f"weights made ({time.time() - start:.0f} s)", flush=True)
    if args.whole:
        try:
            predict(layer_graph(dims, w), config)
            print("whole layer: scheduled on groq (unexpected: it should not fit)")
        except CompileError as error:
            print(f"whole layer on groq: CompileError: {error}", flush=True)
    results = []
    for name, graph in piece_graphs(dims, w, args.ffn_parts or model["ffn_parts"],
                                    model["qkv_parts"], model["wo_parts"]):
        results.append(measure(name, graph, config))
        del graph
    del w
    head = None
    if args.head:
        head = [measure(name, graph) for name, graph in head_graphs(
            dims, model["vocab"], args.seed, model["head_parts"])]
    report(dims, results, head, model=model)
    print(f"total {time.time() - start:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context", type=int, default=2048,
                        help="KV-cache positions (rounded up to 320 rows; default 2048)")
    parser.add_argument("--seed", type=int, default=7, help="weights' seed (default 7)")
    parser.add_argument("--model", choices=sorted(MODELS), default="7b",
                        help="Llama-2 7B (default) or 70B (grouped-query attention)")
    parser.add_argument("--ffn-parts", type=int,
                        help="pieces (chips) the FFN is split into (default 2 for 7B, 10 for "
                             "70B)")
    parser.add_argument("--head", action="store_true",
                        help="also schedule the final norm, the LM head and the argmax")
    parser.add_argument("--whole", action="store_true",
                        help="first try the whole layer as one graph on groq (it does not fit)")
    parser.add_argument("--check", action="store_true",
                        help="check the padding against a float64 layer on a small model")
    parser.add_argument("--no-layer", action="store_true", help="skip the Llama layer")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="draw one decode step of the Zen model on lm to FILE.png")
    args = parser.parse_args(argv)
    if args.context < 1 or (args.ffn_parts is not None and args.ffn_parts < 1):
        parser.error("--context and --ffn-parts must be positive")
    try:
        if args.check:
            check(args.seed, args.model)
        if not args.no_layer:
            _layer(args)
        if args.plot:
            plot_step(args.plot)
    except CompileError as error:
        sys.exit(f"llama_layer: {error}")


if __name__ == "__main__":
    main()
