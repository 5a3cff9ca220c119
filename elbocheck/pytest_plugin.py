"""Derivations as tests: ``pytest --elbocheck PATHS`` collects every ``.tex`` and ``.md`` file that carries an
elbocheck model header (the format of ``elbocheck check``) and makes one test item per step.

* a **proven** step passes; a **refuted** one fails with its counterexample (the tables of the instance);
* an **undecided** one is reported as xfail with the reason, or fails with ``--elbocheck-strict``;
* a file that cannot be read (or the math after some steps, or its sidecar) is one failing item with the
  ``FILE:LINE:COLUMN: error: ...`` message;
* a TOML sidecar of the same stem (:mod:`elbocheck.derivations.latex.expected`) gives steps their expected truth:
  then a true step passes when proven, a false step passes when refuted, and a false step that is proven or a true
  step that is refuted fails (a bug in the checker); so does a step read with another relation than the sidecar's,
  a step that the sidecar says must be an error but is judged, and a sidecar entry that names no step read;
* ``--elbocheck-xfail-unread``: what the reader does not read (a file, the math after an error, a sidecar entry
  without its step, a step read with another relation) is xfail instead, for corpora written ahead of the reader;
  contradicted truths still fail.

Each step runs under the time limit of ``--elbocheck-timeout`` (default: that of ``elbocheck check``). The plugin is
registered through the ``pytest11`` entry point and does nothing without ``--elbocheck``; it imports the checker
(SymPy) only then.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

SUFFIXES = (".tex", ".md")
_MARKDOWN = (".md", ".markdown")


def pytest_addoption(parser):
    group = parser.getgroup("elbocheck", "derivations written in LaTeX, one test per step")
    group.addoption("--elbocheck", action="store_true",
                    help="collect .tex and .md files with an elbocheck model header; one test per step")
    group.addoption("--elbocheck-strict", action="store_true",
                    help="an undecided step fails (default: reported as xfail)")
    group.addoption("--elbocheck-xfail-unread", action="store_true",
                    help="a file, line or sidecar entry that the reader does not read (yet) is xfail instead of a "
                         "failure; verdicts that contradict the sidecar still fail")
    group.addoption("--elbocheck-timeout", type=float, default=None, metavar="SECONDS",
                    help="time limit of each step (default: that of 'elbocheck check'; 0: none)")


def pytest_collect_file(file_path: Path, parent):
    if not parent.config.getoption("elbocheck") or file_path.suffix.lower() not in SUFFIXES:
        return None
    if not _has_header(file_path):
        return None
    return DerivationFile.from_parent(parent, path=file_path)


def _has_header(path: Path) -> bool:
    from elbocheck.derivations.latex.document import has_header

    try:
        data = path.read_bytes()
    except OSError:
        return False
    if b"elbocheck" not in data.lower():  # cheap test first
        return False
    return has_header(data.decode("utf-8", errors="replace"), path.suffix.lower() in _MARKDOWN)


class DerivationFailure(Exception):
    """A step judged against what was expected of it: the message is the whole report."""


class DerivationFile(pytest.File):
    """A derivation file: one item per step read, one per error, one per sidecar entry that names no step read."""

    def collect(self):
        from elbocheck.derivations.latex import LatexError, parse_file, place
        from elbocheck.derivations.latex.expected import Matched, match_expectations, read_expectations, sidecar_path

        name = _shown(self)
        sidecar, sidecar_name = sidecar_path(self.path), str(sidecar_path(name))
        try:
            entries = read_expectations(sidecar, sidecar_name)
        except LatexError as error:
            entries = []
            yield ErrorItem.from_parent(self, name=f"sidecar {sidecar.name}", error=error.format(), line=None)
        reading_error = None
        try:
            parsed = parse_file(self.path, name)
            derivations = parsed.derivations
            reading_error = parsed.error
        except LatexError as error:
            derivations, reading_error = [], error
        except Exception as error:  # a bug in the reader: still one clear failing item
            derivations = []
            reading_error = LatexError(f"internal error while reading the derivation ({type(error).__name__}: "
                                       f"{error})", name)
        matched = match_expectations(sidecar_name, derivations, entries) if derivations else Matched({}, entries, [])
        for conflict in matched.conflicts:
            yield ErrorItem.from_parent(self, name=f"sidecar {sidecar.name} line {conflict.line}",
                                        error=conflict.format(), line=None)
        names: set[str] = set()
        for d, derivation in enumerate(derivations):
            for s, step in enumerate(derivation.steps):
                where = place(step)
                item_name = f"{derivation.name} {where}" if len(derivations) > 1 else where
                while item_name in names:
                    item_name += "'"
                names.add(item_name)
                yield StepItem.from_parent(self, name=item_name, derivation=derivation, step=step, index=s + 1,
                                           expectation=matched.by_step.get((d, s)))
        expected_here = None
        if reading_error is not None:
            expected_here = next((e for e in matched.unmatched if e.error is not None and e.file_line is not None
                                  and e.file_line == reading_error.line), None)
            where = f"line {reading_error.line}" if reading_error.line is not None else "the file"
            yield ErrorItem.from_parent(self, name=f"error at {where}", error=reading_error.format(),
                                        line=reading_error.line, unread=True, expected=expected_here)
        for entry in matched.unmatched:
            if entry is expected_here:
                continue
            if entry.error is not None:
                message = (f"{sidecar_name}:{entry.line}:1: error: step '{entry.at}' must be reported as an error "
                           f"({entry.error}); expected an error there, but the reader reported none")
                unread = False
            else:
                stopped = f" (reading stopped: {reading_error.format()})" if reading_error is not None else ""
                message = (f"{sidecar_name}:{entry.line}:1: error: step '{entry.at}' was not read from the file"
                           f"{stopped}; expected a step with that label, or 'line N'")
                unread = True
            yield ErrorItem.from_parent(self, name=f"sidecar {entry.at}", error=message, line=None, unread=unread)


def _shown(node) -> str:
    """The file's path as reports show it: relative to where pytest was started, when it lies below."""
    try:
        return str(node.path.relative_to(node.config.invocation_params.dir))
    except ValueError:
        return str(node.path)


