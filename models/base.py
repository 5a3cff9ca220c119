"""The shared base of every model: term reporting, latent sampling, parameter groups for min-max training.

Conventions (the contract with :mod:`elbocheck.derivations` and the trainer)
----------------------------------------------------------------------------
* ``model(batch)`` returns an ordered ``dict[str, Tensor]`` of scalar **batch means**, in the order of
  ``model.term_names``; the names are those of the model's derivation: ``reconstruction`` (E_q log p(x | ...)),
  ``kl_<latent>`` (one KL per latent), ``mutual_information`` / ``total_correlation`` / ``dimensionwise_kl``,
  ``mmd``, ``aggregate_kl``, ``log_prior_y``, ``classifier_y`` / ``classifier_d`` (auxiliary classifier
  log-likelihoods), ``adversary`` (the adversary's cross-entropy), ``adversary_entropy``, ``objective`` and ``elbo``.
* ``objective`` is a **maximisation** objective in the same units as the ELBO (nats per example): the quantity the
  encoder and decoder are trained to increase, hyper-parameter weights included. The trainer minimises
  ``-objective``. ``elbo`` beside it is the true evidence lower bound of the derivation (reconstruction minus the
  unweighted KLs, plus log p(y) where the derivation has it), whatever the weights.
* Models with an adversary (CondVAE-info, CSVAE) report ``adversary`` = E[-log r(y | z)], which the adversary's
  parameters **minimise**; the encoder's side of the min-max is inside ``objective``. :meth:`parameter_groups`
  splits the parameters and :meth:`losses` gives each group its own loss, so each group is updated only by the
  gradient of its own loss (simultaneous gradient steps).
* ``TERM_NAMES`` (class attribute) lists the terms of the default configuration; ``term_names`` (instance) those of
  this configuration (InfoVAE's KL form reports ``aggregate_kl`` instead of ``mmd``; CSVAE without its adversary
  reports neither ``adversary`` nor ``adversary_entropy``).
* ``latent_samples`` (optional, ``{latent name: tensor}``) replaces the reparameterised draws, so that tests can
  evaluate the terms on a sample of their own; absent names are drawn with ``rsample`` from the global RNG.
* KL warm-up and free bits (options ``kl_warmup_epochs`` and ``free_bits`` of the models that take them) change the
  ``objective`` only, never the reported KLs or ``elbo``. Warm-up: the trainer calls :meth:`on_epoch_start` with the
  epoch (1, 2, ...) and every KL weight is multiplied by ``min(1, epoch / kl_warmup_epochs)`` (the schedule of
  Ilse et al. 2020's code, linear from ~0 to the full weight; Bowman et al. 2016). Free bits (Kingma et al. 2016,
  Sec. 3.5 / appendix C, per latent dimension): the objective charges ``sum_j max(free_bits, KL_j)`` with KL_j the
  batch mean of dimension j's KL, so a dimension is charged nothing for its first ``free_bits`` nats and is not
  pushed to collapse below them (:meth:`objective_kl`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar, Mapping

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from .data.core import Batch, DataSpec
from .likelihoods import Likelihood, build_likelihood


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return nn.functional.one_hot(labels, num_classes).to(dtype)


def standard_normal(latent_dim: int, like: torch.Tensor) -> Independent:
    """N(0, I) over ``latent_dim`` dimensions (batch shape ()), on the device of ``like``."""
    return Independent(Normal(like.new_zeros(latent_dim), like.new_ones(latent_dim)), 1)


class VariationalModel(nn.Module):
    """Base class; subclasses implement :meth:`encode` and :meth:`compute_terms`."""

    TERM_NAMES: ClassVar[tuple[str, ...]] = ()
    LATENT_NAMES: ClassVar[tuple[str, ...]] = ()
    derivation: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    requires_labels: ClassVar[bool] = False
    requires_domains: ClassVar[bool] = False
    # Models whose terms are estimated across the examples of a batch need more than one (the trainer checks).
    min_batch_size: ClassVar[int] = 1
    min_batch_size_reason: ClassVar[str] = ""

    @classmethod
    def batch_size_minimum(cls, options: Mapping | None = None) -> tuple[int, str]:
        """(the smallest batch, why) for a model built with ``options`` (its keyword arguments); a model whose
        minimum depends on an option overrides this."""
        return cls.min_batch_size, cls.min_batch_size_reason

    def __init__(self, spec: DataSpec, *, hidden_dim: int = 256, num_hidden_layers: int = 2,
                 architecture: str = "auto", kl_warmup_epochs: int = 0, free_bits: float = 0.0) -> None:
        super().__init__()
        name = type(self).__name__
        if self.requires_labels and not spec.has_labels:
            raise ValueError(f"{name} needs class labels y, but the data has none (num_classes is None)")
        if self.requires_domains and not spec.has_domains:
            raise ValueError(f"{name} needs domain labels d, but the data has none (num_domains is None)")
        if hidden_dim < 1 or num_hidden_layers < 0:
            raise ValueError(
                f"hidden_dim must be >= 1 and num_hidden_layers >= 0; got {hidden_dim}, {num_hidden_layers}"
            )
        if isinstance(kl_warmup_epochs, bool) or not isinstance(kl_warmup_epochs, int) or kl_warmup_epochs < 0:
            raise ValueError(f"kl_warmup_epochs: must be an int >= 0, got {kl_warmup_epochs!r}")
        if not free_bits >= 0:
            raise ValueError(f"free_bits: must be >= 0 (nats per latent dimension), got {free_bits!r}")
        self.kl_warmup_epochs = kl_warmup_epochs
        self.free_bits = float(free_bits)
        self.kl_scale = 1.0  # full weights unless the trainer sets the warm-up factor (on_epoch_start)
        self.spec = spec
        self.likelihood: Likelihood = build_likelihood(spec)
        self.network_options = {"hidden_dim": hidden_dim, "num_hidden_layers": num_hidden_layers,
                                "architecture": architecture}

    # ----------------------------------------------------------------------------------------------------------------
    @property
    def term_names(self) -> tuple[str, ...]:
        return self.TERM_NAMES

    @property
    def has_adversary(self) -> bool:
        return bool(self.adversary_parameters())

    def encode(self, batch: Batch) -> dict[str, Distribution]:  # pragma: no cover - abstract
        """The variational posteriors, one per latent, in :data:`LATENT_NAMES` order."""
        raise NotImplementedError

    def compute_terms(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - abstract

    def forward(self, batch: Batch, latent_samples: Mapping[str, torch.Tensor] | None = None
                ) -> OrderedDict[str, torch.Tensor]:
        self._check_batch(batch)
        terms = self.compute_terms(batch, latent_samples or {})
        if set(terms) != set(self.term_names):
            raise RuntimeError(
                f"{type(self).__name__} computed terms {sorted(terms)} but declares {sorted(self.term_names)}"
            )
        return OrderedDict((name, terms[name]) for name in self.term_names)

    # ----------------------------------------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """Set the warm-up factor of the KL weights for training epoch ``epoch`` (1-based; called by the trainer)."""
        self.kl_scale = 1.0 if self.kl_warmup_epochs == 0 else min(1.0, epoch / self.kl_warmup_epochs)

    def objective_kl(self, posterior: Distribution, prior: Distribution, kl: torch.Tensor) -> torch.Tensor:
        """The per-example KL the objective charges: ``kl`` itself, or with free bits
        ``sum_j where(mean_batch KL_j > free_bits, KL_j, free_bits)`` (its batch mean is sum_j max(free_bits,
        mean_batch KL_j); dimensions under the floor get no gradient). Needs diagonal-Gaussian posterior and prior."""
        if self.free_bits == 0.0:
            return kl
        if not (isinstance(posterior, Independent) and isinstance(prior, Independent)
                and isinstance(posterior.base_dist, Normal) and isinstance(prior.base_dist, Normal)):
            raise TypeError("free_bits: needs Independent(Normal) posteriors and priors")
        per_dimension = torch.distributions.kl_divergence(posterior.base_dist, prior.base_dist)
        per_dimension = per_dimension.expand(posterior.base_dist.loc.shape)
        floor = torch.full_like(per_dimension, self.free_bits)
        charged = per_dimension.mean(0, keepdim=True) > self.free_bits
        return torch.where(charged, per_dimension, floor).sum(-1)

    def sample(self, name: str, posterior: Distribution, latent_samples: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The given sample for latent ``name`` if there is one, else a reparameterised draw from ``posterior``."""
        if name in latent_samples:
            given = latent_samples[name]
            expected = posterior.batch_shape + posterior.event_shape
            if given.shape != expected:
                raise ValueError(
                    f"latent_samples[{name!r}]: expected shape {tuple(expected)}, got {tuple(given.shape)}"
                )
            return given
        return posterior.rsample()

    def source_size(self, batch: Batch) -> int:
        """N for the minibatch estimators: the size of the set the batch came from (training-set size if unknown)."""
        return batch.source_size if batch.source_size is not None else self.spec.dataset_size

    def reconstruction(self, decoder_output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | latents) per example."""
        return self.likelihood.log_prob(decoder_output, x)

    def adversary_parameters(self) -> list[nn.Parameter]:
        """Parameters trained to minimise ``adversary`` (empty for models without an adversary)."""
        return []

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{"model": ..., "adversary": ...}``: the adversary's parameters and all the others (trainable only)."""
        adversary_ids = {id(p) for p in self.adversary_parameters()}
        groups = {"model": [p for p in self.parameters() if p.requires_grad and id(p) not in adversary_ids]}
        if adversary_ids:
            groups["adversary"] = [p for p in self.adversary_parameters() if p.requires_grad]
        return groups

    def losses(self, terms: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The loss each parameter group minimises: ``-objective`` for the model, ``adversary`` for the adversary."""
        losses = {"model": -terms["objective"]}
        if self.has_adversary:
            losses["adversary"] = terms["adversary"]
        return losses

    def _check_batch(self, batch: Batch) -> None:
        expected = self.spec.event_shape
        if tuple(batch.x.shape[1:]) != expected:
            raise ValueError(f"batch.x: expected examples of shape {expected}, got {tuple(batch.x.shape[1:])}")
        if self.requires_labels and batch.y is None:
            raise ValueError(f"batch.y: {type(self).__name__} needs class labels")
        if self.requires_domains and batch.d is None:
            raise ValueError(f"batch.d: {type(self).__name__} needs domain labels")
