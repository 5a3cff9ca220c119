"""beta-VAE (seed 002): ``E_q[log p(x|z)] - beta KL(q(z|x) || p(z))`` is a lower bound on ``log p(x)`` for beta >= 1,
and not for beta < 1.

``log p(x) - (E_q log p(x|z) - beta KL) = KL(q(z|x) || p(z|x)) + (beta - 1) KL(q(z|x) || p(z))``.

Reference: Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework",
ICLR 2017.
"""

import sympy

from ..checker import Derivation, Step
from ..expressions import E, kl, log
from ..model import Model

SOURCE = "seed 002 (VAE objectives for disentangled representations)"
REFERENCES = ("Higgins et al. 2017, beta-VAE, ICLR",)

beta = sympy.Symbol("beta", real=True)

MODEL = Model(
    "beta_vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
    coefficients={"beta": (1, None)}, description="beta >= 1",
)
SMALL_BETA_MODEL = Model(
    "beta_vae_small_beta", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
    inference=["q_phi(z|x)"], coefficients={"beta": (0, 1)}, description="0 <= beta <= 1",
)

OBJECTIVE = E("q(z|x)", log("p(x|z)")) - beta * kl("q(z|x)", "p(z)")

TERMS = {
    "reconstruction": E("q(z|x)", log("p(x|z)")),
    "kl_z": kl("q(z|x)", "p(z)"),
}


def build() -> list[Derivation]:
    bound = Derivation(
        "beta_vae", "beta-VAE objective as a bound (beta >= 1)", SOURCE, MODEL,
        [Step(log("p(x)"), ">=", OBJECTIVE, label="bound for beta >= 1")], references=REFERENCES,
    )
    not_bound = Derivation(
        "beta_vae_small_beta", "beta-VAE objective with beta < 1 is not a bound", SOURCE, SMALL_BETA_MODEL,
        [Step(log("p(x)"), ">=", OBJECTIVE, expected="refuted", label="bound for 0 <= beta <= 1",
              note="with beta < 1 the objective can exceed log p(x)")],
        references=REFERENCES,
    )
    return [bound, not_bound]
