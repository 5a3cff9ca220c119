"""Tests for elbocheck.estimators.bounds on the linear-Gaussian model, where log p(x) and p(z|x) are exact:
ELBO <= log p(x) with equality at q = p(z|x), ELBO gap = KL(q || p(z|x)), IWAE-K non-decreasing in K and
approaching log p(x)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Independent, Normal, StudentT

from elbocheck.estimators import (
    LinearGaussianModel,
    analytic_kl,
    elbo,
    iwae_bound,
    log_importance_weights,
    log_marginal_likelihood,
)
from estimator_testing import (
    assert_within_standard_errors,
    cuda_device,
)  # noqa: F401 (fixture)


@st.composite
def problems(draw):
    """A linear-Gaussian model, a batch of x, and a diagonal q(z|x): the exact posterior's mean shifted and its
    marginal scales stretched (so q differs from p(z|x) whenever the posterior is correlated or shift != 0)."""
    seed = draw(st.integers(0, 10_000))
    generator = torch.Generator().manual_seed(seed)
    model = LinearGaussianModel.random(
        draw(st.integers(1, 3)), draw(st.integers(1, 5)), noise_scale=draw(st.floats(0.3, 2.0)), generator=generator
    )
    x = model.sample(3, generator=generator)
    posterior = model.posterior(x)
    shift = draw(st.floats(-1.0, 1.0))
    stretch = draw(st.floats(0.5, 2.0))
    marginal_scale = posterior.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    q = Independent(Normal(posterior.mean + shift * marginal_scale, stretch * marginal_scale), 1)
    return model, x, q


def _rounding(*values):
    """float64 allowance for sums of log densities of the given sizes."""
    return 1e-9 * (1 + sum(value.abs() for value in values))


@settings(max_examples=25)
@given(problem=problems(), num_samples=st.integers(1, 16))
def test_elbo_and_iwae_equal_log_marginal_at_the_exact_posterior(problem, num_samples):
    model, x, _ = problem
    log_evidence = model.log_marginal_likelihood(x)
    torch.manual_seed(0)
    estimate = elbo(model.log_likelihood(x), model.posterior(x), model.prior(), num_samples=num_samples)
    # every importance weight equals p(x) exactly: the estimate has no sampling noise at all
    assert torch.allclose(estimate.elbo, log_evidence, rtol=0, atol=1e-8 * (1 + log_evidence.abs().max().item()))
    if num_samples >= 2:
        assert estimate.standard_error.max() <= 1e-8 * (1 + log_evidence.abs().max())
    bound = iwae_bound(model.log_likelihood(x), model.posterior(x), model.prior(), num_samples=num_samples)
    assert torch.allclose(bound, log_evidence, rtol=0, atol=1e-8 * (1 + log_evidence.abs().max().item()))


@settings(max_examples=25)
@given(problem=problems())
def test_elbo_gap_equals_kl_to_the_posterior(problem):
    """log p(x) - ELBO = KL(q(z|x) || p(z|x)); the KL is the registered diagonal/full Gaussian rule."""
    model, x, q = problem
    torch.manual_seed(1)
    estimate = elbo(model.log_likelihood(x), q, model.prior(), num_samples=4000)
    log_evidence = model.log_marginal_likelihood(x)
    kl_to_posterior = analytic_kl(q, model.posterior(x))
    assert_within_standard_errors(
        log_evidence - estimate.elbo,
        kl_to_posterior,
        estimate.standard_error,
        rounding=_rounding(log_evidence),
        what="ELBO gap vs KL(q || posterior)",
    )
    assert torch.all(estimate.elbo <= log_evidence + 5 * estimate.standard_error)  # ELBO <= log p(x)
    assert torch.allclose(estimate.elbo, estimate.reconstruction - estimate.kl, atol=1e-10)


@settings(max_examples=25)
@given(problem=problems())
def test_analytic_kl_variant(problem):
    """E_q log p(x|z) against its closed form; the KL against analytic_kl; the ELBO against log p(x) - KL(q || post)."""
    model, x, q = problem
    torch.manual_seed(2)
    estimate = elbo(model.log_likelihood(x), q, model.prior(), num_samples=4000, kl="analytic")
    assert torch.equal(estimate.kl, analytic_kl(q, model.prior()))
    covariance = torch.diag_embed(q.base_dist.scale.square())
    expected_log_likelihood = model.expected_log_likelihood(x, q.base_dist.loc, covariance)
    # with an analytic KL the per-sample terms differ from log p(x|z) by a constant: the same standard error
    assert_within_standard_errors(
        estimate.reconstruction,
        expected_log_likelihood,
        estimate.standard_error,
        rounding=_rounding(expected_log_likelihood),
        what="reconstruction",
    )
    truth = model.log_marginal_likelihood(x) - analytic_kl(q, model.posterior(x))
    assert_within_standard_errors(estimate.elbo, truth, estimate.standard_error, rounding=_rounding(truth), what="ELBO")


def test_auto_kl_falls_back_to_sampling_for_an_unregistered_pair():
    model = LinearGaussianModel.random(2, 3, generator=torch.Generator().manual_seed(0))
    x = model.sample(4, generator=torch.Generator().manual_seed(1))
    q = Independent(Normal(torch.zeros(4, 2, dtype=torch.float64), torch.ones(4, 2, dtype=torch.float64)), 1)
    heavy_prior = Independent(
        StudentT(
            torch.tensor(3.0, dtype=torch.float64),
            torch.zeros(2, dtype=torch.float64),
            torch.ones(2, dtype=torch.float64),
        ),
        1,
    )
    with pytest.raises(NotImplementedError, match="StudentT"):
        elbo(model.log_likelihood(x), q, heavy_prior, kl="analytic")
    torch.manual_seed(3)
    automatic = elbo(model.log_likelihood(x), q, heavy_prior, num_samples=5, kl="auto")
    torch.manual_seed(3)
    sampled = elbo(model.log_likelihood(x), q, heavy_prior, num_samples=5, kl="sampled")
    assert torch.equal(automatic.elbo, sampled.elbo) and torch.equal(automatic.kl, sampled.kl)
    torch.manual_seed(3)
    registered = elbo(model.log_likelihood(x), q, model.prior(), num_samples=5, kl="auto")
    assert torch.equal(registered.kl, analytic_kl(q, model.prior()))


def test_iwae_with_one_sample_is_the_single_sample_elbo():
    model = LinearGaussianModel.random(2, 4, generator=torch.Generator().manual_seed(5))
    x = model.sample(6, generator=torch.Generator().manual_seed(6))
    q = Independent(Normal(torch.zeros(6, 2, dtype=torch.float64), 0.8 * torch.ones(6, 2, dtype=torch.float64)), 1)
    torch.manual_seed(7)
    bound = iwae_bound(model.log_likelihood(x), q, model.prior(), num_samples=1)
    torch.manual_seed(7)
    single = elbo(model.log_likelihood(x), q, model.prior(), num_samples=1)
    assert torch.equal(bound, single.elbo)
    assert single.standard_error is None


def test_iwae_is_non_decreasing_in_k_and_approaches_log_marginal_likelihood():
    model = LinearGaussianModel.random(2, 4, noise_scale=0.8, generator=torch.Generator().manual_seed(8))
    x = model.sample(3, generator=torch.Generator().manual_seed(9))
    posterior = model.posterior(x)
    marginal_scale = posterior.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    q_loc, q_scale = posterior.mean + 0.5 * marginal_scale, 1.3 * marginal_scale  # an imperfect q
    repeats = 2000
    replicated_x = x.repeat(repeats, 1)  # (repeats * 3, P): independent replicates of each bound
    q = Independent(Normal(q_loc.repeat(repeats, 1), q_scale.repeat(repeats, 1)), 1)
    log_evidence = model.log_marginal_likelihood(x)
    torch.manual_seed(10)
    means, errors = {}, {}
    for k in (1, 2, 8, 32, 128):
        bounds = iwae_bound(model.log_likelihood(replicated_x), q, model.prior(), num_samples=k).reshape(repeats, 3)
        means[k], errors[k] = bounds.mean(0), bounds.std(0) / math.sqrt(repeats)
        # E[IWAE-K] <= log p(x)
        assert torch.all(means[k] <= log_evidence + 5 * errors[k]), f"IWAE-{k} above log p(x)"
    ks = sorted(means)
    for smaller, larger in zip(ks, ks[1:]):
        difference_error = torch.sqrt(errors[smaller] ** 2 + errors[larger] ** 2)
        assert torch.all(means[larger] - means[smaller] >= -5 * difference_error), f"IWAE-{larger} < IWAE-{smaller}"
    # the gap closes: IWAE-128 is significantly tighter than the ELBO, and log p^(x) with K = 20000 hits log p(x)
    assert torch.all(means[128] - means[1] > 5 * torch.sqrt(errors[1] ** 2 + errors[128] ** 2))
    q_single = Independent(Normal(q_loc, q_scale), 1)
    estimate = log_marginal_likelihood(
        model.log_likelihood(x), q_single, model.prior(), num_samples=20000, chunk_size=1000
    )
    assert_within_standard_errors(
        estimate.value, log_evidence, estimate.standard_error, rounding=_rounding(log_evidence), what="log p^(x)"
    )
    assert torch.all(log_evidence - estimate.value < 0.1 * (log_evidence - means[1]))


def test_log_marginal_likelihood_streaming_equals_one_shot():
    model = LinearGaussianModel.random(2, 3, generator=torch.Generator().manual_seed(11))
    x = model.sample(5, generator=torch.Generator().manual_seed(12))
    q = Independent(Normal(torch.zeros(5, 2, dtype=torch.float64), torch.ones(5, 2, dtype=torch.float64)), 1)
    torch.manual_seed(13)
    streamed = log_marginal_likelihood(model.log_likelihood(x), q, model.prior(), num_samples=900, chunk_size=70)
    torch.manual_seed(13)
    weights = torch.cat(
        [log_importance_weights(model.log_likelihood(x), q, model.prior(), num_samples=n) for n in [70] * 12 + [60]]
    )
    one_shot = torch.logsumexp(weights, 0) - math.log(900)
    assert torch.allclose(streamed.value, one_shot, atol=1e-12)
    w = torch.exp(weights - weights.max(0).values)  # the delta-method SE from scratch: sd(w) / (sqrt(K) mean(w))
    assert torch.allclose(streamed.standard_error, w.std(0) / (math.sqrt(900) * w.mean(0)), rtol=1e-9)


@settings(max_examples=30)
@given(
    log10_scale=st.floats(-6, 3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    kl=st.sampled_from(["sampled", "analytic"]),
)
def test_no_nan_or_inf_for_scales_from_1e_minus_6_to_1e3(log10_scale, dtype, kl):
    loc = torch.linspace(-3, 3, 8, dtype=dtype).reshape(4, 2)
    q = Independent(Normal(loc, torch.full((4, 2), 10.0**log10_scale, dtype=dtype)), 1)
    prior = Independent(Normal(torch.zeros(2, dtype=dtype), torch.ones(2, dtype=dtype)), 1)
    x = torch.ones(4, 3, dtype=dtype)

    def log_likelihood(z):
        return Normal(z.sum(-1, keepdim=True).expand(*z.shape[:-1], 3), 1.0).log_prob(x).sum(-1)

    torch.manual_seed(0)
    estimate = elbo(log_likelihood, q, prior, num_samples=4, kl=kl)
    for value in (
        estimate.elbo,
        estimate.kl,
        estimate.reconstruction,
        estimate.standard_error,
        iwae_bound(log_likelihood, q, prior, num_samples=4),
        log_marginal_likelihood(log_likelihood, q, prior, num_samples=8).value,
    ):
        assert torch.isfinite(value).all() and value.dtype == dtype


def test_gradients_flow_through_reparameterized_samples():
    loc = torch.zeros(4, 2, requires_grad=True)
    log_scale = torch.zeros(4, 2, requires_grad=True)
    prior = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
    x = torch.randn(4, 2)

    def log_likelihood(z):
        return Normal(z, 1.0).log_prob(x).sum(-1)

    for kl in ("sampled", "analytic"):
        q = Independent(Normal(loc, log_scale.exp()), 1)
        loss = (
            -elbo(log_likelihood, q, prior, num_samples=3, kl=kl).elbo.sum()
            - iwae_bound(log_likelihood, q, prior, num_samples=3).sum()
        )
        gradients = torch.autograd.grad(loss, (loc, log_scale))
        assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in gradients)


def test_bad_input_names_the_argument():
    q = Independent(Normal(torch.zeros(4, 2), torch.ones(4, 2)), 1)
    prior = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)

    def good(z):
        return z.sum(-1)

    with pytest.raises(ValueError, match="'log_likelihood'"):
        elbo(lambda z: z.sum((-1, -2)), q, prior)  # wrong shape (K,) instead of (K, batch)
    with pytest.raises(ValueError, match="'log_likelihood'"):
        iwae_bound(lambda z: torch.full(z.shape[:-1], float("nan")), q, prior, num_samples=2)
    with pytest.raises(ValueError, match="'prior'"):
        elbo(good, q, Independent(Normal(torch.zeros(3), torch.ones(3)), 1))
    with pytest.raises(ValueError, match="'posterior'"):
        elbo(good, torch.zeros(4, 2), prior)
    with pytest.raises(ValueError, match="'posterior'"):
        elbo(good, Independent(Normal(torch.zeros(4, 2), -torch.ones(4, 2), validate_args=False), 1), prior)
    with pytest.raises(ValueError, match="'kl'"):
        elbo(good, q, prior, kl="exact")
    with pytest.raises(ValueError, match="'num_samples'"):
        elbo(good, q, prior, num_samples=0)
    with pytest.raises(ValueError, match="'num_samples'"):
        log_marginal_likelihood(good, q, prior, num_samples=1)


def test_positive_infinite_log_likelihood_is_rejected_and_negative_infinite_allowed():
    """+inf would make every bound +inf (issue 12); -inf is a likelihood of 0 and the bounds handle it."""
    q = Independent(Normal(torch.zeros(4, 2), torch.ones(4, 2)), 1)
    prior = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)

    def one_infinite(value):
        def log_likelihood(z):
            result = z.sum(-1)
            result[0, 0] = value
            return result
        return log_likelihood

    for bound in (lambda f: iwae_bound(f, q, prior, num_samples=3), lambda f: elbo(f, q, prior, num_samples=3),
                  lambda f: log_marginal_likelihood(f, q, prior, num_samples=3)):
        with pytest.raises(ValueError, match="1 values of \\+inf.*'log_likelihood'|'log_likelihood'.*1 values of \\+inf"):
            bound(one_infinite(float("inf")))
    iwae = iwae_bound(one_infinite(-float("inf")), q, prior, num_samples=3)
    assert torch.isfinite(iwae).all()  # the other two weights of example 0 carry it


@pytest.mark.cuda
def test_cuda_bounds():
    device = cuda_device()
    q = Independent(Normal(torch.zeros(4, 2, device=device), torch.ones(4, 2, device=device)), 1)
    prior = Independent(Normal(torch.zeros(2, device=device), torch.ones(2, device=device)), 1)

    def log_likelihood(z):
        return z.sum(-1)

    assert elbo(log_likelihood, q, prior, num_samples=3, kl="analytic").elbo.device.type == "cuda"
    assert iwae_bound(log_likelihood, q, prior, num_samples=3).device.type == "cuda"
    assert log_marginal_likelihood(log_likelihood, q, prior, num_samples=10).value.device.type == "cuda"
