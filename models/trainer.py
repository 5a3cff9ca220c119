"""Training: one code path for CPU and CUDA, checkpoints every epoch, resume, a NaN guard, per-epoch logs.

A run directory holds

* ``config.json`` -- the :class:`TrainConfig` (what to rebuild on ``resume``);
* ``log.csv`` / ``log.jsonl`` -- one row per (epoch, split), see :mod:`.run_log`;
* ``checkpoint.pt`` -- model and optimiser states and RNG states after the last completed epoch (replaced
  atomically, only after an epoch finished with every term finite: the last good checkpoint);
* ``status.json`` -- ``running`` / ``completed`` / ``failed`` (with the message) / ``interrupted``;
* ``tensorboard/`` -- when asked for.

Each epoch: the training steps (one optimiser per parameter group; each group follows the gradient of its own loss,
see :meth:`VariationalModel.losses`), then evaluation of the other splits, then the log rows, then the checkpoint.
A run killed at any point resumes from its checkpoint: log rows of epochs after the checkpoint are dropped first, so
the log ends up with every epoch exactly once. With a seed the run is deterministic on CPU, and a resumed run
continues with the same random numbers as an uninterrupted one (the RNG states are in the checkpoint; batch order
is a function of seed and epoch).

Every term of every step is checked; a NaN or infinity stops the run with :class:`NonFiniteTermError` naming the
term, epoch, split and step, and the last good checkpoint is kept.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from tqdm import tqdm

from .base import VariationalModel
from .data.core import Batch, DataSet, iterate_minibatches
from .data.catalog import DATASETS, load_dataset
from .errors import NonFiniteTermError
from .registry import build_model, check_data_fits, model_class
from .run_log import RunLog

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint.pt"
STATUS_NAME = "status.json"
PROGRESS_TERMS = ("elbo", "objective", "reconstruction")
LABELLED_DATA_HINT = ("digits", "rotated_digits", "swiss_roll", "sprites (label_factor=...)",
                      "dsprites (label_factor=...)", "mnist (labels_path=...)")
DOMAIN_DATA_HINT = ("rotated_digits",)

EpochCallback = Callable[["Trainer", int, list], None]


@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json``)."""

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

    def validate(self) -> None:
        model_class(self.model)  # raises with the valid choices
        if self.data not in DATASETS:
            raise ValueError(f"data: unknown data set {self.data!r}; valid choices: {', '.join(DATASETS)}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or (self.adversary_lr is not None and not self.adversary_lr > 0):
            raise ValueError(f"lr and adversary_lr must be > 0, got {self.lr}, {self.adversary_lr}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(f"max_steps_per_epoch: must be >= 1, got {self.max_steps_per_epoch}")
        resolve_device(self.device)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


class Trainer:
    """Trains one model on one data set into a run directory.

    ``model`` and ``dataset`` may be given ready-made (tests do this to inject faults); otherwise they are built
    from the config. Callbacks run after each epoch's checkpoint as ``callback(trainer, epoch, rows)``.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        *,
        model: VariationalModel | None = None,
        dataset: DataSet | None = None,
        callbacks: Sequence[EpochCallback] = (),
        resume: bool = False,
    ) -> None:
        if model is None:
            config.validate()
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
        self.callbacks = list(callbacks)
        self.device = resolve_device(config.device)
        checkpoint_path = self.run_dir / CHECKPOINT_NAME
        if not resume and checkpoint_path.exists():
            raise FileExistsError(
                f"out: run directory {self.run_dir} already holds a run ({CHECKPOINT_NAME}); resume it with "
                f"--resume {self.run_dir} or choose another --out"
            )
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
        learning_rates = {"model": config.lr, "adversary": config.adversary_lr or config.lr}
        self.optimizers = {group: torch.optim.Adam(params, lr=learning_rates[group])
                           for group, params in self.parameter_groups.items()}
        self.splits = {name: self._on_device(self.dataset.split(name)) for name in self.dataset.splits}
        self.start_epoch = 0
        if resume:
            self.start_epoch = self._load_checkpoint(checkpoint_path)
        else:
            torch.manual_seed(config.seed)  # sampling stream; the model was initialised from the same seed above
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.run_dir / CONFIG_NAME, config.to_json())
        self.log = RunLog(self.run_dir, self.term_names, tensorboard=config.tensorboard)
        self.log.truncate_after(self.start_epoch)

    # ----------------------------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        last_rows: list[dict] = []
        epoch = self.start_epoch
        self._status("running", epoch)
        try:
            for epoch in range(self.start_epoch + 1, self.config.epochs + 1):
                epoch_start = getattr(self.model, "on_epoch_start", None)  # KL warm-up schedules
                if epoch_start is not None:
                    epoch_start(epoch)
                rows = [self._train_epoch(epoch)]
                for split in self.splits:
                    if split != "train":
                        rows.append(self._evaluate_split(split, epoch))
                self._check_parameters(epoch)
                self.log.write(rows)
                self._save_checkpoint(epoch)
                last_rows = rows
                self._print_epoch(rows)
                for callback in self.callbacks:
                    callback(self, epoch, rows)
        except NonFiniteTermError as error:
            kept = self.run_dir / CHECKPOINT_NAME
            located = error.located(
                epoch=error.epoch if error.epoch is not None else epoch,
                split=error.split or "train",
                step=error.step,
                checkpoint=str(kept) if kept.exists() else "none (no epoch completed)",
            )
            self._status("failed", epoch - 1, str(located))
            self.log.close()
            raise located from error
        except BaseException as error:
            self._status("interrupted", self._checkpoint_epoch(), f"{type(error).__name__}: {error}")
            self.log.close()
            raise
        self._status("completed", self.config.epochs)
        self.log.close()
        return TrainResult(self.run_dir, self.config.epochs, last_rows, self.model)

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
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{self.config.epochs}", disable=not self.config.progress,
                   leave=False, dynamic_ncols=True)
        try:
            for step, batch in enumerate(batches, start=1):
                if step > steps:
                    break
                values = self.train_step(batch, epoch, step)
                totals += values * batch.size
                examples += batch.size
                bar.update(1)
                bar.set_postfix(refresh=False, ordered_dict={name: f"{values[self.term_names.index(name)].item():.4g}"
                                 for name in PROGRESS_TERMS if name in self.term_names})
        finally:
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
        # Nearly equal chunks, so that no batch is a single example (the stratified estimator needs two).
        num_batches = max(1, math.ceil(data.size / self.config.batch_size))
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
        path = self.run_dir / CHECKPOINT_NAME
        temporary = path.with_suffix(".pt.tmp")
        torch.save(state, temporary)
        os.replace(temporary, path)  # atomic: a kill leaves either the old or the new checkpoint

    def _load_checkpoint(self, path: Path) -> int:
        if not path.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {path}; the run never completed an epoch")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if tuple(state["term_names"]) != self.term_names:
            raise ValueError(
                f"resume: checkpoint terms {state['term_names']} differ from the model's {self.term_names}"
            )
        self.model.load_state_dict(state["model_state"])
        for group, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizer_states"][group])
        torch.set_rng_state(state["torch_rng_state"])
        if self.device.type == "cuda" and state["cuda_rng_states"]:
            torch.cuda.set_rng_state_all(state["cuda_rng_states"])
        return int(state["epoch"])

    def _checkpoint_epoch(self) -> int:
        path = self.run_dir / CHECKPOINT_NAME
        if not path.is_file():
            return 0
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])

    def _status(self, state: str, epoch: int, message: str = "") -> None:
        _write_json(self.run_dir / STATUS_NAME, {"state": state, "epochs_completed": epoch, "message": message})


# --------------------------------------------------------------------------------------------------------------------
def train(
    model: str,
    data: str,
    run_dir: str | Path | None = None,
    *,
    callbacks: Sequence[EpochCallback] = (),
    **config_fields: Any,
) -> TrainResult:
    """Train model ``model`` on data set ``data`` (fields of :class:`TrainConfig` as keywords) into ``run_dir``."""
    valid = {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "data"}
    unknown = sorted(set(config_fields) - valid)
    if unknown:
        raise TypeError(f"train: unknown argument(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    config = TrainConfig(model=model, data=data, **config_fields)
    return Trainer(config, run_dir, callbacks=callbacks).fit()


RESUME_OVERRIDABLE = ("epochs", "device", "progress", "tensorboard", "amp")


def load_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"resume: no {CONFIG_NAME} in {run_dir} (is it a run directory?)")
    return TrainConfig.from_json(json.loads(path.read_text()))


def resume(run_dir: str | Path, *, callbacks: Sequence[EpochCallback] = (), model: VariationalModel | None = None,
           dataset: DataSet | None = None, **overrides: Any) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint (optionally to more ``epochs``, on another device)."""
    unknown = sorted(set(overrides) - set(RESUME_OVERRIDABLE))
    if unknown:
        raise TypeError(f"resume: cannot override {', '.join(unknown)}; overridable: {', '.join(RESUME_OVERRIDABLE)}")
    config = load_config(run_dir)
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    return Trainer(config, run_dir, callbacks=callbacks, model=model, dataset=dataset, resume=True).fit()
