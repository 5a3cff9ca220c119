"""The report of ``elbocheck experiment kl-enough``: effect sizes, figures and a Markdown report, all computed from
``results.csv`` (so the report can be rewritten from the CSV alone: :func:`write_kl_enough_report`).

Everything the report asserts is generated from the measured numbers by rules it states:

* an effect of an auxiliary term is *resolved* when the 95% Welch t-interval (over seeds) of the difference
  "with the term minus without it" excludes 0 (:func:`.effect_sizes.difference_in_means`);
* a latent *carries y* when the Barber-Agakov bound on I(latent; y) -- a held-out classifier on posterior draws
  beating the label frequencies -- exceeds 5% of H(y) in every seed, and *carries little of y* otherwise;
* the plug-in I(latent; y) is called *bias-dominated* when its value for permuted labels exceeds a quarter of H(y)
  in some seed (at H(y) the posteriors do not overlap at all): effects on it are then not used for the answer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .effect_sizes import DifferenceEstimate, MeanEstimate, difference_in_means, mean_interval
from .kl_enough import (
    ABLATION_PAIRS,
    ARMS,
    IDENTITY_COLUMNS,
    MEASURE_COLUMNS,
    RESULTS_NAME,
    SETTINGS_NAME,
    TIMING_NAME,
    AblationPair,
    read_results,
)

REPORT_NAME = "report.md"
EFFECTS_NAME = "effect_sizes.csv"
DERIVATION_PATH = "derivations/library/conditional_surgery.py"
DERIVATION_NAME = "conditional_prior_surgery"
SATURATION_FRACTION = 0.25
CARRIES_FRACTION = 0.05
# plug-in measure -> its permuted-label column (to detect a bias-dominated value)
SHUFFLED_COLUMN = {"other_mi": "other_mi_shuffled", "label_mi": "label_mi_shuffled",
                   "label_xonly_mi": "label_xonly_mi_shuffled", "other_xonly_mi": "other_xonly_mi_shuffled"}
FIGURES = {
    "information": "fig_label_information.png",
    "probes": "fig_probes.png",
    "swap": "fig_swap.png",
    "kl": "fig_kl_decomposition.png",
    "effects": "fig_effect_sizes.png",
    "diva": "fig_diva_heldout_domain.png",
}

MEASURE_LABELS = {
    "other_probe": "probe(other latent -> y), logistic, accuracy",
    "other_probe_mlp": "probe(other latent -> y), MLP on draws, accuracy",
    "other_mi": "plug-in I(other latent; y), nats",
    "other_mi_bound": "I(other latent; y) >= (Barber-Agakov), nats",
    "other_xonly_probe": "probe(other latent -> y), encoder given a random label, accuracy",
    "label_mi": "plug-in I(label latent; y), nats",
    "label_mi_bound": "I(label latent; y) >= (Barber-Agakov), nats",
    "label_probe": "probe(label latent -> y), accuracy",
    "label_xonly_mi": "plug-in I(label latent; y) from x only, nats",
    "label_xonly_mi_bound": "I(label latent; y) >= from x only (Barber-Agakov), nats",
    "label_xonly_probe": "probe(label latent -> y) from x only, accuracy",
    "prior_label_information": "I_p(w; y) of the prior's class components, nats",
    "label_kl": "E KL(q(w|.) || p(w|y)), nats",
    "label_kl_information_beyond_label": "I_q(w; x | y), nats",
    "label_kl_aggregate_mismatch": "E_y KL(q(w|y) || p(w|y)), nats",
    "swap_success": "swap success (label latent from p(w|y') / decoder label y'), fraction",
    "swap_exchange_success": "swap success (label latent of an example of y'), fraction",
    "swap_kept_original": "swapped decodes still classified as the original y, fraction",
    "heldout_domain_probe": "held-out-domain accuracy, probe on z_y",
    "heldout_domain_classifier": "held-out-domain accuracy, DIVA's q(y|z_y)",
    "term_reconstruction": "held-out reconstruction E log p(x|.), nats",
    "term_kl_z": "held-out KL of z, nats",
    "term_kl_w": "held-out KL of w, nats",
    "term_kl_zy": "held-out KL of z_y, nats",
    "term_elbo": "held-out ELBO, nats",
}
# The direction each auxiliary term is meant to move a measure (+1 up, -1 down), for the words of the answer.
INTENDED_DIRECTION = {
    "other_probe": -1, "other_probe_mlp": -1, "other_mi_bound": -1, "other_mi": -1, "other_xonly_probe": -1,
    "swap_success": +1, "swap_exchange_success": +1, "swap_kept_original": -1, "label_mi_bound": +1,
    "label_probe": +1, "label_mi": +1, "label_xonly_mi_bound": +1, "label_xonly_probe": +1,
    "heldout_domain_probe": +1,
}
FRACTION_MEASURES = {"other_probe", "other_probe_mlp", "other_xonly_probe", "label_probe", "label_xonly_probe",
                     "swap_success", "swap_exchange_success", "swap_kept_original", "heldout_domain_probe",
                     "heldout_domain_classifier"}


@dataclass(frozen=True)
class Effect:
    """The effect of one auxiliary term on one measure; ``bias_dominated``: a plug-in I dominated by its bias (permuted
    labels give more than ``SATURATION_FRACTION`` of H(y)) in either arm, so the effect is not used."""

    pair: AblationPair
    measure: str
    estimate: DifferenceEstimate
    bias_dominated: bool = False

    @property
    def resolved(self) -> bool:
        return self.estimate.excludes_zero and not self.bias_dominated


# ---------------------------------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------------------------------
def fmt(value: float, digits: int = 3) -> str:
    """A number as the report prints it (``-`` for NaN)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def fmt_mean(estimate: MeanEstimate, digits: int = 3) -> str:
    """``mean [lower, upper]`` (t-interval over seeds), or the mean alone when there is no interval."""
    if not math.isfinite(estimate.mean):
        return "-"
    if not (math.isfinite(estimate.lower) and math.isfinite(estimate.upper)):
        return fmt(estimate.mean, digits)
    return f"{fmt(estimate.mean, digits)} [{fmt(estimate.lower, digits)}, {fmt(estimate.upper, digits)}]"


