"""The oracle's own reading of a model declaration: variables, components, factors, families, parameter sets.

Implements docs/semantics.md sections 1, 2 and 4 from the declaration's raw fields only (``name``, ``observed``,
``latent``, ``generative``, ``inference``, ``data``, ``vectors``, ``auxiliary``, ``coefficients``) and the strings of
the assumptions (objects with ``joint`` and ``factors``, or ``(joint, factors)`` pairs):

* a variable is an *atom* or a vector whose atoms are its components ``z_1 ... z_J``;
* ``prod_j p(z_j)`` declares one factor per component;
* the generative family ``p`` is the product of the generative factors, conditioned on its *inputs* (variables that
  condition a generative factor and that no generative factor generates);
* the inference family ``q`` is ``p_D(data variables)`` times the inference factors;
* each declared auxiliary density is a family of its own whose inputs are its conditioning variables;
* an assumption replaces one declared factor by a product of factors; a new factor without a subscript inherits the
  parameter set of the factor it replaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Sequence

from ..expressions import Density, density
from .errors import DeclarationError, UndefinedTerm

_TEMPLATE = re.compile(r"^\s*prod_(?P<index>[A-Za-z]\w*)\s+(?P<body>.+)$")
# A data point x^{(i)}: the variable x at sample index i (docs/semantics.md section 5).
_DATA_POINT = re.compile(r"^(?P<base>.+?)\s*\^\s*\{?\s*\((?P<index>[^()]+)\)\s*\}?$")
# Parameter-version decorations (docs/semantics.md section 3.4), after normalize_subscript.
_VERSION = re.compile(r"^(?P<base>.+?)(?:[_^]\(?(?P<word>old|new|\d+|t|t[+-]1)\)?|(?P<primes>'+))$")


def normalize_subscript(text: str) -> str:
    r"""A subscript as plain text: ``\theta^{\text{old}}`` -> ``theta^old``, ``\theta'`` -> ``theta'``,
    ``{\phi}`` -> ``phi``, ``\theta^{\prime}`` -> ``theta'``."""
    s = str(text).strip()
    s = re.sub(r"\\(?:text|textrm|textit|mathrm|mathit|rm|operatorname)\s*\{([^{}]*)\}", r"\1", s)
    s = s.replace("\\prime", "'")
    s = re.sub(r"\\([A-Za-z]+)", r"\1", s)
    s = s.replace(" ", "").replace("{", "").replace("}", "")
    s = re.sub(r"\^('+)", r"\1", s)
    return s


def version_of(subscript: str) -> tuple[str, str] | None:
    """``(base, decoration)`` if the subscript is a parameter version (``theta_old`` -> ``("theta", "old")``,
    ``theta^(t)`` and ``theta_t`` -> ``("theta", "t")``, ``theta''`` -> ``("theta", "''")``), else None."""
    m = _VERSION.match(subscript)
    if not m:
        return None
    return m.group("base"), m.group("word") or m.group("primes")


def data_point(name: str) -> tuple[str, str | None]:
    """``x^{(i)}`` -> ``("x", "i")``; ``x`` -> ``("x", None)``."""
    m = _DATA_POINT.match(name.strip())
    if not m:
        return name.strip(), None
    return m.group("base").strip(), m.group("index").strip()


@dataclass(frozen=True)
class Factor:
    """One factor of a family: ``letter_subscript(targets | given)`` over atoms.

    ``parameters`` is its parameter set (its subscript, or the one it inherits through an assumption); None for a
    non-parametric factor (and always for ``p_D``). ``family`` is the key of the joint it belongs to: ``"p"``, ``"q"``
    or ``"aux:<declared text>"``.
    """

    index: int
    family: str
    letter: str
    subscript: str | None
    parameters: str | None
    targets: tuple[str, ...]
    given: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Family:
    """A joint: its factors, its random atoms in a topological order, its inputs (conditioned on, never integrated)
    and each random atom's parents (a factor's earlier targets and its conditioning variables)."""

    key: str
    factors: tuple[int, ...]
    atoms: tuple[str, ...]
    inputs: tuple[str, ...]
    parents: dict


