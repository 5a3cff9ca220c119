"""The divergence guard: unit rules, and runs at the learning rates issue 12 lists as diverging."""

import json

import pytest
import torch

from elbocheck import train_command
from elbocheck.models.divergence import DivergenceGuard
from elbocheck.models.errors import DivergenceError
from elbocheck.models.trainer import Trainer, resume
from model_testing import TINY_LATENTS, TINY_NETWORK
from run_testing import epochs_per_split, tiny_config

TERMS = ("reconstruction", "kl_z", "elbo", "objective")


def _row(epoch, elbo, split="train", kl=1.0):
    return {"epoch": epoch, "split": split, "reconstruction": elbo + kl, "kl_z": kl, "elbo": elbo, "objective": elbo}


def test_the_floor_is_per_dimension_of_x():
    guard = DivergenceGuard(dimensions=64, term_names=TERMS, floor=-1e4, factor=None)
    guard.check([_row(1, -1e4 * 64 + 1)])  # -9999.98 nats per dimension: above the floor
    with pytest.raises(DivergenceError) as caught:
        guard.check([_row(2, -1e4 * 64 - 64)])  # -10001
    error = caught.value
    assert (error.epoch, error.split, error.value, error.threshold) == (2, "train", -10001.0, -1e4)
    assert error.term == "reconstruction"  # the largest term besides elbo and objective
    assert "the ELBO fell to -1e+04 nats per dimension of x at epoch 2 (split 'train'), below the divergence floor" \
        in str(error)


def test_the_relative_rule_compares_with_the_best_epoch():
    guard = DivergenceGuard(dimensions=2, term_names=TERMS, floor=None, factor=1e3)
    guard.check([_row(1, -6.0), _row(1, -1e9, split="validation")])  # only the training row counts
    guard.check([_row(2, -4.0)])  # best: -2 per dimension
    guard.check([_row(3, -3000.0)])  # -1500 > -2 - 1000 * 2 = -2002
    assert (guard.best, guard.best_epoch) == (-2.0, 2)
    with pytest.raises(DivergenceError, match=r"more than 1000 x max\(1, \|best\|\) below its best \(-2 at epoch 2\), "
                                              r"i.e. below -2e\+03"):
        guard.check([_row(4, -2 * 2003.0, kl=5e3)])
    # near zero (or positive, for densities) the scale is 1 nat per dimension
    guard = DivergenceGuard(dimensions=1, term_names=TERMS, floor=None, factor=10.0)
    guard.check([_row(1, 0.5)])
    guard.check([_row(2, -9.0)])
    with pytest.raises(DivergenceError):
        guard.check([_row(3, -9.6)])


def test_the_guard_can_be_switched_off_and_rejects_nonsense():
    guard = DivergenceGuard(dimensions=1, term_names=TERMS, floor=None, factor=None)
    guard.check([_row(1, -1.0), _row(2, -1e30)])
    with pytest.raises(ValueError, match="divergence_factor: must be > 0"):
        DivergenceGuard(1, TERMS, factor=0.0)
    with pytest.raises(ValueError, match="divergence_floor: must be finite"):
        DivergenceGuard(1, TERMS, floor=float("-inf"))
    with pytest.raises(ValueError, match="divergence_factor"):
        tiny_config(divergence_factor=-1.0).validate()


# Settings of issue 12 that ended "done" with an ELBO down to -1.5e30; with the tests' tiny networks these diverge
# in their first epoch too (VAE and beta-TCVAE at lr 1 and CSVAE at lr 1 only diverge with the default sizes:
# benchmarks/divergence.py).
DIVERGING = [("beta_tcvae", "digits", 10.0), ("beta_tcvae", "digits", 100.0), ("infovae", "digits", 100.0),
             ("csvae", "swiss_roll", 3.0), ("csvae", "swiss_roll", 5.0), ("cdvae", "digits", 10.0)]


@pytest.mark.parametrize("model,data,lr", DIVERGING)
def test_extreme_learning_rates_stop_with_the_term_named_and_exit_code_3(tmp_path, capsys, model, data, lr):
    run = tmp_path / "run"
    options = [f"--model-option={key}={value}" for key, value in {**TINY_NETWORK, **TINY_LATENTS[model]}.items()]
    data_option = "size=150" if data == "digits" else "num_examples=200"
    code = train_command.main([model, "--data", data, "--lr", str(lr), "--epochs", "4", "--batch-size", "32",
                               "--max-steps-per-epoch", "4", "--data-option", data_option, "--device", "cpu",
                               "--no-progress", "--out", str(run), *options])
    error = capsys.readouterr().err.strip()
    assert code == 3, error
    assert error.startswith("elbocheck train: error: stopped: diverged: the ELBO fell to ") and "\n" not in error
    assert "the term that dominates: " in error and f"elbocheck train --resume {run} --lr {lr / 10:g}" in error
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["failure"] == "diverged"
    assert status["message"] in error


def test_divergence_keeps_the_last_good_checkpoint_and_resume_can_lower_the_rate(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(epochs=4), run, callbacks=[_raise_rate_after(2, 1e3)])
    with pytest.raises(DivergenceError) as caught:
        trainer.fit()
    assert caught.value.epoch == 3 and caught.value.term in ("reconstruction", "kl_z")
    assert f"the last good checkpoint is kept: {run / 'checkpoint.pt'}" in str(caught.value)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert epochs_per_split(run)["train"] == [1, 2, 3]  # the diverged epoch is logged, for the record
    status = json.loads((run / "status.json").read_text())
    assert (status["state"], status["epochs_completed"]) == ("failed", 2)
    resume(run, lr=1e-3)  # from epoch 2's checkpoint, at a sane rate: completes
    assert epochs_per_split(run)["train"] == [1, 2, 3, 4]
    assert json.loads((run / "config.json").read_text())["changes"] == [
        {"after_epoch": 2, "field": "lr", "from": 3e-3, "to": 1e-3}]


def _raise_rate_after(epoch_to_change, lr):
    def callback(trainer, epoch, rows):
        if epoch == epoch_to_change:
            for optimizer in trainer.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = lr

    return callback
