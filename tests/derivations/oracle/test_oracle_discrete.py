"""The discrete oracle against values written out by hand for small tables (never against the checker)."""

import math
from fractions import Fraction as F
from itertools import product

import mpmath
import numpy as np
import pytest
import sympy

from elbocheck.derivations import Model
from elbocheck.derivations.expressions import E, density, entropy, kl, log, mi, ratio, tc
from elbocheck.derivations.oracle import (
    OracleError,
    evaluate,
    instance_from_dict,
    judge,
    random_discrete_instance,
)

ALPHA = sympy.Symbol("alpha", real=True)
VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
            coefficients={"alpha": (0, None)})

# The tables, indexed [conditioning value][target value].
P_Z = [F(1, 4), F(3, 4)]
P_X_GIVEN_Z = [[F(1, 3), F(2, 3)], [F(1, 2), F(1, 2)]]
P_D = [F(2, 5), F(3, 5)]
Q_Z_GIVEN_X = [[F(1, 5), F(4, 5)], [F(7, 10), F(3, 10)]]


def _strings(table):
    return [_strings(row) for row in table] if isinstance(table, list) else str(table)


def vae_instance(alpha=F(1, 2)):
    return instance_from_dict(VAE, {
        "domains": {"x": 2, "z": 2}, "coefficients": {"alpha": str(alpha)},
        "factors": [
            {"factor": "p(z)", "axes": ["z"], "exact": _strings(P_Z)},
            {"factor": "p_theta(x | z)", "axes": ["z", "x"], "exact": _strings(P_X_GIVEN_Z)},
            {"factor": "p_D(x)", "axes": ["x"], "exact": _strings(P_D)},
            {"factor": "q_phi(z | x)", "axes": ["x", "z"], "exact": _strings(Q_Z_GIVEN_X)},
        ]})


def by_x(expr, precision="float64", instance=None):
    """The value of expr at x = 0 and x = 1 (expr depends on x only)."""
    rows = evaluate(VAE, expr, instance or vae_instance(), precision=precision)
    return {r[0]["x"]: r[1] for r in rows}


def single(expr, precision="float64", instance=None, model=VAE):
    rows = evaluate(model, expr, instance or vae_instance(), precision=precision)
    assert len(rows) == 1 and rows[0][0] == {}
    return rows[0][1]


# By hand: p(x) = sum_z p(z) p(x|z); p(x=0) = 1/4 * 1/3 + 3/4 * 1/2 = 11/24.
P_X = [F(11, 24), F(13, 24)]
# q(z) = sum_x p_D(x) q(z|x) = (2/5 * 1/5 + 3/5 * 7/10, ...) = (1/2, 1/2).
Q_Z = [F(1, 2), F(1, 2)]


def test_marginal_of_the_generative_joint():
    assert P_X[0] == F(1, 4) * F(1, 3) + F(3, 4) * F(1, 2)
    values = by_x(log("p(x)"))
    assert values[0] == pytest.approx(math.log(11 / 24), abs=1e-14)
    assert values[1] == pytest.approx(math.log(13 / 24), abs=1e-14)


def test_bayes_posterior_of_the_generative_joint():
    rows = evaluate(VAE, log("p(z|x)"), vae_instance())
    got = {(r[0]["x"], r[0]["z"]): r[1] for r in rows}
    # p(z=0 | x=0) = (1/4 * 1/3) / (11/24) = 2/11
    assert got[(0, 0)] == pytest.approx(math.log(2 / 11), abs=1e-14)
    assert got[(0, 1)] == pytest.approx(math.log(9 / 11), abs=1e-14)
    # p(z=0 | x=1) = (1/4 * 2/3) / (13/24) = 4/13
    assert got[(1, 0)] == pytest.approx(math.log(4 / 13), abs=1e-14)


def test_aggregate_posterior_and_the_inference_joints_conditional():
    rows = evaluate(VAE, log("q(z)"), vae_instance())
    assert [r[1] for r in rows] == pytest.approx([math.log(0.5)] * 2, abs=1e-14)
    rows = evaluate(VAE, log("q(x|z)"), vae_instance())
    got = {(r[0]["x"], r[0]["z"]): r[1] for r in rows}
    # q(x=0 | z=0) = p_D(0) q(0|0) / q(z=0) = (2/5 * 1/5) / (1/2) = 4/25
    assert got[(0, 0)] == pytest.approx(math.log(4 / 25), abs=1e-14)
    assert got[(1, 1)] == pytest.approx(math.log((3 / 5 * 3 / 10) / 0.5), abs=1e-14)
    assert by_x(log("p_D(x)"))[1] == pytest.approx(math.log(3 / 5), abs=1e-15)


