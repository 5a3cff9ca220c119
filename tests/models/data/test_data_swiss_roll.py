import numpy as np
import pytest
import torch
from sklearn.datasets import make_swiss_roll

from elbocheck.models import load_dataset


def test_label_is_the_outer_half_of_the_roll():
    data = load_dataset("swiss_roll", num_examples=500, noise=0.1, seed=4)
    points, position = make_swiss_roll(500, noise=0.1, random_state=4)
    np.testing.assert_array_equal(data.y.numpy(), (position > 3 * np.pi).astype(int))
    standardised = (points - points.mean(0)) / points.std(0)
    np.testing.assert_allclose(data.x.numpy(), standardised, rtol=1e-5, atol=1e-5)
    assert data.likelihood == "gaussian" and data.num_classes == 2
    assert 0.3 < data.y.float().mean() < 0.7


def test_standardised_coordinates():
    data = load_dataset("swiss_roll")
    assert data.x.shape == (4000, 3)
    torch.testing.assert_close(data.x.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(data.x.std(0, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="num_examples"):
        load_dataset("swiss_roll", num_examples=3)
    with pytest.raises(ValueError, match="noise"):
        load_dataset("swiss_roll", noise=-1.0)
