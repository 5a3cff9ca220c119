"""The report of ``elbocheck experiment kl-enough``, computed from ``results.csv`` alone: the map over the weights
(heat maps and a table), the committed predictions drawn beside the measured values, the pre-registered paired
tests with Holm's correction, the MNIST section when MNIST runs are present, and ``report.md``.

The rules applied are those committed in ``kl_enough_preregistration.json`` (see ``docs/kl-enough/
preregistration.md``) and the predictions those of ``kl_enough_predictions.json``; neither is recomputed here (a
data key missing from the committed predictions is predicted now and marked so).
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .effect_sizes import MeanEstimate, PairedEstimate, holm, mean_interval, paired_difference
from .kl_enough_predictions import COMMITTED_PATH as PREDICTIONS_PATH
from .kl_enough_predictions import LATENT_PRICES, DataPrediction, boundary, read_predictions
from .kl_enough_results import IDENTITY_COLUMNS, MEASURE_COLUMNS, SETTINGS_NAME, TIMING_NAME, read_results
from .kl_enough_settings import ARMS, DATA, ROTATED_MNIST_ANGLES

PREREGISTRATION_PATH = Path(__file__).with_name("kl_enough_preregistration.json")
REPORT_NAME = "report.md"
TESTS_NAME = "tests.csv"
MAP_NAME = "map.csv"
DERIVATION_PATH = "derivations/library/conditional_surgery.py"
FIGURES = {"map": "fig_map.png", "prediction": "fig_predicted_vs_measured.png", "live": "fig_active_units.png",
           "tests": "fig_tests.png", "mnist": "fig_mnist_diva.png"}


def load_preregistration() -> dict:
    return json.loads(PREREGISTRATION_PATH.read_text())


def carries_fraction() -> float:
    return float(load_preregistration()["thresholds"]["carries_fraction"])


# ---------------------------------------------------------------------------------------------------------------------
# Derived measures and per-arm summaries
# ---------------------------------------------------------------------------------------------------------------------
def label_fraction(row: dict) -> float:
    """What the latent under study carries about y from x, / H(y): the label latent (encoder fed a random label
    where it takes y), or the reference beta-VAE's only latent."""
    if row["label_latent"]:
        return row.get("label_xonly_mi_bound", math.nan) / row["label_entropy"]
    if row["family"] == "reference":
        return row.get("other_mi_bound", math.nan) / row["label_entropy"]
    return math.nan


def leak_fraction(row: dict) -> float:
    """The other latent's label information / H(y), for families with a route for y (not the reference)."""
    if row["family"] == "reference":
        return math.nan
    return row.get("other_mi_bound", math.nan) / row["label_entropy"]


def label_fraction_own_input(row: dict) -> float:
    """The label latent's label information with the encoder's own input (for CSVAE: the true y), / H(y)."""
    if not row["label_latent"]:
        return math.nan
    return row.get("label_mi_bound", math.nan) / row["label_entropy"]


MEASURES: dict[str, Callable[[dict], float]] = {
    "label_fraction": label_fraction,
    "label_fraction_own_input": label_fraction_own_input,
    "leak_fraction": leak_fraction,
    "swap_success": lambda row: row.get("swap_success", math.nan),
    "heldout_domain_probe": lambda row: row.get("heldout_domain_probe", math.nan),
    "heldout_domain_classifier": lambda row: row.get("heldout_domain_classifier", math.nan),
}


def measure(row: dict, name: str) -> float:
    return MEASURES[name](row) if name in MEASURES else float(row.get(name, math.nan))


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    rows: list
    label: MeanEstimate
    leak: MeanEstimate
    label_live: bool | None
    other_live: bool | None

    def value(self, name: str) -> MeanEstimate:
        return mean_interval([measure(row, name) for row in self.rows])


def summarize(rows: Sequence[dict]) -> dict[str, ArmSummary]:
    by_arm: dict[str, list] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], []).append(row)
    out = {}
    order = {family: index for index, family in enumerate(("csvae", "reference", "diva", "cdvae", "condvae_info"))}
    known = sorted((a for a in ARMS if a in by_arm), key=lambda a: (order.get(ARMS[a].family, 9), ARMS[a].data))
    for arm in known + sorted(set(by_arm) - set(ARMS)):
        arm_rows = sorted(by_arm[arm], key=lambda r: r["seed"])

        def live(role: str) -> bool | None:
            values = [r.get(f"{role}_active_units", math.nan) for r in arm_rows]
            values = [v for v in values if math.isfinite(v)]
            return None if not values else all(v >= 1 for v in values)

        out[arm] = ArmSummary(arm, arm_rows, mean_interval([label_fraction(r) for r in arm_rows]),
                              mean_interval([leak_fraction(r) for r in arm_rows]), live("label"), live("other"))
    return out


def carries(estimate: MeanEstimate, live: bool | None, threshold: float) -> str:
    """'carries', 'does not carry', 'undecided', 'dead' (no claim) or '-' (not measured), by the committed rule."""
    if not math.isfinite(estimate.mean):
        return "-"
    if math.isfinite(estimate.lower) and estimate.lower > threshold:
        return "carries"
    if live is False:
        return "dead"
    if math.isfinite(estimate.upper) and estimate.upper < threshold:
        return "does not carry"
    return "undecided"


def cell_verdict(summary: ArmSummary, threshold: float) -> str:
    """The map's verdict for an arm (committed map rule)."""
    family = ARMS[summary.arm].family if summary.arm in ARMS else ""
    label = carries(summary.label, summary.label_live, threshold)
    if family == "reference":
        return {"carries": "keeps y", "does not carry": "drops y", "dead": "collapsed"}.get(label, label)
    other = carries(summary.leak, summary.other_live, threshold)
    if family == "condvae_info":
        return {"carries": "leak", "does not carry": "no leak", "dead": "no claim (z dead)"}.get(other, other)
    if other == "carries":
        return "leak"
    if other == "dead":
        return "no claim (other latent dead)"
    if label == "carries" and other == "does not carry":
        return "KL enough"
    fed = family == "csvae" and ARMS[summary.arm].axes.get("encoder input") == "x,y"
    if fed and other == "does not carry" and carries(summary.value("label_fraction_own_input"), summary.label_live,
                                                     threshold) == "carries":
        return "no leak; w holds y from its input y, not from x"
    if other == "does not carry":
        return "no leak, y not in label latent" if label in ("does not carry", "dead") else "no leak, label undecided"
    return "undecided"


# ---------------------------------------------------------------------------------------------------------------------
# Pre-registered tests
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestResult:
    family: str
    id: str
    question: str
    measure: str
    a: str
    b: str
    expectation: str
    estimate: PairedEstimate
    holm_p: float
    kind: str = ""

    @property
    def rejects(self) -> bool:
        return math.isfinite(self.holm_p) and self.holm_p < 0.05

    @property
    def direction(self) -> str:
        if not self.rejects:
            return "no significant difference"
        return "a > b" if self.estimate.difference > 0 else "a < b"


