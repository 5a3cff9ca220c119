"""Time and peak memory of the KL-decomposition estimators.

* minibatch weighted / stratified sampling (``minibatch_kl_terms``, method ``mws`` / ``mss``) at batch sizes
  256 / 1024 / 4096 and latent dimensions 10 / 64 (forward pass; ``--backward`` adds the backward pass);
* the exact decomposition over a data set (``exact_kl_decomposition``) at N = 10^4 / 10^5, with S outer samples
  (``--exact-samples``; its cost is S * N * D, linear in S; 0 means one sample per data point, S = N);

on CPU, and on CUDA when a device is present. Each configuration runs in a fresh subprocess so that its peak memory
is its own: on CPU the peak resident set size above the level after the inputs were allocated (from
``getrusage`` and a 1 ms sampler of /proc/self/statm), on CUDA ``torch.cuda.max_memory_allocated`` above the inputs.
Prints a Markdown table.

    python benchmarks/estimators.py                         # the default grid (a few minutes on 2 CPU cores)
    python benchmarks/estimators.py --exact-samples 0 --exact-sizes 10000 --latent-dims 10   # S = N
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


class _PeakSampler:
    """Samples the resident set size every millisecond while running (torch releases the GIL in its kernels)."""

    def __init__(self) -> None:
        self.peak = _current_rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _current_rss_bytes())
            time.sleep(0.001)

    def __enter__(self) -> "_PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss_bytes())


def run_configuration(config: dict) -> dict:
    """Runs in the child process: build inputs, warm up, time ``repeats`` runs, measure the peak memory."""
    import torch

    from elbocheck.estimators import exact_kl_decomposition, minibatch_kl_terms

    if config["threads"]:
        torch.set_num_threads(config["threads"])
    device = torch.device(config["device"])
    dtype = getattr(torch, config["dtype"])
    generator = torch.Generator(device=device).manual_seed(0)
    size, dim = config["size"], config["dim"]
    mean = torch.randn(size, dim, generator=generator, device=device, dtype=dtype)
    log_var = torch.randn(size, dim, generator=generator, device=device, dtype=dtype) * 0.5 - 1.0
    noise = torch.randn(size, dim, generator=generator, device=device, dtype=dtype)
    if config["backward"] and config["method"] != "exact":
        mean.requires_grad_(True)
        log_var.requires_grad_(True)
    chunk = config["max_chunk_elements"]

    def call(warm_up: bool = False) -> None:
        if config["method"] == "exact":
            samples = 8 if warm_up else (config["exact_samples"] or None)  # a short warm-up: the full run is long
            result = exact_kl_decomposition(
                mean, log_var, num_samples=samples, generator=generator, max_chunk_elements=chunk
            )
            result.mutual_information.item()
            return
        with torch.set_grad_enabled(config["backward"]):
            sample = mean + torch.exp(0.5 * log_var) * noise  # z ~ q(z|x), reparameterized
            terms = minibatch_kl_terms(
                sample, mean, log_var, max(60_000, size), method=config["method"], max_chunk_elements=chunk
            )
            loss = (terms.mutual_information + terms.total_correlation + terms.dimensionwise_kl).mean()
            if config["backward"]:
                loss.backward()
            loss.item()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    call(warm_up=True)  # warm-up (allocator, kernels)
    synchronize()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
    else:
        baseline = _current_rss_bytes()
        max_rss_before = _max_rss_bytes()
    times = []
    sampler = _PeakSampler() if device.type == "cpu" else None
    if sampler:
        sampler.__enter__()
    for _ in range(config["exact_repeats"] if config["method"] == "exact" else config["repeats"]):
        start = time.perf_counter()
        call()
        synchronize()
        times.append(time.perf_counter() - start)
    if sampler:
        sampler.__exit__(None, None, None)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - baseline
    else:
        max_rss_after = _max_rss_bytes()
        # getrusage is exact when this run set a new high-water mark; otherwise use the sampled peak
        peak = (max_rss_after if max_rss_after > max_rss_before else sampler.peak) - baseline
    return {"seconds": statistics.median(times), "peak_bytes": max(peak, 0)}


def configurations(args: argparse.Namespace, devices: list[str]) -> list[dict]:
    common = {
        "dtype": args.dtype,
        "repeats": args.repeats,
        "exact_repeats": args.exact_repeats,
        "max_chunk_elements": args.max_chunk_elements,
        "threads": args.threads,
    }
    configs = []
    for device in devices:
        for method in args.methods:
            exact = method == "exact"
            # the exact method is sized by the data set N and never differentiated; the minibatch ones by the batch M
            per_method = {"exact_samples": args.exact_samples if exact else None,
                          "backward": False if exact else args.backward}
            for size in args.exact_sizes if exact else args.batch_sizes:
                for dim in args.latent_dims:
                    configs.append({**common, "device": device, "method": method, "size": size, "dim": dim,
                                    **per_method})
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["mws", "mss", "exact"], choices=["mws", "mss", "exact"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024, 4096])
    parser.add_argument("--latent-dims", nargs="+", type=int, default=[10, 64])
    parser.add_argument("--exact-sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument(
        "--exact-samples", type=int, default=1000, help="outer samples S of the exact method (0: S = N)"
    )
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per MWS/MSS configuration (median shown)")
    parser.add_argument("--exact-repeats", type=int, default=1, help="timed runs per exact configuration")
    parser.add_argument("--max-chunk-elements", type=int, default=2**24)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--backward", action="store_true", help="time forward + backward for MWS/MSS")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_configuration(json.loads(args.child))))
        return 0

    import torch

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
        + (f", CUDA: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no CUDA device"),
        flush=True,
    )
    header = "| method | device | batch M / data N | D | outer samples | pass | time (ms) | peak memory (MiB) |"
    rows = [header, "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    print("\n".join(rows), flush=True)
    for config in configurations(args, devices):
        command = [sys.executable, __file__, "--child", json.dumps(config)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            reason = completed.stderr.strip().splitlines()[-1][:80]
            row = f"| {config['method']} | {config['device']} | {config['size']} | {config['dim']} | | | failed: {reason} | |"
        else:
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            samples = "" if config["method"] != "exact" else str(config["exact_samples"] or config["size"])
            passes = "fwd" if config["method"] == "exact" or not config["backward"] else "fwd+bwd"
            row = (
                f"| {config['method']} | {config['device']} | {config['size']} | {config['dim']} | {samples} | {passes} | "
                f"{1e3 * result['seconds']:.1f} | {result['peak_bytes'] / 2**20:.1f} |"
            )
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
