"""Effect sizes across seeds: paired differences (the main comparison: arms of one seed share their data split and
initialisation seed) with a t-interval, a two-sided paired t-test and d_z; Holm's step-down correction of a family
of tests; and, for unpaired groups, the difference of two means with a Welch t-interval and Hedges' g.

Paired (:func:`paired_difference`), for differences d_i = a_i - b_i over n pairing units (seeds):

    mean d, SE = s_d / sqrt(n), CI = mean -+ t_{n-1, (1 + confidence)/2} SE, t = mean / SE (two-sided p),
    d_z = mean / s_d                                   (Cohen 1988's standardized paired effect)

computed with scipy.stats.ttest_rel. Holm (1979) (:func:`holm`): with p-values sorted p_(1) <= ... <= p_(m),
adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)); reject where the adjusted p is below alpha. This
controls the family-wise error rate at alpha under any dependence between the tests.

For the values of a measure in arm A (a_1..a_n, one per seed) and arm B (b_1..b_m),

    difference  = mean(a) - mean(b)
    SE          = sqrt(s_a^2 / n + s_b^2 / m)                      (s^2: unbiased sample variances)
    df          = SE^4 / ((s_a^2/n)^2 / (n - 1) + (s_b^2/m)^2 / (m - 1))     (Welch-Satterthwaite)
    CI          = difference -+ t_{df, (1 + confidence)/2} * SE                  (Welch 1947)

and the standardized effect (Hedges 1981)

    g = J * difference / s_pooled,   s_pooled^2 = ((n-1) s_a^2 + (m-1) s_b^2) / (n + m - 2),
    J = 1 - 3 / (4 (n + m) - 9)      (small-sample correction of Cohen's d).

The interval treats the seeds of the two arms as independent samples (each seed trains each arm from its own
initialisation; the data split is shared, so a paired interval would be a little tighter where the split matters).
With three seeds per arm the t quantile is large (about 4.3 at df = 2): a CI that excludes 0 then means a large,
consistent effect, and one that includes 0 does not show there is none.

:func:`mean_interval` gives the one-sample t-interval of one arm's mean, used in the report's tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["DifferenceEstimate", "MeanEstimate", "PairedEstimate", "difference_in_means", "holm", "mean_interval",
           "paired_difference"]


@dataclass(frozen=True)
class DifferenceEstimate:
    """mean(a) - mean(b) with its Welch t-interval at level ``confidence`` and Hedges' g (NaN where undefined)."""

    mean_a: float
    mean_b: float
    difference: float
    lower: float
    upper: float
    hedges_g: float
    n_a: int
    n_b: int
    degrees_of_freedom: float
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """True when the interval is finite and lies entirely above or entirely below 0."""
        return math.isfinite(self.lower) and math.isfinite(self.upper) and (self.lower > 0 or self.upper < 0)


@dataclass(frozen=True)
class MeanEstimate:
    """The mean of ``n`` values with its one-sample t-interval (NaN bounds for n < 2)."""

    mean: float
    lower: float
    upper: float
    n: int


def _finite_values(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(list(values), dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"argument '{name}' must be a 1-D sequence of numbers; got shape {array.shape}")
    return array[np.isfinite(array)]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"argument 'confidence' must lie in (0, 1); got {confidence}")


