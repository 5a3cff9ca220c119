"""``elbocheck experiment kl-enough``: is the KL term to a label-conditional prior enough to put the label into w?

The question (project seed 000, after Klys, Snell & Zemel 2018, CSVAE, and Ilse et al. 2020, DIVA): both ELBOs
already hold a KL term to a label-conditional prior, KL(q(w | x, y) || p(w | y)) and KL(q(z_y | x) || p(z_y | y));
why add an auxiliary classifier (DIVA) or an adversary on the other latent (CSVAE)? The conditional-prior surgery
(``derivations/library/conditional_surgery.py``, ``elbocheck verify conditional_prior_surgery``) says

    E_{p_D(x,y)} KL(q(w|x,y) || p(w|y)) = I_q(w; x | y) + E_{p_D(y)} KL(q(w|y) || p(w|y)):

the term is zero for q(w|x,y) = p(w|y), so it never *rewards* label information in w (w gets what the prior's
class components carry), and nothing in the ELBO moves label information out of the other latent z (its KL charges
label information like any other, I(z; x, y) = I(z; y) + I(z; x | y)). This experiment measures what that means
for trained models, with and without the auxiliary terms, over several seeds.

Arms (:data:`ARMS`): CSVAE with and without its adversary (swiss roll; digits, 10 classes; digits, binary label in
the ``full`` preset), DIVA with (alpha_y, alpha_d) at the paper's (3500, 2000), at (0, 2000) and at (0, 0), CDVAE
(no classifier by design), CondVAE and CondVAE-info as references. Measures: :mod:`.kl_enough_measurements`.
Report, effect sizes and figures: :mod:`.kl_enough_report`.

Output folder::

    settings.json        the settings the results were produced with (a rerun must match them)
    results.csv          one row per finished run, appended and flushed as each run ends
    runs/ARM-seedS/      the trainer's run directory (config, checkpoint, logs) plus measures.json
    timing.json          wall time of each invocation
    report.md, *.png     written from results.csv by :func:`write_kl_enough_report`

A rerun with the same ``out_dir`` skips every run that has a row in ``results.csv``; a run that was killed while
training resumes from its last checkpoint.

Python API: ``run_kl_enough(out_dir, settings)`` with ``settings`` a :class:`Settings` or a preset name
(:data:`PRESETS`: ``small`` for notebooks and tests, ``default`` for about 10 minutes on 2 CPU cores, ``full`` for
a GPU), and ``write_kl_enough_report(out_dir)``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = [
    "ABLATION_PAIRS",
    "ARMS",
    "Arm",
    "AblationPair",
    "KLEnoughResult",
    "PRESETS",
    "Settings",
    "preset",
    "run_kl_enough",
    "write_kl_enough_report",
]

RESULTS_NAME = "results.csv"
SETTINGS_NAME = "settings.json"
TIMING_NAME = "timing.json"
RUNS_FOLDER = "runs"
MEASURES_NAME = "measures.json"
DATA_KEYS = ("swiss_roll", "digits", "digits_binary", "rotated_digits")


# ---------------------------------------------------------------------------------------------------------------------
# Arms and ablation pairs
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One model configuration: ``name`` (used in run ids), the registry ``model``, the data key, the model options
    that define the arm (network sizes come from the settings), and what auxiliary term it has."""

    name: str
    model: str
    data: str
    options: Mapping[str, Any]
    auxiliary: str
    title: str


PAPER_DIVA = {"alpha_y": 3500.0, "alpha_d": 2000.0}
CSVAE_PAPER = {"beta1": 20.0, "beta2": 1.0, "beta3": 0.2, "beta4": 10.0}

