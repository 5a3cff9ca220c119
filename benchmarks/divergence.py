"""Does the divergence guard stop the runs that diverge, and leave the others alone?

    python benchmarks/divergence.py                      # the issue's diverging settings and the controls
    python benchmarks/divergence.py --epochs 3 --steps 10

Trains each (model, data set, learning rate) with the models' default sizes, ``--epochs`` epochs of at most
``--steps`` steps, one torch thread, through :class:`elbocheck.models.trainer.Trainer` with the default guard
(floor -1e4 nats per dimension, factor 1e3), and prints a table: how the run ended (completed, diverged, non-finite),
at which epoch, the term named, and the training ELBO per dimension of x of each epoch logged. The diverging
settings are those issue 12 lists (runs that ended "done" with a logged ELBO as low as -1.5e30); the controls train
every model at the default learning rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

DIVERGING = (("beta_tcvae", "digits", 1.0), ("beta_tcvae", "digits", 10.0), ("beta_tcvae", "digits", 100.0),
             ("infovae", "digits", 100.0), ("vae", "digits", 1.0), ("csvae", "swiss_roll", 1.0),
             ("csvae", "swiss_roll", 3.0), ("csvae", "swiss_roll", 5.0), ("cdvae", "digits", 10.0))
CONTROLS = (("vae", "digits", 1e-3), ("beta_tcvae", "digits", 1e-3), ("infovae", "digits", 1e-3),
            ("cdvae", "digits", 1e-3), ("csvae", "swiss_roll", 1e-3), ("diva", "rotated_digits", 1e-3))


def run_case(model: str, data: str, lr: float, args: argparse.Namespace) -> dict:
    from elbocheck.models import DivergenceError, NonFiniteTermError, TrainConfig, Trainer
    from elbocheck.models.run_log import read_log_rows

    data_options = {"images_per_class": 20} if data == "rotated_digits" else {}
    config = TrainConfig(model=model, data=data, epochs=args.epochs, lr=lr, seed=0, device="cpu", progress=False,
                         max_steps_per_epoch=args.steps, data_options=data_options)
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        trainer = Trainer(config, run)
        dimensions = trainer.guard.dimensions
        start = time.perf_counter()
        outcome = {"model": model, "data": data, "lr": lr, "ended": "completed", "epoch": "", "term": ""}
        try:
            trainer.fit()
        except DivergenceError as error:
            outcome.update(ended="diverged", epoch=error.epoch, term=error.term)
        except NonFiniteTermError as error:
            outcome.update(ended="non-finite", epoch=error.epoch, term=error.term)
        outcome["seconds"] = time.perf_counter() - start
        outcome["elbo_per_dim"] = [row["elbo"] / dimensions for row in read_log_rows(run) if row["split"] == "train"]
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20, help="training steps per epoch at most")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {args.epochs} epochs of at most {args.steps} steps, default sizes")
    print("| model | data | lr | ended | epoch | term named | training ELBO per dimension, by epoch |")
    print("| --- | --- | ---: | --- | ---: | --- | --- |")
    wrong = 0
    for kind, cases in (("diverging", DIVERGING), ("control", CONTROLS)):
        for model, data, lr in cases:
            outcome = run_case(model, data, lr, args)
            values = ", ".join(f"{value:.3g}" for value in outcome["elbo_per_dim"])
            print(f"| {model} | {data} | {lr:g} | {outcome['ended']} | {outcome['epoch']} | {outcome['term']} | "
                  f"{values} |", flush=True)
            stopped = outcome["ended"] != "completed"
            wrong += stopped != (kind == "diverging")
    print(f"\n{wrong} case(s) where the guard's outcome differs from the expectation")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
