"""Tests for elbocheck.estimators.minibatch_mixture: the fused kernel and its hand-written backward pass against
independent references in float64: a numpy/scipy log-sum-exp with explicit leave-one-out loops (values), and
autograd through the plain formula written with ordinary torch operations (gradients), plus torch.autograd.gradcheck.
The awkward rows get their own cases: several columns tied for the largest term, one other component dominating
the own one by many nats, rows dominated by their own component."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from elbocheck.estimators.minibatch_mixture import minibatch_mixture_log_density
from estimator_testing import cuda_device, numpy_diagonal_log_density, to_numpy  # noqa: F401 (fixture)

LOG_2PI = math.log(2 * math.pi)


def _weights(batch_size, dataset_size):
    """MSS weights: log w_o = -log N, log w = log((N - 1) / (N (M - 1)))."""
    return -math.log(dataset_size), math.log(dataset_size - 1) - math.log(dataset_size) - math.log(batch_size - 1)


def _kernel(z, mean, log_var, dataset_size, jackknife, block=None):
    own, other = _weights(z.shape[0], dataset_size)
    return minibatch_mixture_log_density(
        z, mean, log_var, log_own_weight=own, log_other_weight=other,
        jackknife_population=dataset_size - 1 if jackknife else None, max_block_elements=block,
    )


def _numpy_reference(z, mean, log_var, dataset_size, jackknife):
    """From scratch in float64: per row and plane (each dimension, then the joint), the weighted log-mean and, for the
    jackknife, the explicit mean over the n leave-one-out estimates."""
    pairwise = numpy_diagonal_log_density(z, mean, log_var)  # (i, k, j)
    planes = np.concatenate([pairwise, pairwise.sum(-1, keepdims=True)], axis=-1)  # (i, k, D + 1)
    batch_size, planes_count = z.shape[0], planes.shape[-1]
    others = batch_size - 1
    log_own, log_other = _weights(batch_size, dataset_size)
    result = np.empty((batch_size, planes_count))
    for i in range(batch_size):
        rest = [k for k in range(batch_size) if k != i]
        for p in range(planes_count):
            own = planes[i, i, p] + log_own
            plain = np.logaddexp(own, logsumexp(planes[i, rest, p]) + log_other)
            if not jackknife:
                result[i, p] = plain
                continue
            log_loo_other = log_other + math.log(others) - math.log(others - 1)
            leave_one_out = [
                np.logaddexp(own, logsumexp(planes[i, [k for k in rest if k != left], p]) + log_loo_other)
                for left in rest
            ]
            lam = (others - 1) * (1 - others / (dataset_size - 1))
            result[i, p] = plain - lam * (np.mean(leave_one_out) - plain)
    return result[:, -1], result[:, :-1]


def _torch_reference(z, mean, log_var, dataset_size, jackknife):
    """The same formula with ordinary differentiable torch operations (for autograd's gradients)."""
    pairwise = -0.5 * (LOG_2PI + log_var[None] + (z[:, None] - mean[None]) ** 2 * torch.exp(-log_var[None]))
    planes = torch.cat([pairwise, pairwise.sum(-1, keepdim=True)], -1)  # (i, k, P)
    batch_size = z.shape[0]
    others = batch_size - 1
    log_own, log_other = _weights(batch_size, dataset_size)
    eye = torch.eye(batch_size, dtype=torch.bool)
    own = planes[eye] + log_own  # (i, P)
    rest = planes[~eye].view(batch_size, others, -1)  # (i, n, P)
    plain = torch.logaddexp(own, torch.logsumexp(rest, 1) + log_other)
    if jackknife:
        log_loo_other = log_other + math.log(others) - math.log(others - 1)
        leave_one_out = torch.stack(
            [torch.logaddexp(own, torch.logsumexp(rest[:, [m for m in range(others) if m != left]], 1) + log_loo_other)
             for left in range(others)], 1)
        lam = (others - 1) * (1 - others / (dataset_size - 1))
        plain = plain - lam * (leave_one_out.mean(1) - plain)
    return plain[:, -1], plain[:, :-1]


def _batch(batch_size, dim, seed, *, spread=1.0, log10_scale=(-1.0, 0.3), dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    low, high = log10_scale
    log_var = 2 * math.log(10) * (low + (high - low) * torch.rand(batch_size, dim, generator=generator, dtype=dtype))
    mean = spread * torch.randn(batch_size, dim, generator=generator, dtype=dtype)
    z = mean + torch.exp(0.5 * log_var) * torch.randn(batch_size, dim, generator=generator, dtype=dtype)
    return z, mean, log_var


def _awkward_batch(kind):
    """Rows the numerics must get right. ``ties``: duplicated posteriors, so several columns share the largest term;
    ``dominant``: row 0's sample sits on a narrow other component 12 standard deviations from its own broad one (the
    own term is ~70 nats below); ``own``: posteriors so tight and far apart that every row is its own component."""
    z, mean, log_var = _batch(7, 3, seed=3)
    if kind == "ties":
        mean[4:] = mean[1]
        log_var[4:] = log_var[1]
        z[0] = mean[1] + 0.1
    elif kind == "dominant":
        log_var[0] = math.log(1.0)
        log_var[3] = math.log(1e-4)
        z[0] = mean[0] + 12.0
        mean[3] = z[0] + 1e-3
    elif kind == "own":
        mean = 50.0 * mean
        log_var = torch.full_like(log_var, math.log(1e-4))
        z = mean + 1e-2 * torch.randn(mean.shape, generator=torch.Generator().manual_seed(4), dtype=mean.dtype)
    return z, mean, log_var


# --- values ---------------------------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(
    batch_size=st.integers(3, 10),
    dim=st.integers(1, 4),
    extra=st.integers(0, 200),
    seed=st.integers(0, 10_000),
    jackknife=st.booleans(),
    block=st.sampled_from([1, 7, 64, None]),
    spread=st.sampled_from([0.1, 1.0, 5.0]),
)
def test_values_match_the_numpy_reference(batch_size, dim, extra, seed, jackknife, block, spread):
    z, mean, log_var = _batch(batch_size, dim, seed, spread=spread)
    dataset_size = batch_size + extra
    log_qz, log_qzi = _kernel(z, mean, log_var, dataset_size, jackknife, block)
    reference_qz, reference_qzi = _numpy_reference(to_numpy(z), to_numpy(mean), to_numpy(log_var), dataset_size,
                                                   jackknife)
    assert np.allclose(to_numpy(log_qz), reference_qz, rtol=1e-11, atol=1e-10)
    assert np.allclose(to_numpy(log_qzi), reference_qzi, rtol=1e-11, atol=1e-10)


@pytest.mark.parametrize("kind", ["ties", "dominant", "own"])
@pytest.mark.parametrize("jackknife", [False, True])
def test_awkward_rows_match_the_numpy_reference(kind, jackknife):
    z, mean, log_var = _awkward_batch(kind)
    log_qz, log_qzi = _kernel(z, mean, log_var, 40, jackknife)
    reference_qz, reference_qzi = _numpy_reference(to_numpy(z), to_numpy(mean), to_numpy(log_var), 40, jackknife)
    assert np.allclose(to_numpy(log_qz), reference_qz, rtol=1e-11, atol=1e-9)
    assert np.allclose(to_numpy(log_qzi), reference_qzi, rtol=1e-11, atol=1e-9)


def test_at_the_full_data_set_the_jackknife_is_the_plain_estimate():
    """M = N: lam = (n - 1)(1 - n / (N - 1)) = 0, and both are the exact mixture."""
    z, mean, log_var = _batch(9, 3, seed=5)
    plain = _kernel(z, mean, log_var, 9, jackknife=False)
    jackknifed = _kernel(z, mean, log_var, 9, jackknife=True)
    for a, b in zip(plain, jackknifed):
        assert torch.allclose(a, b, rtol=1e-13, atol=1e-12)


@settings(max_examples=20)
@given(seed=st.integers(0, 1000), jackknife=st.booleans(), log10_low=st.floats(-3, 1))
def test_float32_matches_float64(seed, jackknife, log10_low):
    z, mean, log_var = _batch(40, 5, seed, log10_scale=(log10_low, log10_low + 1.0))
    exact = _kernel(z, mean, log_var, 1000, jackknife)
    single = _kernel(z.float(), mean.float(), log_var.float(), 1000, jackknife)
    for a, b in zip(single, exact):
        assert a.dtype == torch.float32
        # float32 rounding of standardized squares up to ~(spread / scale)^2 ~ 1e6 in the far terms, which the
        # log-sum-exp discounts; the leading terms are O(10): 1e-7 * 10 * D (+ the sum over 40 rows and 5 dims)
        assert torch.allclose(a.double(), b, rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_are_computed_in_float32(dtype):
    z, mean, log_var = (t.to(dtype) for t in _batch(16, 3, seed=6))
    log_qz, log_qzi = _kernel(z, mean, log_var, 500, True)
    assert log_qz.dtype == log_qzi.dtype == torch.float32
    reference = _kernel(z.float(), mean.float(), log_var.float(), 500, True)  # the same rounded inputs
    assert torch.equal(log_qz, reference[0]) and torch.equal(log_qzi, reference[1])


def test_block_size_changes_nothing():
    z, mean, log_var = _batch(33, 4, seed=7)
    leaves = [t.clone().requires_grad_(True) for t in (z, mean, log_var)]
    results = []
    for block in (1, 5 * 33 * 4, 10**9, None):
        log_qz, log_qzi = _kernel(*leaves, 500, True, block)
        loss = (log_qz * torch.linspace(-1, 1, 33, dtype=torch.float64)).sum() + log_qzi.square().sum()
        results.append((log_qz, log_qzi, *torch.autograd.grad(loss, leaves)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


# --- gradients ------------------------------------------------------------------------------------------------------


def _leaves(z, mean, log_var):
    return [t.detach().clone().requires_grad_(True) for t in (z, mean, log_var)]


@pytest.mark.parametrize("jackknife", [False, True])
@pytest.mark.parametrize("case", ["random", "ties", "dominant", "own"])
def test_gradcheck(jackknife, case):
    z, mean, log_var = _batch(5, 2, seed=8) if case == "random" else _awkward_batch(case)
    assert torch.autograd.gradcheck(
        lambda *inputs: _kernel(*inputs, 30, jackknife, 7), _leaves(z, mean, log_var), eps=1e-6, atol=1e-6
    )


@settings(max_examples=25)
@given(
    batch_size=st.integers(3, 9),
    dim=st.integers(1, 4),
    extra=st.integers(0, 100),
    seed=st.integers(0, 10_000),
    jackknife=st.booleans(),
    block=st.sampled_from([1, 11, None]),
    spread=st.sampled_from([0.1, 1.0, 5.0]),
)
def test_gradients_match_autograd_on_the_plain_formula(batch_size, dim, extra, seed, jackknife, block, spread):
    z, mean, log_var = _batch(batch_size, dim, seed, spread=spread)
    weight_qz = torch.randn(batch_size, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    weight_qzi = torch.randn(batch_size, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    gradients = []
    for function in (lambda *a: _kernel(*a, batch_size + extra, jackknife, block),
                     lambda *a: _torch_reference(*a, batch_size + extra, jackknife)):
        leaves = _leaves(z, mean, log_var)
        log_qz, log_qzi = function(*leaves)
        gradients.append(torch.autograd.grad((weight_qz * log_qz).sum() + (weight_qzi * log_qzi).sum(), leaves))
    for ours, reference in zip(*gradients):
        assert torch.allclose(ours, reference, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("case", ["ties", "dominant", "own"])
def test_awkward_gradients_match_autograd(case):
    z, mean, log_var = _awkward_batch(case)
    gradients = []
    for function in (lambda *a: _kernel(*a, 40, True), lambda *a: _torch_reference(*a, 40, True)):
        leaves = _leaves(z, mean, log_var)
        log_qz, log_qzi = function(*leaves)
        gradients.append(torch.autograd.grad(log_qz.sum() + 0.5 * log_qzi.sum(), leaves))
    for ours, reference in zip(*gradients):
        assert torch.isfinite(ours).all()
        assert torch.allclose(ours, reference, rtol=1e-8, atol=1e-9)


def test_gradient_of_one_output_only():
    """Autograd hands the backward pass zeros for an unused output; the other's gradient must be unaffected."""
    z, mean, log_var = _batch(6, 2, seed=9)
    for pick in (0, 1):
        gradients = []
        for function in (lambda *a: _kernel(*a, 50, True), lambda *a: _torch_reference(*a, 50, True)):
            leaves = _leaves(z, mean, log_var)
            gradients.append(torch.autograd.grad(function(*leaves)[pick].sum(), leaves))
        for ours, reference in zip(*gradients):
            assert torch.allclose(ours, reference, rtol=1e-9, atol=1e-10)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_cpu(dtype):
    """The same (rounded) inputs on the GPU and on the CPU: bfloat16 is computed in float32 on both."""
    device = cuda_device()
    inputs = [t.to(dtype) for t in _batch(64, 6, seed=10, dtype=torch.float32)]
    results = []
    for leaves in ([t.float().requires_grad_(True) for t in inputs],
                   [t.to(device).requires_grad_(True) for t in inputs]):
        log_qz, log_qzi = _kernel(*leaves, 5000, True)
        results.append((log_qz, log_qzi, *torch.autograd.grad(log_qz.sum() + log_qzi.sum(), leaves)))
    assert results[1][0].device.type == "cuda" and results[1][0].dtype == torch.float32
    for a, b in zip(*results):  # float32 on both sides; summation orders differ
        assert torch.allclose(a, b.float().cpu(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("case", ["ties", "dominant", "own"])
def test_float32_awkward_rows_stay_finite(case):
    """In float32, terms more than ~87 nats below a row's largest flush to zero; where a row's own term and all but
    one other are that far below (its z is far from its own posterior: ``ties`` row 6), the jackknife's correction,
    which grows like the log of that gap, differs from float64 (module docstring); it must stay finite."""
    z, mean, log_var = (t.float() for t in _awkward_batch(case))
    leaves = _leaves(z, mean, log_var)
    log_qz, log_qzi = _kernel(*leaves, 40, True)
    gradients = torch.autograd.grad(log_qz.sum() + 0.5 * log_qzi.sum(), leaves)
    for value in (log_qz, log_qzi, *gradients):
        assert torch.isfinite(value).all()


def test_float32_tight_posteriors_far_from_the_origin():
    """The ``own`` case in float32 against float64: z - mu at |mean| ~ 50 is rounded to 50 * 2^-24 ~ 3e-6, i.e.
    3e-4 of the scale 1e-2; u^2 doubles that, the sums over 7 rows and 3 dimensions add a few: 5e-3 relative."""
    z, mean, log_var = _awkward_batch("own")
    results = []
    for dtype in (torch.float64, torch.float32):
        leaves = [t.to(dtype).requires_grad_(True) for t in (z, mean, log_var)]
        log_qz, log_qzi = _kernel(*leaves, 40, True)
        results.append((log_qz, log_qzi, *torch.autograd.grad(log_qz.sum() + 0.5 * log_qzi.sum(), leaves)))
    for exact, single in zip(*results):
        assert torch.allclose(single.double(), exact, rtol=5e-3, atol=5e-3)
