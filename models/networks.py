"""Encoder and decoder networks: MLPs for vector data, small convolutional nets for images.

* :class:`GaussianEncoder` maps x (and an optional condition vector, e.g. a one-hot label) to a diagonal Gaussian
  q(latent | x, condition) = N(mu, diag sigma^2), sigma = softplus(.) + 1e-4, as an ``Independent(Normal, 1)`` so that
  ``log_prob`` and KLs sum over the latent dimensions.
* :class:`Decoder` maps latents (and an optional condition) to the raw parameters a :class:`Likelihood` expects,
  shaped ``(B, *event_shape, outputs_per_element)``.
* :class:`Classifier` is a small MLP giving class logits from a latent (auxiliary classifiers and adversaries).

Convolutional nets halve the image side with 4x4 stride-2 convolutions until it is about 4 pixels
(8x8 -> 4x4, 28x28 -> 7x7, 64x64 -> 4x4), then use a linear layer; the decoder mirrors this with transposed
convolutions. ``architecture="auto"`` picks the convolutional net for images and the MLP otherwise.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal

ARCHITECTURES = ("auto", "mlp", "conv")
MIN_POSTERIOR_SCALE = 1e-4


def resolve_architecture(architecture: str, event_shape: Sequence[int]) -> str:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture: unknown {architecture!r}; valid choices: {', '.join(ARCHITECTURES)}")
    if architecture == "auto":
        return "conv" if len(event_shape) == 3 else "mlp"
    if architecture == "conv" and len(event_shape) != 3:
        raise ValueError(f"architecture: 'conv' needs image data (C, H, W), got event shape {tuple(event_shape)}")
    return architecture


def mlp(sizes: Sequence[int], *, final_activation: bool = False) -> nn.Sequential:
    """Linear layers with ReLU between them (and after the last one when ``final_activation``)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def num_downsamplings(height: int, width: int) -> int:
    """How many stride-2 halvings take the smaller image side to about 4 pixels (each halving must be exact)."""
    steps = max(0, int(math.log2(min(height, width))) - 2)
    while steps and (height % 2**steps or width % 2**steps):
        steps -= 1
    return steps


