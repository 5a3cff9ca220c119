import pytest
import torch

from elbocheck.models.terms import mmd_squared
from model_testing import tiny_model


def test_mmd_is_near_zero_for_equal_distributions_and_grows_with_a_shift():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(400, 3, generator=generator)
    b = torch.randn(400, 3, generator=generator)
    same = float(mmd_squared(a, b))
    shifted = float(mmd_squared(a + 1.0, b))
    assert abs(same) < 0.01
    assert shifted > 0.1 and shifted > 10 * abs(same)
    assert float(mmd_squared(a + 2.0, b)) > shifted


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="divergence.*mmd, kl"):
        tiny_model("infovae", divergence="js")
    with pytest.raises(ValueError, match="kernel.*rbf, imq"):
        tiny_model("infovae", kernel="laplace")


def test_default_lambda_depends_on_the_divergence():
    assert tiny_model("infovae")[0].lambda_ == 1000.0
    assert tiny_model("infovae", divergence="kl")[0].lambda_ == 2.0
