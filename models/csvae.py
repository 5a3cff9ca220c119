"""The conditional subspace VAE, CSVAE (Klys, Snell & Zemel 2018, "Learning Latent Subspaces in Variational
Autoencoders", NeurIPS).

Latents: w, split into one subspace w_i per label attribute, and z. Generative model
p(x, y, w, z) = p(x | w, z) p(w | y) p(z) p(y) with p(z) = N(0, I), p(y) uniform, and a *fixed* p(w | y) whose
components for an attribute that is off and on are separated:

    p(w_i | y_i = 0) = N(off_mean, off_std^2 I),   p(w_i | y_i = 1) = N(on_mean, on_std^2 I),

by default N(0, 0.1^2 I) and N(3, I): an absent attribute keeps its subspace collapsed near 0, a present one moves
it away. (The paper fixes two separated Gaussians of this kind; the values here are configurable -- check them
against the paper before quoting results.) Inference model q(w, z | x, y) = q(w | x, y) q(z | x, y). An adversary
q_delta(y | z) tries to read y from z; the encoder is rewarded for the entropy of its prediction.

    ELBO(x, y)  = E_q log p(x | w, z) - KL(q(w | x, y) || p(w | y)) - KL(q(z | x, y) || p(z)) + log p(y)
                  (a lower bound on log p(x, y))
    M1 (max)    = beta1 E_q log p(x | w, z) - beta2 KL_w - beta3 KL_z + log p(y)
    M2 (max)    = beta4 E_{q(z|x,y)} H(q_delta(y | z))       (encoder only: make z uninformative about y)
    N  (min)    = E_{q(z|x,y)} [-log q_delta(y | z)]          (adversary delta only)

objective = M1 + M2 for encoder and decoder; ``adversary`` = N for delta. Defaults beta1 = 20, beta2 = 1,
beta3 = 0.2, beta4 = 10 (the paper's toy settings). ``use_adversary=False`` removes q_delta, N and M2.
``encoder_label=False`` makes both encoders q(w | x), q(z | x) (y is not fed to them; the ELBO stays a bound, with
a smaller variational family), so that the label information in w and z can only come from x.
``kl_warmup_epochs`` and ``free_bits`` act on beta2 KL_w and beta3 KL_z in the objective (see :mod:`.base`).

Labels: a binary label (2 classes) is one attribute with one subspace, as in the paper's toy setup; a label with
K > 2 classes is encoded one-hot as K attributes (one subspace each), and p(y) = 1/K. The adversary predicts the
class with a softmax over the K classes (for K = 2 this is the Bernoulli of the paper).
Terms: ``reconstruction``, ``kl_w``, ``kl_z``, ``log_prior_y``, ``adversary``, ``adversary_entropy``, ``elbo``,
``objective``.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from . import terms as T
from .base import VariationalModel, one_hot, standard_normal
from .data.core import Batch, DataSpec
from .networks import Classifier, Decoder, GaussianEncoder


class CSVAE(VariationalModel):
    TERM_NAMES = ("reconstruction", "kl_w", "kl_z", "log_prior_y", "adversary", "adversary_entropy", "elbo",
                  "objective")
    TERM_NAMES_WITHOUT_ADVERSARY = ("reconstruction", "kl_w", "kl_z", "log_prior_y", "elbo", "objective")
    LATENT_NAMES = ("w", "z")
    derivation = "csvae"
    reference = "Klys, Snell & Zemel 2018, Learning Latent Subspaces in Variational Autoencoders (NeurIPS)"
    requires_labels = True

    def __init__(
        self,
        spec: DataSpec,
        *,
        z_dim: int = 2,
        w_dim_per_attribute: int = 2,
        beta1: float = 20.0,
        beta2: float = 1.0,
        beta3: float = 0.2,
        beta4: float = 10.0,
        use_adversary: bool = True,
        off_mean: float = 0.0,
        off_std: float = 0.1,
        on_mean: float = 3.0,
        on_std: float = 1.0,
        encoder_label: bool = True,
        adversary_hidden_dim: int = 64,
        kl_warmup_epochs: int = 0,
        free_bits: float = 0.0,
        hidden_dim: int = 256,
        num_hidden_layers: int = 2,
        architecture: str = "auto",
    ) -> None:
        super().__init__(spec, hidden_dim=hidden_dim, num_hidden_layers=num_hidden_layers, architecture=architecture,
                         kl_warmup_epochs=kl_warmup_epochs, free_bits=free_bits)
        for name, value in (("beta1", beta1), ("beta2", beta2), ("beta3", beta3), ("beta4", beta4)):
            if value < 0:
                raise ValueError(f"{name}: must be >= 0, got {value}")
        if off_std <= 0 or on_std <= 0:
            raise ValueError(f"off_std and on_std must be > 0, got {off_std}, {on_std}")
        self.num_classes = int(spec.num_classes)
        self.num_attributes = 1 if self.num_classes == 2 else self.num_classes
        self.z_dim = z_dim
        self.w_dim_per_attribute = w_dim_per_attribute
        self.w_dim = w_dim_per_attribute * self.num_attributes
        self.betas = (float(beta1), float(beta2), float(beta3), float(beta4))
        self.use_adversary = bool(use_adversary)
        self.encoder_label = bool(encoder_label)
        condition_dim = self.num_attributes if self.encoder_label else 0
        self.register_buffer("w_prior_loc", torch.tensor([off_mean, on_mean], dtype=torch.float32))
        self.register_buffer("w_prior_scale", torch.tensor([off_std, on_std], dtype=torch.float32))
        self.w_encoder = GaussianEncoder(spec.event_shape, self.w_dim, condition_dim=condition_dim,
                                         **self.network_options)
        self.z_encoder = GaussianEncoder(spec.event_shape, z_dim, condition_dim=condition_dim,
                                         **self.network_options)
        self.decoder = Decoder(self.w_dim + z_dim, spec.event_shape, self.likelihood.outputs_per_element,
                               **self.network_options)
        self.adversary_net = (Classifier(z_dim, self.num_classes, hidden_dim=adversary_hidden_dim)
                              if self.use_adversary else None)

    @property
    def term_names(self) -> tuple[str, ...]:
        return self.TERM_NAMES if self.use_adversary else self.TERM_NAMES_WITHOUT_ADVERSARY

    def adversary_parameters(self) -> list[nn.Parameter]:
        return [] if self.adversary_net is None else list(self.adversary_net.parameters())

    def attributes(self, y: torch.Tensor) -> torch.Tensor:
        """Binary attribute vector (B, A): y itself for a binary label, one-hot(y) otherwise."""
        if self.num_attributes == 1:
            return y.unsqueeze(-1).float()
        return one_hot(y, self.num_classes)

    def w_prior(self, y: torch.Tensor) -> Independent:
        """p(w | y): per attribute subspace, the 'on' component where the attribute is 1, else the 'off' one."""
        on = self.attributes(y).long().repeat_interleave(self.w_dim_per_attribute, dim=-1)  # (B, w_dim)
        return Independent(Normal(self.w_prior_loc[on], self.w_prior_scale[on]), 1)

    def log_prior_y(self, y: torch.Tensor) -> torch.Tensor:
        """log p(y) under the uniform prior over the K classes, per example."""
        return torch.full(y.shape, -math.log(self.num_classes), device=y.device)

    def encode(self, batch: Batch) -> dict[str, Distribution]:
        if not self.encoder_label:
            return {"w": self.w_encoder(batch.x), "z": self.z_encoder(batch.x)}
        attributes = self.attributes(batch.y)
        return {"w": self.w_encoder(batch.x, attributes), "z": self.z_encoder(batch.x, attributes)}

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        posteriors = self.encode(batch)
        w = self.sample("w", posteriors["w"], latent_samples)
        z = self.sample("z", posteriors["z"], latent_samples)
        reconstruction = self.reconstruction(self.decoder(torch.cat([w, z], dim=-1)), batch.x)
        w_prior, z_prior = self.w_prior(batch.y), standard_normal(self.z_dim, z)
        kl_w = T.kl_divergence("kl_w", posteriors["w"], w_prior)
        kl_z = T.kl_divergence("kl_z", posteriors["z"], z_prior)
        log_prior_y = self.log_prior_y(batch.y)
        beta1, beta2, beta3, beta4 = self.betas
        elbo = reconstruction - kl_w - kl_z + log_prior_y
        objective = (beta1 * reconstruction - self.kl_scale * (
            beta2 * self.objective_kl(posteriors["w"], w_prior, kl_w)
            + beta3 * self.objective_kl(posteriors["z"], z_prior, kl_z)) + log_prior_y)
        terms = {
            "reconstruction": reconstruction.mean(),
            "kl_w": kl_w.mean(),
            "kl_z": kl_z.mean(),
            "log_prior_y": log_prior_y.mean(),
            "elbo": elbo.mean(),
        }
        if self.use_adversary:
            logits = self.adversary_net(z)
            log_probs = logits.log_softmax(-1)
            adversary = -log_probs.gather(-1, batch.y.unsqueeze(-1)).squeeze(-1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)
            objective = objective + beta4 * entropy
            terms["adversary"] = adversary.mean()
            terms["adversary_entropy"] = entropy.mean()
        terms["objective"] = objective.mean()
        return terms
