"""Speed, memory and bias of the minibatch KL-decomposition estimators side by side with the peers' formulas, and the
time of the exact decomposition.

* ``speed``: the whole beta-TCVAE KL term (alpha MI + beta TC + gamma dimension-wise KL, 1 / 6 / 1, from a
  reparameterized z) forward only and forward + backward, for elbocheck's ``mss`` and ``mss-jackknife`` and the MSS
  formulas of pythae and disentangling-vae, at batch sizes B and latent dimensions D with N = 60000. Times are medians
  over rounds run interleaved in one process (each round runs every method once, in alternating order), and the
  ratios are medians of the per-round ratios to the faster peer (the range over rounds in brackets). Peak memory is
  measured in a fresh process per method and configuration: the peak resident set size above the level after the
  inputs were allocated (getrusage and a 1 ms sampler of /proc/self/statm), on CUDA ``max_memory_allocated``.
* ``bias``: each method's bias against the exact mixture on ``gaussian_posteriors`` testbeds (N = 2000, D = 10, means
  N(0, I), posterior variance 0.01 "tight" and 0.5 "broad"): per batch, the mean over its rows of
  log q^(z_i) - log q(z_i) and of log prod_j q^(z_ij) - log prod_j q(z_ij) at the same samples, averaged over batches
  (+- the standard error over batches); MI's bias is minus the first, the dimension-wise KL's the second, TC's their
  difference. ``mss-delta`` is the delta-method correction that estimators/minibatch_decomposition.py weighed and did
  not choose, written out below. For elbocheck's methods also how often the decomposition's intervals cover the exact
  decomposition of the whole testbed: the sampling interval value +- 1.96 standard errors, and ``interval()``, which
  adds the estimated bias.
* ``exact``: ``exact_kl_decomposition`` at N = 10^4 / 10^5 with S outer samples.

    python benchmarks/estimators.py speed --threads 2          # README's side-by-side table (about 15 minutes)
    python benchmarks/estimators.py bias                       # README's bias table (a few minutes)
    python benchmarks/estimators.py exact --latent-dims 10     # the exact decomposition

The peers' code is not imported (the project does not depend on it): their formulas are written out below from
their published code, with the commit read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

LOG_2PI = math.log(2 * math.pi)
KL_WEIGHTS = (1.0, 6.0, 1.0)  # alpha, beta, gamma: Chen et al.'s beta-TCVAE setting
OURS = ("mss", "mss-jackknife")
PEERS = ("pythae-mss", "disvae-mss")
BIAS_METHODS = ("mws", "mss", "mss-delta", "mss-jackknife", "pythae-mws", "pythae-mss", "disvae-mws", "disvae-mss")


# --- the peers' formulas ----------------------------------------------------------------------------------------------


def reference_log_importance_weights(batch_size: int, dataset_size: int):
    """The MSS weight matrix of rtqichen/beta-tcvae (vae_quant.py), which both peers use as published: with
    M = batch_size - 1, fill 1/M; the flattened stride M + 1 from 0 set to 1/N and from 1 to (N - M)/(N M); and
    W[M - 1, 0] = (N - M)/(N M). (Columns 0 and 1, not the diagonal: disentangling-vae issue #58.)"""
    import torch

    others = batch_size - 1
    stratified = (dataset_size - others) / (dataset_size * others)
    weights = torch.full((batch_size, batch_size), 1.0 / others)
    weights.view(-1)[:: others + 1] = 1.0 / dataset_size
    weights.view(-1)[1 :: others + 1] = stratified
    weights[others - 1, 0] = stratified
    return weights.log()


def _peer_log_density(z, mean, log_var):
    """Both peers: -(log 2 pi + log_var + (z - mu)^2 exp(-log_var)) / 2, element-wise."""
    import torch

    return -0.5 * (LOG_2PI + log_var + (z - mean) ** 2 * torch.exp(-log_var))


def pythae_terms(z, mean, log_var, dataset_size: int, use_mss: bool):
    """pythae (clementchadebec/benchmark_VAE at 6419e21, src/pythae/models/beta_tc_vae/beta_tc_vae_model.py,
    BetaTCVAE.loss_function): (log q(z|x), log q^(z), log prod_j q^(z_j), log p(z)) per example. MSS adds the
    reference weight matrix to the joint and (broadcast over dimensions) to the marginals before the log-sum-exp; MWS
    subtracts log(B N) from both."""
    import torch

    batch_size = z.shape[0]
    log_q_zCx = _peer_log_density(z, mean, log_var).sum(-1)
    log_pz = _peer_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)
    pairwise = _peer_log_density(z.reshape(batch_size, 1, -1), mean.reshape(1, batch_size, -1),
                                 log_var.reshape(1, batch_size, -1))  # (B, B, D)
    if use_mss:
        weights = reference_log_importance_weights(batch_size, dataset_size).to(z)
        log_qz = torch.logsumexp(weights + pairwise.sum(-1), dim=-1)
        log_prod_qzi = torch.logsumexp(weights.reshape(batch_size, batch_size, -1) + pairwise, dim=1).sum(-1)
    else:
        normalizer = math.log(batch_size * dataset_size)
        log_qz = torch.logsumexp(pairwise.sum(-1), dim=-1) - normalizer
        log_prod_qzi = (torch.logsumexp(pairwise, dim=1) - normalizer).sum(-1)
    return log_q_zCx, log_qz, log_prod_qzi, log_pz


