"""How much a latent code says about a discrete label y: a plug-in mutual information I(w; y) from class-conditional
aggregate posteriors, and a probe (held-out accuracy of a classifier predicting y from the latent means).

Plug-in mutual information. With Gaussian posteriors q(w|x_n) over a data set {(x_n, y_n)} of N points, the joint
q(w, y) = (1/N) sum_n q(w|x_n) [y = y_n] has the class-conditional aggregate posteriors and the aggregate posterior

    q(w|y = c) = (1/N_c) sum_{n: y_n = c} q(w|x_n),      q(w) = (1/N) sum_n q(w|x_n) = sum_c pi_c q(w|c),

with pi_c = N_c / N, and

    I(w; y) = E_{q(w, y)}[log q(w|y) - log q(w)] = H(y) - H(y|w),   0 <= I(w; y) <= H(y) = -sum_c pi_c log pi_c.

The mixtures are evaluated exactly (chunked, :mod:`.aggregate_posterior`); the outer expectation is a Monte-Carlo
average over draws w_s ~ q(w|x_{n_s}), with a standard error. The same function gives I(z; y) for another latent
group z: pass its means and log-variances.

Bias direction. The estimate is (up to Monte-Carlo error) the mutual information of the *empirical* joint above.
As an estimate of the population I(w; y) it is biased upward: each draw w_s is scored against mixtures that contain
its own component with weight 1/N_y in q(w|y) but only 1/N in q(w), and the finitely many components of each class
differ by chance even when w is independent of y. The bias vanishes as posteriors overlap more and classes grow;
in the extreme of non-overlapping posteriors it reaches H(y) whatever the labels. Compare with the value for
shuffled labels when in doubt.

Standard error. When classes barely overlap, H(y|w) comes from rare draws in the overlap region; a few thousand
draws may miss them all, and the standard error (computed from the draws seen) is then far too small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch import Tensor

from ._validation import check_choice, check_labels, check_positive_int
from .aggregate_posterior import DEFAULT_MAX_CHUNK_ELEMENTS, grouped_mixture_log_sum, mixture_log_sum
from .base import check_posterior_parameters

__all__ = ["LabelInformation", "ProbeResult", "label_mutual_information", "probe_accuracy", "wilson_interval"]


@dataclass(frozen=True)
class LabelInformation:
    """``value``: plug-in I(latent; y) in nats; ``standard_error``: its Monte-Carlo standard error;
    ``label_entropy``: the plug-in H(y), the largest possible value; ``num_samples``: draws used."""

    value: Tensor
    standard_error: Tensor
    label_entropy: Tensor
    num_samples: int

    @property
    def normalized(self) -> Tensor:
        """value / H(y), in [0, 1] up to Monte-Carlo error."""
        return self.value / self.label_entropy


def label_mutual_information(
    mean: Tensor,
    log_var: Tensor,
    labels: Tensor,
    *,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
) -> LabelInformation:
    """Plug-in I(w; y) from the class-conditional aggregate posteriors (see the module docstring for its bias).

    Args:
        mean, log_var: posterior means and log-variances of the latent w for all N data points, shape (N, D).
        labels: integer labels y_n, shape (N,).
        num_samples: ``None`` draws one w per data point (stratified; the standard error is then conservative);
            an int S draws S (point, w) pairs with points uniform.
        generator: random generator on the device of ``mean``.
    """
    check_posterior_parameters(mean, log_var)
    num_points = mean.shape[0]
    check_labels(labels, num_points, "labels")
    if labels.dim() != 1:
        raise ValueError(f"argument 'labels' must be 1-D (one label per data point); got shape {tuple(labels.shape)}")
    labels = labels.to(mean.device)
    if num_samples is not None:
        check_positive_int(num_samples, "num_samples", minimum=2)
    check_positive_int(max_chunk_elements, "max_chunk_elements")
    with torch.no_grad():
        z, sample_points = sample_posteriors(mean, log_var, num_samples, generator)
        sample_labels = labels if sample_points is None else labels[sample_points]
        log_ratio = class_conditional_log_ratio(
            z, sample_labels, mean, log_var, labels, per_dimension=False, max_chunk_elements=max_chunk_elements
        )
        value = log_ratio.mean()
        count = log_ratio.shape[0]
        standard_error = log_ratio.std(unbiased=True) / math.sqrt(count) if count > 1 else value.new_tensor(math.nan)
        return LabelInformation(
            value=value,
            standard_error=standard_error,
            label_entropy=plug_in_entropy(labels).to(mean.dtype),
            num_samples=int(z.shape[0]),
        )


def sample_posteriors(
    mean: Tensor, log_var: Tensor, num_samples: int | None, generator: torch.Generator | None
) -> tuple[Tensor, Tensor | None]:
    """One draw per data point (``num_samples=None``; returns ``None`` indices) or S draws from uniform points."""
    if num_samples is None:
        sample_points = None
        sample_mean, sample_log_var = mean, log_var
    else:
        sample_points = torch.randint(mean.shape[0], (num_samples,), generator=generator, device=mean.device)
        sample_mean, sample_log_var = mean[sample_points], log_var[sample_points]
    noise = torch.randn(sample_mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return sample_mean + torch.exp(0.5 * sample_log_var) * noise, sample_points


def class_conditional_log_ratio(
    z: Tensor,
    sample_labels: Tensor,
    mean: Tensor,
    log_var: Tensor,
    labels: Tensor,
    *,
    per_dimension: bool,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
    log_sum_all: Tensor | None = None,
) -> Tensor:
    """log q(z_s|y_s) - log q(z_s) per sample (shape (S,)), or per sample and dimension (shape (S, D)) for the
    one-dimensional marginals when ``per_dimension``. ``log_sum_all`` may pass the precomputed unnormalized
    log sum over all components (it does not depend on the labels)."""
    num_points = mean.shape[0]
    joint, marginal = (False, True) if per_dimension else (True, False)
    if log_sum_all is None:
        joint_all, marginal_all = mixture_log_sum(
            z, mean, log_var, max_chunk_elements=max_chunk_elements, joint=joint, marginal=marginal
        )
        log_sum_all = marginal_all if per_dimension else joint_all
    joint_class, marginal_class, class_sizes = grouped_mixture_log_sum(
        z, sample_labels, mean, log_var, labels, max_chunk_elements=max_chunk_elements, joint=joint, marginal=marginal
    )
    log_sum_class = marginal_class if per_dimension else joint_class
    log_class_sizes = torch.log(class_sizes)
    if per_dimension:
        log_class_sizes = log_class_sizes.unsqueeze(-1)
    log_q_zCy = log_sum_class - log_class_sizes  # log q(z|y) = logsumexp_{n: y_n = y} log q(z|x_n) - log N_y
    log_qz = log_sum_all - math.log(num_points)  # log q(z) = logsumexp_n log q(z|x_n) - log N
    return log_q_zCy - log_qz


def plug_in_entropy(labels: Tensor) -> Tensor:
    """H(y) = -sum_c pi_c log pi_c with pi_c the empirical class frequencies (nats, float64)."""
    _, counts = torch.unique(labels, return_counts=True)
    frequencies = counts.to(torch.float64) / labels.shape[0]
    return -(frequencies * torch.log(frequencies)).sum()


# ---------------------------------------------------------------------------------------------------------------
# Probe accuracy
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """Held-out accuracy of the probe with its Wilson interval at level ``confidence``; ``chance_accuracy`` is the
    frequency of the most common class in the test split (what a constant predictor scores)."""

    accuracy: float
    lower: float
    upper: float
    num_correct: int
    num_test: int
    chance_accuracy: float
    confidence: float


def wilson_interval(num_correct: int, num_trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927):

    (p + z^2/(2n) -+ z sqrt(p (1 - p)/n + z^2/(4 n^2))) / (1 + z^2/n),   p = k/n, z = Phi^-1((1 + confidence)/2).
    """
    check_positive_int(num_trials, "num_trials")
    if isinstance(num_correct, bool) or not isinstance(num_correct, int) or not 0 <= num_correct <= num_trials:
        raise ValueError(f"argument 'num_correct' must be an int in [0, num_trials={num_trials}]; got {num_correct!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"argument 'confidence' must lie in (0, 1); got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    proportion = num_correct / num_trials
    denominator = 1.0 + z * z / num_trials
    centre = (proportion + z * z / (2 * num_trials)) / denominator
    half_width = z * math.sqrt(proportion * (1 - proportion) / num_trials + z * z / (4 * num_trials**2)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def probe_accuracy(
    features: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    *,
    classifier: str = "logistic",
    test_fraction: float = 0.25,
    confidence: float = 0.95,
    seed: int = 0,
    max_iter: int = 2000,
) -> ProbeResult:
    """Train a classifier to predict ``labels`` from ``features`` (e.g. latent means, shape (N, D)) on a stratified
    random split and report its accuracy on the held-out part, with a Wilson confidence interval.

    ``classifier``: ``"logistic"`` (standardized features, multinomial logistic regression) or ``"mlp"`` (one hidden
    layer of 64 units). Runs on CPU through scikit-learn (an evaluation, not a training-loop hot path).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_choice(classifier, ("logistic", "mlp"), "classifier")
    features_array = _to_numpy(features, "features")
    labels_array = _to_numpy(labels, "labels")
    if features_array.ndim != 2:
        raise ValueError(f"argument 'features' must have shape (N, D); got {features_array.shape}")
    if not np.all(np.isfinite(features_array)):
        bad = int(np.sum(~np.isfinite(features_array)))
        raise ValueError(f"features must be finite; got {bad} non-finite values in argument 'features'")
    if labels_array.shape != (features_array.shape[0],) or not np.issubdtype(labels_array.dtype, np.integer):
        raise ValueError(
            f"argument 'labels' must be integer labels of shape ({features_array.shape[0]},); "
            f"got {labels_array.dtype} {labels_array.shape}"
        )
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"argument 'test_fraction' must lie in (0, 1); got {test_fraction}")
    classes, counts = np.unique(labels_array, return_counts=True)
    if classes.size < 2:
        raise ValueError("argument 'labels' must contain at least two classes")
    stratify = labels_array if counts.min() >= 2 else None
    train_x, test_x, train_y, test_y = train_test_split(
        features_array, labels_array, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    if classifier == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    else:
        model = make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=max_iter, random_state=seed)
        )
    model.fit(train_x, train_y)
    num_correct = int(np.sum(model.predict(test_x) == test_y))
    num_test = int(test_y.shape[0])
    lower, upper = wilson_interval(num_correct, num_test, confidence)
    _, test_counts = np.unique(test_y, return_counts=True)
    return ProbeResult(
        accuracy=num_correct / num_test,
        lower=lower,
        upper=upper,
        num_correct=num_correct,
        num_test=num_test,
        chance_accuracy=float(test_counts.max() / num_test),
        confidence=confidence,
    )


def _to_numpy(value: Tensor | np.ndarray, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise ValueError(f"argument '{name}' must be a torch.Tensor or numpy array; got {type(value).__name__}")
