"""Procedural sprites with known factors, following the dSprites recipe (Matthey et al. 2017), rendered locally.

The factor grid is that of dSprites: shape (square, ellipse, heart; 3), scale (6 values in [0.5, 1]), orientation
(40 values in [0, 2 pi]), position x and position y (32 values each in [0, 1]) -- 737,280 combinations, indexed in
the same mixed-radix order as dSprites (position y varies fastest). Nothing is stored for the full grid: any index
renders on demand with :func:`render_sprites`, and :func:`load_sprites_dataset` renders a random subset of ``size``
grid points fixed by ``seed``.

Rendering: a 64x64 binary image; pixel (row, col) is on when its centre, mapped into the sprite's own frame (translate
to the sprite centre, rotate by minus the orientation, divide by scale * :data:`BASE_HALF_SIZE`), falls inside the
shape's unit outline: square max(|u|, |v|) <= 1; ellipse u^2 + (v / 0.5)^2 <= 1; heart
(a^2 + b^2 - 1)^3 - a^2 b^3 <= 0 with (a, b) = (u, v) / 0.8 and b pointing up. The sprite centre moves over
[:data:`POSITION_MARGIN`, 1 - margin] of the image as the position factor goes from 0 to 1. The images differ from the
real dSprites pixels (different rasteriser and outlines); the factor structure is the same, which is what MIG needs.
"""

from __future__ import annotations

import numpy as np
import torch

from .core import DataSet, random_splits, subsample_indices

IMAGE_SIZE = 64
FACTOR_NAMES = ("shape", "scale", "orientation", "position_x", "position_y")
SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SCALE_VALUES = np.linspace(0.5, 1.0, 6)
ORIENTATION_VALUES = np.linspace(0.0, 2.0 * np.pi, 40)
POSITION_VALUES = np.linspace(0.0, 1.0, 32)
BASE_HALF_SIZE = 0.1  # half-width of a scale-1 sprite, as a fraction of the image side
POSITION_MARGIN = 0.15
GRID_SIZE = int(np.prod(FACTOR_SIZES))  # 737280, as dSprites
_RENDER_CHUNK = 1024


def grid_factors(indices: np.ndarray) -> np.ndarray:
    """Factor classes ``(len(indices), 5)`` of grid points, mixed radix with the last factor fastest (as dSprites)."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= GRID_SIZE):
        raise ValueError(f"indices: grid indices must lie in [0, {GRID_SIZE})")
    classes = np.empty((indices.size, len(FACTOR_SIZES)), dtype=np.int64)
    remainder = indices.copy()
    for column in range(len(FACTOR_SIZES) - 1, -1, -1):
        classes[:, column] = remainder % FACTOR_SIZES[column]
        remainder //= FACTOR_SIZES[column]
    return classes


def render_sprites(factor_classes: np.ndarray, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Binary images ``(M, image_size, image_size)`` (uint8) of the sprites with the given factor classes ``(M, 5)``."""
    factor_classes = np.asarray(factor_classes, dtype=np.int64)
    if factor_classes.ndim != 2 or factor_classes.shape[1] != len(FACTOR_SIZES):
        raise ValueError(f"factor_classes: expected shape (M, {len(FACTOR_SIZES)}), got {factor_classes.shape}")
    for column, size in enumerate(FACTOR_SIZES):
        values = factor_classes[:, column]
        if values.size and not (0 <= values.min() and values.max() < size):
            raise ValueError(f"factor_classes[:, {column}] ({FACTOR_NAMES[column]}): classes must lie in [0, {size})")
    out = np.empty((len(factor_classes), image_size, image_size), dtype=np.uint8)
    centres = (np.arange(image_size) + 0.5) / image_size
    cols = centres[None, None, :]
    rows = centres[None, :, None]
    for start in range(0, len(factor_classes), _RENDER_CHUNK):
        chunk = factor_classes[start : start + _RENDER_CHUNK]
        shape = chunk[:, 0]
        scale = SCALE_VALUES[chunk[:, 1]][:, None, None]
        angle = ORIENTATION_VALUES[chunk[:, 2]][:, None, None]
        centre_x = (POSITION_MARGIN + (1 - 2 * POSITION_MARGIN) * POSITION_VALUES[chunk[:, 3]])[:, None, None]
        centre_y = (POSITION_MARGIN + (1 - 2 * POSITION_MARGIN) * POSITION_VALUES[chunk[:, 4]])[:, None, None]
        dx = cols - centre_x
        dy = centre_y - rows  # upward positive, so the heart points the usual way at orientation 0
        cos, sin = np.cos(angle), np.sin(angle)
        u = (cos * dx + sin * dy) / (scale * BASE_HALF_SIZE)
        v = (-sin * dx + cos * dy) / (scale * BASE_HALF_SIZE)
        square = np.maximum(np.abs(u), np.abs(v)) <= 1.0
        ellipse = u**2 + (v / 0.5) ** 2 <= 1.0
        a, b = u / 0.8, v / 0.8
        heart = (a**2 + b**2 - 1.0) ** 3 - a**2 * b**3 <= 0.0
        inside = np.where(shape[:, None, None] == 0, square, np.where(shape[:, None, None] == 1, ellipse, heart))
        out[start : start + len(chunk)] = inside
    return out


def load_sprites_dataset(
    *, size: int = 5000, seed: int = 0, label_factor: str | None = None
) -> DataSet:
    """A random subset of ``size`` sprites from the full grid, rendered now, with their factor classes.

    ``label_factor`` (one of :data:`FACTOR_NAMES`) exposes that factor as the class label ``y`` for the
    label-conditioned models; by default the data set is unlabelled (factors are still available for MIG).
    """
    if label_factor is not None and label_factor not in FACTOR_NAMES:
        raise ValueError(f"label_factor: unknown factor {label_factor!r}; valid choices: {', '.join(FACTOR_NAMES)}")
    indices = subsample_indices(GRID_SIZE, size, seed)
    factors = grid_factors(indices)
    images = render_sprites(factors)
    return sprites_like_dataset(
        "sprites", images, factors, label_factor, seed,
        description=f"procedural dSprites-recipe sprites, {size} of {GRID_SIZE} grid points",
        options={"size": size, "seed": seed, "label_factor": label_factor},
    )


def sprites_like_dataset(
    name: str,
    images: np.ndarray,
    factors: np.ndarray,
    label_factor: str | None,
    seed: int,
    *,
    description: str,
    options: dict,
) -> DataSet:
    """Binary 64x64 images with factor classes -> :class:`DataSet` (shared by the sprites and the dSprites loader)."""
    y = None
    num_classes = None
    class_names: tuple[str, ...] = ()
    if label_factor is not None:
        column = FACTOR_NAMES.index(label_factor)
        y = torch.as_tensor(factors[:, column], dtype=torch.int64)
        num_classes = FACTOR_SIZES[column]
        class_names = SHAPE_NAMES if label_factor == "shape" else tuple(str(i) for i in range(num_classes))
    return DataSet(
        name=name,
        x=torch.as_tensor(images, dtype=torch.float32).unsqueeze(1),
        y=y,
        likelihood="bernoulli",
        num_classes=num_classes,
        factors=torch.as_tensor(factors, dtype=torch.int64),
        factor_names=FACTOR_NAMES,
        class_names=class_names,
        splits=random_splits(len(images), {"train": 0.9, "validation": 0.1}, seed),
        description=description,
        options=options,
    )