@dataclass(eq=False)
class Structure:
    """The oracle's reading of one declaration under a list of assumptions (``cache`` holds resolved terms)."""

    name: str
    atoms: tuple[str, ...]
    variables: dict            # written name -> atoms (a vector's components, or the atom itself)
    vectors: dict              # vector name -> its components
    data_atoms: tuple[str, ...]
    factors: tuple[Factor, ...]
    families: dict             # key -> Family
    coefficients: dict         # name -> (low, high, low_open, high_open), bounds as Fractions or None
    fingerprint: tuple
    cache: dict = field(default_factory=dict)

    # ---- parameter sets -------------------------------------------------------------------------------------
    def parameter_sets(self, family: str) -> tuple[str, ...]:
        """The parameter sets of family ``"p"`` or ``"q"`` (the subscripts of its declared factors)."""
        sets = {self.factors[i].parameters for i in self.families[family].factors}
        return tuple(sorted(s for s in sets if s))

    def parameter_group(self, family: str, subscript: str) -> tuple[str, ...]:
        """The declared parameter sets a subscript names in a family: itself, or the sets it is a prefix group of."""
        sets = self.parameter_sets(family)
        if subscript in sets:
            return (subscript,)
        return tuple(s for s in sets if s.startswith(subscript + "_"))

    @property
    def parametric_factors(self) -> tuple[Factor, ...]:
        return tuple(f for f in self.factors if f.parameters)

    def factor_by_text(self, text: str) -> Factor:
        for f in self.factors:
            if f.text == text:
                return f
        raise KeyError(text)

    # ---- variables --------------------------------------------------------------------------------------------
    def atoms_of(self, name: str, term: str) -> tuple[str, ...]:
        """The atoms a written variable stands for (a data-point index ``x^{(i)}`` names the variable ``x``)."""
        base, _ = data_point(str(name))
        if base in self.variables:
            return self.variables[base]
        declared = ", ".join(self.variables)
        raise UndefinedTerm(term, f"undeclared variable '{base}' (the model {self.name} declares {declared})")


def _fraction(value) -> Fraction | None:
    if value is None:
        return None
    if isinstance(value, float):
        return Fraction(value)
    return Fraction(str(value)) if not isinstance(value, (int, Fraction)) else Fraction(value)


def _coefficient_range(name: str, value) -> tuple:
    """``(low, high, low_open, high_open)`` from ``(low, high)`` (closed ends) or ``(low, high, low_open,
    high_open)``: an open end excludes the bound itself."""
    low_open = high_open = False
    if hasattr(value, "low") and hasattr(value, "high"):
        low, high = value.low, value.high
        low_open, high_open = bool(getattr(value, "low_open", False)), bool(getattr(value, "high_open", False))
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise DeclarationError(f"coefficients[{name!r}] = {value!r}: expected a (low, high) range") from None
        if len(items) == 2:
            low, high = items
        elif len(items) == 4:
            low, high, low_open, high_open = items[0], items[1], bool(items[2]), bool(items[3])
        else:
            raise DeclarationError(f"coefficients[{name!r}] = {value!r}: expected (low, high) or "
                                   "(low, high, low_open, high_open)")
    low, high = _fraction(low), _fraction(high)
    if low is not None and high is not None and (low > high or (low == high and (low_open or high_open))):
        raise DeclarationError(f"coefficients[{name!r}]: empty range {low} > {high}")
    return low, high, low_open and low is not None, high_open and high is not None


def _assumption_parts(assumption) -> tuple[str, tuple[str, ...]]:
    if hasattr(assumption, "joint") and hasattr(assumption, "factors"):
        return str(assumption.joint), tuple(str(f) for f in assumption.factors)
    try:
        joint, factors = assumption
    except (TypeError, ValueError):
        raise DeclarationError(f"assumption {assumption!r}: expected Factorization(joint, factors) or "
                               "(joint, factors)") from None
    if isinstance(factors, str):
        factors = (factors,)
    return str(joint), tuple(str(f) for f in factors)


