"""The library of encoded derivations, one module per derivation, each with its source and references.

``all_derivations()`` lists them in a stable order; ``TERMS_BY_MODEL`` gives, for each model of
:mod:`elbocheck.models`, the terms of its objective by the names the model reports.
"""

from __future__ import annotations

from . import beta_tcvae, beta_vae, cdvae, condvae, conditional_surgery, csvae, diva, elbo, infovae, surgery

MODULES = (elbo, beta_vae, condvae, csvae, diva, cdvae, infovae, surgery, beta_tcvae, conditional_surgery)

#: model name (as in elbocheck.models) -> {term name: expression}
TERMS_BY_MODEL = {
    "vae": elbo.TERMS,
    "beta_vae": beta_vae.TERMS,
    "beta_tcvae": beta_tcvae.TERMS,
    "infovae": infovae.TERMS,
    "condvae": condvae.TERMS,
    "condvae_info": condvae.INFO_TERMS,
    "csvae": csvae.TERMS,
    "diva": diva.TERMS,
    "cdvae": cdvae.TERMS,
}


def all_derivations():
    out = []
    for module in MODULES:
        out.extend(module.build())
    return out


def derivation_names() -> list[str]:
    return [d.name for d in all_derivations()]
