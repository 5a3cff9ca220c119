"""Linear-Gaussian instances: a second refutation domain, for steps that hold on every discrete model.

Every atomic variable is a real scalar; every declared factor is linear-Gaussian
(``t = w . (given, earlier targets of the block) + b + sigma * eps``), so each family's joint is Gaussian given its
inputs. Log-densities are then quadratic functions of the variables, and expectations of quadratics are quadratics
in closed form, so expressions are evaluated exactly (in float64) as quadratic forms in the free variables.

This matters where densities differ from probabilities: ``log p(x) >= E_q[log p(x, z)]`` holds for every discrete
model (the gap is a cross-entropy, >= 0) but fails for densities, which may exceed 1.
Logs of expectations are not quadratic; a step containing one is not evaluated here (:class:`GaussianUnsupported`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from .expressions import (
    Density,
    Entropy,
    Expectation,
    IndexedProduct,
    IndexedSum,
    KL,
    MutualInformation,
    TotalCorrelation,
    measure_densities,
)
from .model import Block, Model
from .numeric import unique_blocks


class GaussianUnsupported(ValueError):
    """The expression has a term without a closed form in the linear-Gaussian domain."""


@dataclass
class Quadratic:
    """``f(v) = v^T A v + b . v + c`` over the model's atomic variables (A symmetric)."""

    A: np.ndarray
    b: np.ndarray
    c: float

    @classmethod
    def constant(cls, n: int, value: float) -> "Quadratic":
        return cls(np.zeros((n, n)), np.zeros(n), float(value))

    def __add__(self, other: "Quadratic") -> "Quadratic":
        return Quadratic(self.A + other.A, self.b + other.b, self.c + other.c)

    def scale(self, k: float) -> "Quadratic":
        return Quadratic(self.A * k, self.b * k, self.c * k)

    def at(self, points: np.ndarray) -> np.ndarray:
        """Values at points of shape (m, n)."""
        return np.einsum("mi,ij,mj->m", points, self.A, points) + points @ self.b + self.c


