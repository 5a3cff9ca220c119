"""Small dense linear algebra in float64 (numpy) or in mpmath at a chosen precision (object arrays).

Only what the linear-Gaussian oracle needs: products, the Cholesky factor of a symmetric matrix (None when it is not
positive definite), the inverse and log-determinant of a symmetric positive definite matrix. The float64 version
records the largest condition number it meets, for the evaluation's error bound.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np


class FloatLinalg:
    name = "float64"

    def __init__(self):
        self.max_condition = 1.0

    def number(self, x) -> float:
        return float(x)

    def zeros(self, shape) -> np.ndarray:
        return np.zeros(shape)

    def eye(self, n: int) -> np.ndarray:
        return np.eye(n)

    def log(self, x):
        return math.log(x)

    def exp(self, x):
        return math.exp(x)

    def cholesky(self, a: np.ndarray) -> np.ndarray | None:
        if a.shape[0] == 0:
            return np.zeros((0, 0))
        try:
            lower = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(lower)) or np.any(np.diag(lower) <= 0):
            return None
        return lower

    def note_condition(self, a: np.ndarray) -> None:
        """Record the condition number of a matrix whose factorization or Schur complement the result depends on."""
        if a.shape[0]:
            self.max_condition = max(self.max_condition, float(np.linalg.cond(a)))

    def regress(self, loadings_a: np.ndarray, loadings_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For ``A = M_A eps``, ``B = M_B eps`` (eps standard normal): ``K = Sigma_AB Sigma_BB^-1`` and
        ``S = Sigma_AA - K Sigma_BA``. With ``M_B^T = Q R``: ``K = M_A Q R^-T``, ``S = N N^T`` with
        ``N = M_A (I - Q Q^T)``, which avoids the squared condition number of forming ``Sigma_BB`` (Golub and Van
        Loan, *Matrix Computations*, 4th ed., section 5.3)."""
        if loadings_b.shape[0] == 0:
            self.note_condition(loadings_a)
            return np.zeros((loadings_a.shape[0], 0)), loadings_a @ loadings_a.T
        self.note_condition(np.vstack([loadings_a, loadings_b]))
        q, r = np.linalg.qr(loadings_b.T)
        projected = loadings_a @ q
        K = np.linalg.solve(r, projected.T).T
        residual = loadings_a - projected @ q.T
        return K, residual @ residual.T

    def inv_spd(self, a: np.ndarray, lower: np.ndarray | None = None) -> np.ndarray:
        if a.shape[0] == 0:
            return np.zeros((0, 0))
        self.note_condition(a)
        lower = self.cholesky(a) if lower is None else lower
        identity = np.eye(a.shape[0])
        half = np.linalg.solve(lower, identity)
        return half.T @ half

    def logdet(self, lower: np.ndarray):
        return 2.0 * float(np.sum(np.log(np.diag(lower)))) if lower.shape[0] else 0.0

    @property
    def log_two_pi(self):
        return math.log(2 * math.pi)


class MPLinalg:
    """mpmath numbers (a private context at ``dps`` digits) in numpy object arrays."""

    name = "high"

    def __init__(self, dps: int = 50):
        self.mp = mpmath.MPContext()
        self.mp.dps = dps
        self.max_condition = 1.0

    def note_condition(self, a: np.ndarray) -> None:
        """Not needed at high precision (its bound comes from a second evaluation)."""

    def number(self, x):
        if isinstance(x, Fraction):
            return self.mp.mpf(x.numerator) / self.mp.mpf(x.denominator)
        return self.mp.mpf(x)

    def zeros(self, shape) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(self.mp.zero)
        return out

    def eye(self, n: int) -> np.ndarray:
        out = self.zeros((n, n))
        for i in range(n):
            out[i, i] = self.mp.one
        return out

    def log(self, x):
        return self.mp.log(x)

    def exp(self, x):
        return self.mp.exp(x)

    def cholesky(self, a: np.ndarray) -> np.ndarray | None:
        n = a.shape[0]
        lower = self.zeros((n, n))
        for j in range(n):
            pivot = a[j, j] - sum((lower[j, k] ** 2 for k in range(j)), self.mp.zero)
            if pivot <= 0:
                return None
            lower[j, j] = self.mp.sqrt(pivot)
            for i in range(j + 1, n):
                lower[i, j] = (a[i, j] - sum((lower[i, k] * lower[j, k] for k in range(j)), self.mp.zero)) / lower[j, j]
        return lower

    def regress(self, loadings_a: np.ndarray, loadings_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``K = Sigma_AB Sigma_BB^-1`` and ``S = Sigma_AA - K Sigma_BA`` from the noise loadings (the Schur
        complement is accurate enough at this precision)."""
        sigma_aa = loadings_a @ loadings_a.T
        if loadings_b.shape[0] == 0:
            return self.zeros((loadings_a.shape[0], 0)), sigma_aa
        sigma_ab = loadings_a @ loadings_b.T
        K = sigma_ab @ self.inv_spd(loadings_b @ loadings_b.T)
        return K, sigma_aa - K @ sigma_ab.T

    def inv_spd(self, a: np.ndarray, lower: np.ndarray | None = None) -> np.ndarray:
        n = a.shape[0]
        lower = self.cholesky(a) if lower is None else lower
        # inverse of the lower factor by forward substitution, then inv(a) = inv(L)^T inv(L)
        half = self.zeros((n, n))
        for col in range(n):
            for i in range(n):
                rhs = (self.mp.one if i == col else self.mp.zero) - sum(
                    (lower[i, k] * half[k, col] for k in range(i)), self.mp.zero)
                half[i, col] = rhs / lower[i, i]
        return half.T @ half

    def logdet(self, lower: np.ndarray):
        return 2 * sum((self.mp.log(lower[i, i]) for i in range(lower.shape[0])), self.mp.zero)

    @property
    def log_two_pi(self):
        return self.mp.log(2 * self.mp.pi)
