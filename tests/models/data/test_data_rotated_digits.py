import numpy as np
import pytest
import torch

from elbocheck.models import load_dataset
from elbocheck.models.data.digits import digit_images_and_labels
from elbocheck.models.data.rotated_digits import DOMAIN_ANGLES, rotate_levels


def test_six_domains_of_the_same_base_images():
    data = load_dataset("rotated_digits", images_per_class=4)
    assert data.num_domains == 6 and data.num_classes == 10
    assert len(data) == 6 * 40
    counts = torch.bincount(data.d, minlength=6)
    assert counts.tolist() == [40] * 6
    # every domain holds the same digits, in the same order
    labels = data.y.view(6, 40)
    assert all(torch.equal(labels[0], labels[k]) for k in range(6))
    # domain 0 (0 degrees) is the original images
    images, _ = digit_images_and_labels()
    levels = (data.x[data.d == 0].squeeze(1) * 16).round().numpy().astype(int)
    assert any(np.array_equal(levels[0], image) for image in images)


def test_rotation_by_a_right_angle_is_a_pixel_permutation():
    images, _ = digit_images_and_labels()
    rotated = rotate_levels(images[:10], 90)
    candidates = [np.rot90(images[:10], k, axes=(1, 2)) for k in (1, 3)]
    assert any(np.array_equal(rotated, c) for c in candidates)


def test_rotated_images_stay_on_integer_levels_and_differ_between_domains():
    data = load_dataset("rotated_digits", images_per_class=2)
    levels = data.x * 16
    assert torch.equal(levels, levels.round()) and levels.max() <= 16 and levels.min() >= 0
    first = data.x[data.d == 0]
    for domain in range(1, 6):
        assert not torch.equal(first, data.x[data.d == domain])


def test_leave_one_domain_out_split():
    data = load_dataset("rotated_digits", images_per_class=5, held_out_domain=75)
    test_domain = DOMAIN_ANGLES.index(75)
    assert set(data.d[data.splits["test"]].tolist()) == {test_domain}
    assert set(data.d[data.splits["test_unseen"]].tolist()) == {test_domain}
    seen = torch.cat([data.splits["train"], data.splits["validation"]])
    assert test_domain not in set(data.d[seen].tolist())
    every = torch.cat(list(data.splits.values()))
    assert len(every) == len(data) and len(set(every.tolist())) == len(data)


def _base_digit(data, index):
    """Which base digit an image is: its position within its domain (every domain lists the digits in order)."""
    per_domain = len(data) // 6
    return set((index % per_domain).tolist())


@pytest.mark.parametrize("held_out", [None, 30])
def test_no_base_digit_is_in_two_splits(held_out):
    """The split is by base digit: a digit rotated for training never reappears in validation under another angle."""
    data = load_dataset("rotated_digits", images_per_class=10, held_out_domain=held_out, seed=3)
    train, validation = _base_digit(data, data.splits["train"]), _base_digit(data, data.splits["validation"])
    assert train and validation and not train & validation
    assert len(validation) == 20  # 20% of 10 digits in each of 10 classes
    if held_out is not None:
        assert _base_digit(data, data.splits["test"]) == train
        assert _base_digit(data, data.splits["test_unseen"]) == validation


def test_bad_held_out_domain_lists_the_angles():
    with pytest.raises(ValueError, match="held_out_domain.*0, 15, 30, 45, 60, 75"):
        load_dataset("rotated_digits", held_out_domain=20)
