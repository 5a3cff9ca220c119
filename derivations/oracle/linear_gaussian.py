"""The linear-Gaussian oracle: every factor a linear-Gaussian regression, every term an exact Gaussian computation.

An instance gives every factor, for each of its targets in order, a regression
``target = sum_k weights_k * parents_k + bias + sigma * standard normal`` whose parents are the factor's conditioning
atoms and its earlier targets (so a factor over several targets has a full covariance). Each family's joint is then
an affine map of its inputs and of independent standard normals (``atoms = C inputs + c0 + L eps``), with covariance
``L L^T``. A term ``F(A | B)`` is the exact Gaussian conditional ``A | B ~ N(G v + g, S)`` with
``K = Sigma_AB Sigma_BB^-1``, ``S = Sigma_AA - K Sigma_BA`` (Bishop, *Pattern Recognition and Machine Learning*,
2006, eq. 2.81-2.82), ``v`` the vector of all atoms.

Values are functions of ``v`` kept in closed form:

* :class:`Quadratic` ``v^T Q v + c^T v + k`` (log-densities, their combinations, their expectations:
  ``E[f(w + B eps)] = f(w) + tr(B^T Q B)``);
* :class:`ExpQuadratic` ``sign * exp(quadratic)`` (densities, products, quotients, powers of densities, and their
  expectations: ``E[exp(h^T eps + eps^T K eps)] = det(I - 2K)^-1/2 exp(h^T (I - 2K)^-1 h / 2)`` when ``I - 2K`` is
  positive definite; otherwise the integral diverges and :class:`~.errors.Divergent` is raised).

Anything else (the product of two non-constant log-densities, a sum of densities, the log of a log-density) raises
:class:`~.errors.Unsupported`: never a wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import sympy

from .arithmetic import exact_value
from .coefficients import draw_coefficients, version_rng
from .declaration import Factor, Structure, read_structure
from .errors import Divergent, OracleError, UndefinedTerm, Unsupported
from .linalg import FloatLinalg, MPLinalg
from .lowering import Const, Dens, Exp, Expect, Log, LogDens, Node, Power, Prod, Sum, measure_order
from .terms import JointKey, Term


@dataclass(frozen=True)
class Regression:
    """``target = weights . parents + bias + sigma * N(0, 1)`` (exact rationals)."""

    target: str
    parents: tuple[str, ...]
    weights: tuple[Fraction, ...]
    bias: Fraction
    sigma: Fraction


@dataclass(eq=False)
class GaussianInstance:
    """Coefficient values and one regression per target of every factor.

    ``regressions[(factor index, decoration)]`` lists the factor's targets' regressions in the order they are
    generated (``decoration`` None for the current parameters, or a version's decoration).
    """

    structure: Structure
    coefficients: dict
    regressions: dict
    version_seed: int | None = None
    cache: dict = field(default_factory=dict)
    scale: Fraction = Fraction(1)  # every sigma and bias drawn times this: all atoms' spreads scale with it

    def factor(self, factor: Factor, decoration: str | None) -> tuple[Regression, ...]:
        key = (factor.index, decoration)
        if key not in self.regressions:
            if decoration is None or self.version_seed is None:
                raise OracleError(f"the instance has no regressions for {_label(factor, decoration)}")
            self.regressions[key] = random_regressions(factor, version_rng(self.version_seed,
                                                                           _label(factor, decoration)), self.scale)
        return self.regressions[key]

    def redraw_parametric(self, rng: np.random.Generator) -> "GaussianInstance":
        """The other instance of an ``= const`` pair (parametric factors redrawn, everything else kept)."""
        regressions = dict(self.regressions)
        for f in self.structure.parametric_factors:
            regressions[(f.index, None)] = random_regressions(f, rng, self.scale)
        return GaussianInstance(self.structure, dict(self.coefficients), regressions, self.version_seed,
                                scale=self.scale)

    def differs_only_in_parameters(self, other: "GaussianInstance") -> str | None:
        if other.coefficients != self.coefficients:
            return "the coefficients differ"
        for key in set(self.regressions) | set(other.regressions):
            factor = self.structure.factors[key[0]]
            if factor.parameters and key[1] is None:
                continue
            if key in self.regressions and key in other.regressions and self.regressions[key] != other.regressions[key]:
                return f"the non-parametric factor {_label(factor, key[1])} differs"
        return None

    def as_dict(self) -> dict:
        """The linear-Gaussian export format (see :mod:`.replay`); numbers as exact fraction strings."""
        factors = []
        for (index, decoration), regressions in sorted(self.regressions.items(),
                                                         key=lambda kv: (kv[0][0], kv[0][1] or "")):
            f = self.structure.factors[index]
            factors.append({"factor": _label(f, decoration), "targets": [
                {"target": r.target, "parents": list(r.parents), "weights": [str(w) for w in r.weights],
                 "bias": str(r.bias), "sigma": str(r.sigma)} for r in regressions]})
        return {"kind": "linear-gaussian", "coefficients": {k: str(v) for k, v in self.coefficients.items()},
                "factors": factors}


def _label(factor: Factor, decoration: str | None) -> str:
    if decoration is None:
        return factor.text
    subscript = factor.parameters + ("" if decoration.startswith("'") else "_") + decoration
    return f"{factor.letter}_{subscript}{factor.text[factor.text.index('('):]}"


def _grid(rng: np.random.Generator, low: float, high: float, step: int = 16) -> Fraction:
    return Fraction(int(rng.integers(int(low * step), int(high * step) + 1)), step)


def random_regressions(factor: Factor, rng: np.random.Generator, scale: Fraction = Fraction(1)
                       ) -> tuple[Regression, ...]:
    """Weights in [-3/2, 3/2], biases in [-1, 1] * scale, sigmas in [1/2, 3/2] * scale, all multiples of 1/16
    (times ``scale``)."""
    out = []
    for k, target in enumerate(factor.targets):
        parents = factor.given + factor.targets[:k]
        out.append(Regression(target, parents, tuple(_grid(rng, -1.5, 1.5) for _ in parents),
                              _grid(rng, -1, 1) * scale, _grid(rng, 0.5, 1.5) * scale))
    return tuple(out)


def random_gaussian_instance(model, assumptions=(), rng: np.random.Generator | int | None = None,
                             scale: Fraction | int | str = 1) -> GaussianInstance:
    """A random linear-Gaussian instance of ``model`` under ``assumptions``.

    ``scale`` multiplies every sigma and bias, hence every atom's spread: with ``scale=Fraction(1, 16)`` every
    differential entropy of the instance is negative, which the unit-scale instances (sigmas from 1/2) never show,
    so a step that takes a differential entropy for non-negative is caught only on a narrow instance."""
    scale = Fraction(scale)
    if scale <= 0:
        raise OracleError(f"scale={scale}: expected a positive number")
    rng = np.random.default_rng(rng)
    structure = model if isinstance(model, Structure) else read_structure(model, assumptions)
    regressions = {(f.index, None): random_regressions(f, rng, scale) for f in structure.factors}
    coefficients = draw_coefficients(structure, rng)
    return GaussianInstance(structure, coefficients, regressions, int(rng.integers(0, 2 ** 62)), scale=scale)


def random_points(structure: Structure, count: int, rng: np.random.Generator,
                  scale: Fraction = Fraction(1)) -> list[dict]:
    """Points for every atom: multiples of 1/8 in [-3, 3], times the instance's ``scale``."""
    return [{a: _grid(rng, -3, 3, 8) * scale for a in structure.atoms} for _ in range(count)]


@dataclass
class Quadratic:
    """``v^T Q v + c^T v + k`` over all atoms; ``free`` the atoms it depends on (empty: a constant).

    ``mag`` (float64 only): ``(Qm, lm, km)``, entrywise bounds on the magnitudes of everything summed into ``Q``,
    ``c`` and ``k`` (the same formulas on absolute values), for the error bound: cancellation among large
    intermediate terms shows there, not in the result."""

    Q: np.ndarray
    c: np.ndarray
    k: object
    free: frozenset
    mag: tuple | None = None


@dataclass
class ExpQuadratic:
    """``sign * exp(exponent(v))``."""

    sign: int
    exponent: Quadratic


@dataclass
class _Conditional:
    targets: list            # global indices of the targets
    G: np.ndarray            # |A| x n
    g: np.ndarray            # |A|
    S_inv: np.ndarray
    lower: np.ndarray        # Cholesky factor of S
    logdet: object
    log_density: Quadratic


class GaussianEvaluator:
    """Evaluates lowered nodes on one linear-Gaussian instance, in float64 or at ``dps`` digits."""

    def __init__(self, instance: GaussianInstance, precision: str = "float64", dps: int = 50):
        self.instance = instance
        self.structure = instance.structure
        self.n = len(self.structure.atoms)
        self.axis = {a: i for i, a in enumerate(self.structure.atoms)}
        if precision == "float64":
            self.la = FloatLinalg()
        elif precision == "high":
            self.la = MPLinalg(dps)
        else:
            raise OracleError(f"precision={precision!r}: expected 'float64' or 'high'")
        self.precision = precision
        self.track = precision == "float64"
        self._joints: dict = {}
        self._terms: dict = {}

    # ---- joints and conditionals ---------------------------------------------------------------------------------
    def joint(self, key: JointKey):
        """``(atoms, C, c0, L)``: the family's random atoms equal ``C v + c0 + L eps`` (C acts on the inputs)."""
        if key in self._joints:
            return self._joints[key]
        la, n = self.la, self.n
        family = self.structure.families[key.family]
        atoms = list(family.atoms)
        m = len(atoms)
        position = {a: i for i, a in enumerate(atoms)}
        C, c0, L = la.zeros((m, n)), la.zeros(m), la.zeros((m, m))
        for index in family.factors:
            factor = self.structure.factors[index]
            for r in self.instance.factor(factor, key.decoration(factor)):
                i = position[r.target]
                c0[i] = la.number(r.bias)
                for parent, weight in zip(r.parents, r.weights):
                    w = la.number(weight)
                    if parent in position:
                        j = position[parent]
                        C[i] = C[i] + w * C[j]
                        c0[i] = c0[i] + w * c0[j]
                        L[i] = L[i] + w * L[j]
                    else:
                        C[i, self.axis[parent]] = C[i, self.axis[parent]] + w
                L[i, i] = L[i, i] + la.number(r.sigma)
        self._joints[key] = (atoms, C, c0, L)
        return self._joints[key]

    def conditional(self, term: Term) -> _Conditional:
        if term in self._terms:
            return self._terms[term]
        la, n = self.la, self.n
        family = self.structure.families[term.joint.family]
        atoms, C, c0, L = self.joint(term.joint)
        position = {a: i for i, a in enumerate(atoms)}
        a_idx = [position[a] for a in term.targets]
        b_idx = [position[b] for b in term.given if b in position]
        inputs_kept = [self.axis[u] for u in family.inputs if u in term.given]
        mask = la.zeros(n)
        for i in inputs_kept:
            mask[i] = la.number(1)
        C_in = C * mask[None, :]
        G, g = C_in[a_idx], c0[a_idx].copy()
        # A = M_A eps + ..., B = M_B eps + ...: K = Sigma_AB Sigma_BB^-1 and S = Sigma_AA - K Sigma_BA, computed
        # from the noise loadings (the float64 version by a QR factorization, without forming Sigma_BB)
        K, S = la.regress(L[a_idx], L[b_idx])
        if b_idx:
            G = G - K @ C_in[b_idx]
            g = g - K @ c0[b_idx]
            b_global = [self.axis[atoms[j]] for j in b_idx]
            for col, gi in enumerate(b_global):
                G[:, gi] = G[:, gi] + K[:, col]
        S = (S + S.T) / 2
        lower = la.cholesky(S)
        if lower is None:  # sigmas are positive, so S is positive definite in exact arithmetic
            raise Unsupported(f"{term.text}: the conditional covariance is too ill-conditioned for {la.name} "
                              "arithmetic; use precision='high'")
        S_inv = la.inv_spd(S, lower)
        logdet = la.logdet(lower)
        d = len(a_idx)
        R = -G.copy()
        targets_global = [self.axis[a] for a in term.targets]
        for row, gi in enumerate(targets_global):
            R[row, gi] = R[row, gi] + la.number(1)
        Q = -(R.T @ S_inv @ R) / 2
        c_vec = R.T @ (S_inv @ g)
        k = -(g @ (S_inv @ g)) / 2 - (d * la.log_two_pi + logdet) / 2
        mag = None
        if self.track:
            aR, aS, ag = np.abs(R), np.abs(S_inv), np.abs(g)
            mag = (aR.T @ aS @ aR / 2, aR.T @ (aS @ ag), ag @ (aS @ ag) / 2 + (d * la.log_two_pi + abs(logdet)) / 2)
        result = _Conditional(targets_global, G, g, S_inv, lower, logdet,
                              Quadratic(_sym(Q), c_vec, k, frozenset(term.targets) | frozenset(term.given), mag))
        self._terms[term] = result
        return result

    # ---- expressions ---------------------------------------------------------------------------------------------
    def constant(self, value) -> Quadratic:
        mag = (np.zeros((self.n, self.n)), np.zeros(self.n), abs(value)) if self.track else None
        return Quadratic(self.la.zeros((self.n, self.n)), self.la.zeros(self.n), value, frozenset(), mag)

    def number(self, expr: sympy.Expr):
        expr = sympy.sympify(expr)
        values = {s: sympy.Rational(self.instance.coefficients[str(s)].numerator,
                                    self.instance.coefficients[str(s)].denominator)
                  for s in expr.free_symbols if str(s) in self.instance.coefficients}
        expr = expr.subs(values)
        if expr.free_symbols:
            raise OracleError(f"{expr}: coefficients without values in this instance")
        if expr.is_Rational:
            return self.la.number(Fraction(int(expr.p), int(expr.q)))
        if not expr.is_real:
            raise OracleError(f"{expr}: not a real number (a log or a power of a negative number?)")
        digits = getattr(getattr(self.la, "mp", None), "dps", 17) + 10
        return self.la.number(str(sympy.N(expr, digits))) if self.precision == "high" else float(expr)

    def value(self, node: Node):
        la = self.la
        if isinstance(node, Const):
            return self.constant(self.number(node.expr))
        if isinstance(node, LogDens):
            return self.conditional(node.term).log_density
        if isinstance(node, Dens):
            return ExpQuadratic(1, self.conditional(node.term).log_density)
        if isinstance(node, Sum):
            values = [self.value(i) for i in node.items]
            if not all(isinstance(v, Quadratic) for v in values):
                raise Unsupported("a sum that involves densities (not their logs): no closed form in the "
                                  "linear-Gaussian oracle")
            out = values[0]
            for v in values[1:]:
                out = _add(out, v)
            return out
        if isinstance(node, Prod):
            out = self.value(node.items[0])
            for item in node.items[1:]:
                out = self._product(out, self.value(item))
            return out
        if isinstance(node, Power):
            base = self.value(node.base)
            e = self.number(node.exponent.expr)
            if isinstance(base, ExpQuadratic):
                exact = exact_value(node.exponent.expr, self.instance.coefficients)
                sign = 1
                if base.sign < 0:
                    if exact is None or exact.denominator != 1:
                        raise Unsupported("a non-integer power of a negative value")
                    sign = -1 if exact.numerator % 2 else 1
                return ExpQuadratic(sign, _scale(base.exponent, e))
            if not base.free:
                return self.constant(self._power_number(base.k, e))
            if node.exponent.expr == 1:
                return base
            raise Unsupported("a power of a log-density: not a quadratic")
        if isinstance(node, Log):
            arg = self.value(node.arg)
            if isinstance(arg, ExpQuadratic):
                if arg.sign < 0:
                    raise UndefinedTerm(node.text, "the log of a negative value")
                return arg.exponent
            if not arg.free:
                if not arg.k > 0:
                    raise UndefinedTerm(node.text, "the log of a value that is not positive")
                return self.constant(la.log(arg.k))
            raise Unsupported(f"{node.text}: the log of a log-density has no closed form in the linear-Gaussian "
                              "oracle")
        if isinstance(node, Exp):
            arg = self.value(node.arg)
            if not isinstance(arg, Quadratic):
                raise Unsupported("exp of a density")
            return ExpQuadratic(1, arg)
        if isinstance(node, Expect):
            value = self.value(node.body)
            for term in measure_order(node.measure):
                value = self._integrate(value, self.conditional(term), term, node.text)
            return value
        raise TypeError(node)  # pragma: no cover

    def _power_number(self, base, e):
        if base > 0:
            return self.la.exp(e * self.la.log(base))
        if e == int(e):
            return base ** int(e)
        raise UndefinedTerm(str(base), "a non-integer power of a negative number")

    def _product(self, a, b):
        la = self.la
        if isinstance(a, Quadratic) and isinstance(b, Quadratic):
            if not a.free:
                return _scale(b, a.k)
            if not b.free:
                return _scale(a, b.k)
            raise Unsupported("a product of two log-densities: a polynomial of degree four, not a quadratic")
        if isinstance(a, ExpQuadratic) and isinstance(b, ExpQuadratic):
            return ExpQuadratic(a.sign * b.sign, _add(a.exponent, b.exponent))
        e, q = (a, b) if isinstance(a, ExpQuadratic) else (b, a)
        if q.free:
            raise Unsupported("a product of a density and a log-density: no closed form in the linear-Gaussian "
                              "oracle")
        if q.k == 0:
            return self.constant(q.k)
        sign = e.sign * (1 if q.k > 0 else -1)
        shift = self.constant(la.log(abs(q.k)))
        shifted = _add(e.exponent, shift)
        return ExpQuadratic(sign, shifted)

    def _integrate(self, value, cond: _Conditional, term: Term, text: str):
        """Integrate ``value`` over ``cond``'s targets: ``v_A = G v + g + lower eps``."""
        la, n = self.la, self.n
        A_map = la.eye(n)
        a = la.zeros(n)
        B = la.zeros((n, len(cond.targets)))
        for row, gi in enumerate(cond.targets):
            A_map[gi] = cond.G[row]
            a[gi] = cond.g[row]
            B[gi] = cond.lower[row]
        free = (value.free if isinstance(value, Quadratic) else value.exponent.free)
        free = (free | term.atoms) - frozenset(term.targets)
        if isinstance(value, Quadratic):
            Q, c, k = value.Q, value.c, value.k
            Qa = Q @ a
            trace = np.trace(B.T @ Q @ B)
            mag = None
            if self.track:
                Qm, lm, km = value.mag
                aA, aa, aB = np.abs(A_map), np.abs(a), np.abs(B)
                Qma = Qm @ aa
                mag = (aA.T @ Qm @ aA, aA.T @ (2 * Qma + lm), aa @ Qma + lm @ aa + km + np.trace(aB.T @ Qm @ aB))
            return Quadratic(_sym(A_map.T @ Q @ A_map), A_map.T @ (2 * Qa + c), a @ Qa + c @ a + k + trace, free, mag)
        Q, c, k = value.exponent.Q, value.exponent.c, value.exponent.k
        d = B.shape[1]
        K = B.T @ Q @ B
        M = la.eye(d) - 2 * _sym(K)
        lower = la.cholesky(M)
        if lower is None:
            raise Divergent(f"{text}: the integral over {', '.join(term.targets)} diverges (I - 2K is not positive "
                            "definite)")
        M_inv = la.inv_spd(M, lower)
        Qa = Q @ a
        H = 2 * (B.T @ Q @ A_map)
        h0 = B.T @ (2 * Qa + c)
        newQ = A_map.T @ Q @ A_map + (H.T @ M_inv @ H) / 2
        newc = A_map.T @ (2 * Qa + c) + H.T @ (M_inv @ h0)
        newk = a @ Qa + c @ a + k + (h0 @ (M_inv @ h0)) / 2 - la.logdet(lower) / 2
        mag = None
        if self.track:
            la.note_condition(M)
            Qm, lm, km = value.exponent.mag
            aA, aa, aB, aM = np.abs(A_map), np.abs(a), np.abs(B), np.abs(M_inv)
            Qma = Qm @ aa
            aH = 2 * (aB.T @ Qm @ aA)
            ah0 = aB.T @ (2 * Qma + lm)
            mag = (aA.T @ Qm @ aA + aH.T @ aM @ aH / 2, aA.T @ (2 * Qma + lm) + aH.T @ (aM @ ah0),
                   aa @ Qma + lm @ aa + km + ah0 @ (aM @ ah0) / 2 + abs(la.logdet(lower)) / 2)
        return ExpQuadratic(value.sign, Quadratic(_sym(newQ), newc, newk, free, mag))

    # ---- evaluation at points ------------------------------------------------------------------------------------
    def vector(self, point: dict) -> np.ndarray:
        v = self.la.zeros(self.n)
        for atom, value in point.items():
            if atom in self.axis:
                v[self.axis[atom]] = self.la.number(Fraction(value) if not isinstance(value, Fraction) else value)
        return v

    def at(self, value, v: np.ndarray):
        """``(value, scale)`` at the point ``v``: scale bounds the magnitudes summed (for the error bound)."""
        quad = value if isinstance(value, Quadratic) else value.exponent
        x = v @ (quad.Q @ v) + quad.c @ v + quad.k
        absv = np.abs(v)
        Qm, lm, km = quad.mag if quad.mag is not None else (np.abs(quad.Q), np.abs(quad.c), abs(quad.k))
        scale = absv @ (Qm @ absv) + lm @ absv + km
        if isinstance(value, Quadratic):
            return x, scale
        return value.sign * self.la.exp(x), scale


def _sym(Q: np.ndarray) -> np.ndarray:
    return (Q + Q.T) / 2


def _scale(q: Quadratic, factor) -> Quadratic:
    mag = None if q.mag is None else tuple(m * abs(factor) for m in q.mag)
    return Quadratic(q.Q * factor, q.c * factor, q.k * factor, q.free, mag)


def _add(a: Quadratic, b: Quadratic) -> Quadratic:
    mag = None if a.mag is None or b.mag is None else tuple(x + y for x, y in zip(a.mag, b.mag))
    return Quadratic(a.Q + b.Q, a.c + b.c, a.k + b.k, a.free | b.free, mag)