def _paired_values(rows_by_arm: dict[str, list], a: str, b: str, name: str, unit: str) -> tuple[list, list]:
    """Values of ``name`` for arms a and b, paired by seed (or, for ``{angle}`` arms, by held-out angle)."""
    if "{angle}" in a:
        first, second = [], []
        for angle in ROTATED_MNIST_ANGLES:
            ra, rb = rows_by_arm.get(a.format(angle=angle), []), rows_by_arm.get(b.format(angle=angle), [])
            seeds = sorted({r["seed"] for r in ra} & {r["seed"] for r in rb})
            if seeds:  # one value per angle: the mean over the seeds both arms have
                first.append(float(np.mean([measure(r, name) for r in ra if r["seed"] in seeds])))
                second.append(float(np.mean([measure(r, name) for r in rb if r["seed"] in seeds])))
        return first, second
    ra = {r["seed"]: r for r in rows_by_arm.get(a, [])}
    rb = {r["seed"]: r for r in rows_by_arm.get(b, [])}
    seeds = sorted(set(ra) & set(rb))
    return [measure(ra[s], name) for s in seeds], [measure(rb[s], name) for s in seeds]


def preregistered_tests(rows: Sequence[dict]) -> list[TestResult]:
    """Every committed test whose two arms are present, with Holm's correction within its family."""
    rows_by_arm: dict[str, list] = {}
    for row in rows:
        rows_by_arm.setdefault(row["arm"], []).append(row)
    results = []
    for family, spec in load_preregistration()["families"].items():
        estimates = []
        for test in spec["tests"]:
            first, second = _paired_values(rows_by_arm, test["a"], test["b"], test["measure"], spec["unit"])
            estimate = paired_difference(first, second)
            if estimate.n:
                estimates.append((test, estimate))
        adjusted = holm([e.p_value for _, e in estimates])
        for (test, estimate), p in zip(estimates, adjusted):
            results.append(TestResult(family, test["id"], test["question"], test["measure"], test["a"], test["b"],
                                      test["expectation"], estimate, p, test.get("kind", "")))
    return results


# ---------------------------------------------------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------------------------------------------------
def committed_predictions() -> dict[str, DataPrediction]:
    return read_predictions(PREDICTIONS_PATH) if PREDICTIONS_PATH.is_file() else {}


def git_commit_of(path: Path) -> str:
    """'<short hash> <date>' of the last commit that touched ``path`` (empty outside a git checkout)."""
    try:
        output = subprocess.run(["git", "log", "-1", "--format=%h %ci", "--", path.name], cwd=path.parent,
                                capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return output


# ---------------------------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------------------------
def fmt(value: float, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def fmt_mean(estimate: MeanEstimate, digits: int = 3) -> str:
    if not math.isfinite(estimate.mean):
        return "-"
    if not (math.isfinite(estimate.lower) and math.isfinite(estimate.upper)):
        return fmt(estimate.mean, digits)
    return f"{fmt(estimate.mean, digits)} [{fmt(estimate.lower, digits)}, {fmt(estimate.upper, digits)}]"


def fmt_paired(estimate: PairedEstimate, digits: int = 3) -> str:
    if not math.isfinite(estimate.difference):
        return "-"
    text = f"{estimate.difference:+.{digits}f}"
    if math.isfinite(estimate.lower):
        text += f" [{estimate.lower:+.{digits}f}, {estimate.upper:+.{digits}f}]"
    return text


def fmt_p(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.2g}" if value >= 1e-4 else "<1e-4"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


def table(header: Sequence[str], body: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(_cell, cells)) + " |" for cells in body]
    return lines


def axes_text(arm: str) -> str:
    if arm not in ARMS:
        return ""
    axes = ARMS[arm].axes
    shown = {k: v for k, v in axes.items() if not (k in ("paper", "free_bits") and not v)}
    return ", ".join(f"{k} = {v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else
                     (k if v is True else f"{k} = {v}") for k, v in shown.items())


def live_text(summary: ArmSummary, role: str) -> str:
    values = [r.get(f"{role}_active_units", math.nan) for r in summary.rows]
    dims = [r.get(f"{role}_dims", math.nan) for r in summary.rows]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "-"
    return f"{int(min(values))}-{int(max(values))}/{int(max(d for d in dims if math.isfinite(d)))}" if min(
        values) != max(values) else f"{int(values[0])}/{int(max(d for d in dims if math.isfinite(d)))}"


# ---------------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class Panel:
    title: str
    arms: list
    row_of: Callable[[str], Any]
    col_of: Callable[[str], Any]
    row_label: str
    col_label: str
    color: str  # measure shown as colour: label_fraction or leak_fraction


def map_panels(summaries: dict[str, ArmSummary]) -> list[Panel]:
    """One heat map per family and data key present (rows and columns: the family's axes)."""
    present = [a for a in summaries if a in ARMS]
    panels = []
    for data in sorted({ARMS[a].data for a in present}):
        def of(family: str) -> list[str]:
            return [a for a in present if ARMS[a].family == family and ARMS[a].data == data]

        csvae = of("csvae")
        if csvae:
            def csvae_col(arm: str) -> str:
                axes = ARMS[arm].axes
                if axes.get("paper"):
                    return "paper (20, 1, 0.2, 10)"
                label = f"adv {axes['beta4/beta1']:g}"
                if axes["encoder input"] == "x":
                    label += ", q(.|x)"
                if axes.get("free_bits"):
                    label += f", fb {axes['free_bits']:g}"
                return label
            panels.append(Panel(f"CSVAE, {data}: leak of y into z / H(y), verdict, z's active units", csvae,
                                lambda a: ARMS[a].axes["beta3/beta1"], csvae_col, "beta3/beta1", "", "leak_fraction"))
        diva = of("diva")
        if diva:
            panels.append(Panel(f"DIVA, {data}: y in z_y from x / H(y), verdict, z_x's active units", diva,
                                lambda a: ARMS[a].axes["beta"],
                                lambda a: (f"alpha_y {ARMS[a].axes['alpha_y']:g}, alpha_d {ARMS[a].axes['alpha_d']:g}"
                                           + (f", fb {ARMS[a].axes['free_bits']:g}" if ARMS[a].axes.get("free_bits")
                                              else "")),
                                "beta", "", "label_fraction"))
        for family, title in (("reference", "reference beta-VAE (no label route): label information in z"),
                              ("cdvae", "CDVAE: label information in z_l"),
                              ("condvae_info", "CondVAE-info: leak of y into z")):
            arms = of(family)
            if arms:
                axis = FAMILY_AXIS[family]
                panels.append(Panel(f"{title}, {data}", arms, lambda a, axis=axis: ARMS[a].axes[axis],
                                    lambda a: (f"free bits {ARMS[a].axes['free_bits']:g}"
                                               if ARMS[a].axes.get("free_bits") else ""),
                                    axis, "", "leak_fraction" if family == "condvae_info" else "label_fraction"))
    return panels


FAMILY_AXIS = {"reference": "beta", "cdvae": "beta", "condvae_info": "rho"}
# The verdicts as the heat maps print them (the table and map.csv give them in full).
SHORT_VERDICTS = {"no claim (other latent dead)": "no claim: dead", "no claim (z dead)": "no claim: dead",
                  "no leak; w holds y from its input y, not from x": "no leak (w: input y)",
                  "no leak, y not in label latent": "no leak, no y", "no leak, label undecided": "no leak, label ?"}


def draw_map(summaries: dict[str, ArmSummary], path: Path, threshold: float) -> Path | None:
    plt = _pyplot()
    from matplotlib.colors import Normalize

    panels = map_panels(summaries)
    if not panels:
        return None
    columns = 2
    rows_count = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows_count, columns, figsize=(15, 3.4 * rows_count), squeeze=False)
    norm = Normalize(vmin=0.0, vmax=1.0)
    image = None
    for ax, panel in zip(axes.ravel(), panels):
        row_values = sorted({panel.row_of(a) for a in panel.arms})
        col_values = sorted({panel.col_of(a) for a in panel.arms}, key=str)
        grid = np.full((len(row_values), len(col_values)), np.nan)
        for arm in panel.arms:
            i, j = row_values.index(panel.row_of(arm)), col_values.index(panel.col_of(arm))
            summary = summaries[arm]
            estimate = summary.value(panel.color)
            grid[i, j] = estimate.mean
            verdict = SHORT_VERDICTS.get(cell_verdict(summary, threshold), cell_verdict(summary, threshold))
            other = f"AU {live_text(summary, 'other')}" if summary.other_live is not None else ""
            label = f"{fmt(estimate.mean, 2)}\n{verdict}\n{other}"
            ax.text(j, i, label, ha="center", va="center", fontsize=7)
        image = ax.imshow(grid, cmap="viridis", norm=norm, aspect="auto", alpha=0.8)
        dead = [(row_values.index(panel.row_of(a)), col_values.index(panel.col_of(a))) for a in panel.arms
                if summaries[a].other_live is False and panel.color == "leak_fraction"]
        for i, j in dead:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="white"))
        ax.set_yticks(range(len(row_values)), [f"{v:g}" for v in row_values])
        ax.set_xticks(range(len(col_values)), [str(v) for v in col_values], fontsize=7, rotation=12)
        ax.set_ylabel(panel.row_label)
        ax.set_title(panel.title, fontsize=8)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="fraction of H(y)")
    return _save(figure, path, plt)