class GaussianInstance:
    """Random linear-Gaussian parameters for every declared factor of a model."""

    def __init__(self, model: Model, vector: np.ndarray, coefficients: dict[str, float]):
        """Parameters from a flat vector: per target of each block, its weights, bias and log standard deviation."""
        self.model = model
        self.index = {a: i for i, a in enumerate(model.atoms)}
        self.n = len(model.atoms)
        self.coefficients = coefficients
        self.parameters: dict[Block, list] = {}
        position = 0
        for block in unique_blocks(model):
            rows = []
            earlier: list[str] = []
            for t in block.targets:
                parents = list(block.given) + earlier
                weights = np.asarray(vector[position : position + len(parents)], dtype=float)
                bias, log_sigma = vector[position + len(parents)], vector[position + len(parents) + 1]
                position += len(parents) + 2
                rows.append((t, parents, weights, float(bias), float(np.exp(np.clip(log_sigma, -6.0, 6.0)))))
                earlier.append(t)
            self.parameters[block] = rows
        self._joint: dict[str, tuple] = {}

    @staticmethod
    def dimension(model: Model) -> int:
        return sum(len(block.given) + i + 2 for block in unique_blocks(model) for i in range(len(block.targets)))

    @staticmethod
    def parametric_mask(model: Model) -> np.ndarray:
        mask = []
        for block in unique_blocks(model):
            for i in range(len(block.targets)):
                mask.extend([block.parametric] * (len(block.given) + i + 2))
        return np.asarray(mask, dtype=bool)

    def joint(self, family: str):
        """Each variable of the family as ``L eps + M v + c`` (v: all atoms, only inputs used): returns (L, M, c)."""
        if family in self._joint:
            return self._joint[family]
        graph = self.model.graphs[family]
        order = [t for block in graph.blocks for t in block.targets]
        position = {v: i for i, v in enumerate(order)}
        m = len(order)
        L, M, c = np.zeros((self.n, m)), np.zeros((self.n, self.n)), np.zeros(self.n)
        for i in graph.inputs:
            M[self.index[i], self.index[i]] = 1.0
        rows = {row[0]: row for block in graph.blocks for row in self.parameters[block]}
        done = set(graph.inputs)
        while len(done) < len(done | set(order)):
            for t in order:
                if t in done:
                    continue
                _, parents, weights, bias, sigma = rows[t]
                if not set(parents) <= done:
                    continue
                j = self.index[t]
                for p, w in zip(parents, weights):
                    L[j] += w * L[self.index[p]]
                    M[j] += w * M[self.index[p]]
                    c[j] += w * c[self.index[p]]
                c[j] += bias
                L[j, position[t]] += sigma
                done.add(t)
        self._joint[family] = (L, M, c)
        return self._joint[family]

    def conditional(self, family: str, targets, given):
        """``targets | given`` (given atoms plus the family's inputs) as ``v_T = K v + k + e, e ~ N(0, S)``; K has
        columns for all atoms (zero outside the conditioning set)."""
        graph = self.model.graphs[family]
        L, M, c = self.joint(family)
        T = [self.index[a] for a in sorted(targets)]
        G = [self.index[a] for a in sorted(set(given) - graph.inputs)]
        cov = L @ L.T
        S_TT, S_TG, S_GG = cov[np.ix_(T, T)], cov[np.ix_(T, G)], cov[np.ix_(G, G)]
        gain = S_TG @ np.linalg.inv(S_GG) if G else np.zeros((len(T), 0))
        K = M[T] - gain @ M[G] if G else M[T].copy()
        for col, g in enumerate(G):
            K[:, g] += gain[:, col]
        k = c[T] - (gain @ c[G] if G else 0.0)
        S = S_TT - (gain @ S_TG.T if G else 0.0)
        return T, K, k, S

    def as_dict(self) -> dict:
        """The instance in the replayable linear-Gaussian export format (:mod:`elbocheck.derivations.oracle.replay`):
        per declared factor and target, its parents, weights, bias and standard deviation."""
        factors = []
        for block in unique_blocks(self.model):
            targets = [{"target": t, "parents": list(parents), "weights": [float(w) for w in weights],
                        "bias": float(bias), "sigma": float(sigma)}
                       for t, parents, weights, bias, sigma in self.parameters[block]]
            factors.append({"factor": block.label, "targets": targets})
        return {"kind": "linear-gaussian", "coefficients": dict(self.coefficients), "factors": factors}

    def describe(self) -> str:
        lines = ["linear-Gaussian instance (each variable = weights . parents + bias + sigma * standard normal):"]
        if self.coefficients:
            lines.append("coefficients: " + ", ".join(f"{k} = {v:.4g}" for k, v in self.coefficients.items()))
        for block in unique_blocks(self.model):
            for t, parents, weights, bias, sigma in self.parameters[block]:
                terms = " + ".join(f"{w:.3f} {p}" for p, w in zip(parents, weights))
                lines.append(f"  [{block.label}] {t} = {terms + ' + ' if terms else ''}{bias:.3f} + {sigma:.3f} eps")
        return "\n".join(lines)


