"""Minibatch estimates of the aggregate posterior for the beta-TCVAE decomposition (Chen et al. 2018, Sec. 3.1 and
App. C): minibatch weighted sampling (MWS), minibatch stratified sampling (MSS), and MSS with a jackknife correction
of the bias of its log (``mss-jackknife``, derived below).

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

Bias of the log, and its correction (derived here; the measurements are in README, "Minibatch bias").
Fix a row i and a "plane" (one dimension j, or the joint), and write t_k = q(z_i|x_k) (that plane's density) for
the n = M - 1 other batch members, a = q(z_i|x_i) / N, c = (N - 1) / N. Given (x_i, z_i) the others are a simple
random sample without replacement of n of the P = N - 1 other points, so with the population variance S^2 of the
t's (divisor P - 1),

    q^ = a + c tbar,    E q^ = q,    Var q^ = c^2 (1 - n/P) S^2 / n,

and a second-order expansion of the log about q gives the Jensen gap

    E log q^ = log q - Var(q^) / (2 q^2) + O(n^-2) = log q - (1/n - 1/P) c^2 S^2 / (2 q^2) + O(n^-2).

For tight posteriors the marginal planes are 1-D kernel estimates with few components near z_ij: each loses
c^2 S_j^2 / (2 n q_j^2), and the D losses add up in log prod_j q^(z_j), whereas the joint plane, dominated by the own
term a, loses almost nothing; so TC is biased up and the dimension-wise KL down by the same amount (both about 0.3
nats at N = 2000, M = 256, D = 10, variance 0.01). Four ways to remove the leading term were weighed:

(a) delta method: add Vhat / 2, Vhat = (1 - n/P) c^2 s^2 / (n q^^2) with s^2 the sample variance of the t's: one more
    sum of t^2 per plane. But s^2 / q^^2 is itself a ratio estimate, biased down when a few t's carry the sum (tight
    posteriors), so it under-corrects; measured, it leaves a third of the bias at M = 64.
(b) jackknife: theta_(k) = log(a + c mean_{l != k} t_l) is the same estimator with n - 1 others, a sample without
    replacement of n - 1 of the P; with b(n) = -(1/n - 1/P) kappa the leading bias,
    E[mean_k theta_(k)] - E theta = b(n - 1) - b(n) = -kappa / (n (n - 1)), so b(n) = (n - 1)(1 - n/P) times that
    difference, and
        theta_J = theta - lam (mean_k theta_(k) - theta),    lam = (n - 1)(1 - n/P),
    removes the whole O(1/n) term, whatever its constant (the skewness of the t's included, which (a) misses), and
    leaves O(n^-2). At M = N, lam = 0 and theta_J is the exact mixture. Cost: one log per pairwise term, done in the
    same fused pass (:mod:`.minibatch_mixture`); theta_J is a smooth function of the t's, so it trains too.
(c) a memory of past batches' encoder outputs as extra components: within an epoch the current and the past K
    batches are one uniform sample without replacement, so with a frozen encoder this is MSS with a batch of M + K,
    whose bias falls like 1/(M + K) at (M + K)/M times the cost (MSS at 1024 still has -0.04 nats in log prod_j
    q(z_j), where (b) at 256 has +0.02). With a training encoder the stored components are stale, by an amount that
    depends on the learning rate and cannot be checked against the current exact mixture, and they carry no
    gradient. Not chosen.
(d) stratifying the others per dimension: MSS already stratifies on the one stratum a sample controls (its own
    point). Post-stratifying the others along axis j (weighting each by its slice's share of the data set over its
    share of the batch) needs the shares over all N points, i.e. an encoder pass over the data set that a minibatch
    step does not have; shares estimated from the batch give weights 1. Not chosen.

Chosen: (b), ``method="mss-jackknife"`` (the MSS weights, jackknifed in every plane). Its per-example log_qz,
log_qzi are the corrected values theta_J (no longer logs of an unbiased estimate of q); the per-example terms still
sum to the single-sample KL exactly.

Honest intervals. The decomposition's standard errors are sampling errors (the spread of the per-example terms);
measured against the exact mixture they match the batch-to-batch spread, so intervals fail through bias alone.
:meth:`MinibatchKLTerms.decomposition` therefore estimates the bias of each term: the reference is the jackknife
estimate extrapolated in the batch size. If its residual bias decays like (1/M - 1/N) (the jackknife's is
O(M^-2) asymptotically, i.e. faster), then b_J(M) = (1 - M/N)(b_J(M/2) - b_J(M)) and the jackknife on the two halves
of the batch estimates it from the same data: reference = theta_J(M) - (1 - M/N)(theta_J(M/2) - theta_J(M)), averaged
over rows; the bias of a reported term = its value - the reference's. This is conservative where the residual decays
faster than 1/M and underestimates it where it decays slower (the joint of broad posteriors at small M; README).
A term whose bias exceeds its standard error is named in ``warnings``; ``interval()`` widens by the bias.

Memory and time: :mod:`.minibatch_mixture` forms the (M, M, D) log densities one cache-sized block of rows at a time,
forward and backward (the backward recomputes each block rather than storing it), so memory grows as O(M^2) for
the joint log densities and O(block) for the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from ._validation import check_choice, check_finite, check_floating, check_positive_int, check_same_shape
from .base import (
    check_posterior_parameters,
    diagonal_normal_log_density,
    expected_log_posterior,
    expected_log_prior_per_dimension,
    factorized_normal_prior,
)
from .decomposition import KLDecomposition, assemble_decomposition
from .minibatch_mixture import minibatch_mixture_log_density

__all__ = [
    "MinibatchKLTerms",
    "log_importance_weight_matrix",
    "minibatch_kl_terms",
    "minibatch_stratified_sampling",
    "minibatch_weighted_sampling",
]

METHODS = ("mss", "mws", "mss-jackknife")
WEIGHT_METHODS = ("mss", "mws")
MINIMUM_BATCH = {"mws": 1, "mss": 2, "mss-jackknife": 3}
BIAS_MINIMUM_BATCH = 6  # the bias estimate jackknifes both halves of the batch


@dataclass(frozen=True)
class MinibatchKLTerms:
    """Per-example log densities at z_i ~ q(z|x_i), each of shape (M,) (``log_qzi``: (M, D)).

    The per-example terms of the beta-TCVAE loss are the properties ``mutual_information`` (log_q_zCx - log_qz),
    ``total_correlation`` (log_qz - log_prod_qzi) and ``dimensionwise_kl`` (log_prod_qzi - log_pz); they sum to the
    single-sample KL estimate ``kl`` = log_q_zCx - log_pz exactly. :meth:`decomposition` gives batch-level scalars
    whose sum is the analytic average KL over the batch, with standard errors and estimated biases. For
    ``mss-jackknife``, ``log_qz`` and ``log_qzi`` hold the bias-corrected values (see the module docstring).
    ``z``, ``mean``, ``log_var`` (detached) and ``dataset_size`` are kept for the bias estimate.
    """

    log_q_zCx: Tensor  # log q(z_i|x_i)
    log_qz: Tensor  # log q^(z_i), the minibatch estimate of the aggregate posterior
    log_qzi: Tensor  # log q^(z_ij), (M, D)
    log_pz: Tensor  # log p(z_i)
    expected_log_q_zCx: Tensor  # E_{q(z|x_i)} log q(z|x_i) = -H(q(z|x_i)), closed form
    expected_log_pzi: Tensor  # E_{q(z_j|x_i)} log p(z_j), closed form, (M, D)
    method: str
    z: Tensor | None = None
    mean: Tensor | None = None
    log_var: Tensor | None = None
    dataset_size: int | None = None

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

    def decomposition(self, *, estimate_bias: bool = True) -> KLDecomposition:
        """Batch-level scalars with the closed-form outer pieces (see :mod:`.decomposition`): the terms sum to the
        analytic average KL over the batch. Standard errors cover sampling noise; with ``estimate_bias`` (and a
        batch of at least 6) each term also carries its estimated bias (module docstring, "Honest intervals"),
        at the cost of about one more forward pass without gradients."""
        batch_size = self.log_qz.shape[0]
        if batch_size < 2:
            raise ValueError(
                "a decomposition with standard errors needs at least 2 examples; got batch size 1 in argument 'z'"
            )
        log_qz_bias = log_qzi_bias = None
        if estimate_bias and self.z is not None and batch_size >= BIAS_MINIMUM_BATCH:
            log_qz_bias, log_qzi_bias = self._bias_per_example()
        return assemble_decomposition(
            log_qz=self.log_qz.detach(),
            log_qzi=self.log_qzi.detach(),
            expected_log_q_zCx=self.expected_log_q_zCx.detach(),
            expected_log_pzi=self.expected_log_pzi.detach(),
            sample_points=None,
            log_qz_bias=log_qz_bias,
            log_qzi_bias=log_qzi_bias,
            method=self.method,
        )

    def _bias_per_example(self) -> tuple[Tensor, Tensor]:
        """Per-example estimated bias of log_qz (M,) and log_qzi (M, D): the reported values minus the reference
        theta_J(M) - (1 - M/N)(theta_J(M/2) - theta_J(M)) (module docstring, "Honest intervals"); their batch means
        are the biases of the batch means, their spread gives those biases' standard errors."""
        batch_size, dataset_size = self.log_qz.shape[0], self.dataset_size
        with torch.no_grad():
            if self.method == "mss-jackknife":
                full_qz, full_qzi = self.log_qz.detach(), self.log_qzi.detach()
            else:
                full_qz, full_qzi = _mixture(self.z, self.mean, self.log_var, dataset_size, "mss-jackknife", None)
            half = batch_size // 2
            halves = [
                _mixture(self.z[rows], self.mean[rows], self.log_var[rows], dataset_size, "mss-jackknife", None)
                for rows in (slice(0, half), slice(half, batch_size))
            ]
            factor = 1.0 - batch_size / dataset_size
            reference_qz = full_qz - factor * (torch.cat([h[0] for h in halves]) - full_qz)
            reference_qzi = full_qzi - factor * (torch.cat([h[1] for h in halves]) - full_qzi)
            dtype = self.log_qz.dtype
            return (self.log_qz.detach() - reference_qz).to(dtype), (self.log_qzi.detach() - reference_qzi).to(dtype)


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
    check_choice(method, WEIGHT_METHODS, "method")
    batch_size = check_positive_int(batch_size, "batch_size", minimum=MINIMUM_BATCH[method])
    dataset_size = check_positive_int(dataset_size, "dataset_size")
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
    max_chunk_elements: int | None = None,
) -> MinibatchKLTerms:
    """Per-example log q(z|x), log q^(z), log q^(z_j), log p(z) for a minibatch, by MSS (default), MWS or
    MSS with the jackknife bias correction.

    Args:
        z: one sample per example, z_i ~ q(z|x_i), shape (M, D) (reparameterized, for training); the dtype and
            device of ``mean``.
        mean, log_var: the posterior parameters of the batch, shape (M, D).
        dataset_size: N, the number of points the batch was drawn from (N >= M); any integer, or a 0-d integer
            tensor.
        method: ``"mss"`` (minibatch stratified sampling, M >= 2), ``"mws"`` (minibatch weighted sampling) or
            ``"mss-jackknife"`` (MSS with its log's bias removed to O(M^-2), M >= 3; the least biased).
        prior: a factorized Gaussian prior (``None`` = N(0, I)).
        max_chunk_elements: the (D, rows, M) block of pairwise log densities formed at once (``None``: a
            cache-sized default on CPU, a large one on CUDA); bounds memory, not the result.

    Gradients: a hand-written backward pass (:mod:`.minibatch_mixture`), first order only. Float16/bfloat16
    inputs are computed in float32 and give float32 mixture terms.
    """
    check_choice(method, METHODS, "method")
    check_posterior_parameters(mean, log_var)
    check_floating(z, "z")
    check_same_shape(z, mean, "z", "mean")
    if z.dtype != mean.dtype or z.device != mean.device:
        raise ValueError(
            f"argument 'z' must have the dtype and device of 'mean' ({mean.dtype}, {mean.device}); "
            f"got ({z.dtype}, {z.device})"
        )
    check_finite(z, "z")
    batch_size, latent_dim = mean.shape
    if batch_size < MINIMUM_BATCH[method]:
        raise ValueError(
            f"method {method!r} needs at least {MINIMUM_BATCH[method]} examples; got batch size {batch_size} in "
            "argument 'z'"
        )
    dataset_size = check_positive_int(dataset_size, "dataset_size")
    _check_dataset_size(batch_size, dataset_size)
    if max_chunk_elements is not None:
        max_chunk_elements = check_positive_int(max_chunk_elements, "max_chunk_elements")
    prior_loc, prior_scale = factorized_normal_prior(prior, latent_dim, mean)

    log_qz, log_qzi = _mixture(z, mean, log_var, dataset_size, method, max_chunk_elements)
    # log q(z_i|x_i) = sum_j log N(z_ij; mu_ij, s_ij^2)
    log_q_zCx = diagonal_normal_log_density(z, mean, log_var).sum(-1)
    log_pz = diagonal_normal_log_density(z, prior_loc, 2.0 * torch.log(prior_scale)).sum(-1)  # log p(z_i)
    with torch.no_grad():
        expected_log_q_zCx = expected_log_posterior(log_var)
        expected_log_pzi = expected_log_prior_per_dimension(mean, log_var, prior_loc, prior_scale)
    return MinibatchKLTerms(
        log_q_zCx=log_q_zCx,
        log_qz=log_qz,
        log_qzi=log_qzi,
        log_pz=log_pz,
        expected_log_q_zCx=expected_log_q_zCx,
        expected_log_pzi=expected_log_pzi,
        method=method,
        z=z.detach(),
        mean=mean.detach(),
        log_var=log_var.detach(),
        dataset_size=dataset_size,
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


def _mixture(z: Tensor, mean: Tensor, log_var: Tensor, dataset_size: int, method: str,
             max_chunk_elements: int | None) -> tuple[Tensor, Tensor]:
    batch_size = z.shape[0]
    own, other = _log_weights(batch_size, dataset_size, "mws" if method == "mws" else "mss")
    return minibatch_mixture_log_density(
        z, mean, log_var, log_own_weight=own, log_other_weight=other,
        jackknife_population=dataset_size - 1 if method == "mss-jackknife" else None,
        max_block_elements=max_chunk_elements,
    )


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
