"""``elbocheck plot RUN_DIR [--what ...]``: figures of a training run, written as PNG into the run directory.

* ``terms`` (default): every logged term against epochs, one panel per term, one line per split (``terms.png``);
* ``traversals``: one row per latent dimension, grouped by latent (``traversals.png``);
* ``reconstructions``: inputs above their reconstructions (``reconstructions.png``);
* ``samples``: draws from the prior, one row per class for label models (``samples.png``);
* ``swaps``: the attribute swap grid of a label model (``swaps.png``);
* ``all``: every one of these that exists for the run's model.

The pictures load the model of the last checkpoint and need image data. Exit status: 0 when every figure was written,
2 when the run directory or its log or checkpoint cannot be read, a picture does not exist for the run (swaps of a
model without labels, pictures of vector data) or an argument is wrong; figures written before an error are kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHOICES = ("terms", "traversals", "reconstructions", "samples", "swaps", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'elbocheck train'")
    parser.add_argument("--what", "-w", nargs="+", choices=CHOICES, default=["terms"], metavar="PICTURE",
                        help=f"which figures: {', '.join(CHOICES)} (default: terms); each goes to RUN_DIR/PICTURE.png")
    parser.add_argument("--output", "-o", metavar="PATH", default=None,
                        help="a file for a single figure (.png appended unless the name ends in an image format "
                             "matplotlib writes), or a directory for several (default: RUN_DIR)")
    parser.add_argument("--terms", metavar="NAME", nargs="+", default=None,
                        help="terms figure: only these terms (default: every logged term)")
    parser.add_argument("--seed", type=int, default=0,
                        help="pictures: which examples and prior draws are shown (default: 0)")


def run(args: argparse.Namespace) -> int:
    from elbocheck.models.plotting import figure_path, plot_run, save_figure

    wanted = list(dict.fromkeys(args.what))
    run_dir = Path(args.run_dir)
    output = args.output
    try:
        if output is not None and ("all" in wanted or len(wanted) > 1) and not Path(output).is_dir():
            if Path(output).suffix:
                raise ValueError(f"--output: several figures need a directory, got the file name {output!r}")
            Path(output).mkdir(parents=True, exist_ok=True)  # several figures: OUTPUT is their directory
            output = str(Path(output)) + "/"
        if "terms" in wanted or "all" in wanted:
            print(f"wrote {plot_run(run_dir, output, terms=args.terms)}")
        pictures = [what for what in wanted if what not in ("terms", "all")]
        if pictures or "all" in wanted:
            from elbocheck.models.pictures import applicable_pictures, draw_picture
            from elbocheck.models.trained_run import load_trained_run

            trained = load_trained_run(run_dir)
            if "all" in wanted:
                pictures = list(dict.fromkeys(pictures + list(applicable_pictures(trained.model))))
            title = f"{trained.config.model} on {trained.config.data}, epoch {trained.epoch}"
            for what in pictures:
                figure = draw_picture(what, trained.model, trained.dataset, title=title, seed=args.seed)
                path = save_figure(figure, figure_path(output, run_dir / f"{what}.png"))
                print(f"wrote {path}")
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"elbocheck plot: error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="elbocheck plot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
