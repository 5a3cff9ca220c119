"""The minibatch mixture log densities of the beta-TCVAE decomposition, fused and memory-bounded, with a hand-written
backward pass (a ``torch.autograd.Function``) that recomputes instead of storing.

Rows i are the batch's samples z_i ~ q(z|x_i), columns k the batch's diagonal-Gaussian posteriors; i and k run over
the same M points and column i is row i's own posterior. Per latent dimension j, and for the joint,

    l_ikj = log N(z_ij; mu_kj, exp(v_kj)) = c_kj - u_ikj^2 / 2,   u_ikj = (z_ij - mu_kj) exp(-v_kj / 2),
    c_kj  = -(log 2 pi + v_kj) / 2,                                l_ik = sum_j l_ikj.

Each row and "plane" p (a dimension j, or the joint) gets a weighted log-mean over the columns, with weight w_o on
the own column and w on each of the n = M - 1 others:

    plain:      theta = log( w_o e^{l_ii} + w sum_{k != i} e^{l_ik} )
    jackknife:  theta_J = theta - lam * ( mean_{k != i} theta_(k) - theta ),
                theta_(k) = log( w_o e^{l_ii} + w' sum_{l != i, k} e^{l_il} ),   w' = w n / (n - 1),
                lam = (n - 1) (1 - n / P),  P the size of the population the others were drawn from

(the leave-one-out estimate theta_(k) keeps the others' total weight; :mod:`.minibatch_decomposition` derives lam).

Numerics. Everything is formed in log space relative to the row's largest weighted term m, so t_k = e^{l_k - m} <= 1
(scaled weights: A = (w_o / w) e^{l_ii - m} for the own column). The leave-one-out sums T - t_k, with
T = rho A + sum_{k != i} t_k and rho = (n - 1) / n, lose their precision only for the largest other term when it
dominates; that one is formed directly as rho A + (the sum of the other others), so no difference of nearly equal
numbers is ever taken.

Gradients (for the backward pass; g is the upstream gradient of theta, q = A + sum_k t_k, H = sum_{k != i} 1/(T - t_k)):

    plain:      d theta / d l_k  = t_k / q                      (k = i included, with t_i = A)
    jackknife:  d theta_J / d l_k = t_k ((1 + lam) / q - lam H / n) + (lam / n) t_k / (T - t_k)     (k != i)
                d theta_J / d l_i = (1 + lam) A / q - (lam / n) rho A H
    d l_ikj / d z_ij = -u_ikj exp(-v_kj / 2),  d l_ikj / d mu_kj = u_ikj exp(-v_kj / 2),
    d l_ikj / d v_kj = (u_ikj^2 - 1) / 2.

So with G_ikj = dLoss/dl_ikj (the joint's gradient added to every dimension's):
grad z_ij = -sum_k G_ikj u_ikj e^{-v_kj/2}, grad mu_kj = e^{-v_kj/2} sum_i G_ikj u_ikj,
grad v_kj = (sum_i G_ikj u_ikj^2 - sum_i G_ikj) / 2. The forward pass keeps only O(M^2 + M D) numbers (the joint
log densities are recomputed too); the (M, M, D) array exists one block of rows at a time, in a (D, rows, M)
layout so that every reduction over the columns runs over contiguous memory and each block stays in cache.

Inputs in float16/bfloat16 are computed in float32 (as autocast does for log-sum-exp) and the outputs are float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import LOG_2PI

__all__ = ["DEFAULT_BLOCK_ELEMENTS", "minibatch_mixture_log_density"]

# One block of rows of the (D, rows, M) array: 2^18 float32 = 1 MiB, so the few buffers of a block stay in a 2 MiB L2
# cache (measured with benchmarks/estimators.py --block-sizes). GPUs want large kernels instead.
DEFAULT_BLOCK_ELEMENTS = {"cpu": 2**18, "cuda": 2**25}


def minibatch_mixture_log_density(
    z: Tensor,
    mean: Tensor,
    log_var: Tensor,
    *,
    log_own_weight: float,
    log_other_weight: float,
    jackknife_population: int | None = None,
    max_block_elements: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Weighted mixture log densities of a batch at its own samples: (log q^(z_i), shape (M,); log q^(z_ij), (M, D)).

    Args:
        z, mean, log_var: (M, D), one dtype and device (checked by the caller).
        log_own_weight, log_other_weight: log w_o and log w (see the module docstring).
        jackknife_population: ``None`` for the plain estimate; otherwise P, the number of points the M - 1 others
            were drawn from without replacement (N - 1 for a batch drawn from N points), for the jackknife (M >= 3).
        max_block_elements: elements of the (D, rows, M) block formed at once (``None``: a default for the device).
    """
    batch_size, latent_dim = z.shape
    if max_block_elements is None:
        max_block_elements = DEFAULT_BLOCK_ELEMENTS.get(z.device.type, DEFAULT_BLOCK_ELEMENTS["cuda"])
    compute_dtype = torch.float32 if z.dtype in (torch.float16, torch.bfloat16) else z.dtype
    rows_per_block = max(1, min(batch_size, max_block_elements // (batch_size * latent_dim)))
    weights = _Weights(batch_size, log_own_weight, log_other_weight, jackknife_population)
    log_qz, log_qzi = _MixtureLogDensity.apply(
        z.to(compute_dtype), mean.to(compute_dtype), log_var.to(compute_dtype), weights, rows_per_block
    )
    return log_qz, log_qzi


class _Weights:
    """The constants of the weighted log-mean (plain or jackknife) for n = M - 1 others."""

    def __init__(self, batch_size: int, log_own: float, log_other: float, population: int | None) -> None:
        others = batch_size - 1
        self.log_other = log_other
        self.log_ratio = log_own - log_other  # log(w_o / w): added to the own column
        self.jackknife = population is not None
        if self.jackknife:
            self.others = others
            self.rho = (others - 1) / others  # w / w'
            self.log_loo_other = log_other + math.log(others) - math.log(others - 1)  # log w'
            self.lam = (others - 1) * (1.0 - others / population)


class _MixtureLogDensity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor, mean: Tensor, log_var: Tensor, weights: _Weights, rows_per_block: int):
        batch_size, latent_dim = z.shape
        z_t, mean_t, inverse_scale, log_normalizer = _transposed_parameters(z, mean, log_var)
        marginal = _PlaneResults(latent_dim, batch_size, z, weights.jackknife)
        joint = _PlaneResults(1, batch_size, z, weights.jackknife)
        for start in range(0, batch_size, rows_per_block):
            stop = min(start + rows_per_block, batch_size)
            log_density = _block_log_density(z_t, mean_t, inverse_scale, log_normalizer, start, stop)
            joint_log_density = log_density.sum(0, keepdim=True)  # (1, rows, M): l_ik = sum_j l_ikj
            _plane_forward(joint_log_density, start, stop, weights, joint)
            _plane_forward(log_density, start, stop, weights, marginal)
        ctx.save_for_backward(z, mean, log_var, *joint.saved(), *marginal.saved())
        ctx.weights, ctx.rows_per_block = weights, rows_per_block
        return joint.theta[0], marginal.theta.T

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_log_qz: Tensor | None, grad_log_qzi: Tensor | None):
        weights: _Weights = ctx.weights
        z, mean, log_var, *saved = ctx.saved_tensors
        half = len(saved) // 2
        joint = _PlaneResults.restore(saved[:half], weights.jackknife)
        marginal = _PlaneResults.restore(saved[half:], weights.jackknife)
        batch_size, latent_dim = z.shape
        z_t, mean_t, inverse_scale, log_normalizer = _transposed_parameters(z, mean, log_var)
        grad_joint = (grad_log_qz if grad_log_qz is not None else z.new_zeros(batch_size))[None]  # (1, M)
        grad_marginal = (grad_log_qzi if grad_log_qzi is not None else torch.zeros_like(z)).T.contiguous()  # (D, M)
        grad_z_t = torch.empty_like(z_t)
        sum_g = torch.zeros_like(inverse_scale)  # sum_i G_ikj
        sum_gu = torch.zeros_like(inverse_scale)  # sum_i G_ikj u_ikj
        sum_guu = torch.zeros_like(inverse_scale)  # sum_i G_ikj u_ikj^2
        for start in range(0, batch_size, ctx.rows_per_block):
            stop = min(start + ctx.rows_per_block, batch_size)
            standardized = _block_standardized(z_t, mean_t, inverse_scale, start, stop)  # u, (D, rows, M)
            log_density = torch.addcmul(log_normalizer.unsqueeze(1), standardized, standardized, value=-0.5)
            joint_log_density = log_density.sum(0, keepdim=True)
            grad_joint_block = _plane_backward(joint_log_density, start, stop, weights, joint, grad_joint[:, start:stop])
            grad = _plane_backward(log_density, start, stop, weights, marginal, grad_marginal[:, start:stop])
            grad.add_(grad_joint_block)  # d l_ik / d l_ikj = 1: the joint's gradient reaches every dimension
            sum_g += grad.sum(1)
            grad_u = grad.mul_(standardized)  # G u
            grad_z_t[:, start:stop] = -torch.bmm(grad_u, inverse_scale.unsqueeze(-1)).squeeze(-1)
            sum_gu += grad_u.sum(1)
            sum_guu += grad_u.mul_(standardized).sum(1)
        grad_mean = (inverse_scale * sum_gu).T
        grad_log_var = (0.5 * (sum_guu - sum_g)).T
        return grad_z_t.T, grad_mean, grad_log_var, None, None


