"""An audit of a checker's verdicts that trusts nothing the checker says (imported by the soundness tests).

For each case:

* a verdict that contradicts the case's **truth** (decided by mathematics: the adversarial corpus, the reproducers of
  issue 9, steps built to be true by a rule of probability) is a problem;
* every **proof** is re-checked by the independent oracle (``derivations/oracle``: its own reading of the declaration,
  brute-force discrete tables and exact linear-Gaussian integrals) on random instances the audit draws itself; a
  violation confirmed in 50-digit arithmetic is a problem;
* every **refutation** is replayed by the oracle from the exported counterexample; a counterexample the oracle does not
  confirm (rounding noise, made-up numbers, an instance of another model) is a problem;
* a case marked ``must`` (a verdict the checker is required to reach: the library's recorded verdicts, false steps
  whose violation is small but certain) that ends elsewhere is a problem (a loss of completeness).

The checker under audit is any object with ``check_step(model, step)``: the tests run the real checker and
deliberately broken ones (``test_mutants.py``), and the audit must report the broken ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy

from elbocheck.derivations import Factorization, Model, ModelError, Step, oracle, replay_counterexample
from elbocheck.derivations.checker import InternalInconsistency, numeric_instances
from elbocheck.derivations.corpus.adversarial import STEPS as CORPUS
from elbocheck.derivations.expressions import E, entropy, kl, log, ratio
from elbocheck.derivations.library import all_derivations


@dataclass(frozen=True)
class Case:
    name: str
    model: Model
    step: Step
    truth: bool | None = None  # None: not known to the audit (only the oracle judges the verdict)
    must: str | None = None  # a verdict the checker must reach, or "error" (a step the semantics give no meaning)


VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"])
TWO_LAYER = Model("two", observed=["x"], latent=["z_1", "z_2"],
                  generative=["p(z_2)", "p_theta(z_1|z_2)", "p_theta(x|z_1)"],
                  inference=["q_phi(z_1|x)", "q_phi(z_2|z_1)"])
SMALL = sympy.Rational(1, 2000)


def small_gap_cases() -> list[Case]:
    """False steps whose violation is small (relative gaps around 1e-4) but certain: a checker that only believes
    large gaps misses them."""
    elbo = E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))
    return [
        Case("small gap: log p(x) = log p(x) + 1/2000", VAE, Step(log("p(x)"), "=", log("p(x)") + SMALL), False, "refuted"),
        Case("small gap: ELBO >= ELBO + 1/2000", VAE, Step(elbo, ">=", elbo + SMALL), False, "refuted"),
        Case("small gap: KL >= 1/2000 at all parameters", VAE, Step(kl("q(z|x)", "p(z)"), ">=", SMALL), False, "refuted"),
    ]


def reproducer_cases() -> list[Case]:
    """The reproducers of issue 9, with their truths."""
    mean_field = Model("mf", observed=["x"], latent=["z_l", "z_u"],
                       generative=["p(z_l)", "p(z_u)", "p_theta(x|z_l,z_u)"], inference=["q_phi(z_l,z_u|x)"])
    assumption = (Factorization("q(z_l,z_u|x)", ("q(z_l|x)", "q(z_u|x)")),)
    adversary = Model("adv", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
                      inference=["q_phi(z|x)"], auxiliary=["q_psi(z|x)"])
    return [
        Case("issue 9.1: dropped term depends on phi", mean_field,
             Step(-kl("q(z_u|x)", "p(z_u)"), "=const", entropy("q(z_u|x)"), assumption), False, "refuted"),
        Case("issue 9.2: an undeclared subscript is not the encoder", VAE,
             Step(kl("q_phi(z|x)", "q_psi(z|x)"), "=", 0), None, "error"),
        Case("issue 9.2: q_phi and q_psi are different densities", adversary,
             Step(kl("q_phi(z|x)", "q_psi(z|x)"), "=", 0), False, "refuted"),
        Case("issue 9.3: a subscript in a model without parameters", Model(
            "plain", observed=["x"], latent=["z"], generative=["p(z)", "p(x|z)"], inference=["q(z|x)"]),
             Step(log("p_theta(x)"), "=const", 0), None, "error"),
        Case("issue 9.2: theta_old is another parameter value", VAE,
             Step(log("p_theta(x)"), "=", log("p_theta_old(x)")), False, "refuted"),
        Case("issue 9.4: chain rule through a marginal prior", TWO_LAYER,
             Step(log("p(x,z_1)"), "=", log("p(z_1)") + log("p(x|z_1)")), True, "proven"),
        Case("issue 9.4: Bayes' rule through a marginal prior", TWO_LAYER,
             Step(log("p(z_1|x)"), "=", log("p(x|z_1)") + log("p(z_1)") - log("p(x)")), True, "proven"),
        Case("issue 9.5: a product measure is a set", VAE,
             Step(E(["q(z|x)", "p_D(x)"], log("q(z|x)")), "=", E(["p_D(x)", "q(z|x)"], log("q(z|x)"))), True, "proven"),
        Case("entropy of a density is not non-negative", VAE, Step(entropy("q(z|x)"), ">=", 0), False, "refuted"),
        Case("the ELBO bounds the evidence", VAE,
             Step(log("p(x)"), ">=", E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))), True, "proven"),
        Case("the averaged evidence is above the averaged two-layer ELBO", TWO_LAYER,
             Step(E("p_D(x)", log("p(x)")), ">=",
                  E("p_D(x)", E("q(z_1|x)", E("q(z_2|z_1)", log(ratio(["p(x,z_1,z_2)"],
                                                                       ["q(z_1|x)", "q(z_2|z_1)"])))))), True,
             "proven"),
    ]


def corpus_cases() -> list[Case]:
    return [Case(f"corpus: {e.name}", e.model, Step(e.lhs, e.relation, e.rhs, tuple(e.assumptions)), e.truth)
            for e in CORPUS]


def library_cases() -> list[Case]:
    return [Case(f"library: {d.name} / {s.label}", d.model, s, s.expected == "proven", s.expected)
            for d in all_derivations() for s in d.steps]


def all_cases() -> list[Case]:
    return reproducer_cases() + small_gap_cases() + corpus_cases() + library_cases()


# ------------------------------------------------------------------------------------------------ the audit


#: Spreads of the audit's linear-Gaussian instances: at 1/16 every differential entropy is negative and densities
#: exceed 1; at 16 entropies are large. Unit-scale instances alone would pass any step that takes a differential
#: entropy for non-negative.
AUDIT_SCALES = (Fraction(1), Fraction(1, 16), Fraction(16))


def _proof_violated(case: Case, rng: np.random.Generator, instances: int) -> str | None:
    """A violation of a proven step on oracle instances drawn by the audit, confirmed in high precision."""
    model = case.model.with_versions(case.model.versions_in(case.step.lhs) + case.model.versions_in(case.step.rhs))
    numeric, _ = numeric_instances(model, case.step)
    for numeric_case in numeric:
        if numeric_case.model.samples or numeric_case.constant:
            continue  # outside the oracle's language (importance samples) or its instances (constant components)
        step = numeric_case.step
        gaussians = 0 if numeric_case.model.discrete else max(1, instances // 2)
        first = int(rng.integers(len(AUDIT_SCALES)))  # which spread comes first: all of them over seeds
        peaked_first = bool(rng.integers(2))  # mild and peaked tables alternate, from a seeded start
        drawn = discretes = 0
        for kind in ["discrete"] * instances + ["gaussian"] * gaussians:
            try:
                if kind == "discrete":
                    peaked = (discretes % 2 == 0) == peaked_first
                    discretes += 1
                    instance = oracle.random_discrete_instance(numeric_case.model, step.assumptions, rng,
                                                               peaked=peaked)
                else:
                    scale = AUDIT_SCALES[(first + drawn) % len(AUDIT_SCALES)]
                    drawn += 1
                    instance = oracle.random_gaussian_instance(numeric_case.model, step.assumptions, rng,
                                                               scale=scale)
                second = instance.redraw_parametric(rng) if step.relation == "= const" else None
                judgement = oracle.judge(numeric_case.model, step.lhs, step.relation, step.rhs, step.assumptions,
                                         instance, second_instance=second, rng=rng, points=4)
                if judgement.holds:
                    continue
                points = [dict(r.assignment) for r in judgement.rows] if kind == "gaussian" else 4
                judgement = oracle.judge(numeric_case.model, step.lhs, step.relation, step.rhs, step.assumptions,
                                         instance, second_instance=second, rng=rng, precision="high", points=points)
            except (oracle.Unsupported, oracle.Divergent):
                continue
            except oracle.OracleError as error:
                return f"the oracle cannot give the proven step a meaning: {error}"
            if not judgement.holds:
                return f"violated on a {kind} instance: {judgement.summary()}"
    return None


def audit(checker, cases: list[Case], instances: int = 2, stop_at_first: bool = False, seed: int = 0) -> list[str]:
    """The problems the audit finds in ``checker``'s verdicts on ``cases`` (empty when there are none)."""
    rng = np.random.default_rng(seed)
    problems: list[str] = []
    for case in cases:
        try:
            result = checker.check_step(case.model, case.step)
        except InternalInconsistency as error:  # the checker's own cross-check fired: a bug, reported as one
            problems.append(f"{case.name}: internal inconsistency: {error}")
        except ModelError:
            if case.must and case.must != "error":
                problems.append(f"{case.name}: the checker gave no meaning to a step it must decide")
            continue
        else:
            if case.must == "error":
                problems.append(f"{case.name}: a step without meaning got the verdict {result.verdict}: "
                                f"{result.summary()[:200]}")
            verdict = result.verdict
            if case.truth is not None and ((verdict == "proven" and not case.truth)
                                          or (verdict == "refuted" and case.truth)):
                problems.append(f"{case.name}: truth {case.truth}, checker {verdict}: {result.summary()[:200]}")
            if verdict == "proven":
                violation = _proof_violated(case, rng, instances)
                if violation:
                    problems.append(f"{case.name}: proven ({result.certificate}) but {violation}")
            elif verdict == "refuted":
                try:
                    replayed = replay_counterexample(case.model, case.step, result.counterexample.as_dict())
                    if not replayed.violated:
                        problems.append(f"{case.name}: the counterexample is not confirmed by the oracle "
                                        f"(lhs {replayed.lhs}, rhs {replayed.rhs})")
                except (oracle.OracleError, ModelError, AttributeError, KeyError, TypeError, ValueError) as error:
                    problems.append(f"{case.name}: the counterexample cannot be replayed: {error}")
            if case.must and case.must != "error" and verdict != case.must:
                problems.append(f"{case.name}: must be {case.must}, checker {verdict}")
        if stop_at_first and problems:
            break
    return problems
