"""Mutual information, total correlation and dimension-wise KL over a whole data set, with the aggregate posterior
evaluated exactly as the full N-component mixture (Hoffman & Johnson 2016; Chen et al. 2018, Sec. 4 / App. C).

The only approximation is the outer expectation over q(z, x), a Monte-Carlo average over S draws z_s ~ q(z|x_{n_s});
log q(z_s) and log q(z_sj) are exact (chunked log-sum-exp over all N components, memory bounded for any N). The
estimates are therefore unbiased for E log q(z) and E log q(z_j), and the terms carry standard errors that shrink as
1/sqrt(S). Cost: S * N * D Gaussian log-densities, i.e. O(N^2 D) with the default one sample per data point.

One data point (N = 1): q(z) is the posterior itself, a diagonal Gaussian, so I(x; z) = 0, TC = 0 and the
dimension-wise KL is the analytic KL, exactly; that is returned, with standard errors 0 and no samples drawn.
Posterior scales below the floating-point resolution of the means (sigma < eps |mean|, e.g. 1e-16 |mean| in
float64) cannot be sampled (z rounds to the mean), so the sampled terms lose the offset they should have; log
variances outside the dtype's range (:func:`.base.log_variance_range`) are rejected.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor
from torch.distributions import Distribution

from ._validation import check_positive_int
from .aggregate_posterior import (
    DEFAULT_MAX_CHUNK_ELEMENTS,
    aggregate_posterior_log_density,
)
from .base import (
    LOG_2PI,
    check_posterior_parameters,
    expected_log_posterior,
    expected_log_prior_per_dimension,
    factorized_normal_prior,
)
from .decomposition import KLDecomposition, assemble_decomposition

__all__ = ["exact_kl_decomposition"]


def exact_kl_decomposition(
    mean: Tensor,
    log_var: Tensor,
    *,
    prior: Distribution | None = None,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
) -> KLDecomposition:
    """Decompose (1/N) sum_n KL(q(z|x_n) || p(z)) into I(x; z), TC and dimension-wise KL over the whole data set.

    Args:
        mean, log_var: posterior means and log-variances of all N data points, shape (N, D).
        prior: a factorized Gaussian prior (``None`` = N(0, I)); see :func:`.base.factorized_normal_prior`.
        num_samples: ``None`` draws one z from each data point's posterior (stratified over points, S = N);
            an int S >= 2 draws S (point, z) pairs with points uniform, for a cheaper O(S N D) estimate.
        generator: the random generator for the draws (on the device of ``mean``), for reproducibility.
        max_chunk_elements: memory bound, see :func:`.aggregate_posterior.aggregate_posterior_log_density`.

    Returns the :class:`KLDecomposition`; its terms sum to the analytic average KL ``total`` up to rounding. Computed
    without gradients (it is an evaluation over the data set).
    """
    check_posterior_parameters(mean, log_var)
    num_points, latent_dim = mean.shape
    prior_loc, prior_scale = factorized_normal_prior(prior, latent_dim, mean)
    if num_samples is not None:
        num_samples = check_positive_int(num_samples, "num_samples", minimum=2)  # a standard error needs 2
    if num_points == 1:
        return _single_point_decomposition(mean, log_var, prior_loc, prior_scale)
    with torch.no_grad():
        if num_samples is None:
            sample_points = None
            sample_mean, sample_log_var = mean, log_var
        else:
            sample_points = torch.randint(num_points, (num_samples,), generator=generator, device=mean.device)
            sample_mean, sample_log_var = mean[sample_points], log_var[sample_points]
        noise = torch.randn(sample_mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        scale = torch.exp(0.5 * sample_log_var)
        z = sample_mean + scale * noise  # z_s ~ q(z|x_{n_s})
        # a scale below a few float spacings of the mean is lost when z is formed (z rounds to the mean)
        unresolved = int((scale < 8 * torch.finfo(mean.dtype).eps * sample_mean.abs()).sum())
        density = aggregate_posterior_log_density(z, mean, log_var, max_chunk_elements=max_chunk_elements)
        # closed-form pieces over all N points (exact whichever way the samples were drawn)
        expected_log_q_zCx = expected_log_posterior(log_var)  # -H(q(z|x_n)), (N,)
        expected_log_pzi = expected_log_prior_per_dimension(mean, log_var, prior_loc, prior_scale)  # (N, D)
        result = assemble_decomposition(
            log_qz=density.log_qz,
            log_qzi=density.log_qzi,
            expected_log_q_zCx=expected_log_q_zCx,
            expected_log_pzi=expected_log_pzi,
            sample_points=sample_points,
        )
    if unresolved:
        message = (
            f"{unresolved} sampled coordinates have a posterior scale below 8 float spacings of their mean "
            f"({mean.dtype}): z rounds to the mean there, so the mutual information and total correlation are off by "
            "about half a nat per such coordinate on average (float64 resolves scales down to about 2e-15 |mean|)"
        )
        return replace(result, warnings=(*result.warnings, message))
    return result


def _single_point_decomposition(mean: Tensor, log_var: Tensor, prior_loc: Tensor, prior_scale: Tensor) -> KLDecomposition:
    """N = 1: q(z) = q(z|x_1) exactly, so MI = TC = 0 and the dimension-wise KL is the analytic KL (no sampling)."""
    with torch.no_grad():
        entropy_terms = -0.5 * (LOG_2PI + 1.0 + log_var[0])  # E log q(z_j|x_1), per dimension
        per_dimension = entropy_terms - expected_log_prior_per_dimension(mean, log_var, prior_loc, prior_scale)[0]
        zero = mean.new_zeros(())
        total = per_dimension.sum()  # KL(q(z|x_1) || p(z)), a sum over dimensions for a factorized prior
        return KLDecomposition(
            mutual_information=zero,
            total_correlation=zero,
            dimensionwise_kl=per_dimension.sum(),
            total=total,
            dimensionwise_kl_per_dimension=per_dimension,
            mutual_information_standard_error=zero,
            total_correlation_standard_error=zero,
            dimensionwise_kl_standard_error=zero,
            num_samples=0,
            mutual_information_bias=zero,
            total_correlation_bias=zero,
            dimensionwise_kl_bias=zero,
            mutual_information_bias_standard_error=zero,
            total_correlation_bias_standard_error=zero,
            dimensionwise_kl_bias_standard_error=zero,
        )
