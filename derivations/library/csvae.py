"""CSVAE (Klys et al. 2018) as typed in seed 000, and its standard form.

Seed 000 types the ELBO with the log *outside* the expectation, ``log E_q[p(x|w,z)]``. By Jensen that term is at
least ``E_q[log p(x|w,z)]``, so the typed right-hand side is larger than the standard ELBO; it is not a bound:
``log E_q f - KL(q || pi)`` can exceed ``log E_pi f`` (take one latent, pi uniform on two points, f = (1, 0): at
q = (0.7, 0.3) the left side is -0.44 > log 0.5). The checker finds such an instance of the full model.

Reference: Klys, Snell & Zemel, "Learning Latent Subspaces in Variational Autoencoders", NeurIPS 2018.
"""

from ..checker import Derivation, Step
from ..expressions import E, kl, log
from ..model import Model

SOURCE = "seed 000 (question: is the KL term to a label-conditional prior enough?)"
REFERENCES = ("Klys, Snell & Zemel 2018, Learning Latent Subspaces in VAEs, NeurIPS",)

MODEL = Model(
    "csvae", observed=["x", "y"], latent=["z", "w"],
    generative=["p(y)", "p(z)", "p_gamma(w|y)", "p_theta(x|w,z)"],
    inference=["q_phi(z|x,y)", "q_phi(w|x,y)"], auxiliary=["q_delta(y|z)"],
    description="p(y) p(z) p_gamma(w|y) p_theta(x|w,z); q_phi(z|x,y) q_phi(w|x,y); adversary q_delta(y|z)",
)

MEASURE = ["q(z|x,y)", "q(w|x,y)"]
PRIOR_TERMS = -kl("q(z|x,y)", "p(z)") + log("p(y)") - kl("q(w|x,y)", "p(w|y)")
TYPED = log(E(MEASURE, "p(x|w,z)")) + PRIOR_TERMS
STANDARD = E(MEASURE, log("p(x|w,z)")) + PRIOR_TERMS

TERMS = {
    "reconstruction": E(MEASURE, log("p(x|w,z)")),
    "kl_z": kl("q(z|x,y)", "p(z)"),
    "kl_w": kl("q(w|x,y)", "p(w|y)"),
    "log_prior_y": log("p(y)"),
}


def build() -> list[Derivation]:
    return [
        Derivation(
            "csvae", "CSVAE ELBO: as typed (log outside the expectation) and standard", SOURCE, MODEL,
            [
                Step(log("p(x,y)"), ">=", TYPED, expected="refuted", label="as typed: log E_q[p(x|w,z)]",
                     note="the log is outside the expectation; the result can exceed log p(x,y)"),
                Step(TYPED, ">=", STANDARD, label="typed >= standard (Jensen)",
                     note="why the typed form is not a bound: it is above the standard ELBO"),
                Step(log("p(x,y)"), ">=", STANDARD, label="standard: E_q[log p(x|w,z)]"),
            ],
            references=REFERENCES,
        )
    ]