def fmt_difference(estimate: DifferenceEstimate, digits: int = 3) -> str:
    if not math.isfinite(estimate.difference):
        return "-"
    text = f"{estimate.difference:+.{digits}f}"
    if math.isfinite(estimate.lower) and math.isfinite(estimate.upper):
        text += f" [{estimate.lower:+.{digits}f}, {estimate.upper:+.{digits}f}]"
    return text


def arm_rows(rows: Sequence[dict], arm: str) -> list[dict]:
    return sorted((row for row in rows if row["arm"] == arm), key=lambda row: row["seed"])


def values(rows: Sequence[dict], arm: str, measure: str, *, normalized: bool = False) -> list[float]:
    """The values of ``measure`` over the seeds of ``arm`` (divided by H(y) when ``normalized``)."""
    out = []
    for row in arm_rows(rows, arm):
        value = float(row.get(measure, math.nan))
        out.append(value / row["label_entropy"] if normalized else value)
    return out


def arm_mean(rows: Sequence[dict], arm: str, measure: str, *, normalized: bool = False) -> MeanEstimate:
    return mean_interval(values(rows, arm, measure, normalized=normalized))


def present_arms(rows: Sequence[dict]) -> list[str]:
    """Arms with at least one row, in the order of :data:`ARMS`."""
    seen = {row["arm"] for row in rows}
    return [arm for arm in ARMS if arm in seen]


def has_values(rows: Sequence[dict], arm: str, measure: str) -> bool:
    return any(math.isfinite(v) for v in values(rows, arm, measure))


def ablation_effects(rows: Sequence[dict]) -> list[Effect]:
    """For every ablation pair with both arms present, the difference (with minus without) of each primary measure."""
    effects = []
    arms = set(present_arms(rows))
    for pair in ABLATION_PAIRS:
        if pair.with_term not in arms or pair.without_term not in arms:
            continue
        for measure in pair.primary_measures:
            if not (has_values(rows, pair.with_term, measure) and has_values(rows, pair.without_term, measure)):
                continue
            estimate = difference_in_means(values(rows, pair.with_term, measure),
                                           values(rows, pair.without_term, measure))
            shuffled = SHUFFLED_COLUMN.get(measure)
            is_bias_dominated = shuffled is not None and (bias_dominated(rows, pair.with_term, shuffled)
                                                     or bias_dominated(rows, pair.without_term, shuffled))
            effects.append(Effect(pair, measure, estimate, is_bias_dominated))
    return effects


def carries_label(rows: Sequence[dict], arm: str, bound_measure: str) -> bool | None:
    """True when the Barber-Agakov bound exceeds ``CARRIES_FRACTION`` of H(y) in every seed (None: not measured)."""
    pairs = [(float(row.get(bound_measure, math.nan)), row["label_entropy"]) for row in arm_rows(rows, arm)]
    pairs = [(bound, entropy) for bound, entropy in pairs if math.isfinite(bound)]
    if not pairs:
        return None
    return all(bound > CARRIES_FRACTION * entropy for bound, entropy in pairs)


def bias_dominated(rows: Sequence[dict], arm: str, shuffled_measure: str) -> bool:
    """Plug-in I bias-dominated: its permuted-label value exceeds ``SATURATION_FRACTION`` of H(y) in some seed."""
    return any(row.get(shuffled_measure, math.nan) > SATURATION_FRACTION * row["label_entropy"]
               for row in arm_rows(rows, arm) if math.isfinite(row.get(shuffled_measure, math.nan)))


# ---------------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")  # files only; no display is needed
    import matplotlib.pyplot as plt

    return plt


