"""What ``elbocheck experiment kl-enough`` measures on one trained run, on held-out data.

Latent roles. Each model has a *label latent* meant to carry the label y and an *other latent* meant not to:

=============  ==============  ===============  ======================================================
model          label latent    other latent     encoders
=============  ==============  ===============  ======================================================
CSVAE          w               z                q(w | x, y), q(z | x, y); or q(w | x), q(z | x)
DIVA           z_y             z_x (and z_d)    q(z_y | x), q(z_x | x), q(z_d | x)
CDVAE          z_l             z_u              q(z_l | x), q(z_u | x)
CondVAE-info   -- (y itself)   z                q(z | x)                        (decoder sees y)
beta-VAE       --              z                q(z | x)          (the reference: no label anywhere)
=============  ==============  ===============  ======================================================

Measures (all on the held-out ``validation`` split, whose examples -- for rotated digits, whose base digits -- are
never trained on; DIVA's held-out domain is the ``test`` split, and ``test_unseen`` holds unseen digits at it):

* Liveness: ``{role}_active_units`` -- dimensions j with Var_x E_q[z_j | x] > 0.01 (Burda et al. 2016) -- of
  ``{role}_dims``. A latent with no active unit carries (almost) nothing, so "it carries no y" says nothing there.
* Label information: the Barber-Agakov lower bound H(y) - CE of a held-out logistic regression on posterior *draws*
  (``{role}_mi_bound``, the key measure: it does not saturate and is about 0 when the latent carries nothing),
  the plug-in I(latent; y) from the class-conditional aggregate posteriors (upward biased; its value for permuted
  labels is reported beside it as the bias floor), and a logistic probe on the posterior means (``{role}_probe``,
  half of the held-out points to fit, half to score, Wilson interval).
* For an encoder that sees y (CSVAE's w and z by default), I(latent; y) under the true y says little about x:
  q(w | x, y) can copy y. The ``*_xonly`` measures feed the encoder a label drawn at random, independent of the true
  one, so that any information about the true y must have come from x. For encoders of x alone they equal the main
  measures (copied, so that the columns compare across models).
* The conditional-prior surgery of the label latent's KL (``derivations/library/conditional_surgery.py``):

      E_{p_D(x,y)} KL(q(w|x,y) || p(w|y)) = I_q(w; x | y) + E_{p_D(y)} KL(q(w|y) || p(w|y)),

  each piece estimated with draws w ~ q(w | x_n, y_n) and the exact class-conditional mixture
  q(w | y) = (1/N_y) sum_{n: y_n = y} q(w | x_n, y_n) over the held-out points (so I_q(w; x | y) <= log N_y: it is
  the value for the empirical distribution of those points). ``prior_label_information`` is I_p(w; y) of the prior's
  class components p(w | y) under the held-out label frequencies.
* Attribute swap: encode x, replace the label latent by a draw from p(w | y') for a target y' != y drawn uniformly
  (CSVAE, DIVA, CDVAE; ``*_exchange``: by the posterior mean of a held-out example of class y'), or decode with y'
  (CondVAE-info), keep the other latents at their posterior means, decode to the likelihood's mean, and classify
  the result with a classifier trained independently on the training images. Swap success is the fraction
  classified as y' (Wilson interval); ``swap_kept_original`` the fraction still classified as y; where the data
  know the digit of a binary style attribute (MNIST thickness), ``swap_identity_kept`` the fraction whose digit,
  judged by an independent digit classifier, did not change.

References: Klys, Snell & Zemel 2018 (CSVAE); Ilse, Tomczak, Louizos & Welling 2020 (DIVA); Creswell et al. 2017
(adversarial information factorization); Hoffman & Johnson 2016 (ELBO surgery); Barber & Agakov 2003 (the IM
bound); Burda, Grosse & Salakhutdinov 2016 (active units); project seed 000.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
from torch.distributions import Distribution, Independent

from elbocheck.estimators import label_mutual_information, probe_accuracy, wilson_interval
from elbocheck.estimators.aggregate_posterior import grouped_mixture_log_sum
from elbocheck.estimators.base import check_posterior_parameters
from elbocheck.models import Batch, DataSet, VariationalModel
from elbocheck.models.base import one_hot
from elbocheck.models.terms import posterior_parameters


@dataclass(frozen=True)
class LatentRoles:
    """Which latent carries the label, which must not, and which encoders see y."""

    label_latent: str | None
    other_latent: str
    domain_latent: str | None
    encoder_sees_label: bool


LATENT_ROLES: dict[str, LatentRoles] = {
    "csvae": LatentRoles("w", "z", None, True),
    "diva": LatentRoles("zy", "zx", "zd", False),
    "cdvae": LatentRoles("zl", "zu", None, False),
    "condvae": LatentRoles(None, "z", None, True),
    "condvae_info": LatentRoles(None, "z", None, False),
    "beta_vae": LatentRoles(None, "z", None, False),
}
# Burda et al. 2016: a unit is active when the variance over x of its posterior mean exceeds this.
ACTIVE_UNIT_THRESHOLD = 0.01

# The probes fit on half of the held-out points and score on the other half.
PROBE_TEST_FRACTION = 0.5
# Inverse L2 strengths the Barber-Agakov bound's logistic regression chooses from (by cross-validated log-loss).
BOUND_REGULARIZATION = (0.01, 0.1, 1.0, 10.0)


def roles_of(model_name: str, options: Mapping | None = None) -> LatentRoles:
    """The roles of ``model_name``'s latents (CSVAE with ``encoder_label=False`` has encoders of x alone)."""
    if model_name not in LATENT_ROLES:
        raise ValueError(f"model: the kl-enough measurements know {', '.join(LATENT_ROLES)}; got {model_name!r}")
    roles = LATENT_ROLES[model_name]
    if model_name == "csvae" and options is not None and not options.get("encoder_label", True):
        roles = LatentRoles(roles.label_latent, roles.other_latent, roles.domain_latent, False)
    return roles


