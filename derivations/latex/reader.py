r"""Reading one logical line of display math into SymPy expressions of :mod:`elbocheck.derivations.expressions`
(the notation is described in :mod:`elbocheck.derivations.latex`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy
from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..expressions import (
    DATA_SUBSCRIPTS,
    measure_densities,
    KL,
    Density,
    Entropy,
    Expectation,
    IndexedProduct,
    IndexedSum,
    MutualInformation,
    TotalCorrelation,
)
from ..indexed import free_names, variable_names
from ..model import Model, ModelError
from ..samples import copies_in, copy_of, rename_copies
from .document import LatexError, LogicalLine, Source, Text
from .grammar import GREEK_NAMES, UNICODE_GREEK, describe_expected, parser
from .header import Header, Let, name_key
from .lowering import SampleCount

__all__ = ["LineReader", "Built"]

KNOWN_COMMANDS = set(GREEK_NAMES) | set(
    "log ln frac dfrac tfrac mathbb mathcal mathscr mathfrak mathbf boldsymbol bm mathbfit vec mathit mathrm mathsf "
    "textbf text textrm textit operatorname mathop E int iint iiint oint left right bigl bigr Bigl Bigr biggl biggr "
    "Biggl Biggr big Big bigg Bigg middle quad qquad displaystyle textstyle limits nolimits nonumber notag hspace "
    "vspace hskip hfill cdot times sim geq ge geqslant leq le leqslant overset stackrel coloneqq triangleq equiv "
    "eqqcolon hat tilde bar widehat widetilde overline underbrace overbrace parallel Vert mid approx simeq propto "
    "neq ne cong doteq gg ll geqq leqq gtrsim lesssim sum prod dots ldots cdots dotsc implies Rightarrow "
    "Longrightarrow lim to rightarrow setminus ast".split()
)
UNSUPPORTED_COMMANDS = {
    "max": "optimization objectives (\\max, \\min) cannot be checked; write the objective itself",
    "min": "optimization objectives (\\max, \\min) cannot be checked; write the objective itself",
    "arg": "optimization objectives (\\arg\\max) cannot be checked; write the objective itself",
    "argmax": "optimization objectives cannot be checked; write the objective itself",
    "argmin": "optimization objectives cannot be checked; write the objective itself",
    "nabla": "gradients cannot be checked; write the objective itself",
    "partial": "derivatives cannot be checked; write the objective itself",
    "infty": "infinity is not a value of a derivation line",
}
_DIFFERENTIAL_D = re.compile(r"^(\\(mathrm|text|operatorname)\s*\{\s*d\s*\}|d)")
CONSTANT_WORDS = {"c", "const", "constant", "cst", "+", "+c", "+const", "+constant", "const.", "c.", "cte"}
DEFINITION_WORDS = {"def", "delta", "triangle", "Delta", "defn", "definition"}
FUNCTION_LETTERS = {"E", "I", "H"}


# ------------------------------------------------------------------------------------------------ small helpers


def _unicode_to_names(text: str) -> str:
    for ch, name in UNICODE_GREEK.items():
        text = text.replace(ch, "\\" + name + " ")
    return text


def _strip_fonts(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\\(text|textrm|textit|mathrm|mathcal|mathbf|boldsymbol|bm|operatorname|mathit|mathsf|"
                      r"mathscr|mathfrak|mathbb|textbf)\s*\{([^{}]*)\}", r"\2", text)
    # a font command applied to one letter without braces: \mathcal D
    return re.sub(r"\\(mathcal|mathrm|mathbf|mathbb|mathscr|mathfrak|boldsymbol|bm)\s+([A-Za-z])(?![A-Za-z])", r"\2", text)


def subscript_parts(token_text: str) -> list[str]:
    """``_{\\theta, \\gamma}`` -> ``["theta", "gamma"]``; ``_{\\phi_x}`` -> ``["phi_x"]``; ``_{\\text{KL}}`` ->
    ``["KL"]``; ``_{\\mathcal{D}}`` -> ``["D"]``."""
    text = token_text.strip()
    if text.startswith(("_", "^")):
        text = text[1:].strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = _strip_fonts(_unicode_to_names(text))
    text = re.sub(r"\\([a-zA-Z]+)", r"\1", text)
    text = text.replace("{", "").replace("}", "").replace("\\", "")
    return [_version_name(re.sub(r"\s+", "", p)) for p in text.split(",") if re.sub(r"\s+", "", p)]


def _version_name(part: str) -> str:
    """A decorated parameter set in one spelling: ``theta^old``, ``theta^{(t)}``, ``theta^*`` -> ``theta_old``,
    ``theta_t``, ``theta_star`` (docs/semantics.md, section 3); ``theta'`` and ``theta_0`` stay as they are."""
    m = re.fullmatch(r"(?P<base>[A-Za-z][A-Za-z0-9_]*?)\^\(?(?P<decoration>[A-Za-z0-9]+|\*)\)?", part)
    if m:
        decoration = "star" if m.group("decoration") == "*" else m.group("decoration")
        return f"{m.group('base')}_{decoration}"
    return part


def variable_name(text: str) -> str:
    """``\\mathbf{z}_l``, ``\\mathbf{z}_{l}``, ``\\mathbf{z_l}``, ``z_{l}`` -> ``z_l``; ``\\epsilon`` -> ``epsilon``."""
    text = _strip_fonts(_unicode_to_names(text.strip()))
    text = re.sub(r"\\(vec)\s*\{([^{}]*)\}", r"\2", text)
    text = re.sub(r"\\([a-zA-Z]+)", r"\1", text)
    text = re.sub(r"[{}\s]", "", text)
    return text


def _is_const_label(text: str) -> bool:
    parts = subscript_parts(text)
    return len(parts) == 1 and parts[0].lower().rstrip(".") in {w.rstrip(".") for w in CONSTANT_WORDS}


def _density_like(expr) -> bool:
    """A density, a power of one, or an unevaluated product of them (what a log or a ratio is built from)."""
    if isinstance(expr, (Density, IndexedProduct)):
        return True
    if isinstance(expr, IndexedSum):
        return _density_like(expr.body)
    if isinstance(expr, sympy.Pow):
        return _density_like(expr.args[0])
    if isinstance(expr, sympy.Mul):
        return any(_density_like(a) for a in expr.args)
    return False


def _is_random(expr) -> bool:
    return bool(sympy.sympify(expr).atoms(Density, KL, MutualInformation, TotalCorrelation, Entropy, Expectation,
                                          IndexedSum, IndexedProduct))


def _factors_of(expr) -> list:
    if isinstance(expr, sympy.Mul) and _density_like(expr):
        return list(expr.args)
    return [expr]


def _inverse(expr):
    if isinstance(expr, sympy.Pow) and _density_like(expr.args[0]):
        return sympy.Pow(expr.args[0], -expr.args[1], evaluate=False)
    return sympy.Pow(expr, -1, evaluate=False)


@dataclass
class Built:
    """An expression of a line: its SymPy form, whether a ``+ const`` term was dropped, where it starts, and the data
    point indices it uses (``x^{(i)}``: variable -> (index, character index))."""

    expr: sympy.Expr
    has_const: bool
    index: int  # character index in the line text
    sample_indices: dict = field(default_factory=dict)


@dataclass
class _BareMeasure:
    """A measure written without its variables (``q_\\phi``, ``x \\sim p_{\\mathcal D}``): family and subscript,
    the sampled variable if given, and where it was written."""

    family: tuple
    variable: str | None
    where: int


@dataclass
class _SampleMeasure:
    """An expectation's measure over importance samples: the product over the copies, the sampled variable and the
    number of samples the text writes (``h_1, \\ldots, h_k \\sim q(h|x)``: k)."""

    product: IndexedProduct
    variable: str
    count: sympy.Expr
    where: int


@dataclass
class ReadLine:
    leading: tuple[str, int] | None  # (relation, index)
    trees: list  # expression trees
    relations: list[tuple[str, int]]  # between consecutive trees


# ------------------------------------------------------------------------------------------------ text expansion

#: a name as the text writes it: a letter, a command, an accented letter or \mathcal{X}, with its subscript, and
#: the arguments in parentheses that may follow
_NAME_AT = re.compile(
    r"(?P<head>(\\(bar|hat|tilde|widehat|widetilde|overline)\s*\{\s*(\\[a-zA-Z]+|[A-Za-z])\s*\}"
    r"|\\mathcal\s*\{\s*[A-Z]\s*\}|\\[a-zA-Z]+|[A-Za-z])"
    r"(\s*_\s*(\{(?:[^{}]|\{[^{}]*\})*\}|\\[a-zA-Z]+|[A-Za-z0-9]))?)")
_CALL_AT = re.compile(r"\s*(\\left\s*)?\((?P<args>[^()]*)(\\right\s*)?\)")
_EXPECT_AT = re.compile(r"\\mathbf\s*\{\s*E\s*\}|\\mathbb\s*\{\s*E\s*\}|\\mathbb\s+E(?![a-zA-Z])|\\E(?![a-zA-Z])|"
                        r"\\operatorname\s*\{\s*(\\mathbb\s*\{\s*E\s*\}|E)\s*\}|\\mathrm\s*\{\s*E\s*\}")
_SUBSCRIPT_AT = re.compile(r"\s*_\s*(\{(?P<braced>(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}|(?P<plain>\\[a-zA-Z]+|[A-Za-z0-9]))")


def _rewrite(text: Text, edits: list[tuple[int, int, str]]) -> Text:
    """``text`` with the spans ``[start, end)`` replaced; every inserted character keeps the file offset of the span's
    start, so that errors inside an expansion point at what the text wrote."""
    out = Text()
    position = 0
    for start, end, replacement in sorted(edits):
        out.text += text.text[position:start]
        out.offsets.extend(text.offsets[position:start])
        out.text += replacement
        out.offsets.extend([text.offset(start)] * len(replacement))
        position = end
    out.text += text.text[position:]
    out.offsets.extend(text.offsets[position:])
    return out


def _needs_group(body: str) -> bool:
    """Whether an abbreviation's expansion needs parentheses: not for one density or one product over an index."""
    body = body.strip()
    if re.fullmatch(r"\\prod(_\s*(\{[^{}]*\}|\w))?(\^\s*(\{[^{}]*\}|\w))?\s*[A-Za-z](_\s*(\{[^{}]*\}|\\?\w+))?"
                    r"\s*\([^()]*\)", body):
        return False
    return not re.fullmatch(r"[a-z](_\s*(\{[^{}]*\}|\\?\w+))?\s*\([^()]*\)", body)


# ------------------------------------------------------------------------------------------------ the reader


