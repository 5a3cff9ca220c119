"""SymPy classes for the objects of ELBO derivations: densities, expectations, KL, mutual information, TC, entropy.

Every class subclasses :class:`sympy.Expr`, keeps its arguments as SymPy objects, and prints through
``printer._print`` so that str() and LaTeX come out clean. Their *meaning* (which joint a density belongs to, which
marginal ``q(z)`` is) is given by a :class:`~elbocheck.derivations.model.Model`; these classes are only syntax.

We do not use ``sympy.stats``: it treats a hierarchical variable's density as a free function and gives silently wrong
answers for marginals such as the aggregate posterior ``q(z)``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import sympy
from sympy import Expr, Mul, Pow, Symbol, Tuple

#: Families with a fixed meaning: ``p`` the generative joint, ``q`` the inference joint (``p_D`` times the encoder),
#: ``p_D`` the data distribution (a marginal of the inference joint), ``r`` auxiliary densities declared one by one.
CONVENTIONAL_FAMILIES = ("p", "q", "p_D", "r")
DATA_SUBSCRIPTS = ("D", "data", r"\mathcal{D}", "mathcal{D}")


def variable(name: str) -> Symbol:
    """A random variable (or a vector-valued group of them) of a model, by name: ``variable("z_l")``."""
    return Symbol(name)


def variables(names: str) -> tuple[Symbol, ...]:
    """Several variables from a space- or comma-separated string: ``x, z = variables("x z")``."""
    return tuple(Symbol(n) for n in names.replace(",", " ").split())


def _as_tuple(items) -> Tuple:
    if isinstance(items, (Symbol, str)):
        items = (items,)
    return Tuple(*[Symbol(i) if isinstance(i, str) else i for i in items])


def _latex_name(printer, symbol: Symbol) -> str:
    return printer._print(symbol)


class Density(Expr):
    """A density term ``family_subscript(targets | given)``, e.g. ``p_theta(x | z)``, ``q(z_l, z_u | x)``.

    Arguments: ``family`` (Symbol ``p``, ``q``, ``p_D``, ``r`` or a declared auxiliary name), ``targets`` and
    ``given`` (Tuples of variable Symbols), ``subscript`` (Tuple of parameter Symbols, possibly empty).
    """

    is_commutative = True

    def __new__(cls, family, targets, given=(), subscript=()):
        family = Symbol(family) if isinstance(family, str) else family
        subscript = _as_tuple(subscript)
        if str(family) == "p" and len(subscript) == 1 and str(subscript[0]) in DATA_SUBSCRIPTS:
            family, subscript = Symbol("p_D"), Tuple()
        return Expr.__new__(cls, family, _as_tuple(targets), _as_tuple(given), subscript)

    @property
    def family(self) -> str:
        return str(self.args[0])

    @property
    def targets(self) -> tuple[Symbol, ...]:
        return tuple(self.args[1])

    @property
    def given(self) -> tuple[Symbol, ...]:
        return tuple(self.args[2])

    @property
    def subscript(self) -> tuple[Symbol, ...]:
        return tuple(self.args[3])

    def _eval_is_positive(self):
        return True

    def _eval_is_extended_real(self):
        return True

    def _sympystr(self, printer):
        name = self.family
        if self.subscript:
            name += "_" + ",".join(printer._print(s) for s in self.subscript)
        inner = ", ".join(printer._print(t) for t in self.targets)
        if self.given:
            inner += " | " + ", ".join(printer._print(g) for g in self.given)
        return f"{name}({inner})"

    def _latex(self, printer):
        if self.family == "p_D":
            name = r"p_{\mathcal{D}}"
        else:
            name = self.family
            if self.subscript:
                name += "_{" + ", ".join(printer._print(s) for s in self.subscript) + "}"
        inner = ", ".join(_latex_name(printer, t) for t in self.targets)
        if self.given:
            inner += r" \mid " + ", ".join(_latex_name(printer, g) for g in self.given)
        return rf"{name}\left({inner}\right)"


def density(spec: str) -> Density:
    """Parse the compact notation ``"p_theta(x|z)"``, ``"q(z_l, z_u | x)"``, ``"p_D(x, c)"`` into a :class:`Density`.

    The family is the text before the parenthesis; ``p_D`` is the data distribution; any other ``_suffix`` is a
    parameter subscript (``p_theta`` = family ``p``, subscript ``theta``; ``q_phi_y`` = family ``q``, subscript
    ``phi_y``).
    """
    spec = spec.strip()
    if "(" not in spec or not spec.endswith(")"):
        raise ValueError(f"density {spec!r}: expected the form name(targets | given), e.g. 'p_theta(x|z)'")
    head, inner = spec[: spec.index("(")].strip(), spec[spec.index("(") + 1 : -1]
    if head in ("p_D", "p_data"):
        family, subscript = "p_D", ()
    elif "_" in head:
        family, sub = head.split("_", 1)
        subscript = (sub,)
    else:
        family, subscript = head, ()
    if not family:
        raise ValueError(f"density {spec!r}: missing family name before '('")
    target_text, _, given_text = inner.partition("|")
    targets = [t.strip() for t in target_text.split(",") if t.strip()]
    given = [g.strip() for g in given_text.split(",") if g.strip()]
    if not targets:
        raise ValueError(f"density {spec!r}: no target variable before '|'")
    return Density(family, targets, given, subscript)


class Expectation(Expr):
    """``E_{measure}[body]``. The measure is a :class:`Density` or a product (``Mul``) of densities, read as nested
    expectations from left to right: ``E_{p_D(x) q(z|x)}[f] = E_{p_D(x)}[E_{q(z|x)}[f]]``."""

    is_commutative = True

    def __new__(cls, measure, body):
        measure_factors = measure_densities(measure)
        if not measure_factors and not isinstance(measure, IndexedProduct):
            raise ValueError(f"expectation measure {measure} is not a density or a product of densities")
        return Expr.__new__(cls, measure, sympy.sympify(body))

    @property
    def measure(self) -> Expr:
        return self.args[0]

    @property
    def body(self) -> Expr:
        return self.args[1]

    def _sympystr(self, printer):
        return f"E_{{{printer._print(self.measure)}}}[{printer._print(self.body)}]"

    def _latex(self, printer):
        return rf"\mathbb{{E}}_{{{printer._print(self.measure)}}}\left[{printer._print(self.body)}\right]"


def measure_densities(measure: Expr) -> list[Density]:
    """The densities of an expectation's measure, outermost first; ``[]`` if it is not a product of densities.

    A product measure is a set of factors: whatever the written order, a density comes after every density whose
    targets it is conditioned on (``q(z|x) p_D(x)`` is ``p_D(x)``, then ``q(z|x)``); ties keep the written order. A
    measure whose factors condition on each other in a cycle raises ``ValueError``.
    """
    if isinstance(measure, Density):
        return [measure]
    if not isinstance(measure, Mul) or not all(isinstance(f, Density) for f in measure.args):
        return []
    remaining = list(measure.args)
    ordered: list[Density] = []
    while remaining:
        for candidate in remaining:
            needs = set(candidate.given)
            if not any(needs & set(other.targets) for other in remaining if other is not candidate):
                break
        else:
            raise ValueError(f"expectation measure {measure}: its densities condition on each other in a cycle")
        ordered.append(candidate)
        remaining.remove(candidate)
    return ordered


class KL(Expr):
    """``KL(a || b) = E_a[log a - log b]`` between two densities over the same target variables."""

    is_commutative = True

    def __new__(cls, first, second):
        if not isinstance(first, Density) or not isinstance(second, Density):
            raise ValueError(f"KL({first} || {second}): both arguments must be densities")
        return Expr.__new__(cls, first, second)

    @property
    def first(self) -> Density:
        return self.args[0]

    @property
    def second(self) -> Density:
        return self.args[1]

    def _sympystr(self, printer):
        return f"KL({printer._print(self.first)} || {printer._print(self.second)})"

    def _latex(self, printer):
        return rf"D_{{\mathrm{{KL}}}}\left({printer._print(self.first)} \,\|\, {printer._print(self.second)}\right)"


class MutualInformation(Expr):
    """``I_F(A; B | C)``: mutual information between variable sets A and B given C under the joint of family F
    (``q`` by default: the inference joint ``p_D(x) q(z|x)``). The conditional version averages over C."""

    is_commutative = True

    def __new__(cls, first, second, given=(), family="q"):
        family = Symbol(family) if isinstance(family, str) else family
        return Expr.__new__(cls, _as_tuple(first), _as_tuple(second), _as_tuple(given), family)

    @property
    def first(self) -> tuple[Symbol, ...]:
        return tuple(self.args[0])

    @property
    def second(self) -> tuple[Symbol, ...]:
        return tuple(self.args[1])

    @property
    def given(self) -> tuple[Symbol, ...]:
        return tuple(self.args[2])

    @property
    def family(self) -> str:
        return str(self.args[3])

    def _sympystr(self, printer):
        a = ", ".join(printer._print(v) for v in self.first)
        b = ", ".join(printer._print(v) for v in self.second)
        c = (" | " + ", ".join(printer._print(v) for v in self.given)) if self.given else ""
        return f"I_{self.family}({a}; {b}{c})"

    def _latex(self, printer):
        a = ", ".join(printer._print(v) for v in self.first)
        b = ", ".join(printer._print(v) for v in self.second)
        c = (r" \mid " + ", ".join(printer._print(v) for v in self.given)) if self.given else ""
        return rf"I_{{{self.family}}}\left({a}; {b}{c}\right)"


class TotalCorrelation(Expr):
    """``TC(F(z | G)) = KL(F(z | G) || prod_j F(z_j | G))`` for a vector-valued z with declared components."""

    is_commutative = True

    def __new__(cls, of):
        if not isinstance(of, Density):
            raise ValueError(f"TC({of}): the argument must be a density")
        return Expr.__new__(cls, of)

    @property
    def of(self) -> Density:
        return self.args[0]

    def _sympystr(self, printer):
        return f"TC({printer._print(self.of)})"

    def _latex(self, printer):
        return rf"\mathrm{{TC}}\left({printer._print(self.of)}\right)"


class Entropy(Expr):
    """``H(F(A | B)) = -E_{F(A|B)}[log F(A|B)]`` (a function of B)."""

    is_commutative = True

    def __new__(cls, of):
        if not isinstance(of, Density):
            raise ValueError(f"H({of}): the argument must be a density")
        return Expr.__new__(cls, of)

    @property
    def of(self) -> Density:
        return self.args[0]

    def _sympystr(self, printer):
        return f"H({printer._print(self.of)})"

    def _latex(self, printer):
        return rf"\mathrm{{H}}\left({printer._print(self.of)}\right)"


class IndexedSum(Expr):
    """``sum_{index} body``: a sum over the components of vector variables. The body names the components it sums
    over by the index: ``z_j`` in ``sum_j KL(q(z_j) || p(z_j))`` is the j-th component of the vector ``z``, and the sum
    runs over all of them (``j = 1 .. J``, J the declared size, a number or a symbol)."""

    is_commutative = True

    def __new__(cls, index, body):
        index = Symbol(index) if isinstance(index, str) else index
        return Expr.__new__(cls, index, sympy.sympify(body))

    @property
    def index(self) -> Symbol:
        return self.args[0]

    @property
    def body(self) -> Expr:
        return self.args[1]

    def _sympystr(self, printer):
        return f"sum_{printer._print(self.index)}[{printer._print(self.body)}]"

    def _latex(self, printer):
        return rf"\sum_{{{printer._print(self.index)}}} {printer._print(self.body)}"


class IndexedProduct(Expr):
    """``prod_{index} body``: a product of densities over the components of vector variables (as
    :class:`IndexedSum`); ``log prod_j q(z_j) = sum_j log q(z_j)``."""

    is_commutative = True

    def __new__(cls, index, body):
        index = Symbol(index) if isinstance(index, str) else index
        return Expr.__new__(cls, index, sympy.sympify(body))

    @property
    def index(self) -> Symbol:
        return self.args[0]

    @property
    def body(self) -> Expr:
        return self.args[1]

    def _eval_is_positive(self):
        return True

    def _sympystr(self, printer):
        return f"prod_{printer._print(self.index)}[{printer._print(self.body)}]"

    def _latex(self, printer):
        return rf"\prod_{{{printer._print(self.index)}}} {printer._print(self.body)}"


def sum_over(index: str, body) -> IndexedSum:
    """``sum_over("j", kl("q(z_j)", "p(z_j)"))`` is ``sum_j KL(q(z_j) || p(z_j))``."""
    return IndexedSum(index, body)


def prod_over(index: str, body) -> IndexedProduct:
    """``prod_over("j", "q(z_j|x)")`` is ``prod_j q(z_j | x)``."""
    return IndexedProduct(index, density(body) if isinstance(body, str) else body)


def E(measure, body) -> Expectation:
    """Shorthand for :class:`Expectation`; the measure may be a density or a string in density notation."""
    if isinstance(measure, str):
        measure = density(measure)
    elif isinstance(measure, Sequence) and not isinstance(measure, Expr):
        measure = Mul(*[density(m) if isinstance(m, str) else m for m in measure], evaluate=False)
    if isinstance(body, str):
        body = density(body)
    return Expectation(measure, body)


def log(arg) -> Expr:
    """``log`` of a density, a product/ratio of densities, or an expectation (kept unevaluated)."""
    if isinstance(arg, str):
        arg = density(arg)
    return sympy.log(arg, evaluate=False)


def ratio(numerator: Iterable, denominator: Iterable = ()) -> Expr:
    """An unevaluated product/ratio of densities, as written (SymPy would otherwise cancel ``q/q`` on sight)."""
    num = [density(d) if isinstance(d, str) else d for d in numerator]
    den = [density(d) if isinstance(d, str) else d for d in denominator]
    factors = num + [Pow(d, -1, evaluate=False) for d in den]
    if len(factors) == 1:
        return factors[0]
    return Mul(*factors, evaluate=False)


def kl(first, second) -> KL:
    """Shorthand for :class:`KL` accepting density notation strings."""
    first = density(first) if isinstance(first, str) else first
    second = density(second) if isinstance(second, str) else second
    return KL(first, second)


def mi(first, second, given=(), family="q") -> MutualInformation:
    """Shorthand for :class:`MutualInformation` with variable names as strings: ``mi("x", "z")``."""

    def names(v):
        if isinstance(v, str):
            return [s for s in v.replace(",", " ").split()]
        return v

    return MutualInformation(names(first), names(second), names(given), family)


def tc(of) -> TotalCorrelation:
    return TotalCorrelation(density(of) if isinstance(of, str) else of)


def entropy(of) -> Entropy:
    return Entropy(density(of) if isinstance(of, str) else of)


def densities_in(expr: Expr) -> list[Density]:
    """Every density that occurs in an expression (in measures, logs, KL arguments, TC/H arguments)."""
    return sorted(expr.atoms(Density), key=str)


def free_symbols_of_expression(expr: Expr, variable_names: set[str]) -> set[str]:
    """Names of coefficient symbols (beta, lambda, ...): the free symbols that are not variables or families."""
    names = set()
    for sym in expr.free_symbols:
        name = str(sym)
        if name in variable_names:
            continue
        names.add(name)
    # symbols used as family names and parameter subscripts sit inside Density args; remove them
    for d in expr.atoms(Density):
        names.discard(d.family)
        for s in d.subscript:
            names.discard(str(s))
    for m in expr.atoms(MutualInformation):
        names.discard(m.family)
    return names
