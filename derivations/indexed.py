"""Sums and products over the components of vector variables (``sum_j KL(q(z_j) || p(z_j))``): which vectors an
index runs over, renaming an index, and writing a sum out for numeric vector sizes."""

from __future__ import annotations

import re
from typing import Mapping

import sympy
from sympy import Symbol

from .expressions import Density, IndexedProduct, IndexedSum, MutualInformation


def variable_names(expr) -> set[str]:
    """Every variable name used in the densities and mutual informations of ``expr``."""
    names: set[str] = set()
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, Density):
            names.update(str(v) for v in node.targets + node.given)
        elif isinstance(node, MutualInformation):
            names.update(str(v) for v in node.first + node.second + node.given)
    return names


def indexed_vectors(body, index: str, vectors) -> list[str]:
    """The declared vectors whose components ``v_index`` the body names (``z`` for ``z_j`` with index ``j``)."""
    found = []
    for name in variable_names(body):
        m = re.fullmatch(r"(?P<vector>\w+?)_" + re.escape(index), name)
        if m and m.group("vector") in vectors:
            found.append(m.group("vector"))
    return sorted(set(found))


def rename_index(body, index: str, vectors, replacement) -> sympy.Expr:
    """The body with every component ``v_index`` of the given vectors renamed by ``replacement(v)``."""
    mapping = {Symbol(f"{v}_{index}"): Symbol(replacement(v)) for v in vectors}
    return body.xreplace(mapping)


def expand_indexed(expr, sizes: Mapping[str, int], padded: Mapping[str, int] | None = None) -> sympy.Expr:
    """``expr`` with every indexed sum and product written out over numeric vector sizes:
    ``sum_j KL(q(z_j) || p(z_j))`` is ``KL(q(z_1) || p(z_1)) + ... + KL(q(z_J) || p(z_J))``.

    ``padded`` maps a vector to its true size J when its numeric model has three components, the third standing for
    the J - 2 others, all alike (constant components in a numeric instance): its term counts J - 2 times."""
    padded = dict(padded or {})
    expr = sympy.sympify(expr)
    if not expr.has(IndexedSum, IndexedProduct):
        return expr

    def write_out(node):
        if isinstance(node, (IndexedSum, IndexedProduct)):
            index = str(node.index)
            body = write_out(node.body)
            vectors = indexed_vectors(body, index, sizes)
            if not vectors:  # a sum over something else (importance samples): left as it is
                return node.func(node.index, body)
            counts = {int(sizes[v]) for v in vectors}
            if len(counts) != 1:
                raise ValueError(f"{node}: the index {index} runs over vectors of different sizes")
            terms = [rename_index(body, index, vectors, lambda v, k=k: f"{v}_{k}") for k in range(1, counts.pop() + 1)]
            true_sizes = {padded[v] for v in vectors if v in padded}
            if true_sizes:
                repeat = sympy.Integer(true_sizes.pop() - 2)
                last = terms[-1]
                terms[-1] = sympy.Mul(repeat, last, evaluate=False) if isinstance(node, IndexedSum) else \
                    sympy.Pow(last, repeat, evaluate=False)
            if isinstance(node, IndexedSum):
                return sympy.Add(*terms, evaluate=False) if len(terms) > 1 else terms[0]
            return sympy.Mul(*terms, evaluate=False) if len(terms) > 1 else terms[0]
        if not node.args or isinstance(node, (Density, MutualInformation)):
            return node
        args = [write_out(a) for a in node.args]
        if isinstance(node, (sympy.Add, sympy.Mul, sympy.Pow, sympy.log)):
            return node.func(*args, evaluate=False)
        return node.func(*args)

    return write_out(expr)


def free_component_indices(expr, vectors) -> dict[str, set[str]]:
    """Letter indices of vector components used outside any indexed sum (``KL(q(z_j) || p(z_j))`` alone claims the
    relation for every j): index -> vectors."""
    found: dict[str, set[str]] = {}

    def walk(node, bound: frozenset):
        if isinstance(node, (IndexedSum, IndexedProduct)):
            walk(node.body, bound | {str(node.index)})
            return
        if isinstance(node, (Density, MutualInformation)):
            for name in variable_names(node):
                m = re.fullmatch(r"(?P<vector>\w+?)_(?P<index>[A-Za-z])", name)
                if m and m.group("vector") in vectors and m.group("index") not in bound:
                    found.setdefault(m.group("index"), set()).add(m.group("vector"))
            return
        for a in node.args:
            walk(a, bound)

    walk(sympy.sympify(expr), frozenset())
    return found


def particular_components(expr, vectors) -> set[str]:
    """Names of particular components (``z_1``) of declared vectors used in ``expr``."""
    out = set()
    for name in variable_names(expr):
        m = re.fullmatch(r"(?P<vector>\w+?)_(?P<index>\d+)", name)
        if m and m.group("vector") in vectors:
            out.add(name)
    return out


def free_names(expr, vectors=(), samples=()) -> set[str]:
    """The variable names an expression leaves free (not integrated by an expectation, a KL, an MI, an entropy), with
    components of vectors written as the vector (``z_j``, ``z_1`` -> ``z``); copies of importance samples are bound
    by the expectation over them."""
    from .expressions import Entropy, Expectation, KL, TotalCorrelation

    def base(name: str) -> str:
        m = re.fullmatch(r"(?P<v>\w+?)_(?P<i>[A-Za-z]|\d+)", name)
        if m and (m.group("v") in vectors or m.group("v") in samples):
            return m.group("v")
        return name

    def names_of(d) -> tuple[set[str], set[str]]:
        return {base(str(v)) for v in d.targets}, {base(str(v)) for v in d.given}

    def walk(node) -> set[str]:
        if isinstance(node, Density):
            targets, given = names_of(node)
            return targets | given
        if isinstance(node, MutualInformation):
            return set()
        if isinstance(node, KL):
            targets, given = names_of(node.first)
            second = set().union(*names_of(node.second))
            return given | (second - targets)
        if isinstance(node, (TotalCorrelation, Entropy)):
            return names_of(node.of)[1]
        if isinstance(node, Expectation):
            body = walk(node.body)
            if isinstance(node.measure, IndexedProduct):
                targets, given = names_of(node.measure.body)
                return (body - targets) | given
            from .expressions import measure_densities

            bound, free = set(), set()
            for d in measure_densities(node.measure):
                targets, given = names_of(d)
                free |= given - bound
                bound |= targets
            return (body - bound) | (free - bound)
        out: set[str] = set()
        for a in getattr(node, "args", ()):
            if isinstance(a, sympy.Basic):
                out |= walk(a)
        return out

    return walk(sympy.sympify(expr))
