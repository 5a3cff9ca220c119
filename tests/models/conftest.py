"""Fixtures of the model tests (the shared helpers live in model_testing.py)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_threaded_torch():
    """One intra-op thread while a model test runs: the nets are tiny, and with ``pytest -n 2`` on two cores a
    second OpenMP thread per worker only oversubscribes the CPU (tiny ops then wait on descheduled threads).
    Each test also starts from the same global seed. The thread count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
