"""The per-epoch log of a run: one row per (epoch, split) in a long-format CSV and a JSONL file, written and flushed
as each epoch ends (:class:`RunLog`, one implementation of :class:`~elbocheck.models.loggers.RunLogger`).

Row fields: ``epoch`` (1-based), ``split`` (``train``, ``validation``, ...), then one column per term of the model
(batch means averaged over the epoch, weighted by batch size; the ``train`` row averages the training steps as they
ran, the other splits are evaluated after the epoch in eval mode without gradients), then ``examples`` (examples
seen) and ``seconds`` (wall time of that split's pass).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Iterable, Mapping

from .loggers import RunInfo, RunLogger

CSV_NAME = "log.csv"
JSONL_NAME = "log.jsonl"
LEADING_COLUMNS = ("epoch", "split")
TRAILING_COLUMNS = ("examples", "seconds")


def read_log_rows(run_dir: str | Path) -> list[dict]:
    """The rows of ``RUN_DIR/log.csv`` with numbers parsed (``epoch`` as int, terms as float)."""
    path = Path(run_dir) / CSV_NAME
    if not path.is_file():
        raise FileNotFoundError(f"RUN_DIR: no log at {path} (is {run_dir} a run directory?)")
    rows = []
    with path.open(newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict = {}
            for key, value in raw.items():
                if key == "split":
                    row[key] = value
                elif key == "epoch":
                    row[key] = int(value)
                else:
                    row[key] = float(value) if value not in ("", None) else math.nan
            rows.append(row)
    return rows


class RunLog(RunLogger):
    """The run's own log: appends each epoch's rows to ``log.csv`` and ``log.jsonl`` (flushed as each epoch ends).

    On :meth:`start` the rows of epochs after ``start_epoch`` (written by a run killed before its checkpoint) and
    any row cut short by a kill are dropped, the files are created with their header where missing, and each file is
    replaced atomically (a kill during the rewrite leaves the old file). A log with other columns is refused, not
    overwritten.
    """

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.csv_path: Path | None = None
        self.jsonl_path: Path | None = None

    def start(self, run: RunInfo) -> None:
        self.columns = list(run.columns)
        self.csv_path = Path(run.run_dir) / CSV_NAME
        self.jsonl_path = Path(run.run_dir) / JSONL_NAME
        self.truncate_after(run.start_epoch)

    def log_epoch(self, epoch: int, rows: Iterable[Mapping[str, float | int | str]]) -> None:
        self.write(rows)

    def truncate_after(self, epoch: int) -> None:
        """Keep the complete rows of epochs up to ``epoch``; drop the others."""
        kept_csv: list[dict] = []
        if self.csv_path.is_file():
            with self.csv_path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                rows = list(reader)
            if rows and reader.fieldnames != self.columns:
                # never silently discard another run's log
                raise ValueError(
                    f"{self.csv_path} has columns {reader.fieldnames}, but this model logs {self.columns}; "
                    "use another run directory"
                )
            kept_csv = [row for row in rows if _complete(row, self.columns) and int(row["epoch"]) <= epoch]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(kept_csv)
        replace_text(self.csv_path, text.getvalue())
        kept_json: list[str] = []
        if self.jsonl_path.is_file():
            for line in self.jsonl_path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if isinstance(record, dict) and set(self.columns) <= set(record) and int(record["epoch"]) <= epoch:
                    kept_json.append(line)
        replace_text(self.jsonl_path, "".join(line + "\n" for line in kept_json))

    def write(self, rows: Iterable[Mapping[str, float | int | str]]) -> None:
        rows = list(rows)
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            for row in rows:
                writer.writerow({key: _format(row[key]) for key in self.columns})
            handle.flush()
        with self.jsonl_path.open("a") as handle:
            for row in rows:
                handle.write(json.dumps({key: row[key] for key in self.columns}, allow_nan=True) + "\n")
            handle.flush()


def _complete(row: Mapping[str, str | None], columns: Iterable[str]) -> bool:
    """A CSV row with every column filled and an integer epoch (a row cut short by a kill or a full disk is not)."""
    if any(row.get(column) in (None, "") for column in columns) or None in row:
        return False
    try:
        int(row["epoch"])
    except ValueError:
        return False
    return True


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: into ``PATH.tmp``, then renamed over ``path`` (removed on failure)."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(text, newline="")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _format(value: float | int | str) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return str(value)
