"""Pictures of a trained model's latents (matplotlib figures of image grids): traversals, reconstructions beside their
inputs, samples from the prior, and the attribute swap grid of the label-conditioned models.

What is decoded is always the likelihood's mean E[x | latents] (:meth:`Likelihood.mean`), for every latent of the
model concatenated in ``LATENT_NAMES`` order (and the one-hot label for decoders that take it, CondVAE and
CondVAE-info), exactly as the models decode in their ``reconstruction`` term (a test checks this for every model).

* **Traversals** (one row per latent dimension, grouped by latent: ``w``, ``z``; ``zd``, ``zx``, ``zy``; ...): start
  from one example's posterior means, move one dimension at a time over the 2nd to 98th percentile of that dimension
  under the aggregate posterior of the reference examples (draws z ~ q(z | x_n)), keep every other latent fixed, and
  decode. The range is where the encoded data lie, so a dimension the encoder does not use (posterior = prior)
  spans about [-2, 2] and changes nothing in the picture.
* **Reconstructions**: inputs in one row, the decoded posterior means below them.
* **Samples**: latents drawn from the prior; for models with a label-conditional prior (CSVAE's p(w|y), DIVA's
  p(z_y|y) and p(z_d|d), CDVAE's p(z_l|c)) or a label-conditioned decoder (CondVAE, CondVAE-info), one row per class.
* **Swaps** (label models only): one example per class in each row; its input, its reconstruction, then one column
  per target class t: the label latent replaced by the mean of its prior p(label latent | t) (CSVAE ``w``, DIVA
  ``zy``, CDVAE ``zl``; CondVAE and CondVAE-info decode with the label t), every other latent at its posterior mean.
  The reconstruction column is the swap to the example's own class only when the label latent's posterior mean sits
  at the prior mean, which it need not.

Images only: a data set of vectors (the swiss roll) has no picture of this kind, and asking for one is an error.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch.distributions import Distribution

from .base import VariationalModel, one_hot, standard_normal
from .cdvae import CDVAE
from .csvae import CSVAE
from .data.core import Batch, DataSet
from .diva import DIVA
from .terms import posterior_parameters

PICTURES = ("traversals", "reconstructions", "samples", "swaps")
TRAVERSAL_QUANTILES = (0.02, 0.98)
TRAVERSAL_STEPS = 9
MAX_CLASSES_SHOWN = 10
REFERENCE_EXAMPLES = 512

# The latent that carries the class label (its prior depends on y), per label model with one.
LABEL_LATENT = {CSVAE: "w", DIVA: "zy", CDVAE: "zl"}


# ----------------------------------------------------------------------------------------------------------------------
# Decoding, priors and label roles, per model
# ----------------------------------------------------------------------------------------------------------------------
def decodes_with_label(model: VariationalModel) -> bool:
    """Whether the decoder takes the one-hot label as an input (CondVAE, CondVAE-info)."""
    return bool(getattr(model.decoder, "condition_dim", 0))


def label_latent(model: VariationalModel) -> str | None:
    """The name of the latent whose prior depends on the label (``None`` for models without one)."""
    return next((name for cls, name in LABEL_LATENT.items() if isinstance(model, cls)), None)


def has_label(model: VariationalModel) -> bool:
    return label_latent(model) is not None or decodes_with_label(model)


def decode(model: VariationalModel, latents: Mapping[str, torch.Tensor], y: torch.Tensor | None = None
           ) -> torch.Tensor:
    """The likelihood's parameters: the latents concatenated in ``LATENT_NAMES`` order (with the one-hot label ``y``
    for decoders that take it), decoded."""
    joint = torch.cat([latents[name] for name in model.LATENT_NAMES], dim=-1)
    if decodes_with_label(model):
        if y is None:
            raise ValueError(f"y: the decoder of {type(model).__name__} needs the class label")
        return model.decoder(joint, one_hot(y, model.num_classes))
    return model.decoder(joint)


@torch.no_grad()
def decode_mean(model: VariationalModel, latents: Mapping[str, torch.Tensor], y: torch.Tensor | None = None
                ) -> torch.Tensor:
    """E[x | latents], the likelihood's mean of :func:`decode`."""
    return model.likelihood.mean(decode(model, latents, y))


@torch.no_grad()
def latent_dims(model: VariationalModel, example: Batch) -> dict[str, int]:
    """The number of dimensions of each latent (from encoding one example)."""
    return {name: int(posterior.event_shape[0]) for name, posterior in model.encode(example).items()}


@torch.no_grad()
def latent_priors(model: VariationalModel, dims: Mapping[str, int], num: int, y: torch.Tensor | None = None,
                  d: torch.Tensor | None = None) -> dict[str, Distribution]:
    """p(latent | y, d) for every latent, batch shape (num,): the label-conditional priors where the model has them,
    N(0, I) otherwise."""
    like = next(model.parameters()).new_zeros(num, 1)
    priors = {name: standard_normal(dim, like).expand((num,)) for name, dim in dims.items()}
    if isinstance(model, CSVAE):
        priors["w"] = model.w_prior(y)
    elif isinstance(model, DIVA):
        priors["zy"] = model.prior_zy(y)
        priors["zd"] = model.prior_zd(d)
    elif isinstance(model, CDVAE):
        priors["zl"] = model.zl_prior(y)
    return priors


