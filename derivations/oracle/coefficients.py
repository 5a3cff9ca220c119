"""Coefficient values for instances: exact rationals in the declared ranges (docs/semantics.md section 6)."""

from __future__ import annotations

import zlib
from fractions import Fraction

import numpy as np

from .declaration import Structure
from .errors import OracleError

#: Width of the interval drawn from when a range is open on one side or both.
SPAN = 4


def draw_coefficients(structure: Structure, rng: np.random.Generator) -> dict[str, Fraction]:
    """One value per declared coefficient, a multiple of 1/8 in its range; a closed end is drawn with probability
    1/4 (bounds are often where a claim fails: ``beta = 1``)."""
    values = {}
    for name, (low, high) in structure.coefficients.items():
        if low is None and high is None:
            low, high = Fraction(-SPAN), Fraction(SPAN)
        elif high is None:
            high = low + SPAN
            if rng.random() < 0.25:
                values[name] = low
                continue
        elif low is None:
            low = high - SPAN
            if rng.random() < 0.25:
                values[name] = high
                continue
        elif rng.random() < 0.25:
            values[name] = low if rng.random() < 0.5 else high
            continue
        steps = int((high - low) * 8)
        values[name] = low + Fraction(int(rng.integers(0, steps + 1)), 8) if steps > 0 else low
    return values


def check_coefficients(structure: Structure, values: dict, where: str) -> dict[str, Fraction]:
    """Exact values for declared coefficients, each in its range (a coefficient without a value is an error only
    when a step uses it)."""
    out = {}
    for name, (low, high) in structure.coefficients.items():
        if name not in values:
            continue
        value = values[name]
        value = Fraction(value) if isinstance(value, (int, float, Fraction)) else Fraction(str(value))
        if (low is not None and value < low) or (high is not None and value > high):
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
