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

from .canonical import (
    CONSTANT,
    Canonicalizer,
    ComponentSum,
    LinearForm,
    LogExpectation,
    LogFactor,
    LogMarginal,
    LogMeanExp,
    MeasureFactor,
)
from .display import display_density, display_form
from .expressions import KL, Entropy, Expectation, MutualInformation, TotalCorrelation
from .model import Model, rest_components
from .numeric import to_range


@dataclass
class Candidate:
    """A non-negative quantity (its expression for display) and its canonical form."""

    text: str
    latex: str
    form: LinearForm


def _units(model: Model, atoms: frozenset) -> list[frozenset]:
    """Split a set of atomic variables into declared groups (whole vectors) and loose components (in a generic model
    the generic component ``z_[j]``; the other components ``z_[-j]`` are never a unit of their own)."""
    units, seen = [], set()
    for a in sorted(atoms):
        if a in seen:
            continue
        group = model.atom_to_group[a]
        members = frozenset(model.components[group])
        if members <= atoms:
            units.append(members)
            seen |= members
        elif model.generic and a == rest_components(group):
            seen.add(a)
        else:
            units.append(frozenset({a}))
            seen.add(a)
    return units


def _subsets(units: list[frozenset], min_size: int = 0):
    for size in range(min_size, len(units) + 1):
        for combo in itertools.combinations(units, size):
            yield frozenset().union(*combo) if combo else frozenset()


def measure_factors_of(form: LinearForm) -> set[tuple[MeasureFactor, tuple]]:
    """The measure factors of a form's atoms, each with the vectors of the component sum it sits in (``()`` outside
    any)."""
    found: set[tuple[MeasureFactor, tuple]] = set()
    for atom in form.terms:
        if atom == CONSTANT:
            continue
        vectors = ()
        if isinstance(atom, ComponentSum):
            atom, vectors = atom.inner, atom.vectors
        found.update((f, vectors) for f in atom.measure)
        if isinstance(atom, LogExpectation):
            found.update((f, vectors) for f in atom.inner)
    return found


def with_family_joints(found: set, canon: Canonicalizer) -> set:
    """The measure factors, plus for each family the joint over every variable its unconditioned factors integrate:
    an average of a KL or an MI over a joint whose pieces the difference only shows marginalized (``E_{p_D} KL(q(z_1,
    z_2|x) || p(z_1, z_2|x))`` appears as terms under ``q(x, z_1)``, ``q(z_1, z_2)``, ``q(z_2)``)."""
    out = set(found)
    by_family: dict[tuple, set] = {}
    for factor, vectors in found:
        given = factor.given - canon.model.graphs[factor.family].inputs
        by_family.setdefault((factor.family, given, vectors), set()).update(factor.targets)
    for (family, given, vectors), targets in by_family.items():
        joint = canon.make(family, targets, given)
        out.add((MeasureFactor(joint.family, joint.targets, joint.given), vectors))
    return out


def _sort_key(item):
    factor, vectors = item
    return (factor.sort_key(), vectors)