def active_units(posterior: Independent, threshold: float = ACTIVE_UNIT_THRESHOLD) -> tuple[int, int]:
    """(active units, dimensions): dimensions whose posterior mean varies over the examples with variance above
    ``threshold`` (Burda, Grosse & Salakhutdinov 2016, Sec. 5.2)."""
    mean, _ = posterior_parameters(posterior)
    variance = mean.double().var(dim=0, unbiased=True)
    return int((variance > threshold).sum()), int(mean.shape[-1])


# ---------------------------------------------------------------------------------------------------------------------
# Encoding, priors and decoding per model
# ---------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def encode(model: VariationalModel, x: torch.Tensor, y: torch.Tensor, d: torch.Tensor | None
           ) -> dict[str, Independent]:
    """The posteriors of every latent for inputs x (with label y and domain d where the encoders take them)."""
    model.eval()
    return model.encode(Batch(x, y, d))


def label_latent_prior(model_name: str, model: VariationalModel, y: torch.Tensor) -> Distribution:
    """p(label latent | y): CSVAE's fixed p(w|y), DIVA's learned p(z_y|y), CDVAE's p(z_l|c) = N(m_c, I)."""
    if model_name == "csvae":
        return model.w_prior(y)
    if model_name == "diva":
        return model.prior_zy(y)
    if model_name == "cdvae":
        return model.zl_prior(y)
    raise ValueError(f"model: {model_name!r} has no label latent")


@torch.no_grad()
def decode_mean(model_name: str, model: VariationalModel, latents: Mapping[str, torch.Tensor],
                decoder_label: torch.Tensor | None = None) -> torch.Tensor:
    """E[x | latents] (the likelihood's mean); CondVAE and CondVAE-info decode with the label ``decoder_label``."""
    model.eval()
    if model_name in ("condvae", "condvae_info"):
        params = model.decoder(latents["z"], one_hot(decoder_label, model.num_classes))
    else:
        params = model.decoder(torch.cat([latents[name] for name in model.LATENT_NAMES], dim=-1))
    return model.likelihood.mean(params)


def other_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each y_n a target label y'_n != y_n, uniform over the other classes."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator)
    return (y + shift) % num_classes