class _Reader:
    """Builds a :class:`Structure` from the raw declaration (one pass; keeps no reference to the model)."""

    def __init__(self, model):
        self.name = str(getattr(model, "name", "model"))
        self.vectors: dict[str, tuple[str, ...]] = {}
        for vector, size in dict(getattr(model, "vectors", {}) or {}).items():
            if int(size) < 1:
                raise DeclarationError(f"model {self.name}: vectors[{vector!r}] = {size}: expected at least 1")
            self.vectors[str(vector)] = tuple(f"{vector}_{j}" for j in range(1, int(size) + 1))
        self.variables: dict[str, tuple[str, ...]] = {}
        self.atoms: list[str] = []
        for role in ("observed", "latent"):
            for name in getattr(model, role):
                name = str(name)
                atoms = self.vectors.get(name, (name,))
                if name in self.variables:
                    raise DeclarationError(f"model {self.name}: variable {name!r} declared twice")
                self.variables[name] = atoms
                self.atoms.extend(a for a in atoms if a not in self.atoms)
        self.declared = tuple(self.variables)
        for vector in self.vectors:
            if vector not in self.variables:
                raise DeclarationError(f"model {self.name}: vectors names {vector!r}, which is neither observed "
                                       "nor latent")
        for vector, components in self.vectors.items():
            for atom in components:
                self.variables.setdefault(atom, (atom,))
        self.observed_atoms = tuple(a for n in model.observed for a in self.variables[str(n)])

    def atoms_of(self, names: Iterable, where: str) -> tuple[str, ...]:
        out: list[str] = []
        for n in names:
            n = str(n)
            if n not in self.variables:
                raise DeclarationError(f"model {self.name}: {where} uses {n!r}, which is not a declared variable "
                                       f"({', '.join(self.declared)})")
            for a in self.variables[n]:
                if a in out:
                    raise DeclarationError(f"model {self.name}: {where} names {a!r} twice")
                out.append(a)
        return tuple(out)

    def densities(self, spec: str, where: str) -> list[Density]:
        """One density, or one per component for a ``prod_j`` template."""
        m = _TEMPLATE.match(spec)
        try:
            if not m:
                return [density(spec)]
            index, body = m.group("index"), m.group("body")
            template = density(body)
        except ValueError as error:
            raise DeclarationError(f"model {self.name}: {where} {spec!r}: {error}") from None
        suffix = "_" + index
        names = [str(v) for v in template.targets + template.given]
        indexed = {n[: -len(suffix)] for n in names if n.endswith(suffix) and n[: -len(suffix)] in self.vectors}
        if not indexed:
            raise DeclarationError(f"model {self.name}: {where} {spec!r}: the template names no component "
                                   f"'<vector>{suffix}' of a declared vector ({', '.join(self.vectors) or 'none'})")
        sizes = {len(self.vectors[v]) for v in indexed}
        if len(sizes) != 1:
            raise DeclarationError(f"model {self.name}: {where} {spec!r}: vectors of different sizes under one "
                                   "template")
        out = []
        for j in range(1, sizes.pop() + 1):
            def sub(n: str) -> str:
                return n[: -len(suffix)] + f"_{j}" if n.endswith(suffix) and n[: -len(suffix)] in indexed else n
            subscript = tuple(sub(str(s)) for s in template.subscript)
            out.append(Density(template.family, [sub(str(t)) for t in template.targets],
                               [sub(str(g)) for g in template.given], subscript))
        return out


def _subscript(d: Density, where: str) -> str | None:
    if not d.subscript:
        return None
    if len(d.subscript) > 1:
        raise DeclarationError(f"{where} {d}: a declared factor has one parameter subscript")
    return normalize_subscript(str(d.subscript[0]))


#: Structures already read, by fingerprint (a structure is immutable but for its caches of resolved terms).
_STRUCTURES: dict[tuple, "Structure"] = {}
_MAX_STRUCTURES = 256


def read_structure(model, assumptions: Sequence = ()) -> Structure:
    """Read a declaration and apply assumptions in order (cached by the declaration's fingerprint). Raises
    :class:`DeclarationError` naming the spec at fault."""
    key = declaration_fingerprint(model, assumptions)
    if key not in _STRUCTURES:
        if len(_STRUCTURES) >= _MAX_STRUCTURES:
            _STRUCTURES.pop(next(iter(_STRUCTURES)))
        _STRUCTURES[key] = _read_structure(model, assumptions)
    return _STRUCTURES[key]


