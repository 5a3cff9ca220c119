"""From what a line says to the step the engine checks, when the two differ by a reading the text licenses.

The reader (:mod:`.reader`) builds expressions as written; a step is then *lowered* into the engine's terms
(:func:`make_step`) and judged (:func:`judge`):

* **Expectations over importance samples** are built as :class:`SampleCount` (the number of samples the text
  writes, ``h_1, ..., h_k``, with the expectation); the engine has one number of samples per model (``K``, the
  header's ``samples:``). A numeric count is a subset of the samples and needs nothing (an expectation over
  ``h_1, h_2`` is the expectation over all the samples of a function of those two); a symbolic count ``K + d``
  (``L_{k+1}`` in a model with ``k`` samples) is read by putting ``K`` for ``K + d`` in the whole step: the engine
  then checks the step for every ``K >= 1``, which implies it for every ``K >= 1 + d``, so a proof stands while a
  counterexample may be one of the values the text excludes: a refutation is reported undecided. Counts that differ
  by a symbolic amount in one step are beyond the engine (undecided, with the reason).
* An expectation over the samples of a sum of weights ``E[(1/k) sum_i w_i]`` (not inside a log) is ``E_q[w]``
  (linearity, and each sample is distributed as the variable).
* **Positive values**: a step between two densities, products, ratios and expectations of them (``p(x) = sum_h
  p(x, h)``, ``p(y|z) = int dx p(y|x) p(x|z)``) is the step between their logarithms (log is increasing, both sides
  are positive: every factor has full support).
* **Substitutions** (``assume STEPS: q(Z) = p(Z|X, theta^{old})``): in the selected steps the factor is replaced by
  the other density; the step as written is checked as well, and reported as "without the assumption".
* **Data points** (``datapoints:``): the engine lets the data distribution be any distribution, the text's is
  uniform on N distinct points (``log N`` was read as ``H(p_D)``): a proof holds for every data distribution, so for
  the text's, while a counterexample need not be uniform: a refutation is reported undecided.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import sympy
from sympy import Expr

from ..checker import Checker, Step, StepResult
from ..expressions import Density, Entropy, Expectation, IndexedProduct, IndexedSum, KL, MutualInformation, \
    TotalCorrelation
from ..model import Model, ModelError
from ..samples import copies_in, copy_of

__all__ = ["SampleCount", "ReadStep", "make_step", "judge", "is_positive_value"]


class SampleCount(Expr):
    """An expectation over importance samples together with the number of samples the text writes:
    ``SampleCount(k, E_{prod_i q(h_i|x)}[...])`` for ``E_{h_1, ..., h_k ~ q(h|x)}[...]``. Only the reader makes
    these; :func:`make_step` removes them before the engine sees the step."""

    is_commutative = True

    def __new__(cls, count, expectation):
        return Expr.__new__(cls, sympy.sympify(count), expectation)

    @property
    def count(self) -> Expr:
        return self.args[0]

    @property
    def expectation(self) -> Expectation:
        return self.args[1]

    def _eval_is_real(self):
        return True

    def _sympystr(self, printer):
        return printer._print(self.expectation)


@dataclass
class ReadStep(Step):
    """A step with what its reading implies for the verdict: ``as_written`` (the step without its substitutions,
    checked too), ``substitutions`` (shown as assumptions), ``caveat`` (why a counterexample may not refute the text:
    a refutation is then reported undecided), ``unread`` (why the step cannot be checked at all), ``reading`` (how
    the step was read, for the report)."""

    as_written: Step | None = None
    substitutions: tuple[str, ...] = ()
    caveat: str = ""
    unread: str = ""
    reading: str = ""


# ------------------------------------------------------------------------------------------------ values


def is_positive_value(expr, model: Model | None = None) -> bool:
    """A density, a product, quotient or power of densities, an expectation of one, or a positive constant (a number,
    or symbols whose declared ranges are positive, such as a number of samples): a value that is positive in every
    model of the semantics (full support)."""
    if isinstance(expr, (Density, IndexedProduct)):
        return True
    if isinstance(expr, Expectation):
        return is_positive_value(expr.body, model)
    if isinstance(expr, SampleCount):
        return is_positive_value(expr.expectation, model)
    if isinstance(expr, IndexedSum):
        return is_positive_value(expr.body, model)
    if isinstance(expr, sympy.Pow):
        base, exponent = expr.args
        return is_positive_value(base, model) and not _random(exponent)
    if isinstance(expr, (sympy.Mul, sympy.Add)):
        return all(is_positive_value(a, model) for a in expr.args) and any(_random(a) for a in expr.args)
    if not _random(expr):
        return _positive_constant(expr, model)
    return False


def _positive_constant(expr, model: Model | None) -> bool:
    if expr.is_number or model is None:
        return bool(expr.is_positive)
    positive = {}
    for symbol in expr.free_symbols:
        rng = model.coefficient_ranges.get(str(symbol))
        if rng is None or rng.low is None or rng.low < 0 or (rng.low == 0 and not rng.low_open):
            return False
        positive[symbol] = sympy.Dummy(positive=True)
    return bool(sympy.sympify(expr).xreplace(positive).is_positive)


def _random(expr) -> bool:
    return bool(sympy.sympify(expr).atoms(Density, KL, MutualInformation, TotalCorrelation, Entropy, Expectation,
                                          IndexedSum, IndexedProduct, SampleCount))


# ------------------------------------------------------------------------------------------------ samples


class _Unreadable(Exception):
    pass


def _counts(expr) -> list[Expr]:
    return [node.count for node in sympy.preorder_traversal(expr) if isinstance(node, SampleCount)]


def _unwrap(expr, model: Model):
    """``expr`` without :class:`SampleCount`, and with expectations over the samples of a sum of weights (not under a
    log) written as expectations under the sampling density."""
    if isinstance(expr, SampleCount):
        expectation = _unwrap(expr.expectation, model)
        if expr.count.is_Integer:
            expectation = _written_out(expectation, int(expr.count), model)
        return _linear_sample_value(expectation, expr.count, model)
    if not isinstance(expr, sympy.Basic) or not expr.args or isinstance(expr, Density):
        return expr
    args = [_unwrap(a, model) for a in expr.args]
    if isinstance(expr, (sympy.Add, sympy.Mul, sympy.Pow, sympy.log)):
        return expr.func(*args, evaluate=False)
    return expr.func(*args)


def _written_out(expectation: Expectation, count: int, model: Model) -> Expectation:
    """An expectation over ``count`` samples (a number) with its sums and products over the samples written out
    over the copies ``h_1 .. h_count``: an indexed sum means all the samples of its expectation, which may be fewer
    than the model's (``L_1`` from the family ``L_k``)."""
    from ..samples import copy_measure

    found = copy_measure(expectation.measure, model.samples)
    if found is None:
        return expectation
    variable, _, _ = found

    def walk(node):
        if isinstance(node, (IndexedSum, IndexedProduct)):
            body = walk(node.body)
            copy = sympy.Symbol(f"{variable}_{node.index}")
            from ..indexed import variable_names
            if str(copy) not in variable_names(body):
                return node.func(node.index, body)
            terms = [body.xreplace({copy: sympy.Symbol(f"{variable}_{k}")}) for k in range(1, count + 1)]
            if isinstance(node, IndexedSum):
                return sympy.Add(*terms)
            return sympy.Mul(*terms, evaluate=False) if len(terms) > 1 else terms[0]
        if not isinstance(node, sympy.Basic) or not node.args or isinstance(node, Density):
            return node
        args = [walk(a) for a in node.args]
        if isinstance(node, (sympy.Add, sympy.Mul, sympy.Pow, sympy.log)):
            return node.func(*args, evaluate=False)
        return node.func(*args)

    return Expectation(expectation.measure, walk(expectation.body))


