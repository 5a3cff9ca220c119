"""Rendering checker results: a plain-text table and the JSON shape shared by ``verify`` and ``check``."""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import Iterable

from elbocheck.derivations.checker import DerivationResult


def results_json(results: Iterable[DerivationResult]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=2, default=str)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def results_table(results: Iterable[DerivationResult], verbose: bool = False, show_expected: bool = True,
                  show_seconds: bool = True, width: int | None = None) -> str:
    """One row per step: derivation, step, relation, verdict, rule/certificate or counterexample, seconds.

    ``show_seconds=False`` and a fixed ``width`` make the output reproducible (for notebooks and doctests)."""
    width = width or max(100, shutil.get_terminal_size((160, 20)).columns)
    rows = []
    details = []
    for result in results:
        for step in result.steps:
            verdict = step.verdict
            if show_expected and not step.matches:
                verdict += f" (expected {step.expected})"
            where = step.label or str(step.index)
            if step.line is not None and not step.label:
                where = f"line {step.line}"
            rows.append((result.derivation.name, where, step.relation, verdict, step.summary(), f"{step.seconds:.2f}"))
            if verbose and step.counterexample is not None:
                details.append(f"{result.derivation.name} / {where}: {step.note or ''}\n"
                               + textwrap.indent(step.counterexample.text, "    "))
    if not show_seconds:
        rows = [row[:-1] for row in rows]
    headers = ("derivation", "step", "rel", "verdict", "rule / certificate / counterexample", "s")[: len(rows[0]) if rows else 6]
    fixed = [min(28, max([len(headers[0])] + [len(r[0]) for r in rows])),
             min(44, max([len(headers[1])] + [len(r[1]) for r in rows])), 7,
             max([len(headers[3])] + [len(r[3]) for r in rows]), 0, 6][: len(headers)]
    fixed[4] = max(30, width - sum(fixed) - 2 * len(fixed))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, fixed)).rstrip()]
    lines.append("  ".join("-" * w for w in fixed))
    for row in rows:
        cells = [_clip(c, w) for c, w in zip(row, fixed)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, fixed)).rstrip())
    if details:
        lines.append("")
        lines.append("Counterexamples (tables rounded to 3 decimals for display; values computed from the exact tables):")
        lines.extend(details)
    return "\n".join(lines)
