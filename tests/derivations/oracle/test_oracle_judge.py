"""The judge: relations, '= const' pairs, rows, bounds, and its errors."""

import dataclasses
import math

import numpy as np
import pytest
import sympy

from elbocheck.derivations import Model
from elbocheck.derivations.expressions import E, density, entropy, kl, log, mi, ratio, tc
from elbocheck.derivations.oracle import (
    OracleError,
    judge,
    random_discrete_instance,
    random_gaussian_instance,
)
from elbocheck.derivations.oracle.linear_gaussian import random_points

BETA = sympy.Symbol("beta", real=True)
VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
            coefficients={"beta": (1, None)})
ELBO = E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))


def test_relations_on_discrete_instances():
    for seed in range(4):
        instance = random_discrete_instance(VAE, rng=seed)
        assert judge(VAE, log("p(x)"), ">=", ELBO, instance=instance).holds
        assert not judge(VAE, log("p(x)"), "<=", ELBO, instance=instance).holds
        assert judge(VAE, ELBO, "<=", log("p(x)"), instance=instance).holds
        # beta >= 1: the beta-VAE objective is a lower bound of the ELBO
        beta_objective = E("q(z|x)", log("p(x|z)")) - BETA * kl("q(z|x)", "p(z)")
        assert judge(VAE, beta_objective, "<=", ELBO, instance=instance).holds


def test_rows_cover_every_assignment_of_the_free_variables():
    instance = random_discrete_instance(VAE, rng=0, max_size=3)
    result = judge(VAE, log("p(x|z)"), "=", log("p(x|z)"), instance=instance)
    assert result.free == ("x", "z")
    assert len(result.rows) == instance.sizes["x"] * instance.sizes["z"]
    assert {tuple(r.assignment.values()) for r in result.rows} == {
        (i, j) for i in range(instance.sizes["x"]) for j in range(instance.sizes["z"])}
    row = result.row({"x": 1, "z": 0, "c": 7})
    assert row.assignment == {"x": 1, "z": 0} and row.holds and row.gap == 0
    scalar = judge(VAE, mi("x", "z"), ">=", 0, instance=instance)
    assert scalar.free == () and len(scalar.rows) == 1


def test_the_worst_row_and_the_summary_name_the_violation():
    instance = random_discrete_instance(VAE, rng=1)
    result = judge(VAE, log("p(x)"), "=", ELBO, instance=instance)
    assert not result.holds and result.violations
    worst = result.worst()
    # log p(x) - ELBO = KL(q(z|x) || p(z|x)) > 0: the worst row has the largest gap
    assert worst.gap == max(r.gap for r in result.rows)
    assert worst.gap > 100 * worst.bound
    assert "violated" in result.summary() and "x=" in result.summary()


def test_const_pairs_differ_only_in_parametric_factors():
    instance = random_discrete_instance(VAE, rng=2)
    second = instance.redraw_parametric(np.random.default_rng(3))
    structure = instance.structure
    for key, table in instance.tables.items():
        factor = structure.factors[key[0]]
        same = np.array_equal(table, second.tables[key])
        assert same != bool(factor.parameters), factor.text
    # log p(x) - ELBO = KL(q || p(z|x)) changes with theta and phi; log p_D(x) does not
    assert not judge(VAE, log("p(x)"), "= const", ELBO, instance=instance, second_instance=second).holds
    result = judge(VAE, log("p_D(x)"), "= const", 0, instance=instance, second_instance=second)
    assert result.holds and not result.vacuous
    assert result.rows[0].second is not None


def test_a_second_instance_that_differs_in_a_non_parametric_factor_is_refused():
    instance = random_discrete_instance(VAE, rng=2)
    other = random_discrete_instance(VAE, rng=5)
    with pytest.raises(OracleError, match="differ only in parametric factors"):
        judge(VAE, log("p(x)"), "= const", 0, instance=instance, second_instance=other)


def test_const_on_gaussian_pairs():
    instance = random_gaussian_instance(VAE, rng=0)
    assert not judge(VAE, log("p(x)"), "= const", ELBO, instance=instance, rng=1).holds
    assert judge(VAE, entropy("p_D(x)"), "= const", 0, instance=instance, rng=1, precision="high").holds


def test_bad_arguments_are_errors():
    other = Model("other", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
                  inference=["q_phi(z|x)"])
    instance = random_discrete_instance(VAE, rng=0)
    with pytest.raises(OracleError, match="another declaration"):
        judge(other, log("p(x)"), "=", 0, instance=instance)
    with pytest.raises(OracleError, match="relation"):
        judge(VAE, log("p(x)"), "!=", 0)
    with pytest.raises(OracleError, match="precision"):
        judge(VAE, log("p(x)"), "=", 0, precision="float32")


def test_float64_gaussian_bounds_cover_the_float64_error():
    """The float64 linear-Gaussian bound is a heuristic: check it against the high-precision value on instances with
    narrow conditionals (sigmas down to 2^-13) and far points, in a model with an input and a vector."""
    model = Model("cd", observed=["x", "c"], latent=["z_l", "z_u"], vectors={"z_u": 2},
                  generative=["p_theta(z_l|c)", "prod_j p(z_u_j)", "p_theta(x|z_l,z_u)"],
                  inference=["q_phi(z_l,z_u|x)"])
    steps = [
        (log("p(x|c)"), E("q(z_l,z_u|x)", log(ratio(["p(x,z_l,z_u|c)"], ["q(z_l,z_u|x)"])))
         + kl("q(z_l,z_u|x)", "p(z_l,z_u|x,c)")),
        (tc("q(z_u)"), kl("q(z_u)", "p(z_u)") - kl("q(z_u_1)", "p(z_u_1)") - kl("q(z_u_2)", "p(z_u_2)")),
        (mi("x", "z_l"), E("p_D(x,c)", kl("q(z_l|x)", "q(z_l)"))),
        (log(E("p(z_l|c)", E("p(z_u)", density("p(x|z_l,z_u)")))), log("p(x|c)")),
    ]
    worst = 0.0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        instance = random_gaussian_instance(model, rng=rng)
        k = 2 * seed + 1
        instance.regressions = {key: tuple(dataclasses.replace(r, sigma=r.sigma / 2 ** k) if rng.random() < 0.5 else r
                                           for r in regressions)
                                for key, regressions in instance.regressions.items()}
        points = [{a: v * int(rng.integers(1, 100)) for a, v in p.items()}
                  for p in random_points(instance.structure, 2, rng)]
        for lhs, rhs in steps:
            low = judge(model, lhs, "=", rhs, instance=instance, points=points)
            high = judge(model, lhs, "=", rhs, instance=instance, points=points, precision="high")
            assert high.holds
            for a, b in zip(low.rows, high.rows):
                assert math.isfinite(a.bound)
                assert abs(a.gap - float(b.gap)) <= a.bound
                worst = max(worst, abs(a.gap - float(b.gap)) / a.bound)
    assert worst < 1
