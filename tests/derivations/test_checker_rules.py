"""Every rewrite rule and certificate kind: a true step is proven, and mutated false versions of it are refuted.

Mutations: sign flipped, a term dropped, p and q swapped in a KL, a conditioning variable added or removed, a
coefficient changed, a factorization assumption removed.
"""

import pytest
import sympy

from elbocheck.derivations import Checker, Factorization, Model, Step
from elbocheck.derivations.expressions import E, density, entropy, kl, log, mi, ratio, tc

VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
            coefficients={"beta": (1, None)})
CDVAE = Model("cdvae", observed=["x", "c"], latent=["z_l", "z_u"],
              generative=["p_theta(z_l|c)", "p(z_u)", "p_theta(x|z_l,z_u)"], inference=["q_phi(z_l,z_u|x)"])
TC3 = Model("tc3", observed=["x"], latent=["z"], vectors={"z": 3}, generative=["prod_j p(z_j)", "p_theta(x|z)"],
            inference=["q_phi(z|x)"])
COND = Model("cond", observed=["x", "y"], latent=["w"], generative=["p(y)", "p_gamma(w|y)", "p_theta(x|w)"],
             inference=["q_phi(w|x,y)"])
MEAN_FIELD = Factorization("q(z_l,z_u|x)", ("q(z_l|x)", "q(z_u|x)"))

beta = sympy.Symbol("beta", real=True)
ELBO = E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))
checker = Checker()


def verdict(model, lhs, relation, rhs, assumptions=()):
    return checker.check_step(model, Step(lhs, relation, rhs, tuple(assumptions)))


