"""The in-memory data set every model trains on, its splits, and the mini-batch type.

All bundled data sets are small (at most a few tens of thousands of examples), so they are held as tensors and moved
to the training device once; batching is index-based, which keeps CPU and CUDA on the same code path.

Conventions
-----------
* ``x`` is float32 with shape ``(N, *event_shape)``: images are ``(N, C, H, W)`` with values in [0, 1], vectors are
  ``(N, D)``. Discrete-valued images on ``num_levels`` levels store ``level / (num_levels - 1)``.
* ``y`` (class label) and ``d`` (domain label) are int64 of shape ``(N,)`` or ``None`` when the data set has none.
* ``factors`` holds ground-truth generative factors (int64 class indices, ``(N, F)``) where they are known, for MIG.
* ``likelihood`` names the observation model that suits the data: ``"bernoulli"`` (binary pixels), ``"categorical"``
  (``num_levels`` discrete intensity levels) or ``"gaussian"`` (real-valued vectors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

LIKELIHOOD_KINDS = ("bernoulli", "categorical", "gaussian")


@dataclass(frozen=True)
class Batch:
    """One mini-batch: data ``x`` and, where the data set has them, class labels ``y`` and domain labels ``d``.

    ``source_size`` is the number of examples of the set the batch was drawn from (N in the minibatch estimators of
    the aggregate posterior); ``None`` means the model's training-set size.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    d: torch.Tensor | None = None
    source_size: int | None = None

    @property
    def size(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(move(self.x), move(self.y), move(self.d), self.source_size)


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data: shapes, likelihood, label cardinalities, training-set size.

    ``dataset_size`` is the number of training examples N; the minibatch-weighted and minibatch-stratified estimators
    of the aggregate posterior q(z) need it.
    """

    event_shape: tuple[int, ...]
    likelihood: str
    num_levels: int | None = None
    num_classes: int | None = None
    num_domains: int | None = None
    dataset_size: int = 1

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOOD_KINDS:
            raise ValueError(
                f"likelihood: unknown kind {self.likelihood!r}; valid choices: {', '.join(LIKELIHOOD_KINDS)}"
            )
        if self.likelihood == "categorical" and (self.num_levels is None or self.num_levels < 2):
            raise ValueError("num_levels: a categorical likelihood needs num_levels >= 2")

    @property
    def is_image(self) -> bool:
        return len(self.event_shape) == 3

    @property
    def has_labels(self) -> bool:
        return self.num_classes is not None

    @property
    def has_domains(self) -> bool:
        return self.num_domains is not None


@dataclass
class DataSet:
    """A whole data set in memory with named splits (index tensors into the arrays)."""

    name: str
    x: torch.Tensor
    likelihood: str
    splits: dict[str, torch.Tensor]
    y: torch.Tensor | None = None
    d: torch.Tensor | None = None
    num_levels: int | None = None
    num_classes: int | None = None
    num_domains: int | None = None
    factors: torch.Tensor | None = None
    factor_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    domain_names: tuple[str, ...] = ()
    description: str = ""
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.x.dtype != torch.float32:
            raise TypeError(f"x: expected float32, got {self.x.dtype}")
        for label_name in ("y", "d"):
            labels = getattr(self, label_name)
            if labels is not None and (labels.shape != (n,) or labels.dtype != torch.int64):
                raise ValueError(
                    f"{label_name}: expected int64 of shape ({n},), got {labels.dtype} {tuple(labels.shape)}"
                )
        if self.y is not None and self.num_classes is None:
            self.num_classes = int(self.y.max()) + 1
        if self.d is not None and self.num_domains is None:
            self.num_domains = int(self.d.max()) + 1
        if "train" not in self.splits:
            raise ValueError(f"splits: a 'train' split is required, got {sorted(self.splits)}")
        for split_name, index in self.splits.items():
            if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
                raise ValueError(f"splits[{split_name!r}]: index out of range for {n} examples")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def spec(self) -> DataSpec:
        return DataSpec(
            event_shape=self.event_shape,
            likelihood=self.likelihood,
            num_levels=self.num_levels,
            num_classes=self.num_classes if self.y is not None else None,
            num_domains=self.num_domains if self.d is not None else None,
            dataset_size=int(self.splits["train"].numel()),
        )

    def split(self, name: str) -> Batch:
        """All examples of split ``name`` as one :class:`Batch`."""
        if name not in self.splits:
            raise KeyError(f"split: unknown split {name!r}; this data set has {', '.join(self.splits)}")
        index = self.splits[name]
        return Batch(
            self.x[index],
            None if self.y is None else self.y[index],
            None if self.d is None else self.d[index],
            int(index.numel()),
        )


def random_splits(
    num_examples: int, fractions: Mapping[str, float], seed: int
) -> dict[str, torch.Tensor]:
    """Split ``range(num_examples)`` at random (fixed by ``seed``) into named parts of the given fractions.

    The last named part takes the remainder, so every example lands in exactly one part.
    """
    total = sum(fractions.values())
    if not np.isclose(total, 1.0):
        raise ValueError(f"fractions: must sum to 1, got {total}")
    permutation = np.random.default_rng(seed).permutation(num_examples)
    splits: dict[str, torch.Tensor] = {}
    start = 0
    names = list(fractions)
    for i, name in enumerate(names):
        stop = num_examples if i == len(names) - 1 else start + int(round(fractions[name] * num_examples))
        splits[name] = torch.as_tensor(np.sort(permutation[start:stop]), dtype=torch.int64)
        start = stop
    return splits


def subsample_indices(num_examples: int, size: int | None, seed: int, parameter: str = "size") -> np.ndarray:
    """Indices of a random subset of ``size`` examples (all of them, in order, when ``size`` is None)."""
    if size is None:
        return np.arange(num_examples)
    if not 1 <= size <= num_examples:
        raise ValueError(f"{parameter}: must be between 1 and {num_examples}, got {size}")
    return np.sort(np.random.default_rng(seed).choice(num_examples, size=size, replace=False))


def iterate_minibatches(
    data: Batch, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None, drop_last: bool = False
):
    """Yield :class:`Batch` slices of ``data`` (already on its device); shuffling uses ``generator`` (CPU)."""
    n = data.size
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    if shuffle:
        order = torch.randperm(n, generator=generator).to(data.x.device)
    else:
        order = torch.arange(n, device=data.x.device)
    stop = n - n % batch_size if (drop_last and n >= batch_size) else n
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield Batch(
            data.x[index],
            None if data.y is None else data.y[index],
            None if data.d is None else data.d[index],
            data.source_size if data.source_size is not None else n,
        )
