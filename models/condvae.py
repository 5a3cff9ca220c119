"""The conditional VAE (Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep Conditional
Generative Models", NeurIPS), here with a label y as the condition and a standard-normal prior.

Generative model p(z) = N(0, I), p(x | z, y); inference model q(z | x, y). For each (x, y),

    log p(x | y) >= ELBO(x, y) = E_{q(z|x,y)} log p(x | z, y) - KL(q(z | x, y) || p(z)).

The label enters encoder and decoder as a one-hot vector. Terms: ``reconstruction``, ``kl_z``, ``elbo``,
``objective`` (= the ELBO; with ``kl_warmup_epochs`` / ``free_bits`` the KL is warmed up / floored, see :mod:`.base`).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch.distributions import Distribution

from . import terms as T
from .base import VariationalModel, one_hot, standard_normal
from .data.core import Batch, DataSpec
from .networks import Decoder, GaussianEncoder


class CondVAE(VariationalModel):
    TERM_NAMES = ("reconstruction", "kl_z", "elbo", "objective")
    LATENT_NAMES = ("z",)
    derivation = "condvae"
    reference = "Sohn, Lee & Yan 2015, Conditional VAE (NeurIPS)"
    requires_labels = True

    def __init__(self, spec: DataSpec, *, latent_dim: int = 10, kl_warmup_epochs: int = 0, free_bits: float = 0.0,
                 hidden_dim: int = 256, num_hidden_layers: int = 2, architecture: str = "auto") -> None:
        super().__init__(spec, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers, architecture=architecture,
                         kl_warmup_epochs=kl_warmup_epochs, free_bits=free_bits)
        self.latent_dim = latent_dim
        self.num_classes = int(spec.num_classes)
        self.encoder = GaussianEncoder(spec.event_shape, latent_dim, condition_dim=self.num_classes,
                                       **self.network_options)
        self.decoder = Decoder(latent_dim, spec.event_shape, self.likelihood.outputs_per_element,
                               condition_dim=self.num_classes, **self.network_options)

    def encode(self, batch: Batch) -> dict[str, Distribution]:
        return {"z": self.encoder(batch.x, one_hot(batch.y, self.num_classes))}

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        label = one_hot(batch.y, self.num_classes)
        posterior = self.encoder(batch.x, label)
        z = self.sample("z", posterior, latent_samples)
        reconstruction = self.reconstruction(self.decoder(z, label), batch.x)
        prior = standard_normal(self.latent_dim, z)
        kl_z = T.kl_divergence("kl_z", posterior, prior)
        elbo = reconstruction - kl_z
        objective = reconstruction - self.kl_scale * self.objective_kl(posterior, prior, kl_z)
        return {"reconstruction": reconstruction.mean(), "kl_z": kl_z.mean(), "elbo": elbo.mean(),
                "objective": objective.mean()}
