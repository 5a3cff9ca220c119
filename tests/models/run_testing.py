"""Shared helpers of the training tests: a tiny run config, the log per split, a snapshot of a run directory."""

from __future__ import annotations

from pathlib import Path

from elbocheck.models.run_log import read_log_rows
from elbocheck.models.trainer import TrainConfig
from model_testing import TINY_NETWORK

TINY = {**TINY_NETWORK, "latent_dim": 2}


def tiny_config(**fields) -> TrainConfig:
    """A VAE on 100 digits, 2 steps of 32 per epoch: a few milliseconds per epoch."""
    values = dict(model="vae", data="digits", epochs=4, batch_size=32, lr=3e-3, seed=0, device="cpu",
                  progress=False, max_steps_per_epoch=2, model_options=dict(TINY), data_options={"size": 100})
    values.update(fields)
    return TrainConfig(**values)


def epochs_per_split(run_dir) -> dict[str, list[int]]:
    counts: dict = {}
    for row in read_log_rows(run_dir):
        counts.setdefault(row["split"], []).append(row["epoch"])
    return counts


def snapshot(run_dir) -> dict[str, bytes]:
    """Every file under ``run_dir`` (relative name -> bytes), to show that a refused command changed nothing."""
    root = Path(run_dir)
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}
