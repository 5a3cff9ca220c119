"""Shared pytest configuration.

Hypothesis profiles: ``ci`` (loaded when the environment variable CI is set, as on the CI machine) is derandomized and
has no deadline, so a CI run is reproducible and not timing-dependent; ``dev`` is the local default.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config):
    # Under pytest-xdist on 2 cores, each worker's default intra-op thread pool oversubscribes the CPU and makes
    # small torch workloads several times slower; one thread per worker is faster.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            return
        torch.set_num_threads(1)
