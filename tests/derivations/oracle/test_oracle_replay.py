"""Replay of exported counterexamples: hand-built exports, round trips, refusals, the checker's format."""

import copy
import json
from fractions import Fraction as F

import mpmath
import numpy as np
import pytest

from elbocheck.derivations import Model, check
from elbocheck.derivations.expressions import E, kl, log, ratio
from elbocheck.derivations.oracle import (
    OracleError,
    ReplayError,
    instance_from_dict,
    judge,
    random_discrete_instance,
    random_gaussian_instance,
    replay,
)

VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"])
ELBO = E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))

# the export as the checker writes it: floats, axes = conditioning variables then targets
EXPORT = {
    "domains": {"x": 2, "z": 2}, "coefficients": {},
    "factors": [
        {"factor": "p(z)", "axes": ["z"], "probabilities": [0.25, 0.75]},
        {"factor": "p_theta(x | z)", "axes": ["z", "x"], "probabilities": [[0.125, 0.875], [0.5, 0.5]]},
        {"factor": "p_D(x)", "axes": ["x"], "probabilities": [0.375, 0.625]},
        {"factor": "q_phi(z | x)", "axes": ["x", "z"], "probabilities": [[0.25, 0.75], [0.5, 0.5]]},
    ]}


def hand_values(x: int):
    """log p(x) and KL(q(z|x) || p(z|x)) at 60 digits, written out."""
    with mpmath.workdps(60):
        p_z = [mpmath.mpf(1) / 4, mpmath.mpf(3) / 4]
        p_x_z = [[mpmath.mpf(1) / 8, mpmath.mpf(7) / 8], [mpmath.mpf(1) / 2, mpmath.mpf(1) / 2]]
        q = [[mpmath.mpf(1) / 4, mpmath.mpf(3) / 4], [mpmath.mpf(1) / 2, mpmath.mpf(1) / 2]]
        p_x = p_z[0] * p_x_z[0][x] + p_z[1] * p_x_z[1][x]
        posterior = [p_z[z] * p_x_z[z][x] / p_x for z in range(2)]
        gap = sum(q[x][z] * mpmath.log(q[x][z] / posterior[z]) for z in range(2))
        return mpmath.log(p_x), gap


def test_replay_recomputes_a_false_step_in_high_precision():
    result = replay(VAE, log("p(x)"), "=", ELBO, {"instance": EXPORT, "assignment": {"x": 1}})
    log_px, kl_gap = hand_values(1)
    assert result.assignment == {"x": 1}
    assert result.violated and result.margin > 1e30
    assert abs(result.lhs - log_px) <= result.bound + mpmath.mpf(10) ** -45
    assert abs(result.gap - kl_gap) <= 2 * result.bound + mpmath.mpf(10) ** -45
    assert result.bound < mpmath.mpf(10) ** -45
    # without an assignment: the worst row
    worst = replay(VAE, log("p(x)"), "=", ELBO, EXPORT)
    assert worst.violated and worst.assignment in ({"x": 0}, {"x": 1})


def test_replay_of_a_true_step_finds_no_gap():
    result = replay(VAE, log("p(x)"), "=", ELBO + kl("q(z|x)", "p(z|x)"), {"instance": EXPORT, "assignment": {"x": 0}})
    assert not result.violated and result.margin <= 0
    assert abs(result.gap) <= result.bound < mpmath.mpf(10) ** -45


def _broken(change):
    data = copy.deepcopy(EXPORT)
    change(data)
    return data


@pytest.mark.parametrize("change, message", [
    (lambda d: d["factors"].pop(0), r"no table for the declared factor p\(z\)"),
    (lambda d: d["factors"].append({"factor": "p(w)", "axes": ["w"], "probabilities": [1.0]}), "undeclared variable"),
    (lambda d: d["factors"].append({"factor": "q_phi(x | z)", "axes": ["z", "x"],
                                    "probabilities": [[0.5, 0.5], [0.5, 0.5]]}), "not a factor of the declaration"),
    (lambda d: d["factors"].append(copy.deepcopy(d["factors"][0])), "second table"),
    (lambda d: d["factors"][1].update(factor="p_psi(x | z)"), "subscript 'psi'"),
    (lambda d: d["factors"][1].update(axes=["x", "w"]), "axes"),
    (lambda d: d["factors"][0].update(probabilities=[0.25, 0.7]), "do not sum to one"),
    (lambda d: d["factors"][0].update(probabilities=[0.0, 1.0]), "not positive"),
    (lambda d: d["factors"][0].update(probabilities=[0.25, 0.25, 0.5]), "shape"),
    (lambda d: d["domains"].pop("z"), "no size for z"),
    (lambda d: d["domains"].update(w=2), "not a variable"),
    (lambda d: d.update(coefficients={"beta": 1}), "undeclared coefficients"),
])
def test_exports_that_do_not_match_the_declaration_are_refused(change, message):
    with pytest.raises(ReplayError, match=message):
        replay(VAE, log("p(x)"), "=", ELBO, _broken(change))


