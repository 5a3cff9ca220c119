"""Certificates for inequalities: write ``lhs - rhs`` as a non-negative combination of KLs, MIs, TCs and Jensen gaps.

Candidates are generated from the measures that occur in the difference (every KL between a measure's conditional
and another family's density over the same variables, with every outer expectation and conditioning set the
variables allow; mutual informations and total correlations of the same joints; a Jensen gap for each opaque
log-expectation). A linear program at random values of the coefficient symbols finds a support; the coefficients are
then solved exactly with SymPy on that support, the identity ``difference = sum c_i K_i`` is checked exactly, and
each ``c_i`` is shown non-negative over the declared ranges of the coefficient symbols. Every candidate is a genuine
divergence, so a certificate found this way is a proof.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import sympy
from scipy.optimize import linprog

from .canonical import CONSTANT, Canonicalizer, LinearForm, LogExpectation, LogFactor, LogMarginal, MeasureFactor
from .display import display_density, display_form
from .expressions import KL, Expectation, MutualInformation, TotalCorrelation
from .model import Model
from .numeric import to_range


@dataclass
class Candidate:
    """A non-negative quantity (its expression for display) and its canonical form."""

    text: str
    latex: str
    form: LinearForm


def _units(model: Model, atoms: frozenset) -> list[frozenset]:
    """Split a set of atomic variables into declared groups (whole vectors) and loose components."""
    units, seen = [], set()
    for a in sorted(atoms):
        if a in seen:
            continue
        group = model.atom_to_group[a]
        members = frozenset(model.components[group])
        if members <= atoms:
            units.append(members)
            seen |= members
        else:
            units.append(frozenset({a}))
            seen.add(a)
    return units


def _subsets(units: list[frozenset], min_size: int = 0):
    for size in range(min_size, len(units) + 1):
        for combo in itertools.combinations(units, size):
            yield frozenset().union(*combo) if combo else frozenset()


def measure_factors_of(form: LinearForm) -> set[MeasureFactor]:
    found: set[MeasureFactor] = set()
    for atom in form.terms:
        if atom == CONSTANT:
            continue
        found.update(atom.measure)
        if isinstance(atom, LogExpectation):
            found.update(atom.inner)
    return found


def candidates_for(difference: LinearForm, canon: Canonicalizer) -> list[Candidate]:
    model = canon.model
    allowed = set(difference.terms)
    out: list[Candidate] = []
    seen_forms: set = set()

    def consider(text: str, latex: str, form: LinearForm) -> None:
        for atom in form.terms:
            if atom not in allowed and not (atom != CONSTANT and not atom.measure and not isinstance(atom, LogExpectation)):
                return
        key = form.key()
        if not form.terms or key in seen_forms:
            return
        seen_forms.add(key)
        out.append(Candidate(text, latex, form))

    free = frozenset().union(*[canon.dependencies(a) for a in difference.terms if a != CONSTANT]) if difference.terms else frozenset()
    # mutual informations first, so that a term that is an MI is named as one
    for factor in sorted(measure_factors_of(difference), key=MeasureFactor.sort_key):
        graph = canon.model.graphs[factor.family]
        target_units = _units(model, factor.targets)
        if not (factor.given - graph.inputs):
            for first_units, second_units in itertools.combinations(_subsets(target_units, 1), 2):
                if first_units & second_units:
                    continue
                remaining = [u for u in target_units if not (u & (first_units | second_units))]
                for given in _subsets(remaining):
                    form = canon.mi_form(factor.family, first_units, second_units, given)
                    expr = MutualInformation(_names(model, first_units), _names(model, second_units), _names(model, given),
                                             factor.family)
                    consider(sympy.sstr(expr), sympy.latex(expr), form)
    for factor in sorted(measure_factors_of(difference), key=MeasureFactor.sort_key):
        graph = canon.model.graphs[factor.family]
        target_units = _units(model, factor.targets)
        components = [frozenset({a}) for a in sorted(factor.targets) if len(model.components[model.atom_to_group[a]]) > 1]
        target_sets = list(_subsets(target_units, 1)) + [c for c in components if c not in target_units]
        for targets in target_sets:
            rest_units = [u for u in target_units if not (u & targets)]
            for outer in _subsets(rest_units):
                first = canon.make(factor.family, targets, outer | factor.given)
                for family, other_graph in model.graphs.items():
                    if not targets <= other_graph.variables or targets & other_graph.inputs:
                        continue
                    conditioning_pool = _units(model, (outer | factor.given | free) - targets - other_graph.inputs)
                    for given in _subsets(conditioning_pool):
                        if not given <= other_graph.variables:
                            continue
                        second = canon.make(family, targets, given)
                        if second == first:
                            continue
                        form = canon.kl_form(first, second)
                        kl_expr = KL(display_density(model, first), display_density(model, second))
                        if outer:
                            outer_r = canon.make(factor.family, outer, factor.given)
                            form = canon.with_measure(form, [MeasureFactor(outer_r.family, outer_r.targets, outer_r.given)])
                            kl_expr = Expectation(display_density(model, outer_r), kl_expr)
                        consider(sympy.sstr(kl_expr), sympy.latex(kl_expr), form)
                # total correlation of a vector-valued target set
                if len(targets) > 1 and len(target_units) >= 1 and targets in target_units:
                    first = canon.make(factor.family, targets, outer | factor.given)
                    form = canon.tc_form(first)
                    expr = TotalCorrelation(display_density(model, first))
                    if outer:
                        outer_r = canon.make(factor.family, outer, factor.given)
                        form = canon.with_measure(form, [MeasureFactor(outer_r.family, outer_r.targets, outer_r.given)])
                        expr = Expectation(display_density(model, outer_r), expr)
                    consider(sympy.sstr(expr), sympy.latex(expr), form)
    for atom in difference.terms:
        if isinstance(atom, LogExpectation):
            integrand = LinearForm(dict(atom.integrand))
            inner_expectation = canon.with_measure(integrand, list(atom.inner))
            gap = LinearForm.atom(atom) - canon.with_measure(inner_expectation, list(atom.measure))
            text = "Jensen gap of " + display_form(model, LinearForm.atom(atom))
            consider(text, r"\text{Jensen gap of } " + display_form(model, LinearForm.atom(atom), latex=True), gap)
    return out


def _names(model: Model, atoms: frozenset) -> list[str]:
    names = []
    for unit in _units(model, atoms):
        group = model.atom_to_group[min(unit)]
        names.append(group if len(unit) > 1 or len(model.components[group]) == 1 else min(unit))
    return names


def nonnegative(expr, model: Model) -> bool:
    """Whether a coefficient expression is >= 0 for every value of its symbols in their declared ranges."""
    expr = sympy.expand(sympy.sympify(expr))
    if expr.is_number:
        return bool(expr >= 0)
    symbols = sorted(expr.free_symbols, key=str)
    ranges = model.coefficient_ranges
    if any(str(s) not in ranges for s in symbols):
        return False
    poly = sympy.Poly(expr, *symbols)
    if poly.total_degree() <= 1:
        total = poly.coeff_monomial(1)
        for s in symbols:
            c = poly.coeff_monomial(s)
            r = ranges[str(s)]
            if c > 0:
                if r.low is None:
                    return False
                total += c * r.low
            elif c < 0:
                if r.high is None:
                    return False
                total += c * r.high
        return bool(total >= 0)
    substituted = expr
    for s in symbols:
        r = ranges[str(s)]
        t = sympy.Symbol(f"_{s}_offset", nonnegative=True)
        if r.low is not None:
            substituted = substituted.subs(s, r.low + t)
        elif r.high is not None:
            substituted = substituted.subs(s, r.high - t)
        else:
            return False
    return bool(sympy.expand(substituted).is_nonnegative)


@dataclass
class Certificate:
    terms: list[tuple[object, Candidate]]  # (coefficient, candidate)
    candidates_tried: int

    def text(self, latex: bool = False) -> str:
        parts = []
        for coefficient, cand in self.terms:
            body = cand.latex if latex else cand.text
            if coefficient == 1:
                parts.append(body)
            else:
                c = sympy.latex(coefficient) if latex else sympy.sstr(coefficient)
                parts.append(f"({c}) {body}" if not latex else rf"\left({c}\right) {body}")
        return " + ".join(parts) if parts else "0"


def find_certificate(difference: LinearForm, canon: Canonicalizer, seed: int = 0) -> Certificate | tuple[None, int]:
    """A non-negative combination of candidates equal to ``difference``, or ``(None, number_tried)``."""
    candidates = candidates_for(difference, canon)
    atoms = list(difference.terms)
    for cand in candidates:
        for atom in cand.form.terms:
            if atom not in atoms:
                atoms.append(atom)
    index = {a: i for i, a in enumerate(atoms)}
    model = canon.model
    columns = np.zeros((len(atoms), len(candidates) + 1))
    for j, cand in enumerate(candidates):
        for atom, c in cand.form.terms.items():
            columns[index[atom], j] = float(c)
    constant_column = len(candidates)
    if CONSTANT in index:
        columns[index[CONSTANT], constant_column] = 1.0  # a non-negative constant slack
    symbols = sorted(set().union(*[sympy.sympify(c).free_symbols for c in difference.terms.values()]), key=str)
    affine = _affine_certificate(difference, atoms, columns, candidates, model, symbols)
    if affine is not None:
        affine.candidates_tried = len(candidates)
        return affine
    rng = np.random.default_rng(seed)
    tried_supports = set()
    # Different vertices of the LP (random costs, random points of the coefficient ranges) give different supports;
    # the first whose exact solution is non-negative over the whole declared range wins.
    for attempt in range(12):
        values = {}
        for s in symbols:
            r = model.coefficient_ranges.get(str(s))
            if r is None:
                return None, len(candidates)
            values[s] = to_range(rng.normal(0.0, 1.5), r)
        target = np.array([float(sympy.sympify(difference.terms.get(a, 0)).subs(values)) for a in atoms])
        if not len(candidates) and not np.allclose(target, 0):
            return None, 0
        costs = np.ones(columns.shape[1]) if attempt == 0 else rng.uniform(0.2, 2.0, size=columns.shape[1])
        result = linprog(costs, A_eq=columns, b_eq=target, bounds=(0, None), method="highs")
        if not result.success:
            continue
        support = tuple(j for j in range(columns.shape[1]) if result.x[j] > 1e-9)
        if support in tried_supports:
            continue
        tried_supports.add(support)
        certificate = _exact(difference, atoms, columns, support, candidates, model)
        if certificate is not None:
            certificate.candidates_tried = len(candidates)
            return certificate
    return None, len(candidates)


def _nonnegative_solution(columns: np.ndarray, vector: list) -> dict | None:
    """An exact non-negative solution ``c`` of ``columns @ c = vector`` (rational ``vector``), or None."""
    target = np.array([float(v) for v in vector])
    if np.allclose(target, 0.0):
        return {}
    result = linprog(np.ones(columns.shape[1]), A_eq=columns, b_eq=target, bounds=(0, None), method="highs")
    if not result.success:
        return None
    support = [j for j in range(columns.shape[1]) if result.x[j] > 1e-9]
    matrix = sympy.Matrix([[sympy.Integer(int(round(columns[i, j]))) for j in support] for i in range(columns.shape[0])])
    try:
        solution, params = matrix.gauss_jordan_solve(sympy.Matrix(vector))
    except ValueError:
        return None
    if params.shape[0]:
        solution = solution.subs({p: 0 for p in params})
    if any(v < 0 for v in solution):
        return None
    return {j: v for j, v in zip(support, solution) if v != 0}


def _affine_certificate(difference, atoms, columns, candidates, model, symbols) -> Certificate | None:
    """Certificate for coefficients affine in symbols with one-sided ranges.

    With ``s = low + t`` (or ``high - t``), ``t >= 0``, the difference is ``d0 + sum_k t_k d_k``. Non-negative exact
    solutions ``c0`` of ``K c = d0`` and ``c_k`` of ``K c = d_k`` give ``c0 + sum_k t_k c_k``, non-negative for every
    ``t >= 0``: a certificate valid over the whole declared range. (A two-sided range is treated as its lower side,
    which is sound and may miss a certificate.)
    """
    offsets, substitution = [], {}
    for s in symbols:
        r = model.coefficient_ranges.get(str(s))
        if r is None:
            return None
        t = sympy.Symbol(f"_t_{s}", nonnegative=True)
        if r.low is not None:
            substitution[s] = r.low + t
            offsets.append((t, s - r.low))
        elif r.high is not None:
            substitution[s] = r.high - t
            offsets.append((t, r.high - s))
        else:
            return None
    ts = [t for t, _ in offsets]
    components = [[] for _ in range(len(ts) + 1)]
    for atom in atoms:
        expr = sympy.expand(sympy.sympify(difference.terms.get(atom, 0)).subs(substitution))
        poly = sympy.Poly(expr, *ts) if ts else None
        if poly is not None and poly.total_degree() > 1:
            return None
        if poly is None:
            components[0].append(sympy.nsimplify(expr))
            continue
        components[0].append(poly.coeff_monomial(1))
        for k, t in enumerate(ts):
            components[k + 1].append(poly.coeff_monomial(t))
    coefficients: dict[int, object] = {}
    for k, vector in enumerate(components):
        if any(not sympy.sympify(v).is_Rational for v in vector):
            return None
        solution = _nonnegative_solution(columns, vector)
        if solution is None:
            return None
        scale = 1 if k == 0 else offsets[k - 1][1]
        for j, v in solution.items():
            coefficients[j] = coefficients.get(j, 0) + v * scale
    return _exact_from(difference, atoms, columns, coefficients, candidates, model)


def _exact_from(difference, atoms, columns, coefficients, candidates, model) -> Certificate | None:
    """Check ``sum_j c_j column_j == difference`` exactly and every ``c_j >= 0`` over the ranges."""
    for i, atom in enumerate(atoms):
        total = sum((sympy.Integer(int(round(columns[i, j]))) * c for j, c in coefficients.items()), sympy.Integer(0))
        if sympy.expand(total - sympy.sympify(difference.terms.get(atom, 0))) != 0:
            return None
    terms = []
    for j, c in sorted(coefficients.items()):
        c = sympy.factor(sympy.expand(c))
        if c == 0:
            continue
        if not nonnegative(c, model):
            return None
        if j == len(candidates):
            terms.append((c, Candidate("1", "1", LinearForm.atom(CONSTANT))))
        else:
            terms.append((c, candidates[j]))
    return Certificate(terms, 0)


def _exact(difference, atoms, columns, support, candidates, model) -> Certificate | None:
    """Solve the support's columns exactly for the difference (free parameters at 0), then check the result."""
    if not support:
        return None
    matrix = sympy.Matrix([[sympy.Integer(int(round(columns[i, j]))) for j in support] for i in range(len(atoms))])
    rhs = sympy.Matrix([sympy.sympify(difference.terms.get(a, 0)) for a in atoms])
    try:
        solution, params = matrix.gauss_jordan_solve(rhs)
    except ValueError:
        return None
    if params.shape[0]:
        solution = solution.subs({p: 0 for p in params})
    return _exact_from(difference, atoms, columns, dict(zip(support, solution)), candidates, model)


__all__ = ["Candidate", "Certificate", "candidates_for", "find_certificate", "nonnegative", "LogFactor", "LogMarginal"]
