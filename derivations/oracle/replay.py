"""Replay an exported counterexample: rebuild the instance from its export, recompute both sides in high precision.

Discrete export (the checker's ``Instance.as_dict()`` format, also written by :meth:`DiscreteInstance.as_dict`)::

    {"domains": {"x": 2, "z": 3},
     "coefficients": {"beta": 1.5},                      # numbers, or exact strings "3/2"
     "factors": [{"factor": "p_theta(x | z)",            # density notation: family, subscript, arguments
                  "axes": ["z", "x"],                    # the factor's conditioning atoms, then its targets
                  "probabilities": [[0.2, 0.8], ...],    # nested lists indexed by the axes
                  "exact": [["1/5", "4/5"], ...]},       # optional: exact fractions (used when present)
                 ...]}

Linear-Gaussian export (:meth:`GaussianInstance.as_dict`)::

    {"kind": "linear-gaussian",
     "coefficients": {...},
     "factors": [{"factor": "q_phi(z | x)",
                  "targets": [{"target": "z_1", "parents": ["x"], "weights": [0.5], "bias": 0.0, "sigma": 1.0},
                              {"target": "z_2", "parents": ["x", "z_1"], "weights": ["1/2", "-1/4"],
                               "bias": "1/8", "sigma": "3/4"}]}]}

Each target of a factor is ``target = sum weights_k parents_k + bias + sigma * N(0, 1)``; its parents are among the
factor's conditioning atoms and the targets listed before it (an omitted parent has weight 0). Numbers are JSON
numbers (read exactly as the binary floats they are) or strings of exact fractions. A counterexample wraps an
instance: ``{"instance": {...}, "assignment": {atom: index or value}, "second_instance": {...}}`` (the second for
``= const``).

Tables are mapped onto the oracle's own reading of the declared factors by family, subscript, targets and conditioning
variables (a version's subscript, ``p_theta_old(x | z)``, names that version's table). Anything that does not match
the declaration is refused with :class:`~.errors.ReplayError`: a table missing, one for a factor the declaration does
not have, the same factor twice, axes or sizes that disagree, entries that are not positive, rows that do not sum to
one (within 1e-9; they are then renormalised exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..expressions import density
from .coefficients import check_coefficients
from .declaration import Factor, Structure, normalize_subscript, read_structure, version_of
from .discrete import DiscreteInstance
from .errors import OracleError, ReplayError
from .judge import Judgement, Row, judge, normalize_relation
from .linear_gaussian import GaussianInstance, Regression

#: How far an exported table's rows may be from summing to one before the table is refused.
NORMALIZATION_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Replay:
    """Both sides recomputed at the exported assignment (or, without one, at the worst row; when the assignment
    leaves out a variable that is free in the oracle's reading, at the worst of the rows that agree with it)."""

    lhs: object
    rhs: object
    gap: object
    bound: object
    violated: bool
    assignment: dict
    judgement: Judgement

    @property
    def margin(self):
        """How many bounds the gap lies beyond the relation (``inf`` for a zero bound; <= 0 when it holds)."""
        excess = Row(self.assignment, self.lhs, self.rhs, self.gap, self.bound, not self.violated).excess(
            self.judgement.relation)
        return excess / self.bound if self.bound else (float("inf") if excess > 0 else 0.0)


def replay(model, lhs, relation: str, rhs, exported: dict, assumptions=(), *, second: dict | None = None,
           dps: int = 50) -> Replay:
    """Recompute ``lhs`` and ``rhs`` on an exported instance in high precision (discrete: interval arithmetic at
    ``dps`` digits, a rigorous bound; linear-Gaussian: ``dps`` digits, bound estimated from a second evaluation).

    ``exported``: an instance dict, or a counterexample dict with ``"instance"``, optional ``"assignment"`` and, for
    ``= const``, ``"second_instance"`` (or pass ``second``)."""
    relation = normalize_relation(relation)
    if not isinstance(exported, dict):
        raise ReplayError(f"exported: expected a dict, got {type(exported).__name__}")
    structure = read_structure(model, assumptions)
    data = exported.get("instance", exported)
    assignment = exported.get("assignment") if "instance" in exported else None
    second_data = second if second is not None else exported.get("second_instance")
    instance = instance_from_dict(structure, data)
    other = None
    if relation == "= const":
        if second_data is None:
            raise ReplayError("an '= const' counterexample needs the second instance of its pair "
                              "('second_instance')")
        other = instance_from_dict(structure, second_data, where="second_instance")
        difference = instance.differs_only_in_parameters(other)
        if difference:
            raise ReplayError(f"second_instance: the pair must differ only in parametric factors, but {difference}")
    points = 1
    if isinstance(instance, GaussianInstance):
        if not assignment:
            raise ReplayError("a linear-Gaussian counterexample needs its point ('assignment': {atom: value})")
        points = [{a: _exact(v, f"assignment[{a!r}]") for a, v in assignment.items()}]
    elif assignment:
        for atom, value in assignment.items():
            if atom not in instance.sizes or not (0 <= int(value) < instance.sizes[atom]):
                raise ReplayError(f"assignment[{atom!r}] = {value}: not a value of the exported domains")
    result = judge(model, lhs, relation, rhs, assumptions, instance, second_instance=other, precision="high",
                   points=points, dps=dps)
    if isinstance(instance, GaussianInstance):
        row = result.rows[0]
        where = dict(row.assignment)
    elif assignment:
        # the rows that agree with the exported assignment on the variables it names (the others are free in the
        # oracle's reading only), and among them the furthest beyond its bound
        given = {a: int(v) for a, v in assignment.items() if a in result.free}
        rows = [r for r in result.rows if all(r.assignment[a] == v for a, v in given.items())]
        row = max(rows, key=lambda r: r.excess(result.relation))
        where = dict(row.assignment)
    else:
        row = result.worst()
        where = dict(row.assignment)
    return Replay(row.lhs, row.rhs, row.gap, row.bound, not row.holds, where, result)


def instance_from_dict(structure_or_model, data: dict, assumptions=(), where: str = "instance"):
    """A :class:`DiscreteInstance` or :class:`GaussianInstance` from its export (see the module docstring)."""
    structure = (structure_or_model if isinstance(structure_or_model, Structure)
                 else read_structure(structure_or_model, assumptions))
    if not isinstance(data, dict) or "factors" not in data:
        raise ReplayError(f"{where}: expected a dict with 'factors'")
    try:
        coefficients = check_coefficients(structure, dict(data.get("coefficients", {})), f"{where}.coefficients")
    except OracleError as error:
        raise ReplayError(str(error)) from None
    if data.get("kind") == "linear-gaussian":
        return _gaussian(structure, data, coefficients, where)
    if "domains" not in data:
        raise ReplayError(f"{where}: expected 'domains' (discrete) or \"kind\": \"linear-gaussian\"")
    return _discrete(structure, data, coefficients, where)


def _exact(value, where: str) -> Fraction:
    try:
        if isinstance(value, float):
            if not np.isfinite(value):
                raise ValueError
            return Fraction(value)
        if isinstance(value, (int, Fraction)):
            return Fraction(value)
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError, TypeError):
        raise ReplayError(f"{where}: {value!r} is not a finite number") from None


