"""``elbocheck check FILE [--json]``: the shipped examples, the JSON shape of ``verify``, exit statuses, and one clear
message (file, line, column, what was expected) for each kind of bad input."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from elbocheck.cli import main
from elbocheck.derivations import latex

EXAMPLES = Path(latex.__file__).parents[1] / "examples"
HEADER = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n"
GOOD = "$$\\log p(x) = \\mathbb{E}_{q(z|x)}[\\log p(x)] \\quad (1)$$\n"


def run_check(capsys, *argv, quiet=True):
    status = main(["check", *(["--quiet"] if quiet else []), *map(str, argv)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def test_cdvae_example_table_and_exit_status(capsys):
    status, out, err = run_check(capsys, EXAMPLES / "cdvae_seed004.tex")
    assert status == 0 and not err
    assert "8 steps: 8 proven, 0 refuted, 0 undecided" in out
    assert re.search(r"line 20: \(3\) -> \(4\)\s+=\s+proven", out)
    assert "assuming q(z_l,z_u|x) = q(z_l|x) q(z_u|x); without the assumption: refuted" in out


@pytest.mark.parametrize("name, counts", [
    ("infovae_seed003.md", (14, 3)), ("bounds_seed000.md", (4, 2)), ("condvae_seed001.tex", (2, 1)),
])
def test_examples_with_refuted_steps_exit_1(capsys, name, counts):
    status, out, err = run_check(capsys, EXAMPLES / name)
    assert status == 1 and not err
    proven, refuted = counts
    assert f"{proven} proven, {refuted} refuted, 0 undecided" in out


def test_json_has_the_shape_of_verify(capsys):
    assert main(["verify", "cdvae", "--json"]) == 0
    verify = json.loads(capsys.readouterr().out)
    status, out, _ = run_check(capsys, EXAMPLES / "cdvae_seed004.tex", "--json")
    assert status == 0
    check = json.loads(out)
    assert isinstance(check, list) and len(check) == 1
    assert set(check[0]) == set(verify[0])
    for step in check[0]["steps"]:
        assert set(step) == set(verify[0]["steps"][0])
    steps = check[0]["steps"]
    assert [s["verdict"] for s in steps] == ["proven"] * 8
    assert [s["label"] for s in steps][3] == "(3) -> (4)"
    assert steps[3]["assumptions"] == ["q(z_l,z_u|x) = q(z_l|x) q(z_u|x)"]
    assert steps[3]["without_assumptions"]["verdict"] == "refuted"
    assert [s["line"] for s in steps] == [14, 16, 18, 20, 22, 24, 28, 32]
    assert steps[6]["relation"] == ">="


def test_json_refutation_has_a_counterexample(capsys):
    status, out, _ = run_check(capsys, EXAMPLES / "condvae_seed001.tex", "--json")
    assert status == 1
    data = json.loads(out)
    first = data[0]["steps"][0]
    assert first["verdict"] == "refuted" and first["counterexample"]["instance"]["factors"]
    assert first["line"] == 11 and first["label"] == "(1)"


# ------------------------------------------------------------------------------------------------ bad input

BAD = {
    "unbalanced braces": (r"$$= \mathbb{E}_{q(z|x)}\left[\log \frac{p(x,z)}{q(z|x)\right]$$", 4, 48,
                          "unbalanced braces", "expected a matching '}'"),
    "unknown command": (r"$$= \mathbb{E}_{q(z|x)}\left[\foo p(x)\right]$$", 4, 30, "unknown command '\\foo'",
                        "expected a supported command"),
    "undeclared density": (r"$$= \mathbb{E}_{q(z|x)}\left[\log s(x)\right]$$", 4, 35, "undeclared density 's(...)'",
                           "expected a density of the model"),
    "missing relation": (r"$$\mathbb{E}_{q(z|x)}[\log p(x)]$$", 4, 3, "missing relation between (1) and this line",
                         "expected a relation"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_after_a_good_line(capsys, tmp_path, case):
    body, line, column, message, expected = BAD[case]
    path = tmp_path / "bad.tex"
    path.write_text(HEADER + "\n" + GOOD + body + "\n", encoding="utf-8")
    status, out, err = run_check(capsys, path)
    assert status == 1  # the step before the error is judged and printed
    assert "line 3: (1)" in out and "1 steps: 1 proven" in out
    lines = err.strip().split("\n")
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:{line}:{column}: error: ")
    assert message in lines[0] and expected in lines[0]


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_with_json_keeps_stdout_json(capsys, tmp_path, case):
    body = BAD[case][0]
    path = tmp_path / "bad.tex"
    path.write_text(HEADER + "\n" + GOOD + body + "\n", encoding="utf-8")
    status, out, err = run_check(capsys, path, "--json")
    assert status == 1
    assert [s["verdict"] for s in json.loads(out)[0]["steps"]] == ["proven"]
    assert err.startswith(f"{path}:")


def test_error_before_any_step_exits_2(capsys, tmp_path):
    path = tmp_path / "bad.tex"
    path.write_text(HEADER + "$$\\log p(x) = \\log s(x)$$\n", encoding="utf-8")
    status, out, err = run_check(capsys, path)
    assert status == 2 and out == ""
    assert err.startswith(f"{path}:2:20: error: undeclared density")  # at s(x)


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"\xff\xfe", "not UTF-8"),
    (b"$$\\log p(x) = \\log p(x)$$\n", "no elbocheck model header"),
    (HEADER.encode() + b"no math\n", "no display math"),
    (b"% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x); colour: blue\n$$\\log p(x) = \\log p(x)$$\n",
     "unknown key 'colour'"),
    (HEADER.encode() + b"$$\\log p(x)$$\n", "no derivation steps"),
])
def test_unreadable_files_exit_2(capsys, tmp_path, content, message):
    path = tmp_path / "input.tex"
    if content is not None:
        path.write_bytes(content)
    status, out, err = run_check(capsys, path)
    assert status == 2 and out == ""
    assert err.startswith(f"{path}") and message in err and "expected" in err


def test_no_traceback_from_the_console(tmp_path):
    path = tmp_path / "bad.tex"
    path.write_text(HEADER + GOOD + "$$= \\log p(x) \\foo$$\n", encoding="utf-8")
    completed = subprocess.run([sys.executable, "-m", "elbocheck.cli", "check", "--quiet", str(path)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.startswith(f"{path}:3:15: error: unknown command '\\foo'")


def test_format_prints_the_documentation(capsys):
    assert main(["check", "--format"]) == 0
    out = capsys.readouterr().out
    assert "elbocheck model" in out and "\\overset{c}{=}" in out


def test_no_file_exits_2(capsys):
    assert main(["check"]) == 2
    assert "expected a FILE" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ progress, time limit


def test_one_progress_line_per_step_on_stderr(capsys):
    status, out, err = run_check(capsys, EXAMPLES / "condvae_seed001.tex", quiet=False)
    assert status == 1
    lines = err.strip().split("\n")
    assert len(lines) == 3
    assert re.fullmatch(r"\[1/3\] condvae: line 11 \(1\) \.\.\. refuted \d+\.\d s", lines[0])
    assert re.fullmatch(r"\[3/3\] condvae_info: line 22 \(1''\) \.\.\. proven \d+\.\d s", lines[2])
    assert "3 steps: 2 proven, 1 refuted" in out


def test_a_step_over_the_time_limit_is_undecided_with_the_reason(capsys):
    status, out, err = run_check(capsys, EXAMPLES / "cdvae_seed004.tex", "--timeout", "0.001", "--json")
    assert status == 1 and not err
    steps = json.loads(out)[0]["steps"]
    assert [s["verdict"] for s in steps] == ["undecided"] * 8
    assert all(s["reason"].startswith("time limit of 0.001 s reached in ") for s in steps)
    assert all(s["seconds"] < 5 for s in steps)
    status, out, _ = run_check(capsys, EXAMPLES / "cdvae_seed004.tex", "--timeout", "0.001")
    assert "8 steps: 0 proven, 0 refuted, 8 undecided" in out and "8 over the time limit of 0.001 s" in out


def test_results_stream_and_an_interrupt_keeps_the_judged_steps(capsys, monkeypatch):
    from elbocheck.derivations import latex

    real = latex.iter_check

    def interrupted_after_two(*args, **kwargs):
        for k, item in enumerate(real(*args, **kwargs)):
            yield item
            if k == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(latex, "iter_check", interrupted_after_two)
    status, out, err = run_check(capsys, EXAMPLES / "cdvae_seed004.tex")
    assert status == 130
    assert "2 steps: 2 proven" in out and "line 16: (1) -> (2)" in out
    assert err.strip() == (f"{EXAMPLES / 'cdvae_seed004.tex'}: error: interrupted (Ctrl-C) after 2 of 8 steps; "
                           "expected the check to run to the end (the judged steps are printed above)")


def test_sigterm_prints_the_judged_steps_and_exits_130(tmp_path):
    # a file whose steps are slow (no time limit), stopped by SIGTERM once the first step is judged
    path = tmp_path / "slow.tex"
    lines = ["% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)", r"$$\log p(x) = \log p(x) \quad (1)$$"]
    lines += [r"$$\geq \mathbb{E}_{q(z|x)}[\log p(x,z) - \log q(z|x)] \quad (" + str(k) + ")$$" for k in range(2, 60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "elbocheck.cli", "check", str(path), "--timeout", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "proven" not in seen:  # the progress of the first step
        char = process.stderr.read(1)
        if not char:
            break
        seen += char
    assert "[1/59] line 2 (1) ... proven" in seen, seen
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "line 2: (1)" in out and "Traceback" not in err
    assert "error: interrupted (SIGTERM) after" in err


def test_help_lists_the_exit_statuses_and_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    for status in ("  0 ", "  1 ", "  2 ", "  130 "):
        assert status in out
    assert "--timeout SECONDS" in out and "--quiet" in out


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_a_bad_timeout_is_an_error(capsys, value):
    with pytest.raises(SystemExit) as caught:
        main(["check", "x.tex", "--timeout", value])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --timeout:" in err and "expected" in err
