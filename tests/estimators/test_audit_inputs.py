import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from elbocheck.estimators.audit_fingerprints import KNOWN_ESTIMATORS, describe_constant, known_estimator_values
from elbocheck.estimators.audit_inputs import AuditSetting, exact_pass, synthetic_encoder_outputs


@pytest.mark.parametrize("width", [0.1, 0.6])
def test_the_synthetic_encoder_has_the_asked_width_and_correlated_latents(width):
    outputs = synthetic_encoder_outputs(AuditSetting(200, 4, width), seed=1)
    testbed = outputs.testbed
    precision = torch.eye(4, dtype=torch.float64) + testbed.weight.T @ testbed.weight / testbed.noise_scale**2
    mean_field_std = torch.diagonal(precision).rsqrt()  # the best mean-field widths, before the per-point spread
    assert float(mean_field_std.mean()) == pytest.approx(width, rel=1e-6)
    spread = outputs.log_var - 2 * torch.log(mean_field_std)
    assert float(spread.abs().max()) <= 0.5 and float(spread.std()) > 0.1  # each point its own widths
    correlation = torch.corrcoef(outputs.mean.T)
    assert float((correlation - torch.eye(4, dtype=torch.float64)).abs().max()) > 0.1
    assert float(outputs.exact.total_correlation) > 0


def test_the_exact_pass_evaluates_the_full_mixture():
    # checked against torch's MixtureSameFamily, independently of the estimators
    outputs = synthetic_encoder_outputs(AuditSetting(20, 3, 0.4), seed=0)
    exact = exact_pass(outputs, torch.Generator().manual_seed(0))
    std = torch.exp(0.5 * outputs.log_var)
    weights = Categorical(probs=torch.full((20,), 1 / 20, dtype=torch.float64))
    joint = MixtureSameFamily(weights, Independent(Normal(outputs.mean, std), 1))
    torch.testing.assert_close(exact.values["log_qz"], joint.log_prob(exact.z))
    marginals = sum(MixtureSameFamily(weights, Normal(outputs.mean[:, j], std[:, j])).log_prob(exact.z[:, j])
                    for j in range(3))
    torch.testing.assert_close(exact.values["log_prod_qzi"], marginals)
    own = Independent(Normal(outputs.mean, std), 1).log_prob(exact.z)
    torch.testing.assert_close(exact.values["mutual_information"], own - joint.log_prob(exact.z))


@pytest.mark.parametrize(("fields", "message"), [
    ((1, 2, 0.5), "dataset_size must be at least 2"),
    ((10, 0, 0.5), "latent_dim must be at least 1"),
    ((10, 2, 0.0), "must lie in \\(0, 1\\)"),
])
def test_settings_are_checked(fields, message):
    with pytest.raises(ValueError, match=message):
        AuditSetting(*fields)


def test_the_known_weight_matrices_are_as_published():
    by_name = {estimator.name: estimator for estimator in KNOWN_ESTIMATORS}
    mss = by_name["mss"].log_weights(5, 20).exp()
    torch.testing.assert_close(mss.sum(1), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(torch.diagonal(mss), torch.full((5,), 1 / 20, dtype=torch.float64))
    # the reference matrix with stride M: column 0 is 1/N in every row but M - 2, column 1 is the stratum weight
    columns = by_name["mss_columns"].log_weights(5, 20).exp()
    m = 4
    strat = (20 - m) / (20 * m)
    expected_column0 = torch.full((5,), 1 / 20, dtype=torch.float64)
    expected_column0[m - 1] = strat
    torch.testing.assert_close(columns[:, 0], expected_column0)
    torch.testing.assert_close(columns[:, 1], torch.full((5,), strat, dtype=torch.float64))
    assert float(columns[2, 2]) == pytest.approx(1 / m)  # the diagonal keeps 1/(M - 1)
    intended = by_name["mss_intended"].log_weights(5, 20).exp()
    assert torch.allclose(torch.diagonal(intended), torch.full((5,), 1 / 20, dtype=torch.float64))


def test_at_m_equal_n_the_correct_estimators_are_the_mixture():
    outputs = synthetic_encoder_outputs(AuditSetting(12, 2, 0.5), seed=0)
    exact = exact_pass(outputs, torch.Generator().manual_seed(1))
    values = known_estimator_values(exact.z, outputs.mean, outputs.log_var, 12)
    for name in ("mss", "mws", "mss_intended"):
        assert values[name]["mutual_information"] == pytest.approx(float(exact.values["mutual_information"].mean()),
                                                                   abs=1e-6 if name != "mss_intended" else 0.05)
    assert values["mws_1/(NM)"]["log_qz"] == pytest.approx(values["mws"]["log_qz"] - math.log(12))


def test_constants_are_named_by_their_form():
    assert describe_constant(math.log(100), 100, 8, 5, 1e-6) == "+log N"
    assert describe_constant(-4 * math.log(100), 100, 8, 5, 1e-6) == "-(D-1) log N"
    assert describe_constant(2.5 * math.log(2 * math.pi), 100, 8, 5, 1e-6) == "+D log(2 pi)/2"
    assert describe_constant(-math.log(8), 100, 8, 5, 1e-6) == "-log M"
    assert describe_constant(0.3, 100, 8, 5, 1e-6) is None