def test_kl_to_the_prior_written_out():
    values = by_x(kl("q(z|x)", "p(z)"))
    kl0 = 1 / 5 * math.log((1 / 5) / (1 / 4)) + 4 / 5 * math.log((4 / 5) / (3 / 4))
    kl1 = 7 / 10 * math.log((7 / 10) / (1 / 4)) + 3 / 10 * math.log((3 / 10) / (3 / 4))
    assert values[0] == pytest.approx(kl0, abs=1e-14)
    assert values[1] == pytest.approx(kl1, abs=1e-14)
    average = single(E("p_D(x)", kl("q(z|x)", "p(z)")))
    assert average == pytest.approx(2 / 5 * kl0 + 3 / 5 * kl1, abs=1e-14)


def test_entropy_and_mutual_information_written_out():
    h0 = -(1 / 5 * math.log(1 / 5) + 4 / 5 * math.log(4 / 5))
    assert by_x(entropy("q(z|x)"))[0] == pytest.approx(h0, abs=1e-14)
    # I_q(x; z) = sum_{x,z} p_D(x) q(z|x) log(q(z|x) / q(z)), with q(z) = 1/2
    expected = sum(float(P_D[x] * Q_Z_GIVEN_X[x][z]) * math.log(float(Q_Z_GIVEN_X[x][z]) / 0.5)
                   for x in range(2) for z in range(2))
    assert single(mi("x", "z")) == pytest.approx(expected, abs=1e-14)
    # I_p(x; z) = sum_{x,z} p(z) p(x|z) log(p(x|z) / p(x))
    expected_p = sum(float(P_Z[z] * P_X_GIVEN_Z[z][x]) * math.log(float(P_X_GIVEN_Z[z][x] / P_X[x]))
                     for x in range(2) for z in range(2))
    assert single(mi("x", "z", family="p")) == pytest.approx(expected_p, abs=1e-14)


def test_coefficient_and_fractional_exponents():
    # log E_q[(p(z)/q(z|x))^(1 - alpha)] at alpha = 1/2: log sum_z q^(1/2) p^(1/2)
    expr = log(E("q(z|x)", ratio(["p(z)"], ["q(z|x)"]) ** (1 - ALPHA)))
    expected = math.log(math.sqrt(1 / 5 * 1 / 4) + math.sqrt(4 / 5 * 3 / 4))
    assert by_x(expr)[0] == pytest.approx(expected, abs=1e-14)
    # the same with alpha = 3: (p/q)^(-2) = (q/p)^2, with q/p = (1/5)/(1/4) = 4/5 and (4/5)/(3/4) = 16/15
    expected = math.log(1 / 5 * (4 / 5) ** 2 + 4 / 5 * (16 / 15) ** 2)
    assert by_x(expr, instance=vae_instance(F(3)))[0] == pytest.approx(expected, abs=1e-14)
    # a numeric fractional exponent written as a power of a density
    assert by_x(log(density("q(z|x)") ** F(1, 2) * density("p(z)") ** F(1, 2)) - log(density("p(z)")) / 2
                - log(density("q(z|x)")) / 2) == pytest.approx({0: 0, 1: 0}, abs=1e-14)


def test_total_correlation_of_a_two_component_vector_written_out():
    model = Model("tc", observed=["x"], latent=["z"], vectors={"z": 2}, generative=["prod_j p(z_j)", "p_theta(x|z)"],
                  inference=["q_phi(z|x)"])
    q = [[[F(1, 10), F(2, 10)], [F(3, 10), F(4, 10)]], [[F(1, 2), F(1, 8)], [F(1, 8), F(1, 4)]]]  # [x][z1][z2]
    instance = instance_from_dict(model, {"domains": {"x": 2, "z_1": 2, "z_2": 2}, "coefficients": {}, "factors": [
        {"factor": "p(z_1)", "axes": ["z_1"], "exact": ["1/3", "2/3"]},
        {"factor": "p(z_2)", "axes": ["z_2"], "exact": ["1/2", "1/2"]},
        {"factor": "p_theta(x | z)", "axes": ["z_1", "z_2", "x"], "exact": [[["1/2", "1/2"]] * 2] * 2},
        {"factor": "p_D(x)", "axes": ["x"], "exact": ["1/2", "1/2"]},
        {"factor": "q_phi(z | x)", "axes": ["x", "z_1", "z_2"], "exact": _strings(q)}]})
    rows = {r[0]["x"]: r[1] for r in evaluate(model, tc("q(z|x)"), instance)}
    for x in range(2):
        m1 = [sum(q[x][a][b] for b in range(2)) for a in range(2)]
        m2 = [sum(q[x][a][b] for a in range(2)) for b in range(2)]
        expected = sum(float(q[x][a][b]) * math.log(float(q[x][a][b] / (m1[a] * m2[b])))
                       for a, b in product(range(2), range(2)))
        assert rows[x] == pytest.approx(expected, abs=1e-14)


