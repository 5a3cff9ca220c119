"""Read-only and full-disk scenarios on real tmpfs file systems, for tests/models/test_reliability.py.

Run inside a private mount namespace (``unshare --user --map-root-user --mount python tmpfs_scenarios.py DIR``): it
mounts small tmpfs file systems under DIR (they vanish with the namespace), trains into them through
``elbocheck train`` (in this process), and prints one JSON object with what happened; the test judges it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import subprocess
import sys
from pathlib import Path

import torch

from elbocheck import train_command
from elbocheck.models.run_log import read_log_rows

TINY = ["--model-option=hidden_dim=16", "--model-option=num_hidden_layers=1", "--model-option=architecture=mlp",
        "--model-option=latent_dim=2", "--data", "digits", "--data-option", "size=100", "--batch-size", "32",
        "--max-steps-per-epoch", "2", "--device", "cpu", "--no-progress"]


def mount(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)


def cli(*argv: str) -> dict:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = train_command.main(list(argv))
    return {"code": code, "stderr": stderr.getvalue()}


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_only(base: Path) -> dict:
    disk = base / "read-only"
    mount(disk, "size=4m")
    run = disk / "run"
    first = cli("vae", *TINY, "--epochs", "2", "--out", str(run))
    before = files(disk)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    return {"first": first, "resume": cli("--resume", str(run), "--epochs", "3", "--no-progress"),
            "new_run": cli("vae", *TINY, "--epochs", "1", "--out", str(disk / "new")),
            "unchanged": files(disk) == before}


def full_disk(base: Path) -> dict:
    disk = base / "full"
    mount(disk, "size=1m")
    run = disk / "run"
    first = cli("vae", *TINY, "--epochs", "2", "--out", str(run))
    checkpoint_bytes = (run / "checkpoint.pt").stat().st_size
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:  # fill the disk ...
        try:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    free_bytes = checkpoint_bytes // 3  # ... then free less than half a checkpoint (logs and status still fit)
    with filler.open("r+b") as handle:
        handle.truncate(filler.stat().st_size - free_bytes)
    resume = cli("--resume", str(run), "--epochs", "4", "--no-progress")
    status = json.loads((run / "status.json").read_text())
    listing = sorted(p.name for p in run.iterdir())
    epochs = [torch.load(run / name, weights_only=True)["epoch"]
              for name in ("checkpoint.pt", "checkpoint.previous.pt")]
    filler.unlink()
    after = cli("--resume", str(run), "--epochs", "4", "--no-progress")
    return {"run": str(run), "first": first, "checkpoint_bytes": checkpoint_bytes, "free_bytes": free_bytes,
            "resume": resume, "status": status, "files": listing, "checkpoint_epochs": epochs,
            "after_freeing": after,
            "epochs_logged": [row["epoch"] for row in read_log_rows(run) if row["split"] == "train"]}


if __name__ == "__main__":
    torch.set_num_threads(1)
    folder = Path(sys.argv[1])
    print(json.dumps({"read_only": read_only(folder), "full_disk": full_disk(folder)}))