class ErrorItem(pytest.Item):
    """A file, a part of one, or its sidecar that cannot be read: fails with the ``FILE:LINE:COL: error`` message
    (passes when the sidecar expects that error; xfail with ``--elbocheck-xfail-unread`` when it is something the
    reader did not read)."""

    def __init__(self, *, error: str, line: int | None, unread: bool = False, expected=None, **kwargs):
        super().__init__(**kwargs)
        self.error, self.line, self.unread, self.expected = error, line, unread, expected

    def runtest(self):
        if self.expected is not None:
            return  # the sidecar says this step must be an error, and it is
        if self.unread and self.config.getoption("elbocheck_xfail_unread"):
            pytest.xfail(f"not read: {self.error}")
        raise DerivationFailure(self.error)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, DerivationFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, (self.line - 1 if self.line else None), f"{self.path.name}: {self.name}"


class StepItem(pytest.Item):
    """One step of a derivation, judged when the test runs."""

    def __init__(self, *, derivation, step, index: int, expectation=None, **kwargs):
        super().__init__(**kwargs)
        self.derivation, self.step, self.index, self.expectation = derivation, step, index, expectation
        self.result = None

    def runtest(self):
        from elbocheck.derivations.checker import Checker
        from elbocheck.derivations.latex.steps import DEFAULT_STEP_SECONDS
        from elbocheck.derivations.latex.steps import LoweredChecker
        from elbocheck.derivations.time_limit import check_step_in_time

        timeout = self.config.getoption("elbocheck_timeout")
        timeout = DEFAULT_STEP_SECONDS if timeout is None else timeout
        # the step is judged with what its reading implies, as `elbocheck check` does (derivations/latex/lowering.py)
        result = check_step_in_time(LoweredChecker(Checker()), self.derivation.model, self.step, self.index,
                                    timeout or None)
        self.result = result
        self.user_properties.append(("verdict", result.verdict))
        expectation = self.expectation
        if expectation is not None and expectation.error is not None:
            if result.verdict in ("proven", "refuted"):
                raise DerivationFailure(self._report(f"{result.verdict}, but the sidecar says this step must be an "
                                                     "error"))
            return  # undecided with its reason: reported, never judged
        if expectation is not None and expectation.relation is not None and expectation.relation != result.relation:
            message = self._report(f"read as '{result.relation}', but the sidecar's truth is for "
                                   f"'{expectation.relation}'")
            if self.config.getoption("elbocheck_xfail_unread"):
                pytest.xfail(message.splitlines()[0])
            raise DerivationFailure(message)
        if result.verdict == "undecided":
            if self.config.getoption("elbocheck_strict"):
                raise DerivationFailure(self._report("undecided (--elbocheck-strict)"))
            pytest.xfail(f"undecided: {result.reason}")
        if expectation is None:
            if result.verdict == "refuted":
                raise DerivationFailure(self._report("refuted"))
            return
        if expectation.truth and result.verdict == "refuted":
            raise DerivationFailure(self._report("refuted, but the sidecar says the step is TRUE (a checker bug, or "
                                                 "a wrong sidecar)"))
        if not expectation.truth and result.verdict == "proven":
            raise DerivationFailure(self._report("proven, but the sidecar says the step is FALSE (an unsound proof, "
                                                 "or a wrong sidecar)"))
        without = (result.without_assumptions or {}).get("verdict")
        if expectation.truth_without_assumptions is True and without == "refuted":
            raise DerivationFailure(self._report("refuted without its assumption, but the sidecar says the step is "
                                                 "TRUE without it"))

    def _report(self, what: str) -> str:
        r, step = self.result, self.step
        lines = [f"{_shown(self)}:{step.line}: {self.derivation.name} {step.label}: {what}",
                 f"  {r.lhs}", f"  {r.relation} {r.rhs}"]
        if r.assumptions:
            lines.append(f"  assuming {'; '.join(r.assumptions)}")
        if self.expectation is not None and self.expectation.error is not None:
            lines.append(f"  sidecar: error = {self.expectation.error}")
        elif self.expectation is not None:
            lines.append(f"  sidecar: truth = {str(self.expectation.truth).lower()}: {self.expectation.why}")
        if r.verdict == "proven":
            lines.append(f"  proof: {r.certificate}")
        elif r.counterexample is not None:
            lines.append("  counterexample:")
            lines.append(textwrap.indent(r.counterexample.text, "    "))
        elif r.reason:
            lines.append(f"  reason: {r.reason}")
        return "\n".join(lines)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, DerivationFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        line = self.step.line
        return self.path, (line - 1 if line else None), f"{self.path.name}: {self.name}"
