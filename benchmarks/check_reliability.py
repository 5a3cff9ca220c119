"""How reliably `elbocheck check` ends: mutated examples and built-to-hurt inputs (run on demand; prints a table).

    python benchmarks/check_reliability.py [--inputs 200] [--seed 0] [--timeout 2] [--keep DIR]

Every input should end in verdicts, or in an error of the form FILE:LINE:COLUMN: error: ..., with exit status 0, 1
or 2, each step within the time limit (plus a second for the timer to land), and never a traceback. The inputs are
the examples (derivations/examples/) after 1-3 random mutations (elbocheck.derivations.latex.mutations), then the
fixed inputs of issue 12 (a 5 MB file, a 500-deep \\frac, a line of 50k terms, a tower of exponents, a 5000-component
vector). Inputs that break the contract are written to --keep DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

from elbocheck.derivations.latex.mutations import apply, random_mutations

from elbocheck.cli import main as cli_main

EXAMPLES = Path(__file__).resolve().parents[1] / "derivations" / "examples"
HEADER = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n"


def fixed_inputs() -> dict[str, tuple[str, str]]:
    deep = "p(x)"
    for _ in range(500):
        deep = r"\frac{" + deep + "}{p(z)}"
    return {
        "5 MB file": (".tex", HEADER + ("Prose that is not math. " * 40 + "\n") * 5300
                      + "$$\\log p(x) = \\log p(x)$$\n"),
        "500-deep \\frac": (".tex", HEADER + "$$\\log p(x) = \\log " + deep + "$$\n"),
        "line of 50k terms": (".tex", HEADER + "$$\\log p(x) = " + " + ".join([r"\log p(x)"] * 50_000) + "$$\n"),
        "tower of exponents": (".tex", HEADER + "$$\\log p(x) = \\log p(x)^{9^{9^{9}}}$$\n"),
        "vector of 5000": (".tex", HEADER.rstrip("\n") + "; vectors: z = 5000\n$$\\log p(x) = \\log p(x)$$\n"),
        "unused coefficient": (".tex", HEADER + "% coefficients: foo > 0\n$$\\log p(x) = \\log p(x)$$\n"),
        "empty range": (".tex", HEADER + "% coefficients: 2 <= beta <= 1\n$$\\log p(x) = \\beta \\log p(x)$$\n"),
    }


def run_one(path: Path, timeout: float) -> dict:
    """Run `elbocheck check` in this process; classify how it ended."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    crash = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli_main(["check", str(path), "--json", "--quiet", "--timeout", str(timeout)])
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - anything escaping is what we count
        status, crash = None, f"{type(error).__name__}: {error}"
    seconds = time.perf_counter() - start
    stdout, stderr = out.getvalue(), err.getvalue()
    steps = []
    if stdout.strip():
        try:
            steps = [s for d in json.loads(stdout) for s in d["steps"]]
        except (ValueError, KeyError, TypeError):
            crash = crash or "stdout is not the JSON list"
    errors = [line for line in stderr.splitlines() if "error:" in line]
    placed = re.compile(re.escape(str(path)) + r":\d+:\d+: error: \S")
    if crash or "Traceback" in stderr or status not in (0, 1, 2):
        outcome = "traceback or crash"
    elif any(not placed.match(line) for line in errors):
        outcome = "error without its place"
    elif errors:
        outcome = "verdicts, then a placed error" if steps else "a placed error"
    else:
        outcome = "verdicts"
    return {"outcome": outcome, "status": status, "seconds": seconds, "steps": len(steps),
            "over_limit": sum(s["seconds"] > timeout + 1.0 for s in steps),
            "timed_out": sum((s["reason"] or "").startswith("time limit") for s in steps),
            "internal": sum((s["reason"] or "").startswith("internal error") for s in steps),
            "recursion": "RecursionError" in stdout + stderr, "first_error": errors[0] if errors else crash or ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    examples = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".tex", ".md"))
    outcomes: Counter = Counter()
    totals: Counter = Counter()
    slowest = 0.0
    broken = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.inputs):
            example = examples[i % len(examples)]
            text = apply(example.read_text(encoding="utf-8"), random_mutations(rng))
            path = Path(tmp) / f"input{i:04d}{example.suffix}"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            result = run_one(path, args.timeout)
            outcomes[result["outcome"]] += 1
            for key in ("steps", "over_limit", "timed_out", "internal"):
                totals[key] += result[key]
            totals["recursion"] += result["recursion"]
            slowest = max(slowest, result["seconds"])
            if result["outcome"] in ("traceback or crash", "error without its place") or result["over_limit"] \
                    or result["recursion"]:
                broken.append((path.name, result, text))
        print(f"elbocheck check reliability ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
              f"{args.inputs} mutated examples, seed {args.seed}, --timeout {args.timeout:g})")
        print(f"{'outcome':34s} {'inputs':>7s}")
        for outcome in ("verdicts", "verdicts, then a placed error", "a placed error", "error without its place",
                        "traceback or crash"):
            print(f"{outcome:34s} {outcomes[outcome]:7d}")
        print(f"steps judged {totals['steps']}; undecided at the time limit {totals['timed_out']}; over the limit "
              f"by more than 1 s {totals['over_limit']}; undecided by an internal error {totals['internal']}; "
              f"RecursionError shown {totals['recursion']}; slowest input {slowest:.1f} s")
        print(f"\n{'fixed input':24s} {'status':>6s} {'seconds':>8s}  first error")
        for name, (suffix, text) in fixed_inputs().items():
            path = Path(tmp) / f"fixed{suffix}"
            path.write_text(text, encoding="utf-8")
            result = run_one(path, args.timeout)
            shown = result["first_error"].replace(str(path), "FILE")
            print(f"{name:24s} {result['status']!s:>6s} {result['seconds']:8.2f}  {shown[:110]}")
        if args.keep is not None and broken:
            args.keep.mkdir(parents=True, exist_ok=True)
            for name, result, text in broken:
                (args.keep / name).write_text(text, encoding="utf-8", errors="surrogatepass")
                (args.keep / (name + ".result.json")).write_text(json.dumps(result, indent=2))
            print(f"\n{len(broken)} inputs that break the contract written to {args.keep}")


if __name__ == "__main__":
    main()