ARMS: dict[str, Arm] = {arm.name: arm for arm in (
    Arm("csvae_swiss_roll", "csvae", "swiss_roll", {**CSVAE_PAPER, "z_dim": 2, "w_dim_per_attribute": 2},
        "adversary q(y|z), beta4 = 10", "CSVAE, swiss roll, with adversary"),
    Arm("csvae_swiss_roll_no_adversary", "csvae", "swiss_roll",
        {**CSVAE_PAPER, "z_dim": 2, "w_dim_per_attribute": 2, "use_adversary": False},
        "none", "CSVAE, swiss roll, no adversary"),
    Arm("csvae_digits", "csvae", "digits", {**CSVAE_PAPER, "z_dim": 8, "w_dim_per_attribute": 2},
        "adversary q(y|z), beta4 = 10", "CSVAE, digits (10 classes), with adversary"),
    Arm("csvae_digits_no_adversary", "csvae", "digits",
        {**CSVAE_PAPER, "z_dim": 8, "w_dim_per_attribute": 2, "use_adversary": False},
        "none", "CSVAE, digits (10 classes), no adversary"),
    Arm("csvae_digits_binary", "csvae", "digits_binary", {**CSVAE_PAPER, "z_dim": 8, "w_dim_per_attribute": 2},
        "adversary q(y|z), beta4 = 10", "CSVAE, digits (y = digit >= 5), with adversary"),
    Arm("csvae_digits_binary_no_adversary", "csvae", "digits_binary",
        {**CSVAE_PAPER, "z_dim": 8, "w_dim_per_attribute": 2, "use_adversary": False},
        "none", "CSVAE, digits (y = digit >= 5), no adversary"),
    Arm("diva_paper", "diva", "rotated_digits", {**PAPER_DIVA, "zd_dim": 8, "zx_dim": 8, "zy_dim": 8},
        "alpha_y = 3500, alpha_d = 2000 (paper)", "DIVA, alpha_y = 3500, alpha_d = 2000"),
    Arm("diva_alpha_y0", "diva", "rotated_digits",
        {"alpha_y": 0.0, "alpha_d": 2000.0, "zd_dim": 8, "zx_dim": 8, "zy_dim": 8},
        "alpha_d = 2000 only", "DIVA, alpha_y = 0, alpha_d = 2000"),
    Arm("diva_no_classifiers", "diva", "rotated_digits",
        {"alpha_y": 0.0, "alpha_d": 0.0, "zd_dim": 8, "zx_dim": 8, "zy_dim": 8},
        "none", "DIVA, alpha_y = alpha_d = 0 (the ELBO alone)"),
    Arm("cdvae_digits", "cdvae", "digits", {"zl_dim": 10, "zu_dim": 8},
        "none (by design)", "CDVAE, digits (no classifier by design)"),
    Arm("condvae_digits", "condvae", "digits", {"latent_dim": 8}, "none", "CondVAE, digits (decoder sees y)"),
    Arm("condvae_info_digits", "condvae_info", "digits", {"latent_dim": 8, "adversary_weight": 1.0},
        "adversary r(y|z), rho = 1", "CondVAE-info, digits (adversary on z)"),
)}


@dataclass(frozen=True)
class AblationPair:
    """Two arms that differ by the auxiliary term: ``with_term`` minus ``without_term`` is the effect reported;
    ``primary_measures`` are the measures compared, ``short`` the name in figures."""

    name: str
    short: str
    with_term: str
    without_term: str
    primary_measures: tuple[str, ...]
    note: str = ""


CSVAE_MEASURES = ("other_mi_bound", "other_probe", "other_probe_mlp", "other_xonly_probe", "swap_success",
                  "swap_kept_original", "label_xonly_mi_bound", "label_xonly_probe", "term_kl_z", "term_kl_w",
                  "term_reconstruction", "term_elbo")
DIVA_MEASURES = ("label_mi_bound", "label_probe", "prior_label_information", "other_mi_bound", "other_probe",
                 "other_probe_mlp", "heldout_domain_probe", "swap_success", "swap_exchange_success", "term_kl_zy",
                 "term_reconstruction", "term_elbo")
CONDVAE_MEASURES = ("other_mi_bound", "other_mi", "other_probe", "other_probe_mlp", "other_xonly_probe",
                    "swap_success", "term_kl_z", "term_reconstruction", "term_elbo")
ABLATION_PAIRS: tuple[AblationPair, ...] = (
    AblationPair("CSVAE adversary, swiss roll", "CSVAE swiss roll", "csvae_swiss_roll",
                 "csvae_swiss_roll_no_adversary", CSVAE_MEASURES),
    AblationPair("CSVAE adversary, digits (10 classes)", "CSVAE digits", "csvae_digits", "csvae_digits_no_adversary",
                 CSVAE_MEASURES),
    AblationPair("CSVAE adversary, digits (binary)", "CSVAE digits binary", "csvae_digits_binary",
                 "csvae_digits_binary_no_adversary", CSVAE_MEASURES),
    AblationPair("DIVA alpha_y (paper vs 0)", "DIVA alpha_y", "diva_paper", "diva_alpha_y0", DIVA_MEASURES),
    AblationPair("DIVA alpha_y and alpha_d (paper vs 0)", "DIVA alpha_y, alpha_d", "diva_paper",
                 "diva_no_classifiers", DIVA_MEASURES),
    AblationPair("CondVAE-info adversary vs CondVAE", "CondVAE-info", "condvae_info_digits", "condvae_digits",
                 CONDVAE_MEASURES,
                 "the arms also differ in the encoder's input: q(z|x) (CondVAE-info) vs q(z|x,y) (CondVAE)"),
)

