"""The LaTeX grammar of derivation lines (lark, LALR) and the friendly names of its terminals.

One *logical line* of a derivation (``&= \\iint q_\\phi(z_l, z_u|x) \\log ... dz_l dz_u``, with the alignment ``&``,
the row breaks ``\\\\`` and the tags already removed by :mod:`.document`) is parsed by :data:`GRAMMAR` into a
lark tree; :class:`.latex.LineReader` turns the tree into engine objects.

Conventions the grammar encodes:

* a lowercase letter followed by an argument list is a density (``p_\\theta(x|z)``, ``q(z_l, z_u | x)``): ``p(x)`` is
  never ``p * x``; bare lowercase letters appear only inside argument lists (variables) and in differentials;
* ``\\log`` and an expectation without brackets take the rest of the juxtaposed product
  (``\\log p(x) q(z)`` is ``\\log (p(x) q(z))``; ``\\mathbb{E}_{p(x)} D_{KL}(...) - ...`` stops at the ``-``);
* an integral runs to its differentials (``\\iint q(z_l, z_u|x) \\log f \\, d\\mathbf{z}_l d\\mathbf{z}_u``);
* unknown commands parse as ``unknown_command`` so that the reader can name them.
"""

from __future__ import annotations

import functools

from lark import Lark

GREEK_NAMES = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi varpi rho varrho "
    "sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega ell"
).split()

#: Unicode Greek letters pasted into math, and the names they stand for.
UNICODE_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon", "ζ": "zeta", "η": "eta",
    "θ": "theta", "ϑ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi", "π": "pi",
    "ρ": "rho", "σ": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi", "ϕ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
}

_GREEK_RE = "|".join(sorted(GREEK_NAMES, key=len, reverse=True))
_UNICODE_RE = "".join(UNICODE_GREEK)
_NOT_LETTER = r"(?![a-zA-Z])"
# a braced group with up to two nested levels of braces, no parentheses (so that _{q(z|x)} is not one token)
_BRACED = r"\{(?:[^{}()]|\{(?:[^{}()]|\{[^{}()]*\})*\})*\}"
_BRACED_ANY = r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}"
_BOLD = r"\\(?:mathbf|boldsymbol|bm|mathbfit|vec|mathit|mathrm|mathsf|textbf)"

