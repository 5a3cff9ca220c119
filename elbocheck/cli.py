"""The ``elbocheck`` command line: one sub-command per job, each in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command name -> (module that defines ``add_arguments(parser)`` and ``run(args) -> int``, one-line help)
SUBCOMMANDS = {
    "verify": ("elbocheck.verify_command", "check the library of ELBO derivations step by step"),
    "check": ("elbocheck.check_command", "check a derivation written in LaTeX, step by step"),
    "train": ("elbocheck.train_command", "train a model and log every term of its objective per epoch"),
    "plot": ("elbocheck.plot_command",
             "figures of a training run (PNG): logged terms, latent traversals, reconstructions, samples, swaps"),
    "audit": ("elbocheck.audit_command",
              "check the MI / TC / dimension-wise KL / KL terms of someone else's loss function against exact values"),
    "metrics": ("elbocheck.metrics_command",
                "disentanglement metrics of trained runs (MIG, FactorVAE, DCI, SAP, modularity) with standard errors"),
    "experiment": ("elbocheck.experiment_command",
                   "run an experiment (kl-enough: is the KL term to a label-conditional prior enough?)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elbocheck", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
