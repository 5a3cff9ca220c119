"""``elbocheck experiment NAME``: run an experiment that answers a seed's question with measurements.

Experiments:

    kl-enough   is the KL term to a label-conditional prior enough to put the label into w (CSVAE, DIVA), or is
                the auxiliary classifier / adversary needed? (seed 000; see elbocheck.experiments.kl_enough)

Examples::

    elbocheck experiment kl-enough                          # default preset: about 10 minutes on 2 CPU cores
    elbocheck experiment kl-enough --out runs/kl-enough     # results.csv, report.md, *.png, runs/ there
    elbocheck experiment kl-enough --full                   # the GPU settings (10 seeds, all data, more epochs)
    elbocheck experiment kl-enough --preset small           # a smoke run in well under a minute
    elbocheck experiment kl-enough --seeds 0 1 2 3 --arms csvae_digits csvae_digits_no_adversary
    elbocheck experiment kl-enough --report-only --out runs/kl-enough   # rewrite the report from results.csv
    elbocheck experiment --list                             # experiments, presets and arms

A rerun with the same --out skips the runs already in its results.csv (a killed run resumes from its checkpoint).
Exit status: 0 done, 1 some run failed (the others are kept and reported), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys

EXPERIMENTS = {"kl-enough": "is the KL term to a label-conditional prior enough? (CSVAE, DIVA; seed 000)"}
DEFAULT_OUT = "runs/kl-enough"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("name", nargs="?", metavar="NAME", help=f"the experiment: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--preset", default=None, metavar="PRESET",
                        help="small (seconds), default (about 10 min on 2 CPU cores) or full (GPU)")
    parser.add_argument("--full", action="store_true", help="the GPU settings (same as --preset full)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S", help="seeds (default: preset's)")
    parser.add_argument("--arms", nargs="+", default=None, metavar="ARM", help="arms to run (default: preset's)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: preset's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (0: torch's default; default: preset's)")
    parser.add_argument("--device", default=None, help="cpu, auto, cuda or cuda:N (default: preset's)")
    parser.add_argument("--report-only", action="store_true", help="rewrite report.md and the figures from the CSV")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the experiments, presets and arms, and exit")


def _fail(message: str) -> int:
    print(f"elbocheck experiment: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    from elbocheck.experiments import kl_enough

    if args.list:
        for name, text in EXPERIMENTS.items():
            print(f"{name:12s} {text}")
        print("\npresets: " + ", ".join(kl_enough.PRESETS))
        print("arms:")
        for arm in kl_enough.ARMS.values():
            print(f"  {arm.name:34s} {arm.title}")
        return 0
    if args.name is None:
        return _fail(f"no experiment given; choose from: {', '.join(EXPERIMENTS)}")
    if args.name not in EXPERIMENTS:
        return _fail(f"unknown experiment {args.name!r}; choose from: {', '.join(EXPERIMENTS)}")
    if args.full and args.preset not in (None, "full"):
        return _fail(f"--full and --preset {args.preset} contradict each other; give one of them")
    preset_name = "full" if args.full else (args.preset or "default")
    try:
        settings = kl_enough.preset(preset_name)
        changes = {}
        if args.seeds is not None:
            changes["seeds"] = tuple(args.seeds)
        if args.arms is not None:
            changes["arms"] = tuple(args.arms)
        if args.workers is not None:
            changes["workers"] = args.workers
        if args.threads is not None:
            changes["torch_threads"] = args.threads
        if args.device is not None:
            changes["device"] = args.device
        if args.no_progress:
            changes["progress"] = False
        settings = settings.replace(**changes)
        settings.validate()
        if args.report_only:
            path = kl_enough.write_kl_enough_report(args.out)
            print(f"report: {path}")
            return 0
        result = kl_enough.run_kl_enough(args.out, settings)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        print(f"\nelbocheck experiment: interrupted; rerun the same command to continue ({args.out})",
              file=sys.stderr)
        return 130
    print(f"kl-enough: {result.runs_trained} run(s) trained, {result.runs_skipped} reused, "
          f"{result.wall_seconds:.1f} s; results {result.results_csv}; report {result.report}")
    if result.failures:
        print(f"kl-enough: {len(result.failures)} run(s) failed:", file=sys.stderr)
        for failure in result.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0
