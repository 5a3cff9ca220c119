"""The expected truth of a derivation file's steps, from a TOML sidecar of the same stem (``cdvae.tex`` ->
``cdvae.toml``; the format of :mod:`elbocheck.derivations.corpus`)::

    source = "Paper, section 3, eq. (4)-(7)"

    [[step]]
    at = "(3) -> (4)"          # the step's label, or "line 14": every step that ends on file line 14
    truth = true               # true: holds in every instance the semantics allows; false: some instance violates it
    why = "q(z|x) factorizes over z_l, z_u by the assumption"
    relation = "="             # optional: the relation the truth is for (=, >=, <=, =const)
    without_assumptions = false  # optional (or truth_without_assumptions): the truth without the header's assumption
    derivation = "cdvae"       # optional: only the steps of that derivation of the file

    [[step]]
    at = "line 20"
    error = "why the semantics give this step no meaning"   # instead of truth: it must be reported as an error

The truth is decided by mathematics, not by the checker: a false step that is proven, or a true step that is refuted,
is a bug in the checker. Problems in the sidecar itself (not TOML, a missing truth, an unknown key) are a
:class:`LatexError` with the sidecar's path, line and column.
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
    """One sidecar entry: the truth of the steps it names (or the error they must give), and why."""

    at: str
    truth: bool | None  # None for an error entry
    why: str
    derivation: str | None
    line: int  # of the entry in the sidecar
    error: str | None = None  # the step must be reported as an error (never proven or refuted), with this reason
    relation: str | None = None  # the relation the truth is for
    truth_without_assumptions: bool | None = None

    @property
    def file_line(self) -> int | None:
        """N for ``at = "line N"``."""
        m = re.fullmatch(r"line\s*(\d+)", self.at.strip())
        return int(m.group(1)) if m else None


_KEYS = {"at", "truth", "why", "derivation", "error", "relation", "without_assumptions", "truth_without_assumptions"}
_RELATIONS = {"=": "=", "=const": "= const", ">=": ">=", "<=": "<="}


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

        def problem(message: str, line: int = line) -> LatexError:
            return LatexError(message, name, line, 1)

        if not isinstance(entry, dict):
            raise problem("a step entry is not a table; expected [[step]] with at, truth, why")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise problem(f"unknown key '{unknown[0]}' in a [[step]] table; expected {', '.join(sorted(_KEYS))}")
        at = entry.get("at")
        if not isinstance(at, str) or not at.strip():
            raise problem("a [[step]] table without 'at'; expected at = \"(3) -> (4)\" or \"line 14\"")
        truth, error, why = entry.get("truth"), entry.get("error"), entry.get("why", "")
        if error is None and not isinstance(truth, bool):
            raise problem(f"step '{at}': 'truth' must be true or false; expected truth = true or truth = false "
                          "(or error = \"why\" for a step that must be an error)")
        if error is not None and (truth is not None or not isinstance(error, str)):
            raise problem(f"step '{at}': 'error' is a string and excludes 'truth'; expected one of them")
        if not isinstance(why, str):
            raise problem(f"step '{at}': 'why' must be a string; expected why = \"...\"")
        without = entry.get("without_assumptions", entry.get("truth_without_assumptions"))
        if without is not None and not isinstance(without, bool):
            raise problem(f"step '{at}': 'without_assumptions' must be true or false; expected a truth")
        relation = entry.get("relation")
        if relation is not None and (not isinstance(relation, str) or relation.replace(" ", "") not in _RELATIONS):
            raise problem(f"step '{at}': unknown relation {relation!r}; expected =, >=, <= or =const")
        derivation = entry.get("derivation")
        if derivation is not None and not isinstance(derivation, str):
            raise problem(f"step '{at}': 'derivation' must be a string; expected the derivation's name")
        out.append(Expectation(at.strip(), truth, why or error or "", derivation, line, error,
                               _RELATIONS[relation.replace(" ", "")] if relation else None, without))
    return out


@dataclass
class Matched:
    """Sidecar entries against the steps read: the entry of each step, the entries that name no step read, and the
    conflicts (a step named by two entries)."""

    by_step: dict[tuple[int, int], Expectation]
    unmatched: list[Expectation]
    conflicts: list[LatexError]


def match_expectations(path: str | Path, derivations: list[Derivation], entries: list[Expectation]) -> Matched:
    """Map ``(derivation number, step number)`` (both from 0) to its entry. ``line N`` names every step that ends on
    file line N, a label every step with that label (whitespace aside), within ``derivation`` when it is given."""
    name = str(path)
    matched = Matched({}, [], [])
    for entry in entries:
        wanted = _compact(entry.at)
        hits = [(d, s) for d, derivation in enumerate(derivations) for s, step in enumerate(derivation.steps)
                if (entry.derivation is None or entry.derivation == derivation.name) and wanted in step_names(step)]
        if not hits:
            matched.unmatched.append(entry)
        for hit in hits:
            if hit in matched.by_step:
                matched.conflicts.append(LatexError(
                    f"step '{entry.at}' names a step that the entry at line {matched.by_step[hit].line} names too; "
                    "expected one entry per step", name, entry.line, 1))
                continue
            matched.by_step[hit] = entry
    return matched
