"""``elbocheck audit MODULE:FUNCTION``: check the KL-decomposition terms someone else's loss function returns.

The function is fed synthetic encoder outputs (z, mean, log_var and the data-set size N) whose exact mutual
information, total correlation, dimension-wise KL and KL are known (the linear-Gaussian testbed and the exact mixture
decomposition), over batch sizes, data-set sizes, latent dimensions and posterior widths; each term it returns gets
its bias and spread against the exact value on the same draws and a verdict: consistent, biased (at small batches,
vanishing as the batch grows to the data set: how much and how it scales) or wrong (biased with the whole data set as
the batch, where every correct estimator is exact), with a diagnosis when the values match a known estimator or bug.

examples:
  elbocheck audit my_losses:btc_terms                        # fn(z, mean, log_var, dataset_size) -> dict of terms
  elbocheck audit losses.py:_get_log_pz_qz_prodzi_qzCx --signature disvae --option is_mss=true
  elbocheck audit my_losses:terms --names mutual_information total_correlation dimensionwise_kl   # a 3-tuple
  elbocheck audit my_losses:terms --map mi=mutual_information --map tc=total_correlation --quick

Exit status: 0 when no term is wrong (consistent, or biased with the bias vanishing at M = N), 1 when a term is
wrong, 2 on bad arguments or a FUNCTION that cannot be imported, called as described or read (checked on a small
batch first), 3 when the function raised or returned something unreadable during the audit (the audit of the
settings finished before is printed).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_WRONG, EXIT_USAGE, EXIT_FUNCTION_FAILED = 0, 1, 2, 3
QUICK = {"dataset_sizes": (64,), "latent_dims": (3, 8), "widths": (0.1, 0.5), "batch_sizes": (8, 32), "passes": 12}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    text = __doc__.replace("``", "")  # the help is read in a terminal, not as reStructuredText
    parser.description = text.split("\n\n")[0]
    parser.epilog = "\n\n".join(text.split("\n\n")[2:])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("target", metavar="MODULE:FUNCTION",
                        help="the loss function: an importable module (my_package.losses:terms) or a file "
                             "(path/to/losses.py:terms); the part after ':' may be dotted (Class.method)")
    parser.add_argument("--signature", default="auto", choices=("auto", "z_mean_logvar_n", "disvae"),
                        help="how to call it: auto (by parameter names), z_mean_logvar_n (fn(z, mean, log_var, N)), "
                             "disvae (fn(latent_sample, (mean, log_var), n_data)); default auto")
    parser.add_argument("--names", nargs="+", metavar="QUANTITY", default=None,
                        help="names of a returned tuple's entries in order ('-' skips one): mutual_information, "
                             "total_correlation, dimensionwise_kl, kl, log_q_zCx, log_qz, log_prod_qzi, log_pz")
    parser.add_argument("--map", action="append", default=[], metavar="KEY=QUANTITY",
                        help="name a returned dict key the audit does not recognise (repeatable)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a further keyword argument for the function (a Python literal or a string; repeatable)")
    parser.add_argument("--dataset-sizes", nargs="+", type=int, default=None, metavar="N")
    parser.add_argument("--latent-dims", nargs="+", type=int, default=None, metavar="D")
    parser.add_argument("--widths", nargs="+", type=float, default=None, metavar="W",
                        help="mean posterior standard deviations, in prior units, each in (0, 1)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None, metavar="M",
                        help="batch sizes below N (M = N is always added)")
    parser.add_argument("--passes", type=int, default=None, help="independent passes per setting (default 20)")
    parser.add_argument("--quick", action="store_true",
                        help="a small grid (N=64; D=3, 8; widths 0.1, 0.5; M=8, 32; 12 passes) for a first look")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="the dtype the function is fed (default float32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--brief", action="store_true", help="verdicts and diagnoses only, no per-setting tables")


def run(args: argparse.Namespace) -> int:
    import torch

    from elbocheck.estimators.audit import AuditGrid, audit_loss
    from elbocheck.estimators.audit_adapters import AuditCallError, AuditedFunction

    try:
        function = load_function(args.target)
        options = dict(_key_value(text, "--option", literal=True) for text in args.option)
        names = _names(args.names, args.map)
        grid_fields = dict(QUICK) if args.quick else {}
        for field in ("dataset_sizes", "latent_dims", "widths", "batch_sizes", "passes"):
            value = getattr(args, field)
            if value is not None:
                grid_fields[field] = tuple(value) if isinstance(value, list) else value
        grid = AuditGrid(**grid_fields)
        audited = AuditedFunction(function, signature=args.signature, names=names, options=options,
                                  label=args.target)
        found = audited.probe()  # a wrong calling convention or return value is a usage error, found at once
    except (ValueError, AuditCallError) as error:
        print(f"elbocheck audit: error: {error}", file=sys.stderr)
        return EXIT_USAGE

    def progress(text: str) -> None:
        print(f"elbocheck audit: {text}", file=sys.stderr, flush=True)

    progress(f"auditing {', '.join(found)}" + (f"; not audited: {', '.join(audited.ignored)}" if audited.ignored
                                              else ""))

    try:
        report = audit_loss(audited, grid=grid, seed=args.seed, progress=progress,
                            dtype=torch.float64 if args.dtype == "float64" else torch.float32)
    except AuditCallError as error:
        if error.partial_report is not None:
            print(error.partial_report.table(show_cells=not args.brief))
            print("\n(the settings completed before the error)")
        print(f"elbocheck audit: error: {error}", file=sys.stderr)
        return EXIT_FUNCTION_FAILED
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.table(show_cells=not args.brief))
    if not args.json:
        verdicts = ", ".join(f"{name} {verdict.verdict}" for name, verdict in report.verdicts.items())
        print(f"\n{verdicts} ({report.seconds:.1f} s)")
    return EXIT_OK if report.ok else EXIT_WRONG


def load_function(target: str):
    """The callable named by ``module:attribute`` or ``path/to/file.py:attribute`` (attribute may be dotted)."""
    module_part, separator, attribute = target.rpartition(":")
    if not separator or not module_part or not attribute:
        raise ValueError(f"MODULE:FUNCTION: expected 'module:function' or 'file.py:function', got {target!r}")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise ValueError(f"MODULE:FUNCTION: no file {module_part}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))  # the file's own imports of its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as error:  # noqa: BLE001 - any failure of the user's module is reported in one line
            raise ValueError(f"MODULE:FUNCTION: importing {module_part} failed ({type(error).__name__}: {error})"
                             ) from None
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, "")  # like `python -m`: modules in the current directory import
        try:
            module = importlib.import_module(module_part)
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"MODULE:FUNCTION: cannot import module {module_part!r} "
                             f"({type(error).__name__}: {error})") from None
    value = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ValueError(f"MODULE:FUNCTION: {module_part} has no attribute {attribute!r}")
        value = getattr(value, part)
    if not callable(value):
        raise ValueError(f"MODULE:FUNCTION: {target} is a {type(value).__name__}, not a function")
    return value


def _key_value(text: str, flag: str, *, literal: bool):
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise ValueError(f"{flag}: expected KEY=VALUE, got {text!r}")
    if not literal:
        return key, value
    lowered = value.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _names(names: list[str] | None, mappings: list[str]):
    if names is not None and mappings:
        raise ValueError("--names (a tuple's entries) and --map (dict keys) cannot be combined")
    if names is not None:
        return [None if name == "-" else name for name in names]
    if mappings:
        return dict(_key_value(text, "--map", literal=False) for text in mappings)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="elbocheck audit")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
