"""The expected truth of a derivation file's steps, from a TOML sidecar of the same stem (``cdvae.tex`` ->
``cdvae.toml``; the format of :mod:`elbocheck.derivations.corpus`)::

    source = "Paper, section 3, eq. (4)-(7)"

    [[step]]
    at = "(3) -> (4)"          # the step's label, or "line 14" (its file line)
    truth = false              # true: holds in every instance the semantics allows; false: some instance violates it
    why = "q(z|x) does not factorize over z_l, z_u in general"
    derivation = "cdvae"       # optional: which derivation of the file, when the label alone is ambiguous

The truth is decided by mathematics, not by the checker: a false step that is proven, or a true step that is refuted,
is a bug in the checker. Every entry must name exactly one step; a problem in the sidecar is a :class:`LatexError`
with the sidecar's path, line and column.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..checker import Derivation, Step
from .document import LatexError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Expectation:
    """One sidecar entry: the truth of the step it names, and why."""

    at: str
    truth: bool
    why: str
    derivation: str | None
    line: int  # of the entry in the sidecar


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".toml")


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def step_names(step: Step) -> set[str]:
    """What a sidecar's ``at`` may say for a step (compared without whitespace): its label, ``line N``, both."""
    names = {_compact(step.label)} if step.label else set()
    if step.line is not None:
        names |= {f"line{step.line}", _compact(f"line {step.line}: {step.label}")}
    return names


def read_expectations(path: str | Path, name: str | None = None) -> list[Expectation]:
    """The entries of a sidecar file (an empty list when there is none); ``name``: how errors name it."""
    path = Path(path)
    name = str(path) if name is None else name
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LatexError(f"cannot read the sidecar: {error}; expected a UTF-8 TOML file", name) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        line, column = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        raise LatexError(f"the sidecar is not valid TOML: {message}; expected [[step]] tables with at, truth, why",
                         name, line, column) from None
    entries = data.get("step", [])
    if not isinstance(entries, list):
        raise LatexError("'step' must be an array of tables; expected [[step]] tables with at, truth, why", name, 1, 1)
    starts = [number for number, raw in enumerate(text.split("\n"), start=1) if re.match(r"\s*\[\[\s*step\s*\]\]", raw)]
    out = []
    for k, entry in enumerate(entries):
        line = starts[k] if k < len(starts) else 1
        if not isinstance(entry, dict):
            raise LatexError("a step entry is not a table; expected [[step]] with at, truth, why", name, line, 1)
        at, truth, why = entry.get("at"), entry.get("truth"), entry.get("why", "")
        unknown = sorted(set(entry) - {"at", "truth", "why", "derivation"})
        if unknown:
            raise LatexError(f"unknown key '{unknown[0]}' in a [[step]] table; expected at, truth, why, derivation",
                             name, line, 1)
        if not isinstance(at, str) or not at.strip():
            raise LatexError("a [[step]] table without 'at'; expected at = \"(3) -> (4)\" or \"line 14\"", name, line, 1)
        if not isinstance(truth, bool):
            raise LatexError(f"step '{at}': 'truth' must be true or false; expected truth = true or truth = false",
                             name, line, 1)
        if not isinstance(why, str):
            raise LatexError(f"step '{at}': 'why' must be a string; expected why = \"...\"", name, line, 1)
        derivation = entry.get("derivation")
        if derivation is not None and not isinstance(derivation, str):
            raise LatexError(f"step '{at}': 'derivation' must be a string; expected the derivation's name", name, line,
                             1)
        out.append(Expectation(at.strip(), truth, why, derivation, line))
    return out


def match_expectations(path: str | Path, derivations: list[Derivation],
                       entries: list[Expectation]) -> dict[tuple[int, int], Expectation]:
    """Map ``(derivation number, step number)`` (both from 0) to its entry. Raises :class:`LatexError` (at the
    entry's line in the sidecar) for an entry that names no step, several steps, or a step named before."""
    name = str(path)
    found: dict[tuple[int, int], Expectation] = {}
    for entry in entries:
        wanted = _compact(entry.at)
        hits = [(d, s) for d, derivation in enumerate(derivations) for s, step in enumerate(derivation.steps)
                if (entry.derivation is None or entry.derivation == derivation.name)
                and wanted in step_names(step)]
        if not hits:
            scope = f" of derivation '{entry.derivation}'" if entry.derivation else ""
            labels = ", ".join(f"'{step.label}'" for derivation in derivations for step in derivation.steps
                               if entry.derivation in (None, derivation.name))
            raise LatexError(f"step '{entry.at}'{scope} matches no step read from the file; expected a step label "
                             f"such as {labels or '(none were read)'} or 'line N'", name, entry.line, 1)
        if len(hits) > 1:
            where = ", ".join(f"{derivations[d].name} line {derivations[d].steps[s].line}" for d, s in hits)
            raise LatexError(f"step '{entry.at}' matches {len(hits)} steps ({where}); expected one step: add "
                             "derivation = \"NAME\" or use the full label", name, entry.line, 1)
        if hits[0] in found:
            raise LatexError(f"step '{entry.at}' is given twice (also at line {found[hits[0]].line}); expected one "
                             "truth per step", name, entry.line, 1)
        found[hits[0]] = entry
    return found
