"""Model declarations: meanings of densities, independence, and errors that name the offending term."""

import pytest

from elbocheck.derivations import Model, ModelError
from elbocheck.derivations.expressions import E, density, kl, log, mi, tc

CDVAE = Model("cdvae", observed=["x", "c"], latent=["z_l", "z_u"],
              generative=["p_theta(z_l|c)", "p(z_u)", "p_theta(x|z_l,z_u)"], inference=["q_phi(z_l,z_u|x)"])


def test_inputs_are_variables_no_factor_generates():
    assert CDVAE.inputs == frozenset({"c"})


def test_resolution_reduces_conditioning_by_d_separation():
    r = CDVAE.resolve(density("p(x|z_l,z_u,c)"))
    assert r.family == "p" and r.targets == {"x"} and r.given == {"z_l", "z_u"}
    q = CDVAE.resolve(density("q(z_l|x,c)"))
    assert q.given == {"x"}
    assert CDVAE.resolve(density("p_D(x)")).family == "q"


def test_d_separation_collider():
    graph = CDVAE.p_graph
    # z_l and z_u are independent a priori but dependent given x (explaining away)
    assert graph.d_separated({"z_l"}, {"z_u"}, set())
    assert not graph.d_separated({"z_l"}, {"z_u"}, {"x"})


def test_vector_components():
    m = Model("tc", observed=["x"], latent=["z"], vectors={"z": 3}, generative=["prod_j p(z_j)", "p(x|z)"],
              inference=["q(z|x)"])
    assert m.components["z"] == ("z_1", "z_2", "z_3")
    assert [b.label for b in m.p_graph.blocks][:3] == ["p(z_1)", "p(z_2)", "p(z_3)"]


@pytest.mark.parametrize(
    "term, message",
    [
        (log(density("p(x|v)")), "variable 'v' is not declared"),
        (log(density("p_D(z_l)")), "p_D is the data distribution"),
        (kl("q(z_l|x)", "p(z_u)"), "same variables"),
        (log(density("p(c)")), "input of the generative model"),
        (log(density("p(x)")), "depends on the input"),
        (log(density("r(c|z_l)")), "auxiliary density not declared"),
        (log(density("p(x|x)")), "both targets and conditions"),
        (mi("x", "x"), "share"),
        (tc("q(z_u)"), "vector-valued"),
    ],
)
def test_bad_terms_raise_errors_naming_the_term(term, message):
    with pytest.raises(ModelError, match=message) as info:
        CDVAE.validate(term)
    # the message quotes the offending term
    assert any(tok in str(info.value) for tok in ("p(", "q(", "r(", "KL(", "I_q(", "TC(", "p_D("))


def test_undeclared_coefficient_is_named():
    import sympy

    with pytest.raises(ModelError, match="beta"):
        CDVAE.validate(sympy.Symbol("beta") * log(density("p(z_u)")))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(generative=["p(x|z)"], inference=["q(z|x)"]), "conditions a factor but has no factor"),
        (dict(generative=["p(z)", "p(x|z)"], inference=["q(x|z)"]), "observed targets"),
        (dict(generative=["p(z)", "p(x|z)"], inference=[]), "no factor for"),
        (dict(generative=["p(z|x)", "p(x|z)"], inference=["q(z|x)"]), "cycle"),
        (dict(generative=["p(z)", "p(x|z)"], inference=["q(z|x,w)"]), "not declared"),
    ],
)
def test_bad_declarations(kwargs, message):
    with pytest.raises(ModelError, match=message):
        Model("bad", observed=["x"], latent=["z"], **kwargs)


def test_assumption_must_name_a_declared_factor():
    with pytest.raises(ModelError, match="not a declared inference factor"):
        CDVAE.with_factorization("q(z_l|x)", ["q(z_l|x)"])
    mean_field = CDVAE.with_factorization("q(z_l,z_u|x)", ["q(z_l|x)", "q(z_u|x)"])
    assert mean_field.q_graph.d_separated({"z_l"}, {"z_u"}, {"x"})
    assert not CDVAE.q_graph.d_separated({"z_l"}, {"z_u"}, {"x"})


def test_expectation_measure_must_be_densities():
    with pytest.raises(ValueError):
        E(log(density("p(x)")), log(density("p(x)")))
