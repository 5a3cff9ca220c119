"""Tests for elbocheck.estimators.aggregate_posterior: the chunked exact mixture against a brute-force numpy
log-sum-exp, for every chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from elbocheck.estimators import aggregate_posterior_log_density
from elbocheck.estimators.aggregate_posterior import grouped_mixture_log_sum
from estimator_testing import (
    cuda_device,
    numpy_aggregate_log_density,
    numpy_diagonal_log_density,
    to_numpy,
)  # noqa: F401 (fixture)


@st.composite
def mixtures(draw, log10_scale_range=(-3.0, 3.0)):
    num_points = draw(st.integers(1, 12))
    num_components = draw(st.integers(1, 15))
    dim = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    low, high = log10_scale_range
    generator = torch.Generator().manual_seed(seed)
    scale = 10.0 ** (low + (high - low) * torch.rand(num_components, dim, generator=generator, dtype=torch.float64))
    mean = torch.randn(num_components, dim, generator=generator, dtype=torch.float64) * draw(
        st.sampled_from([0.1, 1.0, 10.0])
    )
    # half of the points drawn from a component (as the estimators' samples are), half anywhere
    source = torch.randint(num_components, (num_points,), generator=generator)
    near = mean[source] + scale[source] * torch.randn(num_points, dim, generator=generator, dtype=torch.float64)
    anywhere = torch.randn(num_points, dim, generator=generator, dtype=torch.float64) * 3
    z = torch.where(torch.rand(num_points, 1, generator=generator) < 0.5, near, anywhere)
    return z, mean, 2 * torch.log(scale)


@settings(max_examples=50)
@given(mixture=mixtures(), max_chunk_elements=st.integers(1, 200))
def test_matches_brute_force_for_every_chunking(mixture, max_chunk_elements):
    z, mean, log_var = mixture
    density = aggregate_posterior_log_density(z, mean, log_var, max_chunk_elements=max_chunk_elements)
    reference_joint, reference_marginal = numpy_aggregate_log_density(to_numpy(z), to_numpy(mean), to_numpy(log_var))
    assert np.allclose(to_numpy(density.log_qz), reference_joint, rtol=1e-10, atol=1e-8)
    assert np.allclose(to_numpy(density.log_qzi), reference_marginal, rtol=1e-10, atol=1e-8)
    assert np.allclose(to_numpy(density.log_prod_qzi), reference_marginal.sum(-1), rtol=1e-10, atol=1e-8)


@settings(max_examples=30)
@given(mixture=mixtures(log10_scale_range=(-1.0, 1.0)), max_chunk_elements=st.integers(1, 200))
def test_float32_matches_float64(mixture, max_chunk_elements):
    z, mean, log_var = mixture
    density = aggregate_posterior_log_density(
        z.float(), mean.float(), log_var.float(), max_chunk_elements=max_chunk_elements
    )
    reference_joint, reference_marginal = numpy_aggregate_log_density(to_numpy(z), to_numpy(mean), to_numpy(log_var))
    # float32: relative rounding 1e-7 on standardized squares up to ~(30 / 0.1)^2
    assert np.allclose(to_numpy(density.log_qz), reference_joint, rtol=1e-4, atol=1e-3)
    assert np.allclose(to_numpy(density.log_qzi), reference_marginal, rtol=1e-4, atol=1e-3)


@settings(max_examples=30)
@given(mixture=mixtures(log10_scale_range=(-6.0, 3.0)), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_no_nan_or_inf_for_scales_from_1e_minus_6_to_1e3(mixture, dtype):
    z, mean, log_var = (t.to(dtype) for t in mixture)
    density = aggregate_posterior_log_density(z, mean, log_var, max_chunk_elements=64)
    assert torch.isfinite(density.log_qz).all() and torch.isfinite(density.log_qzi).all()


@settings(max_examples=30)
@given(mixture=mixtures(), max_chunk_elements=st.integers(1, 200), seed=st.integers(0, 1000))
def test_grouped_sums_match_brute_force(mixture, max_chunk_elements, seed):
    z, mean, log_var = mixture
    generator = torch.Generator().manual_seed(seed)
    component_groups = torch.randint(3, (mean.shape[0],), generator=generator)
    point_groups = torch.randint(3, (z.shape[0],), generator=generator)
    joint, marginal, sizes = grouped_mixture_log_sum(
        z, point_groups, mean, log_var, component_groups, max_chunk_elements=max_chunk_elements
    )
    log_density = numpy_diagonal_log_density(to_numpy(z), to_numpy(mean), to_numpy(log_var))  # (S, N, D)
    for s in range(z.shape[0]):
        members = (component_groups == point_groups[s]).numpy()
        assert sizes[s] == members.sum()
        if not members.any():
            assert joint[s] == -np.inf and np.all(marginal[s].numpy() == -np.inf)
            continue
        assert np.isclose(joint[s].item(), logsumexp(log_density[s, members].sum(-1)), rtol=1e-10, atol=1e-8)
        assert np.allclose(marginal[s].numpy(), logsumexp(log_density[s, members], axis=0), rtol=1e-10, atol=1e-8)


def test_large_dataset_with_a_small_chunk_budget():
    """N = 20000 components through a budget of 4096 elements: the streamed log-sum-exp equals the one-shot one."""
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(20000, 3, generator=generator, dtype=torch.float64)
    log_var = torch.randn(20000, 3, generator=generator, dtype=torch.float64) * 0.5 - 1
    z = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    density = aggregate_posterior_log_density(z, mean, log_var, max_chunk_elements=4096)
    reference_joint, reference_marginal = numpy_aggregate_log_density(to_numpy(z), to_numpy(mean), to_numpy(log_var))
    assert np.allclose(to_numpy(density.log_qz), reference_joint, rtol=1e-12, atol=1e-10)
    assert np.allclose(to_numpy(density.log_qzi), reference_marginal, rtol=1e-12, atol=1e-10)


def test_bad_input_names_the_argument():
    mean, log_var, z = torch.zeros(5, 2), torch.zeros(5, 2), torch.zeros(3, 2)
    with pytest.raises(ValueError, match="'z'"):
        aggregate_posterior_log_density(torch.zeros(3, 4), mean, log_var)
    with pytest.raises(ValueError, match="'z'"):
        aggregate_posterior_log_density(torch.full((3, 2), float("nan")), mean, log_var)
    with pytest.raises(ValueError, match="'log_var'"):
        aggregate_posterior_log_density(z, mean, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="1 NaN and 0 infinite values in argument 'mean'"):
        aggregate_posterior_log_density(z, torch.tensor([[float("nan"), 0.0]] + [[0.0, 0.0]] * 4), log_var)
    with pytest.raises(ValueError, match="'max_chunk_elements'"):
        aggregate_posterior_log_density(z, mean, log_var, max_chunk_elements=0)
    with pytest.raises(ValueError, match="'z'"):
        aggregate_posterior_log_density(z.double(), mean, log_var)


@pytest.mark.cuda
def test_cuda_aggregate_posterior():
    device = cuda_device()
    mean, log_var, z = torch.randn(50, 3), torch.randn(50, 3) * 0.1, torch.randn(9, 3)
    on_device = aggregate_posterior_log_density(
        z.to(device), mean.to(device), log_var.to(device), max_chunk_elements=100
    )
    on_cpu = aggregate_posterior_log_density(z, mean, log_var, max_chunk_elements=100)
    assert on_device.log_qz.device.type == "cuda"
    assert torch.allclose(on_device.log_qz.cpu(), on_cpu.log_qz, atol=1e-4)
    assert torch.allclose(on_device.log_qzi.cpu(), on_cpu.log_qzi, atol=1e-4)
