"""Exact numeric evaluation on small discrete instances of a declared model: the refutation half of the checker.

An :class:`Instance` gives every atomic variable a small finite domain and every declared factor a random conditional
probability table (so it respects the declared factorization), every coefficient symbol a value in its declared
range. Any expression is then evaluated exactly by enumeration in float64: a density ``F(A|B)`` is the ratio of two
marginals of its family's joint table, an expectation is a weighted sum. This evaluator works on the expression tree
directly and shares nothing with :mod:`.canonical`, so it is an independent check of every symbolic proof.

Values are arrays with one axis per atomic variable of the model (size 1 where a value does not depend on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy

from .expressions import (
    Density,
    Entropy,
    Expectation,
    IndexedProduct,
    IndexedSum,
    KL,
    MutualInformation,
    TotalCorrelation,
    measure_densities,
)
from .model import Block, Model, ModelError
from .samples import copy_of, copy_measure, rename_copies


@dataclass
class Instance:
    """A concrete discrete model: domain sizes, one table per declared factor, coefficient values."""

    model: Model
    sizes: dict[str, int]
    tables: dict[Block, np.ndarray]  # declared factor -> its table over the block's variables
    coefficients: dict[str, float]
    _joints: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _marginals: dict = field(default_factory=dict, repr=False)

    @property
    def axes(self) -> tuple[str, ...]:
        return self.model.atoms

    def table(self, label: str) -> np.ndarray:
        """The table of the declared factor with this label (``"p_theta(x | z)"``, ``"p_D(x)"``)."""
        for block, table in self.tables.items():
            if block.label.replace(" ", "") == label.replace(" ", ""):
                return table
        raise KeyError(f"no declared factor {label!r}; factors: {', '.join(b.label for b in self.tables)}")

    def shape_for(self, names) -> tuple[int, ...]:
        names = set(names)
        return tuple(self.sizes[a] if a in names else 1 for a in self.axes)

    def joint(self, family: str) -> np.ndarray:
        """The family's joint table over all axes (for ``p``: conditional on the inputs, which keep their axes)."""
        if family not in self._joints:
            graph = self.model.graphs[family]
            table = np.ones(self.shape_for(()))
            for block in graph.blocks:
                table = table * self.tables[block]
            self._joints[family] = table
        return self._joints[family]

    def marginal(self, family: str, nodes: frozenset) -> np.ndarray:
        key = (family, nodes)
        if key not in self._marginals:
            graph = self.model.graphs[family]
            keep = set(nodes) | set(graph.inputs)
            table = self.joint(family)
            sum_axes = tuple(i for i, a in enumerate(self.axes) if a not in keep and table.shape[i] > 1)
            self._marginals[key] = table.sum(axis=sum_axes, keepdims=True) if sum_axes else table
        return self._marginals[key]

    def conditional(self, family: str, targets: frozenset, given: frozenset) -> np.ndarray:
        graph = self.model.graphs[family]
        joint = self.marginal(family, (targets | given) - graph.inputs)
        if not (given - graph.inputs):
            return joint
        return joint / self.marginal(family, given - graph.inputs)

    def describe(self) -> str:
        """The instance as text: domains, coefficient values, and each factor's table."""
        lines = ["domains: " + ", ".join(f"{a} in {{0..{self.sizes[a] - 1}}}" for a in self.axes)]
        if self.coefficients:
            lines.append("coefficients: " + ", ".join(f"{k} = {v:.4g}" for k, v in self.coefficients.items()))
        for block in unique_blocks(self.model):
            lines.append(f"{block.label}:")
            lines.extend("  " + row for row in _table_rows(self, block, self.tables[block]))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """Domains, coefficients, and each factor's table: display rows and the exact probabilities, indexed by
        ``axes`` (the block's conditioning variables, then its targets)."""
        factors = []
        for block in unique_blocks(self.model):
            table = self.tables[block]
            axes = list(block.given) + list(block.targets)
            order = [self.axes.index(a) for a in axes]
            probabilities = np.transpose(table, order + [i for i in range(table.ndim) if i not in order])
            probabilities = probabilities.reshape([self.sizes[a] for a in axes])
            factors.append({"factor": block.label, "rows": _table_rows(self, block, table), "axes": axes,
                            "probabilities": probabilities.tolist()})
        return {"domains": {a: self.sizes[a] for a in self.axes}, "coefficients": dict(self.coefficients), "factors": factors}


