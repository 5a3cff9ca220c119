"""beta-TCVAE (Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of Disentanglement in Variational
Autoencoders", NeurIPS).

Same model as the VAE. With x uniform over the N training points, the average KL term splits into
(Hoffman & Johnson 2016; Chen et al. eq. 2)

    E_{p(x)} KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || prod_j q(z_j)) + sum_j KL(q(z_j) || p(z_j))
                                = mutual information + total correlation + dimension-wise KL,

and the objective weights the three separately:

    objective = E_q log p(x | z) - alpha * I_q(x; z) - beta * TC - gamma * dimension-wise KL,
    ELBO      = E_q log p(x | z) - KL(q(z | x) || p(z))      (reported beside it; the objective at alpha=beta=gamma=1
                                                             up to the estimator's bias).

The aggregate posterior q(z) = (1/N) sum_n q(z|x_n) is estimated on each minibatch by minibatch weighted sampling
(``estimator="mws"``), minibatch stratified sampling (``"mss"``) or MSS with the jackknife correction of its log's
bias (``"mss-jackknife"``: the least biased, batches of 3 or more), from
:func:`elbocheck.estimators.minibatch_decomposition.minibatch_kl_terms`. Per example i with z_i ~ q(z|x_i):
MI_i = log q(z_i|x_i) - log q^(z_i), TC_i = log q^(z_i) - sum_j log q^(z_ij), dimKL_i = sum_j log q^(z_ij) -
log p(z_i); they sum to the single-sample KL estimate log q(z_i|x_i) - log p(z_i), while ``kl_z`` is the closed-form
KL. Defaults alpha = gamma = 1, beta = 6, estimator = "mws" (Chen et al.'s main setting).
Terms: ``reconstruction``, ``kl_z``, ``mutual_information``, ``total_correlation``, ``dimensionwise_kl``,
``elbo``, ``objective``.
"""

from __future__ import annotations

from typing import Mapping

import torch

from . import terms as T
from .data.core import Batch, DataSpec
from .vae import VAE

ESTIMATORS = ("mws", "mss", "mss-jackknife")


class BetaTCVAE(VAE):
    TERM_NAMES = ("reconstruction", "kl_z", "mutual_information", "total_correlation", "dimensionwise_kl", "elbo",
                  "objective")
    derivation = "beta_tcvae"
    reference = "Chen, Li, Grosse & Duvenaud 2018, Isolating Sources of Disentanglement in VAEs (NeurIPS)"
    min_batch_size = 2
    min_batch_size_reason = ("its minibatch estimates of q(z), hence of MI and TC, need two or more examples "
                             "(with one they are 0)")

    @classmethod
    def batch_size_minimum(cls, options: Mapping | None = None) -> tuple[int, str]:
        if (options or {}).get("estimator") == "mss-jackknife":
            return 3, ("its jackknifed minibatch estimates of q(z) leave one of the other examples out, so they need "
                       "three or more")
        return cls.min_batch_size, cls.min_batch_size_reason

    def __init__(self, spec: DataSpec, *, alpha: float = 1.0, beta: float = 6.0, gamma: float = 1.0,
                 estimator: str = "mws", latent_dim: int = 10, hidden_dim: int = 256, num_hidden_layers: int = 2,
                 architecture: str = "auto") -> None:
        super().__init__(spec, latent_dim=latent_dim, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers,
                         architecture=architecture)
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator: unknown {estimator!r}; valid choices: {', '.join(ESTIMATORS)}")
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if value < 0:
                raise ValueError(f"{name}: must be >= 0, got {value}")
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.estimator = estimator

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        posterior, z, reconstruction, kl_z = self.vae_terms(batch, latent_samples)
        decomposition = T.minibatch_kl_terms("total_correlation", z, posterior, self.source_size(batch),
                                             self.estimator)
        mutual_information = decomposition.mutual_information
        total_correlation = decomposition.total_correlation
        dimensionwise_kl = decomposition.dimensionwise_kl
        objective = (reconstruction - self.alpha * mutual_information - self.beta * total_correlation
                     - self.gamma * dimensionwise_kl)
        return {
            "reconstruction": reconstruction.mean(),
            "kl_z": kl_z.mean(),
            "mutual_information": mutual_information.mean(),
            "total_correlation": total_correlation.mean(),
            "dimensionwise_kl": dimensionwise_kl.mean(),
            "elbo": (reconstruction - kl_z).mean(),
            "objective": objective.mean(),
        }