def _transposed_parameters(z: Tensor, mean: Tensor, log_var: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(D, M) layouts: z^T, mu^T, exp(-v/2) and c."""
    z_t = z.detach().T.contiguous()
    mean_t = mean.detach().T.contiguous()
    log_var_t = log_var.detach().T.contiguous()
    inverse_scale = torch.exp(-0.5 * log_var_t)
    log_normalizer = -0.5 * (LOG_2PI + log_var_t)
    return z_t, mean_t, inverse_scale, log_normalizer


def _block_standardized(z_t: Tensor, mean_t: Tensor, inverse_scale: Tensor, start: int, stop: int) -> Tensor:
    """u_ikj = (z_ij - mu_kj) / s_kj for the rows [start, stop), shape (D, rows, M); the difference is taken first,
    so that a sample near a narrow component keeps its precision."""
    return torch.sub(z_t[:, start:stop].unsqueeze(-1), mean_t.unsqueeze(1)).mul_(inverse_scale.unsqueeze(1))


def _block_log_density(z_t, mean_t, inverse_scale, log_normalizer, start: int, stop: int) -> Tensor:
    standardized = _block_standardized(z_t, mean_t, inverse_scale, start, stop)
    return torch.addcmul(log_normalizer.unsqueeze(1), standardized, standardized, value=-0.5)  # c - u^2 / 2


class _PlaneResults:
    """Per-plane results over all rows, shape (planes, M): theta, and what the backward pass needs."""

    NAMES_PLAIN = ("theta",)
    NAMES_JACKKNIFE = ("theta", "shift", "argmax", "own_log", "rest", "total", "log_top_gap")

    def __init__(self, planes: int, batch_size: int, like: Tensor, jackknife: bool) -> None:
        self.jackknife = jackknife
        for name in self.names():
            dtype = torch.long if name == "argmax" else like.dtype
            setattr(self, name, torch.empty(planes, batch_size, dtype=dtype, device=like.device))

    def names(self) -> tuple[str, ...]:
        return self.NAMES_JACKKNIFE if self.jackknife else self.NAMES_PLAIN

    def saved(self) -> list[Tensor]:
        return [getattr(self, name) for name in self.names()]

    @classmethod
    def restore(cls, tensors, jackknife: bool) -> "_PlaneResults":
        results = cls.__new__(cls)
        results.jackknife = jackknife
        for name, tensor in zip(results.names(), tensors):
            setattr(results, name, tensor)
        return results


def _plane_forward(log_density: Tensor, start: int, stop: int, weights: _Weights, out: _PlaneResults) -> None:
    """theta for each plane and row of the block; ``log_density`` (planes, rows, M) is overwritten."""
    own_column = log_density.diagonal(offset=start, dim1=1, dim2=2)  # l_ii, (planes, rows)
    own_column.add_(weights.log_ratio)
    if not weights.jackknife:
        shift = log_density.amax(-1)
        total = log_density.sub_(shift.unsqueeze(-1)).exp_().sum(-1)
        out.theta[:, start:stop] = total.log_().add_(shift).add_(weights.log_other)
        return
    shift, argmax = log_density.max(-1)
    own_log = own_column - shift  # log A
    scaled = log_density.sub_(shift.unsqueeze(-1)).exp_()  # t_k <= 1 (the own column holds A)
    other_is_top = _zero_own_and_top(scaled, argmax, start, stop)
    top = other_is_top.to(scaled.dtype)  # the largest other, t = 1, when it is the largest term
    own = own_log.exp()
    rest = scaled.sum(-1)  # the others except the largest other
    total = weights.rho * own + rest + top  # T
    # sum_{k != i} log(T - t_k): the zeroed own column gives log T (not a leave-one-out term); the zeroed largest
    # other gives log T instead of log(T - 1) = log(rho A + rest), formed in log space without cancellation
    log_top_gap = torch.logaddexp(math.log(weights.rho) + own_log, rest.log())
    log_total = total.log()
    log_leave_one_out = torch.rsub(scaled, total.unsqueeze(-1)).log_().sum(-1) - log_total
    log_leave_one_out -= torch.where(other_is_top, log_total - log_top_gap, 0.0)
    # theta_J = theta - lam (mean_k theta_(k) - theta), theta_(k) = shift + log w' + log(T - t_k)
    plain = torch.log(own + rest + top)  # theta - shift - log w
    correction = weights.log_loo_other + log_leave_one_out / weights.others - (weights.log_other + plain)
    out.theta[:, start:stop] = shift + weights.log_other + plain - weights.lam * correction
    for name, value in (("shift", shift), ("argmax", argmax), ("own_log", own_log), ("rest", rest),
                        ("total", total), ("log_top_gap", log_top_gap)):
        getattr(out, name)[:, start:stop] = value


def _zero_own_and_top(scaled: Tensor, argmax: Tensor, start: int, stop: int) -> Tensor:
    """Zero the own column and the largest column of each row; True where the largest is not the own column."""
    scaled.diagonal(offset=start, dim1=1, dim2=2).zero_()
    scaled.scatter_(-1, argmax.unsqueeze(-1), 0.0)
    return argmax != torch.arange(start, stop, device=argmax.device)


def _plane_backward(log_density: Tensor, start: int, stop: int, weights: _Weights, saved: _PlaneResults,
                    grad: Tensor) -> Tensor:
    """dLoss / d l for each plane of the block, (planes, rows, M); ``log_density`` is overwritten and returned."""
    rows = slice(start, stop)
    log_density.diagonal(offset=start, dim1=1, dim2=2).add_(weights.log_ratio)
    if not weights.jackknife:
        # d theta / d l_k = w_k e^{l_k} / sum_l w_l e^{l_l} = exp(l_k + log(w_k / w) - (theta - log w))
        log_mean = saved.theta[:, rows] - weights.log_other
        return log_density.sub_(log_mean.unsqueeze(-1)).exp_().mul_(grad.unsqueeze(-1))
    shift, argmax, own_log = saved.shift[:, rows], saved.argmax[:, rows], saved.own_log[:, rows]
    rest, total, log_top_gap = saved.rest[:, rows], saved.total[:, rows], saved.log_top_gap[:, rows]
    scaled = log_density.sub_(shift.unsqueeze(-1)).exp_()
    other_is_top = _zero_own_and_top(scaled, argmax, start, stop)
    top = other_is_top.to(scaled.dtype)
    own = own_log.exp()
    inverse_gap = torch.rsub(scaled, total.unsqueeze(-1)).reciprocal_()  # 1 / (T - t_k); 1 / T at zeroed columns
    # H' = sum over the others except the largest other of 1 / (T - t_k); the largest other's own term is
    # 1 / (rho A + rest), which can exceed the float range when it is tiny: clamped at 1 / sqrt(tiny) (the terms it
    # multiplies are then below sqrt(tiny) too)
    harmonic_rest = inverse_gap.sum(-1) - (1.0 + top) / total
    floor = 0.5 * math.log(torch.finfo(scaled.dtype).tiny)
    inverse_top_gap = torch.where(other_is_top, torch.exp(-log_top_gap.clamp(min=floor)), 0.0)
    lam, others, rho = weights.lam, weights.others, weights.rho
    estimate = own + rest + top  # q
    # d theta_J / d l_k = t_k ((1 + lam) / q - lam H / n) + (lam / n) t_k / (T - t_k), H = H' + 1 / (T - top)
    alpha = grad * ((1.0 + lam) / estimate - (lam / others) * (harmonic_rest + inverse_top_gap))
    beta = grad * (lam / others)
    result = inverse_gap.mul_(beta.unsqueeze(-1)).add_(alpha.unsqueeze(-1)).mul_(scaled)
    # the largest other: t = 1 and its own leave-one-out term drops out of H
    top_value = grad * ((1.0 + lam) / estimate - (lam / others) * harmonic_rest)
    own_value = grad * ((1.0 + lam) * own / estimate
                        - (lam / others) * rho * (own * harmonic_rest + torch.exp(own_log - log_top_gap) * top))
    result.scatter_(-1, argmax.unsqueeze(-1), torch.where(other_is_top, top_value, own_value).unsqueeze(-1))
    result.diagonal(offset=start, dim1=1, dim2=2).copy_(own_value)
    return result