def _read_structure(model, assumptions: Sequence) -> Structure:
    reader = _Reader(model)
    name = reader.name
    # (family key, kind, letter, subscript, parameters, targets, given, text)
    factors: list[dict] = []

    def make(family: str, d: Density, where: str, parameters=None, inherit=False) -> dict:
        subscript = _subscript(d, where)
        targets = reader.atoms_of(d.targets, f"{where} {d}")
        given = reader.atoms_of(d.given, f"{where} {d}")
        if set(targets) & set(given):
            raise DeclarationError(f"model {name}: {where} {d}: a variable is both a target and conditioned on")
        return dict(family=family, letter=d.family, subscript=subscript,
                    parameters=parameters if inherit else subscript, targets=targets, given=given, text=str(d))

    for spec in model.generative:
        for d in reader.densities(str(spec), "generative factor"):
            if d.family != "p":
                raise DeclarationError(f"model {name}: generative factor {spec!r} must be a 'p' density")
            factors.append(make("p", d, "generative factor"))
    data_spec = getattr(model, "data", None)
    if data_spec:
        try:
            data_density = density(str(data_spec))
        except ValueError as error:
            raise DeclarationError(f"model {name}: data={data_spec!r}: {error}") from None
        if data_density.family != "p_D" or data_density.given:
            raise DeclarationError(f"model {name}: data={data_spec!r}: expected p_D(data variables)")
        data_atoms = reader.atoms_of(data_density.targets, f"data {data_spec!r}")
        if not set(data_atoms) <= set(reader.observed_atoms):
            raise DeclarationError(f"model {name}: data={data_spec!r} names a variable that is not observed")
    else:
        data_atoms = reader.observed_atoms
        data_density = Density("p_D", list(model.observed))
    if data_atoms:
        factors.append(make("q", data_density, "data distribution"))
    for spec in model.inference:
        for d in reader.densities(str(spec), "inference factor"):
            if d.family != "q":
                raise DeclarationError(f"model {name}: inference factor {spec!r} must be a 'q' density")
            factors.append(make("q", d, "inference factor"))
    for spec in getattr(model, "auxiliary", ()) or ():
        ds = reader.densities(str(spec), "auxiliary density")
        key = "aux:" + str(spec).strip()
        for d in ds:
            if d.family in ("p_D",):
                raise DeclarationError(f"model {name}: auxiliary density {spec!r}: p_D is the data distribution")
            factors.append(make(key, d, "auxiliary density"))

    for assumption in assumptions:
        joint_text, factor_texts = _assumption_parts(assumption)
        factors = _apply_assumption(reader, factors, joint_text, factor_texts, make)

    coefficients = {str(k): _coefficient_range(str(k), v)
                    for k, v in dict(getattr(model, "coefficients", {}) or {}).items()}
    frozen = tuple(Factor(index=i, **f) for i, f in enumerate(factors))
    families = _families(name, frozen, data_atoms)
    fingerprint = declaration_fingerprint(model, assumptions)
    return Structure(name=name, atoms=tuple(reader.atoms), variables=dict(reader.variables),
                     vectors=dict(reader.vectors), data_atoms=tuple(data_atoms), factors=frozen, families=families,
                     coefficients=coefficients, fingerprint=fingerprint)


def declaration_fingerprint(model, assumptions: Sequence = ()) -> tuple:
    """The raw declaration and assumptions as a hashable tuple: two equal fingerprints read the same."""
    return (str(getattr(model, "name", "model")), tuple(map(str, model.observed)), tuple(map(str, model.latent)),
            tuple(map(str, model.generative)), tuple(map(str, model.inference)), str(getattr(model, "data", None)),
            tuple(sorted((str(k), int(v)) for k, v in dict(getattr(model, "vectors", {}) or {}).items())),
            tuple(map(str, getattr(model, "auxiliary", ()) or ())),
            tuple(sorted((str(k), repr((v.low, v.high) if hasattr(v, "low") else tuple(v)))
                         for k, v in dict(getattr(model, "coefficients", {}) or {}).items())),
            tuple(_assumption_parts(a) for a in assumptions))