def candidates_for(difference: LinearForm, canon: Canonicalizer) -> list[Candidate]:
    model = canon.model
    allowed = set(difference.terms)
    out: list[Candidate] = []
    seen_forms: set = set()

    def consider(text: str, latex: str, form: LinearForm, vectors: tuple = ()) -> None:
        if vectors:  # a candidate inside a component sum: the sum over j of non-negative terms
            form = canon.component_sum(vectors, form)
            text, latex = f"sum_j {text}", rf"\sum_j {latex}"
        for atom in form.terms:
            inner = atom.inner if isinstance(atom, ComponentSum) else atom
            if atom not in allowed and not (inner != CONSTANT and not inner.measure
                                            and not isinstance(inner, (LogExpectation, LogMeanExp))):
                return
        key = form.key()
        if not form.terms or key in seen_forms:
            return
        seen_forms.add(key)
        out.append(Candidate(text, latex, form))

    free = frozenset().union(*[canon.dependencies(a) for a in difference.terms if a != CONSTANT]) if difference.terms else frozenset()
    # mutual informations first, so that a term that is an MI is named as one
    factors = sorted(with_family_joints(measure_factors_of(difference), canon), key=_sort_key)
    for factor, vectors in factors:
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
                    consider(sympy.sstr(expr), sympy.latex(expr), form, vectors)
    for factor, vectors in factors:
        graph = canon.model.graphs[factor.family]
        target_units = _units(model, factor.targets)
        components = [frozenset({a}) for a in sorted(factor.targets) if len(model.components[model.atom_to_group[a]]) > 1
                      and not (model.generic and a == rest_components(model.atom_to_group[a]))]
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
                        consider(sympy.sstr(kl_expr), sympy.latex(kl_expr), form, vectors)
                # the entropy of discrete variables is non-negative (not so for densities)
                if targets <= model.discrete_atoms:
                    r = canon.make(factor.family, targets, outer | factor.given)
                    form = canon.with_measure(-canon.log_density(r), [MeasureFactor(r.family, r.targets, r.given)])
                    expr = Entropy(display_density(model, r))
                    if outer:
                        outer_r = canon.make(factor.family, outer, factor.given)
                        form = canon.with_measure(form, [MeasureFactor(outer_r.family, outer_r.targets, outer_r.given)])
                        expr = Expectation(display_density(model, outer_r), expr)
                    consider(sympy.sstr(expr) + " (discrete)", sympy.latex(expr), form, vectors)
                # total correlation of a vector-valued target set
                if len(targets) > 1 and len(target_units) >= 1 and targets in target_units:
                    first = canon.make(factor.family, targets, outer | factor.given)
                    form = canon.tc_form(first)
                    expr = TotalCorrelation(display_density(model, first))
                    if outer:
                        outer_r = canon.make(factor.family, outer, factor.given)
                        form = canon.with_measure(form, [MeasureFactor(outer_r.family, outer_r.targets, outer_r.given)])
                        expr = Expectation(display_density(model, outer_r), expr)
                    consider(sympy.sstr(expr), sympy.latex(expr), form, vectors)
    for atom in difference.terms:
        if isinstance(atom, LogExpectation):
            integrand = LinearForm(dict(atom.integrand))
            inner_expectation = canon.with_measure(integrand, list(atom.inner))
            gap = LinearForm.atom(atom) - canon.with_measure(inner_expectation, list(atom.measure))
            text = "Jensen gap of " + display_form(model, LinearForm.atom(atom))
            consider(text, r"\text{Jensen gap of } " + display_form(model, LinearForm.atom(atom), latex=True), gap)
            for power_mean in _power_mean_gaps(atom, canon):
                consider(*power_mean)
    for atom in difference.terms:
        if isinstance(atom, LogMarginal):
            for candidate in _marginal_jensen_gaps(atom, canon):
                consider(*candidate)
    mean_exps = [a for a in difference.terms if isinstance(a, LogMeanExp)]
    for atom in mean_exps:
        for candidate in _importance_weighted_gaps(atom, canon, mean_exps):
            consider(*candidate)
    return out


def _marginal_jensen_gaps(atom: LogMarginal, canon: Canonicalizer) -> list:
    """Jensen for a marginal: ``log F(A) = log E_{F(B)}[F(A|B)] >= E_{F(B)}[log F(A|B)]`` for any other variables B
    of the family (the marginal of B, independent of A under the outer measure), under any outer measure: e.g.
    ``log q(z) >= E_{p_D(x)}[log q(z|x)]``, which makes KL convex in its second argument."""
    model = canon.model
    graph = model.graphs[atom.family]
    rest = graph.variables - atom.nodes - graph.inputs
    out = []
    shown = display_form(model, LinearForm.atom(atom))
    for others in _subsets(_units(model, frozenset(rest)), 1):
        if len(_units(model, others)) > 2:
            continue
        conditional = canon.make(atom.family, atom.nodes, others)
        marginal = canon.make(atom.family, others, ())
        inner = canon.with_measure(canon.log_density(conditional),
                                   [MeasureFactor(marginal.family, marginal.targets, marginal.given)])
        gap = LinearForm.atom(atom) - canon.with_measure(inner, list(atom.measure))
        text = f"Jensen gap of {shown} = log E_{{{sympy.sstr(display_density(model, marginal))}}}[...]"
        out.append((text, text, gap))
    return out