def prediction_curves(summaries: dict[str, ArmSummary]) -> list[dict]:
    """The measured curves the predictions speak of: label fraction against the KL weight for the reference and
    DIVA's z_y (classifiers off), and CSVAE's leak against beta3/beta1 (no adversary, y fed)."""
    curves = []
    present = [a for a in summaries if a in ARMS]
    for data in sorted({ARMS[a].data for a in present}):
        adversaries = sorted({ARMS[a].axes["beta4/beta1"] for a in present if ARMS[a].family == "csvae"})
        for family, price, select, axis, name in (
            ("reference", "standard", lambda a: True, "beta", "label_fraction"),
            ("diva", "learned", lambda a: ARMS[a].axes["alpha_y"] == 0 and ARMS[a].axes["alpha_d"] == 0
             and not ARMS[a].axes.get("free_bits"), "beta", "label_fraction"),
            ("cdvae", "learned", lambda a: not ARMS[a].axes.get("free_bits"), "beta", "label_fraction"),
            *(("csvae", "redundant", lambda a, adversary=adversary: ARMS[a].axes["beta4/beta1"] == adversary
               and ARMS[a].axes["encoder input"] == "x,y" and not ARMS[a].axes.get("paper")
               and not ARMS[a].axes.get("free_bits"), "beta3/beta1", "leak_fraction") for adversary in adversaries),
        ):
            arms = sorted((a for a in present if ARMS[a].family == family and ARMS[a].data == data and select(a)),
                          key=lambda a: ARMS[a].axes[axis])
            if len(arms) >= 2:
                points = [(ARMS[a].axes[axis], summaries[a].value(name)) for a in arms]
                title = family if family != "csvae" else f"csvae, beta4/beta1 = {ARMS[arms[0]].axes['beta4/beta1']:g}"
                curves.append({"family": title, "data": data, "price": price, "axis": axis, "measure": name,
                               "points": points})
    return curves


def draw_predictions(curves: list[dict], predictions: dict[str, DataPrediction], path: Path) -> Path | None:
    if not curves:
        return None
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
    colors = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"])
    for curve in curves:
        ax = right if curve["measure"] == "leak_fraction" else left
        color = next(colors, "black")
        x = [p[0] for p in curve["points"]]
        y = [p[1].mean for p in curve["points"]]
        low = [p[1].mean - p[1].lower if math.isfinite(p[1].lower) else 0 for p in curve["points"]]
        high = [p[1].upper - p[1].mean if math.isfinite(p[1].upper) else 0 for p in curve["points"]]
        label = f"{curve['family']}, {curve['data']} (measured)"
        ax.errorbar(x, y, yerr=[low, high], marker="o", color=color, capsize=3, label=label)
        prediction = predictions.get(curve["data"])
        if prediction is None:
            continue
        edge = boundary(curve["price"], prediction)
        if curve["price"] == "redundant":
            if not any(line.get_label().startswith("predicted (surgery)") for line in ax.get_lines()):
                ax.plot([min(x), max(x)], [0, 0], linestyle="--", color="black",
                        label="predicted (surgery): no leak at any weight > 0")
        elif math.isfinite(edge):
            top = max(v for v in y if math.isfinite(v)) if any(math.isfinite(v) for v in y) else 1.0
            xs = [min(x + [edge]) / 1.5, edge, edge, max(x + [edge]) * 1.5]
            ax.plot(xs, [top, top, 0, 0], linestyle="--", color=color,
                    label=f"predicted: keeps y below beta* = g/c = {edge:.2f}")
    for ax, title, xlabel in ((left, "label information kept vs KL weight", "beta (KL weight / reconstruction)"),
                              (right, "leak into the standard-normal latent beside a label latent",
                               "beta3/beta1")):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Barber-Agakov bound / H(y)")
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_title(title, fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6.5, loc="best")
    figure.tight_layout()
    return _save(figure, path, plt)


