"""Tests for elbocheck.estimators.exact_decomposition: the identity with the analytic KL, the zero cases, and the
terms against an independent grid integration of the mixture entropies."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from scipy.special import logsumexp
from torch.distributions import Independent, MultivariateNormal, Normal

from elbocheck.estimators import exact_kl_decomposition
from estimator_testing import (
    assert_within_standard_errors,
    cuda_device,
)  # noqa: F401 (fixture)


@st.composite
def posteriors(draw, log10_scale_range=(-3.0, 1.0), max_points=40, max_dim=4):
    num_points, dim = draw(st.integers(2, max_points)), draw(st.integers(1, max_dim))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    low, high = log10_scale_range
    log_scale = math.log(10) * (
        low + (high - low) * torch.rand(num_points, dim, generator=generator, dtype=torch.float64)
    )
    mean = torch.randn(num_points, dim, generator=generator, dtype=torch.float64) * draw(
        st.sampled_from([0.1, 1.0, 5.0])
    )
    return mean, 2 * log_scale


@st.composite
def priors(draw, dim):
    kind = draw(st.sampled_from(["standard", "normal", "independent"]))
    if kind == "standard":
        return None
    loc = torch.tensor(draw(st.lists(st.floats(-2, 2), min_size=dim, max_size=dim)), dtype=torch.float64)
    scale = torch.tensor(draw(st.lists(st.floats(0.2, 5), min_size=dim, max_size=dim)), dtype=torch.float64)
    return Normal(loc, scale) if kind == "normal" else Independent(Normal(loc, scale), 1)


def _average_analytic_kl(mean, log_var, prior):
    """(1/N) sum_n KL(q(z|x_n) || p(z)) from torch's Normal/Normal rule, summed over dimensions."""
    if prior is None:
        loc, scale = torch.zeros(mean.shape[1], dtype=mean.dtype), torch.ones(mean.shape[1], dtype=mean.dtype)
    else:
        base = prior.base_dist if isinstance(prior, Independent) else prior
        loc, scale = base.loc, base.scale
    return torch.distributions.kl_divergence(Normal(mean, torch.exp(0.5 * log_var)), Normal(loc, scale)).sum(-1).mean()


@settings(max_examples=40)
@given(data=st.data(), dtype=st.sampled_from([torch.float64, torch.float32]), iid=st.booleans())
def test_terms_sum_to_the_analytic_average_kl(data, dtype, iid):
    mean, log_var = data.draw(posteriors())
    prior = data.draw(priors(mean.shape[1]))
    result = exact_kl_decomposition(
        mean.to(dtype),
        log_var.to(dtype),
        prior=prior,
        num_samples=64 if iid else None,
        generator=torch.Generator().manual_seed(0),
    )
    truth = _average_analytic_kl(mean, log_var, prior).item()
    # rounding: the sum telescopes terms whose size is that of the log densities involved
    magnitude = (
        1
        + abs(result.mutual_information.item())
        + abs(result.total_correlation.item())
        + abs(result.dimensionwise_kl.item())
        + abs(truth)
    )
    tolerance = (1e-10 if dtype == torch.float64 else 1e-5) * magnitude * mean.shape[1]
    assert abs(result.sum_of_terms.item() - truth) <= tolerance
    assert abs(result.total.item() - truth) <= tolerance
    assert torch.allclose(result.dimensionwise_kl_per_dimension.sum(), result.dimensionwise_kl)
    assert result.num_samples == (64 if iid else mean.shape[0])


@settings(max_examples=30)
@given(
    values=st.lists(st.lists(st.floats(-3, 3), min_size=2, max_size=4, unique=True), min_size=2, max_size=3),
    log10_scales=st.lists(st.floats(-2, 0.5), min_size=4, max_size=4),
)
def test_total_correlation_is_zero_for_independent_dimensions(values, log10_scales):
    """A product grid: every combination of per-dimension (mean, scale) values is one data point, so the aggregate
    posterior factorizes exactly, q(z) = prod_j q(z_j), and log q(z) - sum_j log q(z_j) = 0 at every sample."""
    grid = list(itertools.product(*[range(len(v)) for v in values]))
    mean = torch.tensor([[values[j][i] for j, i in enumerate(cell)] for cell in grid], dtype=torch.float64)
    log_var = torch.tensor([[2 * math.log(10) * log10_scales[i] for i in cell] for cell in grid], dtype=torch.float64)
    result = exact_kl_decomposition(mean, log_var, generator=torch.Generator().manual_seed(1))
    rounding = 1e-10 * (1 + result.dimensionwise_kl.abs().item() + mean.shape[1] * 50)
    assert abs(result.total_correlation.item()) <= rounding
    assert result.total_correlation_standard_error.item() <= rounding


