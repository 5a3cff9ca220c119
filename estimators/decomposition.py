"""Decomposition of the average KL term of the ELBO, shared by the exact and the minibatch estimators.

With x uniform over a data set of N points, q(z, x) = q(z|x) / N, the aggregate posterior q(z) = (1/N) sum_n q(z|x_n)
and a factorized prior p(z) = prod_j p(z_j) (Hoffman & Johnson 2016; Chen et al. 2018, eq. (2)):

    (1/N) sum_n KL(q(z|x_n) || p(z))
        =  E_{q(z,x)}[log q(z|x) - log q(z)]                  mutual information I_q(x; z)  ("index-code MI")
        +  E_{q(z)}[log q(z) - sum_j log q(z_j)]              total correlation KL(q(z) || prod_j q(z_j))
        +  sum_j E_{q(z_j)}[log q(z_j) - log p(z_j)]          dimension-wise KL sum_j KL(q(z_j) || p(z_j)).

The expectations of log q(z|x) (minus the entropy of a Gaussian) and of log p(z_j) (a Gaussian cross-entropy) are
closed forms; only E log q(z) and E log q(z_j) need samples. Using the closed forms for the two outer pieces makes
the three terms sum to the analytic average KL exactly (up to rounding), sample by sample:

    mutual_information = E[log q(z|x)]          - mean_s log q^(z_s)
    total_correlation  = mean_s [log q^(z_s)    - sum_j log q^(z_sj)]
    dimensionwise_kl_j = mean_s log q^(z_sj)    - E[log p(z_j)]

where q^ is the exact mixture (:mod:`.exact_decomposition`) or a minibatch estimate of it
(:mod:`.minibatch_decomposition`). The total correlation is also the quantity FactorVAE penalizes (Kim & Mnih 2018),
there estimated with a density-ratio discriminator instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

__all__ = ["KLDecomposition"]


@dataclass(frozen=True)
class KLDecomposition:
    """Scalar terms of the decomposition of the average KL (nats per data point).

    ``total`` is the analytic average KL (1/N) sum_n KL(q(z|x_n) || p(z)); ``mutual_information`` +
    ``total_correlation`` + ``dimensionwise_kl`` equals it up to rounding (see :attr:`sum_of_terms`).
    ``dimensionwise_kl_per_dimension`` holds KL(q(z_j) || p(z_j)) for each j, shape (D,). The ``*_standard_error``
    fields are the Monte-Carlo standard errors of the sampled terms (sampling noise only, not bias; like any sample
    standard deviation they are themselves unreliable for a few dozen draws or fewer); ``num_samples`` is the number
    of (z, x) draws used.
    """

    mutual_information: Tensor
    total_correlation: Tensor
    dimensionwise_kl: Tensor
    total: Tensor
    dimensionwise_kl_per_dimension: Tensor
    mutual_information_standard_error: Tensor
    total_correlation_standard_error: Tensor
    dimensionwise_kl_standard_error: Tensor
    num_samples: int

    @property
    def sum_of_terms(self) -> Tensor:
        return self.mutual_information + self.total_correlation + self.dimensionwise_kl


def assemble_decomposition(
    *,
    log_qz: Tensor,
    log_qzi: Tensor,
    expected_log_q_zCx: Tensor,
    expected_log_pzi: Tensor,
    sample_points: Tensor | None,
) -> KLDecomposition:
    """Combine sampled mixture log densities with the closed-form expectations.

    Args:
        log_qz, log_qzi: log q^(z_s), shape (S,), and log q^(z_sj), shape (S, D), at the samples.
        expected_log_q_zCx: E_{q(z|x_n)} log q(z|x_n) per data point, shape (N,).
        expected_log_pzi: E_{q(z_j|x_n)} log p(z_j) per data point and dimension, shape (N, D).
        sample_points: ``None`` when sample s was drawn from data point s (one sample per point, S = N, stratified);
            otherwise the index of the data point each sample came from (drawn uniformly), shape (S,).

    Standard errors: with one sample per point the estimator is stratified over points; its variance is estimated
    by the pooled variance of the per-sample terms centred at each point's closed-form piece, which over-estimates
    the stratified variance (conservative). With uniformly drawn points the estimators are plain sample means and
    the standard errors are the usual ones.
    """
    num_samples = log_qz.shape[0]
    log_prod_qzi = log_qzi.sum(-1)  # log prod_j q(z_j)
    mean_expected_log_q_zCx = expected_log_q_zCx.mean()  # E_{q(z,x)} log q(z|x), closed form
    mean_expected_log_pzi = expected_log_pzi.mean(0)  # E_{q(z_j)} log p(z_j), closed form, (D,)

    mutual_information = mean_expected_log_q_zCx - log_qz.mean()
    total_correlation = (log_qz - log_prod_qzi).mean()
    dimensionwise_kl_per_dimension = log_qzi.mean(0) - mean_expected_log_pzi
    total = mean_expected_log_q_zCx - mean_expected_log_pzi.sum()

    if sample_points is None:  # stratified: centre each sample at its own point's closed-form pieces
        mutual_information_terms = expected_log_q_zCx - log_qz
        dimensionwise_terms = log_prod_qzi - expected_log_pzi.sum(-1)
    else:
        mutual_information_terms = -log_qz
        dimensionwise_terms = log_prod_qzi
    total_correlation_terms = log_qz - log_prod_qzi
    return KLDecomposition(
        mutual_information=mutual_information,
        total_correlation=total_correlation,
        dimensionwise_kl=dimensionwise_kl_per_dimension.sum(),
        total=total,
        dimensionwise_kl_per_dimension=dimensionwise_kl_per_dimension,
        mutual_information_standard_error=_standard_error(mutual_information_terms),
        total_correlation_standard_error=_standard_error(total_correlation_terms),
        dimensionwise_kl_standard_error=_standard_error(dimensionwise_terms),
        num_samples=num_samples,
    )


def _standard_error(terms: Tensor) -> Tensor:
    if terms.shape[0] < 2:
        return terms.new_tensor(math.nan)
    return terms.std(unbiased=True) / math.sqrt(terms.shape[0])