DEFAULT_ARMS = ("csvae_swiss_roll", "csvae_swiss_roll_no_adversary", "csvae_digits", "csvae_digits_no_adversary",
                "diva_paper", "diva_alpha_y0", "diva_no_classifiers", "cdvae_digits", "condvae_digits",
                "condvae_info_digits")


# ---------------------------------------------------------------------------------------------------------------------
# Settings and presets
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Everything that defines the experiment. Presets: :data:`PRESETS` / :func:`preset`; change fields with
    ``dataclasses.replace(settings, ...)`` or :meth:`replace`.

    Run-defining fields (a rerun into the same folder must match them, see :data:`NOT_RUN_DEFINING`): epochs per
    data set, batch size, learning rate, network, data sizes, the held-out domain, ``kl_repeats``. ``seeds`` and
    ``arms`` may grow between reruns; ``workers``, ``torch_threads``, ``device`` and ``progress`` only say how to run.
    """

    preset: str = "custom"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    arms: tuple[str, ...] = DEFAULT_ARMS
    epochs_swiss_roll: int = 80
    epochs_digits: int = 80
    epochs_rotated_digits: int = 80
    batch_size: int = 64
    lr: float = 1e-3
    hidden_dim: int = 128
    num_hidden_layers: int = 2
    architecture: str = "mlp"
    swiss_roll_examples: int = 2000
    digits_size: int | None = None
    rotated_images_per_class: int = 30
    held_out_domain: int = 75
    kl_repeats: int = 4
    device: str = "cpu"
    workers: int = 2
    torch_threads: int = 1
    progress: bool = True

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def epochs_for(self, data: str) -> int:
        return {"swiss_roll": self.epochs_swiss_roll, "digits": self.epochs_digits,
                "digits_binary": self.epochs_digits, "rotated_digits": self.epochs_rotated_digits}[data]

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds):
            raise ValueError(f"seeds: expected a non-empty tuple of ints >= 0, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: repeated seed in {self.seeds!r}")
        if not self.arms:
            raise ValueError("arms: expected at least one arm")
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"arms: unknown arm(s) {', '.join(map(repr, unknown))}; valid choices: {', '.join(ARMS)}")
        for name in ("epochs_swiss_roll", "epochs_digits", "epochs_rotated_digits", "batch_size", "hidden_dim",
                     "swiss_roll_examples", "rotated_images_per_class", "kl_repeats", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if isinstance(self.num_hidden_layers, bool) or not isinstance(self.num_hidden_layers, int) \
                or self.num_hidden_layers < 0:
            raise ValueError(f"num_hidden_layers: expected an int >= 0, got {self.num_hidden_layers!r}")
        if isinstance(self.torch_threads, bool) or not isinstance(self.torch_threads, int) or self.torch_threads < 0:
            raise ValueError(f"torch_threads: expected an int >= 0 (0 keeps torch's default), got "
                             f"{self.torch_threads!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr: expected a number > 0, got {self.lr!r}")
        if self.digits_size is not None and not (isinstance(self.digits_size, int) and 50 <= self.digits_size <= 1797):
            raise ValueError(f"digits_size: expected None or an int in [50, 1797], got {self.digits_size!r}")
        if self.swiss_roll_examples < 50:
            raise ValueError(f"swiss_roll_examples: need at least 50 points, got {self.swiss_roll_examples}")
        if self.rotated_images_per_class < 2:
            raise ValueError(f"rotated_images_per_class: need at least 2, got {self.rotated_images_per_class}")
        from elbocheck.models.data.rotated_digits import DOMAIN_ANGLES
        from elbocheck.models.networks import ARCHITECTURES
        from elbocheck.models.trainer import resolve_device

        if self.held_out_domain not in DOMAIN_ANGLES:
            raise ValueError(f"held_out_domain: expected one of {', '.join(map(str, DOMAIN_ANGLES))}, got "
                             f"{self.held_out_domain!r}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: expected one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}")
        resolve_device(self.device)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["seeds"], data["arms"] = list(self.seeds), list(self.arms)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Settings":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for key in ("seeds", "arms"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


NOT_RUN_DEFINING = ("preset", "seeds", "arms", "workers", "torch_threads", "device", "progress")

PRESETS: dict[str, Settings] = {
    # A notebook or a test: seconds per run, two seeds (so that every effect size has an interval).
    "small": Settings(
        preset="small", seeds=(0, 1), epochs_swiss_roll=6, epochs_digits=4, epochs_rotated_digits=4, batch_size=64,
        hidden_dim=32, num_hidden_layers=1, swiss_roll_examples=400, digits_size=400, rotated_images_per_class=6,
        kl_repeats=2, workers=1, torch_threads=1,
    ),
    # About 10 minutes on 2 CPU cores (5 seeds x 10 arms; measured 5 min 9 s on an otherwise idle 2-core machine):
    # two worker processes of one torch thread each. Tiny networks gain nothing from a second intra-op thread; on 2
    # cores, one process with two torch threads trained these models 5-20 times slower than with one.
    "default": Settings(preset="default"),
    # A GPU: all the data, larger networks (convolutional for images), ten seeds, the binary-label digits arms.
    "full": Settings(
        preset="full", seeds=tuple(range(10)), arms=DEFAULT_ARMS + ("csvae_digits_binary",
                                                                   "csvae_digits_binary_no_adversary"),
        epochs_swiss_roll=300, epochs_digits=200, epochs_rotated_digits=200, hidden_dim=256, num_hidden_layers=2,
        architecture="auto", swiss_roll_examples=4000, digits_size=None, rotated_images_per_class=100,
        kl_repeats=8, device="auto", workers=1, torch_threads=0,
    ),
}


def preset(name: str) -> Settings:
    """The preset ``name`` (``small``, ``default`` or ``full``)."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; valid choices: {', '.join(PRESETS)}")
    return PRESETS[name]