def _strip_panel(ax, rows: Sequence[dict], arms: Sequence[str], measures: Sequence[tuple[str, str]], *,
                 normalized: bool = False, ylabel: str = "", chance: dict[str, float] | None = None) -> None:
    """One group of points per arm: one marker per seed for each measure, a bar at the mean."""
    width = 0.8 / max(len(measures), 1)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for m_index, (measure, label) in enumerate(measures):
        offset = -0.4 + width * (m_index + 0.5)
        means = []
        for a_index, arm in enumerate(arms):
            points = [v for v in values(rows, arm, measure, normalized=normalized) if math.isfinite(v)]
            means.append(np.mean(points) if points else np.nan)
            ax.scatter([a_index + offset] * len(points), points, s=12, color=colors[m_index % len(colors)],
                       zorder=3)
        ax.bar(np.arange(len(arms)) + offset, means, width=width * 0.9, color=colors[m_index % len(colors)],
               alpha=0.35, label=label)
    if chance:
        for a_index, arm in enumerate(arms):
            if arm in chance and math.isfinite(chance[arm]):
                ax.hlines(chance[arm], a_index - 0.45, a_index + 0.45, colors="black", linestyles="dotted",
                          zorder=4)
    ax.set_xticks(np.arange(len(arms)))
    ax.set_xticklabels(arms, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.legend(fontsize=7, loc="best")


def draw_figures(rows: Sequence[dict], effects, out_dir: Path) -> list[Path]:
    """Write the PNG figures of the report; returns their paths."""
    plt = _pyplot()
    arms = present_arms(rows)
    label_arms = [a for a in arms if ARMS[a].model in ("csvae", "diva", "cdvae")]
    chance = {a: float(np.mean(values(rows, a, "majority_class_frequency"))) for a in arms}
    paths = []

    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    if label_arms:
        _strip_panel(axes[0], rows, label_arms, [("label_mi", "plug-in I(w;y), encoder's own input"),
                                                 ("label_xonly_mi_bound", "I(w;y) >= from x only (BA bound)"),
                                                 ("prior_label_information", "I_p(w;y) of the prior")],
                     normalized=True, ylabel="fraction of H(y)")
    axes[0].set_title("label latent (w, z_y, z_l): label information / H(y)")
    _strip_panel(axes[1], rows, arms, [("other_mi_bound", "I(z;y) >= (BA bound, draws)"),
                                       ("other_mi", "plug-in I(z;y)"),
                                       ("other_mi_shuffled", "plug-in, permuted labels (bias floor)")],
                 normalized=True, ylabel="fraction of H(y)")
    axes[1].set_title("other latent (z, z_x, z_u): the leak, / H(y)")
    figure.tight_layout()
    paths.append(_save(figure, out_dir / FIGURES["information"], plt))

    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    if label_arms:
        _strip_panel(axes[0], rows, label_arms, [("label_probe", "encoder's own input"),
                                                 ("label_xonly_probe", "from x only")],
                     ylabel="held-out probe accuracy", chance=chance)
    axes[0].set_title("probe of y from the label latent's means (dotted: majority class)")
    _strip_panel(axes[1], rows, arms, [("other_probe", "logistic on the means"),
                                       ("other_probe_mlp", "MLP (64) on draws, as an adversary sees z")],
                 ylabel="held-out probe accuracy", chance=chance)
    axes[1].set_title("probe of y from the other latent: the leak (dotted: majority class)")
    figure.tight_layout()
    paths.append(_save(figure, out_dir / FIGURES["probes"], plt))

    figure, ax = plt.subplots(figsize=(11, 4.8))
    swap_chance = {a: 1.0 / float(np.mean(values(rows, a, "num_classes"))) for a in arms}
    _strip_panel(ax, rows, arms, [("swap_success", "swap success: label latent ~ p(w|y') / decoder label y'"),
                                  ("swap_exchange_success", "swap success: label latent of an example of y'"),
                                  ("swap_kept_original", "still classified as the original y"),
                                  ("reconstruction_label_accuracy", "reconstructions classified as y (ceiling)")],
                 ylabel="fraction of held-out examples", chance=swap_chance)
    ax.set_title("attribute swap, judged by an independent classifier (dotted: 1/K)")
    figure.tight_layout()
    paths.append(_save(figure, out_dir / FIGURES["swap"], plt))

    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    if label_arms:
        position = np.arange(len(label_arms))
        beyond = [np.nanmean(values(rows, a, "label_kl_information_beyond_label")) for a in label_arms]
        mismatch = [np.nanmean(values(rows, a, "label_kl_aggregate_mismatch")) for a in label_arms]
        closed = [np.nanmean(values(rows, a, "label_kl")) for a in label_arms]
        axes[0].bar(position, beyond, color="tab:blue", label="I_q(w; x | y)")
        axes[0].bar(position, mismatch, bottom=beyond, color="tab:orange", label="E_y KL(q(w|y) || p(w|y))")
        axes[0].scatter(position, closed, color="black", marker="_", s=300, zorder=4, label="E KL, closed form")
        axes[0].set_xticks(position)
        axes[0].set_xticklabels(label_arms, rotation=35, ha="right", fontsize=7)
        axes[0].set_ylabel("nats")
        axes[0].set_yscale("symlog", linthresh=1.0)
        axes[0].legend(fontsize=7)
        _strip_panel(axes[1], rows, label_arms, [("prior_label_information", "I_p(w;y): prior's components"),
                                                 ("label_mi", "plug-in I_q(w;y), encoder's own input"),
                                                 ("label_mi_shuffled", "plug-in, permuted labels")],
                     normalized=True, ylabel="fraction of H(y)")
    axes[0].set_title("the label latent's KL = information beyond y + aggregate mismatch")
    axes[1].set_title("what the prior carries vs what w carries")
    figure.tight_layout()
    paths.append(_save(figure, out_dir / FIGURES["kl"], plt))

    paths.append(_draw_effects(effects, out_dir / FIGURES["effects"], plt))

    diva_arms = [a for a in arms if ARMS[a].model == "diva"]
    if diva_arms:
        figure, ax = plt.subplots(figsize=(8, 4.5))
        _strip_panel(ax, rows, diva_arms, [("heldout_domain_classifier", "DIVA's q(y|z_y)"),
                                           ("heldout_domain_probe", "probe on z_y (fit on training domains)"),
                                           ("heldout_domain_prior_rule", "argmax_y p(z_y|y)")],
                     ylabel="accuracy on the held-out domain", chance=chance)
        ax.set_title("DIVA: class accuracy on the held-out rotation")
        figure.tight_layout()
        paths.append(_save(figure, out_dir / FIGURES["diva"], plt))
    return paths


def _draw_effects(effects: Sequence[Effect], path: Path, plt) -> Path:
    shown = [e for e in effects if not e.measure.startswith("term_")]
    groups = [("fractions and accuracies", [e for e in shown if e.measure in FRACTION_MEASURES]),
              ("information (nats)", [e for e in shown if e.measure not in FRACTION_MEASURES])]
    heights = [max(len(chosen), 1) for _, chosen in groups]
    figure, axes = plt.subplots(2, 1, figsize=(10, 0.27 * sum(heights) + 2.5),
                                gridspec_kw={"height_ratios": heights})
    for ax, (title, chosen) in zip(axes, groups):
        for index, effect in enumerate(chosen):
            estimate = effect.estimate
            color = "tab:red" if effect.resolved else "tab:grey"
            if math.isfinite(estimate.lower):
                ax.hlines(index, estimate.lower, estimate.upper, color=color)
            ax.scatter([estimate.difference], [index], color=color, zorder=3,
                       marker="x" if effect.bias_dominated else "o")
        ax.set_yticks(range(len(chosen)))
        ax.set_yticklabels([f"{e.pair.short}: {e.measure}" for e in chosen], fontsize=7)
        ax.set_ylim(len(chosen) - 0.5, -0.5)
        ax.axvline(0.0, color="black", linewidth=0.7)
        ax.set_title(f"with minus without the auxiliary term: {title} (95% Welch CI over seeds; red: resolved; "
                     "x: plug-in bias-dominated)", fontsize=8)
    figure.tight_layout()
    return _save(figure, path, plt)


def _save(figure, path: Path, plt) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Words from numbers
# ---------------------------------------------------------------------------------------------------------------------
def describe_effect(effect: Effect) -> str:
    """``+0.123 [+0.050, +0.196], g = +1.90, CI excludes 0`` (with a note when the plug-in value is bias-dominated)."""
    estimate = effect.estimate
    verdict = "CI excludes 0" if estimate.excludes_zero else "CI includes 0"
    if effect.bias_dominated:
        verdict += "; plug-in bias-dominated, not used"
    g = f", g = {estimate.hedges_g:+.2f}" if math.isfinite(estimate.hedges_g) else ""
    return f"{fmt_difference(estimate)}{g}, {verdict}"


def _effect(effects: Sequence[Effect], pair_name: str, measure: str) -> Effect | None:
    for effect in effects:
        if effect.pair.name == pair_name and effect.measure == measure:
            return effect
    return None


def _carry_phrase(rows, arm: str, bound: str) -> str:
    carried = carries_label(rows, arm, bound)
    if carried is None:
        return "was not measured"
    return "carries y" if carried else "carries little of y"


def rows_latent(rows: Sequence[dict], arm: str, column: str) -> str:
    names = {row[column] for row in arm_rows(rows, arm)}
    return "/".join(sorted(names)) or "-"


def _h(rows: Sequence[dict], arm: str) -> float:
    return float(np.mean(values(rows, arm, "label_entropy")))


def family_findings(rows: Sequence[dict], effects: Sequence[Effect]) -> list[str]:
    """One paragraph per ablation pair present, every number from the results."""
    paragraphs = []
    arms = present_arms(rows)
    for pair in ABLATION_PAIRS:
        if pair.with_term not in arms or pair.without_term not in arms:
            continue
        with_arm, without_arm = pair.with_term, pair.without_term
        model = ARMS[with_arm].model
        text = [f"**{pair.name}** ({len(arm_rows(rows, with_arm))} vs {len(arm_rows(rows, without_arm))} seeds)."]
        other = rows_latent(rows, without_arm, "other_latent")
        chance = float(np.mean(values(rows, without_arm, "majority_class_frequency")))
        leak_fraction = arm_mean(rows, without_arm, "other_mi_bound", normalized=True)
        text.append(
            f"Without the term ({ARMS[without_arm].title}) the other latent {other} "
            f"{_carry_phrase(rows, without_arm, 'other_mi_bound')}: I({other}; y) >= "
            f"{fmt_mean(arm_mean(rows, without_arm, 'other_mi_bound'))} nats ({fmt(100 * leak_fraction.mean, 1)}% "
            f"of H(y) = {fmt(_h(rows, without_arm))}), probe({other} -> y) "
            f"{fmt_mean(arm_mean(rows, without_arm, 'other_probe'))} from the means and "
            f"{fmt_mean(arm_mean(rows, without_arm, 'other_probe_mlp'))} by an MLP on draws (majority class "
            f"{fmt(chance)}); with the term it {_carry_phrase(rows, with_arm, 'other_mi_bound')}: I >= "
            f"{fmt_mean(arm_mean(rows, with_arm, 'other_mi_bound'))}, probes "
            f"{fmt_mean(arm_mean(rows, with_arm, 'other_probe'))} and "
            f"{fmt_mean(arm_mean(rows, with_arm, 'other_probe_mlp'))}.")
        if model == "csvae":
            label = rows_latent(rows, without_arm, "label_latent")
            text.append(
                f"The label latent {label}: with its true y as input, plug-in I({label}; y) = "
                f"{fmt_mean(arm_mean(rows, without_arm, 'label_mi'))} nats without and "
                f"{fmt_mean(arm_mean(rows, with_arm, 'label_mi'))} with the adversary, against the "
                f"I_p = {fmt_mean(arm_mean(rows, without_arm, 'prior_label_information'))} that the fixed prior's "
                f"components carry; from x alone (a random label as input) it "
                f"{_carry_phrase(rows, without_arm, 'label_xonly_mi_bound')} without the adversary (I >= "
                f"{fmt_mean(arm_mean(rows, without_arm, 'label_xonly_mi_bound'))}, probe "
                f"{fmt_mean(arm_mean(rows, without_arm, 'label_xonly_probe'))}) and "
                f"{_carry_phrase(rows, with_arm, 'label_xonly_mi_bound')} with it (I >= "
                f"{fmt_mean(arm_mean(rows, with_arm, 'label_xonly_mi_bound'))}, probe "
                f"{fmt_mean(arm_mean(rows, with_arm, 'label_xonly_probe'))}).")
        if model == "diva":
            text.append(
                f"The class latent z_y {_carry_phrase(rows, without_arm, 'label_mi_bound')} without the term "
                f"(I(z_y; y) >= {fmt_mean(arm_mean(rows, without_arm, 'label_mi_bound'))} nats, probe "
                f"{fmt_mean(arm_mean(rows, without_arm, 'label_probe'))}) and "
                f"{_carry_phrase(rows, with_arm, 'label_mi_bound')} with it (I >= "
                f"{fmt_mean(arm_mean(rows, with_arm, 'label_mi_bound'))}, probe "
                f"{fmt_mean(arm_mean(rows, with_arm, 'label_probe'))}); the learned prior's class components "
                f"carry I_p = {fmt_mean(arm_mean(rows, without_arm, 'prior_label_information'))} without and "
                f"{fmt_mean(arm_mean(rows, with_arm, 'prior_label_information'))} with.")
        effect_texts = [f"{e.measure} {describe_effect(e)}" for e in effects
                        if e.pair.name == pair.name and (e.resolved or e.measure in KEY_MEASURES)]
        if effect_texts:
            text.append("Effects (with minus without; the key measures and every resolved one): "
                        + "; ".join(effect_texts) + ".")
        if pair.note:
            text.append(f"(Note: {pair.note}.)")
        paragraphs.append(" ".join(text))
    return paragraphs


KEY_MEASURES = ("other_mi_bound", "other_probe", "swap_success", "label_mi_bound", "label_xonly_mi_bound",
                "heldout_domain_probe", "term_elbo")


def resolved_in_intended_direction(effects: Sequence[Effect]) -> list[Effect]:
    return [e for e in effects if e.measure in INTENDED_DIRECTION and e.resolved
            and math.copysign(1.0, e.estimate.difference) == INTENDED_DIRECTION[e.measure]]


def resolved_against_intended_direction(effects: Sequence[Effect]) -> list[Effect]:
    return [e for e in effects if e.measure in INTENDED_DIRECTION and e.resolved
            and math.copysign(1.0, e.estimate.difference) != INTENDED_DIRECTION[e.measure]]


def _listing(rows: Sequence[dict], arms: Sequence[str], bound: str) -> str:
    return ", ".join(f"{arm} (I >= {fmt(arm_mean(rows, arm, bound).mean)} nats, "
                     f"{fmt(100 * arm_mean(rows, arm, bound, normalized=True).mean, 0)}% of H(y))" for arm in arms)


def _by_pair(chosen: Sequence[Effect]) -> str:
    pairs: dict[str, list[str]] = {}
    for effect in chosen:
        pairs.setdefault(effect.pair.name, []).append(f"{effect.measure} {fmt_difference(effect.estimate)}")
    return "; ".join(f"{name}: {', '.join(items)}" for name, items in pairs.items())


def short_answer(rows: Sequence[dict], effects: Sequence[Effect]) -> str:
    """The answer's first paragraph, decided by the stated rules from the measured numbers."""
    arms = present_arms(rows)
    no_term = [a for a in arms if ARMS[a].auxiliary.startswith("none")]
    label_no_term = [a for a in no_term if ARMS[a].model in ("csvae", "diva", "cdvae")]
    label_carried = [a for a in label_no_term if carries_label(rows, a, "label_xonly_mi_bound")]
    label_not = [a for a in label_no_term if carries_label(rows, a, "label_xonly_mi_bound") is False]
    leaking = [a for a in no_term if carries_label(rows, a, "other_mi_bound")]
    clean = [a for a in no_term if carries_label(rows, a, "other_mi_bound") is False]
    helped = resolved_in_intended_direction(effects)
    hurt = resolved_against_intended_direction(effects)
    elbo = [e for e in effects if e.measure == "term_elbo" and e.resolved]
    parts = ["**In principle, no.** By the conditional-prior surgery the KL term to p(w|y) is zero at "
             "q(w|x,y) = p(w|y): it never rewards label information in w (w carries what the prior's class "
             "components carry, whether or not it came from x), it makes label information in w free rather than "
             "rewarded, and nothing in the ELBO takes label information out of the other latent."]
    measured = []
    if label_carried:
        measured.append("the label latent carried y from x alone in " + _listing(rows, label_carried,
                                                                               "label_xonly_mi_bound"))
    if label_not:
        measured.append(("it" if label_carried else "the label latent") + " carried little of y from x in "
                        + _listing(rows, label_not, "label_xonly_mi_bound"))
    if leaking:
        measured.append("the other latent carried y as well in " + _listing(rows, leaking, "other_mi_bound"))
    if clean:
        measured.append("the other latent carried little of y in " + ", ".join(clean))
    if measured:
        parts.append("**Measured without any auxiliary term:** " + "; ".join(measured) + ".")
    if helped:
        parts.append("**What the auxiliary terms changed** (the intended way, 95% CI excluding 0): "
                     + _by_pair(helped) + ".")
    else:
        parts.append("**No auxiliary term** moved a measure the intended way with a 95% CI that excludes 0.")
    if hurt:
        parts.append("Resolved against the intended direction: " + _by_pair(hurt) + ".")
    if elbo:
        parts.append("Held-out ELBO, with minus without: " + _by_pair(elbo) + " nats.")
    if leaking or helped:
        verdict = ("**So the KL term was not enough in these runs**: "
                   + ("without an auxiliary term y also stayed in the other latent of " + ", ".join(leaking)
                      + ("; and " if helped else ".") if leaking else "")
                   + (f"the auxiliary terms changed {len(helped)} measure(s) beyond what the KL term did." if helped
                      else ""))
    else:
        verdict = ("**So these runs did not show the KL term to be insufficient**: neither a leak into the other "
                   "latent nor a resolved effect of an auxiliary term was measured (with few seeds, not evidence "
                   "that there is none).")
    if label_carried:
        verdict += (" Where the label latent carried y without any auxiliary term (" + ", ".join(label_carried)
                    + "), the KL term did not prevent it -- consistent with the derivation, which charges only "
                    "information beyond y, so label information the decoder needs can sit in the label latent at "
                    "no KL cost.")
    parts.append(verdict)
    prior_text = prior_sentence(rows)
    if prior_text:
        parts.append(prior_text)
    return " ".join(parts)


def prior_sentence(rows: Sequence[dict]) -> str:
    """Where the answer depends on the prior, in numbers: fixed and separated (CSVAE) vs learned (DIVA, CDVAE)."""
    arms = present_arms(rows)
    pieces = []
    fixed = [a for a in arms if ARMS[a].model == "csvae"]
    if fixed:
        comparisons, all_close = [], True
        for arm in fixed:
            bound = arm_mean(rows, arm, "label_mi_bound", normalized=True).mean
            prior = arm_mean(rows, arm, "prior_label_information", normalized=True).mean
            close = bound >= 0.95 * prior
            all_close = all_close and close
            comparisons.append(f"{arm}: I(w; y) >= {fmt(bound)} H(y), {'at least' if close else 'below'} 95% of "
                               f"the prior's I_p = {fmt(prior)} H(y)")
        tail = (" -- in every CSVAE arm the label information in w is what the fixed prior puts there, with or "
                "without the adversary, and says nothing about what w took from x (the x-only measures do)"
                if all_close else " -- the x-only measures say what w took from x")
        pieces.append("with CSVAE's fixed, separated prior and the true y as the encoder's input, "
                      + "; ".join(comparisons) + tail)
    learned = [a for a in arms if ARMS[a].model in ("diva", "cdvae")]
    if learned:
        pieces.append(
            "with a learned prior the label information is whatever training separated: the prior's class "
            "components carried I_p = " + ", ".join(
                f"{fmt(arm_mean(rows, a, 'prior_label_information', normalized=True).mean)} of H(y) in {a}"
                for a in learned)
            + ", and the label latent from x " + ", ".join(
                f"{fmt(arm_mean(rows, a, 'label_xonly_mi_bound', normalized=True).mean)}" for a in learned)
            + " (Barber-Agakov bound, same order)")
    if not pieces:
        return ""
    return "**Where it depends on the prior:** " + "; ".join(pieces) + "."


def prior_dependence(rows: Sequence[dict]) -> list[list[str]]:
    """Table cells: where the answer depends on the prior, fixed and separated (CSVAE) or learned (DIVA, CDVAE)."""
    cells = []
    kind = {"csvae": "fixed, separated", "diva": "learned (network of y)", "cdvae": "learned means, unit scale"}
    for arm in present_arms(rows):
        model = ARMS[arm].model
        if model not in kind:
            continue
        own = fmt_mean(arm_mean(rows, arm, "label_mi", normalized=True))
        if bias_dominated(rows, arm, "label_mi_shuffled"):
            own += " (bias-dominated)"
        beyond = arm_mean(rows, arm, "label_kl_information_beyond_label")
        ceiling = arm_mean(rows, arm, "label_kl_information_ceiling")
        beyond_text = fmt_mean(beyond)
        if math.isfinite(beyond.mean) and math.isfinite(ceiling.mean) and beyond.mean > 0.95 * ceiling.mean:
            beyond_text += " (at ceiling)"
        cells.append([arm, kind[model], fmt_mean(arm_mean(rows, arm, "prior_label_information", normalized=True)),
                      own, fmt_mean(arm_mean(rows, arm, "label_mi_bound", normalized=True)),
                      fmt_mean(arm_mean(rows, arm, "label_xonly_mi_bound", normalized=True)),
                      fmt_mean(arm_mean(rows, arm, "label_kl")), beyond_text, fmt(ceiling.mean, 2),
                      fmt_mean(arm_mean(rows, arm, "label_kl_aggregate_mismatch"))])
    return cells


# ---------------------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def write_kl_enough_report(out_dir: str | Path) -> Path:
    """Write ``report.md``, ``effect_sizes.csv`` and the figures into ``out_dir`` from its ``results.csv``."""
    out_dir = Path(out_dir)
    rows = read_results(out_dir)
    if not rows:
        raise FileNotFoundError(f"out: no results in {out_dir / RESULTS_NAME}; run the experiment first")
    settings = _read_json(out_dir / SETTINGS_NAME) or {}
    timing = _read_json(out_dir / TIMING_NAME) or []
    effects = ablation_effects(rows)
    _write_effects_csv(effects, out_dir / EFFECTS_NAME)
    figures = draw_figures(rows, effects, out_dir)
    text = render_report(rows, effects, settings, timing, [p.name for p in figures])
    path = out_dir / REPORT_NAME
    path.write_text(text)
    return path


def _write_effects_csv(effects: Sequence[Effect], path: Path) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pair", "with_term", "without_term", "measure", "mean_with", "mean_without", "difference",
                         "lower", "upper", "hedges_g", "n_with", "n_without", "df", "excludes_zero", "bias_dominated",
                         "resolved"])
        for effect in effects:
            e = effect.estimate
            writer.writerow([effect.pair.name, effect.pair.with_term, effect.pair.without_term, effect.measure,
                             e.mean_a, e.mean_b, e.difference, e.lower, e.upper, e.hedges_g, e.n_a, e.n_b,
                             e.degrees_of_freedom, e.excludes_zero, effect.bias_dominated, effect.resolved])


