"""The synthetic encoder outputs an audit feeds to a loss function, and the exact values its terms should estimate.

Encoder outputs. A data set of N points from the linear-Gaussian model of :mod:`.testbeds` (p(z) = N(0, I_D),
p(x|z) = N(W z + b, s^2 I_P) with P = 2 D and W, b drawn from a seed), encoded by the best mean-field Gaussian
encoder: q(z|x_n) = N(m_n, diag v) with the exact posterior mean m_n = Sigma W^T (x_n - b) / s^2 and the mean-field
variances v_j = 1 / Lambda_jj of the posterior precision Lambda = I + W^T W / s^2 (the minimiser of
KL(q || p(z|x)) over diagonal Gaussians), each point's log-variances then spread by U(-1/2, 1/2) so that the widths
differ between points as a trained encoder's do. The posterior means are correlated across dimensions (their covariance is
I - Sigma), so the aggregate posterior has a non-zero total correlation. ``width`` is the mean posterior standard
deviation (1/D) sum_j v_j^(1/2) before the spread, in units of the prior's: the noise scale s is solved for it (the map s -> width is
increasing), so narrow posteriors (width 0.1: the data pin z down, I(x; z) near log N) and wide ones (0.7: z is
mostly prior noise) are reached in any dimension.

Exact values. For the empirical aggregate posterior q(z) = (1/N) sum_n q(z|x_n) of these outputs,
:func:`.exact_decomposition.exact_kl_decomposition` gives the data-set level mutual information, total correlation,
dimension-wise KL and average KL (with Monte-Carlo standard errors of its outer average only). Per draw
z_n ~ q(z|x_n), :func:`.minibatch_decomposition.minibatch_kl_terms` with the whole data set as the batch (M = N, all
weights 1/N) gives the exact log q(z_n) and log q(z_nj); those are the per-example references an audit pairs the
loss function's values with, on the same draws (:class:`ExactPass`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Normal, kl_divergence

from .decomposition import KLDecomposition
from .exact_decomposition import exact_kl_decomposition
from .minibatch_decomposition import minibatch_kl_terms
from .testbeds import LinearGaussianModel

__all__ = ["AuditSetting", "ExactPass", "SyntheticEncoderOutputs", "exact_pass", "synthetic_encoder_outputs"]

# The per-example quantities with an exact reference: the four log densities and the four terms built from them.
LOG_DENSITIES = ("log_q_zCx", "log_qz", "log_prod_qzi", "log_pz")
TERMS = ("mutual_information", "total_correlation", "dimensionwise_kl", "kl")
QUANTITIES = TERMS + LOG_DENSITIES
OBSERVED_PER_LATENT = 2  # P = 2 D observed dimensions
WIDTH_SPREAD = 0.5  # per-point log-variances: the mean-field value + U(-1/2, 1/2)


@dataclass(frozen=True)
class AuditSetting:
    """One synthetic data set: N points, D latent dimensions, mean posterior standard deviation ``width``."""

    dataset_size: int
    latent_dim: int
    width: float

    def __post_init__(self) -> None:
        if self.dataset_size < 2:
            raise ValueError(f"dataset_size must be at least 2; got {self.dataset_size} in argument 'dataset_sizes'")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1; got {self.latent_dim} in argument 'latent_dims'")
        if not 0.0 < self.width < 1.0:
            raise ValueError(
                f"width (mean posterior standard deviation, in prior units) must lie in (0, 1); got {self.width} "
                "in argument 'widths'"
            )

    @property
    def label(self) -> str:
        return f"N={self.dataset_size} D={self.latent_dim} width={self.width:g}"


@dataclass(frozen=True)
class SyntheticEncoderOutputs:
    """Posterior means and log-variances (N, D) in float64, the testbed they came from, and the exact decomposition
    of their aggregate posterior (``exact``)."""

    setting: AuditSetting
    mean: Tensor
    log_var: Tensor
    testbed: LinearGaussianModel
    exact: KLDecomposition


def _mean_field_std(weight: Tensor, noise_scale: float) -> Tensor:
    """sqrt(v_j) = Lambda_jj^(-1/2) with Lambda = I + W^T W / s^2 (only the diagonal is needed)."""
    return (1.0 + weight.square().sum(0) / noise_scale**2).rsqrt()


def _noise_scale_for_width(weight: Tensor, width: float) -> float:
    """The s with mean_j Lambda_jj(s)^(-1/2) = width, by bisection on log s (the map is increasing)."""
    low, high = math.log(1e-6), math.log(1e6)
    for _ in range(200):
        middle = 0.5 * (low + high)
        if float(_mean_field_std(weight, math.exp(middle)).mean()) < width:
            low = middle
        else:
            high = middle
    return math.exp(0.5 * (low + high))


def synthetic_encoder_outputs(setting: AuditSetting, *, seed: int = 0,
                              exact_samples_per_point: int = 4) -> SyntheticEncoderOutputs:
    """Encoder outputs for ``setting`` from the linear-Gaussian testbed (fixed by ``seed``), with the exact
    decomposition of their aggregate posterior from ``exact_samples_per_point`` * N outer draws."""
    generator = torch.Generator().manual_seed(seed)
    latent_dim, size = setting.latent_dim, setting.dataset_size
    draft = LinearGaussianModel.random(latent_dim, OBSERVED_PER_LATENT * latent_dim, noise_scale=1.0,
                                       generator=generator)
    testbed = dataclasses.replace(draft, noise_scale=_noise_scale_for_width(draft.weight, setting.width))
    x = testbed.sample(size, generator=generator)
    mean = testbed.posterior(x).mean
    log_var = 2.0 * torch.log(_mean_field_std(testbed.weight, testbed.noise_scale))
    # encoders give each point its own widths: spread the log-variances by up to a factor e^(+-1/2) in variance
    log_var = log_var + WIDTH_SPREAD * (2.0 * torch.rand(size, latent_dim, generator=generator, dtype=mean.dtype) - 1)
    exact = exact_kl_decomposition(mean, log_var, num_samples=exact_samples_per_point * size, generator=generator)
    return SyntheticEncoderOutputs(setting, mean, log_var, testbed, exact)


@dataclass(frozen=True)
class ExactPass:
    """One draw z_n ~ q(z|x_n) for every point of the data set (``z``, (N, D), float64) and the exact per-example
    values at those draws, each of shape (N,): the log densities of :data:`LOG_DENSITIES` and the terms of
    :data:`TERMS` (``kl`` is the closed-form KL(q(z|x_n) || p(z)); the other terms are the per-example differences
    of log densities whose averages estimate the data-set level terms without bias)."""

    z: Tensor
    values: dict[str, Tensor]


def exact_pass(outputs: SyntheticEncoderOutputs, generator: torch.Generator) -> ExactPass:
    """Draw z_n ~ q(z|x_n) for all n and evaluate the exact aggregate posterior (the full mixture) at every draw."""
    mean, log_var = outputs.mean, outputs.log_var
    std = torch.exp(0.5 * log_var)
    z = mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
    with torch.no_grad():
        # the whole data set as one batch: every weight is 1/N and log q^ is the exact mixture
        full = minibatch_kl_terms(z, mean, log_var, outputs.setting.dataset_size, method="mss")
        closed_form_kl = kl_divergence(Normal(mean, std), Normal(torch.zeros_like(mean), torch.ones_like(std))).sum(-1)
    log_prod_qzi = full.log_qzi.sum(-1)
    values = {
        "log_q_zCx": full.log_q_zCx,
        "log_qz": full.log_qz,
        "log_prod_qzi": log_prod_qzi,
        "log_pz": full.log_pz,
        "mutual_information": full.log_q_zCx - full.log_qz,
        "total_correlation": full.log_qz - log_prod_qzi,
        "dimensionwise_kl": log_prod_qzi - full.log_pz,
        "kl": closed_form_kl,
    }
    return ExactPass(z, {name: value.detach() for name, value in values.items()})


def exact_value(outputs: SyntheticEncoderOutputs, quantity: str) -> tuple[float, float] | None:
    """The data-set level value of a term and its standard error from the exact decomposition (``None`` for the log
    densities, whose data-set level value the audit takes from its own passes)."""
    exact = outputs.exact
    if quantity == "kl":
        return float(exact.total), 0.0
    if quantity in ("mutual_information", "total_correlation", "dimensionwise_kl"):
        return float(getattr(exact, quantity)), float(getattr(exact, f"{quantity}_standard_error"))
    return None
