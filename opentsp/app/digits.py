"""The digits network: a small int8 multilayer perceptron on scikit-learn's digits data set.

The data set (1,797 8 x 8 images of handwritten digits, pixel values 0..16) ships with
scikit-learn, so nothing is downloaded. The network is

    logits = relu(x @ W1 + b1) @ W2 + b2          64 -> HIDDEN -> 10, float, x = pixels / 16

and its int8 form, in exactly the operations the compiler offers (``opentsp.compiler.Graph``):

    acc1   = x_q @ W1_q + b1_q                    int8 x int8 -> int32, int32 bias (wrapping)
    h_q    = requant(relu(acc1), M1, S1)          int32 -> int8, per column M1[j], S1[j]
    logits = h_q @ W2_q + b2_q                    int32; the class is the argmax

with ``requant(v, m, s) = sat_i8(rshr(mulh(v, m), s))``, ``mulh(v, m) = (v * m) >> 32`` (floor)
and ``rshr(v, s) = (v + 2^(s-1)) >> s`` (``v`` for ``s = 0``), docs/architecture.md section 8.

Quantisation: ``x_q`` is the pixel value itself (scale 1/16, exact); ``W1`` is symmetric int8
per column (scale ``s1[j] = max|W1[:, j]| / 127``), ``W2`` symmetric int8 per tensor (one scale,
so the int32 logits keep the float logits' order up to rounding: argmax needs no requant);
biases are int32 in the accumulator's scale; the hidden activations' scale ``s_h`` is the
99.9th percentile of the float ReLU activations on the training split over 127, and
``(M1[j], S1[j])`` is the fixed-point form of ``s_x * s1[j] / s_h`` (``M1`` in 2^30..2^31-1).

The trained, quantised parameters are committed in ``opentsp/data/digits_mlp.npz``;
``python -m opentsp.app.digits --train`` retrains (deterministically: fixed split and seed) and
rewrites it. :func:`reference` is the int8 network in numpy int64 / Python integer arithmetic,
independent of the golden model and the compiler.
"""

import argparse
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PARAMS", "HIDDEN", "SEED", "TEST_FRACTION", "Params", "load_split", "train",
           "quantise", "fixed_point", "requant", "reference", "float_logits", "load",
           "save", "main"]

PARAMS = Path(__file__).parent / "data" / "digits_mlp.npz"
HIDDEN = 16             # hidden units: W1 (64 x 16) fits the default config's 4 KiB of MEM
SEED = 0                # the split's and the training's seed
TEST_FRACTION = 0.25    # 450 test images of 1,797
PIXEL_MAX = 16          # digits pixels are 0..16: x_q = pixel, scale 1 / 16
ACT_PERCENTILE = 99.9   # hidden activation range for s_h (clips rare outliers)


@dataclass(frozen=True)
class Params:
    """The trained network in float and its int8 form (see the module docstring)."""
    w1: np.ndarray          # float32 (64, H)
    b1: np.ndarray          # float32 (H,)
    w2: np.ndarray          # float32 (H, 10)
    b2: np.ndarray          # float32 (10,)
    w1_q: np.ndarray        # int8 (64, H)
    b1_q: np.ndarray        # int32 (H,)
    m1: np.ndarray          # int64 (H,) requant multipliers, 2^30 .. 2^31 - 1
    s1: np.ndarray          # int64 (H,) requant shifts, 0 .. 31
    w2_q: np.ndarray        # int8 (H, 10)
    b2_q: np.ndarray        # int32 (10,)

    @property
    def hidden(self):
        return self.w1.shape[1]


def load_split():
    """``(x_train, y_train, x_test, y_test)``: pixels as int8 (0..16), labels as int64; a fixed
    stratified split (seed :data:`SEED`, :data:`TEST_FRACTION` for the test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.int8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SEED, stratify=y)
    return x_train, y_train, x_test, y_test


def train(hidden=HIDDEN):
    """Float weights ``(w1, b1, w2, b2)`` of a 64 -> hidden -> 10 ReLU MLP trained with
    scikit-learn's MLPClassifier on the training split (deterministic: seed :data:`SEED`)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    if not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be a positive int, not {hidden!r}")
    x_train, y_train, _, _ = load_split()
    model = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", solver="adam",
                          alpha=1e-3, learning_rate_init=3e-3, max_iter=600, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train / PIXEL_MAX, y_train)
    (w1, w2), (b1, b2) = model.coefs_, model.intercepts_
    return tuple(np.asarray(a, dtype=np.float32) for a in (w1, b1, w2, b2))


def fixed_point(ratio):
    """``(m, s)`` with ``m / 2^(32 + s)`` closest to ``ratio``, ``m`` in 2^30 .. 2^31 - 1 and
    ``s`` in 0..31 (the compiler's requant form). ``ratio`` must be in [2^-33, 1/2)."""
    if not 2.0 ** -33 <= ratio < 0.5:
        raise ValueError(f"requant ratio must be in [2^-33, 1/2), not {ratio!r}")
    s = 0
    while ratio * 2.0 ** (32 + s) < 2 ** 30:
        s += 1
    m = round(ratio * 2.0 ** (32 + s))
    if m >= 2 ** 31:            # rounded up past the top: one shift less, or the largest m
        if s == 0:
            return 2 ** 31 - 1, 0
        s -= 1
        m = round(ratio * 2.0 ** (32 + s))
    return m, s


