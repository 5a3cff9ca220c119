"""Time the derivation checker (run on demand; prints tables).

    python benchmarks/derivations.py [--repeats 3]

1. The whole library (`elbocheck verify`), per derivation. Target: under 10 s on 2 cores.
2. Scale: the steps of the beta-TCVAE decomposition for a latent of J = 3, 10, 64, 512 dimensions and for a symbolic
   J, each step's time. Target: under 1 s per step, whatever J.
3. The corpora (adversarial API steps; LaTeX files of the adversarial and published corpora), in total.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import sympy

from elbocheck.derivations import Checker, Model, Step
from elbocheck.derivations.expressions import E, kl, log, mi, sum_over, tc
from elbocheck.derivations.library import all_derivations


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def library(repeats: int) -> None:
    derivations = all_derivations()
    print(f"{'derivation':28s} {'steps':>5s} {'best s':>8s}")
    total = 0.0
    for d in derivations:
        seconds = best_of(repeats, lambda d=d: Checker().check_derivation(d))
        total += seconds
        print(f"{d.name:28s} {len(d.steps):5d} {seconds:8.3f}")
    print(f"{'whole library':28s} {sum(len(d.steps) for d in derivations):5d} {total:8.3f}\n")


def scale(repeats: int) -> None:
    alpha, beta, gamma = sympy.symbols("alpha beta gamma", real=True)
    dimensionwise = sum_over("j", kl("q(z_j)", "p(z_j)"))
    average = E("p_D(x)", kl("q(z|x)", "p(z)"))
    reconstruction = E("p_D(x)", E("q(z|x)", log("p(x|z)")))
    steps = {
        "KL = MI + TC + dim-wise KL": Step(average, "=", mi("x", "z") + tc("q(z)") + dimensionwise),
        "weighted objective <= ELBO": Step(reconstruction - average, ">=", reconstruction - alpha * mi("x", "z")
                                           - beta * tc("q(z)") - gamma * dimensionwise),
        "KL = MI + dim-wise KL (false)": Step(average, "=", mi("x", "z") + dimensionwise),
    }
    sizes = [3, 10, 64, 512, "J"]
    print(f"{'step (seconds per step)':32s}" + "".join(f"{'J = ' + str(n):>10s}" for n in sizes))
    for label, step in steps.items():
        row = []
        for size in sizes:
            model = Model("btc", observed=["x"], latent=["z"], vectors={"z": size},
                          generative=["prod_j p(z_j)", "p_theta(x|z)"], inference=["q_phi(z|x)"],
                          coefficients={"alpha": (1, None), "beta": (1, None), "gamma": (1, None)})
            seconds = best_of(repeats, lambda: Checker().check_step(model, step))
            verdict = Checker().check_step(model, step).verdict
            row.append(f"{seconds:6.2f} {verdict[0]}")
        print(f"{label:32s}" + "".join(f"{cell:>10s}" for cell in row))
    print("(p = proven, r = refuted, u = undecided)\n")


def corpora() -> None:
    from elbocheck.derivations.corpus import CORPUS_DIR
    from elbocheck.derivations.corpus.adversarial import STEPS
    from elbocheck.derivations.latex import LatexError, check_file

    start = time.perf_counter()
    for entry in STEPS:
        try:
            Checker().check_step(entry.model, Step(entry.lhs, entry.relation, entry.rhs, tuple(entry.assumptions)))
        except Exception:  # noqa: BLE001 - a benchmark times, the tests judge
            pass
    api = time.perf_counter() - start
    files = sorted(CORPUS_DIR.glob("*/*.tex")) + sorted(CORPUS_DIR.glob("*/*.md"))
    files = [f for f in files if f.name != "README.md"]
    start = time.perf_counter()
    steps = unread = 0
    for path in files:
        try:
            steps += len(check_file(path).step_results)
        except LatexError:  # files whose headers the semantics cannot read (listed in the corpus tests)
            unread += 1
    latex = time.perf_counter() - start
    print(f"{'corpus':32s} {'steps':>6s} {'seconds':>8s}")
    print(f"{'adversarial (API)':32s} {len(STEPS):6d} {api:8.2f}")
    label = f"LaTeX files ({len(files)}, {unread} not read)"
    print(f"{label:32s} {steps:6d} {latex:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["library", "scale", "corpora"])
    args = parser.parse_args()
    print(f"derivation checker benchmark ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"best of {args.repeats}; load average {os.getloadavg()[0]:.1f})\n")
    if args.only in (None, "library"):
        library(args.repeats)
    if args.only in (None, "scale"):
        scale(args.repeats)
    if args.only in (None, "corpora"):
        corpora()


if __name__ == "__main__":
    main()
