"""Inputs far beyond a hand-written derivation end in an error at their place that names the limit: never a
RecursionError, never a hang. Inputs just inside the limits are still read."""

import time

import pytest
from elbocheck.derivations.latex import LatexError, limits, parse_file, parse_text

from elbocheck.cli import main

HEADER = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n"


def _frac(depth: int) -> str:
    text = "p(x)"
    for _ in range(depth):
        text = r"\frac{" + text + "}{p(z)}"
    return r"\log " + text


def _error(body: str) -> LatexError:
    start = time.monotonic()
    parsed = parse_text(HEADER + "$$\\log p(x) = \\log p(x) \\quad (1)$$\n" + body + "\n", "in.tex")
    assert time.monotonic() - start < 20
    assert parsed.steps == 1, "the line before the bad one is still read"
    assert parsed.error is not None
    return parsed.error


@pytest.mark.parametrize("body, line, column, words", [
    # the 51st '{' of \frac{\frac{...: \log at column 5, each \frac{ 6 columns from column 10
    ("$$= " + _frac(500) + "$$", 3, 9 + 6 * 51, "nested more than 50 deep"),
    ("$$= \\log " + "(" * 500 + "p(x)" + ")" * 500 + "$$", 3, 9 + 51, "nested more than 50 deep"),
    # the line starts at '=' (column 3): its 10001st character
    ("$$= " + " + ".join([r"\log p(x)"] * 50_000) + "$$", 3, 3 + 10_000, "over the limit of 10000 per line"),
    # '=', then '\log' and '+' for each term: the 201st operator is the 100th '+', at column 15 + 12 * 99
    ("$$= " + " + ".join([r"\log p(x)"] * 300) + "$$", 3, 15 + 12 * 99, "600 terms and operators, over the "
                                                                        "limit of 200"),
    ("$$= \\log p(x)^{9^{9^{9}}}$$", 3, 17, "an exponent inside an exponent"),
    ("$$= 2^{99999} \\log p(x)$$", 3, 8, "5 digits in an exponent, over the limit of 3"),
    ("$$= 1" + "0" * 30 + " \\log p(x)$$", 3, 5, "31 digits, over the limit of 15"),
])
def test_beyond_a_limit_is_an_error_at_its_place(body, line, column, words):
    error = _error(body)
    assert (error.line, error.column) == (line, column), error.format()
    assert words in error.message and "expected" in error.message
    assert "Recursion" not in error.message


def test_within_the_limits_the_line_is_read():
    for body in ("$$= " + _frac(45) + "$$", "$$= " + " + ".join([r"\log p(x)"] * 50) + " - "
                 + " - ".join([r"\log p(x)"] * 49) + "$$", "$$= \\log p(x)^{2} - \\log p(x)$$"):
        parsed = parse_text(HEADER + "$$\\log p(x) \\quad (1)$$\n" + body + "\n", "in.tex")
        assert parsed.error is None and parsed.steps == 1


def test_a_file_over_the_size_limit_names_the_first_line_past_it(tmp_path, capsys):
    path = tmp_path / "big.tex"
    row = "Prose, not math. " * 10 + "\n"  # 171 bytes
    path.write_text(HEADER + row * (5_000_000 // len(row)) + "$$\\log p(x) = \\log p(x)$$\n", encoding="utf-8")
    start = time.monotonic()
    with pytest.raises(LatexError) as caught:
        parse_file(path)
    assert time.monotonic() - start < 10
    error = caught.value
    assert error.fatal
    past = limits.MAX_FILE_BYTES - len(HEADER)
    assert (error.line, error.column) == (2 + past // len(row), past % len(row) + 1)
    assert "over the limit of 2 MB" in error.message
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:{error.line}:{error.column}: error: the file has 5.0 MB")


def test_the_reader_running_out_of_stack_is_still_an_error_at_the_line(monkeypatch):
    from elbocheck.derivations.latex import reader

    def overflow(self):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(reader.LineReader, "read", overflow)
    parsed = parse_text(HEADER + "\n$$\\log p(x) = \\log p(x)$$\n", "in.tex")
    assert (parsed.error.line, parsed.error.column) == (3, 3)
    assert parsed.error.message.startswith("the line is nested too deeply to read")


@pytest.mark.parametrize("name, body", [
    ("deep", "$$\\log p(x) = " + _frac(500) + "$$"),
    ("long", "$$\\log p(x) = " + " + ".join([r"\log p(x)"] * 50_000) + "$$"),
])
def test_the_command_reports_them_with_file_line_column(tmp_path, capsys, name, body):
    path = tmp_path / f"{name}.tex"
    path.write_text(HEADER + body + "\n", encoding="utf-8")
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{path}:2:") and ": error: " in captured.err
    assert "RecursionError" not in captured.err and "Traceback" not in captured.err
