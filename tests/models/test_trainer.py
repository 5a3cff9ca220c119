import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from elbocheck.models import VAE, NonFiniteTermError
from elbocheck.models.errors import RunDirectoryOccupiedError
from elbocheck.models.run_log import read_log_rows
from elbocheck.models.trainer import Trainer, resume, train
from model_testing import tiny_dataset
from run_testing import TINY, epochs_per_split, tiny_config


class StopAfter(Exception):
    pass


def stop_after(epoch_to_stop):
    def callback(trainer, epoch, rows):
        if epoch == epoch_to_stop:
            raise StopAfter(f"injected stop after epoch {epoch}")

    return callback


def test_logs_one_row_per_epoch_and_split_in_csv_and_jsonl(tmp_path):
    result = Trainer(tiny_config(), tmp_path / "run").fit()
    run = tmp_path / "run"
    assert epochs_per_split(run) == {"train": [1, 2, 3, 4], "validation": [1, 2, 3, 4]}
    with (run / "log.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header == ["epoch", "split", "reconstruction", "kl_z", "elbo", "objective", "examples", "seconds"]
    csv_rows = read_log_rows(run)
    json_rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(json_rows) == len(csv_rows)
    for a, b in zip(csv_rows, json_rows):
        assert a == pytest.approx(b)
    assert json.loads((run / "status.json").read_text())["state"] == "completed"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 4
    assert result.last_rows[0]["epoch"] == 4 and json.loads((run / "config.json").read_text())["model"] == "vae"
    # the train row averages 2 steps of 32 examples
    assert all(row["examples"] == 64 for row in csv_rows if row["split"] == "train")


def test_same_seed_same_run_and_another_seed_another(tmp_path):
    train("vae", "digits", tmp_path / "a", **_fields(tiny_config()))
    train("vae", "digits", tmp_path / "b", **_fields(tiny_config()))
    train("vae", "digits", tmp_path / "c", **_fields(tiny_config(seed=1)))
    strip = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert strip(read_log_rows(tmp_path / "a")) == strip(read_log_rows(tmp_path / "b"))
    assert strip(read_log_rows(tmp_path / "a")) != strip(read_log_rows(tmp_path / "c"))


def _fields(config):
    fields = config.to_json()
    fields.pop("model"), fields.pop("data")
    return fields


def test_interrupted_run_resumes_to_the_same_result_with_every_epoch_once(tmp_path):
    for model in ("vae", "condvae_info"):  # also a run with two optimisers
        config = tiny_config(model=model, epochs=5)
        Trainer(config, tmp_path / f"{model}-whole").fit()
        with pytest.raises(StopAfter):
            Trainer(config, tmp_path / f"{model}-cut", callbacks=[stop_after(2)]).fit()
        status = json.loads((tmp_path / f"{model}-cut" / "status.json").read_text())
        assert status["state"] == "interrupted" and status["epochs_completed"] == 2
        assert epochs_per_split(tmp_path / f"{model}-cut")["train"] == [1, 2]
        resume(tmp_path / f"{model}-cut", progress=False)
        assert epochs_per_split(tmp_path / f"{model}-cut") == {"train": [1, 2, 3, 4, 5], "validation": [1, 2, 3, 4, 5]}
        whole, cut = read_log_rows(tmp_path / f"{model}-whole"), read_log_rows(tmp_path / f"{model}-cut")
        for a, b in zip(whole, cut):  # deterministic on CPU: resuming changes nothing
            a.pop("seconds"), b.pop("seconds")
            assert a == b


def test_rows_written_after_the_last_checkpoint_are_dropped_on_resume(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(StopAfter):
        Trainer(tiny_config(), run, callbacks=[stop_after(2)]).fit()
    # a kill between writing epoch 3's rows and its checkpoint leaves rows the checkpoint does not cover
    rows = read_log_rows(run)
    extra = dict(rows[-1], epoch=3)
    with (run / "log.csv").open("a", newline="") as handle:
        csv.DictWriter(handle, fieldnames=list(extra)).writerow(extra)
    with (run / "log.jsonl").open("a") as handle:
        handle.write(json.dumps(extra) + "\n" + '{"epoch": 3, "spl')  # and a line cut short
    resume(run, progress=False)
    assert epochs_per_split(run) == {"train": [1, 2, 3, 4], "validation": [1, 2, 3, 4]}
    assert [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()] == [1, 1, 2, 2, 3, 3,
                                                                                                    4, 4]


def test_resume_can_extend_a_finished_run(tmp_path):
    Trainer(tiny_config(epochs=2), tmp_path / "run").fit()
    resume(tmp_path / "run", epochs=3, progress=False)
    assert epochs_per_split(tmp_path / "run")["train"] == [1, 2, 3]
    with pytest.raises(TypeError, match="cannot override batch_size"):
        resume(tmp_path / "run", batch_size=8)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resume(tmp_path / "nothing")


def test_killed_process_resumes_with_every_epoch_once(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "elbocheck.train_command", "vae", "--data", "digits", "--data-option",
               "size=100", "--epochs", "60", "--batch-size", "40", "--model-option", "hidden_dim=8",
               "--model-option", "architecture=mlp", "--model-option", "latent_dim=2", "--device", "cpu",
               "--no-progress", "--out", str(run)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny net: a second thread only oversubscribes the CPU
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
    deadline = time.time() + 120
    log = run / "log.csv"
    try:
        while time.time() < deadline:
            if log.exists() and log.read_text().count(",train,") >= 3:
                break
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.005)
        assert process.poll() is None, "the run finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    done_before = max(epochs_per_split(run)["train"])
    assert 3 <= done_before < 60
    resumed = subprocess.run([sys.executable, "-m", "elbocheck.train_command", "--resume", str(run), "--no-progress"],
                             capture_output=True, text=True, timeout=300, env=environment)
    assert resumed.returncode == 0, resumed.stderr
    expected = list(range(1, 61))
    assert epochs_per_split(run) == {"train": expected, "validation": expected}
    assert json.loads((run / "status.json").read_text())["state"] == "completed"


class PoisonedVAE(VAE):
    """A VAE whose kl_z turns NaN once ``poisoned`` is set (from a callback)."""

    poisoned = False

    def compute_terms(self, batch, latent_samples):
        terms = super().compute_terms(batch, latent_samples)
        if self.poisoned:
            terms["kl_z"] = terms["kl_z"] * float("nan")
        return terms


def poison_after(epoch_to_poison, action):
    def callback(trainer, epoch, rows):
        if epoch == epoch_to_poison:
            action(trainer.model)

    return callback


def test_a_nan_term_stops_the_run_naming_term_and_epoch_and_keeps_the_last_good_checkpoint(tmp_path):
    dataset = tiny_dataset("digits")
    torch.manual_seed(0)
    model = PoisonedVAE(dataset.spec(), **TINY)
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(), run, model=model, dataset=dataset,
                      callbacks=[poison_after(2, lambda m: setattr(m, "poisoned", True))])
    with pytest.raises(NonFiniteTermError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "term 'kl_z' is not finite at epoch 3, split 'train', step 1" in message
    assert "last good checkpoint" in message and str(run / "checkpoint.pt") in message
    assert caught.value.term == "kl_z" and caught.value.epoch == 3
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert epochs_per_split(run)["train"] == [1, 2]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "kl_z" in status["message"]


def test_non_finite_parameters_are_reported_through_the_term_they_break(tmp_path):
    dataset = tiny_dataset("digits")
    torch.manual_seed(0)
    model = VAE(dataset.spec(), **TINY)

    def break_encoder(m):
        with torch.no_grad():
            m.encoder.head[0].weight.fill_(float("inf"))

    trainer = Trainer(tiny_config(), tmp_path / "run", model=model, dataset=dataset,
                      callbacks=[poison_after(1, break_encoder)])
    with pytest.raises(NonFiniteTermError, match="term 'kl_z' is not finite at epoch 2") as caught:
        trainer.fit()
    assert "must be finite" in caught.value.detail  # the estimator's own complaint is kept
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["epoch"] == 1


def test_bad_arguments_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="valid choices: vae, beta_vae"):
        Trainer(tiny_config(model="gan"), tmp_path / "a")
    with pytest.raises(ValueError, match="valid choices: digits, rotated_digits"):
        Trainer(tiny_config(data="cifar10"), tmp_path / "a")
    with pytest.raises(ValueError, match="epochs: must be >= 1"):
        Trainer(tiny_config(epochs=0), tmp_path / "a")
    with pytest.raises(ValueError, match="model 'diva' needs domain labels d, but data set 'digits' has none; data "
                                         "sets with domain labels: rotated_digits"):
        Trainer(tiny_config(model="diva", model_options={}), tmp_path / "a")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA was requested but no CUDA device is available"):
            Trainer(tiny_config(device="cuda"), tmp_path / "a")
    Trainer(tiny_config(epochs=1), tmp_path / "done").fit()
    with pytest.raises(RunDirectoryOccupiedError, match="already holds this run"):
        Trainer(tiny_config(epochs=1), tmp_path / "done")


def test_tensorboard_is_optional(tmp_path):
    config = tiny_config(epochs=1, tensorboard=True)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ImportError, match=r"pip install 'elbocheck\[tensorboard\]'"):
            Trainer(config, tmp_path / "run")
    else:
        Trainer(config, tmp_path / "run").fit()
        assert any((tmp_path / "run" / "tensorboard").iterdir())


