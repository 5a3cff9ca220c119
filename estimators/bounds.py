"""Lower bounds on log p(x): the ELBO (Kingma & Welling 2014), the importance-weighted bound IWAE-K (Burda et al.
2016), and an importance-sampling estimate of log p(x) for evaluation.

All three take the same three ingredients:

* ``log_likelihood``: a callable mapping latent samples z of shape (K, *batch, *event) to log p(x|z) of shape
  (K, *batch) (one x per batch element);
* ``posterior``: q(z|x), a torch Distribution with batch shape ``batch`` (one per x) and the latent event shape;
* ``prior``: p(z), a torch Distribution with the same event shape and a batch shape that broadcasts.

With importance weights w_k = p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x):

    ELBO      = E_q[log w]                 = E_q log p(x|z) - KL(q(z|x) || p(z))   <= log p(x)
    IWAE-K    = E[log (1/K) sum_k w_k]                                            <= log p(x)
    ELBO <= IWAE-K <= IWAE-2K <= log p(x), and IWAE-K -> log p(x) as K -> infinity (Burda et al. 2016, Thm. 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, kl_divergence

from ._validation import check_choice, check_distribution, check_matching_event_shapes, check_positive_int
from .base import MonteCarloEstimate, mean_and_standard_error
from .kl import describe_distribution

__all__ = ["ELBOEstimate", "elbo", "iwae_bound", "log_importance_weights", "log_marginal_likelihood"]

LogLikelihood = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class ELBOEstimate:
    """Per-example ELBO terms, each of shape (*batch,).

    ``elbo`` = ``reconstruction`` - ``kl``; ``reconstruction`` = Monte-Carlo E_q log p(x|z); ``kl`` = KL(q || p),
    analytic or sampled. ``standard_error`` is the Monte-Carlo standard error of ``elbo`` over the K samples
    (``None`` for K = 1).
    """

    elbo: Tensor
    reconstruction: Tensor
    kl: Tensor
    standard_error: Tensor | None


def elbo(
    log_likelihood: LogLikelihood,
    posterior: Distribution,
    prior: Distribution,
    *,
    num_samples: int = 1,
    kl: str = "sampled",
) -> ELBOEstimate:
    """The evidence lower bound E_q[log p(x|z)] - KL(q(z|x) || p(z)), per example, from K samples z_k ~ q(z|x).

    Args:
        num_samples: K; K = 1 is the single-sample estimator of Kingma & Welling (2014), K > 1 averages K draws.
        kl: ``"sampled"`` estimates the KL with the same samples, (1/K) sum_k [log q(z_k|x) - log p(z_k)] (the
            generic SGVB estimator A, eq. (6) of Kingma & Welling 2014); ``"analytic"`` uses the closed form
            (their estimator B, eq. (7)) and raises ``NotImplementedError`` when no rule is registered; ``"auto"``
            is analytic when registered, else sampled.

    Both variants are unbiased for the ELBO; the analytic-KL one has no KL sampling noise. Samples are
    reparameterized when q supports ``rsample``.
    """
    _check_bound_arguments(posterior, prior)
    check_positive_int(num_samples, "num_samples")
    check_choice(kl, ("sampled", "analytic", "auto"), "kl")
    z, log_p_xCz = _sample_and_score(log_likelihood, posterior, num_samples)

    analytic = None
    if kl in ("analytic", "auto"):
        try:
            analytic = kl_divergence(posterior, prior)
        except NotImplementedError:
            if kl == "analytic":
                raise NotImplementedError(
                    f"no analytic KL is registered for ({describe_distribution(posterior)}, "
                    f"{describe_distribution(prior)}); use kl='sampled' or kl='auto'"
                ) from None
    batch_shape = log_p_xCz.shape[1:]
    if analytic is not None:
        per_sample = log_p_xCz - analytic  # log p(x|z_k) - KL(q || p)
        kl_value = analytic.expand(batch_shape)
    else:
        log_q_zCx = posterior.log_prob(z)  # log q(z_k|x)
        log_pz = prior.log_prob(z)  # log p(z_k)
        per_sample = log_p_xCz + log_pz - log_q_zCx  # log w_k
        kl_value = (log_q_zCx - log_pz).mean(0)
    standard_error = mean_and_standard_error(per_sample).standard_error if num_samples >= 2 else None
    return ELBOEstimate(
        elbo=per_sample.mean(0),
        reconstruction=log_p_xCz.mean(0),
        kl=kl_value,
        standard_error=standard_error,
    )


def log_importance_weights(
    log_likelihood: LogLikelihood, posterior: Distribution, prior: Distribution, *, num_samples: int
) -> Tensor:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x); shape (K, *batch)."""
    _check_bound_arguments(posterior, prior)
    check_positive_int(num_samples, "num_samples")
    return _log_weights(log_likelihood, posterior, prior, num_samples)