GRAMMAR = r"""
start: line

line: rel? expr (rel expr)*

rel: EQ | GEQ | LEQ | OVERSET_REL | EQ_SUB | DEFEQ | BADREL | IMPLIES

?expr: sum
?sum: signed
    | sum PLUS product    -> add
    | sum MINUS product   -> sub
    | sum signed_brace    -> add
?signed: product
    | MINUS product       -> neg
    | PLUS product        -> pos
    | signed_brace
// \underbrace{- E[...]}_{\text{const}}: a braced term that carries its own sign is a term of the sum
signed_brace: SIGNED_BRACE expr RBRACE UNDER_LABEL?

?product: power
    | power product       -> mul
    | power CDOT product  -> mul
    | power SLASH product -> div
    | log_app
    | expect_app
    | integral
    | bigop
    | limit

log_app: LOG product
expect_app: EXPECT "_" "{" measure "}" product
    | EXPECT SUB product                  -> expect_sub
    | UPPER "_" "{" measure "}" product   -> bare_expect_app
integral: INT SUB? product DIFF*
    | INT SUB? DIFF+ product      -> integral_first
// \lim_{\alpha \to 1} f
limit: LIM product
// \sum_{j=1}^{J} f, \prod_j q(z_j|x): over the components of a vector, or over importance samples
bigop: BIGOP product

measure: measure_item+
    | sampled_pair (SEP sampled_pair)+   -> measure_pairs
sampled_pair: variable SIM (density | upper_density)
?measure_item: density
    | upper_density
    | LOWER SUB?                    -> bare_measure
    | variable SIM LOWER SUB?       -> sampled_bare
    | variable SEP sample_rest SIM (density | upper_density) -> sampled_list
    | sampled_pair  -> sampled
    | BIGOP density         -> measure_product
    | CDOT                  -> measure_dot

?power: atom
    | atom "^" "{" expr "}"   -> pow
    | atom SUPSIMPLE          -> pow_simple

?atom: NUMBER               -> number
    | GREEK SUB?            -> coefficient
    | group
    | frac
    | density
    | upper_app
    | name_app
    | kl_app
    | tc_app
    | entropy_app
    | CONST                 -> const_term
    | underbrace
    | LOWER                 -> letter
    | mi_app
    | CMD                   -> unknown_command

group: LPAR expr RPAR
    | LSQB expr RSQB
    | LBRACE_ESC expr RBRACE_ESC
    | LBRACE expr RBRACE

frac: FRAC LBRACE expr RBRACE LBRACE expr RBRACE

underbrace: BRACE_CMD LBRACE expr RBRACE UNDER_LABEL?

density: LOWER SUB? STAR? args
upper_density: UPPER SUB? args -> density
upper_app: UPPER SUB? args?
name_app: (NAME_HEAD | NAME_WORD) SUB? args?
mi_app: MINF SUB? args
kl_app: KL_WORD SUB? args
tc_app: TC_WORD args

args: LPAR arglist RPAR
    | LSQB arglist RSQB
arglist: arg (SEP arg)*
?arg: variable | density | upper_density | DOTS | density_product | bigop
    | CDOT                  -> placeholder
density_product: density density+
sample_rest: (variable | DOTS) (SEP (variable | DOTS))*
entropy_app: HENT SUB? args
variable: (LOWER | UPPER | GREEK | BOLDVAR | NAME_HEAD) SUB? VARSUP? PRIME? SAMPLE_INDEX?

// ------------------------------------------------------------------------------------------------ terminals
EQ.2: "="
EQ_SUB.3: /=\s*_\s*(\{[^{}]*\}|[a-zA-Z])/
GEQ.2: /\\(geq|geqslant|ge)(?![a-zA-Z])/ | ">=" | "≥"
LEQ.2: /\\(leq|leqslant|le)(?![a-zA-Z])/ | "<=" | "≤"
OVERSET_REL.3: /\\(overset|stackrel)\s*""" + _BRACED_ANY + r"""\s*\{\s*(=|\\geq?|\\leq?|\\geqslant|\\leqslant)\s*\}/
DEFEQ.3: /:=|\\coloneqq(?![a-zA-Z])|\\triangleq(?![a-zA-Z])|\\equiv(?![a-zA-Z])|\\eqqcolon(?![a-zA-Z])/
IMPLIES.3: /\\(implies|Rightarrow|Longrightarrow)(?![a-zA-Z])/
BADREL.2: /\\(approx|simeq|propto|neq|ne|sim|cong|doteq|gg|ll|geqq|leqq|gtrsim|lesssim)(?![a-zA-Z])|<|>|\\hat\s*\{\s*=\s*\}/

PLUS: "+"
MINUS: "-" | "−"
CDOT.2: /\\(cdot|times)(?![a-zA-Z])|\*|·|×/
SIM.3: /\\sim(?![a-zA-Z])/

LOG.2: /\\(log|ln)(?![a-zA-Z])/
BIGOP.3: /\\(sum|prod)(?![a-zA-Z])(\s*\\(limits|nolimits)(?![a-zA-Z]))?(\s*_\s*(\{(?:[^{}]|\{[^{}]*\})*\}|[a-zA-Z]))?(\s*\^\s*(\{[^{}]*\}|[a-zA-Z0-9]|\\[a-zA-Z]+))?/
DOTS.3: /\\(dots|ldots|cdots|dotsc)(?![a-zA-Z])|\.\.\./
HENT.3: /\\mathbb\s*\{\s*H\s*\}|\\operatorname\s*\{\s*H\s*\}|\\mathrm\s*\{\s*H\s*\}/
SLASH: "/"
EXPECT.3: /\\mathbf\s*\{\s*E\s*\}|\\mathbb\s*\{\s*E\s*\}|\\mathbb\s+E(?![a-zA-Z])|\\E(?![a-zA-Z])|\\operatorname\s*\{\s*(\\mathbb\s*\{\s*E\s*\}|E)\s*\}|\\mathrm\s*\{\s*E\s*\}|\\mathop\s*\{\s*\\mathbb\s*\{\s*E\s*\}\s*\}/
INT.2: /\\(iiint|iint|int|oint)(?![a-zA-Z])/
LIM.3: /\\lim\s*_\s*\{[^{}]*\}/
DIFF.4: /(\\mathrm\s*\{\s*d\s*\}|\\text\s*\{\s*d\s*\}|\\operatorname\s*\{\s*d\s*\}|d)\s*(""" + _BOLD + r"""\s*\{\s*(\\[a-zA-Z]+|[a-zA-Z])\s*\}|\\(""" + _GREEK_RE + r""")(?![a-zA-Z])|[a-zA-Z""" + _UNICODE_RE + r"""])(\s*_\s*(\{[^{}]*\}|\\[a-zA-Z]+|[a-zA-Z0-9]))?/
FRAC.2: /\\[dt]?frac(?![a-zA-Z])/
KL_WORD.3: "KL" | /\\(mathrm|operatorname|text|mathbb|mathcal|textrm)\s*\{\s*KL\s*\}/
TC_WORD.3: "TC" | /\\(mathrm|operatorname|text|textrm)\s*\{\s*TC\s*\}/
CONST.4: /\\(text|mathrm|operatorname|textrm|textit)\s*\{\s*(const|constant|cst|Const|Constant)\.?\s*\}/
BRACE_CMD.3: /\\(underbrace|overbrace)(?![a-zA-Z])/
SIGNED_BRACE.4: /\\(underbrace|overbrace)\s*\{\s*[+-]/
UNDER_LABEL.3: /[_^]\s*""" + _BRACED_ANY + r"""/
NAME_WORD.2: /\\(text|mathrm|operatorname|textrm|mathit|textit|mathsf)\s*\{\s*[A-Za-z][A-Za-z]+\s*\}/
MINF.3: /\\mathbb\s*\{\s*I\s*\}/
NAME_HEAD.3: /(\\(hat|tilde|bar|widehat|widetilde|overline)\s*\{\s*)?\\(mathcal|mathscr|mathfrak)\s*(\{\s*[A-Z]\s*\}|\s+[A-Z](?![a-zA-Z]))(\s*\})?/
BOLDVAR.3: /""" + _BOLD + r"""\s*\{\s*(\\[a-zA-Z]+|[a-zA-Z])\s*(_\s*(\{[^{}]*\}|[a-zA-Z0-9]))?\s*\}/
GREEK.2: /\\(""" + _GREEK_RE + r""")(?![a-zA-Z])/ | /[""" + _UNICODE_RE + r"""]/

SUB.2: /_\s*(""" + _BRACED + r"""|\\[a-zA-Z]+|[a-zA-Z0-9]|[""" + _UNICODE_RE + r"""])/
VARSUP.2: /\^\s*(\{\s*(\\(text|mathrm|textrm)\s*\{\s*[A-Za-z]+\s*\}|[A-Za-z]+|\*|\\ast)\s*\}|\\(text|mathrm|textrm)\s*\{\s*[A-Za-z]+\s*\}|\*)/
STAR.3: /\^\s*(\*|\{\s*\*\s*\}|\\ast(?![a-zA-Z])|\{\s*\\ast\s*\})/
PRIME.2: /'+/
SAMPLE_INDEX.3: /\^\s*\{\s*\(\s*[a-z0-9]+\s*\)\s*\}/
SUPSIMPLE.2: /\^\s*(\\[a-zA-Z]+|[a-zA-Z0-9])/

SEP.2: /\|\||\\\||\\parallel(?![a-zA-Z])|\\Vert(?![a-zA-Z])|\\mid\s*\\mid(?![a-zA-Z])|\|\s*\||\\mid(?![a-zA-Z])|\||,|;|:/

LPAR: "("
RPAR: ")"
LSQB: "["
RSQB: "]"
LBRACE: "{"
RBRACE: "}"
LBRACE_ESC.2: "\\{"
RBRACE_ESC.2: "\\}"

NUMBER: /\d+(\.\d+)?/ | /\.\d+/
LOWER: /[a-z]/
UPPER: /[A-Z]/
CMD.1: /\\[a-zA-Z]+/

IGNORED.3: /\\(left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg|middle)\s*\./
    | /\\(left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg|middle)(?![a-zA-Z])/
    | /\\(quad|qquad|displaystyle|textstyle|limits|nolimits|nonumber|notag)(?![a-zA-Z])/
    | /\\[,;:! ]/ | "~" | /\\(hspace|vspace|hskip)\*?\s*\{[^{}]*\}/
WS: /\s+/
%ignore WS
%ignore IGNORED
"""

