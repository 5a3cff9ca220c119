"""The reliability suite of training: kill -9 at chosen and random points (the checkpoint write included), two
writers, a read-only and a full disk (real tmpfs file systems where the machine allows), each with its exit code.

Processes are forked (cheap: torch is already imported), trained with one thread so that their results are
bit-identical to the parent's, and killed with SIGKILL at points the child announces (it pauses there) or after a
random delay.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

from elbocheck import train_command
from elbocheck.models import checkpoint as checkpoint_module
from elbocheck.models import load_dataset
from elbocheck.models.errors import RunDirectoryBusyError
from elbocheck.models.run_directory import RunDirectory
from elbocheck.models.run_log import RunLog, read_log_rows
from elbocheck.models.trainer import Trainer
from run_testing import TINY, snapshot, tiny_config

FORK = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
needs_fork = pytest.mark.skipif(FORK is None, reason="needs the fork start method (POSIX)")

TOTAL_EPOCHS = 10
# Where a child pauses (and is killed): inside a training step; after the epoch's log rows, before its checkpoint;
# half-way through writing the checkpoint's .tmp; after the previous checkpoint was rotated, before the new one is
# renamed into place; after the checkpoint, before status.json; and "random": a random delay before the child
# reaches the end of epoch E, wherever that lands (startup, lock, a write, ...).
PHASES = ("step", "logged", "saving", "rotated", "status")


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # children inherit it; results must match bit for bit
    yield
    torch.set_num_threads(threads)


def _pause(paused):
    if paused is not None:
        paused.set()
    time.sleep(120)  # until killed


def _install_pause(phase: str, epoch: int, paused) -> None:
    """In the child only: pause at ``phase`` of ``epoch`` (the functions patched are looked up at call time)."""
    saving = {"epoch": None}
    real_save = checkpoint_module.torch.save

    def save(state, handle):
        saving["epoch"] = state["epoch"]
        if phase == "saving" and state["epoch"] == epoch:
            buffer = io.BytesIO()
            real_save(state, buffer)
            handle.write(buffer.getvalue()[: buffer.tell() // 2])
            handle.flush()
            _pause(paused)
        real_save(state, handle)

    checkpoint_module.torch.save = save
    real_keep = checkpoint_module._keep_as_previous

    def keep(current, previous):
        real_keep(current, previous)
        if phase == "rotated" and saving["epoch"] == epoch:
            _pause(paused)

    checkpoint_module._keep_as_previous = keep
    real_step = Trainer.train_step

    def step(self, batch, epoch_now=0, step_now=0):
        if phase == "step" and epoch_now == epoch and step_now == 2:
            _pause(paused)
        return real_step(self, batch, epoch_now, step_now)

    Trainer.train_step = step
    real_log = RunLog.log_epoch

    def log_epoch(self, epoch_now, rows):
        real_log(self, epoch_now, rows)
        if phase == "logged" and epoch_now == epoch:
            _pause(paused)

    RunLog.log_epoch = log_epoch
    real_status = RunDirectory.write_status

    def write_status(self, state, epochs_completed, message="", **extra):
        if phase in ("status", "random") and state == "running" and epochs_completed == epoch:
            _pause(paused if phase == "status" else None)
        real_status(self, state, epochs_completed, message, **extra)

    RunDirectory.write_status = write_status


def _child(run_dir, config, phase, epoch, paused, resume, dataset=None):
    torch.set_num_threads(1)
    tqdm.set_lock(threading.RLock())  # not the parent's multiprocessing lock: a kill while holding it hangs the parent
    _install_pause(phase, epoch, paused)
    Trainer(config, run_dir, resume=resume, dataset=dataset).fit()


def _kill(process):
    if process.exitcode is None:
        os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert process.exitcode == -signal.SIGKILL, f"the child ended by itself ({process.exitcode})"


def _weights(run_dir):
    return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["model_state"]


def _without_seconds(rows):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


# Rounds of the kill test: 1 in CI (7 kills, a few seconds); ELBOCHECK_KILL_ROUNDS=20 for the figure in README.
KILL_ROUNDS = int(os.environ.get("ELBOCHECK_KILL_ROUNDS", "1"))


@needs_fork
@pytest.mark.parametrize("round_seed", range(KILL_ROUNDS))
def test_kill_9_at_random_points_then_resume_gives_the_uninterrupted_run(tmp_path, one_thread, round_seed):
    """7 kills of one run (seeded): each phase once, two at random delays; after each the next process resumes.
    The end result equals an uninterrupted run bit for bit (weights and log), every epoch logged once, no .tmp left,
    no lock held."""
    config = tiny_config(epochs=TOTAL_EPOCHS)
    dataset = load_dataset(config.data, **config.data_options)  # loaded once; the children inherit it
    start = time.perf_counter()
    Trainer(config, tmp_path / "whole", dataset=dataset).fit()
    seconds_per_epoch = (time.perf_counter() - start) / TOTAL_EPOCHS
    rng = random.Random(12 + round_seed)
    phases = [*PHASES, "random", "random"]
    rng.shuffle(phases)
    epochs = sorted(rng.sample(range(2, TOTAL_EPOCHS), len(phases)))  # rotation needs a checkpoint before
    run = tmp_path / "cut"
    killed_in = []
    for number, (phase, epoch) in enumerate(zip(phases, epochs)):
        paused = FORK.Event()
        child = FORK.Process(target=_child, args=(run, config, phase, epoch, paused, number > 0, dataset),
                             daemon=True)
        child.start()
        try:
            if phase == "random":
                time.sleep(rng.uniform(0, 2 * seconds_per_epoch))
            else:
                assert paused.wait(60), f"the child never reached {phase} of epoch {epoch} ({child.exitcode=})"
        finally:
            _kill(child)
        killed_in.append((phase, epoch, sorted(p.name for p in run.iterdir()) if run.exists() else []))
    assert any(".tmp" in name for _, _, names in killed_in for name in names), "no kill left a partial file"
    left_a_lock = (run / "lock").exists()  # unless the last kill came before the child took the lock
    resumed = Trainer(config, run, resume=True, dataset=dataset)
    assert any("stale lock" in note for note in resumed.notes) == left_a_lock
    resumed.fit()
    assert _without_seconds(read_log_rows(run)) == _without_seconds(read_log_rows(tmp_path / "whole"))
    whole, cut = _weights(tmp_path / "whole"), _weights(run)
    assert all(torch.equal(whole[name], cut[name]) for name in whole)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.previous.pt", "checkpoint.pt", "config.json",
                                                      "log.csv", "log.jsonl", "status.json"]
    assert json.loads((run / "status.json").read_text())["state"] == "completed"


@needs_fork
def test_a_kill_in_the_first_epoch_resumes_by_starting_over(tmp_path, one_thread):
    config = tiny_config(epochs=3)
    Trainer(config, tmp_path / "whole").fit()
    run = tmp_path / "cut"
    paused = FORK.Event()
    child = FORK.Process(target=_child, args=(run, config, "logged", 1, paused, False), daemon=True)
    child.start()
    try:
        assert paused.wait(60)
    finally:
        _kill(child)
    assert not (run / "checkpoint.pt").exists() and [row["epoch"] for row in read_log_rows(run)] == [1, 1]
    assert train_command.main(["--resume", str(run), "--no-progress"]) == 0
    assert _without_seconds(read_log_rows(run)) == _without_seconds(read_log_rows(tmp_path / "whole"))


def _run_args(run, *extra):
    options = [f"--model-option={key}={value}" for key, value in TINY.items()]
    return ["vae", "--data", "digits", "--data-option", "size=100", "--batch-size", "32", "--max-steps-per-epoch",
            "2", "--device", "cpu", "--no-progress", "--out", str(run), *options, *extra]


@needs_fork
def test_two_writers_the_second_is_refused_naming_the_first_and_changes_nothing(tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    paused = FORK.Event()
    first = FORK.Process(target=_child, args=(run, tiny_config(epochs=4), "step", 2, paused, False), daemon=True)
    first.start()
    try:
        assert paused.wait(60)
        before = snapshot(run)
        with pytest.raises(RunDirectoryBusyError, match=f"pid {first.pid}"):
            Trainer(tiny_config(epochs=4, seed=1), run)
        for argv in (_run_args(run, "--seed", "1"), _run_args(run, "--overwrite"), ["--resume", str(run)],
                     ["--resume", str(run), "--epochs", "9"]):
            assert train_command.main(argv) == 4, argv
            error = capsys.readouterr().err
            assert error == (f"elbocheck train: error: run directory {run} is in use by another training process "
                             f"(pid {first.pid}, since {json.loads((run / 'lock').read_text())['started']}, running "
                             f"{json.loads((run / 'lock').read_text())['command']}); wait for it to finish, or "
                             "choose another --out\n")
        assert snapshot(run) == before
    finally:
        _kill(first)
    assert train_command.main(["--resume", str(run)]) == 0  # the first run, taken over after its kill
    notes = capsys.readouterr().err
    assert f"took over a stale lock of pid {first.pid}" in notes
    assert f"status.json said 'running' (pid {first.pid}, 1 epochs completed)" in notes


def test_a_read_only_run_directory_is_a_write_error_exit_6(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop root (the tmpfs test below mounts a read-only "
                    "file system instead)")
    run = tmp_path / "run"
    assert train_command.main(_run_args(run, "--epochs", "1")) == 0
    capsys.readouterr()
    before = snapshot(run)
    run.chmod(0o555)
    try:
        assert train_command.main(["--resume", str(run), "--epochs", "2"]) == 6
        error = capsys.readouterr().err
        assert error.startswith(f"elbocheck train: error: cannot write {run}") and error.count("\n") == 1
        assert "no permission to write there: choose a writable --out" in error
        assert train_command.main(_run_args(run / "new", "--epochs", "1")) == 6
    finally:
        run.chmod(0o755)
    assert snapshot(run) == before


def test_a_full_disk_while_logging_fails_the_run_and_resume_drops_the_cut_row(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real_write = RunLog.write

    def full_in_epoch_3(self, rows):
        rows = list(rows)
        if rows[0]["epoch"] == 3:
            with self.csv_path.open("a") as handle:
                handle.write("3,train,-12")  # a row cut short
            raise OSError(28, "No space left on device", str(self.csv_path))
        real_write(self, rows)

    monkeypatch.setattr(RunLog, "write", full_in_epoch_3)
    assert train_command.main(_run_args(run, "--epochs", "4")) == 6
    error = capsys.readouterr().err
    assert error == (f"elbocheck train: error: cannot write {run / 'log.csv'} while logging epoch 3: No space left on "
                     "device; free some space (or choose --out on another disk), then resume with --resume\n")
    assert json.loads((run / "status.json").read_text())["failure"] == "write_error"
    monkeypatch.undo()
    assert train_command.main(["--resume", str(run), "--no-progress"]) == 0
    assert [row["epoch"] for row in read_log_rows(run) if row["split"] == "train"] == [1, 2, 3, 4]


def _namespaces_available() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespaces_available(),
                    reason="needs Linux user and mount namespaces (unshare --user --map-root-user --mount) to mount "
                           "small tmpfs file systems without privileges")
def test_real_read_only_and_full_tmpfs_file_systems(tmp_path):
    """Runs tmpfs_scenarios.py in a private mount namespace: a 4 MiB tmpfs remounted read-only, and a 1 MiB tmpfs
    filled until the next checkpoint cannot fit."""
    script = Path(__file__).with_name("tmpfs_scenarios.py")
    completed = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", sys.executable, str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])

    read_only = result["read_only"]
    assert read_only["first"]["code"] == 0
    for attempt in ("resume", "new_run"):
        code, error = read_only[attempt]["code"], read_only[attempt]["stderr"]
        assert code == 6, error
        assert error.startswith("elbocheck train: error: cannot write ") and error.count("\n") == 1
        assert "Read-only file system; the file system is read-only: choose a writable --out" in error
    assert read_only["unchanged"]

    full = result["full_disk"]
    assert full["first"]["code"] == 0 and full["checkpoint_bytes"] > 2 * full["free_bytes"]
    assert full["resume"]["code"] == 6, full["resume"]["stderr"]
    assert full["resume"]["stderr"] == (
        f"elbocheck train: error: cannot write {full['run']}/checkpoint.pt while saving the checkpoint of epoch 3: "
        "No space left on device; free some space (or choose --out on another disk), then resume with --resume\n")
    assert full["status"]["state"] == "failed" and full["status"]["failure"] == "write_error"
    assert full["status"]["epochs_completed"] == 2
    assert not [name for name in full["files"] if name.endswith(".tmp")]
    assert full["checkpoint_epochs"] == [2, 1]
    assert full["after_freeing"]["code"] == 0 and full["epochs_logged"] == [1, 2, 3, 4]
