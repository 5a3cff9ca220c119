"""An adversarial corpus of derivation steps, each with its truth decided by mathematics (issue 9).

Every entry is a :class:`~elbocheck.derivations.corpus.CorpusStep`: a step written with the Python API over a small
declared model, whether it is true in the sense of ``docs/semantics.md`` (for every model of the declared structure,
discrete tables and continuous densities alike, every coefficient in its range, every value of the free variables;
``= const``: the difference does not change when the parametric factors change) and a one-line reason: for a true
step the identity or inequality that proves it, for a false one the idea of a counterexample.

The truths were written before any checker ran on these steps (see the git history of this file) and are never to
be edited to match a checker: a checker that proves a false entry or refutes a true one is wrong.

The steps aim at the places where a checker is easily fooled: parameter subscripts and versions (``q_phi`` vs
``q_psi``, ``p_theta`` vs ``p_theta_old``), assumptions whose new factors inherit parameters, "up to a constant"
claims whose dropped term depends on the parameters through the measure, marginal priors of hierarchical models,
swapped KL arguments, reversed inequalities, coefficients outside the range a bound needs, entropies of densities
(which can be negative), mutual information under the wrong joint, convexity of KL, data processing, measures
written in another order, Renyi bounds with fractional and symbolic exponents, and the IWAE bound with K = 2.

The LaTeX part lives in ``adversarial/`` (five files, each with its TOML sidecar). Besides ``truth``, a sidecar entry
may give ``error = "why"`` instead (a step the semantics give no meaning: two data points ``x^{(i)}``, ``x^{(j)}``; a
subscript the header does not declare), which the checker must report as an error, never prove or refute, and
``truth_without_assumptions`` for a step under a header assumption (the checker checks it again without);
:data:`TRUTH_WITHOUT_ASSUMPTIONS` does the same for the API entries. ``tests/derivations/test_adversarial_corpus.py``
runs everything through the checker.

References for the identities: Kingma & Welling 2014 (ELBO); Sonderby et al. 2016 and Burda et al. 2016 (hierarchical
and importance-weighted bounds); Kingma et al. 2014, "Semi-supervised learning with deep generative models" (M2);
Dempster, Laird & Rubin 1977 and Neal & Hinton 1998 (EM); Hoffman & Johnson 2016 (ELBO surgery); Chen et al. 2018
(beta-TCVAE); Higgins et al. 2017 (beta-VAE); Li & Turner 2016 (Renyi bounds); Barber & Agakov 2003; Cover & Thomas,
"Elements of Information Theory" (data processing, convexity of KL, differential entropy).
"""

from __future__ import annotations

import sympy
from sympy import Pow, Rational

from ..checker import Factorization
from ..expressions import E, entropy, kl, log, mi, ratio, tc
from ..model import Model
from . import CorpusStep

# ------------------------------------------------------------------------------------------------------- models

VAE = Model("adv_vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
            description="p(z) p_theta(x|z), q_phi(z|x)")
VAE_AUX = Model("adv_vae_aux", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
                inference=["q_phi(z|x)"], auxiliary=["q_psi(z|x)"],
                description="p(z) p_theta(x|z), q_phi(z|x), and an auxiliary density q_psi(z|x)")
VAE_FIXED_ENCODER = Model("adv_vae_fixed_encoder", observed=["x"], latent=["z"],
                          generative=["p(z)", "p_theta(x|z)"], inference=["q(z|x)"],
                          description="p(z) p_theta(x|z) with a non-parametric encoder q(z|x)")
EM = Model("adv_em", observed=["x"], latent=["z"], generative=["p_theta(z)", "p_theta(x|z)"],
           inference=["q_phi(z|x)"], description="p_theta(z) p_theta(x|z) (a mixture-like model for EM), q_phi(z|x)")


def _vae_with(name: str, coefficients: dict) -> Model:
    return Model(name, observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                 coefficients=coefficients)


VAE_BETA_AT_LEAST_1 = _vae_with("adv_vae_beta_ge_1", {"beta": (1, None)})
VAE_BETA_UNIT = _vae_with("adv_vae_beta_0_1", {"beta": (0, 1)})
VAE_BETA_REAL = _vae_with("adv_vae_beta_real", {"beta": (None, None)})
VAE_ALPHA_SMALL = _vae_with("adv_vae_alpha_0_half", {"alpha": (0, 0.5)})
VAE_ALPHA_LARGE = _vae_with("adv_vae_alpha_ge_2", {"alpha": (2, None)})

H2 = Model("adv_h2", observed=["x"], latent=["z_1", "z_2"],
           generative=["p(z_2)", "p_theta(z_1|z_2)", "p_theta(x|z_1)"], inference=["q_phi(z_1|x)", "q_phi(z_2|z_1)"],
           description="two stochastic layers: p(z_2) p_theta(z_1|z_2) p_theta(x|z_1); q_phi(z_1|x) q_phi(z_2|z_1)")
H3 = Model("adv_h3", observed=["x"], latent=["z_1", "z_2", "z_3"],
           generative=["p(z_3)", "p_theta(z_2|z_3)", "p_theta(z_1|z_2)", "p_theta(x|z_1)"],
           inference=["q_phi(z_1|x)", "q_phi(z_2|z_1)", "q_phi(z_3|z_2)"],
           description="three stochastic layers, Markov in both directions")

M2_UNLABELLED = Model("adv_m2_unlabelled", observed=["x"], latent=["y", "z"],
                      generative=["p(y)", "p(z)", "p_theta(x|y,z)"], inference=["q_phi(y|x)", "q_phi(z|x,y)"],
                      description="Kingma et al. 2014 M2 on unlabelled data: the label y is latent")
M2_LABELLED = Model("adv_m2_labelled", observed=["x", "y"], latent=["z"],
                    generative=["p(y)", "p(z)", "p_theta(x|y,z)"], inference=["q_phi(z|x,y)"],
                    description="M2 on labelled data: p(y) p(z) p_theta(x|y,z), q_phi(z|x,y), data p_D(x,y)")
LABEL_BLIND = Model("adv_label_blind", observed=["x", "y"], latent=["z"],
                    generative=["p(y)", "p(z)", "p_theta(x|y,z)"], inference=["q_phi(z|x)"],
                    auxiliary=["r(y|z)"],
                    description="labelled data p_D(x,y), an encoder q_phi(z|x) that does not see y, a classifier r(y|z)")

MEAN_FIELD_MODEL = Model("adv_mean_field", observed=["x"], latent=["z_l", "z_u"],
                         generative=["p(z_l)", "p(z_u)", "p_theta(x|z_l,z_u)"], inference=["q_phi(z_l,z_u|x)"],
                         description="p(z_l) p(z_u) p_theta(x|z_l,z_u) with a joint encoder q_phi(z_l,z_u|x)")
MEAN_FIELD = Factorization("q(z_l,z_u|x)", ("q(z_l|x)", "q(z_u|x)"))
MEAN_FIELD_SUBSCRIPTED = Factorization("q_phi(z_l,z_u|x)", ("q_phi(z_l|x)", "q_phi(z_u|x)"))

