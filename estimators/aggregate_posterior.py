"""Exact log density of the aggregate posterior of a data set, computed in memory-bounded chunks.

The aggregate posterior of N data points with diagonal-Gaussian posteriors q(z|x_n) = N(mean_n, diag exp(log_var_n))
is the full mixture (Hoffman & Johnson 2016, "ELBO surgery")

    q(z)   = (1/N) sum_n q(z|x_n),                   log q(z)   = logsumexp_n log q(z|x_n) - log N,
    q(z_j) = (1/N) sum_n q(z_j|x_n)  (j-th marginal), log q(z_j) = logsumexp_n log q(z_j|x_n) - log N.

Evaluating it at S points costs S * N * D density evaluations. The points and the mixture components are processed
in blocks of at most ``max_chunk_elements`` (point, component, dimension) triples and the log-sum-exp is streamed
across component blocks (log-add-exp of partial results), so memory is bounded whatever N is (10^5 and more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._validation import check_finite, check_floating, check_ndim, check_positive_int
from .base import LOG_2PI, check_posterior_parameters

DEFAULT_MAX_CHUNK_ELEMENTS = 2**24


@dataclass(frozen=True)
class AggregatePosteriorLogDensity:
    """``log_qz``: log q(z) at each point, shape (S,); ``log_qzi``: log q(z_j) per point and dimension, shape (S, D)."""

    log_qz: Tensor
    log_qzi: Tensor

    @property
    def log_prod_qzi(self) -> Tensor:
        """log prod_j q(z_j) = sum_j log q(z_j), shape (S,)."""
        return self.log_qzi.sum(-1)


def aggregate_posterior_log_density(
    z: Tensor,
    mean: Tensor,
    log_var: Tensor,
    *,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
) -> AggregatePosteriorLogDensity:
    """Exact log q(z) and log q(z_j) of the mixture of the N posteriors given by ``mean``, ``log_var`` (N, D).

    Args:
        z: points at which to evaluate, shape (S, D).
        mean, log_var: posterior means and log-variances of the N data points, shape (N, D).
        max_chunk_elements: the largest (point, component, dimension) block formed at once; bounds memory at a few
            times ``max_chunk_elements`` floats.

    Gradients flow if the inputs require them (each block keeps its graph, so memory is then O(S N D); use it
    without gradients for large data sets).
    """
    check_posterior_parameters(mean, log_var)
    check_floating(z, "z")
    check_ndim(z, 2, "z", "points x latent dimensions")
    if z.shape[1] != mean.shape[1]:
        raise ValueError(
            f"argument 'z' must have {mean.shape[1]} latent dimensions like 'mean'; got shape {tuple(z.shape)}"
        )
    if z.dtype != mean.dtype or z.device != mean.device:
        raise ValueError(f"argument 'z' must have the dtype and device of 'mean' ({mean.dtype}, {mean.device})")
    check_finite(z, "z")
    check_positive_int(max_chunk_elements, "max_chunk_elements")
    log_sum_joint, log_sum_marginal = mixture_log_sum(z, mean, log_var, max_chunk_elements=max_chunk_elements)
    log_num_components = math.log(mean.shape[0])
    return AggregatePosteriorLogDensity(
        log_qz=log_sum_joint - log_num_components,  # log q(z) = logsumexp_n log q(z|x_n) - log N
        log_qzi=log_sum_marginal - log_num_components,  # log q(z_j) = logsumexp_n log q(z_j|x_n) - log N
    )


def mixture_log_sum(
    z: Tensor,
    mean: Tensor,
    log_var: Tensor,
    *,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
    joint: bool = True,
    marginal: bool = True,
) -> tuple[Tensor | None, Tensor | None]:
    """Unnormalized mixture sums, unchecked (callers validate):

    joint:    logsumexp_n sum_j log N(z_sj; mean_nj, exp(log_var_nj)),  shape (S,)
    marginal: logsumexp_n log N(z_sj; mean_nj, exp(log_var_nj)),        shape (S, D)
    """
    num_points, latent_dim = z.shape
    num_components = mean.shape[0]
    inverse_scale = torch.exp(-0.5 * log_var)  # 1 / sigma, formed from log-variances
    log_normalizer = -0.5 * (LOG_2PI + log_var)  # -log(sqrt(2 pi) sigma)
    # Prefer wide component blocks (the reduction axis) and as many points as the budget then allows.
    components_per_block = max(1, min(num_components, max_chunk_elements // latent_dim))
    points_per_block = max(1, min(num_points, max_chunk_elements // (components_per_block * latent_dim)))

    joint_blocks: list[Tensor] = []
    marginal_blocks: list[Tensor] = []
    for start in range(0, num_points, points_per_block):
        z_block = z[start : start + points_per_block].unsqueeze(1)  # (s, 1, D)
        joint_sum: Tensor | None = None
        marginal_sum: Tensor | None = None
        for component_start in range(0, num_components, components_per_block):
            block = slice(component_start, component_start + components_per_block)
            log_q_ziCxn = pairwise_log_density(z_block, mean[block], inverse_scale[block], log_normalizer[block])
            if joint:
                partial = torch.logsumexp(log_q_ziCxn.sum(-1), dim=1)  # log sum_n q(z|x_n) over this block
                joint_sum = partial if joint_sum is None else torch.logaddexp(joint_sum, partial)
            if marginal:
                partial = torch.logsumexp(log_q_ziCxn, dim=1)  # log sum_n q(z_j|x_n) over this block
                marginal_sum = partial if marginal_sum is None else torch.logaddexp(marginal_sum, partial)
        if joint:
            joint_blocks.append(joint_sum)
        if marginal:
            marginal_blocks.append(marginal_sum)
    joint_result = torch.cat(joint_blocks) if joint else None
    marginal_result = torch.cat(marginal_blocks) if marginal else None
    return joint_result, marginal_result


def pairwise_log_density(z: Tensor, mean: Tensor, inverse_scale: Tensor, log_normalizer: Tensor) -> Tensor:
    """log q(z_sj|x_n) = log_normalizer_nj - ((z_sj - mean_nj) * inverse_scale_nj)^2 / 2, shape (s, n, D), for z of
    shape (s, 1, D) and component parameters of shape (n, D).

    Without autograd the block is built in place in one buffer (a third less time and memory than out of place)."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in (z, mean, inverse_scale, log_normalizer)):
        standardized = (z - mean.unsqueeze(0)) * inverse_scale.unsqueeze(0)
        return log_normalizer.unsqueeze(0) - 0.5 * standardized.square()
    buffer = z - mean.unsqueeze(0)
    return buffer.mul_(inverse_scale.unsqueeze(0)).square_().mul_(-0.5).add_(log_normalizer.unsqueeze(0))