# (rule, model, true step, [mutated false steps with the mutation named])
CASES = [
    ("log of a product/ratio", VAE,
     (log(ratio(["p(x|z)", "p(z)"], ["q(z|x)"])), "=", log("p(x|z)") + log("p(z)") - log("q(z|x)")),
     [("sign flipped", (log(ratio(["p(x|z)", "p(z)"], ["q(z|x)"])), "=", log("p(x|z)") + log("p(z)") + log("q(z|x)"))),
      ("term dropped", (log(ratio(["p(x|z)", "p(z)"], ["q(z|x)"])), "=", log("p(x|z)") - log("q(z|x)")))]),
    ("Bayes' rule", VAE,
     (log("p(z|x)"), "=", log("p(x|z)") + log("p(z)") - log("p(x)")),
     [("conditioning variable removed", (log("p(z)"), "=", log("p(x|z)") + log("p(z)") - log("p(x)"))),
      ("p and q swapped", (log("q(z|x)"), "=", log("p(x|z)") + log("p(z)") - log("p(x)")))]),
    ("expectation of a constant", VAE,
     (E("q(z|x)", log("p(x)")), "=", log("p(x)")),
     [("conditioning variable added", (E("q(z|x)", log("p(x|z)")), "=", log("p(x)")))]),
    ("importance-sampling identity", VAE,
     (log(E("q(z|x)", ratio(["p(x,z)"], ["q(z|x)"]))), "=", log("p(x)")),
     [("term dropped", (log(E("q(z|x)", density("p(x,z)"))), "=", log("p(x)"))),
      ("p and q swapped", (log(E("q(z|x)", ratio(["q(z|x)"], ["p(x,z)"]))), "=", -log("p(x)")))]),
    ("KL >= 0 certificate (ELBO)", VAE,
     (log("p(x)"), ">=", ELBO),
     [("sign flipped", (log("p(x)"), "<=", ELBO)),
      ("term dropped", (log("p(x)"), ">=", E("q(z|x)", log("p(x|z)")))),
      ("conditioning variable removed", (log("p(x)"), "=", ELBO + kl("q(z|x)", "p(z)"))),
      ("p and q swapped", (log("p(x)"), "=", ELBO + kl("p(z|x)", "q(z|x)")))]),
    ("weighted certificate (beta >= 1)", VAE,
     (log("p(x)"), ">=", E("q(z|x)", log("p(x|z)")) - beta * kl("q(z|x)", "p(z)")),
     [("coefficient changed", (log("p(x)"), ">=", E("q(z|x)", log("p(x|z)")) - sympy.Rational(1, 2) * kl("q(z|x)", "p(z)"))),
      ("sign flipped", (log("p(x)"), ">=", E("q(z|x)", log("p(x|z)")) + beta * kl("q(z|x)", "p(z)")))]),
    ("marginalization and merged measures (ELBO surgery)", VAE,
     (E("p_D(x)", kl("q(z|x)", "p(z)")), "=", mi("x", "z") + kl("q(z)", "p(z)")),
     [("p and q swapped", (E("p_D(x)", kl("q(z|x)", "p(z)")), "=", mi("x", "z") + kl("p(z)", "q(z)"))),
      ("term dropped", (E("p_D(x)", kl("q(z|x)", "p(z)")), "=", mi("x", "z"))),
      ("coefficient changed", (E("p_D(x)", kl("q(z|x)", "p(z)")), "=", 2 * mi("x", "z") + kl("q(z)", "p(z)")))]),
    ("MI certificate", VAE,
     (E("p_D(x)", kl("q(z|x)", "p(z)")), ">=", mi("x", "z")),
     [("sign flipped", (E("p_D(x)", kl("q(z|x)", "p(z)")), "<=", mi("x", "z")))]),
    ("total correlation (J = 3)", TC3,
     (E("p_D(x)", kl("q(z|x)", "p(z)")), "=",
      mi("x", "z") + tc("q(z)") + sum(kl(f"q(z_{j})", f"p(z_{j})") for j in (1, 2, 3))),
     [("term dropped", (E("p_D(x)", kl("q(z|x)", "p(z)")), "=", mi("x", "z") + sum(kl(f"q(z_{j})", f"p(z_{j})") for j in (1, 2, 3)))),
      ("conditioning variable added", (E("p_D(x)", kl("q(z|x)", "p(z)")), "=",
                                       mi("x", "z") + E("p_D(x)", tc("q(z|x)")) + sum(kl(f"q(z_{j})", f"p(z_{j})") for j in (1, 2, 3))))]),
    ("TC certificate", TC3,
     (kl("q(z)", "p(z)"), ">=", sum(kl(f"q(z_{j})", f"p(z_{j})") for j in (1, 2, 3))),
     [("sign flipped", (kl("q(z)", "p(z)"), "<=", sum(kl(f"q(z_{j})", f"p(z_{j})") for j in (1, 2, 3))))]),
    ("entropy definition", VAE,
     (entropy("q(z|x)"), "=", -E("q(z|x)", log("q(z|x)"))),
     [("sign flipped", (entropy("q(z|x)"), "=", E("q(z|x)", log("q(z|x)"))))]),
    ("conditional independence (d-separation)", CDVAE,
     (log("p(x|z_l,z_u,c)"), "=", log("p(x|z_l,z_u)")),
     [("conditioning variable removed", (log("p(x|z_l,c)"), "=", log("p(x|z_l,z_u)"))),
      ("conditioning variable added where it matters", (log("p(z_l|x,c)"), "=", log("p(z_l|c)")))]),
    ("conditional-prior surgery (conditional MI)", COND,
     (E("p_D(x,y)", kl("q(w|x,y)", "p(w|y)")), "=", mi("w", "x", given="y") + E("p_D(y)", kl("q(w|y)", "p(w|y)"))),
     [("conditioning variable removed", (E("p_D(x,y)", kl("q(w|x,y)", "p(w|y)")), "=", mi("w", "x") + E("p_D(y)", kl("q(w|y)", "p(w|y)")))),
      ("term dropped", (E("p_D(x,y)", kl("q(w|x,y)", "p(w|y)")), "=", mi("w", "x", given="y")))]),
    ("equal up to a constant", VAE,
     (E("p_D(x)", E("q(z|x)", log("p(x|z)")) - kl("q(z|x)", "p(z)")), "=const",
      -kl("q(z)", "p(z)") - E("q(z)", kl("q(x|z)", "p(x|z)"))),
     [("p_theta(x) where p_D(x) belongs", (E("p(x)", E("q(z|x)", log("p(x|z)")) - kl("q(z|x)", "p(z)")), "=const",
                                          -kl("q(z)", "p(z)") - E("q(z)", kl("q(x|z)", "p(x|z)")))),
      ("term dropped", (E("p_D(x)", E("q(z|x)", log("p(x|z)"))), "=const",
                        -kl("q(z)", "p(z)") - E("q(z)", kl("q(x|z)", "p(x|z)"))))]),
]


@pytest.mark.parametrize("rule, model, true_step, mutations", CASES, ids=[c[0] for c in CASES])
def test_rule_proves_the_true_step_and_refutes_each_mutation(rule, model, true_step, mutations):
    result = verdict(model, *true_step)
    assert result.verdict == "proven", (rule, result.summary())
    for name, mutated in mutations:
        mutated_result = verdict(model, *mutated)
        assert mutated_result.verdict == "refuted", (rule, name, mutated_result.summary())
        assert mutated_result.counterexample is not None
        c = mutated_result.counterexample
        assert c.instance["factors"] and "domains" in c.instance


def test_factorization_assumption_removed_is_refuted():
    lhs = E("q(z_l,z_u|x)", log(ratio(["q(z_l,z_u|x)"], ["p(z_l,z_u|c)"])))
    rhs = E(["q(z_l|x)", "q(z_u|x)"], log(ratio(["q(z_l|x)", "q(z_u|x)"], ["p(z_l|c)", "p(z_u)"])))
    with_assumption = verdict(CDVAE, lhs, "=", rhs, [MEAN_FIELD])
    assert with_assumption.verdict == "proven"
    assert with_assumption.without_assumptions["verdict"] == "refuted"
    assert verdict(CDVAE, lhs, "=", rhs).verdict == "refuted"


