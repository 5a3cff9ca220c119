"""The minibatch mixture log densities of the beta-TCVAE decomposition, fused and memory-bounded, with a hand-written
backward pass (a ``torch.autograd.Function``) that recomputes instead of storing.

Rows i are the batch's samples z_i ~ q(z|x_i), columns k the batch's diagonal-Gaussian posteriors; i and k run over
the same M points and column i is row i's own posterior. Per latent dimension j, and for the joint,

    l_ikj = log N(z_ij; mu_kj, exp(v_kj)) = c_kj - u_ikj^2 / 2,   u_ikj = (z_ij - mu_kj) exp(-v_kj / 2),
    c_kj  = -(log 2 pi + v_kj) / 2,                                l_ik = sum_j l_ikj.

Each row and "plane" (a dimension j, or the joint) gets a weighted log-mean over the columns, with weight w_o on the
own column and w on each of the n = M - 1 others:

    plain:      theta = log( w_o e^{l_ii} + w sum_{k != i} e^{l_ik} )
    jackknife:  theta_J = theta - lam * ( mean_{k != i} theta_(k) - theta ),
                theta_(k) = log( w_o e^{l_ii} + w' sum_{l != i, k} e^{l_il} ),   w' = w n / (n - 1),
                lam = (n - 1) (1 - n / P),  P the size of the population the others were drawn from

(the leave-one-out estimate theta_(k) keeps the others' total weight; :mod:`.minibatch_decomposition` derives lam).

Numerics. Each row's terms are scaled by its largest weighted term, t_k = e^{l_k - m} <= 1, with A = (w_o / w)
e^{l_ii - m} for the own column. With T = rho A + sum_{k != i} t_k (rho = (n - 1) / n), the leave-one-out means are
log(T - t_k) + const; T - t_k would lose its digits for the largest other (t = 1 exactly after scaling) when it
dominates, so the largest others ("tops") are taken out (x - floor(x) zeroes exactly the entries equal to 1) and
their gap T - 1 = rho A + (the rest) + (tops - 1) is formed directly. The other gaps satisfy (T - t_k) / T >= 1/3,
so sum_k log(T - t_k) is taken as n log T plus the logs of products of 64 ratios at a time (each product >= 3^-64,
a normal float): one log per 64 terms. Exponentials and logs are base 2 internally (``exp2`` is several times faster
than ``exp`` on CPU, and it has no slow path for underflowing results). Range: terms more than ~87 nats (float32;
~708 in float64) below a row's largest flush to zero. That changes nothing unless a row's own term and all its
others but one are that far below the largest, i.e. its z is far from its own posterior; there the jackknife's
leave-one-out of the largest term (and so its correction, which grows like the log of that gap) depends on what
was flushed, and float32 and float64 differ. Such a row's estimate rests on one component and is unstable anyway.

Gradients (g the upstream gradient of theta; q = A + sum_{k != i} t_k; H = sum_{k != i} 1 / (T - t_k)):

    plain:      d theta / d l_k   = t_k / q                      (k = i included, with t_i = A)
    jackknife:  d theta_J / d l_k = t_k ((1 + lam) / q - lam H / n) + (lam / n) t_k / (T - t_k)     (k != i)
                d theta_J / d l_i = (1 + lam) A / q - (lam / n) rho A H
    d l_ikj / d z_ij = -u_ikj e^{-v_kj / 2},  d l_ikj / d mu_kj = u_ikj e^{-v_kj / 2},
    d l_ikj / d v_kj = (u_ikj^2 - 1) / 2.

So with G_ikj = dLoss/dl_ikj (the joint's gradient added to every dimension's), grad z_ij = -sum_k G_ikj u_ikj
e^{-v_kj/2}, grad mu_kj = e^{-v_kj/2} sum_i G_ikj u_ikj, grad v_kj = (sum_i G_ikj u_ikj^2 - sum_i G_ikj) / 2; every
product is formed from u itself, never from an expansion of (z - mu)^2 (which would cancel catastrophically for
narrow posteriors). The forward pass keeps O(M D) numbers per plane; the (M, M, D) array exists one block of rows at
a time in a (D, rows, M) layout, so every reduction over the columns runs over contiguous memory and a block stays
in cache; the backward pass recomputes each block.

Inputs in float16/bfloat16 are computed in float32 (as autocast does for log-sum-exp) and the outputs are float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import LOG_2PI

__all__ = ["DEFAULT_BLOCK_BYTES", "minibatch_mixture_log_density"]

# One block of rows of the (D, rows, M) array: 2 MiB per buffer on CPU (2^19 float32), the size of a core's L2 cache,
# fastest on the 2-core machine of README's benchmark among 2^16 to 2^22 elements; GPUs want large kernels instead
# (``python benchmarks/estimators.py speed --block-elements ...`` measures others).
DEFAULT_BLOCK_BYTES = {"cpu": 2**21, "cuda": 2**27}
LOG2_E = 1.0 / math.log(2.0)  # log2(x) = ln(x) * LOG2_E
LN_2 = math.log(2.0)
PRODUCT_GROUP = 64  # leave-one-out ratios multiplied before one log: each >= 1/3, so a product >= 3^-64 > float min


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
        max_block_elements: elements of the (D, rows, M) block formed at once (``None``: DEFAULT_BLOCK_BYTES for the
            device; the timing depends on it, the result does not).
    """
    batch_size, latent_dim = z.shape
    compute_dtype = torch.float32 if z.dtype in (torch.float16, torch.bfloat16) else z.dtype
    if max_block_elements is None:
        block_bytes = DEFAULT_BLOCK_BYTES.get(z.device.type, DEFAULT_BLOCK_BYTES["cuda"])
        max_block_elements = block_bytes // (torch.finfo(compute_dtype).bits // 8)
    rows_per_block = max(1, min(batch_size, max_block_elements // (batch_size * latent_dim)))
    weights = _Weights(batch_size, log_own_weight, log_other_weight, jackknife_population)
    return _MixtureLogDensity.apply(
        z.to(compute_dtype), mean.to(compute_dtype), log_var.to(compute_dtype), weights, rows_per_block
    )


class _Weights:
    """The constants of the weighted log-mean (plain or jackknife) for n = M - 1 others; logs in base 2."""

    def __init__(self, batch_size: int, log_own: float, log_other: float, population: int | None) -> None:
        others = batch_size - 1
        self.log_other = log_other
        self.log2_ratio = (log_own - log_other) * LOG2_E  # log2(w_o / w): added to the own column
        self.jackknife = population is not None
        if self.jackknife:
            self.others = others
            self.rho = (others - 1) / others  # w / w'
            self.log_loo_other = log_other + math.log(others) - math.log(others - 1)  # log w'
            self.lam = (others - 1) * (1.0 - others / population)


class _Block:
    """The pairwise quantities of one block of rows, in two reusable buffers (no allocation per block)."""

    def __init__(self, z: Tensor, mean: Tensor, log_var: Tensor, rows_per_block: int) -> None:
        latent_dim, batch_size = z.shape[1], z.shape[0]
        self.z_t = z.detach().T.contiguous()  # (D, M)
        self.mean_t = mean.detach().T.contiguous().unsqueeze(1)  # (D, 1, M)
        log_var_t = log_var.detach().T.contiguous()
        self.inverse_scale = torch.exp(-0.5 * log_var_t)  # (D, M)
        self.log2_normalizer = (-0.5 * LOG2_E) * (LOG_2PI + log_var_t).unsqueeze(1)  # c / ln 2, (D, 1, M)
        size = latent_dim * rows_per_block * batch_size
        self.buffers = [z.new_empty(size), z.new_empty(size)]

    def view(self, which: int, planes: int, rows: int) -> Tensor:
        return self.buffers[which][: planes * rows * self.z_t.shape[1]].view(planes, rows, -1)

    def standardized(self, start: int, stop: int) -> Tensor:
        """u_ikj = (z_ij - mu_kj) / s_kj, (D, rows, M), the difference first (precise near a narrow component)."""
        rows = stop - start
        out = self.view(0, self.z_t.shape[0], rows)
        torch.sub(self.z_t[:, start:stop].unsqueeze(-1), self.mean_t, out=out)
        return out.mul_(self.inverse_scale.unsqueeze(1))

    def log2_density(self, standardized: Tensor) -> Tensor:
        """l_ikj / ln 2 = c_kj / ln 2 - u_ikj^2 / (2 ln 2), into the second buffer."""
        out = self.view(1, *standardized.shape[:2])
        return torch.addcmul(self.log2_normalizer, standardized, standardized, value=-0.5 * LOG2_E, out=out)


class _MixtureLogDensity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor, mean: Tensor, log_var: Tensor, weights: _Weights, rows_per_block: int):
        batch_size = z.shape[0]
        block = _Block(z, mean, log_var, rows_per_block)
        joint, marginal = _Plane(weights), _Plane(weights)
        joint_log2_density = z.new_empty(1, batch_size, batch_size)  # l_ik / ln 2, kept for the backward pass
        for start in range(0, batch_size, rows_per_block):
            stop = min(start + rows_per_block, batch_size)
            log2_density = block.log2_density(block.standardized(start, stop))  # (D, rows, M)
            torch.sum(log2_density, 0, keepdim=True, out=joint_log2_density[:, start:stop])  # l_ik = sum_j l_ikj
            marginal.forward_block(log2_density, start)
        joint.forward_block(joint_log2_density.clone(), 0)  # the joint plane is (M, M): one block
        log_qz, log_qzi = joint.finish_forward(), marginal.finish_forward()
        ctx.save_for_backward(z, mean, log_var, joint_log2_density, *joint.saved(), *marginal.saved())
        ctx.weights, ctx.rows_per_block = weights, rows_per_block
        return log_qz[0], log_qzi.T

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_log_qz: Tensor | None, grad_log_qzi: Tensor | None):
        weights: _Weights = ctx.weights
        z, mean, log_var, joint_log2_density, *saved = ctx.saved_tensors
        batch_size, latent_dim = z.shape
        grad_joint = (grad_log_qz if grad_log_qz is not None else z.new_zeros(batch_size))[None]  # (1, M)
        grad_marginal = (grad_log_qzi if grad_log_qzi is not None else torch.zeros_like(z)).T.contiguous()  # (D, M)
        half = len(saved) // 2
        joint = _Plane.restore(weights, saved[:half], grad_joint)
        marginal = _Plane.restore(weights, saved[half:], grad_marginal)
        grad_joint_density = joint.backward_block(joint_log2_density.clone(), 0)  # dLoss / d l_ik, (1, M, M)
        block = _Block(z, mean, log_var, ctx.rows_per_block)
        grad_z_t = torch.empty_like(block.z_t)
        ones = z.new_ones(latent_dim, 1, ctx.rows_per_block)
        sum_g = z.new_zeros(latent_dim, 1, batch_size)  # sum_i G_ikj
        sum_gu = torch.zeros_like(sum_g)  # sum_i G_ikj u_ikj / s_kj
        sum_guu = torch.zeros_like(sum_g)  # sum_i G_ikj u_ikj^2 / s_kj
        inverse_scale = block.inverse_scale.unsqueeze(1)
        for start in range(0, batch_size, ctx.rows_per_block):
            stop = min(start + ctx.rows_per_block, batch_size)
            row_ones = ones[:, :, : stop - start]
            standardized = block.standardized(start, stop)
            grad = marginal.backward_block(block.log2_density(standardized), start)
            grad.add_(grad_joint_density[:, start:stop])  # d l_ik / d l_ikj = 1: the joint's gradient reaches all j
            sum_g.baddbmm_(row_ones, grad)
            grad_u = grad.mul_(standardized).mul_(inverse_scale)  # G u / s
            torch.sum(grad_u, -1, out=grad_z_t[:, start:stop])
            sum_gu.baddbmm_(row_ones, grad_u)
            sum_guu.baddbmm_(row_ones, grad_u.mul_(standardized))
        scale = torch.exp(0.5 * log_var.T)
        grad_mean = sum_gu[:, 0].T
        grad_log_var = (0.5 * (scale * sum_guu[:, 0] - sum_g[:, 0])).T
        return grad_z_t.neg_().T, grad_mean, grad_log_var, None, None


