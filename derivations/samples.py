"""Importance samples: ``K`` independent copies ``z_1 .. z_K`` of a latent variable, drawn from the inference model
(IWAE, Burda et al. 2016). A model declares them (``Model(..., samples={"z": "K"})``); an expectation over all of
them is written with a product measure over the copies, ``E(prod_over("k", "q(z_k|x)"), ...)``, and inside it a
density of one copy (``p(x, z_k)``, ``q(z_k|x)``) is the model's density evaluated at that copy.

This module recognizes such expectations and renames a copy to its variable; the canonical forms and the numeric
evaluators give them their meaning.
"""

from __future__ import annotations

import re

import sympy
from sympy import Symbol

from .expressions import Density, Expectation, IndexedProduct, IndexedSum
from .indexed import variable_names


def copy_of(name: str, samples) -> tuple[str, str] | None:
    """``("z", "k")`` for the copy ``z_k`` (``("z", "2")`` for ``z_2``) of a sampled variable ``z``; else None."""
    m = re.fullmatch(r"(?P<variable>\w+?)_(?P<index>[A-Za-z]|\d+)", name)
    if m and m.group("variable") in samples:
        return m.group("variable"), m.group("index")
    return None


def copy_measure(measure, samples) -> tuple[str, str, Density] | None:
    """For ``prod_k q(z_k | x)`` over the copies of a sampled variable: (variable, index, ``q(z | x)``); else None."""
    if not isinstance(measure, IndexedProduct) or not isinstance(measure.body, Density):
        return None
    index = str(measure.index)
    density = measure.body
    copies = [copy_of(str(v), samples) for v in density.targets]
    if len(copies) != 1 or copies[0] is None or copies[0][1] != index:
        return None
    variable = copies[0][0]
    if any(copy_of(str(v), samples) for v in density.given):
        return None
    return variable, index, rename_copies(density, variable)


def rename_copies(expr, variable: str):
    """``expr`` with every copy ``z_k`` / ``z_2`` of ``variable`` written as ``variable`` itself."""
    mapping = {}
    for name in variable_names(expr):
        m = re.fullmatch(re.escape(variable) + r"_([A-Za-z]|\d+)", name)
        if m:
            mapping[Symbol(name)] = Symbol(variable)
    return expr.xreplace(mapping)


def copies_in(expr, samples) -> set[str]:
    """Names of copies of sampled variables used in ``expr``."""
    return {n for n in variable_names(expr) if copy_of(n, samples)}


def check_one_copy_per_density(expr, samples) -> None:
    """A density of two copies (``p(z_1, z_2)``) has no meaning: the copies are independent draws."""
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, Density):
            named = {copy_of(str(v), samples) for v in node.targets + node.given} - {None}
            variables = {v for v, _ in named}
            for v in variables:
                indices = {i for w, i in named if w == v}
                if len(indices) > 1 or Symbol(v) in node.targets + node.given:
                    raise ValueError(f"{node}: a density of two importance samples of {v}; each copy is a separate "
                                     f"draw from the inference model: write one copy per density")


def strip_copy_expectations(expr, samples):
    """``expr`` with every expectation over importance samples replaced by its body and measure written for the
    variable itself (for checking that its densities have a meaning), the sums over copies kept."""
    if isinstance(expr, Expectation):
        found = copy_measure(expr.measure, samples)
        if found is not None:
            variable, _, base = found
            check_one_copy_per_density(expr.body, samples)
            return Expectation(base, rename_copies(expr.body, variable))
    if not expr.args or isinstance(expr, Density):
        return expr
    args = [strip_copy_expectations(a, samples) for a in expr.args]
    if isinstance(expr, (sympy.Add, sympy.Mul, sympy.Pow, sympy.log)):
        return expr.func(*args, evaluate=False)
    return expr.func(*args)


__all__ = ["copy_of", "copy_measure", "rename_copies", "copies_in", "strip_copy_expectations", "IndexedSum"]
