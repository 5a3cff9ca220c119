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

A standard error measures sampling noise only. A minibatch estimate of log q(z) is also biased (the log of a noisy
estimate), by more than its standard error for small batches and tight posteriors; so each term carries an estimated
``*_bias`` (reported value minus truth; exactly 0 for the exact mixture), :meth:`KLDecomposition.interval` widens the
interval by it, and ``warnings`` says in words where the bias exceeds the standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from torch import Tensor

__all__ = ["KLDecomposition"]

TERMS = ("mutual_information", "total_correlation", "dimensionwise_kl")


@dataclass(frozen=True)
class KLDecomposition:
    """Scalar terms of the decomposition of the average KL (nats per data point).

    ``total`` is the analytic average KL (1/N) sum_n KL(q(z|x_n) || p(z)); ``mutual_information`` +
    ``total_correlation`` + ``dimensionwise_kl`` equals it up to rounding (see :attr:`sum_of_terms`).
    ``dimensionwise_kl_per_dimension`` holds KL(q(z_j) || p(z_j)) for each j, shape (D,). The ``*_standard_error``
    fields are the Monte-Carlo standard errors of the sampled terms (sampling noise only, not bias; like any sample
    standard deviation they are themselves unreliable for a few dozen draws or fewer); ``num_samples`` is the number
    of (z, x) draws used.

    The ``*_bias`` fields estimate each term's bias (its expected value minus the truth), with the standard error of
    that estimate in ``*_bias_standard_error``: 0 for the exact mixture, the estimate of
    :mod:`.minibatch_decomposition` for a minibatch, ``None`` where it cannot be estimated (a batch of fewer than
    6). ``warnings`` lists, in words, each term whose bias exceeds (or cannot be compared with) its standard error:
    there an interval of a few standard errors would not cover the truth.
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
    mutual_information_bias: Tensor | None = None
    total_correlation_bias: Tensor | None = None
    dimensionwise_kl_bias: Tensor | None = None
    mutual_information_bias_standard_error: Tensor | None = None
    total_correlation_bias_standard_error: Tensor | None = None
    dimensionwise_kl_bias_standard_error: Tensor | None = None
    warnings: tuple[str, ...] = ()

    @property
    def sum_of_terms(self) -> Tensor:
        return self.mutual_information + self.total_correlation + self.dimensionwise_kl

    def interval(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """An interval for term ``name`` that accounts for both errors: value +- (z_level * sqrt(standard error^2 +
        bias standard error^2) + |bias|), z_level the normal quantile (1.96 at 0.95): conservative, since the bias
        is widened for rather than subtracted. Where the bias is unknown (``None``) it is the sampling interval
        alone, and ``warnings`` says so."""
        if name not in TERMS:
            raise ValueError(f"argument 'name' must be one of {list(TERMS)}; got {name!r}")
        if not 0.0 < level < 1.0:
            raise ValueError(f"argument 'level' must lie in (0, 1); got {level}")
        value = float(getattr(self, name))
        bias, bias_error = getattr(self, f"{name}_bias"), getattr(self, f"{name}_bias_standard_error")
        error = math.hypot(float(getattr(self, f"{name}_standard_error")), 0.0 if bias_error is None else float(bias_error))
        half_width = NormalDist().inv_cdf(0.5 + level / 2) * error + (0.0 if bias is None else abs(float(bias)))
        return value - half_width, value + half_width


def assemble_decomposition(
    *,
    log_qz: Tensor,
    log_qzi: Tensor,
    expected_log_q_zCx: Tensor,
    expected_log_pzi: Tensor,
    sample_points: Tensor | None,
    log_qz_bias: Tensor | None = None,
    log_qzi_bias: Tensor | None = None,
    method: str = "exact",
) -> KLDecomposition:
    """Combine sampled mixture log densities with the closed-form expectations.

    Args:
        log_qz, log_qzi: log q^(z_s), shape (S,), and log q^(z_sj), shape (S, D), at the samples.
        expected_log_q_zCx: E_{q(z|x_n)} log q(z|x_n) per data point, shape (N,).
        expected_log_pzi: E_{q(z_j|x_n)} log p(z_j) per data point and dimension, shape (N, D).
        sample_points: ``None`` when sample s was drawn from data point s (one sample per point, S = N, stratified);
            otherwise the index of the data point each sample came from (drawn uniformly), shape (S,).
        log_qz_bias, log_qzi_bias: per-sample estimated biases of log q^(z_s), shape (S,), and of log q^(z_sj),
            shape (S, D): their means are the biases of the terms, their spread the biases' standard errors. Both
            ``None`` for an exact q^ (bias 0), or for a minibatch estimator whose bias could not be estimated.
        method: the estimator's name, for the warnings.

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
    standard_errors = {
        "mutual_information": _standard_error(mutual_information_terms),
        "total_correlation": _standard_error(total_correlation_terms),
        "dimensionwise_kl": _standard_error(dimensionwise_terms),
    }
    if method == "exact":
        zero = log_qz.new_zeros(())  # exact mixture: E log q^ = E log q
        biases, bias_errors = dict.fromkeys(TERMS, zero), dict.fromkeys(TERMS, zero)
    elif log_qz_bias is None or log_qzi_bias is None:
        biases, bias_errors = dict.fromkeys(TERMS), dict.fromkeys(TERMS)
    else:  # MI = E log q(z|x) - E log q^(z), TC = E log q^(z) - sum_j E log q^(z_j), dim-wise = sum_j E log q^(z_j) - ...
        marginal_bias = log_qzi_bias.sum(-1)
        per_sample = {"mutual_information": -log_qz_bias, "total_correlation": log_qz_bias - marginal_bias,
                      "dimensionwise_kl": marginal_bias}
        biases = {name: terms.mean() for name, terms in per_sample.items()}
        bias_errors = {name: _standard_error(terms) for name, terms in per_sample.items()}
    values = {"mutual_information": mutual_information, "total_correlation": total_correlation,
              "dimensionwise_kl": dimensionwise_kl_per_dimension.sum()}
    return KLDecomposition(
        **values,
        total=total,
        dimensionwise_kl_per_dimension=dimensionwise_kl_per_dimension,
        **{f"{name}_standard_error": error for name, error in standard_errors.items()},
        num_samples=num_samples,
        **{f"{name}_bias": bias for name, bias in biases.items()},
        **{f"{name}_bias_standard_error": error for name, error in bias_errors.items()},
        warnings=_bias_warnings(values, standard_errors, biases, bias_errors, method),
    )