TC_FACTORIZED = Model("adv_tc_factorized", observed=["x"], latent=["z"], vectors={"z": 2},
                      generative=["prod_j p(z_j)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                      coefficients={"beta": (1, None)},
                      description="z = (z_1, z_2) with a factorized prior p(z_1) p(z_2); beta >= 1")
TC_FACTORIZED_SMALL_BETA = Model("adv_tc_factorized_small_beta", observed=["x"], latent=["z"], vectors={"z": 2},
                                 generative=["prod_j p(z_j)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                                 coefficients={"beta": (0, 1)},
                                 description="z = (z_1, z_2) with a factorized prior; 0 <= beta <= 1")
TC_JOINT_PRIOR = Model("adv_tc_joint_prior", observed=["x"], latent=["z"], vectors={"z": 2},
                       generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                       description="z = (z_1, z_2) with a joint (possibly correlated) prior p(z)")
ENCODER_MEAN_FIELD = Factorization("q(z|x)", ("q(z_1|x)", "q(z_2|x)"))

IWAE2 = Model("adv_iwae2", observed=["x"], latent=["z_1", "z_2"],
              generative=["p(z_1)", "p(z_2)", "p_theta(x|z_1,z_2)"], inference=["q_phi(z_1|x)", "q_phi(z_2|x)"],
              description="two latent copies z_1, z_2, each drawn from its own q_phi(.|x); the weights use the "
                          "declared joint's marginals p(x, z_k)")

# ------------------------------------------------------------------------------------------------ common terms

alpha = sympy.Symbol("alpha", real=True)
beta = sympy.Symbol("beta", real=True)
HALF = Rational(1, 2)


def _pow(base, exponent):
    return Pow(base, exponent, evaluate=False)


ELBO = E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))
RECONSTRUCTION = E("q(z|x)", log("p(x|z)"))
KL_PRIOR = kl("q(z|x)", "p(z)")
WEIGHT = ratio(["p(x,z)"], ["q(z|x)"])
AVERAGE_KL = E("p_D(x)", kl("q(z|x)", "p(z)"))
AVERAGE_RECONSTRUCTION = E("p_D(x)", E("q(z|x)", log("p(x|z)")))

H2_MEASURE = ["q(z_1|x)", "q(z_2|z_1)"]
H2_ELBO = E(H2_MEASURE, log(ratio(["p(x|z_1)", "p(z_1|z_2)", "p(z_2)"], ["q(z_1|x)", "q(z_2|z_1)"])))
H2_MARGINAL_ELBO = E("q(z_1|x)", log("p(x|z_1)")) - kl("q(z_1|x)", "p(z_1)")

Q_OLD = "p_theta_old(z|x)"  # the E-step posterior at the old parameters
Q_FUNCTION = E(Q_OLD, log("p_theta(x,z)"))  # Q(theta, theta_old)
Q_AT_OLD = E(Q_OLD, log("p_theta_old(x,z)"))  # Q(theta_old, theta_old)

MF_MEASURE = ["q(z_l|x)", "q(z_u|x)"]
MF_RECONSTRUCTION = E(MF_MEASURE, log("p(x|z_l,z_u)"))
MF_KL_L, MF_KL_U = kl("q(z_l|x)", "p(z_l)"), kl("q(z_u|x)", "p(z_u)")

TC_DIMENSIONWISE = kl("q(z_1)", "p(z_1)") + kl("q(z_2)", "p(z_2)")
TC_DECOMPOSITION = mi("x", "z") + tc("q(z)") + TC_DIMENSIONWISE

IW_WEIGHT_1 = ratio(["p(x,z_1)"], ["q(z_1|x)"])
IW_WEIGHT_2 = ratio(["p(x,z_2)"], ["q(z_2|x)"])
IWAE_2 = E(["q(z_1|x)", "q(z_2|x)"], log(HALF * IW_WEIGHT_1 + HALF * IW_WEIGHT_2))
IW_ELBO_1 = E("q(z_1|x)", log(IW_WEIGHT_1))
IW_ELBO_2 = E("q(z_2|x)", log(IW_WEIGHT_2))


def _step(name, model, lhs, relation, rhs, truth, why, topic, assumptions=()):
    return CorpusStep(name=name, model=model, lhs=lhs, relation=relation, rhs=rhs, truth=truth, why=why,
                      assumptions=tuple(assumptions), topic=topic)


# ------------------------------------------------------------------------------------------------------- steps