def draw_active_units(summaries: dict[str, ArmSummary], path: Path) -> Path | None:
    arms = [a for a in summaries if summaries[a].rows]
    if not arms:
        return None
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(max(8, 0.35 * len(arms)), 4.2))
    position = np.arange(len(arms))
    for offset, role, color in ((-0.2, "label", "tab:blue"), (0.0, "other", "tab:orange"), (0.2, "domain", "tab:green")):
        means = [np.nanmean([r.get(f"{role}_active_units", math.nan) for r in summaries[a].rows]) if any(
            math.isfinite(r.get(f"{role}_active_units", math.nan)) for r in summaries[a].rows) else np.nan
                 for a in arms]
        ax.bar(position + offset, means, width=0.2, color=color, label=f"{role} latent")
    ax.set_xticks(position, arms, rotation=70, ha="right", fontsize=6)
    ax.set_ylabel("active units (mean over seeds)")
    ax.set_title("live latents: units with Var_x E[z_j|x] > 0.01")
    ax.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path, plt)


def draw_tests(tests: list[TestResult], path: Path) -> Path | None:
    if not tests:
        return None
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8, 0.45 * len(tests) + 1.2))
    for index, test in enumerate(tests):
        e = test.estimate
        color = "tab:red" if test.rejects else "tab:grey"
        if math.isfinite(e.lower):
            ax.plot([e.lower, e.upper], [index, index], color=color)
        ax.plot([e.difference], [index], "o", color=color)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_yticks(range(len(tests)), [f"{t.id} {t.measure}" for t in tests], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("paired difference a - b, 95% CI (red: rejected after Holm)")
    figure.tight_layout()
    return _save(figure, path, plt)


def draw_mnist(rows: Sequence[dict], path: Path) -> Path | None:
    diva = [r for r in rows if r["family"] == "diva" and r["data"].startswith("rotated_mnist_")]
    if not diva:
        return None
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8, 4))
    for arm_kind, marker in (("ay3500", "o"), ("ay0", "s")):
        for measure_name, color in (("heldout_domain_classifier", "tab:blue"), ("heldout_domain_probe", "tab:orange")):
            points = sorted((int(r["data"].rsplit("_", 1)[1]), r[measure_name]) for r in diva if f"-{arm_kind}-" in
                            r["arm"] and math.isfinite(r.get(measure_name, math.nan)))
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, color=color,
                        linestyle="-" if arm_kind == "ay3500" else ":",
                        label=f"{'paper alphas' if arm_kind == 'ay3500' else 'alphas 0'}: {measure_name}")
    ax.set_xlabel("held-out angle (degrees)")
    ax.set_ylabel("accuracy on the held-out angle")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path, plt)


def _save(figure, path: Path, plt) -> Path:
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------------------
def write_report(out_dir: Path, mnist_dir: Path | None = None) -> Path:
    """``report.md``, figures, ``tests.csv`` and ``map.csv`` from ``out_dir/results.csv`` (and the MNIST section
    from ``mnist_dir/results.csv`` when given, or from the MNIST rows of ``out_dir`` itself)."""
    out_dir = Path(out_dir)
    rows = read_results(out_dir)
    if not rows:
        raise FileNotFoundError(f"out: no results in {out_dir / 'results.csv'}; run the experiment first")
    mnist_rows = read_results(mnist_dir) if mnist_dir is not None else []
    if mnist_dir is not None and not mnist_rows:
        raise FileNotFoundError(f"mnist: no results in {Path(mnist_dir) / 'results.csv'}")
    all_rows = rows + [r for r in mnist_rows if r["run_id"] not in {x["run_id"] for x in rows}]
    threshold = carries_fraction()
    summaries = summarize([r for r in all_rows if "mnist" not in r["data"]])
    mnist_summaries = summarize([r for r in all_rows if "mnist" in r["data"]])
    tests = preregistered_tests(all_rows)
    predictions = committed_predictions()
    fresh = sorted({r["data"] for r in all_rows} - set(predictions) - {"swiss_roll"})
    if fresh:  # data keys the committed file lacks: predicted now, and marked so
        from .kl_enough_predictions import predict_for_data
        from .kl_enough_runs import load_arm_data
        from .kl_enough_settings import Settings

        stored = json.loads((out_dir / SETTINGS_NAME).read_text()).get("settings", {}) if (
            out_dir / SETTINGS_NAME).is_file() else {}
        settings = Settings.from_json(stored) if stored else Settings()
        for key in fresh:
            try:
                predictions[key] = predict_for_data(key, load_arm_data(key, settings, 0))
            except (ValueError, FileNotFoundError):
                continue
    curves = prediction_curves(summaries)
    figures = {}
    for key, path, draw in (
        ("map", out_dir / FIGURES["map"], lambda p: draw_map(summaries, p, threshold)),
        ("prediction", out_dir / FIGURES["prediction"], lambda p: draw_predictions(curves, predictions, p)),
        ("live", out_dir / FIGURES["live"], lambda p: draw_active_units({**summaries, **mnist_summaries}, p)),
        ("tests", out_dir / FIGURES["tests"], lambda p: draw_tests(tests, p)),
        ("mnist", out_dir / FIGURES["mnist"], lambda p: draw_mnist(all_rows, p)),
    ):
        if draw(path) is not None:
            figures[key] = path.name
    _write_tests_csv(tests, out_dir / TESTS_NAME)
    _write_map_csv({**summaries, **mnist_summaries}, out_dir / MAP_NAME, threshold)
    settings = json.loads((out_dir / SETTINGS_NAME).read_text()) if (out_dir / SETTINGS_NAME).is_file() else {}
    timing = json.loads((out_dir / TIMING_NAME).read_text()) if (out_dir / TIMING_NAME).is_file() else []
    mnist_timing = []
    if mnist_dir is not None and (Path(mnist_dir) / TIMING_NAME).is_file():
        mnist_timing = json.loads((Path(mnist_dir) / TIMING_NAME).read_text())
    text = render(rows, all_rows, summaries, mnist_summaries, tests, predictions, fresh, curves, figures, settings,
                  timing, mnist_timing, threshold, mnist_dir,
                  longer_runs_dir=Path(mnist_dir) if mnist_dir is not None else out_dir)
    path = out_dir / REPORT_NAME
    path.write_text(text)
    return path


def _write_tests_csv(tests: list[TestResult], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["family", "id", "measure", "a", "b", "n", "mean_a", "mean_b", "difference", "lower", "upper",
                         "t", "p", "holm_p", "d_z", "rejected", "expectation", "question"])
        for t in tests:
            e = t.estimate
            writer.writerow([t.family, t.id, t.measure, t.a, t.b, e.n, e.mean_a, e.mean_b, e.difference, e.lower,
                             e.upper, e.t_statistic, e.p_value, t.holm_p, e.d_z, t.rejects, t.expectation,
                             t.question])


def _write_map_csv(summaries: dict[str, ArmSummary], path: Path, threshold: float) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arm", "family", "data", "axes", "seeds", "label_fraction", "label_lower", "label_upper",
                         "leak_fraction", "leak_lower", "leak_upper", "label_active_units", "other_active_units",
                         "label_live", "other_live", "verdict"])
        for arm, s in summaries.items():
            if arm not in ARMS:
                continue
            writer.writerow([arm, ARMS[arm].family, ARMS[arm].data, json.dumps(dict(ARMS[arm].axes)), len(s.rows),
                             s.label.mean, s.label.lower, s.label.upper, s.leak.mean, s.leak.lower, s.leak.upper,
                             live_text(s, "label"), live_text(s, "other"), s.label_live, s.other_live,
                             cell_verdict(s, threshold)])


