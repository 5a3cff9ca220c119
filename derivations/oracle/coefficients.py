"""Coefficient values for instances: exact rationals in the declared ranges (docs/semantics.md section 6)."""

from __future__ import annotations

import zlib
from fractions import Fraction

import numpy as np

from .declaration import Structure
from .errors import OracleError

#: Width of the interval drawn from when a range is open on one side or both.
SPAN = 4
#: Distances drawn beyond SPAN on an unbounded side (8 to 1024): a claim that fails only for a large weight
#: (``(5 - beta) KL >= 0`` for ``beta >= 0``) is otherwise never seen.
FAR = tuple(Fraction(2 ** k) for k in range(3, 11))


def _far(rng: np.random.Generator) -> Fraction:
    return FAR[int(rng.integers(len(FAR)))]


def draw_coefficients(structure: Structure, rng: np.random.Generator) -> dict[str, Fraction]:
    """One value per declared coefficient, a multiple of 1/8 in its range; a closed end is drawn with probability
    1/4 (bounds are often where a claim fails: ``beta = 1``), and on an unbounded side a far value (8 to 1024 from
    the end, or from 0) with probability 1/4."""
    values = {}
    for name, (low, high, low_open, high_open) in structure.coefficients.items():
        if low is None and high is None:
            if rng.random() < 0.25:
                values[name] = _far(rng) * (1 if rng.random() < 0.5 else -1)
                continue
            low, high = Fraction(-SPAN), Fraction(SPAN)
        elif high is None:
            if rng.random() < 0.25:
                values[name] = low + _far(rng)
                continue
            high = low + SPAN
            if rng.random() < 0.25 and not low_open:
                values[name] = low
                continue
        elif low is None:
            if rng.random() < 0.25:
                values[name] = high - _far(rng)
                continue
            low = high - SPAN
            if rng.random() < 0.25 and not high_open:
                values[name] = high
                continue
        elif rng.random() < 0.25 and not (low_open or high_open):
            values[name] = low if rng.random() < 0.5 else high
            continue
        steps = int((high - low) * 8)
        first, last = (1 if low_open else 0), (steps - 1 if high_open else steps)
        if steps > 0 and first <= last:
            values[name] = low + Fraction(int(rng.integers(first, last + 1)), 8)
        elif low == high:
            values[name] = low
        else:  # a narrow open range: its midpoint
            values[name] = (low + high) / 2
    return values


def check_coefficients(structure: Structure, values: dict, where: str) -> dict[str, Fraction]:
    """Exact values for declared coefficients, each in its range (a coefficient without a value is an error only
    when a step uses it)."""
    out = {}
    for name, (low, high, low_open, high_open) in structure.coefficients.items():
        if name not in values:
            continue
        value = values[name]
        value = Fraction(value) if isinstance(value, (int, float, Fraction)) else Fraction(str(value))
        if (low is not None and (value < low or (low_open and value == low))) or \
                (high is not None and (value > high or (high_open and value == high))):
            raise OracleError(f"{where}: {name} = {value} is outside its declared range "
                              f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]")
        out[name] = value
    extra = set(values) - set(structure.coefficients)
    if extra:
        raise OracleError(f"{where}: values for undeclared coefficients {', '.join(sorted(extra))}")
    return out


def version_rng(seed: int, label: str) -> np.random.Generator:
    """A generator for one version table, fixed by the instance's seed and the table's label (so that it does not
    depend on the order in which version tables are first needed)."""
    return np.random.default_rng([seed, zlib.crc32(label.encode())])