def _table_rows(instance: Instance, block: Block, table: np.ndarray) -> list[str]:
    rows = []
    given = list(block.given)
    targets = list(block.targets)
    idx_of = {a: i for i, a in enumerate(instance.axes)}
    squeezed = table
    for assignment in np.ndindex(*[instance.sizes[g] for g in given]) if given else [()]:
        index = [0] * len(instance.axes)
        for g, v in zip(given, assignment):
            index[idx_of[g]] = v
        probs = []
        for t_assign in np.ndindex(*[instance.sizes[t] for t in targets]):
            for t, v in zip(targets, t_assign):
                index[idx_of[t]] = v
            probs.append(float(squeezed[tuple(index[i] if squeezed.shape[i] > 1 else 0 for i in range(len(index)))]))
        cond = (" | " + ", ".join(f"{g}={v}" for g, v in zip(given, assignment))) if given else ""
        rows.append(f"({', '.join(targets)}{cond}): " + " ".join(f"{p:.3f}" for p in probs))
    return rows


# -------------------------------------------------------------------------------------------- random instances


def unique_blocks(model: Model) -> list[Block]:
    """Every declared factor once, in a stable order (a parameter version shares the factors it does not copy)."""
    seen: dict[Block, None] = {}
    for graph in model.graphs.values():
        for block in graph.blocks:
            seen.setdefault(block, None)
    return list(seen)


def _block_table(instance_sizes: dict, axes: tuple, block: Block, logits: np.ndarray) -> np.ndarray:
    """A conditional table over the block's axes, normalized over its targets, from unconstrained logits."""
    shape = tuple(instance_sizes[a] if a in block.variables else 1 for a in axes)
    logits = logits.reshape(shape)
    target_axes = tuple(i for i, a in enumerate(axes) if a in block.targets)
    logits = logits - logits.max(axis=target_axes, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=target_axes, keepdims=True)


