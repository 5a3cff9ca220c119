"""Checkpoints: the last two kept, written so that a failure leaves both intact, a corrupt one passed over."""

import errno
import json

import pytest
import torch

from elbocheck.models import checkpoint as checkpoint_module
from elbocheck.models.checkpoint import load_checkpoint, save_checkpoint
from elbocheck.models.errors import CheckpointError, RunDirectoryWriteError
from elbocheck.models.trainer import Trainer, resume
from run_testing import epochs_per_split, snapshot, tiny_config

KEYS = {"model_state": {}, "optimizer_states": {}, "torch_rng_state": torch.zeros(1), "term_names": ["a"]}


def _state(epoch):
    return {"epoch": epoch, **KEYS}


def _epoch_of(path):
    return torch.load(path, weights_only=True)["epoch"]


def test_the_last_two_checkpoints_are_kept(tmp_path):
    for epoch in (1, 2, 3):
        save_checkpoint(tmp_path, _state(epoch))
    assert _epoch_of(tmp_path / "checkpoint.pt") == 3
    assert _epoch_of(tmp_path / "checkpoint.previous.pt") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.previous.pt", "checkpoint.pt"]


def test_without_hard_links_the_previous_checkpoint_is_copied(tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(checkpoint_module.os, "link", no_links)
    for epoch in (1, 2):
        save_checkpoint(tmp_path, _state(epoch))
    assert _epoch_of(tmp_path / "checkpoint.previous.pt") == 1 and _epoch_of(tmp_path / "checkpoint.pt") == 2


def test_a_failed_write_leaves_both_checkpoints_and_no_tmp(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, _state(1))
    save_checkpoint(tmp_path, _state(2))
    real_save = torch.save

    def half_then_full_disk(state, handle):
        real_save(state, handle)
        handle.truncate(100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", half_then_full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(tmp_path, _state(3))
    assert (_epoch_of(tmp_path / "checkpoint.pt"), _epoch_of(tmp_path / "checkpoint.previous.pt")) == (2, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.previous.pt", "checkpoint.pt"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_checkpoint_falls_back_to_the_one_before(tmp_path, damage):
    save_checkpoint(tmp_path, _state(1))
    save_checkpoint(tmp_path, _state(2))
    current = tmp_path / "checkpoint.pt"
    current.write_bytes({"truncated": current.read_bytes()[:300], "garbage": b"not a checkpoint\n",
                         "empty": b""}[damage])
    applied = []
    state, path, notes = load_checkpoint(tmp_path, applied.append)
    assert state["epoch"] == 1 and path.name == "checkpoint.previous.pt" and applied == [state]
    assert len(notes) == 1 and notes[0].startswith(f"{tmp_path}: checkpoint.pt: ")
    expected = "truncated or damaged" if damage == "truncated" else "not a torch checkpoint"
    assert expected in notes[0] and "resumed from checkpoint.previous.pt (epoch 1) instead" in notes[0]


def test_no_readable_checkpoint_is_an_error_listing_each_reason(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    torch.save({"epoch": 1}, tmp_path / "checkpoint.previous.pt")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path, lambda state: None)
    assert str(caught.value) == (f"cannot read any checkpoint in {tmp_path}: checkpoint.pt: not a torch checkpoint "
                                 "(it does not start like one); checkpoint.previous.pt: not a checkpoint of this "
                                 "trainer (expected keys epoch, model_state, optimizer_states, torch_rng_state, "
                                 "term_names)")
    assert load_checkpoint(tmp_path / "nothing", lambda state: None) is None


def test_resume_from_the_previous_checkpoint_gives_the_uninterrupted_result(tmp_path):
    """A corrupt checkpoint.pt costs one epoch, not the run: resumed from the epoch before, the run ends with the
    same weights and the same log as one never interrupted (CPU, fixed seed)."""
    Trainer(tiny_config(epochs=5), tmp_path / "whole").fit()
    cut = tmp_path / "cut"
    Trainer(tiny_config(epochs=3), cut).fit()
    (cut / "checkpoint.pt").write_bytes((cut / "checkpoint.pt").read_bytes()[:-200])  # truncated
    trainer = Trainer(tiny_config(epochs=5), cut, resume=True)
    assert trainer.start_epoch == 2
    assert any("checkpoint.pt: truncated or damaged" in note for note in trainer.notes)
    trainer.fit()
    assert epochs_per_split(cut) == epochs_per_split(tmp_path / "whole")
    whole = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["model_state"]
    resumed = torch.load(cut / "checkpoint.pt", weights_only=True)["model_state"]
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)


def test_no_readable_checkpoint_marks_the_run_failed_with_the_command_to_start_over(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(epochs=2), run).fit()
    (run / "checkpoint.pt").write_bytes(b"garbage")
    (run / "checkpoint.previous.pt").write_bytes(b"")
    logs = {name: (run / name).read_bytes() for name in ("config.json", "log.csv", "log.jsonl")}
    with pytest.raises(CheckpointError, match="start the run over with: elbocheck train vae .* --overwrite$"):
        resume(run, epochs=3)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["failure"] == "checkpoint_unreadable"
    assert "cannot read any checkpoint" in status["message"]
    assert {name: (run / name).read_bytes() for name in logs} == logs  # nothing else touched


def test_a_full_disk_at_the_checkpoint_fails_the_run_keeping_the_last_one(tmp_path, monkeypatch):
    run = tmp_path / "run"
    calls = {"n": 0}
    real_save = torch.save

    def full_at_the_third(state, handle):
        calls["n"] += 1
        if calls["n"] == 3:
            handle.write(b"PK\x03\x04partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(state, handle)

    monkeypatch.setattr(checkpoint_module.torch, "save", full_at_the_third)
    with pytest.raises(RunDirectoryWriteError) as caught:
        Trainer(tiny_config(epochs=4), run).fit()
    monkeypatch.undo()
    assert str(caught.value) == (f"cannot write {run / 'checkpoint.pt'} while saving the checkpoint of epoch 3: No "
                                 "space left on device; free some space (or choose --out on another disk), then "
                                 "resume with --resume")
    status = json.loads((run / "status.json").read_text())
    assert status == {**status, "state": "failed", "failure": "write_error", "epochs_completed": 2,
                      "message": str(caught.value)}
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert _epoch_of(run / "checkpoint.pt") == 2 and _epoch_of(run / "checkpoint.previous.pt") == 1
    before = snapshot(run)
    resume(run)  # space is back: the run completes with every epoch once
    assert epochs_per_split(run)["train"] == [1, 2, 3, 4]
    assert snapshot(run) != before
