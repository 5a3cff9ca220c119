"""Tests that kill the mutants which survived mutation testing of the checker's core (``benchmarks/mutation.py``, the
seed-0 sample; triage in ``benchmarks/mutation_survivors.md``).

Each test names the mutants it kills (file:line, cosmic-ray operator). Every expected verdict is decided by the
mathematics in the docstring before the checker runs: a true identity or inequality must be proven, a false step must
be refuted (and so never proven).
"""

import pytest
import sympy
from elbocheck.derivations import Checker, Model, ModelError, SearchSettings, Step
from elbocheck.derivations.canonical import CONSTANT, Canonicalizer, LinearForm, UnsupportedExpression
from elbocheck.derivations.certificates import _exact_from, nonnegative
from elbocheck.derivations.expressions import (
    E,
    density,
    entropy,
    kl,
    log,
    mi,
    prod_over,
    ratio,
    sum_over,
    tc,
)

# the symbolic side does not depend on the search settings; small ones keep the refutations quick
checker = Checker(SearchSettings(random_instances=8, local_search_iterations=20, local_search_starts=1,
                                 gaussian_instances=2))

VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"])
COND = Model("cond", observed=["x", "y"], latent=["w"], generative=["p(y)", "p_gamma(w|y)", "p_theta(x|w)"],
             inference=["q_phi(w|x,y)"])
CDVAE = Model("cdvae", observed=["x", "c"], latent=["z_l", "z_u"],
              generative=["p_theta(z_l|c)", "p(z_u)", "p_theta(x|z_l,z_u)"], inference=["q_phi(z_l,z_u|x)"])
DISCRETE = Model("disc", observed=["x"], latent=["y", "c"], generative=["p(y)", "p(c)", "p_theta(x|y,c)"],
                 inference=["q_phi(y|x)", "q_phi(c|x)"], discrete=["y", "c"])
IWAE2 = Model("iwae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
              samples={"z": 2})
UPPER = Model("vae_upper", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
              inference=["q_phi(z|x)"], coefficients={"beta": (None, 1)})
# a hierarchy whose middle layer is a vector with a factorized (templated) conditional prior
HIER = Model("hier", observed=["x"], latent=["w", "y", "z"], vectors={"z": 3},
             generative=["p(w)", "p(y|w)", "prod_j p(z_j|y)", "p_theta(x|z)"], inference=["q(z|x)", "q(y|z)", "q(w|y)"])
HIER_J = Model("hier_j", observed=["x"], latent=["w", "y", "z"], vectors={"z": "J"},
               generative=["p(w)", "p(y|w)", "prod_j p(z_j|y)", "p_theta(x|z)"],
               inference=["q(z|x)", "q(y|z)", "q(w|y)"])
HIER_INPUT = Model("hier_c", observed=["x", "c"], latent=["w", "y", "z"], vectors={"z": 3},
                   generative=["p(w)", "p(y|w)", "prod_j p(z_j|y,c)", "p_theta(x|z)"],
                   inference=["q(z|x,c)", "q(y|z)", "q(w|y)"])
# two chains joined only through the input c: given c they are independent
TWIN = Model("twin", observed=["x", "c"], latent=["a", "b", "d", "e"],
             generative=["p(a)", "p(b|a,c)", "p(d)", "p(e|d,c)", "p_theta(x|b,e)"], inference=["q(a,b,d,e|x,c)"])


def btc(size):
    return Model("btc", observed=["x"], latent=["z"], vectors={"z": size}, generative=["prod_j p(z_j)", "p_theta(x|z)"],
                 inference=["q_phi(z|x)"])


def verdict(model, lhs, relation, rhs):
    return checker.check_step(model, Step(lhs, relation, rhs))


def assert_proven(model, lhs, relation, rhs):
    result = verdict(model, lhs, relation, rhs)
    assert result.verdict == "proven", result.summary()
    return result


def assert_refuted(model, lhs, relation, rhs):
    result = verdict(model, lhs, relation, rhs)
    assert result.verdict == "refuted", result.summary()
    return result


# ---------------------------------------------------------------------------------------------- canonical.py


