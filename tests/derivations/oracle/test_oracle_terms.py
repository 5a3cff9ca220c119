"""Subscripts, parameter versions, assumptions with inheritance, inputs, ambiguity: docs/semantics.md sections 2-4,
and the reproducers of issue 9 (items 1, 2, 3 and 5) under the oracle."""

from types import SimpleNamespace

import pytest
import sympy

from elbocheck.derivations import Factorization, Model
from elbocheck.derivations.expressions import Density, E, density, entropy, kl, log, ratio
from elbocheck.derivations.oracle import (
    DeclarationError,
    UndefinedTerm,
    judge,
    random_discrete_instance,
    random_gaussian_instance,
    read_structure,
)

VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"])
PLAIN = Model("plain", observed=["x"], latent=["z"], generative=["p(z)", "p(x|z)"], inference=["q(z|x)"])
MEAN_FIELD_MODEL = Model("mf", observed=["x"], latent=["z_l", "z_u"],
                         generative=["p(z_l)", "p(z_u)", "p_theta(x|z_l,z_u)"], inference=["q_phi(z_l,z_u|x)"])
MEAN_FIELD = Factorization("q(z_l,z_u|x)", ("q(z_l|x)", "q(z_u|x)"))
CDVAE = Model("cdvae", observed=["x", "c"], latent=["z_l", "z_u"],
              generative=["p_theta(z_l|c)", "p(z_u)", "p_theta(x|z_l,z_u)"], inference=["q_phi(z_l,z_u|x)"])
CSVAE = Model("csvae", observed=["x", "y"], latent=["z", "w"],
              generative=["p(y)", "p(z)", "p_gamma(w|y)", "p_theta(x|w,z)"],
              inference=["q_phi(z|x,y)", "q_phi(w|x,y)"], auxiliary=["q_delta(y|z)"])


def violated_on_some_pair(model, lhs, rhs, assumptions=(), seeds=range(6)):
    """'= const' is false iff some pair of instances (parametric factors redrawn) changes lhs - rhs; each pair found
    by float64 is confirmed in interval arithmetic."""
    for seed in seeds:
        instance = random_discrete_instance(model, assumptions, rng=seed)
        second = instance.redraw_parametric(__import__("numpy").random.default_rng(seed + 100))
        low = judge(model, lhs, "= const", rhs, assumptions, instance, second_instance=second)
        if not low.holds:
            high = judge(model, lhs, "= const", rhs, assumptions, instance, second_instance=second,
                         precision="high")
            assert not high.holds
            return True
    return False


# ---- issue 9, item 1: an assumption does not strip the parameters ------------------------------------------------

def test_assumption_factors_inherit_the_parameters_of_the_factor_they_replace():
    structure = read_structure(MEAN_FIELD_MODEL, [MEAN_FIELD])
    q_factors = [f for f in structure.factors if f.letter == "q"]
    assert [(f.text, f.parameters) for f in q_factors] == [("q(z_l | x)", "phi"), ("q(z_u | x)", "phi")]


def test_dropping_a_parameter_dependent_term_up_to_a_constant_is_false():
    lhs, rhs = -kl("q(z_u|x)", "p(z_u)"), entropy("q(z_u|x)")
    assert violated_on_some_pair(MEAN_FIELD_MODEL, lhs, rhs, [MEAN_FIELD])
    # ... because the dropped term E_{q(z_u|x)}[log p(z_u)] depends on phi
    assert violated_on_some_pair(MEAN_FIELD_MODEL, E("q(z_u|x)", log("p(z_u)")), 0, [MEAN_FIELD])
    # while the full identity, and a term free of the parameters, are constant
    full = entropy("q(z_u|x)") + E("q(z_u|x)", log("p(z_u)"))
    assert not violated_on_some_pair(MEAN_FIELD_MODEL, lhs, full, [MEAN_FIELD])
    assert not violated_on_some_pair(MEAN_FIELD_MODEL, E("p_D(x)", log("p_D(x)")), 0, [MEAN_FIELD])