def _importance_weighted_gaps(atom: LogMeanExp, canon: Canonicalizer, others: list) -> list:
    """The inequalities of the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016), as candidates:
    ``log E_q[exp g] - E[log (1/K) sum_k exp g(z_k)] >= 0`` (Jensen: log is concave; the first term is often
    ``log p(x)`` by the importance-sampling identity), ``E[log (1/K) sum_k exp g(z_k)] - E_q[g] >= 0`` (the log of a
    mean is at least the mean of the logs) and, for another number of samples ``K' <= K``, ``L_K - L_K' >= 0``
    (Theorem 1: the bound does not decrease with K)."""
    model = canon.model
    shown = display_form(model, LinearForm.atom(atom))
    own = LinearForm.atom(atom)
    integrand = LinearForm(dict(atom.integrand))
    upper = canon.with_measure(canon.log_expectation_form(list(atom.base), integrand), list(atom.measure))
    lower = canon.with_measure(canon.with_measure(integrand, list(atom.base)), list(atom.measure))
    out = [(f"Jensen gap (log of a mean of weights) of {shown}", f"\\text{{Jensen gap of }} {shown}", upper - own),
           (f"log-mean gap of {shown}", f"\\text{{log-mean gap of }} {shown}", own - lower)]
    for other in others:
        if other is atom or (other.base, other.integrand, other.measure) != (atom.base, atom.integrand, atom.measure):
            continue
        if nonnegative(sympy.sympify(atom.samples) - sympy.sympify(other.samples), model):
            text = (f"monotonicity in the number of samples ({sympy.sstr(atom.samples)} >= "
                    f"{sympy.sstr(other.samples)}) of {shown}")
            out.append((text, text, own - LinearForm.atom(other)))
    return out


def _power_mean_gaps(atom: LogExpectation, canon: Canonicalizer) -> list[tuple[str, str, LinearForm]]:
    """Jensen for a power: with the integrand ``s * g``, ``log E[exp(s g)] <= s log E[exp(g)]`` when ``0 <= s <= 1``
    (``t -> t^s`` is concave) and ``>=`` when ``s >= 1`` or ``s <= 0`` (convex), ``exp(g)`` being a non-negative
    ratio of densities. For each way of writing the integrand as ``s * g`` with rational coefficients in ``g`` (up to
    sign), returns the non-negative side as a candidate when the declared ranges put ``s`` on one side for every
    value. (Li & Turner 2016, Renyi divergence variational inference: ``L_alpha`` is non-increasing in alpha.)"""
    model = canon.model
    integrand = dict(atom.integrand)
    scales = [sympy.sympify(c) for a, c in integrand.items() if a != CONSTANT]
    if not scales or CONSTANT in integrand:
        return []
    out = []
    shown = display_form(model, LinearForm.atom(atom))
    power = canon.with_measure(LinearForm.atom(LogExpectation(atom.inner, atom.integrand)), list(atom.measure))
    for s in (scales[0], -scales[0]):
        if s in (0, 1):
            continue
        base = {a: sympy.cancel(sympy.together(c / s)) for a, c in integrand.items()}
        if any(not c.is_Rational for c in base.values()):
            continue
        inner = canon.log_expectation_form(list(atom.inner), LinearForm(base))
        base_form = canon.with_measure(inner, list(atom.measure)).scale(s)
        if nonnegative(s, model) and nonnegative(1 - s, model):
            text = f"power-mean gap ({sympy.sstr(s)} in [0, 1]) of {shown}"
            out.append((text, text, base_form - power))
        elif nonnegative(s - 1, model) or nonnegative(-s, model):
            text = f"power-mean gap ({sympy.sstr(s)} outside (0, 1)) of {shown}"
            out.append((text, text, power - base_form))
    return out


def _names(model: Model, atoms: frozenset) -> list[str]:
    names = []
    for unit in _units(model, atoms):
        group = model.atom_to_group[min(unit)]
        names.append(group if len(unit) > 1 or len(model.components[group]) == 1 else min(unit).replace("_[j]", "_j"))
    return names


