"""``elbocheck experiment kl-enough``: the small preset end to end, rerun skipping, the effect sizes against hand
computations, the swap metric and the KL decomposition on cases with known answers, the report's rules, the CLI."""

from __future__ import annotations

import csv
import math
import re
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

from elbocheck.cli import main
from elbocheck.experiments.effect_sizes import difference_in_means, mean_interval
from elbocheck.experiments.kl_enough import (
    ABLATION_PAIRS,
    ARMS,
    COLUMNS,
    PRESETS,
    Settings,
    preset,
    read_results,
    run_kl_enough,
    write_kl_enough_report,
)
from elbocheck.experiments.kl_enough_measurements import (
    attribute_swap,
    conditional_prior_kl_decomposition,
    information_lower_bound,
    swap_decoder,
)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The ``small`` preset, run once into a temporary folder (torch's thread count restored afterwards)."""
    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("kl_enough_small")
    try:
        result = run_kl_enough(out, "small", progress=False)
    finally:
        torch.set_num_threads(threads)
    return out, result


def _csv_rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------------------------------
def test_small_preset_writes_one_row_per_run_with_every_column(small_run):
    out, result = small_run
    settings = PRESETS["small"]
    assert result.failures == []
    with (out / "results.csv").open(newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == COLUMNS
    rows = _csv_rows(out / "results.csv")
    expected_ids = {f"{arm}-seed{seed}" for arm in settings.arms for seed in settings.seeds}
    assert len(rows) == len(expected_ids) and {row["run_id"] for row in rows} == expected_ids
    for row in rows:
        assert (out / "runs" / row["run_id"] / "checkpoint.pt").is_file()
        assert (out / "runs" / row["run_id"] / "measures.json").is_file()
        for column in ("term_elbo", "term_reconstruction", "other_mi", "other_probe", "swap_success"):
            assert math.isfinite(float(row[column])), (row["run_id"], column)
        if row["label_latent"]:
            assert math.isfinite(float(row["label_mi"])) and math.isfinite(float(row["label_kl"]))
        assert 0.0 <= float(row["swap_success_lower"]) <= float(row["swap_success"]) <= float(
            row["swap_success_upper"]) <= 1.0
    diva = [row for row in rows if row["model"] == "diva"]
    assert diva and all(math.isfinite(float(row["heldout_domain_probe"])) for row in diva)


def test_small_preset_writes_the_figures_and_a_report_linked_to_the_derivation(small_run):
    out, result = small_run
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"fig_label_information.png", "fig_probes.png", "fig_swap.png", "fig_kl_decomposition.png",
            "fig_effect_sizes.png", "fig_diva_heldout_domain.png"} <= set(pngs)
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert result.report == out / "report.md"
    assert "derivations/library/conditional_surgery.py" in report
    assert "elbocheck verify conditional_prior_surgery" in report
    assert "## Summary" in report and "## Where the answer depends on the prior" in report
    for png in pngs:
        assert f"]({png})" in report


def test_report_numbers_match_the_csv(small_run):
    """The per-arm means and the effect sizes in the report are those of the CSV (recomputed here by hand)."""
    out, _ = small_run
    report = (out / "report.md").read_text()
    rows = _csv_rows(out / "results.csv")
    arm = "csvae_digits_no_adversary"
    probe = np.mean([float(r["other_probe"]) for r in rows if r["arm"] == arm])
    bound = np.mean([float(r["other_mi_bound"]) for r in rows if r["arm"] == arm])
    line = next(line for line in report.splitlines() if line.startswith(f"| {arm} | 2 |"))
    assert f"{probe:.3f}" in line and f"{bound:.3f}" in line
    # The effect of the adversary on the leak probe: Welch's interval from scipy.
    with_term = [float(r["other_probe"]) for r in rows if r["arm"] == "csvae_digits"]
    without = [float(r["other_probe"]) for r in rows if r["arm"] == arm]
    difference = np.mean(with_term) - np.mean(without)
    effect_line = next(line for line in report.splitlines()
                       if line.startswith("| CSVAE adversary, digits (10 classes) | other_probe |"))
    assert f"{difference:+.3f}" in effect_line
    effects = _csv_rows(out / "effect_sizes.csv")
    assert any(e["measure"] == "other_probe" and e["with_term"] == "csvae_digits" for e in effects)


def test_rerun_skips_finished_runs_without_training(small_run, tmp_path):
    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    checkpoints = {p: p.stat().st_mtime_ns for p in copy.glob("runs/*/checkpoint.pt")}
    threads = torch.get_num_threads()
    try:
        again = run_kl_enough(copy, "small", progress=False, write_report=False)
    finally:
        torch.set_num_threads(threads)
    settings = PRESETS["small"]
    assert again.runs_trained == 0 and again.runs_skipped == len(settings.arms) * len(settings.seeds)
    assert {p: p.stat().st_mtime_ns for p in copy.glob("runs/*/checkpoint.pt")} == checkpoints
    assert len(_csv_rows(copy / "results.csv")) == len(settings.arms) * len(settings.seeds)


def test_rerun_trains_only_the_missing_run(small_run, tmp_path):
    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    lines = (copy / "results.csv").read_text().splitlines(keepends=True)
    missing = lines[-1].split(",", 1)[0]
    (copy / "results.csv").write_text("".join(lines[:-1]))
    shutil.rmtree(copy / "runs" / missing)
    kept = {p: p.stat().st_mtime_ns for p in copy.glob("runs/*/checkpoint.pt")}
    threads = torch.get_num_threads()
    try:
        again = run_kl_enough(copy, "small", progress=False, write_report=False)
    finally:
        torch.set_num_threads(threads)
    assert again.runs_trained == 1 and (copy / "runs" / missing / "checkpoint.pt").is_file()
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert sorted(r["run_id"] for r in _csv_rows(copy / "results.csv")) == sorted(
        r["run_id"] for r in _csv_rows(out / "results.csv"))


def test_rerun_with_other_run_defining_settings_is_refused(small_run, tmp_path):
    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with pytest.raises(ValueError, match="epochs_digits"):
        run_kl_enough(copy, PRESETS["small"].replace(epochs_digits=7), progress=False)


# ---------------------------------------------------------------------------------------------------------------------
# Effect sizes
# ---------------------------------------------------------------------------------------------------------------------
def test_difference_in_means_is_welchs_interval_and_hedges_g():
    a = [0.61, 0.72, 0.68]
    b = [0.41, 0.52, 0.39, 0.45]
    estimate = difference_in_means(a, b)
    # by hand
    var_a, var_b = np.var(a, ddof=1), np.var(b, ddof=1)
    se = math.sqrt(var_a / 3 + var_b / 4)
    df = se**4 / ((var_a / 3) ** 2 / 2 + (var_b / 4) ** 2 / 3)
    half = stats.t.ppf(0.975, df) * se
    difference = np.mean(a) - np.mean(b)
    assert estimate.difference == pytest.approx(difference)
    assert (estimate.lower, estimate.upper) == pytest.approx((difference - half, difference + half))
    assert estimate.degrees_of_freedom == pytest.approx(df)
    # and scipy's own Welch interval
    scipy_interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (estimate.lower, estimate.upper) == pytest.approx((scipy_interval.low, scipy_interval.high))
    pooled = math.sqrt((2 * var_a + 3 * var_b) / 5)
    assert estimate.hedges_g == pytest.approx((1 - 3 / (4 * 7 - 9)) * difference / pooled)
    assert estimate.excludes_zero


def test_difference_in_means_degenerate_cases_claim_no_interval():
    single = difference_in_means([1.0], [0.0, 0.5])
    assert math.isnan(single.lower) and math.isnan(single.upper) and not single.excludes_zero
    constant = difference_in_means([1.0, 1.0], [1.0, 1.0])
    assert constant.difference == 0.0 and math.isnan(constant.lower) and math.isnan(constant.hedges_g)
    overlapping = difference_in_means([0.1, 0.5, 0.3], [0.2, 0.4, 0.35])
    assert overlapping.lower < 0 < overlapping.upper and not overlapping.excludes_zero
    with_nan = difference_in_means([1.0, float("nan"), 2.0], [0.0, 1.0])
    assert with_nan.n_a == 2
    with pytest.raises(ValueError, match="confidence"):
        difference_in_means([1.0, 2.0], [1.0, 2.0], confidence=1.5)


def test_mean_interval_is_the_one_sample_t_interval():
    data = [2.0, 2.5, 3.5, 3.0]
    estimate = mean_interval(data)
    low, high = stats.t.interval(0.95, len(data) - 1, loc=np.mean(data), scale=stats.sem(data))
    assert (estimate.mean, estimate.lower, estimate.upper) == pytest.approx((np.mean(data), low, high))
    assert math.isnan(mean_interval([1.0]).lower)


# ---------------------------------------------------------------------------------------------------------------------
# Measurements on cases with known answers
# ---------------------------------------------------------------------------------------------------------------------
def test_swap_success_counts_decodes_that_land_on_the_target():
    """A decoder that follows the target label for the first 60 of 100 examples and keeps the original label for
    the rest: swap success 0.6, kept 0.4."""
    num_classes = 4
    prototypes = torch.eye(num_classes) * 5.0
    original = torch.arange(100) % num_classes
    target = (original + 1 + torch.arange(100) % 3) % num_classes
    follows = torch.arange(100) < 60

    def decode(labels):
        return prototypes[torch.where(follows, labels, original)]

    result = attribute_swap(decode, lambda x: x.argmax(-1).numpy(), original, target)
    assert result.success == pytest.approx(0.6) and result.kept_original == pytest.approx(0.4)
    assert result.lower < 0.6 < result.upper and result.num_examples == 100
    with pytest.raises(ValueError, match="target"):
        attribute_swap(decode, lambda x: x.argmax(-1).numpy(), original, original)


def test_swap_through_the_prior_of_a_label_latent_that_the_decoder_follows():
    """CDVAE whose decoder outputs the prototype of the class mean nearest to z_l: a draw from p(z_l | c') with
    well-separated means decodes to c' every time (prior mode), and so does the exchange mode."""
    from elbocheck.models import Batch, DataSpec, build_model

    num_classes = 3
    spec = DataSpec(event_shape=(num_classes,), likelihood="gaussian", num_classes=num_classes, dataset_size=30)
    model = build_model("cdvae", spec, zl_dim=num_classes, zu_dim=2, learn_prior_means=False, prior_mean_scale=50.0,
                        hidden_dim=8, num_hidden_layers=1)
    prototypes = torch.eye(num_classes) * 5.0

    class NearestMeanDecoder(torch.nn.Module):
        def forward(self, latent):
            zl = latent[:, :num_classes]
            nearest = torch.cdist(zl, model.class_means).argmin(-1)
            return prototypes[nearest].unsqueeze(-1)

    model.decoder = NearestMeanDecoder()
    x = torch.randn(30, num_classes)
    y = torch.arange(30) % num_classes
    posteriors = model.encode(Batch(x, y))
    target = (y + 1) % num_classes
    generator = torch.Generator().manual_seed(0)
    classify = lambda decoded: decoded.argmax(-1).numpy()  # noqa: E731
    prior_swap = attribute_swap(swap_decoder("cdvae", model, posteriors, mode="prior", generator=generator),
                                classify, y, target)
    assert prior_swap.success == 1.0 and prior_swap.kept_original == 0.0
    exchange = attribute_swap(
        swap_decoder("cdvae", model, posteriors, mode="exchange", generator=generator,
                     exchange_means=model.class_means[y], exchange_labels=y), classify, y, target)
    assert exchange.success == 1.0


def test_kl_decomposition_is_zero_when_the_posterior_is_the_prior_and_sums_to_the_kl():
    from torch.distributions import Independent, Normal

    labels = torch.arange(40) % 2
    prior_loc = torch.where(labels.unsqueeze(-1) == 1, 3.0, 0.0).expand(40, 2)
    prior = Independent(Normal(prior_loc, torch.ones(40, 2)), 1)
    at_prior = conditional_prior_kl_decomposition(prior, prior, labels, num_repeats=2, seed=0)
    assert at_prior.information_beyond_label == pytest.approx(0.0, abs=1e-9)
    assert at_prior.aggregate_mismatch == pytest.approx(0.0, abs=1e-9)
    assert at_prior.analytic_kl == pytest.approx(0.0, abs=1e-9)
    generator = torch.Generator().manual_seed(1)
    posterior = Independent(Normal(prior_loc + torch.randn(40, 2, generator=generator),
                                   0.3 + torch.rand(40, 2, generator=generator)), 1)
    split = conditional_prior_kl_decomposition(posterior, prior, labels, num_repeats=64, seed=0)
    closed_form = float(torch.distributions.kl_divergence(posterior, prior).mean())
    assert split.analytic_kl == pytest.approx(closed_form, rel=1e-6)
    assert split.kl == pytest.approx(closed_form, abs=0.1)
    assert 0.0 < split.information_beyond_label <= math.log(20) + 0.05
    assert split.information_ceiling == pytest.approx(math.log(20))


def test_information_lower_bound_reaches_the_label_entropy_only_when_the_features_tell_the_label():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 100)
    separated = np.eye(4)[labels] * 10.0 + rng.normal(size=(400, 4)) * 0.1
    entropy = math.log(4)
    assert information_lower_bound(separated, labels, seed=0) > 0.9 * entropy
    unrelated = rng.normal(size=(400, 4))
    assert information_lower_bound(unrelated, labels, seed=0) < 0.05


