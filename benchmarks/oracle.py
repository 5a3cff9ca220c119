"""Time the independent oracle (derivations/oracle/) on every step of the library (run on demand; prints a table).

For each step: draw an instance and judge the step, in the four modes (discrete float64, discrete high precision,
linear-Gaussian float64, linear-Gaussian high precision); the table gives the median milliseconds per step of each
derivation, and the whole library's median.

    python benchmarks/oracle.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from elbocheck.derivations.library import all_derivations
from elbocheck.derivations.checker import numeric_instances
from elbocheck.derivations.oracle import (
    Divergent,
    Unsupported,
    judge,
    random_discrete_instance,
    random_gaussian_instance,
)

MODES = {
    "discrete f64": (random_discrete_instance, "float64"),
    "discrete high": (random_discrete_instance, "high"),
    "gauss f64": (random_gaussian_instance, "float64"),
    "gauss high": (random_gaussian_instance, "high"),
}


def numeric_case(model, step):
    """The step as the checker hands it to the oracle: a symbolic size J at its first numeric value (2), the indexed
    sums written out; None when there is no numeric instance (or only one the oracle does not take: importance
    samples, constant components)."""
    cases, _ = numeric_instances(model, step)
    for case in cases:
        if not case.model.samples and not case.constant:
            return case.model, case.step
    return None


def time_step(model, step, draw, precision: str, seed: int) -> float | None:
    case = numeric_case(model, step)
    if case is None:
        return None
    model, step = case
    start = time.perf_counter()
    try:
        instance = draw(model, step.assumptions, rng=seed)
        judge(model, step.lhs, step.relation, step.rhs, step.assumptions, instance, precision=precision, rng=seed)
    except (Unsupported, Divergent):
        return None
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    derivations = all_derivations()
    for d in derivations:  # warm the caches of structures and lowered expressions, as in a checker's run
        for s in d.steps:
            time_step(d.model, s, random_discrete_instance, "float64", 0)
    print(f"oracle benchmark ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.repeats} repeats; median ms per step, instance draw included)")
    print(f"{'derivation':28s} {'steps':>5s} " + " ".join(f"{m:>13s}" for m in MODES))
    everything: dict[str, list[float]] = {m: [] for m in MODES}
    for d in derivations:
        row = []
        for mode, (draw, precision) in MODES.items():
            times = [t for s in d.steps for seed in range(args.repeats)
                     if (t := time_step(d.model, s, draw, precision, seed)) is not None]
            everything[mode] += times
            row.append(f"{1e3 * statistics.median(times):13.1f}" if times else f"{'unsupported':>13s}")
        print(f"{d.name:28s} {len(d.steps):5d} " + " ".join(row))
    print(f"{'whole library':28s} {sum(len(d.steps) for d in derivations):5d} "
          + " ".join(f"{1e3 * statistics.median(everything[m]):13.1f}" for m in MODES))


if __name__ == "__main__":
    main()
