"""Observation models p(x | latents): each turns a decoder's raw output into a ``torch.distributions`` object.

Distributions are built with ``validate_args=False``: a NaN in the decoder's output then shows up in the
``reconstruction`` term, which the trainer's guard names, instead of as an unnamed error from torch's own check.

A decoder emits ``outputs_per_element`` numbers for every element of the data's event shape, as a tensor
``(B, *event_shape, outputs_per_element)``; :meth:`Likelihood.distribution` wraps them in a distribution whose
``log_prob(target)`` sums over the whole event, so it returns one value per example.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal

from .data.core import DataSpec


class Likelihood(nn.Module):
    """Base class: ``distribution(params)`` and ``log_prob(params, x)`` (one value per example)."""

    outputs_per_element: int = 1

    def __init__(self, event_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.event_shape = tuple(event_shape)

    def distribution(self, params: torch.Tensor) -> Distribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The data in the form ``distribution(...).log_prob`` expects."""
        return x

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.distribution(params).log_prob(self.target(x))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | latents] on the data's scale (for reconstructions and figures)."""
        return self.distribution(params).mean


class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli per element, logits from the decoder: log p(x|.) = sum_i x_i l_i - softplus(l_i)."""

    def distribution(self, params: torch.Tensor) -> Distribution:
        return Independent(Bernoulli(logits=params.squeeze(-1).float(), validate_args=False), len(self.event_shape))


class GaussianLikelihood(Likelihood):
    """Independent Normal per element: mean from the decoder, a learned log standard deviation per element.

    The scale is bounded below by ``min_scale`` so that the log-density cannot run to +infinity on data the decoder
    fits exactly.
    """

    def __init__(self, event_shape: tuple[int, ...], *, learn_scale: bool = True, init_scale: float = 1.0,
                 min_scale: float = 1e-3) -> None:
        super().__init__(event_shape)
        self.min_scale = min_scale
        raw = torch.full(self.event_shape, math.log(math.expm1(max(init_scale - min_scale, 1e-6))))
        self.raw_scale = nn.Parameter(raw, requires_grad=learn_scale)

    @property
    def scale(self) -> torch.Tensor:
        return nn.functional.softplus(self.raw_scale) + self.min_scale

    def distribution(self, params: torch.Tensor) -> Distribution:
        loc = params.squeeze(-1).float()
        return Independent(Normal(loc, self.scale.expand_as(loc), validate_args=False), len(self.event_shape))


class CategoricalLikelihood(Likelihood):
    """Independent categorical per element over ``num_levels`` intensity levels (data stored as level / (K - 1))."""

    def __init__(self, event_shape: tuple[int, ...], num_levels: int) -> None:
        super().__init__(event_shape)
        if num_levels < 2:
            raise ValueError(f"num_levels: need at least 2 levels, got {num_levels}")
        self.num_levels = num_levels
        self.outputs_per_element = num_levels

    def distribution(self, params: torch.Tensor) -> Distribution:
        return Independent(Categorical(logits=params.float(), validate_args=False), len(self.event_shape))

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * (self.num_levels - 1)).long()

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        levels = torch.arange(self.num_levels, device=params.device, dtype=torch.float32) / (self.num_levels - 1)
        return (params.float().softmax(-1) * levels).sum(-1)


def build_likelihood(spec: DataSpec) -> Likelihood:
    """The likelihood the data spec asks for."""
    if spec.likelihood == "bernoulli":
        return BernoulliLikelihood(spec.event_shape)
    if spec.likelihood == "gaussian":
        return GaussianLikelihood(spec.event_shape)
    if spec.likelihood == "categorical":
        return CategoricalLikelihood(spec.event_shape, int(spec.num_levels))
    raise ValueError(f"likelihood: unknown kind {spec.likelihood!r}")
