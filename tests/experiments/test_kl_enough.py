"""``elbocheck experiment kl-enough``: the small preset end to end (rows, rerun skipping, rows recovered from
row.json, figures, map, tests, report), the paired statistics and Holm's correction against independent
computations, the measurements on cases with known answers, the report's rules, the predictions, the settings and
the command line."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

from elbocheck.cli import main
from elbocheck.experiments.effect_sizes import difference_in_means, holm, mean_interval, paired_difference
from elbocheck.experiments.kl_enough import ARMS, PRESETS, Settings, preset, read_results, run_kl_enough
from elbocheck.experiments.kl_enough_measurements import (
    active_units,
    attribute_swap,
    conditional_prior_kl_decomposition,
    information_lower_bound,
    swap_decoder,
)
from elbocheck.experiments.kl_enough_predictions import classifier_price, label_value_per_nat
from elbocheck.experiments.kl_enough_report import (
    DIVA_PAPER_TABLE_NAME,
    ArmSummary,
    carries,
    cell_verdict,
    load_preregistration,
    mnist_section,
    preregistered_tests,
    read_diva_paper_table,
    write_report,
)
from elbocheck.experiments.kl_enough_results import COLUMNS, ROW_NAME


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


def _rerun(out, **changes):
    threads = torch.get_num_threads()
    try:
        return run_kl_enough(out, PRESETS["small"].replace(**changes), progress=False, write_report=False)
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------------------------------
def test_small_preset_writes_one_row_per_run_with_every_column(small_run):
    out, result = small_run
    settings = PRESETS["small"]
    assert result.failures == []
    with (out / "results.csv").open(newline="") as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS
    rows = _csv_rows(out / "results.csv")
    expected = {f"{arm}-seed{seed}" for arm in settings.arms for seed in settings.seeds}
    assert {row["run_id"] for row in rows} == expected and len(rows) == len(expected)
    for row in rows:
        run_dir = out / "runs" / row["run_id"]
        assert (run_dir / "checkpoint.pt").is_file() and (run_dir / ROW_NAME).is_file()
        for column in ("term_elbo", "other_mi_bound", "other_active_units", "other_dims", "cpu_seconds"):
            assert math.isfinite(float(row[column])), (row["run_id"], column)
        assert json.loads(row["axes"]) == json.loads(json.dumps(dict(ARMS[row["arm"]].axes)))
        if row["label_latent"]:
            assert math.isfinite(float(row["label_xonly_mi_bound"])) and math.isfinite(float(row["label_active_units"]))
        assert int(row["warmup_epochs"]) == math.ceil(0.2 * int(row["epochs"]))
    diva = [row for row in rows if row["model"] == "diva"]
    assert diva and all(math.isfinite(float(row["heldout_domain_probe"])) and
                        math.isfinite(float(row["heldout_unseen_probe"])) for row in diva)
    reference = [row for row in rows if row["family"] == "reference"]
    assert reference and all(row["swap_success"] == "" for row in reference)  # no label route: no swap


def test_small_preset_writes_the_map_the_tests_the_figures_and_the_report(small_run):
    out, result = small_run
    names = {p.name for p in out.glob("*.png")}
    assert {"fig_map.png", "fig_predicted_vs_measured.png", "fig_active_units.png", "fig_tests.png"} <= names
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert result.report == out / "report.md"
    for section in ("## The answer: a map over the weights", "## The map, cell by cell",
                    "## Predicted boundaries beside the measured ones", "## Pre-registered paired tests",
                    "## Live latents", "## Caveats"):
        assert section in report
    assert "elbocheck verify conditional_prior_surgery" in report
    for name in names:
        assert f"]({name})" in report
    map_rows = _csv_rows(out / "map.csv")
    assert {row["arm"] for row in map_rows} == set(PRESETS["small"].arms)
    tests = _csv_rows(out / "tests.csv")
    assert {t["id"] for t in tests} >= {"P2", "P6"}  # the committed tests whose arms the small preset has


def test_report_numbers_match_the_csv(small_run):
    """The map table's means and a test's paired difference are those of the CSV, recomputed here by hand."""
    out, _ = small_run
    rows = read_results(out)
    report = (out / "report.md").read_text()
    arm = "csvae-digits-b0.01-a0"
    leak = np.mean([r["other_mi_bound"] / r["label_entropy"] for r in rows if r["arm"] == arm])
    line = next(line for line in report.splitlines() if line.startswith(f"| {arm} |"))
    assert f"{leak:.3f}" in line
    first = {r["seed"]: r["label_xonly_mi_bound"] / r["label_entropy"] for r in rows
             if r["arm"] == "diva-rotated_digits-b1-ay3500-ad2000"}
    second = {r["seed"]: r["label_xonly_mi_bound"] / r["label_entropy"] for r in rows
              if r["arm"] == "diva-rotated_digits-b1-ay0-ad0"}
    difference = np.mean([first[s] - second[s] for s in first])
    test = next(t for t in _csv_rows(out / "tests.csv") if t["id"] == "P6")
    assert float(test["difference"]) == pytest.approx(difference)


def test_rerun_skips_finished_runs_without_training(small_run, tmp_path):
    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    checkpoints = {p: p.stat().st_mtime_ns for p in copy.glob("runs/*/checkpoint.pt")}
    again = _rerun(copy)
    settings = PRESETS["small"]
    assert again.runs_trained == 0 and again.runs_skipped == len(settings.arms) * len(settings.seeds)
    assert {p: p.stat().st_mtime_ns for p in copy.glob("runs/*/checkpoint.pt")} == checkpoints


def test_a_row_left_in_row_json_is_recovered_and_a_missing_run_is_trained(small_run, tmp_path):
    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    lines = (copy / "results.csv").read_text().splitlines(keepends=True)
    recovered, missing = lines[-1].split(",", 1)[0], lines[-2].split(",", 1)[0]
    (copy / "results.csv").write_text("".join(lines[:-2]))  # the driver "died" before appending two rows
    shutil.rmtree(copy / "runs" / missing)  # and one of the runs never finished
    again = _rerun(copy)
    assert (again.runs_recovered, again.runs_trained) == (1, 1)
    assert sorted(r["run_id"] for r in _csv_rows(copy / "results.csv")) == sorted(
        r["run_id"] for r in _csv_rows(out / "results.csv"))


def test_rerun_with_other_run_defining_settings_is_refused(small_run, tmp_path):
    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with pytest.raises(ValueError, match=r"epochs\[digits\]"):
        run_kl_enough(copy, PRESETS["small"].replace(epochs={"digits": 7, "rotated_digits": 5}), progress=False)


# ---------------------------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------------------------
def test_paired_difference_is_scipys_paired_t_with_d_z():
    a = [0.61, 0.72, 0.68, 0.70]
    b = [0.41, 0.52, 0.39, 0.58]
    estimate = paired_difference(a, b)
    d = np.subtract(a, b)
    se = d.std(ddof=1) / math.sqrt(4)
    half = stats.t.ppf(0.975, 3) * se
    assert estimate.difference == pytest.approx(d.mean())
    assert (estimate.lower, estimate.upper) == pytest.approx((d.mean() - half, d.mean() + half))
    assert estimate.t_statistic == pytest.approx(d.mean() / se)
    assert estimate.p_value == pytest.approx(2 * stats.t.sf(abs(d.mean() / se), 3))
    assert estimate.d_z == pytest.approx(d.mean() / d.std(ddof=1))
    assert estimate.excludes_zero and estimate.n == 4
    dropped = paired_difference([1.0, float("nan"), 2.0], [0.5, 0.2, 1.0])
    assert dropped.n == 2 and dropped.difference == pytest.approx(0.75)
    constant = paired_difference([1.0, 2.0], [0.5, 1.5])
    assert constant.difference == 0.5 and math.isnan(constant.p_value) and not constant.excludes_zero
    with pytest.raises(ValueError, match="equal length"):
        paired_difference([1.0, 2.0], [1.0])


def _holm_by_definition(p_values, alpha):
    """Holm's step-down procedure as stated: reject H_(1..k) for the largest k with p_(j) <= alpha/(m-j+1) for all
    j <= k."""
    order = np.argsort(p_values)
    m = len(p_values)
    rejected = np.zeros(m, dtype=bool)
    for rank, index in enumerate(order):
        if p_values[index] <= alpha / (m - rank):
            rejected[index] = True
        else:
            break
    return rejected


def test_holm_adjusted_p_values_reject_what_the_step_down_procedure_rejects():
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = int(rng.integers(1, 9))
        p_values = rng.uniform(0, 0.2, size=m) ** rng.uniform(0.5, 3)
        adjusted = np.array(holm(p_values))
        assert np.all(adjusted >= p_values - 1e-15) and np.all(adjusted <= 1)
        for alpha in (0.01, 0.05, 0.1):
            assert np.array_equal(adjusted <= alpha, _holm_by_definition(p_values, alpha))
    assert holm([0.01, float("nan"), 0.04]) == pytest.approx([0.02, float("nan"), 0.04], nan_ok=True)


def test_welch_difference_and_mean_interval_are_scipys():
    a, b = [0.61, 0.72, 0.68], [0.41, 0.52, 0.39, 0.45]
    estimate = difference_in_means(a, b)
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (estimate.lower, estimate.upper) == pytest.approx((interval.low, interval.high))
    data = [2.0, 2.5, 3.5, 3.0]
    low, high = stats.t.interval(0.95, 3, loc=np.mean(data), scale=stats.sem(data))
    assert (mean_interval(data).lower, mean_interval(data).upper) == pytest.approx((low, high))


# ---------------------------------------------------------------------------------------------------------------------
# Measurements on cases with known answers
# ---------------------------------------------------------------------------------------------------------------------
def test_active_units_count_dimensions_whose_mean_varies_over_examples():
    from torch.distributions import Independent, Normal

    generator = torch.Generator().manual_seed(0)
    loc = torch.randn(500, 4, generator=generator) * torch.tensor([1.0, 0.5, 0.05, 0.0])  # variances 1, .25, .0025, 0
    posterior = Independent(Normal(loc, torch.ones(500, 4)), 1)
    assert active_units(posterior) == (2, 4)


def test_swap_success_counts_decodes_that_land_on_the_target():
    num_classes = 4
    prototypes = torch.eye(num_classes) * 5.0
    original = torch.arange(100) % num_classes
    target = (original + 1 + torch.arange(100) % 3) % num_classes
    follows = torch.arange(100) < 60

    def decode(labels):
        return prototypes[torch.where(follows, labels, original)]

    result = attribute_swap(decode, lambda x: x.argmax(-1).numpy(), original, target)
    assert result.success == pytest.approx(0.6) and result.kept_original == pytest.approx(0.4)
    with pytest.raises(ValueError, match="target"):
        attribute_swap(decode, lambda x: x.argmax(-1).numpy(), original, original)


def test_swap_through_the_prior_of_a_label_latent_that_the_decoder_follows():
    from elbocheck.models import Batch, DataSpec, build_model

    num_classes = 3
    spec = DataSpec(event_shape=(num_classes,), likelihood="gaussian", num_classes=num_classes, dataset_size=30)
    model = build_model("cdvae", spec, zl_dim=num_classes, zu_dim=2, learn_prior_means=False, prior_mean_scale=50.0,
                        hidden_dim=8, num_hidden_layers=1)
    prototypes = torch.eye(num_classes) * 5.0

    class NearestMeanDecoder(torch.nn.Module):
        def forward(self, latent):
            nearest = torch.cdist(latent[:, :num_classes], model.class_means).argmin(-1)
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


def test_kl_decomposition_is_zero_when_the_posterior_is_the_prior_and_sums_to_the_kl():
    from torch.distributions import Independent, Normal

    labels = torch.arange(40) % 2
    prior_loc = torch.where(labels.unsqueeze(-1) == 1, 3.0, 0.0).expand(40, 2)
    prior = Independent(Normal(prior_loc, torch.ones(40, 2)), 1)
    at_prior = conditional_prior_kl_decomposition(prior, prior, labels, num_repeats=2, seed=0)
    assert at_prior.information_beyond_label == pytest.approx(0.0, abs=1e-9)
    assert at_prior.aggregate_mismatch == pytest.approx(0.0, abs=1e-9)
    generator = torch.Generator().manual_seed(1)
    posterior = Independent(Normal(prior_loc + torch.randn(40, 2, generator=generator),
                                   0.3 + torch.rand(40, 2, generator=generator)), 1)
    split = conditional_prior_kl_decomposition(posterior, prior, labels, num_repeats=64, seed=0)
    closed_form = float(torch.distributions.kl_divergence(posterior, prior).mean())
    assert split.analytic_kl == pytest.approx(closed_form, rel=1e-6)
    assert split.kl == pytest.approx(closed_form, abs=0.1)


def test_information_lower_bound_reaches_the_label_entropy_only_when_the_features_tell_the_label():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 100)
    separated = np.eye(4)[labels] * 10.0 + rng.normal(size=(400, 4)) * 0.1
    assert information_lower_bound(separated, labels, seed=0) > 0.9 * math.log(4)
    assert information_lower_bound(rng.normal(size=(400, 4)), labels, seed=0) < 0.05


# ---------------------------------------------------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------------------------------------------------
def test_label_value_per_nat_on_pixels_that_copy_the_label():
    """Two classes, 10 binary pixels all equal to the label: a class-conditional model predicts every pixel (up to
    the smoothing) while the pooled one pays log 2 per pixel, so the gain is 10 log 2 nats for H(y) = log 2."""
    labels = np.repeat([0, 1], 500)
    pixels = np.repeat(labels[:, None], 10, axis=1).astype(np.float32)
    entropy, gain, value = label_value_per_nat(pixels, labels, pixels, labels, likelihood="bernoulli", num_levels=None)
    assert entropy == pytest.approx(math.log(2))
    conditional = 10 * math.log(500.5 / 501.0)  # each pixel's class-conditional table, smoothed by 0.5
    pooled = 10 * math.log(500.5 / 1001.0)  # the pooled table: one half each
    assert gain == pytest.approx(conditional - pooled, abs=1e-9)
    assert value == pytest.approx(gain / math.log(2))


def test_classifier_price_is_zero_for_a_perfect_classifier_and_large_for_a_poor_one():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 200)
    clean = np.eye(3)[labels] * 5 + rng.normal(size=(600, 3)) * 0.01
    accuracy, conditional, information, price = classifier_price(clean, labels, clean, labels)
    assert accuracy == 1.0 and conditional == pytest.approx(0.0, abs=1e-12) and price == pytest.approx(0.0, abs=1e-12)
    assert information == pytest.approx(math.log(3), rel=1e-6)
    noisy = np.eye(3)[labels] * 0.3 + rng.normal(size=(600, 3))
    _, _, _, poor = classifier_price(noisy[::2], labels[::2], noisy[1::2], labels[1::2])
    assert poor > 1.0


# ---------------------------------------------------------------------------------------------------------------------
# The report's rules
# ---------------------------------------------------------------------------------------------------------------------
def _summary(arm, label, leak, label_live=True, other_live=True):
    return ArmSummary(arm, [], mean_interval(label), mean_interval(leak), label_live, other_live)


def test_verdicts_follow_the_committed_rules():
    threshold = load_preregistration()["thresholds"]["carries_fraction"]
    assert threshold == 0.05
    assert carries(mean_interval([0.3, 0.31, 0.29]), True, threshold) == "carries"
    assert carries(mean_interval([0.0, 0.01, -0.01]), True, threshold) == "does not carry"
    assert carries(mean_interval([0.0, 0.01, -0.01]), False, threshold) == "dead"
    assert carries(mean_interval([0.0, 0.2, -0.1]), True, threshold) == "undecided"
    arm = "csvae-digits-b1-a0"
    assert cell_verdict(_summary(arm, [0.3, 0.31, 0.29], [0.0, 0.01, -0.01]), threshold) == "KL enough"
    assert cell_verdict(_summary(arm, [0.3, 0.31, 0.29], [0.4, 0.45, 0.5]), threshold) == "leak"
    assert cell_verdict(_summary(arm, [0.3, 0.31, 0.29], [0.0, 0.01, -0.01], other_live=False),
                        threshold) == "no claim (other latent dead)"
    assert cell_verdict(_summary("reference-digits-b10", [0.0, 0.01, -0.01], [float("nan")] * 3),
                        threshold) == "drops y"


def _row(arm, seed, **values):
    row = {"run_id": f"{arm}-seed{seed}", "arm": arm, "family": ARMS[arm].family, "seed": seed, "data": ARMS[arm].data,
           "label_entropy": 2.0, "label_latent": "w" if ARMS[arm].family == "csvae" else ""}
    row.update(values)
    return row


def test_preregistered_tests_pair_by_seed_and_apply_holm_within_a_family():
    rows = []
    for seed, (paper, elbo, adversary) in enumerate([(0.5, 0.0, 0.2), (0.6, 0.01, 0.25), (0.55, -0.01, 0.3),
                                                     (0.58, 0.02, 0.22)]):
        rows.append(_row("csvae-digits-paper", seed, other_mi_bound=2 * paper))
        rows.append(_row("csvae-digits-b1-a0", seed, other_mi_bound=2 * elbo))
        rows.append(_row("csvae-digits-b1-a0.5", seed, other_mi_bound=2 * (elbo + 0.001 * seed)))
        rows.append(_row("csvae-digits-b0.01-a0.5", seed, other_mi_bound=2 * adversary))
        rows.append(_row("csvae-digits-b0.01-a0", seed, other_mi_bound=2 * paper))
    tests = {t.id: t for t in preregistered_tests(rows)}
    assert set(tests) == {"P1", "P2", "P3"}  # S5 (swap) has no values here: not reported
    expected = [paired_difference([0.5, 0.6, 0.55, 0.58], [0.0, 0.01, -0.01, 0.02]),
                paired_difference([0.2, 0.25, 0.3, 0.22], [0.5, 0.6, 0.55, 0.58]),
                paired_difference([0.0, 0.011, -0.008, 0.023], [0.0, 0.01, -0.01, 0.02])]
    for test_id, estimate in zip(("P1", "P2", "P3"), expected):
        assert tests[test_id].estimate.difference == pytest.approx(estimate.difference)
    adjusted = holm([e.p_value for e in expected])
    assert [tests[i].holm_p for i in ("P1", "P2", "P3")] == pytest.approx(adjusted)
    assert tests["P1"].rejects and tests["P1"].direction == "a > b"


def test_report_needs_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="results"):
        write_report(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# Settings and the command line
# ---------------------------------------------------------------------------------------------------------------------
def test_presets_and_settings_validation_name_the_bad_parameter():
    assert set(PRESETS) == {"small", "default", "full", "mnist"}
    for name in ("small", "default", "full"):
        PRESETS[name].validate()
    assert PRESETS["default"].workers == 2 and PRESETS["default"].torch_threads == 1
    prereg = load_preregistration()
    for family in ("primary", "secondary"):
        for test in prereg["families"][family]["tests"]:
            assert test["a"] in PRESETS["default"].arms and test["b"] in PRESETS["default"].arms, test["id"]
    for test in prereg["families"]["mnist"]["tests"]:
        assert test["a"].format(angle=0) in PRESETS["mnist"].arms
    with pytest.raises(ValueError, match="data_path"):
        PRESETS["mnist"].validate()
    with pytest.raises(ValueError, match="preset"):
        preset("huge")
    with pytest.raises(ValueError, match=r"epochs\['digits'\]"):
        Settings(arms=("reference-digits-b1",), epochs={"digits": 0}).validate()
    with pytest.raises(ValueError, match="arms"):
        Settings(arms=("no_such_arm",)).validate()
    with pytest.raises(ValueError, match="seeds"):
        Settings(seeds=(1, 1), arms=("reference-digits-b1",)).validate()
    with pytest.raises(ValueError, match="settings"):
        run_kl_enough("/nonexistent", 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        ([], "no experiment given"),
        (["kl-too-much"], "unknown experiment 'kl-too-much'"),
        (["kl-enough", "--preset", "huge"], "preset"),
        (["kl-enough", "--full", "--preset", "small"], "--full"),
        (["kl-enough", "--arms", "bogus"], "arms"),
        (["kl-enough", "--seeds", "-1"], "seeds"),
        (["kl-enough", "--workers", "0"], "workers"),
        (["kl-enough", "--preset", "mnist"], "data_path"),
        (["kl-enough", "--preset", "mnist", "--data-path", "/nonexistent/mnist.whl", "--arms",
          "csvae-mnist_thickness-paper"], "no such file"),
        (["kl-enough", "--mnist-results", "x"], "--report-only"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_message(arguments, fragment, capsys, tmp_path):
    assert main(["experiment", *arguments, "--out", str(tmp_path / "out")]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_cli_list_and_report_only(small_run, capsys, tmp_path):
    assert main(["experiment", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "kl-enough" in listing and "csvae-digits-paper" in listing and "mnist" in listing
    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.md").unlink()
    assert main(["experiment", "kl-enough", "--report-only", "--out", str(copy)]) == 0
    assert (copy / "report.md").is_file()
    assert main(["experiment", "kl-enough", "--report-only", "--out", str(tmp_path / "empty")]) == 2


def _rotated_mnist_rows(accuracy_by_angle):
    rows = []
    for angle, accuracy in accuracy_by_angle.items():
        rows.append({"family": "diva", "data": f"rotated_mnist_{angle}", "arm": f"diva-rotated_mnist_{angle}-b1-ay3500-ad2000",
                     "heldout_domain_classifier": accuracy, "heldout_domain_probe": accuracy,
                     "heldout_unseen_classifier": accuracy, "label_latent": "z_y", "label_entropy": 2.0,
                     "label_xonly_mi_bound": 1.0, "epochs": 30, "warmup_epochs": 6})
    return rows


def test_the_diva_paper_column_is_filled_from_a_typed_in_table_and_bad_rows_are_named(tmp_path):
    rows = _rotated_mnist_rows({0: 0.78, 15: 0.95})
    missing = "\n".join(mnist_section(rows, {}, [], {}, [], 0.1, tmp_path, longer_runs_dir=tmp_path))
    assert "not retrieved (see above)" in missing and DIVA_PAPER_TABLE_NAME in missing
    table = tmp_path / DIVA_PAPER_TABLE_NAME
    # made-up numbers: the test checks the plumbing, not the paper
    table.write_text("held_out_angle,accuracy_percent,std_percent,source\n0,12.5,0.25,test source A\n15,37,,test source A\n")
    filled = "\n".join(mnist_section(rows, {}, [], {}, [], 0.1, tmp_path, longer_runs_dir=tmp_path))
    lines = {line.split(" | ")[0].strip("| "): line for line in filled.splitlines() if line.startswith("| 0 ") or line.startswith("| 15 ")}
    assert lines["0"].rstrip(" |").endswith("12.5% +- 0.25")
    assert lines["15"].rstrip(" |").endswith("37%")
    assert "test source A" in filled and "not retrieved" not in filled
    for body, fragment in [("0,101,1,src\n", ":2: percentages"), ("5,90,1,src\n", ":2: held_out_angle 5"),
                           ("0,90,1,src\n0,91,1,src\n", ":3: held_out_angle 0 is given twice"),
                           ("0,ninety,1,src\n", ":2: expected an integer angle"), ("0,90,1, \n", ":2: the source")]:
        table.write_text("held_out_angle,accuracy_percent,std_percent,source\n" + body)
        with pytest.raises(ValueError, match=fragment):
            read_diva_paper_table(table)
    table.write_text("angle,accuracy\n0,90\n")
    with pytest.raises(ValueError, match=":1: expected the columns"):
        read_diva_paper_table(table)
