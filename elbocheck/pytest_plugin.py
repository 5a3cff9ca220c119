"""Derivations as tests: ``pytest --elbocheck PATHS`` collects every ``.tex`` and ``.md`` file that carries an
elbocheck model header (the format of ``elbocheck check``) and makes one test item per step.

* a **proven** step passes; a **refuted** one fails with its counterexample (the tables of the instance);
* an **undecided** one is reported as xfail with the reason, or fails with ``--elbocheck-strict``;
* a file that cannot be read (or the math after some steps, or its sidecar) is one failing item with the
  ``FILE:LINE:COLUMN: error: ...`` message;
* a TOML sidecar of the same stem (:mod:`elbocheck.derivations.latex.expected`) gives steps their expected truth:
  then a true step passes when proven, a false step passes when refuted, and a false step that is proven or a true
  step that is refuted fails (a bug in the checker).

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
    """A derivation file: one item per step read, plus one failing item per error."""

    def collect(self):
        from elbocheck.derivations.latex import LatexError, parse_file
        from elbocheck.derivations.latex.expected import match_expectations, read_expectations, sidecar_path

        name = _shown(self)
        try:
            parsed = parse_file(self.path, name)
        except LatexError as error:
            yield ErrorItem.from_parent(self, name="cannot read the file", error=error.format(), line=error.line)
            return
        except Exception as error:  # a bug in the reader: still one clear failing item
            yield ErrorItem.from_parent(self, name="cannot read the file", line=None,
                                        error=f"{name}: error: internal error while reading the derivation "
                                              f"({type(error).__name__}: {error})")
            return
        sidecar = sidecar_path(self.path)
        sidecar_name = str(sidecar_path(name))
        try:
            expectations = match_expectations(sidecar_name, parsed.derivations,
                                              read_expectations(sidecar, sidecar_name))
        except LatexError as error:
            expectations = {}
            yield ErrorItem.from_parent(self, name=f"sidecar {sidecar.name}", error=error.format(), line=None)
        names: set[str] = set()
        for d, derivation in enumerate(parsed.derivations):
            for s, step in enumerate(derivation.steps):
                where = _where(step)
                name = f"{derivation.name} {where}" if len(parsed.derivations) > 1 else where
                while name in names:
                    name += "'"
                names.add(name)
                yield StepItem.from_parent(self, name=name, derivation=derivation, step=step, index=s + 1,
                                           expectation=expectations.get((d, s)))
        if parsed.error is not None:
            where = f"line {parsed.error.line}" if parsed.error.line is not None else "the file"
            yield ErrorItem.from_parent(self, name=f"error at {where}", error=parsed.error.format(),
                                        line=parsed.error.line)


def _shown(node) -> str:
    """The file's path as reports show it: relative to where pytest was started, when it lies below."""
    try:
        return str(node.path.relative_to(node.config.invocation_params.dir))
    except ValueError:
        return str(node.path)


def _where(step) -> str:
    prefix = f"line {step.line}" if step.line is not None else ""
    if step.label and not step.label.startswith("line "):
        return f"{prefix} {step.label}".strip()
    return step.label or prefix


class ErrorItem(pytest.Item):
    """A file, a part of one, or its sidecar that cannot be read: fails with the ``FILE:LINE:COL: error`` message."""

    def __init__(self, *, error: str, line: int | None, **kwargs):
        super().__init__(**kwargs)
        self.error, self.line = error, line

    def runtest(self):
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
        from elbocheck.derivations.time_limit import check_step_in_time

        timeout = self.config.getoption("elbocheck_timeout")
        timeout = DEFAULT_STEP_SECONDS if timeout is None else timeout
        result = check_step_in_time(Checker(), self.derivation.model, self.step, self.index, timeout or None)
        self.result = result
        self.user_properties.append(("verdict", result.verdict))
        expectation = self.expectation
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

    def _report(self, what: str) -> str:
        r, step = self.result, self.step
        lines = [f"{_shown(self)}:{step.line}: {self.derivation.name} {step.label}: {what}",
                 f"  {r.lhs}", f"  {r.relation} {r.rhs}"]
        if r.assumptions:
            lines.append(f"  assuming {'; '.join(r.assumptions)}")
        if self.expectation is not None:
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
