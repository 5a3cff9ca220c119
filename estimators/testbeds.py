"""Models in which every quantity the estimators target is known exactly.

Linear-Gaussian model (probabilistic PCA; Tipping & Bishop 1999):

    p(z) = N(0, I_D),   p(x|z) = N(W z + b, s^2 I_P),   W in R^{P x D}.

Then, exactly,

    p(x)   = N(x; b, W W^T + s^2 I_P),
    p(z|x) = N(z; Sigma W^T (x - b) / s^2, Sigma),   Sigma = (I_D + W^T W / s^2)^-1,

and for any Gaussian q(z) = N(m, C) the expected log-likelihood is

    E_q log p(x|z) = -P/2 log(2 pi s^2) - (||x - W m - b||^2 + tr(W C W^T)) / (2 s^2).

So log p(x), the ELBO gap KL(q || p(z|x)) and the IWAE limit can be checked against closed forms.

Encoder outputs for the KL decomposition (:func:`gaussian_posteriors`): N posteriors N(mu_n, v I) with means
mu_n ~ N(0, I); the exact decomposition of their mixture (:func:`.exact_decomposition.exact_kl_decomposition`) is the
reference the minibatch estimators are measured against (README, "Minibatch bias": v = 0.01 "tight", 0.5 "broad").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal

from ._validation import check_finite, check_ndim, check_positive_int

__all__ = ["LinearGaussianModel", "gaussian_posteriors"]


def gaussian_posteriors(
    num_points: int,
    latent_dim: int,
    variance: float,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """(mean, log_var), each (num_points, latent_dim): means drawn from N(0, I) with ``seed``, every posterior
    variance ``variance``."""
    check_positive_int(num_points, "num_points")
    check_positive_int(latent_dim, "latent_dim")
    if not (math.isfinite(variance) and variance > 0):
        raise ValueError(f"variance must be positive and finite; got {variance} in argument 'variance'")
    generator = torch.Generator().manual_seed(seed)
    mean = torch.randn(num_points, latent_dim, generator=generator, dtype=dtype)
    return mean, torch.full_like(mean, math.log(variance))


@dataclass(frozen=True)
class LinearGaussianModel:
    """p(z) = N(0, I), p(x|z) = N(weight z + bias, noise_scale^2 I). Tensors share one dtype and device."""

    weight: Tensor  # (P, D)
    bias: Tensor  # (P,)
    noise_scale: float

    def __post_init__(self) -> None:
        check_ndim(self.weight, 2, "weight", "observed x latent dimensions")
        check_finite(self.weight, "weight")
        check_finite(self.bias, "bias")
        if self.bias.shape != self.weight.shape[:1]:
            raise ValueError(
                f"argument 'bias' must have shape {tuple(self.weight.shape[:1])}; got {tuple(self.bias.shape)}"
            )
        if not (math.isfinite(self.noise_scale) and self.noise_scale > 0):
            raise ValueError(f"noise_scale must be positive; got {self.noise_scale} in argument 'noise_scale'")

    @classmethod
    def random(
        cls,
        latent_dim: int,
        observed_dim: int,
        *,
        noise_scale: float = 0.5,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> "LinearGaussianModel":
        check_positive_int(latent_dim, "latent_dim")
        check_positive_int(observed_dim, "observed_dim")
        weight = torch.randn(observed_dim, latent_dim, dtype=dtype, generator=generator).to(device)
        bias = torch.randn(observed_dim, dtype=dtype, generator=generator).to(device)
        return cls(weight, bias, noise_scale)

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[1]

    @property
    def observed_dim(self) -> int:
        return self.weight.shape[0]

    def prior(self) -> Distribution:
        zeros = self.weight.new_zeros(self.latent_dim)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def sample(self, num_samples: int, *, generator: torch.Generator | None = None) -> Tensor:
        """x ~ p(x), shape (num_samples, P)."""
        z = torch.randn(num_samples, self.latent_dim, dtype=self.weight.dtype, generator=generator).to(
            self.weight.device
        )
        noise = torch.randn(num_samples, self.observed_dim, dtype=self.weight.dtype, generator=generator)
        return z @ self.weight.T + self.bias + self.noise_scale * noise.to(self.weight.device)

    def log_likelihood(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        """z of shape (K, batch, D) -> log p(x|z) of shape (K, batch), for x of shape (batch, P)."""

        def log_p_xCz(z: Tensor) -> Tensor:
            predicted = z @ self.weight.T + self.bias  # W z + b, (K, batch, P)
            return Normal(predicted, self.noise_scale).log_prob(x).sum(-1)

        return log_p_xCz

    def log_marginal_likelihood(self, x: Tensor) -> Tensor:
        """log p(x) = log N(x; b, W W^T + s^2 I), shape (batch,)."""
        covariance = self.weight @ self.weight.T + self.noise_scale**2 * torch.eye(
            self.observed_dim, dtype=self.weight.dtype, device=self.weight.device
        )
        return MultivariateNormal(self.bias, covariance_matrix=covariance).log_prob(x)

    def posterior(self, x: Tensor) -> MultivariateNormal:
        """p(z|x) = N(Sigma W^T (x - b) / s^2, Sigma) with Sigma = (I + W^T W / s^2)^-1; batch shape (batch,)."""
        precision = torch.eye(self.latent_dim, dtype=self.weight.dtype, device=self.weight.device) + (
            self.weight.T @ self.weight / self.noise_scale**2
        )
        covariance = torch.linalg.inv(precision)
        covariance = 0.5 * (covariance + covariance.T)  # symmetric to rounding, so the Cholesky factor exists
        mean = (x - self.bias) @ self.weight @ covariance / self.noise_scale**2  # Sigma symmetric
        return MultivariateNormal(mean, covariance_matrix=covariance.expand(x.shape[0], -1, -1))

    def expected_log_likelihood(self, x: Tensor, q_mean: Tensor, q_covariance: Tensor) -> Tensor:
        """E_{N(m, C)} log p(x|z) in closed form, shape (batch,); q_mean (batch, D), q_covariance (batch, D, D)."""
        residual = x - q_mean @ self.weight.T - self.bias  # x - W m - b
        trace = torch.einsum("pi,bij,pj->b", self.weight, q_covariance, self.weight)  # tr(W C W^T)
        return -0.5 * self.observed_dim * math.log(2 * math.pi * self.noise_scale**2) - (
            residual.square().sum(-1) + trace
        ) / (2 * self.noise_scale**2)