# ---------------------------------------------------------------------------------------------------------------------
# The report's words follow the numbers
# ---------------------------------------------------------------------------------------------------------------------
def _synthetic_rows(leak_without: float, leak_with: float) -> list[dict]:
    """Rows of the two CSVAE digits arms, three seeds each, with a chosen leak (Barber-Agakov bound, nats)."""
    rows = []
    for arm, leak in (("csvae_digits", leak_with), ("csvae_digits_no_adversary", leak_without)):
        for seed in range(3):
            row = {column: "" for column in COLUMNS}
            row.update({"run_id": f"{arm}-seed{seed}", "arm": arm, "model": "csvae", "data": "digits",
                        "auxiliary": ARMS[arm].auxiliary, "seed": seed, "epochs": 1, "num_classes": 10,
                        "label_entropy": 2.3, "majority_class_frequency": 0.11, "label_latent": "w",
                        "other_latent": "z", "num_heldout": 360, "train_seconds": 1.0, "measure_seconds": 1.0,
                        "other_mi_bound": leak + 0.01 * seed, "other_probe": 0.2 + leak / 3 + 0.01 * seed,
                        "other_probe_mlp": 0.2 + leak / 3, "swap_success": 0.5 - leak / 5 + 0.01 * seed,
                        "term_elbo": -100.0 - seed, "term_reconstruction": -90.0 - seed, "label_mi": 2.29,
                        "label_mi_shuffled": 2.28, "prior_label_information": 2.29, "label_xonly_mi_bound": 0.3,
                        "label_kl": 10.0, "label_kl_information_beyond_label": 3.0,
                        "label_kl_aggregate_mismatch": 7.0, "label_kl_information_ceiling": 3.5})
            rows.append(row)
    return rows


