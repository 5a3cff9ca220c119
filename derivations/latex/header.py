"""The model header of a LaTeX derivation: clauses ``key: value``, one or more per line, separated by ``;``.

The common case is one line::

    % elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)

Factors are written in the compact density notation of :func:`~elbocheck.derivations.expressions.density`
(``p_theta(x|z)``; LaTeX such as ``p_{\\theta}(\\mathbf{x} \\mid \\mathbf{z})`` is accepted too). A bare list of
factors sorts itself: ``p`` factors are the generative model, ``q`` factors the inference model, ``p_D(...)`` the data
distribution, ``r(...)`` auxiliary. The variables that ``q`` factors generate are latent, all others observed. The
keys (see :data:`KEYS`):

============================  =====================================================================================
``model NAME``                the model's (and the derivation's) name; ``model NAME: clauses`` on the first line
``p:`` / ``q:``               generative / inference factors, e.g. ``p: p(z_u) p_theta(z_l|c) p_theta(x|z_l,z_u)``
``data:``                     the data distribution, e.g. ``data: p_D(x, c)`` (default: over all observed variables)
``observed:`` / ``latent:``   the variables, when the default reading is not wanted
``vectors:``                  vector variables and their number of components: ``vectors: z = 3`` (then
                              ``prod_j p(z_j)`` is a factor per component and ``z_1`` ... ``z_3`` are variables)
``aux:``                      auxiliary densities (a classifier ``r(y|z)``, an adversary ``q_delta(y|z)``)
``coefficients:``             ``beta >= 1, lambda > 0, alpha real, 0 <= gamma <= 1, delta in [0, 1]``
``assume STEPS:``             a factorization assumed by those steps: ``assume (3)->(4): q(z_l,z_u|x) =
                              q(z_l|x) q(z_u|x)``; without STEPS, by every step
``step STEPS:``               the relation from the previous line into a line when the text does not give it
                              (``step (6)->(7): \\geq``), or ``none`` to start a new chain there
``title:``                    a title for reports
============================  =====================================================================================

STEPS selects lines by their tag ``(4)`` or file line ``line 12``: ``(3)->(4)`` is the step from line (3) to line (4);
``(4)`` every step that ends on line (4); several selectors are separated by commas; ``all`` selects every step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..checker import RELATIONS, Factorization
from ..expressions import density
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
    "aux": "aux", "auxiliary": "aux",
    "coefficients": "coefficients", "coefficient": "coefficients", "coef": "coefficients", "coefs": "coefficients",
    "assume": "assume", "assuming": "assume", "assumption": "assume",
    "step": "step", "steps": "step",
    "title": "title", "name": "name",
}

_KEY = re.compile(r"^(?P<word>[A-Za-z]+)(?P<selector>(\s*(\([^()]*\)|line\s*\d+|all|->|→|\\to|,))*)"
                  r"\s*:(?!=)\s*(?P<value>.*)$", flags=re.S)
_FACTOR = re.compile(r"(prod_[A-Za-z]\w*\s+)?[A-Za-z][\w]*\s*\([^()]*\)")
_REF = re.compile(r"\(\s*([^()\s]+)\s*\)|line\s*(\d+)|(all)")


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
    vectors: dict[str, int] = field(default_factory=dict)
    auxiliary: list[str] = field(default_factory=list)
    coefficients: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    coefficient_offsets: dict[str, int] = field(default_factory=dict)  # where each was declared
    assumptions: list[tuple[list[Selector] | None, Factorization, int]] = field(default_factory=list)
    relations: list[tuple[list[Selector], str | None, int]] = field(default_factory=list)
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
    text = re.sub(r"\\(" + "|".join(GREEK_NAMES) + r")(?![a-zA-Z])", r"\1", text)
    text = text.replace("{", "").replace("}", "")
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


# ------------------------------------------------------------------------------------------------ parsing


class HeaderParser:
    def __init__(self, source: Source, header: HeaderText, default_name: str):
        self.source = source
        self.text = header
        self.header = Header(default_name, header.offset)
        self.factor_lists: list[tuple[str, list[str], int]] = []  # (key, factors, offset)

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
                             "vectors, aux, coefficients, assume, step, title, name", offset)
        if selector_text and key not in ("assume", "step"):
            raise self.error(f"'{word}' takes no step selector; expected '{word}: ...'", offset)
        if key in ("p", "q", "factors", "aux"):
            self.factor_lists.append((key, self.factors(value, value_offset), value_offset))
        elif key == "data":
            factors = self.factors(value, value_offset)
            if len(factors) != 1 or not factors[0].startswith(("p_D(", "p_data(")):
                raise self.error("expected one data distribution such as 'data: p_D(x, y)'", value_offset)
            self.header.data = factors[0]
        elif key in ("observed", "latent"):
            names = [n for n in re.split(r"[\s,]+", normalize(value)) if n]
            if not names or not all(re.fullmatch(r"[A-Za-z]\w*", n) for n in names):
                raise self.error(f"expected variable names such as '{key}: x, y'", value_offset)
            setattr(self.header, key, names)
        elif key == "vectors":
            for item, start in _split_top(normalize(value), ","):
                if not item.strip():
                    continue
                vm = re.fullmatch(r"\s*([A-Za-z]\w*)\s*(=|:|\[|\s)\s*(\d+)\s*\]?\s*", item)
                if not vm:
                    raise self.error(f"cannot read vector '{item.strip()}'; expected 'NAME = SIZE' such as 'z = 3'",
                                     value_offset + start)
                size = vm.group(3).lstrip("0") or "0"
                if len(size) > len(str(MAX_VECTOR_COMPONENTS)) or int(size) > MAX_VECTOR_COMPONENTS:
                    raise self.error(f"vector '{vm.group(1)}' has {size if len(size) < 12 else 'too many'} "
                                     f"components, over the limit of {MAX_VECTOR_COMPONENTS} of elbocheck; expected "
                                     "a smaller number, or a symbolic size such as 'z = J' (the checker proves "
                                     "steps for any J)", value_offset + start)
                self.header.vectors[vm.group(1)] = int(size)
        elif key == "coefficients":
            self.coefficients(value, value_offset)
        elif key == "assume":
            selectors = self.selectors(selector_text, selector_offset) if selector_text else None
            self.header.assumptions.append((selectors, self.factorization(value, value_offset), value_offset))
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
            try:
                density(spec.split(" ", 1)[-1])
            except ValueError as error:
                hint = "" if "expected" in str(error) else "; expected densities such as 'p(z) p_theta(x|z)'"
                raise self.error(f"{error}{hint}", offset) from None
        return out

    def coefficients(self, text: str, offset: int) -> None:
        for item, start in _split_top(normalize(text), ","):
            where = offset + start + len(item) - len(item.lstrip())
            item = item.strip()
            if not item:
                continue
            try:
                name, low, high = _coefficient(item)
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
            if _empty_range(item, low, high):
                raise self.error(f"the range '{item}' of coefficient '{name}' is empty; expected a range that holds "
                                 "some value, such as '1 <= beta <= 2'", where)
            self.header.coefficients[name] = (low, high)
            self.header.coefficient_offsets[name] = where

    def factorization(self, text: str, offset: int) -> Factorization:
        normalized = normalize(text)
        if normalized.count("=") != 1:
            raise self.error("expected a factorization such as 'q(z_l,z_u|x) = q(z_l|x) q(z_u|x)'", offset)
        joint, factors = normalized.split("=")
        joint_list = self.factors(joint, offset)
        factor_list = self.factors(factors, offset + text.find("=") + 1)
        if len(joint_list) != 1 or len(factor_list) < 2:
            raise self.error("expected one joint density = a product of two or more factors, such as "
                             "'q(z_l,z_u|x) = q(z_l|x) q(z_u|x)'", offset)
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
    def model(self) -> Model:
        h = self.header
        generative, inference, auxiliary = [], [], []
        for key, factors, offset in self.factor_lists:
            for spec in factors:
                family = density(spec.split(" ", 1)[-1]).family
                if key == "aux":
                    auxiliary.append(spec)
                elif key == "p":
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
                                     f"'aux: {spec}'", offset)
        if not generative or not inference:
            missing = "generative factors p(...)" if not generative else "inference factors q(...)"
            raise self.error(f"no {missing}; expected e.g. 'elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)'",
                             self.text.offset)
        h.generative, h.inference, h.auxiliary = generative, inference, auxiliary
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
        # components of declared vectors are not variables of their own
        for vector in h.vectors:
            component = re.compile(rf"{re.escape(vector)}_\d+")
            if vector in variables:
                variables = [v for v in variables if not component.fullmatch(v)]
            if vector in latent:
                latent = [v for v in latent if not component.fullmatch(v)]
        # observed variables: those the encoder conditions on first (x before a label y), then the others
        conditioning: list[str] = []
        for spec in inference:
            template = re.match(r"prod_(\w+)\s+(.*)$", spec)
            note([str(v) for v in density(template.group(2) if template else spec).given], conditioning)
        variables = [v for v in conditioning if v in variables] + [v for v in variables if v not in conditioning]
        observed = h.observed if h.observed is not None else [v for v in variables if v not in (h.latent or latent)]
        latent = h.latent if h.latent is not None else [v for v in latent if v not in observed]
        h.observed, h.latent = observed, latent
        h.description = "; ".join(filter(None, [
            "p: " + " ".join(generative), "q: " + " ".join(inference), ("data: " + h.data) if h.data else "",
            ("aux: " + " ".join(auxiliary)) if auxiliary else "",
        ]))
        try:
            return Model(h.name, observed=observed, latent=latent, generative=generative, inference=inference,
                         data=h.data, vectors=h.vectors, auxiliary=auxiliary, coefficients=h.coefficients,
                         description=h.description)
        except (ModelError, ValueError) as error:
            raise self.error(f"{error}; expected a complete model: a p factor for every variable that is not an "
                             "input, a q factor for every latent variable", self.text.offset) from None


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


def _coefficient(item: str) -> tuple[str, float | None, float | None]:
    item = item.strip()
    name = r"(?P<name>[A-Za-z]\w*)"
    m = re.fullmatch(name + r"(\s+(real|free|any))?", item)
    if m:
        return m.group("name"), None, None
    m = re.fullmatch(name + r"\s*(?P<op>>=|>|<=|<|=)\s*(?P<v>" + _NUMBER + ")", item)
    if m:
        v = _number(m.group("v"))
        op = m.group("op")
        if op in (">=", ">"):
            return m.group("name"), v, None
        if op in ("<=", "<"):
            return m.group("name"), None, v
        return m.group("name"), v, v
    m = re.fullmatch(r"(?P<a>" + _NUMBER + r")\s*(<=|<)\s*" + name + r"\s*(<=|<)\s*(?P<b>" + _NUMBER + ")", item)
    if m:
        return m.group("name"), _number(m.group("a")), _number(m.group("b"))
    m = re.fullmatch(name + r"\s+in\s*[\[(]\s*(?P<a>" + _NUMBER + r")\s*,\s*(?P<b>" + _NUMBER + r")\s*[\])]", item)
    if m:
        return m.group("name"), _number(m.group("a")), _number(m.group("b"))
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
