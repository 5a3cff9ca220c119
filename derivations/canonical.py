"""Canonical linear forms: the symbolic half of the checker.

Every supported expression is rewritten into a linear combination of *atoms*, with SymPy coefficients:

* ``E_M[log F(block)]``: the log of one declared factor of a family's joint, under a canonical measure M;
* ``E_M[log F(S)]``: the log of the marginal of a family's joint over a set S of variables that is not a union of
  whole factors (``log p(x)``, the aggregate posterior ``log q(z)``);
* ``E_M[log E_N[exp(f)]]``: a log of an expectation that no identity removes (kept opaque, for Jensen);
* the constant 1.

Each rewrite is an identity of the declared model (log of a product is a sum; Bayes' rule and the chain rule of the
declared joint; marginalization of an expectation; conditional independence read off the factorization by
d-separation; the importance-sampling identity ``E_{q(z|x)}[p(x,z)/q(z|x)] = p(x)``). Two sides whose forms are equal
are therefore equal; the converse need not hold (the checker then falls back to numeric search), so this module can
make the checker incomplete but not unsound. The rules that fired are recorded for the report.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Union

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
from .indexed import expand_indexed, indexed_vectors, rename_index
from .samples import copies_in, copy_measure, rename_copies
from .model import Block, Model, ModelError, Resolved, generic_component, rest_components

# ----------------------------------------------------------------------------------------------------------- atoms


@dataclass(frozen=True, order=True)
class MeasureFactor:
    """One factor ``F(targets | given)`` of a canonical measure (targets bound, given free or bound further out)."""

    family: str
    targets: frozenset
    given: frozenset

    def sort_key(self):
        return (self.family, tuple(sorted(self.targets)), tuple(sorted(self.given)))


Measure = tuple  # tuple[MeasureFactor, ...], outermost first


@dataclass(frozen=True)
class LogFactor:
    family: str
    block: Block
    measure: Measure = ()


@dataclass(frozen=True)
class LogMarginal:
    family: str
    nodes: frozenset
    measure: Measure = ()


@dataclass(frozen=True)
class LogExpectation:
    inner: Measure
    integrand: frozenset  # frozenset of (atom, coefficient) pairs, all measure-free
    measure: Measure = ()


@dataclass(frozen=True)
class ComponentSum:
    """``sum_j A_j``: the sum over the components of the vectors ``vectors`` of an atom ``A_j`` written with their
    generic component ``z_[j]`` (a model in generic form; :meth:`Model.generic_model`)."""

    vectors: tuple
    inner: object

    @property
    def measure(self) -> tuple:
        return ()


@dataclass(frozen=True)
class LogMeanExp:
    """``E_{z_1..z_K ~ base, independent}[log (1/K) sum_k exp(g(z_k))]``: the importance-weighted bound's term (Burda
    et al. 2016), for ``K`` samples from the measure ``base`` (which binds the sampled variable), ``g`` a measure-free
    linear form in the sampled variable (its key), then the outer ``measure``."""

    samples: object  # K: a SymPy integer or symbol
    base: Measure
    integrand: frozenset
    measure: Measure = ()


CONSTANT = "constant"
Atom = Union[LogFactor, LogMarginal, LogExpectation, ComponentSum, LogMeanExp, str]


class UnsupportedExpression(ModelError):
    """An expression outside the supported language (e.g. a log of a sum); the message names it."""


def _is_zero(c) -> bool:
    if c == 0:
        return True
    if isinstance(c, sympy.Expr) and not c.is_Number:
        return _normal(c) == 0
    return False


def _normal(c):
    """A normal form of a coefficient (a rational function of the coefficient symbols): ``1/(1-a) + 1/(a-1)`` is 0."""
    return sympy.cancel(sympy.together(sympy.expand(c)))


class LinearForm:
    """A finite linear combination of atoms with SymPy coefficients."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict | None = None):
        self.terms: dict = {}
        for atom, c in (terms or {}).items():
            if not _is_zero(c):
                self.terms[atom] = sympy.sympify(c)

    @classmethod
    def atom(cls, atom: Atom, coefficient=1) -> "LinearForm":
        return cls({atom: coefficient})

    def __add__(self, other: "LinearForm") -> "LinearForm":
        out = dict(self.terms)
        for atom, c in other.terms.items():
            out[atom] = out.get(atom, 0) + c
        return LinearForm(out)

    def __neg__(self) -> "LinearForm":
        return LinearForm({a: -c for a, c in self.terms.items()})

    def __sub__(self, other: "LinearForm") -> "LinearForm":
        return self + (-other)

    def scale(self, factor) -> "LinearForm":
        return LinearForm({a: c * factor for a, c in self.terms.items()})

    def is_zero(self) -> bool:
        return all(_is_zero(c) for c in self.terms.values())

    def key(self) -> frozenset:
        return frozenset((a, _normal(c)) for a, c in self.terms.items())

    def __eq__(self, other) -> bool:  # exact equality of forms
        return isinstance(other, LinearForm) and (self - other).is_zero()

    def __hash__(self):  # pragma: no cover - forms are not used as keys directly
        return hash(self.key())

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"LinearForm({self.terms})"


