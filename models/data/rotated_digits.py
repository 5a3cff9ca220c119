"""Rotated digits: the DIVA rotated-MNIST protocol (Ilse et al. 2020) on scikit-learn's 8x8 digits.

Recipe: take ``images_per_class`` digits of each class (fixed by ``seed``; DIVA used 100 per class of MNIST), and
rotate every one of them by each angle of :data:`DOMAIN_ANGLES` (0, 15, 30, 45, 60, 75 degrees) about the image
centre (bilinear interpolation, no reshaping, zero fill), then round back to the 17 integer intensity levels so that
the categorical likelihood stays exact. Domain label d = index of the angle; class label y = digit.

Splits: with ``held_out_domain`` (an angle in degrees) that domain forms the ``test`` split (leave-one-domain-out)
and the other domains are split 80/20 into ``train``/``validation``; without it all domains are split 80/20.
"""

from __future__ import annotations

import numpy as np
import torch

from .core import DataSet, random_splits
from .digits import DIGITS_LEVELS, digit_images_and_labels, digits_tensor

DOMAIN_ANGLES = (0, 15, 30, 45, 60, 75)


def rotate_levels(images: np.ndarray, angle: float, num_levels: int = DIGITS_LEVELS) -> np.ndarray:
    """Rotate integer-level images ``(N, H, W)`` by ``angle`` degrees; the result is rounded to integer levels."""
    from scipy.ndimage import rotate  # imported here: scipy.ndimage takes a while to import

    rotated = rotate(images.astype(np.float64), angle, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0)
    return np.clip(np.rint(rotated), 0, num_levels - 1).astype(np.int64)


def load_rotated_digits_dataset(
    *,
    images_per_class: int = 100,
    held_out_domain: int | None = None,
    likelihood: str = "categorical",
    seed: int = 0,
) -> DataSet:
    """Rotated digits with class labels ``y`` and domain labels ``d`` (6 domains)."""
    if held_out_domain is not None and held_out_domain not in DOMAIN_ANGLES:
        raise ValueError(
            f"held_out_domain: {held_out_domain!r} is not a domain angle; valid choices: "
            f"{', '.join(str(a) for a in DOMAIN_ANGLES)} (or None)"
        )
    images, labels = digit_images_and_labels()
    rng = np.random.default_rng(seed)
    chosen = []
    for digit in range(10):
        candidates = np.flatnonzero(labels == digit)
        if not 1 <= images_per_class <= len(candidates):
            raise ValueError(f"images_per_class: must be between 1 and {len(candidates)}, got {images_per_class}")
        chosen.append(np.sort(rng.choice(candidates, size=images_per_class, replace=False)))
    base = np.concatenate(chosen)
    all_levels, all_labels, all_domains = [], [], []
    for domain, angle in enumerate(DOMAIN_ANGLES):
        all_levels.append(rotate_levels(images[base], angle))
        all_labels.append(labels[base])
        all_domains.append(np.full(len(base), domain, dtype=np.int64))
    levels = np.concatenate(all_levels)
    y = torch.as_tensor(np.concatenate(all_labels))
    d = torch.as_tensor(np.concatenate(all_domains))
    x, num_levels = digits_tensor(levels, likelihood, DIGITS_LEVELS)

    if held_out_domain is None:
        splits = random_splits(len(x), {"train": 0.8, "validation": 0.2}, seed)
    else:
        test_domain = DOMAIN_ANGLES.index(held_out_domain)
        seen = torch.nonzero(d != test_domain).squeeze(1)
        inner = random_splits(len(seen), {"train": 0.8, "validation": 0.2}, seed)
        splits = {
            "train": seen[inner["train"]],
            "validation": seen[inner["validation"]],
            "test": torch.nonzero(d == test_domain).squeeze(1),
        }
    return DataSet(
        name="rotated_digits",
        x=x,
        y=y,
        d=d,
        likelihood=likelihood,
        num_levels=num_levels,
        num_classes=10,
        num_domains=len(DOMAIN_ANGLES),
        splits=splits,
        class_names=tuple(str(i) for i in range(10)),
        domain_names=tuple(f"{a}deg" for a in DOMAIN_ANGLES),
        description="scikit-learn digits rotated by 0..75 degrees (DIVA protocol), 6 domains",
        options={
            "images_per_class": images_per_class,
            "held_out_domain": held_out_domain,
            "likelihood": likelihood,
            "seed": seed,
        },
    )
