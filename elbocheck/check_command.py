"""``elbocheck check FILE [--json]``: check a derivation written in LaTeX (``.tex``, or ``.md`` with display math),
step by step.

For each step: the file line, the relation, the verdict (proven / refuted / undecided), the certificate or the
counterexample; ``--json`` prints the same JSON list as ``elbocheck verify --json``. The file format (a model header
and the derivation) is documented in :mod:`elbocheck.derivations.latex`; ``elbocheck check --format`` prints it.

Exit status: 0 when every step is proven; 1 when a step is refuted or undecided, or when the math has an error after
at least one judged step (the steps before the error are judged and printed, then the error); 2 when the file cannot
be read (missing, not UTF-8, no header or a malformed one, no display math, no steps) or nothing could be judged
before an error. Errors go to stderr as ``FILE:LINE:COLUMN: error: ... expected ...``.
"""

from __future__ import annotations

import sys
import time

from elbocheck.report import results_json, results_table


def add_arguments(parser) -> None:
    parser.add_argument("file", nargs="?", metavar="FILE", help="a .tex or .md file: a model header and the derivation")
    parser.add_argument("--json", action="store_true", help="print the JSON list that 'elbocheck verify --json' prints")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every counterexample's tables")
    parser.add_argument("--format", action="store_true", help="print the documentation of the input format and exit")


def run(args) -> int:
    try:
        return _run(args)
    except BrokenPipeError:  # output piped into a pager or head that closed early
        sys.stderr.close()
        return 1


def _run(args) -> int:
    from elbocheck.derivations import latex
    from elbocheck.derivations.checker import DerivationResult
    from elbocheck.derivations.latex import LatexError

    if args.format:
        print(latex.__doc__)
        return 0
    if not args.file:
        print("elbocheck check: error: expected a FILE (.tex or .md); see 'elbocheck check --format'", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        parsed = latex.parse_file(args.file)
    except LatexError as error:
        print(error.format(), file=sys.stderr)
        return 2
    except Exception as error:  # never a traceback for a bad input
        print(f"{args.file}: error: cannot read the derivation ({type(error).__name__}: {error})", file=sys.stderr)
        return 2
    if parsed.steps == 0 and parsed.error is None:
        print(f"{args.file}: error: no derivation steps found; expected lines joined by relations (=, \\geq, \\leq) "
              "in display math after the model header", file=sys.stderr)
        return 2
    checked = latex.check_parsed(parsed)
    elapsed = time.perf_counter() - start
    steps = checked.step_results
    if args.json:
        print(results_json(checked.results))
    elif steps:
        shown = [DerivationResult(r.derivation, [latex.labelled(s) for s in r.steps])
                 for r in checked.results if r.steps]
        print(results_table(shown, verbose=args.verbose, show_expected=False))
        counts = {v: sum(s.verdict == v for s in steps) for v in ("proven", "refuted", "undecided")}
        print(f"\n{len(steps)} steps: {counts['proven']} proven, {counts['refuted']} refuted, "
              f"{counts['undecided']} undecided ({elapsed:.1f} s)")
        for s in steps:
            if s.assumptions:
                without = (s.without_assumptions or {}).get("verdict", "not checked")
                print(f"line {s.line} ({s.label}): {s.verdict} assuming {'; '.join(s.assumptions)}; "
                      f"without the assumption: {without}")
    if parsed.error is not None:
        print(parsed.error.format(), file=sys.stderr)
        return 1 if steps else 2
    return 0 if steps and all(s.verdict == "proven" for s in steps) else 1
