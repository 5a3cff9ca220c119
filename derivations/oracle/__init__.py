"""An independent oracle for derivation steps: brute-force discrete and exact linear-Gaussian evaluation.

What it computes
----------------
The value of every term of docs/semantics.md (densities, marginals, conditionals, the aggregate posterior,
expectations under product measures, KL, mutual information, total correlation, entropy, logs, powers with numeric or
coefficient exponents, numbers, coefficients) on concrete instances of a declared model, and a judgement of a step
``lhs REL rhs`` (``=``, ``>=``, ``<=``, ``= const``) at every value of its free variables.

* **Discrete** (:func:`random_discrete_instance`): each atom (a variable, or a component ``z_j`` of a vector) gets a
  small domain; each declared factor (after assumptions) a strictly positive table of exact rationals; a parameter
  version (``theta_old``) its own tables for the factors parametric in that set. The full joint table of each family
  (``p`` given its inputs; ``q = p_D x`` encoder factors; each auxiliary density) is the product of its factors, and
  every density ``F(A|B)`` is computed from it by brute force (sum out, divide).
* **Linear-Gaussian** (:func:`random_gaussian_instance`): every factor a linear-Gaussian regression per target; each
  family's joint Gaussian; densities as exact Gaussian conditionals; expectations of log-densities (quadratics) and
  log-expectations of products, quotients and powers of densities (exp-quadratics) in closed form, or
  :class:`Divergent` / :class:`Unsupported`, never a wrong number.

What it shares with the checker: nothing but the syntax classes of ``derivations/expressions.py`` and the raw fields
of a declaration (``name, observed, latent, generative, inference, data, vectors, auxiliary, coefficients``) and the
strings of the assumptions. Its own reading of the model (:mod:`.declaration`: templates, vector components, inputs,
assumptions with parameter inheritance), of subscripts (:mod:`.terms`: parameter sets, prefix groups, versions,
ambiguity with auxiliaries, inputs by d-separation) and of expressions (:mod:`.lowering`) is written from
docs/semantics.md alone.

Error bounds (see :mod:`.judge`)
--------------------------------
* discrete, ``precision="float64"``: twice the first-order running error bound of every operation (Higham 2002,
  section 3.3);
* discrete, ``precision="high"``: mpmath interval arithmetic at ``dps`` digits (default 50): rigorous;
* linear-Gaussian, ``"high"``: ``4 |v(dps + 20) - v(dps)| + 10^-dps * magnitudes``: an estimate;
* linear-Gaussian, ``"float64"``: ``64 n u kappa * magnitudes`` (``kappa`` the largest condition number met, the
  magnitudes propagated on absolute values through every integral): a heuristic, tested against the high-precision
  value. Conditionals are computed from the noise loadings by a QR factorization, so float64 keeps about
  ``u * kappa`` relative accuracy where forming the covariance would lose ``u * kappa^2``.

API
---
``random_discrete_instance(model, assumptions=(), rng=None, max_size=3)``,
``random_gaussian_instance(model, assumptions=(), rng=None)``: instances; ``instance.redraw_parametric(rng)`` the
other instance of an ``= const`` pair; ``instance.as_dict()`` the export.

``judge(model, lhs, relation, rhs, assumptions=(), instance=None, *, second_instance=None, precision="float64",
rng=None, points=4, dps=50)`` -> :class:`Judgement` (``.holds``, ``.rows`` of :class:`Row` with ``assignment, lhs,
rhs, gap, bound, holds``, ``.worst()``, ``.violations``, ``.vacuous`` for an ``= const`` without parametric factors,
``.summary()``).

``evaluate(model, expr, instance, assumptions=(), precision=..., points=...)`` -> ``[(assignment, value, bound)]``.

``replay(model, lhs, relation, rhs, exported, assumptions=(), second=None, dps=50)`` -> :class:`Replay` (``lhs, rhs,
gap, bound, violated, assignment, margin``): recompute an exported counterexample (the checker's
``Counterexample.as_dict()`` or ``Instance.as_dict()`` format, or the linear-Gaussian format of :mod:`.replay`) in high
precision. ``instance_from_dict`` rebuilds an instance from its export.

Errors: every failure is an :class:`OracleError`: :class:`UndefinedTerm` (a term without meaning: undeclared variable
or subscript, ambiguous density, a ``p`` term that leaves out an input it depends on, two data points of one variable),
:class:`DeclarationError` (the declaration or an assumption cannot be read), :class:`Unsupported` / :class:`Divergent`
(the linear-Gaussian oracle has no closed form / the integral diverges), :class:`ReplayError` (an export that does not
match the declaration).
"""

from .declaration import Structure, read_structure
from .discrete import DiscreteInstance, random_discrete_instance
from .errors import DeclarationError, Divergent, OracleError, ReplayError, UndefinedTerm, Unsupported
from .judge import Judgement, Row, evaluate, judge
from .linear_gaussian import GaussianInstance, Regression, random_gaussian_instance
from .replay import Replay, instance_from_dict, replay

__all__ = [
    "DeclarationError", "DiscreteInstance", "Divergent", "GaussianInstance", "Judgement", "OracleError", "Regression",
    "Replay", "ReplayError", "Row", "Structure", "UndefinedTerm", "Unsupported", "evaluate", "instance_from_dict",
    "judge", "random_discrete_instance", "random_gaussian_instance", "read_structure", "replay",
]
