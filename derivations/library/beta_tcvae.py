"""beta-TCVAE: the average KL term is mutual information + total correlation + dimension-wise KL.

For a factorized prior ``p(z) = prod_j p(z_j)``:
``E_{p_D(x)} KL(q(z|x) || p(z)) = I_q(x; z) + TC(q(z)) + sum_j KL(q(z_j) || p(z_j))``.
Checked for J = 2, 3 and 5 latent dimensions.

Reference: Chen, Li, Grosse & Duvenaud, "Isolating Sources of Disentanglement in VAEs", NeurIPS 2018, eq. (2).
"""

import sympy

from ..checker import Derivation, Step
from ..expressions import E, kl, log, mi, tc
from ..model import Model

SOURCE = "seed 002 (\"VAE objectives with total correlation: TBA\")"
REFERENCES = ("Chen et al. 2018, Isolating Sources of Disentanglement in VAEs, NeurIPS",)
DIMENSIONS = (2, 3, 5)

alpha, beta, gamma = (sympy.Symbol(n, real=True) for n in ("alpha", "beta", "gamma"))


def model(dimension: int) -> Model:
    return Model(f"beta_tcvae_{dimension}", observed=["x"], latent=["z"], vectors={"z": dimension},
                 generative=["prod_j p(z_j)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                 coefficients={"alpha": (0, None), "beta": (1, None), "gamma": (1, None)})


def dimensionwise_kl(dimension: int):
    return sum(kl(f"q(z_{j})", f"p(z_{j})") for j in range(1, dimension + 1))


TERMS = {
    "reconstruction": E("q(z|x)", log("p(x|z)")),
    "kl_z": kl("q(z|x)", "p(z)"),
    "mutual_information": mi("x", "z"),
    "total_correlation": tc("q(z)"),
    "dimensionwise_kl": dimensionwise_kl(2),
}


def build() -> list[Derivation]:
    out = []
    for dimension in DIMENSIONS:
        average_kl = E("p_D(x)", kl("q(z|x)", "p(z)"))
        decomposition = mi("x", "z") + tc("q(z)") + dimensionwise_kl(dimension)
        reconstruction = E("p_D(x)", E("q(z|x)", log("p(x|z)")))
        steps = [
            Step(average_kl, "=", decomposition, label=f"KL = MI + TC + dim-wise KL (J = {dimension})"),
            Step(reconstruction - average_kl, ">=",
                 reconstruction - alpha * mi("x", "z") - beta * tc("q(z)") - gamma * dimensionwise_kl(dimension),
                 label="the beta-TCVAE objective is below the averaged ELBO for alpha = 1, beta, gamma >= 1"
                 if dimension == 2 else f"weighted objective below the averaged ELBO (J = {dimension})",
                 expected="refuted" if dimension == 2 else "proven",
                 note="alpha ranges over [0, inf): alpha < 1 breaks the bound" if dimension == 2 else ""),
        ]
        out.append(Derivation(f"beta_tcvae_{dimension}", f"beta-TCVAE decomposition, J = {dimension}", SOURCE,
                              model(dimension) if dimension == 2 else _alpha_at_least_one(dimension), steps,
                              references=REFERENCES))
    return out


def _alpha_at_least_one(dimension: int) -> Model:
    return Model(f"beta_tcvae_{dimension}", observed=["x"], latent=["z"], vectors={"z": dimension},
                 generative=["prod_j p(z_j)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                 coefficients={"alpha": (1, None), "beta": (1, None), "gamma": (1, None)})
