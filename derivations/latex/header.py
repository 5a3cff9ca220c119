"""The model header of a LaTeX derivation: clauses ``key: value``, one or more per line, separated by ``;``.

The common case is one line::

    % elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)

Factors are written in the compact density notation of :func:`~elbocheck.derivations.expressions.density`
(``p_theta(x|z)``; LaTeX such as ``p_{\\theta}(\\mathbf{x} \\mid \\mathbf{z})`` is accepted too). A bare list of
factors sorts itself: ``p`` factors are the generative model, ``q`` factors the inference model, ``p_D(...)`` the data
distribution, ``r(...)`` auxiliary. The variables that ``q`` factors generate are latent, all others observed. The
keys (see :data:`KEYS`; the meaning of every term is docs/semantics.md):

============================  =====================================================================================
``model NAME``                the model's (and the derivation's) name; ``model NAME: clauses`` on the first line
``p:`` / ``q:``               generative / inference factors, e.g. ``p: p(z_u) p_theta(z_l|c) p_theta(x|z_l,z_u)``;
                              a factor with another letter (``p: m(z) d(x|z); q: e(z|x)``) is named by its letter
``data:``                     the data distribution, ``data: p_D(x, c)`` (default: over all observed variables), or
                              the name the text gives it: ``data: p(x)``, ``q_D(x)``, ``p^*(x)`` (that term, and its
                              conditionals over data variables, is ``p_D``)
``observed:`` / ``latent:``   the variables, when the default reading is not wanted
``vectors:``                  vector variables and their number of components, a number or a symbol: ``vectors:
                              z = 3``, ``vectors: z = J`` (``prod_j p(z_j)`` is a factor per component); a factor
                              may also cover single components (``p(z_1|z_2)``)
``samples:``                  importance samples: ``samples: h_i ~ q(h|x), i = 1..K`` (``K`` a number, a symbol or
                              a symbol plus a number, ``k+1``: the largest index the text uses)
``discrete:``                 variables with finitely many values: ``discrete: y`` (sums over their values)
``datapoints:``               ``datapoints: x^{(i)}, i = 1..N`` or ``x_n, n = 1..N``: the data distribution is the
                              empirical distribution of N distinct points (``1/N sum_i f(x^{(i)}) = E_{p_D}[f]``,
                              ``log N = H(p_D)``; the index ``n`` is the data variable)
``aux:``                      auxiliary densities (a classifier ``r(y|z)``, an adversary ``q_delta(y|z)``)
``coefficients:``             ``beta >= 1, lambda > 0, alpha real, 0 <= gamma <= 1, delta in [0, 1]``
``parameters:``               parameter sets written as arguments: ``parameters: theta`` reads ``p(X|\\theta)`` as
                              ``p_theta(X)`` and ``p(Z|X, \\theta^{old})`` as ``p_theta_old(Z|X)``
``letters:``                  ``letters: p = q``: in the math that letter (with its subscript, if given: ``p_e = q``)
                              denotes that family; a file may then declare one family only
``capitals:``                 ``capitals: X, Z``: ``X`` in the math is the variable ``x``
``measures STEPS:``           the measure of a bare ``\\mathbb{E}[...]`` (``measures: E = q(z)``) or of
                              ``\\mathbb{E}_x`` (``measures: E_x = p(x)``), in the selected lines (all without STEPS)
``let:``                      an abbreviation the text defines: ``let: w_i = p(x,h_i)/q(h_i|x)``, ``let: \\bar{q}(z) =
                              \\prod_j q(z_j)``, or a new name for a variable, ``let: G(z,c) = x``
``assume STEPS:``             a factorization assumed by those steps: ``assume (3)->(4): q(z_l,z_u|x) =
                              q(z_l|x) q(z_u|x)``, or a factor set equal to a density of the model, substituted in
                              those steps (``assume (9.74): q(Z) = p(Z|X, theta^{old})``); without STEPS, every step
``step STEPS:``               the relation from the previous line into a line when the text does not give it
                              (``step (6)->(7): \\geq``, over a written one such as ``\\equiv``), or ``none``
``title:``                    a title for reports
============================  =====================================================================================

STEPS selects lines by their tag ``(4)`` or file line ``line 12``: ``(3)->(4)`` is the step from line (3) to line (4);
``(4)`` every step that ends on line (4); several selectors are separated by commas; ``all`` selects every step.

Clauses that have no meaning under docs/semantics.md are errors that say why: ``uniform:`` and ``deterministic:``
(declared factors are free distributions with full support, section 6), ``discrete: z = 1..K`` (a discrete variable
takes any finite number of values), factors over prefixes ``z_{<l}`` (symbolic vectors are one generic component and
the rest, with no order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..checker import RELATIONS, Factorization
from ..expressions import Density, density
from .document import HeaderText, LatexError, Source
from .grammar import GREEK_NAMES, UNICODE_GREEK
from .limits import MAX_VECTOR_COMPONENTS
from ..model import Model, ModelError

KEYS = {
    "p": "p", "generative": "p", "prior": "p", "decoder": "p",
    "q": "q", "inference": "q", "encoder": "q",
    "model": "factors", "factors": "factors",
    "data": "data",
    "observed": "observed", "latent": "latent", "latents": "latent",
    "vectors": "vectors", "vector": "vectors",
    "samples": "samples", "sample": "samples",
    "discrete": "discrete",
    "datapoints": "datapoints", "datapoint": "datapoints",
    "aux": "aux", "auxiliary": "aux",
    "coefficients": "coefficients", "coefficient": "coefficients", "coef": "coefficients", "coefs": "coefficients",
    "parameters": "parameters", "parameter": "parameters", "params": "parameters",
    "letters": "letters", "letter": "letters",
    "capitals": "capitals",
    "measures": "measures", "measure": "measures",
    "let": "let", "define": "let",
    "uniform": "uniform", "deterministic": "deterministic",
    "assume": "assume", "assuming": "assume", "assumption": "assume",
    "step": "step", "steps": "step",
    "title": "title", "name": "name",
}
#: keys that take a step selector (``assume (3)->(4): ...``)
SELECTED_KEYS = ("assume", "step", "measures")

_KEY = re.compile(r"^(?P<word>[A-Za-z]+)(?P<selector>(\s*(\([^()]*\)|line\s*\d+|all|->|→|\\to|,))*)"
                  r"\s*:(?!=)\s*(?P<value>.*)$", flags=re.S)
_FACTOR = re.compile(r"(prod_[A-Za-z]\w*\s+)?[A-Za-z][\w]*\s*\([^()]*\)")
_REF = re.compile(r"\(\s*([^()\s]+)\s*\)|line\s*(\d+)|(all)")
_SIZE = re.compile(r"(?P<name>[A-Za-z]\w*)\s*(\+\s*(?P<offset>\d+))?|(?P<number>\d+)")


@dataclass(frozen=True)
class LineRef:
    kind: str  # "tag", "line" or "all"
    value: str = ""

    def __str__(self) -> str:
        return {"tag": f"({self.value})", "line": f"line {self.value}", "all": "all"}[self.kind]


@dataclass
class Selector:
    """``(A)->(B)``: the step from line A into line B; ``(B)``: every step that ends on line B; ``all``."""

    first: LineRef | None
    last: LineRef
    text: str
    offset: int
    used: bool = False


@dataclass(frozen=True)
class Substitution:
    """An assumption that a declared factor equals another density of the model (the E step of EM:
    ``q(Z) = p_theta_old(Z|X)``): in the steps it selects, the factor's density is replaced by the other one in both
    sides; the step as written is checked too (the report's "without the assumption")."""

    factor: Density
    replacement: Density

    def __str__(self) -> str:
        return f"{self.factor} = {self.replacement}"


@dataclass(frozen=True)
class DataPoints:
    """``datapoints: x^{(i)}, i = 1..N``: the data distribution is the empirical distribution of N distinct points of
    ``variable``; ``index`` is the letter that numbers them (also the data variable itself, ``q(z|n)``), ``count``
    the number N (a symbol, or a number), ``style`` how a point is written (``paren``: ``x^{(i)}``, ``sub``:
    ``x_n``)."""

    variable: str
    index: str
    count: str
    style: str


@dataclass(frozen=True)
class Let:
    """``let: NAME(params) = BODY``: an abbreviation of the text (``BODY`` is LaTeX). ``key`` is the normalized name
    (``w_i``, ``barq``, ``f_beta``); ``index`` a subscript letter that is a placeholder (``w_i`` used as ``w_1``);
    ``alias`` the variable the name stands for when the body is one variable (``G(z,c) = x``)."""

    key: str
    head: str
    params: tuple[str, ...]
    body: str
    index: str | None
    alias: str | None
    offset: int


@dataclass(frozen=True)
class MeasureRule:
    """``measures: E = q(z)``: the measure (LaTeX) of a bare ``\\mathbb{E}`` (``name`` ``E``) or of ``\\mathbb{E}_x``
    (``name`` ``E_x``), in the selected lines (``selectors`` None: everywhere)."""

    name: str
    measure: str
    selectors: list[Selector] | None
    offset: int


@dataclass
class Header:
    name: str
    offset: int
    title: str = ""
    generative: list[str] = field(default_factory=list)
    inference: list[str] = field(default_factory=list)
    data: str | None = None
    observed: list[str] | None = None
    latent: list[str] | None = None
    vectors: dict[str, int | str] = field(default_factory=dict)
    samples: dict[str, int | str] = field(default_factory=dict)
    sample_densities: dict[str, Density] = field(default_factory=dict)
    discrete: list[str] = field(default_factory=list)
    datapoints: DataPoints | None = None
    auxiliary: list[str] = field(default_factory=list)
    coefficients: dict[str, tuple] = field(default_factory=dict)  # name -> (low, high, low_open, high_open)
    coefficient_offsets: dict[str, int] = field(default_factory=dict)  # where each was declared
    parameters: list[str] = field(default_factory=list)
    assumptions: list[tuple[list[Selector] | None, Factorization, int]] = field(default_factory=list)
    substitutions: list[tuple[list[Selector] | None, Substitution, int]] = field(default_factory=list)
    relations: list[tuple[list[Selector], str | None, int]] = field(default_factory=list)
    measures: list[MeasureRule] = field(default_factory=list)
    lets: list[Let] = field(default_factory=list)
    #: math letter (``p``, ``P``, ``p_e``, ``q_D,phi``) -> family (``p``, ``q``)
    letters: dict[str, str] = field(default_factory=dict)
    #: ``X`` -> ``x``
    capitals: dict[str, str] = field(default_factory=dict)
    #: the math name of the data distribution (``p``, ``q_D``, ``p^*``) and its variables
    data_name: str | None = None
    data_variables: tuple[str, ...] = ()
    #: a factor written with its own letter: letter -> the factor (family p or q, as a Density)
    factor_letters: dict[str, Density] = field(default_factory=dict)
    #: an auxiliary density whose letter is a family's (``q(y|z)`` once ``letters: p = q``): letter -> internal family
    renamed_auxiliary: dict[str, str] = field(default_factory=dict)
    #: the only family a file declares through ``letters:`` (information terms are under it), or None
    single_family: str | None = None
    description: str = ""


# ------------------------------------------------------------------------------------------------ normalization


def normalize(text: str) -> str:
    """LaTeX-ish header text to the compact notation: ``p_{\\theta}(\\mathbf{z}_l \\mid c)`` -> ``p_theta(z_l|c)``."""
    for ch, name in UNICODE_GREEK.items():
        text = text.replace(ch, name)
    text = re.sub(r"\\(mathbf|boldsymbol|bm|mathit|mathrm|mathcal|text|textrm|operatorname|mathsf|vec)\s*\{([^{}]*)\}",
                  r"\2", text)
    text = re.sub(r"\\(mid|vert)(?![a-zA-Z])", "|", text)
    text = re.sub(r"\\(left|right|big|Big)(?![a-zA-Z])", "", text)
    text = re.sub(r"\\[,;:! ]", " ", text)
    text = re.sub(r"\\(prod)(?![a-zA-Z])", "prod", text)
    text = text.replace("≥", ">=").replace("≤", "<=").replace("−", "-").replace("∈", " in ").replace("∞", "inf")
    text = re.sub(r"\\(geq|ge|geqslant)(?![a-zA-Z])", ">=", text)
    text = re.sub(r"\\(leq|le|leqslant)(?![a-zA-Z])", "<=", text)
    text = re.sub(r"\\(in)(?![a-zA-Z])", " in ", text)
    text = re.sub(r"\\infty(?![a-zA-Z])", "inf", text)
    text = re.sub(r"\\(sim)(?![a-zA-Z])", "~", text)
    text = re.sub(r"\\(ldots|dots|cdots)(?![a-zA-Z])", "..", text)
    text = re.sub(r"\\(" + "|".join(GREEK_NAMES) + r")(?![a-zA-Z])", r"\1", text)
    text = text.replace("{", "").replace("}", "")
    return text


def name_key(text: str) -> str:
    """A LaTeX name in one spelling, to compare names however they are typeset: ``\\bar{q}`` -> ``barq``,
    ``\\pi_{\\theta,\\beta}`` -> ``pi_theta,beta``, ``H_{q_\\phi}`` -> ``H_q_phi``, ``\\mathcal{L}_k`` -> ``L_k``."""
    for ch, name in UNICODE_GREEK.items():
        text = text.replace(ch, "\\" + name + " ")
    text = re.sub(r"\\(mathbf|boldsymbol|bm|mathit|mathrm|mathcal|mathscr|mathfrak|mathbb|text|textrm|operatorname|"
                  r"mathsf|vec)(?![a-zA-Z])", "", text)
    text = re.sub(r"\\(left|right|big|Big|,|;|!| )", "", text)
    text = re.sub(r"[\\{}\s]", "", text)
    return text


def _split_top(text: str, separator: str) -> list[tuple[str, int]]:
    """Split at ``separator`` outside brackets; (piece, offset of the piece in text)."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == separator and depth == 0:
            out.append((text[start:i], start))
            start = i + 1
    out.append((text[start:], start))
    return out


def _spec(family: str, d: Density, template: str = "") -> str:
    """The compact notation of ``d`` with another family letter (``m(z)`` -> ``p(z)``)."""
    sub = "_" + ",".join(str(s) for s in d.subscript) if d.subscript else ""
    given = ("|" + ",".join(map(str, d.given))) if d.given else ""
    return f"{template}{family}{sub}({','.join(map(str, d.targets))}{given})"


def _template(spec: str) -> tuple[str, str]:
    """(``"prod_j "``, ``"p(z_j)"``) for a factor template, (``""``, spec) otherwise."""
    m = re.match(r"(prod_\w+\s+)(.*)$", spec)
    return (m.group(1), m.group(2)) if m else ("", spec)


# ------------------------------------------------------------------------------------------------ parsing


class HeaderParser:
    def __init__(self, source: Source, header: HeaderText, default_name: str):
        self.source = source
        self.text = header
        self.header = Header(default_name, header.offset)
        self.factor_lists: list[tuple[str, list[str], int]] = []  # (key, factors, offset)
        self.offsets: dict[str, int] = {}  # clause key -> offset of its value (for errors found in model())

    def error(self, message: str, offset: int) -> LatexError:
        return self.source.error(f"model header: {message}", offset, fatal=True)

    def parse(self) -> Header:
        first = True
        for text, offset in self.text.lines:
            if not text:
                first = False
                continue
            if first:
                m = re.match(r"^(model\s+)?(?P<name>[A-Za-z][\w.\-]*)?\s*(?=:|$)", text)
                if m and m.group("name") and (m.group(1) or m.end() == len(text) or text[m.end():].startswith(":")) \
                        and m.group("name").lower() not in KEYS:
                    self.header.name = m.group("name")
                    text = text[m.end():]
                    offset += m.end()
                    if text.startswith(":"):
                        text, offset = text[1:], offset + 1
                elif text.startswith(":"):
                    text, offset = text[1:], offset + 1
            else:
                m = re.match(r"^model\s+(?P<name>[A-Za-z][\w.\-]*)\s*(:|$)", text)
                if m:
                    self.header.name = m.group("name")
                    text, offset = text[m.end():], offset + m.end()
            first = False
            for clause, start in _split_top(text, ";"):
                stripped = clause.strip()
                if stripped:
                    self.clause(stripped, offset + start + (len(clause) - len(clause.lstrip())))
        return self.header

    def clause(self, text: str, offset: int) -> None:
        m = _KEY.match(text)
        if not m:
            self.factor_lists.append(("factors", self.factors(text, offset), offset))
            return
        word = m.group("word").lower()
        key = KEYS.get(word)
        value = m.group("value").strip()
        value_offset = offset + m.start("value")
        selector_text = (m.group("selector") or "").strip()
        raw_selector = m.group("selector") or ""
        selector_offset = offset + m.start("selector") + (len(raw_selector) - len(raw_selector.lstrip()))
        if key is None:
            raise self.error(f"unknown key '{m.group('word')}'; expected one of: p, q, data, observed, latent, "
                             "vectors, samples, discrete, datapoints, aux, coefficients, parameters, letters, "
                             "capitals, measures, let, assume, step, title, name", offset)
        if selector_text and key not in SELECTED_KEYS:
            raise self.error(f"'{word}' takes no step selector; expected '{word}: ...'", offset)
        self.offsets.setdefault(key, value_offset)
        if key in ("p", "q", "factors", "aux"):
            self.factor_lists.append((key, self.factors(value, value_offset), value_offset))
        elif key == "data":
            self.data(value, value_offset)
        elif key in ("observed", "latent"):
            names = [n for n in re.split(r"[\s,]+", normalize(value)) if n]
            if not names or not all(re.fullmatch(r"[A-Za-z]\w*", n) for n in names):
                raise self.error(f"expected variable names such as '{key}: x, y'", value_offset)
            setattr(self.header, key, names)
        elif key == "vectors":
            for item, start in _split_top(normalize(value), ","):
                if not item.strip():
                    continue
                vm = re.fullmatch(r"\s*([A-Za-z]\w*)\s*(=|:|\[|\s)\s*(\d+|[A-Za-z]\w*)\s*\]?\s*", item)
                if not vm:
                    raise self.error(f"cannot read vector '{item.strip()}'; expected 'NAME = SIZE' such as 'z = 3' "
                                     "or 'z = J' (a symbol: any number of components)", value_offset + start)
                size = vm.group(3)
                if size.isdigit():
                    digits = size.lstrip("0") or "0"
                    if len(digits) > len(str(MAX_VECTOR_COMPONENTS)) or int(digits) > MAX_VECTOR_COMPONENTS:
                        raise self.error(f"vector '{vm.group(1)}' has {digits if len(digits) < 12 else 'too many'} "
                                         f"components, over the limit of {MAX_VECTOR_COMPONENTS} of elbocheck; expected "
                                         "a smaller number, or a symbolic size such as 'z = J' (the checker proves "
                                         "steps for any J)", value_offset + start)
                self.header.vectors[vm.group(1)] = int(size) if size.isdigit() else size
        elif key == "samples":
            self.samples(value, value_offset)
        elif key == "discrete":
            for item, start in _split_top(normalize(value), ","):
                name = item.strip()
                if not name:
                    continue
                if re.search(r"=|\.\.", name):
                    raise self.error(
                        f"'discrete: {name}': a number of values has no meaning in the semantics (docs/semantics.md, "
                        "section 5: a discrete variable takes finitely many values, any number of them, so nothing "
                        "can depend on K or on its k-th value z_k); expected 'discrete: z', with sums over its values "
                        "written \\sum_z", value_offset + start)
                if not re.fullmatch(r"[A-Za-z]\w*", name):
                    raise self.error(f"expected variable names such as 'discrete: y', not '{name}'",
                                     value_offset + start)
                self.header.discrete.append(name)
        elif key == "datapoints":
            self.datapoints(value, value_offset)
        elif key == "coefficients":
            self.coefficients(value, value_offset)
        elif key == "parameters":
            names = [n for n in re.split(r"[\s,]+", normalize(value)) if n]
            if not names or not all(re.fullmatch(r"[A-Za-z]\w*", n) for n in names):
                raise self.error("expected parameter sets such as 'parameters: theta'", value_offset)
            self.header.parameters.extend(names)
        elif key == "letters":
            self.letters(value, value_offset)
        elif key == "capitals":
            for item, start in _split_top(normalize(value), ","):
                name = item.strip()
                if not name:
                    continue
                if not re.fullmatch(r"[A-Z]", name):
                    raise self.error(f"expected capital letters such as 'capitals: X, Z', not '{name}'",
                                     value_offset + start)
                self.header.capitals[name] = name.lower()
        elif key == "measures":
            selectors = self.selectors(selector_text, selector_offset) if selector_text else None
            mm = re.fullmatch(r"\s*(?P<name>[^=]+?)\s*=\s*(?P<measure>.+)", value, flags=re.S)
            name = name_key(mm.group("name")) if mm else ""
            if not mm or not re.fullmatch(r"E(_[A-Za-z]\w*)?", name):
                raise self.error("expected the measure of a bare expectation, 'measures: E = q(z)' or "
                                 "'measures: E_x = p(x)'", value_offset)
            self.header.measures.append(MeasureRule(name, mm.group("measure").strip(), selectors, value_offset))
        elif key == "let":
            self.let(value, value_offset)
        elif key in ("uniform", "deterministic"):
            why = ("a uniform factor is a fixed distribution, while every declared factor is a free distribution "
                   "(docs/semantics.md, sections 2 and 6), and the value of its density depends on a number of "
                   "values that the semantics leaves open" if key == "uniform" else
                   "a deterministic factor is a point mass, which has no density and no full support, while every "
                   "declared factor has full support (docs/semantics.md, section 6)")
            raise self.error(f"'{word}: {value}' has no meaning under the semantics: {why}; the steps that need it "
                             "cannot be checked (remove the clause to check the others as statements about free "
                             "factors)", offset)
        elif key == "assume":
            selectors = self.selectors(selector_text, selector_offset) if selector_text else None
            assumption = self.assumption(value, value_offset)
            if isinstance(assumption, Substitution):
                self.header.substitutions.append((selectors, assumption, value_offset))
            else:
                self.header.assumptions.append((selectors, assumption, value_offset))
        elif key == "step":
            if not selector_text:
                raise self.error("expected the step it applies to, such as 'step (6)->(7): \\geq'", offset)
            self.header.relations.append((self.selectors(selector_text, selector_offset),
                                          self.relation(value, value_offset), value_offset))
        elif key == "title":
            self.header.title = value
        elif key == "name":
            if not re.fullmatch(r"[A-Za-z][\w.\-]*", value):
                raise self.error("expected a name such as 'name: cdvae'", value_offset)
            self.header.name = value

    def factors(self, text: str, offset: int) -> list[str]:
        normalized = normalize(text)
        out = []
        position = 0
        for m in _FACTOR.finditer(normalized):
            gap = normalized[position:m.start()]
            if gap.strip(" \t,*") and gap.strip() not in ("\\cdot", "\\times"):
                raise self.error(f"cannot read '{gap.strip()}'; expected densities such as 'p(z) p_theta(x|z)'",
                                 offset + _approximate(text, normalized, position))
            out.append(re.sub(r"\s+", "", m.group(0)) if not m.group(1) else
                       m.group(1).strip() + " " + re.sub(r"\s+", "", m.group(0)[len(m.group(1)):]))
            position = m.end()
        rest = normalized[position:]
        if rest.strip(" \t,*"):
            raise self.error(f"cannot read '{rest.strip()}'; expected densities such as 'p(z) p_theta(x|z)'",
                             offset + _approximate(text, normalized, position))
        if not out:
            raise self.error("expected densities such as 'p(z) p_theta(x|z) q_phi(z|x)'", offset)
        for spec in out:
            if "<" in spec:
                raise self.error(
                    f"the factor '{spec}' is conditioned on a prefix of components (z_{{<l}}); a vector with a "
                    "symbolic number of components is read as one generic component and the others, with no order "
                    "among them, so factors over prefixes cannot be declared; expected factors over whole "
                    "variables or single components, or a numeric size with the components written out", offset)
            try:
                density(spec.split(" ", 1)[-1])
            except ValueError as error:
                hint = "" if "expected" in str(error) else "; expected densities such as 'p(z) p_theta(x|z)'"
                raise self.error(f"{error}{hint}", offset) from None
        return out

    def data(self, value: str, offset: int) -> None:
        normalized = normalize(value).strip()
        m = re.fullmatch(r"(?P<letter>[A-Za-z][\w,]*?)(?P<star>\^\*)?\s*\((?P<args>[^()]*)\)", normalized)
        if not m:
            raise self.error("expected one data distribution such as 'data: p_D(x, y)', or the name the text gives "
                             "it such as 'data: p(x)', 'data: q_D(x)', 'data: p^*(x)'", offset)
        names = [n.strip() for n in m.group("args").split(",") if n.strip()]
        if not names or "|" in m.group("args") or not all(re.fullmatch(r"[A-Za-z]\w*", n) for n in names):
            raise self.error("the data distribution is over data variables with nothing after '|'; expected e.g. "
                             "'data: p(x, y)'", offset)
        letter = m.group("letter")
        if letter in ("p_D", "p_data", "p_mathcalD") and not m.group("star"):
            self.header.data = f"p_D({','.join(names)})"
            return
        self.header.data = f"p_D({','.join(names)})"
        self.header.data_name = letter + ("^*" if m.group("star") else "")
        self.header.data_variables = tuple(names)

    def samples(self, value: str, offset: int) -> None:
        normalized = normalize(value)
        m = re.fullmatch(r"\s*(?P<copy>[A-Za-z]\w*?)_(?P<index>[A-Za-z])\s*~\s*(?P<density>[A-Za-z]\w*\s*\([^()]*\))"
                         r"\s*,\s*(?P<index2>[A-Za-z])\s*=\s*1\s*\.\.\.?\s*(?P<upper>.+?)\s*", normalized)
        if not m or m.group("index") != m.group("index2"):
            raise self.error("expected importance samples such as 'samples: h_i ~ q(h|x), i = 1..K' (K a number, a "
                             "symbol, or a symbol plus a number such as k+1)", offset)
        d = density(re.sub(r"\s+", "", m.group("density")))
        variable = m.group("copy")
        if [str(t) for t in d.targets] != [variable] or d.family != "q":
            raise self.error(f"the samples {variable}_{m.group('index')} are draws of {variable} from the inference "
                             f"model; expected 'q({variable}|...)' after '~', not '{d}'", offset)
        upper = re.sub(r"\s+", "", m.group("upper"))
        size = _SIZE.fullmatch(upper)
        if not size:
            raise self.error(f"cannot read the number of samples '{upper}'; expected a number, a symbol (K) or a "
                             "symbol plus a number (k+1)", offset)
        self.header.samples[variable] = int(size.group("number")) if size.group("number") else size.group("name")
        self.header.sample_densities[variable] = d

    def datapoints(self, value: str, offset: int) -> None:
        normalized = normalize(value)
        m = re.fullmatch(r"\s*(?P<variable>[A-Za-z]\w*?)(\^\(\s*(?P<paren>[a-z])\s*\)|_(?P<sub>[a-z]))\s*,\s*"
                         r"(?P<index>[a-z])\s*=\s*1\s*\.\.\.?\s*(?P<count>[A-Za-z]\w*|\d+)\s*", normalized)
        if not m or (m.group("paren") or m.group("sub")) != m.group("index"):
            raise self.error("expected the data points such as 'datapoints: x^{(i)}, i = 1..N' or "
                             "'datapoints: x_n, n = 1..N'", offset)
        self.header.datapoints = DataPoints(m.group("variable"), m.group("index"), m.group("count"),
                                            "paren" if m.group("paren") else "sub")

    def letters(self, value: str, offset: int) -> None:
        for item, start in _split_top(value, ","):
            if not item.strip():
                continue
            # q_{D,phi} = q: the comma is inside braces, _split_top keeps it
            lm = re.fullmatch(r"\s*(?P<letter>.+?)\s*=\s*(?P<family>[pq])\s*", item)
            letter = name_key(lm.group("letter")) if lm else ""
            if not lm or not re.fullmatch(r"[A-Za-z](_[\w,]+)?", letter):
                raise self.error(f"cannot read '{item.strip()}'; expected 'letters: LETTER = FAMILY' such as "
                                 "'letters: p = q' (the math's p is the inference family q) or 'letters: p_e = q'",
                                 offset + start)
            self.header.letters[letter] = lm.group("family")

    def let(self, value: str, offset: int) -> None:
        depth, split = 0, None
        for i, c in enumerate(value):
            if c in "{([":
                depth += 1
            elif c in "})]":
                depth -= 1
            elif c == "=" and depth == 0:
                split = i
                break
        if split is None:
            raise self.error("expected an abbreviation 'let: NAME = EXPRESSION' such as "
                             "'let: w_i = p(x,h_i)/q(h_i|x)'", offset)
        head, body = value[:split].strip(), value[split + 1:].strip()
        hm = re.fullmatch(r"(?P<name>[^()]+?)\s*(\((?P<params>[^()]*)\))?", head)
        if not hm or not body:
            raise self.error(f"cannot read the name '{head}'; expected NAME or NAME(arguments) before '='", offset)
        key = name_key(hm.group("name"))
        if not re.fullmatch(r"[A-Za-z]\w*(_[\w,]+)?", key):
            raise self.error(f"cannot read the name '{hm.group('name')}'; expected a name such as w_i, F_\\beta, "
                             "\\bar{q}", offset)
        params = tuple(name_key(p) for p in (hm.group("params") or "").split(",") if p.strip())
        index = None
        im = re.fullmatch(r"[A-Za-z]+_([a-z])", key)
        if im and re.search(r"_\s*\{?\s*" + im.group(1) + r"(?![A-Za-z])", body):
            index = im.group(1)
        alias = None
        if params and re.fullmatch(r"(\\mathbf\s*\{\s*)?[A-Za-z](\s*\})?", body):
            alias = name_key(body)
        self.header.lets.append(Let(key, hm.group("name").strip(), params, body, index, alias, offset))

    def coefficients(self, text: str, offset: int) -> None:
        for item, start in _split_top(normalize(text), ","):
            where = offset + start + len(item) - len(item.lstrip())
            item = item.strip()
            if not item:
                continue
            try:
                name, low, high, low_open, high_open = _coefficient(item)
            except ValueError:
                raise self.error(f"cannot read coefficient '{item}'; expected e.g. 'beta >= 1', 'lambda > 0', "
                                 "'alpha real' or '0 <= gamma <= 1'", where) from None
            if not _COEFFICIENT_NAME.fullmatch(name):
                raise self.error(f"coefficient '{name}' can appear nowhere in the math: coefficients are Greek "
                                 "letters, optionally with a subscript; expected e.g. 'beta >= 1' for \\beta or "
                                 "'lambda_1 > 0' for \\lambda_1", where)
            if name in self.header.coefficients:
                raise self.error(f"coefficient '{name}' is declared twice; expected one range per coefficient, "
                                 f"such as '0 <= {name} <= 1'", where)
            if _empty_range(item, low, high) or (low is not None and low == high and (low_open or high_open)):
                raise self.error(f"the range '{item}' of coefficient '{name}' is empty; expected a range that holds "
                                 "some value, such as '1 <= beta <= 2'", where)
            # an open end matters where a coefficient divides (1/(1 - alpha) with 0 < alpha < 1)
            self.header.coefficients[name] = (low, high, low_open, high_open) if low_open or high_open else (low, high)
            self.header.coefficient_offsets[name] = where
    def assumption(self, text: str, offset: int) -> Factorization | Substitution:
        normalized = normalize(text)
        if normalized.count("=") != 1:
            raise self.error("expected a factorization such as 'q(z_l,z_u|x) = q(z_l|x) q(z_u|x)', or a factor equal "
                             "to another density such as 'q(Z) = p(Z|X, theta^{old})'", offset)
        joint, factors = normalized.split("=")
        versioned = re.sub(r"(\w+)\^(\w+)", r"\1_\2", factors)  # theta^old -> theta_old
        joint_list = self.factors(joint, offset)
        factor_list = self.factors(versioned, offset + text.find("=") + 1)
        if len(joint_list) != 1:
            raise self.error("expected one declared factor on the left, such as 'q(z_l,z_u|x) = q(z_l|x) q(z_u|x)'",
                             offset)
        if len(factor_list) == 1:
            return Substitution(density(joint_list[0]), density(factor_list[0]))
        return Factorization(joint_list[0], tuple(factor_list))

    def relation(self, text: str, offset: int) -> str | None:
        value = re.sub(r"\s+", "", text)
        if value.lower() in ("none", "break", "new", "-"):
            return None
        table = {"=": "=", "\\geq": ">=", "\\ge": ">=", ">=": ">=", "\\leq": "<=", "\\le": "<=", "<=": "<=",
                 "=const": "=const", "=c": "=const", "\\overset{c}{=}": "=const", "\\stackrel{c}{=}": "=const",
                 "=_c": "=const", "=_{c}": "=const", "\\overset{\\text{const}}{=}": "=const"}
        if value in table:
            return table[value]
        raise self.error(f"unknown relation '{text.strip()}'; expected =, \\geq, \\leq, =const or none", offset)

    def selectors(self, text: str, offset: int) -> list[Selector]:
        out = []
        for item, start in _split_top(text, ","):
            item_text = item.strip()
            if not item_text:
                continue
            parts = re.split(r"->|→|\\to", item_text)
            refs = []
            for part in parts:
                m = _REF.fullmatch(part.strip())
                if not m:
                    raise self.error(f"cannot read the step '{item_text}'; expected '(3)->(4)', '(4)', 'line 12' or "
                                     "'all'", offset + start)
                if m.group(1) is not None:
                    refs.append(LineRef("tag", m.group(1)))
                elif m.group(2) is not None:
                    refs.append(LineRef("line", m.group(2)))
                else:
                    refs.append(LineRef("all"))
            if len(refs) > 2 or (len(refs) == 2 and "all" in (refs[0].kind, refs[1].kind)):
                raise self.error(f"cannot read the step '{item_text}'; expected '(3)->(4)', '(4)' or 'all'",
                                 offset + start)
            first = refs[0] if len(refs) == 2 else None
            out.append(Selector(first, refs[-1], item_text, offset + start))
        return out

    # -------------------------------------------------------------------------------------------- the model
    def _sort_factors(self) -> tuple[list[str], list[str], list[str]]:
        """Generative, inference and auxiliary factors in the engine's letters (``p``, ``q``), with the factors
        written with other letters (``m(z)``, ``e(z|x)``, ``P(c)``) recorded in the header."""
        h = self.header
        generative, inference, auxiliary = [], [], []
        mapped_families = set(h.letters.values())
        for key, factors, offset in self.factor_lists:
            for spec in factors:
                template, body = _template(spec)
                d = density(body)
                family = d.family
                if key == "aux":
                    if family in ("p", "q") and not d.subscript and any(
                            letter != family and target == family for letter, target in h.letters.items()):
                        # the letter q is free once letters maps another letter onto q: an auxiliary density here
                        internal = family + "'"
                        h.renamed_auxiliary[family] = internal
                        auxiliary.append(_spec(internal, d))
                    else:
                        auxiliary.append(spec)
                    continue
                letter_key = family + ("_" + ",".join(map(str, d.subscript)) if d.subscript else "")
                target = h.letters.get(letter_key) or h.letters.get(family)
                if target is not None:
                    keep = d if h.letters.get(letter_key) is None else Density(family, d.targets, d.given)
                    spec = _spec(target, keep, template)
                    family = target
                elif key in ("p", "q") and family not in ("p", "q", "p_D"):
                    if family in h.factor_letters or family in mapped_families:
                        raise self.error(f"the letter '{family}' names two factors; expected one factor per letter, "
                                         "or 'letters: LETTER = FAMILY' for a letter that names a family", offset)
                    h.factor_letters[family] = Density(key, d.targets, d.given, d.subscript)
                    spec = _spec(key, d, template)
                    family = key
                if key == "p":
                    if family != "p":
                        raise self.error(f"'{spec}' is not a p factor; expected generative factors p(...)", offset)
                    generative.append(spec)
                elif key == "q":
                    if family != "q":
                        raise self.error(f"'{spec}' is not a q factor; expected inference factors q(...)", offset)
                    inference.append(spec)
                elif family == "p":
                    generative.append(spec)
                elif family == "q":
                    inference.append(spec)
                elif family == "p_D":
                    if h.data is not None:
                        raise self.error(f"a second data distribution '{spec}'", offset)
                    h.data = spec
                elif family == "r":
                    auxiliary.append(spec)
                else:
                    raise self.error(f"'{spec}' is neither a p, q, p_D nor r density; expected auxiliary densities in "
                                     f"'aux: {spec}', or a factor in 'p: ...' / 'q: ...'", offset)
        return generative, inference, auxiliary

    def model(self) -> Model:
        h = self.header
        generative, inference, auxiliary = self._sort_factors()
        single = None
        if h.letters and (not generative) != (not inference):
            single = "p" if generative else "q"
        elif not generative or not inference:
            missing = "generative factors p(...)" if not generative else "inference factors q(...)"
            raise self.error(f"no {missing}; expected e.g. 'elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)' (a "
                             "file that declares one family only says so with 'letters:')", self.text.offset)
        h.single_family = single
        variables: list[str] = []
        latent: list[str] = []

        def note(names, into):
            for n in names:
                n = str(n)
                if n not in into:
                    into.append(n)

        for spec in generative + inference + auxiliary + ([h.data] if h.data else []):
            template = re.match(r"prod_(\w+)\s+(.*)$", spec)
            d = density(template.group(2) if template else spec)
            names = [re.sub(rf"_{template.group(1)}$", "", str(v)) if template else str(v) for v in d.targets + d.given]
            note(names, variables)
            if d.family == "q" and spec in inference:
                targets = [re.sub(rf"_{template.group(1)}$", "", str(v)) if template else str(v) for v in d.targets]
                note(targets, latent)
        # components of declared vectors are not variables of their own: factors over single components (p(z_1|z_2))
        # make the vector a variable, in the place of its first component
        for vector in h.vectors:
            component = re.compile(rf"{re.escape(vector)}_\d+")
            for names in (variables, latent):
                found = [k for k, v in enumerate(names) if component.fullmatch(v)]
                if found and vector not in names:
                    names.insert(found[0], vector)
                names[:] = [v for v in names if not component.fullmatch(v)]
        if single == "p":  # no inference model: no latent variable, every variable is data
            latent = []
        # observed variables: those the encoder conditions on first (x before a label y), then the others
        conditioning: list[str] = []
        for spec in inference:
            template = re.match(r"prod_(\w+)\s+(.*)$", spec)
            note([str(v) for v in density(template.group(2) if template else spec).given], conditioning)
        variables = [v for v in conditioning if v in variables] + [v for v in variables if v not in conditioning]
        observed = h.observed if h.observed is not None else [v for v in variables if v not in (h.latent or latent)]
        latent = h.latent if h.latent is not None else [v for v in latent if v not in observed]
        h.observed, h.latent = observed, latent
        if single == "q":  # no generative model: one factor over every variable stands for it (the math never uses it)
            generative = [f"p({','.join(observed + latent)})"]
        h.generative, h.inference, h.auxiliary = generative, inference, auxiliary
        h.description = "; ".join(filter(None, [
            ("p: " + " ".join(generative)) if single != "q" else "p: none (the file declares the inference model only)",
            ("q: " + " ".join(inference)) if single != "p" else "q: none (the file declares the generative model only)",
            ("data: " + h.data) if h.data else "", ("aux: " + " ".join(auxiliary)) if auxiliary else "",
        ]))
        coefficients = dict(h.coefficients)
        if h.datapoints is not None and not h.datapoints.count.isdigit():
            coefficients.setdefault(h.datapoints.count, (1, None))
        self._check_names(observed + latent)
        try:
            model = Model(h.name, observed=observed, latent=latent, generative=generative, inference=inference,
                          data=h.data, vectors=h.vectors, auxiliary=auxiliary, coefficients=coefficients,
                          description=h.description, samples=h.samples, discrete=h.discrete)
        except (ModelError, ValueError) as error:
            raise self.error(f"{error}; expected a complete model: a p factor for every variable that is not an "
                             "input, a q factor for every latent variable", self.text.offset) from None
        self._check_model(model)
        return model

    def _check_names(self, variables: list[str]) -> None:
        h = self.header
        for capital, lower in h.capitals.items():
            if lower not in variables:
                raise self.error(f"'capitals: {capital}': {lower} is not a variable of the model (variables: "
                                 f"{', '.join(variables)})", self.offsets.get("capitals", self.text.offset))
        for name in h.discrete:
            if name not in variables:
                raise self.error(f"'discrete: {name}': not a variable of the model (variables: {', '.join(variables)})",
                                 self.offsets.get("discrete", self.text.offset))
        if h.datapoints is not None and h.datapoints.variable not in variables:
            raise self.error(f"'datapoints: {h.datapoints.variable}...': not a variable of the model (variables: "
                             f"{', '.join(variables)})", self.offsets.get("datapoints", self.text.offset))
        if h.datapoints is not None and h.datapoints.index in variables:
            raise self.error(f"the data point index {h.datapoints.index} is also a variable of the model; expected "
                             "another letter", self.offsets.get("datapoints", self.text.offset))

    def _check_model(self, model: Model) -> None:
        h = self.header
        declared = model.parameter_sets["p"] | model.parameter_sets["q"]
        for name in h.parameters:
            if name not in declared:
                raise self.error(f"'parameters: {name}': no factor is declared with the subscript {name} (declared: "
                                 f"{', '.join(sorted(declared)) or 'none'}); expected a parameter set of the factors, "
                                 f"e.g. p_{name}(x|z)", self.offsets.get("parameters", self.text.offset))
        if h.datapoints is not None and h.datapoints.variable not in model.observed:
            raise self.error(f"'datapoints: {h.datapoints.variable}...': the data points are values of an observed "
                             "variable", self.offsets.get("datapoints", self.text.offset))
        for variable, d in h.sample_densities.items():
            if variable not in model.latent:
                raise self.error(f"'samples: {variable}...': importance samples are draws of a latent variable",
                                 self.offsets.get("samples", self.text.offset))
            inputs = set()
            atoms = set(model.components.get(variable, (variable,)))
            for a in model.q_graph.ancestors(atoms) - atoms:
                if a in model.observed_atoms:
                    inputs.add(model.atom_to_group[a])
            if {str(g) for g in d.given} != inputs:
                raise self.error(f"'samples: ... ~ {d}': the samples are drawn from the inference model given the "
                                 f"observed variables it conditions on; expected q({variable}"
                                 f"{'|' + ','.join(sorted(inputs)) if inputs else ''})",
                                 self.offsets.get("samples", self.text.offset))
        for selectors, substitution, offset in h.substitutions:
            factor = substitution.factor
            declared_factor = [b for b in model.graphs.get(factor.family, model.q_graph).blocks
                               if factor.family in ("p", "q") and b.label.replace(" ", "") ==
                               str(factor).replace(" ", "")]
            if factor.family not in ("p", "q") or not declared_factor:
                raise self.error(f"assumption {substitution}: {factor} is not a declared factor; expected a declared "
                                 "factor set equal to a density of the model", offset)
            try:
                replacement = substitution.replacement
                if h.parameters and replacement.family in ("p", "q"):
                    replacement = _parameters_to_subscript(replacement, h.parameters)
                    object.__setattr__(substitution, "replacement", replacement)
                versioned = model.with_versions(model.versions_in(replacement))
                versioned.validate(replacement)
                same = versioned._atoms_of(replacement.targets, replacement) == model._atoms_of(factor.targets, factor)
            except ModelError as error:
                raise self.error(f"assumption {substitution}: {error}", offset) from None
            if not same:
                raise self.error(f"assumption {substitution}: the two densities are over different variables; "
                                 "expected a density of the same variables", offset)


def _parameters_to_subscript(d: Density, parameters: list[str]) -> Density:
    """``p(Z|X, theta_old)`` with ``parameters: theta`` -> ``p_theta_old(Z|X)``."""
    moved, given = [], []
    for g in d.given:
        name = str(g)
        base = re.sub(r"_(old|new|prev|star|t|\d+)$|'+$", "", name)
        (moved if base in parameters else given).append(name)
    if not moved:
        return d
    return Density(d.family, d.targets, given, tuple(d.subscript) + tuple(moved))


def _approximate(original: str, normalized: str, position: int) -> int:
    """A column in the original text for a position in its normalization (exact when nothing was rewritten)."""
    if original == normalized:
        return position
    return min(position, len(original))


_NUMBER = r"[-+]?(\d+(\.\d*)?|\.\d+|inf)"


def _number(text: str) -> float | None:
    text = text.strip()
    if text in ("inf", "+inf"):
        return None
    if text == "-inf":
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def _coefficient(item: str) -> tuple[str, float | None, float | None, bool, bool]:
    """(name, low, high, low_open, high_open): ``0 < alpha < 1`` excludes both ends (where ``1/(1 - alpha)`` would
    divide by zero), ``beta >= 1`` includes its end."""
    item = item.strip()
    name = r"(?P<name>[A-Za-z]\w*)"
    m = re.fullmatch(name + r"(\s+(real|free|any))?", item)
    if m:
        return m.group("name"), None, None, False, False
    m = re.fullmatch(name + r"\s*(?P<op>>=|>|<=|<|=)\s*(?P<v>" + _NUMBER + ")", item)
    if m:
        v = _number(m.group("v"))
        op = m.group("op")
        if op in (">=", ">"):
            return m.group("name"), v, None, op == ">", False
        if op in ("<=", "<"):
            return m.group("name"), None, v, False, op == "<"
        return m.group("name"), v, v, False, False
    m = re.fullmatch(r"(?P<a>" + _NUMBER + r")\s*(?P<l><=|<)\s*" + name + r"\s*(?P<h><=|<)\s*(?P<b>" + _NUMBER + ")",
                     item)
    if m:
        return m.group("name"), _number(m.group("a")), _number(m.group("b")), m.group("l") == "<", m.group("h") == "<"
    m = re.fullmatch(name + r"\s+in\s*(?P<l>[\[(])\s*(?P<a>" + _NUMBER + r")\s*,\s*(?P<b>" + _NUMBER +
                     r")\s*(?P<h>[\])])", item)
    if m:
        return m.group("name"), _number(m.group("a")), _number(m.group("b")), m.group("l") == "(", m.group("h") == ")"
    raise ValueError(item)


_COEFFICIENT_NAME = re.compile(r"(" + "|".join(GREEK_NAMES) + r")(_[A-Za-z0-9]+)?")


def _empty_range(item: str, low: float | None, high: float | None) -> bool:
    """Whether a coefficient item read as ``low <= name <= high`` holds no value (strict bounds from '<' or '(')."""
    compact = re.sub(r"\s+", "", item)
    if re.search(r"(>=?\+?inf$)|(^\+?inf<)|(<=?-inf$)", compact):
        return True  # a lower bound of +inf or an upper bound of -inf
    if low is None or high is None:
        return False
    strict = bool(re.search(r"<(?!=)|>(?!=)|in\(|\)$", compact))
    return low > high or (low == high and strict)


def parse_header(source: Source, header: HeaderText, default_name: str) -> tuple[Header, Model]:
    """Read a header into its settings and the :class:`Model` it declares (fatal :class:`LatexError` if it cannot)."""
    parser = HeaderParser(source, header, default_name)
    parsed = parser.parse()
    return parsed, parser.model()


def relation_name(relation: str | None) -> str:
    return "none" if relation is None else RELATIONS.get(relation, relation)
