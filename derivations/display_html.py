r"""Check results in Jupyter: a table with the steps typeset (``_repr_html_``, ``_repr_latex_``).

One row per step: the step's label and file line, the step itself typeset from its SymPy expressions
(``\(lhs \geq rhs\)``, rendered by the notebook's MathJax), the verdict, and the certificate, the counterexample (its
tables folded in a ``<details>``) or the reason. A :class:`~.checker.StepResult` on its own holds its sides only as
text, so it is shown as text; a :class:`~.checker.DerivationResult` and a LaTeX file's ``CheckedFile`` carry the
expressions and are typeset.

Importing this module attaches the two methods to :class:`~.checker.StepResult` and
:class:`~.checker.DerivationResult` (kept out of :mod:`.checker`, which holds the logic); ``CheckedFile`` defines
them by calling :func:`checked_file_html` and :func:`checked_file_latex`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

import sympy

from .checker import DerivationResult, Step, StepResult

__all__ = [
    "checked_file_html",
    "checked_file_latex",
    "derivation_result_html",
    "derivation_result_latex",
    "step_result_html",
    "step_result_latex",
]

RELATION_LATEX = {"=": "=", "= const": r"\overset{c}{=}", ">=": r"\geq", "<=": r"\leq"}
_COLOURS = {"proven": "#1a7f37", "refuted": "#cf222e", "undecided": "#9a6700"}
_STYLE = ("<style>.elbocheck td, .elbocheck th {text-align: left; vertical-align: top; padding: 2px 8px}"
          ".elbocheck pre {font-size: 85%; margin: 0}</style>")


def _typeset(step: Step | None, result: StepResult) -> str | None:
    """The step as LaTeX (from its expressions), or None when only the text of its sides is known."""
    if step is None:
        return None
    relation = RELATION_LATEX.get(result.relation, result.relation)
    return f"{sympy.latex(step.lhs)} {relation} {sympy.latex(step.rhs)}"


def _where(result: StepResult) -> str:
    label = result.label or str(result.index)
    if result.line is not None and not label.startswith("line "):
        return f"line {result.line}: {label}"
    return label


def _detail_html(result: StepResult) -> str:
    summary = html.escape(result.summary())
    if result.counterexample is not None:
        return (f"{summary}<details><summary>the instance</summary><pre>"
                f"{html.escape(result.counterexample.text)}</pre></details>")
    return summary


def _rows_html(pairs: Iterable[tuple[Step | None, StepResult]]) -> list[str]:
    rows = []
    for step, result in pairs:
        typeset = _typeset(step, result)
        shown = (f"\\({html.escape(typeset)}\\)" if typeset is not None else
                 f"<code>{html.escape(result.lhs)}</code> {html.escape(result.relation)} "
                 f"<code>{html.escape(result.rhs)}</code>")
        if result.assumptions:
            shown += f"<br><small>assuming {html.escape('; '.join(result.assumptions))}</small>"
        colour = _COLOURS.get(result.verdict, "inherit")
        rows.append(f"<tr><td>{html.escape(_where(result))}</td><td>{shown}</td>"
                    f"<td style=\"color: {colour}; font-weight: bold\">{html.escape(result.verdict)}</td>"
                    f"<td>{_detail_html(result)}</td><td>{result.seconds:.2f}</td></tr>")
    return rows


def _table_html(caption: str, rows: Sequence[str], footer: str = "") -> str:
    head = "<tr><th>step</th><th>derivation step</th><th>verdict</th><th>certificate / counterexample / reason</th>" \
           "<th>s</th></tr>"
    return (f"{_STYLE}<table class=\"elbocheck\"><caption>{html.escape(caption)}</caption><thead>{head}</thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{footer}")


def _counts(results: Sequence[StepResult]) -> str:
    counts = {v: sum(r.verdict == v for r in results) for v in ("proven", "refuted", "undecided")}
    return f"{len(results)} steps: {counts['proven']} proven, {counts['refuted']} refuted, " \
           f"{counts['undecided']} undecided"


def _pairs(result: DerivationResult) -> list[tuple[Step | None, StepResult]]:
    steps = result.derivation.steps
    return [(steps[r.index - 1] if 0 < r.index <= len(steps) else None, r) for r in result.steps]


def step_result_html(result: StepResult) -> str:
    return _table_html(f"step {result.index}", _rows_html([(None, result)]))


def derivation_result_html(result: DerivationResult) -> str:
    d = result.derivation
    return _table_html(f"{d.title or d.name}: {_counts(result.steps)}", _rows_html(_pairs(result)))


def checked_file_html(checked) -> str:
    """A LaTeX file's check (``CheckedFile``): one table per derivation, then the reading error if any."""
    parts = [derivation_result_html(r) for r in checked.results]
    if checked.error is not None:
        parts.append(f"<p style=\"color: {_COLOURS['refuted']}\"><code>{html.escape(checked.error.format())}</code>"
                     "</p>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------------ LaTeX

_TEXT_ESCAPES = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "^": r"\^{}", "%": r"\%",
                 "#": r"\#", "&": r"\&", "$": r"\$", "~": r"\~{}"}


def _text(value: str, width: int = 90) -> str:
    value = " ".join(value.split())
    if len(value) > width:
        value = value[: width - 1] + "..."
    return r"\text{" + re.sub(r"[\\{}_^%#&$~]", lambda m: _TEXT_ESCAPES[m.group(0)], value) + "}"


def _rows_latex(pairs: Iterable[tuple[Step | None, StepResult]]) -> list[str]:
    rows = []
    for step, result in pairs:
        typeset = _typeset(step, result)
        shown = typeset if typeset is not None else _text(f"{result.lhs} {result.relation} {result.rhs}")
        rows.append(f"{_text(_where(result))} & {shown} & {_text(result.verdict)} & {_text(result.summary())}")
    return rows


def _array_latex(rows: Sequence[str]) -> str:
    head = r"\text{step} & \text{derivation step} & \text{verdict} & \text{certificate / counterexample / reason}"
    return "$\\begin{array}{llll}" + head + r" \\ \hline " + r" \\ ".join(rows) + r"\end{array}$"


def step_result_latex(result: StepResult) -> str:
    return _array_latex(_rows_latex([(None, result)]))


def derivation_result_latex(result: DerivationResult) -> str:
    return _array_latex(_rows_latex(_pairs(result)))


def checked_file_latex(checked) -> str:
    rows = [row for r in checked.results for row in _rows_latex(_pairs(r))]
    if checked.error is not None:
        rows.append(f"{_text('error')} & {_text(checked.error.format(), 140)} & & ")
    return _array_latex(rows)


StepResult._repr_html_ = step_result_html
StepResult._repr_latex_ = step_result_latex
DerivationResult._repr_html_ = derivation_result_html
DerivationResult._repr_latex_ = derivation_result_latex
