"""Every model reports the terms its derivation names, and on a tiny model their values equal the estimators'
values on the same sample.

Recipe, per model: draw the latent sample through ``elbocheck.estimators.elbo`` itself (the sample is captured
inside the log-likelihood callable), hand that sample to the model, and recompute every term independently of the
model's forward code: the likelihood by hand from the decoder's output, each KL with
``elbocheck.estimators.analytic_kl`` against a prior built here from the documented recipe, the ELBO with
``elbocheck.estimators.elbo`` on the joint posterior and prior, the beta-TCVAE terms with
``elbocheck.estimators.minibatch_kl_terms``, and the remaining terms (MMD, adversaries, classifiers, log p(y),
objectives) from their formulas.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.distributions import Independent, Normal

from elbocheck.estimators import analytic_kl, elbo, minibatch_kl_terms
from elbocheck.models import MODELS
from model_testing import head_batch, tiny_model

# The naming contract with the derivation library (the lead's test connects these to the derivations).
EXPECTED_TERMS = {
    "vae": ("reconstruction", "kl_z", "elbo", "objective"),
    "beta_vae": ("reconstruction", "kl_z", "elbo", "objective"),
    "beta_tcvae": ("reconstruction", "kl_z", "mutual_information", "total_correlation", "dimensionwise_kl", "elbo",
                   "objective"),
    "infovae": ("reconstruction", "kl_z", "mmd", "elbo", "objective"),
    "condvae": ("reconstruction", "kl_z", "elbo", "objective"),
    "condvae_info": ("reconstruction", "kl_z", "adversary", "elbo", "objective"),
    "csvae": ("reconstruction", "kl_w", "kl_z", "log_prior_y", "adversary", "adversary_entropy", "elbo", "objective"),
    "diva": ("reconstruction", "kl_zd", "kl_zx", "kl_zy", "classifier_d", "classifier_y", "elbo", "objective"),
    "cdvae": ("reconstruction", "kl_zl", "kl_zu", "elbo", "objective"),
}
EXPECTED_DERIVATIONS = {name: name for name in EXPECTED_TERMS}


def test_every_model_is_covered():
    assert set(MODELS) == set(EXPECTED_TERMS)


@pytest.mark.parametrize("name", sorted(EXPECTED_TERMS))
def test_term_names_and_derivation(name):
    cls = MODELS[name]
    assert cls.TERM_NAMES == EXPECTED_TERMS[name]
    assert cls.derivation == EXPECTED_DERIVATIONS[name]
    model, dataset = tiny_model(name)
    terms = model(head_batch(dataset))
    assert tuple(terms) == EXPECTED_TERMS[name]
    assert all(value.shape == () and bool(torch.isfinite(value)) for value in terms.values())
    # every KL is reported once per latent
    assert [t for t in terms if t.startswith("kl_")] == [f"kl_{latent}" for latent in cls.LATENT_NAMES]


def test_configuration_dependent_term_names():
    infovae_kl, dataset = tiny_model("infovae", divergence="kl")
    assert tuple(infovae_kl(head_batch(dataset))) == ("reconstruction", "kl_z", "aggregate_kl", "elbo", "objective")
    csvae_plain, dataset = tiny_model("csvae", use_adversary=False)
    assert tuple(csvae_plain(head_batch(dataset))) == ("reconstruction", "kl_w", "kl_z", "log_prior_y", "elbo",
                                                      "objective")
    assert csvae_plain.parameter_groups().keys() == {"model"}


# --------------------------------------------------------------------------------------------------------------------
def hand_log_likelihood(model, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | latents) per example from the decoder output, written out for each likelihood kind."""
    kind = model.spec.likelihood
    if kind == "categorical":
        levels = torch.round(x * (model.spec.num_levels - 1)).long()
        per_element = params.log_softmax(-1).gather(-1, levels.unsqueeze(-1)).squeeze(-1)
    elif kind == "bernoulli":
        logits = params.squeeze(-1)
        per_element = x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)
    else:
        scale = model.likelihood.scale
        per_element = -0.5 * ((x - params.squeeze(-1)) / scale) ** 2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)
    return per_element.flatten(1).sum(1)


def standard_normal_batch(batch_size: int, dim: int) -> Independent:
    return Independent(Normal(torch.zeros(batch_size, dim), torch.ones(batch_size, dim)), 1)


def one_hot(labels, count):
    return torch.nn.functional.one_hot(labels, count).float()


def concatenate(distributions) -> Independent:
    loc = torch.cat([d.base_dist.loc for d in distributions], -1)
    scale = torch.cat([d.base_dist.scale for d in distributions], -1)
    return Independent(Normal(loc, scale), 1)


def decode(name, model, batch, parts):
    """The decoder input of each model, as its derivation wires it."""
    if name in ("condvae", "condvae_info"):
        return model.decoder(parts["z"], one_hot(batch.y, model.num_classes))
    if name in ("vae", "beta_vae", "beta_tcvae", "infovae"):
        return model.decoder(parts["z"])
    return model.decoder(torch.cat([parts[n] for n in model.LATENT_NAMES], -1))