# ---------------------------------------------------------------------------------------------------------------------
# Columns of results.csv
# ---------------------------------------------------------------------------------------------------------------------
IDENTITY_COLUMNS: dict[str, str] = {
    "run_id": "ARM-seedS, the run's folder under runs/",
    "arm": "the arm (model configuration), see the arms table",
    "model": "registry name of the model",
    "data": "data key: swiss_roll, digits, digits_binary (y = digit >= 5), rotated_digits",
    "auxiliary": "the auxiliary term the arm trains with (none: the ELBO's terms only)",
    "seed": "seed of the data split, the initialisation and the measurements",
    "epochs": "training epochs",
    "num_classes": "K, the number of classes of y",
    "label_entropy": "H(y) of the held-out labels, nats: the largest possible I(.; y)",
    "majority_class_frequency": "frequency of the most common held-out class: the chance level of a probe",
    "label_latent": "the latent meant to carry y (w, zy, zl; empty for CondVAE models, whose decoder sees y)",
    "other_latent": "the latent meant not to carry y (z, zx, zu)",
    "num_heldout": "held-out (validation) examples measured",
    "train_seconds": "wall time of training",
    "measure_seconds": "wall time of the measurements",
}

MEASURE_COLUMNS: dict[str, str] = {
    "term_reconstruction": "held-out E_q log p(x | latents), nats (mean over the split, 4 draws)",
    "term_elbo": "held-out true ELBO (reconstruction minus the unweighted KLs, + log p(y) for CSVAE), nats",
    "term_objective": "held-out training objective (weights and auxiliary terms included)",
    "term_kl_w": "held-out KL(q(w|x,y) || p(w|y)) (CSVAE)",
    "term_kl_z": "held-out KL(q(z|.) || p(z)) (CSVAE, CondVAE, CondVAE-info)",
    "term_kl_zy": "held-out KL(q(z_y|x) || p(z_y|y)) (DIVA)",
    "term_kl_zx": "held-out KL(q(z_x|x) || p(z_x)) (DIVA)",
    "term_kl_zd": "held-out KL(q(z_d|x) || p(z_d|d)) (DIVA)",
    "term_kl_zl": "held-out KL(q(z_l|x) || p(z_l|c)) (CDVAE)",
    "term_kl_zu": "held-out KL(q(z_u|x) || p(z_u)) (CDVAE)",
    "term_log_prior_y": "log p(y) (CSVAE)",
    "term_classifier_y": "held-out E log q_omega(y | z_y) (DIVA; reported even when alpha_y = 0)",
    "term_classifier_d": "held-out E log q_omega(d | z_d) (DIVA)",
    "term_adversary": "held-out adversary cross-entropy E[-log q(y|z)] (CSVAE, CondVAE-info)",
    "term_adversary_entropy": "held-out entropy of the adversary's prediction (CSVAE)",
    "label_mi": "plug-in I(label latent; y) under the model's own encoder (true y input where it takes y), nats",
    "label_mi_se": "Monte-Carlo standard error of label_mi",
    "label_mi_shuffled": "the same estimator with permuted labels: its bias floor",
    "label_mi_bound": "Barber-Agakov lower bound on I(label latent; y) from posterior draws (held-out: H(y) minus the "
                      "cross-entropy of a logistic regression), encoder's own input, nats",
    "label_probe": "held-out logistic-probe accuracy of y from the label latent's means",
    "label_probe_lower": "Wilson 95% lower bound of label_probe",
    "label_probe_upper": "Wilson 95% upper bound of label_probe",
    "label_xonly_mi": "I(label latent; y) with the encoder fed a random label (information from x only); "
                      "= label_mi for encoders of x alone",
    "label_xonly_mi_se": "Monte-Carlo standard error of label_xonly_mi",
    "label_xonly_mi_shuffled": "label_xonly_mi with permuted labels",
    "label_xonly_mi_bound": "Barber-Agakov lower bound on I(label latent; y) with the encoder fed a random label "
                            "(from x only), nats",
    "label_xonly_probe": "probe accuracy of y from the x-only label-latent means",
    "label_xonly_probe_lower": "Wilson 95% lower bound of label_xonly_probe",
    "label_xonly_probe_upper": "Wilson 95% upper bound of label_xonly_probe",
    "prior_label_information": "I_p(w; y) carried by the prior's class components p(w|y), nats",
    "label_kl": "E KL(q(w|x,y) || p(w|y)) of the label latent on the held-out split (closed form), nats",
    "label_kl_information_beyond_label": "I_q(w; x | y): the part of label_kl for information about x beyond y",
    "label_kl_aggregate_mismatch": "E_y KL(q(w|y) || p(w|y)): the part of label_kl for the class-conditional "
                                   "aggregate's mismatch to the prior",
    "label_kl_monte_carlo": "Monte-Carlo sum of the two parts (agrees with label_kl up to sampling error)",
    "label_kl_information_ceiling": "mean over held-out points of log N_y (their class size): the largest value the "
                                    "plug-in I_q(w; x | y) can take",
    "prior_rule_accuracy": "held-out accuracy of argmax_y p(mean of w from x only | y): the prior's own classifier",
    "prior_rule_lower": "Wilson 95% lower bound of prior_rule_accuracy",
    "prior_rule_upper": "Wilson 95% upper bound of prior_rule_accuracy",
    "other_mi": "plug-in I(other latent; y) (true y input where the encoder takes it): the leak, nats",
    "other_mi_se": "Monte-Carlo standard error of other_mi",
    "other_mi_shuffled": "other_mi with permuted labels: the estimator's bias floor",
    "other_mi_bound": "Barber-Agakov lower bound on I(other latent; y) from posterior draws (held-out: H(y) minus the "
                      "cross-entropy of a logistic regression): the leak, nats",
    "other_probe": "held-out logistic-probe accuracy of y from the other latent's means (the leak)",
    "other_probe_lower": "Wilson 95% lower bound of other_probe",
    "other_probe_upper": "Wilson 95% upper bound of other_probe",
    "other_probe_mlp": "held-out accuracy of an MLP probe (64 hidden units, the adversaries' capacity) on draws of "
                       "the other latent: what an adversary sees",
    "other_probe_mlp_lower": "Wilson 95% lower bound of other_probe_mlp",
    "other_probe_mlp_upper": "Wilson 95% upper bound of other_probe_mlp",
    "other_xonly_mi": "I(other latent; y) with the encoder fed a random label; = other_mi for encoders of x alone",
    "other_xonly_mi_se": "Monte-Carlo standard error of other_xonly_mi",
    "other_xonly_mi_shuffled": "other_xonly_mi with permuted labels",
    "other_xonly_probe": "probe accuracy of y from the other latent encoded with a random label",
    "other_xonly_probe_lower": "Wilson 95% lower bound of other_xonly_probe",
    "other_xonly_probe_upper": "Wilson 95% upper bound of other_xonly_probe",
    "domain_latent_mi": "I(z_d; y) (DIVA): label information in the domain latent, nats",
    "domain_latent_mi_se": "Monte-Carlo standard error of domain_latent_mi",
    "domain_latent_mi_shuffled": "domain_latent_mi with permuted labels",
    "domain_latent_probe": "probe accuracy of y from z_d (DIVA)",
    "domain_latent_probe_lower": "Wilson 95% lower bound of domain_latent_probe",
    "domain_latent_probe_upper": "Wilson 95% upper bound of domain_latent_probe",
    "label_domain_mi": "I(z_y; d) (DIVA): domain information in the class latent, nats",
    "label_domain_mi_se": "Monte-Carlo standard error of label_domain_mi",
    "label_domain_mi_shuffled": "label_domain_mi with permuted domains",
    "label_domain_probe": "probe accuracy of d from z_y (DIVA)",
    "label_domain_probe_lower": "Wilson 95% lower bound of label_domain_probe",
    "label_domain_probe_upper": "Wilson 95% upper bound of label_domain_probe",
    "swap_classifier_accuracy": "held-out accuracy of the independent classifier of y from x (real data)",
    "swap_classifier_lower": "Wilson 95% lower bound of swap_classifier_accuracy",
    "swap_classifier_upper": "Wilson 95% upper bound of swap_classifier_accuracy",
    "reconstruction_label_accuracy": "fraction of reconstructions (no swap) the classifier labels with the true y",
    "swap_success": "fraction of swapped decodes (label latent from p(w|y'), or decoder label y') classified as y'",
    "swap_success_lower": "Wilson 95% lower bound of swap_success",
    "swap_success_upper": "Wilson 95% upper bound of swap_success",
    "swap_kept_original": "fraction of swapped decodes still classified as the original y",
    "swap_exchange_success": "swap success with the label latent's posterior mean of a held-out example of class y'",
    "swap_exchange_lower": "Wilson 95% lower bound of swap_exchange_success",
    "swap_exchange_upper": "Wilson 95% upper bound of swap_exchange_success",
    "heldout_domain_classifier": "DIVA: accuracy on the held-out domain of its own q_omega(y | z_y) "
                                 "(untrained when alpha_y = 0)",
    "heldout_domain_classifier_lower": "Wilson 95% lower bound",
    "heldout_domain_classifier_upper": "Wilson 95% upper bound",
    "heldout_domain_probe": "DIVA: held-out-domain accuracy of a logistic probe fitted on z_y means of the "
                            "training domains",
    "heldout_domain_probe_lower": "Wilson 95% lower bound",
    "heldout_domain_probe_upper": "Wilson 95% upper bound",
    "heldout_domain_prior_rule": "DIVA: held-out-domain accuracy of argmax_y p(z_y mean | y)",
    "heldout_domain_prior_rule_lower": "Wilson 95% lower bound",
    "heldout_domain_prior_rule_upper": "Wilson 95% upper bound",
}