# ------------------------------------------------------------------------------------------------- canonicalizer

RULE_LOG_PRODUCT = "log of a product/ratio/power is a sum of logs"
RULE_CHAIN = "chain rule / Bayes' rule of the declared joint"
RULE_CI = "conditional independence read off the model's factorization (d-separation)"
RULE_MARGINALIZE = "marginalization: an expectation only integrates the variables its integrand uses"
RULE_CONSTANT = "the expectation of a term constant in the integrated variables is the term"
RULE_MERGE = "nested expectations merge into the joint (chain rule)"
RULE_IMPORTANCE = "importance-sampling identity: E_q[p/q] integrates to a marginal of p"
RULE_KL = "definition of KL"
RULE_MI = "definition of mutual information"
RULE_TC = "definition of total correlation"
RULE_H = "definition of entropy"
RULE_INDEPENDENT_PARTS = "a marginal of independent parts factorizes"
RULE_COMPONENTS = "a product over the components of a vector is a sum of logs; sums are linear"
RULE_SAMPLES = "importance samples are independent copies: a term of one sample is the term of the variable"


class Canonicalizer:
    """Rewrites expressions of a :class:`Model` into :class:`LinearForm` objects, recording the rules used."""

    def __init__(self, model: Model):
        self.model = model
        self.rules: set[str] = set()
        self._log_cache: dict[Resolved, LinearForm] = {}

    # ------------------------------------------------------------------ resolved densities
    def make(self, family: str, targets: Iterable[str], given: Iterable[str] = ()) -> Resolved:
        graph = self.model.graphs[family]
        targets, given = frozenset(targets), frozenset(given)
        if self.model.base_family(family) == "p":
            given = given | graph.inputs
        reduced = graph.minimal_given(targets, given)
        return Resolved(self.model.normalize_family(family, targets | reduced), targets, reduced)

    def resolve(self, d: Density) -> Resolved:
        r = self.model.resolve(d)
        declared = self.model.graphs[r.family]
        # note when conditioning was reduced by independence (e.g. p(x|z,c) = p(x|z))
        written = self.model._atoms_of(d.given, d) - declared.inputs
        if r.given - declared.inputs != written:
            self.rules.add(RULE_CI)
        return r

    def dependencies(self, atom: Atom) -> frozenset:
        """Free variables an atom depends on."""
        if atom == CONSTANT:
            return frozenset()
        if isinstance(atom, ComponentSum):
            inner = self.dependencies(atom.inner)
            for vector in atom.vectors:  # summed over all components: depends on the whole vector
                if generic_component(vector) in inner:
                    inner = inner | {rest_components(vector)}
            return inner
        if isinstance(atom, LogFactor):
            inner = atom.block.variables
        elif isinstance(atom, LogMarginal):
            graph = self.model.graphs[atom.family]
            inner = atom.nodes | (graph.ancestors(atom.nodes) & graph.inputs)
        elif isinstance(atom, LogMeanExp):
            used = frozenset().union(*[self.dependencies(a) for a, _ in atom.integrand]) if atom.integrand else frozenset()
            inner = (used - _measure_bound(atom.base)) | _measure_free(atom.base)
        else:
            bound = frozenset().union(*[f.targets for f in atom.inner]) if atom.inner else frozenset()
            used = frozenset().union(*[self.dependencies(a) for a, _ in atom.integrand]) if atom.integrand else frozenset()
            inner = (used - bound) | _measure_free(atom.inner)
        return (inner - _measure_bound(atom.measure)) | _measure_free(atom.measure)

    def _core_dependencies(self, atom: Atom) -> frozenset:
        if isinstance(atom, LogFactor):
            return self.dependencies(LogFactor(atom.family, atom.block))
        if isinstance(atom, LogMarginal):
            return self.dependencies(LogMarginal(atom.family, atom.nodes))
        if isinstance(atom, LogExpectation):
            return self.dependencies(LogExpectation(atom.inner, atom.integrand))
        if isinstance(atom, ComponentSum):
            return self.dependencies(atom)
        if isinstance(atom, LogMeanExp):
            return self.dependencies(LogMeanExp(atom.samples, atom.base, atom.integrand))
        return frozenset()

    # ------------------------------------------------------------------ sums over components
    def blocks_form(self, blocks) -> LinearForm:
        """The sum of the logs of declared blocks; the component factors of a template (``prod_j p(z_j)``) in a
        generic model are one sum over components: ``log p(z_[j]) + log p(z_[-j])`` over the whole vector is
        ``sum_j log p(z_j)``."""
        out = LinearForm()
        templates = {b.template for b in blocks if b.template}
        for block in blocks:
            if not (block.template and self.model.generic):
                out = out + LinearForm.atom(LogFactor(block.family, block))
                continue
            vectors = _template_vectors(block)
            generic = all(generic_component(v) in block.targets for v in vectors)
            partner = any(b is not block and b.template == block.template for b in blocks)
            if generic and partner:
                self.rules.add(RULE_COMPONENTS)
                out = out + LinearForm.atom(ComponentSum(vectors, LogFactor(block.family, block)))
            elif generic:
                out = out + LinearForm.atom(LogFactor(block.family, block))
            elif not partner:
                raise UnsupportedExpression(
                    f"a term over all components of {', '.join(vectors)} but one ({block.label}); expected whole "
                    "vectors or single components")
        del templates
        return out

    def component_sum(self, vectors: tuple, form: LinearForm) -> LinearForm:
        """``sum_j form_j`` over the components of ``vectors``: an atom written with the generic component becomes a
        component sum; one that does not mention it is the same for every j, J times."""
        generics = {generic_component(v) for v in vectors}
        rests = {rest_components(v) for v in vectors}
        size = self.model.vector_sizes[vectors[0]]
        out = LinearForm()
        for atom, c in form.terms.items():
            mentioned = _mentions(atom)
            if mentioned & rests:
                raise UnsupportedExpression("a sum over components of a term that names the other components")
            if atom != CONSTANT and mentioned & generics:
                out = out + LinearForm.atom(ComponentSum(tuple(vectors), atom), c)
            else:
                out = out + LinearForm.atom(atom, c * size)
        self.rules.add(RULE_COMPONENTS)
        return out

    # ------------------------------------------------------------------ log densities
    def log_density(self, r: Resolved) -> LinearForm:
        """``log F(A | B)`` as ``log F(A u B) - log F(B)`` in marginal/factor atoms."""
        if r in self._log_cache:
            return self._log_cache[r]
        graph = self.model.graphs[r.family]
        for block in graph.blocks:
            if frozenset(block.targets) == r.targets and frozenset(block.given) - graph.inputs == r.given - graph.inputs:
                form = LinearForm.atom(LogFactor(block.family, block))
                self._log_cache[r] = form
                return form
        blocks = _conditional_blocks(graph, r.targets, r.given)
        if blocks is not None:
            form = self.blocks_form(blocks)
            if len(blocks) > 1 or r.given:
                self.rules.add(RULE_CHAIN)
            self._log_cache[r] = form
            return form
        joint = (r.targets | r.given) - graph.inputs
        condition = r.given - graph.inputs
        form = self.log_marginal(r.family, joint) - self.log_marginal(r.family, condition)
        if condition:
            self.rules.add(RULE_CHAIN)
        self._log_cache[r] = form
        return form

    def log_marginal(self, family: str, nodes: frozenset) -> LinearForm:
        if not nodes:
            return LinearForm()
        graph = self.model.graphs[family]
        parts = _independent_parts(graph, nodes)
        if len(parts) > 1:
            self.rules.add(RULE_INDEPENDENT_PARTS)
        out = LinearForm()
        for part in parts:
            if graph.is_closed(part):
                blocks = graph.blocks_within(part)
                if len(blocks) > 1:
                    self.rules.add(RULE_CHAIN)
                out = out + self.blocks_form(blocks)
                continue
            peeled, rest = _peel_sinks(graph, part)
            if peeled:
                # F(S) = F(S \ T) * F(T | G) for a block F(T | G) with G in S whose targets are sinks of S's
                # ancestral graph (chain rule through a marginal: p(x, z_1) = p(z_1) p(x | z_1))
                self.rules.add(RULE_CHAIN)
                out = out + self.blocks_form(peeled) + self.log_marginal(family, rest)
            else:
                out = out + LinearForm.atom(LogMarginal(self.model.normalize_family(family, part), part))
        return out

    # ------------------------------------------------------------------ measures
    def reduce_measure(self, factors: list[MeasureFactor], used: frozenset) -> Measure:
        """Marginalize a product measure to what ``used`` needs, merge chain-rule products, order canonically."""
        current = list(factors)
        while True:
            reduced = self._merge(_canonical_order(self._marginalize(current, used)))
            if reduced == current:
                return tuple(reduced)
            current = reduced

    def _marginalize(self, factors: list[MeasureFactor], used: frozenset) -> list[MeasureFactor]:
        needed = set(used)
        kept: list[MeasureFactor] = []
        for factor in reversed(factors):
            targets = factor.targets & needed
            if not targets:
                self.rules.add(RULE_CONSTANT)
                continue
            if targets != factor.targets:
                self.rules.add(RULE_MARGINALIZE)
            r = self.make(factor.family, targets, factor.given)
            kept.append(MeasureFactor(r.family, r.targets, r.given))
            needed |= r.given
        kept.reverse()
        return kept

    def _merge(self, factors: list[MeasureFactor]) -> list[MeasureFactor]:
        changed = True
        while changed:
            changed = False
            for i in range(len(factors) - 1):
                outer, inner = factors[i], factors[i + 1]
                if outer.family != inner.family:
                    continue
                graph = self.model.graphs[outer.family]
                context = outer.targets | outer.given | graph.inputs
                if not inner.given <= context:
                    continue
                if graph.d_separated(inner.targets, context - inner.given, inner.given):
                    r = self.make(outer.family, outer.targets | inner.targets, outer.given)
                    factors = factors[:i] + [MeasureFactor(r.family, r.targets, r.given)] + factors[i + 2 :]
                    self.rules.add(RULE_MERGE)
                    changed = True
                    break
            if changed:
                factors = _canonical_order(factors)
        return factors

    def with_measure(self, form: LinearForm, factors: list[MeasureFactor]) -> LinearForm:
        """``E_{factors}[form]``: push the measure into each atom and reduce it."""
        if not factors:
            return form
        bound = frozenset().union(*[f.targets for f in factors])
        out = LinearForm()
        for atom, c in form.terms.items():
            if atom == CONSTANT:
                out = out + LinearForm.atom(CONSTANT, c)
                continue
            if isinstance(atom, ComponentSum):
                inner = self.with_measure(LinearForm.atom(atom.inner), factors)
                out = out + self.component_sum(atom.vectors, inner).scale(c)
                continue
            combined = list(factors) + list(atom.measure)
            measure = self.reduce_measure(combined, self._core_dependencies(atom))
            if isinstance(atom, LogFactor):
                new_atom = LogFactor(atom.family, atom.block, measure)
            elif isinstance(atom, LogMarginal):
                new_atom = LogMarginal(atom.family, atom.nodes, measure)
            elif isinstance(atom, LogMeanExp):
                new_atom = LogMeanExp(atom.samples, atom.base, atom.integrand, measure)
            else:
                new_atom = LogExpectation(atom.inner, atom.integrand, measure)
            out = out + LinearForm.atom(new_atom, c)
        del bound
        return out

    def measure_of(self, measure_expr) -> list[MeasureFactor]:
        factors = []
        bound: set[str] = set()
        for d in measure_densities(measure_expr):
            r = self.resolve(d)
            if r.targets & bound:
                raise UnsupportedExpression(f"{measure_expr}: {sorted(r.targets & bound)} integrated twice in one measure")
            bound |= r.targets
            factors.append(MeasureFactor(r.family, r.targets, r.given))
        return factors

    # ------------------------------------------------------------------ expressions
    def canonical(self, expr) -> LinearForm:
        expr = sympy.sympify(expr)
        if isinstance(expr, sympy.Add):
            out = LinearForm()
            for arg in expr.args:
                out = out + self.canonical(arg)
            return out
        if isinstance(expr, sympy.Mul):
            coefficient, random = [], []
            for arg in expr.args:
                (random if _is_random(arg) else coefficient).append(arg)
            if len(random) > 1:
                raise UnsupportedExpression(f"{expr}: a product of random terms is not a linear expression")
            c = sympy.Mul(*coefficient)
            if not random:
                return LinearForm.atom(CONSTANT, c)
            return self.canonical(random[0]).scale(c)
        if not _is_random(expr):
            return LinearForm.atom(CONSTANT, expr)
        if isinstance(expr, sympy.log):
            return self.canonical_log(expr.args[0])
        if isinstance(expr, Expectation) and isinstance(expr.measure, IndexedProduct):
            return self.sample_expectation(expr)
        if isinstance(expr, Expectation):
            factors = self.measure_of(expr.measure)
            inner_bound = frozenset().union(*[f.targets for f in factors])
            for node in sympy.preorder_traversal(expr.body):
                if isinstance(node, Expectation):
                    shadowed = inner_bound & frozenset().union(*[f.targets for f in self.measure_of(node.measure)])
                    if shadowed:
                        raise UnsupportedExpression(
                            f"{expr}: {sorted(shadowed)} is integrated by two nested expectations; rename one"
                        )
            return self.with_measure(self.canonical(expr.body), factors)
        if isinstance(expr, KL):
            self.rules.add(RULE_KL)
            a, b = self.resolve(expr.first), self.resolve(expr.second)
            if a.targets != b.targets:
                raise ModelError(f"{expr}: a KL divergence needs two densities over the same variables")
            return self.kl_form(a, b)
        if isinstance(expr, MutualInformation):
            self.rules.add(RULE_MI)
            first = self.model._atoms_of(expr.first, expr)
            second = self.model._atoms_of(expr.second, expr)
            given = self.model._atoms_of(expr.given, expr)
            return self.mi_form(expr.family, first, second, given)
        if isinstance(expr, TotalCorrelation):
            self.rules.add(RULE_TC)
            return self.tc_form(self.resolve(expr.of))
        if isinstance(expr, Entropy):
            self.rules.add(RULE_H)
            r = self.resolve(expr.of)
            return self.with_measure(-self.log_density(r), [MeasureFactor(r.family, r.targets, r.given)])
        if isinstance(expr, IndexedSum):
            vectors, body = self.indexed_body(expr)
            if vectors is None:
                return self.canonical(body)
            return self.component_sum(vectors, self.canonical(body))
        if isinstance(expr, Density):
            raise UnsupportedExpression(f"{expr}: a density outside a log or an expectation's measure")
        raise UnsupportedExpression(f"{expr}: unsupported term ({type(expr).__name__})")

    def sample_expectation(self, expr: Expectation) -> LinearForm:
        """``E_{prod_k q(z_k|x)}[body]`` over K importance samples of ``z``. The body is a linear combination of:
        ``log(c * sum_k f(z_k))`` (the importance-weighted term: ``log(c K)`` plus a :class:`LogMeanExp`),
        ``sum_k h(z_k)`` (``K E_q[h(z)]``: each sample is distributed as ``z``), a term of one sample ``z_2``
        (``E_q[h(z)]``) and terms free of the samples."""
        found = copy_measure(expr.measure, self.model.samples)
        if found is None:
            raise UnsupportedExpression(f"{expr}: a product measure over an index must run over declared importance "
                                        f"samples (samples: {', '.join(self.model.samples) or 'none'})")
        variable, index, base_density = found
        self.rules.add(RULE_SAMPLES)
        K = self.model.sample_sizes[variable]
        base = self.measure_of(base_density)
        out = LinearForm()
        for term in sympy.Add.make_args(expr.body):
            coefficient, random = sympy.S.One, []
            for factor in sympy.Mul.make_args(term):
                if _is_random(factor):
                    random.append(factor)
                else:
                    coefficient = coefficient * factor
            if len(random) != 1:
                raise UnsupportedExpression(f"{expr}: {term} is not linear in one random term")
            part = random[0]
            explicit = _explicit_copy_sum(part.args[0], variable, self.model.samples) \
                if isinstance(part, sympy.log) else None
            if isinstance(part, sympy.log) and (_sum_over_copies(part.args[0], index, variable) or explicit):
                if explicit:  # log c (f(z_1) + f(z_2)): m distinct samples, alike in distribution
                    scale, count, summand = explicit
                else:
                    scale, summed = _sum_over_copies(part.args[0], index, variable)
                    count, summand = K, summed.body
                integrand = self.canonical_log(rename_copies(summand, variable))
                for atom in integrand.terms:
                    if isinstance(atom, (LogExpectation, ComponentSum, LogMeanExp)) or \
                            (atom != CONSTANT and atom.measure):
                        raise UnsupportedExpression(f"{expr}: the summand of log sum_k must be a product of densities")
                constant = LinearForm.atom(CONSTANT, sympy.log(scale * count)) if scale * count != 1 else LinearForm()
                atom = LogMeanExp(count, tuple(base), integrand.key())
                out = out + (LinearForm.atom(atom) + constant).scale(coefficient)
            elif isinstance(part, IndexedSum) and str(part.index) == index:
                inner = self.canonical(rename_copies(part.body, variable))
                out = out + self.with_measure(inner, base).scale(coefficient * K)
            elif copies_in(part, self.model.samples):
                if part.has(IndexedSum) or len({n for n in copies_in(part, self.model.samples)}) > 1:
                    raise UnsupportedExpression(f"{expr}: {part} mixes several samples outside a sum over them")
                out = out + self.with_measure(self.canonical(rename_copies(part, variable)), base).scale(coefficient)
            else:
                out = out + self.canonical(part).scale(coefficient)
        return out

    def indexed_body(self, expr) -> tuple[tuple | None, sympy.Expr]:
        """The vectors an indexed sum or product runs over and its body with the generic component; for a model
        with numeric sizes that is not in generic form, (None, the sum written out)."""
        if not self.model.generic:
            sizes = {v: int(n) for v, n in self.model.vector_sizes.items()}
            return None, expand_indexed(expr, sizes)
        index = str(expr.index)
        vectors = tuple(indexed_vectors(expr.body, index, self.model.vectors))
        if not vectors:
            raise UnsupportedExpression(f"{expr}: the index {index} names no component of a vector of the model "
                                        f"(vectors: {', '.join(self.model.vectors) or 'none'})")
        if len({self.model.vector_sizes[v] for v in vectors}) > 1:
            raise UnsupportedExpression(f"{expr}: the index {index} runs over vectors of different sizes")
        if expr.body.has(IndexedSum, IndexedProduct):
            raise UnsupportedExpression(f"{expr}: nested sums over components are not supported")
        return vectors, rename_index(expr.body, index, vectors, generic_component)

    def kl_form(self, a: Resolved, b: Resolved) -> LinearForm:
        inner = self.log_density(a) - self.log_density(b)
        return self.with_measure(inner, [MeasureFactor(a.family, a.targets, a.given)])

    def mi_form(self, family: str, first: frozenset, second: frozenset, given: frozenset) -> LinearForm:
        joint = self.make(family, first | second | given, ())
        inner = (
            self.log_density(self.make(family, first | second, given))
            - self.log_density(self.make(family, first, given))
            - self.log_density(self.make(family, second, given))
        )
        return self.with_measure(inner, [MeasureFactor(joint.family, joint.targets, joint.given)])

    def tc_form(self, r: Resolved) -> LinearForm:
        inner = self.log_density(r)
        for component in sorted(r.targets):
            vector = self.model.atom_to_group[component]
            if self.model.generic and vector in self.model.vectors:
                if component == generic_component(vector):  # sum_j log F(z_j | G)
                    one = self.log_density(self.make(r.family, {component}, r.given))
                    inner = inner - self.component_sum((vector,), one)
                continue
            inner = inner - self.log_density(self.make(r.family, {component}, r.given))
        return self.with_measure(inner, [MeasureFactor(r.family, r.targets, r.given)])

    def canonical_log(self, arg) -> LinearForm:
        arg = sympy.sympify(arg)
        if isinstance(arg, Density):
            return self.log_density(self.resolve(arg))
        if isinstance(arg, sympy.Mul):
            self.rules.add(RULE_LOG_PRODUCT)
            out = LinearForm()
            for factor in arg.args:
                out = out + self.canonical_log(factor)
            return out
        if isinstance(arg, sympy.Pow):
            base, exponent = arg.args
            if _is_random(exponent):
                raise UnsupportedExpression(f"{arg}: the exponent must be a coefficient")
            self.rules.add(RULE_LOG_PRODUCT)
            return self.canonical_log(base).scale(exponent)
        if isinstance(arg, Expectation):
            return self.log_expectation(arg)
        if isinstance(arg, IndexedProduct):
            vectors, body = self.indexed_body(arg)
            if vectors is None:
                return self.canonical_log(body)
            return self.component_sum(vectors, self.canonical_log(body))
        if not _is_random(arg):
            return LinearForm.atom(CONSTANT, sympy.log(arg))
        raise UnsupportedExpression(f"log({arg}): only logs of products/ratios/powers of densities or of an expectation")

    def log_expectation(self, expr: Expectation) -> LinearForm:
        factors = self.measure_of(expr.measure)
        integrand = self.canonical_log(expr.body)
        for atom in integrand.terms:
            if isinstance(atom, (LogExpectation, ComponentSum)) or (atom != CONSTANT and atom.measure):
                raise UnsupportedExpression(f"{expr}: the integrand of a log-expectation must be a product of densities")
        return self.log_expectation_form(factors, integrand)

    def log_expectation_form(self, factors: list[MeasureFactor], integrand: LinearForm) -> LinearForm:
        """``log E_{factors}[exp(integrand)]`` for a measure-free integrand (logs of densities): removed by the
        importance-sampling identity where it applies, an opaque atom otherwise."""
        used = frozenset().union(*[self.dependencies(a) for a in integrand.terms]) if integrand.terms else frozenset()
        measure = self.reduce_measure(factors, used)
        if not measure:
            return integrand  # log E[c] = log c
        bound = _measure_bound(measure)
        # importance-sampling identity: measure density times integrand is one density of a family
        combined = integrand
        for f in measure:
            combined = combined + self.log_density(Resolved(f.family, f.targets, f.given))
        variables = frozenset().union(*[self.dependencies(a) for a in combined.terms if a != CONSTANT])
        for family, graph in self.model.graphs.items():
            if not variables <= graph.variables:
                continue
            free = sorted(variables - bound - graph.inputs)
            for size in range(len(free) + 1):
                for given in itertools.combinations(free, size):
                    targets = variables - frozenset(given) - graph.inputs
                    if not bound <= targets:
                        continue
                    candidate = self.log_density(self.make(family, targets, given))
                    if (candidate - combined).is_zero():
                        self.rules.add(RULE_IMPORTANCE)
                        remaining = targets - bound
                        if not remaining:
                            return LinearForm()
                        return self.log_density(self.make(family, remaining, given))
        return LinearForm.atom(LogExpectation(measure, integrand.key()))


