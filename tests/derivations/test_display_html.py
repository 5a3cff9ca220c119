"""Check results in Jupyter: an HTML table with one row per step, the steps typeset from their expressions, the
verdict and the certificate / counterexample / reason; the same as a LaTeX array."""

from html.parser import HTMLParser
from pathlib import Path

import sympy
from elbocheck.derivations import Checker, StepResult, latex
from elbocheck.derivations.library import all_derivations

EXAMPLES = Path(latex.__file__).parents[1] / "examples"


class _Table(HTMLParser):
    """The cells of every row of the tables in an HTML string (text only)."""

    def __init__(self):
        super().__init__()
        self.rows, self.row, self.cell, self.depth = [], None, None, 0

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr":
            self.rows.append(self.row)

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def _rows(html: str) -> list[list[str]]:
    parser = _Table()
    parser.feed(html)
    return parser.rows


def test_a_checked_file_is_a_table_with_the_steps_typeset():
    checked = latex.check_file(EXAMPLES / "condvae_seed001.tex")
    rows = _rows(checked._repr_html_())
    body = [r for r in rows if r[0] != "step"]
    assert len(body) == 3
    steps = [s for d in checked.parsed.derivations for s in d.steps]
    for row, step, result in zip(body, steps, checked.step_results):
        assert row[0] == f"line {result.line}: {result.label}"
        relation = {">=": r"\geq", "=": "=", "<=": r"\leq", "= const": r"\overset{c}{=}"}[result.relation]
        assert row[1].startswith(f"\\({sympy.latex(step.lhs)} {relation} {sympy.latex(step.rhs)}\\)")
        assert row[2] == result.verdict
        assert row[3].startswith(result.summary())
    assert body[0][2] == "refuted" and "the instance" in body[0][3] and "q_phi(z | x, y)" in body[0][3]


def test_html_escapes_what_it_shows():
    result = StepResult(index=1, label="<i>(1)</i>", relation=">=", lhs="log(p(x)) & <b>", rhs="0", verdict="undecided",
                        expected="proven", reason="a < b")
    html = result._repr_html_()
    assert "<b>" not in html and "<i>" not in html
    assert "&lt;b&gt;" in html and "&amp;" in html and "a &lt; b" in html
    (row,) = [r for r in _rows(html) if r[0] != "step"]
    assert row[0] == "<i>(1)</i>" and "log(p(x)) & <b>" in row[1] and row[3] == "a < b"


def test_a_derivation_result_and_a_step_result_render_as_html_and_latex():
    derivation = next(d for d in all_derivations() if d.name == "beta_vae")
    result = Checker().check_derivation(derivation)
    rows = [r for r in _rows(result._repr_html_()) if r[0] != "step"]
    assert len(rows) == len(derivation.steps)
    assert all(row[1].startswith("\\(") and row[1].endswith("\\)") for row in rows)
    latex_table = result._repr_latex_()
    assert latex_table.startswith("$\\begin{array}{llll}") and latex_table.endswith("\\end{array}$")
    assert latex_table.count(r" \\ ") == len(derivation.steps)  # the header row, then one per step
    assert latex_table.count("{") == latex_table.count("}")
    step = result.steps[0]
    assert len([r for r in _rows(step._repr_html_()) if r[0] != "step"]) == 1
    assert "\\text{" + step.verdict + "}" in step._repr_latex_()


def test_latex_text_cells_escape_special_characters():
    from elbocheck.derivations.display_html import _text

    assert _text("a_b & 50% #1 {x} ~ $ \\ ^") == \
        r"\text{a\_b \& 50\% \#1 \{x\} \~{} \$ \textbackslash{} \^{}}"


def test_a_checked_file_with_an_error_shows_it():
    text = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n$$\\log p(x) = \\log p(x)$$\n$$= \\log s(x)$$\n"
    checked = latex.check_parsed(latex.parse_text(text, "e.tex"))
    assert "e.tex:3:" in checked._repr_html_() and "undeclared density" in checked._repr_html_()
    assert "undeclared density" in checked._repr_latex_()
