"""Time `elbocheck verify` over the whole library (run on demand; prints a table).

    python benchmarks/derivations.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from elbocheck.derivations import Checker
from elbocheck.derivations.library import all_derivations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    derivations = all_derivations()
    per_derivation: dict[str, list[float]] = {d.name: [] for d in derivations}
    totals = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for d in derivations:
            t = time.perf_counter()
            Checker().check_derivation(d)
            per_derivation[d.name].append(time.perf_counter() - t)
        totals.append(time.perf_counter() - start)
    print(f"elbocheck verify benchmark ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.repeats} repeats)")
    print(f"{'derivation':28s} {'steps':>5s} {'best s':>8s}")
    for d in derivations:
        print(f"{d.name:28s} {len(d.steps):5d} {min(per_derivation[d.name]):8.3f}")
    print(f"{'whole library':28s} {sum(len(d.steps) for d in derivations):5d} {min(totals):8.3f}")


if __name__ == "__main__":
    main()
