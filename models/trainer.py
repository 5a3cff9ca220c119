"""Training: one code path for CPU and CUDA, checkpoints every epoch, resume, guards against NaN and divergence,
per-epoch logs, and run directories that one run cannot clobber with another.

A run directory (:mod:`.run_directory`) holds

* ``config.json`` -- the :class:`TrainConfig` (what to rebuild on ``resume``);
* ``log.csv`` / ``log.jsonl`` -- one row per (epoch, split), see :mod:`.run_log`;
* ``checkpoint.pt`` and ``checkpoint.previous.pt`` -- model and optimiser states and RNG states after the last two
  completed epochs (:mod:`.checkpoint`: written atomically, only after an epoch finished with every term finite and
  the ELBO within the divergence guard; a corrupt one falls back to the one before);
* ``status.json`` -- ``running`` / ``completed`` / ``failed`` (with the reason and what to do next) / ``interrupted``;
* ``lock`` -- while a process trains into it (a second writer is refused, naming the holder's pid);
* ``tensorboard/`` -- when asked for.

Each epoch: the training steps (one optimiser per parameter group; each group follows the gradient of its own loss,
see :meth:`VariationalModel.losses`), then evaluation of the other splits, then the log rows (to every
:class:`~.loggers.RunLogger`), then the divergence guard, then the checkpoint. A run killed at any point resumes from
its checkpoint: log rows of epochs after the checkpoint are dropped first, so the log ends up with every epoch
exactly once; a run killed before its first checkpoint starts over. With a seed the run is deterministic on CPU, and
a resumed run continues with the same random numbers as an uninterrupted one (the RNG states are in the checkpoint;
batch order is a function of seed and epoch).

Failures, each with its own exception (and ``elbocheck train`` exit code): a NaN or infinity in any term of any
step (:class:`NonFiniteTermError`, naming term, epoch, split and step); a diverged ELBO (:class:`DivergenceError`,
see :mod:`.divergence`); a run directory in use (:class:`RunDirectoryBusyError`) or holding another run
(:class:`RunDirectoryOccupiedError`, nothing changed); a failed write, e.g. a read-only or full disk
(:class:`RunDirectoryWriteError`); no readable checkpoint (:class:`CheckpointError`). A failure during training sets
``status.json`` to ``failed`` with the reason and keeps the last good checkpoint.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from tqdm import tqdm

from .base import VariationalModel
from .checkpoint import load_checkpoint, save_checkpoint
from .data.core import Batch, DataSet, iterate_minibatches
from .data.catalog import DATASETS, load_dataset
from .divergence import DEFAULT_FACTOR, DEFAULT_FLOOR, DivergenceGuard
from .errors import (CheckpointError, DivergenceError, NonFiniteTermError, RunDirectoryError,
                     RunDirectoryOccupiedError, RunDirectoryWriteError)
from .loggers import RunInfo, RunLogger, TensorBoardLogger
from .registry import build_model, check_data_fits, model_class
from .run_directory import (CHECKPOINT_NAME, CONFIG_NAME, PREVIOUS_CHECKPOINT_NAME, STATUS_NAME,  # noqa: F401
                            RunDirectory, writing)  # the file names are re-exported for callers of the trainer
from .run_log import LEADING_COLUMNS, TRAILING_COLUMNS, RunLog, read_log_rows

PROGRESS_TERMS = ("elbo", "objective", "reconstruction")
LABELLED_DATA_HINT = ("digits", "rotated_digits", "swiss_roll", "sprites (label_factor=...)",
                      "dsprites (label_factor=...)", "mnist (labels_path=...)")
DOMAIN_DATA_HINT = ("rotated_digits",)

EpochCallback = Callable[["Trainer", int, list], None]


@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json``).

    ``divergence_floor`` / ``divergence_factor``: the divergence guard (:mod:`.divergence`; ``None`` switches a rule
    off). ``changes`` records what ``resume`` changed mid-run (e.g. the learning rate), with the epoch it took
    effect after, so that the config still says how every epoch was trained.
    """

    model: str
    data: str
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    adversary_lr: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    model_options: dict = field(default_factory=dict)
    data_options: dict = field(default_factory=dict)
    max_steps_per_epoch: int | None = None
    progress: bool = True
    tensorboard: bool = False
    divergence_floor: float | None = DEFAULT_FLOOR
    divergence_factor: float | None = DEFAULT_FACTOR
    changes: list = field(default_factory=list)

    def validate(self) -> None:
        cls = model_class(self.model)  # raises with the valid choices
        if self.data not in DATASETS:
            raise ValueError(f"data: unknown data set {self.data!r}; valid choices: {', '.join(DATASETS)}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        check_batch_size(cls, self.model, self.batch_size, self.model_options)
        if not self.lr > 0 or (self.adversary_lr is not None and not self.adversary_lr > 0):
            raise ValueError(f"lr and adversary_lr must be > 0, got {self.lr}, {self.adversary_lr}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(f"max_steps_per_epoch: must be >= 1, got {self.max_steps_per_epoch}")
        DivergenceGuard(1, (), self.divergence_floor, self.divergence_factor)  # checks the two settings
        resolve_device(self.device)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def identity(self) -> dict:
        """The fields that make two configs the same run (all but those ``resume`` may change)."""
        return run_identity(self.to_json())

    def command_line(self, run_dir: str | Path, *, overwrite: bool = False) -> str:
        """The ``elbocheck train`` command that starts this run (in a POSIX shell)."""
        words = ["elbocheck", "train", self.model, "--data", self.data, "--epochs", str(self.epochs),
                 "--batch-size", str(self.batch_size), "--lr", repr(float(self.lr)), "--seed", str(self.seed)]
        if self.adversary_lr is not None:
            words += ["--adversary-lr", repr(float(self.adversary_lr))]
        if self.device != "auto":
            words += ["--device", self.device]
        if self.amp:
            words.append("--amp")
        if self.max_steps_per_epoch is not None:
            words += ["--max-steps-per-epoch", str(self.max_steps_per_epoch)]
        for flag, value, default in (("--divergence-floor", self.divergence_floor, DEFAULT_FLOOR),
                                     ("--divergence-factor", self.divergence_factor, DEFAULT_FACTOR)):
            if value != default:
                words += [flag, "none" if value is None else repr(float(value))]
        for flag, options in (("--model-option", self.model_options), ("--data-option", self.data_options)):
            for key, value in options.items():
                words += [flag, f"{key}={option_text(value)}"]
        if self.tensorboard:
            words.append("--tensorboard")
        words += ["--out", str(run_dir)]
        if overwrite:
            words.append("--overwrite")
        return shlex.join(words)


# Fields that resume may change (the rest define the run), and those of them that change the numbers (recorded).
RESUME_OVERRIDABLE = ("epochs", "device", "progress", "tensorboard", "amp", "lr", "adversary_lr", "divergence_floor",
                      "divergence_factor")
RECORDED_CHANGES = ("lr", "adversary_lr", "amp", "device")


def run_identity(config_json: Mapping[str, Any]) -> dict:
    return {key: value for key, value in config_json.items() if key not in (*RESUME_OVERRIDABLE, "changes")}


def option_text(value: Any) -> str:
    """A ``--model-option`` value as text that parses back to ``value`` (see ``parse_option`` of the command)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            literal = value
        special = value.strip().lower() in ("true", "false", "none", "null")
        return repr(value) if literal != value or special else value
    return repr(value)


def check_batch_size(cls: type, name: str, batch_size: int, options: dict | None = None) -> None:
    minimum, reason = cls.batch_size_minimum(options)
    if batch_size < minimum:
        raise ValueError(f"batch_size: model {name!r} needs batches of at least {minimum} examples "
                         f"({reason}), got {batch_size}")


@dataclass
class TrainResult:
    run_dir: Path
    epochs_completed: int
    last_rows: list[dict]
    model: VariationalModel


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an explicit CUDA device must exist."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device: cannot parse {device!r}; valid choices: auto, cpu, cuda, cuda:N") from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device: CUDA was requested but no CUDA device is available; use --device cpu or auto")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device: {device} does not exist; {torch.cuda.device_count()} CUDA device(s) present")
    elif resolved.type != "cpu":
        raise ValueError(f"device: unsupported device type {resolved.type!r}; valid choices: auto, cpu, cuda, cuda:N")
    return resolved


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.model}-{config.data}-seed{config.seed}"


class Trainer:
    """Trains one model on one data set into a run directory.

    ``model`` and ``dataset`` may be given ready-made (tests do this to inject faults); otherwise they are built
    from the config. Callbacks run after each epoch's checkpoint as ``callback(trainer, epoch, rows)``. ``loggers``
    (:class:`~.loggers.RunLogger`) receive each epoch's rows besides the run's own CSV/JSONL log (and TensorBoard
    when ``config.tensorboard``).

    The constructor takes the run directory's lock (released when :meth:`fit` returns or raises, or by
    :meth:`close`) and checks, before writing anything, that the directory may take this run: for a new run it must
    not hold another run (``overwrite=True`` removes the previous run's files on purpose); with ``resume=True`` the
    newest readable checkpoint is loaded (none: the run starts over from its saved config). ``notes`` lists what a
    user should know (a stale lock or ``running`` state taken over, a corrupt checkpoint passed over, a run started
    over).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        *,
        model: VariationalModel | None = None,
        dataset: DataSet | None = None,
        callbacks: Sequence[EpochCallback] = (),
        loggers: Sequence[RunLogger] = (),
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        if model is None:
            config.validate()
        else:
            check_batch_size(type(model), config.model, config.batch_size, config.model_options)
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
        self.directory = RunDirectory(self.run_dir)
        self.notes = self.directory.notes
        self.directory.check_usable()  # fail fast, before loading data: a file, or in use
        if not resume and not overwrite:  # fail fast, before loading data; checked again under the lock
            self.directory.check_new_run(self._same_run, restart_command=self._restart_command())
        self.callbacks = list(callbacks)
        self.loggers: list[RunLogger] = [RunLog()]
        if config.tensorboard:
            self.loggers.append(TensorBoardLogger())  # fails here, before anything is written, without the extra
        self.loggers.extend(loggers)
        self.device = resolve_device(config.device)
        self.dataset = dataset if dataset is not None else load_dataset(config.data, **config.data_options)
        spec = self.dataset.spec()
        if model is None:
            check_data_fits(config.model, spec, f"data set {config.data!r}", labelled=LABELLED_DATA_HINT,
                            with_domains=DOMAIN_DATA_HINT)
            torch.manual_seed(config.seed)
            model = build_model(config.model, spec, **config.model_options)
        self.model = model.to(self.device)
        self.term_names = tuple(self.model.term_names)
        self.parameter_groups = self.model.parameter_groups()
        self.optimizers = {group: torch.optim.Adam(params, lr=self._learning_rates()[group])
                           for group, params in self.parameter_groups.items()}
        self.splits = {name: self._on_device(self.dataset.split(name)) for name in self.dataset.splits}
        self.guard = DivergenceGuard(math.prod(spec.event_shape), self.term_names, config.divergence_floor,
                                     config.divergence_factor)
        self.directory.open()  # the lock: raises RunDirectoryBusyError while another process trains here
        try:
            if resume:
                self.start_epoch = self._prepare_resume()
            else:
                self.directory.prepare_new_run(self._same_run, overwrite=overwrite,
                                               restart_command=self._restart_command())
                self.start_epoch = 0
                torch.manual_seed(config.seed)  # sampling stream; the model was initialised from the same seed above
            self.completed_epoch = self.start_epoch
            self.directory.write_config(config.to_json())
        except BaseException:
            self.directory.close()
            raise

    def _same_run(self, saved_config: Mapping[str, Any]) -> bool:
        return run_identity(saved_config) == self.config.identity()

    def _restart_command(self) -> str:
        return self.config.command_line(self.run_dir, overwrite=True)

    def _learning_rates(self) -> dict[str, float]:
        return {"model": self.config.lr, "adversary": self.config.adversary_lr or self.config.lr}

    def close(self) -> None:
        """Release the run directory's lock (done by :meth:`fit`; needed only for a Trainer that never fits)."""
        self.directory.close()

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        directory = getattr(self, "directory", None)
        if directory is not None:
            directory.close()

    # ----------------------------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        last_rows: list[dict] = []
        state = "interrupted"
        try:
            self._start_loggers()
            self._status("running")
            for epoch in range(self.start_epoch + 1, self.config.epochs + 1):
                epoch_start = getattr(self.model, "on_epoch_start", None)  # KL warm-up schedules
                if epoch_start is not None:
                    epoch_start(epoch)
                rows = [self._train_epoch(epoch)]
                for split in self.splits:
                    if split != "train":
                        rows.append(self._evaluate_split(split, epoch))
                self._check_parameters(epoch)
                self._log_epoch(epoch, rows)
                self.guard.check(rows)
                self._save_checkpoint(epoch)
                self.completed_epoch = epoch
                self._status("running")
                last_rows = rows
                self._print_epoch(rows)
                for callback in self.callbacks:
                    callback(self, epoch, rows)
            self._status("completed")
            state = "completed"
        except NonFiniteTermError as error:
            state = "failed"
            located = error.located(
                epoch=error.epoch if error.epoch is not None else self.completed_epoch + 1,
                split=error.split or "train",
                step=error.step,
                checkpoint=self._kept_checkpoint(),
                advice=self._advice_after_failure(),
            )
            self._record_failure(located, "non_finite")
            raise located from error
        except DivergenceError as error:
            state = "failed"
            located = error.located(f"the last good checkpoint is kept: {self._kept_checkpoint()}; "
                                    f"{self._advice_after_failure()}")
            self._record_failure(located, "diverged")
            raise located from error
        except RunDirectoryWriteError as error:
            state = "failed"
            self._record_failure(error, "write_error")
            raise
        except BaseException as error:
            try:
                self._status("interrupted", f"{type(error).__name__}: {error}")
            except RunDirectoryError:
                pass  # the original error matters more
            raise
        finally:
            self._finish_loggers(state)
            self.close()
        return TrainResult(self.run_dir, self.config.epochs, last_rows, self.model)

    def _start_loggers(self) -> None:
        info = RunInfo(self.run_dir, self.config.to_json(), self.term_names,
                       (*LEADING_COLUMNS, *self.term_names, *TRAILING_COLUMNS), self.start_epoch)
        for logger in self.loggers:
            if self._is_own(logger):
                with writing(self.run_dir, "preparing the log"):
                    logger.start(info)
            else:
                logger.start(info)
        self.guard.remember(read_log_rows(self.run_dir))  # the best ELBO of the epochs kept, on resume

    def _log_epoch(self, epoch: int, rows: list[dict]) -> None:
        for logger in self.loggers:
            if self._is_own(logger):  # an OSError of the run's own files is a write error of the run directory
                with writing(self.run_dir, f"logging epoch {epoch}"):
                    logger.log_epoch(epoch, rows)
            else:
                logger.log_epoch(epoch, rows)

    def _finish_loggers(self, state: str) -> None:
        for logger in self.loggers:
            try:
                logger.finish(state)
            except Exception as error:  # noqa: BLE001 - one logger's failure must not hide the run's outcome
                self.notes.append(f"logger {type(logger).__name__} failed to finish: {type(error).__name__}: {error}")

    @staticmethod
    def _is_own(logger: RunLogger) -> bool:
        return type(logger) in (RunLog, TensorBoardLogger)

    def _kept_checkpoint(self) -> str:
        path = self.run_dir / CHECKPOINT_NAME
        if self.completed_epoch > 0 and path.is_file():
            return str(path)
        return "none (no epoch completed)"

    def _advice_after_failure(self) -> str:
        return (f"to continue with a smaller learning rate: elbocheck train --resume {shlex.quote(str(self.run_dir))} "
                f"--lr {self.config.lr / 10:g}")

    def _record_failure(self, error: Exception, failure: str) -> None:
        if not self.directory.record_failure(self.completed_epoch, str(error), failure):
            self.notes.append(f"{self.run_dir}: status.json could not be set to 'failed' either")

    # ----------------------------------------------------------------------------------------------------------------
    def _on_device(self, batch: Batch) -> Batch:
        return batch.to(self.device)

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.config.amp)

    def _finite_values(self, terms: Mapping[str, torch.Tensor], split: str, epoch: int, step: int) -> torch.Tensor:
        """All term values as one CPU float64 vector (a single device sync); raise on the first non-finite one."""
        values = torch.stack([value.detach().double() for value in terms.values()]).cpu()
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            bad = [name for name, ok in zip(terms, finite.tolist()) if not ok]
            detail = ", ".join(f"{name} = {values[list(terms).index(name)].item()}" for name in bad)
            raise NonFiniteTermError(bad[0], detail, epoch=epoch, split=split, step=step)
        return values

    def _train_epoch(self, epoch: int) -> dict:
        self.model.train()
        data = self.splits["train"]
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        batches = iterate_minibatches(data, self.config.batch_size, shuffle=True, generator=generator,
                                      drop_last=True)
        steps = max(1, data.size // self.config.batch_size) if data.size >= self.config.batch_size else 1
        if self.config.max_steps_per_epoch is not None:
            steps = min(steps, self.config.max_steps_per_epoch)
        totals = torch.zeros(len(self.term_names), dtype=torch.float64)
        examples = 0
        start = time.perf_counter()
        # No tqdm object at all without a bar: tqdm takes a multiprocessing lock that forked processes share, and a
        # process killed while holding it would hang the others.
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{self.config.epochs}", leave=False,
                   dynamic_ncols=True) if self.config.progress else None
        try:
            for step, batch in enumerate(batches, start=1):
                if step > steps:
                    break
                values = self.train_step(batch, epoch, step)
                totals += values * batch.size
                examples += batch.size
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(refresh=False, ordered_dict={
                        name: f"{values[self.term_names.index(name)].item():.4g}"
                        for name in PROGRESS_TERMS if name in self.term_names})
        finally:
            if bar is not None:
                bar.close()
        return self._row(epoch, "train", totals / max(examples, 1), examples, time.perf_counter() - start)

    def train_step(self, batch: Batch, epoch: int = 0, step: int = 0) -> torch.Tensor:
        """One optimisation step on ``batch``; returns the term values (CPU, in ``term_names`` order)."""
        try:
            with self._autocast():
                terms = self.model(batch)
        except NonFiniteTermError as error:
            raise error.located(epoch=epoch, split="train", step=step, checkpoint=None) from error
        values = self._finite_values(terms, "train", epoch, step)
        losses = self.model.losses(terms)
        groups = list(self.parameter_groups.items())
        # Each group's gradient is that of its own loss w.r.t. its own parameters only (simultaneous min-max steps).
        for index, (group, params) in enumerate(groups):
            gradients = torch.autograd.grad(losses[group], params, retain_graph=index < len(groups) - 1,
                                            allow_unused=True)
            for parameter, gradient in zip(params, gradients):
                parameter.grad = gradient
        for optimizer in self.optimizers.values():
            optimizer.step()
        return values

    @torch.no_grad()
    def evaluate(self, split: str, epoch: int = 0) -> dict:
        """Mean terms over a whole split (eval mode, no gradients), weighted by batch size."""
        return self._evaluate_split(split, epoch)

    @torch.no_grad()
    def _evaluate_split(self, split: str, epoch: int) -> dict:
        self.model.eval()
        data = self.splits[split]
        totals = torch.zeros(len(self.term_names), dtype=torch.float64)
        start = time.perf_counter()
        # Nearly equal chunks, none smaller than the model's minimum batch where the split allows (the stratified
        # estimator needs two examples, its jackknife three).
        minimum, _ = type(self.model).batch_size_minimum(self.config.model_options)
        num_batches = max(1, min(math.ceil(data.size / self.config.batch_size), data.size // max(minimum, 1)))
        for step, index in enumerate(torch.tensor_split(torch.arange(data.size, device=data.x.device), num_batches),
                                     start=1):
            batch = Batch(data.x[index], None if data.y is None else data.y[index],
                          None if data.d is None else data.d[index], data.size)
            try:
                with self._autocast():
                    terms = self.model(batch)
            except NonFiniteTermError as error:
                raise error.located(epoch=epoch, split=split, step=step, checkpoint=None) from error
            totals += self._finite_values(terms, split, epoch, step) * batch.size
        self.model.train()
        return self._row(epoch, split, totals / max(data.size, 1), data.size, time.perf_counter() - start)

    def _row(self, epoch: int, split: str, means: torch.Tensor, examples: int, seconds: float) -> dict:
        row: dict = {"epoch": epoch, "split": split}
        row.update({name: float(value) for name, value in zip(self.term_names, means.tolist())})
        row.update({"examples": examples, "seconds": round(seconds, 4)})
        return row

    def _check_parameters(self, epoch: int) -> None:
        """A step can leave parameters non-finite without any term showing it yet; never checkpoint those."""
        for name, parameter in self.model.named_parameters():
            if not bool(torch.isfinite(parameter).all()):
                raise NonFiniteTermError("parameters", f"parameter {name!r} became non-finite", epoch=epoch,
                                         split="train")

    def _print_epoch(self, rows: Iterable[Mapping]) -> None:
        if not self.config.progress:
            return
        parts = []
        for row in rows:
            shown = ", ".join(f"{name} {row[name]:.4g}" for name in PROGRESS_TERMS if name in row)
            parts.append(f"{row['split']}: {shown}")
        tqdm.write(f"epoch {next(iter(rows))['epoch']}/{self.config.epochs}  " + " | ".join(parts))

    # ----------------------------------------------------------------------------------------------------------------
    def _save_checkpoint(self, epoch: int) -> None:
        state = {
            "epoch": epoch,
            "model_state": self.model.state_dict(),
            "optimizer_states": {group: opt.state_dict() for group, opt in self.optimizers.items()},
            "torch_rng_state": torch.get_rng_state(),
            "cuda_rng_states": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "term_names": list(self.term_names),
            "config": self.config.to_json(),
        }
        with writing(self.run_dir / CHECKPOINT_NAME, f"saving the checkpoint of epoch {epoch}"):
            save_checkpoint(self.run_dir, state)

    def _prepare_resume(self) -> int:
        """Load the newest readable checkpoint (under the lock); returns its epoch, 0 when the run starts over."""
        saved = self.directory.read_config()
        if saved is not None and not self._same_run(saved):
            differing = sorted(key for key in set(run_identity(saved)) | set(self.config.identity())
                               if run_identity(saved).get(key) != self.config.identity().get(key))
            raise RunDirectoryOccupiedError(
                f"resume: the run in {self.run_dir} was started with another config (differing in "
                f"{', '.join(differing)}); nothing was changed. Resume it with its own config (elbocheck train "
                f"--resume {self.run_dir}), or start this one with another --out or --overwrite", str(self.run_dir))
        stale = self.directory.stale_running_note()
        if stale is not None:
            self.notes.append(stale)
        try:
            loaded = load_checkpoint(self.run_dir, self._apply_checkpoint)
        except CheckpointError as error:
            located = CheckpointError(f"{error}; start the run over with: {self._restart_command()}", error.path)
            previous = self.directory.read_status() or {}
            self.directory.record_failure(int(previous.get("epochs_completed", 0)), str(located),
                                          "checkpoint_unreadable")
            raise located from error
        if loaded is None:
            self.notes.append(f"{self.run_dir}: no checkpoint: the run stopped before its first epoch ended; starting "
                              "it over from epoch 1 with its saved config (the same result as an uninterrupted run)")
            torch.manual_seed(self.config.seed)  # as a new run does
            return 0
        state, path, notes = loaded
        self.notes.extend(notes)
        epoch = int(state["epoch"])
        if self.config.epochs < epoch:
            raise ValueError(f"epochs: the run in {self.run_dir} has completed {epoch} epochs, so --epochs must be at "
                             f"least {epoch} (got {self.config.epochs}); nothing was changed")
        self._record_changes(state.get("config") or {}, epoch)
        return epoch

    def _apply_checkpoint(self, state: Mapping[str, Any]) -> None:
        if tuple(state["term_names"]) != self.term_names:
            raise ValueError(f"its terms {list(state['term_names'])} differ from the model's {list(self.term_names)}")
        self.model.load_state_dict(state["model_state"])
        for group, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizer_states"][group])
            for parameter_group in optimizer.param_groups:  # the config's rate: resume may change it
                parameter_group["lr"] = self._learning_rates()[group]
        torch.set_rng_state(state["torch_rng_state"])
        if self.device.type == "cuda" and state.get("cuda_rng_states"):
            torch.cuda.set_rng_state_all(state["cuda_rng_states"])

    def _record_changes(self, checkpoint_config: Mapping[str, Any], epoch: int) -> None:
        """Note in ``config.changes`` what differs from the config the checkpoint was trained with."""
        kept = [change for change in self.config.changes if change.get("after_epoch", 0) < epoch]
        current = self.config.to_json()
        for key in RECORDED_CHANGES:
            if key in checkpoint_config and checkpoint_config[key] != current[key]:
                kept.append({"after_epoch": epoch, "field": key, "from": checkpoint_config[key], "to": current[key]})
                self.notes.append(f"{self.run_dir}: {key} changes from {checkpoint_config[key]} to {current[key]} "
                                  f"after epoch {epoch} (recorded in config.json under 'changes')")
        self.config.changes = kept

    def _status(self, state: str, message: str = "") -> None:
        self.directory.write_status(state, self.completed_epoch, message)


# --------------------------------------------------------------------------------------------------------------------
def train(
    model: str,
    data: str,
    run_dir: str | Path | None = None,
    *,
    callbacks: Sequence[EpochCallback] = (),
    loggers: Sequence[RunLogger] = (),
    overwrite: bool = False,
    **config_fields: Any,
) -> TrainResult:
    """Train model ``model`` on data set ``data`` (fields of :class:`TrainConfig` as keywords) into ``run_dir``
    (``overwrite=True`` replaces a run already there)."""
    valid = {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "data"}
    unknown = sorted(set(config_fields) - valid)
    if unknown:
        raise TypeError(f"train: unknown argument(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    config = TrainConfig(model=model, data=data, **config_fields)
    return Trainer(config, run_dir, callbacks=callbacks, loggers=loggers, overwrite=overwrite).fit()


def load_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"resume: no {CONFIG_NAME} in {run_dir} (is it a run directory?)")
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
        return TrainConfig.from_json(saved)
    except (ValueError, TypeError) as error:
        raise ValueError(f"resume: {path} is not a readable config ({error}); the run cannot be rebuilt from it")\
            from error


# Settings where ``None`` is a value (the rule switched off), not "unchanged".
NONE_IS_A_VALUE = ("divergence_floor", "divergence_factor")


def resume(run_dir: str | Path, *, callbacks: Sequence[EpochCallback] = (), loggers: Sequence[RunLogger] = (),
           model: VariationalModel | None = None, dataset: DataSet | None = None, **overrides: Any) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint, optionally to more ``epochs``, on another device,
    with another learning rate or divergence guard (see ``RESUME_OVERRIDABLE``; a value of ``None`` leaves a setting
    unchanged, except for ``divergence_floor`` / ``divergence_factor``, where ``None`` switches the rule off)."""
    return resumed_trainer(run_dir, callbacks=callbacks, loggers=loggers, model=model, dataset=dataset,
                           **overrides).fit()


def resumed_trainer(run_dir: str | Path, *, callbacks: Sequence[EpochCallback] = (),
                    loggers: Sequence[RunLogger] = (), model: VariationalModel | None = None,
                    dataset: DataSet | None = None, **overrides: Any) -> Trainer:
    """The :class:`Trainer` that :func:`resume` fits (its ``notes`` say what it found in the run directory)."""
    unknown = sorted(set(overrides) - set(RESUME_OVERRIDABLE))
    if unknown:
        raise TypeError(f"resume: cannot override {', '.join(unknown)}; overridable: {', '.join(RESUME_OVERRIDABLE)}")
    config = load_config(run_dir)
    for key, value in overrides.items():
        if value is not None or key in NONE_IS_A_VALUE:
            setattr(config, key, value)
    return Trainer(config, run_dir, callbacks=callbacks, loggers=loggers, model=model, dataset=dataset, resume=True)
