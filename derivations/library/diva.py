"""DIVA (Ilse et al. 2020) as in seed 000, and the full model with domains.

Seed 000 writes ``log p(x, y) >= E_{q(z_x|x) q(z_y|x)}[log p(x|z_x,z_y)] - KL(q(z_x|x)||p(z_x)) -
KL(q(z_y|x)||p(z_y|y))``. The right-hand side is an ELBO of ``log p(x|y)``, and ``log p(x,y) = log p(x|y) + log p(y)``
is smaller by ``-log p(y) > 0``: the typed bound fails when q is close to the posterior. Adding ``log p(y)`` (or
writing ``log p(x|y)`` on the left) gives a valid bound. The full DIVA model adds a domain d and a latent z_d.

Reference: Ilse, Tomczak, Louizos & Welling, "DIVA: Domain Invariant Variational Autoencoders", MIDL 2020.
"""

from ..checker import Derivation, Step
from ..expressions import E, kl, log
from ..model import Model

SOURCE = "seed 000 (question: is the KL term to a label-conditional prior enough?)"
REFERENCES = ("Ilse et al. 2020, DIVA: Domain Invariant Variational Autoencoders, MIDL",)

MODEL = Model(
    "diva_seed", observed=["x", "y"], latent=["z_x", "z_y"],
    generative=["p(y)", "p(z_x)", "p_theta(z_y|y)", "p_theta(x|z_x,z_y)"],
    inference=["q_phi(z_x|x)", "q_phi(z_y|x)"], auxiliary=["q_omega(y|z_y)"],
    description="seed 000's DIVA without the domain: p(y) p(z_x) p(z_y|y) p(x|z_x,z_y); q(z_x|x) q(z_y|x)",
)
FULL_MODEL = Model(
    "diva", observed=["x", "y", "d"], latent=["z_d", "z_x", "z_y"],
    generative=["p(d)", "p(y)", "p_theta(z_d|d)", "p(z_x)", "p_theta(z_y|y)", "p_theta(x|z_d,z_x,z_y)"],
    inference=["q_phi(z_d|x)", "q_phi(z_x|x)", "q_phi(z_y|x)"], auxiliary=["q_omega(y|z_y)", "q_omega(d|z_d)"],
    description="p(d) p(y) p(z_d|d) p(z_x) p(z_y|y) p(x|z_d,z_x,z_y); q(z_d|x) q(z_x|x) q(z_y|x)",
)

SEED_ELBO = (E(["q(z_x|x)", "q(z_y|x)"], log("p(x|z_x,z_y)")) - kl("q(z_x|x)", "p(z_x)")
             - kl("q(z_y|x)", "p(z_y|y)"))
FULL_MEASURE = ["q(z_d|x)", "q(z_x|x)", "q(z_y|x)"]
FULL_ELBO = (E(FULL_MEASURE, log("p(x|z_d,z_x,z_y)")) - kl("q(z_d|x)", "p(z_d|d)") - kl("q(z_x|x)", "p(z_x)")
             - kl("q(z_y|x)", "p(z_y|y)"))

TERMS = {
    "reconstruction": E(FULL_MEASURE, log("p(x|z_d,z_x,z_y)")),
    "kl_zd": kl("q(z_d|x)", "p(z_d|d)"),
    "kl_zx": kl("q(z_x|x)", "p(z_x)"),
    "kl_zy": kl("q(z_y|x)", "p(z_y|y)"),
}


def build() -> list[Derivation]:
    seed = Derivation(
        "diva_seed", "DIVA ELBO as written in seed 000", SOURCE, MODEL,
        [
            Step(log("p(x,y)"), ">=", SEED_ELBO, expected="refuted", label="as written: log p(x,y) >= ELBO",
                 note="the right-hand side bounds log p(x|y); log p(y) is missing"),
            Step(log("p(x,y)"), ">=", SEED_ELBO + log("p(y)"), label="corrected: + log p(y)"),
            Step(log("p(x|y)"), ">=", SEED_ELBO, label="corrected: log p(x|y) on the left"),
        ],
        references=REFERENCES,
    )
    full = Derivation(
        "diva", "DIVA ELBO with domains (Ilse et al. 2020)", "Ilse et al. 2020, eq. (2)", FULL_MODEL,
        [Step(log("p(x|y,d)"), ">=", FULL_ELBO, label="log p(x|y,d) >= ELBO")],
        references=REFERENCES,
    )
    return [seed, full]