def grouped_mixture_log_sum(
    z: Tensor,
    point_groups: Tensor,
    mean: Tensor,
    log_var: Tensor,
    component_groups: Tensor,
    *,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
    joint: bool = True,
    marginal: bool = True,
) -> tuple[Tensor | None, Tensor | None, Tensor]:
    """Like :func:`mixture_log_sum`, but each point z_s is scored only against the components of its own group
    (``point_groups[s] == component_groups[n]``): the class-conditional aggregate posterior q(z|y = group).

    Returns the joint and marginal log sums and, per point, the number of components of its group (for the
    normalizer log N_y). Points whose group has no component get -inf.
    """
    num_points, latent_dim = z.shape
    joint_result = z.new_full((num_points,), -math.inf) if joint else None
    marginal_result = z.new_full((num_points, latent_dim), -math.inf) if marginal else None
    group_sizes = z.new_zeros(num_points)
    for group in torch.unique(point_groups):
        point_index = torch.nonzero(point_groups == group, as_tuple=True)[0]
        component_index = torch.nonzero(component_groups == group, as_tuple=True)[0]
        if component_index.numel() == 0:
            continue
        group_sizes[point_index] = float(component_index.numel())
        joint_sum, marginal_sum = mixture_log_sum(
            z[point_index],
            mean[component_index],
            log_var[component_index],
            max_chunk_elements=max_chunk_elements,
            joint=joint,
            marginal=marginal,
        )
        if joint:
            joint_result[point_index] = joint_sum
        if marginal:
            marginal_result[point_index] = marginal_sum
    return joint_result, marginal_result, group_sizes
