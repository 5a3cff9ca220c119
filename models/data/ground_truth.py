"""Ground-truth factor sources for the disentanglement metrics (:mod:`elbocheck.estimators.ground_truth`).

* :class:`SpritesFactors`: the procedural sprites over the whole dSprites grid (3 x 6 x 40 x 32 x 32 factor
  values), any combination rendered on demand; factors are drawn uniformly, as in disentanglement_lib's dSprites.
* :class:`DataSetFactors`: a data set with a factor table (``DataSet.factors``, e.g. a local dSprites ``.npz`` or a
  sprites subset): factors are drawn as the rows of its examples, an observation is an example with those values,
  and a batch with one factor fixed is drawn among the examples sharing a value of it (so every combination exists).
"""

from __future__ import annotations

import numpy as np
import torch

from .core import DataSet
from .sprites import FACTOR_NAMES, FACTOR_SIZES, render_sprites


class SpritesFactors:
    """The sprites grid as a ground-truth source (images (num, 1, 64, 64), float32 in {0, 1})."""

    factor_sizes = FACTOR_SIZES
    factor_names = FACTOR_NAMES

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(size, size=num) for size in self.factor_sizes], axis=1).astype(np.int64)

    def observations(self, factors: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return torch.as_tensor(render_sprites(factors), dtype=torch.float32).unsqueeze(1)


class DataSetFactors:
    """The examples of a data set with factors (all of them, or one ``split``), as a ground-truth source."""

    def __init__(self, dataset: DataSet, split: str | None = None) -> None:
        if dataset.factors is None:
            raise ValueError(f"data: data set {dataset.name!r} has no ground-truth factors; the disentanglement "
                             "metrics need them (sprites, dsprites)")
        if split is not None and split not in dataset.splits:
            raise ValueError(f"split: unknown split {split!r}; this data set has {', '.join(dataset.splits)}")
        self.index = np.arange(len(dataset)) if split is None else dataset.splits[split].numpy()
        self.x = dataset.x
        self.table = dataset.factors.numpy()[self.index].astype(np.int64)
        self.factor_names = tuple(dataset.factor_names) or tuple(f"factor_{k}" for k in range(self.table.shape[1]))
        self.factor_sizes = tuple(int(self.table[:, k].max()) + 1 for k in range(self.table.shape[1]))
        self._rows_by_combination: dict[tuple, np.ndarray] = {}
        for row, combination in enumerate(map(tuple, self.table)):
            self._rows_by_combination.setdefault(combination, []).append(row)
        self._rows_by_combination = {key: np.asarray(rows) for key, rows in self._rows_by_combination.items()}

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return self.table[rng.integers(len(self.table), size=num)]

    def sample_factors_fixing(self, num: int, factor: int, rng: np.random.Generator) -> np.ndarray:
        value = self.table[rng.integers(len(self.table)), factor]
        rows = np.flatnonzero(self.table[:, factor] == value)
        return self.table[rows[rng.integers(len(rows), size=num)]]

    def observations(self, factors: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        picks = []
        for combination in map(tuple, np.asarray(factors, dtype=np.int64)):
            rows = self._rows_by_combination.get(combination)
            if rows is None:
                raise ValueError(f"factors: no example of this data set has the factor values {combination}")
            picks.append(rows[rng.integers(len(rows))])
        return self.x[torch.as_tensor(self.index[np.asarray(picks, dtype=np.int64)])]
