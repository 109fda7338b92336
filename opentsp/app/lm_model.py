"""A tiny decoder-only character language model, trained on the Zen of Python, for the chip.

The float reference (numpy float32) of the transformer decoder that OpenTSP is to run on its
RTL; :mod:`opentsp.app.lm_train` trains it (JAX) and writes the weights file.

Corpus and tokens
    The Zen of Python (PEP 20, 856 characters), read from the source of the standard library's
    ``this`` module (its rot13 string literal, parsed with :mod:`ast`: nothing is imported or
    printed). One token per character: the vocabulary is the sorted unique characters of the
    corpus (45), padded with filler tokens up to a multiple of the chip's vector width (8), so
    ``vocab_size`` is 48. Filler tokens never occur in the data; training keeps them in the
    softmax, so the model gives them low logits. :func:`decode` shows them as U+FFFD.

Model (:class:`LmConfig`; the numbers are a contract with the chip plan; no biases anywhere)
    ::

        x        = tok_emb[t] + pos_emb[p]                    (d,)   d = 32, p < context = 64
        for each of the 2 layers:
            n    = rmsnorm(x; g_attn)
            q, k, v = n @ wq, n @ wk, n @ wv                  head h: columns 8h .. 8h+7
            a_h  = softmax_causal(q_h k_hᵀ) v_h               4 heads of 8
            x    = x + concat_h(a_h) @ wo
            n    = rmsnorm(x; g_ffn)
            x    = x + (silu(n @ w1) * (n @ w3)) @ w2         SwiGLU, 64 hidden
        logits   = rmsnorm(x; g_final) @ w_head               (vocab,), untied from tok_emb

    with ``rmsnorm(x; g) = x * g / sqrt(mean(x^2) + eps)`` (eps = 1e-5) and
    ``silu(x) = x * sigmoid(x)``. Training scales the scores by ``1 / sqrt(head_dim)``; the
    export folds that scale into ``wq`` (in float32, before rounding to bfloat16), so the stored
    ``wq`` gives the scaled scores directly and neither this module nor the chip scales them.

Weights file (``opentsp/app/data/lm_zen.npz``; :func:`load`, :func:`save`)
    A zip of ``.npy`` members (``numpy.load`` reads it): the matrices ``tok_emb`` (vocab, d),
    ``pos_emb`` (context, d), ``layer{i}.wq``, ``.wk``, ``.wv``, ``.wo`` (d, d), ``layer{i}.w1``,
    ``.w3`` (d, ffn_hidden), ``layer{i}.w2`` (ffn_hidden, d) and ``w_head`` (d, vocab) as
    bfloat16 bit patterns in uint16 (the chip's weight type: the trained float32 weights
    rounded to nearest even); the RMSNorm gains ``layer{i}.g_attn``, ``layer{i}.g_ffn`` and
    ``g_final`` (d,) as float32; ``meta``, a JSON string: format and version, the config
    numbers, the vocabulary, the corpus's sha256 and the training's seed, steps and final loss.
    The zip's timestamps are fixed, so the same weights always give the same bytes.

Forward passes (numpy float32, every weight widened from its bfloat16)
    :func:`decode_step` runs one token at one position against an explicit :class:`KvCache`
    (the chip's version mirrors it step for step); :func:`generate` prefills the prompt by
    decode steps and then decodes greedily (argmax, ties to the lowest index); :func:`forward`
    is the whole sequence at once (the training's math check).
"""

import ast
import codecs
import functools
import hashlib
import importlib.util
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path

import ml_dtypes
import numpy as np

__all__ = ["DEFAULT", "FORMAT", "FORMAT_VERSION", "VECTOR_WIDTH", "FILLER", "LmModelError",
           "LmConfig", "CONFIG", "LmParams", "KvCache", "corpus", "corpus_sha256", "vocabulary",
           "encode", "decode", "array_specs", "export", "load", "save", "forward",
           "decode_step", "generate"]

