"""True textbook steps that must be proven, and false neighbours that must be refuted (issue 10). Every expected
verdict is the mathematics of the line beside it: an identity or inequality with its proof in the comment, or the
reason a neighbour is false."""

import sympy
import pytest

from elbocheck.derivations import Checker, Factorization, Model, ModelError, SearchSettings, Step, check
from elbocheck.derivations.expressions import E, entropy, kl, log, mi, prod_over, ratio, sum_over, tc

alpha, beta, gamma = sympy.symbols("alpha beta gamma", real=True)
K = sympy.Symbol("K", real=True)


def verdict(model, lhs, relation, rhs, assumptions=()):
    return check(model, lhs, relation, rhs, assumptions=assumptions)


# ---------------------------------------------------------------------------------------------- hierarchies

TWO = Model("two", observed=["x"], latent=["z_1", "z_2"], generative=["p(z_2)", "p_theta(z_1|z_2)", "p_theta(x|z_1)"],
            inference=["q_phi(z_1|x)", "q_phi(z_2|z_1)"])
THREE = Model("three", observed=["x"], latent=["z_1", "z_2", "z_3"],
              generative=["p(z_3)", "p_theta(z_2|z_3)", "p_theta(z_1|z_2)", "p_theta(x|z_1)"],
              inference=["q_phi(z_1|x)", "q_phi(z_2|z_1)", "q_phi(z_3|z_2)"])
TWO_LAYER_ELBO = E("q(z_1|x)", E("q(z_2|z_1)", log(ratio(["p(x,z_1,z_2)"], ["q(z_1|x)", "q(z_2|z_1)"]))))


@pytest.mark.parametrize("model, lhs, relation, rhs", [
    (TWO, log("p(x,z_1)"), "=", log("p(z_1)") + log("p(x|z_1)")),  # chain rule through the marginal prior p(z_1)
    (TWO, log("p(z_1|x)"), "=", log("p(x|z_1)") + log("p(z_1)") - log("p(x)")),  # Bayes through the marginal
    (TWO, log("p(x)"), ">=", TWO_LAYER_ELBO),  # lhs - rhs = KL(q(z_1,z_2|x) || p(z_1,z_2|x))
    (TWO, E("p_D(x)", log("p(x)")), ">=", E("p_D(x)", TWO_LAYER_ELBO)),  # the same, averaged over the data
    # the two-layer ELBO split by layer: E log p(x|z_1) + H(q(z_1|x)) + E log [p(z_1|z_2) p(z_2) / q(z_2|z_1)]
    (TWO, TWO_LAYER_ELBO, "=", E("q(z_1|x)", log("p(x|z_1)")) - E("q(z_1|x)", log("q(z_1|x)"))
     + E("q(z_1|x)", E("q(z_2|z_1)", log(ratio(["p(z_1|z_2)", "p(z_2)"], ["q(z_2|z_1)"]))))),
    (TWO, mi("x", "z_2"), "<=", mi("x", "z_1")),  # data processing: I(x;z_1) - I(x;z_2) = I(x;z_1|z_2) >= 0
    (THREE, mi("x", "z_3"), "<=", mi("z_1", "z_3")),  # data processing along x -> z_1 -> z_2 -> z_3 under q
    (THREE, log("p(x)"), ">=", E(["q(z_1|x)", "q(z_2|z_1)", "q(z_3|z_2)"],
                                  log(ratio(["p(x,z_1,z_2,z_3)"], ["q(z_1|x)", "q(z_2|z_1)", "q(z_3|z_2)"])))),
])
def test_hierarchical_steps_are_proven(model, lhs, relation, rhs):
    assert verdict(model, lhs, relation, rhs).verdict == "proven"


@pytest.mark.parametrize("model, lhs, relation, rhs", [
    (TWO, log("p(x,z_1)"), "=", log("p(z_1|z_2)") + log("p(x|z_1)")),  # p(z_1) is a marginal, not p(z_1|z_2)
    (TWO, mi("x", "z_2"), ">=", mi("x", "z_1")),  # data processing reversed
    (TWO, log("p(z_1|x,z_2)"), "=", log("p(z_1|z_2)")),  # z_1 depends on x given z_2
])
def test_hierarchical_neighbours_are_refuted(model, lhs, relation, rhs):
    assert verdict(model, lhs, relation, rhs).verdict == "refuted"


# ---------------------------------------------------------------------------------------------- information bounds

VIB = Model("vib", observed=["x", "y"], latent=["z"], generative=["p(z)", "p_theta(x|z)", "p_theta(y|z)"],
            inference=["q_phi(z|x)"], auxiliary=["r_psi(y|z)", "r_omega(z)"])
M2 = Model("m2", observed=["x", "y"], latent=["z"], generative=["p(y)", "p(z)", "p_theta(x|y,z)"],
           inference=["q_phi(z|x)"])


