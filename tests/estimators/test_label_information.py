"""Tests for elbocheck.estimators.label_information: the plug-in I(w; y) against numeric integration of the
empirical mixtures, its exact zero and H(y) cases, the documented upward bias; the probe and its Wilson interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from elbocheck.estimators import label_mutual_information, probe_accuracy, wilson_interval
from estimator_testing import (
    assert_within_standard_errors,
    cuda_device,
    numpy_label_information_1d,
)  # noqa: F401 (fixture)


def _entropy(labels):
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    frequencies = counts / counts.sum()
    return float(-(frequencies * np.log(frequencies)).sum())


@settings(max_examples=25)
@given(
    num_points=st.integers(4, 30),
    num_classes=st.integers(2, 4),
    separation=st.floats(0.0, 3.0),
    log10_scale_range=st.tuples(st.floats(-1, 0.3), st.floats(0, 0.5)),
    seed=st.integers(0, 10_000),
)
def test_matches_numeric_integration_of_the_empirical_mixtures(
    num_points, num_classes, separation, log10_scale_range, seed
):
    rng = np.random.default_rng(seed)
    labels = np.arange(num_points) % num_classes
    mean = separation * labels + rng.normal(size=num_points)
    low, width = log10_scale_range
    scale = 10 ** rng.uniform(low, low + width, size=num_points)
    reference = numpy_label_information_1d(mean, scale, labels)
    # A standard error describes the draws it saw: when H(y|w) is tiny, it comes from rare draws in the region where
    # classes overlap, which 20000 draws may all miss (the SE then is ~0 and meaningless). Such nearly separated cases
    # are covered exactly by test_equals_label_entropy_when_the_latent_encodes_y; here H(y|w) >= 1e-3 nats, so the
    # ambiguous region carries enough mass to be sampled many times.
    assume(_entropy(labels) - reference >= 1e-3)
    estimate = label_mutual_information(
        torch.tensor(mean)[:, None],
        torch.tensor(2 * np.log(scale))[:, None],
        torch.tensor(labels),
        num_samples=20_000,
        generator=torch.Generator().manual_seed(seed),
    )
    assert_within_standard_errors(estimate.value, reference, estimate.standard_error, rounding=1e-7, what="I(w; y)")
    assert math.isclose(estimate.label_entropy.item(), _entropy(labels), rel_tol=1e-12)


@settings(max_examples=25)
@given(
    num_per_class=st.integers(1, 20),
    num_classes=st.integers(2, 5),
    dim=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    log10_scale=st.floats(-4, 2),
)
def test_zero_when_every_class_has_the_same_posteriors(num_per_class, num_classes, dim, seed, log10_scale):
    """Latents independent of y in the data set: each class holds the same list of posteriors, so
    q(w|y = c) = q(w) for every c and every per-sample log ratio is 0."""
    generator = torch.Generator().manual_seed(seed)
    base_mean = torch.randn(num_per_class, dim, generator=generator, dtype=torch.float64)
    base_log_var = (
        2 * math.log(10) * (log10_scale + torch.rand(num_per_class, dim, generator=generator, dtype=torch.float64))
    )
    mean, log_var = base_mean.repeat(num_classes, 1), base_log_var.repeat(num_classes, 1)
    labels = torch.arange(num_classes).repeat_interleave(num_per_class)
    estimate = label_mutual_information(mean, log_var, labels, generator=generator)
    assert abs(estimate.value.item()) <= 1e-9 * (1 + dim * abs(log10_scale) * 5)


def test_zero_when_the_posterior_ignores_x():
    mean = torch.full((300, 2), 0.7, dtype=torch.float64)
    log_var = torch.full((300, 2), -1.0, dtype=torch.float64)
    labels = torch.randint(3, (300,), generator=torch.Generator().manual_seed(0))
    estimate = label_mutual_information(mean, log_var, labels, generator=torch.Generator().manual_seed(1))
    assert abs(estimate.value.item()) <= 1e-12 and estimate.standard_error.item() <= 1e-12


@settings(max_examples=20)
@given(num_classes=st.integers(2, 6), seed=st.integers(0, 10_000), dim=st.integers(1, 3))
def test_equals_label_entropy_when_the_latent_encodes_y(num_classes, seed, dim):
    """Class clusters 40 posterior scales apart: p(y|w) = 1 up to Gaussian tails below exp(-(40-8)^2/2) for every
    draw within 8 scales of its mean (all of them, to probability 1 - 1e-14 each), so the estimate equals H(y)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(num_classes, (400,), generator=generator)
    mean = 40.0 * labels[:, None].to(torch.float64).expand(400, dim) + 0.5 * torch.randn(
        400, dim, generator=generator, dtype=torch.float64
    )
    log_var = torch.full((400, dim), 2 * math.log(0.05), dtype=torch.float64)
    estimate = label_mutual_information(mean.contiguous(), log_var, labels, generator=generator)
    assert abs(estimate.value.item() - _entropy(labels)) <= 1e-9
    assert abs(estimate.normalized.item() - 1) <= 1e-8


