"""Known minibatch estimators of the aggregate posterior, correct and buggy, to name what an audited loss computes.

Every minibatch estimator of the beta-TCVAE terms in use writes q^(z_i) = sum_k W_ik q(z_i|x_k) over the batch (and
the marginals q^(z_ij) with the same weights); they differ in the weight matrix W only. Evaluated on the same batch
as the audited function, each gives the batch means of log q^(z), sum_j log q^(z_j) and the terms; an audited function
whose values equal one of them on every batch (up to rounding), or equal it plus a constant of a recognisable form
(k log N, k log M, k log(2 pi)/2 with k = 1, D or D - 1), or minus it, or M times it, is named by that estimator. This is a diagnosis on
identical inputs, not a statistical test; the verdicts are the audit's (:mod:`.audit`).

The weight matrices (M = batch size, N = data-set size; this module's own code, from the published formulas):

* ``mss``: this project's derived stratified weights, W_ii = 1/N, W_ik = (N - 1)/(N (M - 1)) (unbiased for q(z_i));
* ``mws``: W_ik = 1/M (Chen et al. 2018, Sec. 3.1; biased, exact at M = N);
* ``mws_1/(NM)``: W_ik = 1/(N M), the normaliser of Chen et al.'s printed MWS formula, of rtqichen/beta-tcvae and of
  pythae's ``BetaTCVAE`` (log q^ shifted by -log N);
* ``unweighted``: W_ik = 1, disentangling-vae's ``_get_log_pz_qz_prodzi_qzCx(..., is_mss=False)`` (log q^ shifted by
  +log M against MWS; disentangling-vae issue #60);
* ``mss_columns``: the reference stratified matrix of rtqichen/beta-tcvae as implemented there and copied by
  disentangling-vae and pythae: with m = M - 1, fill 1/m, then set the flattened entries ``[::m + 1]`` to 1/N and
  ``[1::m + 1]`` to (N - m)/(N m), and W[m - 1, 0] to (N - m)/(N m); a stride of m + 1 = M on the flattened M x M
  matrix walks down columns 0 and 1, not the diagonal (disentangling-vae issue #58);
* ``mss_columns_per_dimension``: disentangling-vae's MSS as implemented there: the ``mss_columns`` matrix, added to
  the (M, M, D) array of log q(z_ij|x_k) before the sum over j, so that log q^(z_i) = logsumexp_k (D log W_ik +
  sum_j log q(z_ij|x_k)): the weight enters D times (disentangling-vae issue #60); the marginals are as ``mss_columns``;
* ``mss_intended``: the same code with the stride M + 1, which walks the diagonal (1/N) and the entries right of it
  as meant (the row-(m - 1) assignment is kept as published).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor
from torch.distributions import Normal

__all__ = ["KNOWN_ESTIMATORS", "KnownEstimator", "known_estimator_values", "describe_constant"]


@dataclass(frozen=True)
class KnownEstimator:
    name: str
    description: str
    log_weights: Callable[[int, int], Tensor]  # (M, N) -> log W, (M, M), float64
    weight_per_dimension: bool = False  # log W added to every dimension before the sum: log q^(z) carries D log W


def _full(batch_size: int, value: float) -> Tensor:
    return torch.full((batch_size, batch_size), value, dtype=torch.float64)


def _mss_log_weights(batch_size: int, dataset_size: int) -> Tensor:
    if batch_size == 1:
        return _full(1, -math.log(dataset_size))
    weights = _full(batch_size, (dataset_size - 1) / (dataset_size * (batch_size - 1)))
    weights.fill_diagonal_(1.0 / dataset_size)
    return weights.log()


def _reference_stratified_log_weights(batch_size: int, dataset_size: int, stride_offset: int) -> Tensor:
    """rtqichen/beta-tcvae's stratified matrix, filled with stride m + 1 + ``stride_offset`` (0: as published)."""
    m = batch_size - 1
    if m < 1:
        return _full(batch_size, -math.log(dataset_size))
    strat_weight = (dataset_size - m) / (dataset_size * m)
    weights = _full(batch_size, 1.0 / m)
    stride = m + 1 + stride_offset
    weights.view(-1)[::stride] = 1.0 / dataset_size
    weights.view(-1)[1::stride] = strat_weight
    weights[m - 1, 0] = strat_weight
    return weights.log()