@dataclass
class InstanceSpace:
    """The parameterization of all instances of a model with fixed domain sizes: a flat vector of logits (one per
    table entry) and one unconstrained value per coefficient, mapped into its declared range."""

    model: Model
    sizes: dict[str, int]

    def __post_init__(self):
        self.blocks = unique_blocks(self.model)
        self.block_sizes = [int(np.prod([self.sizes[a] for a in block.variables])) for block in self.blocks]
        self.coefficient_names = list(self.model.coefficient_ranges)
        self.dimension = sum(self.block_sizes) + len(self.coefficient_names)

    def slices(self):
        start = 0
        for block, size in zip(self.blocks, self.block_sizes):
            yield block, slice(start, start + size)
            start += size

    def instance(self, vector: np.ndarray) -> Instance:
        tables = {}
        for block, sl in self.slices():
            tables[block] = _block_table(self.sizes, self.model.atoms, block, vector[sl])
        offset = sum(self.block_sizes)
        coefficients = {}
        for k, name in enumerate(self.coefficient_names):
            coefficients[name] = to_range(vector[offset + k], self.model.coefficient_ranges[name])
        return Instance(self.model, dict(self.sizes), tables, coefficients)

    def random_vector(self, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        vector = rng.normal(0.0, scale, size=self.dimension)
        offset = sum(self.block_sizes)
        vector[offset:] = rng.normal(0.0, 1.5, size=len(self.coefficient_names))
        return vector

    def parametric_mask(self) -> np.ndarray:
        """True for the logits of parametric factors (those a '= const' step may change)."""
        mask = np.zeros(self.dimension, dtype=bool)
        for block, sl in self.slices():
            mask[sl] = block.parametric
        return mask


def to_range(u: float, r) -> float:
    """Map an unconstrained real into a declared coefficient range (smoothly, so optimizers can move it)."""
    if r.low is not None and r.high is not None:
        return float(r.low + (r.high - r.low) / (1.0 + np.exp(-u)))
    if r.low is not None:
        return float(r.low + np.log1p(np.exp(u)))
    if r.high is not None:
        return float(r.high - np.log1p(np.exp(u)))
    return float(2.0 * u)


def random_sizes(model: Model, rng: np.random.Generator, max_size: int = 2) -> dict[str, int]:
    return {a: int(rng.integers(2, max_size + 1)) for a in model.atoms}


# ------------------------------------------------------------------------------------------------- evaluation


class Evaluator:
    """Evaluates expressions of a model on an instance, exactly."""

    def __init__(self, model: Model):
        self.model = model
        # inside an expectation over importance samples: variable -> (number of samples, first extra axis)
        self._copies: dict[str, tuple[int, int]] = {}

    def value(self, expr, instance: Instance) -> np.ndarray:
        return np.asarray(self._value(sympy.sympify(expr), instance), dtype=float)

    def _density(self, d: Density, instance: Instance) -> np.ndarray:
        # The written conditioning set, not the reduced one: this evaluator must not rely on the symbolic side's
        # independence reasoning. (p densities are conditioned on the generative inputs implicitly.)
        copies = {str(v): copy_of(str(v), self.model.samples) for v in d.targets + d.given}
        copies = {name: c for name, c in copies.items() if c is not None}
        if copies:  # a density of one importance sample: the variable's density, on that sample's own axis
            (name, (variable, index)), = copies.items()
            if variable not in self._copies or not index.isdigit():
                raise ModelError(f"{d}: an importance sample outside an expectation over the samples")
            table = self._density(rename_copies(d, variable), instance)
            return self._to_copy(table, instance, variable, int(index))
        r = self.model.resolve(d)
        written = self.model._atoms_of(d.given, d) - self.model.graphs[r.family].inputs
        return instance.conditional(r.family, r.targets, written)

    def _padded(self, array, instance: Instance):
        """An array with the extra axes of the importance samples in scope (size 1)."""
        extra = sum(k for k, _ in self._copies.values())
        array = np.asarray(array, dtype=float)
        if array.ndim == 0 or not extra:
            return array
        wanted = len(instance.axes) + extra
        return array.reshape(array.shape + (1,) * (wanted - array.ndim)) if array.ndim < wanted else array

    def _to_copy(self, table, instance: Instance, variable: str, k: int):
        """The variable's axis of ``table`` moved to the extra axis of its k-th importance sample."""
        table = self._padded(table, instance)
        count, first = self._copies[variable]
        if not 1 <= k <= count:
            raise ModelError(f"importance sample {variable}_{k}: there are {count} samples")
        return np.swapaxes(table, instance.axes.index(variable), first + k - 1)

    def _sample_expectation(self, expr: Expectation, instance: Instance):
        """``E_{prod_k q(z_k|x)}[body]``: one extra axis per sample, each sample drawn from ``q(z|x)``; the body is
        evaluated on every combination of samples and weighted by the product of their densities."""
        found = copy_measure(expr.measure, self.model.samples)
        if found is None:
            raise ModelError(f"{expr}: a product measure over an index must run over declared importance samples")
        variable, index, base = found
        count = int(self.model.sample_sizes[variable])
        first = len(instance.axes) + sum(k for k, _ in self._copies.values())
        self._copies[variable] = (count, first)
        try:
            weight = 1.0
            for k in range(1, count + 1):
                weight = weight * self._to_copy(self._density(base, instance), instance, variable, k)
            value = self._padded(self._value(expr.body, instance), instance)
            weight, value = np.broadcast_arrays(weight, value)
            total = (weight * value).sum(axis=tuple(range(first, first + count)))
        finally:
            del self._copies[variable]
        return total

    def _copy_sum(self, expr: IndexedSum, instance: Instance):
        """``sum_k f(z_k)`` over the importance samples in scope: the sum of ``f`` on each sample."""
        index = str(expr.index)
        variables = [v for v in self._copies if sympy.Symbol(f"{v}_{index}") in _names_in(expr.body)]
        if len(variables) != 1:
            raise ModelError(f"{expr}: a sum that does not run over the importance samples in scope")
        variable = variables[0]
        count, _ = self._copies[variable]
        total = 0.0
        for k in range(1, count + 1):
            term = expr.body.xreplace({sympy.Symbol(f"{variable}_{index}"): sympy.Symbol(f"{variable}_{k}")})
            total = total + self._padded(self._value(term, instance), instance)
        return total

    def _sum_out(self, array: np.ndarray, instance: Instance, names) -> np.ndarray:
        axes = tuple(i for i, a in enumerate(instance.axes) if a in names and array.shape[i] > 1)
        return array.sum(axis=axes, keepdims=True) if axes else array

    def _expect(self, weight: np.ndarray, body: np.ndarray, instance: Instance, names) -> np.ndarray:
        weight, body = np.broadcast_arrays(weight, body)
        return self._sum_out(weight * body, instance, names)

    def _value(self, expr, instance: Instance):
        value = self._term(expr, instance)
        return self._padded(value, instance) if self._copies else value

    def _term(self, expr, instance: Instance):
        if isinstance(expr, sympy.Add):
            return sum(self._value(a, instance) for a in expr.args)
        if isinstance(expr, sympy.Mul):
            out = 1.0
            for a in expr.args:
                out = out * self._value(a, instance)
            return out
        if isinstance(expr, sympy.Pow):
            return np.power(self._value(expr.args[0], instance), self._value(expr.args[1], instance))
        if isinstance(expr, sympy.log):
            return np.log(self._value(expr.args[0], instance))
        if isinstance(expr, sympy.Symbol):
            if expr.name not in instance.coefficients:
                raise ModelError(f"coefficient {expr.name} is not declared in model '{self.model.name}'")
            return instance.coefficients[expr.name]
        if expr.is_Number or isinstance(expr, sympy.NumberSymbol):
            return float(expr)
        if isinstance(expr, Density):
            return self._density(expr, instance)
        if isinstance(expr, Expectation) and isinstance(expr.measure, IndexedProduct):
            return self._sample_expectation(expr, instance)
        if isinstance(expr, IndexedSum):
            return self._copy_sum(expr, instance)
        if isinstance(expr, Expectation):
            # nested expectations: E_{a(X) b(Z|X)}[f] = sum_x a(x) sum_z b(z|x) f(x, z)
            body = self._value(expr.body, instance)
            for d in reversed(measure_densities(expr.measure)):
                r = self.model.resolve(d)
                body = self._expect(self._density(d, instance), body, instance, r.targets)
            return body
        if isinstance(expr, KL):
            a, b = self._density(expr.first, instance), self._density(expr.second, instance)
            r = self.model.resolve(expr.first)
            return self._expect(a, np.log(a) - np.log(b), instance, r.targets)
        if isinstance(expr, MutualInformation):
            atoms = self.model._atoms_of
            first, second = atoms(expr.first, expr), atoms(expr.second, expr)
            given = atoms(expr.given, expr)
            fam = expr.family
            joint = instance.marginal(fam, first | second | given)
            log_ratio = (np.log(joint) + np.log(instance.marginal(fam, given)) - np.log(instance.marginal(fam, first | given))
                         - np.log(instance.marginal(fam, second | given)))
            return self._expect(joint, log_ratio, instance, first | second | given)
        if isinstance(expr, TotalCorrelation):
            r = self.model.resolve(expr.of)
            full = self._density(expr.of, instance)
            log_ratio = np.log(full)
            for component in r.targets:
                log_ratio = log_ratio - np.log(instance.conditional(r.family, frozenset({component}), r.given))
            return self._expect(full, log_ratio, instance, r.targets)
        if isinstance(expr, Entropy):
            r = self.model.resolve(expr.of)
            full = self._density(expr.of, instance)
            return -self._expect(full, np.log(full), instance, r.targets)
        raise ModelError(f"{expr}: cannot evaluate this term numerically ({type(expr).__name__})")


def _names_in(expr) -> set:
    out = set()
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, Density):
            out.update(node.targets + node.given)
    return out


def free_axes(array: np.ndarray, instance: Instance) -> list[str]:
    return [a for i, a in enumerate(instance.axes) if np.ndim(array) and array.shape[i] > 1]


def assignment_at(index: tuple, array_shape: tuple, instance: Instance) -> dict[str, int]:
    return {a: int(index[i]) for i, a in enumerate(instance.axes) if array_shape[i] > 1}


Violation = Callable[[Instance], tuple[float, dict]]
