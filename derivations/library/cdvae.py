"""CDVAE loss (seed 004), each of its eight numbered lines.

Class-conditional prior on z_l, standard prior on z_u, a decoder that does not see the class. The inference model is
declared as written in line (1), a joint ``q(z_l, z_u | x)``; the step (3) -> (4) replaces
``E_{q(z_l,z_u|x)}[log q(z_l,z_u|x)/p(z_l,z_u|c)]`` by the same integral against ``q(z_l|x) q(z_u|x)``, which holds
only if ``q(z_l,z_u|x) = q(z_l|x) q(z_u|x)``: the checker proves it under that assumption and refutes it without.
The final loss (8) is a bound on ``log p(x|c)`` under the same assumption.

Reference: the seed's own derivation (A. Almudévar); the class-conditional prior follows the CDVAE literature.
"""

from ..checker import Derivation, Factorization, Step
from ..expressions import E, kl, log, ratio
from ..model import Model

SOURCE = "seed 004 (derivation of the loss in the CDVAE)"
REFERENCES = ("seed 004: Derivation of the Loss in the CDVAE (A. Almudevar)",)

MODEL = Model(
    "cdvae", observed=["x", "c"], latent=["z_l", "z_u"],
    generative=["p_theta(z_l|c)", "p(z_u)", "p_theta(x|z_l,z_u)"], inference=["q_phi(z_l,z_u|x)"],
    description="p(z_l|c) p(z_u) p(x|z_l,z_u) with the class c an input; q(z_l,z_u|x) joint",
)
MEAN_FIELD = Factorization("q(z_l,z_u|x)", ("q(z_l|x)", "q(z_u|x)"))

Q = "q(z_l,z_u|x)"
RECONSTRUCTION_C = E(Q, log("p(x|z_l,z_u,c)"))
POSTERIOR_KL = kl(Q, "p(z_l,z_u|c,x)")

LINES = {
    1: E(Q, log("p(x|c)")),
    2: E(Q, log(ratio(["p(x|z_l,z_u,c)", "p(z_l,z_u|c)"], ["p(z_l,z_u|c,x)"]))),
    3: E(Q, log(ratio(["p(x|z_l,z_u,c)", "p(z_l,z_u|c)", Q], ["p(z_l,z_u|c,x)", Q]))),
    4: (RECONSTRUCTION_C + E(Q, log(ratio([Q], ["p(z_l,z_u|c,x)"])))
        - E(["q(z_l|x)", "q(z_u|x)"], log(ratio(["q(z_l|x)", "q(z_u|x)"], ["p(z_l|c)", "p(z_u)"])))),
    5: (RECONSTRUCTION_C + POSTERIOR_KL
        - E("q(z_u|x)", E("q(z_l|x)", log(ratio(["q(z_l|x)"], ["p(z_l|c)"]))))
        - E("q(z_l|x)", E("q(z_u|x)", log(ratio(["q(z_u|x)"], ["p(z_u)"]))))),
    6: RECONSTRUCTION_C + POSTERIOR_KL - kl("q(z_l|x)", "p(z_l|c)") - kl("q(z_u|x)", "p(z_u)"),
    7: RECONSTRUCTION_C - kl("q(z_l|x)", "p(z_l|c)") - kl("q(z_u|x)", "p(z_u)"),
    8: E(Q, log("p(x|z_l,z_u)")) - kl("q(z_l|x)", "p(z_l|c)") - kl("q(z_u|x)", "p(z_u)"),
}

TERMS = {
    "reconstruction": E(Q, log("p(x|z_l,z_u)")),
    "kl_zl": kl("q(z_l|x)", "p(z_l|c)"),
    "kl_zu": kl("q(z_u|x)", "p(z_u)"),
}


def build() -> list[Derivation]:
    steps = [
        Step(log("p(x|c)"), "=", LINES[1], label="log p(x|c) -> (1)", line=1),
        Step(LINES[1], "=", LINES[2], label="(1) -> (2)", line=2),
        Step(LINES[2], "=", LINES[3], label="(2) -> (3)", line=3),
        Step(LINES[3], "=", LINES[4], assumptions=(MEAN_FIELD,), label="(3) -> (4)", line=4,
             note="needs q(z_l,z_u|x) = q(z_l|x) q(z_u|x), which the derivation does not state"),
        Step(LINES[4], "=", LINES[5], label="(4) -> (5)", line=5),
        Step(LINES[5], "=", LINES[6], label="(5) -> (6)", line=6),
        Step(LINES[6], ">=", LINES[7], label="(6) -> (7)", line=7),
        Step(LINES[7], "=", LINES[8], label="(7) -> (8): the decoder does not see c", line=8),
        Step(log("p(x|c)"), ">=", LINES[8], assumptions=(MEAN_FIELD,), label="summary: log p(x|c) >= (8)",
             note="the loss (8) is a bound only for a mean-field encoder"),
    ]
    return [Derivation("cdvae", "CDVAE loss, seed 004 step by step", SOURCE, MODEL, steps, references=REFERENCES)]
