"""Minibatch estimates of the aggregate posterior for the beta-TCVAE decomposition (Chen et al. 2018, Sec. 3.1 and
App. C): minibatch weighted sampling (MWS) and minibatch stratified sampling (MSS).

Setting. A minibatch {x_1, ..., x_M} of distinct points drawn uniformly without replacement from a data set of N
(what a shuffling data loader yields), and one sample z_i ~ q(z|x_i) per point. The exact aggregate posterior at z_i,

    q(z_i) = (1/N) q(z_i|x_i) + (1/N) sum_{n != i} q(z_i|x_n),

is replaced by a weighted sum over the batch, q^(z_i) = sum_j W_ij q(z_i|x_j), and likewise each marginal
q^(z_ij) = sum_k W_ik q(z_ij|x_k) with the same weights. In log space,

    log_qz[i]     = logsumexp_k (log W_ik + sum_j log q(z_ij|x_k))
    log_qzi[i, j] = logsumexp_k (log W_ik + log q(z_ij|x_k)).

MSS weights (derived here). Given x_i, the other M - 1 batch members are a uniform sample without replacement from
the remaining N - 1 points, independent of z_i; so sum_{j != i} q(z_i|x_j) * (N - 1) / (M - 1) is unbiased for
sum_{n != i} q(z_i|x_n). Hence

    W_ii = 1 / N,    W_ij = (N - 1) / (N (M - 1))  for j != i,         (rows sum to 1)

and E[q^(z_i) | z_i, x_i] = q(z_i) exactly. At M = N every weight is 1/N and q^ is the exact mixture. Bias: log q^
is the log of an unbiased estimate, so E log q^ <= log q (Jensen), by about Var(q^) / (2 q^2), which shrinks to 0 as
M -> N; the mutual information (E log q(z|x) - E log q^(z)) is biased upward, and so is -E log q^(z_j).
The reference implementations (rtqichen/beta-tcvae, disentangling-vae, pythae) use a different stratification with
batch size M + 1 (1/N, (N - M)/(N M) for one other sample, 1/M for the rest) and fill it with a stride of M + 1 on
the flattened (M + 1) x (M + 1) matrix, which sets columns 0 and 1 instead of the diagonal and its neighbour
(disentangling-vae issue #58). The weights here are neither; they are tested against the exact mixture.

MWS weights. W_ij = 1 / M for all i, j: the batch is treated as an i.i.d. sample from the data, ignoring that z_i
was drawn from one of its members. Then

    E[q^(z_i) | z_i, x_i] = (1/M) q(z_i|x_i) + ((M - 1)/M) q_{-i}(z_i),   q_{-i} = mixture of the other N - 1,

which over-weights the own component by N / M. Since z_i sits near its own component, q^ over-estimates q(z_i)
(opposed, weakly, by the Jensen term) and the mutual information is biased downward; in fact
log q(z_i|x_i) - log q^(z_i) <= log M for every sample, so the MWS mutual information never exceeds log M. At
M = N the weights are 1/N and the estimate is exact. (Chen et al.'s printed MWS formula and their code use the
normalizer 1/(N M) instead of 1/M; that shifts every log q^ by -log N, even at M = N: a constant that leaves
gradients unchanged but not the reported values, so it is not used here.)

Memory: the (M, M, D) array of pairwise log densities is formed in blocks of rows; when gradients are needed and the
array exceeds one block, each block is recomputed in the backward pass (activation checkpointing), so memory stays
bounded for M = 4096, D = 64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution
from torch.utils.checkpoint import checkpoint

from ._validation import check_choice, check_finite, check_floating, check_positive_int, check_same_shape
from .aggregate_posterior import DEFAULT_MAX_CHUNK_ELEMENTS, pairwise_log_density
from .base import (
    LOG_2PI,
    check_posterior_parameters,
    diagonal_normal_log_density,
    expected_log_posterior,
    expected_log_prior_per_dimension,
    factorized_normal_prior,
)
from .decomposition import KLDecomposition, assemble_decomposition

__all__ = [
    "MinibatchKLTerms",
    "log_importance_weight_matrix",
    "minibatch_kl_terms",
    "minibatch_stratified_sampling",
    "minibatch_weighted_sampling",
]

METHODS = ("mss", "mws")


@dataclass(frozen=True)
class MinibatchKLTerms:
    """Per-example log densities at z_i ~ q(z|x_i), each of shape (M,) (``log_qzi``: (M, D)).

    The per-example terms of the beta-TCVAE loss are the properties ``mutual_information`` (log_q_zCx - log_qz),
    ``total_correlation`` (log_qz - log_prod_qzi) and ``dimensionwise_kl`` (log_prod_qzi - log_pz); they sum to the
    single-sample KL estimate ``kl`` = log_q_zCx - log_pz exactly. :meth:`decomposition` gives batch-level scalars
    whose sum is the analytic average KL over the batch.
    """

    log_q_zCx: Tensor  # log q(z_i|x_i)
    log_qz: Tensor  # log q^(z_i), the minibatch estimate of the aggregate posterior
    log_qzi: Tensor  # log q^(z_ij), (M, D)
    log_pz: Tensor  # log p(z_i)
    expected_log_q_zCx: Tensor  # E_{q(z|x_i)} log q(z|x_i) = -H(q(z|x_i)), closed form
    expected_log_pzi: Tensor  # E_{q(z_j|x_i)} log p(z_j), closed form, (M, D)
    method: str

    @property
    def log_prod_qzi(self) -> Tensor:
        return self.log_qzi.sum(-1)  # log prod_j q^(z_ij)

    @property
    def mutual_information(self) -> Tensor:
        return self.log_q_zCx - self.log_qz  # index-code MI term: log q(z|x) - log q(z)

    @property
    def total_correlation(self) -> Tensor:
        return self.log_qz - self.log_prod_qzi  # log q(z) - log prod_j q(z_j)

    @property
    def dimensionwise_kl(self) -> Tensor:
        return self.log_prod_qzi - self.log_pz  # log prod_j q(z_j) - log p(z)

    @property
    def kl(self) -> Tensor:
        return self.log_q_zCx - self.log_pz  # single-sample KL(q(z|x_i) || p(z)) estimate

    def decomposition(self) -> KLDecomposition:
        """Batch-level scalars with the closed-form outer pieces (see :mod:`.decomposition`): the terms sum to the
        analytic average KL over the batch; standard errors cover sampling noise only, not the method's bias."""
        return assemble_decomposition(
            log_qz=self.log_qz.detach(),
            log_qzi=self.log_qzi.detach(),
            expected_log_q_zCx=self.expected_log_q_zCx.detach(),
            expected_log_pzi=self.expected_log_pzi.detach(),
            sample_points=None,
        )


