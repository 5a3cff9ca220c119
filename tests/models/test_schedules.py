"""KL warm-up (Ilse et al. 2020's schedule), free bits (Kingma et al. 2016) and CSVAE's x-only encoders: the
objective changes as the formulas say, the reported KLs and ELBO never do, and the trainer drives the warm-up."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from elbocheck.models import Batch
from elbocheck.models.trainer import TrainConfig, Trainer
from model_testing import TINY_LATENTS, TINY_NETWORK, head_batch, tiny_model

SCHEDULED = ("beta_vae", "condvae", "condvae_info", "csvae", "diva", "cdvae")


def _fixed_samples(model, batch):
    """Latent draws fixed once, so that two evaluations of the terms see the same sample."""
    with torch.no_grad():
        return {name: posterior.rsample() for name, posterior in model.encode(batch).items()}


@pytest.mark.parametrize("name", SCHEDULED)
def test_warm_up_scales_only_the_kl_part_of_the_objective(name):
    model, dataset = tiny_model(name, kl_warmup_epochs=4)
    batch = head_batch(dataset)
    samples = _fixed_samples(model, batch)
    values = {}
    for epoch in (1, 2, 4, 9):
        model.on_epoch_start(epoch)
        assert model.kl_scale == pytest.approx(min(1.0, epoch / 4))
        with torch.no_grad():
            values[epoch] = {key: float(value) for key, value in model(batch, samples).items()}
    # every reported term but the objective is the same whatever the epoch
    for key in values[1]:
        if key != "objective":
            assert len({round(v[key], 6) for v in values.values()}) == 1, key
    # the objective is affine in the scale: its change from epoch 4 (scale 1) to epoch 2 (scale 1/2) is half of that
    # to epoch 1 (scale 1/4) times 2/3 -- i.e. objective(s) = a - s * b
    b = (values[1]["objective"] - values[4]["objective"]) / (1 - 0.25)
    assert values[2]["objective"] == pytest.approx(values[4]["objective"] + 0.5 * b, rel=1e-5, abs=1e-4)
    assert values[9]["objective"] == pytest.approx(values[4]["objective"], rel=1e-6)
    assert b > 0  # the KL part is a charge


def _gaussian_kl_per_dimension(q_loc, q_scale, p_loc, p_scale):
    """KL(N(m1, s1^2) || N(m2, s2^2)) per dimension, written out (independent of torch's registry)."""
    return (torch.log(p_scale / q_scale) + (q_scale**2 + (q_loc - p_loc) ** 2) / (2 * p_scale**2) - 0.5)


def test_free_bits_charge_max_of_the_floor_and_each_dimensions_batch_mean_kl():
    model, _ = tiny_model("beta_vae", free_bits=0.5)
    generator = torch.Generator().manual_seed(0)
    loc = torch.randn(16, 3, generator=generator) * torch.tensor([0.05, 1.0, 2.0])  # dim 0 nearly at the prior
    scale = torch.rand(16, 3, generator=generator) * 0.5 + 0.5
    loc.requires_grad_(True)
    posterior = Independent(Normal(loc, scale), 1)
    prior = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    kl = torch.distributions.kl_divergence(posterior, prior)
    charged = model.objective_kl(posterior, prior, kl)
    per_dimension = _gaussian_kl_per_dimension(loc, scale, torch.zeros(3), torch.ones(3))
    expected = torch.clamp(per_dimension.mean(0), min=0.5).sum()
    mean_kl = per_dimension.detach().mean(0)
    assert float(mean_kl[0]) < 0.5 < float(mean_kl[2])
    assert float(charged.detach().mean()) == pytest.approx(float(expected.detach()), rel=1e-5)
    (gradient,) = torch.autograd.grad(charged.mean(), loc)
    assert float(gradient[:, 0].abs().max()) == 0.0  # the floored dimension is not pushed towards the prior
    assert float(gradient[:, 2].abs().max()) > 0.0
    no_floor, _ = tiny_model("beta_vae")
    assert no_floor.objective_kl(posterior, prior, kl) is kl


@pytest.mark.parametrize("name", SCHEDULED)
def test_free_bits_leave_the_reported_terms_alone_and_raise_the_objective_charge(name):
    plain, dataset = tiny_model(name)
    floored, _ = tiny_model(name, free_bits=5.0)  # same seed: same weights
    batch = head_batch(dataset)
    samples = _fixed_samples(plain, batch)
    a, b = plain(batch, samples), floored(batch, samples)
    for key in a:
        if key != "objective":
            torch.testing.assert_close(a[key], b[key])
    assert float(b["objective"].detach()) < float(a["objective"].detach())  # a 5-nat floor per dimension exceeds the tiny KLs


def test_options_are_checked():
    with pytest.raises(ValueError, match="free_bits"):
        tiny_model("diva", free_bits=-1.0)
    with pytest.raises(ValueError, match="kl_warmup_epochs"):
        tiny_model("csvae", kl_warmup_epochs=-2)
    with pytest.raises(ValueError, match="not understood"):
        tiny_model("vae", free_bits=1.0)  # the plain VAE optimises its ELBO and takes neither


def test_the_trainer_sets_the_warm_up_factor_each_epoch_also_after_resuming(tmp_path):
    config = TrainConfig(model="diva", data="rotated_digits", epochs=2, batch_size=16, seed=0, device="cpu",
                         progress=False, max_steps_per_epoch=1, data_options={"images_per_class": 3},
                         model_options={**TINY_NETWORK, **TINY_LATENTS["diva"], "kl_warmup_epochs": 8})
    result = Trainer(config, tmp_path / "run").fit()
    assert result.model.kl_scale == pytest.approx(2 / 8)
    config.epochs = 3
    resumed = Trainer(config, tmp_path / "run", resume=True).fit()
    assert resumed.model.kl_scale == pytest.approx(3 / 8)


def test_csvae_without_the_label_at_the_encoders_encodes_from_x_alone():
    model, dataset = tiny_model("csvae", encoder_label=False)
    batch = head_batch(dataset)
    flipped = Batch(batch.x, 1 - batch.y)
    for name, posterior in model.encode(batch).items():
        torch.testing.assert_close(posterior.mean, model.encode(flipped)[name].mean)
    with_label, _ = tiny_model("csvae")
    assert not torch.allclose(with_label.encode(batch)["z"].mean, with_label.encode(flipped)["z"].mean)
    terms = model(batch)
    assert math.isfinite(float(terms["elbo"].detach()))