def priors_from_recipe(name, model, batch) -> dict:
    """The priors of each model, built here from the documented recipe (not from the model's prior code)."""
    b = batch.size
    if name == "csvae":
        on = batch.y.float().unsqueeze(-1).expand(b, model.w_dim)  # binary label: one attribute, one subspace
        w_prior = Independent(Normal(torch.where(on > 0, 3.0, 0.0), torch.where(on > 0, 1.0, 0.1)), 1)
        return {"w": w_prior, "z": standard_normal_batch(b, model.z_dim)}
    if name == "diva":  # learned conditional priors: the model's prior networks are parameters of the model
        return {"zd": model.prior_zd(batch.d), "zx": standard_normal_batch(b, model.dims["zx"]),
                "zy": model.prior_zy(batch.y)}
    if name == "cdvae":
        loc = model.class_means.detach()[batch.y]
        return {"zl": Independent(Normal(loc, torch.ones_like(loc)), 1), "zu": standard_normal_batch(b, model.zu_dim)}
    return {"z": standard_normal_batch(b, model.latent_dim)}


MODEL_OPTIONS = {
    "vae": {},
    "beta_vae": {"beta": 2.5},
    "beta_tcvae": {"alpha": 0.5, "beta": 3.0, "gamma": 2.0, "estimator": "mws"},
    "beta_tcvae_mss": {"alpha": 1.5, "beta": 4.0, "gamma": 0.5, "estimator": "mss"},
    "beta_tcvae_jackknife": {"alpha": 1.0, "beta": 2.0, "gamma": 0.5, "estimator": "mss-jackknife"},
    "infovae": {"alpha": 0.3, "lambda_": 10.0, "kernel": "rbf"},
    "infovae_imq": {"alpha": 0.0, "lambda_": 4.0, "kernel": "imq"},
    "infovae_kl": {"divergence": "kl", "alpha": 0.2, "lambda_": 3.0, "estimator": "mss"},
    "condvae": {},
    "condvae_info": {"adversary_weight": 0.7},
    "csvae": {},
    "csvae_plain": {"use_adversary": False, "beta1": 2.0, "beta3": 0.5},
    "diva": {"alpha_d": 3.0, "alpha_y": 5.0, "beta_d": 0.5, "beta_y": 2.0},
    "diva_no_classifiers": {"alpha_d": 0.0, "alpha_y": 0.0},
    "cdvae": {"beta_l": 2.0, "beta_u": 0.5},
}


def close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=2e-5, atol=2e-4)


