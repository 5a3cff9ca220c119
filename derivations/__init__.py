"""Derivations: SymPy objects for ELBO derivations, a model declaration that gives them meaning, and a checker that
proves, refutes or declines each step."""

from .checker import (
    Checker,
    Counterexample,
    Derivation,
    DerivationResult,
    Factorization,
    InternalInconsistency,
    SearchSettings,
    Step,
    StepResult,
    check,
    replay_counterexample,
)
from .expressions import (
    KL,
    Density,
    E,
    Entropy,
    Expectation,
    MutualInformation,
    TotalCorrelation,
    density,
    entropy,
    kl,
    log,
    mi,
    ratio,
    tc,
)
from .model import Model, ModelError
from . import display_html  # noqa: F401,E402  (attaches _repr_html_ / _repr_latex_ to the result classes)

__all__ = [
    "Checker", "Counterexample", "Derivation", "DerivationResult", "Factorization", "InternalInconsistency",
    "SearchSettings", "Step", "StepResult", "check", "replay_counterexample", "KL", "Density", "E", "Entropy", "Expectation",
    "MutualInformation", "TotalCorrelation", "density", "entropy", "kl", "log", "mi", "ratio", "tc", "Model",
    "ModelError",
]