DEFAULT = Path(__file__).parent / "data" / "lm_zen.npz"
FORMAT = "opentsp-lm"
FORMAT_VERSION = 1
VECTOR_WIDTH = 8            # the chip's vector width: vocab_size is a multiple of it
FILLER = "\N{REPLACEMENT CHARACTER}"    # how decode() shows a filler token
ZEN_TITLE = "The Zen of Python, by Tim Peters"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)      # fixed member timestamps: reproducible bytes
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


class LmModelError(ValueError):
    """A bad weights file, prompt or argument; the message is one line."""


@dataclass(frozen=True)
class LmConfig:
    """The model's hyper-parameters (see the module docstring); :data:`CONFIG` is the model's.

    Parameters
    ----------
    vocab_size : int
        Tokens: the corpus's characters padded to a multiple of :data:`VECTOR_WIDTH`.
    d_model : int
        Width of the residual stream, ``n_heads * head_dim``.
    n_layers : int
        Decoder blocks.
    n_heads, head_dim : int
        Attention heads and the width of each.
    ffn_hidden : int
        Hidden width of each SwiGLU feed-forward network.
    context : int
        Positions (rows of ``pos_emb`` and of the KV cache).
    eps : float
        Added to the mean square in every RMSNorm.
    """

    vocab_size: int = 48
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 4
    head_dim: int = 8
    ffn_hidden: int = 64
    context: int = 64
    eps: float = 1e-5

    def __post_init__(self):
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "eps":
                if isinstance(value, bool) or not isinstance(value, float) or not value > 0:
                    raise LmModelError(f"eps must be a positive float, not {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LmModelError(f"{item.name} must be a positive int, not {value!r}")
        if self.d_model != self.n_heads * self.head_dim:
            raise LmModelError(f"d_model must be n_heads * head_dim = "
                               f"{self.n_heads * self.head_dim}, not {self.d_model!r}")
        if self.vocab_size % VECTOR_WIDTH:
            raise LmModelError(f"vocab_size must be a multiple of {VECTOR_WIDTH}, "
                               f"not {self.vocab_size!r}")


CONFIG = LmConfig()


# The corpus and the tokenizer ----------------------------------------------------------------

@functools.cache
def corpus():
    """The Zen of Python: the rot13 string ``s`` of the ``this`` module's source, decoded."""
    spec = importlib.util.find_spec("this")
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise LmModelError("the standard library's `this` module has no source file")
    source = Path(spec.origin).read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["s"]
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return codecs.decode(node.value.value, "rot13")
    raise LmModelError(f"{spec.origin}: no string literal `s = \"...\"` (the Zen of Python)")


def corpus_sha256():
    """The sha256 (hex) of the corpus in UTF-8."""
    return hashlib.sha256(corpus().encode("utf-8")).hexdigest()


@functools.cache
def vocabulary():
    """The sorted unique characters of the corpus: token ``i`` is ``vocabulary()[i]``; the
    tokens from ``len(vocabulary())`` up to ``vocab_size`` are fillers."""
    return "".join(sorted(set(corpus())))


@functools.cache
def _char_ids():
    return {char: index for index, char in enumerate(vocabulary())}


def encode(text):
    """Token ids of ``text``.

    Parameters
    ----------
    text : str
        Characters of the vocabulary only.

    Returns
    -------
    list of int

    Raises
    ------
    LmModelError
        Naming the first character outside the vocabulary and its position.
    """
    if not isinstance(text, str):
        raise LmModelError(f"text must be a str, not {text!r}")
    ids = _char_ids()
    for position, char in enumerate(text):
        if char not in ids:
            raise LmModelError(f"prompt character {char!r} at position {position} is not in "
                               f"the vocabulary ({len(ids)} characters of the Zen of Python)")
    return [ids[char] for char in text]


def decode(ids, config=CONFIG):
    """The text of token ids.

    Parameters
    ----------
    ids : iterable of int
        Tokens in ``0 .. config.vocab_size - 1``; a filler token shows as :data:`FILLER`.
    config : LmConfig

    Returns
    -------
    str
    """
    chars = vocabulary()
    out = []
    for token in ids:
        token = _token(token, config)
        out.append(chars[token] if token < len(chars) else FILLER)
    return "".join(out)


def _token(token, config):
    if isinstance(token, bool) or not isinstance(token, int | np.integer) \
            or not 0 <= token < config.vocab_size:
        raise LmModelError(f"token must be an int in 0..{config.vocab_size - 1}, not {token!r}")
    return int(token)


# The weights ----------------------------------------------------------------------------------

def array_specs(config=CONFIG):
    """``{name: (shape, dtype)}`` of every weight in file order; matrices are bfloat16 (uint16
    bit patterns in the file), RMSNorm gains float32."""
    d, f = config.d_model, config.ffn_hidden
    specs = {"tok_emb": ((config.vocab_size, d), BFLOAT16),
             "pos_emb": ((config.context, d), BFLOAT16)}
    for layer in range(config.n_layers):
        specs[f"layer{layer}.g_attn"] = ((d,), np.dtype(np.float32))
        for name in ("wq", "wk", "wv", "wo"):
            specs[f"layer{layer}.{name}"] = ((d, d), BFLOAT16)
        specs[f"layer{layer}.g_ffn"] = ((d,), np.dtype(np.float32))
        specs[f"layer{layer}.w1"] = ((d, f), BFLOAT16)
        specs[f"layer{layer}.w3"] = ((d, f), BFLOAT16)
        specs[f"layer{layer}.w2"] = ((f, d), BFLOAT16)
    specs["g_final"] = ((d,), np.dtype(np.float32))
    specs["w_head"] = ((d, config.vocab_size), BFLOAT16)
    return specs


def _check_weights(weights, config):
    """Raise :class:`LmModelError` unless ``weights`` has exactly :func:`array_specs`."""
    specs = array_specs(config)
    missing = [name for name in specs if name not in weights]
    if missing:
        raise LmModelError(f"missing array {missing[0]!r}")
    extra = sorted(set(weights) - set(specs))
    if extra:
        raise LmModelError(f"unexpected array {extra[0]!r}")
    for name, (shape, dtype) in specs.items():
        array = weights[name]
        if not isinstance(array, np.ndarray) or array.shape != shape:
            got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
            raise LmModelError(f"array {name!r} must have shape {shape}, not {got}")
        if array.dtype != dtype:
            raise LmModelError(f"array {name!r} must be {dtype}, not {array.dtype}")
        if not np.isfinite(array.astype(np.float32)).all():
            raise LmModelError(f"array {name!r} must be finite, not holding inf or NaN")


@dataclass(frozen=True, eq=False)
class LmParams:
    """The exported model, validated (:class:`LmModelError` otherwise); its arrays are copied
    and made read-only.

    Parameters
    ----------
    weights : dict of str to numpy.ndarray
        Exactly the names, shapes and dtypes of :func:`array_specs`: matrices in
        ``ml_dtypes.bfloat16`` (every ``wq`` with the score scale folded in), gains float32.
    config : LmConfig
    meta : dict
        The training's record (``seed``, ``steps``, ``final_loss``); :func:`load` gives the
        file's whole metadata.
    """

    weights: dict
    config: LmConfig = CONFIG
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.config, LmConfig):
            raise LmModelError(f"config must be an LmConfig, not {self.config!r}")
        if not isinstance(self.weights, dict):
            raise LmModelError(f"weights must be a dict, not {type(self.weights).__name__}")
        _check_weights(self.weights, self.config)
        frozen = {}
        for name, array in self.weights.items():
            frozen[name] = np.array(array)
            frozen[name].flags.writeable = False
        object.__setattr__(self, "weights", frozen)

    @functools.cached_property
    def f32(self):
        """``{name: float32 array}``: every weight widened (exactly) to float32."""
        return {name: array.astype(np.float32) for name, array in self.weights.items()}

    def bits(self, name):
        """The bfloat16 bit patterns (uint16) of matrix ``name``, as stored in the file."""
        return self.weights[name].view(np.uint16)