# ----------------------------------------------------------------------------------------------------- helpers


def _is_random(expr) -> bool:
    """Whether an expression involves densities (as opposed to a coefficient built from numbers and symbols)."""
    return bool(expr.atoms(Density, KL, MutualInformation, TotalCorrelation, Entropy, Expectation, IndexedSum,
                           IndexedProduct))


def _measure_bound(measure: Measure) -> frozenset:
    return frozenset().union(*[f.targets for f in measure]) if measure else frozenset()


def _measure_free(measure: Measure) -> frozenset:
    free: set = set()
    bound: set = set()
    for f in measure:
        free |= set(f.given) - bound
        bound |= set(f.targets)
    return frozenset(free)


def _canonical_order(factors: list[MeasureFactor]) -> list[MeasureFactor]:
    """Topological order (a factor before those conditioned on its targets), ties broken by name."""
    remaining = list(factors)
    ordered: list[MeasureFactor] = []
    while remaining:
        ready = [f for f in remaining if not any(f.given & g.targets for g in remaining if g is not f)]
        if not ready:  # a cycle cannot arise from nested expectations; keep the written order
            return ordered + remaining
        pick = min(ready, key=MeasureFactor.sort_key)
        ordered.append(pick)
        remaining.remove(pick)
    return ordered


def _conditional_blocks(graph, targets: frozenset, given: frozenset):
    """The declared blocks whose product is ``F(targets | given)``, or None.

    Holds when the targets are a union of whole blocks, those blocks are conditioned only on targets, ``given`` and
    inputs, and no conditioning variable descends from a target: then summing out the descendants of the targets
    (each integrates to one) leaves ``F(targets, given) = prod(blocks of targets) * F(given)``.
    """
    blocks = graph.blocks_within(targets)
    covered = frozenset().union(*[frozenset(b.targets) for b in blocks]) if blocks else frozenset()
    if covered != targets:
        return None
    allowed = targets | given | graph.inputs
    if any(not set(b.given) <= allowed for b in blocks):
        return None
    for v in given:
        if graph.ancestors({v}) & targets:
            return None
    return blocks


