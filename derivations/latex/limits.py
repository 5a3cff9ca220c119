r"""Size limits checked before anything is parsed, so that no input makes the reader hang or overflow the stack.

The reader is recursive (a sum of n terms is n nested calls, a ``\frac`` in a ``\frac`` one more level) and SymPy
evaluates numbers exactly (``9^{9^{9}}`` has 370 million digits, and computing it cannot be interrupted). Inputs far
beyond any derivation written by hand are therefore refused with an error at their place that names the limit:

=================================  ======================================================================
limit                              why
=================================  ======================================================================
:data:`MAX_FILE_BYTES`             a derivation file, not a book; the error points at the first line past it
:data:`MAX_LINE_CHARACTERS`        one logical line of a derivation (rows joined)
:data:`MAX_OPERATORS`              terms and operators in one line (``+``, ``-``, ``\cdot``, relations,
                                   ``\log``, ``\frac``, ``\mathbb{E}``, ``\int``): the reader recurses once per term
:data:`MAX_NESTING`                braces, brackets and parentheses inside each other
:data:`MAX_DIGITS`                 digits of one number
:data:`MAX_EXPONENT_DIGITS`        digits of a number in an exponent, and no exponent inside an exponent
                                   (exact powers of numbers grow without bound)
:data:`MAX_VECTOR_COMPONENTS`      components of a ``vectors:`` declaration (reading the model grows with
                                   the cube of the size; checking, exponentially)
=================================  ======================================================================
"""

from __future__ import annotations

import re

MAX_FILE_BYTES = 2_000_000
MAX_LINE_CHARACTERS = 10_000
MAX_OPERATORS = 200
MAX_NESTING = 50
MAX_DIGITS = 15
MAX_EXPONENT_DIGITS = 3
MAX_VECTOR_COMPONENTS = 4096

_OPERATOR = re.compile(r"\+|-|=|\\(cdot|times|geq?|leq?|log|ln|d?frac|tfrac|int|iint|iiint|mathbb)(?![a-zA-Z])")
_DIGITS = re.compile(r"\d+")
_OPEN, _CLOSE = "{[(", "}])"


def file_problem(data: bytes) -> tuple[str, int] | None:
    """(message, byte offset of the first byte past the limit) when ``data`` exceeds :data:`MAX_FILE_BYTES`."""
    if len(data) <= MAX_FILE_BYTES:
        return None
    message = (f"the file has {len(data) / 1e6:.1f} MB, over the limit of {MAX_FILE_BYTES / 1e6:g} MB of elbocheck "
               "check (from here on); expected a file that holds the derivation (keep the derivation, or split the "
               "file)")
    return message, MAX_FILE_BYTES


_SPLIT = "expected a derivation line (split it into several lines joined by relations)"


def line_problem(text: str) -> tuple[str, int] | None:
    """(message, index in ``text``) at the first place where one logical line exceeds a limit, or None."""
    if len(text) > MAX_LINE_CHARACTERS:
        message = (f"the line has {len(text)} characters, over the limit of {MAX_LINE_CHARACTERS} per line of "
                   f"elbocheck check; {_SPLIT}")
        return message, MAX_LINE_CHARACTERS
    depth = 0
    for index, char in enumerate(text):
        escaped = index > 0 and text[index - 1] == "\\"
        if char in _OPEN and not escaped:
            depth += 1
            if depth > MAX_NESTING:
                message = (f"braces, brackets or parentheses nested more than {MAX_NESTING} deep (the limit of "
                           "elbocheck check); expected an expression nested less deeply")
                return message, index
        elif char in _CLOSE and not escaped:
            depth = max(depth - 1, 0)
    operators = list(_OPERATOR.finditer(text))
    if len(operators) > MAX_OPERATORS:
        message = (f"the line has {len(operators)} terms and operators, over the limit of {MAX_OPERATORS} per line "
                   f"of elbocheck check; {_SPLIT}")
        return message, operators[MAX_OPERATORS].start()
    for m in _DIGITS.finditer(text):
        if len(m.group(0)) > MAX_DIGITS:
            message = (f"a number with {len(m.group(0))} digits, over the limit of {MAX_DIGITS} of elbocheck check; "
                       "expected a coefficient of a derivation")
            return message, m.start()
    for start, end in _exponents(text):
        body = text[start:end]
        if "^" in body:
            message = ("an exponent inside an exponent; expected an exponent such as ^{\\lambda + \\alpha - 1} "
                       "(exact powers of powers of numbers grow without bound)")
            return message, start + body.index("^")
        for m in _DIGITS.finditer(body):
            if len(m.group(0)) > MAX_EXPONENT_DIGITS:
                message = (f"a number with {len(m.group(0))} digits in an exponent, over the limit of "
                           f"{MAX_EXPONENT_DIGITS} of elbocheck check; expected an exponent such as ^{{2}} or "
                           "^{\\beta}")
                return message, start + m.start()
    return None


def _exponents(text: str):
    """(start, end) of the body of every ``^{...}`` (balanced) or ``^x`` in ``text``."""
    for m in re.finditer(r"\^", text):
        i = m.end()
        while i < len(text) and text[i].isspace():
            i += 1
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{" and text[j - 1] != "\\":
                    depth += 1
                elif text[j] == "}" and text[j - 1] != "\\":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            yield i + 1, j
        elif i < len(text):
            command = re.match(r"\\[a-zA-Z]+|.", text[i:])
            yield i, i + len(command.group(0))
