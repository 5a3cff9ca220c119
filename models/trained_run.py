"""A trained model back from its run directory: the config, the data set it was trained on, the last checkpoint.

Used by the commands that look at a finished (or interrupted) run without training it further: ``elbocheck plot``
(pictures of the latents) and ``elbocheck metrics`` (disentanglement scores). Nothing in the run directory is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .base import VariationalModel
from .data.catalog import load_dataset
from .data.core import DataSet
from .registry import build_model
from .trainer import CHECKPOINT_NAME, CONFIG_NAME, TrainConfig


@dataclass(frozen=True)
class TrainedRun:
    """The model (in eval mode, on the CPU, weights of the last completed epoch), its data set and config."""

    run_dir: Path
    config: TrainConfig
    model: VariationalModel
    dataset: DataSet
    epoch: int

    @property
    def name(self) -> str:
        return self.config.model


def load_trained_run(run_dir: str | Path) -> TrainedRun:
    """Rebuild the model of ``run_dir`` from ``config.json`` and load the weights of ``checkpoint.pt``.

    Raises ``FileNotFoundError`` (no such directory, no config, no checkpoint) or ``ValueError`` (an unreadable
    config or checkpoint, or a checkpoint that does not fit the configured model), each naming the file.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"RUN_DIR: no {CONFIG_NAME} in {run_dir} (is it a run directory of 'elbocheck train'?)")
    try:
        config = TrainConfig.from_json(json.loads(config_path.read_text()))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{config_path}: not a readable run config ({error})") from None
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if not checkpoint_path.is_file():
        raise FileNotFoundError(
            f"RUN_DIR: no {CHECKPOINT_NAME} in {run_dir}: the run has not completed an epoch yet (train or resume it)"
        )
    try:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model_state = state["model_state"]
        epoch = int(state.get("epoch", 0))
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same one-line message
        raise ValueError(f"{checkpoint_path}: not a readable checkpoint ({type(error).__name__}: {error})") from None
    dataset = load_dataset(config.data, **config.data_options)
    model = build_model(config.model, dataset.spec(), **config.model_options)
    try:
        model.load_state_dict(model_state)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise ValueError(f"{checkpoint_path}: does not fit model {config.model!r} of {CONFIG_NAME} ({first_line})"
                         ) from None
    model.eval()
    return TrainedRun(run_dir, config, model, dataset, epoch)
