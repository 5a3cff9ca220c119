"""Figures of a run: every logged term against epochs, one panel per term, one line per split (matplotlib, PNG)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from .run_log import LEADING_COLUMNS, TRAILING_COLUMNS, read_log_rows

FIGURE_NAME = "terms.png"


def plot_run(run_dir: str | Path, output: str | Path | None = None, *, terms: Sequence[str] | None = None) -> Path:
    """Draw every term (or the given ``terms``) of ``RUN_DIR/log.csv`` against epoch into a PNG; returns its path
    (default ``RUN_DIR/terms.png``)."""
    figure = draw_run(run_dir, terms=terms)
    import matplotlib.pyplot as plt  # after draw_run, which picks the backend

    path = Path(output) if output is not None else Path(run_dir) / FIGURE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def draw_run(run_dir: str | Path, *, terms: Sequence[str] | None = None):
    """The matplotlib figure of :func:`plot_run`: one panel per term (titled by it), one line per split."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")  # files only; no display is needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = read_log_rows(run_dir)
    if not rows:
        raise ValueError(f"RUN_DIR: the log of {run_dir} has no rows yet (no epoch completed)")
    available = [key for key in rows[0] if key not in LEADING_COLUMNS and key not in TRAILING_COLUMNS]
    if terms is None:
        terms = available
    unknown = [name for name in terms if name not in available]
    if unknown:
        raise ValueError(f"terms: {', '.join(unknown)} not in this log; logged terms: {', '.join(available)}")
    splits = list(dict.fromkeys(row["split"] for row in rows))
    columns = min(3, len(terms))
    lines = math.ceil(len(terms) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.0 * lines), squeeze=False)
    for panel, name in zip(axes.flat, terms):
        for split in splits:
            points = sorted((row["epoch"], row[name]) for row in rows if row["split"] == split)
            panel.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=split)
        panel.set_title(name)
        panel.set_xlabel("epoch")
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.ticklabel_format(axis="y", useOffset=False)  # a constant term should read as its value
        panel.grid(alpha=0.3)
    for panel in list(axes.flat)[len(terms):]:
        panel.set_visible(False)
    axes.flat[0].legend()
    figure.suptitle(str(Path(run_dir).resolve().name))
    figure.tight_layout()
    return figure
