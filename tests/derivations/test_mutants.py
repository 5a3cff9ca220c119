"""Deliberately broken checkers must be caught: each mutant below breaks the checker the way issue 9 found it broken
(or worse), with its internal oracle cross-check switched off so that the tests, not the checker, must notice; the
audit of ``soundness_audit.py`` must report a problem for every one of them."""

import dataclasses

import pytest
import sympy

from elbocheck.derivations import Checker, Counterexample, SearchSettings, Step, StepResult, certificates, model as model_module
from elbocheck.derivations.canonical import CONSTANT, Canonicalizer, LinearForm, MeasureFactor
from elbocheck.derivations.checker import InternalInconsistency
from elbocheck.derivations.certificates import Candidate
from elbocheck.derivations.expressions import Density, E, density, entropy, kl, log
from elbocheck.derivations.model import Model

from soundness_audit import all_cases, audit, reproducer_cases, small_gap_cases


@pytest.fixture
def no_cross_check(monkeypatch):
    monkeypatch.setattr(Checker, "_cross_check", lambda self, *args, **kwargs: None)


def caught(checker, cases=None) -> list[str]:
    problems = audit(checker, cases if cases is not None else all_cases(), stop_at_first=True)
    print(problems[:1])  # which case caught it, shown with -s
    return problems


def _certify_entropies_as_nonnegative(monkeypatch):
    original = certificates.candidates_for

    def with_entropies(difference, canon: Canonicalizer):
        out = original(difference, canon)
        for factor, _ in certificates.measure_factors_of(difference):
            r = canon.make(factor.family, factor.targets, factor.given)
            form = canon.with_measure(-canon.log_density(r), [MeasureFactor(r.family, r.targets, r.given)])
            out.append(Candidate("H >= 0 (false for densities)", "H", form))
        return out

    monkeypatch.setattr(certificates, "candidates_for", with_entropies)


def test_a_false_certificate_entropy_is_non_negative(monkeypatch, no_cross_check):
    _certify_entropies_as_nonnegative(monkeypatch)
    assert caught(Checker())


@pytest.mark.parametrize("model, lhs, rhs", [
    (Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"]),
     entropy("q(z|x)"), 0),
    (Model("btc", observed=["x"], latent=["z"], vectors={"z": 3}, generative=["prod_j p(z_j)", "p_theta(x|z)"],
           inference=["q_phi(z|x)"]),
     entropy("q(z_1)") + entropy("q(z_2)") + entropy("q(z_3)"), entropy("q(z_1)")),
], ids=["H(q(z|x)) >= 0", "sum_j H(q(z_j)) >= H(q(z_1))"])
def test_the_run_time_cross_check_catches_a_differential_entropy_taken_for_nonnegative(monkeypatch, model, lhs, rhs):
    """With the cross-check on: a checker that certifies H >= 0 for densities proves these false steps, and the
    oracle must refuse the proof. Its unit-scale Gaussian instances (sigmas from 1/2) have positive entropies
    everywhere; only the narrow instance of the cross-check (``ORACLE_GAUSSIAN_SCALES``) shows the violation."""
    _certify_entropies_as_nonnegative(monkeypatch)
    with pytest.raises(InternalInconsistency, match="violated on a gaussian instance"):
        Checker().check_step(model, Step(lhs, ">=", rhs))


def test_refute_everything_with_made_up_numbers(monkeypatch, no_cross_check):
    def refute(self, model, step, index=1):
        made_up = Counterexample({"domains": {a: 2 for a in model.atoms}, "coefficients": {}, "factors": []},
                                 "made up", {}, -1.0, 1.0)
        return StepResult(index, step.label, step.relation, str(step.lhs), str(step.rhs), "refuted", step.expected,
                          counterexample=made_up)

    monkeypatch.setattr(Checker, "check_step", refute)
    assert caught(Checker())


def test_ignore_subscripts(monkeypatch, no_cross_check):
    original = Model._family_of

    def without_subscripts(self, d: Density):
        if self._auxiliary_key(d) in self.auxiliary_blocks:
            return original(self, d)
        return original(self, Density(d.family, d.targets, d.given))

    monkeypatch.setattr(Model, "_family_of", without_subscripts)
    assert caught(Checker())


def test_drop_an_assumptions_parameters(monkeypatch, no_cross_check):
    def replace_without_inheriting(self, joint, factors):
        joint_d = density(joint)
        family = "generative" if joint_d.family == "p" else "inference"
        specs = list(getattr(self, family))
        i = next(k for k, s in enumerate(specs) if self._same_factor(density(s), joint_d))
        specs[i:i + 1] = list(factors)
        return self._copy(**{family: specs})

    monkeypatch.setattr(Model, "with_factorization", replace_without_inheriting)
    assert caught(Checker())


