"""Shared pieces of the estimators: the Monte-Carlo result type, diagonal-Gaussian log densities in log space, and
the checks on encoder outputs (posterior means and log-variances).

Conventions used throughout the package (after disentangling-vae's ``losses.py``): ``C`` reads "conditioned on", so
``log_q_zCx`` is log q(z|x); ``log_qz`` is the log aggregate posterior log q(z); ``log_qzi`` the per-dimension
marginals log q(z_i); ``log_prod_qzi`` = sum_i log q(z_i); ``log_pz`` the prior log p(z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from ._validation import check_finite, check_floating, check_ndim, check_same_shape

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte-Carlo estimate and its standard error (the sample standard deviation over sqrt(number of samples)).

    Both tensors have the batch shape of the quantity estimated. A standard error describes the sampling noise only;
    estimators that are biased (a log of an unbiased estimate, for instance) document their bias separately.
    """

    value: Tensor
    standard_error: Tensor


def mean_and_standard_error(samples: Tensor, dim: int = 0) -> MonteCarloEstimate:
    """Sample mean along ``dim`` and its standard error sqrt(unbiased variance / n); needs n >= 2."""
    count = samples.shape[dim]
    if count < 2:
        raise ValueError(f"a standard error needs at least 2 samples; got {count} in argument 'num_samples'")
    value = samples.mean(dim)
    standard_error = samples.std(dim, unbiased=True) / math.sqrt(count)
    return MonteCarloEstimate(value, standard_error)


def diagonal_normal_log_density(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """Element-wise log N(z; mean, exp(log_var)) = -(log 2 pi + log_var + (z - mean)^2 exp(-log_var)) / 2.

    The squared standardized distance is formed as ((z - mean) * exp(-log_var / 2))^2 so that no variance is ever
    formed outside log space: scales from 1e-6 to 1e3 stay finite in float32.
    """
    standardized = (z - mean) * torch.exp(-0.5 * log_var)
    return -0.5 * (LOG_2PI + log_var + standardized.square())


def check_posterior_parameters(mean: Tensor, log_var: Tensor) -> None:
    """Encoder outputs: ``mean`` and ``log_var`` of shape (N, D), floating point, finite."""
    check_floating(mean, "mean")
    check_ndim(mean, 2, "mean", "data points x latent dimensions")
    check_floating(log_var, "log_var")
    check_same_shape(log_var, mean, "log_var", "mean")
    if log_var.dtype != mean.dtype or log_var.device != mean.device:
        raise ValueError(
            f"argument 'log_var' must have the dtype and device of 'mean' ({mean.dtype}, {mean.device}); "
            f"got ({log_var.dtype}, {log_var.device})"
        )
    if mean.shape[0] < 1 or mean.shape[1] < 1:
        raise ValueError(f"argument 'mean' must have at least one row and one column; got shape {tuple(mean.shape)}")
    check_finite(mean, "mean")
    check_finite(log_var, "log_var")
    check_log_variance_range(log_var)


def log_variance_range(dtype: torch.dtype) -> tuple[float, float]:
    """(lowest, highest) log-variance whose variance exp(log_var) and inverse scale exp(-log_var / 2) are finite and
    non-zero in ``dtype``: (-2 log max, log max), i.e. (-177.4, 88.7) in float32 and (-1419.6, 709.8) in float64.
    Beyond it the Gaussian log densities become NaN (0 * inf) or the KL overflows."""
    log_max = math.log(torch.finfo(dtype).max)
    return -2.0 * log_max, log_max


def check_log_variance_range(log_var: Tensor) -> None:
    low, high = log_variance_range(log_var.dtype)
    if log_var.numel() and not bool(((log_var > low) & (log_var < high)).all()):
        raise ValueError(
            f"log_var must lie in ({low:.1f}, {high:.1f}) for {log_var.dtype} (the variance exp(log_var) and "
            f"1 / sigma = exp(-log_var / 2) must be finite); got min {log_var.min().item():g}, max "
            f"{log_var.max().item():g} in argument 'log_var'"
        )


def factorized_normal_prior(prior: Distribution | None, latent_dim: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Location and scale, each of shape (latent_dim,), of a prior that factorizes over latent dimensions.

    Accepts ``None`` (the standard normal N(0, I)), a ``Normal`` with batch shape (latent_dim,) or (), or an
    ``Independent(Normal, 1)`` with event shape (latent_dim,). The decomposition of the KL term into mutual
    information, total correlation and dimension-wise KL needs a factorized prior: the dimension-wise term is
    sum_j KL(q(z_j) || p(z_j)), which equals the remainder only when p(z) = prod_j p(z_j).
    """
    if prior is None:
        return like.new_zeros(latent_dim), like.new_ones(latent_dim)
    base = prior.base_dist if isinstance(prior, Independent) and prior.reinterpreted_batch_ndims == 1 else prior
    if not isinstance(base, Normal):
        raise ValueError(
            "argument 'prior' must be None (standard normal), a Normal, or Independent(Normal, 1) over the latent "
            f"dimensions (a factorized Gaussian); got {type(prior).__name__}"
        )
    shape = tuple(base.loc.shape)
    if shape not in ((latent_dim,), (), (1,)):
        raise ValueError(
            f"argument 'prior' must be one distribution over {latent_dim} latent dimensions shared by all data "
            f"points; got parameters of shape {shape}"
        )
    check_finite(base.loc, "prior")
    if bool((base.scale <= 0).any()) or not bool(torch.isfinite(base.scale).all()):
        raise ValueError(f"scale must be positive and finite in argument 'prior'; got min {base.scale.min().item():g}")
    loc = base.loc.to(like).expand(latent_dim)
    scale = base.scale.to(like).expand(latent_dim)
    return loc, scale


def expected_log_posterior(log_var: Tensor) -> Tensor:
    """E_{q(z|x_n)} log q(z|x_n) = -H(q(z|x_n)) = -sum_j (log 2 pi e + log_var_nj) / 2, per data point, shape (N,)."""
    return -0.5 * (LOG_2PI + 1.0 + log_var).sum(-1)


def expected_log_prior_per_dimension(mean: Tensor, log_var: Tensor, prior_loc: Tensor, prior_scale: Tensor) -> Tensor:
    """E_{q(z_j|x_n)} log p(z_j) for a Normal prior p(z_j) = N(m_j, s_j^2), shape (N, D):

    -(log 2 pi + 2 log s_j) / 2 - ((mean_nj - m_j)^2 + exp(log_var_nj)) / (2 s_j^2),
    with the variance ratio exp(log_var - 2 log s_j) formed in log space.
    """
    log_prior_scale = torch.log(prior_scale)
    standardized_mean = (mean - prior_loc) / prior_scale
    variance_ratio = torch.exp(log_var - 2.0 * log_prior_scale)
    return -0.5 * (LOG_2PI + 2.0 * log_prior_scale + standardized_mean.square() + variance_ratio)
