"""scikit-learn's bundled handwritten digits (1797 images, 8x8, 17 intensity levels, 10 classes); nothing downloads.

The pixel intensities are the integers 0..16, so the default observation model is a categorical distribution over
17 levels per pixel, which makes the ELBO a true lower bound on a discrete log-likelihood. ``likelihood="bernoulli"``
binarises at intensity 8 (the middle level) so that a Bernoulli likelihood is a normalised density as well.
"""

from __future__ import annotations

import numpy as np
import torch
from .core import DataSet, random_splits, subsample_indices

DIGITS_LEVELS = 17  # intensities 0..16
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.2}


def digit_images_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """The raw digits: integer intensity images ``(1797, 8, 8)`` in 0..16 and labels ``(1797,)``."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn takes a second to import

    bunch = load_digits()
    return bunch.images.astype(np.int64), bunch.target.astype(np.int64)


def binarize_levels(levels: np.ndarray, num_levels: int) -> np.ndarray:
    """1 where the intensity is at least the middle level, else 0."""
    return (levels >= (num_levels - 1) / 2).astype(np.float32)


def load_digits_dataset(
    *, likelihood: str = "categorical", size: int | None = None, seed: int = 0
) -> DataSet:
    """The digits as a :class:`DataSet` with a random 80/20 train/validation split fixed by ``seed``.

    ``size`` keeps a random subset of that many images (for quick tests); ``None`` keeps all 1797.
    """
    images, labels = digit_images_and_labels()
    keep = subsample_indices(len(images), size, seed)
    images, labels = images[keep], labels[keep]
    x, num_levels = digits_tensor(images, likelihood, DIGITS_LEVELS)
    return DataSet(
        name="digits",
        x=x,
        y=torch.as_tensor(labels),
        likelihood=likelihood,
        num_levels=num_levels,
        num_classes=10,
        splits=random_splits(len(x), SPLIT_FRACTIONS, seed),
        class_names=tuple(str(i) for i in range(10)),
        description="scikit-learn digits, 8x8, 17 levels, 10 classes",
        options={"likelihood": likelihood, "size": size, "seed": seed},
    )


def digits_tensor(levels: np.ndarray, likelihood: str, num_levels: int) -> tuple[torch.Tensor, int | None]:
    """Images of integer levels ``(N, H, W)`` -> float tensor ``(N, 1, H, W)`` in [0, 1] for the given likelihood."""
    if likelihood == "categorical":
        values = levels.astype(np.float32) / (num_levels - 1)
        return torch.as_tensor(values).unsqueeze(1), num_levels
    if likelihood == "bernoulli":
        return torch.as_tensor(binarize_levels(levels, num_levels)).unsqueeze(1), None
    raise ValueError(f"likelihood: digits support 'categorical' or 'bernoulli', got {likelihood!r}")
