"""Train the Zen of Python character model (:mod:`opentsp.app.lm_model`) with JAX and optax.

    python -m opentsp.app.lm_train [--steps N] [--seed S] [-o PATH]

Adam (optax) on random windows of ``context`` characters of the corpus, next-character
cross-entropy over the whole padded vocabulary (the filler tokens included, so they learn low
logits), a fixed seed and a fixed number of steps: on the same machine a rerun rewrites the
same bytes. The trained float32 weights are exported (:func:`opentsp.app.lm_model.export`: the
score scale folded into ``wq``, the matrices rounded to bfloat16) and checked before the file
is written: the numpy reference's logits must match this module's on the exported weights, and
greedy decoding from ``"Beautiful is "`` must recite the corpus for :data:`CHECK_CHARS`
characters. JAX is an optional dependency: ``pip install -e '.[train]'``.
"""

import argparse
import functools
import math
import sys
import time
from pathlib import Path

import numpy as np

from opentsp.app import lm_model
from opentsp.app.lm_model import CONFIG, array_specs, corpus, encode, export, generate

try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as error:     # training only; the model itself needs numpy alone
    jax = jnp = optax = None
    JAX_MISSING = error
else:
    JAX_MISSING = None

__all__ = ["SEED", "STEPS", "BATCH", "LEARNING_RATE", "WARMUP", "CHECK_PROMPT", "CHECK_CHARS",
           "init_weights", "logits", "loss", "corpus_loss", "train", "check", "main"]

SEED = 0
STEPS = 2000                # Adam steps (about 40 s on two shared CPU cores)
BATCH = 32                  # windows of CONFIG.context characters per step
LEARNING_RATE = 3e-3        # peak, after WARMUP steps; cosine decay to 1% by the last step
WARMUP = 100
PRINT_EVERY = 200
CHECK_PROMPT = "Beautiful is "
CHECK_CHARS = 48            # the greedy continuation that must match the corpus
SHOW_PROMPTS = ("Beautiful is ", "Errors should ", "Now is ", "Namespaces ")
MATH_TOLERANCE = 1e-3       # numpy vs JAX logits on the exported weights


def init_weights(key, config=CONFIG):
    """Initial weights: gains 1, embeddings normal (standard deviation 0.5), other matrices
    normal with standard deviation ``1 / sqrt(fan_in)``, ``wo`` and ``w2`` (which feed the
    residual stream) ``1 / sqrt(2 n_layers)`` times less.

    Parameters
    ----------
    key : jax.Array
        A JAX random key.
    config : LmConfig

    Returns
    -------
    dict of str to jax.Array
        float32, the names and shapes of :func:`~opentsp.app.lm_model.array_specs`.
    """
    specs = array_specs(config)
    weights = {}
    for name, subkey in zip(specs, jax.random.split(key, len(specs)), strict=True):
        shape = specs[name][0]
        if len(shape) == 1:
            weights[name] = jnp.ones(shape, jnp.float32)
            continue
        std = 0.5 if name.endswith("_emb") else 1 / math.sqrt(shape[0])
        if name.endswith((".wo", ".w2")):
            std /= math.sqrt(2 * config.n_layers)
        weights[name] = std * jax.random.normal(subkey, shape, jnp.float32)
    return weights


def _rmsnorm(x, gain, eps):
    return x * gain / jnp.sqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)


def logits(weights, ids, config=CONFIG, scale=None):
    """The model of :mod:`~opentsp.app.lm_model` in JAX, on a batch of whole sequences.

    Parameters
    ----------
    weights : dict of str to jax.Array
        float32 weights.
    ids : jax.Array
        int ``(B, T)`` token ids, ``T <= context``.
    config : LmConfig
    scale : float, optional
        Multiplies the attention scores: ``1 / sqrt(head_dim)`` (the default) for trained
        weights, 1 for exported ones (the scale folded into ``wq``).

    Returns
    -------
    jax.Array
        float32 ``(B, T, vocab_size)``.
    """
    scale = 1 / math.sqrt(config.head_dim) if scale is None else scale
    batch, steps = ids.shape
    split = (batch, steps, config.n_heads, config.head_dim)
    x = weights["tok_emb"][ids] + weights["pos_emb"][:steps]
    causal = jnp.tril(jnp.ones((steps, steps), bool))
    for layer in range(config.n_layers):
        w = {name: weights[f"layer{layer}.{name}"]
             for name in ("g_attn", "wq", "wk", "wv", "wo", "g_ffn", "w1", "w3", "w2")}
        n = _rmsnorm(x, w["g_attn"], config.eps)
        q, k, v = ((n @ w[name]).reshape(split) for name in ("wq", "wk", "wv"))
        scores = jnp.where(causal, jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale, -jnp.inf)
        attended = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
        x = x + attended.reshape(batch, steps, config.d_model) @ w["wo"]
        n = _rmsnorm(x, w["g_ffn"], config.eps)
        x = x + (jax.nn.silu(n @ w["w1"]) * (n @ w["w3"])) @ w["w2"]
    return _rmsnorm(x, weights["g_final"], config.eps) @ weights["w_head"]


def loss(weights, windows, config=CONFIG, scale=None):
    """Mean next-character cross-entropy over the whole padded vocabulary.

    Parameters
    ----------
    weights : dict of str to jax.Array
        Trained-form float32 weights (``wq`` unscaled).
    windows : jax.Array
        int ``(B, T + 1)``: the first ``T`` tokens predict the last ``T``.
    config : LmConfig
    scale : float, optional
        As for :func:`logits`.

    Returns
    -------
    jax.Array
        A float32 scalar.
    """
    predicted = logits(weights, windows[:, :-1], config, scale)
    return optax.softmax_cross_entropy_with_integer_labels(predicted, windows[:, 1:]).mean()


