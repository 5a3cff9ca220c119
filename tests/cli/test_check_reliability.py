"""`elbocheck check` on mutated examples (Hypothesis): every input ends in verdicts or in one FILE:LINE:COLUMN error,
with exit status 0, 1 or 2, each step within the time limit, and never a traceback. The mutation space is
:mod:`elbocheck.derivations.latex.mutations` (also used by ``benchmarks/check_reliability.py`` for the README's
figures); the budget is small (a few seconds per input), the CI profile derandomized."""

import contextlib
import io
import json
import re
import tempfile
import time
from pathlib import Path

from elbocheck.derivations import latex
from elbocheck.derivations.latex.mutations import apply, mutations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elbocheck.cli import main

EXAMPLES = sorted(p for p in (Path(latex.__file__).parents[1] / "examples").iterdir() if p.suffix in (".tex", ".md"))
TIMEOUT = 2.0
SLACK = 3.0  # for the timer to land on a loaded 2-core machine


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=st.sampled_from(EXAMPLES), changes=mutations())
def test_every_mutated_example_ends_in_verdicts_or_a_placed_error(example, changes):
    text = apply(example.read_text(encoding="utf-8"), changes)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"mutated{example.suffix}"
        path.write_text(text, encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        start = time.monotonic()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["check", str(path), "--json", "--quiet", "--timeout", str(TIMEOUT)])
        elapsed = time.monotonic() - start
    stdout, stderr = out.getvalue(), err.getvalue()
    assert status in (0, 1, 2)
    assert "Traceback" not in stderr and "RecursionError" not in stdout + stderr
    errors = stderr.splitlines()
    assert len(errors) <= 1
    for line in errors:
        assert re.match(re.escape(str(path)) + r":\d+:\d+: error: \S.*expected", line), line
    steps = [s for d in json.loads(stdout) for s in d["steps"]] if stdout.strip() else []
    if status == 2:
        assert errors and not steps
    if status == 0:
        assert not errors and steps and all(s["verdict"] == "proven" for s in steps)
    for step in steps:
        assert step["verdict"] in ("proven", "refuted", "undecided")
        assert step["seconds"] <= TIMEOUT + SLACK, step
        if step["verdict"] == "undecided":
            assert step["reason"]
    assert elapsed <= 30 + len(steps) * (TIMEOUT + SLACK)
