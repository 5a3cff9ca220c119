import math

import numpy as np
import pytest

from elbocheck.estimators.dci import dci, dci_from_importance, dci_score
from metric_testing import (
    FactorsAsObservations,
    dlib_completeness,
    dlib_disentanglement,
    identity,
    noise,
    permuted,
    rotated,
)


def test_the_formulas_match_disentanglement_lib_on_the_same_importances():
    rng = np.random.default_rng(0)
    for shape in ((3, 3), (10, 5), (4, 7)):
        for _ in range(10):
            importance = rng.exponential(size=shape) * (rng.random(shape) < 0.7)
            disentanglement, completeness, _, _, _ = dci_from_importance(importance)
            assert disentanglement == pytest.approx(dlib_disentanglement(importance), abs=1e-8)
            assert completeness == pytest.approx(dlib_completeness(importance), abs=1e-8)


def test_known_importance_matrices():
    assert dci_from_importance(np.eye(4))[:3] == pytest.approx((1.0, 1.0, 1.0))
    # two codes sharing two factors equally, a third code alone on the third factor
    shared = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    per_code = 1 - math.log(2) / math.log(3)
    disentanglement, completeness, unweighted, codes, _ = dci_from_importance(shared)
    assert codes == pytest.approx([per_code, per_code, 1.0])
    assert disentanglement == pytest.approx((4 * per_code + 1) / 5)
    assert completeness == pytest.approx((4 * per_code + 1) / 5) and unweighted == pytest.approx((2 * per_code + 1) / 3)
    assert dci_from_importance(np.ones((3, 3)))[:2] == pytest.approx((0.0, 0.0), abs=1e-12)
    assert dci_from_importance(np.zeros((2, 2)))[:2] == (0.0, 0.0)


@pytest.mark.parametrize("regressor", ["gradient_boosting", "lasso", "random_forest"])
def test_one_code_per_factor_scores_one_in_any_order(regressor):
    source = FactorsAsObservations((2, 3, 4))  # few classes: gradient boosting grows one tree per class and stage
    for representation in (identity(source), permuted((1, 2, 0))):
        scores = dci_score(source, representation, num_train=200, num_test=200, regressor=regressor)
        assert scores["disentanglement"].value == pytest.approx(1.0, abs=1e-6)
        assert scores["completeness"].value == pytest.approx(1.0, abs=1e-6)
    kind = scores["disentanglement"].details["informativeness_kind"]
    perfect = 1.0 if kind == "accuracy" else 0.0
    assert scores["informativeness"].value == pytest.approx(perfect, abs=0.05)


def test_a_rotation_shares_the_lasso_importance_equally():
    # lasso on standardised codes: |weights| of the rotated pair (cos - alpha, sin - alpha) = equal at 45 degrees,
    # so those two codes have D_i = 1 - log 2 / log 3 (K = 3), weighted with the shrunk weights (alpha = 0.02)
    source = FactorsAsObservations()
    scores = dci_score(source, rotated(), num_train=4000, num_test=500, regressor="lasso", repeats=4)
    shared, alone = math.sqrt(0.5) - 0.02, 1.0 - 0.02
    per_code = 1 - math.log(2) / math.log(3)
    expected = (4 * shared * per_code + alone) / (4 * shared + alone)
    score = scores["disentanglement"]
    assert abs(score.value - expected) < 5 * score.standard_error + 2e-3  # + the O(1/N) sample-correlation bias
    assert scores["completeness"].value == pytest.approx(expected, abs=5 * scores["completeness"].standard_error
                                                         + 2e-3)


def test_noise_is_neither_disentangled_nor_informative():
    source = FactorsAsObservations((2, 3, 4))
    scores = dci_score(source, noise(dim=3), num_train=200, num_test=400, repeats=2)
    assert scores["disentanglement"].value < 0.05 and scores["completeness"].value < 0.05
    chance = np.mean([1 / size for size in source.factor_sizes])
    accuracy = scores["informativeness"]
    assert abs(accuracy.value - chance) < 5 * math.sqrt(chance * (1 - chance) / (400 * 2 * 3)) + 0.02


def test_bad_inputs_are_named():
    codes, factors = np.zeros((10, 2)), np.zeros((10, 2), dtype=int)
    with pytest.raises(ValueError, match="argument 'regressor' must be one of"):
        dci(codes, factors, codes, factors, regressor="svm")
    with pytest.raises(ValueError, match="argument 'factors_train' must hold integer factor values"):
        dci(codes, factors.astype(float), codes, factors)
    with pytest.raises(ValueError, match="argument 'importance' must have shape \\(D, K\\) with D, K >= 2"):
        dci_from_importance(np.ones((1, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        dci_from_importance(-np.ones((2, 2)))
