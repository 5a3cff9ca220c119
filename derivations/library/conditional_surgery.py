"""Conditional-prior surgery: what the KL term to a label-conditional prior rewards, and what it cannot see.

For a latent w with prior ``p(w|y)`` and encoder ``q(w|x,y)`` (CSVAE; DIVA's z_y with ``q(z_y|x)``):
``E_{p_D(x,y)} KL(q(w|x,y) || p(w|y)) = I_q(w; x | y) + E_{p_D(y)} KL(q(w|y) || p(w|y))``.
The term is zero for ``q(w|x,y) = p(w|y)``: it penalizes information about x beyond y and the mismatch of the
class-conditional aggregate ``q(w|y)`` to the prior, but never *rewards* label information in w: the label
information ``I_q(w; y)`` it leads to is whatever the prior's class components carry (fixed and separated in CSVAE,
learned in DIVA). Nor does any term move label information out of z: the KL of z charges label information exactly
as any other, by ``I_q(z; x, y) = I_q(z; y) + I_q(z; x | y)``. That is the room the auxiliary classifier and the
adversary fill; ``elbocheck experiment kl-enough`` measures it.

References: Hoffman & Johnson 2016 (ELBO surgery); Klys et al. 2018 (CSVAE); Ilse et al. 2020 (DIVA).
"""

from ..checker import Derivation, Step
from ..expressions import E, kl, mi
from ..model import Model

SOURCE = "seed 000 (is the KL term to a label-conditional prior enough?)"
REFERENCES = ("Hoffman & Johnson 2016, ELBO surgery", "Klys et al. 2018, CSVAE", "Ilse et al. 2020, DIVA")

MODEL = Model(
    "conditional_prior", observed=["x", "y"], latent=["z", "w"],
    generative=["p(y)", "p(z)", "p_gamma(w|y)", "p_theta(x|w,z)"], inference=["q_phi(z|x,y)", "q_phi(w|x,y)"],
    description="the CSVAE model: p(y) p(z) p(w|y) p(x|w,z); q(z|x,y) q(w|x,y)",
)

W_KL = E("p_D(x,y)", kl("q(w|x,y)", "p(w|y)"))
Z_KL = E("p_D(x,y)", kl("q(z|x,y)", "p(z)"))


def build() -> list[Derivation]:
    return [
        Derivation(
            "conditional_prior_surgery", "What the KL term to a label-conditional prior rewards", SOURCE, MODEL,
            [
                Step(W_KL, "=", mi("w", "x", given="y") + E("p_D(y)", kl("q(w|y)", "p(w|y)")),
                     label="E KL(q(w|x,y)||p(w|y)) = I(w;x|y) + E_y KL(q(w|y)||p(w|y))"),
                Step(mi("z", "x y"), "=", mi("z", "y") + mi("z", "x", given="y"), label="I(z;x,y) = I(z;y) + I(z;x|y)"),
                Step(Z_KL, ">=", mi("z", "y"), label="the KL of z charges for label information in z"),
                Step(W_KL, ">=", mi("w", "y"), expected="refuted",
                     label="claim: the KL of w charges for label information in w",
                     note="false: q(w|x,y) = p(w|y) makes the KL zero while w carries I_p(w;y)"),
                Step(W_KL, ">=", mi("w", "x", given="y"), label="the KL of w charges for information beyond y"),
            ],
            references=REFERENCES,
        )
    ]
