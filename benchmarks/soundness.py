"""A longer random soundness audit than CI runs (run on demand; prints a table).

Draws random steps of random models with the strategy of ``tests/derivations/test_soundness.py`` (KLs, ELBOs,
log-evidences, mutual informations and differential entropies, combined with small integer weights under every
relation), checks each with the same quick checker settings, and hands every verdict to the audit of
``tests/derivations/soundness_audit.py``: a proof must hold on the audit's own oracle instances (discrete, and
linear-Gaussian at spreads 1, 1/16 and 16), a refutation must replay in 50-digit arithmetic. CI runs 40 such steps;
this runs as many as asked, with Hypothesis randomized from ``--seed``.

    python benchmarks/soundness.py [--steps 4000] [--seed 0]

Exit status 1 when the audit reports any problem (each is printed with its step and seed).
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "derivations"))

import test_soundness
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from soundness_audit import Case, audit


class CountingChecker:
    """The checker the audit is given, counting its verdicts."""

    def __init__(self, checker):
        self.checker = checker
        self.verdicts: collections.Counter = collections.Counter()

    def check_step(self, model, step, *args, **kwargs):
        result = self.checker.check_step(model, step, *args, **kwargs)
        self.verdicts[result.verdict] += 1
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000, help="random steps to audit")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    checker = CountingChecker(test_soundness.QUICK)
    problems: list[str] = []

    @hypothesis_seed(args.seed)
    @settings(max_examples=args.steps, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(case=test_soundness.steps(), audit_seed=st.integers(0, 2 ** 16))
    def one(case, audit_seed):
        model, step = case
        found = audit(checker, [Case("random step", model, step)], instances=2, seed=audit_seed)
        for problem in found:
            problems.append(f"{model.generative} {model.inference}: {step.lhs} {step.relation} {step.rhs} "
                            f"(audit seed {audit_seed}): {problem}")
            print("PROBLEM", problems[-1], flush=True)

    start = time.perf_counter()
    one()
    seconds = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"random soundness audit ({platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}; "
          f"Hypothesis seed {args.seed})")
    print(f"{'steps':>6s} {'proven':>7s} {'refuted':>8s} {'undecided':>10s} {'problems':>9s} {'seconds':>8s}")
    verdicts = checker.verdicts
    total = sum(verdicts.values())
    print(f"{total:6d} {verdicts['proven']:7d} {verdicts['refuted']:8d} {verdicts['undecided']:10d} "
          f"{len(problems):9d} {seconds:8.0f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