def _bias_warnings(values: dict, standard_errors: dict, biases: dict, bias_errors: dict,
                   method: str) -> tuple[str, ...]:
    """A message for each term whose bias is unknown, or exceeds its standard error and is itself clearly non-zero
    (beyond 2 of its own standard errors: a noisy bias estimate alone does not warn)."""
    messages = []
    remedy = "a larger batch or exact_kl_decomposition" if method == "mss-jackknife" else (
        "method='mss-jackknife', a larger batch or exact_kl_decomposition")
    for name in TERMS:
        bias, error = biases[name], float(standard_errors[name])
        label = name.replace("_", " ")
        if bias is None:
            messages.append(
                f"{label}: the bias of the {method} estimate is unknown (a batch of fewer than 6 is too small to "
                f"estimate it); the standard error {error:.3g} covers sampling noise only"
            )
        elif abs(float(bias)) > max(error, 2.0 * float(bias_errors[name])):
            messages.append(
                f"{label} = {float(values[name]):.4g}: its estimated bias {float(bias):+.3g} nats ({method}) exceeds "
                f"its standard error {error:.3g}: value +- 2 standard errors would miss the truth; use interval(), "
                f"{remedy}"
            )
    return tuple(messages)


def _standard_error(terms: Tensor) -> Tensor:
    if terms.shape[0] < 2:  # callers need at least 2 samples; a NaN standard error is never returned
        raise ValueError(f"a standard error needs at least 2 samples; got {terms.shape[0]}")
    return terms.std(unbiased=True) / math.sqrt(terms.shape[0])