@settings(max_examples=25)
@given(
    mean=st.lists(st.floats(-3, 3), min_size=1, max_size=3), log10_scale=st.floats(-3, 1), num_points=st.integers(2, 50)
)
def test_mutual_information_is_zero_when_the_posterior_ignores_x(mean, log10_scale, num_points):
    dim = len(mean)
    means = torch.tensor(mean, dtype=torch.float64).expand(num_points, dim).contiguous()
    log_var = torch.full((num_points, dim), 2 * math.log(10) * log10_scale, dtype=torch.float64)
    # uniformly drawn points with many samples: a standard error from few samples (N = 2) would be unreliable
    result = exact_kl_decomposition(means, log_var, num_samples=2000, generator=torch.Generator().manual_seed(2))
    magnitude = 1e-10 * dim * (1 + abs(math.log(10) * log10_scale) + 10)
    assert_within_standard_errors(
        result.mutual_information, 0.0, result.mutual_information_standard_error, rounding=magnitude, what="MI"
    )
    assert abs(result.total_correlation.item()) <= magnitude  # a single Gaussian component is factorized


def _grid_entropies(mean, scale, prior_loc, prior_scale):
    """Independent reference for D = 2 by trapezoidal integration on a fine grid (float64 numpy):
    H(q(z)), H(q(z_1)), H(q(z_2)) and the cross-entropies -E_{q(z_j)} log p(z_j)."""
    axes = [
        np.linspace(mean[:, j].min() - 9 * scale[:, j].max(), mean[:, j].max() + 9 * scale[:, j].max(), 1601)
        for j in range(2)
    ]
    log_marginals = []
    for j in range(2):
        log_components = scipy_stats.norm(mean[:, j][:, None], scale[:, j][:, None]).logpdf(axes[j][None])  # (N, G)
        log_marginals.append(logsumexp(log_components, axis=0) - math.log(mean.shape[0]))
    log_joint_components = scipy_stats.norm(mean[:, 0][:, None, None], scale[:, 0][:, None, None]).logpdf(
        axes[0][None, :, None]
    ) + scipy_stats.norm(mean[:, 1][:, None, None], scale[:, 1][:, None, None]).logpdf(axes[1][None, None, :])
    log_joint = logsumexp(log_joint_components, axis=0) - math.log(mean.shape[0])  # (G, G)
    joint_entropy = -np.trapezoid(np.trapezoid(np.exp(log_joint) * log_joint, axes[1], axis=1), axes[0])
    marginal_entropies = [-np.trapezoid(np.exp(lm) * lm, axes[j]) for j, lm in enumerate(log_marginals)]
    cross_entropies = [
        -np.trapezoid(np.exp(lm) * scipy_stats.norm(prior_loc[j], prior_scale[j]).logpdf(axes[j]), axes[j])
        for j, lm in enumerate(log_marginals)
    ]
    return joint_entropy, marginal_entropies, cross_entropies


def _grid_case():
    rng = np.random.default_rng(3)
    mean = rng.uniform(-2, 2, size=(12, 2))
    mean[:, 1] += 0.8 * mean[:, 0]  # correlated aggregate posterior: TC > 0
    scale = rng.uniform(0.3, 1.0, size=(12, 2))
    prior_loc, prior_scale = np.array([0.5, -0.3]), np.array([1.5, 0.8])
    joint_entropy, marginal_entropies, cross_entropies = _grid_entropies(mean, scale, prior_loc, prior_scale)
    posterior_entropy = scipy_stats.norm(0, scale).entropy().sum(-1).mean()
    reference = {
        "mutual_information": joint_entropy - posterior_entropy,  # I = H(q(z)) - E H(q(z|x))
        "total_correlation": sum(marginal_entropies) - joint_entropy,
        "dimensionwise_kl": sum(c - h for c, h in zip(cross_entropies, marginal_entropies)),
    }
    prior = Normal(torch.tensor(prior_loc), torch.tensor(prior_scale))
    return torch.tensor(mean), torch.tensor(2 * np.log(scale)), prior, reference


