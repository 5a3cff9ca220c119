"""Soundness: over random small models and random steps built from their terms, the checker never says "proven" for
a step that exact enumeration on an independently drawn instance (Hypothesis) refutes."""

import numpy as np
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from elbocheck.derivations import Checker, Model, SearchSettings, Step
from elbocheck.derivations.expressions import E, kl, log, mi, ratio
from elbocheck.derivations.numeric import Evaluator
from elbocheck.derivations.strategies import instances

QUICK = Checker(SearchSettings(random_instances=8, sanity_instances=4, local_search_iterations=20, local_search_starts=1))


@st.composite
def models(draw):
    two_latents = draw(st.booleans())
    latent = ["z", "w"] if two_latents else ["z"]
    generative = ["p(z)"]
    if two_latents:
        generative.append(draw(st.sampled_from(["p(w)", "p(w|z)"])))
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
    ]
    if "w" in model.latent:
        pool += [kl("q(w|x)", "p(w)"), E(f"q({latents}|x)", log(ratio(["q(z|x)", "q(w|x)"], [f"q({latents}|x)"])))]
    averaged = [E("p_D(x)", kl("q(z|x)", "p(z)")), mi("x", "z"), kl("q(z)", "p(z)")]
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
    relation = draw(st.sampled_from(["=", ">=", "<="]))
    return model, Step(side(), relation, side())


def holds(relation, lhs, rhs):
    scale = 1.0 + np.maximum(np.abs(lhs), np.abs(rhs))
    if relation == "=":
        return bool(np.all(np.abs(lhs - rhs) <= 1e-8 * scale))
    if relation == ">=":
        return bool(np.all(lhs - rhs >= -1e-8 * scale))
    return bool(np.all(rhs - lhs >= -1e-8 * scale))


@settings(max_examples=60)
@given(case=steps(), data=st.data())
def test_never_proves_a_step_that_enumeration_refutes(case, data):
    model, step = case
    result = QUICK.check_step(model, step)  # raises InternalInconsistency if its own sanity check fails
    if result.verdict != "proven":
        return
    evaluator = Evaluator(model)
    for _ in range(3):
        instance = data.draw(instances(model), label="instance")
        lhs, rhs = np.broadcast_arrays(evaluator.value(step.lhs, instance), evaluator.value(step.rhs, instance))
        assert holds(step.relation, lhs, rhs), (str(step.lhs), step.relation, str(step.rhs), result.certificate)


@settings(max_examples=30)
@given(case=steps())
def test_refutations_are_real(case):
    """A refutation's counterexample really violates the step when re-evaluated from the reported instance."""
    model, step = case
    result = QUICK.check_step(model, step)
    if result.verdict == "refuted":
        c = result.counterexample
        assert not holds(step.relation, np.array(c.lhs), np.array(c.rhs)) or step.relation == "= const"