COLUMNS: tuple[str, ...] = (*IDENTITY_COLUMNS, *MEASURE_COLUMNS)


# ---------------------------------------------------------------------------------------------------------------------
# Data, classifier and one run (these run in worker processes)
# ---------------------------------------------------------------------------------------------------------------------
_DATA_CACHE: dict = {}
_CLASSIFIER_CACHE: dict = {}


def load_arm_data(data: str, settings: Settings, seed: int):
    """The data set of ``data`` for ``seed`` (which fixes the subset and the split), cached per process."""
    from elbocheck.models import DataSet, load_dataset

    key = (data, seed, settings.swiss_roll_examples, settings.digits_size, settings.rotated_images_per_class,
           settings.held_out_domain)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    if data == "swiss_roll":
        dataset = load_dataset("swiss_roll", num_examples=settings.swiss_roll_examples, seed=seed)
    elif data in ("digits", "digits_binary"):
        dataset = load_dataset("digits", size=settings.digits_size, seed=seed)
        if data == "digits_binary":
            dataset = DataSet(
                name="digits_binary", x=dataset.x, y=(dataset.y >= 5).long(), likelihood=dataset.likelihood,
                splits=dataset.splits, num_levels=dataset.num_levels, num_classes=2,
                class_names=("digit 0-4", "digit 5-9"),
                description="scikit-learn digits with the binary label y = digit >= 5",
                options={**dataset.options, "label": "digit >= 5"},
            )
    elif data == "rotated_digits":
        dataset = load_dataset("rotated_digits", images_per_class=settings.rotated_images_per_class,
                               held_out_domain=settings.held_out_domain, seed=seed)
    else:
        raise ValueError(f"data: unknown data key {data!r}; valid choices: {', '.join(DATA_KEYS)}")
    _DATA_CACHE[key] = dataset
    return dataset