def test_an_assumption_with_an_undeclared_subscript_or_joint_is_an_error():
    with pytest.raises(DeclarationError, match="psi"):
        read_structure(MEAN_FIELD_MODEL, [Factorization("q(z_l,z_u|x)", ("q_psi(z_l|x)", "q(z_u|x)"))])
    with pytest.raises(DeclarationError, match="not a declared factor"):
        read_structure(MEAN_FIELD_MODEL, [Factorization("q(z_l|x)", ("q(z_l|x)",))])
    with pytest.raises(DeclarationError, match="each once"):
        read_structure(MEAN_FIELD_MODEL, [Factorization("q(z_l,z_u|x)", ("q(z_l|x)",))])
    explicit = read_structure(MEAN_FIELD_MODEL, [Factorization("q_phi(z_l,z_u|x)", ("q_phi(z_l|x)", "q(z_u|x,z_l)"))])
    assert [f.parameters for f in explicit.factors if f.letter == "q"] == ["phi", "phi"]


# ---- issue 9, item 2: subscripts are not ignored -------------------------------------------------------------

def test_an_undeclared_subscript_is_an_error_naming_the_declared_sets():
    with pytest.raises(UndefinedTerm, match=r"q_psi\(z \| x\).*'psi'.*phi"):
        judge(VAE, kl("q_phi(z|x)", "q_psi(z|x)"), "=", 0)


@pytest.mark.parametrize("old", ["theta_old", r"\theta^{old}", r"\theta^{\text{old}}", "theta_{old}"])
def test_parameter_versions_are_copies_with_independent_parametric_factors(old):
    old_posterior = Density("p", ["z"], ["x"], [old])
    # the EM identity with old and current parameters holds ...
    lhs = log("p_theta(x)")
    rhs = E(old_posterior, log("p_theta(x,z)")) + entropy(old_posterior) + kl(old_posterior, density("p_theta(z|x)"))
    for seed in range(3):
        assert judge(VAE, lhs, "=", rhs, rng=seed).holds
        assert judge(VAE, lhs, "=", rhs, instance=random_gaussian_instance(VAE, rng=seed)).holds
    # ... and reading p_theta_old as p_theta would make the KL vanish, which it does not
    assert not judge(VAE, kl(old_posterior, density("p_theta(z|x)")), "=", 0, rng=0, precision="high").holds
    # every spelling of the same version is the same copy
    assert judge(VAE, kl(old_posterior, density("p_theta_old(z|x)")), "=", 0, rng=0, precision="high").holds


def test_different_versions_are_different_copies_and_non_parametric_factors_are_shared():
    assert not judge(VAE, log("p_theta'(x|z)"), "=", log("p_theta_old(x|z)"), rng=0).holds
    assert not judge(VAE, log("p_theta_0(x)"), "=", log("p_theta_1(x)"), rng=0).holds
    # p(z) is not parametric: every version shares it
    assert judge(VAE, log("p_theta_old(z)"), "=", log("p(z)"), rng=0, precision="high").holds
    # a version is a fixed value: it does not change in an '= const' pair
    assert not violated_on_some_pair(VAE, log("p_theta_old(x)"), 0)
    assert violated_on_some_pair(VAE, log("p_theta(x)"), 0)


def test_a_prefix_group_names_its_sets_and_its_versions_replace_them_all():
    model = Model("groups", observed=["x"], latent=["z", "w"], generative=["p(z)", "p(w|z)", "p_theta(x|z,w)"],
                  inference=["q_phi_z(z|x)", "q_phi_w(w|x,z)"])
    assert judge(model, log("q_phi(z|x)"), "=", log("q(z|x)"), rng=0).holds
    assert not judge(model, log("q_phi_old(w|x,z)"), "=", log("q(w|x,z)"), rng=0).holds
    assert not judge(model, log("q_phi_old(z|x)"), "=", log("q(z|x)"), rng=0).holds
    # the version of one set of the group leaves the other set's factor alone
    assert judge(model, log("q_phi_w_old(z|x)"), "=", log("q(z|x)"), rng=0, precision="high").holds


def test_two_data_points_of_one_variable_are_an_error_and_one_index_is_the_variable():
    with pytest.raises(UndefinedTerm, match="two data points"):
        judge(VAE, log("p(x^{(i)})"), "=", log("p(x^{(j)})"))
    assert judge(VAE, log("p(x^{(i)})"), "=", log("p(x)"), rng=0, precision="high").holds


# ---- issue 9, item 3: a header without subscripts --------------------------------------------------------------

def test_without_declared_parameters_a_subscript_is_an_error_and_const_is_vacuous():
    with pytest.raises(UndefinedTerm, match="declares no parameters"):
        judge(PLAIN, log("p_theta(x)"), "= const", 0)
    result = judge(PLAIN, log("p(x)"), "= const", 0, rng=0)
    assert result.vacuous and result.holds