def _sum_over_copies(arg, index: str, variable: str):
    """For ``c * sum_k f(z_k)`` (``c`` free of random terms): (c, the sum); else None."""
    scale, sums = sympy.S.One, []
    for factor in sympy.Mul.make_args(arg):
        if isinstance(factor, IndexedSum) and str(factor.index) == index:
            sums.append(factor)
        elif _is_random(factor):
            return None
        else:
            scale = scale * factor
    if len(sums) != 1:
        return None
    return scale, sums[0]


def _explicit_copy_sum(arg, variable: str, samples):
    """For ``c * (f(z_1) + ... + f(z_m))`` over distinct samples of ``variable``, the same ``f`` each time:
    (c, m, f(z_1)); else None. (Independent samples alike in distribution: any m of them are m samples.)"""
    scale, sums = sympy.S.One, []
    for factor in sympy.Mul.make_args(arg):
        if isinstance(factor, sympy.Add):
            sums.append(factor)
        elif _is_random(factor):
            return None
        else:
            scale = scale * factor
    if len(sums) != 1:
        return None
    terms = sympy.Add.make_args(sums[0])
    indices, shapes, weights, randoms = [], set(), set(), []
    for term in terms:
        weight = sympy.Mul(*[f for f in sympy.Mul.make_args(term) if not _is_random(f)])
        random = sympy.Mul(*[f for f in sympy.Mul.make_args(term) if _is_random(f)], evaluate=False)
        named = copies_in(random, samples)
        if len(named) != 1:
            return None
        indices.append(named.pop())
        shapes.add(rename_copies(random, variable))
        weights.add(weight)
        randoms.append(random)
    if len(set(indices)) != len(indices) or len(shapes) != 1 or len(weights) != 1:
        return None
    return scale * weights.pop(), sympy.Integer(len(terms)), randoms[0]


