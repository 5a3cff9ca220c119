"""Kullback-Leibler divergences: analytic (torch's registry), Monte-Carlo with a standard error, and the
"analytic if registered, else sampled" rule of Pyro's ``TraceMeanField_ELBO``.

KL(q || p) = E_q[log q(z) - log p(z)].

The analytic values come from ``torch.distributions.kl_divergence``. torch 2.x registers (Normal, Normal),
(Independent, Independent) and (MultivariateNormal, MultivariateNormal) but not the mixed pairs of a diagonal
Gaussian ``Independent(Normal, 1)`` with a full-covariance ``MultivariateNormal``; this module registers those two
(the only additions). For two Gaussians N(m_q, S_q), N(m_p, S_p) on R^D,

    KL = (tr(S_p^-1 S_q) + (m_p - m_q)^T S_p^-1 (m_p - m_q) - D + log det S_p - log det S_q) / 2,

evaluated with triangular solves against the Cholesky factor (never an explicit inverse) and log-determinants from
log-diagonals, so scales from 1e-6 to 1e3 stay finite.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal, kl_divergence, register_kl

from ._validation import check_distribution, check_matching_event_shapes, check_positive_int
from .base import MonteCarloEstimate, mean_and_standard_error

__all__ = ["analytic_kl", "monte_carlo_kl", "kl_analytic_or_sampled", "describe_distribution"]


def describe_distribution(distribution: Distribution) -> str:
    """A readable name, e.g. ``Independent(Normal, 1)``, used in error messages."""
    if isinstance(distribution, Independent):
        return f"Independent({describe_distribution(distribution.base_dist)}, {distribution.reinterpreted_batch_ndims})"
    return type(distribution).__name__


def analytic_kl(q: Distribution, p: Distribution) -> Tensor:
    """KL(q || p) in closed form from torch's ``kl_divergence`` registry (plus this module's Gaussian pairs).

    Returns a tensor of the broadcast batch shape. Raises ``NotImplementedError`` naming the pair when no rule is
    registered, and ``ValueError`` naming the argument for NaN parameters, non-positive scales or event shapes that
    differ.
    """
    check_distribution(q, "q")
    check_distribution(p, "p")
    check_matching_event_shapes(q, p)
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        raise NotImplementedError(
            f"no analytic KL is registered for the pair ({describe_distribution(q)}, {describe_distribution(p)}); "
            "use monte_carlo_kl or kl_analytic_or_sampled"
        ) from None


def monte_carlo_kl(q: Distribution, p: Distribution, num_samples: int) -> MonteCarloEstimate:
    """KL(q || p) ~= (1/K) sum_k [log q(z_k) - log p(z_k)], z_k ~ q, with its standard error.

    Unbiased; the standard error is the sample standard deviation of the log-ratio over sqrt(K) (K >= 2), computed
    separately for each batch element. Samples are reparameterized (``rsample``) when q supports it, so the value
    carries gradients; otherwise they are plain samples and no gradient flows through them.
    """
    check_distribution(q, "q")
    check_distribution(p, "p")
    check_matching_event_shapes(q, p)
    check_positive_int(num_samples, "num_samples", minimum=2)
    log_ratio = _sampled_log_ratio(q, p, num_samples)
    return mean_and_standard_error(log_ratio, dim=0)


def kl_analytic_or_sampled(q: Distribution, p: Distribution, num_samples: int = 1) -> Tensor:
    """The analytic KL when a rule is registered for (q, p), else the Monte-Carlo mean over ``num_samples`` draws.

    This is what Pyro's ``TraceMeanField_ELBO`` does for each latent site. Either way the result is an unbiased
    estimate (exact when analytic) of KL(q || p) with the broadcast batch shape.
    """
    check_distribution(q, "q")
    check_distribution(p, "p")
    check_matching_event_shapes(q, p)
    check_positive_int(num_samples, "num_samples")
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return _sampled_log_ratio(q, p, num_samples).mean(0)


def _sampled_log_ratio(q: Distribution, p: Distribution, num_samples: int) -> Tensor:
    """log q(z_k) - log p(z_k) for z_k ~ q, shape (K, *broadcast batch shape)."""
    z = q.rsample((num_samples,)) if q.has_rsample else q.sample((num_samples,))
    return q.log_prob(z) - p.log_prob(z)


# ---------------------------------------------------------------------------------------------------------------
# Registered rules for the pairs torch lacks: diagonal Gaussian Independent(Normal, 1) vs MultivariateNormal.
# ---------------------------------------------------------------------------------------------------------------


def _diagonal_normal_parameters(distribution: Independent) -> tuple[Tensor, Tensor]:
    """(loc, scale) of an Independent(Normal, 1); other Independent distributions have no rule here."""
    if not isinstance(distribution.base_dist, Normal) or distribution.reinterpreted_batch_ndims != 1:
        raise NotImplementedError(
            f"no analytic KL between {describe_distribution(distribution)} and MultivariateNormal "
            "(only Independent(Normal, 1) is handled)"
        )
    return distribution.base_dist.loc, distribution.base_dist.scale


@register_kl(Independent, MultivariateNormal)
def _kl_diagonal_normal_multivariate_normal(q: Independent, p: MultivariateNormal) -> Tensor:
    """KL(N(m_q, diag s^2) || N(m_p, L L^T)).

    tr(S_p^-1 S_q) = ||L^-1 diag(s)||_F^2, the Mahalanobis term = ||L^-1 (m_p - m_q)||^2,
    log det S_p = 2 sum log diag L, log det S_q = 2 sum log s.
    """
    q_loc, q_scale = _diagonal_normal_parameters(q)
    if q_loc.shape[-1:] != p.event_shape:
        raise ValueError(f"argument 'p' must have event shape {tuple(q_loc.shape[-1:])}; got {tuple(p.event_shape)}")
    dim = q_loc.shape[-1]
    batch_shape = torch.broadcast_shapes(q.batch_shape, p.batch_shape)
    p_scale_tril = p.scale_tril.expand(batch_shape + (dim, dim))
    q_loc, q_scale = q_loc.expand(batch_shape + (dim,)), q_scale.expand(batch_shape + (dim,))
    # L^-1 diag(s): each column j of diag(s) is s_j e_j.
    whitened_q_scale = torch.linalg.solve_triangular(p_scale_tril, torch.diag_embed(q_scale), upper=False)
    trace_term = whitened_q_scale.square().sum((-2, -1))
    difference = (p.loc - q_loc).expand(batch_shape + (dim,)).unsqueeze(-1)
    mahalanobis = torch.linalg.solve_triangular(p_scale_tril, difference, upper=False).square().sum((-2, -1))
    log_det_p = 2.0 * torch.log(torch.diagonal(p_scale_tril, dim1=-2, dim2=-1)).sum(-1)
    log_det_q = 2.0 * torch.log(q_scale).sum(-1)
    return 0.5 * (trace_term + mahalanobis - dim + log_det_p - log_det_q)


@register_kl(MultivariateNormal, Independent)
def _kl_multivariate_normal_diagonal_normal(q: MultivariateNormal, p: Independent) -> Tensor:
    """KL(N(m_q, L L^T) || N(m_p, diag s^2)).

    tr(S_p^-1 S_q) = sum_ij (L_ij / s_i)^2, the Mahalanobis term = sum_i ((m_p - m_q)_i / s_i)^2,
    log det S_p = 2 sum log s, log det S_q = 2 sum log diag L.
    """
    p_loc, p_scale = _diagonal_normal_parameters(p)
    if p_loc.shape[-1:] != q.event_shape:
        raise ValueError(f"argument 'p' must have event shape {tuple(q.event_shape)}; got {tuple(p_loc.shape[-1:])}")
    dim = p_loc.shape[-1]
    q_scale_tril = q.scale_tril
    trace_term = (q_scale_tril / p_scale.unsqueeze(-1)).square().sum((-2, -1))
    mahalanobis = ((p_loc - q.loc) / p_scale).square().sum(-1)
    log_det_p = 2.0 * torch.log(p_scale).sum(-1)
    log_det_q = 2.0 * torch.log(torch.diagonal(q_scale_tril, dim1=-2, dim2=-1)).sum(-1)
    batch_shape = torch.broadcast_shapes(q.batch_shape, p.batch_shape)
    return (0.5 * (trace_term + mahalanobis - dim + log_det_p - log_det_q)).expand(batch_shape)
