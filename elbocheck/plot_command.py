"""``elbocheck plot RUN_DIR``: draw every term of a training run against epochs (PNG)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'elbocheck train'")
    parser.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="where to write the PNG (default: RUN_DIR/terms.png)")
    parser.add_argument("--terms", metavar="NAME", nargs="+", default=None,
                        help="only these terms (default: every logged term)")


def run(args: argparse.Namespace) -> int:
    from elbocheck.models.plotting import plot_run

    try:
        path = plot_run(args.run_dir, args.output, terms=args.terms)
    except (FileNotFoundError, ValueError) as error:
        print(f"elbocheck plot: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="elbocheck plot", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
