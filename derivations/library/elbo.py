"""The ELBO identity and the Jensen route (seed 003).

``log p(x) = E_q[log p(x,z)/q(z|x)] + KL(q(z|x) || p(z|x))``, so the ELBO is a lower bound; and
``log p(x) = log E_q[p(x,z)/q(z|x)] >= E_q[log p(x,z)/q(z|x)]`` by Jensen.

References: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014; Kingma & Welling, "An Introduction to
Variational Autoencoders", 2019, section 2.2.
"""

from ..checker import Derivation, Step
from ..expressions import E, kl, log, ratio
from ..model import Model

SOURCE = "seed 003 (notes on the ELBO derivation)"
REFERENCES = ("Kingma & Welling 2014, Auto-Encoding Variational Bayes", "Kingma & Welling 2019, An Introduction to VAEs, sec. 2.2")

MODEL = Model(
    "vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
    description="p(z) p_theta(x|z), q_phi(z|x)",
)

ELBO = E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))

#: The objective's terms, by the names the models report (see elbocheck.models).
TERMS = {
    "reconstruction": E("q(z|x)", log("p(x|z)")),
    "kl_z": kl("q(z|x)", "p(z)"),
}


def build() -> list[Derivation]:
    identity = Derivation.chain(
        "elbo", "The ELBO identity (seed 003, as written)", SOURCE, MODEL,
        log("p(x)"),
        [
            ("=", E("q(z|x)", log("p(x)")), {"label": "expectation of a constant"}),
            ("=", E("q(z|x)", log(ratio(["p(x,z)"], ["p(z|x)"]))), {"label": "Bayes' rule"}),
            ("=", E("q(z|x)", log(ratio(["p(x,z)", "q(z|x)"], ["q(z|x)", "p(z|x)"]))), {"label": "multiply by q/q"}),
            ("=", ELBO + kl("q(z|x)", "p(z|x)"), {"label": "split the log: ELBO + KL"}),
            (">=", ELBO, {"label": "KL >= 0"}),
            ("=", E("q(z|x)", log("p(x|z)")) - kl("q(z|x)", "p(z)"), {"label": "reconstruction - KL to the prior (seed 002)"}),
        ],
        references=REFERENCES,
    )
    jensen = Derivation.chain(
        "elbo_jensen", "The ELBO by Jensen's inequality", SOURCE, MODEL,
        log("p(x)"),
        [
            ("=", log(E("q(z|x)", ratio(["p(x,z)"], ["q(z|x)"]))), {"label": "importance sampling"}),
            (">=", ELBO, {"label": "Jensen: log E >= E log"}),
        ],
        references=REFERENCES,
    )
    return [identity, jensen]