def test_the_conditional_independence_rule_is_reported_only_when_a_conditioning_variable_is_dropped():
    """Kills canonical.py:212 NotEq->LtE and NotEq->Eq (the rule named when d-separation reduced a conditioning set).

    z_l and z_u are independent under the prior (p(z_l|c) p(z_u)), so p(z_l | z_u, c) = p(z_l | c): proven, citing
    conditional independence. log p(x|z) = log p(x|z) drops nothing: the rule must not be cited."""
    reduced = assert_proven(CDVAE, log("p(z_l|z_u,c)"), "=", log("p(z_l|c)"))
    assert any("conditional independence" in rule for rule in reduced.rules), reduced.rules
    plain = assert_proven(VAE, log("p(x|z)"), "=", log("p(x|z)"))
    assert not any("conditional independence" in rule for rule in plain.rules), plain.rules


def test_a_component_sum_of_a_constant_term_is_the_size_times_the_term():
    """Kills canonical.py:293 Mul->Div (component_sum scales a term free of the index by the size).

    sum_{j=1}^J [log p(z_j) + log p(x)] = sum_j log p(z_j) + J log p(x): log p(x) does not depend on j."""
    size = btc("J").vector_sizes["z"]
    assert_proven(btc("J"), sum_over("j", log("p(z_j)") + log("p(x)")), "=",
                  sum_over("j", log("p(z_j)")) + size * log("p(x)"))


def test_bayes_rule_for_one_generic_component():
    """Kills canonical.py:266 IsNot->Is (a lone generic component factor p(z_j) became the sum over all components).

    log p(x | z_j) = log p(x, z_j) - log p(z_j): Bayes' rule for the j-th component, whatever J is."""
    assert_proven(btc("J"), log("p(x|z_j)"), "=", log("p(x,z_j)") - log("p(z_j)"))


def test_a_measure_that_integrates_a_variable_twice_is_declined_with_its_name():
    """Kills canonical.py:430 BitAnd->Mul (the error message that names the variable integrated twice raised a
    TypeError instead).

    E_{q(z|x) p(z)}[...] integrates z twice: it is not an expectation. The model's validation refuses it with a
    ModelError naming z; the canonicalizer, the second line, declines it naming z too."""
    twice = E(["q(z|x)", "p(z)"], log("p(x|z)"))
    with pytest.raises(ModelError, match="integrates z twice"):
        verdict(VAE, twice, "=", 0)
    with pytest.raises(UnsupportedExpression, match=r"\['z'\] integrated twice in one measure"):
        Canonicalizer(VAE).measure_of(twice.measure)


def test_a_term_free_of_the_importance_samples_passes_through_their_expectation():
    """Kills canonical.py:546 Add->BitOr (a sample-free term inside E_{prod_k q(z_k|x)} raised a TypeError).

    E_{prod_k q(z_k|x)}[L + log p(x)] = E_{prod_k q(z_k|x)}[L] + log p(x): log p(x) does not depend on the samples
    and the measure integrates to one."""
    bound = log(sum_over("k", ratio(["p(x,z_k)"], ["q(z_k|x)"])) / 2)
    samples = prod_over("k", "q(z_k|x)")
    assert_proven(IWAE2, E(samples, bound + log("p(x)")), "=", E(samples, bound) + log("p(x)"))


def test_the_importance_sampling_identity_with_a_conditioning_variable():
    """Kills canonical.py:642 Sub->BitAnd (both mutants of the conditioning set searched by the identity).

    E_{q(w|x,y)}[p(x|w) p(w|y) / q(w|x,y)] = int p(x|w) p(w|y) dw = p(x|y), so its log is log p(x|y)."""
    assert_proven(COND, log(E("q(w|x,y)", ratio(["p(x|w)", "p(w|y)"], ["q(w|x,y)"]))), "=", log("p(x|y)"))


def test_a_log_expectation_depends_on_the_variables_its_integrand_leaves_free():
    """Kills canonical.py:237 BitOr->BitAnd (the dependencies of log E_F[...] lost the integrand's free variables,
    so an outer expectation over them was dropped as if over a constant).

    f(x) = log E_{q(z)}[p(x|z)] depends on x, so E_{p_D(x)}[f(x)] = f(x) fails for some x (refuted); the mutant
    proved it (the run-time oracle then raised an internal inconsistency)."""
    assert_refuted(VAE, E("p_D(x)", log(E("q(z)", density("p(x|z)")))), "=", log(E("q(z)", density("p(x|z)"))))


def test_a_false_step_with_a_free_component_sum_is_refuted():
    """Kills canonical.py:224 BitOr->RShift (the dependencies of a component sum with a free generic component raised
    a TypeError).

    sum_j log p(z_j) >= 0 is false: a density's log is negative where the density is below one."""
    assert_refuted(btc("J"), sum_over("j", log("p(z_j)")), ">=", 0)


