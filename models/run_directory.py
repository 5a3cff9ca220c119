"""A run directory: its files, its lock, and the rules that keep one run from clobbering another.

Files (written by :class:`elbocheck.models.trainer.Trainer`):

* ``config.json``: the run's config; ``log.csv``, ``log.jsonl``: the per-epoch rows (:mod:`.run_log`);
* ``checkpoint.pt``, ``checkpoint.previous.pt``: the last two checkpoints (:mod:`.checkpoint`);
* ``status.json``: ``running`` / ``completed`` / ``failed`` / ``interrupted``, the epochs completed, a message (the
  reason of a failure and what to do next) and the pid and host of the process that wrote it;
* ``lock``: present while a process trains into the directory (its pid, host, start time and command line);
* ``tensorboard/``: when asked for.

The rules:

* **One writer at a time.** A process takes an exclusive ``flock`` on ``lock`` before it reads or writes anything
  else and holds it until the run ends. The kernel drops the lock when its process dies, so a ``kill -9`` leaves a
  stale ``lock`` file but never a held lock: the next process takes it over and reports the dead holder (and a
  ``status.json`` still saying ``running``). A second live writer gets :class:`RunDirectoryBusyError` naming the
  holder's pid. (``flock`` is advisory and local: two machines sharing the directory over NFS are not serialised.)
* **A refused command changes nothing.** Every check happens under the lock and before the first write; a new run
  goes only into an empty directory, one that holds the same run stopped before its first epoch ended (started
  over), or one whose run files ``overwrite`` removed on purpose.
* **Every file is replaced atomically** (written to ``NAME.tmp``, then renamed), so a kill leaves the old or the
  new file, never half of one; a ``.tmp`` left by a kill is removed by the next process that takes the lock.
"""

from __future__ import annotations

import errno as errno_codes
import json
import os
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import RunDirectoryBusyError, RunDirectoryOccupiedError, RunDirectoryWriteError
from .run_log import CSV_NAME, JSONL_NAME

CONFIG_NAME = "config.json"
STATUS_NAME = "status.json"
CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_CHECKPOINT_NAME = "checkpoint.previous.pt"
LOCK_NAME = "lock"
TENSORBOARD_DIR = "tensorboard"
TEMPORARY_SUFFIX = ".tmp"
# Everything a run writes (the lock aside): what --overwrite removes and what makes a directory hold a run.
RUN_FILES = (CONFIG_NAME, CSV_NAME, JSONL_NAME, STATUS_NAME, CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME)

try:  # POSIX
    import fcntl

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows: a byte-range lock on the first byte
    import msvcrt

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def write_error(error: OSError, path: Path | str, doing: str) -> RunDirectoryWriteError:
    """A one-line :class:`RunDirectoryWriteError` for an ``OSError`` met while ``doing`` something in ``path``."""
    reason = error.strerror or str(error)
    hint = {
        errno_codes.ENOSPC: "free some space (or choose --out on another disk), then resume with --resume",
        errno_codes.EROFS: "the file system is read-only: choose a writable --out",
        errno_codes.EACCES: "no permission to write there: choose a writable --out",
        errno_codes.EPERM: "no permission to write there: choose a writable --out",
        errno_codes.EDQUOT: "the disk quota is exhausted: free some space, then resume with --resume",
    }.get(error.errno, "fix the cause, then resume with --resume")
    where = error.filename or path
    return RunDirectoryWriteError(f"cannot write {where} while {doing}: {reason}; {hint}", str(path), error.errno)


@contextmanager
def writing(path: Path | str, doing: str) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into a :class:`RunDirectoryWriteError` naming the file and what to do."""
    try:
        yield
    except RunDirectoryWriteError:
        raise
    except OSError as error:
        raise write_error(error, path, doing) from error


def replace_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (``PATH.tmp``, then a rename; the ``.tmp`` is removed when
    the write fails)."""
    temporary = path.with_name(path.name + TEMPORARY_SUFFIX)
    try:
        temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or ``None`` when it is missing or unreadable."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else (or we cannot tell)
    return True


def describe_holder(holder: Mapping[str, Any] | None) -> str:
    if not holder:
        return "a process that left no pid (killed as it took the lock)"
    text = f"pid {holder.get('pid', '?')}"
    if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        text += " (this process: another Trainer on this directory is still open)"
    details = []
    if holder.get("host") and holder["host"] != socket.gethostname():
        details.append(f"host {holder['host']}")
    if holder.get("started"):
        details.append(f"since {holder['started']}")
    if holder.get("command"):
        details.append(f"running {holder['command']}")
    return text + (f", {', '.join(details)}" if details else "")


