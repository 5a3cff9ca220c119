"""Helpers for the estimator tests: independent float64 reference computations (numpy/scipy, written from scratch,
sharing no code with the package), the 5-standard-error check, and the CUDA skip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

SIGMAS = 5.0  # statistical tests accept |estimate - truth| <= 5 standard errors


def assert_within_standard_errors(estimate, truth, standard_error, *, rounding=0.0, sigmas=SIGMAS, what=""):
    """|estimate - truth| <= sigmas * standard_error + rounding, element-wise; ``rounding`` is a floating-point
    allowance set a priori from the magnitudes involved, never from the observed error."""
    estimate, truth, standard_error = (
        np.asarray(torch.as_tensor(v).detach().cpu(), dtype=np.float64) for v in (estimate, truth, standard_error)
    )
    rounding = np.asarray(torch.as_tensor(rounding).detach().cpu(), dtype=np.float64)
    error = np.abs(estimate - truth)
    allowed = sigmas * standard_error + rounding
    ratio = error / np.maximum(standard_error, 1e-300)
    assert np.all(error <= allowed), (
        f"{what}: |estimate - truth| exceeds {sigmas} standard errors (+ rounding {np.max(rounding):g}):"
        f"\nestimate={estimate}\ntruth={truth}\nstandard_error={standard_error}\nerror/SE={ratio}"
    )


def cuda_device() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False on this machine")
    return torch.device("cuda")


def numpy_gaussian_kl(mean_q, cov_q, mean_p, cov_p):
    """KL(N(mean_q, cov_q) || N(mean_p, cov_p)) from scratch in float64 with Cholesky factors and triangular solves:
    (tr(S_p^-1 S_q) + d^T S_p^-1 d - D + log det S_p - log det S_q) / 2, d = mean_p - mean_q.
    Also returns the magnitude of the summed terms (for a rounding allowance)."""
    mean_q, cov_q, mean_p, cov_p = (np.asarray(a, dtype=np.float64) for a in (mean_q, cov_q, mean_p, cov_p))
    dim = mean_q.shape[-1]
    chol_p = np.linalg.cholesky(cov_p)
    chol_q = np.linalg.cholesky(cov_q)
    whitened = solve_triangular(chol_p, chol_q, lower=True)  # L_p^-1 L_q
    trace = np.sum(whitened**2)
    difference = solve_triangular(chol_p, mean_p - mean_q, lower=True)
    mahalanobis = np.sum(difference**2)
    log_det_p = 2 * np.sum(np.log(np.diag(chol_p)))
    log_det_q = 2 * np.sum(np.log(np.diag(chol_q)))
    value = 0.5 * (trace + mahalanobis - dim + log_det_p - log_det_q)
    magnitude = trace + mahalanobis + dim + abs(log_det_p) + abs(log_det_q)
    return value, magnitude


def numpy_diagonal_log_density(z, mean, log_var):
    """log N(z_sj; mean_nj, exp(log_var_nj)) for all (s, n, j), shape (S, N, D), float64."""
    z, mean, log_var = (np.asarray(a, dtype=np.float64) for a in (z, mean, log_var))
    variance = np.exp(log_var)
    return -0.5 * (np.log(2 * np.pi) + log_var[None] + (z[:, None, :] - mean[None]) ** 2 / variance[None])


def numpy_aggregate_log_density(z, mean, log_var):
    """Brute-force exact log q(z) (S,) and log q(z_j) (S, D) of the N-component mixture, float64."""
    log_density = numpy_diagonal_log_density(z, mean, log_var)
    count = log_density.shape[1]
    return logsumexp(log_density.sum(-1), axis=1) - math.log(count), logsumexp(log_density, axis=1) - math.log(count)


def to_numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def numpy_label_information_1d(mean, scale, labels, points_per_scale=40):
    """Plug-in I(w; y) for a one-dimensional latent by trapezoidal integration (float64, independent of the package):
    sum_c pi_c int q(w|c) log(q(w|c) / q(w)) dw with the empirical class-conditional mixtures."""
    from scipy import stats as scipy_stats

    mean, scale, labels = (np.asarray(a) for a in (mean, scale, labels))
    spacing = scale.min() / points_per_scale
    grid = np.arange(mean.min() - 12 * scale.max(), mean.max() + 12 * scale.max() + spacing, spacing)
    log_components = scipy_stats.norm(mean[:, None], scale[:, None]).logpdf(grid[None])  # (N, G)
    log_all = logsumexp(log_components, axis=0) - math.log(mean.shape[0])
    total = 0.0
    for label in np.unique(labels):
        members = labels == label
        log_class = logsumexp(log_components[members], axis=0) - math.log(members.sum())
        total += members.mean() * np.trapezoid(np.exp(log_class) * (log_class - log_all), grid)
    return total
