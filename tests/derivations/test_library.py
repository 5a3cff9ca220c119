"""Every step of the library gets its recorded verdict; the seeds' mistakes are refuted with counterexamples."""

import pytest

from elbocheck.derivations import Checker
from elbocheck.derivations.library import TERMS_BY_MODEL, all_derivations

DERIVATIONS = all_derivations()


@pytest.mark.parametrize("derivation", DERIVATIONS, ids=[d.name for d in DERIVATIONS])
def test_every_step_matches_its_expected_verdict(derivation):
    result = Checker().check_derivation(derivation)
    for step in result.steps:
        assert step.verdict == step.expected, (derivation.name, step.label, step.summary())
        if step.verdict == "proven":
            assert step.certificate
        if step.verdict == "refuted":
            assert step.counterexample is not None and step.counterexample.instance["factors"]


def test_the_library_covers_the_required_derivations():
    names = {d.name for d in DERIVATIONS}
    for required in ["elbo", "elbo_jensen", "beta_vae", "condvae", "csvae", "diva_seed", "cdvae", "infovae_seed",
                     "infovae", "elbo_surgery", "beta_tcvae", "beta_tcvae_alpha", "conditional_prior_surgery"]:
        assert required in names
    for d in DERIVATIONS:
        assert d.source and d.references


def test_cdvae_mean_field_step():
    cdvae = next(d for d in DERIVATIONS if d.name == "cdvae")
    result = Checker().check_derivation(cdvae)
    step = next(s for s in result.steps if s.label == "(3) -> (4)")
    assert step.verdict == "proven" and step.assumptions == ["q(z_l,z_u|x) = q(z_l|x) q(z_u|x)"]
    assert step.without_assumptions["verdict"] == "refuted"
    assert [s.line for s in result.steps[:8]] == list(range(1, 9))


def test_model_terms_are_valid_terms_of_their_derivation_models():
    from elbocheck.derivations.library import beta_tcvae, beta_vae, cdvae, condvae, csvae, diva, elbo, infovae

    models = {"vae": elbo.MODEL, "beta_vae": beta_vae.MODEL, "beta_tcvae": beta_tcvae.model(),
              "infovae": infovae.MODEL, "condvae": condvae.MODEL, "condvae_info": condvae.INFO_MODEL,
              "csvae": csvae.MODEL, "diva": diva.FULL_MODEL, "cdvae": cdvae.MODEL}
    assert set(models) == set(TERMS_BY_MODEL)
    for name, terms in TERMS_BY_MODEL.items():
        assert "reconstruction" in terms
        for expression in terms.values():
            models[name].validate(expression)


def test_the_beta_tcvae_decomposition_is_one_derivation_for_any_number_of_dimensions():
    (derivation,) = [d for d in DERIVATIONS if d.name == "beta_tcvae"]
    assert str(derivation.model.vector_sizes["z"]) == "J"
    assert not any(d.name.startswith("beta_tcvae_") and d.name[-1].isdigit() for d in DERIVATIONS)