def _template_vectors(block: Block) -> tuple:
    """The vectors a template block is a component factor of (``z`` for ``p(z_[j])`` from ``prod_j p(z_j)``)."""
    names = [a[: -len("_[j]")] for a in block.targets if a.endswith("_[j]")]
    names += [a[: -len("_[-j]")] for a in block.targets if a.endswith("_[-j]")]
    return tuple(sorted(set(names)))


def _mentions(atom) -> frozenset:
    """Every variable an atom mentions anywhere (factor, marginal, measures, integrand)."""
    if atom == CONSTANT:
        return frozenset()
    if isinstance(atom, ComponentSum):
        return _mentions(atom.inner)
    out: set = set()
    for f in atom.measure:
        out |= f.targets | f.given
    if isinstance(atom, LogFactor):
        out |= atom.block.variables
    elif isinstance(atom, LogMarginal):
        out |= atom.nodes
    elif isinstance(atom, LogMeanExp):
        for f in atom.base:
            out |= f.targets | f.given
        for a, _ in atom.integrand:
            out |= _mentions(a)
    else:
        for f in atom.inner:
            out |= f.targets | f.given
        for a, _ in atom.integrand:
            out |= _mentions(a)
    return frozenset(out)


def _peel_sinks(graph, nodes: frozenset) -> tuple[list, frozenset]:
    """Declared blocks ``F(T | G)`` with ``T`` and ``G`` inside ``nodes`` whose targets no other variable of the
    ancestral set of ``nodes`` depends on, peeled off one by one; returns them and the variables left. Then
    ``F(nodes) = F(left) * prod(peeled blocks)``: summing the ancestral joint over what is not in ``nodes`` leaves each
    peeled block untouched, since no other factor of the ancestral set mentions its targets."""
    current = set(nodes)
    peeled = []
    changed = True
    while changed and current:
        changed = False
        ancestral = graph.ancestors(current)
        for block in graph.blocks:
            targets = set(block.targets)
            if not targets <= current or not (set(block.given) - graph.inputs) <= current - targets:
                continue
            if any(graph.parents.get(v, frozenset()) & targets for v in ancestral - targets):
                continue
            if graph.is_closed(frozenset(current)):
                break
            partners = [b for b in graph.blocks if b.template and b.template == block.template and b is not block]
            if partners:  # the component factors of one template are peeled together, or not at all
                together = set(targets).union(*[set(b.targets) for b in partners])
                given = set().union(*[set(b.given) for b in partners + [block]]) - graph.inputs
                if not together <= current or not given <= current - together:
                    continue
                if any(graph.parents.get(v, frozenset()) & together for v in ancestral - together):
                    continue
                peeled.extend([block] + partners)
                current -= together
            else:
                peeled.append(block)
                current -= targets
            changed = True
            break
    return peeled, frozenset(current)


