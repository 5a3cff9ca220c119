"""InfoVAE (seed 003): as written, and the corrected chain.

The seed's steps write ``p_theta(x)`` where the data distribution ``p_D(x)`` belongs (``q(x|z) = q(z|x) p_D(x) /
q(z)`` under the inference joint), then ``p(z)^{alpha-1}`` where ``p(z)^{1-alpha}`` belongs, and its last line
(garbled) takes expectations under ``p_theta(x)``. The corrected chain ends in
``E_{p_D} E_q[log p(x|z)] - (1-alpha) E_{p_D} KL(q(z|x)||p(z)) - (alpha+lambda-1) KL(q(z)||p(z))``, equal to the
InfoVAE objective up to the data entropy, a constant.

Reference: Zhao, Song & Ermon, "InfoVAE: Balancing Learning and Inference in Variational Autoencoders", AAAI 2019,
eq. (6)-(7).
"""

import sympy
from sympy import Mul, Pow

from ..checker import Derivation, Step
from ..expressions import E, density, kl, log, mi
from ..model import Model

SOURCE = "seed 003 (notes: InfoVAE derivation)"
REFERENCES = ("Zhao, Song & Ermon 2019, InfoVAE, AAAI",)

lam = sympy.Symbol("lambda", real=True)
alpha = sympy.Symbol("alpha", real=True)

MODEL = Model(
    "infovae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
    coefficients={"lambda": (0, None), "alpha": (None, None)},
    description="p(z) p_theta(x|z), q_phi(z|x); lambda > 0, alpha real",
)

qz, pz, q_zCx, p_xCz, q_xCz = (density(s) for s in ("q(z)", "p(z)", "q(z|x)", "p(x|z)", "q(x|z)"))
JOINT = "q(x,z)"


def _ratio(numerator, denominator):
    return Mul(*numerator, *[Pow(d, -1, evaluate=False) for d in denominator], evaluate=False)


def _pow(d, e):
    return Pow(d, e, evaluate=False)


J_ELBO = -kl("q(z)", "p(z)") - E("q(z)", kl("q(x|z)", "p(x|z)"))
J_INFO = -lam * kl("q(z)", "p(z)") - E("q(z)", kl("q(x|z)", "p(x|z)")) + alpha * mi("x", "z")
LINE_1 = E(JOINT, -lam * log(_ratio([qz], [pz])) - log(_ratio([q_xCz], [p_xCz])) - alpha * log(_ratio([qz], [q_zCx])))


def _line_2(data_density):
    return E(JOINT, log(p_xCz) - log(_ratio([_pow(qz, lam + alpha - 1), data_density],
                                            [_pow(pz, lam), _pow(q_zCx, alpha - 1)])))


def _line_3(data_density, prior_exponent):
    return E(JOINT, log(p_xCz) - log(_ratio([_pow(qz, lam + alpha - 1), _pow(q_zCx, 1 - alpha), data_density],
                                            [_pow(pz, lam + alpha - 1), _pow(pz, prior_exponent)])))


def _final(data_measure):
    return (E(data_measure, E("q(z|x)", log("p(x|z)"))) - (1 - alpha) * E(data_measure, kl("q(z|x)", "p(z)"))
            - (alpha + lam - 1) * kl("q(z)", "p(z)"))


OBJECTIVE = _final("p_D(x)")

TERMS = {
    "reconstruction": E("q(z|x)", log("p(x|z)")),
    "kl_z": kl("q(z|x)", "p(z)"),
    "aggregate_kl": kl("q(z)", "p(z)"),
}


def build() -> list[Derivation]:
    p_theta_x, p_data_x = density("p_theta(x)"), density("p_D(x)")
    as_written = Derivation.chain(
        "infovae_seed", "InfoVAE derivation as written in seed 003", SOURCE, MODEL, J_INFO,
        [
            ("=", LINE_1, {"label": "expand into one expectation"}),
            ("=", _line_2(p_theta_x), {"label": "collect the logs (seed: p_theta(x))", "expected": "refuted",
                                       "note": "writes p_theta(x) where p_D(x) belongs"}),
            ("=", _line_3(p_theta_x, alpha - 1), {"label": "regroup (seed: p(z)^(alpha-1))", "expected": "refuted",
                                                  "note": "p(z)^(alpha-1) where p(z)^(1-alpha) belongs"}),
            ("=", _final("p_theta(x)") - E("p(z)", log("p(z)")),
             {"label": "last line (garbled in the seed)", "expected": "refuted",
              "note": "expectations under p_theta(x) instead of p_D(x); the constant term is garbled"}),
        ],
        references=REFERENCES,
    )
    corrected = Derivation.chain(
        "infovae", "InfoVAE derivation, corrected", SOURCE, MODEL, J_INFO,
        [
            ("=", LINE_1, {"label": "expand into one expectation"}),
            ("=", _line_2(p_data_x), {"label": "collect the logs with p_D(x)"}),
            ("=", _line_3(p_data_x, 1 - alpha), {"label": "regroup with p(z)^(1-alpha)"}),
            ("=", OBJECTIVE - E("p_D(x)", log("p_D(x)")), {"label": "recognise the KL terms"}),
            ("=const", OBJECTIVE, {"label": "drop the data entropy (a constant)"}),
        ],
        references=REFERENCES,
    )
    elbo_form = Derivation(
        "infovae_elbo", "InfoVAE's form of the averaged ELBO", SOURCE, MODEL,
        [Step(J_ELBO, "=const", E("p_D(x)", E("q(z|x)", log("p(x|z)")) - kl("q(z|x)", "p(z)")),
              label="J_ELBO = E_pD[ELBO] + const")],
        references=REFERENCES,
    )
    return [as_written, corrected, elbo_form]
