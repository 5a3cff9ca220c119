"""Where a run's per-epoch rows go: the :class:`RunLogger` interface, and the TensorBoard logger.

The trainer (:class:`elbocheck.models.trainer.Trainer`) calls, on every logger it has:

* ``start(run)`` once, when :meth:`~elbocheck.models.trainer.Trainer.fit` begins, with a :class:`RunInfo`: the run
  directory, the config, the term names, and ``start_epoch``, the epoch the run continues after (0 for a new run,
  the checkpoint's epoch on resume);
* ``log_epoch(epoch, rows)`` after each epoch, with one row per split (``epoch``, ``split``, one value per term,
  ``examples``, ``seconds``; :func:`metrics` gives the numbers of a row by name), before that epoch's checkpoint is
  written, so that every checkpointed epoch has been logged;
* ``finish(state)`` once at the end: ``completed``, ``failed`` or ``interrupted`` (also when the run stops with an
  error, which then propagates).

The run's own CSV/JSONL log (:class:`elbocheck.models.run_log.RunLog`) and :class:`TensorBoardLogger` are two
implementations. Attaching an experiment tracker takes a few lines; MLflow, for instance::

    import mlflow
    from elbocheck.models import RunLogger, Trainer, metrics

    class MLflowLogger(RunLogger):
        def start(self, run):
            mlflow.start_run(run_name=run.run_dir.name)
            mlflow.log_params({"model": run.config["model"], "data": run.config["data"], "lr": run.config["lr"]})

        def log_epoch(self, epoch, rows):
            for row in rows:
                mlflow.log_metrics({f"{row['split']}/{name}": value for name, value in metrics(row).items()},
                                   step=epoch)

        def finish(self, state):
            mlflow.end_run("FINISHED" if state == "completed" else "FAILED")

    Trainer(config, "runs/vae", loggers=[MLflowLogger()]).fit()

Weights & Biases is the same with ``wandb.init(config=run.config)``, ``wandb.log(..., step=epoch)`` and
``wandb.finish()``. Resuming: the rows of epochs after the last checkpoint (a run killed between logging an epoch and
checkpointing it) are logged again by the resumed run; the CSV/JSONL log drops the old rows first and TensorBoard
purges them (``purge_step``), while a tracker that cannot take back a step keeps both (W&B ignores a step below its
last one). A logger that raises stops the run (status ``interrupted``, the last checkpoint kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

ROW_KEYS = ("epoch", "split")


@dataclass(frozen=True)
class RunInfo:
    """What a logger learns about the run when it starts."""

    run_dir: Path
    config: Mapping[str, Any]  # the TrainConfig as JSON (what config.json holds)
    term_names: tuple[str, ...]
    columns: tuple[str, ...]  # the row keys, in order: epoch, split, the terms, examples, seconds
    start_epoch: int  # 0 for a new run; the checkpoint's epoch when resumed


class RunLogger:
    """Receives a run's per-epoch rows; subclass it and override what you need (every method defaults to nothing)."""

    def start(self, run: RunInfo) -> None:
        """Called once, before the first epoch of this process."""

    def log_epoch(self, epoch: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Called after each epoch with one row per split."""

    def finish(self, state: str) -> None:
        """Called once at the end with ``completed``, ``failed`` or ``interrupted``."""


def metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a row by name: every term, ``examples`` and ``seconds`` (not ``epoch`` and ``split``)."""
    return {name: float(value) for name, value in row.items() if name not in ROW_KEYS}


class TensorBoardLogger(RunLogger):
    """Scalars ``SPLIT/TERM`` per epoch into ``log_dir`` (default ``RUN_DIR/tensorboard``), for ``tensorboard
    --logdir``. Needs the optional extra: ``pip install 'elbocheck[tensorboard]'`` (checked when constructed, so a
    run that asks for it fails before it writes anything)."""

    def __init__(self, log_dir: str | Path | None = None) -> None:
        self._summary_writer = summary_writer_class()
        self.log_dir = None if log_dir is None else Path(log_dir)
        self._writer = None

    def start(self, run: RunInfo) -> None:
        log_dir = self.log_dir if self.log_dir is not None else run.run_dir / "tensorboard"
        # purge_step: events of epochs after the checkpoint, written by a run killed before it, are dropped
        self._writer = self._summary_writer(log_dir=str(log_dir), purge_step=run.start_epoch + 1)

    def log_epoch(self, epoch: int, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            for name, value in metrics(row).items():
                self._writer.add_scalar(f"{row['split']}/{name}", value, epoch)
        self._writer.flush()

    def finish(self, state: str) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def summary_writer_class():
    """torch's TensorBoard ``SummaryWriter``; tensorboard is an optional extra, imported only when asked for."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:  # tensorboard itself missing
        raise ImportError(
            "tensorboard: logging to TensorBoard needs the optional extra: pip install 'elbocheck[tensorboard]'"
        ) from error
    return SummaryWriter
