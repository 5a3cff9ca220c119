"""The step checker: each step ``lhs REL rhs`` is proven, refuted, or undecided.

* **proven**: the canonical forms (:mod:`.canonical`) of the two sides are equal (``=``), differ only by atoms free of
  the declared parameters (``= const``), or differ by a non-negative combination of KLs / MIs / TCs / Jensen gaps
  (``>=``, ``<=``; :mod:`.certificates`). A proof is also checked on random instances; a numeric violation of a proven
  step raises :class:`InternalInconsistency` (it would be a bug; the tests make sure it never happens).
* **refuted**: a concrete discrete instance of the declared model (:mod:`.numeric`) on which the relation fails,
  found by exact enumeration on random instances and then by a local search that maximizes the violation.
* **undecided**: neither, with the reason.

A step may name assumptions (``q(z_l,z_u|x) = q(z_l|x) q(z_u|x)``): it is then checked in the model with that
factorization, and again without it, so the report says whether the assumption is needed.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np
import sympy

from .canonical import (
    CONSTANT,
    Canonicalizer,
    ComponentSum,
    LinearForm,
    LogExpectation,
    LogFactor,
    LogMarginal,
    LogMeanExp,
)
from .certificates import Certificate, find_certificate
from .display import display_form
from .expressions import Expectation, IndexedProduct, density
from . import oracle
from .indexed import expand_indexed, free_component_indices, particular_components
from .model import Model, ModelError, generic_component
from .gaussian import GaussianEvaluator, GaussianInstance, GaussianUnsupported
from .numeric import Evaluator, Instance, InstanceSpace, assignment_at, random_sizes, to_range

RELATIONS = {"=": "=", "==": "=", "=const": "= const", "= const": "= const", ">=": ">=", "<=": "<="}
VERDICTS = ("proven", "refuted", "undecided")


class InternalInconsistency(RuntimeError):
    """A step was proven symbolically but fails numerically: a bug in the checker, never a verdict."""


@dataclass(frozen=True)
class Factorization:
    """An assumption that a declared factor splits: ``joint = factor_1 factor_2 ...`` (density notation strings)."""

    joint: str
    factors: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.joint} = {' '.join(self.factors)}"

    def apply(self, model: Model) -> Model:
        return model.with_factorization(self.joint, self.factors)


@dataclass
class Step:
    lhs: sympy.Expr
    relation: str
    rhs: sympy.Expr
    assumptions: tuple[Factorization, ...] = ()
    expected: str = "proven"
    label: str = ""
    note: str = ""
    line: int | None = None

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise ValueError(f"relation {self.relation!r}: expected one of {sorted(set(RELATIONS.values()))}")
        self.relation = RELATIONS[self.relation]
        self.lhs, self.rhs = sympy.sympify(self.lhs), sympy.sympify(self.rhs)
        if self.expected not in VERDICTS:
            raise ValueError(f"expected verdict {self.expected!r}: expected one of {VERDICTS}")


@dataclass
class Derivation:
    """A named derivation: a model and a list of steps (often a chain ``e0 = e1 >= e2 ...``)."""

    name: str
    title: str
    source: str
    model: Model
    steps: list[Step]
    references: tuple[str, ...] = ()
    notes: str = ""

    @classmethod
    def chain(cls, name: str, title: str, source: str, model: Model, first, links: Sequence, **kwargs) -> "Derivation":
        """Build from ``first`` and links ``(relation, expression, options)`` where options holds ``expected``,
        ``label``, ``note``, ``assumptions``: step i relates line i-1 to line i."""
        steps, previous = [], first
        for link in links:
            relation, expression = link[0], link[1]
            options = dict(link[2]) if len(link) > 2 else {}
            steps.append(Step(previous, relation, expression, **options))
            previous = expression
        return cls(name, title, source, model, steps, **kwargs)


@dataclass
class Counterexample:
    """A concrete instance on which a step fails: the exported instance (replayable with
    :func:`elbocheck.derivations.replay_counterexample`), the values of both sides there, and how it was confirmed."""

    instance: dict
    text: str
    assignment: dict
    lhs: float
    rhs: float
    second_instance: dict | None = None
    certified: str = ""

    def as_dict(self) -> dict:
        out = {"instance": self.instance, "assignment": self.assignment, "lhs": self.lhs, "rhs": self.rhs,
               "text": self.text, "certified": self.certified}
        if self.second_instance is not None:
            out["second_instance"] = self.second_instance
        return out


@dataclass
class StepResult:
    index: int
    label: str
    relation: str
    lhs: str
    rhs: str
    verdict: str
    expected: str
    assumptions: list[str] = field(default_factory=list)
    certificate: str | None = None
    rules: list[str] = field(default_factory=list)
    counterexample: Counterexample | None = None
    reason: str | None = None
    without_assumptions: dict | None = None
    note: str = ""
    line: int | None = None
    seconds: float = 0.0

    @property
    def matches(self) -> bool:
        return self.verdict == self.expected

    def summary(self) -> str:
        """One line: the certificate, the counterexample, or the reason."""
        if self.verdict == "proven":
            text = self.certificate or ""
        elif self.verdict == "refuted" and self.counterexample is not None:
            c = self.counterexample
            at = ", ".join(f"{k}={v}" for k, v in c.assignment.items())
            text = f"counterexample: lhs = {c.lhs:.6g}, rhs = {c.rhs:.6g}" + (f" at {at}" if at else "")
        else:
            text = self.reason or ""
        if self.without_assumptions:
            text += f" [without the assumption: {self.without_assumptions['verdict']}]"
        return text

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "label": self.label,
            "line": self.line,
            "relation": self.relation,
            "lhs": self.lhs,
            "rhs": self.rhs,
            "verdict": self.verdict,
            "expected": self.expected,
            "assumptions": self.assumptions,
            "certificate": self.certificate,
            "rules": self.rules,
            "counterexample": self.counterexample.as_dict() if self.counterexample else None,
            "reason": self.reason,
            "without_assumptions": self.without_assumptions,
            "note": self.note,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class DerivationResult:
    derivation: Derivation
    steps: list[StepResult]

    @property
    def matches(self) -> bool:
        return all(s.matches for s in self.steps)

    def as_dict(self) -> dict:
        d = self.derivation
        return {"name": d.name, "title": d.title, "source": d.source, "references": list(d.references),
                "steps": [s.as_dict() for s in self.steps]}


# ------------------------------------------------------------------------------------------------ the checker


@dataclass
class SearchSettings:
    """How hard the numeric search looks for a counterexample."""

    random_instances: int = 40
    sanity_instances: int = 6  # for steps already proven
    local_search_iterations: int = 250
    local_search_starts: int = 3
    gaussian_instances: int = 24  # linear-Gaussian instances, tried when the discrete search finds nothing
    tolerance: float = 1e-8  # relative gap at which a float64 candidate counterexample is sent to certification
    oracle_discrete: int = 4  # discrete instances on which the oracle re-checks a proof
    oracle_peaked: int = 3  # more discrete instances, with peaked tables (divergences of 10 nats and more)
    oracle_gaussian: int = 3  # linear-Gaussian instances on which the oracle re-checks a proof
    certify: bool = True  # a counterexample counts only after the oracle confirms it in 50-digit arithmetic
    certified_margin: float = 1e3  # how many error bounds the recomputed gap must exceed


def _seed_for(*parts) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


class Checker:
    def __init__(self, settings: SearchSettings | None = None):
        self.settings = settings or SearchSettings()

    # -------------------------------------------------------------------------------------------- public
    def check_derivation(self, derivation: Derivation) -> DerivationResult:
        results = []
        for i, step in enumerate(derivation.steps, start=1):
            results.append(self.check_step(derivation.model, step, index=i))
        return DerivationResult(derivation, results)

    def check_step(self, model: Model, step: Step, index: int = 1) -> StepResult:
        start = time.perf_counter()
        # parameter versions the step names (p_theta_old): copies of the model at other, fixed parameter values
        model = model.with_versions(model.versions_in(step.lhs) + model.versions_in(step.rhs))
        symbolic_model, symbolic_step = symbolic_model_for(model, step)
        symbolic_model.validate(symbolic_step.lhs)
        symbolic_model.validate(symbolic_step.rhs)
        working_model = symbolic_model
        for assumption in step.assumptions:
            working_model = assumption.apply(working_model)
        result = StepResult(index=index, label=step.label, relation=step.relation, lhs=sympy.sstr(step.lhs),
                            rhs=sympy.sstr(step.rhs), verdict="undecided", expected=step.expected,
                            assumptions=[str(a) for a in step.assumptions], note=step.note, line=step.line)
        proof, rules, reason = self._prove(working_model, symbolic_step)
        seed = _seed_for(model.name, step.lhs, step.relation, step.rhs)
        instances, why_not = numeric_instances(model, step)
        if proof is not None:
            for case in instances:
                self._cross_check(case, step.assumptions, seed, proof, index)
            result.verdict, result.certificate, result.rules = "proven", proof, rules
        else:
            counterexample, tried, rejected = self._search_all(instances, step.assumptions, seed)
            if counterexample is not None:
                result.verdict, result.counterexample = "refuted", counterexample
            else:
                noise = (f"; {rejected} candidate counterexample(s) were rounding noise, not confirmed when "
                         "recomputed in 50-digit arithmetic") if rejected else ""
                result.reason = f"{reason}; {why_not}{noise}" if why_not else \
                    f"{reason}; numeric search over {tried} instances found no counterexample{noise}"
        if step.assumptions:
            proof_without, _, _ = self._prove(symbolic_model, symbolic_step)
            if proof_without is not None:
                result.without_assumptions = {"verdict": "proven", "certificate": proof_without,
                                              "reason": "the step holds without the assumption"}
            else:
                without, tried, _ = self._search_all(instances, (), seed + 1)
                if without is not None:
                    result.without_assumptions = {"verdict": "refuted", "counterexample": without.as_dict()}
                else:
                    result.without_assumptions = {
                        "verdict": "not refuted",
                        "reason": f"no counterexample in {tried} instances without the assumption (it may be "
                                  "unnecessary)",
                    }
        result.seconds = time.perf_counter() - start
        return result

    # -------------------------------------------------------------------------------------------- the oracle
    def _cross_check(self, case: "NumericCase", assumptions, seed: int, proof: str, index: int) -> None:
        """Re-check a proof with the oracle, which reads the declaration and evaluates every term by brute force
        without sharing anything with the symbolic side: on discrete instances (exact tables, a running error bound)
        and linear-Gaussian ones. A violation beyond the error bound, confirmed in high precision, is a bug in the
        checker: :class:`InternalInconsistency`, never a verdict. Steps the oracle cannot evaluate (importance
        samples) are re-checked by the numeric evaluator instead."""
        step = case.step
        rng = np.random.default_rng(seed)
        if case.model.samples:
            counterexample, _ = self._search(case.model, assumptions, step, seed, sanity=True,
                                             constant=case.constant, note=case.note)
            if counterexample is not None:
                raise InternalInconsistency(f"step {index} ({step.lhs} {step.relation} {step.rhs}) was proven "
                                            f"({proof}) but fails numerically:\n{counterexample.text}")
            return
        kinds = ["discrete"] * self.settings.oracle_discrete + ["peaked discrete"] * self.settings.oracle_peaked
        if not case.constant and not case.model.discrete:
            kinds += ["gaussian"] * self.settings.oracle_gaussian
        gaussians = 0
        for kind in kinds:
            try:
                if kind in ("discrete", "peaked discrete"):
                    fixed = {a: 1 for a in case.constant}
                    # peaked tables: divergences of 10 nats and more, which mild tables never reach
                    instance = oracle.random_discrete_instance(case.model, assumptions, rng, fixed_sizes=fixed,
                                                               peaked=kind == "peaked discrete")
                else:
                    # unit, narrow and wide spreads: differential entropies of both signs
                    scale = ORACLE_GAUSSIAN_SCALES[gaussians % len(ORACLE_GAUSSIAN_SCALES)]
                    gaussians += 1
                    instance = oracle.random_gaussian_instance(case.model, assumptions, rng, scale=scale)
                second = instance.redraw_parametric(rng) if step.relation == "= const" else None
                judgement = oracle.judge(case.model, step.lhs, step.relation, step.rhs, assumptions, instance,
                                         second_instance=second, rng=rng, points=4)
                if not judgement.holds:  # confirm in high precision before calling it a bug
                    points = [dict(r.assignment) for r in judgement.rows] if kind == "gaussian" else 4
                    judgement = oracle.judge(case.model, step.lhs, step.relation, step.rhs, assumptions, instance,
                                             second_instance=second, rng=rng, precision="high", points=points)
            except (oracle.Unsupported, oracle.Divergent):
                continue
            except oracle.OracleError as error:
                raise InternalInconsistency(
                    f"step {index} ({step.lhs} {step.relation} {step.rhs}) was proven ({proof}), but the oracle "
                    f"reads it otherwise: {error}") from None
            if not judgement.holds:
                raise InternalInconsistency(
                    f"step {index} ({step.lhs} {step.relation} {step.rhs}) was proven ({proof}), but the oracle finds "
                    f"it violated on a {kind} instance: {judgement.summary()}")

    def _certify(self, model: Model, assumptions, step: Step, counterexample: "Counterexample") -> str | None:
        """Recompute a candidate counterexample with the oracle in 50-digit arithmetic (rational tables, interval
        bounds for discrete instances): the text of the confirmation if the gap lies far beyond its error bound,
        else None (rounding noise, or a candidate the oracle reads otherwise)."""
        if not self.settings.certify:
            return "not certified (certification switched off)"
        if _uses_samples(step):
            # the oracle has no importance samples: the candidate stands only on a gap far above float64 rounding
            # (exact enumeration of small tables: errors of order 1e-14 relative)
            lhs, rhs = counterexample.lhs, counterexample.rhs
            gap = abs(lhs - rhs) / (1.0 + max(abs(lhs), abs(rhs)))
            if step.relation == "= const" or gap < SAMPLE_STEP_RELATIVE_GAP:
                return None
            return (f"exact enumeration over the importance samples in float64: relative gap {gap:.3g}, above "
                    f"{SAMPLE_STEP_RELATIVE_GAP:g} (the oracle does not replay importance samples)")
        try:
            replayed = oracle.replay(model, step.lhs, step.relation, step.rhs, counterexample.as_dict(), assumptions)
        except oracle.OracleError:
            return None
        if not replayed.violated or replayed.margin < self.settings.certified_margin:
            return None
        return (f"confirmed in 50-digit arithmetic: lhs = {_short(replayed.lhs)}, rhs = {_short(replayed.rhs)}, "
                f"gap {_short(replayed.gap)} against an error bound of {_short(replayed.bound)}")

    def _search_all(self, instances, assumptions, seed: int):
        """Search every numeric instantiation of the step (vector sizes, component indices) for a certified
        counterexample. Returns (counterexample or None, instances tried, candidates rejected as noise)."""
        total, rejected = 0, 0
        for k, case in enumerate(instances):
            counterexample, tried = self._search(case.model, assumptions, case.step, seed + 7919 * k, sanity=False,
                                                 constant=case.constant, note=case.note)
            total += tried
            rejected += self._rejected
            if counterexample is not None:
                return counterexample, total, rejected
        return None, total, rejected

    # -------------------------------------------------------------------------------------------- symbolic
    def _prove(self, model: Model, step: Step):
        canon = Canonicalizer(model)
        try:
            difference = canon.canonical(step.lhs) - canon.canonical(step.rhs)
        except ModelError as error:
            return None, [], f"no symbolic argument: {error}"
        rules = sorted(canon.rules)
        if step.relation == "=":
            if difference.is_zero():
                return "lhs - rhs = 0 (identity)", rules, None
            return None, rules, "the two sides do not reduce to the same canonical form"
        if step.relation == "= const":
            if not model.has_parameters():
                return None, rules, ("'= const' is vacuous here: the model declares no parametric factor (mark them "
                                     "with their parameter subscript, e.g. p_theta(x|z))")
            parametric = [a for a in difference.terms if _depends_on_parameters(model, a)]
            if not parametric:
                constant = display_form(model, difference)
                return (f"lhs - rhs = {constant}, which does not depend on the parameters", rules, None)
            return None, rules, ("the difference depends on the parameters through "
                                 + display_form(model, LinearForm({a: difference.terms[a] for a in parametric})))
        oriented = difference if step.relation == ">=" else -difference
        if oriented.is_zero():
            return ("difference = 0 (the sides are equal)", rules, None)
        found = find_certificate(oriented, canon, seed=_seed_for(model.name, step.lhs))
        if isinstance(found, Certificate):
            sides = "lhs - rhs" if step.relation == ">=" else "rhs - lhs"
            return f"{sides} = {found.text()} >= 0", sorted(canon.rules | {"non-negativity of KL / MI / TC / Jensen gap"}), None
        _, tried = found
        return None, rules, (f"the difference is not a recognisable non-negative combination of KLs / MIs / TCs "
                             f"({tried} candidate terms tried)")

    # -------------------------------------------------------------------------------------------- numeric
    def _search(self, base_model: Model, assumptions, step: Step, seed: int, sanity: bool,
                constant: frozenset = frozenset(), note: str = ""):
        """Look for an instance violating the step. Returns (counterexample or None, instances tried). Components in
        ``constant`` have one value in every instance (they stand for many alike; see :func:`numeric_instances`). A
        candidate counts only once :meth:`_certify` confirms it (``self._rejected`` counts those it did not)."""
        settings = self.settings
        model = base_model
        for assumption in assumptions:
            model = assumption.apply(model)
        self._rejected = 0

        def certified(candidate):
            if candidate is None:
                return None
            confirmation = self._certify(base_model, assumptions, step, candidate)
            if confirmation is None:
                self._rejected += 1
                return None
            candidate.text += f"\n({confirmation})"
            candidate.certified = confirmation
            return _noted(candidate, note)

        rng = np.random.default_rng(seed)
        evaluator = Evaluator(model)
        count = settings.sanity_instances if sanity else settings.random_instances
        tried = 0
        starts: list[tuple[float, InstanceSpace, np.ndarray]] = []
        for k in range(count):
            sizes = random_sizes(model, rng, max_size=2 if k % 2 == 0 else 3)
            sizes.update({a: 1 for a in constant})
            space = InstanceSpace(model, sizes)
            scale = (1.0, 3.0, 0.3)[k % 3]
            vector = space.random_vector(rng, scale)
            tried += 1
            amount, counterexample = self._violation(evaluator, space, vector, step, rng)
            if sanity and counterexample is not None:
                return counterexample, tried
            counterexample = certified(counterexample)
            if counterexample is not None:
                return counterexample, tried
            starts.append((amount, space, vector))
        if sanity:
            return None, tried
        if not constant and not model.discrete:  # a linear-Gaussian instance has no constant or discrete variables
            gaussian, gaussian_tried = self._gaussian_search(model, step, rng, certified)
            tried += gaussian_tried
            if gaussian is not None:
                return gaussian, tried
        starts.sort(key=lambda item: -item[0])
        for amount, space, vector in starts[: settings.local_search_starts]:
            step_size, current, best = 1.0, vector, amount
            for _ in range(settings.local_search_iterations):
                proposal = current + rng.normal(0.0, step_size, size=current.shape)
                tried += 1
                new_amount, counterexample = self._violation(evaluator, space, proposal, step, rng)
                counterexample = certified(counterexample)
                if counterexample is not None:
                    return counterexample, tried
                if new_amount > best:
                    current, best = proposal, new_amount
                    step_size = min(step_size * 1.5, 4.0)
                else:
                    step_size = max(step_size * 0.9, 0.05)
        return None, tried

    def _gaussian_search(self, model: Model, step: Step, rng, certified=lambda candidate: candidate):
        """Look for a linear-Gaussian counterexample (for steps that hold on every discrete instance): random
        instances, then a local search that maximizes the violation."""
        evaluator = GaussianEvaluator(model)
        dimension = GaussianInstance.dimension(model)
        mask = GaussianInstance.parametric_mask(model)
        points = rng.normal(0.0, 2.0, size=(6, len(model.atoms)))
        other_vector = rng.normal(0.0, 1.0, size=dimension)

        def attempt(vector, coefficients):
            instance = GaussianInstance(model, vector, coefficients)
            with np.errstate(all="ignore"):
                lhs = evaluator.value(step.lhs, instance).at(points)
                rhs = evaluator.value(step.rhs, instance).at(points)
                if step.relation == "= const":
                    changed = np.where(mask, other_vector, vector)
                    other = GaussianInstance(model, changed, coefficients)
                    other_difference = evaluator.value(step.lhs, other).at(points) - evaluator.value(step.rhs, other).at(points)
            if not (np.all(np.isfinite(lhs)) and np.all(np.isfinite(rhs))):
                return -np.inf, None
            if step.relation != "= const":
                gap = relation_gap(step.relation, lhs, rhs)
            else:
                if not mask.any():
                    return -np.inf, None
                difference = lhs - rhs
                gap = np.abs(difference - other_difference) / (1.0 + np.abs(difference) + np.abs(other_difference))
            worst = int(np.argmax(gap))
            if gap[worst] <= self.settings.tolerance:
                return float(gap[worst]), None
            assignment = {a: float(points[worst, i]) for i, a in enumerate(model.atoms)}
            text = (f"lhs = {lhs[worst]:.6g}, rhs = {rhs[worst]:.6g} at "
                    + ", ".join(f"{a}={v:.4g}" for a, v in assignment.items())
                    + f" (relation {step.relation} fails)\n{instance.describe()}")
            exported = dict(instance.as_dict(), description=instance.describe().splitlines())
            second = None
            if step.relation == "= const":
                second = GaussianInstance(model, np.where(mask, other_vector, vector), coefficients).as_dict()
            return float(gap[worst]), Counterexample(exported, text, assignment, float(lhs[worst]), float(rhs[worst]),
                                                     second)

        tried, best = 0, (-np.inf, None, None)
        try:
            for k in range(self.settings.gaussian_instances):
                coefficients = {name: to_range(rng.normal(0.0, 1.5), r) for name, r in model.coefficient_ranges.items()}
                vector = rng.normal(0.0, (1.0, 0.3, 2.0)[k % 3], size=dimension)
                tried += 1
                amount, counterexample = attempt(vector, coefficients)
                counterexample = certified(counterexample)
                if counterexample is not None:
                    return counterexample, tried
                if amount > best[0]:
                    best = (amount, vector, coefficients)
            if best[1] is None:
                return None, tried
            amount, current, coefficients = best
            step_size = 0.5
            for _ in range(2 * self.settings.local_search_iterations):
                proposal = current + rng.normal(0.0, step_size, size=dimension)
                tried += 1
                new_amount, counterexample = attempt(proposal, coefficients)
                counterexample = certified(counterexample)
                if counterexample is not None:
                    return counterexample, tried
                if new_amount > amount:
                    current, amount, step_size = proposal, new_amount, min(step_size * 1.5, 3.0)
                else:
                    step_size = max(step_size * 0.9, 0.05)
        except (GaussianUnsupported, np.linalg.LinAlgError):
            return None, tried
        return None, tried

    def _violation(self, evaluator: Evaluator, space: InstanceSpace, vector: np.ndarray, step: Step, rng):
        """How much the step fails on this instance (negative = holds with margin), and a counterexample if it does."""
        tol = self.settings.tolerance
        instance = space.instance(vector)
        with np.errstate(all="ignore"):
            lhs = evaluator.value(step.lhs, instance)
            rhs = evaluator.value(step.rhs, instance)
        lhs, rhs = np.broadcast_arrays(lhs, rhs)
        if not (np.all(np.isfinite(lhs)) and np.all(np.isfinite(rhs))):
            return -np.inf, None
        if step.relation != "= const":
            gap = relation_gap(step.relation, lhs, rhs)
        else:  # "= const": the difference must not change when the parametric factors change
            other_vector = vector.copy()
            mask = space.parametric_mask()
            other_vector[mask] = rng.normal(0.0, 1.0, size=int(mask.sum()))
            other = space.instance(other_vector)
            with np.errstate(all="ignore"):
                other_lhs, other_rhs = np.broadcast_arrays(evaluator.value(step.lhs, other), evaluator.value(step.rhs, other))
            if not (np.all(np.isfinite(other_lhs)) and np.all(np.isfinite(other_rhs))):
                return -np.inf, None
            first_difference, second_difference = np.broadcast_arrays(lhs - rhs, other_lhs - other_rhs)
            gap = np.abs(first_difference - second_difference) / (1.0 + np.abs(first_difference) + np.abs(second_difference))
            worst = np.unravel_index(int(np.argmax(gap)), gap.shape) if gap.ndim else ()
            amount = float(gap[worst]) if gap.ndim else float(gap)
            if amount > tol and mask.any():
                text = (f"lhs - rhs changes when the parametric factors change: {float(first_difference[worst]):.6g} "
                        f"on instance A, {float(second_difference[worst]):.6g} on instance B (same non-parametric factors)\n"
                        f"instance A:\n{instance.describe()}\ninstance B:\n{other.describe()}")
                return amount, Counterexample(instance.as_dict(), text, assignment_at(worst, gap.shape, instance),
                                              float(lhs[worst]), float(rhs[worst]), other.as_dict())
            return amount, None
        worst = np.unravel_index(int(np.argmax(gap)), gap.shape) if gap.ndim else ()
        amount = float(gap[worst]) if gap.ndim else float(gap)
        if amount > tol:
            assignment = assignment_at(worst, gap.shape, instance)
            at = ", ".join(f"{k}={v}" for k, v in assignment.items())
            text = (f"lhs = {float(lhs[worst]):.6g}, rhs = {float(rhs[worst]):.6g}" + (f" at {at}" if at else "")
                    + f" (relation {step.relation} fails)\n{instance.describe()}")
            return amount, Counterexample(instance.as_dict(), text, assignment, float(lhs[worst]), float(rhs[worst]))
        return amount, None


#: The spreads of the oracle's linear-Gaussian instances in a proof's cross-check, in turn: at 1/16 every
#: differential entropy is negative, so a proof that takes one for non-negative is caught (sigmas drawn from 1/2 up
#: keep them all positive at scale 1).
ORACLE_GAUSSIAN_SCALES = (Fraction(1), Fraction(1, 16), Fraction(16))

#: The relative gap a counterexample of a step over importance samples must exceed (no oracle replay for those).
SAMPLE_STEP_RELATIVE_GAP = 1e-6


def _uses_samples(step: "Step") -> bool:
    return any(isinstance(node, Expectation) and isinstance(node.measure, IndexedProduct)
               for side in (step.lhs, step.rhs) for node in sympy.preorder_traversal(side))


def _short(value) -> str:
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return str(value)


def replay_counterexample(model: Model, step: "Step", counterexample: dict):
    """Recompute an exported counterexample (``StepResult.counterexample.as_dict()``, e.g. from ``--json``) in
    50-digit arithmetic with the independent oracle: returns its :class:`~elbocheck.derivations.oracle.Replay`
    (``lhs``, ``rhs``, ``gap``, ``bound``, ``violated``)."""
    model = model.with_versions(model.versions_in(step.lhs) + model.versions_in(step.rhs))
    cases, _ = numeric_instances(model, step)
    domains = counterexample.get("instance", {}).get("domains", {})
    for case in cases:  # the instantiation (vector sizes) the exported instance belongs to
        if not domains or set(domains) == set(case.model.atoms):
            return oracle.replay(case.model, case.step.lhs, case.step.relation, case.step.rhs, counterexample,
                                 step.assumptions)
    raise ModelError("the exported instance does not match any numeric instantiation of the step")


def _noted(counterexample: Counterexample, note: str) -> Counterexample:
    if note:
        counterexample.text += f"\n({note})"
        counterexample.instance["constant_components"] = note
    return counterexample


def relation_gap(relation: str, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """How far ``lhs REL rhs`` fails, relative to the size of the values (positive where it fails)."""
    scale = 1.0 + np.maximum(np.abs(lhs), np.abs(rhs))
    if relation == "=":
        return np.abs(lhs - rhs) / scale
    if relation == ">=":
        return (rhs - lhs) / scale
    return (lhs - rhs) / scale


def _depends_on_parameters(model: Model, atom) -> bool:
    if atom == CONSTANT:
        return False
    if isinstance(atom, ComponentSum):
        return _depends_on_parameters(model, atom.inner)

    def factor_parametric(f) -> bool:
        return model.graphs[f.family].depends_on_parameters(f.targets | f.given)

    if any(factor_parametric(f) for f in atom.measure):
        return True
    if isinstance(atom, LogFactor):
        return atom.block.parametric
    if isinstance(atom, LogMarginal):
        return model.graphs[atom.family].depends_on_parameters(atom.nodes)
    if isinstance(atom, LogExpectation):
        return any(factor_parametric(f) for f in atom.inner) or any(_depends_on_parameters(model, a) for a, _ in atom.integrand)
    if isinstance(atom, LogMeanExp):
        return any(factor_parametric(f) for f in atom.base) or any(_depends_on_parameters(model, a) for a, _ in atom.integrand)
    return True


#: The largest number of components a vector may have in a numeric (discrete or linear-Gaussian) instance.
NUMERIC_COMPONENTS = 6


def symbolic_model_for(model: Model, step: Step) -> tuple[Model, Step]:
    """The model (and the step) the symbolic side works on: vectors in generic form, one generic component ``z_[j]``
    and the others. A step that names one particular component of a vector (``z_1``) is, by the symmetry of the
    declaration under relabelling components, the same claim for a generic component; a step that names several
    needs the numeric size."""
    if not model.vectors:
        return model, step
    named = particular_components(step.lhs, model.vectors) | particular_components(step.rhs, model.vectors)
    in_assumptions = set()
    for assumption in step.assumptions:
        for spec in (assumption.joint,) + tuple(assumption.factors):
            in_assumptions |= particular_components(density(spec), model.vectors)
    if in_assumptions:  # an assumption about particular components needs the numeric size
        if model.has_symbolic_sizes():
            raise ModelError(f"an assumption names particular components ({', '.join(sorted(in_assumptions))}) of a "
                             "vector whose size is a symbol; write it with a template, e.g. prod_j q(z_j|x)")
        return model, step
    if not named:
        return model.generic_model(), step
    by_vector: dict[str, set[str]] = {}
    for name in named:
        vector, _, index = name.rpartition("_")
        by_vector.setdefault(vector, set()).add(index)
    free = free_component_indices(sympy.Add(step.lhs, step.rhs, evaluate=False), model.vectors)
    letters_used = {v for vectors in free.values() for v in vectors}
    if all(len(indices) == 1 for indices in by_vector.values()) and not (letters_used & set(by_vector)):
        mapping = {sympy.Symbol(f"{v}_{next(iter(i))}"): sympy.Symbol(generic_component(v)) for v, i in by_vector.items()}
        renamed = Step(step.lhs.xreplace(mapping), step.relation, step.rhs.xreplace(mapping), step.assumptions,
                       step.expected, step.label, step.note, step.line)
        return model.generic_model(), renamed
    if model.has_symbolic_sizes():
        raise ModelError(f"the step names particular components ({', '.join(sorted(named))}) of a vector whose "
                         "size is a symbol; declare a numeric size, or write the step for a generic component z_j")
    largest = max(int(n) for n in model.vector_sizes.values())
    if largest > 4 * NUMERIC_COMPONENTS:
        raise ModelError(f"the step names several particular components ({', '.join(sorted(named))}) of a vector "
                         f"with {largest} components; name at most one component of each vector, or a generic z_j")
    return model, step


@dataclass
class NumericCase:
    """A numeric instantiation of a step: a model with numeric vector sizes, the step with indexed sums written out
    and free component indices given values, and the components that are constant (one value) in every instance,
    standing for many alike (a vector of 512 components as z_1, z_2 and z_3 for the other 510)."""

    model: Model
    step: Step
    constant: frozenset = frozenset()
    note: str = ""


def numeric_instances(model: Model, step: Step) -> tuple[list[NumericCase], str | None]:
    """Numeric instantiations of a step. A symbolic size J takes the values 2, 1, 3 within its declared range. A
    vector with more than :data:`NUMERIC_COMPONENTS` components keeps two components and a third that is constant,
    standing for all the others: constant components contribute nothing to any log-density, so such an instance is
    an instance of the full vector, evaluated exactly (its sums count the third component's term J - 2 times).
    Returns also why there are none, if there are none."""
    if not model.vectors and not model.samples:
        return [NumericCase(model, step)], None
    symbolic = [size for size in list(model.vector_sizes.values()) + list(model.sample_sizes.values())
                if not size.is_Integer]
    if symbolic:
        names = sorted({str(size) for size in symbolic})
        choices = []
        for value in (2, 1, 3):
            if all(model.coefficient_ranges[n].contains(value) for n in names):
                choices.append({n: value for n in names})
        if not choices:
            return [], f"no numeric search: no size of 1, 2 or 3 components is in the declared range of {names}"
    else:
        choices = [{}]
    named = particular_components(step.lhs, model.vectors) | particular_components(step.rhs, model.vectors)
    out = []
    for sizes in choices:
        values = {v: int(n.subs({sympy.Symbol(k, real=True): val for k, val in sizes.items()}))
                  for v, n in model.vector_sizes.items()}
        large = {v: n for v, n in values.items() if n > NUMERIC_COMPONENTS}
        samples = {v: int(n.subs({sympy.Symbol(k, real=True): val for k, val in sizes.items()}))
                   for v, n in model.sample_sizes.items()}
        if any(n > 4 for n in samples.values()):
            return [], (f"no numeric search: {max(samples.values())} importance samples (numeric instances enumerate "
                        "at most 4); the symbolic side decides this step alone")
        if large and any(int(name.rsplit("_", 1)[1]) > 2 for name in named if name.rsplit("_", 1)[0] in large):
            return [], (f"no numeric search: the step names components beyond the second of a vector with "
                        f"{max(large.values())} components")
        concrete_model = model.expanded_model(sizes)
        constant = frozenset()
        note = ""
        if large:
            concrete_model = concrete_model._copy(vectors={v: (3 if v in large else n) for v, n in values.items()})
            constant = frozenset(f"{v}_3" for v in large)
            note = "; ".join(f"{v}_3 stands for the {n - 2} components {v}_3 .. {v}_{n}, each constant (one value)"
                             for v, n in large.items())
        numeric_sizes = {v: int(n) for v, n in concrete_model.vector_sizes.items()}
        lhs = expand_indexed(step.lhs, numeric_sizes, large)
        rhs = expand_indexed(step.rhs, numeric_sizes, large)
        free = free_component_indices(sympy.Add(lhs, rhs, evaluate=False), model.vectors)
        assignments = [{}]
        for letter, vectors in free.items():
            size = numeric_sizes[sorted(vectors)[0]]
            live = 2 if any(v in large for v in vectors) else size
            assignments = [dict(a, **{letter: k}) for a in assignments for k in range(1, live + 1)]
        for assignment in assignments:
            mapping = {}
            for letter, k in assignment.items():
                for vector in free[letter]:
                    mapping[sympy.Symbol(f"{vector}_{letter}")] = sympy.Symbol(f"{vector}_{k}")
            concrete = Step(lhs.xreplace(mapping), step.relation, rhs.xreplace(mapping), step.assumptions,
                            step.expected, step.label, step.note, step.line)
            out.append(NumericCase(concrete_model, concrete, constant, note))
    return out, None


def check(model: Model, lhs, relation: str, rhs, assumptions: Sequence[Factorization] = (), **settings) -> StepResult:
    """Check one step: ``check(model, log(p("p(x)")), ">=", elbo)``."""
    checker = Checker(SearchSettings(**settings) if settings else None)
    return checker.check_step(model, Step(lhs, relation, rhs, tuple(assumptions)))