def _verdict_groups(summaries: dict[str, ArmSummary], threshold: float) -> dict[str, dict[str, list[str]]]:
    groups: dict[str, dict[str, list[str]]] = {}
    for arm, s in summaries.items():
        if arm not in ARMS:
            continue
        family = f"{ARMS[arm].family} ({ARMS[arm].data})"
        groups.setdefault(family, {}).setdefault(cell_verdict(s, threshold), []).append(axes_text(arm))
    return groups


def answer(summaries: dict[str, ArmSummary], tests: list[TestResult], threshold: float) -> list[str]:
    """The answer as a map: per family, the weights at which each verdict holds, then what the tests showed."""
    lines = []
    for family, verdicts in _verdict_groups(summaries, threshold).items():
        parts = [f"*{verdict}* at {'; '.join(where)}" for verdict, where in sorted(verdicts.items())]
        lines.append(f"- **{family}**: " + " | ".join(parts) + ".")
    if tests:
        lines.append("")
        lines.append("Pre-registered tests (paired over seeds, Holm within each family; a > b means the first arm is "
                     "higher):")
        for t in tests:
            lines.append(f"- {t.id} ({t.family}): {t.question} {t.measure} a - b = {fmt_paired(t.estimate)}, "
                         f"n = {t.estimate.n}, Holm p = {fmt_p(t.holm_p)}: **{t.direction}** "
                         f"(expected: {t.expectation.split(':')[0]}).")
    return lines


