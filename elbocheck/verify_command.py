"""elbocheck verify [NAME ...] [--json]: check the library of derivations and print a table.

Exit status:
  0  every verdict matches the expectation recorded with its step
  1  a verdict differs from its expectation
  2  bad arguments (an unknown derivation name)
"""

from __future__ import annotations

import argparse
import sys
import time

from elbocheck.derivations import Checker
from elbocheck.derivations.library import all_derivations
from elbocheck.report import results_json, results_table


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("names", nargs="*", metavar="NAME", help="derivations to check (default: all); see --list")
    parser.add_argument("--json", action="store_true", help="print a JSON list of derivations and their steps")
    parser.add_argument("--list", action="store_true", help="list the derivations in the library and exit")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every counterexample's tables")


def run(args) -> int:
    derivations = all_derivations()
    if args.list:
        for d in derivations:
            print(f"{d.name:28s} {d.title}  [{d.source}]")
        return 0
    if args.names:
        known = {d.name for d in derivations}
        unknown = [n for n in args.names if n not in known]
        if unknown:
            print(f"elbocheck verify: error: unknown derivation(s) {', '.join(unknown)}; choose from: "
                  f"{', '.join(sorted(known))} (see elbocheck verify --list)", file=sys.stderr)
            return 2
        derivations = [d for d in derivations if d.name in args.names]
    checker = Checker()
    start = time.perf_counter()
    results = [checker.check_derivation(d) for d in derivations]
    elapsed = time.perf_counter() - start
    if args.json:
        print(results_json(results))
    else:
        print(results_table(results, verbose=args.verbose))
        steps = [s for r in results for s in r.steps]
        mismatched = [s for s in steps if not s.matches]
        counts = {v: sum(s.verdict == v for s in steps) for v in ("proven", "refuted", "undecided")}
        print(f"\n{len(steps)} steps in {len(results)} derivations: {counts['proven']} proven, {counts['refuted']} refuted, "
              f"{counts['undecided']} undecided; {len(steps) - len(mismatched)} match their expected verdicts "
              f"({elapsed:.1f} s)")
    return 0 if all(r.matches for r in results) else 1
