"""The corpus of published derivations: every file's verdicts against its truths, and the time (run on demand).

    python benchmarks/corpus.py [--markdown]
    python benchmarks/corpus.py --adversarial

For each file of ``derivations/corpus/papers``: the steps its sidecar gives a truth (true / false), the checker's
verdicts on them (proven / refuted / undecided / not read), contradictions (a false step proven or a true step
refuted: there must be none; ``tests/derivations/test_papers_corpus.py`` fails on one) and the seconds to read and
check the file on this machine (one process, one thread). ``--markdown`` prints the table of README.md.
``--adversarial`` instead checks the API steps of the adversarial corpus (``derivations/corpus/adversarial.py``) and
prints their truths against the verdicts.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tomllib
from pathlib import Path

from elbocheck.derivations.corpus import CORPUS_DIR
from elbocheck.derivations.latex import LatexError, check_file

PAPERS = CORPUS_DIR / "papers"


def report(path: Path) -> dict:
    truths = {s["at"]: s["truth"] for s in tomllib.loads(path.with_suffix(".toml").read_text("utf-8"))["step"]}
    start = time.perf_counter()
    row = {"file": path.stem, "true": sum(truths.values()), "false": len(truths) - sum(truths.values()),
           "proven": 0, "refuted": 0, "undecided": 0, "not read": 0, "contradictions": 0, "error": ""}
    try:
        checked = check_file(path)
    except LatexError as error:
        row["not read"] = len(truths)
        row["error"] = error.message
        row["seconds"] = time.perf_counter() - start
        return row
    results = {r.label: r for r in checked.step_results}
    for label, truth in truths.items():
        result = results.get(label)
        if result is None:
            row["not read"] += 1
            continue
        row[result.verdict] += 1
        if (result.verdict == "proven" and not truth) or (result.verdict == "refuted" and truth):
            row["contradictions"] += 1
    row["seconds"] = time.perf_counter() - start
    return row


def adversarial() -> None:
    from elbocheck.derivations import Checker, Step
    from elbocheck.derivations.corpus.adversarial import STEPS

    checker = Checker()
    counts = {(truth, v): 0 for truth in (True, False) for v in ("proven", "refuted", "undecided")}
    start = time.perf_counter()
    for entry in STEPS:
        result = checker.check_step(entry.model, Step(entry.lhs, entry.relation, entry.rhs, tuple(entry.assumptions)))
        counts[(entry.truth, result.verdict)] += 1
    print(f"{'truth':6s} {'steps':>6s} {'proven':>7s} {'refuted':>8s} {'undecided':>10s}")
    for truth in (True, False):
        row = [counts[(truth, v)] for v in ("proven", "refuted", "undecided")]
        print(f"{str(truth).lower():6s} {sum(row):6d} {row[0]:7d} {row[1]:8d} {row[2]:10d}")
    wrong = counts[(False, "proven")] + counts[(True, "refuted")]
    print(f"\n{len(STEPS)} API steps, {wrong} contradictions; {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--adversarial", action="store_true", help="the adversarial corpus's API steps instead")
    args = parser.parse_args()
    if args.adversarial:
        adversarial()
        return
    rows = [report(p) for p in sorted(PAPERS.glob("*.tex"))]
    columns = ["true", "false", "proven", "refuted", "undecided", "not read", "contradictions"]
    if args.markdown:
        print("| file | steps (true / false) | proven | refuted | undecided | not read |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| `{r['file']}` | {r['true']} / {r['false']} | {r['proven']} | {r['refuted']} | {r['undecided']} | "
                  f"{r['not read']} |")
    else:
        print(f"{'file':30s} " + " ".join(f"{c:>14s}" for c in columns) + f" {'seconds':>8s}")
        for r in rows:
            print(f"{r['file']:30s} " + " ".join(f"{r[c]:>14d}" for c in columns) + f" {r['seconds']:8.2f}"
                  + (f"  ({r['error'][:60]}...)" if r["error"] else ""))
    totals = {c: sum(r[c] for r in rows) for c in columns}
    print(f"\n{len(rows)} files, " + ", ".join(f"{totals[c]} {c}" for c in columns) +
          f"; {sum(r['seconds'] for r in rows):.1f} s in all ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
