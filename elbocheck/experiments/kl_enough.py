"""``elbocheck experiment kl-enough``: is the KL term to a label-conditional prior enough to put the label into w?

The question (project seed 000, after Klys, Snell & Zemel 2018, CSVAE, and Ilse et al. 2020, DIVA): both ELBOs
already hold a KL term to a label-conditional prior, KL(q(w | x, y) || p(w | y)) and KL(q(z_y | x) || p(z_y | y));
why add an auxiliary classifier (DIVA) or an adversary on the other latent (CSVAE)? The answer is a map over the
weights that decide where label information goes, with the boundary the conditional-prior surgery predicts
(:mod:`.kl_enough_predictions`) drawn beside the measured one, and pre-registered paired tests
(:mod:`.kl_enough_preregistration`).

Modules, in the order data flows: :mod:`.kl_enough_settings` (data keys, the grid of arms, presets) ->
:mod:`.kl_enough_runs` (one run: train, measure, write its row; local processes or Ray) ->
:mod:`.kl_enough_measurements` (what is measured) and :mod:`.kl_enough_results` (the CSV) ->
:mod:`.kl_enough_report` (map, tests, figures, report). This module runs the grid, then the report.

Output folder::

    settings.json        the settings (and every data key's run-defining settings) the results were produced with
    results.csv          one row per finished run, appended and flushed as each run ends
    runs/ARM-seedS/      the trainer's run directory (config, checkpoint, logs) and row.json
    timing.json          wall time and machine load of each invocation
    report.md, *.png, *.csv   written from results.csv by :func:`write_kl_enough_report`

Python API: ``run_kl_enough(out_dir, settings)`` with ``settings`` a :class:`Settings` or a preset name
(:data:`PRESETS`), and ``write_kl_enough_report(out_dir)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .kl_enough_results import RESULTS_NAME, read_results
from .kl_enough_runs import load_average, record_timing, run_grid
from .kl_enough_settings import ARMS, DATA, PRESETS, Arm, Settings, preset

__all__ = ["ARMS", "Arm", "DATA", "KLEnoughResult", "PRESETS", "Settings", "preset", "read_results",
           "run_kl_enough", "write_kl_enough_report"]


@dataclass
class KLEnoughResult:
    """What :func:`run_kl_enough` did: the output files, the rows, and how many runs it trained or reused."""

    out_dir: Path
    results_csv: Path
    report: Path | None
    figures: list[Path]
    rows: list[dict]
    runs_trained: int
    runs_skipped: int
    wall_seconds: float
    failures: list[str] = field(default_factory=list)
    runs_recovered: int = 0


def run_kl_enough(out_dir: str | Path, settings: Settings | str = "default", *, progress: bool | None = None,
                  write_report: bool = True) -> KLEnoughResult:
    """Run every (arm, seed) of ``settings`` not already in ``out_dir/results.csv``, appending one row per run as it
    finishes, then write the report and figures from the CSV. A run that fails is reported in ``failures`` and the
    others go on."""
    if isinstance(settings, str):
        settings = preset(settings)
    if not isinstance(settings, Settings):
        raise ValueError(f"settings: expected a Settings or a preset name, got {type(settings).__name__}")
    settings.validate()
    show_progress = settings.progress if progress is None else bool(progress)
    out_dir = Path(out_dir)
    start, load_at_start = time.perf_counter(), load_average()
    outcome = run_grid(out_dir, settings, show_progress=show_progress)
    report, figures = None, []
    if write_report and read_results(out_dir):
        report = write_kl_enough_report(out_dir)
        figures = sorted(out_dir.glob("*.png"))
    wall_seconds = time.perf_counter() - start  # the runs and the report
    record_timing(out_dir, settings, wall_seconds, outcome, load_at_start)
    return KLEnoughResult(out_dir, out_dir / RESULTS_NAME, report, figures, read_results(out_dir), outcome.trained,
                          outcome.skipped, wall_seconds, outcome.failures, outcome.recovered)


def write_kl_enough_report(out_dir: str | Path) -> Path:
    """Write ``report.md``, the figures and the tables from ``out_dir/results.csv`` (:mod:`.kl_enough_report`)."""
    from .kl_enough_report import write_report

    return write_report(Path(out_dir))
