"""The audit's verdicts on correct estimators and on reimplementations of published ones with known bugs
(``peer_losses.py``), and on deliberate mistakes: a sign, a sum for a mean, a dropped constant."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from elbocheck.estimators import minibatch_kl_terms
from elbocheck.estimators.audit import AuditGrid, audit_loss
from elbocheck.estimators.audit_adapters import AuditCallError
from peer_losses import disvae_log_densities, pythae_terms, stratified_log_densities, stratified_terms

# small: two data-set sizes would double the time; N = 48 keeps M = N cheap and a 1/N-sized bug visible
GRID = AuditGrid(dataset_sizes=(48,), latent_dims=(2, 6), widths=(0.1, 0.5), batch_sizes=(6, 16), passes=10,
                 max_batches_per_pass=4)
TERMS = ("mutual_information", "total_correlation", "dimensionwise_kl")


def _diagnoses(report, quantity):
    return " | ".join(report.verdicts[quantity].diagnoses)


def test_a_correct_stratified_estimator_is_biased_at_small_batches_but_never_wrong():
    report = audit_loss(stratified_terms, grid=GRID)
    assert report.ok, report.table()
    assert report.verdict("mutual_information") == "biased"  # Jensen: log of an unbiased estimate of q(z)
    mi = report.verdicts["mutual_information"]
    # wide posteriors: the other points' components matter and the MI is biased up (log q^(z) biased down);
    # narrow ones: z_i sits in its own component, weighted 1/N exactly, and there is no bias to speak of
    small = [c for c in mi.cells if c.batch_size == 6 and c.setting.width == 0.5 and c.setting.latent_dim == 2]
    assert small[0].bias > 0 and small[0].significant
    full = [c for c in mi.cells if c.batch_size == c.setting.dataset_size]
    assert all(abs(c.bias) < 1e-4 for c in full)  # at M = N the batch is the data set: exact
    assert "equals mss on every batch" in _diagnoses(report, "mutual_information")


@pytest.mark.parametrize("method", ["mss", "mws"])
def test_the_projects_minibatch_estimators_pass(method):
    def terms(z, mean, log_var, dataset_size):
        t = minibatch_kl_terms(z, mean, log_var, dataset_size, method=method)
        return {"mutual_information": t.mutual_information, "total_correlation": t.total_correlation,
                "dimensionwise_kl": t.dimensionwise_kl, "kl": t.kl}

    report = audit_loss(terms, grid=GRID)
    assert report.ok, report.table()
    assert report.verdict("kl") == "consistent"  # the single-sample KL is unbiased at every batch size
    assert f"equals {method} on every batch" in _diagnoses(report, "total_correlation")


def test_disentangling_vae_mss_is_wrong_and_named():
    report = audit_loss(disvae_log_densities, signature="disvae", options={"is_mss": True}, grid=GRID)
    assert not report.ok
    for quantity in ("mutual_information", "total_correlation", "log_qz"):
        assert report.verdict(quantity) == "wrong", report.table()
        assert "equals mss_columns_per_dimension" in _diagnoses(report, quantity)
    assert report.verdict("log_q_zCx") == report.verdict("log_pz") == "consistent"  # closed forms, right
    worst = max(report.verdicts["mutual_information"].cells, key=lambda c: abs(c.bias))
    assert worst.batch_size == worst.setting.dataset_size  # the bias grows with M: D log W at M = N


def test_disentangling_vae_mws_has_no_normaliser():
    report = audit_loss(disvae_log_densities, signature="disvae", options={"is_mss": False}, grid=GRID)
    assert report.verdict("mutual_information") == "wrong"
    assert "equals unweighted" in _diagnoses(report, "mutual_information")
    # against MWS the MI is low by exactly log M at every batch size
    for cell in report.verdicts["mutual_information"].cells:
        if cell.batch_size == cell.setting.dataset_size:
            assert cell.bias == pytest.approx(-math.log(cell.batch_size), abs=1e-3)


def test_pythae_mss_weight_matrix_sets_columns_not_the_diagonal():
    report = audit_loss(pythae_terms, grid=GRID)  # dict keys mutual_info_loss, TC_loss, dimension_wise_KL
    assert report.verdict("mutual_information") == "wrong", report.table()
    assert "equals mss_columns on every batch" in _diagnoses(report, "mutual_information")
    assert "disentangling-vae issue #58" in _diagnoses(report, "mutual_information")


def test_pythae_mws_normaliser_shifts_every_log_density_by_log_n():
    report = audit_loss(pythae_terms, options={"use_mss": False}, grid=GRID)
    for quantity in TERMS:
        assert report.verdict(quantity) == "wrong"
        assert "equals mws_1/(NM)" in _diagnoses(report, quantity)
    for cell in report.verdicts["total_correlation"].cells:  # at M = N (MWS exact), TC off by (D - 1) log N
        if cell.batch_size == cell.setting.dataset_size:
            assert cell.bias == pytest.approx((cell.setting.latent_dim - 1) * math.log(48), abs=1e-3)


def test_a_sign_a_sum_a_weight_and_a_dropped_constant_are_wrong_and_named():
    def flipped(z, mean, log_var, dataset_size):
        return {name: -value for name, value in stratified_terms(z, mean, log_var, dataset_size).items()}

    report = audit_loss(flipped, grid=GRID)
    assert report.verdict("mutual_information") == "wrong"
    assert "minus (sign flipped) mss" in _diagnoses(report, "mutual_information")

    def summed(z, mean, log_var, dataset_size):
        log_q_zCx, log_qz, _, _ = stratified_log_densities(z, mean, log_var, dataset_size)
        return {"mi": (log_q_zCx - log_qz).sum()}

    report = audit_loss(summed, grid=GRID)
    assert report.verdict("mutual_information") == "wrong"
    assert "M times (summed over the batch instead of averaged) mss" in _diagnoses(report, "mutual_information")

    def weighted(z, mean, log_var, dataset_size):
        return {"tc_loss": 6.0 * stratified_terms(z, mean, log_var, dataset_size)["total_correlation"]}

    report = audit_loss(weighted, grid=GRID)
    assert report.verdict("total_correlation") == "wrong"
    assert "6 times (a constant factor) mss" in _diagnoses(report, "total_correlation")

    def no_constant_in_prior(z, mean, log_var, dataset_size):
        log_q_zCx, log_qz, log_prod_qzi, _ = stratified_log_densities(z, mean, log_var, dataset_size)
        log_pz = (-0.5 * z.square()).sum(-1)  # log N(z; 0, I) without -log(2 pi)/2 per dimension
        return {"log_q_zCx": log_q_zCx, "log_qz": log_qz, "log_prod_qzi": log_prod_qzi, "log_pz": log_pz}

    report = audit_loss(no_constant_in_prior, grid=GRID)
    assert report.verdict("log_pz") == "wrong" and report.verdict("dimensionwise_kl") == "wrong"
    assert report.verdict("mutual_information") == "biased"  # untouched by the prior's constant
    assert "offset by a constant +D log(2 pi)/2" in _diagnoses(report, "log_pz")
    assert "shifted by -D log(2 pi)/2 from mss" in _diagnoses(report, "dimensionwise_kl")


def test_the_closed_form_kl_is_consistent():
    def kl(z, mean, log_var, dataset_size):
        std = torch.exp(0.5 * log_var)
        return {"kl_loss": kl_divergence(Normal(mean, std), Normal(0.0, 1.0)).sum(-1)}

    report = audit_loss(kl, grid=GRID)
    assert list(report.verdicts) == ["kl"] and report.verdict("kl") == "consistent"
    assert all(c.bias == pytest.approx(0.0, abs=1e-5) for c in report.verdicts["kl"].cells)


def test_the_audit_is_reproducible_and_its_report_serialises():
    first = audit_loss(stratified_terms, grid=GRID, seed=3).as_dict()
    second = audit_loss(stratified_terms, grid=GRID, seed=3).as_dict()
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    assert first["verdicts"]["mutual_information"]["cells"][0]["batch_size"] == 6


def test_a_failure_in_the_audited_function_keeps_the_settings_done_before():
    calls = {"count": 0}

    def fails_late(z, mean, log_var, dataset_size):
        if mean.shape[1] == 6:  # the second dimension of the grid
            raise RuntimeError("out of memory")
        calls["count"] += 1
        return stratified_terms(z, mean, log_var, dataset_size)

    with pytest.raises(AuditCallError, match="fails_late raised RuntimeError: out of memory .at batch size 6, "
                                             "N=48 D=6 width=0.1") as caught:
        audit_loss(fails_late, grid=GRID)
    partial = caught.value.partial_report
    assert calls["count"] > 0 and {c.setting.latent_dim for c in partial.verdicts["mutual_information"].cells} == {2}


@pytest.mark.parametrize(("arguments", "message"), [
    ({"grid": "x"}, None),
    ({"family_error": 2.0}, "argument 'family_error' must lie in"),
    ({"resolution": -1.0}, "argument 'resolution' must be a non-negative"),
    ({"dtype": torch.int64}, "argument 'dtype' must be"),
])
def test_bad_arguments_are_named(arguments, message):
    if message is None:
        with pytest.raises((AttributeError, TypeError)):
            audit_loss(stratified_terms, **arguments)
        return
    with pytest.raises(ValueError, match=message):
        audit_loss(stratified_terms, **arguments)


@pytest.mark.parametrize(("fields", "message"), [
    ({"passes": 2}, "argument 'passes' must be an int of at least 3"),
    ({"batch_sizes": (1, 8)}, "argument 'batch_sizes' must hold sizes of at least 2"),
    ({"widths": (1.5,)}, "width .* must lie in \\(0, 1\\)"),
    ({"dataset_sizes": ()}, "argument 'dataset_sizes' must not be empty"),
    ({"latent_dims": (0,)}, "argument 'latent_dims' must hold positive ints"),
])
def test_bad_grids_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        AuditGrid(**fields)
