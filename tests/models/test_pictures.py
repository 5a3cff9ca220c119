import numpy as np
import pytest
import torch

from elbocheck.models import MODELS, Batch
from elbocheck.models.pictures import (
    PICTURES,
    applicable_pictures,
    decode,
    decode_mean,
    draw_picture,
    latent_dims,
    label_latent,
    reconstruction_grid,
    reference_batch,
    sample_grid,
    swap_grid,
    traversal_grid,
)
from elbocheck.models.terms import posterior_parameters
from model_testing import head_batch, tiny_dataset, tiny_model

LABEL_MODELS = ("csvae", "diva", "cdvae", "condvae", "condvae_info")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_decoding_is_the_models_own_decoding(name):
    # the pictures decode as the model does in its reconstruction term, for every model
    model, dataset = tiny_model(name)
    batch = head_batch(dataset, 6)
    posteriors = model.encode(batch)
    samples = {key: posterior.sample() for key, posterior in posteriors.items()}
    terms = model(batch, latent_samples=samples)
    reconstruction = model.likelihood.log_prob(decode(model, samples, batch.y), batch.x).mean()
    torch.testing.assert_close(reconstruction, terms["reconstruction"])


def _digits_model(name):
    # a tiny model of the digits (images), with labels for the label models
    from elbocheck.models import build_model
    from model_testing import TINY_LATENTS, TINY_NETWORK

    dataset = tiny_dataset("rotated_digits" if name == "diva" else "digits")
    torch.manual_seed(0)
    return build_model(name, dataset.spec(), **TINY_NETWORK, **TINY_LATENTS[name]).eval(), dataset


def test_a_traversal_row_moves_one_dimension_over_the_aggregate_posterior_percentiles():
    model, dataset = _digits_model("csvae")
    reference = reference_batch(dataset)
    images, rows, columns, groups = traversal_grid(model, reference, example=3, steps=5, seed=1)
    dims = latent_dims(model, head_batch(dataset, 1))
    assert rows == [f"w[{j}]" for j in range(dims["w"])] + [f"z[{j}]" for j in range(dims["z"])]
    assert groups == [dims["w"]]  # the z group starts after the w rows
    assert columns == ["2%", "26%", "50%", "74%", "98%"] and images.shape[:2] == (len(rows), 5)
    # row z[1], recomputed independently: z_1 at the quantiles of draws from the aggregate posterior
    with torch.no_grad():
        posteriors = model.encode(reference)
    generator = torch.Generator().manual_seed(1)
    draws = {k: p.mean + p.stddev * torch.randn(p.mean.shape, generator=generator) for k, p in posteriors.items()}
    quantiles = np.quantile(draws["z"][:, 1].numpy(), [0.02, 0.26, 0.5, 0.74, 0.98])
    latents = {k: posterior_parameters(p)[0][3:4].repeat(5, 1) for k, p in posteriors.items()}
    latents["z"][:, 1] = torch.as_tensor(quantiles, dtype=torch.float32)
    expected = decode_mean(model, latents, reference.y[3:4].repeat(5)).clamp(0, 1).numpy()
    np.testing.assert_allclose(images[rows.index("z[1]")], expected, atol=1e-5)


def test_a_dimension_the_decoder_ignores_gives_a_constant_row():
    model, dataset = _digits_model("vae")
    with torch.no_grad():
        model.decoder.body[0].weight[:, 0] = 0.0  # the decoder no longer reads z_0
    images, rows, _, _ = traversal_grid(model, reference_batch(dataset))
    constant = images[rows.index("z[0]")]
    np.testing.assert_allclose(constant, np.broadcast_to(constant[:1], constant.shape), atol=1e-6)
    changing = images[rows.index("z[1]")]
    assert np.abs(changing[0] - changing[-1]).max() > 1e-3


def test_reconstructions_sit_below_their_inputs():
    model, dataset = _digits_model("beta_vae")
    reference = reference_batch(dataset)
    images, rows, _ = reconstruction_grid(model, reference, count=4)
    assert rows == ["input", "reconstruction"] and images.shape[:2] == (2, 4)
    np.testing.assert_allclose(images[0], reference.x[:4].numpy())
    with torch.no_grad():
        means = {k: posterior_parameters(p)[0] for k, p in model.encode(Batch(reference.x[:4])).items()}
    np.testing.assert_allclose(images[1], decode_mean(model, means).numpy(), atol=1e-6)


@pytest.mark.parametrize("name", LABEL_MODELS)
def test_label_models_sample_one_row_per_class_and_swap_the_label_latent(name):
    model, dataset = _digits_model(name)
    reference = reference_batch(dataset)
    images, rows, _ = sample_grid(model, dataset, reference, per_row=3)
    assert images.shape[:2] == (model.num_classes, 3)
    assert rows[0] == f"y = {dataset.class_names[0] if dataset.class_names else 0}"
    grid, rows, columns = swap_grid(model, dataset, reference)
    assert columns[:2] == ["input", "recon."] and len(columns) == 2 + min(model.num_classes, 10)
    # column "-> 2", recomputed: the label latent at the mean of p(label latent | 2) (CondVAE: decode with y = 2)
    first = torch.nonzero(reference.y == 0)[0]
    example = Batch(reference.x[first], reference.y[first], None if reference.d is None else reference.d[first])
    with torch.no_grad():
        means = {k: posterior_parameters(p)[0] for k, p in model.encode(example).items()}
    target = torch.tensor([2])
    if name == "csvae":
        means["w"] = model.w_prior(target).mean
    elif name == "diva":
        means["zy"] = model.prior_zy(target).mean.detach()
    elif name == "cdvae":
        means["zl"] = model.class_means[2:3].detach()
    expected = decode_mean(model, means, target).clamp(0, 1).numpy()
    np.testing.assert_allclose(grid[0, 2 + 2], expected[0], atol=1e-5)  # after "input" and "recon.": -> 0, 1, 2
    assert label_latent(model) == {"csvae": "w", "diva": "zy", "cdvae": "zl"}.get(name)


def test_models_without_labels_have_no_swap_grid_and_vectors_no_pictures():
    model, dataset = _digits_model("beta_tcvae")
    assert applicable_pictures(model) == ("traversals", "reconstructions", "samples")
    with pytest.raises(ValueError, match="swaps: model BetaTCVAE has no class label"):
        swap_grid(model, dataset, reference_batch(dataset))
    vector_model, swiss_roll = tiny_model("csvae")
    with pytest.raises(ValueError, match="pictures need image data; data set 'swiss_roll' holds vectors"):
        draw_picture("traversals", vector_model, swiss_roll)
    with pytest.raises(ValueError, match="unknown picture 'faces'"):
        draw_picture("faces", model, dataset)


@pytest.mark.parametrize("what", PICTURES)
def test_every_picture_draws_a_figure_for_a_label_model(what):
    model, dataset = _digits_model("cdvae")
    figure = draw_picture(what, model, dataset, title="cdvae")
    assert figure.axes[0].get_title().startswith("cdvae: ")
    import matplotlib.pyplot as plt

    plt.close(figure)
