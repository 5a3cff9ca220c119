"""The run directory: its lock, the rules that keep one run from clobbering another, atomic files."""

import errno
import json
import multiprocessing
import os
import signal

import pytest

from elbocheck.models.errors import RunDirectoryBusyError, RunDirectoryOccupiedError, RunDirectoryWriteError
from elbocheck.models.run_directory import LOCK_NAME, RunDirectory, RunLock, replace_json, write_error, writing
from elbocheck.models.trainer import Trainer
from run_testing import snapshot, tiny_config

FORK = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
needs_fork = pytest.mark.skipif(FORK is None, reason="needs the fork start method (POSIX)")


def _hold_lock(path, ready, release):
    lock = RunLock(path)
    lock.acquire()
    ready.set()
    release.wait(30)
    lock.release()


def _hold_lock_until_killed(path, ready):
    RunLock(path).acquire()
    ready.set()
    signal.pause()


@needs_fork
def test_a_second_process_is_refused_naming_the_holder_and_the_lock_is_released_after(tmp_path):
    ready, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold_lock, args=(tmp_path, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(RunDirectoryBusyError, match=f"in use by another training process \\(pid {holder.pid}"):
            RunLock(tmp_path).acquire()
        assert RunLock(tmp_path).busy_holder()["pid"] == holder.pid
    finally:
        release.set()
        holder.join(30)
    assert not (tmp_path / LOCK_NAME).exists()  # released and removed
    lock = RunLock(tmp_path)
    assert lock.acquire() is None  # nothing stale
    lock.release()


@needs_fork
def test_a_lock_left_by_a_killed_process_is_taken_over_and_reported(tmp_path):
    ready = FORK.Event()
    holder = FORK.Process(target=_hold_lock_until_killed, args=(tmp_path, ready))
    holder.start()
    assert ready.wait(30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(30)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid  # the file stays behind
    assert RunLock(tmp_path).busy_holder() is None  # but nobody holds it
    directory = RunDirectory(tmp_path)
    directory.open()
    try:
        assert len(directory.notes) == 1
        assert f"took over a stale lock of pid {holder.pid}" in directory.notes[0]
        assert "no longer running" in directory.notes[0]
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        directory.close()


def test_two_trainers_in_one_process_are_refused_too(tmp_path):
    first = Trainer(tiny_config(), tmp_path / "run")
    try:
        with pytest.raises(RunDirectoryBusyError, match="this process"):
            Trainer(tiny_config(), tmp_path / "run")
    finally:
        first.close()
    Trainer(tiny_config(epochs=1), tmp_path / "run").fit()  # free again


def test_a_refused_new_run_changes_nothing_in_the_directory(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(epochs=2), run).fit()
    before = snapshot(run)
    for config, message in ((tiny_config(epochs=2, seed=1), "holds another run"),
                            (tiny_config(epochs=2, model="beta_vae"), "holds another run"),
                            (tiny_config(epochs=2), "already holds this run")):
        with pytest.raises(RunDirectoryOccupiedError, match=message) as caught:
            Trainer(config, run)
        assert "nothing was changed" in str(caught.value)
        assert snapshot(run) == before
    # the same run: the message gives the command that starts it over
    with pytest.raises(RunDirectoryOccupiedError, match="start it over: elbocheck train vae --data digits --epochs 2 "
                                                        ".* --out .* --overwrite$"):
        Trainer(tiny_config(epochs=2), run)


def test_overwrite_replaces_the_previous_run_on_purpose(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(epochs=3), run).fit()
    (run / "notes.txt").write_text("mine")  # not a run file: kept
    trainer = Trainer(tiny_config(epochs=1, seed=1), run, overwrite=True)
    assert any("removed the previous run (vae on digits (seed 0): 3 of 3 epochs, completed)" in note
               for note in trainer.notes)
    trainer.fit()
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    assert [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]] == ["1", "1"]
    assert not (run / "checkpoint.previous.pt").exists() and (run / "notes.txt").read_text() == "mine"


def test_a_run_killed_before_its_first_checkpoint_starts_over_with_the_same_command(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(epochs=1), run).close()  # config.json written, no epoch completed
    (run / "log.csv").write_text("epoch,split\n")
    trainer = Trainer(tiny_config(epochs=1), run)
    assert any("stopped before its first epoch ended; starting it over" in note for note in trainer.notes)
    trainer.fit()


def test_an_out_that_is_a_file_is_refused_before_anything_else(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(RunDirectoryOccupiedError, match=f"out: {file} is a file, not a directory; choose another"):
        Trainer(tiny_config(), file)
    assert file.read_text() == "x"


def test_files_are_replaced_atomically_and_a_failed_write_leaves_no_tmp(tmp_path, monkeypatch):
    path = tmp_path / "status.json"
    replace_json(path, {"a": 1})

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr("pathlib.Path.write_text", full_disk)
    with pytest.raises(OSError):
        replace_json(path, {"a": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]


def test_write_errors_say_what_happened_and_what_to_do():
    cases = {errno.ENOSPC: "No space left on device; free some space", errno.EROFS: "read-only: choose a writable",
             errno.EACCES: "no permission to write there"}
    for number, expected in cases.items():
        error = write_error(OSError(number, os.strerror(number), "/runs/x/checkpoint.pt"), "/runs/x", "saving")
        assert isinstance(error, RunDirectoryWriteError) and error.errno == number
        assert str(error).startswith("cannot write /runs/x/checkpoint.pt while saving: ")
        assert expected.split("; ")[-1] in str(error)
    with pytest.raises(RunDirectoryWriteError, match="cannot write /d while testing: Read-only file system"):
        with writing("/d", "testing"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))


def test_an_empty_lock_file_left_by_a_kill_is_taken_over_and_reported(tmp_path):
    (tmp_path / LOCK_NAME).write_text("")  # killed between creating the file and writing its pid
    directory = RunDirectory(tmp_path)
    directory.open()
    try:
        assert directory.notes == [f"{tmp_path}: took over a stale lock of a process that left no pid (killed as it "
                                   "took the lock)"]
    finally:
        directory.close()
    directory = RunDirectory(tmp_path)  # released cleanly: nothing stale the next time
    directory.open()
    directory.close()
    assert directory.notes == []


def test_resuming_with_another_config_is_refused_naming_the_differences(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(epochs=2), run).fit()
    before = snapshot(run)
    with pytest.raises(RunDirectoryOccupiedError, match=r"resume: the run in .* was started with another config "
                                                        r"\(differing in batch_size, seed\); nothing was changed"):
        Trainer(tiny_config(epochs=3, seed=5, batch_size=16), run, resume=True)
    assert snapshot(run) == before
    Trainer(tiny_config(epochs=3, lr=1e-4), run, resume=True).fit()  # what resume may change, it may change
