"""Tests for elbocheck.estimators.base (file named test_estimators_base.py: pytest needs unique test basenames across
tests/, and models/base.py has its own): Gaussian log densities and closed-form expectations against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as scipy_stats
from torch.distributions import Independent, MultivariateNormal, Normal

from elbocheck.estimators.base import (
    diagonal_normal_log_density,
    expected_log_posterior,
    expected_log_prior_per_dimension,
    factorized_normal_prior,
    mean_and_standard_error,
)

log10_scales = st.floats(-6.0, 3.0)


@settings(max_examples=40)
@given(z=st.floats(-1e3, 1e3), mean=st.floats(-1e3, 1e3), log10_scale=log10_scales)
def test_diagonal_normal_log_density_matches_scipy(z, mean, log10_scale):
    scale = 10.0**log10_scale
    value = diagonal_normal_log_density(
        torch.tensor(z, dtype=torch.float64),
        torch.tensor(mean, dtype=torch.float64),
        torch.tensor(2 * math.log(scale), dtype=torch.float64),
    ).item()
    reference = scipy_stats.norm(mean, scale).logpdf(z)
    if np.isfinite(reference):
        assert math.isclose(value, reference, rel_tol=1e-12, abs_tol=1e-12)
    else:  # scipy underflows to -inf where the log density is below about -1e308; ours stays finite
        assert math.isfinite(value) and value < -1e300


@settings(max_examples=30)
@given(
    mean=st.floats(-10, 10),
    log10_scale=st.floats(-2, 2),
    prior_loc=st.floats(-5, 5),
    log10_prior_scale=st.floats(-1, 1),
)
def test_expected_log_prior_matches_numeric_integration(mean, log10_scale, prior_loc, log10_prior_scale):
    scale, prior_scale = 10.0**log10_scale, 10.0**log10_prior_scale
    p = scipy_stats.norm(prior_loc, prior_scale)
    reference, error = integrate.quad(
        lambda u: scipy_stats.norm.pdf(u) * p.logpdf(mean + scale * u), -40, 40, epsabs=0, epsrel=1e-12, limit=200
    )
    value = expected_log_prior_per_dimension(
        torch.tensor([[mean]], dtype=torch.float64),
        torch.tensor([[2 * math.log(scale)]], dtype=torch.float64),
        torch.tensor([prior_loc], dtype=torch.float64),
        torch.tensor([prior_scale], dtype=torch.float64),
    ).item()
    assert abs(value - reference) <= 10 * error + 1e-10 * (1 + abs(reference))


def test_expected_log_posterior_is_minus_the_entropy():
    log_var = torch.tensor([[-27.0, 0.0, 13.0], [1.0, 2.0, -3.0]], dtype=torch.float64)
    entropy = scipy_stats.norm(0, np.exp(0.5 * log_var.numpy())).entropy().sum(-1)
    assert np.allclose(expected_log_posterior(log_var).numpy(), -entropy, rtol=1e-12)


def test_mean_and_standard_error():
    samples = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]], dtype=torch.float64)
    estimate = mean_and_standard_error(samples)
    assert torch.allclose(estimate.value, torch.tensor([3.0, 3.0], dtype=torch.float64))
    assert np.allclose(estimate.standard_error.numpy(), scipy_stats.sem(samples.numpy(), axis=0))
    with pytest.raises(ValueError, match="'num_samples'"):
        mean_and_standard_error(samples[:1])


def test_factorized_normal_prior_forms_and_errors():
    like = torch.zeros(1, dtype=torch.float64)
    loc, scale = factorized_normal_prior(None, 3, like)
    assert torch.equal(loc, torch.zeros(3, dtype=torch.float64)) and torch.equal(
        scale, torch.ones(3, dtype=torch.float64)
    )
    for prior in (
        Normal(torch.full((3,), 2.0), torch.full((3,), 0.5)),
        Independent(Normal(torch.full((3,), 2.0), torch.full((3,), 0.5)), 1),
        Normal(2.0, 0.5),
    ):
        loc, scale = factorized_normal_prior(prior, 3, like)
        assert loc.dtype == torch.float64 and torch.allclose(loc, torch.full((3,), 2.0, dtype=torch.float64))
        assert torch.allclose(scale, torch.full((3,), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="'prior'"):
        factorized_normal_prior(MultivariateNormal(torch.zeros(3), torch.eye(3)), 3, like)
    with pytest.raises(ValueError, match="'prior'"):
        factorized_normal_prior(Normal(torch.zeros(4), torch.ones(4)), 3, like)
    with pytest.raises(ValueError, match="'prior'"):
        factorized_normal_prior(Normal(torch.zeros(3), -torch.ones(3), validate_args=False), 3, like)
