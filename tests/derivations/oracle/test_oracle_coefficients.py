"""Coefficient draws of the oracle's instances: every value in its declared range, closed ends drawn, and far values
on an unbounded side (a claim that fails only for a large weight must be seen)."""

from fractions import Fraction

import numpy as np
import pytest

from elbocheck.derivations import Model
from elbocheck.derivations.oracle import read_structure
from elbocheck.derivations.oracle.coefficients import draw_coefficients


def draws(spec, count=400):
    model = Model("c", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                  coefficients={"a": spec})
    structure = read_structure(model)
    rng = np.random.default_rng(0)
    return [draw_coefficients(structure, rng)["a"] for _ in range(count)]


@pytest.mark.parametrize("spec, inside, far", [
    ((0, None), lambda a: a >= 0, lambda a: a >= 8),
    ((1, None, True, False), lambda a: a > 1, lambda a: a >= 9),
    ((None, 1), lambda a: a <= 1, lambda a: a <= -7),
    ((None, None), lambda a: True, lambda a: abs(a) >= 8),
])
def test_unbounded_sides_get_far_values_and_every_value_is_in_range(spec, inside, far):
    values = draws(spec)
    assert all(isinstance(a, Fraction) and inside(a) for a in values)
    share = sum(far(a) for a in values) / len(values)
    sigma = (0.25 * 0.75 / len(values)) ** 0.5  # drawn with probability 1/4
    assert abs(share - 0.25) < 5 * sigma, share
    assert max(abs(a) for a in values) >= 512  # the far values reach hundreds


def test_a_closed_two_sided_range_draws_its_ends_and_nothing_outside():
    values = draws((0, 1))
    assert all(0 <= a <= 1 for a in values)
    assert {Fraction(0), Fraction(1)} <= set(values)
