"""``elbocheck train MODEL --data DATA``: train a model, reporting every term of its objective each epoch.

Examples::

    elbocheck train vae --data digits --epochs 20 --out runs/vae-digits
    elbocheck train beta_tcvae --data sprites --model-option beta=6 --model-option estimator=mss
    elbocheck train diva --data rotated_digits --data-option held_out_domain=75
    elbocheck train vae --data mnist --data-path train-images-idx3-ubyte.gz --labels-path train-labels-idx1-ubyte.gz
    elbocheck train --resume runs/vae-digits --epochs 40      # continue a killed or finished run
    elbocheck train --list                                    # models, data sets and their options

Exit status: 0 done, 1 stopped by a non-finite term (last good checkpoint kept), 2 bad arguments,
130 interrupted (resume with --resume RUN_DIR).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from typing import Any

# Flags that define a run and cannot change on --resume (attribute name -> flag).
RUN_DEFINING_FLAGS = {
    "batch_size": "--batch-size",
    "lr": "--lr",
    "adversary_lr": "--adversary-lr",
    "seed": "--seed",
    "model_option": "--model-option",
    "data_option": "--data-option",
    "data_path": "--data-path",
    "labels_path": "--labels-path",
    "max_steps_per_epoch": "--max-steps-per-epoch",
    "out": "--out",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("model", nargs="?", metavar="MODEL", help="the model to train (see --list)")
    parser.add_argument("--data", metavar="DATA", help="the data set (see --list)")
    parser.add_argument("--epochs", type=int, default=None, help="number of epochs (default 10)")
    parser.add_argument("--batch-size", type=int, default=None, help="minibatch size (default 64)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--adversary-lr", type=float, default=None, help="adversary learning rate (default: --lr)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--device", default=None, help="auto (CUDA when present, default), cpu, cuda or cuda:N")
    parser.add_argument("--amp", action="store_true", default=None, help="bfloat16 mixed precision (autocast)")
    parser.add_argument("--out", metavar="RUN_DIR", default=None, help="run directory (default runs/MODEL-DATA-seedS)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the run in RUN_DIR")
    parser.add_argument("--model-option", metavar="KEY=VALUE", action="append", default=None,
                        help="a model hyper-parameter, e.g. beta=4 (repeatable)")
    parser.add_argument("--data-option", metavar="KEY=VALUE", action="append", default=None,
                        help="a data-set option, e.g. size=2000 (repeatable)")
    parser.add_argument("--data-path", metavar="FILE", default=None,
                        help="data file for dsprites (.npz) or mnist (idx)")
    parser.add_argument("--labels-path", metavar="FILE", default=None, help="MNIST labels (idx1-ubyte)")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap the training steps per epoch")
    parser.add_argument("--tensorboard", action="store_true", default=None, help="also log to RUN_DIR/tensorboard")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    parser.add_argument("--list", action="store_true", help="list the models and data sets with their options")


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
    config = TrainConfig(
        model=args.model,
        data=args.data,
        model_options=_options(args.model_option, "--model-option"),
        data_options=data_options,
        progress=not args.no_progress,
        **{key: value for key, value in fields.items() if value is not None},
    )
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    from elbocheck.models.errors import NonFiniteTermError
    from elbocheck.models.trainer import Trainer, resume

    if args.list:
        print(describe_choices())
        return 0
    try:
        if args.resume is not None:
            given = [flag for attribute, flag in RUN_DEFINING_FLAGS.items() if getattr(args, attribute) is not None]
            if given:
                raise ValueError(f"--resume: {', '.join(given)} cannot change when resuming a run "
                                 "(only --epochs, --device, --amp, --tensorboard, --no-progress can)")
            _check_resume_identity(args)
            result = resume(args.resume, epochs=args.epochs, device=args.device, amp=args.amp,
                            tensorboard=args.tensorboard, progress=not args.no_progress)
        else:
            config = build_config(args)
            trainer = Trainer(config, args.out)
            print(f"training {config.model} on {config.data} ({trainer.device}) into {trainer.run_dir}")
            result = trainer.fit()
    except NonFiniteTermError as error:
        print(f"elbocheck train: stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("elbocheck train: interrupted; continue with elbocheck train --resume RUN_DIR", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, KeyError, TypeError) as error:
        print(f"elbocheck train: error: {error}", file=sys.stderr)
        return 2
    print(f"done: {result.epochs_completed} epochs in {result.run_dir} (log.csv, log.jsonl, checkpoint.pt)")
    return 0


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