# ---------------------------------------------------------------------------------------------------------------------
# Label information
# ---------------------------------------------------------------------------------------------------------------------
def information_and_probe(prefix: str, posterior: Independent, labels: torch.Tensor, seed: int, *,
                          bound: bool = True) -> dict[str, float]:
    """Label information in one latent, several ways (nats for the information columns):

    * ``{prefix}_mi``: plug-in I(latent; labels) (:func:`label_mutual_information`), with its Monte-Carlo SE;
    * ``{prefix}_mi_shuffled``: the same estimator with permuted labels, its bias floor -- near H(y) when the
      posteriors barely overlap, and then the plug-in value says nothing;
    * ``{prefix}_mi_bound`` (with ``bound``): the Barber-Agakov lower bound from posterior *draws*
      (:func:`information_lower_bound`), which does not saturate; only with ``bound``;
    * ``{prefix}_probe``: held-out logistic-probe accuracy from the posterior means (:func:`probe_accuracy`), with
      its Wilson bounds.

    (An MLP probe on draws was dropped: with these held-out sizes it scored below the majority class.)
    """
    mean, log_var = posterior_parameters(posterior)
    mean, log_var = mean.double(), log_var.double()
    generator = torch.Generator().manual_seed(seed)
    information = label_mutual_information(mean, log_var, labels, generator=generator)
    permuted = labels[torch.randperm(labels.shape[0], generator=generator)]
    shuffled = label_mutual_information(mean, log_var, permuted, generator=generator)
    draws = (mean + torch.exp(0.5 * log_var) * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)).float()
    probe = probe_accuracy(mean.float().numpy(), labels.numpy(), test_fraction=PROBE_TEST_FRACTION, seed=seed)
    row = {
        f"{prefix}_mi": float(information.value),
        f"{prefix}_mi_se": float(information.standard_error),
        f"{prefix}_mi_shuffled": float(shuffled.value),
        f"{prefix}_probe": probe.accuracy,
        f"{prefix}_probe_lower": probe.lower,
        f"{prefix}_probe_upper": probe.upper,
    }
    if bound:
        row[f"{prefix}_mi_bound"] = information_lower_bound(draws.numpy(), labels.numpy(), seed=seed)
    return row


def information_lower_bound(features: np.ndarray, labels: np.ndarray, *, seed: int = 0,
                            test_fraction: float = PROBE_TEST_FRACTION) -> float:
    """The Barber-Agakov bound I(z; y) >= H(y) - E[-log r(y | z)], valid for any classifier r (Barber & Agakov
    2003). r is a standardized multinomial logistic regression whose L2 strength is chosen by 3-fold
    cross-validated log-loss on a stratified part of the (draw, label) pairs; the cross-entropy and the plug-in
    H(y) are taken on the other part, so the value is a held-out estimate of a lower bound: about 0 when the
    features carry nothing (r then falls back to the label frequencies), negative only by estimation noise or
    over-fitting. A linear r can miss information a nonlinear classifier would find (the bound stays valid)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(f"features and labels: expected shapes (N, D) and (N,), got {features.shape} and "
                         f"{labels.shape}")
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 else None
    train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=test_fraction,
                                                        random_state=seed, stratify=stratify)
    _, train_counts = np.unique(train_y, return_counts=True)
    folds = int(max(2, min(3, train_counts.min())))
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=BOUND_REGULARIZATION, cv=folds,
                                                                 scoring="neg_log_loss", max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and small-fold warnings of the candidate fits
        model.fit(train_x, train_y)
    probabilities = model.predict_proba(test_x)
    column = {label: index for index, label in enumerate(model.classes_)}
    picked = np.array([probabilities[i, column[label]] if label in column else 0.0 for i, label in enumerate(test_y)])
    cross_entropy = float(-np.mean(np.log(np.clip(picked, 1e-12, None))))
    _, test_counts = np.unique(test_y, return_counts=True)
    frequencies = test_counts / test_counts.sum()
    return float(-(frequencies * np.log(frequencies)).sum()) - cross_entropy


def prior_label_information(prior: Independent, labels: torch.Tensor, seed: int) -> float:
    """I_p(w; y) of the mixture sum_y p(y) p(w|y) with p(y) the frequencies of ``labels`` (``prior`` is p(w|y_n)
    for each n): the label information the prior's class components carry, nats."""
    mean, log_var = posterior_parameters(prior)
    generator = torch.Generator().manual_seed(seed)
    return float(label_mutual_information(mean.double(), log_var.double(), labels, generator=generator).value)


@dataclass(frozen=True)
class KLDecomposition:
    """E KL(q(w|x,y) || p(w|y)) split as I_q(w; x | y) + E_y KL(q(w|y) || p(w|y)) (nats, Monte-Carlo)."""

    kl: float
    information_beyond_label: float
    aggregate_mismatch: float
    analytic_kl: float
    information_ceiling: float


