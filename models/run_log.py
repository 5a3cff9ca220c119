"""The per-epoch log of a run: one row per (epoch, split) in a long-format CSV and a JSONL file, written and flushed
as each epoch ends, plus optional TensorBoard scalars.

Row fields: ``epoch`` (1-based), ``split`` (``train``, ``validation``, ...), then one column per term of the model
(batch means averaged over the epoch, weighted by batch size; the ``train`` row averages the training steps as they
ran, the other splits are evaluated after the epoch in eval mode without gradients), then ``examples`` (examples
seen) and ``seconds`` (wall time of that split's pass).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable, Mapping

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


class RunLog:
    """Appends rows to the CSV and JSONL logs of a run directory (and to TensorBoard when asked)."""

    def __init__(self, run_dir: str | Path, term_names: Iterable[str], *, tensorboard: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.columns = [*LEADING_COLUMNS, *term_names, *TRAILING_COLUMNS]
        self.csv_path = self.run_dir / CSV_NAME
        self.jsonl_path = self.run_dir / JSONL_NAME
        self._writer = None
        if tensorboard:
            self._writer = open_tensorboard_writer(self.run_dir / "tensorboard")

    def truncate_after(self, epoch: int) -> None:
        """Drop rows of epochs after ``epoch`` (written by a run killed before its checkpoint), creating the files with
        their header where they are missing. A log with other columns is refused, not overwritten."""
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
            kept_csv = [row for row in rows if int(row["epoch"]) <= epoch]
        with self.csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(kept_csv)
        kept_json: list[str] = []
        if self.jsonl_path.is_file():
            for line in self.jsonl_path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if int(record.get("epoch", epoch + 1)) <= epoch:
                    kept_json.append(line)
        self.jsonl_path.write_text("".join(line + "\n" for line in kept_json))

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
        if self._writer is not None:
            for row in rows:
                for key in self.columns[len(LEADING_COLUMNS):]:
                    self._writer.add_scalar(f"{row['split']}/{key}", float(row[key]), int(row["epoch"]))
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _format(value: float | int | str) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return str(value)


def open_tensorboard_writer(log_dir: Path):
    """A TensorBoard ``SummaryWriter``; tensorboard is an optional extra, imported only when asked for."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:  # tensorboard itself missing
        raise ImportError(
            "tensorboard: logging to TensorBoard needs the optional extra: pip install 'elbocheck[tensorboard]'"
        ) from error
    return SummaryWriter(log_dir=str(log_dir))