class RunLock:
    """An exclusive, advisory lock on ``RUN_DIR/lock`` (``flock``), with the holder's pid written in the file."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> dict | None:
        """Take the lock. Returns the record of a stale lock file (left by a holder that died without releasing it),
        else ``None``; raises :class:`RunDirectoryBusyError` when a live process holds the lock."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                created = True
            except FileExistsError:
                try:
                    fd = os.open(self.path, os.O_RDWR)
                except FileNotFoundError:  # released meanwhile
                    continue
                created = False
            if not _try_lock(fd):
                holder = _read_record(fd)
                os.close(fd)
                raise self.busy_error(holder)
            # The holder may have released (and unlinked) the file between our open and our lock: retry on the
            # file now at the path, so that two processes never hold locks on two different files.
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:
                _unlock(fd)
                os.close(fd)
                continue
            # A file we did not create, yet could lock: its holder died without releasing it (a release unlinks it).
            stale = None if created else (_read_record(fd) or {})
            try:
                record = {"pid": os.getpid(), "host": socket.gethostname(),
                          "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]}
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(record).encode(), 0)
            except BaseException:
                _unlock(fd)
                os.close(fd)
                raise
            self._fd = fd
            return stale

    def busy_holder(self) -> dict | None:
        """The record of a live process holding the lock now, else ``None``; reads only (for an early check).

        The file exists only while held or after its holder was killed; a live pid in it is confirmed with a
        momentary shared lock (a pid reused by an unrelated process must not block the directory)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            record = _read_record(fd) or {}
            pid = record.get("pid")
            if isinstance(pid, int) and record.get("host") == socket.gethostname() and not pid_alive(pid):
                return None  # stale: its holder died
            if _try_lock(fd, shared=True):
                _unlock(fd)
                return None
            return record
        finally:
            os.close(fd)

    def busy_error(self, holder: Mapping[str, Any] | None) -> RunDirectoryBusyError:
        return RunDirectoryBusyError(
            f"run directory {self.path.parent} is in use by another training process ({describe_holder(holder)}); "
            "wait for it to finish, or choose another --out",
            str(self.path.parent), None if holder is None else holder.get("pid"))

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)  # unlinked while still locked: see the inode check in acquire
        except OSError:
            pass
        finally:
            _unlock(fd)
            os.close(fd)


def _read_record(fd: int) -> dict | None:
    try:
        raw = os.pread(fd, 4096, 0)
        record = json.loads(raw.decode()) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class RunDirectory:
    """One run directory: the checks before a run, its lock, its status. ``notes`` collects what a user should know
    (a stale lock or ``running`` state taken over, a run started over, files removed), for the caller to show."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = RunLock(self.path)
        self.notes: list[str] = []

    def file(self, name: str) -> Path:
        return self.path / name

    # ---------------------------------------------------------------------------------------------------------------
    def check_usable(self) -> None:
        """Early checks, reading only: not a file, not in use by a live process (both checked again by
        :meth:`open`)."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryOccupiedError(
                f"out: {self.path} is a file, not a directory; choose another --out (a directory, new or empty)",
                str(self.path))
        holder = self.lock.busy_holder()
        if holder is not None:
            raise self.lock.busy_error(holder)

    def open(self) -> None:
        """Create the directory if needed and take its lock; report a stale lock and remove leftover ``.tmp`` files."""
        if self.path.exists() and not self.path.is_dir():
            self.check_usable()
        with writing(self.path, "creating the run directory"):
            self.path.mkdir(parents=True, exist_ok=True)
            stale = self.lock.acquire()
        if stale is not None:
            note = f"{self.path}: took over a stale lock of {describe_holder(stale)}"
            if isinstance(stale.get("pid"), int) and not pid_alive(stale["pid"]):
                note += ", which is no longer running (killed?)"
            self.notes.append(note)
        for name in RUN_FILES:
            leftover = self.file(name + TEMPORARY_SUFFIX)
            if leftover.exists():
                with writing(leftover, "removing a partial file left by a killed run"):
                    leftover.unlink()

    def close(self) -> None:
        self.lock.release()

    # ---------------------------------------------------------------------------------------------------------------
    def run_files(self) -> list[str]:
        return [name for name in RUN_FILES if self.file(name).exists()]

    def has_checkpoint(self) -> bool:
        return self.file(CHECKPOINT_NAME).is_file() or self.file(PREVIOUS_CHECKPOINT_NAME).is_file()

    def read_config(self) -> dict | None:
        return read_json(self.file(CONFIG_NAME))

    def read_status(self) -> dict | None:
        return read_json(self.file(STATUS_NAME))

    def describe_run(self) -> str:
        """``vae on digits (seed 0): 3 of 10 epochs, interrupted`` from config.json and status.json."""
        config, status = self.read_config() or {}, self.read_status() or {}
        text = f"{config.get('model', '?')} on {config.get('data', '?')} (seed {config.get('seed', '?')})"
        if status:
            text += f": {status.get('epochs_completed', '?')} of {config.get('epochs', '?')} epochs, " \
                    f"{status.get('state', '?')}"
        return text

    def stale_running_note(self) -> str | None:
        """Under the lock, a ``status.json`` that says ``running`` was left by a process that died."""
        status = self.read_status()
        if not status or status.get("state") != "running":
            return None
        return (f"{self.path}: status.json said 'running' (pid {status.get('pid', '?')}, "
                f"{status.get('epochs_completed', '?')} epochs completed), but no process holds the run: it stopped "
                "without recording why (killed?)")

    def check_new_run(self, same_run: Callable[[dict], bool], *, restart_command: str) -> str | None:
        """Whether a new run may go here (reading only): ``None`` for an empty directory (or one without run
        files), a note for the same run (``same_run(saved_config)``) stopped before its first checkpoint, which then
        starts over; anything else raises :class:`RunDirectoryOccupiedError` saying what to do instead."""
        present = self.run_files()
        if not present and not self.file(TENSORBOARD_DIR).exists():
            return None
        saved = self.read_config()
        if saved is not None and same_run(saved) and not self.has_checkpoint():
            return f"{self.path}: holds this run, stopped before its first epoch ended; starting it over"
        if saved is not None and same_run(saved):
            raise RunDirectoryOccupiedError(
                f"out: {self.path} already holds this run ({self.describe_run()}); nothing was changed. "
                f"Continue it: elbocheck train --resume {self.path}; or start it over: {restart_command}",
                str(self.path))
        if saved is not None:
            raise RunDirectoryOccupiedError(
                f"out: {self.path} holds another run ({self.describe_run()}); nothing was changed. Choose another "
                f"--out, continue that run with elbocheck train --resume {self.path}, or replace it by adding "
                "--overwrite", str(self.path))
        raise RunDirectoryOccupiedError(
            f"out: {self.path} holds files of a run ({', '.join(present) or TENSORBOARD_DIR}) but no readable "
            f"{CONFIG_NAME}; nothing was changed. Choose another --out, or replace them by adding --overwrite",
            str(self.path))

    def prepare_new_run(self, same_run: Callable[[dict], bool], *, overwrite: bool, restart_command: str) -> None:
        """Under the lock: :meth:`check_new_run`, or with ``overwrite`` remove the previous run's files."""
        if overwrite:
            if self.run_files() or self.file(TENSORBOARD_DIR).exists():
                self.notes.append(f"{self.path}: removed the previous run ({self.describe_run()}) for --overwrite")
                self.remove_run_files()
            return
        note = self.check_new_run(same_run, restart_command=restart_command)
        if note is not None:
            self.notes.append(note)

    def remove_run_files(self) -> None:
        with writing(self.path, "removing the previous run for --overwrite"):
            for name in RUN_FILES:
                self.file(name).unlink(missing_ok=True)
            if self.file(TENSORBOARD_DIR).is_dir():
                shutil.rmtree(self.file(TENSORBOARD_DIR))

    # ---------------------------------------------------------------------------------------------------------------
    def write_config(self, payload: Mapping[str, Any]) -> None:
        with writing(self.file(CONFIG_NAME), f"writing {CONFIG_NAME}"):
            replace_json(self.file(CONFIG_NAME), payload)

    def write_status(self, state: str, epochs_completed: int, message: str = "", **extra: Any) -> None:
        payload = {"state": state, "epochs_completed": epochs_completed, "message": message, "pid": os.getpid(),
                   "host": socket.gethostname(), "updated": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}
        with writing(self.file(STATUS_NAME), f"writing {STATUS_NAME}"):
            replace_json(self.file(STATUS_NAME), payload)

    def record_failure(self, epochs_completed: int, message: str, failure: str) -> bool:
        """Set ``status.json`` to ``failed`` with the reason, even on a full disk (then in place, as the small
        file's old blocks are reused); returns whether it could be written."""
        try:
            self.write_status("failed", epochs_completed, message, failure=failure)
            return True
        except RunDirectoryWriteError:
            pass
        try:
            payload = {"state": "failed", "epochs_completed": epochs_completed, "message": message,
                       "failure": failure, "pid": os.getpid()}
            with self.file(STATUS_NAME).open("r+" if self.file(STATUS_NAME).exists() else "w") as handle:
                handle.truncate(0)
                handle.write(json.dumps(payload) + "\n")
            return True
        except OSError:
            return False