#: What each terminal is, for "expected ..." messages.
TERMINAL_DESCRIPTIONS = {
    "EQ": "'='", "EQ_SUB": "'=_c'", "GEQ": "'\\geq'", "LEQ": "'\\leq'", "OVERSET_REL": "'\\overset{c}{=}'",
    "DEFEQ": "':='", "BADREL": "a relation", "PLUS": "'+'", "MINUS": "'-'", "CDOT": "'\\cdot'", "SIM": "'\\sim'",
    "LOG": "'\\log'", "EXPECT": "'\\mathbb{E}'", "INT": "'\\int'", "DIFF": "a differential such as 'd\\mathbf{z}'",
    "FRAC": "'\\frac'", "KL_WORD": "'KL'", "TC_WORD": "'TC'", "CONST": "'\\text{const}'",
    "BRACE_CMD": "'\\underbrace'", "SIGNED_BRACE": "'\\underbrace'", "UNDER_LABEL": "a label '_{...}'", "NAME_HEAD": "a name such as '\\mathcal{L}'",
    "BOLDVAR": "a variable such as '\\mathbf{z}'", "GREEK": "a Greek letter", "SUB": "a subscript '_{...}'",
    "SUPSIMPLE": "a power '^{...}'", "SAMPLE_INDEX": "a sample index '^{(i)}'", "SEP": "',' or '|' or '||'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
    "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "LBRACE_ESC": "'\\{'", "RBRACE_ESC": "'\\}'",
    "BIGOP": "'\\sum' or '\\prod'", "IMPLIES": "'\\implies'", "LIM": "'\\lim_{...}'", "NAME_WORD": "a name such as '\\text{ELBO}'",
    "MINF": "'\\mathbb{I}'", "VARSUP": "a superscript '^{old}'", "STAR": "'^*'", "PRIME": "a prime", "DOTS": "'\\dots'", "HENT": "'\\mathbb{H}'", "SLASH": "'/'",
    "NUMBER": "a number", "LOWER": "a density or variable name", "UPPER": "a name", "CMD": "a command",
    "CIRCUMFLEX": "'^'", "UNDERSCORE": "'_'", "$END": "the end of the line",
}

