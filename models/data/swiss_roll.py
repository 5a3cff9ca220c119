"""A labelled swiss roll: the CSVAE toy setup (Klys et al. 2018, Section 5.1).

Recipe: ``sklearn.datasets.make_swiss_roll(num_examples, noise=noise, random_state=seed)`` gives 3-D points and each
point's position t along the roll (t in [1.5 pi, 4.5 pi]). The binary label is y = 1 where the point lies on the
outer half of the roll (t > 3 pi, the midpoint of the range) and 0 on the inner half, so the label is a smooth,
nonlinear function of x that a 2-D subspace w can separate. The points are standardised to zero mean and unit
variance per coordinate (statistics over the whole set) and modelled with a Gaussian likelihood.
"""

from __future__ import annotations

import numpy as np
import torch
from .core import DataSet, random_splits

ROLL_MIDPOINT = 3.0 * np.pi


def load_swiss_roll_dataset(*, num_examples: int = 4000, noise: float = 0.05, seed: int = 0) -> DataSet:
    if num_examples < 10:
        raise ValueError(f"num_examples: need at least 10 points, got {num_examples}")
    if noise < 0:
        raise ValueError(f"noise: must be >= 0, got {noise}")
    from sklearn.datasets import make_swiss_roll  # imported here: scikit-learn takes a second to import

    points, position = make_swiss_roll(num_examples, noise=noise, random_state=seed)
    labels = (position > ROLL_MIDPOINT).astype(np.int64)
    standardised = (points - points.mean(axis=0)) / points.std(axis=0)
    return DataSet(
        name="swiss_roll",
        x=torch.as_tensor(standardised, dtype=torch.float32),
        y=torch.as_tensor(labels),
        likelihood="gaussian",
        num_classes=2,
        splits=random_splits(num_examples, {"train": 0.8, "validation": 0.2}, seed),
        class_names=("inner", "outer"),
        description="standardised 3-D swiss roll, label = outer half of the roll",
        options={"num_examples": num_examples, "noise": noise, "seed": seed},
    )