def difference_in_means(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> DifferenceEstimate:
    """Welch's interval for mean(a) - mean(b) and Hedges' g (module docstring). Non-finite values are dropped.

    Each arm needs at least 2 finite values for an interval; with fewer, or with zero variance in both arms, the
    bounds are NaN (no interval is claimed). Hedges' g is NaN when the pooled standard deviation is 0.
    """
    from scipy import stats

    _check_confidence(confidence)
    values_a, values_b = _finite_values(a, "a"), _finite_values(b, "b")
    n_a, n_b = len(values_a), len(values_b)
    mean_a = float(values_a.mean()) if n_a else math.nan
    mean_b = float(values_b.mean()) if n_b else math.nan
    difference = mean_a - mean_b
    lower = upper = degrees_of_freedom = hedges_g = math.nan
    if n_a >= 2 and n_b >= 2:
        var_a, var_b = float(values_a.var(ddof=1)), float(values_b.var(ddof=1))
        share_a, share_b = var_a / n_a, var_b / n_b
        standard_error = math.sqrt(share_a + share_b)
        if standard_error > 0:
            degrees_of_freedom = (share_a + share_b) ** 2 / (share_a**2 / (n_a - 1) + share_b**2 / (n_b - 1))
            half_width = float(stats.t.ppf(0.5 + confidence / 2.0, degrees_of_freedom)) * standard_error
            lower, upper = difference - half_width, difference + half_width
        pooled = math.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
        if pooled > 0:
            correction = 1.0 - 3.0 / (4.0 * (n_a + n_b) - 9.0)
            hedges_g = correction * difference / pooled
    return DifferenceEstimate(mean_a, mean_b, difference, lower, upper, hedges_g, n_a, n_b, degrees_of_freedom,
                              confidence)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> MeanEstimate:
    """Mean with the one-sample t-interval mean -+ t_{n-1} s / sqrt(n) (non-finite values dropped)."""
    from scipy import stats

    _check_confidence(confidence)
    array = _finite_values(values, "values")
    n = len(array)
    if n == 0:
        return MeanEstimate(math.nan, math.nan, math.nan, 0)
    mean = float(array.mean())
    if n < 2:
        return MeanEstimate(mean, math.nan, math.nan, n)
    half_width = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * float(array.std(ddof=1)) / math.sqrt(n)
    return MeanEstimate(mean, mean - half_width, mean + half_width, n)


@dataclass(frozen=True)
class PairedEstimate:
    """mean(a_i - b_i) over the pairs with both values finite: t-interval, two-sided paired t-test, d_z."""

    mean_a: float
    mean_b: float
    difference: float
    lower: float
    upper: float
    t_statistic: float
    p_value: float
    d_z: float
    n: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        return math.isfinite(self.lower) and math.isfinite(self.upper) and (self.lower > 0 or self.upper < 0)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedEstimate:
    """Paired comparison of ``a[i]`` with ``b[i]`` (module docstring). Pairs with a non-finite value are dropped;
    with fewer than 2 pairs, or all differences equal, there is no interval and no test (NaN): a constant
    difference is reported as it is, with NaN p."""
    from scipy import stats

    _check_confidence(confidence)
    first, second = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"arguments 'a' and 'b' must be 1-D and of equal length; got shapes {first.shape} and "
                         f"{second.shape}")
    keep = np.isfinite(first) & np.isfinite(second)
    first, second = first[keep], second[keep]
    n = int(keep.sum())
    nan = math.nan
    if n == 0:
        return PairedEstimate(nan, nan, nan, nan, nan, nan, nan, nan, 0, confidence)
    differences = first - second
    mean = float(differences.mean())
    lower = upper = t_statistic = p_value = d_z = nan
    if n >= 2 and float(differences.std(ddof=1)) > 0:
        result = stats.ttest_rel(first, second)
        interval = result.confidence_interval(confidence)
        lower, upper = float(interval.low), float(interval.high)
        t_statistic, p_value = float(result.statistic), float(result.pvalue)
        d_z = mean / float(differences.std(ddof=1))
    return PairedEstimate(float(first.mean()), float(second.mean()), mean, lower, upper, t_statistic, p_value, d_z,
                          n, confidence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (NaN stays NaN and does not count towards m)."""
    values = np.asarray(list(p_values), dtype=np.float64)
    adjusted = np.full(values.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    m = len(finite)
    running = 0.0
    for rank, index in enumerate(finite[np.argsort(values[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * float(values[index])))
        adjusted[index] = running
    return adjusted.tolist()