def log_importance_weight_matrix(
    batch_size: int,
    dataset_size: int,
    method: str = "mss",
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """log W, shape (M, M): row i holds the weights of q(z_i|x_j) in the estimate of q(z_i) (see module docstring).

    MSS: W_ii = 1/N, W_ij = (N - 1)/(N (M - 1)); MWS: W_ij = 1/M. Every row sums to 1.
    """
    check_choice(method, METHODS, "method")
    check_positive_int(batch_size, "batch_size", minimum=2 if method == "mss" else 1)
    check_positive_int(dataset_size, "dataset_size")
    _check_dataset_size(batch_size, dataset_size)
    own, other = _log_weights(batch_size, dataset_size, method)
    matrix = torch.full((batch_size, batch_size), other, dtype=dtype, device=device)
    matrix.fill_diagonal_(own)
    return matrix


def minibatch_kl_terms(
    z: Tensor,
    mean: Tensor,
    log_var: Tensor,
    dataset_size: int,
    *,
    method: str = "mss",
    prior: Distribution | None = None,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
) -> MinibatchKLTerms:
    """Per-example log q(z|x), log q^(z), log q^(z_j), log p(z) for a minibatch, by MSS (default) or MWS.

    Args:
        z: one sample per example, z_i ~ q(z|x_i), shape (M, D) (reparameterized, for training).
        mean, log_var: the posterior parameters of the batch, shape (M, D).
        dataset_size: N, the number of points the batch was drawn from (N >= M).
        method: ``"mss"`` (minibatch stratified sampling) or ``"mws"`` (minibatch weighted sampling).
        prior: a factorized Gaussian prior (``None`` = N(0, I)).
        max_chunk_elements: rows of the (M, M, D) pairwise array are processed in blocks of this many elements.
    """
    check_choice(method, METHODS, "method")
    check_posterior_parameters(mean, log_var)
    check_floating(z, "z")
    check_same_shape(z, mean, "z", "mean")
    check_finite(z, "z")
    batch_size, latent_dim = mean.shape
    if method == "mss" and batch_size < 2:
        raise ValueError(
            f"minibatch stratified sampling needs at least 2 examples; got batch size {batch_size} in argument 'z'"
        )
    check_positive_int(dataset_size, "dataset_size")
    _check_dataset_size(batch_size, dataset_size)
    check_positive_int(max_chunk_elements, "max_chunk_elements")
    prior_loc, prior_scale = factorized_normal_prior(prior, latent_dim, mean)

    own, other = _log_weights(batch_size, dataset_size, method)
    rows_per_block = max(1, min(batch_size, max_chunk_elements // (batch_size * latent_dim)))
    needs_graph = torch.is_grad_enabled() and (z.requires_grad or mean.requires_grad or log_var.requires_grad)
    # checkpoint only when the array does not fit one block: below the budget, storing it is cheaper than recomputing
    use_checkpoint = needs_graph and rows_per_block < batch_size
    log_qz_blocks, log_qzi_blocks = [], []
    for start in range(0, batch_size, rows_per_block):
        stop = min(start + rows_per_block, batch_size)
        block_arguments = (z[start:stop], mean, log_var, start, own, other)
        if use_checkpoint:  # recompute the block in backward instead of storing (rows, M, D) activations
            log_qz_block, log_qzi_block = checkpoint(_weighted_mixture_block, *block_arguments, use_reentrant=False)
        else:
            log_qz_block, log_qzi_block = _weighted_mixture_block(*block_arguments)
        log_qz_blocks.append(log_qz_block)
        log_qzi_blocks.append(log_qzi_block)

    # log q(z_i|x_i) = sum_j log N(z_ij; mu_ij, s_ij^2)
    log_q_zCx = diagonal_normal_log_density(z, mean, log_var).sum(-1)
    log_pz = diagonal_normal_log_density(z, prior_loc, 2.0 * torch.log(prior_scale)).sum(-1)  # log p(z_i)
    with torch.no_grad():
        expected_log_q_zCx = expected_log_posterior(log_var)
        expected_log_pzi = expected_log_prior_per_dimension(mean, log_var, prior_loc, prior_scale)
    return MinibatchKLTerms(
        log_q_zCx=log_q_zCx,
        log_qz=torch.cat(log_qz_blocks),
        log_qzi=torch.cat(log_qzi_blocks),
        log_pz=log_pz,
        expected_log_q_zCx=expected_log_q_zCx,
        expected_log_pzi=expected_log_pzi,
        method=method,
    )


def minibatch_weighted_sampling(
    z: Tensor, mean: Tensor, log_var: Tensor, dataset_size: int, *, prior: Distribution | None = None
) -> MinibatchKLTerms:
    """:func:`minibatch_kl_terms` with ``method="mws"``."""
    return minibatch_kl_terms(z, mean, log_var, dataset_size, method="mws", prior=prior)


def minibatch_stratified_sampling(
    z: Tensor, mean: Tensor, log_var: Tensor, dataset_size: int, *, prior: Distribution | None = None
) -> MinibatchKLTerms:
    """:func:`minibatch_kl_terms` with ``method="mss"``."""
    return minibatch_kl_terms(z, mean, log_var, dataset_size, method="mss", prior=prior)


def _check_dataset_size(batch_size: int, dataset_size: int) -> None:
    if dataset_size < batch_size:
        raise ValueError(
            f"dataset_size must be at least the batch size {batch_size} (the batch is drawn from the data set); "
            f"got {dataset_size} in argument 'dataset_size'"
        )


def _log_weights(batch_size: int, dataset_size: int, method: str) -> tuple[float, float]:
    """(log W_ii, log W_ij for j != i)."""
    if method == "mws":
        return -math.log(batch_size), -math.log(batch_size)
    own = -math.log(dataset_size)  # 1/N: the sample's own component, exactly as in the mixture
    other = math.log(dataset_size - 1) - math.log(dataset_size) - math.log(batch_size - 1)  # (N-1)/(N(M-1)); M >= 2
    return own, other


def _weighted_mixture_block(
    z_rows: Tensor, mean: Tensor, log_var: Tensor, start: int, own: float, other: float
) -> tuple[Tensor, Tensor]:
    """log q^(z_i) and log q^(z_ij) for the rows i in [start, start + len(z_rows))."""
    rows, batch_size = z_rows.shape[0], mean.shape[0]
    inverse_scale = torch.exp(-0.5 * log_var)  # 1 / sigma, from log-variances
    log_normalizer = -0.5 * (LOG_2PI + log_var)  # -log(sqrt(2 pi) sigma)
    log_q_ziCxk = pairwise_log_density(z_rows.unsqueeze(1), mean, inverse_scale, log_normalizer)  # (rows, M, D)
    log_weights = z_rows.new_full((rows, batch_size), other)
    row_index = torch.arange(rows, device=z_rows.device)
    log_weights[row_index, row_index + start] = own  # the diagonal of W
    log_qz = torch.logsumexp(log_q_ziCxk.sum(-1) + log_weights, dim=1)  # log sum_k W_ik q(z_i|x_k)
    # in place: nothing saved for backward refers to this buffer (the sum above has been taken)
    log_qzi = torch.logsumexp(log_q_ziCxk.add_(log_weights.unsqueeze(-1)), dim=1)  # log sum_k W_ik q(z_ij|x_k)
    return log_qz, log_qzi