def render(rows, all_rows, summaries, mnist_summaries, tests, predictions, fresh, curves, figures, settings, timing,
           mnist_timing, threshold, mnist_dir, longer_runs_dir: Path | None = None) -> str:
    lines: list[str] = []
    add = lines.append
    stored = settings.get("settings", {})
    add("# Is the KL term to a label-conditional prior enough? (`elbocheck experiment kl-enough`)")
    add("")
    add("The question (project seed 000): CSVAE (Klys, Snell & Zemel 2018) and DIVA (Ilse et al. 2020) already have "
        "a KL term to a label-conditional prior, KL(q(w|x,y) || p(w|y)) and KL(q(z_y|x) || p(z_y|y)). Is that not "
        "enough to put the label information into w (z_y)? Why add an auxiliary classifier (DIVA) or an adversary "
        "on the other latent (CSVAE)?")
    add("")
    if not summaries:  # an MNIST-only folder: its section, then the tests and the setup
        lines += mnist_section(all_rows, mnist_summaries, tests, figures, timing, threshold, None,
                               longer_runs_dir)
        lines += _tests_section(tests, figures)
        lines += _setup_section(rows, settings, timing, mnist_summaries)
        return "\n".join(lines)
    add("## The answer: a map over the weights")
    add("")
    add("It depends on the weights, in the way the conditional-prior surgery predicts: the KL term to p(w|y) never "
        "*rewards* label information in w, it only sets its *price*, and the answer follows from comparing prices. "
        "Per nat of label information, a standard-normal latent's KL charges 1 (times its weight), CSVAE's w with y "
        "fed to its encoder charges 0, DIVA's z_y (learned prior, encoder of x alone) charges the information about "
        "x beyond y that reading y costs; the reconstruction pays g nats per nat to the first latent that gives the "
        "decoder y, and nothing to a second copy. So where the weights leave a latent's price below what y is worth "
        "(beta < beta* = g/c) it keeps y, and a second copy beside a label latent (a *leak*) buys nothing: the "
        "optimum of the weighted ELBO has no leak at any positive KL weight. What the runs show, cell by cell "
        f"(verdicts by the committed rules: a latent carries y when the 95% lower bound of its Barber-Agakov "
        f"fraction of H(y) exceeds {threshold:g}; 'no leak' needs a live other latent):")
    add("")
    lines += answer(summaries, tests, threshold)
    add("")
    if "map" in figures:
        add(f"![The map: one heat map per family, cells annotated with the value, the verdict and the other latent's "
            f"active units]({figures['map']})")
        add("")
    add("## The map, cell by cell")
    add("")
    add("Fractions of H(y), means over seeds with 95% t-intervals; `label from x` is what the label latent carries "
        "about y from x alone (CSVAE's encoders are fed a random label for it; for the reference, its only latent), "
        "`label, own input` the same with the encoder's own input (for CSVAE, the true y), `leak` what the other "
        "latent carries; AU = active units (min-max over seeds) / dimensions.")
    add("")
    lines += table(["arm", "weights", "seeds", "label from x", "label, own input", "leak", "AU label", "AU other",
                    "KL label, nats", "KL other, nats", "swap success", "ELBO", "verdict"],
                   ([arm, axes_text(arm), len(s.rows), fmt_mean(s.label),
                     fmt_mean(s.value("label_fraction_own_input")), fmt_mean(s.leak), live_text(s, "label"),
                     live_text(s, "other"), fmt_mean(s.value("label_kl"), 2), fmt_mean(s.value("other_kl"), 2),
                     fmt_mean(s.value("swap_success")), fmt_mean(s.value("term_elbo"), 1),
                     cell_verdict(s, threshold)] for arm, s in summaries.items()))
    add("")
    add("## Predicted boundaries beside the measured ones")
    add("")
    commit = git_commit_of(PREDICTIONS_PATH)
    add(f"The predictions were computed from the data before the runs and committed in "
        f"`elbocheck/experiments/kl_enough_predictions.json`" + (f" (commit {commit})" if commit else "") +
        "; how: `docs/kl-enough/preregistration.md`. g = the reconstruction gain per nat of label information for "
        "the decoder's factorized likelihood, c = the KL price per nat (1: standard-normal prior; H(y_hat|y)/I(y_hat;y) "
        "of a pixel classifier: learned label-conditional prior with an encoder of x; 0: CSVAE's w), beta* = g/c." +
        (f" Not in the committed file, predicted now: {', '.join(fresh)}." if fresh else ""))
    add("")
    used = sorted({c["data"] for c in curves} | {k for k in predictions if any(r["data"] == k for r in all_rows)})
    lines += table(["data", "g", "classifier accuracy", "c (learned prior)", "beta* standard-normal",
                    "beta* learned prior (DIVA z_y, CDVAE z_l)"],
                   ([k, fmt(predictions[k].value_per_nat, 2), fmt(predictions[k].classifier_accuracy),
                     fmt(predictions[k].price_per_nat_learned_prior), fmt(predictions[k].boundary_standard_prior, 2),
                     fmt(predictions[k].boundary_learned_prior, 2)] for k in used if k in predictions))
    add("")
    for curve in curves:
        prediction = predictions.get(curve["data"])
        edge = boundary(curve["price"], prediction) if prediction else math.nan
        points = ", ".join(f"{x:g}: {fmt(v.mean, 2)}" for x, v in curve["points"])
        what = "leak" if curve["measure"] == "leak_fraction" else "label information kept"
        predicted = ("no leak at any weight > 0" if curve["price"] == "redundant" else
                     f"keeps y below beta* = {fmt(edge, 2)}, drops it above")
        add(f"- {curve['family']} on {curve['data']}, {what} by {curve['axis']}: {points}. Predicted: {predicted}.")
    add("")
    if "prediction" in figures:
        add(f"![Measured (points, 95% CIs) against predicted (dashed)]({figures['prediction']})")
        add("")
        add("*Dashed: the committed prediction. Left: a latent keeps y below beta* = g/c and drops it above (the step "
            "is drawn at the curve's measured small-beta level: the prediction is the boundary, not the level). "
            "Right: a copy of y beside a label latent buys nothing, so no leak at any positive weight.*")
        add("")
    boundary_tests = [t for t in tests if t.kind == "boundary"]
    if boundary_tests:
        add("Boundary tests (committed): " + "; ".join(
            f"{t.id} {t.a} vs {t.b}: {fmt_paired(t.estimate)}, Holm p {fmt_p(t.holm_p)} -> "
            f"{'confirmed' if t.rejects and t.estimate.difference > 0 else 'not confirmed'}" for t in boundary_tests)
            + ".")
        add("")
    lines += _tests_section(tests, figures)
    add("## Live latents")
    add("")
    add("Every arm warms its KL weights up linearly from 0 over the first "
        f"{fmt(100 * float(stored.get('warmup_fraction', 0.2)), 0)}% of its epochs (the schedule of the DIVA code, "
        "which uses 100 epochs). A 'no leak' verdict needs at least one active unit in the other latent in every "
        "seed; cells where it is dead are 'no claim' (hatched in the map). Where a latent is dead by the weights' "
        "own logic (the reference beyond its boundary, DIVA's z_x whose non-label information z_y can hold at the "
        "same price) this is the objective's optimum, not a training failure.")
    add("")
    if "live" in figures:
        add(f"![Active units per latent]({figures['live']})")
        add("")
    if any("mnist" in r["data"] for r in all_rows):
        lines += mnist_section(all_rows, mnist_summaries, tests, figures, mnist_timing, threshold, mnist_dir,
                               longer_runs_dir)
    add("## The derivation behind the prices")
    add("")
    add(f"`{DERIVATION_PATH}` (checked by `elbocheck verify conditional_prior_surgery`) proves, for a latent w with "
        "prior p(w|y):")
    add("")
    add("    E_{p_D(x,y)} KL(q(w|x,y) || p(w|y)) = I_q(w; x | y) + E_{p_D(y)} KL(q(w|y) || p(w|y))")
    add("    I_q(z; x, y) = I_q(z; y) + I_q(z; x | y) <= E KL(q(z|x,y) || p(z))")
    add("")
    add("and refutes `E KL(q(w|x,y) || p(w|y)) >= I(w; y)` (counterexample: q(w|x,y) = p(w|y)). For an encoder of x "
        "alone (DIVA's z_y) the same identity reads E KL(q(z_y|x) || p(z_y|y)) = I(z_y; x) - I(z_y; y) + "
        "E_y KL(q(z_y|y) || p(z_y|y)): label information is discounted, not rewarded. The auxiliary classifier adds a "
        "reward for label information in z_y (alpha_y per nat of its log-likelihood), the adversary a price for it in "
        "z (beta4 per nat of the adversary's entropy).")
    add("")
    lines += _setup_section(rows, settings, timing, summaries)
    add("## Caveats")
    add("")
    seeds = len(stored.get("seeds", []))
    add(f"- {seeds} seed(s) per arm: with n paired seeds the t quantile is large ({fmt(_t_quantile(seeds), 1)} at "
        f"n = {seeds}), and Holm over each family asks more; an unrejected test is not evidence of no effect.")
    add("- Short training on small data (epochs above): the leak at weak KL weights measures how far a finite run "
        "is from the weighted ELBO's optimum, and would shrink with longer training only if the optimizer follows "
        "the tiny price; `--preset full` trains 5x longer.")
    add("- The Barber-Agakov bound uses a linear classifier on posterior draws: it is a lower bound (a better "
        "classifier could only raise it); the plug-in I is reported in results.csv with its permuted-label floor.")
    add("- CSVAE's x-only measures feed the encoders a random label, an input they never met in training.")
    add("- The predictions are first order (the first nats' value, a hard-classifier encoder, the optimum reached).")
    add("- The swap classifier is trained on real images and judges decoded means; the reconstructions' own "
        "accuracy (results.csv) is the ceiling.")
    add("")
    add("## Files")
    add("")
    add("`results.csv` (one row per run; columns below), `map.csv` (the map: one row per arm with the verdict), "
        "`tests.csv` (the pre-registered tests), `settings.json`, `timing.json`, the figures.")
    add("")
    lines += table(["column", "meaning"], ([k, v] for k, v in {**IDENTITY_COLUMNS, **MEASURE_COLUMNS}.items()))
    add("")
    add("References: Klys, Snell & Zemel 2018, Learning Latent Subspaces in Variational Autoencoders (NeurIPS); Ilse, "
        "Tomczak, Louizos & Welling 2020, DIVA: Domain Invariant Variational Autoencoders (MIDL; code "
        "github.com/AMLab-Amsterdam/DIVA); Creswell et al. 2017, Conditional Autoencoders with Adversarial "
        "Information Factorization; Hoffman & Johnson 2016, ELBO surgery; Barber & Agakov 2003; Burda, Grosse & "
        "Salakhutdinov 2016 (active units); Kingma et al. 2016 (free bits); Holm 1979; Cohen 1988 (d_z).")
    add("")
    return "\n".join(lines)


def _tests_section(tests, figures) -> list[str]:
    lines: list[str] = []
    add = lines.append
    add("## Pre-registered paired tests")
    add("")
    commit = git_commit_of(PREREGISTRATION_PATH)
    add("Rules and tests committed before the runs in `elbocheck/experiments/kl_enough_preregistration.json` "
        + (f"(commit {commit}) " if commit else "") + "and explained in `docs/kl-enough/preregistration.md`. Two-sided "
        "paired t-tests over the pairing unit (seeds share the data split and the initialisation seed; for MNIST "
        "the six held-out angles), Holm's correction within each family, effect = mean paired difference a - b with "
        "its 95% t-interval, d_z = mean / sd of the differences.")
    add("")
    lines += table(["id", "family", "measure", "a", "b", "n", "mean a", "mean b", "a - b [95% CI]", "d_z", "p",
                    "Holm p", "result", "expected"],
                   ([t.id, t.family, t.measure, t.a, t.b, t.estimate.n, fmt(t.estimate.mean_a), fmt(t.estimate.mean_b),
                     fmt_paired(t.estimate), fmt(t.estimate.d_z, 2), fmt_p(t.estimate.p_value), fmt_p(t.holm_p),
                     t.direction, t.expectation.split(":")[0]] for t in tests))
    add("")
    if "tests" in figures:
        add(f"![Paired effects with 95% CIs]({figures['tests']})")
        add("")
    return lines