def _sign_definite(poly_expr, symbols, model: Model) -> str | None:
    """``"nonnegative"``, ``"nonpositive"`` or None: the sign of a polynomial over the declared ranges.

    Each symbol is written through a non-negative offset ``t`` that covers its range: ``s = low + t`` or
    ``s = high - t`` for a one-sided range, ``s = (low + high t) / (1 + t)`` for a two-sided one (the map sends
    ``[0, inf)`` onto ``[low, high)``, and continuity covers ``high``). The numerator of the result is a polynomial in
    the offsets and its denominator a product of positive factors ``(1 + t)^k``; if every coefficient of the numerator
    has the same sign, so has the polynomial on the whole range. A sufficient condition: None means "not shown",
    never a wrong sign.
    """
    expr = sympy.expand(poly_expr)
    if expr.is_number:
        return "nonnegative" if expr >= 0 else "nonpositive"
    substitution, offsets = {}, []
    for s in symbols:
        r = model.coefficient_ranges.get(str(s))
        if r is None:
            return None
        t = sympy.Symbol(f"_{s}_offset", nonnegative=True)
        if r.low is not None and r.high is not None:
            substitution[s] = (sympy.nsimplify(r.low) + sympy.nsimplify(r.high) * t) / (1 + t)
        elif r.low is not None:
            substitution[s] = sympy.nsimplify(r.low) + t
        elif r.high is not None:
            substitution[s] = sympy.nsimplify(r.high) - t
        else:
            return None
        offsets.append(t)
    numerator, denominator = sympy.fraction(sympy.together(expr.subs(substitution)))
    try:
        num_poly = sympy.Poly(sympy.expand(numerator), *offsets)
        den_poly = sympy.Poly(sympy.expand(denominator), *offsets)
    except sympy.PolynomialError:
        return None
    den_coefficients = [sympy.nsimplify(c) for c in den_poly.coeffs()]
    if any(not c.is_number for c in den_coefficients) or not all(c > 0 for c in den_coefficients):
        return None
    coefficients = [sympy.nsimplify(c) for c in num_poly.coeffs()]
    if any(not c.is_number for c in coefficients):
        return None
    if all(c >= 0 for c in coefficients):
        return "nonnegative"
    if all(c <= 0 for c in coefficients):
        return "nonpositive"
    return None


def _never_zero(poly_expr, symbols, model: Model) -> bool:
    """Whether a polynomial is non-zero on the whole declared range (used for denominators)."""
    expr = sympy.expand(poly_expr)
    if expr.is_number:
        return expr != 0
    # strictly positive: non-negative with a positive value at the range's corner and ... keep it simple and sound:
    # a polynomial of degree 1 in one symbol is zero only at its root; check the root is outside the range.
    free = sorted(expr.free_symbols, key=str)
    if len(free) != 1:
        return False
    s = free[0]
    r = model.coefficient_ranges.get(str(s))
    if r is None:
        return False
    try:
        poly = sympy.Poly(expr, s)
    except sympy.PolynomialError:
        return False
    if poly.degree() != 1:
        return False
    root = -poly.coeff_monomial(1) / poly.coeff_monomial(s)
    below = r.low is not None and (root < r.low or (root == r.low and r.low_open))
    above = r.high is not None and (root > r.high or (root == r.high and r.high_open))
    return bool(below or above)


def nonnegative(expr, model: Model) -> bool:
    """Whether a coefficient expression is >= 0 for every value of its symbols in their declared ranges.

    Handles polynomials and quotients of polynomials (``1/(1 - alpha)`` for ``0 < alpha < 1``): the numerator and the
    denominator must each have a definite sign and the denominator must not vanish on the range. Anything else is
    reported as not shown (False): sound, possibly incomplete.
    """
    expr = sympy.sympify(expr)
    if expr.is_number:
        value = sympy.nsimplify(expr)
        return bool(value.is_nonnegative)
    symbols = sorted(expr.free_symbols, key=str)
    if any(str(s) not in model.coefficient_ranges for s in symbols):
        return False
    numerator, denominator = sympy.fraction(sympy.cancel(sympy.together(expr)))
    num_sign = _sign_definite(numerator, symbols, model)
    if num_sign is None:
        return False
    if denominator.is_number:
        den_sign = "nonnegative" if denominator > 0 else "nonpositive"
    else:
        if not _never_zero(denominator, symbols, model):
            return False
        den_sign = _sign_definite(denominator, symbols, model)
        if den_sign is None:
            return False
    return num_sign == den_sign or sympy.expand(numerator) == 0


