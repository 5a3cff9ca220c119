"""elbocheck train MODEL --data DATA: train a model, reporting every term of its objective each epoch.

Examples:
  elbocheck train vae --data digits --epochs 20 --out runs/vae-digits
  elbocheck train beta_tcvae --data sprites --model-option beta=6 --model-option estimator=mss
  elbocheck train diva --data rotated_digits --data-option held_out_domain=75
  elbocheck train vae --data mnist --data-path train-images-idx3-ubyte.gz --labels-path train-labels-idx1-ubyte.gz
  elbocheck train --resume runs/vae-digits --epochs 40      continue a killed, failed or finished run
  elbocheck train --resume runs/vae-digits --lr 1e-4        ... with a smaller learning rate
  elbocheck train vae --data digits --out runs/vae-digits --overwrite   replace the run there
  elbocheck train --list                                    models, data sets and their options

The run directory (--out) holds config.json, log.csv and log.jsonl (one row per epoch and split), the last two
checkpoints (checkpoint.pt, checkpoint.previous.pt) and status.json (running, completed, failed with the reason, or
interrupted). One process at a time trains into it (a lock file names the holder); a new run never replaces another
run's files unless --overwrite is given. A run killed at any point continues with --resume (a corrupt checkpoint
falls back to the one before; a run killed in its first epoch starts over).

Divergence guard: the run stops when the training ELBO per dimension of x falls below --divergence-floor (default
-1e4 nats) or more than --divergence-factor (default 1e3) x max(1, |best|) below its best epoch; "none" switches a
rule off.

Threads: --threads 1 by default. The models are small, so one torch thread per process is fastest on a shared or
small machine (measured on 2 busy cores: see README); 0 uses torch's default (one per core), which can pay off for
large convolutional models on an idle many-core machine.

Exit status:
  0    done
  1    stopped: a term became NaN or infinite (the last good checkpoint is kept)
  2    bad arguments or input files (the message names the argument or the path)
  3    stopped: the ELBO diverged (the last good checkpoint is kept)
  4    the run directory is in use by another training process (its pid is named)
  5    the run directory holds another run, or is a file (nothing in it was changed)
  6    cannot write the run directory (read-only, disk full, no permission); status.json says failed where possible
  7    no checkpoint of the run can be read (the command to start it over is printed)
  130  interrupted (continue with --resume RUN_DIR)
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from typing import Any

EXIT_DONE = 0
EXIT_NON_FINITE = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_BUSY = 4
EXIT_OCCUPIED = 5
EXIT_WRITE_FAILED = 6
EXIT_CHECKPOINT_UNREADABLE = 7
EXIT_INTERRUPTED = 130

# Flags that define a run and cannot change on --resume (attribute name -> flag).
RUN_DEFINING_FLAGS = {
    "batch_size": "--batch-size",
    "seed": "--seed",
    "model_option": "--model-option",
    "data_option": "--data-option",
    "data_path": "--data-path",
    "labels_path": "--labels-path",
    "max_steps_per_epoch": "--max-steps-per-epoch",
    "out": "--out",
}
# Flags --resume may change (attribute name -> the TrainConfig field).
RESUME_FLAGS = {"epochs": "epochs", "device": "device", "amp": "amp", "tensorboard": "tensorboard", "lr": "lr",
                "adversary_lr": "adversary_lr", "divergence_floor": "divergence_floor",
                "divergence_factor": "divergence_factor"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("model", nargs="?", metavar="MODEL", help="the model to train (see --list)")
    parser.add_argument("--data", metavar="DATA", help="the data set (see --list)")
    parser.add_argument("--epochs", type=int, default=None, help="number of epochs (default 10)")
    parser.add_argument("--batch-size", type=int, default=None, help="minibatch size (default 64)")
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam learning rate (default 1e-3; may change on --resume)")
    parser.add_argument("--adversary-lr", type=float, default=None, help="adversary learning rate (default: --lr)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--device", default=None, help="auto (CUDA when present, default), cpu, cuda or cuda:N")
    parser.add_argument("--amp", action="store_true", default=None, help="bfloat16 mixed precision (autocast)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch CPU threads (default 1; 0: torch's default, one per core)")
    parser.add_argument("--out", metavar="RUN_DIR", default=None, help="run directory (default runs/MODEL-DATA-seedS)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out (its config, logs, checkpoints, status, tensorboard)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the run in RUN_DIR")
    parser.add_argument("--model-option", metavar="KEY=VALUE", action="append", default=None,
                        help="a model hyper-parameter, e.g. beta=4 (repeatable)")
    parser.add_argument("--data-option", metavar="KEY=VALUE", action="append", default=None,
                        help="a data-set option, e.g. size=2000 (repeatable)")
    parser.add_argument("--data-path", metavar="FILE", default=None,
                        help="data file for dsprites (.npz) or mnist (idx)")
    parser.add_argument("--labels-path", metavar="FILE", default=None, help="MNIST labels (idx1-ubyte)")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap the training steps per epoch")
    parser.add_argument("--divergence-floor", type=_number_or_none, default=argparse.SUPPRESS, metavar="NATS",
                        help="stop when the training ELBO per dimension falls below this (default -1e4; none: off)")
    parser.add_argument("--divergence-factor", type=_number_or_none, default=argparse.SUPPRESS, metavar="F",
                        help="stop when it falls more than F x max(1, |best|) below its best (default 1e3; none: off)")
    parser.add_argument("--tensorboard", action="store_true", default=None, help="also log to RUN_DIR/tensorboard")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    parser.add_argument("--list", action="store_true", help="list the models and data sets with their options")


def _number_or_none(text: str) -> float | None:
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def parse_option(text: str, flag: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value); the value is a Python literal where it parses as one, else a string."""
    if "=" not in text:
        raise ValueError(f"{flag}: expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise ValueError(f"{flag}: empty key in {text!r}")
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


def _options(items: list[str] | None, flag: str) -> dict[str, Any]:
    return dict(parse_option(item, flag) for item in items or [])


def describe_choices() -> str:
    from elbocheck.models.data.catalog import DATASETS, dataset_options
    from elbocheck.models.registry import MODELS, model_options

    lines = ["models:"]
    for name, cls in MODELS.items():
        options = ", ".join(f"{k}={v!r}" for k, v in model_options(name).items())
        lines.append(f"  {name:13s} {cls.reference}")
        lines.append(f"  {'':13s} terms: {', '.join(cls.TERM_NAMES)}")
        lines.append(f"  {'':13s} options: {options}")
    lines.append("data sets:")
    for name, (_, description) in DATASETS.items():
        options = ", ".join(
            k if v is inspect.Parameter.empty else f"{k}={v!r}" for k, v in dataset_options(name).items()
        )
        lines.append(f"  {name:15s} {description}; options: {options}")
    return "\n".join(lines)


def build_config(args: argparse.Namespace):
    """A :class:`TrainConfig` from the arguments of a new run (not --resume)."""
    from elbocheck.models.data.catalog import DATASETS
    from elbocheck.models.registry import MODELS
    from elbocheck.models.trainer import TrainConfig

    if args.model is None:
        raise ValueError(f"MODEL: a model name is required (or --resume RUN_DIR); valid choices: {', '.join(MODELS)}")
    if args.model not in MODELS:
        raise ValueError(f"MODEL: unknown model {args.model!r}; valid choices: {', '.join(MODELS)}")
    if args.data is None:
        raise ValueError(f"--data: a data set is required; valid choices: {', '.join(DATASETS)}")
    data_options = _options(args.data_option, "--data-option")
    if args.data_path is not None:
        data_options["path"] = args.data_path
    if args.labels_path is not None:
        data_options["labels_path"] = args.labels_path
    fields = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "adversary_lr": args.adversary_lr,
        "seed": args.seed,
        "device": args.device,
        "amp": args.amp,
        "max_steps_per_epoch": args.max_steps_per_epoch,
        "tensorboard": args.tensorboard,
    }
    fields = {key: value for key, value in fields.items() if value is not None}
    for name in ("divergence_floor", "divergence_factor"):  # None is a value here: the rule switched off
        if hasattr(args, name):
            fields[name] = getattr(args, name)
    config = TrainConfig(
        model=args.model,
        data=args.data,
        model_options=_options(args.model_option, "--model-option"),
        data_options=data_options,
        progress=not args.no_progress,
        **fields,
    )
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    """Train (or resume); print one line per error, prefixed ``elbocheck train: error:``, and return the exit code
    documented in the module docstring."""
    if args.list:
        print(describe_choices())
        return EXIT_DONE
    trainer, printed = None, 0
    try:
        trainer = _trainer(args)
        _print_notes(trainer.notes)
        printed = len(trainer.notes)
        result = trainer.fit()
    except Exception as error:  # noqa: BLE001 - classified below; unknown errors are re-raised
        code = exit_code(error)
        if code is None:
            raise
        prefix = "stopped: " if code in (EXIT_NON_FINITE, EXIT_DIVERGED) else ""
        print(f"elbocheck train: error: {prefix}{_one_line(error)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        where = trainer.run_dir if trainer is not None else (args.resume or "RUN_DIR")
        print(f"elbocheck train: interrupted; continue with: elbocheck train --resume {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if trainer is not None:
            _print_notes(trainer.notes[printed:])
    print(f"done: {result.epochs_completed} epochs in {result.run_dir} (log.csv, log.jsonl, checkpoint.pt)")
    return EXIT_DONE


def _trainer(args: argparse.Namespace):
    """The Trainer for a new run or for --resume, with the thread count set; checks the flags first."""
    import torch

    from elbocheck.models.trainer import Trainer, resumed_trainer

    if args.threads < 0:
        raise ValueError(f"--threads: must be >= 0 (0: torch's default), got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resume is not None:
        given = [flag for attribute, flag in RUN_DEFINING_FLAGS.items() if getattr(args, attribute) is not None]
        if args.overwrite:
            given.append("--overwrite")
        if given:
            raise ValueError(f"--resume: {', '.join(given)} cannot change when resuming a run (only --epochs, --lr, "
                             "--adversary-lr, --device, --amp, --tensorboard, --divergence-floor, "
                             "--divergence-factor, --threads, --no-progress can); to start over, give the run's "
                             "command with --overwrite")
        _check_resume_identity(args)
        overrides = {field: getattr(args, attribute) for attribute, field in RESUME_FLAGS.items()
                     if hasattr(args, attribute)}
        trainer = resumed_trainer(args.resume, progress=not args.no_progress, **overrides)
        print(f"resuming {trainer.config.model} on {trainer.config.data} ({trainer.device}) in {trainer.run_dir} "
              f"after epoch {trainer.start_epoch} of {trainer.config.epochs}")
        return trainer
    config = build_config(args)
    trainer = Trainer(config, args.out, overwrite=args.overwrite)
    print(f"training {config.model} on {config.data} ({trainer.device}) into {trainer.run_dir}")
    return trainer


def exit_code(error: BaseException) -> int | None:
    """The documented exit code of an error (``None``: not a user-facing error, let it propagate)."""
    from elbocheck.models.errors import (CheckpointError, DivergenceError, NonFiniteTermError,
                                         RunDirectoryBusyError, RunDirectoryOccupiedError, RunDirectoryWriteError)

    for kind, code in ((NonFiniteTermError, EXIT_NON_FINITE), (DivergenceError, EXIT_DIVERGED),
                       (RunDirectoryBusyError, EXIT_BUSY), (RunDirectoryOccupiedError, EXIT_OCCUPIED),
                       (RunDirectoryWriteError, EXIT_WRITE_FAILED), (CheckpointError, EXIT_CHECKPOINT_UNREADABLE),
                       ((ValueError, TypeError, KeyError, ImportError, OSError), EXIT_BAD_INPUT)):
        if isinstance(error, kind):
            return code
    return None


def _one_line(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)  # KeyError quotes its text
    if isinstance(error, OSError) and error.filename and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    return " ".join(str(text).split())


def _print_notes(notes) -> None:
    for note in notes:
        print(f"elbocheck train: note: {note}", file=sys.stderr)



def _check_resume_identity(args: argparse.Namespace) -> None:
    """MODEL and --data may be repeated with --resume, but must match the run's."""
    from elbocheck.models.trainer import load_config

    config = load_config(args.resume)
    if args.model is not None and args.model != config.model:
        raise ValueError(f"MODEL: the run in {args.resume} trains {config.model!r}, not {args.model!r}")
    if args.data is not None and args.data != config.data:
        raise ValueError(f"--data: the run in {args.resume} uses {config.data!r}, not {args.data!r}")


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m elbocheck.train_command`` (the same as ``elbocheck train``)."""
    parser = argparse.ArgumentParser(prog="elbocheck train", description=__doc__.split("\n", 1)[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
