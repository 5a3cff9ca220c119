"""Models by name, and construction with checked options and a clear message when the data do not fit the model."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

from .base import VariationalModel
from .beta_tcvae import BetaTCVAE
from .beta_vae import BetaVAE
from .cdvae import CDVAE
from .condvae import CondVAE
from .condvae_info import CondVAEInfo
from .csvae import CSVAE
from .data.core import DataSpec
from .diva import DIVA
from .infovae import InfoVAE
from .vae import VAE

MODELS: dict[str, type[VariationalModel]] = {
    "vae": VAE,
    "beta_vae": BetaVAE,
    "beta_tcvae": BetaTCVAE,
    "infovae": InfoVAE,
    "condvae": CondVAE,
    "condvae_info": CondVAEInfo,
    "csvae": CSVAE,
    "diva": DIVA,
    "cdvae": CDVAE,
}


def model_class(name: str) -> type[VariationalModel]:
    if name not in MODELS:
        raise ValueError(f"model: unknown model {name!r}; valid choices: {', '.join(MODELS)}")
    return MODELS[name]


def model_options(name: str) -> dict[str, Any]:
    """The keyword options model ``name`` takes, with their defaults."""
    parameters = inspect.signature(model_class(name).__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.kind == p.KEYWORD_ONLY}


def check_data_fits(name: str, spec: DataSpec, data_name: str = "the data", *, labelled: tuple[str, ...] = (),
                    with_domains: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` if model ``name`` needs labels or domains the data lack (naming data sets with them)."""
    cls = model_class(name)
    if cls.requires_labels and not spec.has_labels:
        hint = f"; data sets with class labels: {', '.join(labelled)}" if labelled else ""
        raise ValueError(
            f"model {name!r} is label-conditioned and needs class labels y, but {data_name} has none{hint}"
        )
    if cls.requires_domains and not spec.has_domains:
        hint = f"; data sets with domain labels: {', '.join(with_domains)}" if with_domains else ""
        raise ValueError(f"model {name!r} needs domain labels d, but {data_name} has none{hint}")


def coerce_option(kind: str, key: str, value: Any, annotation: Any) -> Any:
    """Check an option's value against its annotated type (ints are accepted for floats), naming the option."""
    allowed = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (
        annotation,)
    if value is None:
        if type(None) in allowed or annotation is Any:
            return value
        raise ValueError(f"{kind} option {key}: None is not allowed")
    if annotation is Any or any(t is Any or t is object for t in allowed):
        return value
    if bool in allowed or not isinstance(value, bool):  # a bool is an int to Python, but not to us
        for kind_type in allowed:
            if kind_type is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if isinstance(kind_type, type) and isinstance(value, kind_type):
                return value
            if kind_type is Path and isinstance(value, str):
                return value
    names = " or ".join("None" if t is type(None) else getattr(t, "__name__", str(t)) for t in allowed)
    raise ValueError(f"{kind} option {key}: expected {names}, got {value!r}")


def option_annotations(function: Any) -> dict[str, Any]:
    """The resolved type annotations of a constructor or loader (Any where none is given)."""
    hints = typing.get_type_hints(function)
    return {name: hints.get(name, Any) for name in inspect.signature(function).parameters}


def reject_unknown_options(kind: str, owner: str, options: Mapping[str, Any], valid: Iterable[str],
                           empty: str = "") -> None:
    """Raise ``ValueError`` naming the options ``owner`` does not take, and listing those it does."""
    valid = list(valid)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"{kind} option(s) {', '.join(unknown)} not understood by {owner}; valid options: {', '.join(valid) or empty}"
        )


def coerce_options(kind: str, options: Mapping[str, Any], function: Any) -> dict[str, Any]:
    """Every option checked against the annotation of ``function``'s parameter of that name."""
    annotations = option_annotations(function)
    return {key: coerce_option(kind, key, value, annotations[key]) for key, value in options.items()}


def build_model(name: str, spec: DataSpec, **options: Any) -> VariationalModel:
    """Construct model ``name`` for data described by ``spec``; unknown options are rejected with the valid ones."""
    cls = model_class(name)
    reject_unknown_options("model", f"model {name!r}", options, model_options(name))
    options = coerce_options("model", options, cls.__init__)
    check_data_fits(name, spec)
    return cls(spec, **options)
