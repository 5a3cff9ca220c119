"""Mutation testing of the checker's certificate and canonical-form code with cosmic-ray (run on demand).

    pip install cosmic-ray
    python benchmarks/mutation.py [--sample 300] [--seed 0] [--session mutation.sqlite]
    python benchmarks/mutation.py --session mutation.sqlite --rerun-survivors   # after adding tests

cosmic-ray generates every mutant of ``derivations/certificates.py`` and ``derivations/canonical.py`` (an operator
replaced, a comparison flipped, a number changed, a condition negated, ...: about 3,000), this script keeps a random
sample of them (seeded), and cosmic-ray runs the soundness tests against each: a mutant is *killed* when a test
fails, *survives* when all pass. The score is killed / (killed + survived); mutants that time out count as killed
(cosmic-ray's convention), mutants that cannot be imported are left out.

cosmic-ray edits the source files in place (and restores them): run it in a checkout of its own, with its own
editable install, not in the one you are working in. Prints a table and the surviving mutants.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["derivations/certificates.py", "derivations/canonical.py"]
TESTS = ["tests/derivations/test_soundness_regressions.py", "tests/derivations/test_textbook_steps.py",
         "tests/derivations/test_checker_rules.py", "tests/derivations/test_mutation_survivors.py",
         "tests/derivations/test_mutants.py::test_the_real_checker_is_not_caught_on_the_fast_cases"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=200, help="mutants to run (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--session", default=None, help="cosmic-ray session file (default: a temporary one)")
    parser.add_argument("--report-only", action="store_true", help="print the table of an existing --session")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="in an existing --session: forget the survivors' results and run them again with the "
                             "current tests (with the mutants that never ran); the killed ones stay killed, since "
                             "tests are only ever added. Valid only while the mutated modules are as they were when "
                             "the session was made (a mutant is a position in that code)")
    args = parser.parse_args()
    if args.report_only:
        report(Path(args.session), None, None, args.seed)
        return
    config = Path(tempfile.mkstemp(suffix=".toml")[1])
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {MODULES!r}\n".replace("'", '"')
        + "timeout = 300.0\nexcluded-modules = []\n"
        f"test-command = \"{sys.executable} -m pytest -x -q -p no:cacheprovider {' '.join(TESTS)}\"\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n")
    if args.rerun_survivors:
        if args.session is None or not Path(args.session).is_file():
            parser.error(f"--rerun-survivors needs an existing --session file, got {args.session!r}")
        session = Path(args.session)
        with sqlite3.connect(session) as db:
            forgotten = db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'").rowcount
            total = db.execute("SELECT COUNT(*) FROM work_items").fetchone()[0]
        print(f"running again: {forgotten} survivors (and any mutant without a result) of {total}")
        start = time.perf_counter()
        subprocess.run(["cosmic-ray", "exec", str(config), str(session)], cwd=ROOT, check=True)
        report(session, total, time.perf_counter() - start, args.seed)
        return
    session = Path(args.session or tempfile.mkstemp(suffix=".sqlite")[1])
    session.unlink(missing_ok=True)
    subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=ROOT, check=True)
    with sqlite3.connect(session) as db:
        ids = [row[0] for row in db.execute("SELECT job_id FROM work_items")]
        total = len(ids)
        if args.sample and args.sample < total:
            keep = set(random.Random(args.seed).sample(ids, args.sample))
            drop = [(job,) for job in ids if job not in keep]
            db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
            db.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
    start = time.perf_counter()
    subprocess.run(["cosmic-ray", "exec", str(config), str(session)], cwd=ROOT, check=True)
    report(session, total, time.perf_counter() - start, args.seed)


def report(session: Path, total: int | None, elapsed: float | None, seed: int) -> None:
    with sqlite3.connect(session) as db:
        rows = list(db.execute(
            "SELECT r.test_outcome, r.worker_outcome, s.module_path, s.operator_name, s.start_pos_row "
            "FROM work_results r JOIN mutation_specs s ON r.job_id = s.job_id"))
    rows = [(str(o).lower(), str(w).lower(), *rest) for o, w, *rest in rows]
    killed = sum(1 for outcome, worker, *_ in rows if outcome == "killed" or worker == "timeout")
    survived = [r for r in rows if r[0] == "survived" and r[1] != "timeout"]
    incompetent = sum(1 for outcome, *_ in rows if outcome == "incompetent")
    score = killed / max(1, killed + len(survived))
    if total is None:
        with sqlite3.connect(session) as db:
            total = db.execute("SELECT COUNT(*) FROM work_items").fetchone()[0]
    timing = f"; {elapsed / 60:.0f} min" if elapsed is not None else ""
    print(f"\nmutants run: {len(rows)} of {total} sampled (seed {seed}){timing}")
    print(f"{'killed':>8s} {'survived':>9s} {'incompetent':>12s} {'score':>7s}")
    print(f"{killed:8d} {len(survived):9d} {incompetent:12d} {score:7.1%}")
    for outcome, _, module, operator, row in sorted(survived, key=lambda r: (r[2], r[4])):
        print(f"  survived: {module}:{row} {operator}")


if __name__ == "__main__":
    main()
