"""The variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", ICLR).

Generative model p(z) = N(0, I), p(x | z) (Bernoulli, categorical or Gaussian per element); inference model
q(z | x) = N(mu(x), diag sigma^2(x)). For each x,

    log p(x) >= ELBO(x) = E_{q(z|x)} log p(x | z) - KL(q(z | x) || p(z)),

estimated with one reparameterised draw z = mu + sigma * eps for the reconstruction term and the closed-form
Gaussian KL (their estimator B). Terms: ``reconstruction`` = E_q log p(x|z), ``kl_z`` = KL(q(z|x) || p(z)),
``elbo`` = reconstruction - kl_z, ``objective`` = the ELBO (the plain VAE optimises its bound).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch.distributions import Distribution, Independent

from . import terms as T
from .base import VariationalModel, standard_normal
from .data.core import Batch, DataSpec
from .networks import Decoder, GaussianEncoder


class VAE(VariationalModel):
    TERM_NAMES = ("reconstruction", "kl_z", "elbo", "objective")
    LATENT_NAMES = ("z",)
    derivation = "vae"
    reference = "Kingma & Welling 2014, Auto-Encoding Variational Bayes (ICLR)"

    def __init__(self, spec: DataSpec, *, latent_dim: int = 10, hidden_dim: int = 256, num_hidden_layers: int = 2,
                 architecture: str = "auto", **schedule) -> None:
        # ``schedule``: kl_warmup_epochs / free_bits, passed on by subclasses that take them (the plain VAE does not)
        super().__init__(spec, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers, architecture=architecture,
                         **schedule)
        self.latent_dim = latent_dim
        self.encoder = GaussianEncoder(spec.event_shape, latent_dim, **self.network_options)
        self.decoder = Decoder(latent_dim, spec.event_shape, self.likelihood.outputs_per_element,
                               **self.network_options)

    def prior(self, like: torch.Tensor) -> Independent:
        """p(z) = N(0, I)."""
        return standard_normal(self.latent_dim, like)

    def encode(self, batch: Batch) -> dict[str, Distribution]:
        return {"z": self.encoder(batch.x)}

    def vae_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]):
        """Per-example reconstruction and KL, with the posterior and the sample (shared by the VAE family)."""
        posterior = self.encoder(batch.x)
        z = self.sample("z", posterior, latent_samples)
        reconstruction = self.reconstruction(self.decoder(z), batch.x)
        kl_z = T.kl_divergence("kl_z", posterior, self.prior(z))
        return posterior, z, reconstruction, kl_z

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        _, _, reconstruction, kl_z = self.vae_terms(batch, latent_samples)
        elbo = reconstruction - kl_z
        return {
            "reconstruction": reconstruction.mean(),
            "kl_z": kl_z.mean(),
            "elbo": elbo.mean(),
            "objective": elbo.mean(),
        }