def test_mixed_precision_runs_on_the_same_code_path(tmp_path):
    result = Trainer(tiny_config(epochs=1, amp=True), tmp_path / "run").fit()
    assert all(torch.isfinite(torch.tensor(row["elbo"])) for row in result.last_rows)


def test_progress_bar_shows_the_main_terms(tmp_path, capsys):
    Trainer(tiny_config(epochs=1, progress=True), tmp_path / "run").fit()
    captured = capsys.readouterr()
    assert "epoch 1/1" in captured.err + captured.out
    assert "elbo" in captured.err + captured.out


def test_a_log_with_other_columns_is_refused_not_overwritten(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("epoch,split,something_else\n1,train,0.5\n")
    with pytest.raises(RunDirectoryOccupiedError, match=r"holds files of a run \(log.csv\) but no readable config"):
        Trainer(tiny_config(), run)
    assert (run / "log.csv").read_text() == "epoch,split,something_else\n1,train,0.5\n"


def test_the_jackknifed_beta_tcvae_needs_three_examples_per_batch_and_evaluates_in_chunks_of_three(tmp_path):
    options = {**TINY, "estimator": "mss-jackknife"}
    with pytest.raises(ValueError, match="model 'beta_tcvae' needs batches of at least 3 examples .*leave one of"):
        Trainer(tiny_config(model="beta_tcvae", batch_size=2, model_options=options), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    # 100 digits split 80 / 10 / 10: an evaluation split of 10 in batches of 3 would be cut 3 + 3 + 2 + 2; the
    # chunks are made no smaller than the model's minimum instead (4 + 3 + 3), so the jackknife can run.
    result = Trainer(tiny_config(model="beta_tcvae", batch_size=3, epochs=1, model_options=options),
                     tmp_path / "run").fit()
    rows = result.last_rows
    assert {row["split"] for row in rows} >= {"train", "validation"}
    for row in rows:
        for name in ("mutual_information", "total_correlation", "dimensionwise_kl", "elbo"):
            assert torch.isfinite(torch.tensor(row[name])), (row["split"], name)