# ----------------------------------------------------------------------------------------------------------------------
# The pictures as image grids (numpy arrays (rows, columns, C, H, W)) with their labels
# ----------------------------------------------------------------------------------------------------------------------
def check_images(dataset: DataSet) -> None:
    if len(dataset.event_shape) != 3:
        raise ValueError(
            f"data: pictures need image data; data set {dataset.name!r} holds vectors of shape {dataset.event_shape}"
        )


def reference_batch(dataset: DataSet, size: int = REFERENCE_EXAMPLES, seed: int = 0) -> Batch:
    """Up to ``size`` examples of the validation split (the training split when there is none), fixed by ``seed``."""
    split = dataset.split("validation" if "validation" in dataset.splits else "train")
    if split.size > size:
        index = torch.randperm(split.size, generator=torch.Generator().manual_seed(seed))[:size].sort().values
        split = Batch(split.x[index], None if split.y is None else split.y[index],
                      None if split.d is None else split.d[index], split.source_size)
    return split


def _row(batch: Batch, index: torch.Tensor) -> Batch:
    return Batch(batch.x[index], None if batch.y is None else batch.y[index],
                 None if batch.d is None else batch.d[index], batch.source_size)


def _images(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().clamp(0, 1).cpu().numpy()


@torch.no_grad()
def traversal_grid(model: VariationalModel, reference: Batch, *, example: int = 0,
                   steps: int = TRAVERSAL_STEPS, seed: int = 0) -> tuple[np.ndarray, list[str], list[str], list[int]]:
    """Images (rows, steps, C, H, W), row labels (``z[3]``), column labels (percentiles) and the first row of each
    latent after the first (where a group starts)."""
    model.eval()
    posteriors = model.encode(reference)
    generator = torch.Generator().manual_seed(seed)
    means = {name: posterior_parameters(p)[0] for name, p in posteriors.items()}
    draws = {name: p.mean + p.stddev * torch.randn(p.mean.shape, generator=generator) for name, p in posteriors.items()}
    low, high = TRAVERSAL_QUANTILES
    fractions = torch.linspace(low, high, steps)
    base = {name: mean[example : example + 1].expand(steps, -1).clone() for name, mean in means.items()}
    y = None if reference.y is None else reference.y[example : example + 1].expand(steps)
    rows, labels, group_starts = [], [], []
    for name in model.LATENT_NAMES:
        if rows:
            group_starts.append(len(rows))
        for dim in range(base[name].shape[1]):
            values = torch.quantile(draws[name][:, dim].double(), fractions.double()).to(base[name].dtype)
            latents = {key: value.clone() for key, value in base.items()}
            latents[name][:, dim] = values
            rows.append(_images(decode_mean(model, latents, y)))
            labels.append(f"{name}[{dim}]")
    columns = [f"{100 * f:.0f}%" for f in fractions.tolist()]
    return np.stack(rows), labels, columns, group_starts


@torch.no_grad()
def reconstruction_grid(model: VariationalModel, reference: Batch, *, count: int = 10
                        ) -> tuple[np.ndarray, list[str], list[str]]:
    """Inputs above their reconstructions (the decoded posterior means): images (2, count, C, H, W)."""
    model.eval()
    count = min(count, reference.size)
    batch = _row(reference, torch.arange(count))
    means = {name: posterior_parameters(p)[0] for name, p in model.encode(batch).items()}
    decoded = decode_mean(model, means, batch.y)
    return np.stack([_images(batch.x), _images(decoded)]), ["input", "reconstruction"], [""] * count


def _class_names(dataset: DataSet, count: int) -> list[str]:
    names = list(dataset.class_names)
    return [names[c] if c < len(names) else str(c) for c in range(count)]


@torch.no_grad()
def sample_grid(model: VariationalModel, dataset: DataSet, reference: Batch, *, per_row: int = 10, rows: int = 4,
                seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """Decoded draws from the prior: ``rows`` rows, or one row per class (up to 10) for label models."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    dims = latent_dims(model, _row(reference, torch.arange(1)))
    if has_label(model):
        classes = list(range(min(int(model.num_classes), MAX_CLASSES_SHOWN)))
        row_labels = [f"y = {name}" for name in _class_names(dataset, len(classes))]
    else:
        classes = [None] * rows
        row_labels = [""] * rows
    images = []
    for label in classes:
        y = None if label is None else torch.full((per_row,), label, dtype=torch.int64)
        d = None
        if isinstance(model, DIVA):
            d = torch.randint(int(model.num_domains), (per_row,), generator=generator)
        priors = latent_priors(model, dims, per_row, y, d)
        latents = {name: prior.mean + prior.stddev * torch.randn(prior.mean.shape, generator=generator)
                   for name, prior in priors.items()}
        images.append(_images(decode_mean(model, latents, y)))
    return np.stack(images), row_labels, [""] * per_row


@torch.no_grad()
def swap_grid(model: VariationalModel, dataset: DataSet, reference: Batch
              ) -> tuple[np.ndarray, list[str], list[str]]:
    """One example per class (rows): input, reconstruction, and the decode with each target class (columns)."""
    if not has_label(model) or reference.y is None:
        raise ValueError(
            f"swaps: model {type(model).__name__} has no class label to swap; the attribute swap needs a "
            "label-conditioned model (csvae, diva, cdvae, condvae, condvae_info)"
        )
    model.eval()
    num_classes = min(int(model.num_classes), MAX_CLASSES_SHOWN)
    picks = [int(torch.nonzero(reference.y == c)[0]) for c in range(num_classes) if bool((reference.y == c).any())]
    batch = _row(reference, torch.tensor(picks))
    means = {name: posterior_parameters(p)[0] for name, p in model.encode(batch).items()}
    dims = {name: mean.shape[1] for name, mean in means.items()}
    columns = [_images(batch.x), _images(decode_mean(model, means, batch.y))]
    swapped_latent = label_latent(model)
    for target in range(num_classes):
        y = torch.full((len(picks),), target, dtype=torch.int64)
        latents = dict(means)
        if swapped_latent is not None:
            latents[swapped_latent] = latent_priors(model, dims, len(picks), y, batch.d)[swapped_latent].mean
        columns.append(_images(decode_mean(model, latents, y)))
    names = _class_names(dataset, num_classes)
    row_labels = [f"y = {names[int(c)]}" for c in batch.y]
    column_labels = ["input", "recon."] + [f"-> {name}" for name in names]
    return np.stack(columns, axis=1), row_labels, column_labels


# ----------------------------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------------------------
def grid_figure(images: np.ndarray, row_labels: Sequence[str], column_labels: Sequence[str], title: str, *,
                group_starts: Sequence[int] = (), gap: int = 1):
    """One matplotlib figure showing images (rows, columns, C, H, W) as a mosaic, rows and columns labelled; a wider
    gap before each row in ``group_starts``."""
    from .plotting import pyplot

    plt = pyplot()
    num_rows, num_columns, channels, height, width = images.shape
    group_gap = max(2, height // 4)
    row_offsets, offset = [], 0
    for r in range(num_rows):
        if r in group_starts:
            offset += group_gap
        row_offsets.append(offset)
        offset += height + gap
    mosaic = np.ones((offset - gap, num_columns * (width + gap) - gap, 3))
    for r in range(num_rows):
        for c in range(num_columns):
            tile = images[r, c]
            tile = np.repeat(tile, 3, axis=0) if channels == 1 else tile[:3]
            top, left = row_offsets[r], c * (width + gap)
            mosaic[top : top + height, left : left + width] = tile.transpose(1, 2, 0)
    cell = max(0.3, min(0.9, 40.0 / max(num_rows, num_columns) / 4))  # inches per tile
    figure, axis = plt.subplots(figsize=(1.3 + num_columns * cell, 0.6 + mosaic.shape[0] / (height + gap) * cell))
    axis.imshow(mosaic, interpolation="nearest", vmin=0.0, vmax=1.0)
    axis.set_yticks([row_offsets[r] + height / 2 - 0.5 for r in range(num_rows)], list(row_labels))
    axis.set_xticks([c * (width + gap) + width / 2 - 0.5 for c in range(num_columns)], list(column_labels))
    axis.tick_params(length=0, labelsize=8)
    axis.xaxis.tick_top()
    for spine in axis.spines.values():
        spine.set_visible(False)
    axis.set_title(title, fontsize=9, pad=18 if any(column_labels) else 6)
    figure.tight_layout()
    return figure


def draw_picture(what: str, model: VariationalModel, dataset: DataSet, *, title: str = "", seed: int = 0):
    """The figure of picture ``what`` (one of :data:`PICTURES`) for a trained model and its data set."""
    if what not in PICTURES:
        raise ValueError(f"what: unknown picture {what!r}; valid choices: {', '.join(PICTURES)}")
    check_images(dataset)
    reference = reference_batch(dataset, seed=seed)
    prefix = f"{title}: " if title else ""
    if what == "traversals":
        images, rows, columns, groups = traversal_grid(model, reference, seed=seed)
        caption = f"{prefix}latent traversals (one dimension at a time, percentiles of the aggregate posterior)"
        return grid_figure(images, rows, columns, caption, group_starts=groups)
    if what == "reconstructions":
        images, rows, columns = reconstruction_grid(model, reference)
        return grid_figure(images, rows, columns, f"{prefix}inputs and reconstructions (posterior means decoded)")
    if what == "samples":
        images, rows, columns = sample_grid(model, dataset, reference, seed=seed)
        return grid_figure(images, rows, columns, f"{prefix}samples from the prior (likelihood means)")
    images, rows, columns = swap_grid(model, dataset, reference)
    return grid_figure(images, rows, columns, f"{prefix}attribute swap (label latent set to its prior mean for -> y)")


def applicable_pictures(model: VariationalModel) -> tuple[str, ...]:
    """The pictures that exist for this model (the swap grid only for label models)."""
    return tuple(what for what in PICTURES if what != "swaps" or has_label(model))
