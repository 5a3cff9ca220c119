import numpy as np
import pytest
import torch

from elbocheck.estimators.mig_score import mig_score
from metric_testing import FactorsAsObservations


def _posteriors(mix=False):
    def parameters(x):
        mean = x.double()
        if mix:  # two factors rotated into each other: both dimensions carry both
            mean = torch.stack([mean[:, 0] + mean[:, 1], mean[:, 0] - mean[:, 1], mean[:, 2]], dim=1) / np.sqrt(2)
        return mean, torch.full_like(mean, -6.0)  # narrow posteriors

    return parameters


def test_one_dimension_per_factor_has_a_large_gap_and_a_mixed_pair_none():
    source = FactorsAsObservations((4, 4, 4))
    clean = mig_score(source, _posteriors(), num_points=600, repeats=2)["mig"]
    mixed = mig_score(source, _posteriors(mix=True), num_points=600, repeats=2)["mig"]
    # narrow posteriors of the factor itself: I(z_k; v_k) = H(v_k), the others near 0 -> MIG near 1
    assert clean.value > 0.9
    gaps = mixed.details["gap_per_factor"]
    assert gaps[2] > 0.9 and max(gaps[0], gaps[1]) < 0.3 and clean.value - mixed.value > 0.5


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="argument 'num_points' must be an int of at least 2"):
        mig_score(FactorsAsObservations(), _posteriors(), num_points=1)
