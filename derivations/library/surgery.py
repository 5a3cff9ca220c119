"""ELBO surgery: the average KL term is the mutual information plus the marginal KL.

``E_{p_D(x)} KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || p(z))``, where ``q(z)`` is the aggregate posterior, and
hence ``E_{p_D}[ELBO] = E log p(x|z) - I_q(x; z) - KL(q(z) || p(z))``.

Reference: Hoffman & Johnson, "ELBO surgery: yet another way to carve up the variational evidence lower bound",
NeurIPS workshop on approximate Bayesian inference, 2016.
"""

from ..checker import Derivation, Step
from ..expressions import E, kl, log, mi
from ..model import Model

SOURCE = "seed 002 (KL decomposition the notes left as TBA)"
REFERENCES = ("Hoffman & Johnson 2016, ELBO surgery",)

MODEL = Model("elbo_surgery", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
              inference=["q_phi(z|x)"])

AVERAGE_KL = E("p_D(x)", kl("q(z|x)", "p(z)"))


def build() -> list[Derivation]:
    return [
        Derivation(
            "elbo_surgery", "ELBO surgery", SOURCE, MODEL,
            [
                Step(AVERAGE_KL, "=", mi("x", "z") + kl("q(z)", "p(z)"), label="average KL = I(x;z) + KL(q(z)||p(z))"),
                Step(E("p_D(x)", E("q(z|x)", log("p(x|z)")) - kl("q(z|x)", "p(z)")), "=",
                     E("p_D(x)", E("q(z|x)", log("p(x|z)"))) - mi("x", "z") - kl("q(z)", "p(z)"),
                     label="averaged ELBO = reconstruction - I(x;z) - KL(q(z)||p(z))"),
                Step(AVERAGE_KL, ">=", mi("x", "z"), label="the average KL bounds the mutual information"),
            ],
            references=REFERENCES,
        )
    ]