def _linear_sample_value(expectation: Expectation, count, model: Model):
    """``E_{prod_i q(h_i|x)}[c sum_i f(h_i) + c' f(h_2)]`` with ``f`` a positive value (no log) is
    ``(c count + c') E_{q(h|x)}[f(h)]``: linearity of the expectation, and each sample is distributed as ``h``."""
    from ..samples import copy_measure, rename_copies

    found = copy_measure(expectation.measure, model.samples)
    if found is None or not is_positive_value(expectation.body, model):
        return expectation
    variable, index, base = found
    total, shape = sympy.Integer(0), None
    for term in sympy.Add.make_args(expectation.body):
        coefficient = sympy.Mul(*[f for f in sympy.Mul.make_args(term) if not _random(f)])
        random = [f for f in sympy.Mul.make_args(term) if _random(f)]
        if len(random) == 1 and isinstance(random[0], IndexedSum) and str(random[0].index) == index:
            value, weight = rename_copies(random[0].body, variable), coefficient * count
        else:
            part = sympy.Mul(*random, evaluate=False) if len(random) > 1 else (random[0] if random else None)
            copies = {copy_of(str(v), model.samples) for d in sympy.preorder_traversal(part)
                      if isinstance(d, Density) for v in d.targets + d.given} - {None} if part is not None else set()
            if part is None or len(copies) != 1 or part.has(IndexedSum):
                return expectation
            value, weight = rename_copies(part, variable), coefficient
        if shape is not None and value != shape:
            return expectation
        shape = value
        total = total + weight
    if shape is None:
        return expectation
    return sympy.Mul(total, Expectation(base, shape), evaluate=False) if total != 1 else Expectation(base, shape)