def _match(structure: Structure, label: str, where: str) -> tuple[Factor, str | None]:
    """The declared factor (and version decoration) an exported label names."""
    try:
        d = density(str(label))
    except ValueError as error:
        raise ReplayError(f"{where}: factor {label!r}: {error}") from None
    try:
        targets = {a for n in d.targets for a in structure.atoms_of(str(n), str(label))}
        given = {a for n in d.given for a in structure.atoms_of(str(n), str(label))}
    except OracleError as error:
        raise ReplayError(f"{where}: factor {label!r}: {error}") from None
    candidates = [f for f in structure.factors
                  if f.letter == d.family and set(f.targets) == targets and set(f.given) == given]
    subscript = normalize_subscript(str(d.subscript[0])) if d.subscript else None
    declared = ", ".join(f.text for f in structure.factors)
    if not candidates:
        raise ReplayError(f"{where}: factor {label!r} is not a factor of the declaration ({declared})")
    if subscript is None:
        if len(candidates) == 1:
            return candidates[0], None
    else:
        exact = [f for f in candidates if subscript in (f.subscript, f.parameters)]
        if len(exact) == 1:
            return exact[0], None
        version = version_of(subscript)
        if version:
            hits = [f for f in candidates if f.parameters and f.parameters == version[0]]
            if len(hits) == 1:
                return hits[0], version[1]
        if not exact:
            raise ReplayError(f"{where}: factor {label!r}: the subscript {subscript!r} does not match the declared "
                              f"{' or '.join(f.text for f in candidates)}")
    raise ReplayError(f"{where}: factor {label!r} is ambiguous between {', '.join(f.text for f in candidates)}")