def corpus_loss(weights, config=CONFIG, scale=None):
    """:func:`loss` over every window of ``context + 1`` characters of the corpus (the
    ``final_loss`` of the weights file's metadata).

    Parameters
    ----------
    weights : dict of str to array_like
        float32 weights.
    config : LmConfig
    scale : float, optional
        As for :func:`logits`.

    Returns
    -------
    float
    """
    data = np.array(encode(corpus()), dtype=np.int32)
    starts = np.arange(len(data) - config.context)
    windows = data[starts[:, None] + np.arange(config.context + 1)]
    mean = jax.jit(functools.partial(loss, config=config, scale=scale))
    return float(mean({name: jnp.asarray(a) for name, a in weights.items()}, windows))


def train(steps=STEPS, seed=SEED, config=CONFIG):
    """Train from scratch: ``steps`` Adam steps on batches of :data:`BATCH` random windows;
    prints the batch loss every :data:`PRINT_EVERY` steps.

    Parameters
    ----------
    steps : int
    seed : int
        Seeds the initial weights and the windows' starts.
    config : LmConfig

    Returns
    -------
    weights : dict of str to numpy.ndarray
        The trained float32 weights (``wq`` unscaled), for
        :func:`~opentsp.app.lm_model.export`.
    losses : list of float
        Every step's batch loss.
    """
    data = jnp.array(encode(corpus()), dtype=jnp.int32)
    schedule = optax.warmup_cosine_decay_schedule(0.0, LEARNING_RATE, min(WARMUP, steps),
                                                  max(steps, 1), LEARNING_RATE / 100)
    optimiser = optax.adam(schedule)
    init_key, data_key = jax.random.split(jax.random.key(seed))
    weights = init_weights(init_key, config)
    state = optimiser.init(weights)
    offsets = jnp.arange(config.context + 1)

    @jax.jit
    def step(weights, state, key):
        starts = jax.random.randint(key, (BATCH, 1), 0, len(data) - config.context)
        value, grads = jax.value_and_grad(loss)(weights, data[starts + offsets], config)
        updates, state = optimiser.update(grads, state, weights)
        return optax.apply_updates(weights, updates), state, value

    losses = []
    for index, key in enumerate(jax.random.split(data_key, steps)):
        weights, state, value = step(weights, state, key)
        losses.append(float(value))
        if (index + 1) % PRINT_EVERY == 0 or index == 0:
            print(f"step {index + 1:5d}  loss {losses[-1]:.4f}", flush=True)
    return {name: np.asarray(array, np.float32) for name, array in weights.items()}, losses


def check(params):
    """Check an exported model: the numpy reference's logits match :func:`logits` on the
    exported weights within :data:`MATH_TOLERANCE` over one context-long window of the corpus,
    and greedy decoding recites the corpus for :data:`CHECK_CHARS` characters after
    :data:`CHECK_PROMPT`.

    Parameters
    ----------
    params : LmParams

    Returns
    -------
    float
        The largest difference between the two forward passes' logits.

    Raises
    ------
    LmModelError
        If either check fails.
    """
    config = params.config
    data = encode(corpus())
    ids = data[100:100 + config.context]
    numpy_logits = lm_model.forward(params, ids)
    jax_logits = logits({name: jnp.asarray(a) for name, a in params.f32.items()},
                        jnp.asarray([ids]), config, scale=1.0)[0]
    difference = float(np.abs(numpy_logits - np.asarray(jax_logits)).max())
    if not difference <= MATH_TOLERANCE:
        raise lm_model.LmModelError(f"numpy and JAX logits differ by {difference:.3g}, more "
                                    f"than {MATH_TOLERANCE}")
    text = corpus()
    start = text.index(CHECK_PROMPT) + len(CHECK_PROMPT)
    expected = text[start:start + CHECK_CHARS]
    got, _ = generate(params, CHECK_PROMPT, CHECK_CHARS)
    if got != expected:
        raise lm_model.LmModelError(f"greedy continuation of {CHECK_PROMPT!r} must be "
                                    f"{expected!r}, not {got!r}")
    return difference


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.app.lm_train",
                                     description="train the Zen of Python character model")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"Adam steps ({STEPS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed ({SEED})")
    parser.add_argument("-o", "--output", type=Path, default=lm_model.DEFAULT,
                        help="weights file (the committed one)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be a positive int, not {args.steps}")
    if JAX_MISSING is not None:
        print("lm_train: needs JAX; install it with: pip install -e '.[train]'", file=sys.stderr)
        return 1
    began = time.perf_counter()
    trained, losses = train(args.steps, args.seed)
    final = corpus_loss(trained)
    print(f"trained {args.steps} steps in {time.perf_counter() - began:.1f} s; last batch loss "
          f"{losses[-1]:.4f}, loss over the corpus {final:.4f}")
    params = export(trained, {"seed": args.seed, "steps": args.steps, "final_loss": final})
    print(f"exported (bfloat16) loss over the corpus {corpus_loss(params.f32, scale=1.0):.4f}")
    for prompt in SHOW_PROMPTS:
        print(f"  {prompt!r} -> {generate(params, prompt, 48)[0]!r}")
    try:
        difference = check(params)
    except lm_model.LmModelError as error:
        print(f"lm_train: error: {error}; {args.output} not written", file=sys.stderr)
        return 1
    lm_model.save(params, args.output)
    again = lm_model.load(args.output)
    assert all(np.array_equal(again.f32[name], a) for name, a in params.f32.items())
    print(f"numpy vs JAX logits: max difference {difference:.2g}; wrote {args.output} "
          f"({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
