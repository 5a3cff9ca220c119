"""Tests for elbocheck.estimators.testbeds: the linear-Gaussian model's exact quantities against numpy/scipy and the
Bayes identity log p(x|z) + log p(z) - log p(z|x) = log p(x) at arbitrary z."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from elbocheck.estimators import LinearGaussianModel, gaussian_posteriors
from estimator_testing import (
    assert_within_standard_errors,
    to_numpy,
)

models = st.builds(
    lambda latent_dim, observed_dim, noise_scale, seed: LinearGaussianModel.random(
        latent_dim, observed_dim, noise_scale=noise_scale, generator=torch.Generator().manual_seed(seed)
    ),
    latent_dim=st.integers(1, 4),
    observed_dim=st.integers(1, 6),
    noise_scale=st.floats(0.05, 3.0),
    seed=st.integers(0, 10_000),
)


@settings(max_examples=30)
@given(model=models)
def test_log_marginal_likelihood_matches_scipy(model):
    x = model.sample(5, generator=torch.Generator().manual_seed(0))
    weight, bias = to_numpy(model.weight), to_numpy(model.bias)
    covariance = weight @ weight.T + model.noise_scale**2 * np.eye(model.observed_dim)
    reference = scipy_stats.multivariate_normal(bias, covariance).logpdf(to_numpy(x))
    assert np.allclose(to_numpy(model.log_marginal_likelihood(x)), reference, rtol=1e-10, atol=1e-10)


@settings(max_examples=30)
@given(model=models)
def test_posterior_satisfies_bayes_identity_at_arbitrary_points(model):
    x = model.sample(4, generator=torch.Generator().manual_seed(1))
    z = 3.0 * torch.randn(6, 4, model.latent_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    log_joint = model.log_likelihood(x)(z) + model.prior().log_prob(z)  # log p(x|z) + log p(z), (6, 4)
    log_posterior = model.posterior(x).log_prob(z)
    log_evidence = model.log_marginal_likelihood(x)
    residual = log_joint - log_posterior - log_evidence
    assert torch.allclose(residual, torch.zeros_like(residual), atol=1e-8 * (1 + log_joint.abs().max().item()))


@settings(max_examples=20)
@given(model=models)
def test_posterior_matches_numpy_formula(model):
    x = model.sample(3, generator=torch.Generator().manual_seed(3))
    weight, bias, s2 = to_numpy(model.weight), to_numpy(model.bias), model.noise_scale**2
    precision = np.eye(model.latent_dim) + weight.T @ weight / s2
    covariance = np.linalg.inv(precision)
    mean = np.linalg.solve(precision, weight.T @ (to_numpy(x) - bias).T / s2).T
    posterior = model.posterior(x)
    assert np.allclose(to_numpy(posterior.mean), mean, rtol=1e-8, atol=1e-8)
    assert np.allclose(to_numpy(posterior.covariance_matrix[0]), covariance, rtol=1e-8, atol=1e-10)


def test_expected_log_likelihood_matches_monte_carlo():
    model = LinearGaussianModel.random(3, 5, noise_scale=0.7, generator=torch.Generator().manual_seed(4))
    x = model.sample(4, generator=torch.Generator().manual_seed(5))
    rng = np.random.default_rng(6)
    q_mean = rng.normal(size=(4, 3))
    factor = np.tril(rng.normal(size=(4, 3, 3)) * 0.3) + np.eye(3) * 0.6
    q_covariance = factor @ np.swapaxes(factor, -1, -2)
    closed_form = to_numpy(model.expected_log_likelihood(x, torch.tensor(q_mean), torch.tensor(q_covariance)))
    weight, bias = to_numpy(model.weight), to_numpy(model.bias)
    for b in range(4):  # numpy Monte Carlo, independent of the package
        z = rng.multivariate_normal(q_mean[b], q_covariance[b], size=200_000)
        log_likelihood = scipy_stats.norm(z @ weight.T + bias, model.noise_scale).logpdf(to_numpy(x)[b]).sum(-1)
        assert_within_standard_errors(
            log_likelihood.mean(),
            closed_form[b],
            log_likelihood.std(ddof=1) / math.sqrt(z.shape[0]),
            what="E log p(x|z)",
        )


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="'noise_scale'"):
        LinearGaussianModel(torch.ones(3, 2), torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="'bias'"):
        LinearGaussianModel(torch.ones(3, 2), torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="'weight'"):
        LinearGaussianModel(torch.full((3, 2), float("nan")), torch.zeros(3), 1.0)


def test_gaussian_posteriors():
    mean, log_var = gaussian_posteriors(3000, 4, 0.01, seed=5)
    assert mean.shape == log_var.shape == (3000, 4) and mean.dtype == torch.float64
    assert torch.allclose(log_var.exp(), torch.full_like(log_var, 0.01), rtol=1e-12)
    # means N(0, 1): sample mean within 5 standard errors (1 / sqrt(3000)) of 0, variance within 5 of 1
    assert_within_standard_errors(to_numpy(mean.mean(0)), 0.0, 1 / math.sqrt(3000), what="mean of the means")
    assert_within_standard_errors(to_numpy(mean.var(0)), 1.0, math.sqrt(2 / 3000), what="variance of the means")
    assert torch.equal(gaussian_posteriors(3000, 4, 0.01, seed=5)[0], mean)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="'variance'"):
            gaussian_posteriors(10, 2, bad)
    with pytest.raises(ValueError, match="'num_points'"):
        gaussian_posteriors(0, 2, 1.0)
