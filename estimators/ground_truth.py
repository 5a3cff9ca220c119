"""What the disentanglement metrics need from a data set with known generative factors, and the codes they score.

A *ground-truth source* (:class:`GroundTruthFactors`) has K discrete factors with ``factor_sizes`` values each,
draws factor values (``sample_factors``) and renders the observations of given factor values (``observations``);
the FactorVAE score needs the second, to fix one factor and vary the others. A *representation* maps a batch of
observations to codes, a tensor (B, D) (for the metrics of disentanglement_lib: the posterior means).

Memory: observations are rendered and encoded in chunks of ``chunk_size`` (default 256), so a metric that encodes
10,000 images never holds them at once (disentanglement_lib issue #11: the FactorVAE score ran out of memory
encoding its 10,000-image variance estimate in one call). Only the codes, (num, D) floats, are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["DEFAULT_CHUNK_SIZE", "GroundTruthFactors", "RepeatedScore", "encode_factors", "repeated", "sample_codes"]

DEFAULT_CHUNK_SIZE = 256
Representation = Callable[[Tensor], Tensor]


class GroundTruthFactors(Protocol):
    factor_sizes: tuple[int, ...]
    factor_names: tuple[str, ...]

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        """Factor values, int64 (num, K), drawn from the data's factor distribution."""

    def observations(self, factors: np.ndarray, rng: np.random.Generator) -> Tensor:
        """Observations with the given factor values, (num, ...) float32."""

    # Optional: ``sample_factors_fixing(num, factor, rng)`` -> (num, K) with column ``factor`` constant, for sources
    # that cannot render every combination (a finite table); the FactorVAE score uses it when present.


def encode_factors(source: GroundTruthFactors, representation: Representation, factors: np.ndarray,
                   rng: np.random.Generator, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """Codes (num, D), float64, of the observations with the given factor values, rendered and encoded in chunks."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"argument 'chunk_size' must be a positive int; got {chunk_size!r}")
    chunks = []
    with torch.no_grad():
        for start in range(0, len(factors), chunk_size):
            observations = source.observations(factors[start : start + chunk_size], rng)
            codes = representation(observations)
            if not torch.is_tensor(codes) or codes.dim() != 2 or codes.shape[0] != observations.shape[0]:
                shape = tuple(codes.shape) if torch.is_tensor(codes) else type(codes).__name__
                raise ValueError(f"argument 'representation' must map a batch of {observations.shape[0]} "
                                 f"observations to codes of shape ({observations.shape[0]}, D); got {shape}")
            chunks.append(codes.detach().to(torch.float64).cpu().numpy())
    codes = np.concatenate(chunks) if chunks else np.zeros((0, 0))
    if not np.isfinite(codes).all():
        raise ValueError("argument 'representation' returned non-finite codes")
    return codes


def sample_codes(source: GroundTruthFactors, representation: Representation, num: int, rng: np.random.Generator,
                 *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``num`` draws of (codes (num, D), factors (num, K)) from the source's factor distribution."""
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"the number of points must be a positive int; got {num!r}")
    factors = np.asarray(source.sample_factors(num, rng), dtype=np.int64)
    return encode_factors(source, representation, factors, rng, chunk_size=chunk_size), factors


@dataclass(frozen=True)
class RepeatedScore:
    """A metric repeated on independent draws: ``value`` (mean over repeats), ``standard_error`` (their standard
    deviation / sqrt(repeats); NaN for one repeat), ``per_repeat`` and the metric's ``details`` (of the first
    repeat, e.g. the importance matrix)."""

    name: str
    value: float
    standard_error: float
    per_repeat: tuple[float, ...]
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        error = "" if math.isnan(self.standard_error) else f" +- {self.standard_error:.3f}"
        return f"{self.name} {self.value:.3f}{error}"


def repeated(name: str, once: Callable[[np.random.Generator], tuple[dict[str, float], dict]], repeats: int,
             seed: int) -> dict[str, RepeatedScore]:
    """Run ``once(rng)`` (returning ({score name: value}, details)) ``repeats`` times with independent generators
    spawned from ``seed``, and summarise each score over the repeats."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"argument 'repeats' must be a positive int; got {repeats!r}")
    values: dict[str, list[float]] = {}
    first_details: dict = {}
    for index, child in enumerate(np.random.SeedSequence(seed).spawn(repeats)):
        scores, details = once(np.random.default_rng(child))
        if index == 0:
            first_details = details
        for key, value in scores.items():
            values.setdefault(key, []).append(float(value))
    summary = {}
    for key, series in values.items():
        error = float(np.std(series, ddof=1) / math.sqrt(len(series))) if len(series) > 1 else math.nan
        summary[key] = RepeatedScore(f"{name}.{key}" if key != name else name, float(np.mean(series)), error,
                                     tuple(series), first_details)
    return summary


def check_codes_and_factors(codes: np.ndarray, factors: np.ndarray, codes_name: str = "codes",
                            factors_name: str = "factors") -> tuple[np.ndarray, np.ndarray]:
    """codes (N, D) finite floats and factors (N, K) integers with the same N; returned as float64 / int64."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or codes.shape[0] < 2 or codes.shape[1] < 1:
        raise ValueError(f"argument '{codes_name}' must have shape (N, D) with N >= 2; got {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError(f"argument '{codes_name}' must be finite")
    if factors.ndim == 1:
        factors = factors[:, None]
    if factors.ndim != 2 or factors.shape[0] != codes.shape[0]:
        raise ValueError(f"argument '{factors_name}' must have shape ({codes.shape[0]}, K); got {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"argument '{factors_name}' must hold integer factor values; got dtype {factors.dtype}")
    return codes, factors.astype(np.int64)


def check_positive(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"argument '{name}' must be an int of at least {minimum}; got {value!r}")
    return value


def factor_sizes_of(source: GroundTruthFactors) -> Sequence[int]:
    sizes = tuple(int(s) for s in source.factor_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"argument 'source' must have factors with at least one value each; got sizes {sizes}")
    return sizes