def test_variational_information_bottleneck_bounds():
    # Barber-Agakov: I(z;y) - E[log r(y|z)] - H(y) = E_{q(z)} KL(q(y|z) || r(y|z)) >= 0
    lower = E("p_D(x,y)", E("q(z|x)", log("r_psi(y|z)"))) - E("p_D(y)", log("p_D(y)"))
    assert verdict(VIB, mi("z", "y"), ">=", lower).verdict == "proven"
    # E KL(q(z|x) || r(z)) - I(x;z) = KL(q(z) || r(z)) >= 0
    assert verdict(VIB, mi("x", "z"), "<=", E("p_D(x)", kl("q(z|x)", "r_omega(z)"))).verdict == "proven"
    # ... and not the other way
    assert verdict(VIB, mi("x", "z"), ">=", E("p_D(x)", kl("q(z|x)", "r_omega(z)"))).verdict == "refuted"
    # the encoder sees only x: I(z;y) <= I(z;x) (Markov y - x - z under q)
    assert verdict(VIB, mi("z", "y"), "<=", mi("z", "x")).verdict == "proven"


def test_labelled_data_identities():
    # I(x;z) is defined under p_D(x,y) q(z|x); the encoder ignores y, so I(x,y;z) = I(x;z) and I(z;y|x) = 0
    assert verdict(M2, mi("x y", "z"), "=", mi("x", "z")).verdict == "proven"
    assert verdict(M2, mi("z", "y", "x"), "=", 0).verdict == "proven"
    assert verdict(M2, mi("y", "z"), "<=", mi("x", "z")).verdict == "proven"
    # under the generative joint, z and y are dependent given x: I_p(z;y|x) = 0 is false
    assert verdict(M2, mi("z", "y", "x", family="p"), "=", 0).verdict == "refuted"


def test_discrete_labels_have_non_negative_entropy_and_densities_do_not():
    semi = Model("m2u", observed=["x"], latent=["y", "z"], generative=["p(y)", "p(z)", "p_theta(x|y,z)"],
                 inference=["q_phi(y|x)", "q_phi(z|x,y)"], discrete=["y"])
    assert verdict(semi, entropy("q(y|x)"), ">=", 0).verdict == "proven"  # y has finitely many values
    continuous = Model("m2c", observed=["x"], latent=["y", "z"], generative=["p(y)", "p(z)", "p_theta(x|y,z)"],
                       inference=["q_phi(y|x)", "q_phi(z|x,y)"])
    assert verdict(continuous, entropy("q(y|x)"), ">=", 0).verdict == "refuted"  # a narrow Gaussian
    # I(x;y) <= H(y) holds for a discrete y (the conditional entropy is non-negative)
    assert verdict(semi, mi("x", "y"), "<=", -E("p_D(x)", E("q(y|x)", log("q(y)")))).verdict == "proven"


# ---------------------------------------------------------------------------------------------- vectors of any size


def btc(size):
    return Model("btc", observed=["x"], latent=["z"], vectors={"z": size}, generative=["prod_j p(z_j)", "p_theta(x|z)"],
                 inference=["q_phi(z|x)"], coefficients={"alpha": (1, None), "beta": (1, None), "gamma": (1, None)})


DIMENSIONWISE = sum_over("j", kl("q(z_j)", "p(z_j)"))
AVERAGE_KL = E("p_D(x)", kl("q(z|x)", "p(z)"))


@pytest.mark.parametrize("size", ["J", 2, 3, 512])
def test_the_tc_decomposition_for_any_number_of_dimensions(size):
    model = btc(size)
    # Chen et al. 2018, eq. (2): E KL(q(z|x) || prod p(z_j)) = I(x;z) + TC(q(z)) + sum_j KL(q(z_j) || p(z_j))
    assert verdict(model, AVERAGE_KL, "=", mi("x", "z") + tc("q(z)") + DIMENSIONWISE).verdict == "proven"
    # without the total correlation it is false (a correlated aggregate posterior)
    assert verdict(model, AVERAGE_KL, "=", mi("x", "z") + DIMENSIONWISE).verdict == "refuted"
    # KL(q(z) || prod p(z_j)) = TC + dimension-wise KL; log prod_j p(z_j) = sum_j log p(z_j)
    assert verdict(model, kl("q(z)", "p(z)"), "=", tc("q(z)") + DIMENSIONWISE).verdict == "proven"
    assert verdict(model, log(prod_over("j", "p(z_j)")), "=", sum_over("j", log("p(z_j)"))).verdict == "proven"


def test_the_weighted_objective_needs_every_weight_at_least_one():
    reconstruction = E("p_D(x)", E("q(z|x)", log("p(x|z)")))
    weighted = reconstruction - alpha * mi("x", "z") - beta * tc("q(z)") - gamma * DIMENSIONWISE
    result = verdict(btc("J"), reconstruction - AVERAGE_KL, ">=", weighted)
    assert result.verdict == "proven" and "(gamma - 1) sum_j KL(q(z_j) || p(z_j))" in result.certificate
    loose = Model("btc0", observed=["x"], latent=["z"], vectors={"z": "J"}, generative=["prod_j p(z_j)", "p_theta(x|z)"],
                  inference=["q_phi(z|x)"], coefficients={"alpha": (0, None), "beta": (1, None), "gamma": (1, None)})
    assert verdict(loose, reconstruction - AVERAGE_KL, ">=", weighted).verdict == "refuted"