def test_loosen_the_numeric_tolerance(no_cross_check):
    # a checker that only believes relative gaps above 1e-3 misses small but certain violations
    assert caught(Checker(SearchSettings(tolerance=1e-3)), small_gap_cases())


def test_believe_rounding_noise(monkeypatch, no_cross_check):
    # no certification and no tolerance: the float64 noise of a true identity counts as a violation; on steps the
    # symbolic side leaves open (here: all of them), true identities get refuted
    monkeypatch.setattr(Checker, "_prove", lambda self, model, step: (None, [], "switched off"))
    checker = Checker(SearchSettings(tolerance=0.0, certify=False, random_instances=6, local_search_iterations=20,
                                     local_search_starts=1, gaussian_instances=6))
    assert caught(checker, [c for c in all_cases() if c.truth and c.step.relation == "="])


def test_flip_a_coefficient_sign_in_canonicalisation(monkeypatch, no_cross_check):
    def flipped_kl(self, a, b):
        inner = self.log_density(b) - self.log_density(a)
        return self.with_measure(inner, [MeasureFactor(a.family, a.targets, a.given)])

    monkeypatch.setattr(Canonicalizer, "kl_form", flipped_kl)
    assert caught(Checker())


def test_forget_the_inputs_when_reducing_conditioning_sets(monkeypatch, no_cross_check):
    # a subtler mutant: d-separation that ignores the conditioning set proves independences that do not hold
    monkeypatch.setattr(model_module.FamilyGraph, "minimal_given", lambda self, targets, given: frozenset())
    assert caught(Checker())


def test_the_real_checker_is_not_caught_on_the_fast_cases():
    """The control: the same audit reports nothing for the real checker (the full audit is in test_soundness.py)."""
    assert audit(Checker(), reproducer_cases() + small_gap_cases()) == []


def test_the_run_time_cross_check_catches_a_sign_checked_only_near_the_start_of_an_unbounded_range(monkeypatch):
    """With the cross-check on: a coefficient sign checked on a grid of the first units of its range (a plausible
    shortcut) calls (5 - beta) >= 0 on beta >= 0, proving the false E[log p(x|z)] - beta KL >= E[log p(x|z)] - 5 KL.
    The oracle must refuse the proof: only its far draws of beta (8 to 1024) show the violation."""
    import itertools

    original = certificates.nonnegative

    def on_a_grid(expr, model):
        expr = sympy.sympify(expr)
        symbols = sorted(expr.free_symbols, key=str)
        if not symbols:
            return original(expr, model)
        return all(float(expr.subs(dict(zip(symbols, point)))) >= 0
                   for point in itertools.product([0, 0.5, 1, 2, 3, 4], repeat=len(symbols)))

    monkeypatch.setattr(certificates, "nonnegative", on_a_grid)
    beta = sympy.Symbol("beta", real=True)
    model = Model("weights", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
                  inference=["q_phi(z|x)"], coefficients={"beta": (0, None)})
    reconstruction = E("q(z|x)", log("p(x|z)"))
    with pytest.raises(InternalInconsistency, match="violated on a"):
        Checker().check_step(model, Step(reconstruction - beta * kl("q(z|x)", "p(z)"), ">=",
                                         reconstruction - 5 * kl("q(z|x)", "p(z)")))


def test_the_run_time_cross_check_catches_a_divergence_bounded_by_a_constant(monkeypatch):
    """With the cross-check on: a checker with a false candidate "6 - KL(q(z|x) || p(z)) >= 0" proves the false
    KL(q(z|x) || p(z)) <= 6 for a discrete latent (a KL grows without bound as q(z|x) concentrates where p(z) is
    small). Mild tables (weights below 64) keep every KL under log 127 < 6 (no entry below 1/127), so only the cross-check's peaked instances
    (entries up to 2**20 apart) can show the violation; each does about half the time, and there are three."""
    original = certificates.candidates_for

    def with_a_bounded_kl(difference, canon: Canonicalizer):
        out = original(difference, canon)
        bounded = LinearForm.atom(CONSTANT, 6) - canon.canonical(kl("q(z|x)", "p(z)"))
        out.append(Candidate("6 - KL(q(z|x) || p(z)) (false)", "6 - KL", bounded))
        return out

    monkeypatch.setattr(certificates, "candidates_for", with_a_bounded_kl)
    model = Model("discrete_latent", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"],
                  inference=["q_phi(z|x)"], discrete=["z"])
    with pytest.raises(InternalInconsistency, match="violated on a peaked discrete instance"):
        Checker().check_step(model, Step(6, ">=", kl("q(z|x)", "p(z)")))
