"""The oracle's exceptions: one base class, and one subclass per reason a value cannot be given."""

from __future__ import annotations


class OracleError(ValueError):
    """Base class: the oracle cannot give a value, and says why (naming the term or field at fault)."""


class DeclarationError(OracleError):
    """The model declaration or an assumption cannot be read (an undeclared variable, a cyclic joint, an assumption
    whose joint is not a declared factor)."""


class UndefinedTerm(OracleError):
    """A term that the declaration gives no meaning (docs/semantics.md): an undeclared variable or subscript, an
    ambiguous density, a ``p`` term that leaves out an input it depends on, two data points of one variable."""

    def __init__(self, term: str, reason: str):
        super().__init__(f"{term}: {reason}")
        self.term = term
        self.reason = reason


class Unsupported(OracleError):
    """A well-defined term that this evaluator cannot compute exactly (e.g. the linear-Gaussian oracle and the
    expectation of a product of a log-density with a density). Never a wrong number instead."""


class Divergent(Unsupported):
    """An integral of the linear-Gaussian oracle that diverges (e.g. ``E_q[(p/q)^k]`` for a large power ``k``)."""


class ReplayError(OracleError):
    """An exported instance that does not match the declaration (a table missing, a factor the declaration does not
    have, axes or sizes that disagree, probabilities that do not sum to one)."""