def label_classifier_for(data: str, settings: Settings, seed: int):
    """The independent classifier of y from x for the attribute swap, trained on the training split, cached."""
    from .kl_enough_measurements import train_label_classifier

    key = (data, seed, settings.swiss_roll_examples, settings.digits_size, settings.rotated_images_per_class,
           settings.held_out_domain)
    if key not in _CLASSIFIER_CACHE:
        dataset = load_arm_data(data, settings, seed)
        train, heldout = dataset.split("train"), dataset.split("validation")
        _CLASSIFIER_CACHE[key] = train_label_classifier(train.x, train.y, heldout.x, heldout.y, seed=seed)
    return _CLASSIFIER_CACHE[key]


def run_id(arm: str, seed: int) -> str:
    return f"{arm}-seed{seed}"


def train_and_measure(arm_name: str, seed: int, settings: Settings, out_dir: str) -> dict:
    """Train one arm for one seed into ``out_dir/runs/ARM-seedS`` (resuming a killed run from its checkpoint),
    measure it, write ``measures.json`` beside the trainer's files, and return the CSV row."""
    import torch

    from elbocheck.models import TrainConfig, Trainer
    from elbocheck.models.trainer import CHECKPOINT_NAME

    from .kl_enough_measurements import measure_run, roles_of

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    arm = ARMS[arm_name]
    dataset = load_arm_data(arm.data, settings, seed)
    classifier = label_classifier_for(arm.data, settings, seed)
    run_dir = Path(out_dir) / RUNS_FOLDER / run_id(arm_name, seed)
    base_data = "digits" if arm.data == "digits_binary" else arm.data
    config = TrainConfig(
        model=arm.model, data=base_data, epochs=settings.epochs_for(arm.data), batch_size=settings.batch_size,
        lr=settings.lr, seed=seed, device=settings.device, progress=False,
        model_options={**arm.options, "hidden_dim": settings.hidden_dim,
                       "num_hidden_layers": settings.num_hidden_layers, "architecture": settings.architecture},
        data_options=dict(dataset.options),
    )
    start = time.perf_counter()
    resume = (run_dir / CHECKPOINT_NAME).is_file()
    result = Trainer(config, run_dir, dataset=dataset, resume=resume).fit()
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(converge|Maximum iterations).*")  # sklearn probes
        measures = measure_run(arm.model, result.model, dataset, classifier, seed=seed,
                               kl_repeats=settings.kl_repeats)
    measure_seconds = time.perf_counter() - start
    roles = roles_of(arm.model)
    heldout_y = dataset.split("validation").y
    frequencies = torch.bincount(heldout_y).double() / heldout_y.numel()
    frequencies = frequencies[frequencies > 0]
    row = {
        "run_id": run_id(arm_name, seed), "arm": arm_name, "model": arm.model, "data": arm.data,
        "auxiliary": arm.auxiliary, "seed": seed, "epochs": config.epochs, "num_classes": int(dataset.num_classes),
        "label_entropy": float(-(frequencies * frequencies.log()).sum()),
        "majority_class_frequency": float(frequencies.max()),
        "label_latent": roles.label_latent or "", "other_latent": roles.other_latent,
        "num_heldout": int(heldout_y.numel()), "train_seconds": round(train_seconds, 3),
        "measure_seconds": round(measure_seconds, 3), **measures,
    }
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise RuntimeError(f"kl-enough: measures without a column: {', '.join(unknown)}")
    (run_dir / MEASURES_NAME).write_text(json.dumps({"arm": dataclasses.asdict(arm), "row": row}, indent=2,
                                                    default=str) + "\n")
    return row