def _cell(text: str) -> str:
    """A Markdown table cell: a literal ``|`` (as in p(w|y)) is escaped so that it does not split the cell."""
    return str(text).replace("|", "\\|")


def _table(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(_cell, cells)) + " |" for cells in body]
    return lines


def render_report(rows: Sequence[dict], effects, settings: dict, timing: list, figure_names: Sequence[str]) -> str:
    arms = present_arms(rows)
    seeds = sorted({row["seed"] for row in rows})
    lines: list[str] = []
    add = lines.append
    add("# Is the KL term to a label-conditional prior enough? (`elbocheck experiment kl-enough`)")
    add("")
    add("The question (project seed 000): CSVAE (Klys, Snell & Zemel 2018) and DIVA (Ilse et al. 2020) already have "
        "a KL term to a label-conditional prior, KL(q(w|x,y) || p(w|y)) and KL(q(z_y|x) || p(z_y|y)). Is that not "
        "enough to put the label information into w (z_y), so why add an auxiliary classifier (DIVA) or an "
        "adversary on the other latent (CSVAE)?")
    add("")
    add("## Summary")
    add("")
    add(short_answer(rows, effects))
    add("")
    for paragraph in family_findings(rows, effects):
        add(f"- {paragraph}")
    add("")
    add("Decision rules (stated before reading the numbers): an effect of an auxiliary term is *resolved* when the "
        "95% Welch t-interval over seeds of the difference (with the term minus without it) excludes 0; a latent "
        "*carries y* when the Barber-Agakov bound on I(latent; y) (a held-out logistic regression on posterior "
        "draws beating the label frequencies) exceeds 5% of H(y) in every seed; the plug-in I is *bias-dominated* "
        "when its value for permuted labels exceeds H(y)/4, and effects on it are then not used. Means are over "
        "seeds with 95% t-intervals in brackets (for accuracies they may cross [0, 1] with few seeds); g is "
        "Hedges' standardized effect.")
    add("")
    add("## The derivation behind the answer")
    add("")
    add(f"`{DERIVATION_PATH}` (derivation `{DERIVATION_NAME}`, checked step by step by "
        f"`elbocheck verify {DERIVATION_NAME}`) proves, for a latent w with prior p(w|y):")
    add("")
    add("    E_{p_D(x,y)} KL(q(w|x,y) || p(w|y)) = I_q(w; x | y) + E_{p_D(y)} KL(q(w|y) || p(w|y))")
    add("    I_q(z; x, y) = I_q(z; y) + I_q(z; x | y) <= E KL(q(z|x,y) || p(z))")
    add("")
    add("and refutes the claim `E KL(q(w|x,y) || p(w|y)) >= I(w; y)` (counterexample: q(w|x,y) = p(w|y) makes the "
        "KL zero while w carries I_p(w; y)). What the KL term of the label latent *rewards*: nothing -- it is a "
        "penalty, smallest when w ignores x. What it *charges*: information about x beyond y, and a class-"
        "conditional aggregate q(w|y) that differs from p(w|y). What it *cannot see*: whether the label "
        "information in w came from x or from the prior, and whether the other latent also carries y -- the KL of "
        "z charges label information in z exactly like any other information. That room is what the auxiliary "
        "classifier (reward label information in z_y) and the adversary (penalize it in z) fill. The table below "
        "measures both pieces of the label latent's KL on held-out data (their sum matches the closed-form KL up "
        "to Monte-Carlo error).")
    add("")
    add("## Where the answer depends on the prior")
    add("")
    add("CSVAE's p(w|y) is fixed and separated (off: N(0, 0.1^2), on: N(3, 1) per attribute subspace), so its "
        "class components carry nearly all of H(y), and q(w|x,y) -- which sees y -- inherits that label "
        "information by matching q(w|y) to p(w|y), whatever it learned from x. DIVA's p(z_y|y) and CDVAE's class "
        "means are learned: the prior's separation is itself a product of training, and the KL term is equally "
        "happy with components that overlap. Columns are fractions of H(y) unless marked nats.")
    add("")
    lines += _table(["arm", "prior", "I_p(w;y) / H(y)", "plug-in I_q(w;y) / H(y), encoder's own input",
                     "I(w;y) / H(y) >=, encoder's own input", "I(w;y) / H(y) >= from x only",
                     "E KL(q(w|.)||p(w|y)), nats", "= I_q(w;x|y), nats", "ceiling mean log N_y",
                     "+ E_y KL(q(w|y)||p(w|y)), nats"], prior_dependence(rows))
    add("")
    add("The two pieces are estimated on the held-out points with the exact class-conditional mixture q(w|y); "
        "their Monte-Carlo sum is in `label_kl_monte_carlo` beside the closed form. The plug-in I_q(w; x | y) is "
        "at most the mean of log N_y over the points (the ceiling column); at the ceiling the posteriors barely "
        "overlap and the split between the two pieces is that of the empirical distribution of those points, not "
        "the population's (their sum is unaffected).")
    add("")
    add("## Results per arm")
    add("")
    add(f"{len(rows)} runs: {len(arms)} arms x seeds {', '.join(map(str, seeds))}; held-out split: validation "
        "(the probes fit on half of it and score on the other half).")
    add("")
    lines += _table(
        ["arm", "seeds", "H(y)", "I(label latent; y) >= from x, nats", "probe(label latent) from x",
         "I(other; y) >=, nats", "probe(other), logistic", "probe(other), MLP", "majority class"],
        ([arm, str(len(arm_rows(rows, arm))), fmt(float(np.mean(values(rows, arm, "label_entropy")))),
          fmt_mean(arm_mean(rows, arm, "label_xonly_mi_bound")), fmt_mean(arm_mean(rows, arm, "label_xonly_probe")),
          fmt_mean(arm_mean(rows, arm, "other_mi_bound")), fmt_mean(arm_mean(rows, arm, "other_probe")),
          fmt_mean(arm_mean(rows, arm, "other_probe_mlp")),
          fmt(float(np.mean(values(rows, arm, "majority_class_frequency"))))] for arm in arms))
    add("")
    lines += _table(
        ["arm", "plug-in I(label; y)", "permuted", "plug-in I(other; y)", "permuted", "swap success",
         "swap (exchange)", "kept original y", "reconstructions classified as y", "classifier accuracy on x"],
        ([arm, fmt_mean(arm_mean(rows, arm, "label_mi")), fmt_mean(arm_mean(rows, arm, "label_mi_shuffled")),
          fmt_mean(arm_mean(rows, arm, "other_mi")), fmt_mean(arm_mean(rows, arm, "other_mi_shuffled")),
          fmt_mean(arm_mean(rows, arm, "swap_success")), fmt_mean(arm_mean(rows, arm, "swap_exchange_success")),
          fmt_mean(arm_mean(rows, arm, "swap_kept_original")),
          fmt_mean(arm_mean(rows, arm, "reconstruction_label_accuracy")),
          fmt_mean(arm_mean(rows, arm, "swap_classifier_accuracy"))] for arm in arms))
    add("")
    add("Each KL term, the reconstruction and the true ELBO on the held-out split (nats, means over seeds):")
    add("")
    term_columns = [c for c in MEASURE_COLUMNS if c.startswith("term_") and c not in ("term_objective",)
                    and any(math.isfinite(r.get(c, math.nan)) for r in rows)]
    lines += _table(["arm"] + [c.removeprefix("term_") for c in term_columns],
                    ([arm] + [fmt_mean(arm_mean(rows, arm, c), 2) for c in term_columns] for arm in arms))
    add("")
    diva_arms = [a for a in arms if ARMS[a].model == "diva"]
    if diva_arms:
        add(f"DIVA on the held-out domain ({settings.get('held_out_domain', '?')} degrees, never seen in training). "
            "DIVA's own classifier q(y|z_y) gets no gradient when alpha_y = 0 (its only gradient is alpha_y times "
            "its log-likelihood), so the probe fitted on the training domains' z_y is the fair comparison:")
        add("")
        lines += _table(["arm", "DIVA's q(y|z_y)", "probe on z_y", "argmax_y p(z_y|y)",
                         "seen domains: probe(z_y -> d)", "probe(z_d -> y)"],
                        ([arm, fmt_mean(arm_mean(rows, arm, "heldout_domain_classifier")),
                          fmt_mean(arm_mean(rows, arm, "heldout_domain_probe")),
                          fmt_mean(arm_mean(rows, arm, "heldout_domain_prior_rule")),
                          fmt_mean(arm_mean(rows, arm, "label_domain_probe")),
                          fmt_mean(arm_mean(rows, arm, "domain_latent_probe"))] for arm in diva_arms))
        add("")
    add("## Effect sizes of the auxiliary terms")
    add("")
    add("Difference of the means over seeds, with the term minus without it, 95% Welch t-interval, Hedges' g "
        "(also in `effect_sizes.csv`):")
    add("")
    lines += _table(["ablation", "measure", "with", "without", "difference [95% CI]", "g", "resolved"],
                    ([e.pair.name, e.measure, fmt(e.estimate.mean_a), fmt(e.estimate.mean_b),
                      fmt_difference(e.estimate), fmt(e.estimate.hedges_g, 2),
                      "yes" if e.resolved else ("no (plug-in bias-dominated)" if e.bias_dominated else "no")]
                     for e in effects))
    add("")
    add("## Figures")
    add("")
    captions = {
        FIGURES["information"]: "Label information in the label latent (left) and the leak into the other latent "
                                "(right), as fractions of H(y); one dot per seed.",
        FIGURES["probes"]: "Held-out probe accuracies from the latents' means.",
        FIGURES["swap"]: "Attribute swap judged by an independent classifier.",
        FIGURES["kl"]: "The label latent's KL split as the derivation says, and the prior's label information.",
        FIGURES["effects"]: "Effects of the auxiliary terms with 95% CIs.",
        FIGURES["diva"]: "DIVA on the held-out domain.",
    }
    for name in figure_names:
        add(f"![{captions.get(name, name)}]({name})")
        add("")
        add(f"*{captions.get(name, name)}*")
        add("")
    add("## Setup")
    add("")
    add(f"Preset `{settings.get('preset', '?')}`; epochs: swiss roll {settings.get('epochs_swiss_roll')}, digits "
        f"{settings.get('epochs_digits')}, rotated digits {settings.get('epochs_rotated_digits')}; batch "
        f"{settings.get('batch_size')}, Adam lr {settings.get('lr')}; networks: {settings.get('architecture')} with "
        f"{settings.get('num_hidden_layers')} hidden layer(s) of {settings.get('hidden_dim')}; swiss roll "
        f"{settings.get('swiss_roll_examples')} points; digits {settings.get('digits_size') or 1797} images; rotated "
        f"digits {settings.get('rotated_images_per_class')} images per class x 6 rotations, held-out rotation "
        f"{settings.get('held_out_domain')} degrees.")
    if timing:
        last = timing[-1]
        training = [t for t in timing if t.get("runs_trained", 0) > 0]
        total_train = sum(float(r.get("train_seconds", 0.0)) + float(r.get("measure_seconds", 0.0)) for r in rows)
        add(f"Wall time: {fmt(sum(t['wall_seconds'] for t in training), 1)} s over {len(training)} invocation(s) "
            f"that trained runs ({sum(t['runs_trained'] for t in training)} runs); the last invocation took "
            f"{fmt(last['wall_seconds'], 1)} s ({last['runs_trained']} trained, {last['runs_skipped']} reused from "
            f"the CSV) with {last['workers']} worker process(es) x {last['torch_threads']} torch thread(s) on "
            f"{last['cpu_count']} CPU(s). Sum over all runs of training + measuring: {fmt(total_train, 1)} s.")
    add("")
    lines += _table(["arm", "model", "data", "auxiliary term", "model options"],
                    ([arm, ARMS[arm].model, ARMS[arm].data, ARMS[arm].auxiliary,
                      ", ".join(f"{k}={v}" for k, v in ARMS[arm].options.items())] for arm in arms))
    add("")
    add("## Caveats")
    add("")
    add("- Few seeds: with 3 seeds per arm the t quantile is about 4.3, so only large, consistent effects are "
        "resolved; an unresolved effect is not evidence of no effect.")
    add("- The plug-in I(latent; y) is biased upward and reaches H(y) when posteriors do not overlap (CSVAE's "
        "reconstruction weight beta1 = 20 makes them narrow); the permuted-label column shows when. The "
        "Barber-Agakov bound is a lower bound (a better classifier could only raise it); probes on posterior "
        "means can read information that the sampled latent does not carry (a collapsed latent's means still "
        "vary with x), which is why the bound on draws decides whether a latent carries y.")
    add("- CSVAE's encoders see y: the x-only measures feed them a random label, an input they never met in "
        "training; they say how much the encoder takes from x, not how it behaves on its training inputs.")
    add("- DIVA uses the paper's alpha_y = 3500, alpha_d = 2000 without the paper's beta warm-up; on 8x8 digits the "
        "reconstruction is about 100 nats, so the classifier terms dominate the objective. The swap from a prior "
        "draw needs the learned prior to match the aggregate posterior; the exchange swap does not.")
    add("- The independent classifier is trained on real images and judges decoded means (blurrier); the "
        "reconstruction column is the ceiling a swap can reach.")
    add("- Short training on small data (the default preset runs in about 10 minutes on 2 CPU cores); `--full` "
        "runs the GPU settings.")
    add("")
    add("## Columns of results.csv")
    add("")
    lines += _table(["column", "meaning"],
                    ([name, text] for name, text in {**IDENTITY_COLUMNS, **MEASURE_COLUMNS}.items()))
    add("")
    add("References: Klys, Snell & Zemel 2018, Learning Latent Subspaces in Variational Autoencoders (NeurIPS); "
        "Ilse, Tomczak, Louizos & Welling 2020, DIVA: Domain Invariant Variational Autoencoders (MIDL); Creswell "
        "et al. 2017, Conditional Autoencoders with Adversarial Information Factorization; Hoffman & Johnson 2016, "
        "ELBO surgery; Barber & Agakov 2003, The IM algorithm; Welch 1947; Hedges 1981; Wilson 1927.")
    add("")
    return "\n".join(lines)