@dataclass
class Certificate:
    terms: list[tuple[object, Candidate]]  # (coefficient, candidate)
    candidates_tried: int

    def text(self, latex: bool = False) -> str:
        parts = []
        for coefficient, cand in self.terms:
            body = cand.latex if latex else cand.text
            c = sympy.latex(coefficient) if latex else sympy.sstr(coefficient)
            if coefficient == 1:
                parts.append(body)
            elif cand.text == "1":  # the constant slack: its coefficient alone
                parts.append(c)
            else:
                parts.append(f"({c}) {body}" if not latex else rf"\left({c}\right) {body}")
        return " + ".join(parts) if parts else "0"


def _exact_matrix(atoms: list, candidates: list[Candidate]) -> list[list]:
    """The candidates' canonical forms as exact columns (SymPy coefficients; one column per candidate, then the
    non-negative constant slack)."""
    index = {a: i for i, a in enumerate(atoms)}
    matrix = [[sympy.Integer(0)] * (len(candidates) + 1) for _ in atoms]
    for j, cand in enumerate(candidates):
        for atom, c in cand.form.terms.items():
            matrix[index[atom]][j] = sympy.sympify(c)
    if CONSTANT in index:
        matrix[index[CONSTANT]][len(candidates)] = sympy.Integer(1)
    return matrix


def _numeric(matrix: list[list], values: dict) -> np.ndarray:
    return np.array([[float(sympy.sympify(c).subs(values)) for c in row] for row in matrix], dtype=float)


def find_certificate(difference: LinearForm, canon: Canonicalizer, seed: int = 0) -> Certificate | tuple[None, int]:
    """A non-negative combination of candidates equal to ``difference``, or ``(None, number_tried)``.

    The linear program only proposes a support (which candidates to use); the coefficients are then solved exactly
    with SymPy, the identity is checked exactly, and each coefficient is shown non-negative over the declared ranges.
    Nothing numeric is trusted: a rounding error can lose a certificate, never create one.
    """
    candidates = candidates_for(difference, canon)
    atoms = list(difference.terms)
    for cand in candidates:
        for atom in cand.form.terms:
            if atom not in atoms:
                atoms.append(atom)
    model = canon.model
    exact = _exact_matrix(atoms, candidates)
    symbols = sorted(set().union(*[sympy.sympify(c).free_symbols for c in difference.terms.values()],
                                 *[sympy.sympify(c).free_symbols for row in exact for c in row]), key=str)
    if any(str(s) not in model.coefficient_ranges for s in symbols):
        return None, len(candidates)
    if not any(sympy.sympify(c).free_symbols for row in exact for c in row):
        columns = _numeric(exact, {})
        affine = _affine_certificate(difference, atoms, exact, columns, candidates, model, symbols)
        if affine is not None:
            affine.candidates_tried = len(candidates)
            return affine
    rng = np.random.default_rng(seed)
    tried_supports = set()
    # Different vertices of the LP (random costs, random points of the coefficient ranges) give different supports;
    # the first whose exact solution is non-negative over the whole declared range wins.
    for attempt in range(12):
        values = {s: to_range(rng.normal(0.0, 1.5), model.coefficient_ranges[str(s)]) for s in symbols}
        columns = _numeric(exact, values)
        target = np.array([float(sympy.sympify(difference.terms.get(a, 0)).subs(values)) for a in atoms])
        if not np.all(np.isfinite(columns)) or not np.all(np.isfinite(target)):
            continue
        costs = np.ones(columns.shape[1]) if attempt == 0 else rng.uniform(0.2, 2.0, size=columns.shape[1])
        result = linprog(costs, A_eq=columns, b_eq=target, bounds=(0, None), method="highs")
        if not result.success:
            continue
        support = tuple(j for j in range(columns.shape[1]) if result.x[j] > 1e-9)
        if support in tried_supports:
            continue
        tried_supports.add(support)
        certificate = _exact(difference, atoms, exact, support, candidates, model)
        if certificate is not None:
            certificate.candidates_tried = len(candidates)
            return certificate
    return None, len(candidates)