@torch.no_grad()
def conditional_prior_kl_decomposition(posterior: Independent, prior: Independent, labels: torch.Tensor, *,
                                       num_repeats: int = 4, seed: int = 0) -> KLDecomposition:
    """The conditional-prior surgery of the label latent's KL on a data set of N points (module docstring).

    With S = ``num_repeats`` draws w_{n,s} ~ q(w | x_n, y_n) per point,

        I_q(w; x | y)             ~ mean_{n,s} [log q(w_{n,s} | x_n, y_n) - log q(w_{n,s} | y_n)]
        E_y KL(q(w|y) || p(w|y))  ~ mean_{n,s} [log q(w_{n,s} | y_n) - log p(w_{n,s} | y_n)]

    with log q(w | y) = logsumexp_{m: y_m = y} log q(w | x_m, y_m) - log N_y evaluated exactly. Their sum is the
    Monte-Carlo estimate of E KL; ``analytic_kl`` is the closed-form mean beside it (a check of the estimate).
    Each log-ratio log q(w|x_n,y_n) - log q(w|y_n) is at most log N_{y_n}, so the plug-in I_q(w; x | y) is at most
    ``information_ceiling`` = mean_n log N_{y_n} (reached when the posteriors do not overlap).
    """
    if num_repeats < 1:
        raise ValueError(f"num_repeats: must be >= 1, got {num_repeats}")
    mean, log_var = (t.double() for t in posterior_parameters(posterior))
    check_posterior_parameters(mean, log_var)
    posterior64 = Independent(torch.distributions.Normal(mean, torch.exp(0.5 * log_var)), 1)
    prior_mean, prior_log_var = (t.double() for t in posterior_parameters(prior))
    prior64 = Independent(torch.distributions.Normal(prior_mean, torch.exp(0.5 * prior_log_var)), 1)
    generator = torch.Generator().manual_seed(seed)
    beyond, mismatch = [], []
    for _ in range(num_repeats):
        noise = torch.randn(mean.shape, generator=generator, dtype=torch.float64)
        w = mean + torch.exp(0.5 * log_var) * noise
        log_q_w_given_x = posterior64.log_prob(w)
        log_sum_class, _, class_sizes = grouped_mixture_log_sum(w, labels, mean, log_var, labels, marginal=False)
        log_q_w_given_y = log_sum_class - torch.log(class_sizes)
        beyond.append(log_q_w_given_x - log_q_w_given_y)
        mismatch.append(log_q_w_given_y - prior64.log_prob(w))
    information_beyond_label = float(torch.cat(beyond).mean())
    aggregate_mismatch = float(torch.cat(mismatch).mean())
    analytic = float(torch.distributions.kl_divergence(posterior64, prior64).mean())
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    ceiling = float(torch.log(counts.double())[inverse].mean())  # mean_n log N_{y_n}: the plug-in's largest value
    return KLDecomposition(information_beyond_label + aggregate_mismatch, information_beyond_label,
                           aggregate_mismatch, analytic, ceiling)


def prior_rule_accuracy(model_name: str, model: VariationalModel, means: torch.Tensor, labels: torch.Tensor
                        ) -> tuple[float, float, float]:
    """Accuracy of the rule argmax_y log p(mean_w(x) | y) that the label-conditional prior alone defines
    (uniform p(y)), with Wilson bounds: how well the prior's components classify the encoder's means."""
    num_classes = model.num_classes
    classes = torch.arange(num_classes)
    with torch.no_grad():
        prior = label_latent_prior(model_name, model, classes)  # batch (K,)
        log_density = prior.log_prob(means.unsqueeze(1).to(prior.mean.dtype))  # (N, K)
    correct = int((log_density.argmax(-1) == labels).sum())
    lower, upper = wilson_interval(correct, int(labels.shape[0]))
    return correct / int(labels.shape[0]), lower, upper


# ---------------------------------------------------------------------------------------------------------------------
# The independent classifier and the attribute swap
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class LabelClassifier:
    """A classifier of y from x, trained on the training split only (independent of every model of the run)."""

    pipeline: object
    heldout_accuracy: float
    heldout_lower: float
    heldout_upper: float
    kind: str

    def predict(self, x: torch.Tensor) -> np.ndarray:
        return self.pipeline.predict(x.reshape(x.shape[0], -1).double().numpy())


