"""The oracle on every step of the library: each step recorded as proven holds on random discrete and
linear-Gaussian instances; each step recorded as refuted (with its mathematical reason in the step's note) is
violated on some instance, confirmed in high precision."""

from fractions import Fraction

import numpy as np
import pytest

from dataclasses import replace

from elbocheck.derivations import Step
from elbocheck.derivations.indexed import expand_indexed
from elbocheck.derivations.library import all_derivations
from elbocheck.derivations.oracle import judge, random_discrete_instance, random_gaussian_instance

def _numeric(d):
    """A derivation with a symbolic vector size (J) at J = 3, its sums over components written out."""
    if not d.model.has_symbolic_sizes():
        return d
    model = d.model.expanded_model({str(n): 3 for n in d.model.vector_sizes.values() if not n.is_Integer})
    sizes = {v: int(n) for v, n in model.vector_sizes.items()}
    steps = [Step(expand_indexed(s.lhs, sizes), s.relation, expand_indexed(s.rhs, sizes), s.assumptions, s.expected,
                  s.label, s.note) for s in d.steps]
    return replace(d, model=model, steps=steps)


STEPS = [(d, i, s) for d in map(_numeric, all_derivations()) for i, s in enumerate(d.steps)]


def _id(case):
    d, i, s = case
    return f"{d.name}-{i}"


def _judge(d, s, instance, precision="float64", rng=0):
    return judge(d.model, s.lhs, s.relation, s.rhs, s.assumptions, instance, precision=precision, rng=rng)


@pytest.mark.parametrize("case", [c for c in STEPS if c[2].expected == "proven"], ids=_id)
def test_proven_steps_hold(case):
    d, _, s = case
    for seed in range(3):
        assert _judge(d, s, random_discrete_instance(d.model, s.assumptions, rng=seed), rng=seed).holds
    for seed in range(2):
        assert _judge(d, s, random_gaussian_instance(d.model, s.assumptions, rng=seed), rng=seed).holds


def _beta_tcvae_boundary(d, s):
    """alpha = 0 < 1 with beta = gamma = 1: the bound needs alpha >= 1."""
    instance = random_discrete_instance(d.model, s.assumptions, rng=0)
    instance.coefficients = {"alpha": Fraction(0), "beta": Fraction(1), "gamma": Fraction(1)}
    return instance


def _posterior_equals_prior(d, s):
    """q(w|x,y) = p(w|y): the KL of w vanishes while I_q(w; y) > 0."""
    instance = random_discrete_instance(d.model, s.assumptions, rng=0)
    structure = instance.structure
    prior = next(f for f in structure.factors if f.text == "p_gamma(w | y)")
    encoder = next(f for f in structure.factors if f.text == "q_phi(w | x, y)")
    table = np.empty([instance.sizes[a] for a in encoder.given + encoder.targets], dtype=object)
    for index in np.ndindex(*table.shape):
        values = dict(zip(encoder.given + encoder.targets, index))
        table[index] = instance.tables[(prior.index, None)][values["y"], values["w"]]
    instance.tables[(encoder.index, None)] = table
    return instance


CONSTRUCTED = {("beta_tcvae_alpha", 0): _beta_tcvae_boundary, ("conditional_prior_surgery", 3): _posterior_equals_prior}


@pytest.mark.parametrize("case", [c for c in STEPS if c[2].expected == "refuted"], ids=_id)
def test_refuted_steps_are_violated_on_some_instance(case):
    d, i, s = case
    if (d.name, i) in CONSTRUCTED:
        candidates = [CONSTRUCTED[(d.name, i)](d, s)]
    else:
        candidates = [random_discrete_instance(d.model, s.assumptions, rng=seed) for seed in range(4)]
        candidates += [random_gaussian_instance(d.model, s.assumptions, rng=seed) for seed in range(3)]
    for instance in candidates:
        if not _judge(d, s, instance).holds:
            assert not _judge(d, s, instance, precision="high").holds
            return
    pytest.fail(f"{d.name} step {i} ({s.note or s.label}) holds on every instance tried")
