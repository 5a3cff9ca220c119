"""The discrete oracle: random finite instances and brute-force evaluation from full joint tables.

An instance gives every atom a finite domain and every factor (after assumptions) a strictly positive table of exact
rationals ``weight / sum of weights``. A parameter version (``theta_old``) has its own tables for the factors
parametric in that set, drawn when first needed from the instance's seed; all other factors are shared.

Evaluation builds, for each joint (family and versions), the full table over all of the family's atoms (the product
of its factors, conditioned on the family's inputs), and computes every density term by brute force:
``F(A | B) = F(A, B) / F(B)`` with marginals by summing out everything else. Expectations multiply the measure's
densities with the body and sum out the measure's targets. Every value is an array broadcast over the model's atoms
(size 1 on atoms it does not depend on), in float64 with a running error bound or in interval arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .arithmetic import FloatArithmetic, IntervalArithmetic, constant_value, exact_value
from .coefficients import draw_coefficients, version_rng
from .declaration import Factor, Structure, read_structure
from .errors import OracleError, UndefinedTerm
from .lowering import Const, Dens, Exp, Expect, Log, LogDens, Node, Power, Prod, Sum
from .terms import JointKey, Term

#: Table entries are ``w / sum(w)`` with integer weights ``1 <= w < MAX_WEIGHT``.
MAX_WEIGHT = 64
#: In a peaked instance the weights are ``2**k``, ``0 <= k <= PEAK_EXPONENT``: entries a million times apart, so KLs,
#: MIs and log-density gaps reach 10 nats and more (with ``MAX_WEIGHT`` they stay below about 4).
PEAK_EXPONENT = 20

_FRACTION = np.frompyfunc(Fraction, 2, 1)


@dataclass(eq=False)
class DiscreteInstance:
    """Finite domains, coefficient values and exact tables for one declaration under its assumptions.

    ``tables[(factor index, decoration)]`` is an object array of Fractions with axes ``factor.given + factor.targets``
    that sums to one over the targets; ``decoration`` is None for the current parameters, or a version's decoration
    (``"old"``, ``"'"``, ``"0"``). ``version_seed`` draws missing version tables on demand (None: they must be
    present, as in a replayed instance).
    """

    structure: Structure
    sizes: dict
    coefficients: dict
    tables: dict
    version_seed: int | None = None
    cache: dict = field(default_factory=dict)
    peaked: bool = False  # tables drawn with weights up to 2**PEAK_EXPONENT apart (redraws and versions too)

    def table(self, factor: Factor, decoration: str | None) -> np.ndarray:
        key = (factor.index, decoration)
        if key not in self.tables:
            if decoration is None or self.version_seed is None:
                raise OracleError(f"the instance has no table for {_label(factor, decoration)}")
            rng = version_rng(self.version_seed, _label(factor, decoration))
            self.tables[key] = random_table(factor, self.sizes, rng, self.peaked)
        return self.tables[key]

    def redraw_parametric(self, rng: np.random.Generator) -> "DiscreteInstance":
        """The other instance of an ``= const`` pair: every parametric factor (current parameters) redrawn; domains,
        coefficients, non-parametric factors, the data distribution and every version table kept."""
        tables = dict(self.tables)
        for f in self.structure.parametric_factors:
            tables[(f.index, None)] = random_table(f, self.sizes, rng, self.peaked)
        return DiscreteInstance(self.structure, dict(self.sizes), dict(self.coefficients), tables, self.version_seed,
                                peaked=self.peaked)

    def differs_only_in_parameters(self, other: "DiscreteInstance") -> str | None:
        """None if ``other`` differs from this instance only in parametric factors; else the first difference."""
        if other.sizes != self.sizes:
            return "the domains differ"
        if other.coefficients != self.coefficients:
            return "the coefficients differ"
        for key in set(self.tables) | set(other.tables):
            factor = self.structure.factors[key[0]]
            if factor.parameters and key[1] is None:
                continue
            if key in self.tables and key in other.tables and not np.array_equal(self.tables[key], other.tables[key]):
                return f"the non-parametric table {_label(factor, key[1])} differs"
        return None

    def as_dict(self) -> dict:
        """The export format of docs (see :mod:`.replay`): domains, coefficients, and each table with its axes
        (conditioning atoms, then targets), as floats and as exact fractions."""
        factors = []
        for (index, decoration), table in sorted(self.tables.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            f = self.structure.factors[index]
            factors.append({"factor": _label(f, decoration), "axes": list(f.given + f.targets),
                            "probabilities": table.astype(float).tolist(),
                            "exact": np.vectorize(str, otypes=[object])(table).tolist()})
        return {"domains": dict(self.sizes), "coefficients": {k: str(v) for k, v in self.coefficients.items()},
                "factors": factors}


def _label(factor: Factor, decoration: str | None) -> str:
    """A factor's text with the version's subscript: ``p_theta_old(x | z)``."""
    if decoration is None:
        return factor.text
    subscript = factor.parameters + ("" if decoration.startswith("'") else "_") + decoration
    inner = factor.text[factor.text.index("("):]
    return f"{factor.letter}_{subscript}{inner}"


def random_table(factor: Factor, sizes: dict, rng: np.random.Generator, peaked: bool = False) -> np.ndarray:
    """A strictly positive table ``w / sum(w)`` over the targets, axes ``given + targets`` (``peaked``: weights that
    are powers of two up to ``2**PEAK_EXPONENT``)."""
    shape = [sizes[a] for a in factor.given + factor.targets]
    if peaked:
        weights = np.left_shift(np.int64(1), rng.integers(0, PEAK_EXPONENT + 1, size=shape)).astype(np.int64)
    else:
        weights = rng.integers(1, MAX_WEIGHT, size=shape)
    target_axes = tuple(range(len(factor.given), len(shape)))
    totals = np.broadcast_to(weights.sum(axis=target_axes, keepdims=True), weights.shape)
    return _FRACTION(weights, totals).astype(object)


def random_discrete_instance(model, assumptions=(), rng: np.random.Generator | int | None = None,
                             max_size: int = 3, min_size: int = 2, fixed_sizes: dict | None = None,
                             peaked: bool = False) -> DiscreteInstance:
    """A random instance of ``model`` under ``assumptions``: each atom gets a domain of ``min_size`` to
    ``max_size`` values (``fixed_sizes`` sets some, e.g. a constant component with one value), each factor a random
    strictly positive table, each coefficient a value in its range. ``peaked``: tables whose entries are up to
    ``2**PEAK_EXPONENT`` apart, so that a step true only while divergences stay small is seen to fail."""
    if min_size < 2 or max_size < min_size:
        raise OracleError(f"domain sizes: expected 2 <= min_size <= max_size, got {min_size}, {max_size}")
    rng = np.random.default_rng(rng)
    structure = model if isinstance(model, Structure) else read_structure(model, assumptions)
    sizes = {a: int(rng.integers(min_size, max_size + 1)) for a in structure.atoms}
    for atom, size in (fixed_sizes or {}).items():
        if atom not in sizes or int(size) < 1:
            raise OracleError(f"fixed_sizes[{atom!r}] = {size}: not an atom of the declaration, or below 1")
        sizes[atom] = int(size)
    tables = {(f.index, None): random_table(f, sizes, rng, peaked) for f in structure.factors}
    coefficients = draw_coefficients(structure, rng)
    return DiscreteInstance(structure, sizes, coefficients, tables, int(rng.integers(0, 2 ** 62)), peaked=peaked)


class DiscreteEvaluator:
    """Evaluates lowered nodes on one instance in one arithmetic (``"float64"`` or ``"interval"``)."""

    def __init__(self, instance: DiscreteInstance, precision: str = "float64", dps: int = 50):
        self.instance = instance
        self.structure = instance.structure
        atoms = self.structure.atoms
        self.axis = {a: i for i, a in enumerate(atoms)}
        if precision == "float64":
            self.ar = FloatArithmetic(len(atoms))
        elif precision in ("interval", "high"):
            self.ar = IntervalArithmetic(len(atoms), dps)
        else:
            raise OracleError(f"precision={precision!r}: expected 'float64' or 'high'")
        self.precision = precision
        self._tables: dict = {}
        self._joints: dict = {}
        self._densities: dict = {}
        self._logs: dict = {}
        self._values: dict = {}

    # ---- tables and joints -----------------------------------------------------------------------------------
    def _broadcast(self, factor: Factor, decoration: str | None):
        key = (factor.index, decoration)
        if key not in self._tables:
            table = self.instance.table(factor, decoration)
            axes = factor.given + factor.targets
            order = sorted(range(len(axes)), key=lambda i: self.axis[axes[i]])
            table = np.transpose(table, order)
            shape = [self.instance.sizes[a] if a in axes else 1 for a in self.structure.atoms]
            self._tables[key] = self.ar.table(table.reshape(shape))
        return self._tables[key]

    def joint(self, key: JointKey):
        """The full table of a family's joint (conditioned on its inputs) under the given versions."""
        if key not in self._joints:
            family = self.structure.families[key.family]
            value = None
            for index in family.factors:
                factor = self.structure.factors[index]
                table = self._broadcast(factor, key.decoration(factor))
                value = table if value is None else self.ar.mul(value, table)
            self._joints[key] = value
        return self._joints[key]

    def density(self, term: Term):
        """``F(A | B) = F(A, B) / F(B)``, summing the joint over every other random atom of the family."""
        if term not in self._densities:
            family = self.structure.families[term.joint.family]
            joint = self.joint(term.joint)
            keep = set(term.targets) | set(term.given)
            outside = tuple(self.axis[a] for a in family.atoms if a not in keep)
            both = self.ar.sum(joint, outside)
            given = self.ar.sum(both, tuple(self.axis[a] for a in term.targets))
            value = self.ar.div(both, given)
            # inputs the term leaves out: the resolver proved it does not depend on them
            omitted = tuple(self.axis[a] for a in family.inputs if a not in keep)
            if omitted:
                value = self.ar.first(value, omitted)
            self._densities[term] = value
        return self._densities[term]

    def log_density(self, term: Term):
        if term not in self._logs:
            self._logs[term] = self.ar.log(self.density(term))
        return self._logs[term]

    # ---- expressions -------------------------------------------------------------------------------------------
    def value(self, node: Node):
        if node in self._values:
            return self._values[node]
        value = self._value(node)
        self._values[node] = value
        return value

    def _value(self, node: Node):
        ar = self.ar
        if isinstance(node, Const):
            return constant_value(ar, node.expr, self.instance.coefficients)
        if isinstance(node, Dens):
            return self.density(node.term)
        if isinstance(node, LogDens):
            return self.log_density(node.term)
        if isinstance(node, Sum):
            out = self.value(node.items[0])
            for item in node.items[1:]:
                out = ar.add(out, self.value(item))
            return out
        if isinstance(node, Prod):
            out = self.value(node.items[0])
            for item in node.items[1:]:
                out = ar.mul(out, self.value(item))
            return out
        if isinstance(node, Power):
            exponent = exact_value(node.exponent.expr, self.instance.coefficients)
            base = self.value(node.base)
            if exponent is not None and exponent.denominator == 1 and abs(exponent.numerator) <= 64:
                return ar.integer_power(base, int(exponent))
            if not ar.positive(base):
                raise OracleError(f"a non-integer power {node.exponent.expr} of a value that is not positive")
            return ar.exp(ar.mul(self.value(node.exponent), ar.log(base)))
        if isinstance(node, Log):
            arg = self.value(node.arg)
            if not ar.positive(arg):
                raise UndefinedTerm(node.text, "the log of a value that is not positive")
            return ar.log(arg)
        if isinstance(node, Exp):
            return ar.exp(self.value(node.arg))
        if isinstance(node, Expect):
            measure = None
            for term in node.measure:
                d = self.density(term)
                measure = d if measure is None else ar.mul(measure, d)
            integrated = tuple(sorted(self.axis[a] for t in node.measure for a in t.targets))
            return ar.sum(ar.mul(measure, self.value(node.body)), integrated)
        raise TypeError(node)  # pragma: no cover