def disvae_terms(z, mean, log_var, dataset_size: int, is_mss: bool):
    """disentangling-vae (YannDubs/disentangling-vae at f045219, disvae/models/losses.py
    _get_log_pz_qz_prodzi_qzCx with disvae/utils/math.py): the same pairwise log densities; MSS adds the reference
    weight matrix to every dimension of the (B, B, D) array *before* summing over dimensions for the joint, so the
    joint's weights enter D times; MWS uses no weights or normalizer at all."""
    import torch

    batch_size = z.shape[0]
    log_q_zCx = _peer_log_density(z, mean, log_var).sum(1)
    zeros = torch.zeros_like(z)
    log_pz = _peer_log_density(z, zeros, zeros).sum(1)
    pairwise = _peer_log_density(z.view(batch_size, 1, -1), mean.view(1, batch_size, -1),
                                 log_var.view(1, batch_size, -1))
    if is_mss:
        weights = reference_log_importance_weights(batch_size, dataset_size).to(z)
        pairwise = pairwise + weights.view(batch_size, batch_size, 1)
    log_qz = torch.logsumexp(pairwise.sum(2), dim=1, keepdim=False)
    log_prod_qzi = torch.logsumexp(pairwise, dim=1, keepdim=False).sum(1)
    return log_q_zCx, log_qz, log_prod_qzi, log_pz


def delta_method_terms(z, mean, log_var, dataset_size: int):
    """MSS with the delta-method correction weighed and not chosen in estimators/minibatch_decomposition.py, (a):
    per row and plane (each dimension, and the joint), log q^ + Vhat / 2 with Vhat = (1 - n/P) c^2 s^2 / (n q^^2),
    s^2 the sample variance of the n = B - 1 others' densities t_k, c = (N - 1)/N, P = N - 1. Written out here for
    the bias report (forward only)."""
    import torch

    batch_size = z.shape[0]
    others, population, share = batch_size - 1, dataset_size - 1, (dataset_size - 1) / dataset_size
    pairwise = _peer_log_density(z[:, None], mean[None], log_var[None])  # (B, B, D), our Gaussian log density
    planes = torch.cat([pairwise, pairwise.sum(-1, keepdim=True)], -1)  # (B, B, D + 1)
    eye = torch.eye(batch_size, dtype=torch.bool, device=z.device)
    own, rest = planes[eye], planes[~eye].view(batch_size, others, -1)
    shift = torch.maximum(rest.amax(1), own)
    scaled = torch.exp(rest - shift[:, None])  # t_k / e^shift
    mean_t = scaled.mean(1)
    variance_t = scaled.var(1, unbiased=True)
    estimate = torch.exp(own - shift) / dataset_size + share * mean_t  # q^ / e^shift
    relative_variance = (1 - others / population) * share**2 * variance_t / (others * estimate**2)
    corrected = torch.log(estimate) + shift + relative_variance / 2
    log_q_zCx = _peer_log_density(z, mean, log_var).sum(-1)
    log_pz = _peer_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)
    return log_q_zCx, corrected[:, -1], corrected[:, :-1].sum(-1), log_pz