class LineReader:
    """Parses one logical line and turns its trees into engine objects, checking every name against the model and
    reading the text's notation as its header declares it (:class:`~.header.Header`)."""

    def __init__(self, source: Source, line: LogicalLine, model: Model, definitions: dict[str, sympy.Expr],
                 header: Header | None = None):
        self.source = source
        self.line = line
        self.model = model
        self.definitions = definitions
        self.header = header if header is not None else Header("", 0)
        self.aux_families = {re.match(r"[A-Za-z]+'?", spec).group(0) for spec in model.auxiliary}
        self._unbracketed: list[tuple[set, int]] = []  # (variables bound, position) of E's without brackets
        self._indices: list[str] = []  # indices of the enclosing sums and products
        self._scopes: list[_SampleMeasure] = []  # the enclosing expectations over importance samples
        self._primes: list[str] = []  # primed copies bound by the enclosing measures (c' ~ P(c|x))
        self._index_used = False  # the data point index n was read as the data variable

    # -------------------------------------------------------------------------------------------- errors
    def error(self, message: str, index: int) -> LatexError:
        return self.source.error(message, self.line.offset(index))

    @staticmethod
    def position(node) -> int:
        if isinstance(node, Token):
            return node.start_pos or 0
        meta = getattr(node, "meta", None)
        if meta is not None and not getattr(meta, "empty", True):
            return meta.start_pos
        for child in node.children:
            return LineReader.position(child)
        return 0

    # -------------------------------------------------------------------------------------------- parsing
    def read(self) -> ReadLine:
        self._expand()
        text = self.line.text.text
        self._precheck(text)
        try:
            tree = parser().parse(text)
        except UnexpectedInput as error:
            raise self._syntax_error(error, text) from None
        line = tree.children[0]
        leading = None
        trees, relations = [], []
        pending_relation = None
        for child in line.children:
            if isinstance(child, Tree) and child.data == "rel":
                relation = self.relation(child.children[0])
                if not trees:
                    leading = relation
                else:
                    pending_relation = relation
            else:
                if trees:
                    relations.append(pending_relation)
                trees.append(child)
        return ReadLine(leading, trees, relations)

    # -------------------------------------------------------------------------------------------- expansions
    def _expand(self) -> None:
        """Rewrite the line's text by the header's abbreviations (``let:``) and measures (``measures:``), once."""
        if getattr(self.line, "_expanded", False):
            return
        text = self.line.text
        for _ in range(20):
            edits = self._let_edits(text.text)
            if not edits:
                break
            text = _rewrite(text, edits)
        else:
            raise self.error("the abbreviations of the header ('let:') expand without end; expected abbreviations "
                             "that do not refer to themselves", 0)
        edits = self._measure_edits(text.text)
        if edits:
            text = _rewrite(text, edits)
        self.line.text = text
        self.line._expanded = True

    def _let_edits(self, text: str) -> list[tuple[int, int, str]]:
        lets = self.header.lets
        if not lets:
            return []
        edits = []
        for m in _NAME_AT.finditer(text):
            key = name_key(m.group("head"))
            for let in lets:
                value = None
                if let.index is not None:
                    base = let.key[: -len(let.index) - 1]
                    im = re.fullmatch(re.escape(base) + r"_(\w+)", key)
                    if im:
                        value = re.sub(r"_\s*\{\s*" + let.index + r"\s*\}|_\s*" + let.index + r"(?![A-Za-z])",
                                       "_{" + im.group(1) + "}", let.body)
                elif key == let.key:
                    value = let.body
                if value is None:
                    continue
                end = m.end("head")
                call = _CALL_AT.match(text, end)
                if let.params:
                    if call is None:  # the name alone, as the argument of another name (L(x; \pi, q)): left as it is
                        continue
                    args = tuple(name_key(a) for a in call.group("args").split(",") if a.strip())
                    if args != let.params:
                        raise self.error(f"'{text[m.start():call.end()].strip()}': the header defines {let.head}"
                                         f"({', '.join(let.params)}); expected the same arguments (an abbreviation is "
                                         "not a function of other variables)", m.start())
                    end = call.end()
                    if let.alias is not None:
                        value = self._alias(text, m.start(), let)
                elif call is not None and let.alias is None and not _needs_group(value):
                    continue  # a density of the same name, not the abbreviation
                if let.alias is None and _needs_group(value):
                    value = "\\left(" + value + "\\right)"
                edits.append((m.start(), end, " " + value + " "))
                break
        return edits

    def _alias(self, text: str, start: int, let: Let) -> str:
        """``G(z,c)`` with ``let: G(z,c) = x``: the variable ``x``; after ``\\sim`` in a measure, the density that
        draws it: ``P(x|c)`` when ``c`` is drawn in the same measure, ``P(x)`` otherwise."""
        before = text[:start].rstrip()
        if not before.endswith("\\sim"):
            return let.alias
        # the measure so far: from the '{' of the enclosing subscript
        depth, opening = 0, 0
        for k in range(start - 1, -1, -1):
            if text[k] == "}":
                depth += 1
            elif text[k] == "{":
                if depth == 0:
                    opening = k + 1
                    break
                depth -= 1
        drawn = {name_key(v) for v in re.findall(r"([A-Za-z\\{}]+?)\s*\\sim", text[opening:start])}
        given = [p for p in let.params if p in drawn and p != let.alias]
        letter = next((k for k, family in self.header.letters.items() if family == "p" and "_" not in k), "p")
        return f"{letter}({let.alias}{'|' + ','.join(given) if given else ''})"

    def _measure_edits(self, text: str) -> list[tuple[int, int, str]]:
        rules = [r for r in self.header.measures if self._line_selected(r.selectors)]
        if not rules:
            return []
        by_name = {}
        for rule in rules:
            by_name.setdefault(rule.name, rule)
        edits = []
        for m in _EXPECT_AT.finditer(text):
            sub = _SUBSCRIPT_AT.match(text, m.end())
            if sub is None:
                if "E" in by_name:
                    edits.append((m.end(), m.end(), "_{" + by_name["E"].measure + "}"))
                continue
            written = sub.group("braced") if sub.group("braced") is not None else sub.group("plain")
            rule = by_name.get("E_" + name_key(written))
            if rule is not None:
                edits.append((sub.start(), sub.end(), "_{" + rule.measure + "}"))
        return edits

    def _line_selected(self, selectors) -> bool:
        if selectors is None:
            return True
        first_line = self.source.position(self.line.start)[0]
        last_line = self.source.position(self.line.text.offsets[-1] if self.line.text.offsets else self.line.start)[0]
        hit = False
        for s in selectors:
            ref = s.last
            if ref.kind == "all" or (ref.kind == "tag" and self.line.tag == ref.value) or \
                    (ref.kind == "line" and first_line <= int(ref.value) <= last_line):
                s.used = hit = True
        return hit

    def _precheck(self, text: str) -> None:
        for m in re.finditer(r"\\([a-zA-Z]+)", text):
            name = m.group(1)
            if name in UNSUPPORTED_COMMANDS:
                raise self.error(f"'\\{name}': {UNSUPPORTED_COMMANDS[name]}; expected an expression built from "
                                 "densities, \\log, \\mathbb{E}, D_{KL}, I(..;..) and coefficients", m.start())
            if name not in KNOWN_COMMANDS:
                raise self.error(f"unknown command '\\{name}'; expected a supported command such as \\log, \\frac, "
                                 "\\mathbb{E}, \\int, D_{\\text{KL}}, \\mathbf{...}, \\geq or a Greek letter",
                                 m.start())
        stack: list[tuple[str, int]] = []
        pairs = {")": "(", "]": "["}
        for i, c in enumerate(text):
            if c in "([":
                stack.append((c, i))
            elif c in ")]":
                if i > 0 and text[i - 1] == "\\":
                    continue
                if not stack:
                    raise self.error(f"unbalanced parentheses: this '{c}' closes nothing; expected an expression or "
                                     "a relation here", i)
                opener, where = stack.pop()
                if opener != pairs[c]:
                    # a half-open interval is not part of the notation; report the mismatch
                    raise self.error(f"unbalanced parentheses: '{c}' closes the '{opener}' at column "
                                     f"{self.source.position(self.line.offset(where))[1]}; expected "
                                     f"'{')' if opener == '(' else ']'}'", i)
        if stack:
            opener, where = stack[-1]
            raise self.error(f"unbalanced parentheses: this '{opener}' is never closed; expected "
                             f"'{')' if opener == '(' else ']'}' before the end of the line", where)

    def _syntax_error(self, error: UnexpectedInput, text: str) -> LatexError:
        if isinstance(error, UnexpectedToken):
            token = error.token
            expected = describe_expected(error.accepts or error.expected)
            if token.type == "$END":
                return self.error(f"the line ends too early; expected {expected}", len(text.rstrip()))
            shown = str(token).strip()
            if token.type in ("EQ", "GEQ", "LEQ", "OVERSET_REL", "EQ_SUB", "DEFEQ", "BADREL"):
                return self.error(f"unexpected relation '{shown}'; expected {expected}", token.start_pos)
            return self.error(f"unexpected '{shown}'; expected {expected}", token.start_pos)
        if isinstance(error, UnexpectedCharacters):
            expected = describe_expected(error.allowed or ())
            char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
            return self.error(f"unexpected character '{char}'; expected {expected}", error.pos_in_stream)
        if isinstance(error, UnexpectedEOF):
            return self.error(f"the line ends too early; expected {describe_expected(error.expected)}",
                              len(text.rstrip()))
        return self.error(f"cannot read this line: {error}", 0)  # pragma: no cover

    # -------------------------------------------------------------------------------------------- relations
    def relation(self, token: Token) -> tuple[str, int]:
        text = str(token)
        where = token.start_pos
        kind = token.type
        if kind == "EQ":
            return "=", where
        if kind == "DEFEQ":
            return ":=", where
        if kind == "IMPLIES":
            return "implies", where
        if kind == "GEQ":
            return ">=", where
        if kind == "LEQ":
            return "<=", where
        if kind == "EQ_SUB":
            if _is_const_label(text[text.index("=") + 1:]):
                return "=const", where
            raise self.error(f"unknown relation '{text}'; expected =, \\geq, \\leq or '=_c' (equal up to a constant)",
                             where)
        if kind == "OVERSET_REL":
            m = re.match(r"\\(overset|stackrel)\s*", text)
            body = text[m.end():]
            depth, end = 0, 0
            for i, c in enumerate(body):
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        end = i
                        break
            top, below = body[1:end], body[end + 1:].strip()[1:-1].strip()
            base = {"=": "="}.get(below) or (">=" if below.startswith("\\ge") else "<=" if below.startswith("\\le")
                                            else "=")
            words = subscript_parts("{" + top + "}")
            word = words[0] if len(words) == 1 else ""
            if word.lower() in CONSTANT_WORDS:
                if base != "=":
                    raise self.error(f"'{text}': equal up to a constant needs '='; expected \\overset{{c}}{{=}}", where)
                return "=const", where
            if word in DEFINITION_WORDS and base == "=":
                return ":=", where
            return base, where  # an annotation such as \overset{(a)}{=} or \overset{\text{def}}{=}
        raise self.error(f"the relation '{text}' cannot be checked; expected =, \\geq, \\leq or \\overset{{c}}{{=}} "
                         "(equal up to a constant)", where)

    # -------------------------------------------------------------------------------------------- expressions
    def name_of(self, tree) -> str | None:
        """The key of a bare name (``\\mathcal{L}_{\\theta,\\phi}(x)`` -> ``L_theta_phi``, ``\\text{ELBO}`` ->
        ``ELBO``, ``H`` without arguments -> ``H``, ``\\mathrm{KL}(q \\| p)`` with bare letters -> ``KL_q_p``), or
        None for anything else (a density, an entropy ``H(...)``, a coefficient)."""
        if not isinstance(tree, Tree):
            return None
        if tree.data == "kl_app":
            letters = self._bare_letters(tree)
            return "KL_" + "_".join(letters) if letters else None
        if tree.data not in ("upper_app", "name_app"):
            return None
        head = tree.children[0]
        subs = [c for c in tree.children[1:] if isinstance(c, Token) and c.type == "SUB"]
        parts = subscript_parts(str(subs[0])) if subs else []
        has_args = any(isinstance(c, Tree) and c.data == "args" for c in tree.children)
        if tree.data == "upper_app":
            letter = str(head)
            if has_args and (letter in FUNCTION_LETTERS or self._density_letter(letter) or
                             (letter == "D" and (parts in (["KL"], ["kl"]) or self._renyi_order(parts) is not None))):
                return None
            if not has_args and not parts and letter in self.model.coefficient_symbols:
                return None  # a size or a count (K, N), not a name
        elif head.type == "NAME_WORD":
            letter = re.sub(r"^\\[a-zA-Z]+\s*\{\s*|\s*\}$", "", str(head))
        else:
            text = str(head)
            accent = re.match(r"\\(hat|tilde|bar|widehat|widetilde|overline)", text)
            letter = (accent.group(1) if accent else "") + re.findall(r"[A-Z]", text)[-1]
            if letter in ("I", "H") and has_args:
                return None
        return "_".join([letter] + parts)

    def expression(self, tree) -> Built:
        """A whole expression of the line: top-level ``+ const`` terms are dropped and flagged."""
        index = self.position(tree)
        self._sample_indices: dict[str, tuple[str, int]] = {}
        terms = self.summands(tree, 1)
        has_const = False
        total = sympy.Integer(0)
        built_any = False
        built_terms = []
        for sign, term in terms:
            if self.is_const(term):
                has_const = True
                continue
            before = len(self._unbracketed)
            value = self.build(term)
            built_terms.append((value, self._unbracketed[before:], self.position(term)))
            total = total + (value if sign > 0 else -value)
            built_any = True
        self._check_unbracketed(built_terms)
        if not built_any:
            raise self.error("the expression is only a constant; expected terms besides '\\text{const}'", index)
        return Built(total, has_const, index, dict(self._sample_indices))

    def _check_unbracketed(self, built_terms) -> None:
        """``\\mathbb{E}_q \\log a + \\log b`` integrates only ``\\log a``: a later term that uses a variable the
        expectation integrates is an error, not a silent free variable."""
        free_of = [free_names(value, self.model.vectors, self.model.samples) for value, _, _ in built_terms]
        for k, (_, unbracketed, _) in enumerate(built_terms):
            for bound, where in unbracketed:
                for j, (_, _, position) in enumerate(built_terms):
                    loose = (free_of[j] & bound) - set(self.model.observed)
                    if j != k and loose:
                        name = sorted(loose)[0]
                        raise self.error(
                            f"{name} is not bound here: the expectation at column "
                            f"{self.source.position(self.line.offset(where))[1]} has no brackets, so it covers only "
                            f"the term right after it; did you mean the expectation to cover both terms? expected "
                            f"\\mathbb{{E}}_{{...}}\\left[ ... + ... \\right]", position)

    def summands(self, tree, sign: int) -> list[tuple[int, object]]:
        if isinstance(tree, Tree):
            if tree.data == "add":
                if len(tree.children) == 2:  # sum followed by a signed \underbrace
                    return self.summands(tree.children[0], sign) + self.summands(tree.children[1], sign)
                return self.summands(tree.children[0], sign) + self.summands(tree.children[2], sign)
            if tree.data == "signed_brace":
                if self.is_const(tree):
                    return [(sign, tree)]
                inner_sign = -1 if str(tree.children[0]).rstrip().endswith("-") else 1
                inner = self.summands(tree.children[1], sign)
                return [(inner[0][0] * inner_sign, inner[0][1])] + inner[1:]
            if tree.data == "sub":
                return self.summands(tree.children[0], sign) + self.summands(tree.children[2], -sign)
            if tree.data == "neg":
                return self.summands(tree.children[1], -sign)
            if tree.data == "pos":
                return self.summands(tree.children[1], sign)
        return [(sign, tree)]

    @staticmethod
    def is_const(tree) -> bool:
        if isinstance(tree, Tree) and tree.data == "const_term":
            return True
        if isinstance(tree, Tree) and tree.data in ("underbrace", "signed_brace"):
            labels = [c for c in tree.children if isinstance(c, Token) and c.type == "UNDER_LABEL"]
            return bool(labels) and _is_const_label(str(labels[0])[1:])
        return False

    def build(self, node):
        if isinstance(node, Token):
            raise self.error(f"unexpected '{node}'", node.start_pos)  # pragma: no cover - the grammar prevents it
        method = getattr(self, "_" + node.data, None)
        if method is None:  # pragma: no cover - every rule has a method
            raise self.error(f"unsupported construct '{node.data}'", self.position(node))
        return method(node)

    @staticmethod
    def trees(node) -> list:
        return [c for c in node.children if isinstance(c, Tree)]

    # arithmetic ---------------------------------------------------------------------------------
    def _add(self, node):
        return self._arith(node)

    _sub = _neg = _pos = _add

    def _arith(self, node):
        total = sympy.Integer(0)
        for sign, term in self.summands(node, 1):
            if self.is_const(term):
                raise self.error("'\\text{const}' must be a term of the whole side (... + \\text{const}); expected "
                                 "it outside brackets", self.position(term))
            value = self.build(term)
            total = total + (value if sign > 0 else -value)
        return total

    def _mul(self, node):
        factors = []
        current = node
        while isinstance(current, Tree) and current.data == "mul":
            parts = self.trees(current)
            factors.append(parts[0])
            current = parts[1]
        factors.append(current)
        values = [self.build(f) for f in factors]
        if any(_density_like(v) for v in values):
            flat = []
            for v in values:
                flat.extend(_factors_of(v))
            return sympy.Mul(*flat, evaluate=False)
        return sympy.Mul(*values)

    def _div(self, node):
        numerator_tree, _, denominator_tree = node.children
        numerator, denominator = self.build(numerator_tree), self.build(denominator_tree)
        if _density_like(numerator) or _density_like(denominator):
            factors = [f for f in _factors_of(numerator) if f != 1] + [_inverse(f) for f in _factors_of(denominator)]
            return factors[0] if len(factors) == 1 else sympy.Mul(*factors, evaluate=False)
        if _is_random(denominator):
            raise self.error("only densities and coefficients can divide; expected a number, a coefficient or a "
                             "density after '/'", self.position(denominator_tree))
        return numerator / denominator

    # sums and products over an index ------------------------------------------------------------------
    def _bigop(self, node):
        """``\\sum_{j=1}^{J}`` / ``\\prod_j`` over the components of a vector or over importance samples;
        ``\\sum_{i=1}^{N}`` over the data points (``N E_{p_D(x)}[...]``); ``\\sum_y`` over the values of a discrete
        variable (its integral)."""
        token = node.children[0]
        text = str(token)
        kind = "sum" if text.lstrip("\\").startswith("sum") else "prod"
        m = re.search(r"_\s*(\{(?P<braced>(?:[^{}]|\{[^{}]*\})*)\}|(?P<letter>[a-zA-Z]))", text)
        if not m:
            raise self.error(f"\\{kind} without an index; expected \\{kind}_{{j=1}}^{{J}} or \\{kind}_j",
                             token.start_pos)
        lower = (m.group("braced") if m.group("braced") is not None else m.group("letter")).strip()
        um = re.search(r"\^\s*(\{(?P<braced>[^{}]*)\}|(?P<plain>[a-zA-Z0-9]|\\[a-zA-Z]+))", text[m.end():])
        upper = None
        if um:
            upper = (um.group("braced") if um.group("braced") is not None else um.group("plain")).strip()
        values = self._discrete_values(lower, upper, token)
        if values is not None:
            if kind != "sum":
                raise self.error(f"\\prod over the values of {values}: a product over values has no meaning here; "
                                 f"expected \\sum_{{{values}}}", token.start_pos)
            return self._integrate({values}, self._product_factors(self.trees(node)[0]), token.start_pos,
                                   f"\\sum_{{{values}}}")
        lm = re.fullmatch(r"(?P<index>[a-zA-Z])\s*(=\s*(?P<start>[^{}]+))?", lower)
        if not lm:
            raise self.error(f"\\{kind}_{{{lower}}}: expected an index such as j or j=1, or a discrete variable",
                             token.start_pos)
        index = lm.group("index")
        if lm.group("start") is not None and lm.group("start").strip() != "1":
            raise self.error(f"\\{kind} from {lm.group('start').strip()}: a sum over components or samples runs "
                             f"over all of them; expected {index}=1", token.start_pos)
        points = self.header.datapoints
        if points is not None and index == points.index and kind == "sum":
            return self._data_point_sum(node, upper, token)
        self._indices.append(index)
        try:
            body = self.build(self.trees(node)[0])
        finally:
            self._indices.pop()
        over = self._indexed_over(body, index, token)
        if over[1] == "samples":
            return self._sample_sum(kind, index, body, over[0], upper, token)
        if upper is not None:
            size = self._size_of(over)
            written = variable_name(upper)
            if str(size) != written:
                raise self.error(f"\\{kind}_{{{index}=1}}^{{{upper}}}: {over[0]} has {size} "
                                 f"components, not {upper}; expected the sum over all of them (^{{{size}}})",
                                 token.start_pos)
        if kind == "prod":
            if not _density_like(body):
                raise self.error("\\prod_j takes densities; expected e.g. \\prod_j q(z_j|x)", token.start_pos)
            return IndexedProduct(index, body)
        return IndexedSum(index, body)

    def _discrete_values(self, lower: str, upper: str | None, token) -> str | None:
        """The variable a sum runs over when its subscript names a variable of the model (``\\sum_y``,
        ``\\sum_{\\mathbf{h}}``): it must be declared discrete (the sum over its values is its integral)."""
        name = self._renamed(variable_name(lower))
        if "=" in lower or name not in self.model.components or (len(name) == 1 and name in self._indices):
            return None
        if upper is not None:
            raise self.error(f"\\sum_{{{lower}}}^{{{upper}}}: a sum over the values of {name} has no upper limit; "
                             f"expected \\sum_{{{lower}}}", token.start_pos)
        if name not in self.model.discrete:
            raise self.error(f"\\sum_{{{lower}}} sums over the values of {name}, which is not declared discrete; "
                             f"expected 'discrete: {name}' in the header (or \\int ... d{name} for a continuous "
                             "variable)", token.start_pos)
        return name

    def _data_point_sum(self, node, upper: str | None, token):
        """``\\sum_{i=1}^{N} f(x^{(i)})`` over the N data points: ``N E_{p_D(x)}[f(x)]`` (the data distribution is
        the empirical distribution of the points)."""
        points = self.header.datapoints
        if upper is not None and variable_name(upper) != points.count:
            raise self.error(f"a sum over the data points runs to {points.count} (the header's datapoints); expected "
                             f"^{{{points.count}}}, not ^{{{upper}}}", token.start_pos)
        body = self.build(self.trees(node)[0])
        count = self.model.coefficient_symbols.get(points.count, None)
        count = sympy.Integer(int(points.count)) if count is None else count
        measure = Density("p_D", [points.variable], ())
        try:
            self._check_density(measure)
        except ModelError as error:
            raise self.error(f"{error}; expected data points of a data variable", token.start_pos) from None
        return count * Expectation(measure, body)

    def _sample_sum(self, kind: str, index: str, body, variable: str, upper: str | None, token):
        """A sum or product over importance samples: over all the samples of the enclosing expectation (an indexed
        sum), or written out over the first few (``\\sum_{i=1}^{2}`` inside an expectation over three samples)."""
        scope = next((s for s in reversed(self._scopes) if s.variable == variable), None)
        count = scope.count if scope is not None else self.model.sample_sizes[variable]
        written = self._count(upper, token) if upper is not None else count
        if written != count and not written.is_Integer:
            raise self.error(f"\\{kind}_{{{index}=1}}^{{{upper}}}: the expectation is over {count} samples of "
                             f"{variable}; expected the sum over all of them or over a number of them",
                             token.start_pos)
        if written.is_Integer and (written != self.model.sample_sizes[variable] or scope is not None):
            terms = [body.xreplace({sympy.Symbol(f"{variable}_{index}"): sympy.Symbol(f"{variable}_{k}")})
                     for k in range(1, int(written) + 1)]
            if kind == "sum":
                return sympy.Add(*terms)
            return sympy.Mul(*terms, evaluate=False) if len(terms) > 1 else terms[0]
        if kind == "prod":
            if not _density_like(body):
                raise self.error("\\prod_k takes densities; expected e.g. \\prod_k q(z_k|x)", token.start_pos)
            return IndexedProduct(index, body)
        return IndexedSum(index, body)

    def _count(self, text: str, token) -> sympy.Expr:
        """A number of samples as written (``k``, ``k+1``, ``3``, ``K``) in the symbols of the model."""
        cleaned = re.sub(r"[{}\s]|\\(mathrm|text)", "", text)
        symbols = dict(self.model.coefficient_symbols)
        try:
            value = sympy.sympify(cleaned, locals=symbols)
        except (sympy.SympifyError, SyntaxError, TypeError):
            value = None
        if value is None or not value.free_symbols <= set(symbols.values()):
            raise self.error(f"cannot read the number of samples '{text}'; expected a number or a symbol of the "
                             "header's samples: clause (K, k+1)", token.start_pos)
        return value

    def _indexed_over(self, body, index: str, token) -> tuple[str, str]:
        """The vector or the sampled variable an index runs over in ``body``: (name, "vector" or "samples")."""
        found = set()
        for name in variable_names(body):
            m = re.fullmatch(r"(?P<v>\w+?)_" + re.escape(index), name)
            if m and m.group("v") in self.model.vectors:
                found.add((m.group("v"), "vector"))
            elif m and m.group("v") in self.model.samples:
                found.add((m.group("v"), "samples"))
        if not found:
            raise self.error(f"the index {index} names no component of a vector (vectors: "
                             f"{', '.join(self.model.vectors) or 'none'}) nor an importance sample (samples: "
                             f"{', '.join(self.model.samples) or 'none'}); declare them in the header ('vectors: z = J' "
                             f"or 'samples: z_k ~ q(z|x), k = 1..K')", token.start_pos)
        if len({kind for _, kind in found}) > 1 or len({self._size_of(f) for f in found}) > 1:
            raise self.error(f"the index {index} runs over {', '.join(sorted(v for v, _ in found))}, of different "
                             "kinds or sizes", token.start_pos)
        return sorted(found)[0]

    def _size_of(self, over: tuple[str, str]):
        name, kind = over
        return self.model.vector_sizes[name] if kind == "vector" else self.model.sample_sizes[name]

    def _letter(self, node):
        """A lowercase letter alone: a size or a count of the header (``k`` in ``\\frac{1}{k}``)."""
        token = node.children[0]
        name = str(token)
        if name in self.model.coefficient_symbols:
            return self.model.coefficient_symbols[name]
        raise self.error(f"'{name}' alone has no value: a variable is an argument of a density, and a letter outside "
                         f"one is a size or a number of samples of the header (declared: "
                         f"{', '.join(self.model.coefficient_symbols) or 'none'}); expected a density such as "
                         f"p({name}) or a declared symbol", token.start_pos)

    def _pow(self, node):
        base_tree, exponent_tree = self.trees(node)
        base = self.build(base_tree)
        exponent = self.build(exponent_tree)
        return self._power(base, exponent, exponent_tree)

    def _pow_simple(self, node):
        base_tree = self.trees(node)[0]
        token = [c for c in node.children if isinstance(c, Token) and c.type == "SUPSIMPLE"][0]
        text = str(token)[1:].strip()
        if re.fullmatch(r"\d", text):
            exponent = sympy.Integer(int(text))
        else:
            name = variable_name(text)
            if name not in self.model.coefficient_symbols:
                raise self.error(f"undeclared coefficient '{text}' in the exponent; expected a number or a coefficient "
                                 f"declared in the header (coefficients: {name} real)", token.start_pos)
            exponent = self.model.coefficient_symbols[name]
        return self._power(self.build(base_tree), exponent, token)

    def _power(self, base, exponent, where):
        if _is_random(exponent):
            raise self.error("the exponent must be a number or a coefficient; expected no densities in it",
                             self.position(where))
        if _density_like(base):
            return sympy.Pow(base, exponent, evaluate=False)
        if _is_random(base):
            raise self.error("only densities and coefficients can be raised to a power; expected a density before '^'",
                             self.position(where))
        return base ** exponent

    def _number(self, node):
        return sympy.Rational(str(node.children[0]))

    def _coefficient(self, node):
        token = node.children[0]
        name = variable_name(str(token))
        subs = [c for c in node.children[1:] if isinstance(c, Token)]
        if subs:
            name = "_".join([name] + subscript_parts(str(subs[0])))
        if name not in self.model.coefficient_symbols:
            if name == "pi":
                return sympy.pi
            declared = ", ".join(self.model.coefficient_symbols) or "none"
            raise self.error(f"undeclared coefficient '{str(token)}{str(subs[0]) if subs else ''}'; expected a "
                             f"coefficient declared in the header (declared: {declared}), e.g. "
                             f"'coefficients: {name} >= 0'", token.start_pos)
        return self.model.coefficient_symbols[name]

    def _group(self, node):
        return self.build(self.trees(node)[0])

    def _frac(self, node):
        numerator_tree, denominator_tree = self.trees(node)
        numerator, denominator = self.build(numerator_tree), self.build(denominator_tree)
        if _density_like(numerator) or _density_like(denominator):
            factors = [f for f in _factors_of(numerator) if f != 1] + [_inverse(f) for f in _factors_of(denominator)]
            return factors[0] if len(factors) == 1 else sympy.Mul(*factors, evaluate=False)
        return numerator / denominator

    def _signed_brace(self, node):
        if self.is_const(node):
            raise self.error("an \\underbrace{...}_{\\text{const}} must be a term of the whole side; expected it "
                             "outside brackets", self.position(node))
        return self._arith(node)

    def _underbrace(self, node):
        if self.is_const(node):
            raise self.error("an \\underbrace{...}_{\\text{const}} must be a term of the whole side; expected it "
                             "outside brackets", self.position(node))
        return self.build(self.trees(node)[0])

    def _const_term(self, node):
        raise self.error("'\\text{const}' must be a term of the whole side (... + \\text{const}); expected it outside "
                         "brackets", self.position(node))

    def _unknown_command(self, node):
        token = node.children[0]
        name = str(token)[1:]
        if name in ("text", "textrm", "textit", "mbox"):
            raise self.error(f"text inside the math ('\\{name}{{...}}') cannot be checked; expected an expression "
                             "(move remarks out of the math block)", token.start_pos)
        raise self.error(f"unexpected command '{token}'; expected an expression (a density, \\log, \\mathbb{{E}}, "
                         "\\frac, D_{KL}(..||..), a number or a declared coefficient)", token.start_pos)

    # logs and expectations ------------------------------------------------------------------------
    def _log_app(self, node):
        argument_tree = self.trees(node)[0]
        if isinstance(argument_tree, Tree) and argument_tree.data == "div":
            raise self.error("ambiguous: '\\log a / b' can be (\\log a) / b or \\log (a / b); expected "
                             "\\frac{\\log a}{b}, \\frac{1}{b}\\log a or \\log \\frac{a}{b}",
                             self.position(argument_tree))
        argument = self.build(argument_tree)
        points = self.header.datapoints
        if points is not None and argument == self.model.coefficient_symbols.get(points.count):
            # N equally weighted distinct points: log N is the entropy of the data distribution
            entropy = Entropy(Density("p_D", [points.variable], ()))
            try:
                self._check_expression(entropy)
            except ModelError as error:
                raise self.error(f"{error}; expected data points of a data variable", self.position(argument_tree)) \
                    from None
            return entropy
        self._check_log_argument(argument, self.position(argument_tree))
        return sympy.log(argument, evaluate=False)

    def _check_log_argument(self, expr, where: int) -> None:
        def ok(e) -> bool:
            if isinstance(e, (Density, Expectation, IndexedProduct, SampleCount)):
                return True
            if isinstance(e, IndexedSum):  # log sum_k w_k over importance samples
                return ok(e.body)
            if isinstance(e, sympy.Pow):
                return ok(e.args[0]) and not _is_random(e.args[1])
            if isinstance(e, sympy.Mul):
                return all(ok(a) for a in e.args)
            if isinstance(e, sympy.Add) and all(_density_like(t) and copies_in(t, self.model.samples)
                                                  for t in e.args):
                return True  # log (w_1 + w_2): a sum of importance weights
            if not _is_random(e) and not self._positive_constant(e):
                raise self.error(f"'{e}' inside \\log: a factor without densities must be a positive number; "
                                 "expected densities (write coefficients outside the \\log)", where)
            return not _is_random(e)

        if not ok(expr):
            raise self.error("\\log takes a density, a product or ratio of densities, or an expectation; expected "
                             "brackets around anything else, or a relation between two expressions", where)

    def _positive_constant(self, e) -> bool:
        """A number, or an expression in symbols whose declared ranges are positive (a number of samples ``k``)."""
        if e.is_number:
            return bool(e.is_positive)
        positive = {}
        for symbol in e.free_symbols:
            rng = self.model.coefficient_ranges.get(str(symbol))
            if rng is None or rng.low is None or rng.low < 0 or (rng.low == 0 and not rng.low_open):
                return False
            positive[symbol] = sympy.Dummy(positive=True)
        return bool(e.xreplace(positive).is_positive)

    def _measure(self, node) -> list:
        """The measure's items: densities, bare families (``q_\\phi``, ``x \\sim p_{\\mathcal D}``) whose variables
        the body decides (:meth:`_complete_measure`), or importance samples (:class:`_SampleMeasure`). Primed copies
        that the measure draws (``c' \\sim P(c|x)``) are left in ``self._drawn_primes``."""
        out = []
        self._drawn_primes = []
        self._in_measure = True
        try:
            return self._measure_items(node, out)
        finally:
            self._in_measure = False

    def _measure_items(self, node, out: list) -> list:
        children = node.children
        if len(children) == 1 and isinstance(children[0], Tree) and children[0].data == "measure_pairs":
            children = children[0].children
        for item in children:
            if isinstance(item, Token):
                if str(item).strip() != ",":
                    raise self.error(f"unexpected '{item}' between the densities of a measure; expected ','",
                                     item.start_pos)
                continue
            if item.data == "density":
                out.append(self._density(item))
            elif item.data in ("sampled", "sampled_pair"):
                pair = item.children[0] if item.data == "sampled" else item
                variable_tree, _, density_tree = pair.children
                out.append(self._sampled(variable_tree, density_tree, pair))
            elif item.data == "bare_measure":
                out.append(_BareMeasure(self._bare_family(item.children[0], item.children[1:]), None,
                                        self.position(item)))
            elif item.data == "sampled_bare":
                variable_tree, _, letter, *subs = item.children
                out.append(_BareMeasure(self._bare_family(letter, subs), self._variable(variable_tree),
                                        self.position(item)))
            elif item.data == "sampled_list":
                out.append(self._sample_measure(item))
            elif item.data == "measure_product":
                out.append(self._product_measure(item))
        if not out:
            raise self.error("expected a density as the measure of the expectation, e.g. \\mathbb{E}_{q(z|x)}",
                             self.position(node))
        return out

    def _sampled(self, variable_tree, density_tree, item):
        """``z \\sim q(z|x)`` (the density), ``h_1 \\sim q(h|x)`` (one importance sample), ``c' \\sim P(c|x)``
        (a primed copy of c, bound in the expectation)."""
        d = self._density(density_tree)
        targets = {str(t) for t in d.targets}
        primed = any(isinstance(c, Token) and c.type == "PRIME" for c in variable_tree.children)
        if primed:
            text = "".join(str(c) for c in variable_tree.children if not (isinstance(c, Token) and c.type == "PRIME"))
            name = self._renamed(variable_name(text))
            if name not in targets:
                raise self.error(f"'{name}\' \\sim {d}': a primed variable is a copy of a target of the density; "
                                 f"expected {name}' \\sim F({name}|...)", self.position(item))
            self._drawn_primes.append(name)
            return d
        text = "".join(str(c) for c in variable_tree.children)
        name = self._renamed(variable_name(text))
        copy = copy_of(name, self.model.samples)
        if copy is not None and name not in targets:
            variable, index = copy
            if [str(t) for t in d.targets] != [variable] or not index.isdigit():
                raise self.error(f"'{name} \\sim {d}': a sample of {variable} is drawn from its inference density; "
                                 f"expected {variable}_1 \\sim q({variable}|...)", self.position(item))
            return self._samples_of(variable, d, sympy.Integer(int(index)), self.position(item))
        name = self._variable(variable_tree)
        if name not in targets:
            raise self.error(f"'{name} \\sim {d}': the sampled variable must be a target of the density",
                             self.position(item))
        return d

    def _bare_family(self, letter, subs) -> tuple[str, list[str]]:
        """The family of a measure written without arguments (``q_\\phi``, ``p_{\\mathcal D}``, ``p_\\theta``)."""
        parts = subscript_parts(str(subs[0])) if subs else []
        family = str(letter)
        if family == "p" and len(parts) == 1 and parts[0] in DATA_SUBSCRIPTS + ("data", "mathcal{D}", "D"):
            return "p_D", []
        key = family + ("_" + ",".join(parts) if parts else "")
        if key in self.header.letters:
            return self.header.letters[key], []
        if family in self.header.letters:
            return self.header.letters[family], parts
        return family, parts

    def _samples_of(self, variable: str, d: Density, count, where: int) -> _SampleMeasure:
        """The measure over ``count`` importance samples of ``variable``, each drawn from ``d`` (the header's
        sampling density)."""
        declared = self.header.sample_densities.get(variable)
        if [str(t) for t in d.targets] != [variable]:
            raise self.error(f"the samples of {variable} are drawn from a density of {variable}, not {d}", where)
        if declared is not None and (d.family, d.given) != (declared.family, declared.given):
            raise self.error(f"the samples of {variable} are drawn from {declared} (the header's samples: clause); "
                             f"expected that density, not {d}", where)
        index = next(i for i in "kmnlrsij" if not any(str(v).endswith("_" + i) for v in d.given))
        product = IndexedProduct(index, Density(d.family, [sympy.Symbol(f"{variable}_{index}")], d.given,
                                                d.subscript))
        return _SampleMeasure(product, variable, sympy.sympify(count), where)

    def _sample_measure(self, item) -> _SampleMeasure:
        """``z_1, \\dots, z_K \\sim q(z|x)``: K importance samples of z, each drawn from ``q(z|x)``."""
        first_tree, _, rest, _, density_tree = item.children
        names = [self._variable(first_tree)] + [self._variable(c) for c in rest.children
                                                 if isinstance(c, Tree) and c.data == "variable"]
        d = self._density(density_tree)
        copies = [copy_of(n, self.model.samples) for n in names]
        if any(c is None for c in copies) or len({c[0] for c in copies}) != 1:
            raise self.error(f"'{', '.join(names)} \\sim {d}': a list of importance samples of one variable; "
                             "expected e.g. z_1, \\dots, z_K \\sim q(z|x) with 'samples: z_k ~ q(z|x), k = 1..K' in "
                             "the header", self.position(item))
        variable = copies[0][0]
        return self._samples_of(variable, d, self._list_count([c[1] for c in copies], item), self.position(item))

    def _list_count(self, indices: list[str], item) -> sympy.Expr:
        """The number of samples a list ``h_1, ..., h_k`` names: its last index (a number or a symbol)."""
        last = indices[-1]
        if last.isdigit():
            return sympy.Integer(max(int(i) for i in indices if i.isdigit()))
        return self._count(last, item if isinstance(item, Token) else Token("X", last, start_pos=self.position(item)))

    def _product_measure(self, item) -> _SampleMeasure:
        """``\\prod_{i=1}^{k} q(h_i|x)`` as a measure: k importance samples of h."""
        token, density_tree = item.children
        d = self._density(density_tree)
        text = str(token)
        m = re.search(r"_\s*(\{\s*(?P<i>[a-zA-Z])\s*(=\s*1\s*)?\}|(?P<j>[a-zA-Z]))", text)
        um = re.search(r"\^\s*(\{(?P<braced>[^{}]*)\}|(?P<plain>[a-zA-Z0-9]))", text)
        index = (m.group("i") or m.group("j")) if m else None
        copies = [copy_of(str(t), self.model.samples) for t in d.targets]
        if index is None or len(copies) != 1 or copies[0] is None or copies[0][1] != index:
            raise self.error(f"a product measure runs over importance samples: expected \\prod_{{i=1}}^{{K}} "
                             f"q(h_i|x) with 'samples: h_i ~ q(h|x), i = 1..K' in the header, not {d}",
                             token.start_pos)
        variable = copies[0][0]
        upper = (um.group("braced") or um.group("plain")) if um else None
        count = self._count(upper, token) if upper else self.model.sample_sizes[variable]
        return self._samples_of(variable, Density(d.family, [variable], d.given, d.subscript), count,
                                token.start_pos)

    def _complete_measure(self, items: list, body, where: int):
        """A measure with its bare families given their variables: ``\\mathbb{E}_{q_\\phi}[f]`` integrates the latent
        variables ``f`` uses, given the observed ones their inference factors condition on; ``p_{\\mathcal D}``
        integrates the observed variables ``f`` uses; ``p_\\theta`` every variable ``f`` uses, under the generative
        joint (given its inputs). A pair ``q(z_j) q(z_{\\setminus j}|z_j)`` is ``q(z)``."""
        densities = []
        free = free_names(body, self.model.vectors, self.model.samples)
        for item in items:
            if not isinstance(item, _BareMeasure):
                densities.append(item)
                continue
            family, parts = item.family
            if family == "p_D":
                targets = [item.variable] if item.variable else [v for v in self.model.observed if v in free]
                if not targets:
                    raise self.error("the data distribution integrates no variable of the integrand; expected the "
                                     "observed variables it covers, e.g. \\mathbb{E}_{x \\sim p_{\\mathcal D}}",
                                     item.where)
                densities.append(Density("p_D", targets, ()))
            elif family == "q":
                targets = [item.variable] if item.variable else [v for v in self.model.latent if v in free]
                if not targets:
                    raise self.error("\\mathbb{E}_{q} with no latent variable in the integrand; expected "
                                     "q(z|x) with its variables", item.where)
                given = sorted({g for v in targets for g in self._encoder_inputs(v)} - set(targets))
                densities.append(Density("q", targets, given, parts))
            elif family == "p":
                inputs = {self.model.atom_to_group.get(a, a) for a in self.model.inputs}
                targets = [item.variable] if item.variable else \
                    [v for v in self.model.components if v in free and v not in inputs]
                if not targets:
                    raise self.error("\\mathbb{E}_{p} with no variable of the generative model in the integrand; "
                                     "expected p(z) with its variables", item.where)
                densities.append(Density("p", targets, sorted(inputs), parts))
            else:
                raise self.error(f"a measure '{family}' without arguments is read only for the families p and q and "
                                 f"the data distribution p_D; expected {family}(...) with its variables", item.where)
        densities = self._merge_rest(densities, where)
        for d in densities:
            if isinstance(d, Density):
                try:
                    self._check_density(d)
                except ModelError as error:
                    raise self.error(f"{error}; expected a density the model defines", where) from None
        bound: set[str] = set()
        for d in densities:
            if isinstance(d, _SampleMeasure):
                continue
            targets = self._atoms(d.targets, d)
            if targets & bound:
                raise self.error(f"the measure integrates {', '.join(sorted(targets & bound))} twice; expected each "
                                 "variable in one density of the measure", where)
            bound |= targets
        if any(isinstance(d, _SampleMeasure) for d in densities):
            if len(densities) != 1:
                raise self.error("importance samples are the whole measure of their expectation; expected "
                                 "\\mathbb{E}_{z_1, \\dots, z_K \\sim q(z|x)}[...] alone", where)
            return densities[0].product
        return densities[0] if len(densities) == 1 else sympy.Mul(*densities, evaluate=False)

    def _merge_rest(self, densities: list, where: int) -> list:
        """``F(z_j|G) F(z_{\\setminus j}|z_j, G)`` in a measure is ``F(z|G)`` (the chain rule over the components)."""
        rest = [d for d in densities if isinstance(d, Density) and any("\\" in str(t) for t in d.targets + d.given)]
        for d in rest:
            (target,) = d.targets if len(d.targets) == 1 else (None,)
            vector, _, index = str(target).partition("\\") if target is not None else ("", "", "")
            component = sympy.Symbol(f"{vector}_{index}")
            partner = next((e for e in densities if isinstance(e, Density) and e is not d and e.targets == (component,)
                            and e.family == d.family and e.subscript == d.subscript
                            and set(d.given) == set(e.given) | {component}), None)
            if not vector or partner is None:
                raise self.error(f"{d}: the other components z_{{\\setminus j}} are read only in a measure "
                                 f"F(z_j|...) F(z_{{\\setminus j}}|z_j, ...) (together the density of z); expected "
                                 "that pair", where)
            joint = Density(d.family, [sympy.Symbol(vector)], partner.given, d.subscript)
            densities = [joint if e is partner else e for e in densities if e is not d]
        return densities

    def _encoder_inputs(self, variable: str) -> set[str]:
        """The observed variables the inference factors of ``variable`` condition on (through other latents too)."""
        model = self.model
        if self.model.vectors and not self.model.generic:
            try:
                model = self._generic()
            except ModelError:
                pass
        atoms = set(model.components.get(variable, (variable,)))
        graph = model.q_graph
        ancestors = graph.ancestors(atoms) - atoms
        return {model.atom_to_group[a] for a in ancestors if a in model.observed_atoms}

    def _atoms(self, names, term) -> frozenset:
        renamed = [copy_of(str(n), self.model.samples)[0] if copy_of(str(n), self.model.samples) else str(n)
                   for n in names]
        try:
            return self.model._atoms_of(renamed, term)
        except ModelError:
            if not self.model.vectors or self.model.generic:
                raise
        return self._generic()._atoms_of(renamed, term)

    def _generic(self) -> Model:
        """The model with its vectors as one generic component and the others (for components written z_j); a
        model whose factors name particular components has none (ModelError)."""
        if not hasattr(self, "_generic_model"):
            try:
                self._generic_model = self.model.generic_model()
            except ModelError as error:
                self._generic_model = error
        if isinstance(self._generic_model, ModelError):
            raise self._generic_model
        return self._generic_model

    def _check_density(self, d) -> None:
        """Resolve a density against the model (in generic form for components written with a letter index, with
        importance samples read as their variable); raises ModelError."""
        self._check_expression(d)

    def _check_expression(self, expr) -> None:
        model = self.model.with_versions(self.model.versions_in(expr))
        names = variable_names(expr)
        particular = any(re.fullmatch(r"(?P<v>\w+?)_\d+", n) and re.fullmatch(r"(?P<v>\w+?)_\d+", n).group("v")
                         in self.model.vectors for n in names)
        if self.model.vectors and not particular and not model.generic:
            # the generic form gives every term the meaning it has for any number of components, at a cost that does
            # not grow with the number (a model of 512 components is checked as one of two); a model whose factors
            # name particular components has no generic form and is checked as it is
            try:
                model = self._generic() if model is self.model else model.generic_model()
            except ModelError:
                pass
        for variable in self.model.samples:
            expr = rename_copies(expr, variable)
        model.validate(expr)

    @staticmethod
    def _measure_expr(densities: list[Density]):
        return densities[0] if len(densities) == 1 else sympy.Mul(*densities, evaluate=False)

    def _expect_app(self, node):
        measure_tree, body_tree = self.trees(node)
        items = self._measure(measure_tree)
        return self._expectation(items, body_tree, self.position(measure_tree), list(self._drawn_primes))

    def _expectation(self, items: list, body_tree, where: int, primes: list[str] = ()):
        """``E_{items}[body]``: the body is read with the primed copies and importance samples the measure draws."""
        scope = next((item for item in items if isinstance(item, _SampleMeasure)), None)
        self._primes.extend(primes)
        if scope is not None:
            self._scopes.append(scope)
        try:
            body = self.build(body_tree)
        finally:
            del self._primes[len(self._primes) - len(primes):]
            if scope is not None:
                self._scopes.pop()
        self._note_unbracketed(body_tree, items, body)
        if scope is not None:
            scope = self._sum_index(scope, body)
            items = [scope if isinstance(item, _SampleMeasure) else item for item in items]
        measure = self._complete_measure(items, body, where)
        if scope is None:
            return self._hoisted(measure, body)
        return SampleCount(scope.count, Expectation(measure, body))

    def _hoisted(self, measure, body):
        """``E_M[f + c] = E_M[f] + c`` for the terms ``c`` of the body that hold an expectation and are free of the
        variables M integrates (``\\log F_\\beta`` with ``F_\\beta = \\int p(z)^\\beta dz`` inside
        ``E_{q(z|x)}[...]``): the nested expectation binds its own copy of z."""
        if isinstance(body, sympy.log) and isinstance(body.args[0], sympy.Mul):
            factors = body.args[0].args
            constant = [f for f in factors if isinstance(f, Expectation) or (isinstance(f, sympy.Pow) and isinstance(
                f.args[0], Expectation) and not _is_random(f.args[1]))]
            others = [f for f in factors if not any(f is c for c in constant)]
            if constant and others:
                rest = sympy.Mul(*others, evaluate=False) if len(others) > 1 else others[0]
                body = sympy.log(rest, evaluate=False) + sympy.Add(*[
                    sympy.log(c, evaluate=False) if isinstance(c, Expectation) else
                    c.args[1] * sympy.log(c.args[0], evaluate=False) for c in constant])
        bound = set()
        for d in measure_densities(measure) if not isinstance(measure, IndexedProduct) else []:
            bound |= {str(t) for t in d.targets}
        inner, outer = [], []
        for term in sympy.Add.make_args(body):
            free = free_names(term, self.model.vectors, self.model.samples)
            (outer if term.has(Expectation) and not (free & bound) else inner).append(term)
        if not outer or not inner:
            return Expectation(measure, body)
        return Expectation(measure, sympy.Add(*inner)) + sympy.Add(*outer)

    @staticmethod
    def _sum_index(scope: _SampleMeasure, body) -> _SampleMeasure:
        """The measure over the samples with the index of the sums over them in the body (``E_{prod_i q(h_i|x)}[\\log
        \\frac{1}{k} \\sum_i w_i]``: one index for the product and the sum)."""
        indices = {str(node.index) for node in sympy.preorder_traversal(body) if isinstance(node, IndexedSum)
                   and any(str(v) == f"{scope.variable}_{node.index}" for v in variable_names(node.body))}
        if len(indices) != 1:
            return scope
        index = indices.pop()
        d = scope.product.body
        if index == str(scope.product.index) or any(str(v).endswith("_" + index) for v in d.given):
            return scope
        product = IndexedProduct(index, Density(d.family, [sympy.Symbol(f"{scope.variable}_{index}")], d.given,
                                                d.subscript))
        return _SampleMeasure(product, scope.variable, scope.count, scope.where)

    def _note_unbracketed(self, body_tree, items, body) -> None:
        if isinstance(body_tree, Tree) and body_tree.data == "group":
            return
        bound = set()
        for item in items:
            if isinstance(item, Density):
                bound |= {str(v) for v in item.targets}
            elif isinstance(item, _BareMeasure) and item.variable:
                bound.add(item.variable)
        if not any(isinstance(item, _BareMeasure) and not item.variable for item in items):
            self._unbracketed.append((bound, self.position(body_tree)))

    def _expect_sub(self, node):
        """``\\mathbb{E}_q f``, ``\\mathbb{E}_{q_\\phi}[f]``, ``\\mathbb{E}_{x \\sim p_{\\mathcal D}}[f]``: a measure
        written as a subscript without arguments; ``\\mathbb{E}_{h_1, h_2}`` and
        ``\\mathbb{E}_{\\{\\theta_k\\}_{k=1}^{K}}``: importance samples named without their density."""
        token = node.children[1]
        body_tree = self.trees(node)[0]
        text = str(token).strip()[1:].strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        samples = self._named_samples(text, token)
        if samples is not None:
            return self._expectation([samples], body_tree, token.start_pos)
        m = re.fullmatch(r"\s*(?P<var>.+?)\s*\\sim\s*(?P<family>.+)", text)
        variable = None
        if m:
            variable = self._renamed(variable_name(m.group("var")))
            self._check_variable(variable, token.start_pos)
            text = m.group("family")
        fm = re.fullmatch(r"\s*(?P<letter>[a-z])\s*(?P<sub>_.*)?", _strip_fonts(text))
        if not fm:
            raise self.error(f"'\\mathbb{{E}}_{{{text}}}': expected a measure such as q(z|x), q_\\phi, "
                             "x \\sim p_{\\mathcal D}", token.start_pos)
        family = self._bare_family(fm.group("letter"), [fm.group("sub")] if fm.group("sub") else [])
        item = _BareMeasure(family, variable, token.start_pos)
        body = self.build(body_tree)
        self._note_unbracketed(body_tree, [item], body)
        return Expectation(self._complete_measure([item], body, token.start_pos), body)

    def _named_samples(self, text: str, token) -> _SampleMeasure | None:
        """``h_1, h_2`` / ``h_1, \\ldots, h_k`` / ``\\{\\theta_k\\}_{k=1}^{K}``: importance samples named without
        their density (the header's); None when the subscript is something else."""
        m = re.fullmatch(r"\s*\\\{\s*(?P<v>.+?)\s*\\\}\s*_\s*\{\s*(?P<i>[a-zA-Z])\s*=\s*1\s*\}\s*\^\s*"
                         r"(\{(?P<u>[^{}]*)\}|(?P<u2>\w))\s*", text)
        if m:
            copy = copy_of(self._renamed(variable_name(m.group("v"))), self.model.samples)
            if copy is None or copy[1] != m.group("i"):
                raise self.error(f"'\\{{{m.group('v')}\\}}': expected the importance samples of a variable of the "
                                 "header's samples: clause, such as \\{\\theta_k\\}_{k=1}^{K}", token.start_pos)
            variable = copy[0]
            return self._samples_of(variable, self.header.sample_densities.get(variable) or Density(
                "q", [variable], ()), self._count(m.group("u") or m.group("u2"), token), token.start_pos)
        names = [p.strip() for p in text.split(",")]
        if not self.model.samples or not names or any(not p for p in names):
            return None
        indices, variables = [], set()
        for name in names:
            if re.fullmatch(r"\\(ldots|dots|cdots)", name):
                continue
            copy = copy_of(self._renamed(variable_name(name)), self.model.samples)
            if copy is None:
                return None
            variables.add(copy[0])
            indices.append(copy[1])
        if len(variables) != 1 or not indices:
            return None
        variable = variables.pop()
        declared = self.header.sample_densities.get(variable)
        if declared is None:
            raise self.error(f"the samples of {variable} are named without their density; expected 'samples: "
                             f"{variable}_i ~ q({variable}|...), i = 1..K' in the header", token.start_pos)
        return self._samples_of(variable, declared, self._list_count(indices, token), token.start_pos)

    def _integral(self, node):
        has_differentials = any(isinstance(c, Token) and c.type == "DIFF" for c in node.children)
        inner = self.trees(node)[0]
        if not has_differentials and isinstance(inner, Tree) and inner.data in ("integral", "integral_first"):
            return self.build(inner)  # \int_a \int_z f da dz: the inner integral holds every differential
        layers: list[list] = []
        differentials: list[Token] = []
        current = node
        body_trees: list = []
        while True:
            differentials.extend(c for c in current.children if isinstance(c, Token) and c.type == "DIFF")
            product = self.trees(current)[0]
            factors = []
            while isinstance(product, Tree) and product.data == "mul":
                parts = self.trees(product)
                factors.append(parts[0])
                product = parts[1]
            factors.append(product)
            leading = []
            while factors and isinstance(factors[0], Tree) and factors[0].data == "density":
                leading.append(factors.pop(0))
            layers.append(leading)
            if len(factors) == 1 and isinstance(factors[0], Tree) and factors[0].data == "integral" and leading:
                current = factors[0]
                continue
            body_trees = factors
            break
        where = self.position(node)
        if not differentials:
            raise self.error("the integral has no differential; expected 'd\\mathbf{z}' (one per integrated variable) "
                             "at the end of the integrand", where)
        integrated: set[str] = set()
        for token in differentials:
            name = variable_name(_DIFFERENTIAL_D.sub("", str(token)))
            self._check_variable(name, token.start_pos)
            integrated |= set(self.model._atoms_of([name], name))
        measures: list[list[Density]] = []
        for depth, leading in enumerate(layers):
            densities = [self._density(t) for t in leading]
            innermost = depth == len(layers) - 1
            measure = []
            for k, d in enumerate(densities):
                if self.model._atoms_of(d.targets, d) <= integrated:
                    measure.append(d)
                else:
                    if not innermost:
                        raise self.error(f"{d} in front of a nested integral does not integrate a variable with a "
                                         "differential; expected a density of the integrated variables",
                                         self.position(leading[k]))
                    body_trees = leading[k:] + body_trees
                    break
            measures.append(measure)
        covered: set[str] = set()
        for measure in measures:
            for d in measure:
                covered |= set(self.model._atoms_of(d.targets, d))
        if not any(measures):
            if len(layers) == 1:
                names = {self.model.atom_to_group.get(a, a) for a in integrated}
                return self._integrate(names, list(body_trees), where, "the integral")
            raise self.error("the integral is not against a density of the integrated variables; expected "
                             "\\int q(z|x) f(z) dz", where)
        if covered != integrated:
            missing = sorted(integrated - covered)
            extra = sorted(covered - integrated)
            if missing:
                raise self.error(f"the differential d{missing[0]} has no density of {missing[0]} in front of the "
                                 f"integrand; expected one, e.g. \\int q({missing[0]}|x) ... d{missing[0]}", where)
            raise self.error(f"the density in front of the integrand integrates {extra[0]}, which has no differential; "
                             f"expected d{extra[0]} at the end", where)
        if not body_trees:
            raise self.error("the integral has no integrand after its density; expected e.g. "
                             "\\int q(z|x) \\log p(x|z) dz", where)
        body_values = [self.build(t) for t in body_trees]
        if any(_density_like(v) for v in body_values) and len(body_values) > 1:
            flat = []
            for v in body_values:
                flat.extend(_factors_of(v))
            body = sympy.Mul(*flat, evaluate=False)
        else:
            body = sympy.Mul(*body_values) if len(body_values) > 1 else body_values[0]
        for measure in reversed(measures):
            if measure:
                body = Expectation(self._measure_expr(measure), body)
        return body

    def _integral_first(self, node):
        """``\\int dy\\, dz\\, p(y, z) \\log f``: the differentials before the integrand."""
        differentials = [c for c in node.children if isinstance(c, Token) and c.type == "DIFF"]
        names = set()
        for token in differentials:
            name = self._renamed(variable_name(_DIFFERENTIAL_D.sub("", str(token))))
            self._check_variable(name, token.start_pos)
            if name in names:
                raise self.error(f"the differential d{name} appears twice; expected one per integrated variable",
                                 token.start_pos)
            names.add(name)
        return self._integrate(names, self._product_factors(self.trees(node)[0]), self.position(node),
                               "the integral")

    @staticmethod
    def _product_factors(product) -> list:
        factors = []
        while isinstance(product, Tree) and product.data == "mul":
            parts = LineReader.trees(product)
            factors.append(parts[0])
            product = parts[1]
        factors.append(product)
        return factors

    def _integrate(self, names: set[str], factor_trees: list, where: int, what: str):
        """An integral (or a sum over the values of a discrete variable) of a product over the variables ``names``:

        * against the densities of the integrated variables among the factors (anywhere in the product): the
          expectation under them, ``\\int dx\\, p(y|x) p(x|z) = E_{p(x|z)}[p(y|x)]``;
        * of a power of one such density, ``\\int p(z)^\\beta dz = E_{p(z)}[p(z)^{\\beta - 1}]``;
        * of a joint density alone, not against a density of the integrated variables: the marginal,
          ``\\int p(x, z) dz = p(x)``, ``\\sum_h p(x, h) = p(x)``."""
        values = []
        for tree in factor_trees:
            value = self.build(tree)
            values.extend(value.args if isinstance(value, sympy.Mul) and _density_like(value) else [value])
        atoms = frozenset()
        for name in names:
            atoms |= self._atoms([name], name)
        measure, rest = [], []
        for value in values:
            if isinstance(value, Density) and self._atoms(value.targets, value) <= atoms:
                measure.append(value)
            else:
                rest.append(value)
        covered = frozenset()
        for d in measure:
            covered |= self._atoms(d.targets, d)
        if not measure:
            powers = [v for v in values if isinstance(v, sympy.Pow) and isinstance(v.args[0], Density)
                      and not _is_random(v.args[1]) and self._atoms(v.args[0].targets, v.args[0]) == atoms]
            if powers:  # \int q^alpha p^(1-alpha) dz = E_q[q^(alpha-1) p^(1-alpha)]
                base, exponent = powers[0].args
                measure = [base]
                rest = [v for v in values if v is not powers[0]]
                if exponent != 1:
                    rest.append(sympy.Pow(base, exponent - 1, evaluate=False))
                covered = atoms
            else:
                marginal = self._marginal(values, atoms, where)
                if marginal is not None:
                    return marginal
                shown = ", ".join(sorted(names))
                raise self.error(f"{what} over {shown} is neither against a density of {shown} (a factor such as "
                                 f"q({sorted(names)[0]}|...)), nor of one joint density (a marginal); expected e.g. "
                                 f"\\int q(z|x) f(z) dz or \\int p(x, z) dz", where)
        if covered != atoms:
            missing = sorted({self.model.atom_to_group.get(a, a) for a in atoms - covered})
            raise self.error(f"{what} over {missing[0]} has no density of {missing[0]} among its factors; expected "
                             f"one, e.g. q({missing[0]}|...)", where)
        if not rest:
            raise self.error(f"{what} has no integrand besides its density; expected e.g. \\int q(z|x) \\log "
                             "p(x|z) dz", where)
        if any(_density_like(v) for v in rest) and len(rest) > 1:
            body = sympy.Mul(*rest, evaluate=False)
        else:
            body = sympy.Mul(*rest) if len(rest) > 1 else rest[0]
        for d in measure:
            try:
                self._check_density(d)
            except ModelError as error:
                raise self.error(f"{error}; expected a density the model defines", where) from None
        return Expectation(self._measure_expr(measure), body)

    def _marginal(self, values: list, atoms: frozenset, where: int):
        """The marginal of one joint density (or of a chain ``F(A|B) F(B)`` of one family) over ``atoms``."""
        if not values or not all(isinstance(v, Density) for v in values):
            return None
        densities = list(values)
        while len(densities) > 1:  # F(A|B,C) F(B|C) = F(A,B|C)
            for a in densities:
                b = next((b for b in densities if b is not a and b.family == a.family and b.subscript == a.subscript
                          and set(b.targets) <= set(a.given) and set(a.given) - set(b.targets) == set(b.given)),
                         None)
                if b is not None:
                    joint = Density(a.family, tuple(a.targets) + tuple(b.targets), b.given, a.subscript)
                    densities = [joint] + [d for d in densities if d is not a and d is not b]
                    break
            else:
                return None
        d = densities[0]
        names = {str(t) for t in d.targets}
        integrated = {n for n in names if self._atoms([n], d) <= atoms}
        if not integrated or self._atoms(sorted(integrated), d) != atoms or integrated == names:
            return None
        marginal = Density(d.family, [t for t in d.targets if str(t) not in integrated], d.given, d.subscript)
        try:
            self._check_density(marginal)
        except ModelError as error:
            raise self.error(f"{error}; expected a density the model defines", where) from None
        return marginal

    def _limit(self, node):
        """``\\lim_{\\alpha \\to a} f(\\alpha)``. Terms free of alpha keep their value; a term ``c(alpha) \\log
        E_M[W^{s(alpha)}]`` with ``s(a) = 0`` and ``c s -> L`` tends to ``L E_M[\\log W]`` (the derivative of
        ``\\log E[W^s]`` at ``s = 0`` is ``E[\\log W]``, for the finite tables and Gaussian instances of the semantics);
        anything else is an error."""
        token = node.children[0]
        m = re.fullmatch(r"\\lim\s*_\s*\{\s*(?P<var>.+?)\s*\\(to|rightarrow)\s*(?P<value>[^{}]+?)\s*\}", str(token))
        name = variable_name(m.group("var")) if m else ""
        if not m or name not in self.model.coefficient_symbols:
            raise self.error("expected a limit in a declared coefficient, such as \\lim_{\\alpha \\to 1}",
                             token.start_pos)
        symbol = self.model.coefficient_symbols[name]
        try:
            value = sympy.Rational(m.group("value").strip())
        except (TypeError, ValueError):
            raise self.error(f"the limit point '{m.group('value')}' is not a number; expected e.g. \\to 1",
                             token.start_pos) from None
        expr = self.build(self.trees(node)[0])
        total = sympy.Integer(0)
        for term in sympy.Add.make_args(sympy.expand(expr) if not _is_random(expr) else expr):
            coefficient = sympy.Mul(*[f for f in sympy.Mul.make_args(term) if not _is_random(f)])
            random = [f for f in sympy.Mul.make_args(term) if _is_random(f)]
            if not random:
                total += sympy.limit(term, symbol, value)
                continue
            part = sympy.Mul(*random, evaluate=False) if len(random) > 1 else random[0]
            if symbol not in part.free_symbols:
                total += sympy.limit(coefficient, symbol, value) * part
                continue
            inner = part.args[0] if isinstance(part, sympy.log) else None
            body = inner.body if isinstance(inner, Expectation) else None
            if isinstance(body, sympy.Pow) and symbol not in body.args[0].free_symbols and \
                    sympy.simplify(body.args[1].subs(symbol, value)) == 0:
                scale = sympy.limit(coefficient * body.args[1], symbol, value)
                if scale.is_finite:
                    total += scale * Expectation(inner.measure, sympy.log(body.args[0], evaluate=False))
                    continue
            raise self.error(f"the limit of {part} as {name} -> {value}: only terms free of {name} and terms "
                             f"c({name}) \\log E[W^s({name})] with s -> 0 are read; expected one of those",
                             token.start_pos)
        return total

    # densities and functions ----------------------------------------------------------------------
    def _args(self, node) -> tuple[list, list[str]]:
        """Items and separator kinds ('comma', 'bar', 'par', 'semi') of an argument list."""
        arglist = self.trees(node)[0]
        items, separators = [], []
        for child in arglist.children:
            if isinstance(child, Token) and child.type == "DOTS":
                items.append(child)
                continue
            if isinstance(child, Token):
                text = re.sub(r"\s+", "", str(child))
                if text == ",":
                    separators.append("comma")
                elif text in ("|", "\\mid"):
                    separators.append("bar")
                elif text in (";", ":"):
                    separators.append("semi")
                else:
                    separators.append("par")
            else:
                items.append(child)
        return items, separators

    def _variable(self, tree) -> str:
        # a data point x^{(i)} is a value of the variable x; two different data points in one expression are an error
        tokens = tree.children
        sup = [c for c in tokens if isinstance(c, Token) and c.type == "VARSUP"]
        if sup:
            raise self.error(f"'{''.join(str(c) for c in tokens)}': a superscript on a variable names a parameter "
                             "version (\\theta^{old}) where the parameters are written as arguments; expected "
                             "'parameters: theta' in the header, or a variable without superscript", sup[0].start_pos)
        primed = any(isinstance(c, Token) and c.type == "PRIME" for c in tokens)
        text = "".join(str(c) for c in tokens if not (isinstance(c, Token) and c.type in ("SAMPLE_INDEX", "PRIME")))
        name = self._renamed(variable_name(text), self.position(tree))
        if primed:
            if name not in self._primes:
                raise self.error(f"{name}' is a copy of {name} drawn by an enclosing measure; expected it inside "
                                 f"\\mathbb{{E}}_{{{name}' \\sim F({name}|...)}}[...]", self.position(tree))
            return name
        rest = re.fullmatch(r"(?P<v>\w+?)_setminus(?P<j>[A-Za-z])", name)
        if rest and rest.group("v") in self.model.vectors:
            return f"{rest.group('v')}\\{rest.group('j')}"  # z_{\setminus j}, the components other than z_j
        self._check_variable(name, self.position(tree))
        for token in tokens:
            if isinstance(token, Token) and token.type == "SAMPLE_INDEX":
                index = re.sub(r"[\s^{}()]", "", str(token))
                seen = getattr(self, "_sample_indices", {}).get(name)
                if seen is not None and seen[0] != index:
                    raise self.error(
                        f"{name}^{{({seen[0]})}} and {name}^{{({index})}} are two different data points in one "
                        f"expression, and the model declares one variable {name}; expected one data point per "
                        f"step (write the step for {name}^{{({seen[0]})}} alone)", token.start_pos)
                if hasattr(self, "_sample_indices"):
                    self._sample_indices.setdefault(name, (index, token.start_pos))
        return name

    def _renamed(self, name: str, where: int = 0) -> str:
        """A variable as the header says the text writes it: ``X`` for ``x`` (``capitals:``), ``x_n``/``z_n`` for the
        data point and its latent, ``n`` for the data variable (``datapoints: x_n, n = 1..N``)."""
        if name in self.header.capitals and name not in self.model.components:
            return self.header.capitals[name]
        points = self.header.datapoints
        if points is not None:
            if name == points.index:
                self._index_used = True
                return points.variable
            m = re.fullmatch(r"(?P<v>\w+?)_" + re.escape(points.index), name)
            if m and m.group("v") in self.model.vectors:
                raise self.error(f"{name}: the data point index {points.index} is also a component index of the "
                                 f"vector {m.group('v')}; expected {m.group('v')} (the latent of a data point) or "
                                 "another letter for the components", where)
            if m and m.group("v") in self.model.components:
                return m.group("v")
        return name

    def _check_variable(self, name: str, where: int) -> None:
        m = re.fullmatch(r"(?P<v>\w+?)_(?P<i>[A-Za-z]|\d+)", name)
        if m and m.group("v") in self.model.samples:
            return
        if m and m.group("v") in self.model.vectors and (m.group("i").isalpha() or self.model.generic):
            return
        if name not in self.model.components and name not in self.model.atom_to_group:
            declared = ", ".join(self.model.components)
            raise self.error(f"undeclared variable '{name}'; expected one of the model's variables ({declared}); "
                             "declare it in the header", where)

    def _parameter(self, tree) -> str | None:
        """A parameter set written as an argument (``p(X|\\theta)``, ``\\theta^{old}``) under ``parameters:``."""
        if not self.header.parameters or tree.data != "variable":
            return None
        text = "".join(str(c) for c in tree.children)
        parts = subscript_parts("_{" + re.sub(r"\^\s*\{\s*\\(text|mathrm|textrm)\s*\{([^{}]*)\}\s*\}|"
                                               r"\^\s*\\(text|mathrm|textrm)\s*\{([^{}]*)\}",
                                               lambda m: "^" + (m.group(2) or m.group(4)), text) + "}")
        if len(parts) != 1:
            return None
        base = re.sub(r"_(old|new|prev|star|t|\d+)$|'+$", "", parts[0])
        return parts[0] if base in self.header.parameters else None

    def _density(self, node, fill: tuple | None = None) -> Density:
        """A density term, its letter read as the header says (``letters:``, a factor's own letter, the data's name),
        parameters written as arguments moved to the subscript (``parameters:``); ``fill`` gives the targets of
        ``P(\\cdot|x)``."""
        letter = node.children[0]
        subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
        star = any(isinstance(c, Token) and c.type == "STAR" for c in node.children)
        parts = subscript_parts(str(subs[0])) if subs else []
        args_tree = self.trees(node)[-1]
        shown = f"{letter}{'^*' if star else ''}{str(subs[0]).strip() if subs else ''}(...)"
        items, separators = self._args(args_tree)
        targets, given, parameters = [], [], []
        side = targets
        self._index_used = False
        for k, item in enumerate(items):
            if k > 0:
                separator = separators[k - 1]
                if separator == "bar":
                    if side is not targets:
                        raise self.error(f"{shown}: a second '|'; expected ',' between conditioning variables",
                                         self.position(item))
                    side = given
                elif separator == "semi":  # p(x; theta): the parameters after ';'
                    if side is parameters:
                        raise self.error(f"{shown}: a second ';'; expected ',' between parameters", self.position(item))
                    side = parameters
                elif separator != "comma":
                    raise self.error(f"{shown}: unexpected separator in a density's arguments; expected ',' or '|'",
                                     self.position(item))
            if isinstance(item, Token):  # \dots between two components or samples
                side.append(item)
                continue
            if item.data == "placeholder":
                if fill is None or side is not targets:
                    raise self.error(f"{shown}: '\\cdot' stands for the variables of the density; expected it in a "
                                     "divergence between two densities of the same variables, such as "
                                     "D_{KL}(P(\\cdot|x) \\| Q(\\cdot|x))", self.position(item))
                side.extend(fill)
                continue
            if item.data != "variable":
                raise self.error(f"{shown}: the arguments of a density are variables; expected a variable such as "
                                 "\\mathbf{z}, not a density", self.position(item))
            if side is parameters:
                parameters.extend(subscript_parts("_{" + "".join(str(c) for c in item.children) + "}"))
                continue
            parameter = self._parameter(item) if side is given else None
            if parameter is not None:
                parameters.append(parameter)
                continue
            side.append(self._variable(item))
        if parameters:
            if parts:
                raise self.error(f"{shown}: parameters both as a subscript and after ';'; expected one of them",
                                 letter.start_pos)
            parts = parameters
        targets, given = self._dots(targets, shown, letter), self._dots(given, shown, letter)
        if not targets:
            raise self.error(f"{shown}: no variable before '|'; expected e.g. {letter}(z|x)", letter.start_pos)
        family, parts = self._family_for(str(letter), star, parts, targets, given, shown, letter.start_pos)
        d = Density(family, targets, given, parts)
        if any("\\" in str(v) for v in targets + given):
            if not getattr(self, "_in_measure", False):
                raise self.error(f"{d}: the other components z_{{\\setminus j}} are read only in a measure "
                                 f"F(z_j|...) F(z_{{\\setminus j}}|z_j, ...) (together the density of z); expected "
                                 "that pair", letter.start_pos)
            return d  # z_{\setminus j}: resolved with its partner in a measure (_merge_rest)
        try:
            self._check_density(d)
        except ModelError as error:
            raise self.error(f"{error}; expected a density the model defines", letter.start_pos) from None
        return d

    def _density_letter(self, letter: str) -> bool:
        """Whether an uppercase letter names densities in this file (``letters: P = p``, ``aux: Q(c|x)``)."""
        h = self.header
        return letter in h.letters or letter in h.factor_letters or letter in self.aux_families or \
            letter in h.renamed_auxiliary or (h.data_name or "").split("_")[0] == letter

    def _family_for(self, letter: str, star: bool, parts: list[str], targets, given, shown: str, where: int):
        """(family, subscript) of a density the text writes with ``letter`` (see :meth:`_density`)."""
        h = self.header
        key = letter + ("^*" if star else "") + ("_" + ",".join(parts) if parts else "")
        names = {str(v) for v in list(targets) + list(given)}
        if h.data_name and key == h.data_name:
            if names <= set(h.data_variables):
                return "p_D", []
            if star or letter not in ("p", "q"):
                raise self.error(f"{shown} is the data distribution over ({', '.join(h.data_variables)}); "
                                 f"{', '.join(sorted(names - set(h.data_variables)))} is not one of its variables",
                                 where)
        if self._index_used:  # the data point index n: p(n) = q(n) = 1/N, q(z|n) = q(z|x_n)
            if letter == "p" and not parts and not given and len(targets) == 1:
                return "p_D", []
            if letter != "q":
                raise self.error(f"{shown}: the data point index {h.datapoints.index} is the data variable of the "
                                 f"inference joint; expected p({h.datapoints.index}) (the data distribution) or "
                                 f"q(...|{h.datapoints.index})", where)
        if key in h.letters:
            return h.letters[key], []
        if letter in h.letters:
            return h.letters[letter], parts
        if letter in h.renamed_auxiliary and not parts:
            return h.renamed_auxiliary[letter], []
        if letter in h.factor_letters:
            factor = h.factor_letters[letter]
            if ({str(t) for t in targets}, {str(g) for g in given}) != \
                    ({str(t) for t in factor.targets}, {str(g) for g in factor.given}):
                raise self.error(f"{shown}: the letter {letter} names the factor {letter}("
                                 f"{', '.join(map(str, factor.targets))}"
                                 f"{' | ' + ', '.join(map(str, factor.given)) if factor.given else ''}) of the header; "
                                 f"expected that factor (other terms of its family are written with "
                                 f"{factor.family})", where)
            return factor.family, [str(s) for s in factor.subscript] if not parts else parts
        if star:
            raise self.error(f"undeclared density '{shown}'; expected a density of the model, or 'data: "
                             f"{letter}^*(...)' in the header if it is the data distribution", where)
        if letter == "p" and len(parts) == 1 and parts[0] in DATA_SUBSCRIPTS + ("data", "mathcal{D}", "D"):
            return "p_D", []
        if letter in ("p", "q", "p_D") or letter in self.aux_families:
            return letter, parts
        declared = ", ".join(["p", "q", "p_D"] + sorted(self.aux_families))
        hint = (f"declare it in the header, e.g. 'aux: {letter}(y|z)'" if letter == "r" else
                f"declare auxiliary densities in the header with 'aux: {letter}(...)'")
        raise self.error(f"undeclared density '{shown}'; expected a density of the model ({declared}); {hint}", where)

    def _dots(self, names: list, shown: str, letter) -> list:
        """``z_1, \\dots, z_J`` (all the components of a vector) is the vector ``z``."""
        if not any(isinstance(n, Token) for n in names):
            return names
        out = []
        for k, n in enumerate(names):
            if not isinstance(n, Token):
                continue
            before, after = (names[k - 1] if k else None), (names[k + 1] if k + 1 < len(names) else None)
            mb = re.fullmatch(r"(?P<v>\w+?)_1", str(before)) if isinstance(before, str) else None
            ma = re.fullmatch(r"(?P<v>\w+?)_(?P<last>\w+)", str(after)) if isinstance(after, str) else None
            if not (mb and ma and mb.group("v") == ma.group("v") and mb.group("v") in self.model.vectors
                    and ma.group("last") == str(self.model.vector_sizes[mb.group("v")])):
                raise self.error(f"{shown}: '\\dots' between {before} and {after}; expected all the components of a "
                                 "vector, v_1, \\dots, v_J (J its declared size)", n.start_pos)
        skip = set()
        for k, n in enumerate(names):
            if isinstance(n, Token):
                skip |= {k - 1, k, k + 1}
                out.append(re.fullmatch(r"(?P<v>\w+?)_1", str(names[k - 1])).group("v"))
        out = [n for k, n in enumerate(names) if k not in skip] + out
        return out

    def _two_densities(self, node, what: str):
        args = [c for c in node.children if isinstance(c, Tree) and c.data == "args"]
        if not args:
            raise self.error(f"{what} needs arguments; expected {what}(q(...) || p(...))", self.position(node))
        items, separators = self._args(args[0])
        if len(items) != 2 or separators[0] not in ("par", "comma") or \
                any(isinstance(i, Token) or i.data not in ("density", "density_product", "bigop") for i in items):
            raise self.error(f"expected {what}(q(...) || p(...)): two densities separated by '||'",
                             self.position(args[0]))
        fill = self._placeholder_fill(items)
        first, second = (self._density_or_product(i, fill) for i in items)
        try:
            if isinstance(first, Density) and isinstance(second, Density):
                kl = KL(first, second)
            else:  # a product of densities: KL(a || b c) = E_a[log a - log b c]
                if not isinstance(first, Density):
                    raise ModelError(f"{what}: the first argument must be one density, the measure of the divergence")
                kl = Expectation(first, sympy.log(first, evaluate=False) - sympy.log(second, evaluate=False))
                if isinstance(second, IndexedProduct):
                    covered = self._atoms([re.sub(r"_[A-Za-z]$", "", str(v)) for v in second.body.targets], second)
                else:
                    covered = self._atoms([v for d in sympy.Mul.make_args(second) for v in d.targets], second)
                if covered != self._atoms(first.targets, first):
                    raise ModelError(f"{what}({first} || {second}): the product covers "
                                     f"({', '.join(sorted(covered))}), not the variables of {first}")
            self._check_expression(kl)
        except (ModelError, ValueError) as error:
            raise self.error(f"{error}; expected two densities over the same variables", self.position(node)) from None
        return kl

    def _placeholder_fill(self, items) -> tuple | None:
        """The variables that ``\\cdot`` stands for in ``D(P(\\cdot|x) \\| Q(\\cdot|x))``: the targets of the other
        density, or of the auxiliary density of that letter."""
        def has_placeholder(item):
            return item.data == "density" and any(isinstance(t, Tree) and t.data == "placeholder"
                                                  for t in self.trees(self.trees(item)[-1])[0].children)
        holes = [i for i in items if has_placeholder(i)]
        if not holes:
            return None
        others = [i for i in items if i not in holes and i.data == "density"]
        if others:
            return tuple(self._density(others[0]).targets)
        for item in holes:
            letter = str(item.children[0])
            block = next((b for b in self.model.auxiliary_blocks.values() if b.label.split("(")[0] == letter), None)
            if block is not None:
                return tuple(sympy.Symbol(t) for t in block.targets)
        raise self.error("'\\cdot' in both densities: expected the variables in one of them, or an auxiliary "
                         "density of the header", self.position(holes[0]))

    def _density_or_product(self, item, fill=None):
        if item.data == "density":
            return self._density(item, fill)
        if item.data == "bigop":
            return self.build(item)
        return sympy.Mul(*[self._density(t) for t in self.trees(item)], evaluate=False)

    def _bare_letters(self, node) -> list[str] | None:
        """``KL(q \\| p)`` with bare letters (a name the text defines, as in PRML): the letters; else None."""
        args = [c for c in node.children if isinstance(c, Tree) and c.data == "args"]
        if not args:
            return None
        items, separators = self._args(args[0])
        if len(items) == 2 and separators and separators[0] in ("par", "comma") and \
                all(isinstance(i, Tree) and i.data == "variable" for i in items):
            return [variable_name("".join(str(c) for c in i.children)) for i in items]
        return None

    def _kl_app(self, node):
        if self._bare_letters(node) is not None:
            return self._name_reference(node)
        return self._two_densities(node, "KL")

    def _tc_app(self, node):
        items, _ = self._args(self.trees(node)[0])
        if len(items) != 1 or items[0].data != "density":
            raise self.error("expected TC(q(z)) with one density", self.position(node))
        tc = TotalCorrelation(self._density(items[0]))
        try:
            self._check_expression(tc)
        except ModelError as error:
            raise self.error(str(error), self.position(node)) from None
        return tc

    def _renyi_order(self, parts: list[str]):
        """The order alpha of Renyi's divergence ``D_\\alpha`` (a declared coefficient), or None."""
        if len(parts) == 1 and parts[0] in self.model.coefficient_symbols and parts[0] not in ("KL", "kl"):
            return self.model.coefficient_symbols[parts[0]]
        return None

    def _renyi(self, node, alpha):
        """``D_\\alpha[q \\| p] = \\frac{1}{\\alpha - 1} \\log \\int q^\\alpha p^{1 - \\alpha}
        = \\frac{1}{\\alpha - 1} \\log E_q[(p/q)^{1 - \\alpha}]`` (Renyi's divergence of order alpha != 1)."""
        rng = self.model.coefficient_ranges[str(alpha)]
        if rng.contains(1):
            raise self.error(f"Renyi's divergence D_{alpha} is defined for {alpha} != 1, and the header's range of "
                             f"{alpha} ({rng.describe(str(alpha))}) contains 1; expected a range without 1",
                             self.position(node))
        kl = self._two_densities(node, f"D_{alpha}")
        if not isinstance(kl, KL):
            raise self.error(f"D_{alpha}: expected two densities over the same variables", self.position(node))
        ratio = sympy.Mul(kl.second, sympy.Pow(kl.first, -1, evaluate=False), evaluate=False)
        power = sympy.Pow(ratio, 1 - alpha, evaluate=False)
        return sympy.log(Expectation(kl.first, power), evaluate=False) / (alpha - 1)

    def _upper_app(self, node):
        letter = str(node.children[0])
        subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
        parts = subscript_parts(str(subs[0])) if subs else []
        has_args = any(isinstance(c, Tree) and c.data == "args" for c in node.children)
        if has_args and self._density_letter(letter):
            return self._density(node)
        if letter == "D" and parts in (["KL"], ["kl"]):
            return self._two_densities(node, "D_{KL}")
        if letter == "D" and has_args and self._renyi_order(parts) is not None:
            return self._renyi(node, self._renyi_order(parts))
        if has_args and letter == "I":
            return self._mutual_information(node, parts)
        if has_args and letter == "H":
            return self._entropy(node, parts)
        if letter == "E" and has_args:
            raise self.error("an expectation needs its measure; expected \\mathbb{E}_{q(z|x)}[...]",
                             self.position(node))
        if letter == "D" and parts and has_args:
            raise self.error(f"unknown divergence 'D_{{{','.join(parts)}}}'; expected D_{{KL}}, or Renyi's D_\\alpha "
                             "with a declared coefficient", self.position(node))
        if not has_args and not parts and letter in self.model.coefficient_symbols:
            return self.model.coefficient_symbols[letter]  # a size or a count: K, N, J
        return self._name_reference(node)

    def _name_app(self, node):
        head = re.sub(r"[\\{}\s]|mathcal|mathscr|mathfrak", "", str(node.children[0]))  # "I", "H", "hatJ", ...
        has_args = any(isinstance(c, Tree) and c.data == "args" for c in node.children)
        if head in ("I", "H") and has_args:
            subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
            parts = subscript_parts(str(subs[0])) if subs else []
            return self._mutual_information(node, parts) if head == "I" else self._entropy(node, parts)
        return self._name_reference(node)

    def _mi_app(self, node):
        subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
        return self._mutual_information(node, subscript_parts(str(subs[0])) if subs else [])

    def _name_reference(self, node):
        key = self.name_of(node)
        if key in self.definitions:
            return self.definitions[key]
        family = self._family_member(key)
        if family is not None:
            return family
        defined = ", ".join(sorted(self.definitions)) or "none yet"
        raise self.error(f"undefined name '{key}'; expected a name defined by an earlier line 'NAME = ...' "
                         f"(defined: {defined}), or a density, \\log, \\mathbb{{E}}, D_{{KL}}", self.position(node))

    def defined_name(self, key: str | None) -> str | None:
        """The definition a name refers to: itself when defined, the family it belongs to (``L_k`` for ``L_{k+1}``),
        or None."""
        if key is None:
            return None
        if key in self.definitions:
            return key
        found = self._family_member(key, with_key=True)
        return found[0] if found is not None else None

    def _family_member(self, key: str | None, with_key: bool = False):
        """A name with a symbolic index is a family: ``L_k`` defined with the sample count ``k`` gives ``L_{k+1}`` and
        ``L_1``; ``L_\\alpha`` gives ``L_0`` (the definition with the index replaced)."""
        m = re.fullmatch(r"(?P<head>.+)_(?P<index>[^_]+)", key or "")
        if not m:
            return None
        symbols = self.model.coefficient_symbols
        for defined, value in self.definitions.items():
            dm = re.fullmatch(re.escape(m.group("head")) + r"_(?P<symbol>[A-Za-z]\w*)", defined)
            if not dm or dm.group("symbol") not in symbols:
                continue
            try:
                index = sympy.sympify(m.group("index"), locals=dict(symbols))
            except (sympy.SympifyError, SyntaxError, TypeError):
                return None
            if not index.free_symbols <= set(symbols.values()):
                return None
            member = value.xreplace({symbols[dm.group("symbol")]: index})
            return (defined, member) if with_key else member
        return None

    def _information_family(self, parts: list[str], what: str, node) -> str:
        """The joint an information term is under: its subscript names a family (``I_q``, ``I_p``), a parameter
        set of one (``I_\\phi``, ``I_{q_\\phi}``), a letter of the header (``I_e`` for the encoder ``e``); without
        subscript the inference joint, or the only family the file declares."""
        sub = "_".join(parts)
        if not sub:
            return self.header.single_family or "q"
        letters = {**{k: v for k, v in self.header.letters.items()},
                   **{k: d.family for k, d in self.header.factor_letters.items()}}
        if sub in letters:
            return letters[sub]
        first = sub.split("_")[0]
        if first in ("q", "p") and (len(parts) == 1 or first == sub):
            rest = sub[2:]
            if not rest or self._names_set(first, rest):
                return first
        for family in ("q", "p"):
            if self._names_set(family, sub):
                return family
        if sub in ("q", "phi", "q_phi") or sub.startswith("phi"):
            return "q"
        if sub in ("p", "theta", "p_theta") or sub.startswith("theta"):
            return "p"
        raise self.error(f"{what} under '{sub}'; expected I_q (or I_\\phi, the inference joint) or I_p "
                         "(I_\\theta, the generative joint)", self.position(node))

    def _names_set(self, family: str, subscript: str) -> bool:
        declared = self.model.parameter_sets.get(family, frozenset())
        return subscript in declared or any(s.startswith(subscript + "_") for s in declared)

    def _mutual_information(self, node, parts: list[str]):
        args = [c for c in node.children if isinstance(c, Tree) and c.data == "args"]
        if not args:
            raise self.error("mutual information needs arguments; expected I(x; z)", self.position(node))
        items, separators = self._args(args[0])
        groups: list[list] = [[]]
        kinds: list[str] = []
        for k, item in enumerate(items):
            if k > 0 and separators[k - 1] != "comma":
                kinds.append(separators[k - 1])
                groups.append([])
            if isinstance(item, Token) or item.data != "variable":
                raise self.error("the arguments of a mutual information are variables; expected I(x; z)",
                                 self.position(item))
            groups[-1].append(item)
        # I(Z, Y; theta): the parameters after ';' name the joint
        if len(groups) == 2 and kinds == ["semi"] and all(self._is_parameter_set(i) for i in groups[1]):
            parts = parts or [variable_name("".join(str(c) for c in groups[1][0].children))]
            groups, kinds = groups[:1], []
        family = self._information_family(parts, "mutual information", node)
        groups = [[self._variable(i) for i in g] for g in groups]
        if kinds == [] and len(groups[0]) == 2:
            groups, kinds = [[groups[0][0]], [groups[0][1]]], ["semi"]
        if kinds not in (["semi"], ["semi", "bar"]):
            raise self.error("expected I(x; z) or I(x; z | y): two sets of variables separated by ';'",
                             self.position(args[0]))
        mi = MutualInformation(groups[0], groups[1], groups[2] if len(groups) > 2 else (), family)
        try:
            self._check_expression(mi)
        except ModelError as error:
            raise self.error(str(error), self.position(node)) from None
        return mi

    def _is_parameter_set(self, item) -> bool:
        name = variable_name("".join(str(c) for c in item.children))
        return name not in self.model.components and any(
            self._names_set(f, name) for f in ("p", "q"))

    def _entropy(self, node, parts: list[str] | None = None):
        """``H(q(z|x))`` (a function of x), or the conditional entropy ``H(z|x)`` / ``H_q(z|x)`` of a joint, averaged
        over the conditioning variables: ``E_{F(x)}[H(F(z|x))]`` (the inference joint unless written ``H_p``, or the
        only family the file declares)."""
        args = [c for c in node.children if isinstance(c, Tree) and c.data == "args"]
        items, separators = self._args(args[0]) if args else ([], [])
        if len(items) == 1 and not isinstance(items[0], Token) and items[0].data == "density":
            return Entropy(self._density(items[0]))
        if not items or any(isinstance(i, Token) or i.data != "variable" for i in items):
            raise self.error("expected the entropy of a density, H(q(z|x)), or of variables, H(z|x)",
                             self.position(node))
        family = self._information_family(parts or [], "entropy", node)
        targets, given, side = [], [], None
        side = targets
        for k, item in enumerate(items):
            if k > 0 and separators[k - 1] == "bar":
                side = given
            side.append(self._variable(item))
        conditional = Density(family, targets, given)
        entropy = Entropy(conditional)
        value = Expectation(Density(family, given, ()), entropy) if given else entropy
        try:
            self._check_expression(value)
        except ModelError as error:
            raise self.error(f"{error}; expected variables of the {family} joint", self.position(node)) from None
        return value

    def _entropy_app(self, node):
        subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
        return self._entropy(node, subscript_parts(str(subs[0])) if subs else [])
