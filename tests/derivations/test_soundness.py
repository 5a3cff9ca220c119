"""Soundness: the audit of ``soundness_audit.py`` finds nothing wrong with the real checker, and finds something
wrong with each deliberately broken one (``test_mutants.py``).

The audit trusts nothing the checker says: truths decided by mathematics, proofs re-checked by the independent
oracle on instances the audit draws, refutations replayed by the oracle in 50-digit arithmetic, and verdicts the
checker must reach.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elbocheck.derivations import Checker, Model, SearchSettings, Step
from elbocheck.derivations.expressions import E, entropy, kl, log, mi, ratio

from soundness_audit import Case, audit, corpus_cases, library_cases, reproducer_cases, small_gap_cases


@pytest.mark.parametrize("group", ["reproducers", "small gaps", "library"])
def test_the_audit_finds_nothing_wrong_with_the_checker(group):
    cases = {"reproducers": reproducer_cases, "small gaps": small_gap_cases, "library": library_cases}[group]()
    assert audit(Checker(), cases) == []


def test_the_audit_finds_nothing_wrong_on_the_adversarial_corpus():
    assert audit(Checker(), corpus_cases(), instances=1) == []


def test_with_the_symbolic_side_switched_off_no_true_identity_is_refuted(monkeypatch):
    """Every proven identity of the library goes to the numeric search instead: certification must reject the
    rounding noise of float64 evaluation (issue 9 item 4), so nothing true is refuted."""
    monkeypatch.setattr(Checker, "_prove", lambda self, model, step: (None, [], "symbolic side switched off"))
    identities = [c for c in library_cases() if c.truth and c.step.relation in ("=", "= const")]
    quick = Checker(SearchSettings(random_instances=6, local_search_iterations=30, local_search_starts=1,
                                   gaussian_instances=6))
    refuted = [c.name for c in identities if quick.check_step(c.model, c.step).verdict == "refuted"]
    assert refuted == []


# ------------------------------------------------------------------------------------------------ random steps

QUICK = Checker(SearchSettings(random_instances=8, local_search_iterations=20, local_search_starts=1,
                               gaussian_instances=6))


@st.composite
def models(draw):
    two_latents = draw(st.booleans())
    latent = ["z", "w"] if two_latents else ["z"]
    generative = ["p(z)"]
    if two_latents:
        generative.append(draw(st.sampled_from(["p(w)", "p_theta(w|z)"])))
        decoder = draw(st.sampled_from(["p_theta(x|z,w)", "p_theta(x|w)", "p_theta(x|z)"]))
        inference = draw(st.sampled_from([["q_phi(z,w|x)"], ["q_phi(z|x)", "q_phi(w|x)"], ["q_phi(z|x)", "q_phi(w|z,x)"]]))
    else:
        decoder = "p_theta(x|z)"
        inference = ["q_phi(z|x)"]
    generative.append(decoder)
    return Model("random", observed=["x"], latent=latent, generative=generative, inference=inference)


def term_pool(model):
    latents = "z,w" if "w" in model.latent else "z"
    pool = [
        log("p(x)"),
        E(f"q({latents}|x)", log(f"p(x|{latents})")),
        kl(f"q({latents}|x)", f"p({latents})"),
        kl(f"q({latents}|x)", f"p({latents}|x)"),
        E(f"q({latents}|x)", log(ratio([f"p(x,{latents})"], [f"q({latents}|x)"]))),
        E(f"q({latents}|x)", log(f"q({latents}|x)")),
        kl("q(z|x)", "p(z)"),
        E("q(z|x)", log("p(z)")),
        log(E(f"q({latents}|x)", ratio([f"p(x,{latents})"], [f"q({latents}|x)"]))),
        entropy(f"q({latents}|x)"),  # a differential entropy: either sign
    ]
    if "w" in model.latent:
        pool += [kl("q(w|x)", "p(w)"), E(f"q({latents}|x)", log(ratio(["q(z|x)", "q(w|x)"], [f"q({latents}|x)"])))]
    averaged = [E("p_D(x)", kl("q(z|x)", "p(z)")), mi("x", "z"), kl("q(z)", "p(z)"), E("p_D(x)", log("p(x)")),
                entropy("q(z)")]
    return pool, averaged


@st.composite
def steps(draw):
    model = draw(models())
    pointwise, averaged = term_pool(model)
    pool = draw(st.sampled_from([pointwise, averaged]))

    def side():
        chosen = draw(st.lists(st.sampled_from(range(len(pool))), min_size=1, max_size=3, unique=True))
        coefficients = draw(st.lists(st.sampled_from([-2, -1, 1, 2]), min_size=len(chosen), max_size=len(chosen)))
        return sum(c * pool[i] for c, i in zip(coefficients, chosen))

    relation = draw(st.sampled_from(["=", ">=", "<=", "=const"]))
    return model, Step(side(), relation, side())


@settings(max_examples=40)
@given(case=steps(), seed=st.integers(0, 2 ** 16))
def test_random_steps_survive_the_audit(case, seed):
    """Random steps of random models: every proof holds on the audit's own oracle instances and every refutation
    replays (the truth of a random step is not known in advance; the oracle judges the verdict)."""
    model, step = case
    assert audit(QUICK, [Case("random step", model, step)], instances=2, seed=seed) == []


def test_the_audit_itself_catches_a_contradicted_truth():
    """The audit is not vacuous: a checker that answers "proven" for a false case is reported."""

    class Yes:
        def check_step(self, model, step):
            result = Checker().check_step(model, step)
            result.verdict, result.certificate = "proven", "trust me"
            return result

    false_case = [c for c in reproducer_cases() if c.truth is False][:1]
    assert audit(Yes(), false_case)
    assert np.all([p for p in audit(Yes(), false_case)])
