import numpy as np
import pytest
import torch

from elbocheck.models import load_dataset
from elbocheck.models.data.ground_truth import DataSetFactors, SpritesFactors
from elbocheck.models.data.sprites import FACTOR_SIZES, render_sprites


def test_sprites_factors_render_the_drawn_grid_points():
    source, rng = SpritesFactors(), np.random.default_rng(0)
    factors = source.sample_factors(50, rng)
    assert factors.shape == (50, 5) and (factors >= 0).all() and (factors < np.array(FACTOR_SIZES)).all()
    images = source.observations(factors, rng)
    assert images.shape == (50, 1, 64, 64) and images.dtype == torch.float32
    np.testing.assert_array_equal(images[:, 0].numpy(), render_sprites(factors))


def test_data_set_factors_draw_existing_examples_and_fix_a_factor_among_them():
    dataset = load_dataset("sprites", size=300, seed=1)
    source, rng = DataSetFactors(dataset, "train"), np.random.default_rng(0)
    factors = source.sample_factors(40, rng)
    images = source.observations(factors, rng)
    train = dataset.splits["train"]
    table = {tuple(dataset.factors[i].tolist()): dataset.x[i] for i in train.tolist()}
    for row, image in zip(factors, images):  # each observation is an example with exactly those factor values
        torch.testing.assert_close(image, table[tuple(row.tolist())])
    fixed = source.sample_factors_fixing(30, 3, rng)
    assert len(np.unique(fixed[:, 3])) == 1 and len(np.unique(fixed[:, 4])) > 1
    source.observations(fixed, rng)  # every fixed-factor combination exists
    with pytest.raises(ValueError, match="no example of this data set has the factor values"):
        source.observations(np.full((1, 5), -1), rng)


def test_data_without_factors_is_refused():
    with pytest.raises(ValueError, match="data set 'digits' has no ground-truth factors"):
        DataSetFactors(load_dataset("digits", size=50))
    with pytest.raises(ValueError, match="unknown split 'test'"):
        DataSetFactors(load_dataset("sprites", size=50), "test")