def test_near_zero_for_latents_independent_of_y():
    """Means and labels drawn independently, posteriors overlapping (scale 1 for means of spread 1): the estimate
    is within 1% of H(y) (its upward plug-in bias is O(1/N); N = 2000) and not significantly negative."""
    generator = torch.Generator().manual_seed(2)
    mean = torch.randn(2000, 2, generator=generator, dtype=torch.float64)
    labels = torch.randint(2, (2000,), generator=generator)
    estimate = label_mutual_information(mean, torch.zeros(2000, 2, dtype=torch.float64), labels, generator=generator)
    assert estimate.value.item() >= -5 * estimate.standard_error.item()
    assert estimate.normalized.item() < 0.01


def test_documented_upward_bias_for_non_overlapping_posteriors():
    """The bias the docstring warns about: labels independent of everything, but posteriors so narrow that each
    sample identifies its own data point, and hence its label: the plug-in estimate approaches H(y)."""
    generator = torch.Generator().manual_seed(3)
    mean = torch.randn(500, 2, generator=generator, dtype=torch.float64)
    labels = torch.randint(2, (500,), generator=generator)
    narrow = label_mutual_information(
        mean, torch.full((500, 2), 2 * math.log(1e-4), dtype=torch.float64), labels, generator=generator
    )
    assert narrow.normalized.item() > 0.99


@settings(max_examples=20)
@given(log10_scale=st.floats(-6, 3), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_no_nan_or_inf_for_scales_from_1e_minus_6_to_1e3(log10_scale, dtype):
    generator = torch.Generator().manual_seed(4)
    mean = torch.randn(50, 3, generator=generator).to(dtype)
    log_var = torch.full((50, 3), 2 * math.log(10) * log10_scale, dtype=dtype)
    labels = torch.randint(3, (50,), generator=generator)
    estimate = label_mutual_information(mean, log_var, labels, generator=generator)
    assert torch.isfinite(estimate.value) and torch.isfinite(estimate.standard_error)


def test_bad_input_names_the_argument():
    mean, log_var, labels = torch.zeros(10, 2), torch.zeros(10, 2), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="'labels'"):
        label_mutual_information(mean, log_var, labels[:5])
    with pytest.raises(ValueError, match="'labels'"):
        label_mutual_information(mean, log_var, labels.float())
    with pytest.raises(ValueError, match="'mean'"):
        label_mutual_information(torch.full((10, 2), float("nan")), log_var, labels)
    with pytest.raises(ValueError, match="'log_var'"):
        label_mutual_information(mean, torch.zeros(10, 3), labels)
    with pytest.raises(ValueError, match="'num_samples'"):
        label_mutual_information(mean, log_var, labels, num_samples=1)


# --- probe --------------------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(
    num_trials=st.integers(1, 2000),
    fraction=st.floats(0, 1),
    confidence=st.sampled_from([0.5, 0.9, 0.95, 0.99, 1 - 5.7e-7]),
)
def test_wilson_interval_matches_scipy(num_trials, fraction, confidence):
    num_correct = round(fraction * num_trials)
    lower, upper = wilson_interval(num_correct, num_trials, confidence)
    reference = scipy_stats.binomtest(num_correct, num_trials).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    assert math.isclose(lower, reference.low, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(upper, reference.high, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_probe_separates_encoded_labels(classifier):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=600)
    features = np.stack([labels * 4.0, rng.normal(size=600)], 1) + rng.normal(scale=0.3, size=(600, 2))
    result = probe_accuracy(torch.tensor(features), torch.tensor(labels), classifier=classifier, seed=0)
    assert result.num_test == 150 and result.num_correct == round(result.accuracy * 150)
    assert result.accuracy == 1.0 and result.lower > 0.95
    assert 0.3 < result.chance_accuracy < 0.4


def test_probe_is_at_chance_for_independent_labels():
    """Features independent of the labels: the held-out accuracy's 5-sigma Wilson interval contains the chance level."""
    rng = np.random.default_rng(6)
    result = probe_accuracy(rng.normal(size=(4000, 3)), rng.integers(0, 2, size=4000), confidence=1 - 5.7e-7, seed=1)
    assert result.lower <= 0.5 <= result.upper
    assert result.lower <= result.accuracy <= result.upper


def test_probe_bad_input_names_the_argument():
    features, labels = np.zeros((20, 2)), np.arange(20) % 2
    with pytest.raises(ValueError, match="'features'"):
        probe_accuracy(np.full((20, 2), np.nan), labels)
    with pytest.raises(ValueError, match="'labels'"):
        probe_accuracy(features, labels[:10])
    with pytest.raises(ValueError, match="'labels'"):
        probe_accuracy(features, np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="'test_fraction'"):
        probe_accuracy(features, labels, test_fraction=1.5)
    with pytest.raises(ValueError, match="'classifier'"):
        probe_accuracy(features, labels, classifier="forest")
    with pytest.raises(ValueError, match="'num_correct'"):
        wilson_interval(5, 3)


@pytest.mark.cuda
def test_cuda_label_information():
    device = cuda_device()
    mean, log_var = torch.randn(200, 3, device=device), torch.zeros(200, 3, device=device)
    labels = (mean[:, 0] > 0).long()
    estimate = label_mutual_information(mean, log_var, labels, generator=torch.Generator(device=device).manual_seed(0))
    assert estimate.value.device.type == "cuda"
    assert probe_accuracy(mean, labels).num_test == 50