def method_terms(method: str, z, mean, log_var, dataset_size: int):
    """(log q(z|x), log q^(z), log prod_j q^(z_j), log p(z)) per example, for any method of this benchmark."""
    if method == "mss-delta":
        return delta_method_terms(z, mean, log_var, dataset_size)
    if method.startswith("pythae-"):
        return pythae_terms(z, mean, log_var, dataset_size, use_mss=method.endswith("mss"))
    if method.startswith("disvae-"):
        return disvae_terms(z, mean, log_var, dataset_size, is_mss=method.endswith("mss"))
    from elbocheck.estimators import minibatch_kl_terms

    terms = minibatch_kl_terms(z, mean, log_var, dataset_size, method=method)
    return terms.log_q_zCx, terms.log_qz, terms.log_prod_qzi, terms.log_pz


def kl_term(method: str, z, mean, log_var, dataset_size: int):
    """The batch mean of alpha MI + beta TC + gamma dimension-wise KL."""
    log_q_zCx, log_qz, log_prod_qzi, log_pz = method_terms(method, z, mean, log_var, dataset_size)
    alpha, beta, gamma = KL_WEIGHTS
    return (alpha * (log_q_zCx - log_qz) + beta * (log_qz - log_prod_qzi) + gamma * (log_prod_qzi - log_pz)).mean()


# --- measurement helpers ---------------------------------------------------------------------------------------------


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

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss_bytes())


def _inputs(config: dict):
    import torch

    if config["threads"]:
        torch.set_num_threads(config["threads"])
    device, dtype = torch.device(config["device"]), getattr(torch, config["dtype"])
    generator = torch.Generator(device=device).manual_seed(0)
    size, dim = config["size"], config["dim"]
    mean = torch.randn(size, dim, generator=generator, device=device, dtype=dtype)
    log_var = torch.randn(size, dim, generator=generator, device=device, dtype=dtype) * 0.5 - 1.0
    noise = torch.randn(size, dim, generator=generator, device=device, dtype=dtype)
    if config.get("backward"):
        mean.requires_grad_(True)
        log_var.requires_grad_(True)
    return torch, device, mean, log_var, noise