@pytest.mark.parametrize("model, lhs, rhs", [
    (HIER, log("p(y,z)"), log("p(y)") + sum_over("j", log("p(z_j|y)"))),
    (HIER_J, log("p(y,z)"), log("p(y)") + sum_over("j", log("p(z_j|y)"))),
    (HIER_INPUT, log("p(y,z|c)"), log("p(y)") + sum_over("j", log("p(z_j|y,c)"))),
], ids=["J=3", "J generic", "input c"])
def test_the_chain_rule_through_a_marginal_peels_a_factorized_vector(model, lhs, rhs):
    """Kills canonical.py:811 IsNot->Is, 814 Sub->BitAnd and Sub->Pow, 815 LtE->Gt, 817 BitAnd->Div and BitAnd->Sub
    (peeling the component factors of one template together, in _peel_sinks).

    With p(w) p(y|w) prod_j p(z_j|y[,c]) p(x|z): p(y, z) = p(y) prod_j p(z_j|y[,c]) (sum out w: it only enters
    p(w) p(y|w), whose integral over w is p(y); x is a descendant and integrates to one). The set {y, z} is not
    closed under parents (w is outside), so the checker must peel the z factors off as sinks."""
    assert_proven(model, lhs, "=", rhs)


def test_a_marginal_of_parts_independent_given_the_inputs_factorizes():
    """Kills canonical.py:832 Sub->BitOr (the moral graph kept the inputs, which joined independent parts).

    In p(a) p(b|a,c) p(d) p(e|d,c) with c an input (fixed), b and e have no common random ancestor:
    p(b, e | c) = p(b | c) p(e | c)."""
    assert_proven(TWIN, log("p(b,e|c)"), "=", log("p(b|c)") + log("p(e|c)"))


def test_nested_measures_that_condition_on_each_other_keep_their_written_order():
    """Kills canonical.py:687 Add->Mul (the fallback of _canonical_order for factors that condition on each other,
    reached by nesting: the outer q(x|z) conditions on a free z, the inner q(z|x) on the outer x; it raised a TypeError).

    E_{q(x|z)}[E_{q(z'|x)}[log p(x|z')]] = E_{q(x|z)}[E_{q(z'|x)}[log p(x,z') - log p(z')]]: the chain rule
    p(x, z') = p(x|z') p(z') inside both expectations."""
    assert_proven(VAE, E("q(x|z)", E("q(z|x)", log("p(x|z)"))), "=",
                  E("q(x|z)", E("q(z|x)", log(ratio(["p(x,z)"], ["p(z)"])))))


# ---------------------------------------------------------------------------------------------- certificates.py


def test_a_kl_conditioned_on_a_variable_free_in_the_difference():
    """Kills certificates.py:130 NotEq->Is (the variables free in the difference were left out of the conditioning
    pool of KL candidates).

    For every x, E_{q(z)}[log q(z) - log p(z|x)] = KL(q(z) || p(z|x)) >= 0."""
    assert_proven(VAE, E("q(z)", log(ratio(["q(z)"], ["p(z|x)"]))), ">=", 0)
    assert_proven(VAE, kl("q(z)", "p(z|x)"), ">=", 0)


@pytest.mark.parametrize("model, step, name", [
    (VAE, (mi("x", "z"), ">=", 0), "I_q(x; z)"),
    (btc("J"), (mi("x", "z_j"), ">=", 0), "I_q(x; z_j)"),
    (COND, (mi("w", "x", given="y"), ">=", 0), "I_q(w; x | y)"),
], ids=["I(x;z)", "I(x;z_j)", "I(w;x|y)"])
def test_a_mutual_information_is_certified_by_its_name(model, step, name):
    """Kills certificates.py:137 NumberReplacer (MI candidates between single units), certificates.py:59 Eq->GtE (the
    generic component z_j dropped from the units) and certificates.py:140 BitAnd->Sub (the conditioning units of an
    MI).

    A (conditional) mutual information is non-negative; candidates are generated MIs first so that the certificate
    names it as one (the mutants certified it as an expected KL, or as I(w; x, y | y))."""
    result = assert_proven(model, *step)
    assert result.certificate == f"lhs - rhs = {name} >= 0", result.certificate


def test_the_entropy_of_one_of_several_discrete_variables_is_nonnegative():
    """Kills certificates.py:174 LtE->Eq (the entropy candidate required the targets to be all the discrete
    variables).

    y and c are discrete: H(q(y|x)) = -sum_y q(y|x) log q(y|x) >= 0 and H(q(y)) >= 0 (probabilities are <= 1)."""
    assert_proven(DISCRETE, entropy("q(y|x)"), ">=", 0)
    assert_proven(DISCRETE, entropy("q(y)"), ">=", 0)


