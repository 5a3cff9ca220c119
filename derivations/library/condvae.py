"""Conditional VAE (seed 001, eq. 1) and CondVAE with information factorization.

Seed 001 writes ``log p_theta(x|z) >= E_{q(z|x,y)}[log p(x|z,y)] - KL(q(z|x,y) || p(z))``: the left-hand side must be
``log p(x|y)`` (the bound is on the conditional likelihood of x given the label). With ``q(z|x)`` in place of
``q(z|x,y)`` (CondVAE-info, Creswell et al.) the bound still holds: any q is a variational distribution.

References: Sohn, Lee & Yan, "Learning Structured Output Representation using Deep Conditional Generative Models",
NeurIPS 2015; Creswell et al., "Conditional Autoencoders with Adversarial Information Factorization", 2017.
"""

from ..checker import Derivation, Step
from ..expressions import E, kl, log
from ..model import Model

SOURCE = "seed 001 (project proposal: CondVAE, CondVAE-info, CSVAE), eq. (1)"
REFERENCES = ("Sohn et al. 2015, CVAE, NeurIPS", "Creswell et al. 2017, adversarial information factorization")

MODEL = Model(
    "condvae", observed=["x", "y"], latent=["z"], generative=["p(y)", "p(z)", "p_theta(x|z,y)"],
    inference=["q_phi(z|x,y)"], description="p(y) p(z) p_theta(x|z,y), q_phi(z|x,y)",
)
INFO_MODEL = Model(
    "condvae_info", observed=["x", "y"], latent=["z"], generative=["p(y)", "p(z)", "p_theta(x|z,y)"],
    inference=["q_phi(z|x)"], auxiliary=["r_psi(y|z)"], description="q_phi(z|x) without y; adversary r_psi(y|z)",
)

ELBO = E("q(z|x,y)", log("p(x|z,y)")) - kl("q(z|x,y)", "p(z)")
INFO_ELBO = E("q(z|x)", log("p(x|z,y)")) - kl("q(z|x)", "p(z)")

TERMS = {"reconstruction": E("q(z|x,y)", log("p(x|z,y)")), "kl_z": kl("q(z|x,y)", "p(z)")}
INFO_TERMS = {"reconstruction": E("q(z|x)", log("p(x|z,y)")), "kl_z": kl("q(z|x)", "p(z)")}


def build() -> list[Derivation]:
    condvae = Derivation(
        "condvae", "CondVAE bound (seed 001 eq. 1)", SOURCE, MODEL,
        [
            Step(log("p(x|z)"), ">=", ELBO, expected="refuted", label="eq. (1) as written",
                 note="left-hand side log p(x|z) where log p(x|y) belongs"),
            Step(log("p(x|y)"), ">=", ELBO, label="eq. (1) corrected: log p(x|y)"),
        ],
        references=REFERENCES,
    )
    info = Derivation(
        "condvae_info", "CondVAE-info bound with q(z|x)", SOURCE, INFO_MODEL,
        [Step(log("p(x|y)"), ">=", INFO_ELBO, label="q(z|x) replaces q(z|x,y)")],
        references=REFERENCES,
    )
    return [condvae, info]