def _apply_assumption(reader: _Reader, factors: list[dict], joint_text: str, factor_texts: tuple[str, ...], make):
    """Replace the declared factor ``joint_text`` by ``factor_texts`` (docs/semantics.md section 4)."""
    name = reader.name
    where = f"assumption {joint_text} = {' '.join(factor_texts)}"
    try:
        joint = density(joint_text)
    except ValueError as error:
        raise DeclarationError(f"{where}: {error}") from None
    targets = set(reader.atoms_of(joint.targets, where))
    given = set(reader.atoms_of(joint.given, where))
    subscript = _subscript(joint, where)
    matches = [i for i, f in enumerate(factors)
               if f["letter"] == joint.family and set(f["targets"]) == targets and set(f["given"]) == given
               and (subscript is None or subscript in (f["subscript"], f["parameters"]))]
    if len(matches) != 1:
        declared = ", ".join(f["text"] for f in factors)
        reason = "is not a declared factor" if not matches else "matches several declared factors"
        raise DeclarationError(f"model {name}: {where}: {joint_text} {reason} (declared: {declared})")
    old = factors[matches[0]]
    same_family = [f for f in factors if f["family"] == old["family"]]
    allowed_sets = {f["parameters"] for f in same_family if f["parameters"]}
    new: list[dict] = []
    for text in factor_texts:
        for d in reader.densities(text, where):
            if d.family != old["letter"]:
                raise DeclarationError(f"model {name}: {where}: {d} is not a '{old['letter']}' density like "
                                       f"{old['text']}")
            sub = _subscript(d, where)
            if sub is not None and sub not in allowed_sets:
                raise DeclarationError(f"model {name}: {where}: {d} has the subscript {sub!r}, which is not a "
                                       f"parameter set of its family ({', '.join(sorted(allowed_sets)) or 'none'})")
            new.append(make(old["family"], d, where, parameters=sub if sub is not None else old["parameters"],
                            inherit=True))
    covered = [a for f in new for a in f["targets"]]
    if sorted(covered) != sorted(old["targets"]):
        raise DeclarationError(f"model {name}: {where}: the new factors' targets ({', '.join(covered)}) must be "
                               f"those of {old['text']} ({', '.join(old['targets'])}), each once")
    allowed_given = set(old["given"]) | set(old["targets"])
    for f in new:
        extra = set(f["given"]) - allowed_given
        if extra:
            raise DeclarationError(f"model {name}: {where}: {f['text']} conditions on {', '.join(sorted(extra))}, "
                                   f"which {old['text']} does not involve")
    _topological([(f["targets"], f["given"]) for f in new], f"model {name}: {where}")
    return factors[: matches[0]] + new + factors[matches[0] + 1:]


def _topological(blocks: list[tuple[tuple[str, ...], tuple[str, ...]]], where: str) -> list[int]:
    """An order of blocks in which each block comes after the blocks generating what it conditions on."""
    producer = {a: i for i, (targets, _) in enumerate(blocks) for a in targets}
    order: list[int] = []
    state: dict[int, int] = {}

    def visit(i: int, path: tuple[int, ...]):
        if state.get(i) == 2:
            return
        if state.get(i) == 1:
            raise DeclarationError(f"{where}: the factors form a cycle")
        state[i] = 1
        for g in blocks[i][1]:
            if g in producer and producer[g] != i:
                visit(producer[g], path + (i,))
        state[i] = 2
        order.append(i)

    for i in range(len(blocks)):
        visit(i, ())
    return order


def _families(name: str, factors: tuple[Factor, ...], data_atoms: tuple[str, ...]) -> dict:
    keys: list[str] = []
    for f in factors:
        if f.family not in keys:
            keys.append(f.family)
    if "p" not in keys:
        raise DeclarationError(f"model {name}: no generative factor")
    families = {}
    for key in keys:
        members = [f for f in factors if f.family == key]
        seen: dict[str, str] = {}
        for f in members:
            for a in f.targets:
                if a in seen:
                    raise DeclarationError(f"model {name}: {a} is generated by both {seen[a]} and {f.text}")
                seen[a] = f.text
        generated = set(seen)
        inputs = []
        for f in members:
            for g in f.given:
                if g not in generated and g not in inputs:
                    inputs.append(g)
        if key == "q" and inputs:
            offender = next(f for f in members if set(f.given) & set(inputs))
            raise DeclarationError(f"model {name}: {offender.text} conditions on {', '.join(inputs)}, which neither "
                                   "the data distribution nor an inference factor generates")
        order = _topological([(f.targets, f.given) for f in members], f"model {name}: family {key}")
        atoms: list[str] = []
        parents: dict[str, tuple[str, ...]] = {}
        for i in order:
            f = members[i]
            for k, t in enumerate(f.targets):
                parents[t] = f.given + f.targets[:k]
                atoms.append(t)
        families[key] = Family(key=key, factors=tuple(f.index for f in (members[i] for i in order)),
                               atoms=tuple(atoms), inputs=tuple(inputs), parents=parents)
    return families
