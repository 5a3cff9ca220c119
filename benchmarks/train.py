"""Training throughput and peak memory of every model on each data set, on CPU and (where present) CUDA.

    python benchmarks/train.py                       # every model x {digits, sprites}, plus DIVA and CSVAE setups
    python benchmarks/train.py --steps 10 --sprites-size 256 --devices cpu
    python benchmarks/train.py --models vae beta_tcvae --data digits --json results/bench.json

Each (model, data set, device) runs in a fresh subprocess, so that its peak memory is its own. The subprocess builds
the model with its default hyper-parameters (``--model-option KEY=VALUE`` to change them) and times ``--steps``
optimisation steps of :meth:`elbocheck.models.trainer.Trainer.train_step` -- the trainer's own step, NaN guard and
per-group updates included -- after ``--warmup`` untimed steps, on batches of ``--batch-size``.

Reported: samples per second = batch size / median step time (the median resists interference from other processes;
each step ends with the terms copied to the CPU, so it has finished on the device), with the mean-based figure in the
JSON; peak
memory: on CUDA ``torch.cuda.max_memory_allocated`` during the timed steps; on CPU the process's peak resident set
(``ru_maxrss``, which includes the Python and torch runtime) and, beside it, its growth over the high-water mark
reached before the model was built (data loaded, imports done) -- an approximation of what training itself adds.
Throughput on CPU depends on the thread count (printed with the table): ``--threads`` has the meaning and the
default of ``elbocheck train --threads``, one torch thread per process (0: torch's default, one per core).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = ("digits", "sprites")
# Data sets a model cannot use are skipped; these extra pairs are the models' own setups.
EXTRA_PAIRS = (("diva", "rotated_digits"), ("csvae", "swiss_roll"))


def data_options(data: str, args: argparse.Namespace) -> dict:
    if data == "sprites":
        return {"size": args.sprites_size, "label_factor": "shape"}  # labelled, so the conditional models run
    if data == "rotated_digits":
        return {"images_per_class": 50}
    return {}


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 / 1024 if platform.system() != "Darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def worker(args: argparse.Namespace) -> None:
    """Measure one (model, data, device) and print one JSON line."""
    import torch

    from elbocheck.models import load_dataset
    from elbocheck.models.data.core import iterate_minibatches
    from elbocheck.models.registry import check_data_fits
    from elbocheck.models.trainer import TrainConfig, Trainer

    model, data, device = args.worker
    if args.threads:
        torch.set_num_threads(args.threads)
    options = dict(parse_option(o) for o in args.model_option or [])
    dataset = load_dataset(data, **data_options(data, args))
    result = {"model": model, "data": data, "device": device, "batch_size": args.batch_size,
              "threads": torch.get_num_threads()}
    try:
        check_data_fits(model, dataset.spec())
    except ValueError as error:
        print(json.dumps({**result, "skipped": str(error)}))
        return
    baseline_rss = peak_rss_mib()
    config = TrainConfig(model=model, data=data, batch_size=args.batch_size, lr=1e-4, device=device, amp=args.amp,
                         progress=False, model_options=options, data_options=data_options(data, args))
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, Path(run_dir) / "run", dataset=dataset)
        train = trainer.splits["train"]
        batches = []
        generator = torch.Generator().manual_seed(0)
        while len(batches) < args.warmup + args.steps:
            batches.extend(iterate_minibatches(train, args.batch_size, shuffle=True, generator=generator,
                                               drop_last=True))
        cuda = trainer.device.type == "cuda"
        for batch in batches[: args.warmup]:
            trainer.train_step(batch)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        step_seconds = []
        for batch in batches[args.warmup : args.warmup + args.steps]:
            start = time.perf_counter()
            trainer.train_step(batch)  # returns the terms on the CPU: the step has finished on the device
            step_seconds.append(time.perf_counter() - start)
        step_seconds.sort()
        median = step_seconds[len(step_seconds) // 2]
        result.update(
            samples_per_second=args.batch_size / median,
            mean_samples_per_second=args.steps * args.batch_size / sum(step_seconds),
            parameters=sum(p.numel() for p in trainer.model.parameters()),
            architecture=getattr(trainer.model.decoder, "architecture", ""),
        )
        if cuda:
            result["peak_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
            result["device_name"] = torch.cuda.get_device_name(trainer.device)
        else:
            result["peak_memory_mib"] = peak_rss_mib()
            result["memory_growth_mib"] = max(0.0, peak_rss_mib() - baseline_rss)
        trainer.close()  # the run directory's lock (the benchmark never calls fit, which releases it)
    print(json.dumps(result))


def parse_option(text: str):
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def pairs(args: argparse.Namespace, models: list[str]):
    for data in args.data:
        for model in models:
            yield model, data
    if args.extra_pairs:
        for model, data in EXTRA_PAIRS:
            if model in models and data not in args.data:
                yield model, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: every model")
    parser.add_argument("--data", nargs="+", default=list(DEFAULT_DATA))
    parser.add_argument("--no-extra-pairs", dest="extra_pairs", action="store_false",
                        help="skip DIVA on rotated_digits and CSVAE on swiss_roll")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--sprites-size", type=int, default=1024, help="sprites rendered for the sprites data set")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads per run, as elbocheck train --threads (default 1; 0: torch's default)")
    parser.add_argument("--model-option", action="append", metavar="KEY=VALUE", help="passed to every model")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "DATA", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    import torch

    from elbocheck.models import MODELS

    models = args.models or list(MODELS)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    results = []
    forwarded = ["--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
                 "--sprites-size", str(args.sprites_size)] + (["--amp"] if args.amp else [])
    forwarded += ["--threads", str(args.threads)]
    for option in args.model_option or []:
        forwarded += ["--model-option", option]
    for device in devices:
        for model, data in pairs(args, models):
            command = [sys.executable, __file__, "--worker", model, data, device, *forwarded]
            completed = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
            if completed.returncode != 0:
                results.append({"model": model, "data": data, "device": device,
                                "error": completed.stderr.strip().splitlines()[-1]})
            else:
                results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
            print(format_row(results[-1]), flush=True)
    print()
    print(markdown_table(results, torch))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any("error" in r for r in results) else 0


def format_row(result: dict) -> str:
    if "error" in result or "skipped" in result:
        return f"{result['model']:13s} {result['data']:15s} {result['device']:5s} " + (
            f"error: {result['error']}" if "error" in result else "skipped (data set lacks labels/domains)")
    return (f"{result['model']:13s} {result['data']:15s} {result['device']:5s} "
            f"{result['samples_per_second']:10.0f} samples/s  peak {result['peak_memory_mib']:8.1f} MiB")


def markdown_table(results: list[dict], torch) -> str:
    lines = [
        f"torch {torch.__version__}, CPU threads {results[0].get('threads', '?') if results else '?'}, "
        f"batch size {results[0].get('batch_size', '?') if results else '?'}",
        "",
        "| model | data | device | net | parameters | samples/s (median step) | peak memory (MiB) "
        "| CPU RSS growth (MiB) |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if "skipped" in r:
            continue
        if "error" in r:
            lines.append(f"| {r['model']} | {r['data']} | {r['device']} | | | error: {r['error']} | | |")
            continue
        device = r.get("device_name", r["device"])
        memory_kind = "" if r["device"] == "cuda" else " (process RSS)"
        growth = f"{r['memory_growth_mib']:.1f}" if "memory_growth_mib" in r else ""
        lines.append(f"| {r['model']} | {r['data']} | {device} | {r['architecture']} | {r['parameters']:,} | "
                     f"{r['samples_per_second']:.0f} | {r['peak_memory_mib']:.1f}{memory_kind} | {growth} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
