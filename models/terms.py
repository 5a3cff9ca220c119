"""The per-example terms the models report, computed with the verified estimators of :mod:`elbocheck.estimators`.

This module only adapts the models' objects (``Independent(Normal)`` posteriors, latent samples) to the estimators'
arguments and turns an estimator's complaint about non-finite inputs into a :class:`NonFiniteTermError` that names
the model term being computed. What the estimators do not provide is implemented here and says so.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch.distributions import Distribution, Independent, Normal

from elbocheck.estimators import kl_analytic_or_sampled
from elbocheck.estimators import minibatch_kl_terms as _minibatch_kl_terms

from .errors import NonFiniteTermError


@contextmanager
def term(name: str):
    """Re-raise an estimator's "must be finite" error as a :class:`NonFiniteTermError` naming term ``name``."""
    try:
        yield
    except ValueError as error:
        text = str(error)
        if "finite" in text or "NaN" in text:
            raise NonFiniteTermError(name, text) from error
        raise


def kl_divergence(name: str, q: Distribution, p: Distribution) -> torch.Tensor:
    """KL(q || p) per example: analytic where torch (or the estimators) register a rule, else one sampled draw."""
    with term(name):
        return kl_analytic_or_sampled(q, p, num_samples=1)


def posterior_parameters(posterior: Independent) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, log-variance), each (B, D), of a diagonal-Gaussian posterior ``Independent(Normal, 1)``."""
    base = posterior.base_dist
    if not isinstance(base, Normal):
        raise TypeError(f"posterior: expected Independent(Normal, 1), got {type(posterior).__name__}")
    return base.loc, 2.0 * torch.log(base.scale)


def minibatch_kl_terms(name: str, z: torch.Tensor, posterior: Independent, dataset_size: int, method: str):
    """Per-example log q(z|x), log q^(z), log q^(z_j), log p(z) at the batch's samples (MWS or MSS estimate of the
    aggregate posterior over a data set of ``dataset_size`` points; prior N(0, I)); see
    :func:`elbocheck.estimators.minibatch_decomposition.minibatch_kl_terms`."""
    mean, log_var = posterior_parameters(posterior)
    # The estimators require N >= M; a final partial batch never exceeds N, but a tiny test set might.
    with term(name):
        return _minibatch_kl_terms(z, mean, log_var, max(dataset_size, z.shape[0]), method=method)


# ---------------------------------------------------------------------------------------------------------------
# Maximum mean discrepancy. The estimators package has no MMD, so it is implemented here.
# ---------------------------------------------------------------------------------------------------------------

MMD_KERNELS = ("rbf", "imq")


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kernel: str) -> torch.Tensor:
    """k(a_i, b_j) for the Gaussian (``rbf``) kernel exp(-||a - b||^2 / (2 D)) or the inverse multiquadric (``imq``)
    kernel 2D / (2D + ||a - b||^2) (Tolstikhin et al. 2018), D the dimension; the scale 2D is the expected squared
    distance between two draws of N(0, I_D), so either kernel is informative at the prior's scale."""
    if kernel not in MMD_KERNELS:
        raise ValueError(f"kernel: unknown {kernel!r}; valid choices: {', '.join(MMD_KERNELS)}")
    dim = a.shape[-1]
    squared_distance = (a.unsqueeze(1) - b.unsqueeze(0)).square().sum(-1)
    if kernel == "rbf":
        return torch.exp(-squared_distance / (2.0 * dim))
    return (2.0 * dim) / (2.0 * dim + squared_distance)


def mmd_squared(samples_q: torch.Tensor, samples_p: torch.Tensor, kernel: str = "rbf") -> torch.Tensor:
    """The unbiased (U-statistic) estimate of MMD^2(q, p) from n draws of q and m draws of p (Gretton et al. 2012):

        1/(n(n-1)) sum_{i != j} k(q_i, q_j) + 1/(m(m-1)) sum_{i != j} k(p_i, p_j) - 2/(n m) sum_{i,j} k(q_i, p_j).

    Unbiased, so it can be slightly negative when q = p. Needs n, m >= 2.
    """
    n, m = samples_q.shape[0], samples_p.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd: need at least 2 samples from each distribution, got {n} and {m}")
    k_qq = kernel_matrix(samples_q, samples_q, kernel)
    k_pp = kernel_matrix(samples_p, samples_p, kernel)
    k_qp = kernel_matrix(samples_q, samples_p, kernel)
    within_q = (k_qq.sum() - k_qq.diagonal().sum()) / (n * (n - 1))
    within_p = (k_pp.sum() - k_pp.diagonal().sum()) / (m * (m - 1))
    return within_q + within_p - 2.0 * k_qp.mean()
