"""The adversarial corpus (issue 9): no false step proven, no true step refuted.

The truths in ``derivations/corpus/adversarial.py`` and ``derivations/corpus/adversarial/*.toml`` were decided by
mathematics before the checker ran (git history); a disagreement is a checker bug, never a reason to edit a truth.
"Undecided" contradicts neither truth. An entry recorded as an ``error`` (a step the semantics give no meaning) must
be reported as an error: a LaTeX error at its line, or the step undecided with the reason, never proven or refuted.
A step with an assumption is checked again without it; where the corpus gives the truth without the assumption
(``TRUTH_WITHOUT_ASSUMPTIONS``, ``truth_without_assumptions`` in a sidecar), that second verdict is held to it too.

The corpus-integrity tests at the end check the corpus itself (size, balance, one truth per step).
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest

from elbocheck.derivations import check
from elbocheck.derivations.corpus import CORPUS_DIR
from elbocheck.derivations.corpus.adversarial import STEPS, TRUTH_WITHOUT_ASSUMPTIONS
from elbocheck.derivations.latex import LatexError, check_file, parse_file

LATEX_DIR = CORPUS_DIR / "adversarial"
LATEX_FILES = sorted(p for p in LATEX_DIR.iterdir() if p.suffix in (".tex", ".md"))


def contradiction(truth: bool, verdict: str) -> bool:
    """A verdict contradicts a truth when it proves a false step or refutes a true one."""
    return (verdict == "proven" and not truth) or (verdict == "refuted" and truth)


def sidecar(path: Path) -> dict:
    """The TOML file beside a LaTeX corpus file: ``source`` and ``[[step]]`` tables (``at``, ``truth``/``error``)."""
    with open(path.with_suffix(".toml"), "rb") as handle:
        return tomllib.load(handle)


def second_verdict(result) -> str:
    """The verdict of the check without the assumptions ("" when there was none)."""
    return (result.without_assumptions or {}).get("verdict", "")


def matches(at: str, label: str, line: int | None) -> bool:
    """``at`` names a step by its label (``(3) -> (4)``) or by the file line it ends on (``line 14``)."""
    if at == label:
        return True
    if at.startswith("line "):
        return line == int(at.split()[1])
    return False


# ------------------------------------------------------------------------------------------------ verdicts


def api_problems(entry) -> list[str]:
    """What the checker gets wrong on one API entry: a contradicted truth, or a crash (a well-formed step must get a
    verdict, "undecided" with a reason at worst). Empty when nothing is wrong."""
    try:
        result = check(entry.model, entry.lhs, entry.relation, entry.rhs, assumptions=entry.assumptions)
    except Exception as error:  # reported with the others instead of hiding the rest of the topic
        return [f"{entry.name}: the checker raised {type(error).__name__}: {error}"]
    problems = []
    if contradiction(entry.truth, result.verdict):
        problems.append(f"{entry.name}: truth {entry.truth} ({entry.why}); checker {result.verdict}: "
                        f"{result.summary()}")
    truth = TRUTH_WITHOUT_ASSUMPTIONS.get(entry.name)
    if truth is not None and contradiction(truth, second_verdict(result)):
        problems.append(f"{entry.name} without its assumption: truth {truth}; checker {second_verdict(result)}: "
                        f"{result.summary()}")
    return problems


TOPICS = sorted({s.topic for s in STEPS})


@pytest.mark.parametrize("topic", TOPICS)
def test_api_entries_are_not_contradicted(topic):
    problems = [p for entry in STEPS if entry.topic == topic for p in api_problems(entry)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", LATEX_FILES, ids=[p.name for p in LATEX_FILES])
def test_latex_entries_are_not_contradicted(path):
    expected = sidecar(path)["step"]
    parse_error: LatexError | None = None
    try:
        checked = check_file(path)
        parse_error = checked.error
        results = checked.step_results
    except LatexError as error:  # fatal: nothing could be read
        parse_error, results = error, []
    problems = []
    for entry in expected:
        found = [r for r in results if matches(entry["at"], r.label, r.line)]
        if "error" in entry:
            at_error = parse_error is not None and matches(entry["at"], "", parse_error.line)
            judged = [r.verdict for r in found if r.verdict in ("proven", "refuted")]
            if judged or not (at_error or found):
                problems.append(f"{entry['at']}: expected an error ({entry['error']}); checker: "
                                f"{judged or 'no error reported there'}")
            continue
        if not found:
            problems.append(f"{entry['at']}: not judged (file error: {parse_error})")
        for r in found:
            if contradiction(entry["truth"], r.verdict):
                problems.append(f"{entry['at']}: truth {entry['truth']} ({entry['why']}); checker {r.verdict}: "
                                f"{r.summary()}")
            if "truth_without_assumptions" in entry and contradiction(entry["truth_without_assumptions"],
                                                                      second_verdict(r)):
                problems.append(f"{entry['at']} without the assumption: truth {entry['truth_without_assumptions']}; "
                                f"checker {second_verdict(r)}: {r.summary()}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------------ the corpus


def test_the_api_corpus_is_large_balanced_and_named():
    assert len(STEPS) >= 70
    names = Counter(s.name for s in STEPS)
    assert not [n for n, k in names.items() if k > 1]
    truths = Counter(s.truth for s in STEPS)
    assert min(truths.values()) >= 0.4 * len(STEPS)
    for entry in STEPS:
        assert entry.why and entry.topic and entry.relation in ("=", ">=", "<=", "=const")
    with_assumptions = {s.name for s in STEPS if s.assumptions}
    assert set(TRUTH_WITHOUT_ASSUMPTIONS) == with_assumptions


@pytest.mark.parametrize("path", LATEX_FILES, ids=[p.name for p in LATEX_FILES])
def test_every_latex_entry_has_one_truth_or_error_and_a_reason(path):
    data = sidecar(path)
    assert data["source"]
    for entry in data["step"]:
        assert entry["at"]
        assert ("truth" in entry) != ("error" in entry), entry
        assert isinstance(entry.get("truth", True), bool)
        assert isinstance(entry.get("truth_without_assumptions", True), bool)
        assert entry.get("why") or entry.get("error"), entry


@pytest.mark.parametrize("path", LATEX_FILES, ids=[p.name for p in LATEX_FILES])
def test_every_step_the_reader_finds_has_an_entry(path):
    """The reader may stop early at an error (a checker bug the verdict test reports), but no step it reads is
    left without a truth."""
    entries = sidecar(path)["step"]
    try:
        parsed = parse_file(path)
    except LatexError:
        return
    for derivation in parsed.derivations:
        for step in derivation.steps:
            assert any(matches(e["at"], step.label, step.line) for e in entries), (path.name, step.label)


def test_the_latex_corpus_has_enough_steps():
    entries = [e for p in LATEX_FILES for e in sidecar(p)["step"]]
    assert 3 <= len(LATEX_FILES) <= 5
    assert sum("truth" in e for e in entries) >= 12
