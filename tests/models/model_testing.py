"""Shared helpers of the model tests: tiny data sets and tiny models, so that the suite stays fast on two CPU cores."""

from __future__ import annotations

import functools

import torch

from elbocheck.models import Batch, build_model, load_dataset

TINY_NETWORK = {"hidden_dim": 16, "num_hidden_layers": 1, "architecture": "mlp"}

# The smallest latent sizes per model (tiny nets); the models' defaults are larger.
TINY_LATENTS = {
    "vae": {"latent_dim": 3},
    "beta_vae": {"latent_dim": 3},
    "beta_tcvae": {"latent_dim": 3},
    "infovae": {"latent_dim": 3},
    "condvae": {"latent_dim": 3},
    "condvae_info": {"latent_dim": 3},
    "csvae": {"z_dim": 2, "w_dim_per_attribute": 1},
    "diva": {"zd_dim": 2, "zx_dim": 2, "zy_dim": 2, "prior_hidden_dim": 8, "classifier_hidden_dim": 8},
    "cdvae": {"zl_dim": 3, "zu_dim": 2},
}

# Which tiny data set each model is exercised on: labels where the model needs them, domains for DIVA,
# the CSVAE toy setup for CSVAE.
MODEL_DATA = {
    "vae": "digits",
    "beta_vae": "digits",
    "beta_tcvae": "digits",
    "infovae": "digits",
    "condvae": "digits",
    "condvae_info": "digits",
    "csvae": "swiss_roll",
    "diva": "rotated_digits",
    "cdvae": "digits",
}


@functools.lru_cache(maxsize=None)
def tiny_dataset(name: str):
    if name == "digits":
        return load_dataset("digits", size=150, seed=0)
    if name == "rotated_digits":
        return load_dataset("rotated_digits", images_per_class=3, seed=0)
    if name == "swiss_roll":
        return load_dataset("swiss_roll", num_examples=200, seed=0)
    if name == "sprites":
        return load_dataset("sprites", size=64, seed=0)
    raise KeyError(name)


def tiny_model(name: str, seed: int = 0, **options):
    dataset = tiny_dataset(MODEL_DATA[name])
    torch.manual_seed(seed)
    return build_model(name, dataset.spec(), **{**TINY_NETWORK, **TINY_LATENTS[name], **options}), dataset


def head_batch(dataset, size: int = 8, split: str = "train") -> Batch:
    data = dataset.split(split)
    return Batch(data.x[:size], None if data.y is None else data.y[:size], None if data.d is None else data.d[:size],
                 data.size)