def export(trained, meta=None, config=CONFIG):
    """The exported model of trained float32 weights: folds ``1 / sqrt(head_dim)`` into every
    ``wq`` (a float32 product) and rounds the matrices to bfloat16, nearest even.

    Parameters
    ----------
    trained : dict of str to array_like
        The names of :func:`array_specs`, float32, with ``wq`` as trained (unscaled).
    meta : dict, optional
        The training's record, kept in :attr:`LmParams.meta`.
    config : LmConfig

    Returns
    -------
    LmParams
    """
    scale = np.float32(1.0 / math.sqrt(config.head_dim))
    weights = {}
    for name, (_, dtype) in array_specs(config).items():
        if name not in trained:
            raise LmModelError(f"missing array {name!r}")
        array = np.asarray(trained[name], dtype=np.float32)
        if name.endswith(".wq"):
            array = array * scale
        weights[name] = array.astype(dtype)
    return LmParams(weights, config, dict(meta or {}))


def _metadata(params):
    meta = dict(params.meta)
    meta.update(format=FORMAT, version=FORMAT_VERSION,
                config={item.name: getattr(params.config, item.name)
                        for item in fields(LmConfig)},
                vocabulary=vocabulary(), corpus_sha256=corpus_sha256())
    return meta


def save(params, path=DEFAULT):
    """Write the weights file (see the module docstring) atomically: a temporary file in the
    same folder, then :func:`os.replace`; nothing is left behind on an error.

    Parameters
    ----------
    params : LmParams
    path : str or pathlib.Path
        Default: the committed file, :data:`DEFAULT`.
    """
    if not isinstance(params, LmParams):
        raise LmModelError(f"params must be an LmParams, not {type(params).__name__}")
    path = Path(path)
    members = {name: (params.bits(name) if array.dtype == BFLOAT16 else array)
               for name, array in params.weights.items()}
    members["meta"] = np.array(json.dumps(_metadata(params), sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                         dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file, zipfile.ZipFile(file, "w") as archive:
            os.fchmod(file.fileno(), path.stat().st_mode & 0o777 if path.is_file() else 0o644)
            for name, array in members.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(array, order="C"), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_npz(path):
    """``{name: array}`` of every member of the npz file at ``path`` (read in full)."""
    try:
        with open(path, "rb") as file:
            header = file.read(4)
        if header == b"PK\x03\x04":
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zipfile.LargeZipFile,
            zlib.error) as error:
        cause = " ".join(str(error).split()) or type(error).__name__
        raise LmModelError(f"not a valid npz file ({cause})") from None
    raise LmModelError("not an npz file (no zip header)")


def _parse_meta(arrays):
    """The metadata dict and config of the file's arrays; checks the format, the version and
    the vocabulary against the corpus."""
    text = arrays.pop("meta", None)
    if text is None:
        raise LmModelError("missing array 'meta'")
    if text.shape != () or text.dtype.kind != "U":
        raise LmModelError(f"array 'meta' must be a JSON string, not {text.dtype} {text.shape}")
    try:
        meta = json.loads(str(text))
    except json.JSONDecodeError as error:
        raise LmModelError(f"metadata is not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LmModelError(f"metadata format must be {FORMAT!r}, not "
                           f"{meta.get('format') if isinstance(meta, dict) else meta!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise LmModelError(f"format version must be {FORMAT_VERSION}, "
                           f"not {meta.get('version')!r}")
    numbers = meta.get("config")
    names = {item.name for item in fields(LmConfig)}
    if not isinstance(numbers, dict) or set(numbers) != names:
        raise LmModelError(f"metadata config must name {sorted(names)}, not {numbers!r}")
    config = LmConfig(**numbers)
    if meta.get("vocabulary") != vocabulary():
        raise LmModelError("vocabulary differs from the corpus's (the Zen of Python)")
    if meta.get("corpus_sha256") != corpus_sha256():
        raise LmModelError("corpus sha256 differs from the Zen of Python's")
    padded = -(-len(vocabulary()) // VECTOR_WIDTH) * VECTOR_WIDTH
    if config.vocab_size != padded:
        raise LmModelError(f"vocab_size must be {padded} (the vocabulary padded to a multiple "
                           f"of {VECTOR_WIDTH}), not {config.vocab_size!r}")
    return meta, config


def load(path=DEFAULT):
    """Read and validate a weights file.

    Parameters
    ----------
    path : str or pathlib.Path
        Default: the committed file, :data:`DEFAULT`.

    Returns
    -------
    LmParams
        With the file's metadata as ``meta``.

    Raises
    ------
    LmModelError
        One line naming the file and the cause: no such file, not a valid npz (corrupt or
        truncated), a missing or unexpected array, a wrong shape or dtype, bad metadata (its
        format, version, config, or a vocabulary or corpus hash not the Zen of Python's).
    """
    path = Path(path)
    try:
        if not path.exists():
            raise LmModelError("no such file (train with `python -m opentsp.app.lm_train`)")
        if not path.is_file():
            raise LmModelError("not a file")
        arrays = _read_npz(path)
        meta, config = _parse_meta(arrays)
        specs = array_specs(config)
        for name, (_, dtype) in specs.items():
            stored = np.dtype(np.uint16) if dtype == BFLOAT16 else dtype
            if name in arrays and arrays[name].dtype != stored:
                raise LmModelError(f"array {name!r} must be {stored}, not {arrays[name].dtype}")
            if name in arrays and dtype == BFLOAT16:
                arrays[name] = arrays[name].view(BFLOAT16)
        return LmParams(arrays, config, meta)
    except LmModelError as error:
        raise LmModelError(f"{path}: {error}") from None


# The float reference ---------------------------------------------------------------------------

@dataclass
class KvCache:
    """Keys and values of every position so far: ``k[layer]``, ``v[layer]`` are float32
    ``(context, d_model)``; row ``p`` is written by :func:`decode_step` at position ``p``."""

    k: list
    v: list

    @classmethod
    def empty(cls, config=CONFIG):
        """A cache of zeros for ``config``."""
        shape = (config.context, config.d_model)
        return cls([np.zeros(shape, np.float32) for _ in range(config.n_layers)],
                   [np.zeros(shape, np.float32) for _ in range(config.n_layers)])


def _rmsnorm(x, gain, eps):
    return x * gain / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(eps))


def _softmax(scores):
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def _swiglu(n, w, prefix):
    gate = n @ w[f"{prefix}.w1"]
    with np.errstate(over="ignore"):
        silu = gate / (np.float32(1) + np.exp(-gate))
    return (silu * (n @ w[f"{prefix}.w3"])) @ w[f"{prefix}.w2"]


def forward(params, ids):
    """The whole sequence at once (causal), the reference for :func:`decode_step`.

    Parameters
    ----------
    params : LmParams
    ids : sequence of int
        ``T`` tokens, ``1 <= T <= context``, at positions ``0 .. T-1``.

    Returns
    -------
    numpy.ndarray
        float32 ``(T, vocab_size)``: row ``p`` predicts the token after position ``p``.
    """
    config, w = params.config, params.f32
    ids = [_token(token, config) for token in ids]
    steps = len(ids)
    if not 1 <= steps <= config.context:
        raise LmModelError(f"sequence length must be 1..{config.context}, not {steps}")
    heads, dim = config.n_heads, config.head_dim
    x = w["tok_emb"][ids] + w["pos_emb"][:steps]
    future = np.triu(np.ones((steps, steps), dtype=bool), k=1)
    for layer in range(config.n_layers):
        prefix = f"layer{layer}"
        n = _rmsnorm(x, w[f"{prefix}.g_attn"], config.eps)
        q, k, v = (np.reshape(n @ w[f"{prefix}.{name}"], (steps, heads, dim)).transpose(1, 0, 2)
                   for name in ("wq", "wk", "wv"))
        scores = np.where(future, np.float32(-np.inf), q @ k.transpose(0, 2, 1))
        attended = (_softmax(scores) @ v).transpose(1, 0, 2).reshape(steps, config.d_model)
        x = x + attended @ w[f"{prefix}.wo"]
        x = x + _swiglu(_rmsnorm(x, w[f"{prefix}.g_ffn"], config.eps), w, prefix)
    return _rmsnorm(x, w["g_final"], config.eps) @ w["w_head"]


def decode_step(params, cache, token, position):
    """One decode step: ``token`` at ``position``, attending to positions ``0 .. position``.

    Parameters
    ----------
    params : LmParams
    cache : KvCache
        Holds the keys and values of positions ``0 .. position-1``; this step writes row
        ``position`` of every layer's ``k`` and ``v`` before attending.
    token : int
    position : int
        ``0 .. context-1``.

    Returns
    -------
    numpy.ndarray
        float32 ``(vocab_size,)``: the logits of the next token.
    """
    config, w = params.config, params.f32
    token = _token(token, config)
    if isinstance(position, bool) or not isinstance(position, int | np.integer) \
            or not 0 <= position < config.context:
        raise LmModelError(f"position must be an int in 0..{config.context - 1}, "
                           f"not {position!r}")
    heads, dim = config.n_heads, config.head_dim
    x = w["tok_emb"][token] + w["pos_emb"][position]
    for layer in range(config.n_layers):
        prefix = f"layer{layer}"
        n = _rmsnorm(x, w[f"{prefix}.g_attn"], config.eps)
        cache.k[layer][position] = n @ w[f"{prefix}.wk"]
        cache.v[layer][position] = n @ w[f"{prefix}.wv"]
        q = np.reshape(n @ w[f"{prefix}.wq"], (heads, 1, dim))
        keys = cache.k[layer][:position + 1].reshape(-1, heads, dim).transpose(1, 0, 2)
        values = cache.v[layer][:position + 1].reshape(-1, heads, dim).transpose(1, 0, 2)
        attended = (_softmax(q @ keys.transpose(0, 2, 1)) @ values).reshape(config.d_model)
        x = x + attended @ w[f"{prefix}.wo"]
        x = x + _swiglu(_rmsnorm(x, w[f"{prefix}.g_ffn"], config.eps), w, prefix)
    return _rmsnorm(x, w["g_final"], config.eps) @ w["w_head"]


def generate(params, prompt, n_tokens):
    """Greedy generation: the prompt is fed one token at a time through :func:`decode_step`
    (prefill by decode steps), then each chosen token (argmax, ties to the lowest index) in
    turn.

    Parameters
    ----------
    params : LmParams
    prompt : str
        At least one character, all in the vocabulary.
    n_tokens : int
        Tokens to generate; ``len(prompt) + n_tokens`` must not exceed ``context``.

    Returns
    -------
    continuation : str
        The generated text (without the prompt).
    ids : list of int
        Its token ids.
    """
    config = params.config
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
        raise LmModelError(f"n_tokens must be a non-negative int, not {n_tokens!r}")
    ids = encode(prompt)
    if not ids:
        raise LmModelError("prompt must hold at least one character, not ''")
    if len(ids) + n_tokens > config.context:
        raise LmModelError(f"prompt of {len(ids)} characters plus {n_tokens} generated tokens "
                           f"is {len(ids) + n_tokens} positions, more than the context of "
                           f"{config.context}")
    cache = KvCache.empty(config)
    for position, token in enumerate(ids):
        logits = decode_step(params, cache, token, position)
    out = []
    for position in range(len(ids), len(ids) + n_tokens):
        out.append(int(np.argmax(logits)))
        if position + 1 < len(ids) + n_tokens:
            logits = decode_step(params, cache, out[-1], position)
    return decode(out, config), out
