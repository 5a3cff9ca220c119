"""``elbocheck metrics RUN_DIR [RUN_DIR ...]``: the standard disentanglement metrics of trained runs on data with
known factors (sprites, dsprites), each with its standard error over repeats.

Metrics: MIG (Chen et al. 2018; posterior samples), the FactorVAE score (Kim & Mnih 2018), DCI disentanglement,
completeness and informativeness (Eastwood & Williams 2018; gradient-boosted trees as in disentanglement_lib by
default, or the paper's lasso or random-forest regressors), SAP
(Kumar et al. 2018; discrete factors, balanced accuracy) and modularity (Ridgeway & Mozer 2018), all but MIG on the
posterior means (the representation disentanglement_lib evaluates), for models whose encoders read x alone; the
code is every latent's mean, concatenated in the model's order.

examples:
  elbocheck metrics runs/vae-sprites runs/beta_vae-sprites --markdown
  elbocheck metrics runs/vae-sprites --metrics factor_vae dci --preset paper --repeats 5

Presets (points per repeat): ``small`` (default; minutes on a CPU) and ``paper`` (disentanglement_lib's
unsupervised_study_v1: 10,000 training and 5,000 evaluation points; FactorVAE 10,000 + 5,000 votes of batches of 64).
Sources: ``grid`` (default for sprites) renders any point of the sprites grid, factors uniform; ``data`` (default
otherwise) draws the run's training examples (factor values as they occur; a batch with one factor fixed is drawn
among the examples sharing its value) and, for the held-out points of DCI and SAP, its validation examples.

Exit status: 0 when every metric was computed; 2 when a run cannot be read, its data has no factors, its model's
encoders need labels, or an argument is wrong (runs finished before are printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

METRICS = ("mig", "factor_vae", "dci", "sap", "modularity")
PRESETS = {
    "small": {"mig": 2000, "factor_vae": {"num_train": 500, "num_eval": 250, "num_variance_estimate": 2000,
                                          "batch_size": 64},
              "dci": {"num_train": 1000, "num_test": 500}, "sap": {"num_train": 1000, "num_test": 500},
              "modularity": {"num_train": 2000}},
    "paper": {"mig": 10000, "factor_vae": {"num_train": 10000, "num_eval": 5000, "num_variance_estimate": 10000,
                                           "batch_size": 64},
              "dci": {"num_train": 10000, "num_test": 5000}, "sap": {"num_train": 10000, "num_test": 5000},
              "modularity": {"num_train": 10000}},
}
COLUMNS = (("mig", "MIG"), ("factor_vae_score", "FactorVAE"), ("dci.disentanglement", "DCI D"),
           ("dci.completeness", "DCI C"), ("dci.informativeness", "DCI I"), ("sap", "SAP"),
           ("modularity", "modularity"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    text = __doc__.replace("``", "")  # the help is read in a terminal, not as reStructuredText
    parser.description = text.split("\n\n")[0]
    parser.epilog = "\n\n".join(text.split("\n\n")[2:])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by 'elbocheck train'")
    parser.add_argument("--metrics", nargs="+", choices=METRICS, default=list(METRICS), metavar="METRIC",
                        help=f"which metrics: {', '.join(METRICS)} (default: all)")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="small", help="points per repeat (default small)")
    parser.add_argument("--repeats", type=int, default=3, help="independent repeats for the standard error (default 3)")
    parser.add_argument("--source", choices=("auto", "data", "grid"), default="auto",
                        help="where factor values come from: the sprites grid (sprites only), or the run's data set "
                             "(training examples; held-out points from its validation split); auto: grid for sprites")
    parser.add_argument("--dci-regressor", choices=("gradient_boosting", "lasso", "random_forest"),
                        default="gradient_boosting",
                        help="DCI's predictors: gradient-boosted classifiers (disentanglement_lib; informativeness = "
                             "accuracy; slow for factors with many values), or the paper's lasso or random-forest "
                             "regressors (informativeness = normalised RMSE)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=256, help="images encoded at once (memory bound)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="one markdown table, a row per run")
    output.add_argument("--json", action="store_true", help="JSON: per run, every score with its repeats")


@dataclass
class RunScores:
    run: str
    scores: dict  # name -> RepeatedScore
    seconds: float


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1 or args.chunk_size < 1:
        print("elbocheck metrics: error: --repeats and --chunk-size must be at least 1", file=sys.stderr)
        return 2
    results: list[RunScores] = []
    status = 0
    for run_dir in args.run_dirs:
        try:
            start = time.perf_counter()
            scores = measure_run(run_dir, args.metrics, preset=args.preset, repeats=args.repeats,
                                 source_kind=args.source, seed=args.seed, chunk_size=args.chunk_size,
                                 dci_regressor=args.dci_regressor,
                                 progress=lambda text: print(f"elbocheck metrics: {text}", file=sys.stderr,
                                                             flush=True))
            results.append(RunScores(run_dir, scores, time.perf_counter() - start))
        except (FileNotFoundError, ValueError) as error:
            print(f"elbocheck metrics: error: {error}", file=sys.stderr)
            status = 2
            break
    if args.json:
        print(json.dumps([{"run": r.run, "seconds": r.seconds, "scores": {
            name: {"value": s.value, "standard_error": s.standard_error, "per_repeat": list(s.per_repeat)}
            for name, s in r.scores.items()}} for r in results], indent=2))
    elif args.markdown:
        print(markdown_table(results, args.repeats))
    else:
        for result in results:
            print(f"{result.run} ({result.seconds:.0f} s)")
            for score in result.scores.values():
                print(f"  {score}")
    return status


def markdown_table(results: list[RunScores], repeats: int) -> str:
    present = [(key, title) for key, title in COLUMNS if any(key in r.scores for r in results)]
    lines = ["| run | " + " | ".join(title for _, title in present) + " |",
             "| --- |" + " ---: |" * len(present)]
    for result in results:
        cells = []
        for key, _ in present:
            score = result.scores.get(key)
            cells.append("-" if score is None else f"{score.value:.3f} ± {score.standard_error:.3f}")
        lines.append(f"| {result.run} | " + " | ".join(cells) + " |")
    kinds = {r.scores["dci.informativeness"].details.get("informativeness_kind") for r in results
             if "dci.informativeness" in r.scores}
    note = {"accuracy": "; DCI I: held-out accuracy", "nrmse": "; DCI I: held-out normalised RMSE (lower is better)"}
    lines.append(f"\n(mean ± standard error over {repeats} repeats{''.join(note.get(k, '') for k in kinds)})")
    return "\n".join(lines)


def measure_run(run_dir: str, metrics, *, preset: str, repeats: int, source_kind: str, seed: int, chunk_size: int,
                dci_regressor: str = "gradient_boosting", progress=None) -> dict:
    """Every asked metric of one run: {score name: RepeatedScore}."""
    from elbocheck.estimators.dci import dci_score
    from elbocheck.estimators.factor_vae_score import factor_vae_score
    from elbocheck.estimators.mig_score import mig_score
    from elbocheck.estimators.modularity import modularity_score
    from elbocheck.estimators.sap import sap_score
    from elbocheck.models.data.ground_truth import DataSetFactors, SpritesFactors
    from elbocheck.models.trained_run import load_trained_run

    trained = load_trained_run(run_dir)
    if source_kind == "auto":
        source_kind = "grid" if trained.config.data == "sprites" else "data"
    test_source = None
    if source_kind == "grid":
        if trained.config.data != "sprites":
            raise ValueError(f"--source grid: only the sprites data set renders any factor combination; "
                             f"{run_dir} was trained on {trained.config.data!r} (use --source data)")
        source = SpritesFactors()
    else:  # held-out points from another split, so that a predictor is not scored on points it was fitted to
        splits = trained.dataset.splits
        source = DataSetFactors(trained.dataset, "train")
        test_source = DataSetFactors(trained.dataset, "validation") if "validation" in splits else None
    posterior_parameters = posterior_parameters_of(trained.model, trained.name)
    settings = PRESETS[preset]
    scores = {}
    for metric in metrics:
        if progress is not None:
            progress(f"{run_dir}: {metric}")
        if metric == "mig":
            scores.update(mig_score(source, posterior_parameters, num_points=settings["mig"], repeats=repeats,
                                    seed=seed, chunk_size=chunk_size))
            continue
        represent = (lambda x: posterior_parameters(x)[0])
        common = {"repeats": repeats, "seed": seed, "chunk_size": chunk_size}
        if metric == "factor_vae":
            result = factor_vae_score(source, represent, **settings["factor_vae"], **common)
        elif metric == "dci":
            result = dci_score(source, represent, **settings["dci"], **common, test_source=test_source,
                               regressor=dci_regressor)
        elif metric == "sap":
            result = sap_score(source, represent, **settings["sap"], **common, test_source=test_source)
        else:
            result = modularity_score(source, represent, **settings["modularity"], **common)
        scores.update({score.name: score for score in result.values()})
    return scores


def posterior_parameters_of(model, name: str):
    """x -> (means, log-variances) of every latent, concatenated in the model's latent order."""
    import torch

    from elbocheck.models.data.core import Batch
    from elbocheck.models.networks import GaussianEncoder
    from elbocheck.models.terms import posterior_parameters

    if any(isinstance(m, GaussianEncoder) and m.condition_dim for m in model.modules()):
        raise ValueError(f"model {name!r} encodes with the label y; the disentanglement metrics are computed for "
                         "models whose encoders read x alone")

    @torch.no_grad()
    def parameters(x):
        posteriors = model.encode(Batch(x))
        pairs = [posterior_parameters(posteriors[latent]) for latent in model.LATENT_NAMES]
        return torch.cat([p[0] for p in pairs], -1), torch.cat([p[1] for p in pairs], -1)

    return parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="elbocheck metrics")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
