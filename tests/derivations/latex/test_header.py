"""Header clauses that used to be accepted silently are errors at their place in the header: a coefficient that
can appear nowhere or appears nowhere, an empty range, a coefficient declared twice, a vector too large to check."""

import pytest
from elbocheck.derivations.latex import LatexError, parse_text

from elbocheck.cli import main

VAE = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)"
BODY = "$$\\log p(x) = \\beta \\log p(x) - (\\beta - 1) \\log p(x) \\quad (1)$$\n"


def _fatal(header: str, body: str = BODY) -> LatexError:
    with pytest.raises(LatexError) as caught:
        parse_text(header + "\n" + body, "h.tex")
    assert caught.value.fatal
    return caught.value


@pytest.mark.parametrize("clause, words", [
    ("coefficients: 2 <= beta <= 1", "the range '2 <= beta <= 1' of coefficient 'beta' is empty"),
    ("coefficients: 0 < beta < 0", "is empty"),
    ("coefficients: beta in (1, 1]", "is empty"),
    ("coefficients: beta in [3, 2]", "is empty"),
    ("coefficients: beta > inf", "is empty"),
    ("coefficients: beta <= -inf", "is empty"),
    ("coefficients: foo > 0", "coefficient 'foo' can appear nowhere in the math"),
    ("coefficients: beta > 0, beta < 2", "coefficient 'beta' is declared twice"),
])
def test_bad_coefficients_are_errors_at_their_place(clause, words):
    header = f"{VAE}\n% {clause}"
    error = _fatal(header)
    value = clause.split(": ", 1)[1]
    item = value.split(", ")[-1] if "twice" in words else value
    # '% coefficients: ' puts the value at column 17; the error is at the offending item
    assert (error.line, error.column) == (2, 17 + value.index(item))
    assert error.message.startswith("model header: ") and words in error.message and "expected" in error.message


@pytest.mark.parametrize("clause", ["coefficients: beta = 1", "coefficients: 1 <= beta <= 1",
                                    "coefficients: beta in [1, 1]", "coefficients: beta >= -inf",
                                    "coefficients: 0 < beta <= 2, lambda_1 real"])
def test_ranges_that_hold_a_value_are_accepted(clause):
    body = BODY if "lambda" not in clause else BODY.replace("(1)$$", "+ \\lambda_1 \\log p(x) - \\lambda_1 \\log p(x)"
                                                                     " \\quad (1)$$")
    parsed = parse_text(f"{VAE}\n% {clause}\n{body}", "h.tex")
    assert parsed.error is None and parsed.steps == 1


def test_a_declared_coefficient_that_the_math_never_uses_is_an_error_after_the_steps(capsys, tmp_path):
    text = f"{VAE}\n% coefficients: beta >= 1, gamma > 0\n{BODY}"
    parsed = parse_text(text, "h.tex")
    assert parsed.steps == 1  # the steps are still read (and judged)
    error = parsed.error
    assert not error.fatal
    assert (error.line, error.column) == (2, 17 + len("beta >= 1, "))
    assert error.message.startswith("model header: coefficient 'gamma' appears nowhere in the derivation")
    path = tmp_path / "h.tex"
    path.write_text(text, encoding="utf-8")
    assert main(["check", "--quiet", str(path)]) == 1
    captured = capsys.readouterr()
    assert "1 steps: 1 proven" in captured.out
    assert captured.err.startswith(f"{path}:2:{error.column}: error: model header: coefficient 'gamma'")


def test_a_coefficient_used_only_in_a_definition_counts_as_used():
    text = (f"{VAE}\n% coefficients: beta >= 1, gamma > 0\n"
            "$$\\mathcal{J} := \\gamma \\log p(x)$$\n" + BODY)
    assert parse_text(text, "h.tex").error is None


@pytest.mark.parametrize("size", ["5000", "99999999999999999999999"])
def test_a_vector_too_large_to_check_is_an_error(size):
    header = f"% elbocheck model btc: prod_j p(z_j) p_theta(x|z) q_phi(z|x); vectors: z = {size}"
    error = _fatal(header, "$$\\log p(x) = \\log p(x)$$\n")
    assert (error.line, error.column) == (1, header.index("z = ") + 1)
    assert "over the limit of 4096" in error.message and "z = J" in error.message


def test_a_file_without_steps_names_its_header():
    parsed = parse_text(f"\n{VAE}\n$$\\log p(x)$$\n", "h.tex")
    assert parsed.error.fatal and (parsed.error.line, parsed.error.column) == (2, 3)
    assert parsed.error.message.startswith("no derivation steps found")
