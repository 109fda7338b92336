"""The language model of :mod:`opentsp.app.lm_model` as one compiled decode step for the chip.

One program runs one decode step, and the chip runs it again and again without the host
touching anything between runs (a *session*: loaded once, started once per token). Everything a
step needs from the last one lives in memory as compiler *states*:

* ``tokens`` (context, 1) int32: the prompt, then every token the chip chose;
* ``pos`` (1, 1) int32: the position this step processes; ``prompt_len`` (1, 1) int32;
* ``layer{i}.kcache``, ``layer{i}.vcache`` (context, d) bfloat16: the KV cache.

A step (``decode_graph``; the compiler's operations, so ``prog.step_reference`` is its exact
numerics and the golden model and the RTL must match it bit for bit)::

    t      = tokens[pos]                           read_row (MEM gather)
    x      = widen(tok_emb[t]) + widen(pos_emb[pos])
    for each layer:
        n  = bf16(rms_norm(x; g_attn))
        q, k, v = n @ wq, n @ wk, n @ wv           bfloat16 x bfloat16 -> float32, exact sums
        K[pos], V[pos] = bf16(k), bf16(v)          write_row (MEM scatter)
        a_h = softmax(causal_mask(bf16(q_h) @ K_hᵀ, pos)) @ V_h      per head, V_h transposed
        x  = x + bf16(concat_h a_h) @ wo           on the MXM
        n  = bf16(rms_norm(x; g_ffn))
        x  = x + bf16(silu(n @ w1) * (n @ w3)) @ w2
    logits = bf16(rms_norm(x; g_final)) @ w_head
    next   = argmax(logits)
    tokens[pos + 1] = tokens[pos + 1] if pos + 1 < prompt_len else next
    pos    = pos + 1

So the prompt is fed through the same program (prefill by decode steps), and a session of ``n``
runs leaves the prompt and its continuation in ``tokens``. The float reference
(:func:`opentsp.app.lm_model.generate`) rounds no activation to bfloat16; it is not the chip's
numerics, only a check that they decode the same text.
"""

import numpy as np

from opentsp.app import lm_model
from opentsp.compiler import Graph, layers

__all__ = ["STATES", "decode_graph", "embed", "layer", "next_token", "initial_states",
           "generated"]

#: The states every step carries over, besides the KV cache.
STATES = ("tokens", "pos", "prompt_len")


def decode_graph(params):
    """The graph of one decode step of ``params`` (:class:`~opentsp.app.lm_model.LmParams`)."""
    cfg = params.config
    g = Graph("lm_step")
    tokens = g.state("tokens", (cfg.context, 1), "int32")
    pos_state = g.state("pos", (1, 1), "int32")
    prompt_len = g.state("prompt_len", (1, 1), "int32")
    zero = g.const("zero", np.zeros((1, 1), np.int32))
    one = g.const("one", np.ones((1, 1), np.int32))
    pos = g.read_row(pos_state, zero, name="pos.now")
    token = g.read_row(tokens, pos, name="token")
    position = g.cast(pos, "float32", name="pos.f32")
    x = embed(g, params, token, pos)
    for i in range(cfg.n_layers):
        x = layer(g, params, i, x, pos, position)
    value, after = next_token(g, params, x, (tokens, prompt_len), pos, (zero, one))
    g.output("tokens", g.write_row(tokens, after, value, name="tokens.next"))
    g.output("pos", g.write_row(pos_state, zero, after, name="pos.written"))
    return g


def embed(g, params, token, pos):
    """``x0 = widen(tok_emb[token]) + widen(pos_emb[pos])`` (float32, 1 x d)."""
    w = params.weights
    return g.add(_widen(g, g.read_row(g.const("tok_emb", w["tok_emb"]), token, name="tok.row")),
                 _widen(g, g.read_row(g.const("pos_emb", w["pos_emb"]), pos, name="pos.row")),
                 name="x0")


def next_token(g, params, x, token_states, pos, constants):
    """The final RMSNorm, the logits (output ``logits``) and their argmax, and the token the
    step writes at ``pos + 1``: the prompt's while ``pos + 1`` is in the prompt, else the
    argmax. ``token_states`` is ``(tokens, prompt_len)``, ``constants`` the (1, 1) int32
    ``(zero, one)``; returns ``(token value, pos + 1)``."""
    w = params.weights
    tokens, prompt_len = token_states
    zero, one = constants
    final = layers.rms_norm(g, x, g.const("g_final", w["g_final"]), "final", params.config.eps)
    logits = g.matmul(_bf16(g, final), g.const("w_head", w["w_head"]), name="logits")
    g.output("logits", logits)
    chosen = layers.argmax(g, logits, "next")
    after = g.add(pos, one, name="pos.next")
    later = g.read_row(tokens, after, name="token.next")
    prompt = g.read_row(prompt_len, zero, name="prompt_len.now")
    keep = g.greater(prompt, after, name="in_prompt")        # all ones while in the prompt
    flip = g.bitwise_xor(keep, g.const("all_ones", np.full((1, 1), -1, np.int32)),
                         name="generating")
    value = g.bitwise_or(g.bitwise_and(keep, later, name="prompt_token"),
                         g.bitwise_and(flip, chosen, name="chosen_token"), name="token.value")
    return value, after


