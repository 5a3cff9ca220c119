"""Two arithmetics for the discrete oracle, on numpy arrays broadcast over the model's atoms.

* :class:`FloatArithmetic`: float64 values, each with a first-order *running error bound* (Higham, *Accuracy and
  Stability of Numerical Algorithms*, 2nd ed., 2002, section 3.3): every operation adds the propagated input errors
  and its own rounding (unit roundoff ``u = 2^-53``); a sum of ``n`` terms adds ``(n - 1) u sum |terms|``. Exact
  inputs (the rational tables) enter with one rounding. Reported bounds are twice the first-order bound (second-order
  terms are far smaller for the bounds of interest, below 1e-3 relative).
* :class:`IntervalArithmetic`: mpmath interval arithmetic at a chosen number of digits (50 by default). Every value
  is an interval that contains the exact value; the exact rational tables and coefficients enter as tight
  intervals; the reported bound is the interval's radius, a rigorous bound.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import sympy

from .errors import OracleError

UNIT_ROUNDOFF = 2.0 ** -53


class FloatValue:
    """A float64 array and an array bounding its absolute error (broadcast-compatible)."""

    __slots__ = ("v", "e")

    def __init__(self, v, e):
        self.v = v
        self.e = e

    @property
    def shape(self):
        return self.v.shape


class FloatArithmetic:
    name = "float64"

    def __init__(self, ndim: int):
        self.ndim = ndim
        self.scalar_shape = (1,) * ndim

    def table(self, fractions: np.ndarray) -> FloatValue:
        v = fractions.astype(float)
        return FloatValue(v, UNIT_ROUNDOFF * np.abs(v))

    def constant(self, x) -> FloatValue:
        v = np.full(self.scalar_shape, float(x))
        exact = isinstance(x, (int, Fraction)) and Fraction(float(x)) == Fraction(x)
        return FloatValue(v, np.zeros(self.scalar_shape) if exact else UNIT_ROUNDOFF * np.abs(v))

    def special(self, name: str) -> FloatValue:
        v = {"pi": np.pi, "E": np.e}[name]
        return FloatValue(np.full(self.scalar_shape, v), np.full(self.scalar_shape, UNIT_ROUNDOFF * v))

    def add(self, a: FloatValue, b: FloatValue) -> FloatValue:
        v = a.v + b.v
        return FloatValue(v, a.e + b.e + UNIT_ROUNDOFF * np.abs(v))

    def neg(self, a: FloatValue) -> FloatValue:
        return FloatValue(-a.v, a.e)

    def mul(self, a: FloatValue, b: FloatValue) -> FloatValue:
        v = a.v * b.v
        return FloatValue(v, np.abs(a.v) * b.e + np.abs(b.v) * a.e + a.e * b.e + UNIT_ROUNDOFF * np.abs(v))

    def div(self, a: FloatValue, b: FloatValue) -> FloatValue:
        margin = np.abs(b.v) - b.e
        with np.errstate(divide="ignore", invalid="ignore"):
            v = a.v / b.v
            e = np.where(margin > 0, (a.e + np.abs(v) * b.e) / np.where(margin > 0, margin, 1.0), np.inf)
        return FloatValue(v, e + UNIT_ROUNDOFF * np.abs(v))

    def sum(self, a: FloatValue, axes: tuple[int, ...]) -> FloatValue:
        if not axes:
            return a
        n = int(np.prod([a.v.shape[i] for i in axes]))
        v = np.sum(a.v, axis=axes, keepdims=True)
        e = np.sum(a.e, axis=axes, keepdims=True) + (n - 1) * UNIT_ROUNDOFF * np.sum(np.abs(a.v), axis=axes,
                                                                                      keepdims=True)
        return FloatValue(v, e)

    def first(self, a: FloatValue, axes: tuple[int, ...]) -> FloatValue:
        index = tuple(slice(0, 1) if i in axes else slice(None) for i in range(a.v.ndim))
        return FloatValue(a.v[index], np.broadcast_to(a.e, a.v.shape)[index])

    def positive(self, a: FloatValue) -> bool:
        return bool(np.all(a.v > 0))

    def log(self, a: FloatValue) -> FloatValue:
        margin = a.v - a.e
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log(a.v)
            e = np.where(margin > 0, a.e / np.where(margin > 0, margin, 1.0), np.inf)
        return FloatValue(v, e + UNIT_ROUNDOFF * np.abs(v))

    def exp(self, a: FloatValue) -> FloatValue:
        v = np.exp(a.v)
        return FloatValue(v, v * np.expm1(a.e) + UNIT_ROUNDOFF * v)

    def integer_power(self, a: FloatValue, n: int) -> FloatValue:
        if n == 0:
            return self.constant(1)
        result = a
        for _ in range(abs(n) - 1):
            result = self.mul(result, a)
        return self.div(self.constant(1), result) if n < 0 else result

    def parts(self, a: FloatValue, shape) -> tuple[np.ndarray, np.ndarray]:
        """Values and error bounds (twice the first-order bound) broadcast to ``shape``."""
        return np.broadcast_to(a.v, shape), np.broadcast_to(2.0 * a.e, shape)

    def number(self, x) -> float:
        return float(x)


class IntervalArithmetic:
    """mpmath intervals in object arrays; a private context so that no global precision is touched."""

    name = "interval"

    def __init__(self, ndim: int, dps: int = 50):
        self.ndim = ndim
        self.scalar_shape = (1,) * ndim
        self.iv = mpmath.ctx_iv.MPIntervalContext()
        self.iv.dps = dps
        self.mp = mpmath.MPContext()
        self.mp.dps = dps
        self._log = np.frompyfunc(self.iv.log, 1, 1)
        self._exp = np.frompyfunc(self.iv.exp, 1, 1)
        self._from_fraction = np.frompyfunc(self.interval, 1, 1)

    def interval(self, x):
        if isinstance(x, Fraction):
            return self.iv.mpf(x.numerator) / self.iv.mpf(x.denominator)
        if isinstance(x, int):
            return self.iv.mpf(x)
        if isinstance(x, float):
            return self.iv.mpf(x)
        raise TypeError(x)

    def _array(self, x) -> np.ndarray:
        out = np.empty(self.scalar_shape, dtype=object)
        out.flat[0] = x
        return out

    def table(self, fractions: np.ndarray) -> np.ndarray:
        return self._from_fraction(fractions).astype(object)

    def constant(self, x) -> np.ndarray:
        return self._array(self.interval(Fraction(x) if not isinstance(x, (int, Fraction)) else x))

    def special(self, name: str) -> np.ndarray:
        return self._array({"pi": self.iv.pi, "E": self.iv.e}[name])

    def add(self, a, b):
        return a + b

    def neg(self, a):
        return -a

    def mul(self, a, b):
        return a * b

    def div(self, a, b):
        if not self.positive(b) and not self.positive(-b):
            raise OracleError("division by an interval that contains zero")
        return a / b

    def sum(self, a, axes):
        if not axes:
            return a
        return np.sum(a, axis=axes, keepdims=True)

    def first(self, a, axes):
        index = tuple(slice(0, 1) if i in axes else slice(None) for i in range(a.ndim))
        return a[index]

    def lower(self, x):
        return self.mp.make_mpf(x._mpi_[0])

    def upper(self, x):
        return self.mp.make_mpf(x._mpi_[1])

    def positive(self, a) -> bool:
        return all(self.lower(x) > 0 for x in np.asarray(a).flat)

    def log(self, a):
        return self._log(a).astype(object)

    def exp(self, a):
        return self._exp(a).astype(object)

    def integer_power(self, a, n: int):
        if n == 0:
            return self.constant(1)
        result = a
        for _ in range(abs(n) - 1):
            result = result * a
        return self.div(self.constant(1), result) if n < 0 else result

    def parts(self, a, shape) -> tuple[np.ndarray, np.ndarray]:
        """Midpoints and radii (mpmath numbers at the working precision) broadcast to ``shape``."""
        a = np.broadcast_to(a, shape)
        mids = np.empty(shape, dtype=object)
        radii = np.empty(shape, dtype=object)
        for index in np.ndindex(*shape):
            lo, hi = self.lower(a[index]), self.upper(a[index])
            mid = (lo + hi) / 2
            mids[index] = mid
            radii[index] = max(hi - mid, mid - lo) + abs(mid) * self.mp.mpf(2) ** (1 - self.mp.prec)
        return mids, radii

    def number(self, x):
        return self.mp.mpf(x)


def constant_value(arithmetic, expr: sympy.Expr, coefficients: dict):
    """The value of a number/coefficient expression in an arithmetic (coefficients are exact Fractions)."""
    expr = sympy.sympify(expr)
    if expr.free_symbols:
        values = {}
        for s in expr.free_symbols:
            if str(s) not in coefficients:
                raise OracleError(f"coefficient {s} has no value in this instance")
            values[s] = sympy.Rational(coefficients[str(s)].numerator, coefficients[str(s)].denominator)
        expr = expr.subs(values)
    return _evaluate(arithmetic, expr)


def exact_value(expr: sympy.Expr, coefficients: dict) -> Fraction | None:
    """The exact rational value of a number/coefficient expression, or None when it is not rational."""
    expr = sympy.sympify(expr)
    values = {s: sympy.Rational(coefficients[str(s)].numerator, coefficients[str(s)].denominator)
              for s in expr.free_symbols if str(s) in coefficients}
    expr = expr.subs(values)
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    return None


def _evaluate(ar, expr: sympy.Expr):
    if expr.is_Rational:
        return ar.constant(Fraction(int(expr.p), int(expr.q)))
    if expr.is_Float:
        return ar.constant(Fraction(float(expr)))
    if expr is sympy.pi:
        return ar.special("pi")
    if expr is sympy.E:
        return ar.special("E")
    if isinstance(expr, sympy.Add):
        out = _evaluate(ar, expr.args[0])
        for a in expr.args[1:]:
            out = ar.add(out, _evaluate(ar, a))
        return out
    if isinstance(expr, sympy.Mul):
        out = _evaluate(ar, expr.args[0])
        for a in expr.args[1:]:
            out = ar.mul(out, _evaluate(ar, a))
        return out
    if isinstance(expr, sympy.Pow):
        if expr.exp.is_Integer:
            return ar.integer_power(_evaluate(ar, expr.base), int(expr.exp))
        base = _evaluate(ar, expr.base)
        if not ar.positive(base):
            raise OracleError(f"{expr}: a non-integer power of a non-positive number")
        return ar.exp(ar.mul(_evaluate(ar, expr.exp), ar.log(base)))
    if isinstance(expr, sympy.log):
        arg = _evaluate(ar, expr.args[0])
        if not ar.positive(arg):
            raise OracleError(f"{expr}: the log of a non-positive number")
        return ar.log(arg)
    if isinstance(expr, sympy.exp):
        return ar.exp(_evaluate(ar, expr.args[0]))
    raise OracleError(f"{expr}: not a number the oracle can evaluate")