def _lower_samples(lhs, rhs, model: Model) -> tuple[Expr, Expr, str]:
    """(lhs, rhs, caveat) with the sample counts made the engine's; raises :class:`_Unreadable`."""
    counts = _counts(lhs) + _counts(rhs)
    caveat = ""
    if counts and model.sample_sizes:
        (variable, K), = list(model.sample_sizes.items())[:1]
        symbolic = [c for c in counts if not c.is_Integer]
        for c in counts:
            if c.is_Integer and K.is_Integer and int(c) > int(K):
                raise _Unreadable(f"an expectation over {c} samples of {variable}, and the header declares {K}")
        if symbolic:
            if K.is_Integer:
                raise _Unreadable(f"an expectation over {symbolic[0]} samples of {variable}, and the header declares "
                                  f"a number of samples, {K}")
            offsets = {sympy.simplify(c - K) for c in symbolic}
            if len(offsets) > 1:
                shown = ", ".join(sorted(sympy.sstr(c) for c in set(symbolic)))
                raise _Unreadable(f"the step compares expectations over {shown} samples of {variable}; the engine "
                                  f"represents one number of samples per model ({K}), so it would need an "
                                  "expectation over the first m of the samples (a count per expectation)")
            offset = offsets.pop()
            if not offset.is_Integer or offset < 0:
                raise _Unreadable(f"an expectation over {sympy.sstr(symbolic[0])} samples of {variable}: the engine "
                                  f"checks every number of samples {K} >= 1, not {sympy.sstr(symbolic[0])}")
            if offset > 0:
                lhs, rhs = lhs.xreplace({K: K - offset}), rhs.xreplace({K: K - offset})
                caveat = (f"the step is about {sympy.sstr(K + offset)} samples for every {K} >= 1; it was checked "
                          f"for every number of samples >= 1 (a proof covers the text's claim; a counterexample "
                          f"with fewer than {1 + offset} samples would not refute it)")
    return _unwrap(lhs, model), _unwrap(rhs, model), caveat


# ------------------------------------------------------------------------------------------------ the step


def make_step(lhs, relation: str, rhs, *, model: Model, assumptions=(), substitutions=(), label: str = "",
              line: int | None = None, datapoints: bool = False, condition: str = "") -> Step:
    """The step the engine checks for ``lhs relation rhs`` as the reader built it (see the module docstring).
    ``condition``: the statement before ``\\implies`` when the text derives this one from it."""
    caveats, readings = [], []
    if condition:
        caveats.append(f"the text states it as following from {condition} (\\implies), and is checked as a statement "
                       "of its own: where the condition fails, a counterexample would not refute the text")
    try:
        lhs, rhs, caveat = _lower_samples(lhs, rhs, model)
    except _Unreadable as why:
        return ReadStep(_plain(lhs), relation, _plain(rhs), assumptions=tuple(assumptions), label=label, line=line,
                        unread=str(why))
    if caveat:
        caveats.append(caveat)
    if relation in ("=", ">=", "<=") and is_positive_value(lhs, model) and is_positive_value(rhs, model) and \
            not (isinstance(lhs, sympy.log) or isinstance(rhs, sympy.log)):
        lhs, rhs = sympy.log(lhs, evaluate=False), sympy.log(rhs, evaluate=False)
        readings.append("both sides are positive values (densities and their expectations): compared as logs")
    if datapoints:
        caveats.append("the data distribution here is the empirical distribution of N distinct points, and the "
                       "engine's counterexamples may have any data distribution")
    written = None
    if substitutions:
        written = Step(lhs, relation, rhs, assumptions=tuple(assumptions), label=label, line=line)
        mapping = {s.factor: s.replacement for s in substitutions}
        lhs, rhs = _substitute(lhs, mapping), _substitute(rhs, mapping)
    if not (caveats or readings or written is not None):
        return Step(lhs, relation, rhs, assumptions=tuple(assumptions), label=label, line=line)
    return ReadStep(lhs, relation, rhs, assumptions=tuple(assumptions), label=label, line=line, as_written=written,
                    substitutions=tuple(str(s) for s in substitutions), caveat="; ".join(caveats),
                    reading="; ".join(readings))


def _plain(expr):
    """For a step that cannot be checked: an expression without :class:`SampleCount`, to show it."""
    return expr.replace(lambda e: isinstance(e, SampleCount), lambda e: e.expectation) if isinstance(
        expr, sympy.Basic) else expr


def _substitute(expr, mapping: dict):
    """``expr`` with each declared factor's density replaced (the factor written with or without its subscript)."""
    def same(d: Density, factor: Density) -> bool:
        return d.family == factor.family and d.targets == factor.targets and d.given == factor.given and \
            (not d.subscript or d.subscript == factor.subscript)

    def walk(node):
        if isinstance(node, Density):
            for factor, replacement in mapping.items():
                if same(node, factor):
                    return replacement
            return node
        if not isinstance(node, sympy.Basic) or not node.args:
            return node
        args = [walk(a) for a in node.args]
        if isinstance(node, (sympy.Add, sympy.Mul, sympy.Pow, sympy.log)):
            return node.func(*args, evaluate=False)
        return node.func(*args)

    return walk(expr)