def _setup_section(rows, settings, timing, summaries) -> list[str]:
    lines: list[str] = []
    add = lines.append
    stored = settings.get("settings", {})
    add("## Setup")
    add("")
    add(f"Preset `{stored.get('preset', '?')}`, seeds {', '.join(map(str, stored.get('seeds', [])))}; batch "
        f"{stored.get('batch_size')}, Adam lr {stored.get('lr')}; epochs and data per data key: " + "; ".join(
            f"{key}: {epochs} epochs, {json.dumps(settings.get('run_defining', {}).get('data_options', {}).get(key, {}))}"
            for key, epochs in sorted(settings.get("run_defining", {}).get("epochs", {}).items())) + ".")
    if timing:
        trained = [t for t in timing if t.get("runs_trained", 0) > 0]
        last = trained[-1] if trained else timing[-1]
        cpu = sum(float(r.get("cpu_seconds", math.nan)) for r in rows)
        add(f"Wall time of the invocation that trained the runs: {fmt(last['wall_seconds'], 1)} s "
            f"({last['runs_trained']} runs, {last['workers']} worker process(es) x {last['torch_threads']} torch "
            f"thread(s){', Ray ' + str(last.get('ray')) if last.get('ray') else ''}, {last['cpu_count']} CPUs; load "
            f"average (1, 5, 15 min) {last.get('load_average_at_start', '?')} at the start and "
            f"{last.get('load_average_at_end', '?')} at the end, finished {last['finished_at']}). CPU time of the "
            f"runs' training and measuring: {fmt(cpu, 1)} s in all (CPU time grows too on a loaded machine; README "
            f"gives a wall time measured on idle cores).")
    add("")
    lines += table(["arm", "model", "data", "auxiliary term", "weights"],
                   ([arm, ARMS[arm].model, ARMS[arm].data, ARMS[arm].auxiliary, axes_text(arm)]
                    for arm in summaries if arm in ARMS))
    add("")
    return lines


def _t_quantile(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1)) if n >= 2 else math.nan


LONGER_DIVA_RUNS_NAME = "diva_100_epochs_results.csv"
#: The DIVA paper's rotated-MNIST accuracies, typed in from the paper by whoever has it (columns
#: ``held_out_angle,accuracy_percent,std_percent,source``); read from the MNIST results folder when present.
DIVA_PAPER_TABLE_NAME = "diva_paper_table1.csv"


def read_diva_paper_table(path: Path) -> tuple[dict[int, str], list[str]]:
    """The paper's accuracy per held-out angle as text for the report (``"93.5% +- 0.3"``), and the sources named.

    Raises ``ValueError`` naming ``path:line`` for a row that is not one of the six angles with percentages in
    [0, 100], or for an angle given twice."""
    out: dict[int, str] = {}
    sources: set[str] = set()
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        expected = ["held_out_angle", "accuracy_percent", "std_percent", "source"]
        if reader.fieldnames != expected:
            raise ValueError(f"{path}:1: expected the columns {','.join(expected)}, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                angle = int(row["held_out_angle"])
                accuracy = float(row["accuracy_percent"])
                std = float(row["std_percent"]) if row["std_percent"] not in (None, "") else None
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line}: expected an integer angle and numbers in percent, got "
                                 f"{dict(row)}") from None
            if angle not in ROTATED_MNIST_ANGLES:
                raise ValueError(f"{path}:{line}: held_out_angle {angle} is not one of {list(ROTATED_MNIST_ANGLES)}")
            if not 0 <= accuracy <= 100 or (std is not None and not 0 <= std <= 100):
                raise ValueError(f"{path}:{line}: percentages must lie in [0, 100], got {accuracy} +- {std}")
            if not (row["source"] or "").strip():
                raise ValueError(f"{path}:{line}: the source (paper, table, version) is empty")
            if angle in out:
                raise ValueError(f"{path}:{line}: held_out_angle {angle} is given twice")
            spread = f" +- {std:g}" if std is not None else ""
            out[angle] = f"{accuracy:g}%{spread}"
            sources.add(row["source"].strip())
    return out, sorted(sources)


def _row_values(rows: dict, key: str) -> str:
    """The distinct values of ``key`` over ``rows`` (e.g. the epochs the runs trained), as written in the rows."""
    values = sorted({int(float(r[key])) for r in rows.values() if r.get(key) not in (None, "")})
    return " / ".join(str(v) for v in values) or "?"