def test_jensen_gap_certificate_and_its_reverse():
    csvae = Model("csvae", observed=["x", "y"], latent=["z", "w"],
                  generative=["p(y)", "p(z)", "p(w|y)", "p_theta(x|w,z)"], inference=["q(z|x,y)", "q(w|x,y)"])
    log_of_expectation = log(E(["q(z|x,y)", "q(w|x,y)"], density("p(x|w,z)")))
    expectation_of_log = E(["q(z|x,y)", "q(w|x,y)"], log("p(x|w,z)"))
    proven = verdict(csvae, log_of_expectation, ">=", expectation_of_log)
    assert proven.verdict == "proven" and "Jensen" in proven.certificate
    assert verdict(csvae, log_of_expectation, "<=", expectation_of_log).verdict == "refuted"


def test_a_step_that_is_true_but_beyond_the_rules_is_undecided_not_proven():
    # log p(x) >= E_q[log p(x|z)] - KL(q||p(z)) - 1 is true (ELBO - 1) but 1 is not a divergence of the model.
    from elbocheck.derivations import SearchSettings

    quick = Checker(SearchSettings(random_instances=10, local_search_iterations=30, local_search_starts=1))
    result = quick.check_step(VAE, Step(log("p(x)"), ">=", E("q(z|x)", log("p(x|z)")) - kl("q(z|x)", "p(z)") - 1))
    assert result.verdict in {"proven", "undecided"}
    if result.verdict == "undecided":
        assert "numeric search" in result.reason


def test_linear_gaussian_instances_refute_what_holds_only_for_discrete_models():
    # log p(x) >= E_q[log p(x,z)] and H(q) >= 0 hold for every discrete model (probabilities <= 1) but not for
    # densities: no discrete counterexample exists, and the linear-Gaussian instance supplies one.
    for lhs, rhs in [(log("p(x)"), E("q(z|x)", log("p(x,z)"))), (entropy("q(z|x)"), sympy.Integer(0))]:
        result = verdict(VAE, lhs, ">=", rhs)
        assert result.verdict == "refuted", result.summary()
        assert result.counterexample.instance["kind"] == "linear-gaussian"
        assert result.counterexample.lhs < result.counterexample.rhs


def test_linear_gaussian_evaluator_agrees_with_identities():
    import numpy as np

    from elbocheck.derivations.gaussian import GaussianEvaluator, GaussianInstance

    rng = np.random.default_rng(0)
    evaluator = GaussianEvaluator(VAE)
    points = rng.normal(size=(5, 2))
    for _ in range(5):
        instance = GaussianInstance(VAE, rng.normal(size=GaussianInstance.dimension(VAE)), {})
        gap = evaluator.value(log("p(x)"), instance).at(points) - evaluator.value(ELBO + kl("q(z|x)", "p(z|x)"), instance).at(points)
        assert np.allclose(gap, 0.0, atol=1e-9)
        kl_gap = evaluator.value(kl("q(z|x)", "p(z)"), instance).at(points)
        assert np.all(kl_gap >= -1e-12)


# beta-VAE's Lagrangian (Higgins et al. 2017, eqs. 2-3): F - L = beta * epsilon, a constant that is a product of
# coefficients. Its sign follows from the ranges alone: >= 0 when both are >= 0; of no definite sign otherwise.
LAGRANGIAN_RECONSTRUCTION = E("q(z|x)", log("p(x|z)"))
EPSILON = sympy.Symbol("epsilon", real=True)


def _lagrangian_model(epsilon_range):
    return Model("lagrangian", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
                 inference=["q_phi(z|x)"], coefficients={"beta": (0, None), "epsilon": epsilon_range})


def _lagrangian_step(model):
    lagrangian = LAGRANGIAN_RECONSTRUCTION - beta * (kl("q(z|x)", "p(z)") - EPSILON)
    return verdict(model, lagrangian, ">=", LAGRANGIAN_RECONSTRUCTION - beta * kl("q(z|x)", "p(z)"))


def test_a_constant_difference_that_is_a_product_of_nonnegative_coefficients_is_certified():
    result = _lagrangian_step(_lagrangian_model((0, None)))
    assert result.verdict == "proven", result.summary()
    assert result.certificate == "lhs - rhs = beta*epsilon >= 0", result.certificate


@pytest.mark.parametrize("epsilon_range", [(None, 0), (-1, 1)], ids=["epsilon <= 0", "-1 <= epsilon <= 1"])
def test_a_product_of_coefficients_without_a_definite_sign_is_not_certified(epsilon_range):
    # beta * epsilon < 0 at beta = 1, epsilon = -1/2: false, and it must be refuted, never proven
    result = _lagrangian_step(_lagrangian_model(epsilon_range))
    assert result.verdict == "refuted", result.summary()
