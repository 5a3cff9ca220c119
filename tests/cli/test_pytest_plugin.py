"""``pytest --elbocheck``: one item per step; refuted fails with the counterexample, undecided is xfail (or fails with
--elbocheck-strict), an unreadable file is one failing item with FILE:LINE:COL, and a TOML sidecar's truths decide
what passes. Run through pytester, in a fresh pytest session per case."""

from pathlib import Path

import pytest
from elbocheck.derivations import latex
from elbocheck.derivations.latex.expected import match_expectations, read_expectations, sidecar_path

pytest_plugins = ["pytester"]

EXAMPLES = Path(latex.__file__).parents[1] / "examples"
HEADER = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n"
PROVEN = r"$$\log p(x) \geq \mathbb{E}_{q(z|x)}[\log p(x|z)] - D_{KL}(q(z|x) || p(z)) \quad (1)$$" + "\n"
REFUTED = r"$$\log p(x) \leq \mathbb{E}_{q(z|x)}[\log p(x|z)] - D_{KL}(q(z|x) || p(z)) \quad (2)$$" + "\n"


@pytest.fixture
def run(pytester):
    def go(*args):
        return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:xdist", "--elbocheck", *args)
    return go


def test_one_item_per_step_refuted_fails_with_its_counterexample(pytester, run):
    pytester.makefile(".tex", bounds=HEADER + PROVEN + REFUTED)
    result = run("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*bounds.tex::line 2 (1) PASSED*", "*bounds.tex::line 3 (2) FAILED*"])
    result.stdout.fnmatch_lines(["bounds.tex:3: vae (2): refuted", "*counterexample:*", "*q_phi(z | x)*"])


def test_undecided_is_xfail_or_fails_when_strict(pytester, run):
    pytester.makefile(".tex", bounds=HEADER + PROVEN + REFUTED)
    result = run("--elbocheck-timeout", "0.001", "-rx")
    result.assert_outcomes(xfailed=2)
    result.stdout.fnmatch_lines(["*undecided: time limit of 0.001 s reached*"])
    result = run("--elbocheck-timeout", "0.001", "--elbocheck-strict")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*undecided (--elbocheck-strict)*", "*reason: time limit of 0.001 s*"])


def test_a_file_that_cannot_be_read_is_one_failing_item(pytester, run):
    path = pytester.makefile(".tex", bad="% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x); colour: red\n" + PROVEN)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"{path.name}:1:*: error: model header: unknown key 'colour'*"])


def test_an_error_after_some_steps_is_one_more_failing_item(pytester, run):
    path = pytester.makefile(".tex", partly=HEADER + PROVEN + "$$= \\log s(x)$$\n")
    result = run("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*partly.tex::error at line 3 FAILED*",
                                 f"{path.name}:3:*: error: undeclared density 's(...)'*"])


def test_markdown_and_files_without_a_header(pytester, run):
    pytester.makefile(".md", note="# A note\n\n<!-- elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x) -->\n\n"
                                  + PROVEN)
    # a header shown as code in Markdown, and a .tex without one, are not derivations
    pytester.makefile(".md", readme="```latex\n" + HEADER + "```\n\n`<!-- elbocheck ... -->`\n\n" + PROVEN)
    pytester.makefile(".tex", plain="$$\\log p(x) = \\log p(x)$$\n")
    result = run("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*note.md::line 5 (1) PASSED*"])


def test_without_the_option_nothing_is_collected(pytester):
    pytester.makefile(".tex", bounds=HEADER + PROVEN + REFUTED)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


SIDECAR = '''source = "a test"

[[step]]
at = "(1)"
truth = {first}
why = "the ELBO"

[[step]]
at = "(2)"
truth = {second}
why = "the ELBO is a lower bound, not an upper one"
'''


@pytest.mark.parametrize("first, second, outcomes, message", [
    ("true", "false", {"passed": 2}, None),  # a false step that is refuted passes
    ("true", "true", {"passed": 1, "failed": 1}, "*refuted, but the sidecar says the step is TRUE*"),
    ("false", "false", {"passed": 1, "failed": 1}, "*proven, but the sidecar says the step is FALSE*"),
])
def test_the_sidecar_decides_what_passes(pytester, run, first, second, outcomes, message):
    pytester.makefile(".tex", bounds=HEADER + PROVEN + REFUTED)
    pytester.makefile(".toml", bounds=SIDECAR.format(first=first, second=second))
    result = run()
    result.assert_outcomes(**outcomes)
    if message:
        result.stdout.fnmatch_lines([message, "*sidecar: truth = *"])


