"""The divergence guard: stop a run whose ELBO ran away although every term stayed finite.

An optimiser that diverges (a learning rate far too high) rarely produces a NaN: on the project's data sets, with
learning rates of 1 to 100, the ELBO falls to -1e11 to -1e30 within an epoch, stays finite, and without a guard the
run ends "done". The guard looks at the training row of each epoch, the ELBO in nats per dimension of x
(``elbo / prod(event_shape)``, comparable across data sets), and stops the run when

* it is below ``floor`` (default -1e4 nats per dimension); or
* it fell more than ``factor * max(1, |best|)`` below its best epoch so far (default factor 1e3: three orders of
  magnitude).

Working runs stay far from both. Measured (``python benchmarks/divergence.py``: default model sizes, 4 epochs of at
most 20 steps, CPU): at lr 1e-3 the training ELBO per dimension stays between -1.7 and -6.6 for VAE, beta-TCVAE,
InfoVAE and CDVAE on digits, CSVAE on the swiss roll and DIVA on rotated digits; the nine diverging settings of issue
12 (beta-TCVAE at lr 1, 10, 100; InfoVAE 100; VAE 1; CSVAE 1, 3, 5; CDVAE 10) reach -1.6e11 to -4.3e28 in their first
epoch and are all stopped there. A Gaussian likelihood's learned scale is bounded below (1e-3), so a working run
needs residuals of hundreds of scale units to reach the floor. Either threshold can be moved or switched off
(``None``).

The trainer logs the epoch's rows, then raises :class:`DivergenceError` naming the term that dominates the fall
(the largest in magnitude besides ``elbo`` and ``objective``) and keeps the last good checkpoint: the epoch's
checkpoint is not written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from .errors import DivergenceError

DEFAULT_FLOOR = -1e4
DEFAULT_FACTOR = 1e3
SUMMARY_TERMS = ("elbo", "objective")


@dataclass
class DivergenceGuard:
    """Watches the training row's ELBO per dimension; ``dimensions`` is the number of dimensions of x."""

    dimensions: int
    term_names: tuple[str, ...]
    floor: float | None = DEFAULT_FLOOR
    factor: float | None = DEFAULT_FACTOR
    best: float = -math.inf
    best_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.dimensions < 1:
            raise ValueError(f"dimensions: must be >= 1, got {self.dimensions}")
        if self.factor is not None and not self.factor > 0:
            raise ValueError(f"divergence_factor: must be > 0 (or None to switch it off), got {self.factor}")
        if self.floor is not None and not math.isfinite(self.floor):
            raise ValueError(f"divergence_floor: must be finite (or None to switch it off), got {self.floor}")

    def per_dimension(self, row: Mapping[str, float]) -> float:
        return float(row["elbo"]) / self.dimensions

    def remember(self, rows: Iterable[Mapping[str, float]]) -> None:
        """Take the best from rows already logged (on resume)."""
        for row in rows:
            if row.get("split") == "train" and "elbo" in row:
                value = self.per_dimension(row)
                if value > self.best:
                    self.best, self.best_epoch = value, int(row["epoch"])

    def check(self, rows: Iterable[Mapping[str, float]]) -> None:
        """Raise :class:`DivergenceError` if the epoch's training row diverged; else update the best."""
        for row in rows:
            if row.get("split") != "train" or "elbo" not in row:
                continue
            value = self.per_dimension(row)
            epoch = int(row["epoch"])
            threshold, rule = self._threshold()
            if threshold is not None and value < threshold:
                term, term_value = self._dominant_term(row)
                raise DivergenceError(
                    f"diverged: the ELBO fell to {value:.3g} nats per dimension of x at epoch {epoch} (split "
                    f"'train'), {rule}; the term that dominates: {term} = {term_value:.3g} (mean per example)",
                    term=term, epoch=epoch, split="train", value=value, threshold=threshold)
            if value > self.best:
                self.best, self.best_epoch = value, epoch

    def _threshold(self) -> tuple[float | None, str]:
        candidates = []
        if self.floor is not None:
            candidates.append((self.floor, f"below the divergence floor {self.floor:.3g}"))
        if self.factor is not None and self.best_epoch is not None:
            relative = self.best - self.factor * max(1.0, abs(self.best))
            candidates.append((relative, f"more than {self.factor:g} x max(1, |best|) below its best "
                                         f"({self.best:.3g} at epoch {self.best_epoch}), i.e. below {relative:.3g}"))
        if not candidates:
            return None, ""
        return max(candidates)  # the stricter of the two

    def _dominant_term(self, row: Mapping[str, float]) -> tuple[str, float]:
        parts = [(abs(float(row[name])), name) for name in self.term_names
                 if name not in SUMMARY_TERMS and name in row]
        if not parts:
            return "elbo", float(row["elbo"])
        _, name = max(parts)
        return name, float(row[name])