def test_terms_match_grid_integration_with_uniformly_drawn_points():
    mean, log_var, prior, reference = _grid_case()
    result = exact_kl_decomposition(
        mean, log_var, prior=prior, num_samples=400_000, generator=torch.Generator().manual_seed(4)
    )
    for name, truth in reference.items():
        assert_within_standard_errors(
            getattr(result, name), truth, getattr(result, f"{name}_standard_error"), rounding=1e-7, what=name
        )
    assert reference["total_correlation"] > 10 * result.total_correlation_standard_error.item()  # a non-trivial case


def test_terms_match_grid_integration_with_one_sample_per_point():
    """The default (stratified) path. Replicating the 12 points 400 times leaves the aggregate posterior unchanged,
    so the grid reference still holds, and gives N = 4800 samples for a reliable standard error."""
    mean, log_var, prior, reference = _grid_case()
    result = exact_kl_decomposition(
        mean.repeat(400, 1), log_var.repeat(400, 1), prior=prior, generator=torch.Generator().manual_seed(5)
    )
    assert result.num_samples == 4800
    for name, truth in reference.items():
        assert_within_standard_errors(
            getattr(result, name), truth, getattr(result, f"{name}_standard_error"), rounding=1e-7, what=name
        )


def test_result_does_not_depend_on_the_chunking():
    rng = np.random.default_rng(5)
    mean, scale = rng.uniform(-2, 2, size=(3000, 2)), rng.uniform(0.3, 1.0, size=(3000, 2))
    first = exact_kl_decomposition(
        torch.tensor(mean), torch.tensor(2 * np.log(scale)), generator=torch.Generator().manual_seed(6)
    )
    second = exact_kl_decomposition(
        torch.tensor(mean),
        torch.tensor(2 * np.log(scale)),
        generator=torch.Generator().manual_seed(6),
        max_chunk_elements=999,
    )
    for name in ("mutual_information", "total_correlation", "dimensionwise_kl"):
        assert torch.allclose(getattr(first, name), getattr(second, name), rtol=1e-12, atol=1e-12)


@settings(max_examples=25)
@given(
    mixture=posteriors(log10_scale_range=(-6.0, 3.0), max_points=20),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_no_nan_or_inf_for_scales_from_1e_minus_6_to_1e3(mixture, dtype):
    mean, log_var = (t.to(dtype) for t in mixture)
    result = exact_kl_decomposition(mean, log_var, generator=torch.Generator().manual_seed(0))
    for name in (
        "mutual_information",
        "total_correlation",
        "dimensionwise_kl",
        "total",
        "mutual_information_standard_error",
    ):
        value = getattr(result, name)
        assert torch.isfinite(value).all() and value.dtype == dtype, name


def test_bad_input_names_the_argument():
    mean, log_var = torch.zeros(5, 3), torch.zeros(5, 3)
    with pytest.raises(ValueError, match="'prior'"):
        exact_kl_decomposition(mean, log_var, prior=MultivariateNormal(torch.zeros(3), torch.eye(3)))
    with pytest.raises(ValueError, match="'prior'"):
        exact_kl_decomposition(mean, log_var, prior=Normal(torch.zeros(2), torch.ones(2)))
    with pytest.raises(ValueError, match="'num_samples'"):
        exact_kl_decomposition(mean, log_var, num_samples=0)
    with pytest.raises(ValueError, match="'mean'"):
        exact_kl_decomposition(torch.full((5, 3), float("nan")), log_var)
    with pytest.raises(ValueError, match="'log_var'"):
        exact_kl_decomposition(mean, torch.zeros(5, 2))
    with pytest.raises(ValueError, match="'mean'"):
        exact_kl_decomposition(torch.zeros(5), torch.zeros(5))
    with pytest.raises(ValueError, match="'num_samples'"):
        exact_kl_decomposition(mean, log_var, num_samples=1)  # one sample has no standard error


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [-1e4, 1e4])
def test_log_variance_outside_the_float_range_is_rejected(dtype, value):
    """Issue 12: log_var = -1e4 gave NaN for MI and TC (1 / sigma = exp(5000) overflows, 0 * inf). Each dtype's
    range is (-2 log max, log max)."""
    mean, log_var = torch.zeros(5, 2, dtype=dtype), torch.zeros(5, 2, dtype=dtype)
    log_var[3, 1] = value
    with pytest.raises(ValueError, match="log_var must lie in .*'log_var'"):
        exact_kl_decomposition(mean, log_var)
    low, high = (-177.4, 88.7) if dtype == torch.float32 else (-1419.6, 709.8)
    for inside in (low + 1.0, high - 1.0):
        log_var[3, 1] = inside
        result = exact_kl_decomposition(mean + torch.arange(5.0, dtype=dtype)[:, None], log_var,
                                        generator=torch.Generator().manual_seed(0))
        for name in ("mutual_information", "total_correlation", "dimensionwise_kl", "total"):
            assert torch.isfinite(getattr(result, name)), (name, inside)