def test_high_precision_values_contain_the_exact_ones():
    with mpmath.workdps(60):
        exact = {x: mpmath.log(mpmath.mpf(P_X[x].numerator) / P_X[x].denominator) for x in range(2)}
        rows = evaluate(VAE, log("p(x)"), vae_instance(), precision="high")
        for assignment, value, bound in rows:
            assert bound < mpmath.mpf(10) ** -45
            assert abs(value - exact[assignment["x"]]) <= bound


def test_float_running_error_bounds_cover_the_float_error():
    """The float64 bound is honest: the float64 value lies within it of the interval-arithmetic value, on random
    instances of a model with an input, a vector and an assumption."""
    model = Model("m", observed=["x", "c"], latent=["z", "w"], vectors={"z": 2},
                  generative=["prod_j p_theta(z_j|c)", "p(w)", "p_theta(x|z,w)"],
                  inference=["q_phi(z|x)", "q_phi(w|x,z)"], coefficients={"beta": (1, None)})
    beta = sympy.Symbol("beta", real=True)
    expressions = [
        log("p(x|c)") - E(["q(z|x)", "q(w|x,z)"], log(ratio(["p(x,z,w|c)"], ["q(z|x)", "q(w|x,z)"]))),
        beta * kl("q(z,w|x)", "p(z,w|c)") + mi("x", "z"), tc("q(z)"), entropy("q(w|x)") ** 2,
        log(E("p(z|c)", E("p(w)", density("p(x|z,w)")))),
    ]
    for seed in range(3):
        instance = random_discrete_instance(model, rng=seed)
        for expr in expressions:
            low = evaluate(model, expr, instance)
            high = evaluate(model, expr, instance, precision="high")
            for (a, v, b), (a2, v2, b2) in zip(low, high):
                assert a == a2
                assert 0 < b < 1e-10
                assert abs(v - float(v2)) <= b


def test_measure_written_in_either_order():
    """docs/semantics.md section 5: a product measure is a set of factors (issue 9, item 5)."""
    first = single(E(["q(z|x)", "p_D(x)"], log("q(z|x)")))
    second = single(E(["p_D(x)", "q(z|x)"], log("q(z|x)")))
    expected = sum(float(P_D[x] * Q_Z_GIVEN_X[x][z]) * math.log(float(Q_Z_GIVEN_X[x][z]))
                   for x in range(2) for z in range(2))
    assert first == pytest.approx(expected, abs=1e-14)
    assert second == pytest.approx(expected, abs=1e-14)
    assert judge(VAE, E(["q(z|x)", "p_D(x)"], log("q(z|x)")), "=", E(["p_D(x)", "q(z|x)"], log("q(z|x)")),
                 instance=vae_instance(), precision="high").holds


def test_a_cyclic_or_overlapping_measure_is_an_error():
    with pytest.raises((OracleError, ValueError), match="cycle"):  # the expression class refuses it first
        evaluate(VAE, E(["q(z|x)", "q(x|z)"], log("p(x,z)")), vae_instance())
    with pytest.raises(OracleError, match="twice"):
        evaluate(VAE, E(["q(z|x)", "p(z)"], log("p(x|z)")), vae_instance())


def test_log_of_a_non_positive_value_is_an_error():
    with pytest.raises(OracleError, match="not positive"):
        evaluate(VAE, log(density("p(x)") - 1), vae_instance())


def test_instance_draws_are_reproducible_and_normalized():
    a = random_discrete_instance(VAE, rng=np.random.default_rng(5), max_size=4)
    b = random_discrete_instance(VAE, rng=np.random.default_rng(5), max_size=4)
    assert a.sizes == b.sizes and all(np.array_equal(a.tables[k], b.tables[k]) for k in a.tables)
    assert 2 <= min(a.sizes.values()) and max(a.sizes.values()) <= 4
    for (index, _), table in a.tables.items():
        factor = a.structure.factors[index]
        totals = table.sum(axis=tuple(range(len(factor.given), table.ndim)))
        assert all(t == 1 for t in np.asarray(totals).flat)
        assert all(v > 0 for v in table.flat)
    assert a.coefficients["alpha"] >= 0
    with pytest.raises(OracleError, match="min_size"):
        random_discrete_instance(VAE, max_size=1)