def test_a_sum_of_entropies_of_continuous_components_is_not_bounded_by_one_of_them():
    """Kills certificates.py:184 ReplaceAndWithOr (both: a 'total correlation' of the single generic component
    z_j, log q(z_j) - sum_j log q(z_j), is not a divergence).

    sum_j H(q(z_j)) >= H(q(z_j)) says sum_{i != j} H(q(z_i)) >= 0, false for densities (a narrow density has a negative
    differential entropy): refuted. The mutants proved it, and the run-time oracle did not catch it."""
    assert_refuted(btc("J"), sum_over("j", entropy("q(z_j)")), ">=", entropy("q(z_j)"))


@pytest.mark.parametrize("size", [3, "J"])
def test_the_total_correlation_of_a_conditional_is_nonnegative(size):
    """Kills certificates.py:185 BitOr->Sub (the TC candidate of a conditional lost its conditioning set).

    TC(q(z|x)) = KL(q(z|x) || prod_j q(z_j|x)) >= 0 for every x."""
    assert_proven(btc(size), tc("q(z|x)"), ">=", 0)


def test_a_weight_with_an_upper_bound_only_certifies_its_slack():
    """Kills certificates.py:527 Sub->BitXor and Sub->RShift (the offset of a coefficient with only an upper bound,
    in the affine certificate).

    For beta <= 1: E_q[log p(x|z)] - beta KL(q||p(z)) - (E_q[log p(x|z)] - KL(q||p(z))) = (1 - beta) KL >= 0."""
    beta = sympy.Symbol("beta", real=True)
    reconstruction = E("q(z|x)", log("p(x|z)"))
    result = assert_proven(UPPER, reconstruction - beta * kl("q(z|x)", "p(z)"), ">=",
                           reconstruction - kl("q(z|x)", "p(z)"))
    assert "(1 - beta)" in result.certificate, result.certificate


def _with_range(spec):
    return Model("ranges", observed=["x"], latent=["z"], generative=["p(z)", "p(x|z)"], inference=["q(z|x)"],
                 coefficients={"a": spec})


A = sympy.Symbol("a", real=True)


@pytest.mark.parametrize("expr, spec, expected, why", [
    (sympy.Rational(1, 2) - A, (0, 1, True, True), False, "1/2 - a < 0 for a in (1/2, 1)"),
    (1 / (2 * A - 2), (1, 3), False, "undefined at a = 1, inside [1, 3]"),
    (1 / A, (0, None), False, "undefined at a = 0, inside [0, inf)"),
    (1 / (1 + A), (0, None), True, "1 + a >= 1 on [0, inf)"),
    (1 / (1 - A), (0, 1), False, "undefined at a = 1, inside [0, 1]"),
    (1 / (1 - A), (0, 1, False, True), True, "1 - a > 0 on [0, 1)"),
], ids=["1/2-a on (0,1)", "1/(2a-2) on [1,3]", "1/a on [0,inf)", "1/(1+a) on [0,inf)", "1/(1-a) on [0,1]",
        "1/(1-a) on [0,1)"])
def test_coefficient_signs_over_declared_ranges(expr, spec, expected, why):
    """Kills certificates.py:318 Add->Mod (the map of a two-sided range), 365 Div->Pow (the root of a linear
    denominator), 366 Lt->Eq and 367 Gt->LtE, Gt->Eq (whether that root lies outside the range).

    ``nonnegative`` decides whether a certificate's coefficient is >= 0 on the whole declared range of its symbol; a
    coefficient that is negative somewhere, or undefined (a denominator vanishing inside or at a closed end), is not;
    the expected answers are the elementary facts named in ``why``."""
    assert nonnegative(expr, _with_range(spec)) is expected, why


def test_the_exact_check_rejects_a_combination_that_does_not_add_up():
    """Kills certificates.py:563 NotEq->Gt (the exact identity check of a certificate accepted a combination whose
    residual is negative).

    The difference is the constant 2; one unit of the constant slack gives 1 != 2: no certificate."""
    difference = LinearForm.atom(CONSTANT, 2)
    assert _exact_from(difference, [CONSTANT], [[sympy.Integer(1)]], {0: sympy.Integer(1)}, [], VAE) is None
    assert _exact_from(difference, [CONSTANT], [[sympy.Integer(1)]], {0: sympy.Integer(2)}, [], VAE) is not None
