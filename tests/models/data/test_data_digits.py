import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from elbocheck.models import load_dataset
from elbocheck.models.data.core import random_splits


def test_digits_are_the_bundled_images_on_17_levels():
    data = load_dataset("digits")
    raw = load_digits()
    assert data.x.shape == (1797, 1, 8, 8) and data.x.dtype == torch.float32
    assert data.num_levels == 17 and data.likelihood == "categorical"
    np.testing.assert_array_equal((data.x.squeeze(1).numpy() * 16).round(), raw.images)
    np.testing.assert_array_equal(data.y.numpy(), raw.target)
    assert data.spec().num_classes == 10 and data.spec().dataset_size == len(data.splits["train"])


def test_splits_partition_the_examples_and_depend_on_the_seed():
    data = load_dataset("digits")
    train, validation = data.splits["train"], data.splits["validation"]
    assert len(train) + len(validation) == 1797
    assert set(train.tolist()).isdisjoint(validation.tolist())
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.splits["train"], train)
    assert torch.equal(load_dataset("digits").splits["train"], train)


def test_bernoulli_variant_is_binary_and_thresholds_at_the_middle_level():
    data = load_dataset("digits", likelihood="bernoulli")
    raw = load_digits().images
    assert data.likelihood == "bernoulli" and data.num_levels is None
    np.testing.assert_array_equal(data.x.squeeze(1).numpy(), (raw >= 8).astype(np.float32))


def test_subset_and_bad_options_are_named():
    assert len(load_dataset("digits", size=50)) == 50
    with pytest.raises(ValueError, match="likelihood"):
        load_dataset("digits", likelihood="gaussian")
    with pytest.raises(ValueError, match="size"):
        load_dataset("digits", size=0)
    with pytest.raises(ValueError, match="valid options: likelihood, size, seed"):
        load_dataset("digits", sizes=3)
    with pytest.raises(ValueError, match="valid choices: digits, rotated_digits"):
        load_dataset("cifar")


def test_random_splits_cover_every_index_once():
    splits = random_splits(101, {"a": 0.5, "b": 0.3, "c": 0.2}, seed=3)
    joined = torch.cat(list(splits.values())).sort().values
    assert torch.equal(joined, torch.arange(101))
    with pytest.raises(ValueError, match="sum to 1"):
        random_splits(10, {"a": 0.5}, seed=0)
