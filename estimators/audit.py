"""Audit someone else's loss terms: feed a loss function synthetic encoder outputs whose exact decomposition is known,
over batch sizes, data-set sizes, latent dimensions and posterior widths, and judge each term it returns.

What is audited. A minibatch loss that reports the mutual information I(x; z), the total correlation, the
dimension-wise KL or the KL of the beta-TCVAE decomposition (Chen et al. 2018), or the log densities they are built
from (log q(z|x), log q(z), sum_j log q(z_j), log p(z)), estimates data-set level quantities of the empirical
aggregate posterior q(z) = (1/N) sum_n q(z|x_n) from a batch of M of the N points. The audit draws the data sets of
:mod:`.audit_inputs` (the linear-Gaussian testbed, best mean-field encoder), and in each of ``passes`` passes draws
z_n ~ q(z|x_n) for every point, evaluates the exact mixture at every draw, shuffles the points into batches of each
size M (as a data loader does) and calls the function on up to ``max_batches_per_pass`` batches per size. Each
returned value is compared with the exact value on the same draws: the per-batch difference d = (returned batch
mean) - (batch mean of the exact per-example values) has expectation equal to the function's bias, and pairing on the
same draws removes most of the sampling noise.

Statistics. Per (setting, M, quantity) the bias is the mean of the passes' mean differences and its standard error
their standard deviation / sqrt(passes) (passes are independent; batches within a pass are not). A bias is
*significant* when it exceeds both t * SE, with t the two-sided Student-t critical value for ``passes - 1`` degrees of
freedom at family-wise error ``family_error`` Bonferroni-split over every cell of the audit, and ``resolution`` nats
(the smallest bias reported: float32 rounding of the audited code stays far below the default 1e-4).

Verdicts, per quantity, over all settings:

* **wrong**: significant bias at M = N. With the whole data set as the batch every correct estimator of these
  quantities is the exact mixture (every weight 1/N) and has no bias at all; a bias left there is a bug: a wrong
  weight matrix, a shifted normaliser, a sign, a dropped constant.
* **biased**: significant bias at some M < N but none at M = N: the estimator is biased at small batches and
  consistent as the batch grows to the data set (MWS and MSS are of this kind; the log of an unbiased estimate of
  q(z) is biased down by Jensen's inequality). The report gives the bias at each M and |bias| ~ M^slope.
* **consistent**: no significant bias anywhere.

Diagnosis (:mod:`.audit_fingerprints`): the function's values are compared on every batch with those of known
estimators (correct and buggy weight matrices) and with the exact values, to name what it computes ("equals the MSS
weight matrix with columns set instead of the diagonal", "MWS shifted by +log N", "sign flipped", "summed over the
batch"). The verdict does not depend on the diagnosis.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.stats
import torch

from .audit_adapters import AuditCallError, AuditedFunction, quantity_order
from .audit_fingerprints import KNOWN_ESTIMATORS, describe_constant, known_estimator_values
from .audit_inputs import AuditSetting, exact_pass, exact_value, synthetic_encoder_outputs

__all__ = ["AuditCell", "AuditGrid", "AuditReport", "QuantityVerdict", "audit_loss"]

VERDICTS = ("consistent", "biased", "wrong")
MATCH_RELATIVE_TOLERANCE = 1e-4  # identical inputs, different rounding: |a - b| <= 1e-4 (1 + |b|) counts as equal


@dataclass(frozen=True)
class AuditGrid:
    """The synthetic data sets (every combination of size, dimension and width) and the batch sizes tried on each
    (those below N, and always M = N)."""

    dataset_sizes: tuple[int, ...] = (64, 256)
    latent_dims: tuple[int, ...] = (3, 10)
    widths: tuple[float, ...] = (0.1, 0.5)
    batch_sizes: tuple[int, ...] = (8, 32, 128)
    passes: int = 20
    max_batches_per_pass: int = 8

    def __post_init__(self) -> None:
        for name in ("dataset_sizes", "latent_dims", "widths", "batch_sizes"):
            if not getattr(self, name):
                raise ValueError(f"argument '{name}' must not be empty")
        for name in ("dataset_sizes", "latent_dims", "batch_sizes"):
            bad = [v for v in getattr(self, name) if isinstance(v, bool) or not isinstance(v, int) or v < 1]
            if bad:
                raise ValueError(f"argument '{name}' must hold positive ints; got {bad}")
        if any(b < 2 for b in self.batch_sizes):
            raise ValueError(f"argument 'batch_sizes' must hold sizes of at least 2; got {list(self.batch_sizes)}")
        if isinstance(self.passes, bool) or not isinstance(self.passes, int) or self.passes < 3:
            raise ValueError(f"argument 'passes' must be an int of at least 3 (for a standard error); got {self.passes}")
        if self.max_batches_per_pass < 1:
            raise ValueError(f"argument 'max_batches_per_pass' must be at least 1; got {self.max_batches_per_pass}")
        for setting in self.settings():  # validates sizes and widths
            del setting

    def settings(self) -> list[AuditSetting]:
        return [AuditSetting(n, d, w) for n in self.dataset_sizes for d in self.latent_dims for w in self.widths]

    def batch_ladder(self, dataset_size: int) -> list[int]:
        return sorted({b for b in self.batch_sizes if b < dataset_size} | {dataset_size})


@dataclass(frozen=True)
class AuditCell:
    """One quantity at one batch size in one setting: the bias (nats) with its standard error over passes, the mean
    value returned, the exact value (and its Monte-Carlo standard error), whether the bias is significant."""

    setting: AuditSetting
    batch_size: int
    quantity: str
    bias: float
    standard_error: float
    returned: float
    exact: float
    exact_standard_error: float
    significant: bool

    def as_dict(self) -> dict[str, Any]:
        return {"dataset_size": self.setting.dataset_size, "latent_dim": self.setting.latent_dim,
                "width": self.setting.width, "batch_size": self.batch_size, "quantity": self.quantity,
                "bias": self.bias, "standard_error": self.standard_error, "returned": self.returned,
                "exact": self.exact, "exact_standard_error": self.exact_standard_error,
                "significant": self.significant}


@dataclass(frozen=True)
class QuantityVerdict:
    quantity: str
    verdict: str
    summary: str
    diagnoses: tuple[str, ...]
    cells: tuple[AuditCell, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "verdict": self.verdict, "summary": self.summary,
                "diagnoses": list(self.diagnoses), "cells": [c.as_dict() for c in self.cells]}


@dataclass(frozen=True)
class AuditReport:
    label: str
    signature: str
    grid: AuditGrid
    dtype: str
    critical_value: float
    resolution: float
    verdicts: dict[str, QuantityVerdict]
    ignored: tuple[str, ...]
    seconds: float

    @property
    def wrong(self) -> list[str]:
        return [name for name, verdict in self.verdicts.items() if verdict.verdict == "wrong"]

    @property
    def ok(self) -> bool:
        """No quantity is wrong (consistent or biased-but-consistent as the batch grows)."""
        return not self.wrong

    def verdict(self, quantity: str) -> str:
        if quantity not in self.verdicts:
            raise KeyError(f"quantity: {quantity!r} was not audited; audited: {', '.join(self.verdicts)}")
        return self.verdicts[quantity].verdict

    def as_dict(self) -> dict[str, Any]:
        grid = self.grid
        return {
            "function": self.label, "signature": self.signature, "dtype": self.dtype,
            "grid": {"dataset_sizes": list(grid.dataset_sizes), "latent_dims": list(grid.latent_dims),
                     "widths": list(grid.widths), "batch_sizes": list(grid.batch_sizes), "passes": grid.passes,
                     "max_batches_per_pass": grid.max_batches_per_pass},
            "critical_value": self.critical_value, "resolution": self.resolution,
            "verdicts": {name: verdict.as_dict() for name, verdict in self.verdicts.items()},
            "ignored": list(self.ignored), "seconds": self.seconds,
        }

    def table(self, *, show_cells: bool = True) -> str:
        """The verdicts, each with its summary and diagnosis, and (``show_cells``) the bias at each batch size."""
        grid = self.grid
        lines = [f"audit of {self.label} (signature {self.signature}, {self.dtype}): "
                 f"{len(grid.settings())} settings, batch sizes {', '.join(map(str, grid.batch_sizes))} and N, "
                 f"{grid.passes} passes; significant = beyond {self.critical_value:.1f} standard errors and "
                 f"{self.resolution:g} nats"]
        if self.ignored:
            lines.append(f"not audited (unknown names): {', '.join(self.ignored)}")
        for name, verdict in self.verdicts.items():
            lines.append("")
            lines.append(f"{name}: {verdict.verdict.upper()} -- {verdict.summary}")
            lines.extend(f"  diagnosis: {text}" for text in verdict.diagnoses)
            if show_cells:
                lines.extend(_cell_table(verdict.cells, grid))
        return "\n".join(lines)


def _cell_table(cells: Sequence[AuditCell], grid: AuditGrid) -> list[str]:
    """Bias +- SE per batch size (columns), one row per setting; '*' marks a significant bias."""
    by_setting: dict[AuditSetting, dict[int, AuditCell]] = defaultdict(dict)
    for cell in cells:
        by_setting[cell.setting][cell.batch_size] = cell
    sizes = sorted(set(grid.batch_sizes))
    lines = [f"  {'setting':<26}{'exact':>18}" + "".join(f"{'M=' + str(b):>20}" for b in sizes) + f"{'M=N':>20}"]
    for setting, row in by_setting.items():
        first = next(iter(row.values()))
        exact = f"{first.exact:.3f} +- {first.exact_standard_error:.3f}"
        below = [row.get(b) if b < setting.dataset_size else None for b in sizes]
        lines.append(f"  {setting.label:<26}{exact:>18}"
                     + "".join(f"{_format_bias(c):>20}" for c in below + [row.get(setting.dataset_size)]))
    return lines


def _format_bias(cell: AuditCell | None) -> str:
    if cell is None:
        return "-"
    return f"{cell.bias:+.4f} +- {cell.standard_error:.4f}{'*' if cell.significant else ' '}"


# ----------------------------------------------------------------------------------------------------------------------
def audit_loss(
    function: Callable[..., Any] | AuditedFunction,
    *,
    signature: str = "auto",
    names: Mapping[str, str | None] | Sequence[str | None] | None = None,
    options: Mapping[str, Any] | None = None,
    grid: AuditGrid | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    family_error: float = 1e-3,
    resolution: float = 1e-4,
    progress: Callable[[str], None] | None = None,
) -> AuditReport:
    """Audit the terms ``function`` returns (see the module docstring and :mod:`.audit_adapters` for ``signature``,
    ``names`` and ``options``) on the synthetic data sets of ``grid``; ``dtype`` is what the function is fed.

    Raises ``ValueError`` for bad arguments (naming the argument) and :class:`.audit_adapters.AuditCallError` when
    the function raises or returns something unreadable (naming the setting and batch size).
    """
    grid = grid or AuditGrid()
    if not 0.0 < family_error < 1.0:
        raise ValueError(f"argument 'family_error' must lie in (0, 1); got {family_error}")
    if not (math.isfinite(resolution) and resolution >= 0):
        raise ValueError(f"argument 'resolution' must be a non-negative number of nats; got {resolution}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"argument 'dtype' must be torch.float32 or torch.float64; got {dtype}")
    audited = function if isinstance(function, AuditedFunction) else AuditedFunction(
        function, signature=signature, names=names, options=dict(options or {}))
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    runs = _Runs()
    try:
        for index, setting in enumerate(grid.settings()):
            if progress is not None:
                progress(f"setting {index + 1}/{len(grid.settings())}: {setting.label}")
            outputs = synthetic_encoder_outputs(setting, seed=seed * 1000 + index)
            _run_setting(audited, outputs, grid, generator, dtype, runs)
            runs.completed[setting] = outputs
    except AuditCallError as error:
        partial = _report(audited, grid, dtype, runs, family_error, resolution, start) if runs.completed else None
        raise AuditCallError(str(error), partial_report=partial) from error.__cause__
    return _report(audited, grid, dtype, runs, family_error, resolution, start)


class _Runs:
    """What the passes collected: per (setting, M, quantity) the passes' mean differences, returned values and exact
    values; the fingerprints; the settings completed (with their encoder outputs)."""

    def __init__(self) -> None:
        self.differences: dict[tuple, list[float]] = defaultdict(list)
        self.returned: dict[tuple, list[float]] = defaultdict(list)
        self.reference: dict[tuple, list[float]] = defaultdict(list)
        self.fingerprints = _Fingerprints()
        self.completed: dict[AuditSetting, Any] = {}


def _run_setting(audited: AuditedFunction, outputs, grid: AuditGrid, generator: torch.Generator,
                 dtype: torch.dtype, runs: _Runs) -> None:
    setting = outputs.setting
    for _ in range(grid.passes):
        exact = exact_pass(outputs, generator)
        order = torch.randperm(setting.dataset_size, generator=generator)
        for batch_size in grid.batch_ladder(setting.dataset_size):
            pass_differences: dict[str, list[float]] = defaultdict(list)
            pass_returned: dict[str, list[float]] = defaultdict(list)
            pass_reference: dict[str, list[float]] = defaultdict(list)
            for b in range(min(grid.max_batches_per_pass, setting.dataset_size // batch_size)):
                index_set = order[b * batch_size : (b + 1) * batch_size]
                z, mean, log_var = exact.z[index_set], outputs.mean[index_set], outputs.log_var[index_set]
                try:
                    values = audited(z.to(dtype), mean.to(dtype), log_var.to(dtype), setting.dataset_size)
                except AuditCallError as error:
                    raise AuditCallError(f"{error} (at batch size {batch_size}, {setting.label})") from error
                for quantity, value in values.items():
                    reference = float(exact.values[quantity][index_set].mean())
                    pass_differences[quantity].append(value - reference)
                    pass_returned[quantity].append(value)
                    pass_reference[quantity].append(reference)
                runs.fingerprints.add(setting, batch_size, values,
                                      known_estimator_values(z, mean, log_var, setting.dataset_size))
            for quantity in pass_differences:
                key = (setting, batch_size, quantity)
                runs.differences[key].append(float(np.mean(pass_differences[quantity])))
                runs.returned[key].append(float(np.mean(pass_returned[quantity])))
                runs.reference[key].append(float(np.mean(pass_reference[quantity])))


def _report(audited: AuditedFunction, grid: AuditGrid, dtype: torch.dtype, runs: _Runs, family_error: float,
            resolution: float, start: float) -> AuditReport:
    keys = [key for key in runs.differences if key[0] in runs.completed]
    critical = float(scipy.stats.t.ppf(1.0 - family_error / (2.0 * max(1, len(keys))), grid.passes - 1))
    cells: dict[str, list[AuditCell]] = defaultdict(list)
    for key in keys:
        setting, batch_size, quantity = key
        values = runs.differences[key]
        bias = float(np.mean(values))
        standard_error = float(np.std(values, ddof=1) / math.sqrt(len(values)))
        known = exact_value(runs.completed[setting], quantity)
        if known is None:  # a log density: its data-set mean from the passes' exact values at M = N
            full = runs.reference[(setting, setting.dataset_size, quantity)]
            known = (float(np.mean(full)), float(np.std(full, ddof=1) / math.sqrt(len(full))))
        cells[quantity].append(AuditCell(setting, batch_size, quantity, bias, standard_error,
                                         float(np.mean(runs.returned[key])), known[0], known[1],
                                         abs(bias) > max(critical * standard_error, resolution)))
    verdicts = {quantity: _judge(quantity, cells[quantity], runs.fingerprints, critical, resolution)
                for quantity in quantity_order(list(cells))}
    return AuditReport(audited.label, audited.signature, grid, str(dtype).replace("torch.", ""), critical, resolution,
                       verdicts, audited.ignored, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------------------------------
def _judge(quantity: str, cells: list[AuditCell], fingerprints: _Fingerprints, critical: float,
           resolution: float) -> QuantityVerdict:
    full = [c for c in cells if c.batch_size == c.setting.dataset_size]
    smaller = [c for c in cells if c.batch_size < c.setting.dataset_size]
    wrong = [c for c in full if c.significant]
    diagnoses = tuple(fingerprints.diagnose(quantity)) or tuple(_offset_diagnoses(wrong, critical))
    if wrong:
        worst = max(wrong, key=lambda c: abs(c.bias))
        summary = (f"biased at M = N, where the batch is the whole data set and a correct estimator is exact: "
                   f"{worst.bias:+.4f} +- {worst.standard_error:.4f} nats ({worst.setting.label}; exact "
                   f"{worst.exact:.3f}); wrong in {len(wrong)} of {len(full)} settings")
        return QuantityVerdict(quantity, "wrong", summary, diagnoses, tuple(cells))
    biased = [c for c in smaller if c.significant]
    if biased:
        worst = max(biased, key=lambda c: abs(c.bias))
        slope = _scaling_slope([c for c in smaller if c.setting == worst.setting and c.significant])
        scaling = f"; |bias| ~ M^{slope:+.2f} there" if slope is not None else ""
        trend = ", ".join(f"{c.bias:+.3f} (M={c.batch_size})" for c in cells if c.setting == worst.setting)
        summary = (f"biased at small batches, consistent as the batch grows to the data set (no significant bias at "
                   f"M = N in any setting). Largest: {worst.bias:+.4f} +- {worst.standard_error:.4f} nats at "
                   f"M = {worst.batch_size} ({worst.setting.label}; exact {worst.exact:.3f}){scaling}; there by "
                   f"batch size: {trend}")
        return QuantityVerdict(quantity, "biased", summary, diagnoses, tuple(cells))
    summary = (f"no significant bias at any batch size in any setting (largest |bias| "
               f"{max(abs(c.bias) for c in cells):.2g} nats)")
    return QuantityVerdict(quantity, "consistent", summary, diagnoses, tuple(cells))


def _scaling_slope(cells: list[AuditCell]) -> float | None:
    """The slope of log |bias| against log M over the significant cells below N (``None`` with fewer than two)."""
    if len(cells) < 2:
        return None
    sizes = np.log([c.batch_size for c in cells])
    magnitudes = np.log([abs(c.bias) for c in cells])
    return float(np.polyfit(sizes, magnitudes, 1)[0])


def _offset_diagnoses(wrong: list[AuditCell], critical: float) -> list[str]:
    """For biases at M = N: a constant of a recognisable form in every wrong setting, a sign flip, a sum."""
    if not wrong:
        return []
    texts = []
    for cell in wrong:
        tolerance = critical * cell.standard_error + MATCH_RELATIVE_TOLERANCE * (1 + abs(cell.exact))
        texts.append(describe_constant(cell.bias, cell.setting.dataset_size, cell.batch_size,
                                       cell.setting.latent_dim, tolerance))
    if all(texts) and len(set(texts)) == 1:
        return [f"offset by a constant {texts[0]} at M = N in every wrong setting (a dropped or extra normaliser or "
                f"constant)"]
    if all(abs(c.returned + c.exact) <= critical * c.standard_error + MATCH_RELATIVE_TOLERANCE * (1 + abs(c.exact))
           + 2 * abs(c.exact_standard_error) * critical for c in wrong):
        return ["the sign is flipped (the returned value is minus the exact one)"]
    return []


class _Fingerprints:
    """Per (estimator, quantity, setting, M): the differences returned - known-estimator value on every batch, and
    the known values (for the sign and sum checks)."""

    def __init__(self) -> None:
        self.differences: dict[tuple, list[float]] = defaultdict(list)
        self.known: dict[tuple, list[float]] = defaultdict(list)
        self.returned: dict[tuple, list[float]] = defaultdict(list)

    def add(self, setting: AuditSetting, batch_size: int, returned: Mapping[str, float],
            known: Mapping[str, Mapping[str, float]]) -> None:
        for estimator, values in known.items():
            for quantity, value in values.items():
                if quantity in returned:
                    key = (estimator, quantity, setting, batch_size)
                    self.differences[key].append(returned[quantity] - value)
                    self.known[key].append(value)
                    self.returned[key].append(returned[quantity])

    def diagnose(self, quantity: str) -> list[str]:
        """The known estimators the returned values equal on every batch; failing any, those they equal up to a
        recognisable constant, a sign or a factor M."""
        exact, related = [], []
        for estimator in KNOWN_ESTIMATORS:
            keys = [key for key in self.differences if key[0] == estimator.name and key[1] == quantity]
            if not keys:
                continue
            match = self._match(keys)
            if match == "equals ":
                exact.append(f"equals {estimator.name} on every batch: {estimator.description}")
            elif match is not None:
                related.append(f"{match}{estimator.name} on every batch ({estimator.description})")
        return exact or related

    def _match(self, keys: list[tuple]) -> str | None:
        """'equals ', 'minus ', 'M times ', 'c times ', 'shifted by +log N from ' style prefixes, or None; tested on
        every batch of every cell."""
        def close(a: np.ndarray, b: np.ndarray) -> bool:
            return bool(np.all(np.abs(a - b) <= MATCH_RELATIVE_TOLERANCE * (1 + np.abs(b))))

        returned = {k: np.asarray(self.returned[k]) for k in keys}
        known = {k: np.asarray(self.known[k]) for k in keys}
        if all(close(returned[k], known[k]) for k in keys):
            return "equals "
        if all(close(returned[k], -known[k]) for k in keys):
            return "minus (sign flipped) "
        if all(close(returned[k], k[3] * known[k]) for k in keys):
            return "M times (summed over the batch instead of averaged) "
        pooled_known = np.concatenate([known[k] for k in keys])
        if np.all(np.abs(pooled_known) > 1e-6):  # a constant factor (a weight such as beta left in the term)
            factor = float(np.median(np.concatenate([returned[k] for k in keys]) / pooled_known))
            if abs(factor - 1.0) > 1e-3 and all(close(returned[k], factor * known[k]) for k in keys):
                return f"{factor:.4g} times (a constant factor) "
        shifts = []
        for k in keys:
            differences = returned[k] - known[k]
            constant = float(np.mean(differences))
            if not close(returned[k], known[k] + constant):
                return None
            setting, batch_size = k[2], k[3]
            shifts.append(describe_constant(constant, setting.dataset_size, batch_size, setting.latent_dim,
                                            MATCH_RELATIVE_TOLERANCE * (1 + float(np.max(np.abs(known[k]))))))
        if all(shifts) and len(set(shifts)) == 1:
            return f"shifted by {shifts[0]} from "
        return None