# ---- issue 9, item 5 (values in test_oracle_discrete.py) ---------------------------------------------------------

def test_measures_are_sets_of_factors():
    for seed in range(3):
        for instance in (random_discrete_instance(VAE, rng=seed), random_gaussian_instance(VAE, rng=seed)):
            assert judge(VAE, E(["q(z|x)", "p_D(x)"], log("q(z|x)")), "=", E(["p_D(x)", "q(z|x)"], log("q(z|x)")),
                         instance=instance, precision="high").holds


# ---- inputs, auxiliaries, ambiguity -------------------------------------------------------------------------------

@pytest.mark.parametrize("term", ["p(z_l)", "p(z_u|x)", "p(x)", "p(z_l,z_u)"])
def test_a_p_term_that_leaves_out_an_input_it_depends_on_is_an_error(term):
    with pytest.raises(UndefinedTerm, match="input c"):
        judge(CDVAE, log(term), "=", 0)


def test_a_p_term_that_cannot_depend_on_a_left_out_input_is_defined():
    # z_u is a root independent of c; given z_l and z_u, x does not depend on c
    assert judge(CDVAE, log("p(z_u|z_l)"), "=", log("p(z_u)"), rng=0, precision="high").holds
    assert judge(CDVAE, log("p(x|z_l,z_u)"), "=", log("p(x|z_l,z_u,c)"), rng=0, precision="high").holds
    with pytest.raises(UndefinedTerm, match="input"):
        judge(CDVAE, log("p(c)"), "=", 0)


def test_an_auxiliary_is_found_by_family_subscript_and_arguments_and_ambiguity_is_an_error():
    with pytest.raises(UndefinedTerm, match="ambiguous"):
        judge(CSVAE, log("q(y|z)"), "=", 0)
    # the adversary and the inference joint's conditional are different densities
    assert not judge(CSVAE, log("q_delta(y|z)"), "=", log("q_phi(y|z)"), rng=0).holds
    assert not judge(CSVAE, log("q_delta_old(y|z)"), "=", log("q_delta(y|z)"), rng=0).holds
    with pytest.raises(UndefinedTerm, match="q_delta"):
        judge(CSVAE, log("q_delta(y|w)"), "=", 0)
    with pytest.raises(UndefinedTerm, match="undeclared density family 'r'"):
        judge(CSVAE, log("r(y|z)"), "=", 0)
    model = Model("aux", observed=["x", "y"], latent=["z"], generative=["p(y)", "p(z)", "p_theta(x|z,y)"],
                  inference=["q_phi(z|x)"], auxiliary=["r_psi(y|z)"])
    # a subscript-free r(y|z) names the one declared r_psi(y|z); an auxiliary's parameters change in '= const'
    assert judge(model, log("r(y|z)"), "=", log("r_psi(y|z)"), rng=0).holds
    assert violated_on_some_pair(model, log("r(y|z)"), 0)
    with pytest.raises(UndefinedTerm, match="r_chi"):
        judge(model, log("r_chi(y|z)"), "=", 0)


def test_undeclared_variables_and_coefficients_are_errors():
    with pytest.raises(UndefinedTerm, match="undeclared variable 'w'"):
        judge(VAE, log("p(w)"), "=", 0)
    with pytest.raises(UndefinedTerm, match="undeclared coefficient"):
        judge(VAE, sympy.Symbol("beta", real=True) * log("p(x)"), "=", 0)
    with pytest.raises(UndefinedTerm, match="different variables"):
        judge(VAE, kl("q(z|x)", "p(x)"), "=", 0)
    with pytest.raises(UndefinedTerm, match="p_D"):
        judge(VAE, log("p_D(z)"), "=", 0)
    # a raw declaration (the oracle reads only these fields) whose inference joint does not cover w
    partial = SimpleNamespace(name="partial", observed=["x"], latent=["z", "w"], vectors={}, data=None,
                              generative=["p(w)", "p(z|w)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                              auxiliary=[], coefficients={})
    with pytest.raises(UndefinedTerm, match="not a variable of the inference joint"):
        judge(partial, log("q(w|x)"), "=", 0)
    assert judge(partial, log("q(x)"), "=", log(ratio(["q(x,z)"], ["q(z|x)"])), rng=0, precision="high").holds
