"""Every model reports its derivation's terms under their names, and those terms compose the proven bound.

For each model: the term names of its derivation (``elbocheck.derivations.library.TERMS_BY_MODEL``) are among the
names the model reports; the reported ``elbo`` is the derivation's bound assembled from the reported terms
(reconstruction and log p(y) added, KLs subtracted); and the same assembly of the derivation's *expressions* is,
symbolically, the right-hand side of the bound the checker proves.
"""

import pytest
import torch

from elbocheck.derivations.canonical import Canonicalizer
from elbocheck.derivations.library import TERMS_BY_MODEL, cdvae, condvae, csvae, diva, elbo
from elbocheck.models.registry import MODELS

from model_testing import head_batch, tiny_model

SIGN = {"reconstruction": 1, "log_prior_y": 1}


def _sign(name: str) -> int:
    return SIGN.get(name, -1 if name.startswith("kl_") else 0)


def _configurations():
    for name in MODELS:
        yield name, {}
    yield "infovae", {"divergence": "kl"}


@pytest.mark.parametrize("name, options", list(_configurations()))
def test_model_reports_its_derivations_terms(name, options):
    model, dataset = tiny_model(name, **options)
    derivation_terms = TERMS_BY_MODEL[type(model).derivation]
    reported = set(model.term_names)
    expected = set(derivation_terms)
    if name == "infovae" and options.get("divergence", "mmd") == "mmd":
        expected = (expected - {"aggregate_kl"}) | {"mmd"}  # the MMD variant replaces KL(q(z)||p(z)) by MMD
    assert expected <= reported, f"{name}: missing {sorted(expected - reported)}"
    kl_names = {n for n in reported if n.startswith("kl_")}
    assert kl_names <= set(derivation_terms), f"{name}: KL terms {sorted(kl_names - set(derivation_terms))} not in its derivation"
    torch.manual_seed(0)
    terms = model(head_batch(dataset))
    assembled = sum(_sign(n) * terms[n] for n in derivation_terms if _sign(n))
    torch.testing.assert_close(terms["elbo"], assembled, rtol=1e-5, atol=1e-5)


BOUNDS = {  # model -> (the derivation's model, the right-hand side of its proven bound)
    "vae": (elbo.MODEL, elbo.TERMS["reconstruction"] - elbo.TERMS["kl_z"]),
    "condvae": (condvae.MODEL, condvae.ELBO),
    "condvae_info": (condvae.INFO_MODEL, condvae.INFO_ELBO),
    "csvae": (csvae.MODEL, csvae.STANDARD),
    "diva": (diva.FULL_MODEL, diva.FULL_ELBO),
    "cdvae": (cdvae.MODEL, cdvae.LINES[8]),
}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_the_terms_compose_the_proven_bound(name):
    model, bound = BOUNDS[name]
    terms = TERMS_BY_MODEL[name]
    assembled = sum(_sign(n) * expression for n, expression in terms.items() if _sign(n))
    canon = Canonicalizer(model)
    assert (canon.canonical(assembled) - canon.canonical(bound)).is_zero()