class _Plane:
    """The weighted log-mean over the columns for every row of a set of planes (all D dimensions, or the joint):
    per-row results are gathered block by block, then combined once (few operations per block)."""

    def __init__(self, weights: _Weights) -> None:
        self.weights = weights
        self.parts: dict[str, list[Tensor]] = {}

    def _keep(self, **values: Tensor) -> None:
        for name, value in values.items():
            self.parts.setdefault(name, []).append(value)

    def forward_block(self, log2_density: Tensor, start: int) -> None:
        """Scale the block's terms by their largest (in place) and keep the row sums the estimate needs."""
        weights = self.weights
        own_column = log2_density.diagonal(offset=start, dim1=1, dim2=2)  # (planes, rows)
        own_column.add_(weights.log2_ratio)
        shift = log2_density.amax(-1)
        own_log2 = own_column - shift if weights.jackknife else None  # log2 A, exact even where A underflows
        scaled = log2_density.sub_(shift.unsqueeze(-1)).exp2_()  # t_k <= 1; own column A
        if not weights.jackknife:
            self._keep(shift=shift, total=scaled.sum(-1))
            return
        own_column.zero_()
        with_tops = scaled.sum(-1)
        rest = scaled.frac_().sum(-1)  # the others except those equal to 1 (the largest)
        tops = torch.round(with_tops - rest)  # how many others equal the largest term
        total = weights.rho * torch.exp2(own_log2) + rest + tops  # T
        log2_ratio_product = _log2_sum_of_ratios(scaled, total)  # sum_k log2(1 - t_k / T) over the non-tops
        self._keep(shift=shift, own_log2=own_log2, rest=rest, tops=tops, log2_products=log2_ratio_product)

    def finish_forward(self) -> Tensor:
        """theta (nats) for every plane and row, (planes, M)."""
        parts = {name: torch.cat(values, dim=1) for name, values in self.parts.items()}
        self.parts = {}
        weights = self.weights
        self.shift = parts["shift"]
        if not weights.jackknife:
            self.theta = (torch.log2(parts["total"]) + self.shift) * LN_2 + weights.log_other
            return self.theta
        self.own_log2, self.rest, self.tops = parts["own_log2"], parts["rest"], parts["tops"]
        own = torch.exp2(self.own_log2)
        total = weights.rho * own + self.rest + self.tops
        log2_gap = self._log2_gap()
        # sum_{k != i} log2(T - t_k) = n log2 T + sum log2(1 - t_k / T) (non-tops) + tops (log2 gap - log2 T)
        log2_total = torch.log2(total)
        log2_leave_one_out = (weights.others * log2_total + parts["log2_products"]
                              + self.tops * (log2_gap - log2_total))
        plain_log2 = torch.log2(own + self.rest + self.tops)  # log2 q
        # theta_J = theta - lam (mean_k theta_(k) - theta), theta_(k) = shift + log w' + log(T - t_k)
        plain = (plain_log2 + self.shift) * LN_2 + weights.log_other
        mean_leave_one_out = (log2_leave_one_out / weights.others + self.shift) * LN_2 + weights.log_loo_other
        self.theta = plain - weights.lam * (mean_leave_one_out - plain)
        return self.theta

    def _log2_gap(self) -> Tensor:
        """log2(T - 1) = log2(rho A + rest + tops - 1), summed in log space (A may be far below the float range)."""
        rest_and_tops = self.rest + (self.tops - 1.0).clamp(min=0.0)
        return torch.logaddexp2(math.log2(self.weights.rho) + self.own_log2, torch.log2(rest_and_tops))

    def saved(self) -> list[Tensor]:
        return [self.theta, self.shift] + ([self.own_log2, self.rest, self.tops] if self.weights.jackknife else [])

    @classmethod
    def restore(cls, weights: _Weights, saved, grad: Tensor) -> _Plane:
        """The per-row constants of the gradient, computed once for all rows (``grad``: dLoss/dtheta, (planes, M)),
        each of shape (planes, M, 1) to broadcast over the columns."""
        plane = cls(weights)
        plane.theta, plane.shift = saved[0], saved[1]
        if not weights.jackknife:
            plane.log2_mean = ((plane.theta - weights.log_other) * LOG2_E).unsqueeze(-1)  # log2 sum_k (w_k/w) e^l_k
            plane.grad = grad.unsqueeze(-1)
            return plane
        plane.own_log2, plane.rest, plane.tops = saved[2:5]
        lam, others, rho = weights.lam, weights.others, weights.rho
        own = torch.exp2(plane.own_log2)
        total = rho * own + plane.rest + plane.tops  # T
        estimate = own + plane.rest + plane.tops  # q
        log2_gap = plane._log2_gap()
        # each top's leave-one-out term 1 / (T - 1) is part of H; it can exceed the float range when the gap is tiny
        # (then every t it multiplies is tiny too): clamped at 1 / sqrt(tiny)
        floor = 0.5 * math.log2(torch.finfo(own.dtype).tiny)
        inverse_gap = torch.exp2(-log2_gap.clamp(min=floor))
        top_harmonic = plane.tops * inverse_gap  # sum over the tops of 1 / (T - 1)
        own_over_gap = torch.exp2(math.log2(rho) + plane.own_log2 - log2_gap.clamp(min=floor)) * plane.tops  # <= tops
        first = grad * (1.0 + lam) / estimate  # g (1 + lam) / q
        second = grad * (lam / others)  # g lam / n
        # H = H' + tops / (T - 1), H' over the non-top others = (sum over all columns of 1 / (T - t~_k)) + offset,
        # t~ zeroed at the own column and the tops. Each gradient below is formed from H', so that the possibly
        # huge 1 / (T - 1) never cancels against itself:
        #   other k: t_k (g (1 + lam) / q - (g lam / n) H) + (g lam / n) t_k / (T - t_k)
        #   top:     g (1 + lam) / q - (g lam / n)(H' + (tops - 1) / (T - 1))
        #   own:     g (1 + lam) A / q - (g lam / n)(rho A H' + tops rho A / (T - 1))
        plane.harmonic_offset = (-(1.0 + plane.tops) / total).unsqueeze(-1)
        plane.total, plane.second = total.unsqueeze(-1), second.unsqueeze(-1)
        plane.shift_column = plane.shift.unsqueeze(-1)
        plane.other_base = (first - second * top_harmonic).unsqueeze(-1)
        plane.top_base = (first - second * (plane.tops - 1.0).clamp(min=0.0) * inverse_gap).unsqueeze(-1)
        plane.own_base = (first * own - second * own_over_gap).unsqueeze(-1)
        plane.own_slope = (second * rho * own).unsqueeze(-1)
        return plane

    def backward_block(self, log2_density: Tensor, start: int) -> Tensor:
        """dLoss / d l_ikj (nats) for the block, (planes, rows, M), in place of ``log2_density``."""
        weights = self.weights
        rows = slice(start, start + log2_density.shape[1])
        own_column = log2_density.diagonal(offset=start, dim1=1, dim2=2)
        own_column.add_(weights.log2_ratio)
        if not weights.jackknife:  # d theta / d l_k = (w_k / w) e^{l_k} / sum_l (w_l / w) e^{l_l}
            return log2_density.sub_(self.log2_mean[:, rows]).exp2_().mul_(self.grad[:, rows])
        scaled = log2_density.sub_(self.shift_column[:, rows]).exp2_()
        own_column.zero_()
        top_mask = torch.floor(scaled)  # 1 at the tops (t = 1), else 0
        scaled.sub_(top_mask)  # the tops zeroed
        inverse_gaps = torch.rsub(scaled, self.total[:, rows]).reciprocal_()  # 1 / (T - t_k); 1 / T where zeroed
        harmonic_rest = inverse_gaps.sum(-1, keepdim=True).add_(self.harmonic_offset[:, rows])  # H'
        second = self.second[:, rows]
        alpha = torch.addcmul(self.other_base[:, rows], second, harmonic_rest, value=-1.0)
        grad = inverse_gaps.mul_(second).add_(alpha).mul_(scaled)  # the non-top others
        top_value = torch.addcmul(self.top_base[:, rows], second, harmonic_rest, value=-1.0)
        grad.addcmul_(top_mask, top_value)  # the tops
        own_value = torch.addcmul(self.own_base[:, rows], self.own_slope[:, rows], harmonic_rest, value=-1.0)
        grad.diagonal(offset=start, dim1=1, dim2=2).copy_(own_value.squeeze(-1))
        return grad


def _log2_sum_of_ratios(scaled: Tensor, total: Tensor) -> Tensor:
    """sum_k log2(1 - t_k / T) per row, from products of PRODUCT_GROUP ratios (each >= 1/3 for the non-top others,
    exactly 1 where t is zeroed); ``scaled`` is overwritten."""
    ratios = scaled.mul_((-1.0 / total).unsqueeze(-1)).add_(1.0)
    columns = ratios.shape[-1]
    whole = columns - columns % PRODUCT_GROUP
    result = torch.zeros_like(total)
    if whole:
        result += torch.log2(ratios[..., :whole].unflatten(-1, (whole // PRODUCT_GROUP, PRODUCT_GROUP)).prod(-1)).sum(-1)
    if whole < columns:
        result += torch.log2(ratios[..., whole:].prod(-1))
    return result
