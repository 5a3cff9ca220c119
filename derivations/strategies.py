"""Hypothesis strategies for discrete instances of a declared model (imported by tests; needs ``hypothesis``).

An instance draws a domain size per variable, one logit per entry of every declared factor's table (so the instance
respects the declared factorization) and a value for every coefficient in its declared range.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .model import Model
from .numeric import Instance, InstanceSpace


@st.composite
def instances(draw, model: Model, max_size: int = 3) -> Instance:
    sizes = {a: draw(st.integers(2, max_size), label=f"size of {a}") for a in model.atoms}
    space = InstanceSpace(model, sizes)
    logits = draw(st.lists(st.floats(-4.0, 4.0, allow_nan=False), min_size=space.dimension, max_size=space.dimension),
                  label="logits")
    return space.instance(np.asarray(logits, dtype=float))
