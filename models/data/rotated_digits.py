"""Rotated digits: the DIVA rotated-MNIST protocol (Ilse et al. 2020) on scikit-learn's 8x8 digits.

Recipe: take ``images_per_class`` digits of each class (fixed by ``seed``; DIVA used 100 per class of MNIST), and
rotate every one of them by each angle of :data:`DOMAIN_ANGLES` (0, 15, 30, 45, 60, 75 degrees) about the image
centre (bilinear interpolation, no reshaping, zero fill), then round back to the 17 integer intensity levels so that
the categorical likelihood stays exact. Domain label d = index of the angle; class label y = digit.

Splits are made by *base digit*, never by rotated image, so that no digit is seen in training under one angle and
measured under another: ``validation_fraction`` of the base digits of each class (fixed by ``seed``) form the
``validation`` split at the training angles, the others the ``train`` split. With ``held_out_domain`` (an angle in
degrees) that angle is never trained on: ``test`` holds the training digits at that angle (the DIVA protocol: the
same digits, an unseen angle) and ``test_unseen`` the validation digits at that angle (unseen digits and angle).
"""

from __future__ import annotations

import numpy as np
import torch

from .core import DataSet
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
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> DataSet:
    """Rotated digits with class labels ``y`` and domain labels ``d`` (6 domains)."""
    if held_out_domain is not None and held_out_domain not in DOMAIN_ANGLES:
        raise ValueError(
            f"held_out_domain: {held_out_domain!r} is not a domain angle; valid choices: "
            f"{', '.join(str(a) for a in DOMAIN_ANGLES)} (or None)"
        )
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction: must lie in (0, 1), got {validation_fraction!r}")
    images, labels = digit_images_and_labels()
    rng = np.random.default_rng(seed)
    chosen, validation_digit = [], []
    for digit in range(10):
        candidates = np.flatnonzero(labels == digit)
        if not 2 <= images_per_class <= len(candidates):
            raise ValueError(f"images_per_class: must be between 2 and {len(candidates)}, got {images_per_class}")
        chosen.append(np.sort(rng.choice(candidates, size=images_per_class, replace=False)))
        held = min(images_per_class - 1, max(1, int(round(validation_fraction * images_per_class))))
        flags = np.zeros(images_per_class, dtype=bool)
        flags[rng.choice(images_per_class, size=held, replace=False)] = True
        validation_digit.append(flags)
    base = np.concatenate(chosen)
    base_is_validation = np.concatenate(validation_digit)
    all_levels, all_labels, all_domains, all_validation = [], [], [], []
    for domain, angle in enumerate(DOMAIN_ANGLES):
        all_levels.append(rotate_levels(images[base], angle))
        all_labels.append(labels[base])
        all_domains.append(np.full(len(base), domain, dtype=np.int64))
        all_validation.append(base_is_validation)
    levels = np.concatenate(all_levels)
    y = torch.as_tensor(np.concatenate(all_labels))
    domains = np.concatenate(all_domains)
    d = torch.as_tensor(domains)
    is_validation = np.concatenate(all_validation)
    x, num_levels = digits_tensor(levels, likelihood, DIGITS_LEVELS)

    def index(mask: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.flatnonzero(mask), dtype=torch.int64)

    seen = np.ones(len(domains), dtype=bool) if held_out_domain is None else (
        domains != DOMAIN_ANGLES.index(held_out_domain))
    splits = {"train": index(seen & ~is_validation), "validation": index(seen & is_validation)}
    if held_out_domain is not None:
        splits["test"] = index(~seen & ~is_validation)
        splits["test_unseen"] = index(~seen & is_validation)
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
            "validation_fraction": validation_fraction,
            "seed": seed,
        },
    )
