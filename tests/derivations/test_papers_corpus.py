"""The corpus of published derivations (``derivations/corpus/papers``): the checker's verdicts against the truths.

The truths were decided by mathematics (docs/semantics.md) and committed before the checker ran on the corpus. A
false step proven or a true step refuted is a bug in the checker and fails. A step that the reader does not read,
a step it reads with another relation, and a file that it cannot read at all are reported (a warning, a skip), not
failures of the verdict test; the coverage test requires every step to be read, except in the files of
:data:`UNREADABLE`, whose headers declare what the semantics gives no meaning (each with why; strict: a file that
becomes readable must leave the list).
"""

from __future__ import annotations

import functools
import re
import tomllib
import warnings
from pathlib import Path

import pytest

from elbocheck.derivations.corpus import CORPUS_DIR
from elbocheck.derivations.latex import LatexError, check_file

PAPERS = CORPUS_DIR / "papers"
FILES = sorted(p for p in PAPERS.iterdir() if p.suffix in (".tex", ".md") and p.name != "README.md")
RELATIONS = ("=", ">=", "<=", "=const")

#: files the reader rejects at their header, and why (the header error names the clause and the section of
#: docs/semantics.md)
UNREADABLE = {
    "nvae_vahdat2020": "factors over prefixes z_{<l} of a vector with a symbolic number of groups L: the engine's "
                       "symbolic vectors are one generic component and the others, with no order among them",
    "vqvae_oord2017": "a discrete latent with K named values, a uniform prior and a deterministic encoder: none has a "
                      "meaning in the semantics (free factors with full support, any number of values)",
}


def sidecar(path: Path) -> dict:
    return tomllib.loads(path.with_suffix(".toml").read_text(encoding="utf-8"))


def contradiction(verdict: str, truth: bool) -> bool:
    """A verdict that contradicts the truth: a false step proven, a true step refuted ("undecided" never does)."""
    return (verdict == "proven" and not truth) or (verdict == "refuted" and truth)


def test_the_corpus_holds_at_least_25_derivations():
    assert len(FILES) >= 25, [p.name for p in FILES]


def test_the_unreadable_files_are_files_of_the_corpus():
    assert set(UNREADABLE) <= {p.stem for p in FILES}


def test_every_sidecar_belongs_to_a_derivation():
    stems = {p.stem for p in FILES}
    orphans = [p.name for p in PAPERS.glob("*.toml") if p.stem not in stems]
    assert not orphans


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_derivation_has_its_source_header_and_complete_truths(path):
    text = path.read_text(encoding="utf-8")
    assert "Source:" in text, f"{path.name}: no source comment"
    assert any(line.lstrip("%<!- ").startswith("elbocheck model") for line in text.splitlines()), \
        f"{path.name}: no elbocheck model header"
    data = sidecar(path)
    for key in ("source", "header_additions"):
        assert isinstance(data.get(key), str) and data[key].strip(), f"{path.name}: no '{key}'"
    steps = data.get("step")
    assert steps, f"{path.name}: no [[step]]"
    labels = [s.get("at") for s in steps]
    assert len(set(labels)) == len(labels), f"{path.name}: a step label appears twice"
    for step in steps:
        where = f"{path.name}, step {step.get('at')!r}"
        assert isinstance(step.get("at"), str) and step["at"].strip(), where
        assert step.get("relation") in RELATIONS, where
        assert isinstance(step.get("truth"), bool), where
        assert isinstance(step.get("why"), str) and step["why"].strip(), where
        assert isinstance(step.get("without_assumptions", False), bool), where
        for tag in re.findall(r"\(([^()]+)\)", step["at"]):
            assert f"\\tag{{{tag}}}" in text or f"({tag})" in text, f"{where}: no line tagged ({tag}) in the file"


@functools.lru_cache(maxsize=None)
def judged(path: Path) -> tuple[list[str], list[str], str | None]:
    """(contradictions, notes, why the file cannot be read): the checker's verdicts on ``path`` against its truths."""
    truths = {step["at"]: step for step in sidecar(path)["step"]}
    try:
        checked = check_file(path)
    except LatexError as error:
        return [], [], str(error)
    results = {result.label: result for result in checked.step_results}
    wrong, notes = [], []
    for label, step in truths.items():
        result = results.get(label)
        if result is None:
            notes.append(f"{label}: not read")
            continue
        if result.relation.replace(" ", "") != step["relation"]:
            notes.append(f"{label}: read as '{result.relation}', the truth is for '{step['relation']}'")
            continue
        if contradiction(result.verdict, step["truth"]):
            wrong.append(f"{label}: {result.verdict}, but the step is {step['truth']} ({step['why']})")
        without = result.without_assumptions
        if without and "without_assumptions" in step and contradiction(without["verdict"], step["without_assumptions"]):
            wrong.append(f"{label} without its assumption: {without['verdict']}, but the step is then "
                         f"{step['without_assumptions']}")
    notes += [f"{label}: read, but the corpus gives no truth" for label in results if label not in truths]
    if checked.error is not None:
        notes.append(f"reading stopped: {checked.error}")
    return wrong, notes, None


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_no_verdict_contradicts_the_truth(path):
    """No false step proven, no true step refuted; what is not read is reported (a warning), not a failure."""
    wrong, notes, unreadable = judged(path)
    if unreadable is not None:
        pytest.skip(f"the reader cannot read {path.name} yet: {unreadable}")
    if notes:
        warnings.warn(f"{path.name}: " + "; ".join(notes), stacklevel=1)
    assert not wrong, f"{path.name}: " + "; ".join(wrong)


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=UNREADABLE[p.stem])) if p.stem in UNREADABLE else p
    for p in FILES], ids=lambda p: p.stem)
def test_every_step_is_read_as_written(path):
    """Every step with a truth is read, with its label and relation (the reader's coverage of the papers)."""
    _, notes, unreadable = judged(path)
    assert unreadable is None, f"the reader cannot read {path.name}: {unreadable}"
    assert not notes, f"{path.name}: " + "; ".join(notes)