def _bf16(g, x):
    return g.cast(x, "bfloat16", name=f"{x.name}.bf16")


def _widen(g, x):
    return g.cast(x, "float32", name=f"{x.name}.f32")


def layer(g, params, i, x, pos, position):
    """Layer ``i``: attention with the KV cache, then the SwiGLU feed-forward."""
    cfg, w = params.config, params.weights
    p = f"layer{i}"
    n = _bf16(g, layers.rms_norm(g, x, g.const(f"{p}.g_attn", w[f"{p}.g_attn"]),
                                 f"{p}.attn_norm", cfg.eps))
    q = _bf16(g, g.matmul(n, g.const(f"{p}.wq", w[f"{p}.wq"]), name=f"{p}.q"))
    k = _bf16(g, g.matmul(n, g.const(f"{p}.wk", w[f"{p}.wk"]), name=f"{p}.k"))
    v = _bf16(g, g.matmul(n, g.const(f"{p}.wv", w[f"{p}.wv"]), name=f"{p}.v"))
    keys = g.write_row(g.state(f"{p}.kcache", (cfg.context, cfg.d_model), "bfloat16"), pos,
                       k, name=f"{p}.kcache.next")
    values = g.write_row(g.state(f"{p}.vcache", (cfg.context, cfg.d_model), "bfloat16"), pos,
                         v, name=f"{p}.vcache.next")
    heads = []
    for h in range(cfg.n_heads):
        cols = (h * cfg.head_dim, (h + 1) * cfg.head_dim)
        hp = f"{p}.h{h}"
        scores = g.matmul(g.slice_cols(q, *cols, name=f"{hp}.q"),
                          g.transpose(g.slice_cols(keys, *cols, name=f"{hp}.k")),
                          name=f"{hp}.scores")
        probs = layers.softmax(g, layers.causal_mask(g, scores, position, f"{hp}.mask"),
                               f"{hp}.p")
        heads.append(g.matmul(_bf16(g, probs), g.slice_cols(values, *cols, name=f"{hp}.v"),
                              name=f"{hp}.out"))
    attn = g.matmul(_bf16(g, g.concat(heads, name=f"{p}.heads")),
                    g.const(f"{p}.wo", w[f"{p}.wo"]), name=f"{p}.attn")
    x = g.add(x, attn, name=f"{p}.resid1")
    n = _bf16(g, layers.rms_norm(g, x, g.const(f"{p}.g_ffn", w[f"{p}.g_ffn"]),
                                 f"{p}.ffn_norm", cfg.eps))
    gate = layers.silu(g, g.matmul(n, g.const(f"{p}.w1", w[f"{p}.w1"]), name=f"{p}.gate"),
                       f"{p}.silu")
    up = g.matmul(n, g.const(f"{p}.w3", w[f"{p}.w3"]), name=f"{p}.up")
    down = g.matmul(_bf16(g, g.mul(gate, up, name=f"{p}.glu")),
                    g.const(f"{p}.w2", w[f"{p}.w2"]), name=f"{p}.down")
    return g.add(x, down, name=f"{p}.resid2")


def initial_states(params, prompt):
    """The states a session starts from: the prompt's tokens (``prompt`` a string), position
    0; the caches zero (their ``init``)."""
    cfg = params.config
    ids = lm_model.encode(prompt)
    if not ids:
        raise lm_model.LmModelError("prompt must hold at least one character, not ''")
    if len(ids) > cfg.context:
        raise lm_model.LmModelError(f"prompt of {len(ids)} characters is longer than the "
                                    f"context of {cfg.context}")
    tokens = np.zeros((cfg.context, 1), np.int32)
    tokens[:len(ids), 0] = ids
    return {"tokens": tokens, "pos": np.zeros((1, 1), np.int32),
            "prompt_len": np.array([[len(ids)]], np.int32)}


def generated(states, prompt_len, steps):
    """The token ids a session of ``steps`` runs chose after a prompt of ``prompt_len``: the
    tokens from ``prompt_len`` to ``steps`` (the last run's choice included)."""
    return [int(t) for t in np.asarray(states["tokens"])[prompt_len:steps + 1, 0]]