def _without_unused_samples(model: Model, step: Step) -> Model:
    """The model without its importance samples when the step uses none: a sample declaration changes nothing in
    such a step, and the checker then confirms counterexamples with the oracle in 50-digit arithmetic (it skips the
    oracle for every step of a model with samples, and float64 rounding near a coefficient's open bound, such as
    1/(1 - alpha) at alpha -> 1, can pass for a counterexample). The number of samples stays a coefficient >= 1."""
    if not model.samples:
        return model
    sizes = {size for size in model.sample_sizes.values() if not size.is_Integer}
    if any(sizes & sympy.sympify(side).free_symbols for side in (step.lhs, step.rhs)):
        return model  # the step is about the number of samples itself, a whole number
    for side in (step.lhs, step.rhs):
        if copies_in(side, model.samples) or any(isinstance(node, IndexedProduct) for node in
                                                   sympy.preorder_traversal(side)):
            return model
    coefficients = dict(model.coefficients)
    for size in model.sample_sizes.values():
        if not size.is_Integer:
            coefficients.setdefault(str(size), (1, None))
    return replace(model, samples={}, coefficients=coefficients)


def _components_written_out(model: Model, step: Step) -> Step:
    """``step`` with each vector written as its components (``q(z|x)`` -> ``q(z_1, z_2|x)``) when the model declares
    factors over particular components (``p(z_1|z_2)``): such a model has no generic form, and a step that names the
    components is checked on the numeric model (the same claim: a vector is the tuple of its components)."""
    if not model.vectors or model.generic or model.has_symbolic_sizes():
        return step
    try:
        model.generic_model()
        return step
    except ModelError:
        pass
    components = {sympy.Symbol(v): tuple(sympy.Symbol(c) for c in model.components[v]) for v in model.vectors}

    def spread(names):
        out = []
        for n in names:
            out.extend(components.get(n, (n,)))
        return out

    def walk(node):
        if isinstance(node, Density):
            return Density(node.family, spread(node.targets), spread(node.given), node.subscript)
        if isinstance(node, MutualInformation):
            return MutualInformation(spread(node.first), spread(node.second), spread(node.given), node.family)
        if not isinstance(node, sympy.Basic) or not node.args:
            return node
        args = [walk(a) for a in node.args]
        if isinstance(node, (sympy.Add, sympy.Mul, sympy.Pow, sympy.log)):
            return node.func(*args, evaluate=False)
        return node.func(*args)

    return replace(step, lhs=walk(step.lhs), rhs=walk(step.rhs))


def judge(checker: Checker, model: Model, step: Step, index: int) -> StepResult:
    """The checker's verdict on ``step``, with what its reading implies (:class:`ReadStep`)."""
    model = _without_unused_samples(model, step)
    step = _components_written_out(model, step)
    if not isinstance(step, ReadStep):
        return checker.check_step(model, step, index)
    start = time.perf_counter()
    if step.unread:
        return StepResult(index=index, label=step.label, relation=Step(0, step.relation, 0).relation,
                          lhs=sympy.sstr(step.lhs), rhs=sympy.sstr(step.rhs), verdict="undecided",
                          expected=step.expected, assumptions=[str(a) for a in step.assumptions],
                          reason=f"not checked: {step.unread}", line=step.line,
                          seconds=time.perf_counter() - start)
    result = checker.check_step(model, Step(step.lhs, step.relation, step.rhs, assumptions=step.assumptions,
                                            expected=step.expected, label=step.label, note=step.note,
                                            line=step.line), index)
    notes = [n for n in (result.note, step.reading) if n]
    result = replace(result, assumptions=list(result.assumptions) + list(step.substitutions), note="; ".join(notes))
    if result.verdict == "refuted" and step.caveat:
        result = replace(result, verdict="undecided", counterexample=None,
                         reason=f"a counterexample was found, but it does not refute the text: {step.caveat}")
    if step.as_written is not None:
        written = checker.check_step(model, _components_written_out(model, step.as_written), index)
        if written.verdict == "proven":
            without = {"verdict": "proven", "certificate": written.certificate,
                       "reason": "the step holds without the assumption"}
        elif written.verdict == "refuted" and not step.caveat:
            without = {"verdict": "refuted", "counterexample": written.counterexample.as_dict()}
        else:
            without = {"verdict": "not refuted", "reason": written.reason or "no counterexample without the assumption"}
        result = replace(result, without_assumptions=without)
    result.seconds = time.perf_counter() - start
    return result
