"""From a SymPy expression to the oracle's small tree of resolved terms (docs/semantics.md section 5).

The tree has seven kinds of node: :class:`Const` (numbers and coefficient expressions), :class:`Dens` and
:class:`LogDens` (a resolved density and its log), :class:`Sum`, :class:`Prod`, :class:`Power`, :class:`Log`,
:class:`Exp`, and :class:`Expect` (an expectation under a *set* of measure factors). KL, mutual information, total
correlation and entropy are written out here by their definitions:

* ``KL(a || b) = E_a[log a - log b]`` (a and b over the same atoms);
* ``I_F(A; B | C) = E_{F(A,B,C)}[log F(A,B|C) - log F(A|C) - log F(B|C)]``;
* ``TC(F(z | G)) = E_{F(z|G)}[log F(z|G) - sum_j log F(z_j|G)]`` (components of a vector ``z``; for several written
  variables, one group per variable);
* ``H(F(A|B)) = -E_{F(A|B)}[log F(A|B)]``.

``log`` of a product, quotient or power of positive factors is rewritten as the sum of the logs (exact, and far more
accurate in floating point); ``log`` of anything else is kept as :class:`Log` and checked for positivity when
evaluated. Both evaluators (discrete and linear-Gaussian) walk this tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy

from ..expressions import (
    KL,
    Density,
    Entropy,
    Expectation,
    MutualInformation,
    TotalCorrelation,
    measure_densities,
)
from .declaration import Structure, data_point
from .errors import UndefinedTerm, Unsupported
from .terms import Term, resolve_density


class Node:
    """A node of the lowered expression (compared and hashed by identity: nodes are built once per expression and
    structure, and evaluators cache values by node)."""


@dataclass(frozen=True, eq=False)
class Const(Node):
    """A number or an expression in coefficient symbols."""

    expr: sympy.Expr


@dataclass(frozen=True, eq=False)
class Dens(Node):
    term: Term


@dataclass(frozen=True, eq=False)
class LogDens(Node):
    term: Term


@dataclass(frozen=True, eq=False)
class Sum(Node):
    items: tuple


@dataclass(frozen=True, eq=False)
class Prod(Node):
    items: tuple


@dataclass(frozen=True, eq=False)
class Power(Node):
    base: Node
    exponent: Const


@dataclass(frozen=True, eq=False)
class Log(Node):
    arg: Node
    text: str


@dataclass(frozen=True, eq=False)
class Exp(Node):
    arg: Node


@dataclass(frozen=True, eq=False)
class Expect(Node):
    """``E_M[body]`` with ``M`` the product of the measure terms (a set: sorted by text)."""

    measure: tuple
    body: Node
    text: str


_STRUCTURED = (Density, Expectation, KL, MutualInformation, TotalCorrelation, Entropy)


def lower_step(structure: Structure, *expressions) -> tuple[Node, ...]:
    """Lower the sides of one step together: two data points ``x^{(i)}``, ``x^{(j)}`` of one variable are an error
    (the model declares one ``x``)."""
    indices: dict[str, set[str]] = {}
    names_cache = structure.cache.setdefault("written", {})
    for expr in expressions:
        expr = sympy.sympify(expr)
        if expr not in names_cache:
            names_cache[expr] = _written_variables(expr)
        for name in names_cache[expr]:
            base, index = data_point(name)
            if index is not None:
                indices.setdefault(base, set()).add(index)
    for base, seen in indices.items():
        if len(seen) > 1:
            shown = " and ".join(f"{base}^{{({i})}}" for i in sorted(seen))
            raise UndefinedTerm(shown, f"two data points of the one variable {base}; the model declares one {base}")
    return tuple(lower(structure, sympy.sympify(e)) for e in expressions)


def _written_variables(expr: sympy.Expr) -> list[str]:
    names = []
    for d in expr.atoms(Density):
        names += [str(v) for v in d.targets + d.given]
    for m in expr.atoms(MutualInformation):
        names += [str(v) for v in m.first + m.second + m.given]
    return names


def lower(structure: Structure, expr: sympy.Expr) -> Node:
    """The tree of one expression (cached per structure)."""
    cache = structure.cache.setdefault("lowered", {})
    if expr not in cache:
        cache[expr] = _Lowering(structure).node(expr)
    return cache[expr]


class _Lowering:
    def __init__(self, structure: Structure):
        self.structure = structure

    # ---- constants ---------------------------------------------------------------------------------------------
    def constant(self, expr: sympy.Expr) -> bool:
        if isinstance(expr, _STRUCTURED):
            return False
        if isinstance(expr, sympy.Symbol):
            self.coefficient(expr)
            return True
        if expr.is_Number or isinstance(expr, sympy.NumberSymbol):
            return True
        if isinstance(expr, (sympy.Add, sympy.Mul, sympy.Pow, sympy.log, sympy.exp)):
            return all(self.constant(a) for a in expr.args)
        return False

    def coefficient(self, symbol: sympy.Symbol) -> None:
        name = str(symbol)
        if name in self.structure.coefficients:
            return
        if name in self.structure.variables:
            raise UndefinedTerm(name, "a variable used as a number; variables appear only inside densities")
        declared = ", ".join(self.structure.coefficients) or "none"
        raise UndefinedTerm(name, f"undeclared coefficient (declared coefficients: {declared}); declare its range")

    # ---- expressions ---------------------------------------------------------------------------------------------
    def node(self, expr: sympy.Expr) -> Node:
        if self.constant(expr):
            return Const(expr)
        if isinstance(expr, Density):
            return Dens(resolve_density(self.structure, expr))
        if isinstance(expr, Expectation):
            return self.expectation(expr)
        if isinstance(expr, KL):
            return self.kl(expr)
        if isinstance(expr, Entropy):
            term = resolve_density(self.structure, expr.of)
            return Prod((Const(sympy.Integer(-1)), Expect((term,), LogDens(term), str(expr))))
        if isinstance(expr, MutualInformation):
            return self.mutual_information(expr)
        if isinstance(expr, TotalCorrelation):
            return self.total_correlation(expr)
        if isinstance(expr, sympy.log):
            return self.log(expr.args[0], str(expr))
        if isinstance(expr, sympy.exp):
            return Exp(self.node(expr.args[0]))
        if isinstance(expr, sympy.Add):
            consts = [a for a in expr.args if self.constant(a)]
            rest = [self.node(a) for a in expr.args if not self.constant(a)]
            return Sum(tuple(([Const(sympy.Add(*consts))] if consts else []) + rest))
        if isinstance(expr, sympy.Mul):
            consts = [a for a in expr.args if self.constant(a)]
            rest = [self.node(a) for a in expr.args if not self.constant(a)]
            return Prod(tuple(([Const(sympy.Mul(*consts))] if consts else []) + rest))
        if isinstance(expr, sympy.Pow):
            return Power(self.node(expr.base), self.exponent(expr))
        raise Unsupported(f"{expr}: not a term of docs/semantics.md section 5 (densities, expectations, KL, I, TC, "
                          "H, log, powers, numbers and coefficients)")

    def exponent(self, power: sympy.Pow) -> Const:
        if not self.constant(power.exp):
            raise Unsupported(f"{power}: the exponent {power.exp} is not a number or an expression in coefficients")
        return Const(power.exp)

    def log(self, arg: sympy.Expr, text: str) -> Node:
        if isinstance(arg, Density):
            return LogDens(resolve_density(self.structure, arg))
        if isinstance(arg, sympy.exp):
            return self.node(arg.args[0])
        if isinstance(arg, sympy.Pow) and _positive(arg.base):
            return Prod((self.exponent(arg), self.log(arg.base, text)))
        if isinstance(arg, sympy.Mul):
            consts = [a for a in arg.args if self.constant(a)]
            rest = [a for a in arg.args if not self.constant(a)]
            if all(_positive(a) for a in rest):
                items = [self.log(a, text) for a in rest]
                if consts:
                    items.insert(0, Log(Const(sympy.Mul(*consts)), text))
                return Sum(tuple(items))
        return Log(self.node(arg), text)

    def expectation(self, expr: Expectation) -> Node:
        text = str(expr)
        measure = tuple(resolve_density(self.structure, d) for d in measure_densities(expr.measure))
        check_measure(measure, text)
        return Expect(tuple(sorted(measure, key=lambda t: t.text)), self.node(expr.body), text)

    def kl(self, expr: KL) -> Node:
        a = resolve_density(self.structure, expr.first)
        b = resolve_density(self.structure, expr.second)
        if set(a.targets) != set(b.targets):
            raise UndefinedTerm(str(expr), f"the two densities are over different variables ({', '.join(a.targets)} "
                                           f"and {', '.join(b.targets)})")
        body = Sum((LogDens(a), Prod((Const(sympy.Integer(-1)), LogDens(b)))))
        return Expect((a,), body, str(expr))

    def mutual_information(self, expr: MutualInformation) -> Node:
        text = str(expr)
        family = expr.family
        letter, subscript = (family.split("_", 1) + [None])[:2] if family not in ("p_D",) else (family, None)
        subscript = () if subscript is None else (subscript,)
        groups = [list(map(str, part)) for part in (expr.first, expr.second, expr.given)]
        atoms = [set(a for n in names for a in self.structure.atoms_of(n, text)) for names in groups]
        if not atoms[0] or not atoms[1]:
            raise UndefinedTerm(text, "both sides of a mutual information need a variable")
        if atoms[0] & atoms[1] or atoms[0] & atoms[2] or atoms[1] & atoms[2]:
            raise UndefinedTerm(text, "the variable sets of a mutual information must be disjoint")
        a, b, c = groups

        def term(targets, given):
            return resolve_density(self.structure, Density(letter, targets, given, subscript))

        joint = term(a + b + c, [])
        body = Sum((LogDens(term(a + b, c)), Prod((Const(sympy.Integer(-1)), LogDens(term(a, c)))),
                    Prod((Const(sympy.Integer(-1)), LogDens(term(b, c))))))
        return Expect((joint,), body, text)

    def total_correlation(self, expr: TotalCorrelation) -> Node:
        d = expr.of
        text = str(expr)
        whole = resolve_density(self.structure, d)
        if len(d.targets) == 1:
            groups = [[a] for a in self.structure.atoms_of(str(d.targets[0]), text)]
        else:
            groups = [[str(t)] for t in d.targets]
        parts = [LogDens(resolve_density(self.structure, Density(d.family, g, list(d.given), d.subscript)))
                 for g in groups]
        body = Sum((LogDens(whole),) + tuple(Prod((Const(sympy.Integer(-1)), p)) for p in parts))
        return Expect((whole,), body, text)


def check_measure(measure: tuple[Term, ...], text: str) -> None:
    """A product measure must be a distribution: no variable integrated twice, no cycle of conditioning."""
    seen: dict[str, str] = {}
    for t in measure:
        for a in t.targets:
            if a in seen:
                raise UndefinedTerm(text, f"the measure integrates {a} twice ({seen[a]} and {t.text})")
            seen[a] = t.text
    producer = {a: i for i, t in enumerate(measure) for a in t.targets}
    state: dict[int, int] = {}

    def visit(i: int) -> None:
        if state.get(i) == 2:
            return
        if state.get(i) == 1:
            raise UndefinedTerm(text, "the measure's factors condition on each other in a cycle: not a distribution")
        state[i] = 1
        for g in measure[i].given:
            if g in producer:
                visit(producer[g])
        state[i] = 2

    for i in range(len(measure)):
        visit(i)


def measure_order(measure: tuple[Term, ...]) -> list[Term]:
    """The measure factors innermost first: a factor comes before every factor whose targets it conditions on."""
    remaining = list(measure)
    order = []
    while remaining:
        for t in remaining:
            if not any(set(t.targets) & set(o.given) for o in remaining if o is not t):
                order.append(t)
                remaining.remove(t)
                break
        else:  # pragma: no cover - check_measure rejects cycles
            raise UndefinedTerm(" ".join(t.text for t in measure), "cyclic measure")
    return order


def _positive(expr: sympy.Expr) -> bool:
    """Whether an expression is positive by its form (densities, expectations of positive bodies, powers and
    products of them, exponentials, positive numbers)."""
    if isinstance(expr, Density):
        return True
    if isinstance(expr, Expectation):
        return _positive(expr.body)
    if isinstance(expr, sympy.Pow):
        return _positive(expr.base)
    if isinstance(expr, sympy.Mul):
        return all(_positive(a) for a in expr.args)
    if isinstance(expr, sympy.exp):
        return bool(expr.args[0].is_real) or not expr.args[0].atoms(sympy.I)
    if expr.is_Number or isinstance(expr, sympy.NumberSymbol):
        return bool(expr > 0)
    return False


@lru_cache(maxsize=1 << 16)
def free_atoms(node: Node) -> frozenset[str]:
    """The atoms a node depends on (not integrated)."""
    if isinstance(node, Const):
        return frozenset()
    if isinstance(node, (Dens, LogDens)):
        return node.term.atoms
    if isinstance(node, (Sum, Prod)):
        return frozenset().union(*(free_atoms(i) for i in node.items))
    if isinstance(node, Power):
        return free_atoms(node.base)
    if isinstance(node, (Log, Exp)):
        return free_atoms(node.arg)
    if isinstance(node, Expect):
        inside = free_atoms(node.body).union(*(t.atoms for t in node.measure))
        return inside - frozenset(a for t in node.measure for a in t.targets)
    raise TypeError(node)  # pragma: no cover
