"""Mutual information, total correlation and dimension-wise KL over a whole data set, with the aggregate posterior
evaluated exactly as the full N-component mixture (Hoffman & Johnson 2016; Chen et al. 2018, Sec. 4 / App. C).

The only approximation is the outer expectation over q(z, x), a Monte-Carlo average over S draws z_s ~ q(z|x_{n_s});
log q(z_s) and log q(z_sj) are exact (chunked log-sum-exp over all N components, memory bounded for any N). The
estimates are therefore unbiased for E log q(z) and E log q(z_j), and the terms carry standard errors that shrink as
1/sqrt(S). Cost: S * N * D Gaussian log-densities, i.e. O(N^2 D) with the default one sample per data point.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution

from ._validation import check_positive_int
from .aggregate_posterior import DEFAULT_MAX_CHUNK_ELEMENTS, aggregate_posterior_log_density
from .base import (
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
            an int S draws S (point, z) pairs with points uniform, for a cheaper O(S N D) estimate.
        generator: the random generator for the draws (on the device of ``mean``), for reproducibility.
        max_chunk_elements: memory bound, see :func:`.aggregate_posterior.aggregate_posterior_log_density`.

    Returns the :class:`KLDecomposition`; its terms sum to the analytic average KL ``total`` up to rounding. Computed
    without gradients (it is an evaluation over the data set).
    """
    check_posterior_parameters(mean, log_var)
    num_points, latent_dim = mean.shape
    prior_loc, prior_scale = factorized_normal_prior(prior, latent_dim, mean)
    if num_samples is not None:
        check_positive_int(num_samples, "num_samples")
    with torch.no_grad():
        if num_samples is None:
            sample_points = None
            sample_mean, sample_log_var = mean, log_var
        else:
            sample_points = torch.randint(num_points, (num_samples,), generator=generator, device=mean.device)
            sample_mean, sample_log_var = mean[sample_points], log_var[sample_points]
        noise = torch.randn(sample_mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        z = sample_mean + torch.exp(0.5 * sample_log_var) * noise  # z_s ~ q(z|x_{n_s})
        density = aggregate_posterior_log_density(z, mean, log_var, max_chunk_elements=max_chunk_elements)
        # closed-form pieces over all N points (exact whichever way the samples were drawn)
        expected_log_q_zCx = expected_log_posterior(log_var)  # -H(q(z|x_n)), (N,)
        expected_log_pzi = expected_log_prior_per_dimension(mean, log_var, prior_loc, prior_scale)  # (N, D)
        return assemble_decomposition(
            log_qz=density.log_qz,
            log_qzi=density.log_qzi,
            expected_log_q_zCx=expected_log_q_zCx,
            expected_log_pzi=expected_log_pzi,
            sample_points=sample_points,
        )
