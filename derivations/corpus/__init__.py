"""Corpora of derivation steps whose truth was decided by mathematics before the checker ran.

Two kinds of entry, both judged against :doc:`docs/semantics.md <../../docs/semantics.md>`:

* :class:`CorpusStep`: a step written with the Python API (a :class:`~elbocheck.derivations.model.Model`, two
  expressions, a relation, assumptions), its **truth** (``True``: the relation holds in every instance the semantics
  allows; ``False``: some instance violates it) and a one-line mathematical **justification**.
* A LaTeX/Markdown file with an elbocheck header, and beside it a TOML file with the same stem that gives the truth of
  each step (``[[step]]`` tables with ``at`` = the step's label such as ``"(3) -> (4)"`` or ``"line 14"``,
  ``truth`` = true/false, ``why`` = the justification), plus the file's ``source`` (the paper, section, equation).

The truth is what the mathematics says, not what the checker says: a checker verdict that contradicts it (a false
step proven, a true step refuted) is a bug in the checker. "Undecided" contradicts neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..checker import Factorization
from ..model import Model

CORPUS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CorpusStep:
    """One step of the API corpus: ``lhs relation rhs`` in ``model``, with its truth and why."""

    name: str
    model: Model
    lhs: object
    relation: str
    rhs: object
    truth: bool
    why: str
    assumptions: tuple[Factorization, ...] = field(default_factory=tuple)
    topic: str = ""