def conv_channels(steps: int, base_channels: int) -> list[int]:
    return [base_channels * 2 ** min(i // 2, 2) for i in range(steps)]


class ConvTrunk(nn.Module):
    """Image (B, C, H, W) -> feature vector (B, hidden_dim)."""

    def __init__(self, event_shape: Sequence[int], hidden_dim: int, base_channels: int = 32) -> None:
        super().__init__()
        channels, height, width = event_shape
        steps = num_downsamplings(height, width)
        layers: list[nn.Module] = []
        fan_in = channels
        for fan_out in conv_channels(steps, base_channels):
            layers += [nn.Conv2d(fan_in, fan_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            fan_in = fan_out
        self.convolutions = nn.Sequential(*layers)
        flat = fan_in * (height // 2**steps) * (width // 2**steps)
        self.linear = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convolutions(x))


class ConvHead(nn.Module):
    """Feature vector (B, hidden_dim) -> image-shaped parameters (B, C * P, H, W), mirroring :class:`ConvTrunk`."""

    def __init__(self, hidden_dim: int, event_shape: Sequence[int], outputs_per_element: int,
                 base_channels: int = 32) -> None:
        super().__init__()
        channels, height, width = event_shape
        steps = num_downsamplings(height, width)
        widths = conv_channels(steps, base_channels)[::-1]
        start_channels = widths[0] if steps else channels * outputs_per_element
        self.start_shape = (start_channels, height // 2**steps, width // 2**steps)
        self.linear = nn.Linear(hidden_dim, int(math.prod(self.start_shape)))
        layers: list[nn.Module] = []
        for i in range(steps):
            fan_in = widths[i]
            fan_out = widths[i + 1] if i + 1 < steps else channels * outputs_per_element
            layers.append(nn.ConvTranspose2d(fan_in, fan_out, kernel_size=4, stride=2, padding=1))
            if i + 1 < steps:
                layers.append(nn.ReLU())
        self.deconvolutions = nn.Sequential(*layers)
        self.has_hidden_activation = steps > 0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.linear(h).view(h.shape[0], *self.start_shape)
        if self.has_hidden_activation:
            out = torch.relu(out)
        return self.deconvolutions(out)


class GaussianEncoder(nn.Module):
    """q(latent | x, condition): diagonal Gaussian whose mean and scale come from an MLP or a conv net."""

    def __init__(
        self,
        event_shape: Sequence[int],
        latent_dim: int,
        *,
        condition_dim: int = 0,
        hidden_dim: int = 256,
        num_hidden_layers: int = 2,
        architecture: str = "auto",
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim: must be >= 1, got {latent_dim}")
        self.event_shape = tuple(event_shape)
        self.latent_dim = latent_dim
        self.condition_dim = condition_dim
        self.architecture = resolve_architecture(architecture, event_shape)
        if self.architecture == "conv":
            self.trunk = ConvTrunk(event_shape, hidden_dim)
            head_in = hidden_dim + condition_dim
            self.head = mlp([head_in] + [hidden_dim] * max(num_hidden_layers - 1, 0) + [2 * latent_dim])
        else:
            self.trunk = nn.Flatten()
            flat = int(math.prod(event_shape)) + condition_dim
            self.head = mlp([flat] + [hidden_dim] * num_hidden_layers + [2 * latent_dim])

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> Independent:
        features = self.trunk(x)
        if self.condition_dim:
            if condition is None:
                raise ValueError("condition: this encoder is conditional and needs a condition vector")
            features = torch.cat([features, condition.to(features.dtype)], dim=-1)
        loc, raw_scale = self.head(features).float().chunk(2, dim=-1)
        scale = nn.functional.softplus(raw_scale) + MIN_POSTERIOR_SCALE
        # validate_args=False: a NaN is caught and named by the estimators' checks and the trainer's term guard,
        # where torch's own check would raise an error that names no term (and costs a device sync).
        return Independent(Normal(loc, scale, validate_args=False), 1)


class Decoder(nn.Module):
    """Latents (and an optional condition) -> likelihood parameters ``(B, *event_shape, outputs_per_element)``."""

    def __init__(
        self,
        latent_dim: int,
        event_shape: Sequence[int],
        outputs_per_element: int,
        *,
        condition_dim: int = 0,
        hidden_dim: int = 256,
        num_hidden_layers: int = 2,
        architecture: str = "auto",
    ) -> None:
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.outputs_per_element = outputs_per_element
        self.condition_dim = condition_dim
        self.architecture = resolve_architecture(architecture, event_shape)
        fan_in = latent_dim + condition_dim
        if self.architecture == "conv":
            self.body = nn.Sequential(mlp([fan_in] + [hidden_dim] * max(num_hidden_layers, 1), final_activation=True),
                                      ConvHead(hidden_dim, event_shape, outputs_per_element))
        else:
            out = int(math.prod(event_shape)) * outputs_per_element
            self.body = mlp([fan_in] + [hidden_dim] * num_hidden_layers + [out])

    def forward(self, latent: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if self.condition_dim:
            if condition is None:
                raise ValueError("condition: this decoder is conditional and needs a condition vector")
            latent = torch.cat([latent, condition.to(latent.dtype)], dim=-1)
        out = self.body(latent)
        batch = latent.shape[0]
        if self.architecture == "conv":
            channels, height, width = self.event_shape
            # (B, C * P, H, W) -> (B, C, H, W, P)
            return out.view(batch, channels, self.outputs_per_element, height, width).permute(0, 1, 3, 4, 2)
        return out.view(batch, *self.event_shape, self.outputs_per_element)


class Classifier(nn.Module):
    """A small MLP from a latent to ``num_classes`` logits."""

    def __init__(self, input_dim: int, num_classes: int, *, hidden_dim: int = 64, num_hidden_layers: int = 1) -> None:
        super().__init__()
        self.net = mlp([input_dim] + [hidden_dim] * num_hidden_layers + [num_classes])

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent).float()