def train_label_classifier(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                           *, seed: int = 0) -> LabelClassifier:
    """Images: standardized multinomial logistic regression on the pixels. Vectors (the swiss roll): an MLP with two
    hidden layers of 64 units (the label is a nonlinear function of x). Accuracy with a Wilson interval on the
    held-out examples."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = train_x.reshape(train_x.shape[0], -1).double().numpy()
    if train_x.dim() > 2:
        kind = "logistic regression on pixels"
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5))
    else:
        kind = "MLP (64, 64) on x"
        pipeline = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=1500,
                                                                 random_state=seed))
    pipeline.fit(features, train_y.numpy())
    classifier = LabelClassifier(pipeline, math.nan, math.nan, math.nan, kind)
    correct = int((classifier.predict(test_x) == test_y.numpy()).sum())
    lower, upper = wilson_interval(correct, int(test_y.shape[0]))
    classifier.heldout_accuracy, classifier.heldout_lower, classifier.heldout_upper = (
        correct / int(test_y.shape[0]), lower, upper)
    return classifier


@dataclass(frozen=True)
class SwapResult:
    """Fraction of swapped decodes classified as the target label (with Wilson bounds) and as the original one."""

    success: float
    lower: float
    upper: float
    kept_original: float
    num_examples: int


def attribute_swap(decode_with_target: Callable[[torch.Tensor], torch.Tensor],
                   classify: Callable[[torch.Tensor], np.ndarray], original: torch.Tensor, target: torch.Tensor,
                   confidence: float = 0.95) -> SwapResult:
    """Decode every example with its target label (``decode_with_target(target)`` returns the decoded x), classify
    the results, and count how many land on the target and how many stay on the original label."""
    if original.shape != target.shape or original.dim() != 1:
        raise ValueError(f"original and target: expected equal 1-D label tensors, got {tuple(original.shape)} and "
                         f"{tuple(target.shape)}")
    if bool((original == target).any()):
        raise ValueError("target: every target label must differ from the original label")
    decoded = decode_with_target(target)
    predicted = np.asarray(classify(decoded))
    if predicted.shape != tuple(target.shape):
        raise ValueError(f"classify: expected {tuple(target.shape)} predictions, got shape {predicted.shape}")
    hits = int((predicted == target.numpy()).sum())
    kept = int((predicted == original.numpy()).sum())
    count = int(target.shape[0])
    lower, upper = wilson_interval(hits, count, confidence)
    return SwapResult(hits / count, lower, upper, kept / count, count)


def swap_decoder(model_name: str, model: VariationalModel, posteriors: Mapping[str, Independent], *,
                 mode: str, generator: torch.Generator, exchange_means: torch.Tensor | None = None,
                 exchange_labels: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``target -> decoded x`` for the attribute swap: the other latents at their posterior means, the label latent
    replaced by a draw from p(w | target) (``mode="prior"``) or by the posterior mean of a random held-out example
    of the target class (``mode="exchange"``); CondVAE / CondVAE-info decode with the target label."""
    roles = roles_of(model_name)
    means = {name: posterior_parameters(p)[0] for name, p in posteriors.items()}

    def decode(target: torch.Tensor) -> torch.Tensor:
        if roles.label_latent is None:
            return decode_mean(model_name, model, means, decoder_label=target)
        latents = dict(means)
        if mode == "prior":
            prior = label_latent_prior(model_name, model, target)
            noise = torch.randn(prior.mean.shape, generator=generator)
            latents[roles.label_latent] = (prior.mean + prior.stddev * noise).detach()
        elif mode == "exchange":
            donors = torch.empty_like(target)
            for label in torch.unique(target):
                candidates = torch.nonzero(exchange_labels == label).squeeze(1)
                places = torch.nonzero(target == label).squeeze(1)
                picks = torch.randint(len(candidates), (len(places),), generator=generator)
                donors[places] = candidates[picks]
            latents[roles.label_latent] = exchange_means[donors]
        else:
            raise ValueError(f"mode: expected 'prior' or 'exchange', got {mode!r}")
        return decode_mean(model_name, model, latents)

    return decode