@pytest.mark.parametrize("case", sorted(MODEL_OPTIONS))
def test_reported_terms_equal_the_estimators_on_the_same_sample(case):
    name = case.split("_mss")[0].split("_jackknife")[0].split("_imq")[0].split("_kl")[0].split("_plain")[0].split("_no_classifiers")[0]
    options = MODEL_OPTIONS[case]
    model, dataset = tiny_model(name, seed=3, **options)
    # A source set only a little larger than the batch, so that the minibatch estimators' weights depend strongly on N.
    batch = dataclasses.replace(head_batch(dataset, size=8), source_size=12)
    posteriors = model.encode(batch)
    priors = priors_from_recipe(name, model, batch)
    names = model.LATENT_NAMES
    sizes = [posteriors[n].event_shape[0] for n in names]

    captured = {}

    def log_likelihood(z):
        captured["z"] = z
        parts = dict(zip(names, z[0].split(sizes, -1)))
        return hand_log_likelihood(model, decode(name, model, batch, parts), batch.x).unsqueeze(0)

    torch.manual_seed(11)
    reference = elbo(log_likelihood, concatenate([posteriors[n] for n in names]),
                     concatenate([priors[n] for n in names]), num_samples=1, kl="analytic")
    samples = dict(zip(names, captured["z"][0].split(sizes, -1)))
    if name == "infovae":
        samples["prior_z"] = torch.randn(batch.size, model.latent_dim, generator=torch.Generator().manual_seed(5))
    terms = model(batch, latent_samples=samples)
    assert tuple(terms) == model.term_names

    # reconstruction, each KL, the ELBO
    close(terms["reconstruction"], reference.reconstruction.mean())
    kls = {n: analytic_kl(posteriors[n], priors[n]) for n in names}
    for n in names:
        close(terms[f"kl_{n}"], kls[n].mean())
    close(sum(terms[f"kl_{n}"] for n in names), reference.kl.mean())
    log_prior_y = torch.full((batch.size,), -math.log(2.0)) if name == "csvae" else torch.zeros(batch.size)
    close(terms["elbo"], (reference.elbo + log_prior_y).mean())
    recon, kl = reference.reconstruction, reference.kl

    # the model-specific terms and the objective actually optimised
    if name in ("vae", "condvae"):
        close(terms["objective"], terms["elbo"])
    elif name == "beta_vae":
        close(terms["objective"], (recon - 2.5 * kl).mean())
    elif name == "beta_tcvae":
        z = samples["z"]
        q = posteriors["z"]
        estimate = minibatch_kl_terms(z, q.base_dist.loc, 2 * q.base_dist.scale.log(), batch.source_size,
                                      method=options["estimator"])
        mi, tc, dw = estimate.mutual_information, estimate.total_correlation, estimate.dimensionwise_kl
        close(terms["mutual_information"], mi.mean())
        close(terms["total_correlation"], tc.mean())
        close(terms["dimensionwise_kl"], dw.mean())
        # independently: the three pieces sum to the single-sample KL log q(z|x) - log p(z)
        single_sample_kl = q.log_prob(z) - priors["z"].log_prob(z)
        close(terms["mutual_information"] + terms["total_correlation"] + terms["dimensionwise_kl"],
              single_sample_kl.mean())
        weights = (options["alpha"], options["beta"], options["gamma"])
        close(terms["objective"], (recon - weights[0] * mi - weights[1] * tc - weights[2] * dw).mean())
    elif name == "infovae" and options.get("divergence", "mmd") == "mmd":
        expected_mmd = explicit_mmd(samples["z"].double(), samples["prior_z"].double(), options["kernel"])
        close(terms["mmd"], expected_mmd.float())
        weight = options["alpha"] + options["lambda_"] - 1
        close(terms["objective"], (recon - (1 - options["alpha"]) * kl).mean() - weight * expected_mmd.float())
    elif name == "infovae":
        q = posteriors["z"]
        estimate = minibatch_kl_terms(samples["z"], q.base_dist.loc, 2 * q.base_dist.scale.log(), batch.source_size,
                                      method=options["estimator"])
        aggregate = (estimate.log_qz - estimate.log_pz).mean()
        close(terms["aggregate_kl"], aggregate)
        weight = options["alpha"] + options["lambda_"] - 1
        close(terms["objective"], (recon - (1 - options["alpha"]) * kl).mean() - weight * aggregate)
    elif name == "condvae_info":
        adversary = -model.adversary_net(samples["z"]).log_softmax(-1).gather(-1, batch.y[:, None]).squeeze(-1)
        close(terms["adversary"], adversary.mean())
        close(terms["objective"], (recon - kl + 0.7 * adversary).mean())
    elif name == "csvae":
        beta1, beta2, beta3, beta4 = (options.get("beta1", 20.0), options.get("beta2", 1.0), options.get("beta3", 0.2),
                                      options.get("beta4", 10.0))
        close(terms["log_prior_y"], torch.tensor(-math.log(2.0)))
        objective = beta1 * recon - beta2 * kls["w"] - beta3 * kls["z"] + log_prior_y
        if model.use_adversary:
            log_probs = model.adversary_net(samples["z"]).log_softmax(-1)
            adversary = -log_probs.gather(-1, batch.y[:, None]).squeeze(-1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)
            close(terms["adversary"], adversary.mean())
            close(terms["adversary_entropy"], entropy.mean())
            objective = objective + beta4 * entropy
        close(terms["objective"], objective.mean())
    elif name == "diva":
        classifier_d = model.classifier_d(samples["zd"]).log_softmax(-1).gather(-1, batch.d[:, None]).squeeze(-1)
        classifier_y = model.classifier_y(samples["zy"]).log_softmax(-1).gather(-1, batch.y[:, None]).squeeze(-1)
        close(terms["classifier_d"], classifier_d.mean())
        close(terms["classifier_y"], classifier_y.mean())
        alpha_d, alpha_y = options["alpha_d"], options["alpha_y"]
        beta_d, beta_y = options.get("beta_d", 1.0), options.get("beta_y", 1.0)
        objective = (recon - beta_d * kls["zd"] - kls["zx"] - beta_y * kls["zy"] + alpha_d * classifier_d
                     + alpha_y * classifier_y)
        close(terms["objective"], objective.mean())
    elif name == "cdvae":
        close(terms["objective"], (recon - 2.0 * kls["zl"] - 0.5 * kls["zu"]).mean())
    else:  # pragma: no cover
        raise AssertionError(case)


def explicit_mmd(a: torch.Tensor, b: torch.Tensor, kernel: str) -> torch.Tensor:
    """The unbiased MMD^2 written as explicit sums over pairs."""
    dim = a.shape[1]

    def k(u, v):
        squared = float(((u - v) ** 2).sum().detach())
        return math.exp(-squared / (2 * dim)) if kernel == "rbf" else 2 * dim / (2 * dim + squared)

    n, m = len(a), len(b)
    within_a = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_b = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return torch.tensor(within_a + within_b - 2 * across, dtype=torch.float64)
