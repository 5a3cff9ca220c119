"""Reading LaTeX derivations: the header, the notation, the chain of lines, and clear errors for bad input."""

import pytest
import sympy

from elbocheck.derivations import latex
from elbocheck.derivations.expressions import KL, Density, Expectation, MutualInformation, density
from elbocheck.derivations.latex import LatexError

VAE = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n"


def parse(body: str, header: str = VAE, markdown: bool = False, name: str = "t.tex"):
    return latex.parse_text(header + body, name, markdown=markdown)


def steps(body: str, header: str = VAE, markdown: bool = False):
    parsed = parse(body, header, markdown)
    assert parsed.error is None, parsed.error
    return [s for d in parsed.derivations for s in d.steps]


def verdicts(body: str, header: str = VAE, markdown: bool = False):
    parsed = parse(body, header, markdown)
    assert parsed.error is None, parsed.error
    return [s.verdict for s in latex.check_parsed(parsed).step_results]


def error_of(body: str, header: str = VAE, markdown: bool = False, name: str = "t.tex") -> LatexError:
    try:
        parsed = parse(body, header, markdown, name)
    except LatexError as error:
        return error
    assert parsed.error is not None, "expected an error"
    return parsed.error


def position(text: str, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the start of needle in text."""
    index = -1
    for _ in range(occurrence + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


# ------------------------------------------------------------------------------------------------ the header


def test_one_line_header_infers_roles():
    parsed = parse("$$\\log p(x|c) = \\log p(x|c)$$\n",
                   "% elbocheck model cdvae: p_theta(z_l|c) p(z_u) p_theta(x|z_l,z_u) q_phi(z_l,z_u|x)\n")
    model = parsed.derivations[0].model
    assert model.name == parsed.derivations[0].name == "cdvae"
    assert list(model.observed) == ["x", "c"] and list(model.latent) == ["z_l", "z_u"]
    assert model.inputs == frozenset({"c"})
    assert model.data_atoms == frozenset({"x", "c"})


def test_header_clauses_on_several_lines():
    header = ("% elbocheck model tc\n% p: prod_j p(z_j) p_theta(x|z)\n% q: q_phi(z|x); vectors: z = 3\n"
              "% coefficients: \\beta \\geq 1, lambda > 0, alpha real, 0 <= gamma <= 1, delta in [0, 2]\n"
              "% aux: r(x|z); data: p_D(x)\n%% a remark inside the header\n% title: A title\n")
    parsed = parse("$$I(x; z) \\geq 0 + I(x; z)$$\n", header)
    model = parsed.derivations[0].model
    assert model.components["z"] == ("z_1", "z_2", "z_3")
    assert dict(model.coefficients) == {"beta": (1, None), "lambda": (0, None, True, False), "alpha": (None, None),
                                        "gamma": (0, 1), "delta": (0, 2)}
    assert "r[x|z]" in model.auxiliary_blocks
    assert parsed.derivations[0].title == "A title"


def test_markdown_headers_html_comment_and_fenced_block():
    md = ("Prose with $p(x)$ inline and a fence:\n\n```python\n$$ not math $$\n```\n\n"
          "<!-- elbocheck model a: p(z) p_theta(x|z) q_phi(z|x) -->\n\n$$\\log p(x) = \\log p(x)$$\n\n"
          "```elbocheck\nmodel b\np(z) p_theta(x|z)\nq: q_phi(z|x)\n```\n\n"
          "$$\\log p(x) \\geq \\mathbb{E}_{q(z|x)}[\\log p(x|z)] - D_{KL}(q(z|x) \\| p(z))$$\n")
    parsed = latex.parse_text(md, "t.md", markdown=True)
    assert parsed.error is None
    assert [d.name for d in parsed.derivations] == ["a", "b"]
    assert [len(d.steps) for d in parsed.derivations] == [1, 1]


def test_math_before_the_header_and_after_end_or_skip_is_ignored():
    body = ("$$ \\foo ignored $$\n" + VAE + "$$\\log p(x) = \\log p(x)$$\n% elbocheck skip\n$$ \\foo $$\n"
            "$$= \\log p(x)$$\n% elbocheck end\n$$ \\bar{ $$\n")
    parsed = latex.parse_text(body, "t.tex")
    assert parsed.error is None and len(parsed.derivations[0].steps) == 2


@pytest.mark.parametrize("header, message", [
    ("% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x); colour: blue\n", "unknown key 'colour'"),
    ("% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x); coefficients: beta >> 1\n", "cannot read coefficient"),
    ("% elbocheck model m: p(z) p_theta(x|z)\n", "no inference factors"),
    ("% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x) s(x)\n", "neither a p, q, p_D nor r density"),
    ("% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x); assume: q(z,w|x) = q(z|x) q(w|x)\n", "not declared"),
    ("% elbocheck model m: p(z) p(w) p_theta(x|z,w) q_phi(z|x); latent: z, w\n", "no factor for ['w']"),
    ("% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x); step: =\n", "expected the step it applies to"),
])
def test_malformed_header_is_fatal_with_position(header, message):
    error = error_of("$$\\log p(x) = \\log p(x)$$\n", header)
    assert error.fatal and message in error.message and "model header" in error.message
    assert error.line == 1 and error.column >= 1
    assert "expected" in error.message or "declare" in error.message or "not declared" in error.message


def test_unmatched_step_selector_is_reported_after_the_steps():
    error = error_of("$$\\log p(x) = \\log p(x) \\quad (1)$$\n", VAE + "% step (1)->(9): \\geq\n")
    assert not error.fatal and "(1)->(9)" in error.message and "expected a line tag" in error.message
    assert (error.line, error.column) == (2, 8)


# ------------------------------------------------------------------------------------------------ notation


def test_notation_of_the_seeds_reads_into_engine_objects():
    (s,) = steps(r"$$\log p_{\theta}(\mathbf{x}) \geq \mathbb{E}_{q_\phi(\mathbf{z}|\mathbf{x})}\left[ \log "
                 r"p_\theta(\mathbf{x} \mid \mathbf{z}) \right] - D_{\text{KL}}\left( q_\phi(\mathbf{z}|\mathbf{x}) "
                 r"\parallel p(\mathbf{z}) \right)$$" "\n")
    assert s.relation == ">="
    assert s.lhs == sympy.log(Density("p", ["x"], [], ["theta"]), evaluate=False)
    terms = sympy.Add.make_args(s.rhs)
    assert any(isinstance(t, Expectation) for t in terms)
    assert any(isinstance(-t, KL) for t in terms)


@pytest.mark.parametrize("kl", [r"D_{KL}(q(z|x) || p(z))", r"D_{\text{KL}}(q(z|x) \| p(z))",
                                r"\mathrm{KL}(q(z|x) \parallel p(z))", r"KL\left[q(z|x) \,\|\, p(z)\right]",
                                r"D_{\mathrm{KL}}\left(q(z|x) \Vert p(z)\right)", r"\operatorname{KL}(q(z|x), p(z))"])
def test_kl_spellings(kl):
    (s,) = steps(f"$${kl} = {kl}$$\n")
    assert s.lhs == KL(density("q(z|x)"), density("p(z)"))


@pytest.mark.parametrize("mi, family", [(r"I(x; z)", "q"), (r"I_\phi(x;z)", "q"), (r"I_{q}(x ; z)", "q"),
                                        (r"\mathcal{I}(x; z)", "q"), (r"I_\theta(x; z)", "p"), (r"I(x, z)", "q")])
def test_mutual_information_spellings(mi, family):
    (s,) = steps(f"$${mi} = {mi}$$\n")
    assert s.lhs == MutualInformation(["x"], ["z"], [], family)


def test_powers_fractions_and_products_stay_unevaluated():
    (s,) = steps(r"$$\mathbb{E}_{q(z|x)} \log \frac{q(z|x) \cdot p(x|z)^{2}}{q(z|x)} = "
                 r"2 \mathbb{E}_{q(z|x)}[\log p(x|z)]$$" "\n")
    argument = s.lhs.body.args[0]
    assert isinstance(argument, sympy.Mul) and len(argument.args) == 3  # q, p^2, 1/q: not cancelled
    assert verdicts(r"$$\mathbb{E}_{q(z|x)} \log \frac{q(z|x) \cdot p(x|z)^{2}}{q(z|x)} = 2 \mathbb{E}_{q(z|x)}"
                    r"[\log p(x|z)]$$" "\n") == ["proven"]


def test_coefficients_and_powers_with_greek_exponents():
    header = VAE + "% coefficients: lambda > 0, alpha real\n"
    (s,) = steps(r"$$\log \frac{q(z)^{\lambda + \alpha - 1}}{p(z)^\lambda} = (\lambda + \alpha - 1) \log q(z) "
                 r"- \lambda \log p(z)$$" "\n", header)
    assert verdicts(r"$$\log \frac{q(z)^{\lambda + \alpha - 1}}{p(z)^\lambda} = (\lambda + \alpha - 1) \log q(z) "
                    r"- \lambda \log p(z)$$" "\n", header) == ["proven"]
    assert sympy.Symbol("lambda", real=True) in s.rhs.free_symbols


def test_integrals_are_expectations_and_nest():
    (s,) = steps(r"$$\iint q(z|x) q(w|x) \log p(x|z,w) d\mathbf{z}\, \mathrm{d}w = \int q(w|x) \int q(z|x) "
                 r"\log p(x|z,w) \,dz \,dw$$" "\n",
                 "% elbocheck model m: p(z) p(w) p_theta(x|z,w) q_phi(z|x) q_phi(w|x)\n")
    assert isinstance(s.lhs, Expectation) and isinstance(s.lhs.measure, sympy.Mul)
    assert isinstance(s.rhs, Expectation) and isinstance(s.rhs.body, Expectation)
    assert s.rhs.measure == density("q(w|x)") and s.rhs.body.measure == density("q(z|x)")


def test_expectation_measures():
    (s,) = steps(r"$$\mathbb{E}_{z \sim q(z|x)} \log p(x|z) = \mathbb E_{q(z|x)} [\log p(x|z)]$$" "\n")
    assert s.lhs == s.rhs
    (s,) = steps(r"$$\mathbb{E}_{p_{\mathcal{D}}(x)} \mathbb{E}_{q(z|x)} \log p(x|z) = "
                 r"\mathbb{E}_{p_{\text{data}}(x) q(z|x)} [\log p(x|z)]$$" "\n")
    assert s.lhs.measure == density("p_D(x)")


# ------------------------------------------------------------------------------------------------ relations


@pytest.mark.parametrize("relation, expected", [
    ("=", "="), (r"\geq", ">="), (r"\ge", ">="), (r"\leq", "<="), (r"\le", "<="), (r"\overset{c}{=}", "= const"),
    (r"\stackrel{\text{const}}{=}", "= const"), ("=_c", "= const"), ("=_{c}", "= const"),
    (r"\overset{(a)}{=}", "="), (r"\overset{\text{Jensen}}{\geq}", ">="), (":=", "="), (r"\coloneqq", "="),
])
def test_relations(relation, expected):
    (s,) = steps(f"$$\\log p(x) {relation} \\log p(x)$$\n")
    assert s.relation == expected


def test_equal_up_to_a_constant_with_a_const_term_or_an_underbrace():
    body = r"$$\mathbb{E}_{p_D(x)}[\log p(x)] = \mathbb{E}_{p_D(x)}[\log \frac{p(x)}{p_D(x)}] + \text{const}$$" "\n"
    (s,) = steps(body)
    assert s.relation == "= const" and verdicts(body) == ["proven"]
    body = (r"$$\mathbb{E}_{p_D(x)}[\log p(x)] = \mathbb{E}_{p_D(x)}[\log \frac{p(x)}{p_D(x)}] "
            r"\underbrace{+ \mathbb{E}_{p_D(x)}[\log p_D(x)]}_{\text{constant}}$$" "\n")
    (s,) = steps(body)
    assert s.relation == "= const"
    # a constant term that is not constant: refuted
    assert verdicts(r"$$\log p(x) = \log p(x|z) + \text{const}$$" "\n") == ["refuted"]


def test_a_const_term_needs_an_equality():
    error = error_of(r"$$\log p(x) \geq \log p(x|z) + \text{const}$$" "\n")
    assert "needs '='" in error.message and "expected" in error.message


def test_approximate_relations_are_errors():
    body = r"$$\log p(x) \approx \log p(x|z)$$" "\n"
    error = error_of(body)
    assert "'\\approx' cannot be checked" in error.message and "expected =" in error.message
    assert (error.line, error.column) == position(VAE + body, r"\approx")


# ------------------------------------------------------------------------------------------------ lines and chains


def test_aligned_rows_tags_and_continuations():
    body = (r"$$\begin{aligned} \log p(x) &= \mathbb{E}_{q(z|x)}[\log p(x)] \\ &= \mathbb{E}_{q(z|x)}[\log "
            r"\frac{p(x,z)}{q(z|x)}] \\ &\quad + D_{KL}(q(z|x) \| p(z|x)) \end{aligned} \quad (2)$$" "\n"
            r"\begin{align} &\geq \mathbb{E}_{q(z|x)}[\log p(x|z)] \tag{3} \\ &\quad - D_{KL}(q(z|x) \| p(z)) "
            r"\nonumber \end{align}" "\n")
    result = steps(body)
    assert [s.relation for s in result] == ["=", "=", ">="]
    column = position(VAE + body, r"\log p(x) &=")[1]
    assert [s.label for s in result] == [f"line 2:{column}", f"line 2:{column} -> (2)", "(2) -> (3)"]
    assert [s.line for s in result] == [2, 2, 3]
    assert verdicts(body) == ["proven", "proven", "proven"]


def test_a_line_ending_in_an_operator_continues_in_the_next_block():
    body = ("$$\\log p(x) = \\mathbb{E}_{q(z|x)}[\\log p(x|z)] -$$\n\n"
            "$$D_{KL}(q(z|x) \\| p(z)) + D_{KL}(q(z|x) \\| p(z|x))$$\n")
    assert verdicts(body) == ["proven"]


def test_definitions_link_after_an_expression_chain_and_not_after_a_definition():
    body = ("$$\\log p(x) = \\mathbb{E}_{q(z|x)}[\\log p(x|z)] - D_{KL}(q(z|x) \\| p(z)) "
            "+ D_{KL}(q(z|x) \\| p(z|x))$$\n"
            "$$\\mathcal{L}(x) = \\mathbb{E}_{q(z|x)}[\\log p(x|z)] - D_{KL}(q(z|x) \\| p(z))$$\n"
            "$$\\mathcal{J} = \\mathbb{E}_{q(z|x)}[\\log p(x|z)]$$\n"
            "$$\\mathcal{K} = D_{KL}(q(z|x) \\| p(z))$$\n"
            "$$\\mathcal{L}_{\\text{new}} := \\log p(x)$$\n"
            "$$\\log p(x) \\geq \\mathcal{L}(x) = \\mathcal{J} - \\mathcal{K}$$\n"
            "$$\\mathcal{J} = \\mathbb{E}_{q(z|x)}[\\log p(x|z)]$$\n")
    header = VAE + "% step line 4: \\geq\n"
    result = steps(body, header)
    assert [(s.label, s.relation) for s in result] == [
        ("line 3", "="), ("line 3 -> line 4", ">="),  # the header gives the relation into the definition
        ("line 4 -> line 5", "="),                    # the chain began with an expression: linked by default
        ("line 5 -> line 6", "="),
        # ":=" defines without a step; the next line is a statement
        ("line 8, relation 1", ">="), ("line 8, relation 2", "="),
        ("line 5 -> line 9", "="),                    # a second definition of J is checked against the first
    ]
    checked = [s.verdict for s in latex.check_parsed(parse(body, header)).step_results]
    assert checked == ["proven", "proven", "refuted", "refuted", "proven", "proven", "proven"]


def test_a_definition_after_a_definition_starts_a_new_chain():
    body = ("$$\\mathcal{J}_{\\text{ELBO}} = \\mathbb{E}_{q(z|x)}[\\log p(x|z)]$$\n"
            "$$\\mathcal{J}_{\\text{other}} = D_{KL}(q(z|x) \\| p(z))$$\n"
            "$$= \\mathbb{E}_{q(z|x)}[\\log q(z|x) - \\log p(z)]$$\n"
            "$$\\log p(x) \\geq \\mathcal{J}_{\\text{ELBO}} - \\mathcal{J}_{\\text{other}}$$\n")
    assert [s.label for s in steps(body)] == ["line 3 -> line 4", "line 5"]
    assert verdicts(body) == ["proven", "proven"]


def test_a_name_at_the_end_of_a_line_names_the_expression_before_it():
    body = ("$$\\log p(x) \\geq \\mathbb{E}_{q(z|x)}[\\log p(x|z)] - D_{KL}(q(z|x) \\| p(z)) = \\mathcal{L}(x)$$\n"
            "$$\\log p(x) - \\mathcal{L}(x) = D_{KL}(q(z|x) \\| p(z|x))$$\n")
    assert verdicts(body) == ["proven", "proven"]


def test_step_none_breaks_a_chain_and_assume_applies_where_selected():
    header = ("% elbocheck model m: p(z) p(w) p_theta(x|z,w) q_phi(z,w|x)\n"
              "% assume: q(z,w|x) = q(z|x) q(w|x)\n% step (2): none\n")
    body = ("$$\\log p(x) = \\log p(x) \\quad (1)$$\n$$\\mathcal{L} = \\log p(x|z,w) \\quad (2)$$\n"
            "$$= \\log p(x|z,w) \\quad (3)$$\n")
    result = steps(body, header)
    assert [s.label for s in result] == ["(1)", "(2) -> (3)"]
    assert all(s.assumptions for s in result)


# ------------------------------------------------------------------------------------------------ bad input


# case: (body, where the error points: the last occurrence of this text, shifted by this many characters,
#        what the message says, what it says was expected)
BAD_INPUTS = {
    "unbalanced braces": (
        r"$$\log p(x) = \mathbb{E}_{q(z|x)}\left[\log \frac{p(x,z)}{q(z|x)\right]$$", r"{q(z|x)\right", 0,
        "unbalanced braces", "expected a matching '}'"),
    "unknown command": (
        r"$$\log p(x) = \mathbb{E}_{q(z|x)}\left[\log \foo{p(x,z)}\right]$$", r"\foo", 0,
        "unknown command '\\foo'", "expected a supported command"),
    "undeclared density": (
        r"$$\log p(x) = \mathbb{E}_{q(z|x)}\left[\log s(x, z)\right]$$", "s(x, z)", 0,
        "undeclared density 's(...)'", "expected a density of the model (p, q, p_D)"),
    "undeclared variable": (
        r"$$\log p(x) = \mathbb{E}_{q(z|x)}\left[\log p(x|\mathbf{w})\right]$$", r"\mathbf{w}", 0,
        "undeclared variable 'w'", "expected one of the model's variables (x, z)"),
    "undeclared coefficient": (
        r"$$\log p(x) = \beta \log p(x)$$", r"\beta", 0, "undeclared coefficient '\\beta'", "expected a coefficient"),
    "missing relation": (
        "$$\\log p(x) = \\log p(x)$$\n$$\\mathbb{E}_{q(z|x)}[\\log p(x)]$$", r"$$\mathbb{E}", 2,
        "missing relation between line 3 and this line", "expected a relation (=, \\geq"),
    "unbalanced parentheses": (
        r"$$\log p(x) = D_{KL}\left(q(z|x) || p(z)) \right)$$", r"\right)", 6, "unbalanced parentheses",
        "expected an expression or a relation"),
    "syntax": (
        r"$$\log p(x) = \log p(x) + * \log p(z)$$", "*", 0, "unexpected '*'", "expected an expression"),
    "no differential": (
        r"$$\log p(x) = \int q(z|x) \log p(x)$$", r"\int", 0, "the integral has no differential",
        "expected 'd\\mathbf{z}'"),
    "differential without density": (
        r"$$\log p(x) = \int q(z|x) \log p(x) dz dx$$", r"\int", 0, "the differential dx has no density",
        "expected one"),
    "kl over different variables": (
        r"$$\log p(x) = D_{KL}(q(z|x) || p(x))$$", "D_{KL}", 0, "a KL divergence needs two densities over the same",
        "expected two densities"),
    "relation at the start": (r"$$= \log p(x)$$", "$$=", 2, "no line before it", "expected an expression"),
    "ends too early": (r"$$\log p(x) = \log p(x) + $$", "+", 1, "ends too early", "expected an expression"),
    "generative input": (
        r"$$\log p(x|c) = \log p(z_l)$$", "p(z_l)", 0, "depends on the input(s) c", "expected a density the model"),
}
CDVAE = "% elbocheck model cdvae: p_theta(z_l|c) p(z_u) p_theta(x|z_l,z_u) q_phi(z_l,z_u|x)\n"


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_error_with_line_and_column(case):
    body, needle, shift, message, expected = BAD_INPUTS[case]
    header = CDVAE if case == "generative input" else VAE
    text = header + "\n" + body + "\n"
    error = error_of("\n" + body + "\n", header, name="bad.tex")
    assert message in error.message and expected in error.message, error.format()
    line, column = position(text, needle, text.count(needle) - 1)
    assert (error.line, error.column) == (line, column + shift)
    assert error.format().startswith(f"bad.tex:{error.line}:{error.column}: error: ")


def test_steps_before_an_error_are_kept():
    parsed = parse("$$\\log p(x) = \\log p(x) \\quad (1)$$\n$$= \\log p(x) \\quad (2)$$\n$$= \\log s(x) \\quad (3)$$\n")
    assert parsed.error is not None and parsed.steps == 2
    result = latex.check_parsed(parsed)
    assert [s.verdict for s in result.step_results] == ["proven", "proven"]


@pytest.mark.parametrize("text, message", [
    ("$$\\log p(x) = \\log p(x)$$\n", "no elbocheck model header"),
    (VAE + "no math here\n", "no display math"),
    (VAE + "$$\\log p(x) = \\log p(x)\n", "never closed; expected '$$'"),
])
def test_unreadable_files_are_fatal(text, message):
    with pytest.raises(LatexError) as raised:
        latex.parse_text(text, "t.tex")
    assert raised.value.fatal and message in raised.value.message and raised.value.line is not None


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(LatexError) as raised:
        latex.parse_file(tmp_path / "missing.tex")
    assert raised.value.fatal and "no such file" in raised.value.message
    bad = tmp_path / "bad.tex"
    bad.write_bytes(VAE.encode() + b"$$\\log p(x) = \\log p(x)$$ \xff\n")
    with pytest.raises(LatexError) as raised:
        latex.parse_file(bad)
    assert raised.value.fatal and "not UTF-8" in raised.value.message
    assert (raised.value.line, raised.value.column) == (2, 27)


def test_a_name_on_its_own_row_names_the_line_before():
    body = (r"$$\begin{aligned} \log p(x) &\geq \mathbb{E}_{q(z|x)}[\log p(x|z)] - D_{KL}(q(z|x) \| p(z)) \\ "
            r"&= \mathcal{L}(x) \end{aligned}$$" "\n" r"$$\mathcal{L}(x) + D_{KL}(q(z|x) \| p(z|x)) = \log p(x)$$" "\n")
    assert verdicts(body) == ["proven", "proven"]


def test_signed_underbrace_after_a_term_and_sample_indices():
    header = VAE  # (a declared coefficient that the math does not use is an error)
    body = (r"$$\log p(x^{(i)}) - \mathbb{E}_{p_D(x)}[\log p_D(x)] = \mathbb{E}_{q(z|x^{(i)})}[\log p(x|z)] "
            r"\underbrace{- \mathbb{E}_{p_D(x)} [\log p_D(x)]}_{\text{constant}} - D_{KL}(q(z|x) \| p(z)) "
            r"+ D_{KL}(q(z|x) \| p(z|x))$$" "\n")
    (s,) = steps(body, header)
    assert s.relation == "= const" and verdicts(body, header) == ["proven"]
    # the same with a sign that belongs to the term: an ordinary term
    body = (r"$$\log p(x) = \mathbb{E}_{q(z|x)}[\log p(x|z)] \underbrace{- D_{KL}(q(z|x) \| p(z))}_{\text{rate}} "
            r"+ D_{KL}(q(z|x) \| p(z|x))$$" "\n")
    (s,) = steps(body)
    assert s.relation == "=" and verdicts(body) == ["proven"]


def test_align_inside_dollars_and_mathcal_without_braces():
    body = ("$$\n\\begin{align}\n\\mathcal L(\\theta, \\phi, x^{(i)}) &= \\mathbb E_{q_{\\phi}(z | x^{(i)})} "
            "\\left[\\log p_{\\theta} (x^{(i)}|z) \\right] - D_{\\text{KL}}\\left(q_{\\phi}(z|x^{(i)})||p(z)\\right).\n"
            "\\end{align}\n$$\n$$\\log p(x) \\geq \\mathcal{L}(\\theta, \\phi, x)$$\n")
    assert verdicts(body) == ["proven"]


def test_pasted_unicode_greek_and_relations():
    header = "% elbocheck model vae: p(z) p_θ(x|z) q_ϕ(z|x); coefficients: β ≥ 1\n"
    body = "$$\\log p_θ(x) ≥ \\mathbb{E}_{q_ϕ(z|x)}[\\log p(x|z)] − β · D_{KL}(q(z|x) \\| p(z))$$\n"
    (s,) = steps(body, header)
    assert s.relation == ">=" and sympy.Symbol("beta", real=True) in s.rhs.free_symbols
    assert verdicts(body, header) == ["proven"]