KNOWN_ESTIMATORS: tuple[KnownEstimator, ...] = (
    KnownEstimator("mss", "minibatch stratified sampling with the derived weights (1/N own, (N-1)/(N(M-1)) others)",
                   _mss_log_weights),
    KnownEstimator("mws", "minibatch weighted sampling, weights 1/M", lambda m, n: _full(m, -math.log(m))),
    KnownEstimator("mws_1/(NM)", "minibatch weighted sampling normalised by 1/(NM) (Chen et al.'s printed formula; "
                   "rtqichen/beta-tcvae, pythae): log q(z) shifted by -log N", lambda m, n: _full(m, -math.log(m * n))),
    KnownEstimator("unweighted", "log-sum-exp over the batch without weights (disentangling-vae, is_mss=False, "
                   "issue #60): log q(z) shifted by +log M against MWS", lambda m, n: _full(m, 0.0)),
    KnownEstimator("mss_columns", "the reference MSS weight matrix filled with stride M, which sets columns 0 and 1 "
                   "instead of the diagonal (rtqichen/beta-tcvae, disentangling-vae issue #58, pythae)",
                   lambda m, n: _reference_stratified_log_weights(m, n, 0)),
    KnownEstimator("mss_columns_per_dimension", "disentangling-vae's MSS as implemented: the columns-set matrix, "
                   "with log W added to every latent dimension before the sum over dimensions, so that log q(z) "
                   "carries D log W (disentangling-vae issues #58 and #60)",
                   lambda m, n: _reference_stratified_log_weights(m, n, 0), weight_per_dimension=True),
    KnownEstimator("mss_intended", "the reference MSS weight matrix filled with stride M + 1, which walks the "
                   "diagonal (1/N) and the entries right of it ((N-M+1)/(N(M-1))) as intended",
                   lambda m, n: _reference_stratified_log_weights(m, n, 1)),
)


def known_estimator_values(z: Tensor, mean: Tensor, log_var: Tensor, dataset_size: int
                           ) -> dict[str, dict[str, float]]:
    """Batch means of log q^(z), sum_j log q^(z_j) and the three terms under every known estimator, in float64.

    ``z``, ``mean``, ``log_var``: the batch, (M, D). log q(z|x) and log p(z) are the exact per-example values (they
    do not depend on the estimator).
    """
    z, mean, log_var = (t.to(torch.float64) for t in (z, mean, log_var))
    batch_size = z.shape[0]
    std = torch.exp(0.5 * log_var)
    pairwise = Normal(mean.unsqueeze(0), std.unsqueeze(0)).log_prob(z.unsqueeze(1))  # log q(z_ij|x_k), (M, M, D)
    log_q_zCx = Normal(mean, std).log_prob(z).sum(-1)
    log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
    values = {}
    for estimator in KNOWN_ESTIMATORS:
        log_w = estimator.log_weights(batch_size, dataset_size)
        joint_log_w = log_w * z.shape[1] if estimator.weight_per_dimension else log_w
        log_qz = torch.logsumexp(pairwise.sum(-1) + joint_log_w, dim=1)
        log_prod_qzi = torch.logsumexp(pairwise + log_w.unsqueeze(-1), dim=1).sum(-1)
        values[estimator.name] = {
            "log_qz": float(log_qz.mean()),
            "log_prod_qzi": float(log_prod_qzi.mean()),
            "mutual_information": float((log_q_zCx - log_qz).mean()),
            "total_correlation": float((log_qz - log_prod_qzi).mean()),
            "dimensionwise_kl": float((log_prod_qzi - log_pz).mean()),
        }
    return values


def describe_constant(constant: float, dataset_size: int, batch_size: int, latent_dim: int, tolerance: float
                      ) -> str | None:
    """A name for an offset of the form k log N, k log M or k log(2 pi)/2 with k in {+-1, +-D, +-(D-1)}, written
    with the symbols (``+D log(2 pi)/2``) so that settings of different D, N, M share a name; ``None`` when it is
    none of them (within ``tolerance``)."""
    forms = [("log N", math.log(dataset_size)), ("log M", math.log(batch_size)),
             ("log(2 pi)/2", 0.5 * math.log(2 * math.pi))]
    multipliers = [("", 1), ("D ", latent_dim), ("(D-1) ", latent_dim - 1)]
    for text, unit in forms:
        for factor, k in multipliers:
            if k == 0:
                continue
            for sign in (1, -1):
                if abs(constant - sign * k * unit) <= tolerance:
                    return f"{'+' if sign > 0 else '-'}{factor}{text}"
    return None
