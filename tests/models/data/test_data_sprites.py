import numpy as np
import pytest
import torch

from elbocheck.models import load_dataset
from elbocheck.models.data.sprites import FACTOR_SIZES, GRID_SIZE, grid_factors, render_sprites


def test_grid_is_the_dsprites_grid_in_mixed_radix_order():
    assert GRID_SIZE == 737280
    indices = np.array([0, 1, 31, 32, 12345, GRID_SIZE - 1])
    expected = np.stack(np.unravel_index(indices, FACTOR_SIZES), axis=1)
    np.testing.assert_array_equal(grid_factors(indices), expected)
    with pytest.raises(ValueError, match="indices"):
        grid_factors(np.array([GRID_SIZE]))


def _sprite(shape=0, scale=5, orientation=0, x=16, y=16):
    return render_sprites(np.array([[shape, scale, orientation, x, y]]))[0].astype(bool)


def _centroid(image):
    rows, cols = np.nonzero(image)
    return rows.mean(), cols.mean()


def test_factors_change_the_image_as_named():
    shapes = [_sprite(shape=s) for s in range(3)]
    assert all(img.sum() > 20 for img in shapes)
    assert not np.array_equal(shapes[0], shapes[1]) and not np.array_equal(shapes[1], shapes[2])
    # scale: the area grows with the scale class
    areas = [_sprite(scale=s).sum() for s in range(6)]
    assert all(a < b for a, b in zip(areas, areas[1:]))
    # position x moves the centroid right, position y moves it down, and leave the area unchanged
    _, col_left = _centroid(_sprite(x=2))
    _, col_right = _centroid(_sprite(x=29))
    row_top, _ = _centroid(_sprite(y=2))
    row_bottom, _ = _centroid(_sprite(y=29))
    assert col_right - col_left > 30 and row_bottom - row_top > 30
    assert _sprite(x=2).sum() == _sprite(x=29).sum()
    # orientation: an ellipse at 0 is wider than tall; a quarter turn (class 10 of 40 over [0, 2 pi]) is close to it
    flat = _sprite(shape=1, orientation=0)
    turned = _sprite(shape=1, orientation=10)
    rows, cols = np.nonzero(flat)
    assert np.ptp(cols) > 1.5 * np.ptp(rows)
    rows, cols = np.nonzero(turned)
    assert np.ptp(rows) > 1.5 * np.ptp(cols)


def test_subset_is_deterministic_and_carries_factors():
    a = load_dataset("sprites", size=40, seed=3)
    b = load_dataset("sprites", size=40, seed=3)
    c = load_dataset("sprites", size=40, seed=4)
    assert a.x.shape == (40, 1, 64, 64) and a.likelihood == "bernoulli"
    assert torch.equal(a.x, b.x) and torch.equal(a.factors, b.factors)
    assert not torch.equal(a.factors, c.factors)
    assert set(torch.unique(a.x).tolist()) <= {0.0, 1.0}
    rendered = render_sprites(a.factors.numpy())
    np.testing.assert_array_equal(rendered, a.x.squeeze(1).numpy())
    assert a.y is None and a.factor_names[0] == "shape"


def test_label_factor_becomes_the_class_label():
    data = load_dataset("sprites", size=30, label_factor="shape")
    assert torch.equal(data.y, data.factors[:, 0]) and data.num_classes == 3
    with pytest.raises(ValueError, match="label_factor.*shape, scale, orientation, position_x, position_y"):
        load_dataset("sprites", size=30, label_factor="colour")
