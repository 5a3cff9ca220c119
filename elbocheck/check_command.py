"""``elbocheck check FILE``: check a derivation written in LaTeX (``.tex``, or ``.md`` with display math), step by
step.

For each step: the file line, the relation, the verdict (proven / refuted / undecided), the certificate or the
counterexample; ``--json`` prints the same JSON list as ``elbocheck verify --json``. The file format (a model header
and the derivation) is documented in :mod:`elbocheck.derivations.latex`; ``elbocheck check --format`` prints it.

While it runs, one progress line per step goes to stderr as the step is judged (``--quiet`` turns them off); each step
has a time limit (``--timeout``), after which it is undecided with the reason. Errors go to stderr as
``FILE:LINE:COLUMN: error: ... expected ...``; the exit statuses are in :data:`EXIT_STATUSES`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from elbocheck.report import results_json, results_table

EXIT_STATUSES = """\
exit status:
  0    every step is proven
  1    a step is refuted or undecided (over the time limit, for instance), or the math has an error after at
       least one judged step (the judged steps are printed, then the error)
  2    the file cannot be read (missing, not UTF-8, over the size limit, no header or a malformed one, no
       display math, no steps), or nothing could be judged before an error
  130  interrupted (Ctrl-C or SIGTERM): the steps judged so far are printed first

Errors go to stderr as FILE:LINE:COLUMN: error: WHAT; expected WHAT.
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds; expected e.g. 5 or 0.5 "
                                         "(0: no limit)") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} seconds; expected a finite number of seconds >= 0 (0: no limit)")
    return value


def add_arguments(parser) -> None:
    from elbocheck.derivations.latex import limits
    from elbocheck.derivations.latex.steps import DEFAULT_STEP_SECONDS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (f"{parser.description or ''}\n\nEach step is proven, refuted (with a counterexample) or "
                          "undecided (with the reason). One progress line per step goes\nto stderr as it is judged. "
                          "The time limit stops a step between Python operations (POSIX setitimer; tested on "
                          "Linux).")
    parser.epilog = EXIT_STATUSES + (
        f"\nlimits: files up to {limits.MAX_FILE_BYTES / 1e6:g} MB; a line up to {limits.MAX_LINE_CHARACTERS} "
        f"characters, {limits.MAX_OPERATORS} terms and operators,\nnesting {limits.MAX_NESTING} deep; vectors up "
        f"to {limits.MAX_VECTOR_COMPONENTS} components. 'elbocheck check --format' documents the input.")
    parser.add_argument("file", nargs="?", metavar="FILE", help="a .tex or .md file: a model header and the derivation")
    parser.add_argument("--json", action="store_true", help="print the JSON list that 'elbocheck verify --json' prints")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every counterexample's tables")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_STEP_SECONDS, metavar="SECONDS",
                        help=f"time limit of each step, after which it is undecided (default {DEFAULT_STEP_SECONDS:g}; "
                             "0: no limit)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line per step on stderr")
    parser.add_argument("--format", action="store_true", help="print the documentation of the input format and exit")


class _Interrupted(BaseException):
    """SIGTERM, raised like KeyboardInterrupt: no ``except Exception`` on the way may swallow it."""


def run(args) -> int:
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread: SIGTERM keeps its handler
        pass
    try:
        return _run(args)
    except BrokenPipeError:  # output piped into a pager or head that closed early
        sys.stderr.close()
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm(signum, frame):
    raise _Interrupted("SIGTERM")


def _run(args) -> int:
    from elbocheck.derivations import latex
    from elbocheck.derivations.checker import DerivationResult
    from elbocheck.derivations.latex import LatexError
    from elbocheck.derivations.time_limit import limit_enforceable

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
    except _Interrupted:
        print(f"{args.file}: error: interrupted while reading the file", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{args.file}: error: interrupted while reading the file", file=sys.stderr)
        return 130
    except Exception as error:  # a bug in the reader; still never a traceback for the user
        print(f"{args.file}: error: internal error while reading the derivation ({type(error).__name__}: {error}); "
              "expected a readable derivation (please report this input)", file=sys.stderr)
        return 2
    if args.timeout and not limit_enforceable():
        print("elbocheck check: warning: the time limit cannot be enforced here (it needs POSIX setitimer in the main "
              "thread); every step runs to completion", file=sys.stderr)

    total = parsed.steps
    progress = not args.quiet

    def on_start(derivation, step, number):
        if progress:
            where = latex.place(step)
            name = f"{derivation.name}: " if len(parsed.derivations) > 1 else ""
            print(f"[{number}/{total}] {name}{where} ...", end="", file=sys.stderr, flush=True)

    judged: dict[int, list] = {id(d): [] for d in parsed.derivations}
    interrupted = None
    try:
        for derivation, result in latex.iter_check(parsed, timeout=args.timeout or None, on_start=on_start):
            judged[id(derivation)].append(result)
            if progress:
                print(f" {result.verdict} {result.seconds:.1f} s", file=sys.stderr, flush=True)
    except (KeyboardInterrupt, _Interrupted) as error:
        interrupted = "SIGTERM" if isinstance(error, _Interrupted) else "Ctrl-C"
        if progress:
            print(" interrupted", file=sys.stderr, flush=True)
    results = [DerivationResult(d, judged[id(d)]) for d in parsed.derivations]
    elapsed = time.perf_counter() - start
    steps = [s for r in results for s in r.steps]
    if args.json:
        print(results_json(results))
    elif steps:
        shown = [DerivationResult(r.derivation, [latex.labelled(s) for s in r.steps]) for r in results if r.steps]
        print(results_table(shown, verbose=args.verbose, show_expected=False))
        counts = {v: sum(s.verdict == v for s in steps) for v in ("proven", "refuted", "undecided")}
        over = sum(1 for s in steps if s.verdict == "undecided" and (s.reason or "").startswith("time limit"))
        late = f"; {over} over the time limit of {args.timeout:g} s" if over else ""
        print(f"\n{len(steps)} steps: {counts['proven']} proven, {counts['refuted']} refuted, "
              f"{counts['undecided']} undecided ({elapsed:.1f} s{late})")
        for s in steps:
            if s.assumptions:
                without = (s.without_assumptions or {}).get("verdict", "not checked")
                print(f"line {s.line} ({s.label}): {s.verdict} assuming {'; '.join(s.assumptions)}; "
                      f"without the assumption: {without}")
    sys.stdout.flush()
    if interrupted is not None:
        print(f"{args.file}: error: interrupted ({interrupted}) after {len(steps)} of {total} steps; expected the "
              "check to run to the end (the judged steps are printed above)", file=sys.stderr)
        return 130
    if parsed.error is not None:
        print(parsed.error.format(), file=sys.stderr)
        return 1 if steps else 2
    return 0 if steps and all(s.verdict == "proven" for s in steps) else 1