def _write_rows(path, rows):
    with (path / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_report_says_the_kl_was_not_enough_when_the_leak_is_measured(tmp_path):
    _write_rows(tmp_path, _synthetic_rows(leak_without=0.8, leak_with=-0.05))
    report = write_kl_enough_report(tmp_path).read_text()
    summary = report.split("## Summary", 1)[1].split("## The derivation", 1)[0]
    assert "the other latent carried y as well in csvae_digits_no_adversary" in summary
    assert "So the KL term was not enough in these runs" in summary
    expected = difference_in_means([-0.05, -0.04, -0.03], [0.8, 0.81, 0.82])
    assert f"other_mi_bound {expected.difference:+.3f} [{expected.lower:+.3f}, {expected.upper:+.3f}]" in summary


def test_report_does_not_claim_an_effect_it_did_not_measure(tmp_path):
    _write_rows(tmp_path, _synthetic_rows(leak_without=-0.05, leak_with=-0.05))
    report = write_kl_enough_report(tmp_path).read_text()
    summary = report.split("## Summary", 1)[1].split("## The derivation", 1)[0]
    assert "So these runs did not show the KL term to be insufficient" in summary
    assert "moved a measure the intended way with a 95% CI that excludes 0" in summary
    assert "the other latent carried little of y in csvae_digits_no_adversary" in summary
    assert not re.search(r"the other latent carried y as well", summary)


def test_report_needs_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="results"):
        write_kl_enough_report(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# Settings and the command line
# ---------------------------------------------------------------------------------------------------------------------
def test_presets_and_settings_validation_name_the_bad_parameter():
    assert set(PRESETS) == {"small", "default", "full"}
    assert len(PRESETS["default"].seeds) >= 3 and PRESETS["default"].workers == 2
    for name in PRESETS:
        PRESETS[name].validate()
    assert {pair.with_term for pair in ABLATION_PAIRS} | {pair.without_term for pair in ABLATION_PAIRS} <= set(ARMS)
    with pytest.raises(ValueError, match="preset"):
        preset("huge")
    with pytest.raises(ValueError, match="epochs_digits"):
        Settings(epochs_digits=0).validate()
    with pytest.raises(ValueError, match="arms"):
        Settings(arms=("no_such_arm",)).validate()
    with pytest.raises(ValueError, match="seeds"):
        Settings(seeds=(1, 1)).validate()
    with pytest.raises(ValueError, match="held_out_domain"):
        Settings(held_out_domain=20).validate()
    with pytest.raises(ValueError, match="settings"):
        run_kl_enough("/nonexistent", 3)  # type: ignore[arg-type]


def test_cli_unknown_experiment_lists_the_choices(capsys):
    assert main(["experiment", "kl-too-much"]) == 2
    error = capsys.readouterr().err
    assert "unknown experiment 'kl-too-much'" in error and "kl-enough" in error


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        ([], "no experiment given"),
        (["kl-enough", "--preset", "huge"], "preset"),
        (["kl-enough", "--full", "--preset", "small"], "--full"),
        (["kl-enough", "--arms", "bogus"], "arms"),
        (["kl-enough", "--seeds", "-1"], "seeds"),
        (["kl-enough", "--workers", "0"], "workers"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_message(arguments, fragment, capsys, tmp_path):
    assert main(["experiment", *arguments, "--out", str(tmp_path / "out")]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_cli_argument_of_the_wrong_type_exits_2():
    with pytest.raises(SystemExit) as raised:
        main(["experiment", "kl-enough", "--workers", "two"])
    assert raised.value.code == 2


def test_cli_list_and_report_only(small_run, capsys, tmp_path):
    assert main(["experiment", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "kl-enough" in listing and "csvae_digits_no_adversary" in listing
    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.md").unlink()
    assert main(["experiment", "kl-enough", "--report-only", "--out", str(copy)]) == 0
    assert (copy / "report.md").is_file()
    assert read_results(copy) and len(read_results(copy)) == len(read_results(out))
