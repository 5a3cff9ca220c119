"""InfoVAE (Zhao, Song & Ermon 2019, "InfoVAE: Balancing Learning and Inference in Variational Autoencoders",
AAAI), in its MMD form (the MMD-VAE) and its KL form.

Same model as the VAE. The objective (their eq. 6, written as a maximisation) is

    objective = E_{p_D} E_{q(z|x)} log p(x | z) - (1 - alpha) E_{p_D} KL(q(z | x) || p(z))
                - (alpha + lambda - 1) D(q(z) || p(z)),

with q(z) the aggregate posterior and D either

* ``divergence="mmd"``: the maximum mean discrepancy MMD^2(q(z), p(z)), estimated by the unbiased U-statistic
  between the batch's samples z_i ~ q(z|x_i) and as many fresh draws from p(z) (term ``mmd``; the kernel is
  Gaussian by default, see :func:`elbocheck.models.terms.kernel_matrix`), or
* ``divergence="kl"``: KL(q(z) || p(z)) = E_{q(z)} [log q(z) - log p(z)], estimated per example as
  log q^(z_i) - log p(z_i) with the minibatch (MWS or MSS) estimate q^ of the aggregate posterior (term
  ``aggregate_kl``).

The ELBO E_q log p(x|z) - KL(q(z|x) || p(z)) is reported beside it. Defaults: alpha = 0 and lambda = 1000 for the
MMD form (the MMD is small in nats, so it needs a large weight to matter); alpha = 0 and lambda = 2 for the KL form
(one extra unit of weight on the aggregate KL). These defaults are this project's choice; set them explicitly to
reproduce a paper configuration (alpha = 1 removes the per-example KL, the "MMD-VAE" of the paper's experiments).
Terms: ``reconstruction``, ``kl_z``, ``mmd`` or ``aggregate_kl``, ``elbo``, ``objective``.
"""

from __future__ import annotations

from typing import Mapping

import torch

from . import terms as T
from .data.core import Batch, DataSpec
from .vae import VAE

DIVERGENCES = ("mmd", "kl")
DEFAULT_LAMBDA = {"mmd": 1000.0, "kl": 2.0}


class InfoVAE(VAE):
    TERM_NAMES = ("reconstruction", "kl_z", "mmd", "elbo", "objective")
    TERM_NAMES_BY_DIVERGENCE = {
        "mmd": ("reconstruction", "kl_z", "mmd", "elbo", "objective"),
        "kl": ("reconstruction", "kl_z", "aggregate_kl", "elbo", "objective"),
    }
    derivation = "infovae"
    reference = "Zhao, Song & Ermon 2019, InfoVAE (AAAI)"
    min_batch_size = 2
    min_batch_size_reason = "its MMD (a U-statistic) and its minibatch estimate of q(z) need two or more examples"

    def __init__(self, spec: DataSpec, *, divergence: str = "mmd", alpha: float = 0.0,
                 lambda_: float | None = None, kernel: str = "rbf", estimator: str = "mws", latent_dim: int = 10,
                 hidden_dim: int = 256, num_hidden_layers: int = 2, architecture: str = "auto") -> None:
        super().__init__(spec, latent_dim=latent_dim, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers,
                         architecture=architecture)
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence: unknown {divergence!r}; valid choices: {', '.join(DIVERGENCES)}")
        if kernel not in T.MMD_KERNELS:
            raise ValueError(f"kernel: unknown {kernel!r}; valid choices: {', '.join(T.MMD_KERNELS)}")
        if estimator not in ("mws", "mss"):
            raise ValueError(f"estimator: unknown {estimator!r}; valid choices: mws, mss")
        self.divergence = divergence
        self.alpha = float(alpha)
        self.lambda_ = float(DEFAULT_LAMBDA[divergence] if lambda_ is None else lambda_)
        self.kernel = kernel
        self.estimator = estimator

    @property
    def term_names(self) -> tuple[str, ...]:
        return self.TERM_NAMES_BY_DIVERGENCE[self.divergence]

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        posterior, z, reconstruction, kl_z = self.vae_terms(batch, latent_samples)
        if self.divergence == "mmd":
            prior_z = latent_samples.get("prior_z")
            if prior_z is None:
                prior_z = self.prior(z).sample((z.shape[0],))
            divergence_name = "mmd"
            divergence = T.mmd_squared(z, prior_z, self.kernel)
        else:
            terms = T.minibatch_kl_terms("aggregate_kl", z, posterior, self.source_size(batch), self.estimator)
            divergence_name = "aggregate_kl"
            divergence = (terms.log_qz - terms.log_pz).mean()
        objective = (reconstruction - (1.0 - self.alpha) * kl_z).mean() - (self.alpha + self.lambda_ - 1.0) * divergence
        return {
            "reconstruction": reconstruction.mean(),
            "kl_z": kl_z.mean(),
            divergence_name: divergence,
            "elbo": (reconstruction - kl_z).mean(),
            "objective": objective,
        }
