"""The Zen of Python character model (opentsp/app/lm_model.py): corpus and tokenizer, the
committed weights file, the float reference's decode steps against its whole-sequence forward,
the trained model's recitation, and the weights file's validation. No JAX needed."""

import math
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from opentsp.app import lm_model
from opentsp.app.lm_model import (
    CONFIG,
    DEFAULT,
    FILLER,
    KvCache,
    LmConfig,
    LmModelError,
    array_specs,
    corpus,
    decode,
    decode_step,
    encode,
    forward,
    generate,
    vocabulary,
)


@pytest.fixture(scope="module")
def params():
    return lm_model.load()


@pytest.fixture(scope="module")
def members():
    """The committed file's members as numpy reads them."""
    with np.load(DEFAULT, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def test_corpus_is_the_zen_of_python_read_without_importing_this(capsys):
    imported = "this" in sys.modules
    text = lm_model.corpus.__wrapped__()          # uncached: really reads the source
    assert capsys.readouterr() == ("", "")
    assert ("this" in sys.modules) == imported
    assert text == corpus()
    assert text.startswith("The Zen of Python, by Tim Peters\n\nBeautiful is better than ugly.")
    assert text.endswith("Namespaces are one honking great idea -- let's do more of those!")
    assert 800 <= len(text) <= 900


def test_vocabulary_is_the_sorted_corpus_characters_padded_to_the_vector_width():
    chars = vocabulary()
    assert chars == "".join(sorted(set(corpus())))
    assert len(chars) == 45
    assert CONFIG.vocab_size % lm_model.VECTOR_WIDTH == 0
    assert CONFIG.vocab_size == math.ceil(len(chars) / 8) * 8 == 48


def test_config_is_the_chip_contract():
    assert (CONFIG.d_model, CONFIG.n_layers, CONFIG.n_heads, CONFIG.head_dim) == (32, 2, 4, 8)
    assert (CONFIG.ffn_hidden, CONFIG.context, CONFIG.eps) == (64, 64, 1e-5)
    with pytest.raises(LmModelError, match=r"d_model must be n_heads \* head_dim = 32, not 30"):
        LmConfig(d_model=30)
    with pytest.raises(LmModelError, match="vocab_size must be a multiple of 8, not 45"):
        LmConfig(vocab_size=45)


def test_encode_decode_round_trip():
    ids = encode(corpus())
    assert decode(ids) == corpus()
    assert min(ids) == 0 and max(ids) == len(vocabulary()) - 1
    assert decode([45, 47]) == FILLER * 2           # filler tokens never come from text
    with pytest.raises(LmModelError, match=r"token must be an int in 0\.\.47, not 48"):
        decode([48])


def test_a_character_outside_the_vocabulary_is_named_with_its_position():
    with pytest.raises(LmModelError) as caught:
        encode("Beauté is")
    assert str(caught.value) == ("prompt character 'é' at position 5 is not in the vocabulary "
                                 "(45 characters of the Zen of Python)")


def test_a_prompt_longer_than_the_context_is_refused(params):
    assert len(generate(params, "x" * 60, 4)[1]) == 4      # exactly the context fits
    with pytest.raises(LmModelError) as caught:
        generate(params, "x" * 60, 5)
    message = str(caught.value)
    assert "65 positions" in message and "context of 64" in message and "\n" not in message
    with pytest.raises(LmModelError, match="more than the context of 64"):
        generate(params, "x" * 65, 0)


def test_committed_file_holds_every_array_in_its_type(params, members):
    assert params.config == CONFIG
    specs = array_specs()
    assert set(members) == set(specs) | {"meta"}
    for name, (shape, dtype) in specs.items():
        stored = np.uint16 if dtype == ml_dtypes.bfloat16 else np.float32
        assert members[name].shape == shape and members[name].dtype == stored, name
        assert params.weights[name].dtype == dtype and params.f32[name].dtype == np.float32
    assert params.meta["corpus_sha256"] == lm_model.corpus_sha256()
    assert params.meta["vocabulary"] == vocabulary() and params.meta["seed"] == 0
    assert params.meta["final_loss"] < 0.2 and params.meta["steps"] > 0
    assert DEFAULT.stat().st_size < 100_000


def test_decode_steps_match_the_whole_sequence_forward(params):
    rng = np.random.default_rng(0)
    for ids in (encode(corpus())[200:200 + CONFIG.context],
                rng.integers(0, CONFIG.vocab_size, 17).tolist()):     # fillers included
        cache = KvCache.empty()
        stepped = np.stack([decode_step(params, cache, token, position)
                            for position, token in enumerate(ids)])
        whole = forward(params, ids)
        assert stepped.dtype == whole.dtype == np.float32
        np.testing.assert_allclose(stepped, whole, rtol=1e-5, atol=1e-4)


def test_the_model_recites_the_zen_after_beautiful_is(params):
    prompt = "Beautiful is "
    text = corpus()
    start = text.index(prompt) + len(prompt)
    continuation, ids = generate(params, prompt, 48)
    assert continuation.startswith("better than ugly.")
    assert continuation == text[start:start + 48]
    assert ids == encode(continuation)


def test_export_folds_the_score_scale_into_wq_and_rounds_to_nearest_even():
    rng = np.random.default_rng(1)
    trained = {name: rng.normal(size=shape).astype(np.float32)
               for name, (shape, _) in array_specs().items()}
    params = lm_model.export(trained)
    scale = np.float32(1 / math.sqrt(CONFIG.head_dim))
    assert np.array_equal(params.bits("layer1.wq"),
                          (trained["layer1.wq"] * scale).astype(ml_dtypes.bfloat16)
                          .view(np.uint16))
    assert np.array_equal(params.f32["layer1.wk"],
                          trained["layer1.wk"].astype(ml_dtypes.bfloat16).astype(np.float32))
    assert np.array_equal(params.f32["g_final"], trained["g_final"])


def test_save_load_round_trip_is_bit_exact(params, tmp_path):
    path = tmp_path / "copy.npz"
    lm_model.save(params, path)
    again = lm_model.load(path)
    assert again.meta == params.meta and again.config == params.config
    for name, array in params.weights.items():
        assert np.array_equal(again.weights[name].view(np.uint8), array.view(np.uint8)), name
    assert path.read_bytes() == DEFAULT.read_bytes()            # reproducible bytes
    assert [p.name for p in tmp_path.iterdir()] == ["copy.npz"]
    assert path.stat().st_mode & 0o777 == 0o644        # not mkstemp's 0o600


def test_save_leaves_nothing_half_written(params, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    path.write_bytes(b"the previous file")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", fail)
    with pytest.raises(OSError, match="disk full"):
        lm_model.save(params, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    assert path.read_bytes() == b"the previous file"


def _write(path, arrays):
    np.savez(path, **arrays)
    return path


def _bad_files(members):
    good = DEFAULT.read_bytes()
    without = {k: v for k, v in members.items() if k != "layer1.w2"}
    reshaped = dict(members, **{"layer0.wq": members["layer0.wq"][:, :16]})
    widened = dict(members, **{"w_head": members["w_head"].astype(np.float32)})
    gain64 = dict(members, **{"g_final": members["g_final"].astype(np.float64)})
    old = dict(members, meta=np.array(str(members["meta"]).replace('"version": 1', '"version": 0')))
    return {
        "missing": (None, "no such file"),
        "garbage": (lambda p: p.write_bytes(b"\x93NUMPY garbage" * 10), "not an npz file"),
        "truncated": (lambda p: p.write_bytes(good[:len(good) // 2]), "not a valid npz file"),
        "corrupt": (lambda p: p.write_bytes(good[:2000] + bytes(500) + good[2500:]),
                    "not a valid npz file (Bad CRC-32"),
        "corrupt stream": (lambda p: p.write_bytes(good[:100] + bytes(500) + good[600:]),
                           "not a valid npz file (Error -3 while decompressing"),
        "missing array": (lambda p: _write(p, without), "missing array 'layer1.w2'"),
        "wrong shape": (lambda p: _write(p, reshaped),
                        "array 'layer0.wq' must have shape (32, 32), not (32, 16)"),
        "wrong dtype": (lambda p: _write(p, widened), "array 'w_head' must be uint16, not float32"),
        "wrong gain dtype": (lambda p: _write(p, gain64),
                             "array 'g_final' must be float32, not float64"),
        "old version": (lambda p: _write(p, old), "format version must be 1, not 0"),
    }


@pytest.mark.parametrize("case", ["missing", "garbage", "truncated", "corrupt",
                                  "corrupt stream", "missing array",
                                  "wrong shape", "wrong dtype", "wrong gain dtype",
                                  "old version"])
def test_a_bad_weights_file_is_one_line_naming_the_file(case, members, tmp_path):
    make, cause = _bad_files(members)[case]
    path = tmp_path / "bad.npz"
    if make is not None:
        make(path)
    with pytest.raises(LmModelError) as caught:
        lm_model.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and cause in message and "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_training_without_jax_prints_one_line_and_exits_1():
    code = ("import runpy, sys\n"
            "sys.modules['jax'] = sys.modules['optax'] = None\n"
            "runpy.run_module('opentsp.app.lm_train', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "lm_train: needs JAX; install it with: pip install -e '.[train]'\n"
