"""Printing and parsing of the SymPy term classes."""

import pytest
import sympy

from elbocheck.derivations.expressions import (
    KL, Density, E, Entropy, MutualInformation, TotalCorrelation, density, kl, log, mi, ratio, tc,
)


def test_density_notation_round_trips_through_str():
    for spec in ["p(x | z)", "q(z_l, z_u | x)", "p_theta(x | z)", "p_D(x, c)", "r(y | z)"]:
        assert str(density(spec)) == spec


def test_density_parts():
    d = density("p_theta(x|z_l,z_u)")
    assert d.family == "p" and [str(s) for s in d.subscript] == ["theta"]
    assert [str(t) for t in d.targets] == ["x"] and [str(g) for g in d.given] == ["z_l", "z_u"]
    assert density("p_D(x)").family == "p_D"


def test_latex_printing():
    assert sympy.latex(density("p_theta(x|z)")) == r"p_{\theta}\left(x \mid z\right)"
    assert sympy.latex(density("p_D(x)")) == r"p_{\mathcal{D}}\left(x\right)"
    assert sympy.latex(kl("q(z|x)", "p(z)")) == (
        r"D_{\mathrm{KL}}\left(q\left(z \mid x\right) \,\|\, p\left(z\right)\right)"
    )
    assert sympy.latex(E("q(z|x)", log("p(x|z)"))).startswith(r"\mathbb{E}_{q\left(z \mid x\right)}\left[")
    assert sympy.latex(mi("x", "z")) == r"I_{q}\left(x; z\right)"
    assert sympy.latex(tc("q(z)")) == r"\mathrm{TC}\left(q\left(z\right)\right)"


def test_str_printing_of_composites():
    assert str(kl("q(z|x)", "p(z)")) == "KL(q(z | x) || p(z))"
    assert str(mi("w", "x", given="y")) == "I_q(w; x | y)"
    assert str(E(["q(z_x|x)", "q(z_y|x)"], log("p(x|z_x,z_y)"))).startswith("E_{q(z_x | x)*q(z_y | x)}")


def test_ratio_is_kept_as_written():
    # SymPy would cancel q/q; the derivation must show the line as written
    r = ratio(["p(x,z)", "q(z|x)"], ["q(z|x)", "p(z|x)"])
    assert sum(1 for a in r.args if a == density("q(z|x)")) == 1
    assert any(isinstance(a, sympy.Pow) and a.args[0] == density("q(z|x)") for a in r.args)


@pytest.mark.parametrize("bad", ["p x|z", "(x|z)", "p()", "p(|z)"])
def test_bad_density_notation_names_the_input(bad):
    with pytest.raises(ValueError, match="density"):
        density(bad)


def test_term_constructors_reject_non_densities():
    x = sympy.Symbol("x")
    with pytest.raises(ValueError, match="KL"):
        KL(x, density("p(x)"))
    with pytest.raises(ValueError, match="TC"):
        TotalCorrelation(x)
    with pytest.raises(ValueError, match="H"):
        Entropy(x)
    with pytest.raises(ValueError, match="measure"):
        E(x, log("p(x)"))
    assert isinstance(MutualInformation(["x"], ["z"]), MutualInformation)
    assert isinstance(Density("p", ["x"]), Density)