# ---------------------------------------------------------------------------------------------------------------------
# All measures of one run
# ---------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def heldout_terms(model: VariationalModel, batch: Batch, *, repeats: int = 4, seed: int = 0) -> dict[str, float]:
    """The model's terms on a whole held-out split (eval mode), averaged over ``repeats`` draws of the latents."""
    model.eval()
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        totals: dict[str, float] = {}
        for _ in range(repeats):
            for name, value in model(batch).items():
                totals[name] = totals.get(name, 0.0) + float(value) / repeats
    finally:
        torch.set_rng_state(state)
    return totals


def measure_run(model_name: str, model: VariationalModel, dataset: DataSet, classifier: LabelClassifier | None, *,
                seed: int, kl_repeats: int = 4, options: Mapping | None = None,
                identity_classifier: LabelClassifier | None = None) -> dict[str, float]:
    """Every measure of one trained model on the held-out split (and DIVA's held-out domain); see the module doc.
    ``classifier`` judges the attribute swap (``None``: no swap); ``identity_classifier`` (optional) judges whether
    a swap kept the digit (``dataset.factors[:, 0]``); ``options`` are the model's options (for the roles)."""
    roles = roles_of(model_name, options)
    model = model.cpu().eval()
    heldout = dataset.split("validation")
    x, y, d = heldout.x, heldout.y, heldout.d
    num_classes = int(dataset.num_classes)
    generator = torch.Generator().manual_seed(10_007 * seed + 17)
    row: dict[str, float] = {}

    for name, value in heldout_terms(model, heldout, seed=seed).items():
        row[f"term_{name}"] = value

    posteriors = encode(model, x, y, d)
    random_label = torch.randint(num_classes, y.shape, generator=generator)
    posteriors_xonly = encode(model, x, random_label, d) if roles.encoder_sees_label else posteriors

    for role, latent in (("label", roles.label_latent), ("other", roles.other_latent),
                         ("domain", roles.domain_latent)):
        if latent is not None:
            row[f"{role}_active_units"], row[f"{role}_dims"] = active_units(posteriors[latent])
            row[f"{role}_kl"] = row.get(f"term_kl_{latent}", math.nan)

    row.update(information_and_probe("other", posteriors[roles.other_latent], y, seed))
    if roles.encoder_sees_label:
        row.update(information_and_probe("other_xonly", posteriors_xonly[roles.other_latent], y, seed))
    else:
        row.update({key.replace("other_", "other_xonly_", 1): value for key, value in row.items()
                    if key.startswith("other_") and key.split("_", 1)[1].startswith(("mi", "probe"))})

    if roles.label_latent is not None:
        label_posterior = posteriors[roles.label_latent]
        # With the true y as input (CSVAE) w can copy y; the x-only measures below say what it took from x.
        row.update(information_and_probe("label", label_posterior, y, seed))
        if roles.encoder_sees_label:
            row.update(information_and_probe("label_xonly", posteriors_xonly[roles.label_latent], y, seed))
        else:
            row.update({key.replace("label_", "label_xonly_", 1): value for key, value in row.items()
                        if key.startswith("label_") and key.split("_", 1)[1].startswith(("mi", "probe"))})
        prior = label_latent_prior(model_name, model, y)
        row["prior_label_information"] = prior_label_information(prior, y, seed)
        decomposition = conditional_prior_kl_decomposition(label_posterior, prior, y, num_repeats=kl_repeats,
                                                           seed=seed)
        row["label_kl_information_beyond_label"] = decomposition.information_beyond_label
        row["label_kl_aggregate_mismatch"] = decomposition.aggregate_mismatch
        row["label_kl_monte_carlo"] = decomposition.kl
        row["label_kl_closed_form"] = decomposition.analytic_kl
        row["label_kl_information_ceiling"] = decomposition.information_ceiling
        xonly_means = posterior_parameters(posteriors_xonly[roles.label_latent])[0]
        row["prior_rule_accuracy"], row["prior_rule_lower"], row["prior_rule_upper"] = prior_rule_accuracy(
            model_name, model, xonly_means, y)

    if roles.domain_latent is not None:
        row.update(information_and_probe("domain", posteriors[roles.domain_latent], y, seed))
        row.update(information_and_probe("label_domain", posteriors[roles.label_latent], d, seed, bound=False))

    has_decoder_label = model_name in ("condvae", "condvae_info")
    if classifier is not None and (roles.label_latent is not None or has_decoder_label):
        row.update(swap_measures(model_name, model, posteriors, roles, y, num_classes, classifier, generator,
                                 identity_classifier, dataset, heldout_index=dataset.splits["validation"]))

    if model_name == "diva":
        for split, prefix in (("test", "heldout_domain"), ("test_unseen", "heldout_unseen")):
            if split in dataset.splits:
                row.update(diva_heldout_domain(model, dataset, seed, split=split, prefix=prefix))
    return row


