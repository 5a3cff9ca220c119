"""beta-VAE (Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework", ICLR).

Same model as the VAE; the objective weights the KL by beta (beta > 1 presses towards a factorised code):

    objective(x) = E_{q(z|x)} log p(x | z) - beta * KL(q(z | x) || p(z)),
    ELBO(x)      = E_{q(z|x)} log p(x | z) -        KL(q(z | x) || p(z))   (reported beside it; equal at beta = 1).

Default beta = 4 (the value Higgins et al. report for dSprites). ``kl_warmup_epochs`` / ``free_bits`` warm up /
floor the weighted KL in the objective (see :mod:`.base`).
"""

from __future__ import annotations

from typing import Mapping

import torch

from .data.core import Batch, DataSpec
from .vae import VAE


class BetaVAE(VAE):
    derivation = "beta_vae"
    reference = "Higgins et al. 2017, beta-VAE (ICLR)"

    def __init__(self, spec: DataSpec, *, beta: float = 4.0, latent_dim: int = 10, kl_warmup_epochs: int = 0,
                 free_bits: float = 0.0, hidden_dim: int = 256, num_hidden_layers: int = 2,
                 architecture: str = "auto") -> None:
        super().__init__(spec, latent_dim=latent_dim, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers,
                         architecture=architecture, kl_warmup_epochs=kl_warmup_epochs, free_bits=free_bits)
        if beta < 0:
            raise ValueError(f"beta: must be >= 0, got {beta}")
        self.beta = float(beta)

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        posterior, z, reconstruction, kl_z = self.vae_terms(batch, latent_samples)
        charged = self.objective_kl(posterior, self.prior(z), kl_z)
        return {
            "reconstruction": reconstruction.mean(),
            "kl_z": kl_z.mean(),
            "elbo": (reconstruction - kl_z).mean(),
            "objective": (reconstruction - self.kl_scale * self.beta * charged).mean(),
        }
