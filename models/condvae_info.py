"""CondVAE-info: a conditional VAE whose code z is made uninformative about the label y by an adversary
(Creswell et al. 2017, "Conditional Autoencoders with Adversarial Information Factorization", arXiv:1711.05175).

Generative model p(z) = N(0, I), p(x | z, y); inference model q(z | x) (the encoder does not see y); adversary
r_psi(y | z), a classifier from z to y. With the adversary's cross-entropy A = E_{q(z|x)} [-log r_psi(y | z)],

    ELBO(x, y)         = E_{q(z|x)} log p(x | z, y) - KL(q(z | x) || p(z))           (a bound on log p(x | y))
    encoder/decoder:     max  ELBO(x, y) + rho * A      (fool the adversary: make y hard to read from z)
    adversary psi:       min  A

trained min-max with simultaneous gradient steps (each parameter group follows only its own loss). Creswell et al.
also train a GAN discriminator on the images; that image-quality term is not part of this model. Note that
maximising the cross-entropy is unbounded in principle (the encoder could make the adversary confidently wrong);
the adversary's own updates keep it in check in practice. Terms: ``reconstruction``, ``kl_z``, ``adversary`` (= A),
``elbo``, ``objective`` (= ELBO + rho * A; with ``kl_warmup_epochs`` / ``free_bits`` the KL is warmed up / floored,
see :mod:`.base`). Default rho = 1; rho = 0 trains the adversary but gives the encoder none of its gradient (the
x-only-encoder CondVAE, the control for the adversary).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.distributions import Distribution

from . import terms as T
from .base import VariationalModel, one_hot, standard_normal
from .data.core import Batch, DataSpec
from .networks import Classifier, Decoder, GaussianEncoder


class CondVAEInfo(VariationalModel):
    TERM_NAMES = ("reconstruction", "kl_z", "adversary", "elbo", "objective")
    LATENT_NAMES = ("z",)
    derivation = "condvae_info"
    reference = "Creswell et al. 2017, Conditional Autoencoders with Adversarial Information Factorization"
    requires_labels = True

    def __init__(self, spec: DataSpec, *, latent_dim: int = 10, adversary_weight: float = 1.0,
                 adversary_hidden_dim: int = 64, kl_warmup_epochs: int = 0, free_bits: float = 0.0,
                 hidden_dim: int = 256, num_hidden_layers: int = 2, architecture: str = "auto") -> None:
        super().__init__(spec, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers, architecture=architecture,
                         kl_warmup_epochs=kl_warmup_epochs, free_bits=free_bits)
        if adversary_weight < 0:
            raise ValueError(f"adversary_weight: must be >= 0, got {adversary_weight}")
        self.latent_dim = latent_dim
        self.num_classes = int(spec.num_classes)
        self.adversary_weight = float(adversary_weight)
        self.encoder = GaussianEncoder(spec.event_shape, latent_dim, **self.network_options)
        self.decoder = Decoder(latent_dim, spec.event_shape, self.likelihood.outputs_per_element,
                               condition_dim=self.num_classes, **self.network_options)
        self.adversary_net = Classifier(latent_dim, self.num_classes, hidden_dim=adversary_hidden_dim)

    def adversary_parameters(self) -> list[nn.Parameter]:
        return list(self.adversary_net.parameters())

    def encode(self, batch: Batch) -> dict[str, Distribution]:
        return {"z": self.encoder(batch.x)}

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        posterior = self.encoder(batch.x)
        z = self.sample("z", posterior, latent_samples)
        reconstruction = self.reconstruction(self.decoder(z, one_hot(batch.y, self.num_classes)), batch.x)
        prior = standard_normal(self.latent_dim, z)
        kl_z = T.kl_divergence("kl_z", posterior, prior)
        # One forward pass serves both players: the adversary's gradient is taken w.r.t. its own parameters only.
        adversary = nn.functional.cross_entropy(self.adversary_net(z), batch.y, reduction="none")
        elbo = reconstruction - kl_z
        return {
            "reconstruction": reconstruction.mean(),
            "kl_z": kl_z.mean(),
            "adversary": adversary.mean(),
            "elbo": elbo.mean(),
            "objective": (reconstruction - self.kl_scale * self.objective_kl(posterior, prior, kl_z)
                          + self.adversary_weight * adversary).mean(),
        }
