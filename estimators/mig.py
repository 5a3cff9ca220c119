"""Mutual information gap (MIG; Chen et al. 2018, Sec. 5), computed from posterior samples as the original defines it.

For K discrete ground-truth factors v_k and D latent dimensions z_j,

    MIG = (1/K) sum_k (1 / H(v_k)) ( I(z_{j(k)}; v_k) - max_{j != j(k)} I(z_j; v_k) ),   j(k) = argmax_j I(z_j; v_k),

with, over the empirical distribution of the data set and the encoder's Gaussian posteriors,

    I(z_j; v_k) = E_{q(z_j, v_k)}[ log q(z_j|v_k) - log q(z_j) ],
    q(z_j)      = (1/N) sum_n q(z_j|x_n),   q(z_j|v_k = c) = (1/N_c) sum_{n: v_nk = c} q(z_j|x_n).

As in Chen et al. (their ``estimate_entropies`` / MI metric), z_j is *sampled* from q(z_j|x) and the one-dimensional
mixtures are evaluated exactly; no histogram discretization of the means (that variant is disentanglement_lib's).
H(v_k) is the entropy of the empirical factor distribution. Each I(z_j; v_k) is the plug-in estimator of
:mod:`.label_information` applied to one latent dimension and one factor, with the same upward bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._validation import check_labels, check_positive_int
from .aggregate_posterior import DEFAULT_MAX_CHUNK_ELEMENTS, mixture_log_sum
from .base import check_posterior_parameters
from .label_information import class_conditional_log_ratio, plug_in_entropy, sample_posteriors

__all__ = ["MIGResult", "mutual_information_gap"]


@dataclass(frozen=True)
class MIGResult:
    """``mig``: the score in [0, 1] (up to estimation error); ``gap_per_factor``: the normalized gap of each factor,
    shape (K,); ``mutual_information``: I(z_j; v_k) in nats, shape (D, K), with its Monte-Carlo standard error;
    ``factor_entropy``: H(v_k), shape (K,)."""

    mig: Tensor
    gap_per_factor: Tensor
    mutual_information: Tensor
    mutual_information_standard_error: Tensor
    factor_entropy: Tensor
    num_samples: int


def mutual_information_gap(
    mean: Tensor,
    log_var: Tensor,
    factors: Tensor,
    *,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
    max_chunk_elements: int = DEFAULT_MAX_CHUNK_ELEMENTS,
) -> MIGResult:
    """MIG of the latent code with posteriors N(mean_n, diag exp(log_var_n)) with respect to discrete factors.

    Args:
        mean, log_var: posterior parameters of all N data points, shape (N, D), D >= 2.
        factors: integer factor values, shape (N, K) (or (N,) for one factor); each factor must take at least two
            values (a constant factor has H(v_k) = 0 and no normalized gap).
        num_samples: ``None`` draws one z per data point; an int S draws S (point, z) pairs with points uniform.
        generator: random generator on the device of ``mean``.
    """
    check_posterior_parameters(mean, log_var)
    num_points, latent_dim = mean.shape
    if latent_dim < 2:
        raise ValueError(
            f"argument 'mean' must have at least 2 latent dimensions for a gap; got shape {tuple(mean.shape)}"
        )
    check_labels(factors, num_points, "factors")
    if factors.dim() == 1:
        factors = factors.unsqueeze(-1)
    if factors.dim() != 2:
        raise ValueError(f"argument 'factors' must have shape (N, K); got {tuple(factors.shape)}")
    factors = factors.to(mean.device)
    factor_entropy = torch.stack([plug_in_entropy(factors[:, k]) for k in range(factors.shape[1])])
    constant = torch.nonzero(factor_entropy == 0, as_tuple=True)[0]
    if constant.numel():
        raise ValueError(
            f"argument 'factors' has constant column(s) {constant.tolist()}: H(v_k) = 0, no normalized gap"
        )
    if num_samples is not None:
        check_positive_int(num_samples, "num_samples", minimum=2)
    check_positive_int(max_chunk_elements, "max_chunk_elements")

    with torch.no_grad():
        z, sample_points = sample_posteriors(mean, log_var, num_samples, generator)
        # log sum_n q(z_j|x_n) over all components does not depend on the factor: compute it once.
        _, log_sum_all = mixture_log_sum(z, mean, log_var, max_chunk_elements=max_chunk_elements, joint=False)
        estimates, standard_errors = [], []
        for k in range(factors.shape[1]):
            sample_factor = factors[:, k] if sample_points is None else factors[sample_points, k]
            log_ratio = class_conditional_log_ratio(  # log q(z_j|v_k) - log q(z_j), (S, D)
                z,
                sample_factor,
                mean,
                log_var,
                factors[:, k],
                per_dimension=True,
                max_chunk_elements=max_chunk_elements,
                log_sum_all=log_sum_all,
            )
            estimates.append(log_ratio.mean(0))
            standard_errors.append(log_ratio.std(0, unbiased=True) / math.sqrt(log_ratio.shape[0]))
        mutual_information = torch.stack(estimates, dim=1)  # (D, K)
        factor_entropy = factor_entropy.to(mean.dtype)
        top_two = torch.topk(mutual_information, k=2, dim=0).values  # (2, K)
        gap_per_factor = (top_two[0] - top_two[1]) / factor_entropy
        return MIGResult(
            mig=gap_per_factor.mean(),
            gap_per_factor=gap_per_factor,
            mutual_information=mutual_information,
            mutual_information_standard_error=torch.stack(standard_errors, dim=1),
            factor_entropy=factor_entropy,
            num_samples=int(z.shape[0]),
        )