class GaussianEvaluator:
    def __init__(self, model: Model):
        self.model = model

    def value(self, expr, instance: GaussianInstance) -> Quadratic:
        return self._value(sympy.sympify(expr), instance)

    def _log_density(self, family, targets, given, instance) -> Quadratic:
        T, K, k, S = instance.conditional(family, targets, given)
        R = -K
        for row, t in enumerate(T):
            R[row, t] += 1.0
        S_inv = np.linalg.inv(S)
        A = -0.5 * R.T @ S_inv @ R
        b = R.T @ S_inv @ k
        _, logdet = np.linalg.slogdet(2 * np.pi * S)
        return Quadratic(A, b, float(-0.5 * k @ S_inv @ k - 0.5 * logdet))

    def _expect(self, family, targets, given, body: Quadratic, instance) -> Quadratic:
        T, K, k, S = instance.conditional(family, targets, given)
        n = instance.n
        H, h = np.eye(n), np.zeros(n)
        H[T, :] = K
        h[T] = k
        A = H.T @ body.A @ H
        b = 2 * H.T @ body.A @ h + H.T @ body.b
        c = h @ body.A @ h + body.b @ h + body.c + float(np.trace(body.A[np.ix_(T, T)] @ S))
        return Quadratic((A + A.T) / 2, b, c)

    def _resolved(self, d: Density):
        r = self.model.resolve(d)
        written = self.model._atoms_of(d.given, d) - self.model.graphs[r.family].inputs
        return r.family, r.targets, written

    def _value(self, expr, instance: GaussianInstance) -> Quadratic:
        n = instance.n
        if isinstance(expr, (IndexedSum, IndexedProduct)) or (isinstance(expr, Expectation)
                                                              and isinstance(expr.measure, IndexedProduct)):
            raise GaussianUnsupported(f"{expr}: sums over importance samples have no linear-Gaussian closed form")
        if isinstance(expr, sympy.Add):
            out = Quadratic.constant(n, 0.0)
            for a in expr.args:
                out = out + self._value(a, instance)
            return out
        if isinstance(expr, sympy.Mul):
            scalars, random = [], []
            for a in expr.args:
                (random if a.atoms(Density, KL, MutualInformation, TotalCorrelation, Entropy, Expectation) else scalars).append(a)
            k = float(sympy.Mul(*scalars).subs({sympy.Symbol(s, real=True): v for s, v in instance.coefficients.items()}))
            if len(random) != 1:
                raise GaussianUnsupported(f"{expr}: not linear in random terms")
            return self._value(random[0], instance).scale(k)
        if isinstance(expr, sympy.log):
            return self._log(expr.args[0], instance)
        if not expr.atoms(Density, KL, MutualInformation, TotalCorrelation, Entropy, Expectation):
            value = expr.subs({sympy.Symbol(s, real=True): v for s, v in instance.coefficients.items()})
            return Quadratic.constant(n, float(value))
        if isinstance(expr, Expectation):
            body = self._value(expr.body, instance)
            for d in reversed(measure_densities(expr.measure)):
                body = self._expect(*self._resolved(d), body, instance)
            return body
        if isinstance(expr, KL):
            a, b = self._resolved(expr.first), self._resolved(expr.second)
            inner = self._log_density(*a, instance) + self._log_density(*b, instance).scale(-1.0)
            return self._expect(*a, inner, instance)
        if isinstance(expr, MutualInformation):
            atoms = self.model._atoms_of
            f, s, g = atoms(expr.first, expr), atoms(expr.second, expr), atoms(expr.given, expr)
            fam = expr.family
            inner = (self._log_density(fam, f | s, g, instance) + self._log_density(fam, f, g, instance).scale(-1.0)
                     + self._log_density(fam, s, g, instance).scale(-1.0))
            return self._expect(fam, f | s | g, frozenset(), inner, instance)
        if isinstance(expr, TotalCorrelation):
            fam, targets, given = self._resolved(expr.of)
            inner = self._log_density(fam, targets, given, instance)
            for t in targets:
                inner = inner + self._log_density(fam, {t}, given, instance).scale(-1.0)
            return self._expect(fam, targets, given, inner, instance)
        if isinstance(expr, Entropy):
            fam, targets, given = self._resolved(expr.of)
            return self._expect(fam, targets, given, self._log_density(fam, targets, given, instance), instance).scale(-1.0)
        raise GaussianUnsupported(f"{expr}: no linear-Gaussian closed form")

    def _log(self, arg, instance) -> Quadratic:
        if isinstance(arg, Density):
            return self._log_density(*self._resolved(arg), instance)
        if isinstance(arg, sympy.Mul):
            out = Quadratic.constant(instance.n, 0.0)
            for a in arg.args:
                out = out + self._log(a, instance)
            return out
        if isinstance(arg, sympy.Pow):
            exponent = float(arg.args[1].subs({sympy.Symbol(s, real=True): v for s, v in instance.coefficients.items()}))
            return self._log(arg.args[0], instance).scale(exponent)
        if not arg.atoms(Density, Expectation):
            value = float(arg.subs({sympy.Symbol(s, real=True): v for s, v in instance.coefficients.items()}))
            if not value > 0:
                raise GaussianUnsupported(f"log({arg}): the argument is {value:.4g}, not positive, on this instance")
            return Quadratic.constant(instance.n, float(np.log(value)))
        raise GaussianUnsupported(f"log({arg}): a log of an expectation has no linear-Gaussian closed form")