@pytest.mark.parametrize("sidecar, where, message", [
    ("[[step]]\nat = \"(1)\"\ntruth = maybe\n", ":3:9", "the sidecar is not valid TOML"),
    ("[[step]]\nat = \"(1)\"\ntruth = true\n\n[[step]]\nat = \"(7)\"\ntruth = false\n", ":5:1",
     "step '(7)' was not read from the file"),
    ("[[step]]\nat = \"(1)\"\n", ":1:1", "step '(1)': 'truth' must be true or false"),
    ("[[step]]\nat = \"(1)\"\ntruth = true\n[[step]]\nat = \"line 2\"\ntruth = true\n", ":4:1",
     "step 'line 2' names a step that the entry at line 1 names too"),
])
def test_a_bad_sidecar_is_a_failing_item_at_its_place(pytester, run, sidecar, where, message):
    pytester.makefile(".tex", bounds=HEADER + PROVEN + REFUTED)
    path = pytester.makefile(".toml", bounds=sidecar)
    result = run()
    result.stdout.fnmatch_lines([f"{path.name}{where}: error: {message}*"])
    assert result.parseoutcomes()["failed"] >= 1


def test_an_error_entry_passes_when_the_reader_reports_the_error_there(pytester, run):
    pytester.makefile(".tex", partly=HEADER + PROVEN + "$$= \\log s(x)$$\n")
    pytester.makefile(".toml", partly='[[step]]\nat = "(1)"\ntruth = true\n\n[[step]]\nat = "line 3"\n'
                                      'error = "s is no density of the model"\n')
    run().assert_outcomes(passed=2)
    # the same entry on a line that the reader reads and judges fails
    pytester.makefile(".toml", partly='[[step]]\nat = "(1)"\nerror = "no meaning"\n')
    result = run()
    result.assert_outcomes(failed=2)  # (1) was judged; the reading error at line 3 was not expected
    result.stdout.fnmatch_lines(["*proven, but the sidecar says this step must be an error*"])


def test_a_step_read_with_another_relation_is_not_compared(pytester, run):
    pytester.makefile(".tex", bounds=HEADER + PROVEN)
    pytester.makefile(".toml", bounds='[[step]]\nat = "(1)"\nrelation = "="\ntruth = false\n')
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*read as '>=', but the sidecar's truth is for '='*"])
    run("--elbocheck-xfail-unread").assert_outcomes(xfailed=1)


def test_the_truth_without_the_assumption_is_held_too(pytester, run):
    header = ("% elbocheck model m: p(z_1) p(z_2) p_theta(x|z_1,z_2) q_phi(z_1,z_2|x)\n"
              "% assume (1): q(z_1,z_2|x) = q(z_1|x) q(z_2|x)\n")
    step = (r"$$\mathbb{E}_{q_\phi(z_1,z_2|x)}[\log q_\phi(z_1,z_2|x)] = \mathbb{E}_{q_\phi(z_1|x)}"
            r"[\log q_\phi(z_1|x)] + \mathbb{E}_{q_\phi(z_2|x)}[\log q_\phi(z_2|x)] \quad (1)$$" "\n")
    pytester.makefile(".tex", mf=header + step)
    pytester.makefile(".toml", mf='[[step]]\nat = "(1)"\ntruth = true\nwithout_assumptions = false\n')
    run().assert_outcomes(passed=1)
    pytester.makefile(".toml", mf='[[step]]\nat = "(1)"\ntruth = true\ntruth_without_assumptions = true\n')
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refuted without its assumption, but the sidecar says the step is TRUE without it*"])


def test_what_the_reader_does_not_read_can_be_xfail(pytester, run):
    pytester.makefile(".tex", partly=HEADER + PROVEN + "$$= \\log s(x)$$\n$$= \\log p(x)$$\n")
    pytester.makefile(".toml", partly='[[step]]\nat = "(1)"\ntruth = true\n\n[[step]]\nat = "line 4"\n'
                                      'truth = true\n')
    run().assert_outcomes(passed=1, failed=2)  # the error at line 3, and the entry for line 4 never read
    result = run("--elbocheck-xfail-unread", "-rx")
    result.assert_outcomes(passed=1, xfailed=2)
    result.stdout.fnmatch_lines(["*not read: partly.tex:3:*undeclared density*", "*step 'line 4' was not read*"])
    pytester.makefile(".tex", unreadable="% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x); uniform: p(z)\n"
                                         + PROVEN)
    run("--elbocheck-xfail-unread", "unreadable.tex").assert_outcomes(xfailed=1)


def test_every_example_sidecar_names_steps_of_its_file():
    for path in sorted(EXAMPLES.glob("*.toml")):
        source = next(p for p in EXAMPLES.iterdir() if p.stem == path.stem and p.suffix in (".tex", ".md"))
        parsed = latex.parse_file(source)
        entries = read_expectations(sidecar_path(source))
        matched = match_expectations(path, parsed.derivations, entries)
        assert entries and not matched.unmatched and not matched.conflicts
        assert len(matched.by_step) == len(entries) and all(e.why for e in entries)
