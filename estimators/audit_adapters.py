"""How an audit calls someone else's loss function and reads what it returns.

Calling conventions (``signature``):

* ``"z_mean_logvar_n"``: ``fn(z, mean, log_var, dataset_size, **options)``, positionally;
* ``"disvae"``: ``fn(latent_sample, (mean, log_var), n_data, **options)``, as disentangling-vae's
  ``_get_log_pz_qz_prodzi_qzCx(latent_sample, latent_dist, n_data, is_mss=True)``;
* ``"auto"`` (default): by parameter names -- a sample (``z``, ``latent_sample``, ``sample``, ``z_sample``, ...), a
  mean (``mean``, ``mu``, ``loc``, ...), a log-variance (``log_var``, ``logvar``, ``log_variance``, ...) or a pair
  (``latent_dist``), and the data-set size (``dataset_size``, ``n_data``, ``data_size``, ``N``, ...); every other
  parameter must have a default or be given in ``options``.

Return values (``returns``): a dict, a tuple or list, or one tensor. Dict keys name quantities by the usual names
(``mi_loss``, ``tc_loss``, ``dw_kl_loss``, ``mutual_info_loss``, ``TC_loss``, ``dimension_wise_KL``, ``kld``,
``log_q_zCx``, ``logqz``, ``log_prod_q_z``, ``log_prior``, ...; see :data:`ALIASES`) or by ``names`` given by the
user (``{"my_key": "total_correlation"}``); a tuple's entries are named by ``names`` in order (``None`` skips one;
the default for a 4-tuple under ``"disvae"`` is disentangling-vae's ``(log_pz, log_qz, log_prod_qzi, log_q_zCx)``).
Each value is a scalar (a batch mean) or one value per example (its mean is taken). When log densities are returned,
the terms built from them (mutual information log q(z|x) - log q(z), total correlation, dimension-wise KL, KL) are
audited too, as a loss would compute them.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from .audit_inputs import LOG_DENSITIES, QUANTITIES, TERMS

__all__ = ["ALIASES", "AuditedFunction", "AuditCallError", "SIGNATURES"]

SIGNATURES = ("auto", "z_mean_logvar_n", "disvae")

# lower-cased names people give each quantity -> the audit's name
ALIASES: dict[str, str] = {}
for _name, _aliases in {
    "mutual_information": ("mutual_information", "mi", "mi_loss", "index_code_mi", "mutual_info", "mutual_info_loss",
                           "mutual_information_loss", "index_code_mutual_information"),
    "total_correlation": ("total_correlation", "tc", "tc_loss", "total_correlation_loss"),
    "dimensionwise_kl": ("dimensionwise_kl", "dimension_wise_kl", "dw_kl", "dw_kl_loss", "dimwise_kl",
                         "dimensionwise_kl_loss", "dim_wise_kl"),
    "kl": ("kl", "kl_z", "kl_loss", "kld", "kl_divergence"),
    "log_q_zCx": ("log_q_zcx", "logqz_condx", "log_q_z_given_x", "log_qz_given_x", "log_q_zgx", "log_q_z_x"),
    "log_qz": ("log_qz", "logqz", "log_q_z"),
    "log_prod_qzi": ("log_prod_qzi", "logqz_prodmarginals", "log_prod_q_z", "log_prod_qz", "log_qz_product"),
    "log_pz": ("log_pz", "logpz", "log_prior", "log_p_z"),
}.items():
    for _alias in _aliases:
        ALIASES[_alias] = _name

SAMPLE_NAMES = ("z", "latent_sample", "sample", "samples", "z_sample", "latent", "latents", "z_samples")
MEAN_NAMES = ("mean", "mu", "loc", "z_mean", "latent_mean", "means", "mus", "z_mu")
LOG_VAR_NAMES = ("log_var", "logvar", "log_variance", "z_log_var", "logvariance", "log_sigma2", "z_logvar")
PAIR_NAMES = ("latent_dist", "latent_params", "posterior_params", "dist_params")
SIZE_NAMES = ("dataset_size", "n_data", "data_size", "n", "num_data", "dataset_len", "n_train", "train_size",
              "num_examples", "size_of_dataset")
DISVAE_RETURNS = ("log_pz", "log_qz", "log_prod_qzi", "log_q_zCx")


class AuditCallError(RuntimeError):
    """The audited function raised, or returned something the audit cannot read; the message says which and where.
    ``partial_report`` holds the audit of the settings completed before (or ``None``)."""

    def __init__(self, message: str, *, partial_report: Any = None) -> None:
        super().__init__(message)
        self.partial_report = partial_report


@dataclass
class AuditedFunction:
    """A loss function with its calling convention: ``self(z, mean, log_var, dataset_size)`` returns the audited
    quantities of one batch, ``{name: batch mean}`` (floats), with the terms derived from returned log densities."""

    function: Callable[..., Any]
    signature: str = "auto"
    names: Mapping[str, str | None] | Sequence[str | None] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    ignored: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        if not callable(self.function):
            raise ValueError(f"argument 'function' must be callable; got {type(self.function).__name__}")
        if self.signature not in SIGNATURES:
            raise ValueError(f"argument 'signature' must be one of {list(SIGNATURES)}; got {self.signature!r}")
        self.label = self.label or getattr(self.function, "__qualname__", repr(self.function))
        self._call = self._build_call()
        self._check_names()

    # ------------------------------------------------------------------------------------------------------------
    def __call__(self, z: Tensor, mean: Tensor, log_var: Tensor, dataset_size: int) -> dict[str, float]:
        try:
            with torch.no_grad():
                returned = self._call(z, mean, log_var, dataset_size)
        except Exception as error:  # whatever the audited code raises is reported, with where
            raise AuditCallError(f"{self.label} raised {type(error).__name__}: {error}") from error
        per_example = self._read(returned, batch_size=z.shape[0])
        return _with_derived_terms(per_example)

    def probe(self, seed: int = 0) -> list[str]:
        """Call the function once on a small batch (M = 4 of N = 16, D = 2) and return the quantities it yields, so
        that a wrong calling convention or an unreadable return value shows before an audit starts.

        Raises :class:`AuditCallError` naming the problem."""
        generator = torch.Generator().manual_seed(seed)
        mean = torch.randn(4, 2, generator=generator)
        log_var = torch.full((4, 2), -1.0)
        z = mean + torch.exp(0.5 * log_var) * torch.randn(4, 2, generator=generator)
        return quantity_order(list(self(z, mean, log_var, 16)))

    # ------------------------------------------------------------------------------------------------------------
    def _build_call(self) -> Callable[[Tensor, Tensor, Tensor, int], Any]:
        function, options = self.function, dict(self.options)
        if self.signature == "z_mean_logvar_n":
            return lambda z, mean, log_var, n: function(z, mean, log_var, n, **options)
        if self.signature == "disvae":
            return lambda z, mean, log_var, n: function(z, (mean, log_var), n, **options)
        return self._call_by_parameter_names(function, options)

    def _call_by_parameter_names(self, function: Callable[..., Any], options: dict) -> Callable:
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError) as error:
            raise ValueError(f"cannot read the parameters of {self.label} ({error}); give 'signature' explicitly "
                             f"(one of {', '.join(SIGNATURES[1:])})") from None
        roles: dict[str, str] = {}
        missing: list[str] = []
        for parameter in parameters:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            key = parameter.name.lower()
            role = ("z" if key in SAMPLE_NAMES else "mean" if key in MEAN_NAMES else "log_var" if key in LOG_VAR_NAMES
                    else "pair" if key in PAIR_NAMES else "size" if key in SIZE_NAMES else None)
            if parameter.name in options:
                continue
            if role is None or role in roles.values():
                if parameter.default is parameter.empty:
                    missing.append(parameter.name)
                continue
            roles[parameter.name] = role
        found = set(roles.values())
        if "pair" in found and found & {"mean", "log_var"}:
            raise ValueError(f"{self.label}: takes both a (mean, log_var) pair and a separate mean or log-variance")
        needed = {"z", "size"} | ({"pair"} if "pair" in found else {"mean", "log_var"})
        absent = sorted(needed - found)
        if absent or missing:
            known = {"z": "a sample (z, latent_sample, ...)", "mean": "a mean (mean, mu, loc, ...)",
                     "log_var": "a log-variance (log_var, logvar, ...)", "size": "the data-set size (dataset_size, "
                     "n_data, N, ...)", "pair": "a (mean, log_var) pair (latent_dist)"}
            problems = [f"no parameter for {known[role]}" for role in absent]
            problems += [f"parameter {name!r} has no default and no value in 'options'" for name in missing]
            raise ValueError(f"cannot call {self.label} by its parameter names: {'; '.join(problems)}; give "
                             f"'signature' (one of {', '.join(SIGNATURES[1:])}) or 'options'")

        def call(z: Tensor, mean: Tensor, log_var: Tensor, n: int) -> Any:
            values = {"z": z, "mean": mean, "log_var": log_var, "size": n, "pair": (mean, log_var)}
            return function(**{name: values[role] for name, role in roles.items()}, **options)

        return call

    def _check_names(self) -> None:
        if self.names is None:
            return
        given = self.names.values() if isinstance(self.names, Mapping) else self.names
        unknown = [name for name in given if name is not None and name not in QUANTITIES]
        if unknown:
            raise ValueError(f"argument 'names': unknown quantity {', '.join(map(repr, unknown))}; valid: "
                             f"{', '.join(QUANTITIES)}")

    # ------------------------------------------------------------------------------------------------------------
    def _read(self, returned: Any, batch_size: int) -> dict[str, Tensor]:
        """{quantity: per-example values (B,) or a batch scalar ()} from what the function returned."""
        named: dict[str, Any] = {}
        ignored: list[str] = []
        if isinstance(returned, Mapping):
            mapping = self.names if isinstance(self.names, Mapping) else {}
            for key, value in returned.items():
                name = mapping[key] if key in mapping else ALIASES.get(str(key).lower())
                if name is None:
                    ignored.append(str(key))
                else:
                    named[name] = (key, value)
        elif isinstance(returned, (tuple, list)) or torch.is_tensor(returned) or isinstance(returned, (int, float)):
            entries = list(returned) if isinstance(returned, (tuple, list)) else [returned]
            order = self._tuple_names(len(entries))
            for position, (name, value) in enumerate(zip(order, entries)):
                if name is not None:
                    named[name] = (f"[{position}]", value)
        else:
            raise AuditCallError(f"{self.label} returned {type(returned).__name__}; expected a dict, a tuple or a tensor")
        self.ignored = tuple(ignored)
        if not named:
            raise AuditCallError(
                f"{self.label} returned no quantity the audit knows ({', '.join(ignored) or 'nothing'}); name them "
                f"with 'names' (--map KEY=QUANTITY on the command line; valid: {', '.join(QUANTITIES)})"
            )
        return {name: _as_values(value, key, batch_size, self.label) for name, (key, value) in named.items()}

    def _tuple_names(self, length: int) -> list[str | None]:
        if self.names is not None and not isinstance(self.names, Mapping):
            names = list(self.names)
        elif self.signature == "disvae" and length == len(DISVAE_RETURNS):
            names = list(DISVAE_RETURNS)
        else:
            raise AuditCallError(
                f"{self.label} returned {length} unnamed value(s); name them in order with 'names' "
                f"(--names on the command line), e.g. ['mutual_information', 'total_correlation', 'dimensionwise_kl']"
            )
        if len(names) != length:
            raise AuditCallError(f"{self.label} returned {length} value(s) but 'names' names {len(names)}")
        return names


def _as_values(value: Any, key: str, batch_size: int, label: str) -> Tensor:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(float(value), dtype=torch.float64)
    if not torch.is_tensor(value):
        raise AuditCallError(f"{label} returned {type(value).__name__} for {key!r}; expected a tensor or a number")
    value = value.detach().to(torch.float64).squeeze()
    if value.dim() == 0 or (value.dim() == 1 and value.shape[0] == batch_size):
        if not bool(torch.isfinite(value).all()):
            raise AuditCallError(f"{label} returned a non-finite value for {key!r}")
        return value
    raise AuditCallError(f"{label} returned shape {tuple(value.shape)} for {key!r}; expected a scalar (the batch mean) "
                         f"or one value per example ({batch_size},)")


def _with_derived_terms(per_example: dict[str, Tensor]) -> dict[str, float]:
    """Batch means of every returned quantity, plus the terms built from returned log densities (per example, as a
    loss computes them) where the function did not return the term itself."""
    derived = {
        "mutual_information": ("log_q_zCx", "log_qz"),
        "total_correlation": ("log_qz", "log_prod_qzi"),
        "dimensionwise_kl": ("log_prod_qzi", "log_pz"),
        "kl": ("log_q_zCx", "log_pz"),
    }
    values = dict(per_example)
    for term, (first, second) in derived.items():
        if term not in values and first in values and second in values:
            values[term] = values[first] - values[second]
    return {name: float(value.mean()) for name, value in values.items() if math.isfinite(float(value.mean()))}


def quantity_order(names: Sequence[str]) -> list[str]:
    """``names`` in the audit's display order (terms, then log densities)."""
    order = TERMS + LOG_DENSITIES
    return sorted(names, key=order.index)