def _initialize_worker(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------------------
# The results file and the settings check
# ---------------------------------------------------------------------------------------------------------------------
def read_results(out_dir: str | Path) -> list[dict]:
    """The rows of ``results.csv`` with numbers parsed (empty cells -> NaN for measures)."""
    path = Path(out_dir) / RESULTS_NAME
    if not path.is_file():
        return []
    text_columns = {"run_id", "arm", "model", "data", "auxiliary", "label_latent", "other_latent"}
    rows = []
    with path.open(newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key in text_columns:
                    row[key] = value
                elif key in ("seed", "epochs", "num_classes", "num_heldout"):
                    row[key] = int(value)
                else:
                    row[key] = float(value) if value not in ("", None) else math.nan
            rows.append(row)
    return rows


def _append_row(path: Path, row: Mapping[str, Any]) -> None:
    new_file = not path.is_file()
    if not new_file:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), None)
        if header is not None and tuple(header) != COLUMNS:
            raise ValueError(f"out: {path} was written with other columns (an older version?); choose another --out")
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, restval="", extrasaction="raise")
        if new_file:
            writer.writeheader()
        writer.writerow({key: ("" if isinstance(value, float) and math.isnan(value) else value)
                         for key, value in row.items()})
        handle.flush()
        os.fsync(handle.fileno())


def _check_settings_match(out_dir: Path, settings: Settings) -> None:
    path = out_dir / SETTINGS_NAME
    if not path.is_file():
        return
    stored = json.loads(path.read_text())
    current = settings.to_json()
    differing = sorted(key for key in current if key not in NOT_RUN_DEFINING and stored.get(key) != current[key])
    if differing:
        details = ", ".join(f"{key} = {stored.get(key)!r} there, {current[key]!r} now" for key in differing)
        raise ValueError(f"out: {out_dir} holds results of other settings ({details}); rerun with the same settings "
                         f"(preset {stored.get('preset')!r}) or choose another --out")


# ---------------------------------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class KLEnoughResult:
    """What :func:`run_kl_enough` did: the output files, the rows, and how many runs it trained or reused."""

    out_dir: Path
    results_csv: Path
    report: Path | None
    figures: list[Path]
    rows: list[dict]
    runs_trained: int
    runs_skipped: int
    wall_seconds: float
    failures: list[str] = field(default_factory=list)


