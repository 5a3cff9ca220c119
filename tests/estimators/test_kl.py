"""Tests for elbocheck.estimators.kl: analytic rules against independent float64 computations (scipy numeric
integration, numpy closed forms), the Monte-Carlo KL against the analytic one within 5 standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as scipy_stats
from torch.distributions import Independent, Laplace, MultivariateNormal, Normal, StudentT

from elbocheck.estimators import analytic_kl, kl_analytic_or_sampled, monte_carlo_kl
from estimator_testing import (
    assert_within_standard_errors,
    cuda_device,
    numpy_gaussian_kl,
    to_numpy,
)  # noqa: F401 (fixture)

means = st.floats(-100.0, 100.0, allow_nan=False)
log10_scales = st.floats(-3.0, 3.0, allow_nan=False)  # scales from 1e-3 to 1e3
batch_shapes = st.sampled_from([(), (1,), (3,), (2, 3)])


def _draw_diagonal(draw, batch_shape, dim, dtype=torch.float64):
    loc = torch.tensor(draw(st.lists(means, min_size=dim, max_size=dim)), dtype=dtype)
    scale = 10.0 ** torch.tensor(draw(st.lists(log10_scales, min_size=dim, max_size=dim)), dtype=dtype)
    jitter = torch.linspace(0.9, 1.1, math.prod(batch_shape) or 1, dtype=dtype).reshape(batch_shape + (1,))
    return loc * jitter, scale * jitter  # distinct batch elements


def _draw_scale_tril(draw, dim, dtype=torch.float64):
    """A lower-triangular factor: diag of scales in [1e-3, 1e3] times a unit lower-triangular mixing."""
    diagonal = 10.0 ** torch.tensor(draw(st.lists(log10_scales, min_size=dim, max_size=dim)), dtype=dtype)
    off = torch.tensor(draw(st.lists(st.floats(-1, 1), min_size=dim * dim, max_size=dim * dim)), dtype=dtype)
    unit = torch.eye(dim, dtype=dtype) + torch.tril(off.reshape(dim, dim), diagonal=-1)
    return torch.diag(diagonal) @ unit


@st.composite
def distribution_pairs(draw):
    """(q, p) pairs of every Gaussian family combination the estimators meet, with batch shapes."""
    kind = draw(st.sampled_from(["normal", "diagonal", "diagonal-full", "full-diagonal", "full-full"]))
    batch_shape = draw(batch_shapes)
    dim = draw(st.integers(1, 4))
    if kind == "normal":
        q_loc, q_scale = _draw_diagonal(draw, batch_shape, 1)
        p_loc, p_scale = _draw_diagonal(draw, (), 1)
        return Normal(q_loc[..., 0], q_scale[..., 0]), Normal(p_loc[0], p_scale[0])
    q_loc, q_scale = _draw_diagonal(draw, batch_shape, dim)
    diagonal_q = Independent(Normal(q_loc, q_scale), 1)
    p_loc, p_scale = _draw_diagonal(draw, (), dim)
    diagonal_p = Independent(Normal(p_loc, p_scale), 1)
    full_q = MultivariateNormal(q_loc, scale_tril=_draw_scale_tril(draw, dim))
    full_p = MultivariateNormal(p_loc, scale_tril=_draw_scale_tril(draw, dim))
    return {
        "diagonal": (diagonal_q, diagonal_p),
        "diagonal-full": (diagonal_q, full_p),
        "full-diagonal": (full_q, diagonal_p),
        "full-full": (full_q, full_p),
    }[kind]


def _covariance(distribution):
    if isinstance(distribution, MultivariateNormal):
        return to_numpy(distribution.covariance_matrix)
    scale = to_numpy(distribution.base_dist.scale)
    return np.vectorize(np.diag, signature="(d)->(d,d)")(scale**2)


# --- analytic rules against independent computations ----------------------------------------------------------


@settings(max_examples=40)
@given(mean_q=means, mean_p=means, log10_scale_q=log10_scales, log10_scale_p=log10_scales)
def test_normal_kl_matches_numeric_integration(mean_q, mean_p, log10_scale_q, log10_scale_p):
    scale_q, scale_p = 10.0**log10_scale_q, 10.0**log10_scale_p

    def integrand(u):  # x = mean_q + scale_q u, so q(x) dx = phi(u) du
        x = mean_q + scale_q * u
        log_q = -0.5 * u * u - math.log(scale_q) - 0.5 * math.log(2 * math.pi)
        log_p = -0.5 * ((x - mean_p) / scale_p) ** 2 - math.log(scale_p) - 0.5 * math.log(2 * math.pi)
        return math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi) * (log_q - log_p)

    reference, quadrature_error = integrate.quad(integrand, -40, 40, epsabs=0, epsrel=1e-12, limit=200)
    value = analytic_kl(
        Normal(torch.tensor(mean_q, dtype=torch.float64), torch.tensor(scale_q, dtype=torch.float64)),
        Normal(torch.tensor(mean_p, dtype=torch.float64), torch.tensor(scale_p, dtype=torch.float64)),
    ).item()
    assert abs(value - reference) <= 10 * quadrature_error + 1e-10 * (1 + abs(reference))


def _numpy_reference(q, p):
    """Per batch element: the numpy closed-form KL and the magnitude of its summed terms."""
    if isinstance(q, Normal):
        covariance_q = to_numpy(q.scale)[..., None, None] ** 2
        covariance_p = to_numpy(p.scale)[..., None, None] ** 2
        mean_q, mean_p = to_numpy(q.loc)[..., None], to_numpy(p.loc)[..., None]
    else:
        covariance_q, covariance_p = _covariance(q), _covariance(p)
        mean_q, mean_p = to_numpy(q.mean), to_numpy(p.mean)
    batch_shape = tuple(torch.broadcast_shapes(q.batch_shape, p.batch_shape))
    mean_q = np.broadcast_to(mean_q, batch_shape + mean_q.shape[-1:])
    mean_p = np.broadcast_to(mean_p, batch_shape + mean_p.shape[-1:])
    covariance_q = np.broadcast_to(covariance_q, batch_shape + covariance_q.shape[-2:])
    covariance_p = np.broadcast_to(covariance_p, batch_shape + covariance_p.shape[-2:])
    reference, magnitude = np.zeros(batch_shape), np.zeros(batch_shape)
    for index in np.ndindex(*batch_shape):
        reference[index], magnitude[index] = numpy_gaussian_kl(
            mean_q[index], covariance_q[index], mean_p[index], covariance_p[index]
        )
    return reference, magnitude


@settings(max_examples=40)
@given(pair=distribution_pairs())
def test_gaussian_rules_match_numpy_closed_form(pair):
    q, p = pair
    value = to_numpy(analytic_kl(q, p))
    reference, magnitude = _numpy_reference(q, p)
    assert value.shape == reference.shape
    # float64 rounding of a sum of terms of size `magnitude` (condition numbers reach 1e12 here)
    assert np.all(np.abs(value - reference) <= 1e-9 * (1 + magnitude))


@settings(max_examples=25)
@given(pair=distribution_pairs().filter(lambda pair: not isinstance(pair[0], Normal)))
def test_mixed_rules_agree_with_torch_full_covariance_rule(pair):
    """The registered diagonal/full rules equal torch's own MultivariateNormal rule after converting the diagonal
    Gaussian to a MultivariateNormal (an independent code path)."""
    q, p = pair

    def as_full(distribution):
        if isinstance(distribution, MultivariateNormal):
            return distribution
        return MultivariateNormal(distribution.base_dist.loc, scale_tril=torch.diag_embed(distribution.base_dist.scale))

    value = to_numpy(analytic_kl(q, p))
    reference = to_numpy(torch.distributions.kl_divergence(as_full(q), as_full(p)))
    _, magnitude = _numpy_reference(q, p)
    assert np.all(np.abs(value - reference) <= 1e-9 * (1 + magnitude))


def test_torch_has_no_mixed_rule_without_this_module():
    """The registered rules exist because torch lacks them: dispatch finds exactly our functions."""
    from torch.distributions.kl import _KL_REGISTRY

    from elbocheck.estimators import kl as kl_module

    assert _KL_REGISTRY[(Independent, MultivariateNormal)] is kl_module._kl_diagonal_normal_multivariate_normal
    assert _KL_REGISTRY[(MultivariateNormal, Independent)] is kl_module._kl_multivariate_normal_diagonal_normal


# --- Monte-Carlo KL ----------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(pair=distribution_pairs())
def test_monte_carlo_kl_within_five_standard_errors_of_analytic(pair):
    q, p = pair
    torch.manual_seed(1234)
    estimate = monte_carlo_kl(q, p, num_samples=4000)
    truth = analytic_kl(q, p)
    assert estimate.value.shape == truth.shape == estimate.standard_error.shape
    # rounding allowance from the size of the log densities that are subtracted (float64)
    cross_entropy = q.entropy() + truth
    rounding = 1e-9 * (1 + q.entropy().abs() + cross_entropy.abs())
    assert_within_standard_errors(estimate.value, truth, estimate.standard_error, rounding=rounding, what="MC KL")


def test_monte_carlo_kl_standard_error_is_calibrated():
    """Across 400 independent repetitions, the spread of the MC estimate matches its reported standard error: the
    ratio of the empirical sd to the mean reported SE lies within 5 sampling sd of 1 (each estimate averages 200 draws
    and is near-Gaussian, so the empirical sd has relative sd ~ 1/sqrt(2 * 400); the mean SE is far less noisy)."""
    torch.manual_seed(7)
    q = Normal(torch.zeros(400, dtype=torch.float64), 2.0 * torch.ones(400, dtype=torch.float64))
    p = Normal(torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
    estimate = monte_carlo_kl(q, p, num_samples=200)
    ratio = estimate.value.std().item() / estimate.standard_error.mean().item()
    assert abs(ratio - 1) <= 5 / math.sqrt(2 * 400)


def test_monte_carlo_kl_equal_distributions_is_exactly_zero():
    q = Normal(torch.tensor([0.3, -2.0]), torch.tensor([1e-3, 1e3]))
    estimate = monte_carlo_kl(q, q, num_samples=10)
    assert torch.equal(estimate.value, torch.zeros(2)) and torch.equal(estimate.standard_error, torch.zeros(2))


# --- analytic if registered, else sampled ------------------------------------------------------------------------


def test_analytic_or_sampled_uses_the_registered_rule():
    q = Independent(Normal(torch.randn(5, 3), torch.rand(5, 3) + 0.1), 1)
    p = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    assert torch.equal(kl_analytic_or_sampled(q, p, num_samples=3), analytic_kl(q, p))


def test_analytic_or_sampled_samples_an_unregistered_pair_and_matches_numeric_integration():
    df, loc, scale = 5.0, 0.5, 1.5
    q = StudentT(
        torch.tensor(df, dtype=torch.float64),
        torch.tensor(loc, dtype=torch.float64),
        torch.tensor(scale, dtype=torch.float64),
    )
    p = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
    with pytest.raises(NotImplementedError, match=r"StudentT.*Normal"):
        analytic_kl(q, p)
    torch.manual_seed(3)
    sampled = kl_analytic_or_sampled(q, p, num_samples=20000)
    torch.manual_seed(3)
    with_error = monte_carlo_kl(q, p, num_samples=20000)  # same draws: same value, plus its standard error
    assert torch.equal(sampled, with_error.value)
    t, normal = scipy_stats.t(df, loc, scale), scipy_stats.norm(0.0, 2.0)
    reference, _ = integrate.quad(lambda x: t.pdf(x) * (t.logpdf(x) - normal.logpdf(x)), -np.inf, np.inf, epsrel=1e-11)
    assert_within_standard_errors(sampled, reference, with_error.standard_error, what="sampled KL(StudentT || Normal)")


def test_analytic_kl_names_the_pair_for_unsupported_independent_base():
    q = Independent(Laplace(torch.zeros(3), torch.ones(3)), 1)
    p = MultivariateNormal(torch.zeros(3), torch.eye(3))
    with pytest.raises(NotImplementedError, match=r"Independent\(Laplace, 1\).*MultivariateNormal"):
        analytic_kl(q, p)


# --- numerics: scales from 1e-6 to 1e3, float32 and float64 -------------------------------------------------------


@settings(max_examples=40)
@given(
    log10_scale_q=st.floats(-6, 3),
    log10_scale_p=st.floats(-6, 3),
    mean_q=st.floats(-1e3, 1e3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    full=st.booleans(),
)
def test_no_nan_or_inf_for_scales_from_1e_minus_6_to_1e3(log10_scale_q, log10_scale_p, mean_q, dtype, full):
    dim = 3
    q_scale = torch.full((2, dim), 10.0**log10_scale_q, dtype=dtype)
    q = Independent(Normal(torch.full((2, dim), mean_q, dtype=dtype), q_scale), 1)
    p_scale = torch.full((dim,), 10.0**log10_scale_p, dtype=dtype)
    p = (
        MultivariateNormal(torch.zeros(dim, dtype=dtype), scale_tril=torch.diag(p_scale))
        if full
        else Independent(Normal(torch.zeros(dim, dtype=dtype), p_scale), 1)
    )
    torch.manual_seed(0)
    for value in (
        analytic_kl(q, p),
        analytic_kl(p, q),
        monte_carlo_kl(q, p, 8).value,
        monte_carlo_kl(q, p, 8).standard_error,
    ):
        assert torch.isfinite(value).all() and value.dtype == dtype


def test_float32_rule_matches_float64():
    torch.manual_seed(0)
    loc, scale = torch.randn(4, 3, dtype=torch.float64), torch.rand(4, 3, dtype=torch.float64) + 0.2
    tril = torch.tril(torch.randn(3, 3, dtype=torch.float64), -1) + torch.diag(torch.rand(3, dtype=torch.float64) + 0.5)
    value64 = analytic_kl(
        Independent(Normal(loc, scale), 1), MultivariateNormal(torch.zeros(3, dtype=torch.float64), scale_tril=tril)
    )
    value32 = analytic_kl(
        Independent(Normal(loc.float(), scale.float()), 1), MultivariateNormal(torch.zeros(3), scale_tril=tril.float())
    )
    assert value32.dtype == torch.float32
    assert torch.allclose(value32.double(), value64, rtol=1e-5, atol=1e-5)


# --- bad input --------------------------------------------------------------------------------------------------


def test_event_shape_mismatch_names_p():
    q = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    p = Independent(Normal(torch.zeros(4), torch.ones(4)), 1)
    for function in (analytic_kl, kl_analytic_or_sampled, lambda q, p: monte_carlo_kl(q, p, 4)):
        with pytest.raises(ValueError, match="'p'"):
            function(q, p)


def test_batch_shape_mismatch_names_p():
    q = Normal(torch.zeros(3), torch.ones(3))
    p = Normal(torch.zeros(4), torch.ones(4))
    with pytest.raises(ValueError, match="argument 'p' has batch shape"):
        monte_carlo_kl(q, p, 4)


def test_nan_and_non_positive_scales_name_the_argument_even_without_torch_validation():
    bad_nan = Normal(torch.tensor([float("nan")]), torch.tensor([1.0]), validate_args=False)
    bad_scale = Normal(torch.tensor([0.0]), torch.tensor([-0.1]), validate_args=False)
    good = Normal(torch.tensor([0.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"finite.*'q'"):
        analytic_kl(bad_nan, good)
    with pytest.raises(ValueError, match=r"scale must be positive; got min -0.1 in argument 'p'"):
        monte_carlo_kl(good, bad_scale, 4)
    with pytest.raises(ValueError, match="'q'"):
        kl_analytic_or_sampled(torch.zeros(1), good)


def test_num_samples_validation():
    q = Normal(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="'num_samples'"):
        monte_carlo_kl(q, q, 1)  # a standard error needs two samples
    with pytest.raises(ValueError, match="'num_samples'"):
        kl_analytic_or_sampled(q, q, 0)


# --- device -----------------------------------------------------------------------------------------------------


@pytest.mark.cuda
def test_cuda_kl():
    device = cuda_device()
    q = Independent(Normal(torch.randn(5, 3, device=device), torch.rand(5, 3, device=device) + 0.1), 1)
    p = MultivariateNormal(torch.zeros(3, device=device), scale_tril=torch.eye(3, device=device))
    assert analytic_kl(q, p).device.type == "cuda"
    estimate = monte_carlo_kl(q, p, 16)
    assert estimate.value.device.type == "cuda" and estimate.standard_error.device.type == "cuda"
    assert kl_analytic_or_sampled(q, p).device.type == "cuda"
