"""DIVA, the domain invariant variational autoencoder (Ilse, Tomczak, Louizos & Welling 2020, "DIVA: Domain
Invariant Variational Autoencoders", MIDL).

Three latents: z_d (domain), z_x (residual variation), z_y (class). Generative model
p(x, z_d, z_x, z_y | d, y) = p(x | z_d, z_x, z_y) p(z_d | d) p(z_x) p(z_y | y) with learned conditional Gaussian
priors p(z_d | d), p(z_y | y) (a small network from the one-hot label to mean and scale) and p(z_x) = N(0, I).
Inference model q(z_d | x) q(z_x | x) q(z_y | x) (three encoders), and auxiliary classifiers q_omega_d(d | z_d),
q_omega_y(y | z_y). The training objective (their eq. 3, fully supervised case) is

    F_DIVA = E_q log p(x | z_d, z_x, z_y) - beta_d KL(q(z_d|x) || p(z_d|d)) - beta_x KL(q(z_x|x) || p(z_x))
             - beta_y KL(q(z_y|x) || p(z_y|y)) + alpha_d E_{q(z_d|x)} log q_omega_d(d | z_d)
             + alpha_y E_{q(z_y|x)} log q_omega_y(y | z_y),

and the ELBO beside it (a bound on log p(x | d, y)) is the same with beta = 1 and alpha = 0. Defaults: the paper's
alpha_d = 2000, alpha_y = 3500, beta = 1. The paper's code anneals the betas: beta(epoch) = min(beta,
beta * epoch / 100) over the first 100 epochs (``kl_warmup_epochs=100``; off by default here). alpha_d or alpha_y may
be 0, which removes that classifier from the objective (its log-likelihood is still reported). ``free_bits`` floors
each latent dimension's KL in the objective (see :mod:`.base`).
Terms: ``reconstruction``, ``kl_zd``, ``kl_zx``, ``kl_zy``, ``classifier_d``, ``classifier_y`` (the classifiers'
log-likelihoods, E log q_omega(. | z)), ``elbo``, ``objective``.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from . import terms as T
from .base import VariationalModel, one_hot, standard_normal
from .data.core import Batch, DataSpec
from .networks import MIN_POSTERIOR_SCALE, Classifier, Decoder, GaussianEncoder, mlp


class ConditionalGaussianPrior(nn.Module):
    """p(latent | label) = N(mu(label), diag sigma^2(label)) from a one-hidden-layer network of the one-hot label."""

    def __init__(self, num_labels: int, latent_dim: int, hidden_dim: int = 64) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.net = mlp([num_labels, hidden_dim, 2 * latent_dim])

    def forward(self, labels: torch.Tensor) -> Independent:
        loc, raw_scale = self.net(one_hot(labels, self.num_labels)).float().chunk(2, dim=-1)
        scale = nn.functional.softplus(raw_scale) + MIN_POSTERIOR_SCALE
        return Independent(Normal(loc, scale, validate_args=False), 1)  # NaNs are named downstream


class DIVA(VariationalModel):
    TERM_NAMES = ("reconstruction", "kl_zd", "kl_zx", "kl_zy", "classifier_d", "classifier_y", "elbo", "objective")
    LATENT_NAMES = ("zd", "zx", "zy")
    derivation = "diva"
    reference = "Ilse, Tomczak, Louizos & Welling 2020, DIVA: Domain Invariant Variational Autoencoders (MIDL)"
    requires_labels = True
    requires_domains = True

    def __init__(
        self,
        spec: DataSpec,
        *,
        zd_dim: int = 16,
        zx_dim: int = 16,
        zy_dim: int = 16,
        alpha_d: float = 2000.0,
        alpha_y: float = 3500.0,
        beta_d: float = 1.0,
        beta_x: float = 1.0,
        beta_y: float = 1.0,
        prior_hidden_dim: int = 64,
        classifier_hidden_dim: int = 64,
        kl_warmup_epochs: int = 0,
        free_bits: float = 0.0,
        hidden_dim: int = 256,
        num_hidden_layers: int = 2,
        architecture: str = "auto",
    ) -> None:
        super().__init__(spec, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers, architecture=architecture,
                         kl_warmup_epochs=kl_warmup_epochs, free_bits=free_bits)
        for name, value in (("alpha_d", alpha_d), ("alpha_y", alpha_y), ("beta_d", beta_d), ("beta_x", beta_x),
                            ("beta_y", beta_y)):
            if value < 0:
                raise ValueError(f"{name}: must be >= 0, got {value}")
        self.num_classes = int(spec.num_classes)
        self.num_domains = int(spec.num_domains)
        self.dims = {"zd": zd_dim, "zx": zx_dim, "zy": zy_dim}
        self.alphas = {"d": float(alpha_d), "y": float(alpha_y)}
        self.betas = {"zd": float(beta_d), "zx": float(beta_x), "zy": float(beta_y)}
        self.encoders = nn.ModuleDict({name: GaussianEncoder(spec.event_shape, dim, **self.network_options)
                                       for name, dim in self.dims.items()})
        self.decoder = Decoder(sum(self.dims.values()), spec.event_shape, self.likelihood.outputs_per_element,
                               **self.network_options)
        self.prior_zd = ConditionalGaussianPrior(self.num_domains, zd_dim, prior_hidden_dim)
        self.prior_zy = ConditionalGaussianPrior(self.num_classes, zy_dim, prior_hidden_dim)
        self.classifier_d = Classifier(zd_dim, self.num_domains, hidden_dim=classifier_hidden_dim)
        self.classifier_y = Classifier(zy_dim, self.num_classes, hidden_dim=classifier_hidden_dim)

    def encode(self, batch: Batch) -> dict[str, Distribution]:
        return {name: self.encoders[name](batch.x) for name in self.LATENT_NAMES}

    def priors(self, batch: Batch) -> dict[str, Distribution]:
        return {"zd": self.prior_zd(batch.d), "zx": standard_normal(self.dims["zx"], batch.x),
                "zy": self.prior_zy(batch.y)}

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        posteriors = self.encode(batch)
        priors = self.priors(batch)
        samples = {name: self.sample(name, posteriors[name], latent_samples) for name in self.LATENT_NAMES}
        reconstruction = self.reconstruction(self.decoder(torch.cat([samples[n] for n in self.LATENT_NAMES], -1)),
                                             batch.x)
        kls = {name: T.kl_divergence(f"kl_{name}", posteriors[name], priors[name]) for name in self.LATENT_NAMES}
        classifier_d = -nn.functional.cross_entropy(self.classifier_d(samples["zd"]), batch.d, reduction="none")
        classifier_y = -nn.functional.cross_entropy(self.classifier_y(samples["zy"]), batch.y, reduction="none")
        elbo = reconstruction - sum(kls.values())
        charged = sum(self.betas[n] * self.objective_kl(posteriors[n], priors[n], kls[n]) for n in self.LATENT_NAMES)
        objective = (reconstruction - self.kl_scale * charged
                     + self.alphas["d"] * classifier_d + self.alphas["y"] * classifier_y)
        return {
            "reconstruction": reconstruction.mean(),
            **{f"kl_{name}": kl.mean() for name, kl in kls.items()},
            "classifier_d": classifier_d.mean(),
            "classifier_y": classifier_y.mean(),
            "elbo": elbo.mean(),
            "objective": objective.mean(),
        }