def test_a_const_counterexample_needs_its_pair_differing_only_in_parameters():
    with pytest.raises(ReplayError, match="second instance"):
        replay(VAE, log("p(x)"), "= const", ELBO, EXPORT)
    other = _broken(lambda d: d["factors"][1].update(probabilities=[[0.5, 0.5], [0.25, 0.75]]))
    result = replay(VAE, log("p(x)"), "= const", ELBO, {"instance": EXPORT, "second_instance": other})
    assert result.violated
    non_parametric = _broken(lambda d: d["factors"][0].update(probabilities=[0.5, 0.5]))
    with pytest.raises(ReplayError, match=r"non-parametric table p\(z\)"):
        replay(VAE, log("p(x)"), "= const", ELBO, {"instance": EXPORT, "second_instance": non_parametric})


def test_round_trip_of_a_random_instance_with_a_version_table():
    instance = random_discrete_instance(VAE, rng=0)
    step = (log("p_theta_old(x)"), "=", log("p_theta(x)"))
    before = judge(VAE, *step, instance=instance, precision="high")    # draws the version's tables
    exported = json.loads(json.dumps(instance.as_dict()))
    assert "p_theta_old(x | z)" in [f["factor"] for f in exported["factors"]]
    again = instance_from_dict(VAE, exported)
    assert all(np.array_equal(again.tables[k], instance.tables[k]) for k in instance.tables)
    after = judge(VAE, *step, instance=again, precision="high")
    assert [r.gap for r in after.rows] == [r.gap for r in before.rows]
    # without the version's table the replay refuses to invent one
    exported["factors"] = [f for f in exported["factors"] if "old" not in f["factor"]]
    with pytest.raises(OracleError, match="no table for p_theta_old"):
        replay(VAE, *step, exported)


GAUSSIAN_EXPORT = {"kind": "linear-gaussian", "coefficients": {}, "factors": [
    {"factor": "p(z)", "targets": [{"target": "z", "parents": [], "weights": [], "bias": 0, "sigma": 1}]},
    {"factor": "p_theta(x | z)", "targets": [{"target": "x", "parents": ["z"], "weights": [1.5], "bias": 0.25,
                                             "sigma": 0.5}]},
    {"factor": "p_D(x)", "targets": [{"target": "x", "parents": [], "weights": [], "bias": 0, "sigma": 2}]},
    {"factor": "q_phi(z | x)", "targets": [{"target": "z", "parents": ["x"], "weights": ["1/2"], "bias": "1/4",
                                           "sigma": "3/4"}]},
]}


def test_replay_of_a_gaussian_counterexample():
    result = replay(VAE, log("p(x)"), "=", ELBO, {"instance": GAUSSIAN_EXPORT, "assignment": {"x": 1.5}})
    # gap = KL(q(z|x) || p(z|x)); p(z|x) = N(m_p, s_p^2) with precision 1 + w^2/s^2 = 10, m_p = w (x - b)/s^2 / 10
    with mpmath.workdps(60):
        x, w, b, s = mpmath.mpf(3) / 2, mpmath.mpf(3) / 2, mpmath.mpf(1) / 4, mpmath.mpf(1) / 2
        m_q, s_q = x / 2 + mpmath.mpf(1) / 4, mpmath.mpf(3) / 4
        m_p, s_p = w * (x - b) / s ** 2 / 10, 1 / mpmath.sqrt(10)
        expected = mpmath.log(s_p / s_q) + (s_q ** 2 + (m_q - m_p) ** 2) / (2 * s_p ** 2) - mpmath.mpf(1) / 2
    assert result.violated and result.assignment == {"x": F(3, 2)}
    assert abs(result.gap - expected) < mpmath.mpf(10) ** -40 and result.bound < mpmath.mpf(10) ** -30
    with pytest.raises(ReplayError, match="point"):
        replay(VAE, log("p(x)"), "=", ELBO, GAUSSIAN_EXPORT)


def test_gaussian_round_trip_and_refusals():
    instance = random_gaussian_instance(VAE, rng=3)
    again = instance_from_dict(VAE, json.loads(json.dumps(instance.as_dict())))
    assert again.regressions == instance.regressions
    bad_parent = copy.deepcopy(GAUSSIAN_EXPORT)
    bad_parent["factors"][0]["targets"][0].update(parents=["x"], weights=[1])
    with pytest.raises(ReplayError, match="parents"):
        instance_from_dict(VAE, bad_parent)
    bad_sigma = copy.deepcopy(GAUSSIAN_EXPORT)
    bad_sigma["factors"][1]["targets"][0]["sigma"] = 0
    with pytest.raises(ReplayError, match="positive standard deviation"):
        instance_from_dict(VAE, bad_sigma)
    missing = copy.deepcopy(GAUSSIAN_EXPORT)
    missing["factors"].pop()
    with pytest.raises(ReplayError, match="no regressions"):
        instance_from_dict(VAE, missing)


def test_the_checkers_exported_counterexample_replays():
    """The format the checker exports today maps onto the oracle's reading (values are the oracle's own)."""
    model = Model("t", observed=["x", "c"], latent=["z"], vectors={"z": 2},
                  generative=["prod_j p(z_j)", "p_theta(x|z,c)"], inference=["q_phi(z|x)"], auxiliary=["r_psi(c|z)"])
    lhs, rhs = log("p(x|c)"), E("q(z|x)", log("p(x|z,c)"))
    result = check(model, lhs, "=", rhs)
    exported = json.loads(json.dumps(result.counterexample.as_dict()))
    if "domains" not in exported["instance"]:
        pytest.skip("the checker exported a non-discrete counterexample for this step")
    replayed = replay(model, lhs, "=", rhs, exported)
    assert replayed.violated and replayed.margin > 1e20
