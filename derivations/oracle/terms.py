"""What a density term means: its joint (family and parameter versions), target atoms and conditioning atoms.

Implements docs/semantics.md section 3 (subscripts) and the input rule of section 2, on the oracle's own
:class:`~.declaration.Structure`:

* ``p_D(A|B)`` is the conditional of the inference joint over data variables only;
* a subscript-free ``p``/``q`` term is the conditional of that family's joint; a subscript must be a declared
  parameter set of the family, a prefix group of sets, or a *version* of one (``theta_old``, ``theta'``,
  ``theta_0``, ``theta^(t)``), which selects a copy of the joint whose factors parametric in that set are replaced by
  independent ones; any other subscript is an error;
* an auxiliary density is found by family letter, subscript and arguments exactly as declared (a subscript-free
  ``r(y|z)`` names the one declared ``r_S(y|z)``); a subscript-free ``q(T|G)`` that is also a declared auxiliary
  ``q_S(T|G)`` is ambiguous;
* a ``p`` term that leaves out an input is an error unless it is d-separated from that input given its conditioning
  variables (Lauritzen's criterion on the moralised ancestral graph), i.e. it cannot depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..expressions import Density
from .declaration import Factor, Structure, normalize_subscript, version_of
from .errors import UndefinedTerm


@dataclass(frozen=True)
class JointKey:
    """A joint: a family key and the parameter versions in force, ``((set, decoration), ...)`` sorted."""

    family: str
    versions: tuple[tuple[str, str], ...] = ()

    def decoration(self, factor: Factor) -> str | None:
        for parameter_set, decoration in self.versions:
            if factor.parameters == parameter_set:
                return decoration
        return None


@dataclass(frozen=True)
class Term:
    """``family(targets | given)`` resolved: the joint it is a conditional of, and the atoms it involves."""

    joint: JointKey
    targets: tuple[str, ...]
    given: tuple[str, ...]
    text: str

    @property
    def atoms(self) -> frozenset[str]:
        return frozenset(self.targets) | frozenset(self.given)


def _ordered(structure: Structure, atoms) -> tuple[str, ...]:
    atoms = set(atoms)
    return tuple(a for a in structure.atoms if a in atoms)


def written_atoms(structure: Structure, names, text: str) -> tuple[str, ...]:
    """The atoms of written variable names, each at most once."""
    out: list[str] = []
    for n in names:
        for a in structure.atoms_of(str(n), text):
            if a in out:
                raise UndefinedTerm(text, f"the variable {a} appears twice")
            out.append(a)
    return tuple(out)


def resolve_density(structure: Structure, d: Density) -> Term:
    """The meaning of a density term (cached per structure)."""
    cache = structure.cache.setdefault("terms", {})
    if d in cache:
        return cache[d]
    text = str(d)
    targets = written_atoms(structure, d.targets, text)
    given = written_atoms(structure, d.given, text)
    subscripts = tuple(normalize_subscript(str(s)) for s in d.subscript)
    term = resolve(structure, d.family, subscripts, targets, given, text)
    cache[d] = term
    return term


def resolve(structure: Structure, letter: str, subscripts: tuple[str, ...], targets: tuple[str, ...],
            given: tuple[str, ...], text: str) -> Term:
    """The term ``letter_subscripts(targets | given)`` over atoms."""
    if set(targets) & set(given):
        raise UndefinedTerm(text, "a variable is both a target and conditioned on")
    if letter == "p_D":
        if subscripts:
            raise UndefinedTerm(text, "the data distribution has no parameters")
        outside = (set(targets) | set(given)) - set(structure.data_atoms)
        if outside:
            raise UndefinedTerm(text, f"p_D is a distribution of the data variables "
                                      f"({', '.join(structure.data_atoms)}) only, not of {', '.join(sorted(outside))}")
        key = JointKey("q")
    else:
        key = _joint(structure, letter, subscripts, targets, given, text)
    family = structure.families[key.family]
    random, inputs = set(family.atoms), set(family.inputs)
    unknown = (set(targets) | set(given)) - random - inputs
    if unknown:
        raise UndefinedTerm(text, f"{', '.join(_ordered(structure, unknown))} is not a variable of the "
                                  f"{_family_name(key.family)} ({', '.join(family.atoms)})")
    fixed = set(targets) & inputs
    if fixed:
        raise UndefinedTerm(text, f"{', '.join(sorted(fixed))} is an input of the {_family_name(key.family)}: it is "
                                  "conditioned on, never distributed")
    omitted = inputs - set(given)
    if omitted and _connected(family, set(targets), set(given), omitted):
        raise UndefinedTerm(text, f"leaves out the input {', '.join(_ordered(structure, omitted))}, on which it "
                                  "depends; condition on it")
    return Term(key, _ordered(structure, targets), _ordered(structure, given), text)


def _family_name(key: str) -> str:
    if key == "p":
        return "generative joint p"
    if key == "q":
        return "inference joint q"
    return f"auxiliary density {key[4:]}"


def _joint(structure: Structure, letter: str, subscripts: tuple[str, ...], targets, given, text: str) -> JointKey:
    main = letter if letter in ("p", "q") else None
    auxiliaries = [f for f in structure.factors
                   if f.family.startswith("aux:") and f.letter == letter
                   and set(f.targets) == set(targets) and set(f.given) == set(given)]
    letters = {f.letter for f in structure.factors if f.family.startswith("aux:")}
    if main is None and letter not in letters:
        raise UndefinedTerm(text, f"undeclared density family '{letter}' (declared: p, q, p_D"
                                  f"{''.join(', ' + x for x in sorted(letters - {'p', 'q', 'p_D'}))})")
    if not subscripts:
        if main and auxiliaries:
            raise UndefinedTerm(text, f"ambiguous: the auxiliary {auxiliaries[0].text} is declared with the same "
                                      f"arguments as the {_family_name(main)}'s conditional; write the auxiliary's "
                                      "or the joint's subscript")
        if main:
            return JointKey(main)
        return _auxiliary(structure, letter, auxiliaries, None, targets, given, text)
    if len(subscripts) > 1 and not main:
        raise UndefinedTerm(text, "an auxiliary density has one subscript")
    versions: dict[str, str] = {}
    for subscript in subscripts:
        aux_hit = [f for f in auxiliaries
                   if f.subscript == subscript or (version_of(subscript) or ("", ""))[0] == f.subscript]
        main_hit = _main_subscript(structure, main, subscript) if main else None
        if aux_hit and main_hit is not None:
            raise UndefinedTerm(text, f"ambiguous: both the auxiliary {aux_hit[0].text} and the "
                                      f"{_family_name(main)} declare the subscript {subscript}")
        if aux_hit:
            if len(subscripts) > 1:
                raise UndefinedTerm(text, "an auxiliary density has one subscript")
            return _auxiliary(structure, letter, auxiliaries, subscript, targets, given, text)
        if main_hit is None:
            if main:
                sets = structure.parameter_sets(main)
                declared = (f"declares the parameter sets {', '.join(sets)}" if sets
                            else "declares no parameters for it")
                same_letter = [f.text for f in structure.factors if f.family.startswith("aux:") and f.letter == main]
                if same_letter:
                    declared += f", and the auxiliary densities {', '.join(same_letter)} have other arguments"
                raise UndefinedTerm(text, f"undeclared subscript '{subscript}': the {_family_name(main)} {declared}")
            return _auxiliary(structure, letter, auxiliaries, subscript, targets, given, text)
        versions.update(main_hit)
    return JointKey(main, tuple(sorted(versions.items())))


def _main_subscript(structure: Structure, family: str, subscript: str) -> dict[str, str] | None:
    """``{}`` for a declared set or group (a label), ``{set: decoration}`` for a version, None if undeclared."""
    if structure.parameter_group(family, subscript):
        return {}
    version = version_of(subscript)
    if version is None:
        return None
    base, decoration = version
    group = structure.parameter_group(family, base)
    if not group:
        return None
    return {s: decoration for s in group}


def _auxiliary(structure: Structure, letter: str, candidates: list[Factor], subscript: str | None, targets, given,
               text: str) -> JointKey:
    declared = ", ".join(f.text for f in structure.factors if f.family.startswith("aux:") and f.letter == letter)
    if subscript is None:
        if len(candidates) == 1:
            return JointKey(candidates[0].family)
        if not candidates:
            raise UndefinedTerm(text, f"no auxiliary density with these arguments is declared (declared: {declared})")
        raise UndefinedTerm(text, f"ambiguous between the auxiliary densities {declared}; write the subscript")
    exact = [f for f in candidates if f.subscript == subscript]
    if len(exact) == 1:
        return JointKey(exact[0].family)
    version = version_of(subscript)
    if version is not None:
        base, decoration = version
        hits = [f for f in candidates if f.subscript == base]
        if len(hits) == 1:
            return JointKey(hits[0].family, ((base, decoration),))
    raise UndefinedTerm(text, f"undeclared auxiliary density (declared: {declared})")


def _connected(family, targets: set[str], given: set[str], inputs: set[str]) -> bool:
    """Whether ``targets`` and ``inputs`` are d-connected given ``given`` in the family's DAG (Lauritzen et al. 1990:
    separation in the moral graph of the smallest ancestral set)."""
    parents = family.parents
    relevant = set(targets) | set(given) | set(inputs)
    stack = list(relevant)
    while stack:
        node = stack.pop()
        for parent in parents.get(node, ()):
            if parent not in relevant:
                relevant.add(parent)
                stack.append(parent)
    neighbours: dict[str, set[str]] = {n: set() for n in relevant}
    for node in relevant:
        ps = [p for p in parents.get(node, ()) if p in relevant]
        for p in ps:
            neighbours[node].add(p)
            neighbours[p].add(node)
        for i, a in enumerate(ps):
            for b in ps[i + 1:]:
                neighbours[a].add(b)
                neighbours[b].add(a)
    seen = set(inputs) - set(given)
    stack = list(seen)
    while stack:
        node = stack.pop()
        if node in targets:
            return True
        for n in neighbours[node]:
            if n not in seen and n not in given:
                seen.add(n)
                stack.append(n)
    return False
