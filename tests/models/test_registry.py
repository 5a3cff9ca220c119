import re
import sys

import pytest
import torch

from elbocheck.models import MODELS, build_model, load_dataset
from elbocheck.models.registry import model_options
from model_testing import TINY_NETWORK, head_batch, tiny_dataset, tiny_model


def test_unknown_model_and_option_list_the_valid_choices():
    spec = tiny_dataset("digits").spec()
    with pytest.raises(ValueError, match="valid choices: vae, beta_vae, beta_tcvae, infovae"):
        build_model("wae", spec)
    with pytest.raises(ValueError, match="not understood by model 'beta_vae'; valid options: beta, latent_dim"):
        build_model("beta_vae", spec, gamma=2)


@pytest.mark.parametrize("name", ["condvae", "condvae_info", "csvae", "cdvae"])
def test_label_conditioned_models_refuse_unlabelled_data(name):
    sprites = tiny_dataset("sprites")
    with pytest.raises(ValueError, match=f"model '{name}' is label-conditioned and needs class labels"):
        build_model(name, sprites.spec(), **TINY_NETWORK)


def test_every_model_module_states_its_elbo_and_paper():
    for name, cls in MODELS.items():
        module_doc = sys.modules[cls.__module__].__doc__
        assert "ELBO" in module_doc, name
        if name == "cdvae":  # specified by the project seed, not by a paper
            assert "seed" in cls.reference
        else:
            assert re.search(r"(19|20)\d\d", module_doc) and re.search(r"(19|20)\d\d", cls.reference), name
        assert cls.TERM_NAMES[-2:] == ("elbo", "objective"), name
        assert "hidden_dim" in model_options(name)


def test_given_latent_samples_are_checked():
    model, dataset = tiny_model("vae")
    with pytest.raises(ValueError, match=r"latent_samples\['z'\]: expected shape \(8, 3\)"):
        model(head_batch(dataset), latent_samples={"z": torch.zeros(8, 4)})


def test_option_values_are_checked_against_their_defaults():
    spec = tiny_dataset("digits").spec()
    with pytest.raises(ValueError, match="model option beta: expected float, got 'big'"):
        build_model("beta_vae", spec, beta="big")
    with pytest.raises(ValueError, match="model option use_adversary: expected bool, got 1"):
        build_model("csvae", tiny_dataset("swiss_roll").spec(), use_adversary=1)
    assert build_model("beta_vae", spec, beta=2, **TINY_NETWORK).beta == 2.0  # an int is fine for a float
    with pytest.raises(ValueError, match="data option size: expected int or None, got 'all'"):
        load_dataset("digits", size="all")
    with pytest.raises(ValueError, match="model option lambda_: expected float or None, got 'x'"):
        build_model("infovae", spec, lambda_="x")
    assert load_dataset("digits", size=None).x.shape[0] == 1797
