"""CDVAE: a VAE with a class-dependent latent z_l, a class-free latent z_u and a class-free decoder.

Generative model p(x, z_l, z_u | c) = p(x | z_l, z_u) p(z_l | c) p(z_u), with a class-conditional prior
p(z_l | c) = N(m_c, I) (one mean per class, learned by default or fixed) and p(z_u) = N(0, I); the decoder never
sees the class, so everything it needs about c must pass through z_l. Inference model
q(z_l, z_u | x) = q(z_l | x) q(z_u | x). For each (x, c),

    log p(x | c) >= ELBO(x, c) = E_q log p(x | z_l, z_u) - KL(q(z_l | x) || p(z_l | c)) - KL(q(z_u | x) || p(z_u)).

``objective`` weights the two KLs by beta_l and beta_u (both 1 by default, when it equals the ELBO). The initial
class means are ``prior_mean_scale`` times the standard basis vectors when z_l has at least as many dimensions as
there are classes (well-separated, one axis per class), else draws of N(0, prior_mean_scale^2 I) from a fixed seed.
Terms: ``reconstruction``, ``kl_zl``, ``kl_zu``, ``elbo``, ``objective``.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from . import terms as T
from .base import VariationalModel, standard_normal
from .data.core import Batch, DataSpec
from .networks import Decoder, GaussianEncoder


class CDVAE(VariationalModel):
    TERM_NAMES = ("reconstruction", "kl_zl", "kl_zu", "elbo", "objective")
    LATENT_NAMES = ("zl", "zu")
    derivation = "cdvae"
    reference = "CDVAE (class-dependent / class-independent latents, class-free decoder), project seed"
    requires_labels = True

    def __init__(self, spec: DataSpec, *, zl_dim: int = 10, zu_dim: int = 10, learn_prior_means: bool = True,
                 prior_mean_scale: float = 3.0, beta_l: float = 1.0, beta_u: float = 1.0, kl_warmup_epochs: int = 0,
                 free_bits: float = 0.0, hidden_dim: int = 256, num_hidden_layers: int = 2,
                 architecture: str = "auto") -> None:
        super().__init__(spec, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers, architecture=architecture,
                         kl_warmup_epochs=kl_warmup_epochs, free_bits=free_bits)
        if beta_l < 0 or beta_u < 0:
            raise ValueError(f"beta_l and beta_u must be >= 0, got {beta_l}, {beta_u}")
        self.num_classes = int(spec.num_classes)
        self.zl_dim, self.zu_dim = zl_dim, zu_dim
        self.betas = (float(beta_l), float(beta_u))
        if zl_dim >= self.num_classes:
            means = prior_mean_scale * torch.eye(self.num_classes, zl_dim)
        else:
            means = prior_mean_scale * torch.randn(self.num_classes, zl_dim, generator=torch.Generator().manual_seed(0))
        if learn_prior_means:
            self.class_means = nn.Parameter(means)
        else:
            self.register_buffer("class_means", means)
        self.zl_encoder = GaussianEncoder(spec.event_shape, zl_dim, **self.network_options)
        self.zu_encoder = GaussianEncoder(spec.event_shape, zu_dim, **self.network_options)
        self.decoder = Decoder(zl_dim + zu_dim, spec.event_shape, self.likelihood.outputs_per_element,
                               **self.network_options)

    def zl_prior(self, y: torch.Tensor) -> Independent:
        """p(z_l | c) = N(m_c, I)."""
        loc = self.class_means[y]
        return Independent(Normal(loc, torch.ones_like(loc), validate_args=False), 1)  # NaNs are named downstream

    def encode(self, batch: Batch) -> dict[str, Distribution]:
        return {"zl": self.zl_encoder(batch.x), "zu": self.zu_encoder(batch.x)}

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        posteriors = self.encode(batch)
        zl = self.sample("zl", posteriors["zl"], latent_samples)
        zu = self.sample("zu", posteriors["zu"], latent_samples)
        reconstruction = self.reconstruction(self.decoder(torch.cat([zl, zu], dim=-1)), batch.x)
        zl_prior, zu_prior = self.zl_prior(batch.y), standard_normal(self.zu_dim, zu)
        kl_zl = T.kl_divergence("kl_zl", posteriors["zl"], zl_prior)
        kl_zu = T.kl_divergence("kl_zu", posteriors["zu"], zu_prior)
        beta_l, beta_u = self.betas
        charged = (beta_l * self.objective_kl(posteriors["zl"], zl_prior, kl_zl)
                   + beta_u * self.objective_kl(posteriors["zu"], zu_prior, kl_zu))
        return {
            "reconstruction": reconstruction.mean(),
            "kl_zl": kl_zl.mean(),
            "kl_zu": kl_zu.mean(),
            "elbo": (reconstruction - kl_zl - kl_zu).mean(),
            "objective": (reconstruction - self.kl_scale * charged).mean(),
        }