STEPS: list[CorpusStep] = [
    # ---- hierarchical VAE, two stochastic layers, marginal priors
    _step("h2_chain_rule_marginal", H2, log("p(x,z_1)"), "=", log("p(z_1)") + log("p(x|z_1)"), True,
          "p(x|z_1) is p(x,z_1)/p(z_1) by definition of a conditional of the joint (and equals the factor "
          "p_theta(x|z_1)); p(z_1) = int p(z_2) p(z_1|z_2) dz_2 is the marginal prior", "hierarchical"),
    _step("h2_bayes_marginal", H2, log("p(z_1|x)"), "=", log("p(x|z_1)") + log("p(z_1)") - log("p(x)"), True,
          "Bayes' rule in the generative joint with the marginals p(z_1) and p(x)", "hierarchical"),
    _step("h2_bayes_conditional_prior", H2, log("p(z_1|x)"), "=", log("p(x|z_1)") + log("p(z_1|z_2)") - log("p(x)"),
          False, "rhs - lhs = log p(z_1|z_2) - log p(z_1) depends on z_2 (free on the right only); nonzero whenever "
          "p_theta(z_1|z_2) varies with z_2", "hierarchical"),
    _step("h2_markov_x", H2, log("p(x|z_1,z_2)"), "=", log("p(x|z_1)"), True,
          "x is independent of z_2 given z_1 in the chain z_2 -> z_1 -> x", "hierarchical"),
    _step("h2_markov_top", H2, log("p(z_2|z_1,x)"), "=", log("p(z_2|z_1)"), True,
          "z_2 is independent of x given z_1 in the chain z_2 -> z_1 -> x", "hierarchical"),
    _step("h2_not_markov_middle", H2, log("p(z_1|x,z_2)"), "=", log("p(z_1|z_2)"), False,
          "p(z_1|x,z_2) is proportional to p(z_1|z_2) p(x|z_1): it depends on x whenever p_theta(x|z_1) varies "
          "with z_1", "hierarchical"),
    _step("h2_jensen_marginal_prior", H2, log("p(z_1)"), ">=", E("p(z_2)", log("p(z_1|z_2)")), True,
          "Jensen: log E_{p(z_2)}[p(z_1|z_2)] >= E_{p(z_2)}[log p(z_1|z_2)]", "hierarchical"),
    _step("h2_jensen_marginal_prior_equality", H2, log("p(z_1)"), "=", E("p(z_2)", log("p(z_1|z_2)")), False,
          "the Jensen gap is strictly positive when p_theta(z_1|z_2) varies with z_2 (e.g. two z_2 values with "
          "different conditionals)", "hierarchical"),
    _step("h2_marginal_as_expectation", H2, log("p(z_1)"), "=", log(E("p(z_2)", "p(z_1|z_2)")), True,
          "p(z_1) = E_{p(z_2)}[p(z_1|z_2)], the definition of the marginal", "hierarchical"),
    _step("h2_elbo", H2, log("p(x)"), ">=", H2_ELBO, True,
          "lhs - rhs = KL(q(z_1,z_2|x) || p(z_1,z_2|x)) >= 0, with q(z_1,z_2|x) = q(z_1|x) q(z_2|z_1)",
          "hierarchical"),
    _step("h2_elbo_split", H2, H2_ELBO, "=",
          E("q(z_1|x)", log("p(x|z_1)")) + entropy("q(z_1|x)") + E(H2_MEASURE, log("p(z_1|z_2)"))
          - E("q(z_1|x)", kl("q(z_2|z_1)", "p(z_2)")), True,
          "split the log of the product; -E_{q(z_1|x)} KL(q(z_2|z_1)||p(z_2)) = E_{q(z_1|x) q(z_2|z_1)}[log p(z_2) "
          "- log q(z_2|z_1)] and H(q(z_1|x)) = -E_{q(z_1|x)}[log q(z_1|x)]", "hierarchical"),
    _step("h2_elbo_marginal_prior", H2, log("p(x)"), ">=", H2_MARGINAL_ELBO, True,
          "a one-layer ELBO with the marginal prior p(z_1): lhs - rhs = KL(q(z_1|x) || p(z_1|x)) >= 0",
          "hierarchical"),
    _step("h2_marginal_elbo_tighter", H2, H2_MARGINAL_ELBO, ">=", H2_ELBO, True,
          "lhs - rhs = E_{q(z_1|x)} KL(q(z_2|z_1) || p(z_2|z_1)) >= 0", "hierarchical"),
    _step("h2_marginal_elbo_looser", H2, H2_MARGINAL_ELBO, "<=", H2_ELBO, False,
          "rhs - lhs = -E_{q(z_1|x)} KL(q(z_2|z_1) || p(z_2|z_1)) < 0 whenever q(z_2|z_1) is not the generative "
          "posterior", "hierarchical"),
    _step("h2_kl_chain_rule", H2, kl("q(z_1,z_2|x)", "p(z_1,z_2|x)"), "=",
          kl("q(z_1|x)", "p(z_1|x)") + E("q(z_1|x)", kl("q(z_2|z_1)", "p(z_2|z_1)")), True,
          "chain rule of KL; q(z_2|z_1,x) = q(z_2|z_1) and p(z_2|z_1,x) = p(z_2|z_1) by the Markov structure of "
          "both joints", "hierarchical"),
    _step("h2_kl_first_layer_only", H2, kl("q(z_1,z_2|x)", "p(z_1,z_2|x)"), "=", kl("q(z_1|x)", "p(z_1|x)"), False,
          "drops E_{q(z_1|x)} KL(q(z_2|z_1) || p(z_2|z_1)), positive when q(z_2|z_1) differs from p(z_2|z_1)",
          "hierarchical"),
    _step("h2_kl_convexity", H2, kl("q(z_2|x)", "p(z_2)"), "<=", E("q(z_1|x)", kl("q(z_2|z_1)", "p(z_2)")), True,
          "q(z_2|x) = E_{q(z_1|x)}[q(z_2|z_1)]; rhs - lhs = E_{q(z_1|x)} KL(q(z_2|z_1) || q(z_2|x)) >= 0 "
          "(convexity of KL)", "hierarchical"),
    _step("h2_kl_convexity_reversed", H2, kl("q(z_2|x)", "p(z_2)"), ">=", E("q(z_1|x)", kl("q(z_2|z_1)", "p(z_2)")),
          False, "lhs - rhs = -E_{q(z_1|x)} KL(q(z_2|z_1) || q(z_2|x)) < 0 when q(z_2|z_1) varies with z_1",
          "hierarchical"),
    _step("h2_data_processing", H2, mi("x", "z_2"), "<=", mi("x", "z_1"), True,
          "data processing for the Markov encoder x -> z_1 -> z_2 under q: I(x;z_1) - I(x;z_2) = I(x;z_1|z_2) >= 0",
          "hierarchical"),
    _step("h2_data_processing_reversed", H2, mi("x", "z_2"), ">=", mi("x", "z_1"), False,
          "q(z_2|z_1) not depending on z_1 gives I(x;z_2) = 0 < I(x;z_1) for an informative q(z_1|x)",
          "hierarchical"),
    _step("h2_mi_both_layers", H2, mi("x", "z_1 z_2"), "=", mi("x", "z_1"), True,
          "chain rule I(x;z_1,z_2) = I(x;z_1) + I(x;z_2|z_1), and I(x;z_2|z_1) = 0 since q(z_2|z_1,x) = q(z_2|z_1)",
          "hierarchical"),
    _step("h2_data_processing_wrong_pair", H2, mi("z_1", "z_2"), "<=", mi("x", "z_2"), False,
          "q(z_1|x) not depending on x gives I(x;z_2) = 0 while I(z_1;z_2) > 0 for q(z_2|z_1) depending on z_1; "
          "data processing gives the opposite, I(x;z_2) <= I(z_1;z_2)", "hierarchical"),
    _step("h2_generative_data_processing", H2, mi("x", "z_2", family="p"), "<=", mi("x", "z_1", family="p"), True,
          "data processing for the generative chain z_2 -> z_1 -> x under p", "hierarchical"),
    _step("h2_drop_top_prior_const", H2, H2_ELBO, "=const",
          E(H2_MEASURE, log(ratio(["p(x|z_1)", "p(z_1|z_2)"], ["q(z_1|x)", "q(z_2|z_1)"]))), False,
          "the dropped E_{q(z_1|x) q(z_2|z_1)}[log p(z_2)] has a fixed integrand but a measure that changes with "
          "phi", "up to a constant"),
    # ---- hierarchical VAE, three stochastic layers
    _step("h3_chain_rule", H3, log("p(x,z_1,z_2,z_3)"), "=",
          log("p(z_3)") + log("p(z_2|z_3)") + log("p(z_1|z_2)") + log("p(x|z_1)"), True,
          "the joint is the product of the declared factors", "hierarchical"),
    _step("h3_markov_skip", H3, log("p(x|z_1,z_3)"), "=", log("p(x|z_1)"), True,
          "x is independent of (z_2, z_3) given z_1 in the chain z_3 -> z_2 -> z_1 -> x", "hierarchical"),
    _step("h3_markov_wrong_parent", H3, log("p(z_3|z_1)"), "=", log("p(z_3|z_2)"), False,
          "the two sides depend on different free variables (z_1 vs z_2); p(z_3|z_1) is not p(z_3|z_2) for a "
          "non-degenerate chain", "hierarchical"),
    _step("h3_two_layer_elbo_marginal_prior", H3, log("p(x)"), ">=",
          E(H2_MEASURE, log(ratio(["p(x|z_1)", "p(z_1|z_2)", "p(z_2)"], ["q(z_1|x)", "q(z_2|z_1)"]))), True,
          "an ELBO over (z_1, z_2) with the marginal prior p(z_2) = int p(z_3) p(z_2|z_3) dz_3: lhs - rhs = "
          "KL(q(z_1,z_2|x) || p(z_1,z_2|x)) >= 0", "hierarchical"),
    _step("h3_full_elbo", H3, log("p(x)"), ">=",
          E(["q(z_1|x)", "q(z_2|z_1)", "q(z_3|z_2)"],
            log(ratio(["p(x,z_1,z_2,z_3)"], ["q(z_1|x)", "q(z_2|z_1)", "q(z_3|z_2)"]))), True,
          "lhs - rhs = KL(q(z_1,z_2,z_3|x) || p(z_1,z_2,z_3|x)) >= 0", "hierarchical"),
    _step("h3_data_processing_long", H3, mi("x", "z_3"), "<=", mi("z_1", "z_3"), True,
          "data processing for x -> z_1 -> z_2 -> z_3 under q (z_3 is independent of x given z_1)", "hierarchical"),
    _step("h3_encoder_skip_wrong", H3, log("q(z_3|x)"), "=", log("q(z_3|z_2)"), False,
          "q(z_3|x) = int q(z_1|x) q(z_2|z_1) q(z_3|z_2) does not depend on the free z_2 on the right",
          "hierarchical"),
    _step("h3_encoder_skip", H3, log("q(z_3|x,z_1)"), "=", log("q(z_3|z_1)"), True,
          "z_3 is independent of x given z_1 in the inference chain x -> z_1 -> z_2 -> z_3", "hierarchical"),
    _step("h3_bayes_middle", H3, log("p(z_2|z_1)"), "=", log("p(z_1|z_2)") + log("p(z_2)") - log("p(z_1)"), True,
          "Bayes' rule with the marginals p(z_2) and p(z_1) of the generative joint", "hierarchical"),
    # ---- M2 (Kingma et al. 2014), unlabelled data: y latent
    _step("m2_unlabelled_elbo", M2_UNLABELLED, log("p(x)"), ">=",
          E(["q(y|x)", "q(z|x,y)"], log(ratio(["p(x|y,z)", "p(y)", "p(z)"], ["q(y|x)", "q(z|x,y)"]))), True,
          "lhs - rhs = KL(q(y,z|x) || p(y,z|x)) >= 0", "labelled data"),
    _step("m2_unlabelled_kingma_form", M2_UNLABELLED,
          E(["q(y|x)", "q(z|x,y)"], log(ratio(["p(x|y,z)", "p(y)", "p(z)"], ["q(y|x)", "q(z|x,y)"]))), "=",
          E("q(y|x)", E("q(z|x,y)", log("p(x|y,z)")) - kl("q(z|x,y)", "p(z)")) - kl("q(y|x)", "p(y)"), True,
          "split the log: the z-terms form E_{q(y|x)} KL(q(z|x,y)||p(z)), the y-terms KL(q(y|x)||p(y))",
          "labelled data"),
    _step("m2_label_entropy_nonnegative", M2_UNLABELLED, entropy("q(y|x)"), ">=", 0, False,
          "the semantics allow a continuous y: q(y|x) = N(0, 0.01^2) has differential entropy "
          "0.5 log(2 pi e 1e-4) < 0", "entropy"),
    _step("m2_kl_convexity_over_labels", M2_UNLABELLED, E("q(y|x)", kl("q(z|x,y)", "p(z)")), ">=",
          kl("q(z|x)", "p(z)"), True,
          "q(z|x) = E_{q(y|x)}[q(z|x,y)]; lhs - rhs = E_{q(y|x)} KL(q(z|x,y) || q(z|x)) >= 0", "convexity"),
    _step("m2_kl_convexity_equality", M2_UNLABELLED, E("q(y|x)", kl("q(z|x,y)", "p(z)")), "=",
          kl("q(z|x)", "p(z)"), False,
          "the gap E_{q(y|x)} KL(q(z|x,y) || q(z|x)) is positive when q(z|x,y) depends on y", "convexity"),
    _step("m2_prior_independence", M2_UNLABELLED, log("p(z|y)"), "=", log("p(z)"), True,
          "y and z are independent under p(y) p(z)", "labelled data"),
    _step("m2_explaining_away", M2_UNLABELLED, log("p(z|x,y)"), "=", log("p(z|x)"), False,
          "given x, y and z are dependent (explaining away): p(z|x,y) is proportional to p(z) p(x|y,z), which "
          "depends on y", "labelled data"),
    # ---- M2 on labelled data: y observed
    _step("m2_labelled_bound", M2_LABELLED, log("p(x,y)"), ">=",
          E("q(z|x,y)", log("p(x|y,z)")) + log("p(y)") - kl("q(z|x,y)", "p(z)"), True,
          "lhs - rhs = KL(q(z|x,y) || p(z|x,y)) >= 0 (the labelled term -L(x,y) of Kingma et al. 2014)",
          "labelled data"),
    _step("m2_labelled_conditional_bound", M2_LABELLED, log("p(x|y)"), ">=",
          E("q(z|x,y)", log("p(x|y,z)")) - kl("q(z|x,y)", "p(z)"), True,
          "p(z|y) = p(z); lhs - rhs = KL(q(z|x,y) || p(z|x,y)) >= 0", "labelled data"),
    _step("m2_labelled_missing_label_prior", M2_LABELLED, log("p(x,y)"), ">=",
          E("q(z|x,y)", log("p(x|y,z)")) - kl("q(z|x,y)", "p(z)"), False,
          "the rhs bounds log p(x|y): with q(z|x,y) = p(z|x,y) it equals log p(x|y) > log p(x,y) when p(y) < 1",
          "labelled data"),
    _step("m2_labelled_joint_below_conditional", M2_LABELLED, log("p(x,y)"), "<=", log("p(x|y)"), False,
          "lhs - rhs = log p(y), positive for a density p(y) > 1 (e.g. N(0, 0.1^2) near 0)", "entropy"),
    _step("m2_labelled_bayes", M2_LABELLED, log("p(y|x)"), "=", log("p(x|y)") + log("p(y)") - log("p(x)"), True,
          "Bayes' rule in the generative joint", "labelled data"),
    # ---- labelled data p_D(x,y) with an encoder q(z|x) that does not see y
    _step("label_blind_mi_with_label", LABEL_BLIND, mi("x y", "z"), "=", mi("x", "z"), True,
          "under p_D(x,y) q(z|x), z is independent of y given x: I(x,y;z) = I(x;z) + I(y;z|x) = I(x;z)",
          "mutual information"),
    _step("label_blind_data_processing", LABEL_BLIND, mi("y", "z"), "<=", mi("x", "z"), True,
          "data processing for y - x - z (z depends on y only through x)", "mutual information"),
    _step("label_blind_data_processing_equality", LABEL_BLIND, mi("y", "z"), "=", mi("x", "z"), False,
          "a label independent of x under p_D gives I(y;z) = 0 < I(x;z)", "mutual information"),
    _step("label_blind_conditional_mi", LABEL_BLIND, mi("x", "z", given="y"), "=", mi("x", "z") - mi("y", "z"), True,
          "I(x,y;z) = I(y;z) + I(x;z|y) and I(x,y;z) = I(x;z)", "mutual information"),
    _step("label_blind_wrong_joint", LABEL_BLIND, mi("x", "z", family="p"), "=", mi("x", "z"), False,
          "I_p is under the generative joint p(y) p(z) p(x|y,z), I_q under p_D(x,y) q(z|x): unrelated choices of "
          "factors make them differ (e.g. q(z|x) = p(z) gives I_q = 0 < I_p)", "mutual information"),
    _step("label_blind_surgery", LABEL_BLIND, E("p_D(x,y)", kl("q(z|x)", "p(z)")), "=",
          mi("x", "z") + kl("q(z)", "p(z)"), True,
          "ELBO surgery: E KL(q(z|x)||p(z)) = E KL(q(z|x)||q(z)) + KL(q(z)||p(z)); averaging over y changes nothing",
          "surgery"),
    _step("label_blind_surgery_label_mi", LABEL_BLIND, E("p_D(x,y)", kl("q(z|x)", "p(z)")), "=",
          mi("y", "z") + kl("q(z)", "p(z)"), False,
          "the two sides differ by I(x;z|y) = I(x;z) - I(y;z), positive when y does not determine x", "surgery"),
    _step("label_blind_barber_agakov", LABEL_BLIND, mi("y", "z"), ">=",
          E("q(y,z)", log("r(y|z)")) - E("p_D(y)", log("p_D(y)")), True,
          "lhs - rhs = E_{q(z)} KL(q(y|z) || r(y|z)) >= 0 (Barber & Agakov), for densities too", "mutual information"),
    _step("label_blind_barber_agakov_without_entropy", LABEL_BLIND, mi("y", "z"), ">=", E("q(y,z)", log("r(y|z)")),
          False, "lhs - rhs = h(y) + E KL(q(y|z)||r(y|z)); with r = q(y|z) it is the differential entropy of p_D(y), "
          "negative for a narrow continuous y", "entropy"),
    _step("label_blind_conditional_convexity", LABEL_BLIND, E("q(x|y)", kl("q(z|x)", "p(z)")), ">=",
          kl("q(z|y)", "p(z)"), True,
          "q(z|y) = E_{q(x|y)}[q(z|x)]; lhs - rhs = E_{q(x|y)} KL(q(z|x) || q(z|y)) >= 0", "convexity"),
    # ---- EM with old and new parameters
    _step("em_decomposition", EM, log("p_theta(x)"), "=", Q_FUNCTION + entropy(Q_OLD) + kl(Q_OLD, "p_theta(z|x)"),
          True, "for any r(z|x): log p(x) = E_r[log p(x,z)] + H(r) + KL(r || p(z|x)); here r = p_theta_old(z|x)",
          "EM"),
    _step("em_lower_bound", EM, log("p_theta(x)"), ">=", Q_FUNCTION + entropy(Q_OLD), True,
          "lhs - rhs = KL(p_theta_old(z|x) || p_theta(z|x)) >= 0", "EM"),
    _step("em_missing_kl", EM, log("p_theta(x)"), "=", Q_FUNCTION + entropy(Q_OLD), False,
          "lhs - rhs = KL(p_theta_old(z|x) || p_theta(z|x)) > 0 when the independent old parameters differ",
          "EM"),
    _step("em_q_function_alone", EM, log("p_theta(x)"), ">=", Q_FUNCTION, False,
          "lhs - rhs = -E_{p_theta_old(z|x)}[log p_theta(z|x)]: with theta_old = theta and a narrow Gaussian "
          "posterior it is a negative differential entropy (true only for discrete z)", "EM"),
    _step("em_monotonicity", EM, log("p_theta(x)") - log("p_theta_old(x)"), ">=", Q_FUNCTION - Q_AT_OLD, True,
          "lhs - rhs = KL(p_theta_old(z|x) || p_theta(z|x)) >= 0 (Dempster et al. 1977)", "EM"),
    _step("em_monotonicity_reversed", EM, log("p_theta(x)") - log("p_theta_old(x)"), "<=", Q_FUNCTION - Q_AT_OLD,
          False, "lhs - rhs = KL(p_theta_old(z|x) || p_theta(z|x)), positive when the parameters differ", "EM"),
    _step("em_versions_differ", EM, kl(Q_OLD, "p_theta(z|x)"), "=", 0, False,
          "theta_old is an independent copy of theta: the two posteriors differ in general", "subscripts"),
    _step("em_version_self_consistent", EM, log("p_theta_old(x)"), "=", Q_AT_OLD + entropy(Q_OLD), True,
          "the decomposition at r = p_theta_old(z|x) in the old model: KL(p_theta_old(z|x) || p_theta_old(z|x)) = 0",
          "EM"),
    _step("em_version_shares_fixed_prior", VAE, log("p_theta_old(z)"), "=", log("p_theta(z)"), True,
          "the version replaces only factors parametric in theta; the prior p(z) is shared, so both marginals are "
          "p(z)", "subscripts"),
    _step("em_version_replaces_parametric_prior", EM, log("p_theta_old(z)"), "=", log("p_theta(z)"), False,
          "p_theta(z) is parametric: the version's prior is an independent copy", "subscripts"),
    _step("em_q_function_fixed_prior_const", VAE, E(Q_OLD, log("p_theta(x,z)")), "=const",
          E(Q_OLD, log("p_theta(x|z)")), True,
          "the dropped E_{p_theta_old(z|x)}[log p(z)] has a version as its measure and a non-parametric integrand: "
          "fixed", "up to a constant"),
    _step("em_q_function_parametric_prior_const", EM, Q_FUNCTION, "=const", E(Q_OLD, log("p_theta(x|z)")), False,
          "the dropped E_{p_theta_old(z|x)}[log p_theta(z)] changes with theta", "up to a constant"),
    _step("em_old_evidence_constant", EM, log("p_theta_old(x)"), "=const", 0, True,
          "a parameter version is a fixed value, not a parameter of '= const'", "up to a constant"),
    _step("em_evidence_not_constant", EM, log("p_theta(x)"), "=const", 0, False,
          "log p_theta(x) changes with theta", "up to a constant"),
    _step("em_kl_is_cross_entropy_const", EM, kl(Q_OLD, "p_theta(z|x)"), "=const",
          -E(Q_OLD, log("p_theta(z|x)")), True,
          "lhs - rhs = E_{p_theta_old(z|x)}[log p_theta_old(z|x)] = -H(p_theta_old(z|x)), fixed", "up to a constant"),
    # ---- subscripts
    _step("subscript_auxiliary_differs", VAE_AUX, kl("q_phi(z|x)", "q_psi(z|x)"), "=", 0, False,
          "q_psi(z|x) is a declared auxiliary density of its own, independent of the encoder q_phi(z|x)",
          "subscripts"),
    _step("subscript_auxiliary_gibbs", VAE_AUX, kl("q_phi(z|x)", "q_psi(z|x)"), ">=", 0, True,
          "Gibbs' inequality", "subscripts"),
    _step("subscript_free_is_encoder", VAE, kl("q_phi(z|x)", "q(z|x)"), "=", 0, True,
          "a subscript-free q(z|x) is the inference joint's conditional, the declared q_phi(z|x)", "subscripts"),
    _step("subscript_is_a_label", VAE, log("p_theta(z)"), "=", log("p(z)"), True,
          "p_theta(z) is the p-marginal of z, the non-parametric factor p(z) (semantics 3.2)", "subscripts"),
    # ---- mean-field vs joint encoders
    _step("mean_field_issue_reproducer", MEAN_FIELD_MODEL, -MF_KL_U, "=const", entropy("q(z_u|x)"), False,
          "lhs - rhs = E_{q(z_u|x)}[log p(z_u)]; q(z_u|x) inherits phi from q_phi(z_l,z_u|x), so it changes",
          "up to a constant", (MEAN_FIELD,)),
    _step("mean_field_issue_reproducer_subscripted", MEAN_FIELD_MODEL, -MF_KL_U, "=const", entropy("q(z_u|x)"),
          False, "the same with the assumption written q_phi(...): E_{q_phi(z_u|x)}[log p(z_u)] changes with phi",
          "up to a constant", (MEAN_FIELD_SUBSCRIPTED,)),
    _step("mean_field_issue_reproducer_joint", MEAN_FIELD_MODEL, -MF_KL_U, "=const", entropy("q(z_u|x)"), False,
          "without the assumption q(z_u|x) is the marginal of q_phi(z_l,z_u|x), which changes with phi",
          "up to a constant"),
    _step("mean_field_elbo_split", MEAN_FIELD_MODEL, MF_RECONSTRUCTION - MF_KL_L - MF_KL_U, "=",
          E("q(z_l,z_u|x)", log(ratio(["p(x,z_l,z_u)"], ["q(z_l,z_u|x)"]))), True,
          "under q(z_l,z_u|x) = q(z_l|x) q(z_u|x) and p(z_l,z_u) = p(z_l) p(z_u) the KL splits", "mean field",
          (MEAN_FIELD,)),
    _step("mean_field_elbo_split_joint_encoder", MEAN_FIELD_MODEL, MF_RECONSTRUCTION - MF_KL_L - MF_KL_U, "=",
          E("q(z_l,z_u|x)", log(ratio(["p(x,z_l,z_u)"], ["q(z_l,z_u|x)"]))), False,
          "with a correlated joint encoder the product of its marginals is not the joint (the measure and the KL "
          "split both change)", "mean field"),
    _step("mean_field_bound", MEAN_FIELD_MODEL, log("p(x)"), ">=",
          E("q(z_l,z_u|x)", log("p(x|z_l,z_u)")) - MF_KL_L - MF_KL_U, True,
          "under the factorization the rhs is the ELBO: lhs - rhs = KL(q(z_l,z_u|x) || p(z_l,z_u|x)) >= 0",
          "mean field", (MEAN_FIELD,)),
    _step("mean_field_bound_joint_encoder", MEAN_FIELD_MODEL, log("p(x)"), ">=",
          E("q(z_l,z_u|x)", log("p(x|z_l,z_u)")) - MF_KL_L - MF_KL_U, False,
          "rhs = ELBO + I(z_l;z_u) under q(.|x); with q the correlated exact posterior it is log p(x) + a positive "
          "mutual information", "mean field"),
    _step("mean_field_averaged_split", MEAN_FIELD_MODEL, E("p_D(x)", kl("q(z_l,z_u|x)", "p(z_l,z_u)")), "=",
          E("p_D(x)", MF_KL_L + MF_KL_U) + mi("z_l", "z_u", given="x"), True,
          "KL(q(z_l,z_u|x) || p(z_l) p(z_u)) = KL_l + KL_u + KL(q(z_l,z_u|x) || q(z_l|x) q(z_u|x)); the average of "
          "the last term is I_q(z_l;z_u|x)", "mean field"),
    _step("mean_field_pointwise_split", MEAN_FIELD_MODEL, kl("q(z_l,z_u|x)", "p(z_l,z_u)"), "=",
          MF_KL_L + MF_KL_U + mi("z_l", "z_u", given="x"), False,
          "I_q(z_l;z_u|x) averages over x; the pointwise correction KL(q(z_l,z_u|x) || q(z_l|x) q(z_u|x)) differs "
          "between two data points with differently correlated encoders", "mean field"),
    _step("mean_field_entropy_subadditive", MEAN_FIELD_MODEL, entropy("q(z_l,z_u|x)"), "<=",
          entropy("q(z_l|x)") + entropy("q(z_u|x)"), True,
          "rhs - lhs = KL(q(z_l,z_u|x) || q(z_l|x) q(z_u|x)) >= 0, for differential entropies too", "entropy"),
    _step("mean_field_entropy_superadditive", MEAN_FIELD_MODEL, entropy("q(z_l,z_u|x)"), ">=",
          entropy("q(z_l|x)") + entropy("q(z_u|x)"), False,
          "lhs - rhs = -KL(q(z_l,z_u|x) || q(z_l|x) q(z_u|x)) < 0 for a correlated joint encoder", "entropy"),
    _step("mean_field_drop_both_priors_const", MEAN_FIELD_MODEL, MF_RECONSTRUCTION - MF_KL_L - MF_KL_U, "=const",
          MF_RECONSTRUCTION + entropy("q(z_l|x)") + entropy("q(z_u|x)"), False,
          "the dropped E_{q(z_l|x)}[log p(z_l)] + E_{q(z_u|x)}[log p(z_u)] changes with phi", "up to a constant",
          (MEAN_FIELD,)),
    _step("mean_field_measure_order", MEAN_FIELD_MODEL, E(["q(z_u|x)", "q(z_l|x)"], log("p(x|z_l,z_u)")), "=",
          E("q(z_l,z_u|x)", log("p(x|z_l,z_u)")), True,
          "under the factorization the product measure (in any order) is q(z_l,z_u|x)", "measures", (MEAN_FIELD,)),
    _step("mean_field_log_factorizes", MEAN_FIELD_MODEL, log("q(z_l,z_u|x)"), "=",
          log("q(z_l|x)") + log("q(z_u|x)"), True, "the assumption itself", "mean field", (MEAN_FIELD,)),
    _step("joint_encoder_log_factorizes", MEAN_FIELD_MODEL, log("q(z_l,z_u|x)"), "=",
          log("q(z_l|x)") + log("q(z_u|x)"), False,
          "a correlated joint encoder is not the product of its marginals", "mean field"),
    # ---- "up to a constant" in the one-layer VAE
    _step("vae_drop_log_prior_const", VAE, RECONSTRUCTION - KL_PRIOR, "=const", RECONSTRUCTION + entropy("q(z|x)"),
          False, "the dropped E_{q(z|x)}[log p(z)] changes with phi through the measure", "up to a constant"),
    _step("fixed_encoder_drop_kl_const", VAE_FIXED_ENCODER, RECONSTRUCTION - KL_PRIOR, "=const", RECONSTRUCTION, True,
          "the dropped -KL(q(z|x)||p(z)) involves only the non-parametric q(z|x) and p(z)", "up to a constant"),
    _step("vae_drop_kl_const", VAE, RECONSTRUCTION - KL_PRIOR, "=const", RECONSTRUCTION, False,
          "KL(q_phi(z|x) || p(z)) changes with phi", "up to a constant"),
    _step("vae_log_prior_const", VAE, log("p(z)"), "=const", 0, True,
          "p(z) is non-parametric: log p(z) is a fixed function of z", "up to a constant"),
    _step("vae_data_log_density_const", VAE, log("p_D(x)"), "=const", 0, True,
          "the data distribution is fixed", "up to a constant"),
    _step("vae_averaged_elbo_joint_kl_const", VAE, AVERAGE_RECONSTRUCTION - AVERAGE_KL, "=const",
          -kl("q(x,z)", "p(x,z)"), True,
          "lhs - rhs = E_{p_D(x)}[log p_D(x)], the negative data entropy, fixed", "up to a constant"),
    _step("vae_averaged_elbo_joint_kl_equal", VAE, AVERAGE_RECONSTRUCTION - AVERAGE_KL, "=",
          -kl("q(x,z)", "p(x,z)"), False,
          "lhs - rhs = E_{p_D(x)}[log p_D(x)], nonzero for a non-uniform (or continuous) data distribution",
          "up to a constant"),
    _step("vae_encoder_entropy_const", VAE, entropy("q(z|x)"), "=const", 0, False,
          "H(q_phi(z|x)) changes with phi", "up to a constant"),
    _step("vae_bayes_const", VAE, log("p(z|x)"), "=const", log("p(x|z)") - log("p(x)"), True,
          "lhs - rhs = log p(z), a fixed function", "up to a constant"),
    _step("vae_bayes_evidence_dropped_const", VAE, log("p(z|x)"), "=const", log("p(x|z)"), False,
          "lhs - rhs = log p(z) - log p(x), and log p(x) changes with theta", "up to a constant"),
    # ---- ELBO surgery and KL facts
    _step("surgery", VAE, AVERAGE_KL, "=", mi("x", "z") + kl("q(z)", "p(z)"), True,
          "Hoffman & Johnson 2016: E KL(q(z|x)||p(z)) = E KL(q(z|x)||q(z)) + KL(q(z)||p(z))", "surgery"),
    _step("surgery_sign", VAE, AVERAGE_KL, "=", mi("x", "z") - kl("q(z)", "p(z)"), False,
          "differs from the true identity by 2 KL(q(z)||p(z)) > 0 when q(z) is not p(z)", "surgery"),
    _step("surgery_generative_mi", VAE, AVERAGE_KL, "=", mi("x", "z", family="p") + kl("q(z)", "p(z)"), False,
          "I_p(x;z) is under the generative joint; q(z|x) = p(z) makes I_q = 0 and the lhs 0 while I_p > 0",
          "mutual information"),
    _step("surgery_convexity", VAE, AVERAGE_KL, ">=", kl("q(z)", "p(z)"), True,
          "lhs - rhs = I_q(x;z) >= 0", "convexity"),
    _step("surgery_convexity_reversed", VAE, AVERAGE_KL, "<=", kl("q(z)", "p(z)"), False,
          "lhs - rhs = I_q(x;z) > 0 for an informative encoder", "convexity"),
    _step("mi_definition", VAE, mi("x", "z"), "=", E("p_D(x)", kl("q(z|x)", "q(z)")), True,
          "I_q(x;z) = E_{q(x,z)}[log q(z|x) - log q(z)]", "mutual information"),
    _step("mi_swapped_kl", VAE, mi("x", "z"), "=", E("p_D(x)", kl("q(z)", "q(z|x)")), False,
          "the rhs is the lautum information, which differs from I in general (e.g. x binary with unequal weights)",
          "mutual information"),
    _step("reverse_kl_convexity", VAE, E("p_D(x)", kl("p(z)", "q(z|x)")), ">=", kl("p(z)", "q(z)"), True,
          "KL is convex in its second argument: KL(p || E q(z|x)) <= E KL(p || q(z|x)) (Jensen on -log)",
          "convexity"),
    _step("mi_below_data_entropy", VAE, mi("x", "z"), "<=", -E("p_D(x)", log("p_D(x)")), False,
          "true for discrete x only: a narrow continuous p_D has negative differential entropy while I >= 0 "
          "(and > 0 for an informative encoder)", "entropy"),
    _step("mi_entropy_form", VAE, mi("x", "z"), "=", entropy("q(z)") - E("p_D(x)", entropy("q(z|x)")), True,
          "I(x;z) = H(z) - H(z|x) under the inference joint", "mutual information"),
    _step("aggregate_entropy_concavity", VAE, entropy("q(z)"), ">=", E("p_D(x)", entropy("q(z|x)")), True,
          "lhs - rhs = I_q(x;z) >= 0", "entropy"),
    _step("aggregate_entropy_concavity_reversed", VAE, entropy("q(z)"), "<=", E("p_D(x)", entropy("q(z|x)")), False,
          "lhs - rhs = I_q(x;z) > 0 for an informative encoder", "entropy"),
    _step("elbo_swapped_posterior_kl", VAE, log("p(x)"), "=", ELBO + kl("p(z|x)", "q(z|x)"), False,
          "the identity holds with KL(q(z|x) || p(z|x)); the reverse KL differs in general", "swapped KL"),
    _step("elbo_swapped_prior_kl", VAE, log("p(x)"), ">=", RECONSTRUCTION - kl("p(z)", "q(z|x)"), False,
          "prior (0.99, 0.01), likelihood ratio 99 so the posterior is uniform, q = posterior: "
          "rhs - lhs = KL(post||prior) - KL(prior||post) = 1.61 - 0.64 > 0", "swapped KL"),
    _step("measure_order", VAE, E(["q(z|x)", "p_D(x)"], log("q(z|x)")), "=", E(["p_D(x)", "q(z|x)"], log("q(z|x)")),
          True, "a product measure is a set of factors (semantics 5)", "measures"),
    _step("measure_order_nested", VAE, E(["q(z|x)", "p_D(x)"], log("p(x|z)")), "=",
          E("p_D(x)", E("q(z|x)", log("p(x|z)"))), True,
          "the product measure p_D(x) q(z|x) is the iterated expectation (Fubini)", "measures"),
    _step("measure_factor_dropped", VAE, E(["q(z|x)", "p_D(x)"], log("q(z|x)")), "=", E("q(z|x)", log("q(z|x)")),
          False, "the lhs is the average over x of the rhs, which varies with x", "measures"),
    _step("inference_bayes", VAE, log("q(x|z)"), "=", log("q(z|x)") + log("p_D(x)") - log("q(z)"), True,
          "Bayes' rule in the inference joint p_D(x) q(z|x)", "measures"),
    _step("inference_vs_generative_conditional", VAE, log("q(x|z)"), "=", log("p(x|z)"), False,
          "q(x|z) is the inference joint's conditional, unrelated to the decoder p_theta(x|z)", "mutual information"),
    # ---- Jensen, both directions, and entropies of densities
    _step("importance_identity", VAE, log("p(x)"), "=", log(E("q(z|x)", WEIGHT)), True,
          "E_{q(z|x)}[p(x,z)/q(z|x)] = p(x) for a q with full support", "Jensen"),
    _step("jensen_log_of_mean", VAE, log(E("q(z|x)", WEIGHT)), ">=", E("q(z|x)", log(WEIGHT)), True,
          "Jensen for the concave log", "Jensen"),
    _step("jensen_wrong_direction", VAE, log(E("q(z|x)", WEIGHT)), "<=", E("q(z|x)", log(WEIGHT)), False,
          "the gap KL(q(z|x) || p(z|x)) is positive when q is not the posterior", "Jensen"),
    _step("jensen_prior_wrong_direction", VAE, E("p(z)", log("p(x|z)")), ">=", log("p(x)"), False,
          "log p(x) = log E_{p(z)} p(x|z) >= E_{p(z)} log p(x|z), strictly when p_theta(x|z) varies with z",
          "Jensen"),
    _step("joint_density_bound", VAE, log("p(x)"), ">=", E("q(z|x)", log("p(x,z)")), False,
          "lhs - rhs = -E_q[log p(z|x)], negative for a narrow continuous posterior and q = posterior (true only "
          "for discrete z)", "entropy"),
    _step("reconstruction_bound", VAE, log("p(x)"), ">=", RECONSTRUCTION, False,
          "q(z|x) concentrated at argmax_z p(x|z) gives the rhs max_z log p(x|z) > log E_{p(z)} p(x|z)", "Jensen"),
    _step("encoder_entropy_nonnegative", VAE, entropy("q(z|x)"), ">=", 0, False,
          "a Gaussian q(z|x) with standard deviation 0.01 has negative differential entropy", "entropy"),
    _step("cross_entropy_above_entropy", VAE, entropy("q(z|x)"), "<=", -E("q(z|x)", log("p(z)")), True,
          "rhs - lhs = KL(q(z|x) || p(z)) >= 0 (Gibbs)", "entropy"),
    _step("gibbs_wrong_direction", VAE, E("q(z|x)", log("p(z|x)")), ">=", E("q(z|x)", log("q(z|x)")), False,
          "lhs - rhs = -KL(q(z|x) || p(z|x)) < 0 when q is not the posterior", "Jensen"),
    # ---- coefficients and their ranges
    _step("beta_vae_bound_beta_at_least_1", VAE_BETA_AT_LEAST_1, log("p(x)"), ">=",
          RECONSTRUCTION - beta * KL_PRIOR, True,
          "lhs - rhs = (beta - 1) KL(q(z|x)||p(z)) + KL(q(z|x)||p(z|x)) >= 0 for beta >= 1", "coefficients"),
    _step("beta_vae_bound_beta_below_1", VAE_BETA_UNIT, log("p(x)"), ">=", RECONSTRUCTION - beta * KL_PRIOR, False,
          "beta = 0 and q concentrated at argmax p(x|z): rhs = max_z log p(x|z) > log p(x)", "coefficients"),
    _step("beta_vae_monotone_in_beta", VAE_BETA_AT_LEAST_1, RECONSTRUCTION - beta * KL_PRIOR, "<=",
          RECONSTRUCTION - KL_PRIOR, True, "rhs - lhs = (beta - 1) KL(q(z|x)||p(z)) >= 0", "coefficients"),
    _step("scaled_kl_real_coefficient", VAE_BETA_REAL, beta * KL_PRIOR, ">=", 0, False,
          "beta = -1 and any q(z|x) different from p(z)", "coefficients"),
    _step("beta_tcvae_bound_beta_at_least_1", TC_FACTORIZED,
          AVERAGE_RECONSTRUCTION - mi("x", "z") - beta * tc("q(z)") - TC_DIMENSIONWISE, "<=",
          AVERAGE_RECONSTRUCTION - AVERAGE_KL, True,
          "with a factorized prior rhs - lhs = (beta - 1) TC(q(z)) >= 0 by the beta-TCVAE decomposition",
          "coefficients"),
    _step("beta_tcvae_bound_beta_below_1", TC_FACTORIZED_SMALL_BETA,
          AVERAGE_RECONSTRUCTION - mi("x", "z") - beta * tc("q(z)") - TC_DIMENSIONWISE, "<=",
          AVERAGE_RECONSTRUCTION - AVERAGE_KL, False,
          "rhs - lhs = (beta - 1) TC(q(z)) < 0 for beta < 1 and a correlated aggregate posterior", "coefficients"),
    # ---- beta-TCVAE decomposition and total correlation
    _step("tcvae_decomposition_factorized_prior", TC_FACTORIZED, AVERAGE_KL, "=", TC_DECOMPOSITION, True,
          "Chen et al. 2018 eq. (2): surgery plus KL(q(z)||p(z_1)p(z_2)) = TC(q(z)) + sum_j KL(q(z_j)||p(z_j))",
          "beta-TCVAE"),
    _step("tcvae_decomposition_joint_prior", TC_JOINT_PRIOR, AVERAGE_KL, "=", TC_DECOMPOSITION, False,
          "lhs - rhs = E_{q(z)}[log p(z_1) p(z_2) / p(z)], nonzero for a correlated prior", "beta-TCVAE"),
    _step("dimensionwise_kl_below_kl_factorized", TC_FACTORIZED, TC_DIMENSIONWISE, "<=", kl("q(z)", "p(z)"), True,
          "rhs - lhs = TC(q(z)) >= 0 when p(z) = p(z_1) p(z_2)", "beta-TCVAE"),
    _step("dimensionwise_kl_below_kl_joint_prior", TC_JOINT_PRIOR, TC_DIMENSIONWISE, "<=", kl("q(z)", "p(z)"), False,
          "p = N(0, [[1, r], [r, 1]]), q = N((1, 1), same covariance): KL(q||p) = 1/(1+r) < 1 = sum_j KL for r > 0",
          "beta-TCVAE"),
    _step("total_correlation_nonnegative", TC_FACTORIZED, tc("q(z)"), ">=", 0, True,
          "TC is a KL divergence", "beta-TCVAE"),
    _step("aggregate_tc_mean_field_encoder", TC_FACTORIZED, tc("q(z)"), "=", 0, False,
          "a mixture of product densities is not a product: q(z|x) concentrated at (0,0) for one x and at (1,1) for "
          "another gives a correlated q(z)", "beta-TCVAE", (ENCODER_MEAN_FIELD,)),
    _step("encoder_tc_mean_field", TC_FACTORIZED, tc("q(z|x)"), "=", 0, True,
          "under q(z|x) = q(z_1|x) q(z_2|x) the encoder has no total correlation", "beta-TCVAE",
          (ENCODER_MEAN_FIELD,)),
    _step("encoder_tc_joint", TC_FACTORIZED, tc("q(z|x)"), "=", 0, False,
          "a correlated joint encoder q_phi(z|x) has positive total correlation", "beta-TCVAE"),
    # ---- Renyi bounds (Li & Turner 2016)
    _step("renyi_half_below_evidence", VAE, log("p(x)"), ">=", 2 * log(E("q(z|x)", _pow(WEIGHT, HALF))), True,
          "E_q[w^(1/2)] <= (E_q w)^(1/2) = p(x)^(1/2) (Jensen for the concave square root)", "Renyi"),
    _step("renyi_half_above_elbo", VAE, 2 * log(E("q(z|x)", _pow(WEIGHT, HALF))), ">=", ELBO, True,
          "log E_q[w^(1/2)] >= E_q[log w^(1/2)] = ELBO / 2 (Jensen for log)", "Renyi"),
    _step("renyi_half_above_evidence", VAE, log("p(x)"), "<=", 2 * log(E("q(z|x)", _pow(WEIGHT, HALF))), False,
          "strict Jensen gap for the square root when w = p(x,z)/q(z|x) is not constant in z", "Renyi"),
    _step("renyi_alpha_small_below_evidence", VAE_ALPHA_SMALL, log("p(x)"), ">=",
          1 / (1 - alpha) * log(E("q(z|x)", _pow(WEIGHT, 1 - alpha))), True,
          "for 0 <= alpha <= 1/2: E[w^(1-alpha)] <= (E w)^(1-alpha) = p(x)^(1-alpha), and 1 - alpha > 0", "Renyi"),
    _step("renyi_alpha_small_above_elbo", VAE_ALPHA_SMALL, 1 / (1 - alpha) * log(E("q(z|x)", _pow(WEIGHT, 1 - alpha))),
          ">=", ELBO, True, "log E[w^(1-alpha)] >= (1 - alpha) E[log w] (Jensen), divided by 1 - alpha > 0",
          "Renyi"),
    _step("renyi_alpha_large_above_elbo", VAE_ALPHA_LARGE, 1 / (1 - alpha) * log(E("q(z|x)", _pow(WEIGHT, 1 - alpha))),
          ">=", ELBO, False,
          "for alpha >= 2 dividing Jensen's log E[w^(1-alpha)] >= (1-alpha) E[log w] by 1 - alpha < 0 flips it: the "
          "Renyi bound is below the ELBO, strictly when w is not constant", "Renyi"),
    _step("renyi_two_below_elbo", VAE, -log(E("q(z|x)", ratio(["q(z|x)"], ["p(x,z)"]))), "<=", ELBO, True,
          "alpha = 2: log E_q[1/w] >= E_q[log 1/w] (Jensen)", "Renyi"),
    # ---- IWAE with K = 2, two latent copies
    _step("iwae2_below_evidence", IWAE2, log("p(x)"), ">=", IWAE_2, True,
          "Jensen: E[log mean(w_1, w_2)] <= log mean(E w_1, E w_2), and E_{q(z_k|x)}[p(x,z_k)/q(z_k|x)] = p(x) "
          "because p(x,z_k) is a marginal of the declared joint", "IWAE"),
    _step("iwae2_above_mean_elbo", IWAE2, IWAE_2, ">=", HALF * IW_ELBO_1 + HALF * IW_ELBO_2, True,
          "pointwise concavity: log((w_1 + w_2)/2) >= (log w_1 + log w_2)/2", "IWAE"),
    _step("iwae2_above_first_elbo", IWAE2, IWAE_2, ">=", IW_ELBO_1, False,
          "the declared copies are different factors: q(z_1|x) = p(z_1|x) makes ELBO_1 = log p(x) > IWAE_2 "
          "whenever w_2 is not constant", "IWAE"),
    _step("iwae2_below_mean_elbo", IWAE2, IWAE_2, "<=", HALF * IW_ELBO_1 + HALF * IW_ELBO_2, False,
          "strict concavity: the gap is positive when w_1 and w_2 differ with positive probability", "IWAE"),
]

#: For the entries with an assumption, whether the step is true WITHOUT it (the checker reports that verdict too, as
#: ``without_assumptions``). Decided by mathematics after the first run of the checker over the corpus, which showed
#: a true step refuted by that second check (see mean_field_constant.toml, line 24); the truths of ``STEPS`` above
#: are untouched.
TRUTH_WITHOUT_ASSUMPTIONS: dict[str, bool] = {
    "mean_field_issue_reproducer": False,  # E_{q(z_u|x)}[log p(z_u)] changes with phi for a joint encoder too
    "mean_field_issue_reproducer_subscripted": False,
    "mean_field_elbo_split": False,  # misses I(z_l; z_u) under q(.|x) and the measure differs
    "mean_field_bound": False,  # rhs = ELBO + I(z_l; z_u) under q(.|x) for a joint encoder
    "mean_field_drop_both_priors_const": False,
    "mean_field_measure_order": False,  # the product of the marginals is not the joint encoder
    "mean_field_log_factorizes": False,
    "aggregate_tc_mean_field_encoder": False,  # false with or without the assumption
    "encoder_tc_mean_field": False,  # a correlated joint encoder has TC > 0
}