def test_a_false_step_about_512_components_is_refuted_on_an_instance_of_512_components():
    # sum_j KL(q(z_j|x) || p(z_j)) = 512 KL(q(z_1|x) || p(z_1)) fails when the components differ
    result = verdict(btc(512), sum_over("j", kl("q(z_j|x)", "p(z_j)")), "=", 512 * kl("q(z_1|x)", "p(z_1)"))
    assert result.verdict == "refuted"
    assert "z_3 stands for the 510 components z_3 .. z_512, each constant" in result.counterexample.text


def test_a_generic_component_claims_the_step_for_every_component():
    assert verdict(btc("J"), kl("q(z_j|x)", "p(z_j)"), ">=", 0).verdict == "proven"
    assert verdict(btc(3), kl("q(z_2|x)", "p(z_2)"), ">=", 0).verdict == "proven"  # one particular component
    # a joint encoder is not the product of its marginals; a mean-field one is
    joint = verdict(btc(3), kl("q(z|x)", "p(z)"), "=", sum_over("j", kl("q(z_j|x)", "p(z_j)")))
    mean_field = verdict(btc(3), kl("q(z|x)", "p(z)"), "=", sum_over("j", kl("q(z_j|x)", "p(z_j)")),
                         assumptions=[Factorization("q(z|x)", ("prod_j q(z_j|x)",))])
    assert (joint.verdict, mean_field.verdict) == ("refuted", "proven")


def test_particular_components_of_a_symbolic_size_are_an_error():
    with pytest.raises(ModelError, match="particular component"):
        check(btc("J"), kl("q(z_1|x)", "p(z_1)") + kl("q(z_2|x)", "p(z_2)"), ">=", 0)


# ---------------------------------------------------------------------------------------------- importance samples


def iwae(samples):
    return Model("iwae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                 samples={"z": samples})


WEIGHT_K = ratio(["p(x,z_k)"], ["q(z_k|x)"])
SAMPLES = prod_over("k", "q(z_k|x)")
ELBO = E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))


@pytest.mark.parametrize("samples", ["K", 2, 3, 64])
def test_the_importance_weighted_bound(samples):
    count = K if samples == "K" else samples
    bound = E(SAMPLES, log(sum_over("k", WEIGHT_K) / count))
    # Burda et al. 2016: log p(x) >= L_K (Jensen: log is concave; E[mean_k w_k] = p(x)) and L_K >= ELBO (log of a
    # mean >= mean of logs)
    assert verdict(iwae(samples), log("p(x)"), ">=", bound).verdict == "proven"
    assert verdict(iwae(samples), bound, ">=", ELBO).verdict == "proven"
    # the average of the K single-sample ELBOs is the ELBO (each sample is distributed as z)
    assert verdict(iwae(samples), E(SAMPLES, sum_over("k", log(WEIGHT_K)) / count), "=", ELBO).verdict == "proven"


@pytest.mark.parametrize("samples", ["K", 2, 3])
def test_importance_weighted_neighbours_are_refuted(samples):
    count = K if samples == "K" else samples
    bound = E(SAMPLES, log(sum_over("k", WEIGHT_K) / count))
    assert verdict(iwae(samples), bound, "<=", ELBO).verdict == "refuted"
    assert verdict(iwae(samples), bound, "=", log("p(x)")).verdict == "refuted"


def test_theorem_1_the_bound_does_not_decrease_with_more_samples():
    w = {k: ratio([f"p(x,z_{k})"], [f"q(z_{k}|x)"]) for k in (1, 2, 3)}
    l3 = E(SAMPLES, log(sum_over("k", WEIGHT_K) / 3))
    l2 = E(SAMPLES, log((w[1] + w[2]) / 2))
    l1 = E(SAMPLES, log(w[1]))
    model = iwae(3)
    assert verdict(model, l3, ">=", l2).verdict == "proven"  # Burda et al. 2016, Theorem 1
    assert verdict(model, l2, ">=", l1).verdict == "proven"
    assert verdict(model, l2, "=", E(SAMPLES, log((w[2] + w[3]) / 2))).verdict == "proven"  # any two samples alike
    assert verdict(model, l2, ">=", l3).verdict == "refuted"


def test_a_density_of_two_samples_or_a_sample_outside_the_expectation_is_an_error():
    with pytest.raises(ModelError, match="two importance samples"):
        check(iwae(2), E(SAMPLES, log("p(z_1,z_2)")), "=", 0)
    with pytest.raises(ModelError, match="importance sample of z"):
        check(iwae(2), log("q(z_1|x)"), "=", log("q(z_2|x)"))


# ---------------------------------------------------------------------------------------------- speed is a benchmark

def test_checker_settings_do_not_change_the_symbolic_verdicts():
    """A quick checker proves what the default proves (the symbolic side does not depend on the search settings)."""
    quick = Checker(SearchSettings(random_instances=4, local_search_iterations=10, local_search_starts=1,
                                   gaussian_instances=2))
    step = Step(AVERAGE_KL, "=", mi("x", "z") + tc("q(z)") + DIMENSIONWISE)
    assert quick.check_step(btc(512), step).verdict == "proven"
