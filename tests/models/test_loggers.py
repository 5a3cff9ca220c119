"""The logger interface: what a tracker receives, and the TensorBoard logger read back with TensorBoard's reader."""

import importlib.util
import json
import sys

import pytest
import torch

from elbocheck.models import RunLogger, metrics
from elbocheck.models.errors import NonFiniteTermError
from elbocheck.models.loggers import TensorBoardLogger
from elbocheck.models.run_log import read_log_rows
from elbocheck.models.trainer import Trainer, resume
from run_testing import epochs_per_split, tiny_config

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
needs_tensorboard = pytest.mark.skipif(
    not HAS_TENSORBOARD, reason="the optional extra is not installed: pip install 'elbocheck[tensorboard]'")


class Recorder(RunLogger):
    """What a W&B or MLflow adapter would receive."""

    def __init__(self, fail_at_epoch=None):
        self.calls = []
        self.fail_at_epoch = fail_at_epoch

    def start(self, run):
        self.calls.append(("start", run))

    def log_epoch(self, epoch, rows):
        if epoch == self.fail_at_epoch:
            raise ConnectionError("tracker unreachable")
        self.calls.append(("log_epoch", epoch, [dict(row) for row in rows]))

    def finish(self, state):
        self.calls.append(("finish", state))


def test_a_logger_receives_start_every_epoch_and_finish(tmp_path):
    recorder = Recorder()
    Trainer(tiny_config(epochs=3), tmp_path / "run", loggers=[recorder]).fit()
    kinds = [call[0] for call in recorder.calls]
    assert kinds == ["start", "log_epoch", "log_epoch", "log_epoch", "finish"]
    info = recorder.calls[0][1]
    assert info.run_dir == tmp_path / "run" and info.start_epoch == 0 and info.config["model"] == "vae"
    assert info.columns == ("epoch", "split", "reconstruction", "kl_z", "elbo", "objective", "examples", "seconds")
    logged = [row for call in recorder.calls[1:4] for row in call[2]]
    assert logged == read_log_rows(tmp_path / "run")  # the same rows as log.csv (which round-trips floats)
    assert recorder.calls[-1] == ("finish", "completed")
    assert metrics(logged[0]).keys() == {"reconstruction", "kl_z", "elbo", "objective", "examples", "seconds"}


def test_a_resumed_run_tells_its_loggers_where_it_starts(tmp_path):
    run = tmp_path / "run"
    failing = Recorder(fail_at_epoch=3)
    with pytest.raises(ConnectionError):
        Trainer(tiny_config(epochs=4), run, loggers=[failing]).fit()
    assert failing.calls[-1] == ("finish", "interrupted")  # also when the run stops with an error
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and "ConnectionError: tracker unreachable" in status["message"]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 2  # epoch 3 never checkpointed
    recorder = Recorder()
    resume(run, loggers=[recorder])
    assert recorder.calls[0][1].start_epoch == 2
    assert [call[1] for call in recorder.calls if call[0] == "log_epoch"] == [3, 4]
    assert epochs_per_split(run)["train"] == [1, 2, 3, 4]


def test_a_failed_run_finishes_its_loggers_with_failed(tmp_path):
    class Poison(RunLogger):
        def log_epoch(self, epoch, rows):
            if epoch == 2:
                raise NonFiniteTermError("kl_z", "injected")

    recorder = Recorder()
    with pytest.raises(NonFiniteTermError):
        Trainer(tiny_config(epochs=3), tmp_path / "run", loggers=[Poison(), recorder]).fit()
    assert recorder.calls[-1] == ("finish", "failed")


def test_without_the_extra_tensorboard_fails_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ImportError, match=r"pip install 'elbocheck\[tensorboard\]'"):
        Trainer(tiny_config(tensorboard=True), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _scalars(log_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


@needs_tensorboard
def test_tensorboard_logger_writes_every_term_per_split_and_epoch(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(epochs=3, tensorboard=True), run).fit()
    rows = read_log_rows(run)
    for split in ("train", "validation"):
        for term in ("elbo", "kl_z", "reconstruction", "objective", "examples"):
            expected = [(row["epoch"], row[term]) for row in rows if row["split"] == split]
            written = _scalars(run / "tensorboard", f"{split}/{term}")
            assert [step for step, _ in written] == [1, 2, 3]
            assert [value for _, value in written] == pytest.approx([value for _, value in expected], rel=1e-6)


@needs_tensorboard
def test_tensorboard_drops_the_epochs_a_resumed_run_repeats(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ConnectionError):  # epoch 3 reaches TensorBoard, not the checkpoint
        Trainer(tiny_config(epochs=4, tensorboard=True), run, loggers=[Recorder(fail_at_epoch=3)]).fit()
    assert [step for step, _ in _scalars(run / "tensorboard", "train/elbo")] == [1, 2, 3]
    resume(run)
    elbo = [(row["epoch"], row["elbo"]) for row in read_log_rows(run) if row["split"] == "train"]
    written = _scalars(run / "tensorboard", "train/elbo")
    assert [step for step, _ in written] == [1, 2, 3, 4]  # epoch 3 once: the resumed run's
    assert [value for _, value in written] == pytest.approx([value for _, value in elbo], rel=1e-6)


def test_tensorboard_logger_can_write_elsewhere(tmp_path):
    if not HAS_TENSORBOARD:
        pytest.skip("the optional extra is not installed: pip install 'elbocheck[tensorboard]'")
    Trainer(tiny_config(epochs=1), tmp_path / "run", loggers=[TensorBoardLogger(tmp_path / "board")]).fit()
    assert [step for step, _ in _scalars(tmp_path / "board", "validation/elbo")] == [1]
