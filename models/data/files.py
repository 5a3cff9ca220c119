"""Loaders for data files the user already has on disk: a dSprites ``.npz`` and MNIST ``idx`` files. No downloads.

* dSprites (Matthey et al. 2017): the ``.npz`` with arrays ``imgs`` (N, 64, 64) uint8, ``latents_classes`` (N, 6) and
  ``latents_values`` (N, 6), columns (color, shape, scale, orientation, posX, posY). The constant color column is
  dropped, so the factors line up with :data:`elbocheck.models.data.sprites.FACTOR_NAMES`. The real file holds
  737,280 images (about 3 GB as uint8); ``size`` keeps a random subset (default 10,000) so memory stays small.
* MNIST (LeCun et al. 1998): ``idx3-ubyte`` images and, optionally, ``idx1-ubyte`` labels, plain or gzip-compressed
  (recognised by content, not by name). Pixels are binarised at 128 by default (a Bernoulli likelihood is then a
  normalised density); ``binarize=False`` keeps the intensities in [0, 1].
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .core import DataSet, random_splits, subsample_indices
from .sprites import FACTOR_NAMES, sprites_like_dataset

DSPRITES_KEYS = ("imgs", "latents_classes", "latents_values")
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


def _existing_file(path: str | Path, parameter: str) -> Path:
    if path is None:
        raise ValueError(f"{parameter}: a file path is required")
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise FileNotFoundError(f"{parameter}: no such file: {resolved}")
    return resolved


def load_dsprites_npz(
    path: str | Path, *, size: int | None = 10000, seed: int = 0, label_factor: str | None = None
) -> DataSet:
    """A random subset of ``size`` images (all when ``None``) of a local dSprites ``.npz`` as a :class:`DataSet`."""
    file = _existing_file(path, "path")
    expected = f"expected the dSprites .npz (a zip archive with the arrays {', '.join(DSPRITES_KEYS)})"
    with file.open("rb") as handle:
        start = handle.read(len(_ZIP_MAGIC))
    if start != _ZIP_MAGIC:
        kind = "a single .npy array" if start.startswith(_NPY_MAGIC[: len(start)]) and start else "not a zip archive"
        raise ValueError(f"path: {file} is {kind}; {expected}")
    try:
        with np.load(file, allow_pickle=False) as archive:
            missing = [key for key in DSPRITES_KEYS if key not in archive.files]
            if missing:
                raise ValueError(f"path: {file} lacks the array(s) {', '.join(missing)}; {expected}")
            images = archive["imgs"]
            classes = archive["latents_classes"]
            archive["latents_values"]  # read so that a truncated file fails here, with its name
    except (OSError, EOFError, zipfile.BadZipFile) as error:  # a truncated or damaged archive
        raise ValueError(f"path: {file} cannot be read as a .npz archive ({type(error).__name__}: {error}); "
                         f"{expected}") from error
    except ValueError as error:
        if str(error).startswith("path: "):
            raise
        raise ValueError(f"path: {file} holds arrays numpy cannot read without pickle ({error}); {expected}") \
            from error
    if images.ndim != 3:
        raise ValueError(f"{file}: 'imgs' must have shape (N, H, W), got {images.shape}")
    if classes.shape != (len(images), 6):
        raise ValueError(f"{file}: 'latents_classes' must have shape ({len(images)}, 6), got {classes.shape}")
    keep = subsample_indices(len(images), size, seed)
    factors = classes[keep][:, 1:].astype(np.int64)  # drop the constant color column
    if factors[:, 0].min() >= 1 and factors[:, 0].max() == 3:
        factors[:, 0] -= 1  # some copies store shape as 1..3
    if label_factor is not None and label_factor not in FACTOR_NAMES:
        raise ValueError(f"label_factor: unknown factor {label_factor!r}; valid choices: {', '.join(FACTOR_NAMES)}")
    return sprites_like_dataset(
        "dsprites",
        (images[keep] > 0).astype(np.uint8),
        factors,
        label_factor,
        seed,
        description=f"dSprites from {file.name}, {len(keep)} of {len(images)} images",
        options={"path": str(file), "size": size, "seed": seed, "label_factor": label_factor},
    )


def _read_maybe_gzip(file: Path, parameter: str) -> bytes:
    raw = file.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:  # truncated or damaged
        raise ValueError(f"{parameter}: {file} is a damaged gzip file ({type(error).__name__}: {error})") from error


def read_idx(path: str | Path, expected_magic: int, parameter: str) -> np.ndarray:
    """Parse an idx file (uint8 payload) into an array of its declared shape, checking magic number and length."""
    file = _existing_file(path, parameter)
    data = _read_maybe_gzip(file, parameter)
    if len(data) < 4:
        raise ValueError(f"{parameter}: {file} is too short to be an idx file")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        kind = "images (idx3-ubyte)" if expected_magic == IDX_IMAGES_MAGIC else "labels (idx1-ubyte)"
        raise ValueError(
            f"{parameter}: {file} has magic number {magic:#010x}, expected {expected_magic:#010x} for {kind}"
        )
    ndim = magic & 0xFF
    header_end = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    payload = np.frombuffer(data, dtype=np.uint8, offset=header_end)
    if payload.size != int(np.prod(shape)):
        raise ValueError(f"{parameter}: {file} declares shape {shape} but holds {payload.size} values")
    return payload.reshape(shape)


def load_mnist_idx(
    path: str | Path,
    *,
    labels_path: str | Path | None = None,
    binarize: bool = True,
    size: int | None = None,
    seed: int = 0,
) -> DataSet:
    """MNIST-format idx images (and optional labels) as a :class:`DataSet` with a 90/10 train/validation split."""
    images = read_idx(path, IDX_IMAGES_MAGIC, "path")
    labels = None
    if labels_path is not None:
        labels = read_idx(labels_path, IDX_LABELS_MAGIC, "labels_path").astype(np.int64)
        if len(labels) != len(images):
            raise ValueError(f"labels_path: {len(labels)} labels for {len(images)} images in path")
    keep = subsample_indices(len(images), size, seed)
    images = images[keep]
    x = (images >= 128).astype(np.float32) if binarize else images.astype(np.float32) / 255.0
    y = None if labels is None else torch.as_tensor(labels[keep])
    return DataSet(
        name="mnist",
        x=torch.as_tensor(x).unsqueeze(1),
        y=y,
        likelihood="bernoulli",
        num_classes=None if labels is None else 10,
        splits=random_splits(len(x), {"train": 0.9, "validation": 0.1}, seed),
        class_names=() if labels is None else tuple(str(i) for i in range(10)),
        description=f"MNIST idx from {Path(path).name}, {len(x)} images" + (", binarised" if binarize else ""),
        options={"path": str(path), "labels_path": None if labels_path is None else str(labels_path),
                 "binarize": binarize, "size": size, "seed": seed},
    )
