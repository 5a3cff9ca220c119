"""Judge one step ``lhs REL rhs`` on an instance: both sides at every free assignment, with error bounds.

``REL`` is ``=``, ``>=``, ``<=`` or ``= const`` (docs/semantics.md section 6). For ``= const`` the step is judged on a
*pair* of instances that differ only in the parametric factors (``instance.redraw_parametric``, or a given
``second_instance``): the claim fails where ``(lhs - rhs)`` differs between the two.

A row *holds* when the relation holds within the bound: ``|gap| <= bound`` for ``=`` and ``= const``,
``gap >= -bound`` for ``>=``, ``gap <= bound`` for ``<=``, with ``gap = lhs - rhs`` (for ``= const``, the difference
of the two instances' ``lhs - rhs``). A row that does not hold is a violation *beyond* the bound:

* discrete, ``precision="high"``: interval arithmetic, the bound is rigorous;
* discrete, ``"float64"``: twice the first-order running error bound;
* linear-Gaussian, ``"high"``: the difference between evaluations at ``dps`` and ``dps + 20`` digits, times 4, plus
  ``10^-dps`` times the magnitudes summed (an estimate: the linear algebra is not done in intervals);
* linear-Gaussian, ``"float64"``: ``64 n u kappa`` times the magnitudes summed, with ``n`` the number of atoms,
  ``u = 2^-53``, ``kappa`` the largest condition number met (noise loadings of a conditioned block, matrices
  inverted) and the magnitudes propagated through every integral on absolute values (a heuristic, checked against
  the high-precision value on instances with conditionals down to ``2^-13`` wide in
  tests/derivations/oracle/test_oracle_judge.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy

from .declaration import Structure, declaration_fingerprint, read_structure
from .discrete import DiscreteEvaluator, DiscreteInstance, random_discrete_instance
from .errors import OracleError
from .linear_gaussian import ExpQuadratic, GaussianEvaluator, GaussianInstance, random_points
from .lowering import free_atoms, lower_step

RELATIONS = {"=": "=", "==": "=", ">=": ">=", "<=": "<=", "= const": "= const", "=const": "= const",
             "=c": "= const", "= c": "= const"}


@dataclass(frozen=True)
class Row:
    """One assignment of the free variables (domain indices, or a Gaussian point) and the two sides there."""

    assignment: dict
    lhs: object
    rhs: object
    gap: object
    bound: object
    holds: bool
    second: tuple | None = None

    def excess(self, relation: str):
        """How far the gap lies beyond the bound on the wrong side (<= 0 when the row holds)."""
        if relation in ("=", "= const"):
            return abs(self.gap) - self.bound
        if relation == ">=":
            return -self.gap - self.bound
        return self.gap - self.bound


@dataclass(frozen=True)
class Judgement:
    relation: str
    kind: str
    precision: str
    free: tuple
    rows: tuple
    vacuous: bool = False

    @property
    def holds(self) -> bool:
        """Whether every row holds within its bound."""
        return all(r.holds for r in self.rows)

    @property
    def violations(self) -> tuple:
        return tuple(r for r in self.rows if not r.holds)

    def worst(self) -> Row:
        """The row whose gap lies furthest beyond its bound on the wrong side."""
        return max(self.rows, key=lambda r: r.excess(self.relation))

    def row(self, assignment: dict) -> Row:
        """The row at an assignment (entries for atoms that are not free are ignored)."""
        missing = [a for a in self.free if a not in assignment]
        if missing:
            raise OracleError(f"assignment {assignment}: no value for the free variable(s) {', '.join(missing)}")
        for r in self.rows:
            if all(_same(r.assignment[a], assignment[a]) for a in self.free):
                return r
        raise OracleError(f"assignment {assignment}: not a row of this judgement")

    def summary(self) -> str:
        w = self.worst()
        verdict = "holds" if self.holds else "violated"
        where = ", ".join(f"{a}={v}" for a, v in w.assignment.items()) or "(no free variables)"
        note = " (vacuous: no parametric factor)" if self.vacuous else ""
        return (f"{verdict}{note} on {len(self.rows)} {self.kind} row(s), {self.precision}; worst at {where}: "
                f"lhs = {_show(w.lhs)}, rhs = {_show(w.rhs)}, gap = {_show(w.gap)} +- {_show(w.bound)}")


def _same(a, b) -> bool:
    try:
        return a == b or float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _show(x) -> str:
    try:
        return f"{float(x):.10g}"
    except (TypeError, ValueError, OverflowError):
        return str(x)


def normalize_relation(relation: str) -> str:
    key = str(relation).strip()
    if key not in RELATIONS:
        raise OracleError(f"relation={relation!r}: expected one of '=', '>=', '<=', '= const'")
    return RELATIONS[key]


def judge(model, lhs, relation: str, rhs, assumptions=(), instance=None, *, second_instance=None,
          precision: str = "float64", rng=None, points=4, dps: int = 50, max_size: int = 3) -> Judgement:
    """Evaluate ``lhs`` and ``rhs`` on an instance and judge ``lhs REL rhs`` at every free assignment.

    ``instance``: a :class:`DiscreteInstance` or :class:`GaussianInstance` drawn for this model and assumptions
    (None: a random discrete instance from ``rng``). ``second_instance``: for ``= const``, the other instance of the
    pair (None: the parametric factors redrawn from ``rng``). ``points``: for Gaussian instances, the number of
    random points or a list of ``{atom: value}``. ``precision``: ``"float64"`` or ``"high"`` (``dps`` digits).
    """
    relation = normalize_relation(relation)
    if precision not in ("float64", "high"):
        raise OracleError(f"precision={precision!r}: expected 'float64' or 'high'")
    rng = np.random.default_rng(rng)
    structure = _structure(model, assumptions, instance)
    left, right = lower_step(structure, sympy.sympify(lhs), sympy.sympify(rhs))
    if instance is None:
        instance = random_discrete_instance(structure, rng=rng, max_size=max_size)
    second = None
    if relation == "= const":
        second = second_instance if second_instance is not None else instance.redraw_parametric(rng)
        if type(second) is not type(instance) or (second.structure is not instance.structure
                                                  and second.structure.fingerprint != instance.structure.fingerprint):
            raise OracleError("second_instance: not an instance of the same declaration and kind")
        difference = instance.differs_only_in_parameters(second)
        if difference:
            raise OracleError(f"second_instance: the pair must differ only in parametric factors, but {difference}")
    free = tuple(a for a in structure.atoms if a in free_atoms(left) | free_atoms(right))
    vacuous = relation == "= const" and not structure.parametric_factors
    if isinstance(instance, DiscreteInstance):
        rows = _discrete_rows(instance, second, left, right, relation, precision, dps, free)
        kind = "discrete"
    elif isinstance(instance, GaussianInstance):
        if isinstance(points, int):
            points = random_points(structure, points, rng, instance.scale)
        rows = _gaussian_rows(instance, second, left, right, relation, precision, dps, free, points)
        kind = "linear-gaussian"
    else:
        raise OracleError(f"instance: expected a DiscreteInstance or a GaussianInstance, got {type(instance).__name__}")
    return Judgement(relation, kind, precision, free, tuple(rows), vacuous)


def _structure(model, assumptions, instance) -> Structure:
    if instance is None:
        if isinstance(model, Structure):
            return model
        return read_structure(model, assumptions)
    structure = instance.structure
    if model is not None and not isinstance(model, Structure):
        if declaration_fingerprint(model, assumptions) != structure.fingerprint:
            raise OracleError("instance: drawn for another declaration or other assumptions than the ones given")
    return structure


def _holds(relation: str, gap, bound) -> bool:
    if relation in ("=", "= const"):
        return abs(gap) <= bound
    if relation == ">=":
        return gap >= -bound
    return gap <= bound


def _discrete_rows(instance, second, left, right, relation, precision, dps, free):
    first = DiscreteEvaluator(instance, precision, dps)
    ar = first.ar
    lhs, rhs = first.value(left), first.value(right)
    gap = ar.add(lhs, ar.neg(rhs))
    others = None
    if second is not None:
        other = DiscreteEvaluator(second, precision, dps)
        other.ar = ar  # one arithmetic (one interval context) for both instances
        lhs2, rhs2 = other.value(left), other.value(right)
        gap = ar.add(gap, ar.neg(ar.add(lhs2, ar.neg(rhs2))))
        others = (lhs2, rhs2)
    atoms = instance.structure.atoms
    shape = tuple(instance.sizes[a] if a in free else 1 for a in atoms)
    values = [ar.parts(x, shape) for x in (lhs, rhs, gap) + (others or ())]
    rows = []
    for index in np.ndindex(*shape):
        assignment = {a: index[i] for i, a in enumerate(atoms) if a in free}
        (left, _), (right, _), (g, b) = values[0], values[1], values[2]
        extra = (values[3][0][index], values[4][0][index]) if others else None
        rows.append(Row(assignment, left[index], right[index], g[index], b[index],
                        bool(_holds(relation, g[index], b[index])), extra))
    return rows


def _gaussian_sides(instance, left, right, precision, dps, points):
    """Per point: ``(lhs, rhs, magnitude)``, with ``magnitude`` the sum of the magnitudes that entered both sides
    (for an exp-quadratic, its value times its exponent's magnitudes); and the evaluator's largest condition
    number."""
    ev = GaussianEvaluator(instance, precision, dps)
    lhs, rhs = ev.value(left), ev.value(right)
    out = []
    for point in points:
        v = ev.vector(point)
        total = 0
        sides = []
        for side in (lhs, rhs):
            value, scale = ev.at(side, v)
            total = total + (abs(value) * (scale + 1) if isinstance(side, ExpQuadratic) else scale + 1)
            sides.append(value)
        out.append((sides[0], sides[1], total))
    return out, ev.la.max_condition


def _gaussian_rows(instance, second, left, right, relation, precision, dps, free, points):
    instances = [instance] if second is None else [instance, second]
    if precision == "float64":
        n = len(instance.structure.atoms)
        evaluated = [_gaussian_sides(i, left, right, "float64", dps, points) for i in instances]
        gaps, bounds = [], []
        for k in range(len(points)):
            gap = bound = 0.0
            for sign, (values, condition) in zip((1, -1), evaluated):
                left, right, magnitude = values[k]
                gap += sign * (left - right)
                bound += 64 * n * 2.0 ** -53 * condition * magnitude
            gaps.append(gap)
            bounds.append(bound if math.isfinite(gap) else math.inf)
    else:
        evaluated = [_gaussian_sides(i, left, right, "high", dps + 20, points) for i in instances]
        coarse = [_gaussian_sides(i, left, right, "high", dps, points)[0] for i in instances]
        gaps, bounds = [], []
        for k in range(len(points)):
            gap = gap_coarse = magnitude = 0
            for sign, (values, _), low in zip((1, -1), evaluated, coarse):
                left, right, m = values[k]
                gap = gap + sign * (left - right)
                gap_coarse = gap_coarse + sign * (low[k][0] - low[k][1])
                magnitude = magnitude + m
            gaps.append(gap)
            bounds.append(4 * abs(gap - gap_coarse) + magnitude * type(magnitude)(10) ** (-dps))
    rows = []
    for k, point in enumerate(points):
        left, right, _ = evaluated[0][0][k]
        extra = evaluated[1][0][k][:2] if second is not None else None
        assignment = {a: point[a] for a in free}
        rows.append(Row(assignment, left, right, gaps[k], bounds[k], bool(_holds(relation, gaps[k], bounds[k])),
                        extra))
    return rows


def evaluate(model, expr, instance, assumptions=(), *, precision: str = "float64", points=4, rng=None,
             dps: int = 50) -> list[tuple[dict, object, object]]:
    """The value of one expression on an instance: ``[(assignment, value, bound), ...]`` over the free
    assignments (discrete) or the points (Gaussian)."""
    result = judge(model, expr, "=", 0, assumptions, instance, precision=precision, points=points, rng=rng, dps=dps)
    return [(r.assignment, r.lhs, r.bound) for r in result.rows]