def mnist_section(all_rows, mnist_summaries, tests, figures, mnist_timing, threshold, mnist_dir,
                  longer_runs_dir: Path | None = None) -> list[str]:
    lines: list[str] = []
    add = lines.append
    add("## MNIST: DIVA on rotated MNIST and CSVAE on a binary attribute")
    add("")
    diva = {r["arm"]: r for r in all_rows if r["family"] == "diva" and r["data"].startswith("rotated_mnist_")}
    if diva:
        add("DIVA on rotated MNIST by the paper's protocol (Ilse et al. 2020, Sec. 4.1, and their code): 100 digits "
            "per class from the MNIST training images (1,000 digits), rotated by 0, 15, 30, 45, 60, 75 degrees; each "
            "angle held out in turn, the model trained on the other five; the paper's test set is the same 1,000 "
            "digits at the held-out angle. Here: binarized pixels with a Bernoulli decoder (the paper: 256-level "
            "categorical), this project's small convolutional nets (the paper: theirs), 64-dimensional z_d, z_x, "
            f"z_y, the paper's alpha_y = 3500, alpha_d = 2000, beta = 1 warmed up over {_row_values(diva, 'warmup_epochs')} "
            f"epochs (the paper: 100), {_row_values(diva, 'epochs')} epochs without early stopping (the paper: up to "
            "500, early stopping on training accuracy), one seed per angle (the paper: several). 'paper test set' = "
            "the training digits at the held-out angle; 'unseen digits' = 200 other digits at that angle.")
        add("")
        table_path = Path(longer_runs_dir) / DIVA_PAPER_TABLE_NAME if longer_runs_dir is not None else None
        paper_table, sources = (read_diva_paper_table(table_path) if table_path is not None and table_path.is_file()
                                else ({}, []))
        if paper_table:
            add(f"**The DIVA paper's numbers** (last column, from `{table_path.name}`: {'; '.join(sources)}). The "
                "protocols differ as listed above, so the comparison is of orders of magnitude, not a replication.")
        else:
            add("**The DIVA paper's numbers.** The held-out accuracies of the DIVA paper's rotated-MNIST table could "
                "not be retrieved in this environment (the stored copies of the paper give its opening pages only), "
                "so they are not quoted here rather than guessed; compare with Table 1 of Ilse et al. 2020 "
                "(arXiv:1905.10427). The one figure found in a public source is a reader's remark in the authors' "
                "repository (issue #1 of github.com/AMLab-Amsterdam/DIVA): about 93% test accuracy for held-out "
                f"angle 0 in the paper. Whoever has the paper can type its table into `{DIVA_PAPER_TABLE_NAME}` "
                "beside the MNIST results (columns held_out_angle, accuracy_percent, std_percent, source) and "
                "rerun the report: the last column is then filled.")
        add("")
        body = []
        for angle in ROTATED_MNIST_ANGLES:
            paper = diva.get(f"diva-rotated_mnist_{angle}-b1-ay3500-ad2000")
            none = diva.get(f"diva-rotated_mnist_{angle}-b1-ay0-ad0")
            if paper is None and none is None:
                continue

            def get(row, key):
                return fmt(row.get(key, math.nan)) if row else "-"

            body.append([f"{angle}", get(paper, "heldout_domain_classifier"), get(paper, "heldout_domain_probe"),
                         get(paper, "heldout_unseen_classifier"), get(none, "heldout_domain_probe"),
                         get(none, "heldout_unseen_probe"), fmt(label_fraction(paper)) if paper else "-",
                         fmt(label_fraction(none)) if none else "-",
                         paper_table.get(angle, "not retrieved (see above)")])
        lines += table(["held-out angle", "DIVA q(y|z_y), paper test set", "probe on z_y, paper test set",
                        "DIVA q(y|z_y), unseen digits", "alphas 0: probe on z_y, paper test set",
                        "alphas 0: probe, unseen digits", "z_y label fraction, paper alphas",
                        "z_y label fraction, alphas 0", "DIVA paper (Table 1)"], body)
        add("")
        extra = Path(longer_runs_dir) / LONGER_DIVA_RUNS_NAME if longer_runs_dir is not None else None
        if extra is not None and extra.is_file():
            # Runs of an earlier protocol (prereg addendum 2): shown, never pooled with the tested runs.
            with extra.open(newline="") as handle:
                longer = list(csv.DictReader(handle))
            add(f"Runs of the first protocol, stopped when it proved too slow here (preregistration addendum 2; not "
                f"used in M1, M2): " + "; ".join(
                    f"{r['arm']} ({r['epochs']} epochs): DIVA q(y|z_y) {fmt(float(r['heldout_domain_classifier'] or 'nan'))}, "
                    f"probe on z_y {fmt(float(r['heldout_domain_probe'] or 'nan'))} at the held-out angle"
                    for r in longer) + f" (`{extra.name}`).")
            add("")
        mean_paper = [r.get("heldout_domain_classifier", math.nan) for a, r in diva.items() if "-ay3500-" in a]
        if mean_paper:
            add(f"Mean over the held-out angles of DIVA's own accuracy (paper weights): "
                f"{fmt(float(np.nanmean(mean_paper)))}.")
            add("")
        if "mnist" in figures:
            add(f"![DIVA on rotated MNIST, accuracy at each held-out angle]({figures['mnist']})")
            add("")
    mnist_tests = [t for t in tests if t.family == "mnist"]
    if mnist_tests:
        add("Pre-registered MNIST tests (paired over the held-out angles, Holm): " + "; ".join(
            f"{t.id} {t.measure} paper alphas - alphas 0 = {fmt_paired(t.estimate)}, Holm p {fmt_p(t.holm_p)}: "
            f"{t.direction}" for t in mnist_tests) + ".")
        add("")
    csvae = [a for a in mnist_summaries if a in ARMS and ARMS[a].family == "csvae"]
    if csvae:
        add("CSVAE on MNIST with a binary attribute, *thickness* (1 when an image has more ink than the median of its "
            "digit class: half of every class, so independent of the digit by construction), 20,000 training images "
            "(80/20 split), binarized, MLP nets, z 16-d, w 2-d, 30 epochs, one seed. The swap replaces w by a draw "
            "from p(w|y') of the other thickness and keeps z; an independent logistic regression on pixels judges the "
            "thickness (swap success) and an independent digit classifier whether the digit survived.")
        add("")
        lines += table(["arm", "weights", "leak of thickness into z (/ H(y))", "w from x", "w, own input", "AU z",
                        "swap success", "digit kept", "thickness classifier accuracy", "ELBO"],
                       ([a, axes_text(a), fmt_mean(mnist_summaries[a].leak), fmt_mean(mnist_summaries[a].label),
                         fmt_mean(mnist_summaries[a].value("label_fraction_own_input")),
                         live_text(mnist_summaries[a], "other"), fmt_mean(mnist_summaries[a].value("swap_success")),
                         fmt_mean(mnist_summaries[a].value("swap_identity_kept")),
                         fmt_mean(mnist_summaries[a].value("swap_classifier_accuracy")),
                         fmt_mean(mnist_summaries[a].value("term_elbo"), 1)] for a in csvae))
        add("")
        add("Beside the CSVAE paper's claims (Klys et al. 2018, abstract and Sec. 5, on the Toronto Faces and CelebA "
            "data): the model 'is capable of extracting features correlated to binary labels in the data and "
            "structuring it in a latent subspace which is easy to interpret', the subspace 'can easily be inspected "
            "and independently manipulated', and attribute manipulation changes the attribute while keeping the rest "
            "of the image (their figures). Their quantitative tables could not be retrieved here. The columns above "
            "test the same two claims on MNIST thickness: swap success (the attribute changes) and digit kept (the "
            "rest survives), at the paper's weights and at the ELBO's.")
        add("")
    if mnist_timing:
        trained = [t for t in mnist_timing if t.get("runs_trained", 0) > 0]
        if trained:
            last = trained[-1]
            add(f"MNIST wall time: {fmt(last['wall_seconds'] / 3600, 2)} h for {last['runs_trained']} runs "
                f"({last['workers']} worker processes x {last['torch_threads']} torch thread, {last['cpu_count']} "
                f"CPUs shared with other work: load average {last.get('load_average_at_start')} at the start, "
                f"{last.get('load_average_at_end')} at the end; finished {last['finished_at']}).")
            add("")
    mnist_cpu = [float(r["cpu_seconds"]) for r in all_rows if "mnist" in r["data"] and r.get("cpu_seconds") not in (None, "")]
    if mnist_cpu:
        add(f"CPU time of the {len(mnist_cpu)} MNIST runs in this section (training and measures, per run's process): "
            f"{fmt(sum(mnist_cpu) / 60, 1)} CPU-minutes in all.")
        add("")
    if mnist_dir is not None:
        add(f"Source: `{Path(mnist_dir).as_posix()}/results.csv`.")
        add("")
    return lines
