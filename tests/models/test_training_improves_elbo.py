"""Every model trains for a few steps on CPU and its ELBO improves on a fixed small data set."""

import pytest
import torch

from elbocheck.models import MODELS
from elbocheck.models.trainer import TrainConfig, Trainer
from model_testing import MODEL_DATA, TINY_LATENTS, TINY_NETWORK, tiny_dataset

EPOCHS = 12  # x 4 steps of 32 examples


def mean_elbo(trainer, repeats=4):
    torch.manual_seed(123)  # the same posterior draws before and after training
    return sum(trainer.evaluate("train")["elbo"] for _ in range(repeats)) / repeats


CASES = {name: {} for name in MODELS}
CASES["vae_conv"] = {"architecture": "conv", "hidden_dim": 8}  # the convolutional nets train too


@pytest.mark.parametrize("case", sorted(CASES))
def test_elbo_improves_with_training(case, tmp_path):
    name = case.removesuffix("_conv")
    dataset = tiny_dataset(MODEL_DATA[name])
    config = TrainConfig(model=name, data=MODEL_DATA[name], epochs=EPOCHS, batch_size=32, lr=3e-3, seed=0,
                         device="cpu", progress=False, max_steps_per_epoch=4,
                         model_options={**TINY_NETWORK, **TINY_LATENTS[name], **CASES[case]})
    trainer = Trainer(config, tmp_path / name, dataset=dataset)
    before = mean_elbo(trainer)
    trainer.fit()
    after = mean_elbo(trainer)
    print(f"{case}: ELBO {before:.2f} -> {after:.2f}")
    # a clear margin: a tenth of the distance to a perfect fit of the likelihood's scale, at least 0.5 nats
    assert after > before + max(0.5, 0.1 * abs(before)), (before, after)
