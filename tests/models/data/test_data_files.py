import gzip
import re

import numpy as np
import pytest
import torch

from elbocheck.models import load_dataset
from elbocheck.models.data.sprites import grid_factors, render_sprites


def _write_dsprites(path, count=20, drop=None):
    classes_5 = grid_factors(np.arange(0, 737280, 737280 // count)[:count])
    latents_classes = np.concatenate([np.zeros((count, 1), dtype=np.int64), classes_5], axis=1)
    arrays = {
        "imgs": render_sprites(classes_5),
        "latents_classes": latents_classes,
        "latents_values": latents_classes.astype(np.float64) / 10,
    }
    if drop:
        arrays.pop(drop)
    np.savez(path, **arrays)
    return classes_5


def test_dsprites_npz_loader(tmp_path):
    file = tmp_path / "dsprites_small.npz"
    classes = _write_dsprites(file)
    data = load_dataset("dsprites", path=str(file), size=None)
    assert data.x.shape == (20, 1, 64, 64)
    np.testing.assert_array_equal(data.factors.numpy(), classes)
    np.testing.assert_array_equal(data.x.squeeze(1).numpy(), render_sprites(classes))
    subset = load_dataset("dsprites", path=str(file), size=5, seed=1, label_factor="shape")
    assert len(subset) == 5 and torch.equal(subset.y, subset.factors[:, 0])


def test_dsprites_errors_name_the_file_and_key(tmp_path):
    file = tmp_path / "broken.npz"
    _write_dsprites(file, drop="latents_classes")
    with pytest.raises(ValueError, match=f"path: {re.escape(str(file))} lacks the array.s. latents_classes"):
        load_dataset("dsprites", path=str(file))
    with pytest.raises(FileNotFoundError, match="path: no such file"):
        load_dataset("dsprites", path=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="needs option"):
        load_dataset("dsprites")


def test_a_dsprites_path_to_another_kind_of_file_names_the_path(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are not images\n")
    with pytest.raises(ValueError, match=f"path: {re.escape(str(text))} is not a zip archive; expected the dSprites"):
        load_dataset("dsprites", path=str(text))
    array = tmp_path / "imgs.npy"
    np.save(array, np.zeros((2, 64, 64), dtype=np.uint8))
    with pytest.raises(ValueError, match="is a single .npy array; expected the dSprites .npz"):
        load_dataset("dsprites", path=str(array))
    whole = tmp_path / "whole.npz"
    _write_dsprites(whole)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"path: {re.escape(str(cut))} cannot be read as a .npz archive"):
        load_dataset("dsprites", path=str(cut))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is not a zip archive"):
        load_dataset("dsprites", path=str(empty))


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compressed", [False, True])
def test_mnist_idx_loader(tmp_path, compressed):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28))
    labels = rng.integers(0, 10, size=30)
    image_bytes, label_bytes = _idx_bytes(images, 0x803), _idx_bytes(labels, 0x801)
    if compressed:
        image_bytes, label_bytes = gzip.compress(image_bytes), gzip.compress(label_bytes)
    image_file, label_file = tmp_path / "images-idx3-ubyte", tmp_path / "labels-idx1-ubyte"
    image_file.write_bytes(image_bytes)
    label_file.write_bytes(label_bytes)

    data = load_dataset("mnist", path=str(image_file), labels_path=str(label_file))
    assert data.x.shape == (30, 1, 28, 28) and data.num_classes == 10
    np.testing.assert_array_equal(data.x.squeeze(1).numpy(), (images >= 128).astype(np.float32))
    np.testing.assert_array_equal(data.y.numpy(), labels)
    grey = load_dataset("mnist", path=str(image_file), binarize=False)
    np.testing.assert_allclose(grey.x.squeeze(1).numpy(), images / 255.0, rtol=1e-6)
    assert grey.y is None and grey.spec().has_labels is False


def test_mnist_errors_name_the_argument(tmp_path):
    images = np.zeros((4, 28, 28))
    image_file = tmp_path / "images"
    image_file.write_bytes(_idx_bytes(images, 0x803))
    wrong = tmp_path / "labels"
    wrong.write_bytes(_idx_bytes(np.zeros(3), 0x801))
    with pytest.raises(ValueError, match="labels_path: 3 labels for 4 images"):
        load_dataset("mnist", path=str(image_file), labels_path=str(wrong))
    with pytest.raises(ValueError, match="labels_path: .* magic number"):
        load_dataset("mnist", path=str(image_file), labels_path=str(image_file))
    truncated = tmp_path / "truncated"
    truncated.write_bytes(_idx_bytes(images, 0x803)[:-10])
    with pytest.raises(ValueError, match="declares shape"):
        load_dataset("mnist", path=str(truncated))
    cut_gzip = tmp_path / "cut.gz"
    cut_gzip.write_bytes(gzip.compress(_idx_bytes(images, 0x803))[:-12])
    with pytest.raises(ValueError, match=f"path: {re.escape(str(cut_gzip))} is a damaged gzip file"):
        load_dataset("mnist", path=str(cut_gzip))