def float_logits(x, w1, b1, w2, b2):
    """Float logits of pixels ``x`` (0..16) through the float network."""
    h = np.maximum(np.asarray(x, dtype=np.float64) / PIXEL_MAX @ w1 + b1, 0.0)
    return h @ w2 + b2


def quantise(w1, b1, w2, b2, calibration):
    """The :class:`Params` of float weights; ``calibration`` (pixels, N x 64) sets ``s_h``."""
    w1, b1, w2, b2 = (np.asarray(a, dtype=np.float64) for a in (w1, b1, w2, b2))
    s_x = 1.0 / PIXEL_MAX
    s1 = np.abs(w1).max(axis=0) / 127.0
    s1[s1 == 0] = 1.0                               # a dead column: any scale will do
    w1_q = np.clip(np.round(w1 / s1), -127, 127).astype(np.int8)
    b1_q = np.round(b1 / (s_x * s1)).astype(np.int32)
    hidden = np.maximum(np.asarray(calibration, np.float64) * s_x @ w1 + b1, 0.0)
    s_h = max(float(np.percentile(hidden, ACT_PERCENTILE)), 1e-6) / 127.0
    pairs = [fixed_point(s_x * scale / s_h) for scale in s1]
    m1 = np.array([m for m, _ in pairs], dtype=np.int64)
    sh1 = np.array([s for _, s in pairs], dtype=np.int64)
    s2 = max(float(np.abs(w2).max()), 1e-12) / 127.0
    w2_q = np.clip(np.round(w2 / s2), -127, 127).astype(np.int8)
    b2_q = np.round(b2 / (s_h * s2)).astype(np.int32)
    as32 = (np.asarray(a, dtype=np.float32) for a in (w1, b1, w2, b2))
    return Params(*as32, w1_q, b1_q, m1, sh1, w2_q, b2_q)


def _wrap32(values):
    """int64 array wrapped to int32 two's complement (the accumulator's bias_add)."""
    return ((np.asarray(values, dtype=np.int64) + 2 ** 31) % 2 ** 32) - 2 ** 31


def requant(acc, multiplier, shift):
    """``sat_i8(rshr(mulh(acc, m), s))`` per column, in Python integers; int8 array."""
    acc = np.asarray(acc, dtype=np.int64)
    multiplier = np.broadcast_to(np.asarray(multiplier, dtype=np.int64), acc.shape[-1:])
    shift = np.broadcast_to(np.asarray(shift, dtype=np.int64), acc.shape[-1:])
    out = np.empty(acc.shape, dtype=np.int8)
    for index, value in np.ndenumerate(acc):
        m, s = int(multiplier[index[-1]]), int(shift[index[-1]])
        high = (int(value) * m) >> 32
        rounded = (high + (1 << (s - 1))) >> s if s else high
        out[index] = min(127, max(-128, rounded))
    return out


def reference(params, x_q):
    """The int8 network on pixels ``x_q`` (int8, N x 64): ``(h_q, logits)``, int8 (N, H) and
    int32 (N, 10). numpy int64 matmuls (exact: |sum| < 2^24) and Python-integer requant."""
    x_q = np.asarray(x_q)
    if x_q.dtype != np.int8 or x_q.ndim != 2 or x_q.shape[1] != params.w1_q.shape[0]:
        raise ValueError(f"x_q must be int8 (N, {params.w1_q.shape[0]}), not "
                         f"{x_q.dtype} {x_q.shape}")
    acc1 = _wrap32(x_q.astype(np.int64) @ params.w1_q.astype(np.int64)
                   + params.b1_q.astype(np.int64))
    h_q = requant(np.maximum(acc1, 0), params.m1, params.s1)
    logits = _wrap32(h_q.astype(np.int64) @ params.w2_q.astype(np.int64)
                     + params.b2_q.astype(np.int64))
    return h_q, logits.astype(np.int32)


def save(params, path=PARAMS):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{name: getattr(params, name)
                                 for name in Params.__dataclass_fields__})


def load(path=PARAMS):
    """The :class:`Params` saved in ``path`` (default: the committed file)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file "
                                f"(run `python -m opentsp.app.digits --train`)")
    with np.load(path) as data:
        missing = [name for name in Params.__dataclass_fields__ if name not in data]
        if missing:
            raise ValueError(f"{path}: not a digits parameter file, missing {missing}")
        return Params(**{name: data[name] for name in Params.__dataclass_fields__})


def accuracies(params):
    """``(float, int8)`` accuracy on the test split."""
    _, _, x_test, y_test = load_split()
    float_pred = float_logits(x_test, params.w1, params.b1, params.w2, params.b2).argmax(axis=1)
    int8_pred = reference(params, x_test)[1].argmax(axis=1)
    return float(np.mean(float_pred == y_test)), float(np.mean(int8_pred == y_test))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.app.digits",
                                     description="the int8 digits MLP: accuracy, or retrain")
    parser.add_argument("--train", action="store_true",
                        help=f"retrain and rewrite {PARAMS.name}")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="hidden units (--train)")
    parser.add_argument("-o", "--output", type=Path, default=PARAMS)
    args = parser.parse_args(argv)
    if args.train:
        x_train = load_split()[0]
        params = quantise(*train(args.hidden), calibration=x_train)
        save(params, args.output)
        print(f"{args.output}: trained 64 -> {args.hidden} -> 10")
    else:
        params = load(args.output)
    float_acc, int8_acc = accuracies(params)
    print(f"test split ({len(load_split()[3])} images): float {float_acc:.2%}, "
          f"int8 reference {int8_acc:.2%}")


if __name__ == "__main__":
    main()
