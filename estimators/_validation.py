"""Argument checks shared by the estimators.

Every check raises ``ValueError`` with a message that names the offending argument, so that a caller who passes a
NaN, a negative scale or a mis-shaped tensor learns which argument was wrong, not just that something was.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal


def check_tensor(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"argument '{name}' must be a torch.Tensor; got {type(value).__name__}")
    return value


def check_floating(value: Tensor, name: str) -> Tensor:
    check_tensor(value, name)
    if not value.is_floating_point():
        raise ValueError(f"argument '{name}' must be a floating-point tensor; got dtype {value.dtype}")
    return value


def check_finite(value: Tensor, name: str) -> Tensor:
    """Reject NaN and infinite entries (the message counts each kind)."""
    check_tensor(value, name)
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):  # one check; counts only on failure
        nan_count = int(torch.isnan(value).sum())
        inf_count = int(torch.isinf(value).sum())
        if nan_count or inf_count:
            raise ValueError(
                f"{name} must be finite; got {nan_count} NaN and {inf_count} infinite values in argument '{name}'"
            )
    return value


def check_positive(value: Tensor, name: str) -> Tensor:
    """Reject NaN, infinite and non-positive entries."""
    check_finite(value, name)
    if value.numel() and bool((value <= 0).any()):
        raise ValueError(f"{name} must be positive; got min {value.min().item():g} in argument '{name}'")
    return value


def check_ndim(value: Tensor, ndim: int, name: str, what: str) -> Tensor:
    check_tensor(value, name)
    if value.dim() != ndim:
        raise ValueError(f"argument '{name}' must have {ndim} dimension(s) ({what}); got shape {tuple(value.shape)}")
    return value


def check_same_shape(value: Tensor, reference: Tensor, name: str, reference_name: str) -> Tensor:
    check_tensor(value, name)
    if value.shape != reference.shape:
        raise ValueError(
            f"argument '{name}' must have the shape of '{reference_name}' {tuple(reference.shape)}; "
            f"got {tuple(value.shape)}"
        )
    return value


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """An integer at least ``minimum``, returned as a Python int. Accepts any integral number (``int``,
    ``numpy.int64``, ...) and a 0-d integer tensor (a size read off another tensor); rejects bools and floats."""
    if isinstance(value, Tensor) and value.dim() == 0 and not value.is_floating_point() and not value.is_complex() \
            and value.dtype != torch.bool:
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"argument '{name}' must be an int; got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"argument '{name}' must be at least {minimum}; got {value}")
    return value


def check_choice(value: object, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        raise ValueError(f"argument '{name}' must be one of {list(choices)}; got {value!r}")
    return value  # type: ignore[return-value]


def check_labels(labels: object, length: int, name: str) -> Tensor:
    """Discrete labels: a 1-D integer tensor (or a 2-D one for several factors) with ``length`` rows."""
    check_tensor(labels, name)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"argument '{name}' must hold integer class labels; got dtype {labels.dtype}")
    if labels.shape[:1] != (length,):
        raise ValueError(
            f"argument '{name}' must have {length} rows (one per data point); got shape {tuple(labels.shape)}"
        )
    return labels


def check_distribution(distribution: object, name: str) -> Distribution:
    """A torch Distribution whose parameters are finite (and scales positive, for the Gaussian families).

    torch validates parameters itself unless a caller passed ``validate_args=False``; this check runs regardless, so
    that a NaN never slips silently into a KL.
    """
    if not isinstance(distribution, Distribution):
        raise ValueError(
            f"argument '{name}' must be a torch.distributions.Distribution; got {type(distribution).__name__}"
        )
    base = distribution
    while isinstance(base, Independent):
        base = base.base_dist
    if isinstance(base, Normal):
        check_finite(base.loc, name)
        _check_positive_parameter(base.scale, name, "scale")
    elif isinstance(base, MultivariateNormal):
        check_finite(base.loc, name)
        _check_positive_parameter(torch.diagonal(base.scale_tril, dim1=-2, dim2=-1), name, "scale_tril diagonal")
        check_finite(base.scale_tril, name)
    return distribution


def _check_positive_parameter(value: Tensor, name: str, parameter: str) -> None:
    nan_count = int(torch.isnan(value).sum())
    inf_count = int(torch.isinf(value).sum())
    if nan_count or inf_count:
        raise ValueError(
            f"{parameter} must be finite; got {nan_count} NaN and {inf_count} infinite values in argument '{name}'"
        )
    if value.numel() and bool((value <= 0).any()):
        raise ValueError(f"{parameter} must be positive; got min {value.min().item():g} in argument '{name}'")


def check_matching_event_shapes(q: Distribution, p: Distribution, q_name: str = "q", p_name: str = "p") -> None:
    if q.event_shape != p.event_shape:
        raise ValueError(
            f"argument '{p_name}' must have the event shape of '{q_name}' {tuple(q.event_shape)}; "
            f"got {tuple(p.event_shape)}"
        )
    try:
        torch.broadcast_shapes(q.batch_shape, p.batch_shape)
    except RuntimeError:
        raise ValueError(
            f"argument '{p_name}' has batch shape {tuple(p.batch_shape)} that does not broadcast with the batch shape "
            f"{tuple(q.batch_shape)} of '{q_name}'"
        ) from None
