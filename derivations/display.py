"""Rendering canonical objects back into readable notation (for certificates and "equal up to a constant" reports)."""

from __future__ import annotations

import sympy

from .canonical import CONSTANT, ComponentSum, LinearForm, LogExpectation, LogFactor, LogMarginal, LogMeanExp, MeasureFactor
from .expressions import Density
from .model import Model, Resolved


def _group_names(model: Model, atoms) -> list[str]:
    atoms = set(atoms)
    names = []
    for group, members in model.components.items():
        if set(members) <= atoms:
            names.append(group)
            atoms -= set(members)
    names.extend(a.replace("_[j]", "_j") for a in model.atoms if a in atoms)
    return names


def display_density(model: Model, r: Resolved | MeasureFactor) -> Density:
    """The density a resolved term stands for, with vector groups written as one variable."""
    if r.family in model.auxiliary_blocks:
        block = model.auxiliary_blocks[r.family]
        family, _, rest = block.label.partition("(")
        name, _, subscript = family.partition("_")
        # an auxiliary density is conditioned on what it declares (its conditioning variables are its inputs)
        given = set(r.given) | set(block.given)
        return Density(name, _group_names(model, r.targets), _group_names(model, given), (subscript,) if subscript else ())
    family, _, version = r.family.partition("@")
    if family == "q" and not version and (set(r.targets) | set(r.given)) <= model.observed_atoms:
        family = "p_D"
    given = set(r.given)
    if family == "p":  # show the inputs this density actually depends on (p densities condition on them implicitly)
        graph = model.p_graph
        given |= {i for i in graph.inputs
                  if not graph.d_separated(r.targets, {i}, set(r.given), condition_on_inputs=False)}
    return Density(family, _group_names(model, r.targets), _group_names(model, given), (version,) if version else ())


def _measure_text(model: Model, measure, latex: bool) -> str:
    densities = [display_density(model, f) for f in measure]
    if latex:
        return " ".join(sympy.latex(d) for d in densities)
    return " ".join(sympy.sstr(d) for d in densities)


def display_atom(model: Model, atom, latex: bool = False) -> str:
    if atom == CONSTANT:
        return "1"
    if isinstance(atom, ComponentSum):
        inner = display_atom(model, atom.inner, latex)
        return rf"\sum_{{j}} {inner}" if latex else f"sum_j {inner}"
    if isinstance(atom, LogFactor):
        graph = model.graphs[atom.family]
        base, _, version = atom.family.partition("@")
        d = display_density(model, Resolved(atom.family, frozenset(atom.block.targets),
                                            frozenset(atom.block.given) - (graph.inputs if base != "p" else frozenset())))
        if base == "p":
            d = Density("p", _group_names(model, atom.block.targets), _group_names(model, atom.block.given),
                        (version,) if version else ())
        inner = (r"\log " + sympy.latex(d)) if latex else f"log {sympy.sstr(d)}"
    elif isinstance(atom, LogMarginal):
        d = display_density(model, Resolved(atom.family, atom.nodes, frozenset()))
        inner = (r"\log " + sympy.latex(d)) if latex else f"log {sympy.sstr(d)}"
    elif isinstance(atom, LogMeanExp):
        integrand = display_form(model, LinearForm(dict(atom.integrand)), latex)
        measure = _measure_text(model, atom.base, latex)
        K = sympy.latex(atom.samples) if latex else sympy.sstr(atom.samples)
        inner = (rf"\mathbb{{E}}_{{{measure}^{{\otimes {K}}}}}\left[\log \frac{{1}}{{{K}}}\sum_k \exp\left({integrand}\right)_k\right]"
                 if latex else f"E_{{{K} samples of {measure}}}[log (1/{K}) sum_k exp({integrand})_k]")
    else:
        integrand = display_form(model, LinearForm(dict(atom.integrand)), latex)
        measure = _measure_text(model, atom.inner, latex)
        inner = (rf"\log \mathbb{{E}}_{{{measure}}}\left[\exp\left({integrand}\right)\right]" if latex
                 else f"log E_{{{measure}}}[exp({integrand})]")
    if atom.measure:
        measure = _measure_text(model, atom.measure, latex)
        return rf"\mathbb{{E}}_{{{measure}}}\left[{inner}\right]" if latex else f"E_{{{measure}}}[{inner}]"
    return inner


def display_form(model: Model, form: LinearForm, latex: bool = False) -> str:
    """A linear form as a signed sum of its atoms."""
    if not form.terms:
        return "0"
    parts = []
    for atom, c in sorted(form.terms.items(), key=lambda item: display_atom(model, item[0])):
        body = display_atom(model, atom, latex)
        c = sympy.sympify(c)
        if atom == CONSTANT:
            parts.append(sympy.latex(c) if latex else sympy.sstr(c))
        elif c == 1:
            parts.append(body)
        elif c == -1:
            parts.append("-" + body)
        else:
            coefficient = sympy.latex(c) if latex else sympy.sstr(c)
            parts.append(f"({coefficient}) {body}")
    text = " + ".join(parts)
    return text.replace("+ -", "- ")
