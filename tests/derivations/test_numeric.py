"""The numeric evaluator against values computed by hand from the tables (independent formulas)."""

import numpy as np

from elbocheck.derivations import Model
from elbocheck.derivations.expressions import E, density, entropy, kl, log, mi, tc
from elbocheck.derivations.numeric import Evaluator, InstanceSpace

MODEL = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"])
P_X_LABEL, P_D_LABEL, Q_LABEL = "p_theta(x | z)", "p_D(x)", "q_phi(z | x)"


def _instance(seed=0):
    space = InstanceSpace(MODEL, {"x": 3, "z": 2})
    return space.instance(np.random.default_rng(seed).normal(size=space.dimension))


def _tables(instance):
    # axes order is (x, z)
    p_z = instance.table("p(z)").reshape(2)
    p_xCz = instance.table(P_X_LABEL).reshape(3, 2)
    p_D = instance.table(P_D_LABEL).reshape(3)
    q_zCx = instance.table(Q_LABEL).reshape(3, 2)
    return p_z, p_xCz, p_D, q_zCx


def test_tables_are_normalized_conditionals():
    p_z, p_xCz, p_D, q_zCx = _tables(_instance())
    assert np.isclose(p_z.sum(), 1) and np.allclose(p_xCz.sum(axis=0), 1)
    assert np.isclose(p_D.sum(), 1) and np.allclose(q_zCx.sum(axis=1), 1)


def test_marginal_likelihood_and_kl_by_hand():
    instance = _instance(1)
    p_z, p_xCz, p_D, q_zCx = _tables(instance)
    evaluator = Evaluator(MODEL)
    p_x = (p_xCz * p_z[None, :]).sum(axis=1)
    assert np.allclose(evaluator.value(log(density("p(x)")), instance).reshape(3), np.log(p_x))
    kl_by_hand = (q_zCx * (np.log(q_zCx) - np.log(p_z[None, :]))).sum(axis=1)
    assert np.allclose(evaluator.value(kl("q(z|x)", "p(z)"), instance).reshape(3), kl_by_hand)
    posterior = p_xCz * p_z[None, :] / p_x[:, None]
    elbo = (q_zCx * (np.log(p_xCz * p_z[None, :]) - np.log(q_zCx))).sum(axis=1)
    gap = (q_zCx * (np.log(q_zCx) - np.log(posterior))).sum(axis=1)
    assert np.allclose(np.log(p_x) - elbo, gap)
    assert np.allclose(evaluator.value(E("q(z|x)", log("p(x|z)")), instance).reshape(3),
                       (q_zCx * np.log(p_xCz)).sum(axis=1))


def test_aggregate_posterior_mutual_information_and_entropy_by_hand():
    instance = _instance(2)
    _p_z, _p_xCz, p_D, q_zCx = _tables(instance)
    evaluator = Evaluator(MODEL)
    joint = p_D[:, None] * q_zCx
    q_z = joint.sum(axis=0)
    mutual_information = (joint * (np.log(q_zCx) - np.log(q_z[None, :]))).sum()
    assert np.isclose(evaluator.value(mi("x", "z"), instance).item(), mutual_information)
    assert np.isclose(evaluator.value(entropy("q(z)"), instance).item(), -(q_z * np.log(q_z)).sum())


def test_total_correlation_by_hand():
    model = Model("tc2", observed=["x"], latent=["z"], vectors={"z": 2}, generative=["prod_j p(z_j)", "p(x|z)"],
                  inference=["q(z|x)"])
    space = InstanceSpace(model, {"x": 2, "z_1": 2, "z_2": 2})
    instance = space.instance(np.random.default_rng(3).normal(size=space.dimension))
    p_D = instance.table("p_D(x)").reshape(2)
    q_zCx = instance.table("q(z | x)").reshape(2, 2, 2)
    q_z = (p_D[:, None, None] * q_zCx).sum(axis=0)
    q_z1, q_z2 = q_z.sum(axis=1), q_z.sum(axis=0)
    total_correlation = (q_z * (np.log(q_z) - np.log(q_z1[:, None] * q_z2[None, :]))).sum()
    assert np.isclose(Evaluator(model).value(tc("q(z)"), instance).item(), total_correlation)


def test_counterexample_tables_are_exported_as_numbers():
    instance = _instance(4)
    exported = {f["factor"]: f for f in instance.as_dict()["factors"]}
    q = exported["q_phi(z | x)"]
    assert q["axes"] == ["x", "z"]
    assert np.allclose(np.array(q["probabilities"]), _tables(instance)[3])
    assert np.allclose(np.array(q["probabilities"]).sum(axis=1), 1.0)