RELATION_TERMINALS = {"EQ", "EQ_SUB", "GEQ", "LEQ", "OVERSET_REL", "DEFEQ", "BADREL", "IMPLIES"}
EXPRESSION_START = {"NUMBER", "GREEK", "LPAR", "LSQB", "LBRACE", "LBRACE_ESC", "FRAC", "LOWER", "UPPER", "NAME_HEAD",
                    "KL_WORD", "TC_WORD", "LOG", "EXPECT", "INT", "CONST", "BRACE_CMD", "BIGOP", "HENT", "NAME_WORD",
                    "MINF", "LIM"}


def describe_expected(expected) -> str:
    """A short human description of a set of terminal names ("a relation (=, \\geq, \\leq), '+' or '-'")."""
    expected = set(expected)
    parts: list[str] = []
    if expected & RELATION_TERMINALS:
        parts.append("a relation (=, \\geq, \\leq, \\overset{c}{=})")
        expected -= RELATION_TERMINALS
    if len(expected & EXPRESSION_START) >= 4:
        parts.append("an expression (a density such as p(x|z), \\log, \\mathbb{E}_{...}, D_{KL}(..||..), \\frac, "
                     "a number or a declared coefficient)")
        expected -= EXPRESSION_START
    if {"PLUS", "MINUS"} <= expected:
        parts.append("'+' or '-'")
        expected -= {"PLUS", "MINUS"}
    # punctuation first: closing brackets are the most useful hint
    order = ["RBRACE", "RPAR", "RSQB", "RBRACE_ESC", "SEP", "DIFF", "LPAR", "LBRACE"]
    for name in order + sorted(expected - set(order)):
        if name in expected and name not in ("CMD", "IGNORED", "WS"):
            text = TERMINAL_DESCRIPTIONS.get(name, name.lower())
            if text not in parts:
                parts.append(text)
    if not parts:
        return "something else"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser of one logical line (built once)."""
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)
