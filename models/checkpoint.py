"""Checkpoints of a run: the last two are kept, each written so that a kill or a full disk never leaves a broken one.

Saving epoch k: the state goes to ``checkpoint.pt.tmp`` (flushed and ``fsync``-ed), the current ``checkpoint.pt``
(epoch k-1) becomes ``checkpoint.previous.pt`` (a hard link renamed into place, or a copy where links are not
supported), then the new file is renamed over ``checkpoint.pt``. Every step is atomic, so at any instant both names
hold complete checkpoints; a failed write removes its ``.tmp`` and leaves both as they were.

Loading tries ``checkpoint.pt``, then ``checkpoint.previous.pt``: a truncated or garbage file (a disk error, a copy
cut short) falls back to the one before, and says so.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import CheckpointError
from .run_directory import CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME, TEMPORARY_SUFFIX

Loaded = tuple[dict[str, Any], Path, list[str]]  # (state, the file it came from, notes)
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
REQUIRED_KEYS = ("epoch", "model_state", "optimizer_states", "torch_rng_state", "term_names")


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``run_dir/checkpoint.pt``, keeping the one it replaces as ``checkpoint.previous.pt``."""
    current = run_dir / CHECKPOINT_NAME
    temporary = current.with_name(current.name + TEMPORARY_SUFFIX)
    try:
        with temporary.open("wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the rename makes it the checkpoint
        if current.exists():
            _keep_as_previous(current, run_dir / PREVIOUS_CHECKPOINT_NAME)
        os.replace(temporary, current)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return current


def _keep_as_previous(current: Path, previous: Path) -> None:
    temporary = previous.with_name(previous.name + TEMPORARY_SUFFIX)
    temporary.unlink(missing_ok=True)
    try:
        try:
            os.link(current, temporary)  # no data written: works on a full disk
        except OSError:
            shutil.copyfile(current, temporary)  # file systems without hard links
        os.replace(temporary, previous)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_checkpoint(run_dir: Path, apply: Callable[[dict[str, Any]], None]) -> Loaded | None:
    """Read the newest readable checkpoint of ``run_dir`` and ``apply`` it (load it into the model and optimisers).

    Returns ``(state, path, notes)``, ``notes`` saying which unreadable checkpoint was passed over, or ``None`` when
    the directory has no checkpoint. A checkpoint that cannot be read, lacks a key, or that ``apply`` rejects (e.g.
    another model's) is passed over; when none is left, :class:`CheckpointError` lists each one's reason."""
    problems: list[str] = []
    for path in (run_dir / CHECKPOINT_NAME, run_dir / PREVIOUS_CHECKPOINT_NAME):
        if not path.is_file():
            continue
        try:
            with path.open("rb") as handle:
                if handle.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
                    raise ValueError("not a torch checkpoint (it does not start like one)")
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
                raise ValueError(f"not a checkpoint of this trainer (expected keys {', '.join(REQUIRED_KEYS)})")
            apply(state)
        except Exception as error:  # noqa: BLE001 - any unreadable file is passed over, with its reason
            problems.append(f"{path.name}: {_reason(error)}")
            continue
        notes = [f"{run_dir}: {problem}; resumed from {path.name} (epoch {int(state['epoch'])}) instead"
                 for problem in problems]
        return state, path, notes
    if problems:
        raise CheckpointError(f"cannot read any checkpoint in {run_dir}: {'; '.join(problems)}", str(run_dir))
    return None


def _reason(error: Exception) -> str:
    """The first sentence of the error (torch appends long advice about ``weights_only`` that does not apply)."""
    text = " ".join(str(error).split())
    text = text.split(". ")[0].rstrip(".")[:160]
    if isinstance(error, ValueError) and text.startswith(("not a torch checkpoint", "not a checkpoint", "its terms")):
        return text
    return f"truncated or damaged ({type(error).__name__}{': ' + text if text else ''})"
