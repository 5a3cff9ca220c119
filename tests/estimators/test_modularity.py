import numpy as np
import pytest

from elbocheck.estimators.ground_truth import sample_codes
from elbocheck.estimators.modularity import (
    discrete_mutual_information,
    histogram_discretize,
    modularity,
    modularity_from_mutual_information,
    modularity_score,
)
from metric_testing import (
    FactorsAsObservations,
    dlib_discrete_mutual_info,
    dlib_histogram_discretize,
    dlib_modularity,
    identity,
    noise,
    permuted,
    rotated,
)


def test_the_pipeline_matches_disentanglement_lib_on_the_same_codes():
    source = FactorsAsObservations((3, 5, 4))
    codes, factors = sample_codes(source, rotated(0.4), 500, np.random.default_rng(0))
    codes = codes + np.random.default_rng(1).normal(scale=0.5, size=codes.shape)
    discrete = histogram_discretize(codes, 20)
    np.testing.assert_array_equal(discrete.T, dlib_histogram_discretize(codes.T, 20))
    information = discrete_mutual_information(discrete, factors)
    np.testing.assert_allclose(information, dlib_discrete_mutual_info(discrete.T, factors.T), atol=1e-12)
    assert modularity_from_mutual_information(information)[0] == pytest.approx(dlib_modularity(information))
    with_zero_row = np.vstack([information, np.zeros(3)])  # an uninformative code scores 0 in both
    assert modularity_from_mutual_information(with_zero_row)[0] == pytest.approx(dlib_modularity(with_zero_row))


def test_known_mutual_information_matrices():
    assert modularity_from_mutual_information(np.eye(3))[0] == 1.0
    assert modularity_from_mutual_information(np.ones((2, 2)))[0] == 0.0  # each code equally about both factors
    per_code = modularity_from_mutual_information(np.array([[1.0, 0.5, 0.0]]))[1]
    assert per_code == pytest.approx([1 - 0.25 / 2])


def test_one_code_per_factor_is_modular_in_any_order():
    source = FactorsAsObservations()
    for representation in (identity(source), permuted((2, 0, 1))):
        score = modularity_score(source, representation, num_train=2000, repeats=2)["modularity"]
        assert score.value == pytest.approx(1.0, abs=0.01)  # plug-in MI of independent pairs: about 1e-2 nats


def test_two_equal_factors_rotated_into_each_other_are_not_modular():
    # K = 2 factors of equal size: each 45-degree dimension carries the same information about both -> about 0
    source = FactorsAsObservations((8, 8))
    score = modularity_score(source, rotated(), num_train=4000, repeats=4)["modularity"]
    assert abs(score.value) < 5 * score.standard_error


def test_noise_modularity_is_not_a_disentanglement_signal():
    # plug-in MI is positive for every (dimension, factor) pair of a useless code, in no preferred pattern: the score
    # lands far from 1 but not at 0 (Ridgeway & Mozer's modularity only compares a dimension's MIs with each other)
    source = FactorsAsObservations()
    score = modularity_score(source, noise(dim=3), num_train=2000, repeats=3)["modularity"]
    assert score.value < 0.8


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="with K >= 2 factors"):
        modularity_from_mutual_information(np.ones((3, 1)))
    with pytest.raises(ValueError, match="argument 'num_bins' must be an int of at least 2"):
        histogram_discretize(np.zeros((4, 2)), 1)
    with pytest.raises(ValueError, match="argument 'codes' must have shape \\(N, D\\)"):
        modularity(np.zeros(5), np.zeros((5, 2), dtype=int))