def swap_measures(model_name: str, model: VariationalModel, posteriors: Mapping[str, Independent],
                  roles: LatentRoles, y: torch.Tensor, num_classes: int, classifier: LabelClassifier,
                  generator: torch.Generator, identity_classifier: LabelClassifier | None, dataset: DataSet,
                  heldout_index: torch.Tensor) -> dict[str, float]:
    """The attribute swap and its ceiling (the reconstructions' own label accuracy), module docstring."""
    row: dict[str, float] = {}
    target = other_labels(y, num_classes, generator)
    means = {n: posterior_parameters(p)[0] for n, p in posteriors.items()}
    reconstruction = decode_mean(model_name, model, means, decoder_label=y)
    row["reconstruction_label_accuracy"] = float((classifier.predict(reconstruction) == y.numpy()).mean())
    row["swap_classifier_accuracy"] = classifier.heldout_accuracy
    row["swap_classifier_lower"], row["swap_classifier_upper"] = classifier.heldout_lower, classifier.heldout_upper
    decoder = swap_decoder(model_name, model, posteriors, mode="prior", generator=generator)
    swap = attribute_swap(decoder, classifier.predict, y, target)
    row.update({"swap_success": swap.success, "swap_success_lower": swap.lower, "swap_success_upper": swap.upper,
                "swap_kept_original": swap.kept_original})
    if identity_classifier is not None and dataset.factors is not None:
        digits = dataset.factors[heldout_index, 0]
        kept = identity_classifier.predict(decoder(target)) == digits.numpy()
        row["swap_identity_kept"] = float(kept.mean())
        row["identity_classifier_accuracy"] = identity_classifier.heldout_accuracy
    if roles.label_latent is not None:
        exchange = attribute_swap(
            swap_decoder(model_name, model, posteriors, mode="exchange", generator=generator,
                         exchange_means=means[roles.label_latent], exchange_labels=y),
            classifier.predict, y, target)
        row.update({"swap_exchange_success": exchange.success, "swap_exchange_lower": exchange.lower,
                    "swap_exchange_upper": exchange.upper})
    return row


def diva_heldout_domain(model: VariationalModel, dataset: DataSet, seed: int, *, split: str = "test",
                        prefix: str = "heldout_domain") -> dict[str, float]:
    """Accuracy on a held-out-domain split of (a) DIVA's own classifier q_omega(y | z_y) at the mean of z_y -- the
    paper's prediction; untrained when alpha_y = 0, since its only gradient is alpha_y times its log-likelihood --,
    (b) a logistic probe fitted on the z_y means of the training split, (c) the prior rule argmax_y p(z_y | y)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = dataset.split("train"), dataset.split(split)
    train_means = posterior_parameters(encode(model, train.x, train.y, train.d)["zy"])[0]
    test_means = posterior_parameters(encode(model, test.x, test.y, test.d)["zy"])[0]
    count = int(test.y.shape[0])
    row: dict[str, float] = {}
    with torch.no_grad():
        predicted = model.classifier_y(test_means).argmax(-1)
    correct = int((predicted == test.y).sum())
    row[f"{prefix}_classifier"] = correct / count
    row[f"{prefix}_classifier_lower"], row[f"{prefix}_classifier_upper"] = wilson_interval(correct, count)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train_means.numpy(), train.y.numpy())
    correct = int((probe.predict(test_means.numpy()) == test.y.numpy()).sum())
    row[f"{prefix}_probe"] = correct / count
    row[f"{prefix}_probe_lower"], row[f"{prefix}_probe_upper"] = wilson_interval(correct, count)
    accuracy, lower, upper = prior_rule_accuracy("diva", model, test_means, test.y)
    row[f"{prefix}_prior_rule"] = accuracy
    row[f"{prefix}_prior_rule_lower"], row[f"{prefix}_prior_rule_upper"] = lower, upper
    return row