def _synchronize(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(torch, method, mean, log_var, noise, backward: bool, dataset_size: int) -> None:
    with torch.set_grad_enabled(backward):
        z = mean + torch.exp(0.5 * log_var) * noise  # reparameterized z ~ q(z|x)
        loss = kl_term(method, z, mean, log_var, dataset_size)
        if backward:
            loss.backward()
            mean.grad = log_var.grad = None
        loss.item()


def time_methods(config: dict) -> dict:
    """Child process: interleaved rounds of every method; returns each method's list of times (seconds)."""
    torch, device, mean, log_var, noise = _inputs(config)
    methods = config["methods"]
    for method in methods:  # warm-up (allocator, kernels)
        _step(torch, method, mean, log_var, noise, config["backward"], config["dataset_size"])
    times = {method: [] for method in methods}
    for round_index in range(config["rounds"]):
        order = methods if round_index % 2 == 0 else methods[::-1]  # A B C D, D C B A, ...
        for method in order:
            _synchronize(torch, device)
            start = time.perf_counter()
            _step(torch, method, mean, log_var, noise, config["backward"], config["dataset_size"])
            _synchronize(torch, device)
            times[method].append(time.perf_counter() - start)
    return times


def peak_memory(config: dict) -> dict:
    """Child process: the peak memory of one call of one method above the level after the inputs and a warm-up."""
    torch, device, mean, log_var, noise = _inputs(config)
    method = config["methods"][0]
    _step(torch, method, mean, log_var, noise, config["backward"], config["dataset_size"])
    _synchronize(torch, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        _step(torch, method, mean, log_var, noise, config["backward"], config["dataset_size"])
        return {"peak_bytes": torch.cuda.max_memory_allocated(device) - baseline}
    baseline, max_rss_before = _current_rss_bytes(), _max_rss_bytes()
    with _PeakSampler() as sampler:
        _step(torch, method, mean, log_var, noise, config["backward"], config["dataset_size"])
    max_rss_after = _max_rss_bytes()
    # getrusage is exact when this call set a new high-water mark; otherwise the sampled peak
    peak = (max_rss_after if max_rss_after > max_rss_before else sampler.peak) - baseline
    return {"peak_bytes": max(peak, 0)}


def time_exact(config: dict) -> dict:
    """Child process: time and peak memory of exact_kl_decomposition."""
    torch, device, mean, log_var, _ = _inputs(config)
    from elbocheck.estimators import exact_kl_decomposition

    generator = torch.Generator(device=device).manual_seed(1)
    exact_kl_decomposition(mean, log_var, num_samples=8, generator=generator)  # a short warm-up
    _synchronize(torch, device)
    baseline, max_rss_before = _current_rss_bytes(), _max_rss_bytes()
    with _PeakSampler() as sampler:
        start = time.perf_counter()
        result = exact_kl_decomposition(mean, log_var, num_samples=config["exact_samples"] or None,
                                        generator=generator)
        result.mutual_information.item()
        _synchronize(torch, device)
        seconds = time.perf_counter() - start
    max_rss_after = _max_rss_bytes()
    peak = (max_rss_after if max_rss_after > max_rss_before else sampler.peak) - baseline
    return {"seconds": seconds, "peak_bytes": max(peak, 0)}


def _run_child(kind: str, config: dict) -> dict | str:
    command = [sys.executable, __file__, "--child", kind, json.dumps(config)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # a failure is reported
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines() or [f"exit code {completed.returncode}"]
        return lines[-1][:100]
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- the three reports -------------------------------------------------------------------------------------------


def _header(torch) -> str:
    load = os.getloadavg()
    return (f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / "
            f"{load[2]:.2f} (1 / 5 / 15 min)"
            + (f", CUDA: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no CUDA device"))


def speed(args) -> None:
    import torch

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(_header(torch) + f"; {args.threads or torch.get_num_threads()} threads, {args.dtype}, N = "
          f"{args.dataset_size}, {args.rounds} interleaved rounds", flush=True)
    print("| device | B | D | pass | mss (ms) | mss-jackknife (ms) | pythae MSS (ms) | disentangling-vae MSS (ms) "
          "| mss / faster peer | mss-jackknife / faster peer | peak MiB: mss / jackknife / pythae / disentangling-vae |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- | --- |", flush=True)
    methods = list(OURS) + list(PEERS)
    for device in devices:
        for size in args.batch_sizes:
            for dim in args.latent_dims:
                for backward in (False, True):
                    config = {"device": device, "dtype": args.dtype, "threads": args.threads, "size": size,
                              "dim": dim, "backward": backward, "dataset_size": args.dataset_size,
                              "rounds": args.rounds, "methods": methods}
                    times = _run_child("time", config)
                    memory = [_run_child("memory", {**config, "methods": [method]}) for method in methods]
                    print(_speed_row(device, size, dim, backward, times, memory), flush=True)


def _speed_row(device, size, dim, backward, times, memory) -> str:
    passes = "fwd+bwd" if backward else "fwd"
    cells = [device, str(size), str(dim), passes]
    if isinstance(times, str):
        return "| " + " | ".join(cells + [f"failed: {times}"] + [""] * 6) + " |"
    medians = {method: statistics.median(values) for method, values in times.items()}
    cells += [f"{1e3 * medians[method]:.1f}" for method in (*OURS, *PEERS)]
    for ours in OURS:
        ratios = [mine / min(times[peer][r] for peer in PEERS) for r, mine in enumerate(times[ours])]
        cells.append(f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")
    cells.append(" / ".join(f"{m['peak_bytes'] / 2**20:.0f}" if isinstance(m, dict) else f"failed: {m}"
                            for m in memory))
    return "| " + " | ".join(cells) + " |"


def bias(args) -> None:
    import numpy as np
    import torch

    from elbocheck.estimators import (
        aggregate_posterior_log_density,
        exact_kl_decomposition,
        gaussian_posteriors,
        minibatch_kl_terms,
    )

    torch.set_num_threads(args.threads or 1)
    print(_header(torch) + f"; N = {args.bias_points}, D = {args.bias_dim}, {args.batches} batches per cell, "
          "float64", flush=True)
    print("| posteriors | B | method | log q(z) bias | log prod q(z_j) bias | MI bias | TC bias | dim-wise KL bias "
          "| covered (sampling / interval()): MI, TC, dim-wise KL |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |", flush=True)
    terms = ("mutual_information", "total_correlation", "dimensionwise_kl")
    for name, variance in (("tight", 0.01), ("broad", 0.5)):
        mean, log_var = gaussian_posteriors(args.bias_points, args.bias_dim, variance, seed=0)
        truth = exact_kl_decomposition(mean, log_var, num_samples=args.exact_reference_samples,
                                       generator=torch.Generator().manual_seed(1))
        for size in args.bias_batch_sizes:
            generator = torch.Generator().manual_seed(size)
            errors = {method: [] for method in BIAS_METHODS}
            covered = {method: np.zeros((2, 3)) for method in ("mws", "mss", "mss-jackknife")}
            for _ in range(args.batches):
                index = torch.randperm(args.bias_points, generator=generator)[:size]
                z = mean[index] + math.sqrt(variance) * torch.randn(size, args.bias_dim, generator=generator,
                                                                    dtype=mean.dtype)
                exact = aggregate_posterior_log_density(z, mean, log_var)
                for method in BIAS_METHODS:
                    _, log_qz, log_prod_qzi, _ = method_terms(method, z, mean[index], log_var[index],
                                                              args.bias_points)
                    errors[method].append([(log_qz - exact.log_qz).mean().item(),
                                           (log_prod_qzi - exact.log_prod_qzi).mean().item()])
                    if method in covered:
                        result = minibatch_kl_terms(z, mean[index], log_var[index], args.bias_points,
                                                    method=method).decomposition()
                        for t, term in enumerate(terms):
                            value, reference = getattr(result, term).item(), getattr(truth, term).item()
                            error = getattr(result, f"{term}_standard_error").item()
                            low, high = result.interval(term)
                            covered[method][0, t] += abs(value - reference) <= 1.96 * error
                            covered[method][1, t] += low <= reference <= high
            for method in BIAS_METHODS:
                values = np.array(errors[method])
                joint, marginal = values[:, 0], values[:, 1]
                cells = [name, str(size), method]
                for series in (joint, marginal, -joint, joint - marginal, marginal):
                    cells.append(f"{series.mean():+.3f} +- {series.std(ddof=1) / math.sqrt(len(series)):.3f}")
                if method in covered:
                    fractions = covered[method] / args.batches
                    cells.append(", ".join(f"{fractions[0, t]:.2f} / {fractions[1, t]:.2f}" for t in range(3)))
                else:
                    cells.append("")
                print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\nexact decomposition of the testbeds ({args.exact_reference_samples} outer samples): see "
          "exact_kl_decomposition; intervals are counted against it.")


def exact(args) -> None:
    import torch

    print(_header(torch) + f"; {args.threads or torch.get_num_threads()} threads, {args.dtype}", flush=True)
    print("| N | D | outer samples | time (ms) | peak memory (MiB) |")
    print("| ---: | ---: | ---: | ---: | ---: |", flush=True)
    for size in args.exact_sizes:
        for dim in args.latent_dims:
            config = {"device": "cpu", "dtype": args.dtype, "threads": args.threads, "size": size, "dim": dim,
                      "exact_samples": args.exact_samples}
            result = _run_child("exact", config)
            samples = args.exact_samples or size
            if isinstance(result, str):
                print(f"| {size} | {dim} | {samples} | failed: {result} | |", flush=True)
            else:
                print(f"| {size} | {dim} | {samples} | {1e3 * result['seconds']:.0f} | "
                      f"{result['peak_bytes'] / 2**20:.0f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="*", help="speed, bias and/or exact (default: all three)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024, 2048])
    parser.add_argument("--latent-dims", nargs="+", type=int, default=[10, 64])
    parser.add_argument("--dataset-size", type=int, default=60_000, help="N for the speed report")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per configuration")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--batches", type=int, default=100, help="batches per cell of the bias report")
    parser.add_argument("--bias-batch-sizes", nargs="+", type=int, default=[64, 256, 1024])
    parser.add_argument("--bias-points", type=int, default=2000)
    parser.add_argument("--bias-dim", type=int, default=10)
    parser.add_argument("--exact-reference-samples", type=int, default=20_000,
                        help="outer samples of the exact decomposition the bias report's intervals are checked against")
    parser.add_argument("--exact-sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--exact-samples", type=int, default=1000, help="outer samples S of the exact method (0: S = N)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, config = args.child[0], json.loads(args.child[1])
        work = {"time": time_methods, "memory": peak_memory, "exact": time_exact}[kind]
        print(json.dumps(work(config)))
        return 0
    unknown = [report for report in args.report if report not in ("speed", "bias", "exact")]
    if unknown:
        parser.error(f"unknown report {unknown[0]!r}; choose from speed, bias, exact")
    for report in dict.fromkeys(args.report or ["speed", "bias", "exact"]):
        {"speed": speed, "bias": bias, "exact": exact}[report](args)
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
