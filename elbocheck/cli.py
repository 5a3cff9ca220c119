"""The ``elbocheck`` command line: one sub-command per job, each in its own module (``add_arguments(parser)`` and
``run(args) -> exit code``); this module only dispatches, and shows the help and version."""

from __future__ import annotations

import argparse
import importlib
import sys

from elbocheck import __version__

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

DESCRIPTION = """\
elbocheck makes variational-autoencoder objectives trustworthy: it checks each step of an ELBO derivation (proven,
refuted with a counterexample, or undecided with the reason), and trains VAE-family models that report every term
of their objective."""

EPILOG = """\
examples:
  elbocheck verify                                  check every derivation in the library
  elbocheck check my_derivation.tex                 check a derivation written in LaTeX
  elbocheck train vae --data digits --epochs 20     train a model; every term logged per epoch
  elbocheck plot runs/vae-digits-seed0              plot the logged terms of a run
  elbocheck experiment kl-enough                    is the KL term to a label-conditional prior enough?

'elbocheck COMMAND --help' shows a command's options, examples and exit codes. Errors are printed as one line,
'elbocheck COMMAND: error: ...', and every command exits with 2 on bad arguments."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elbocheck", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"elbocheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run, _parser=sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the command's own parser, with its usage line, not the top-level one
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"elbocheck {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
