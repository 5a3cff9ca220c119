"""Figures of a run: every logged term against epochs, one panel per term, one line per split (matplotlib, PNG);
and where a figure goes (:func:`figure_path`, :func:`save_figure`), shared with the pictures of :mod:`.pictures`."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

from .run_log import LEADING_COLUMNS, TRAILING_COLUMNS, read_log_rows

FIGURE_NAME = "terms.png"
DEFAULT_FORMAT = "png"


def pyplot():
    """matplotlib.pyplot, with the Agg backend unless an inline (notebook) backend is active: files only, no display.

    (matplotlib >= 3.9 names the notebook backend ``inline``, earlier versions its module path.)"""
    import matplotlib

    backend = matplotlib.get_backend().lower()
    if backend != "agg" and "inline" not in backend:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_path(output: str | Path | None, default: Path) -> Path:
    """The file a figure is written to, exactly (the name printed is the name written).

    ``None``: ``default``. An existing directory, or a name ending in a path separator: ``default``'s file name in
    that directory. A name whose suffix is a format matplotlib writes (``.png``, ``.pdf``, ``.svg``, ...): as given.
    Any other name gets ``.png`` appended (matplotlib would append it silently, so ``--output D`` wrote ``D.png``).
    """
    if output is None:
        return default
    text = os.fspath(output)
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        return path / default.name
    if path.suffix.lower().lstrip(".") in _writable_formats():
        return path
    return path.with_name(f"{path.name}.{DEFAULT_FORMAT}")


def save_figure(figure, path: Path, dpi: int = 110) -> Path:
    """Write ``figure`` to ``path`` (in the format its suffix names; parents created), close it, return ``path``."""
    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, format=path.suffix.lower().lstrip(".") or DEFAULT_FORMAT)
    plt.close(figure)
    return path


def _writable_formats() -> set[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes())


def plot_run(run_dir: str | Path, output: str | Path | None = None, *, terms: Sequence[str] | None = None) -> Path:
    """Draw every term (or the given ``terms``) of ``RUN_DIR/log.csv`` against epoch into a PNG; returns the path
    written (default ``RUN_DIR/terms.png``; see :func:`figure_path` for ``output``)."""
    figure = draw_run(run_dir, terms=terms)
    return save_figure(figure, figure_path(output, Path(run_dir) / FIGURE_NAME))


def draw_run(run_dir: str | Path, *, terms: Sequence[str] | None = None):
    """The matplotlib figure of :func:`plot_run`: one panel per term (titled by it), one line per split."""
    plt = pyplot()
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