def _nonnegative_solution(exact, columns: np.ndarray, vector: list) -> dict | None:
    """An exact non-negative solution ``c`` of ``exact @ c = vector`` (rational entries), or None: the LP proposes
    the support, SymPy solves it exactly."""
    target = np.array([float(v) for v in vector])
    if np.allclose(target, 0.0) and all(v == 0 for v in vector):
        return {}
    result = linprog(np.ones(columns.shape[1]), A_eq=columns, b_eq=target, bounds=(0, None), method="highs")
    if not result.success:
        return None
    support = [j for j in range(columns.shape[1]) if result.x[j] > 1e-9]
    matrix = sympy.Matrix([[exact[i][j] for j in support] for i in range(len(exact))])
    try:
        solution, params = matrix.gauss_jordan_solve(sympy.Matrix(vector))
    except ValueError:
        return None
    if params.shape[0]:
        solution = solution.subs({p: 0 for p in params})
    if any(v < 0 for v in solution):
        return None
    return {j: v for j, v in zip(support, solution) if v != 0}


def _affine_certificate(difference, atoms, exact, columns, candidates, model, symbols) -> Certificate | None:
    """Certificate for a difference affine in coefficient symbols with one-sided ranges, candidates free of them.

    With ``s = low + t`` (or ``high - t``), ``t >= 0``, the difference is ``d0 + sum_k t_k d_k``. Non-negative exact
    solutions ``c0`` of ``K c = d0`` and ``c_k`` of ``K c = d_k`` give ``c0 + sum_k t_k c_k``, non-negative for every
    ``t >= 0``: a certificate valid over the whole declared range (a two-sided range is treated as its lower side,
    which is sound and may miss a certificate). The result is checked again exactly by :func:`_exact_from`.
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
        if not ts:
            components[0].append(sympy.nsimplify(expr))
            continue
        try:
            poly = sympy.Poly(expr, *ts)
        except sympy.PolynomialError:
            return None
        if poly.total_degree() > 1:
            return None
        components[0].append(poly.coeff_monomial(1))
        for k, t in enumerate(ts):
            components[k + 1].append(poly.coeff_monomial(t))
    coefficients: dict[int, object] = {}
    for k, vector in enumerate(components):
        if any(not sympy.sympify(v).is_Rational for v in vector):
            return None
        solution = _nonnegative_solution(exact, columns, vector)
        if solution is None:
            return None
        scale = 1 if k == 0 else offsets[k - 1][1]
        for j, v in solution.items():
            coefficients[j] = coefficients.get(j, 0) + v * scale
    return _exact_from(difference, atoms, exact, coefficients, candidates, model)


def _exact_from(difference, atoms, exact, coefficients, candidates, model) -> Certificate | None:
    """Check ``sum_j c_j column_j == difference`` exactly and every ``c_j >= 0`` over the ranges."""
    for i, atom in enumerate(atoms):
        total = sum((exact[i][j] * c for j, c in coefficients.items()), sympy.Integer(0))
        if sympy.cancel(sympy.together(total - sympy.sympify(difference.terms.get(atom, 0)))) != 0:
            return None
    terms = []
    for j, c in sorted(coefficients.items()):
        c = sympy.factor(sympy.cancel(sympy.together(c)))
        if c == 0:
            continue
        if not nonnegative(c, model):
            return None
        if j == len(candidates):
            terms.append((c, Candidate("1", "1", LinearForm.atom(CONSTANT))))
        else:
            terms.append((c, candidates[j]))
    if not terms:
        return None
    return Certificate(terms, 0)


def _exact(difference, atoms, exact, support, candidates, model) -> Certificate | None:
    """Solve the support's columns exactly for the difference (free parameters at 0), then check the result."""
    if not support:
        return None
    matrix = sympy.Matrix([[exact[i][j] for j in support] for i in range(len(atoms))])
    rhs = sympy.Matrix([sympy.sympify(difference.terms.get(a, 0)) for a in atoms])
    try:
        solution, params = matrix.gauss_jordan_solve(rhs)
    except ValueError:
        return None
    if params.shape[0]:
        solution = solution.subs({p: 0 for p in params})
    return _exact_from(difference, atoms, exact, dict(zip(support, solution)), candidates, model)


__all__ = ["Candidate", "Certificate", "candidates_for", "find_certificate", "nonnegative", "LogFactor", "LogMarginal"]