def run_kl_enough(out_dir: str | Path, settings: Settings | str = "default", *, progress: bool | None = None,
                  write_report: bool = True) -> KLEnoughResult:
    """Run every (arm, seed) of ``settings`` not already in ``out_dir/results.csv``, appending one row per run as it
    finishes, then write the report and figures from the CSV.

    ``settings``: a :class:`Settings` or a preset name (``small``, ``default``, ``full``). ``progress`` overrides
    ``settings.progress`` (a tqdm bar over the runs). A run that fails is reported in ``failures`` and the others
    go on.
    """
    from tqdm import tqdm

    if isinstance(settings, str):
        settings = preset(settings)
    if not isinstance(settings, Settings):
        raise ValueError(f"settings: expected a Settings or a preset name, got {type(settings).__name__}")
    settings.validate()
    show_progress = settings.progress if progress is None else bool(progress)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_settings_match(out_dir, settings)
    (out_dir / SETTINGS_NAME).write_text(json.dumps(settings.to_json(), indent=2) + "\n")
    results_path = out_dir / RESULTS_NAME
    done = {row["run_id"] for row in read_results(out_dir)}
    jobs = [(arm, seed) for seed in settings.seeds for arm in settings.arms if run_id(arm, seed) not in done]
    skipped = len(settings.seeds) * len(settings.arms) - len(jobs)
    failures: list[str] = []
    trained = 0
    bar = tqdm(total=len(jobs), desc="kl-enough runs", unit="run", disable=not show_progress, dynamic_ncols=True)
    if skipped and show_progress:
        tqdm.write(f"kl-enough: {skipped} run(s) already in {results_path}; skipping them")

    def finished(job: tuple[str, int], outcome: dict | BaseException) -> None:
        nonlocal trained
        if isinstance(outcome, BaseException):
            message = f"{run_id(*job)}: {type(outcome).__name__}: {outcome}"
            failures.append(message)
            tqdm.write(f"kl-enough: run failed: {message}")
        else:
            _append_row(results_path, outcome)
            trained += 1
            bar.set_postfix_str(f"{run_id(*job)} done", refresh=False)
        bar.update(1)

    import torch

    threads = torch.get_num_threads()
    try:
        if settings.workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                try:
                    outcome: dict | BaseException = train_and_measure(job[0], job[1], settings, str(out_dir))
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as error:  # noqa: BLE001 - recorded, the other runs go on
                    outcome = error
                finished(job, outcome)
        else:
            _run_in_processes(jobs, settings, out_dir, finished)
    finally:
        bar.close()
        torch.set_num_threads(threads)  # runs in this process set it; leave the caller's setting as it was
    wall_seconds = time.perf_counter() - start
    _record_timing(out_dir, settings, wall_seconds, trained, skipped, failures)
    report, figures = None, []
    if write_report and read_results(out_dir):
        from .kl_enough_report import write_kl_enough_report

        report = write_kl_enough_report(out_dir)
        figures = sorted(out_dir.glob("*.png"))
    return KLEnoughResult(out_dir, results_path, report, figures, read_results(out_dir), trained, skipped,
                          wall_seconds, failures)


def _run_in_processes(jobs: Sequence[tuple[str, int]], settings: Settings, out_dir: Path, finished) -> None:
    """Runs in ``settings.workers`` spawned processes (fork would copy torch's thread pools); rows are written by
    this process as each run finishes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(settings.workers, len(jobs)), mp_context=context,
                             initializer=_initialize_worker, initargs=(settings.torch_threads,)) as pool:
        futures = {pool.submit(train_and_measure, arm, seed, settings, str(out_dir)): (arm, seed)
                   for arm, seed in jobs}
        try:
            for future in as_completed(futures):
                error = future.exception()
                finished(futures[future], error if error is not None else future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _record_timing(out_dir: Path, settings: Settings, wall_seconds: float, trained: int, skipped: int,
                   failures: list[str]) -> None:
    path = out_dir / TIMING_NAME
    history = json.loads(path.read_text()) if path.is_file() else []
    history.append({"preset": settings.preset, "wall_seconds": round(wall_seconds, 2), "runs_trained": trained,
                    "runs_skipped": skipped, "failures": len(failures), "workers": settings.workers,
                    "torch_threads": settings.torch_threads, "cpu_count": os.cpu_count(),
                    "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")})
    path.write_text(json.dumps(history, indent=2) + "\n")


def write_kl_enough_report(out_dir: str | Path) -> Path:
    """Write ``report.md`` and the figures from ``out_dir/results.csv`` (see :mod:`.kl_enough_report`)."""
    from .kl_enough_report import write_kl_enough_report as write

    return write(out_dir)