def _independent_parts(graph, nodes: frozenset) -> list[frozenset]:
    """Split ``nodes`` into parts that are independent in every joint over ``graph`` (components of the moralized
    ancestral graph with the inputs removed)."""
    neighbours = graph.moral_graph(graph.ancestors(nodes) - graph.inputs)
    parts: list[frozenset] = []
    unseen = set(nodes)
    while unseen:
        start = min(unseen)
        component, stack = {start}, [start]
        while stack:
            v = stack.pop()
            for w in neighbours.get(v, ()):
                if w not in component:
                    component.add(w)
                    stack.append(w)
        part = frozenset(component & nodes)
        parts.append(part)
        unseen -= part
    # in a generic model, z_[j] and z_[-j] are one vector: never split a whole vector into its two halves
    merged: list[frozenset] = []
    for part in parts:
        linked = [m for m in merged if any(_same_vector(a, b) for a in part for b in m)]
        for m in linked:
            merged.remove(m)
        merged.append(frozenset(part.union(*linked)))
    return sorted(merged, key=lambda s: sorted(s))


def _same_vector(a: str, b: str) -> bool:
    return a != b and a.endswith(("_[j]", "_[-j]")) and b.endswith(("_[j]", "_[-j]")) and \
        a.rsplit("_[", 1)[0] == b.rsplit("_[", 1)[0]
