import numpy as np
import pytest

from elbocheck.estimators.sap import sap_from_score_matrix, sap_score, sap_score_matrix
from metric_testing import (
    FactorsAsObservations,
    dlib_avg_diff_top_two,
    dlib_sap_score_matrix,
    identity,
    noise,
    permuted,
    rotated,
)
from elbocheck.estimators.ground_truth import sample_codes


def _codes(representation, num, seed, sizes=(6, 8, 10)):
    source = FactorsAsObservations(sizes)
    return sample_codes(source, representation, num, np.random.default_rng(seed))


def test_the_score_matrix_and_gap_match_disentanglement_lib_on_the_same_codes():
    source = FactorsAsObservations((2, 3, 4))
    codes, factors = sample_codes(source, rotated(0.3), 300, np.random.default_rng(0))
    codes = codes + np.random.default_rng(1).normal(scale=0.3, size=codes.shape)
    test_codes, test_factors = sample_codes(source, rotated(0.3), 200, np.random.default_rng(2))
    for continuous in (True, False):
        ours = sap_score_matrix(codes, factors, test_codes, test_factors, continuous=continuous, accuracy="plain")
        theirs = dlib_sap_score_matrix(codes.T, factors.T, test_codes.T, test_factors.T, continuous)
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
        assert sap_from_score_matrix(ours) == pytest.approx(dlib_avg_diff_top_two(theirs))


def test_one_code_per_factor_gives_one_for_continuous_factors_in_any_order():
    source = FactorsAsObservations()
    for representation in (identity(source), permuted((2, 1, 0))):
        score = sap_score(source, representation, num_train=2000, num_test=10, continuous=True, repeats=3)["sap"]
        # off-diagonal R^2 of independent draws is about 1/N: the gap is 1 minus that
        assert abs(score.value - 1.0) < 5 * score.standard_error + 5 / 2000


def test_a_45_degree_rotation_leaves_no_gap_for_the_rotated_factors():
    # factors 0 and 1 have R^2 = 1/2 with each rotated dimension: gap 0; factor 2 keeps gap 1 -> SAP = 1/3
    source = FactorsAsObservations()
    score = sap_score(source, rotated(), num_train=2000, num_test=10, continuous=True, repeats=4)["sap"]
    assert abs(score.value - 1 / 3) < 5 * score.standard_error + 5 / 2000


def test_noise_has_no_gap():
    source = FactorsAsObservations()
    continuous = sap_score(source, noise(dim=4), num_train=2000, num_test=10, continuous=True, repeats=3)["sap"]
    assert continuous.value < 5 * continuous.standard_error + 5 / 2000
    discrete = sap_score(source, noise(dim=4), num_train=600, num_test=600, repeats=2)["sap"]
    assert discrete.value < 0.05  # balanced accuracies of a useless code sit at chance for every dimension


def test_discrete_factors_score_balanced_accuracy_which_stays_below_one():
    # one linear threshold on one dimension cannot separate n > 2 classes: SAP of a perfect code is below 1
    codes, factors = _codes(lambda x: x, 600, 0, sizes=(2, 2))
    test_codes, test_factors = _codes(lambda x: x, 600, 1, sizes=(2, 2))
    scores = sap_score_matrix(codes, factors, test_codes, test_factors)
    assert np.diag(scores) == pytest.approx([1.0, 1.0])  # binary factors: a threshold is enough
    assert np.all(np.abs(scores - np.diag(np.diag(scores)) - 0.5 * (1 - np.eye(2))) < 0.1)  # chance off-diagonal


def test_bad_inputs_are_named():
    codes, factors = np.zeros((10, 2)), np.zeros((10, 2), dtype=int)
    with pytest.raises(ValueError, match="'codes_test' and 'factors_test' are needed"):
        sap_score_matrix(codes, factors)
    with pytest.raises(ValueError, match="argument 'accuracy' must be one of"):
        sap_score_matrix(codes, factors, codes, factors, accuracy="weighted")
    with pytest.raises(ValueError, match="with D >= 2 code dimensions"):
        sap_from_score_matrix(np.ones((1, 3)))
