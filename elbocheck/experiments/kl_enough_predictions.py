"""What the conditional-prior surgery predicts about where label information goes, computed *before* any run.

The argument (``derivations/library/conditional_surgery.py``, checked by ``elbocheck verify
conditional_prior_surgery``; DIVA's form is the same identity with an encoder of x alone):

* A latent c with a standard-normal prior pays for label information like any other:
  E KL(q(c|.) || N(0, I)) = I_q(c; y) + I_q(c; x | y) + KL(q(c) || p(c)). Price per nat of label information: 1.
* A latent w with a label-conditional prior p(w|y) and an encoder that sees y (CSVAE's w):
  E KL(q(w|x,y) || p(w|y)) = I_q(w; x | y) + E_y KL(q(w|y) || p(w|y)) is zero at q(w|x,y) = p(w|y), which carries
  the prior's I_p(w; y) ~ H(y). Price per nat: 0.
* A latent z_y with a learned label-conditional prior and an encoder of x alone (DIVA's z_y, CDVAE's z_l):
  E KL(q(z_y|x) || p(z_y|y)) = I(z_y; x) - I(z_y; y) + E_y KL(q(z_y|y) || p(z_y|y)) = I(z_y; x | y) + mismatch
  (z_y is independent of y given x). Label information is discounted: what it costs is the information about x
  beyond y that an encoder must carry to carry y. For an encoder that outputs the class it reads from x (a
  classifier y_hat(x)), that is I(y_hat; x | y) = H(y_hat | y) per I(y_hat; y) nats of label information:
  price c = H(y_hat | y) / I(y_hat; y) per nat, from the confusion matrix of a classifier of y from x.
* What label information buys: the reconstruction gain of telling the decoder y when it has no other route to it.
  For the decoders' factorized likelihoods the first nats of it are worth
  g = [E log p_fact(x | y) - E log p_fact(x)] / H(y) nats of reconstruction per nat (per-pixel frequency tables
  fitted on the training split, scored on the validation split). A second copy of y, in a latent beside one that
  already carries it, buys nothing: g = 0 for it.

Prediction: with every KL weighted by beta (relative to the reconstruction), a latent keeps label information while
beta * c < g and drops it when beta * c > g, so the boundary is beta* = g / c: g for a standard-normal latent with no
other route (the reference beta-VAE); g / c_DIVA for DIVA's z_y (a larger beta*: the discount); infinity for CSVAE's
w (free); and 0+ for a redundant copy (CSVAE's z beside w, DIVA's z_x beside z_y): no leak at any positive weight,
once training reaches the objective's optimum. The adversary and DIVA's classifier only add to these prices.

The prediction is first order: g is the value of the *first* nats (label information on top of other information in
the latent is worth less or more), the classifier price assumes a hard encoder, and optimisation need not reach the
optimum in a finite run (the redundant copy's price, beta * I(z; y), is tiny at beta = 0.01). It is written to a
file (:func:`write_predictions`) that is committed before the runs it predicts; the report draws it beside the
measured map and never recomputes it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

PREDICTIONS_NAME = "predictions.json"
SMOOTHING = 0.5  # additive (Jeffreys) smoothing of the per-pixel frequency tables


@dataclass(frozen=True)
class DataPrediction:
    """The data-side quantities of the prediction for one data key (nats; see the module docstring)."""

    data: str
    label_entropy: float
    reconstruction_gain: float  # E log p_fact(x|y) - E log p_fact(x), nats per example
    value_per_nat: float  # g
    classifier_accuracy: float
    classifier_conditional_entropy: float  # H(y_hat | y)
    classifier_information: float  # I(y_hat; y)
    price_per_nat_learned_prior: float  # c for an x-only encoder with a learned label-conditional prior
    boundary_standard_prior: float  # g / 1
    boundary_learned_prior: float  # g / c


def _levels(x: np.ndarray, likelihood: str, num_levels: int | None) -> tuple[np.ndarray, int]:
    flat = x.reshape(len(x), -1)
    if likelihood == "bernoulli":
        return flat.round().astype(np.int64), 2
    if likelihood == "categorical":
        return np.rint(flat * (num_levels - 1)).astype(np.int64), int(num_levels)
    raise ValueError(f"likelihood: the prediction needs discrete pixels (bernoulli or categorical), got {likelihood!r}")


def _log_table(levels: np.ndarray, num_levels: int) -> np.ndarray:
    """log p(pixel = level), per pixel, with additive smoothing: (P, L)."""
    counts = np.stack([(levels == level).sum(0) for level in range(num_levels)], -1) + SMOOTHING
    return np.log(counts / counts.sum(-1, keepdims=True))


def _log_likelihood(levels: np.ndarray, table: np.ndarray) -> np.ndarray:
    return table[np.arange(levels.shape[1]), levels].sum(1)


def label_value_per_nat(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
                        likelihood: str, num_levels: int | None) -> tuple[float, float, float]:
    """(H(y), reconstruction gain, g): the gain in held-out log-likelihood of a factorized pixel model that knows y
    over one that does not, and that gain per nat of H(y) (the test labels' entropy)."""
    train_levels, count = _levels(train_x, likelihood, num_levels)
    test_levels, _ = _levels(test_x, likelihood, num_levels)
    pooled = _log_likelihood(test_levels, _log_table(train_levels, count))
    conditional = np.empty(len(test_levels))
    for label in np.unique(test_y):
        members = test_y == label
        conditional[members] = _log_likelihood(test_levels[members], _log_table(train_levels[train_y == label], count))
    _, counts = np.unique(test_y, return_counts=True)
    frequencies = counts / counts.sum()
    entropy = float(-(frequencies * np.log(frequencies)).sum())
    gain = float((conditional - pooled).mean())
    return entropy, gain, gain / entropy


def classifier_price(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
                     seed: int = 0) -> tuple[float, float, float, float]:
    """(accuracy, H(y_hat | y), I(y_hat; y), c = H(y_hat | y) / I(y_hat; y)) of a standardized logistic regression of
    y from the pixels, from its held-out confusion matrix (plug-in entropies)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5, random_state=seed))
    model.fit(train_x.reshape(len(train_x), -1), train_y)
    predicted = model.predict(test_x.reshape(len(test_x), -1))
    labels = np.unique(np.concatenate([test_y, predicted]))
    joint = np.array([[np.mean((test_y == a) & (predicted == b)) for b in labels] for a in labels])
    p_y, p_hat = joint.sum(1), joint.sum(0)
    nonzero = joint > 0
    conditional = float(-(joint[nonzero] * np.log(joint[nonzero] / np.broadcast_to(p_y[:, None], joint.shape)[
        nonzero])).sum())
    entropy_hat = float(-(p_hat[p_hat > 0] * np.log(p_hat[p_hat > 0])).sum())
    information = entropy_hat - conditional
    return float(np.mean(predicted == test_y)), conditional, information, conditional / information


def predict_for_data(data: str, dataset, *, seed: int = 0) -> DataPrediction:
    """The data-side quantities for one data set (its ``train`` and ``validation`` splits)."""
    train, test = dataset.split("train"), dataset.split("validation")
    train_x, test_x = train.x.numpy(), test.x.numpy()
    train_y, test_y = train.y.numpy(), test.y.numpy()
    entropy, gain, value = label_value_per_nat(train_x, train_y, test_x, test_y, likelihood=dataset.likelihood,
                                               num_levels=dataset.num_levels)
    accuracy, conditional, information, price = classifier_price(train_x, train_y, test_x, test_y, seed=seed)
    return DataPrediction(data, entropy, gain, value, accuracy, conditional, information, price, value,
                          value / price if price > 0 else math.inf)


# The latents each family's map is about, with the price model that applies to each (see the module docstring).
LATENT_PRICES: dict[str, dict[str, str]] = {
    "reference": {"z": "standard"},
    "csvae": {"w": "label-fed", "z": "redundant"},
    "diva": {"zy": "learned", "zx": "redundant"},
    "cdvae": {"zl": "learned", "zu": "redundant"},
    "condvae_info": {"z": "redundant"},
}


def boundary(price_model: str, data: DataPrediction) -> float:
    """beta* = g / c for the latent's price model."""
    return {"standard": data.boundary_standard_prior, "learned": data.boundary_learned_prior,
            "label-fed": math.inf, "redundant": 0.0}[price_model]


def predicted_keeps_label(price_model: str, data: DataPrediction, beta: float) -> bool:
    """True where the latent is predicted to keep label information at KL weight ``beta`` (relative to the
    reconstruction): beta < beta*."""
    return beta < boundary(price_model, data)


def write_predictions(path: str | Path, predictions: Mapping[str, DataPrediction], *, note: str = "") -> Path:
    """Write the predictions (one entry per data key, and the price model of each family's latents) as JSON."""
    path = Path(path)
    payload: dict[str, Any] = {
        "what": "kl-enough predictions from the conditional-prior surgery, computed before the runs "
                "(elbocheck.experiments.kl_enough_predictions)",
        "note": note,
        "latent_prices": LATENT_PRICES,
        "data": {key: asdict(value) for key, value in predictions.items()},
    }
    path.write_text(json.dumps(payload, indent=2, default=lambda v: None if not math.isfinite(v) else v) + "\n")
    return path


def read_predictions(path: str | Path) -> dict[str, DataPrediction]:
    payload = json.loads(Path(path).read_text())
    out = {}
    for key, value in payload["data"].items():
        value = {k: (math.inf if v is None else v) for k, v in value.items()}
        out[key] = DataPrediction(**value)
    return out


def compute_predictions(settings, data_keys=None, *, seed: int = 0) -> dict[str, DataPrediction]:
    """The data-side prediction for each data key of ``settings`` (or ``data_keys``), on seed ``seed``'s split."""
    from .kl_enough_runs import load_arm_data

    keys = list(data_keys) if data_keys is not None else settings.data_keys()
    return {key: predict_for_data(key, load_arm_data(key, settings, seed), seed=seed) for key in keys}


COMMITTED_PATH = Path(__file__).with_name("kl_enough_predictions.json")


def main(argv: list[str] | None = None) -> int:
    """``python -m elbocheck.experiments.kl_enough_predictions [--data-path MNIST_FILE] OUT.json``: the predictions
    for the data keys of the default, full and (with the MNIST file) mnist presets, on seed 0's split."""
    import argparse

    from .kl_enough_settings import PRESETS

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", nargs="?", default=str(COMMITTED_PATH))
    parser.add_argument("--data-path", default=None)
    args = parser.parse_args(argv)
    keys = ["digits", "digits_binary", "rotated_digits"]
    settings = PRESETS["default"].replace(data_path=args.data_path)
    if args.data_path:
        keys += PRESETS["mnist"].replace(data_path=args.data_path).data_keys()
    predictions = compute_predictions(settings, keys)
    write_predictions(args.out, predictions, note="seed 0's split of each data key; written before the runs")
    for key, value in predictions.items():
        print(f"{key:18s} g = {value.value_per_nat:6.3f}  c = {value.price_per_nat_learned_prior:6.3f}  "
              f"beta*(standard) = {value.boundary_standard_prior:7.3f}  beta*(learned) = {value.boundary_learned_prior:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