def _discrete(structure: Structure, data: dict, coefficients: dict, where: str) -> DiscreteInstance:
    domains = data["domains"]
    if not isinstance(domains, dict):
        raise ReplayError(f"{where}.domains: expected {{atom: size}}")
    missing = [a for a in structure.atoms if a not in domains]
    extra = [a for a in domains if a not in structure.atoms]
    if missing or extra:
        raise ReplayError(f"{where}.domains: " + "; ".join(
            ([f"no size for {', '.join(missing)}"] if missing else [])
            + ([f"{', '.join(extra)} is not a variable of the declaration"] if extra else [])))
    sizes = {}
    for a in structure.atoms:
        try:
            sizes[a] = int(domains[a])
        except (TypeError, ValueError):
            raise ReplayError(f"{where}.domains[{a!r}] = {domains[a]!r}: expected a positive integer") from None
        if sizes[a] < 1 or sizes[a] != domains[a]:
            raise ReplayError(f"{where}.domains[{a!r}] = {domains[a]!r}: expected a positive integer")
    tables = {}
    for k, entry in enumerate(data["factors"]):
        place = f"{where}.factors[{k}]"
        if not isinstance(entry, dict) or "factor" not in entry or "axes" not in entry:
            raise ReplayError(f"{place}: expected {{'factor', 'axes', 'probabilities'}}")
        factor, decoration = _match(structure, entry["factor"], place)
        if (factor.index, decoration) in tables:
            raise ReplayError(f"{place}: a second table for {entry['factor']}")
        axes = [str(a) for a in entry["axes"]]
        expected = factor.given + factor.targets
        if sorted(axes) != sorted(expected):
            raise ReplayError(f"{place}: axes {axes} are not the variables of {factor.text} ({list(expected)})")
        raw = entry.get("exact", entry.get("probabilities"))
        try:
            table = np.array(raw, dtype=object)
        except ValueError:
            raise ReplayError(f"{place}: the probabilities are not a rectangular nested list") from None
        shape = tuple(sizes[a] for a in axes)
        if table.shape != shape:
            raise ReplayError(f"{place}: probabilities of shape {table.shape}, expected {shape} from the domains")
        table = np.vectorize(lambda x: _exact(x, f"{place}: a probability"), otypes=[object])(table) \
            if table.size else table
        table = np.transpose(table, [axes.index(a) for a in expected])
        if any(x <= 0 for x in table.flat):
            raise ReplayError(f"{place}: a probability that is not positive (docs/semantics.md section 6: full "
                              "support)")
        target_axes = tuple(range(len(factor.given), len(expected)))
        totals = table.sum(axis=target_axes, keepdims=True)
        if any(abs(float(t) - 1) > NORMALIZATION_TOLERANCE for t in totals.flat):
            raise ReplayError(f"{place}: the probabilities of {entry['factor']} do not sum to one over "
                              f"{', '.join(factor.targets)}")
        tables[(factor.index, decoration)] = (table / totals).astype(object)
    for f in structure.factors:
        if (f.index, None) not in tables:
            raise ReplayError(f"{where}: no table for the declared factor {f.text}")
    return DiscreteInstance(structure, sizes, coefficients, tables, None)


def _gaussian(structure: Structure, data: dict, coefficients: dict, where: str) -> GaussianInstance:
    regressions = {}
    for k, entry in enumerate(data["factors"]):
        place = f"{where}.factors[{k}]"
        if not isinstance(entry, dict) or "factor" not in entry or "targets" not in entry:
            raise ReplayError(f"{place}: expected {{'factor', 'targets'}}")
        factor, decoration = _match(structure, entry["factor"], place)
        if (factor.index, decoration) in regressions:
            raise ReplayError(f"{place}: a second entry for {entry['factor']}")
        listed = [str(t.get("target")) for t in entry["targets"]]
        if sorted(listed) != sorted(factor.targets):
            raise ReplayError(f"{place}: targets {listed} are not those of {factor.text} ({list(factor.targets)})")
        out = []
        for j, t in enumerate(entry["targets"]):
            spot = f"{place}.targets[{j}]"
            parents = tuple(str(p) for p in t.get("parents", ()))
            allowed = set(factor.given) | set(listed[:j])
            if not set(parents) <= allowed or len(set(parents)) != len(parents):
                raise ReplayError(f"{spot}: parents {list(parents)} must be distinct atoms among the factor's "
                                  f"conditioning variables and earlier targets ({sorted(allowed)})")
            weights = tuple(_exact(w, f"{spot}.weights") for w in t.get("weights", ()))
            if len(weights) != len(parents):
                raise ReplayError(f"{spot}: {len(weights)} weights for {len(parents)} parents")
            sigma = _exact(t.get("sigma"), f"{spot}.sigma")
            if sigma <= 0:
                raise ReplayError(f"{spot}.sigma = {sigma}: expected a positive standard deviation")
            out.append(Regression(listed[j], parents, weights, _exact(t.get("bias", 0), f"{spot}.bias"), sigma))
        regressions[(factor.index, decoration)] = tuple(out)
    for f in structure.factors:
        if (f.index, None) not in regressions:
            raise ReplayError(f"{where}: no regressions for the declared factor {f.text}")
    return GaussianInstance(structure, coefficients, regressions, None)
