"""The kl-enough grid on a real Ray cluster: the test starts a local cluster (Ray's GCS, raylet and workers), the
command line connects to it by address as a separate driver, every (arm, seed) runs as a Ray task that writes its
own row.json, and a rerun trains nothing. Needs the ``ray`` extra (``pip install -e ".[ray]"``, which CI installs)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (python -m pip install -e '.[ray]')")

ARMS = ("reference-digits-b1", "csvae-digits-b1-a0")
SEEDS = ("0", "1")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster with 2 CPUs, started and stopped by this test (only its own processes)."""
    temporary = tmp_path_factory.mktemp("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    context = ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024 * 1024,
                       _temp_dir=str(temporary), logging_level="ERROR", configure_logging=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def _experiment(address, out, *extra):
    command = [sys.executable, "-m", "elbocheck", "experiment", "kl-enough", "--preset", "small", "--arms", *ARMS,
               "--seeds", *SEEDS, "--ray", address, "--out", str(out), "--no-progress", *extra]
    environment = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)


def test_the_grid_runs_as_ray_tasks_on_a_cluster_and_a_rerun_trains_nothing(cluster, tmp_path):
    out = tmp_path / "out"
    first = _experiment(cluster, out)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "4 run(s) trained" in first.stdout
    with (out / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["run_id"] for r in rows) == sorted(f"{a}-seed{s}" for a in ARMS for s in SEEDS)
    for row in rows:
        assert (out / "runs" / row["run_id"] / "row.json").is_file()  # each task wrote its own row
    assert (out / "report.md").is_file()
    second = _experiment(cluster, out)
    assert second.returncode == 0 and "0 run(s) trained" in second.stdout and "4 reused" in second.stdout


def test_an_address_without_a_cluster_is_a_clear_error(tmp_path):
    result = _experiment("127.0.0.1:1", tmp_path / "out")
    assert result.returncode == 2
    assert "ray: cannot connect" in result.stderr and "Traceback" not in result.stderr