def test_unresolvable_posterior_scales_are_named_in_the_warnings():
    """Scales below the float spacing of the means cannot be sampled (z rounds to the mean): said, not hidden."""
    mean = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    narrow = exact_kl_decomposition(mean, torch.full((20, 3), -1000.0, dtype=torch.float64))
    assert len(narrow.warnings) == 1 and "rounds to the mean" in narrow.warnings[0]
    assert exact_kl_decomposition(mean, torch.full((20, 3), -20.0, dtype=torch.float64)).warnings == ()


@settings(max_examples=15)
@given(data=st.data(), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_one_data_point_is_the_analytic_kl_exactly(data, dtype):
    """Issue 12: N = 1 gave a NaN standard error. With one point q(z) = q(z|x_1), so MI = TC = 0 and the dimension-wise
    KL is the analytic KL, with standard errors 0 (nothing is sampled)."""
    mean, log_var = (t[:1].to(dtype) for t in data.draw(posteriors()))
    prior = data.draw(priors(mean.shape[1]))
    result = exact_kl_decomposition(mean, log_var, prior=prior)
    truth = _average_analytic_kl(mean.double(), log_var.double(), prior).item()
    tolerance = (1e-12 if dtype == torch.float64 else 1e-5) * (1 + abs(truth))
    assert result.mutual_information.item() == 0.0 and result.total_correlation.item() == 0.0
    assert abs(result.dimensionwise_kl.item() - truth) <= tolerance and abs(result.total.item() - truth) <= tolerance
    for name in ("mutual_information", "total_correlation", "dimensionwise_kl"):
        assert getattr(result, f"{name}_standard_error").item() == 0.0
    assert result.num_samples == 0 and result.warnings == ()


def test_interval_of_the_exact_decomposition_is_the_sampling_interval():
    mean, log_var, prior, reference = _grid_case()
    result = exact_kl_decomposition(mean, log_var, prior=prior, generator=torch.Generator().manual_seed(7))
    low, high = result.interval("total_correlation", level=0.95)
    half_width = 1.959963984540054 * result.total_correlation_standard_error.item()
    assert math.isclose(high - low, 2 * half_width, rel_tol=1e-9)
    assert result.total_correlation_bias.item() == 0.0 and result.warnings == ()
    with pytest.raises(ValueError, match="'name'"):
        result.interval("kl")
    with pytest.raises(ValueError, match="'level'"):
        result.interval("total_correlation", level=1.0)


@pytest.mark.cuda
def test_cuda_exact_decomposition():
    device = cuda_device()
    mean, log_var = torch.randn(300, 4, device=device), torch.randn(300, 4, device=device) * 0.1 - 1
    result = exact_kl_decomposition(
        mean, log_var, generator=torch.Generator(device=device).manual_seed(0), max_chunk_elements=5000
    )
    assert result.mutual_information.device.type == "cuda"
    truth = _average_analytic_kl(mean.cpu().double(), log_var.cpu().double(), None)
    assert abs(result.sum_of_terms.item() - truth.item()) <= 1e-4 * (1 + truth.item())
