"""The results of ``elbocheck experiment kl-enough``: the columns of ``results.csv`` and its reading and writing.

One row per (arm, seed). Each run also writes its row to ``runs/RUN_ID/row.json`` (atomically, where it ran), so a
row survives a driver that dies before appending it; a rerun adds such rows to the CSV without training again.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

RESULTS_NAME = "results.csv"
SETTINGS_NAME = "settings.json"
TIMING_NAME = "timing.json"
RUNS_FOLDER = "runs"
ROW_NAME = "row.json"

IDENTITY_COLUMNS: dict[str, str] = {
    "run_id": "ARM-seedS, the run's folder under runs/",
    "arm": "the arm (model and weights), see the arms table",
    "family": "csvae, reference (beta-VAE, no label route), diva, cdvae, condvae_info",
    "model": "registry name of the model",
    "data": "data key (see the setup table)",
    "auxiliary": "the auxiliary term the arm trains with (none: the ELBO's terms only, weighted)",
    "axes": "the arm's coordinates in the weight grid (JSON)",
    "seed": "seed of the data split (shared by every arm: the pairing unit), the initialisation and the measures",
    "epochs": "training epochs",
    "warmup_epochs": "epochs over which the KL weights rise linearly to their value",
    "num_classes": "K, the number of classes of y",
    "label_entropy": "H(y) of the held-out labels, nats: the largest possible I(.; y)",
    "majority_class_frequency": "frequency of the most common held-out class: the chance level of a probe",
    "label_latent": "the latent meant to carry y (w, zy, zl; empty where there is none)",
    "other_latent": "the latent meant not to carry y (z, zx, zu)",
    "num_heldout": "held-out (validation) examples measured",
    "train_seconds": "wall time of training",
    "measure_seconds": "wall time of the measurements",
    "cpu_seconds": "CPU time of the run's process for training and measuring (what it costs on an idle core)",
}


def _information(prefix: str, what: str) -> dict[str, str]:
    return {
        f"{prefix}_mi": f"plug-in I({what}; y), nats (upward biased)",
        f"{prefix}_mi_se": f"Monte-Carlo standard error of {prefix}_mi",
        f"{prefix}_mi_shuffled": f"{prefix}_mi with permuted labels: the estimator's bias floor",
        f"{prefix}_mi_bound": f"Barber-Agakov lower bound on I({what}; y) from posterior draws (held-out logistic "
                              "regression), nats: the key measure",
        f"{prefix}_probe": f"held-out logistic-probe accuracy of y from the means of {what}",
        f"{prefix}_probe_lower": "Wilson 95% lower bound",
        f"{prefix}_probe_upper": "Wilson 95% upper bound",
    }


def _liveness(role: str, what: str) -> dict[str, str]:
    return {f"{role}_active_units": f"active units of {what} (Var_x E[z_j|x] > 0.01)",
            f"{role}_dims": f"dimensions of {what}",
            f"{role}_kl": f"held-out E KL of {what} against its prior, nats"}


def _accuracy(prefix: str, what: str) -> dict[str, str]:
    return {prefix: what, f"{prefix}_lower": "Wilson 95% lower bound", f"{prefix}_upper": "Wilson 95% upper bound"}


MEASURE_COLUMNS: dict[str, str] = {
    "term_reconstruction": "held-out E_q log p(x | latents), nats",
    "term_elbo": "held-out true ELBO (reconstruction minus the unweighted KLs, + log p(y) for CSVAE), nats",
    "term_objective": "held-out training objective (weights and auxiliary terms included)",
    **{f"term_kl_{latent}": f"held-out KL of {latent}, nats" for latent in ("w", "z", "zy", "zx", "zd", "zl", "zu")},
    "term_log_prior_y": "log p(y) (CSVAE)",
    "term_classifier_y": "held-out E log q_omega(y | z_y) (DIVA; reported even when alpha_y = 0)",
    "term_classifier_d": "held-out E log q_omega(d | z_d) (DIVA)",
    "term_adversary": "held-out adversary cross-entropy E[-log q(y|z)] (CSVAE, CondVAE-info)",
    "term_adversary_entropy": "held-out entropy of the adversary's prediction (CSVAE)",
    **_liveness("label", "the label latent"),
    **_liveness("other", "the other latent"),
    **_liveness("domain", "DIVA's domain latent z_d"),
    **_information("label", "label latent"),
    **_information("label_xonly", "label latent, encoder fed a random label (from x only)"),
    **_information("other", "other latent (the leak)"),
    **_information("other_xonly", "other latent, encoder fed a random label"),
    **_information("domain", "z_d (DIVA)"),
    **{key: text.replace("; y)", "; d)").replace("of y", "of d") for key, text in
       _information("label_domain", "z_y (DIVA): domain information in the class latent").items()
       if "bound" not in key},
    "prior_label_information": "I_p(w; y) carried by the prior's class components p(w|y), nats",
    "label_kl_closed_form": "E KL(label latent || p(.|y)) on the held-out split (closed form), nats",
    "label_kl_information_beyond_label": "I_q(w; x | y): the part of the KL for information about x beyond y",
    "label_kl_aggregate_mismatch": "E_y KL(q(w|y) || p(w|y)): the part for the class aggregate's mismatch",
    "label_kl_monte_carlo": "Monte-Carlo sum of the two parts (agrees with the closed form up to sampling error)",
    "label_kl_information_ceiling": "mean over held-out points of log N_y: the largest plug-in I_q(w; x | y)",
    "prior_rule_accuracy": "held-out accuracy of argmax_y p(mean of w from x only | y)",
    "prior_rule_lower": "Wilson 95% lower bound", "prior_rule_upper": "Wilson 95% upper bound",
    "swap_classifier_accuracy": "held-out accuracy of the independent classifier of y from x (real data)",
    "swap_classifier_lower": "Wilson 95% lower bound", "swap_classifier_upper": "Wilson 95% upper bound",
    "reconstruction_label_accuracy": "fraction of reconstructions (no swap) the classifier labels with the true y",
    **_accuracy("swap_success", "fraction of swapped decodes (label latent from p(w|y'), or decoder label y') "
                                "classified as y'"),
    "swap_kept_original": "fraction of swapped decodes still classified as the original y",
    "swap_exchange_success": "swap success with the label latent's mean of a held-out example of y'",
    "swap_exchange_lower": "Wilson 95% lower bound", "swap_exchange_upper": "Wilson 95% upper bound",
    "swap_identity_kept": "fraction of swapped decodes whose digit (independent digit classifier) is unchanged",
    "identity_classifier_accuracy": "held-out accuracy of the independent digit classifier",
    **_accuracy("heldout_domain_classifier", "DIVA, held-out angle, the paper's test set (training digits): "
                                             "accuracy of q_omega(y | z_y) at the mean of z_y"),
    **_accuracy("heldout_domain_probe", "DIVA, held-out angle: logistic probe fitted on training z_y means"),
    **_accuracy("heldout_domain_prior_rule", "DIVA, held-out angle: argmax_y p(z_y mean | y)"),
    **_accuracy("heldout_unseen_classifier", "DIVA, held-out angle, unseen digits: q_omega(y | z_y)"),
    **_accuracy("heldout_unseen_probe", "DIVA, held-out angle, unseen digits: probe on z_y means"),
    **_accuracy("heldout_unseen_prior_rule", "DIVA, held-out angle, unseen digits: argmax_y p(z_y | y)"),
}

COLUMNS: tuple[str, ...] = (*IDENTITY_COLUMNS, *MEASURE_COLUMNS)
TEXT_COLUMNS = {"run_id", "arm", "family", "model", "data", "auxiliary", "axes", "label_latent", "other_latent"}
INT_COLUMNS = {"seed", "epochs", "warmup_epochs", "num_classes", "num_heldout"}


def parse_row(raw: Mapping[str, Any]) -> dict:
    """A CSV row with numbers parsed (empty cells -> NaN), ``axes`` decoded."""
    row: dict[str, Any] = {}
    for key, value in raw.items():
        if key in TEXT_COLUMNS:
            row[key] = value
        elif key in INT_COLUMNS:
            row[key] = int(value)
        else:
            row[key] = float(value) if value not in ("", None) else math.nan
    row["axes"] = json.loads(row["axes"]) if row.get("axes") else {}
    return row


def read_results(out_dir: str | Path) -> list[dict]:
    """The rows of ``results.csv`` (parsed; ``axes`` a dict)."""
    path = Path(out_dir) / RESULTS_NAME
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [parse_row(raw) for raw in csv.DictReader(handle)]


def _cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    return value


def append_row(path: Path, row: Mapping[str, Any]) -> None:
    """Append one row to ``results.csv`` (header first for a new file), flushed to disk. A file written with fewer
    columns (an older version that measured less) is first rewritten with the current columns, its rows' new cells
    empty; a file with columns this version does not know is refused."""
    new_file = not path.is_file()
    if not new_file:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header, old_rows = tuple(reader.fieldnames or ()), list(reader)
        unknown = sorted(set(header) - set(COLUMNS))
        if unknown:
            raise ValueError(f"out: {path} has columns this version does not write ({', '.join(unknown[:5])}); "
                             f"choose another --out")
        if header != COLUMNS:
            temporary = path.with_suffix(".csv.tmp")
            with temporary.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=COLUMNS, restval="")
                writer.writeheader()
                writer.writerows(old_rows)
            os.replace(temporary, path)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, restval="", extrasaction="raise")
        if new_file:
            writer.writeheader()
        writer.writerow({key: _cell(value) for key, value in row.items()})
        handle.flush()
        os.fsync(handle.fileno())


def write_row_file(run_dir: Path, row: Mapping[str, Any]) -> None:
    """``run_dir/row.json``, replaced atomically (a reader sees the old file or the whole new one)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    temporary = run_dir / (ROW_NAME + ".tmp")
    temporary.write_text(json.dumps({key: _cell(value) for key, value in row.items()}, indent=1) + "\n")
    os.replace(temporary, run_dir / ROW_NAME)


def read_row_file(run_dir: Path) -> dict | None:
    """The row a finished run left in ``run_dir/row.json`` (None when absent or unreadable)."""
    path = run_dir / ROW_NAME
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if set(raw) - set(COLUMNS):
        return None  # written by another version: train again
    return raw