def iwae_bound(
    log_likelihood: LogLikelihood, posterior: Distribution, prior: Distribution, *, num_samples: int
) -> Tensor:
    """IWAE-K = log (1/K) sum_k w_k = logsumexp_k log w_k - log K (Burda et al. 2016, eq. (8)), per example.

    A single draw of the bound: its expectation is <= log p(x), non-decreasing in K and equal to the ELBO at K = 1.
    """
    _check_bound_arguments(posterior, prior)
    check_positive_int(num_samples, "num_samples")
    log_weights = _log_weights(log_likelihood, posterior, prior, num_samples)
    return torch.logsumexp(log_weights, dim=0) - math.log(num_samples)


def log_marginal_likelihood(
    log_likelihood: LogLikelihood,
    posterior: Distribution,
    prior: Distribution,
    *,
    num_samples: int = 1000,
    chunk_size: int = 100,
) -> MonteCarloEstimate:
    """Importance-sampling estimate of log p(x) with q(z|x) as proposal, for evaluation (no gradients).

    log p^(x) = log (1/K) sum_k w_k, streamed over chunks of ``chunk_size`` samples (memory independent of K). This
    is IWAE-K with a large K: biased downward by Jensen, bias ~ Var(w) / (2 K p(x)^2) -> 0.

    ``standard_error`` is the delta-method standard error of log p^(x): sd(w) / (sqrt(K) mean(w)), computed in log
    space from logsumexp(log w) and logsumexp(2 log w). It is only as reliable as the weights' variance estimate,
    which for a heavy-tailed weight distribution (a poor proposal) is itself too small.
    """
    _check_bound_arguments(posterior, prior)
    check_positive_int(num_samples, "num_samples", minimum=2)
    check_positive_int(chunk_size, "chunk_size")
    log_sum_weights = None  # log sum_k w_k
    log_sum_squared_weights = None  # log sum_k w_k^2
    with torch.no_grad():
        for start in range(0, num_samples, chunk_size):
            count = min(chunk_size, num_samples - start)
            log_weights = _log_weights(log_likelihood, posterior, prior, count)
            chunk_sum = torch.logsumexp(log_weights, dim=0)
            chunk_squared_sum = torch.logsumexp(2.0 * log_weights, dim=0)
            if log_sum_weights is None:
                log_sum_weights, log_sum_squared_weights = chunk_sum, chunk_squared_sum
            else:
                log_sum_weights = torch.logaddexp(log_sum_weights, chunk_sum)
                log_sum_squared_weights = torch.logaddexp(log_sum_squared_weights, chunk_squared_sum)
    value = log_sum_weights - math.log(num_samples)
    # mean(w^2) / mean(w)^2 = K * sum w^2 / (sum w)^2, exp of a non-positive number plus log K.
    second_moment_ratio = torch.exp(math.log(num_samples) + log_sum_squared_weights - 2.0 * log_sum_weights)
    relative_variance = (second_moment_ratio - 1.0).clamp(min=0.0) * num_samples / (num_samples - 1)
    standard_error = torch.sqrt(relative_variance / num_samples)
    return MonteCarloEstimate(value, standard_error)


def _check_bound_arguments(posterior: Distribution, prior: Distribution) -> None:
    check_distribution(posterior, "posterior")
    check_distribution(prior, "prior")
    check_matching_event_shapes(posterior, prior, "posterior", "prior")


def _sample_and_score(
    log_likelihood: LogLikelihood, posterior: Distribution, num_samples: int
) -> tuple[Tensor, Tensor]:
    z = posterior.rsample((num_samples,)) if posterior.has_rsample else posterior.sample((num_samples,))
    log_p_xCz = log_likelihood(z)
    expected_shape = (num_samples,) + tuple(posterior.batch_shape)
    if not isinstance(log_p_xCz, Tensor) or tuple(log_p_xCz.shape) != expected_shape:
        got = tuple(log_p_xCz.shape) if isinstance(log_p_xCz, Tensor) else type(log_p_xCz).__name__
        raise ValueError(
            f"argument 'log_likelihood' must map z of shape {tuple(z.shape)} to log p(x|z) of shape "
            f"{expected_shape} (samples x batch); got {got}"
        )
    nan_count = int(torch.isnan(log_p_xCz).sum())
    if nan_count:
        raise ValueError(f"argument 'log_likelihood' returned {nan_count} NaN values")
    # -inf is a likelihood of 0 (allowed: the bounds handle it); +inf would make every bound +inf
    positive_inf_count = int(torch.isposinf(log_p_xCz).sum())
    if positive_inf_count:
        raise ValueError(
            f"argument 'log_likelihood' returned {positive_inf_count} values of +inf (log p(x|z) must be finite or "
            "-inf)"
        )
    return z, log_p_xCz


def _log_weights(
    log_likelihood: LogLikelihood, posterior: Distribution, prior: Distribution, num_samples: int
) -> Tensor:
    z, log_p_xCz = _sample_and_score(log_likelihood, posterior, num_samples)
    return log_p_xCz + prior.log_prob(z) - posterior.log_prob(z)  # log p(x|z) + log p(z) - log q(z|x)
