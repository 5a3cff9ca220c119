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
from ..samples import copy_of, rename_copies
from .document import LatexError, LogicalLine, Source
from .grammar import GREEK_NAMES, UNICODE_GREEK, describe_expected, parser

__all__ = ["LineReader", "Built"]

KNOWN_COMMANDS = set(GREEK_NAMES) | set(
    "log ln frac dfrac tfrac mathbb mathcal mathscr mathfrak mathbf boldsymbol bm mathbfit vec mathit mathrm mathsf "
    "textbf text textrm textit operatorname mathop E int iint iiint oint left right bigl bigr Bigl Bigr biggl biggr "
    "Biggl Biggr big Big bigg Bigg middle quad qquad displaystyle textstyle limits nolimits nonumber notag hspace "
    "vspace hskip hfill cdot times sim geq ge geqslant leq le leqslant overset stackrel coloneqq triangleq equiv "
    "eqqcolon hat tilde bar widehat widetilde overline underbrace overbrace parallel Vert mid approx simeq propto "
    "neq ne cong doteq gg ll geqq leqq gtrsim lesssim sum prod dots ldots cdots dotsc".split()
)
UNSUPPORTED_COMMANDS = {
    "max": "optimization objectives (\\max, \\min) cannot be checked; write the objective itself",
    "min": "optimization objectives (\\max, \\min) cannot be checked; write the objective itself",
    "arg": "optimization objectives (\\arg\\max) cannot be checked; write the objective itself",
    "argmax": "optimization objectives cannot be checked; write the objective itself",
    "argmin": "optimization objectives cannot be checked; write the objective itself",
    "nabla": "gradients cannot be checked; write the objective itself",
    "partial": "derivatives cannot be checked; write the objective itself",
    "lim": "limits cannot be checked",
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
class ReadLine:
    leading: tuple[str, int] | None  # (relation, index)
    trees: list  # expression trees
    relations: list[tuple[str, int]]  # between consecutive trees


# ------------------------------------------------------------------------------------------------ the reader


class LineReader:
    """Parses one logical line and turns its trees into engine objects, checking every name against the model."""

    def __init__(self, source: Source, line: LogicalLine, model: Model, definitions: dict[str, sympy.Expr]):
        self.source = source
        self.line = line
        self.model = model
        self.definitions = definitions
        self.aux_families = {re.match(r"[A-Za-z]+", spec).group(0) for spec in model.auxiliary}
        self._unbracketed: list[tuple[set, int]] = []  # (variables bound, position) of E's without brackets
        self._indices: list[str] = []  # indices of the enclosing sums and products

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
        """The key of a bare name (``\\mathcal{L}_{\\theta,\\phi}(x)`` -> ``L_theta_phi``), or None."""
        if not isinstance(tree, Tree) or tree.data not in ("upper_app", "name_app"):
            return None
        head = tree.children[0]
        if tree.data == "upper_app":
            letter = str(head)
            subs = [c for c in tree.children[1:] if isinstance(c, Token) and c.type == "SUB"]
            parts = subscript_parts(str(subs[0])) if subs else []
            if letter in FUNCTION_LETTERS or (letter == "D" and parts in (["KL"], ["kl"])):
                return None
        else:
            text = str(head)
            accent = re.match(r"\\(hat|tilde|bar|widehat|widetilde|overline)", text)
            letter = (accent.group(1) if accent else "") + re.findall(r"[A-Z]", text)[-1]
            if letter in ("I", "H"):
                return None
            subs = [c for c in tree.children[1:] if isinstance(c, Token) and c.type == "SUB"]
            parts = subscript_parts(str(subs[0])) if subs else []
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
        token = node.children[0]
        text = str(token)
        kind = "sum" if text.lstrip("\\").startswith("sum") else "prod"
        m = re.search(r"_\s*(\{(?P<braced>[^{}]*)\}|(?P<letter>[a-zA-Z]))", text)
        if not m:
            raise self.error(f"\\{kind} without an index; expected \\{kind}_{{j=1}}^{{J}} or \\{kind}_j",
                             token.start_pos)
        lower = (m.group("braced") if m.group("braced") is not None else m.group("letter")).strip()
        lm = re.fullmatch(r"(?P<index>[a-zA-Z])\s*(=\s*(?P<start>[^{}]+))?", lower)
        if not lm:
            raise self.error(f"\\{kind}_{{{lower}}}: expected an index such as j or j=1", token.start_pos)
        index = lm.group("index")
        if lm.group("start") is not None and lm.group("start").strip() != "1":
            raise self.error(f"\\{kind} from {lm.group('start').strip()}: a sum over components or samples runs "
                             f"over all of them; expected {index}=1", token.start_pos)
        um = re.search(r"\^\s*(\{(?P<braced>[^{}]*)\}|(?P<plain>[a-zA-Z0-9]|\\[a-zA-Z]+))", text[m.end():])
        upper = None
        if um:
            upper = (um.group("braced") if um.group("braced") is not None else um.group("plain")).strip()
        self._indices.append(index)
        try:
            body = self.build(self.trees(node)[0])
        finally:
            self._indices.pop()
        over = self._indexed_over(body, index, token)
        if upper is not None:
            size = self._size_of(over)
            written = variable_name(upper)
            if str(size) != written:
                raise self.error(f"\\{kind}_{{{index}=1}}^{{{upper}}}: {over[0]} has {size} "
                                 f"{'components' if over[1] == 'vector' else 'samples'}, not {upper}; expected the "
                                 f"sum over all of them (^{{{size}}})", token.start_pos)
        if kind == "prod":
            if not _density_like(body):
                raise self.error("\\prod_j takes densities; expected e.g. \\prod_j q(z_j|x)", token.start_pos)
            return IndexedProduct(index, body)
        return IndexedSum(index, body)

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
        self._check_log_argument(argument, self.position(argument_tree))
        return sympy.log(argument, evaluate=False)

    def _check_log_argument(self, expr, where: int) -> None:
        def ok(e) -> bool:
            if isinstance(e, (Density, Expectation, IndexedProduct)):
                return True
            if isinstance(e, IndexedSum):  # log sum_k w_k over importance samples
                return ok(e.body)
            if isinstance(e, sympy.Pow):
                return ok(e.args[0]) and not _is_random(e.args[1])
            if isinstance(e, sympy.Mul):
                return all(ok(a) for a in e.args)
            if not _is_random(e) and not (e.is_number and e.is_positive):
                raise self.error(f"'{e}' inside \\log: a factor without densities must be a positive number; "
                                 "expected densities (write coefficients outside the \\log)", where)
            return not _is_random(e)

        if not ok(expr):
            raise self.error("\\log takes a density, a product or ratio of densities, or an expectation; expected "
                             "brackets around anything else, or a relation between two expressions", where)

    def _measure(self, node) -> list:
        """The measure's items: densities, and bare families (``q_\\phi``, ``x \\sim p_{\\mathcal D}``) whose
        variables the body decides (:meth:`_complete_measure`), or a product over importance samples."""
        out = []
        for item in node.children:
            if isinstance(item, Tree) and item.data == "density":
                out.append(self._density(item))
            elif isinstance(item, Tree) and item.data == "sampled":
                variable_tree, _, density_tree = item.children
                d = self._density(density_tree)
                name = self._variable(variable_tree)
                if name not in {str(t) for t in d.targets}:
                    raise self.error(f"'{name} \\sim {d}': the sampled variable must be a target of the density",
                                     self.position(item))
                out.append(d)
            elif isinstance(item, Tree) and item.data == "bare_measure":
                out.append(_BareMeasure(self._family_token(item.children[0], item.children[1:]), None,
                                        self.position(item)))
            elif isinstance(item, Tree) and item.data == "sampled_bare":
                variable_tree, _, letter, *subs = item.children
                out.append(_BareMeasure(self._family_token(letter, subs), self._variable(variable_tree),
                                        self.position(item)))
            elif isinstance(item, Tree) and item.data == "sampled_list":
                out.append(self._sample_measure(item))
        if not out:
            raise self.error("expected a density as the measure of the expectation, e.g. \\mathbb{E}_{q(z|x)}",
                             self.position(node))
        return out

    def _family_token(self, letter, subs) -> tuple[str, list[str]]:
        parts = subscript_parts(str(subs[0])) if subs else []
        family = str(letter)
        if family == "p" and len(parts) == 1 and parts[0] in DATA_SUBSCRIPTS + ("data", "mathcal{D}", "D"):
            return "p_D", []
        return family, parts

    def _sample_measure(self, item) -> IndexedProduct:
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
        if [str(t) for t in d.targets] != [variable]:
            raise self.error(f"the samples {names[0]}, ... are samples of {variable}; expected a density of "
                             f"{variable} after \\sim", self.position(density_tree))
        index = next(i for i in "kmnlrs" if not any(str(v).endswith("_" + i) for v in d.given))
        return IndexedProduct(index, Density(d.family, [sympy.Symbol(f"{variable}_{index}")], d.given, d.subscript))

    def _complete_measure(self, items: list, body, where: int):
        """A measure with its bare families given their variables: ``\\mathbb{E}_{q_\\phi}[f]`` integrates the latent
        variables ``f`` uses, given the observed ones their inference factors condition on; ``p_{\\mathcal D}``
        integrates the observed variables ``f`` uses."""
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
                    raise self.error(f"\\mathbb{{E}}_{{q}} with no latent variable in the integrand; expected "
                                     f"q(z|x) with its variables", item.where)
                given = sorted({g for v in targets for g in self._encoder_inputs(v)} - set(targets))
                densities.append(Density("q", targets, given, parts))
            else:
                raise self.error(f"a measure '{family}' without arguments is read only for the encoder q and the data "
                                 f"distribution p_D; expected {family}(...) with its variables", item.where)
        for d in densities:
            if isinstance(d, Density):
                try:
                    self._check_density(d)
                except ModelError as error:
                    raise self.error(f"{error}; expected a density the model defines", where) from None
        bound: set[str] = set()
        for d in densities:
            if isinstance(d, IndexedProduct):
                continue
            targets = self._atoms(d.targets, d)
            if targets & bound:
                raise self.error(f"the measure integrates {', '.join(sorted(targets & bound))} twice; expected each "
                                 "variable in one density of the measure", where)
            bound |= targets
        if any(isinstance(d, IndexedProduct) for d in densities):
            if len(densities) != 1:
                raise self.error("importance samples are the whole measure of their expectation; expected "
                                 "\\mathbb{E}_{z_1, \\dots, z_K \\sim q(z|x)}[...] alone", where)
            return densities[0]
        return densities[0] if len(densities) == 1 else sympy.Mul(*densities, evaluate=False)

    _generic_cache: dict = {}

    def _generic(self, model):
        key = id(model)
        if key not in LineReader._generic_cache or LineReader._generic_cache[key][0] is not model:
            LineReader._generic_cache = {key: (model, model.generic_model())}
        return LineReader._generic_cache[key][1]

    def _encoder_inputs(self, variable: str) -> set[str]:
        """The observed variables the inference factors of ``variable`` condition on (through other latents too)."""
        model = self.model.generic_model() if self.model.vectors else self.model
        atoms = set(model.components.get(variable, (variable,)))
        graph = model.q_graph
        ancestors = graph.ancestors(atoms) - atoms
        return {model.atom_to_group[a] for a in ancestors if a in model.observed_atoms}

    def _atoms(self, names, term) -> frozenset:
        model = self.model.generic_model() if self.model.vectors else self.model
        renamed = [copy_of(str(n), self.model.samples)[0] if copy_of(str(n), self.model.samples) else str(n)
                   for n in names]
        try:
            return self.model._atoms_of(renamed, term)
        except ModelError:
            return model._atoms_of(renamed, term)

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
            # not grow with the number (a model of 512 components is checked as one of two)
            model = self._generic(model)
        for variable in self.model.samples:
            expr = rename_copies(expr, variable)
        model.validate(expr)

    @staticmethod
    def _measure_expr(densities: list[Density]):
        return densities[0] if len(densities) == 1 else sympy.Mul(*densities, evaluate=False)

    def _expect_app(self, node):
        measure_tree, body_tree = self.trees(node)
        items = self._measure(measure_tree)
        body = self.build(body_tree)
        self._note_unbracketed(body_tree, items, body)
        return Expectation(self._complete_measure(items, body, self.position(measure_tree)), body)

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
        written as a subscript without arguments."""
        token = node.children[1]
        body_tree = self.trees(node)[0]
        text = str(token).strip()[1:].strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        m = re.fullmatch(r"\s*(?P<var>.+?)\s*\\sim\s*(?P<family>.+)", text)
        variable = None
        if m:
            variable = variable_name(m.group("var"))
            self._check_variable(variable, token.start_pos)
            text = m.group("family")
        fm = re.fullmatch(r"\s*(?P<letter>[a-z])\s*(?P<sub>_.*)?", _strip_fonts(text))
        if not fm:
            raise self.error(f"'\\mathbb{{E}}_{{{text}}}': expected a measure such as q(z|x), q_\\phi, "
                             "x \\sim p_{\\mathcal D}", token.start_pos)
        family = self._family_token(fm.group("letter"), [fm.group("sub")] if fm.group("sub") else [])
        item = _BareMeasure(family, variable, token.start_pos)
        body = self.build(body_tree)
        self._note_unbracketed(body_tree, [item], body)
        return Expectation(self._complete_measure([item], body, token.start_pos), body)

    def _integral(self, node):
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
            marginal = self._marginal_integral(layers, body_trees, integrated, where)
            if marginal is not None:
                return marginal
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

    def _marginal_integral(self, layers, body_trees, integrated: set, where: int):
        """``\\int p(x, z) dz`` integrates a joint density over some of its targets: the marginal ``p(x)``."""
        trees = list(body_trees) if len(layers) == 1 else []
        if len(trees) != 1 or not isinstance(trees[0], Tree) or trees[0].data != "density":
            return None
        d = self._density(trees[0])
        names = {str(t) for t in d.targets}
        integrated_names = {n for n in names if self._atoms([n], d) <= integrated}
        if self._atoms(list(integrated_names), d) != frozenset(integrated) or integrated_names == names:
            return None
        marginal = Density(d.family, [t for t in d.targets if str(t) not in integrated_names], d.given, d.subscript)
        try:
            self._check_density(marginal)
        except ModelError as error:
            raise self.error(f"{error}; expected a density the model defines", where) from None
        return marginal

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
        text = "".join(str(c) for c in tree.children if not (isinstance(c, Token) and c.type == "SAMPLE_INDEX"))
        name = variable_name(text)
        self._check_variable(name, self.position(tree))
        for token in tree.children:
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

    def _density(self, node) -> Density:
        letter = node.children[0]
        subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
        parts = subscript_parts(str(subs[0])) if subs else []
        family = str(letter)
        args_tree = self.trees(node)[-1]
        shown = f"{family}{str(subs[0]).strip() if subs else ''}(...)"
        if family == "p" and len(parts) == 1 and parts[0] in DATA_SUBSCRIPTS + ("data", "mathcal{D}", "D"):
            family, parts = "p_D", []
        if family not in ("p", "q", "p_D") and family not in self.aux_families:
            declared = ", ".join(["p", "q", "p_D"] + sorted(self.aux_families))
            hint = (f"declare it in the header, e.g. 'aux: {family}(y|z)'" if family == "r" else
                    f"declare auxiliary densities in the header with 'aux: {family}(...)'")
            raise self.error(f"undeclared density '{shown}'; expected a density of the model ({declared}); {hint}",
                             letter.start_pos)
        items, separators = self._args(args_tree)
        targets, given, parameters = [], [], []
        side = targets
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
            if item.data != "variable":
                raise self.error(f"{shown}: the arguments of a density are variables; expected a variable such as "
                                 "\\mathbf{z}, not a density", self.position(item))
            if side is parameters:
                parameters.extend(subscript_parts("_{" + "".join(str(c) for c in item.children) + "}"))
                continue
            side.append(self._variable(item))
        if parameters:
            if parts:
                raise self.error(f"{shown}: parameters both as a subscript and after ';'; expected one of them",
                                 letter.start_pos)
            parts = parameters
        targets, given = self._dots(targets, shown, letter), self._dots(given, shown, letter)
        if not targets:
            raise self.error(f"{shown}: no variable before '|'; expected e.g. {family}(z|x)", letter.start_pos)
        d = Density(family, targets, given, parts)
        try:
            self._check_density(d)
        except ModelError as error:
            raise self.error(f"{error}; expected a density the model defines", letter.start_pos) from None
        return d

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
        first, second = (self._density_or_product(i) for i in items)
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

    def _density_or_product(self, item):
        if item.data == "density":
            return self._density(item)
        if item.data == "bigop":
            return self.build(item)
        return sympy.Mul(*[self._density(t) for t in self.trees(item)], evaluate=False)

    def _kl_app(self, node):
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

    def _upper_app(self, node):
        letter = str(node.children[0])
        subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
        parts = subscript_parts(str(subs[0])) if subs else []
        if letter == "D" and parts in (["KL"], ["kl"]):
            return self._two_densities(node, "D_{KL}")
        if letter == "I":
            return self._mutual_information(node, parts)
        if letter == "H":
            return self._entropy(node, parts)
        if letter == "E":
            raise self.error("an expectation needs its measure; expected \\mathbb{E}_{q(z|x)}[...]",
                             self.position(node))
        if letter == "D" and parts:
            raise self.error(f"unknown divergence 'D_{{{','.join(parts)}}}'; expected D_{{KL}}", self.position(node))
        return self._name_reference(node)

    def _name_app(self, node):
        head = re.sub(r"[\\{}\s]|mathcal|mathscr|mathfrak", "", str(node.children[0]))  # "I", "H", "hatJ", ...
        if head == "I":
            subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
            return self._mutual_information(node, subscript_parts(str(subs[0])) if subs else [])
        if head == "H":
            subs = [c for c in node.children[1:] if isinstance(c, Token) and c.type == "SUB"]
            return self._entropy(node, subscript_parts(str(subs[0])) if subs else [])
        return self._name_reference(node)

    def _name_reference(self, node):
        key = self.name_of(node)
        if key in self.definitions:
            return self.definitions[key]
        defined = ", ".join(sorted(self.definitions)) or "none yet"
        raise self.error(f"undefined name '{key}'; expected a name defined by an earlier line 'NAME = ...' "
                         f"(defined: {defined}), or a density, \\log, \\mathbb{{E}}, D_{{KL}}", self.position(node))

    def _mutual_information(self, node, parts: list[str]):
        args = [c for c in node.children if isinstance(c, Tree) and c.data == "args"]
        if not args:
            raise self.error("mutual information needs arguments; expected I(x; z)", self.position(node))
        sub = "_".join(parts)
        if sub in ("", "q", "phi", "q_phi") or sub.startswith("phi"):
            family = "q"
        elif sub in ("p", "theta", "p_theta") or sub.startswith("theta"):
            family = "p"
        else:
            raise self.error(f"mutual information under '{sub}'; expected I_q (or I_\\phi, the inference joint) or "
                             "I_p (I_\\theta, the generative joint)", self.position(node))
        items, separators = self._args(args[0])
        groups: list[list[str]] = [[]]
        kinds: list[str] = []
        for k, item in enumerate(items):
            if k > 0 and separators[k - 1] != "comma":
                kinds.append(separators[k - 1])
                groups.append([])
            if item.data != "variable":
                raise self.error("the arguments of a mutual information are variables; expected I(x; z)",
                                 self.position(item))
            groups[-1].append(self._variable(item))
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

    def _entropy(self, node, parts: list[str] | None = None):
        """``H(q(z|x))`` (a function of x), or the conditional entropy ``H(z|x)`` / ``H_q(z|x)`` of a joint, averaged
        over the conditioning variables: ``E_{F(x)}[H(F(z|x))]`` (``q`` unless written ``H_p``)."""
        args = [c for c in node.children if isinstance(c, Tree) and c.data == "args"]
        items, separators = self._args(args[0]) if args else ([], [])
        if len(items) == 1 and not isinstance(items[0], Token) and items[0].data == "density":
            return Entropy(self._density(items[0]))
        if not items or any(isinstance(i, Token) or i.data != "variable" for i in items):
            raise self.error("expected the entropy of a density, H(q(z|x)), or of variables, H(z|x)",
                             self.position(node))
        sub = "_".join(parts or [])
        if sub in ("", "q", "phi", "q_phi") or sub.startswith("phi"):
            family = "q"
        elif sub in ("p", "theta", "p_theta") or sub.startswith("theta"):
            family = "p"
        else:
            raise self.error(f"entropy under '{sub}'; expected H_q (the inference joint) or H_p (the generative joint)",
                             self.position(node))
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