"""Reading a ``.tex`` or ``.md`` file into sections (one per model header) of logical derivation lines.

A *section* starts at a model header (``% elbocheck ...`` comment lines in ``.tex``; ``<!-- elbocheck ... -->`` or a
fenced ```` ```elbocheck ```` block in ``.md``) and holds the display math that follows it: ``$$ ... $$``,
``\\[ ... \\]`` and the ``equation``/``align``/``gather``/``multline`` environments (starred or not); inline ``$...$``
is prose. Math before the first header, after ``elbocheck end`` and in the block right after ``elbocheck skip`` is
ignored.

Each block is split into rows at ``\\\\`` (``aligned``/``align``), with ``&``, ``\\label``, ``\\nonumber`` removed and
tags recorded (``\\tag{4}``, or ``\\quad (4)`` at the end of a row or block). Rows are joined into *logical lines*: a
row that starts with a relation starts a new line; a row that starts with ``+`` or ``-`` inside a block, or that
follows a row ending in a relation or an operator (also across blocks), continues the line before; any other row
starts a new line. Every character of a logical line keeps its offset in the file, so errors point at the file's line
and column.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from .limits import MAX_FILE_BYTES, file_problem


class LatexError(Exception):
    """A problem in the input, with its place in the file. ``fatal`` errors make the whole file unreadable (exit 2);
    others stop reading at that point, after the steps before it are judged."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None, column: int | None = None,
                 fatal: bool = False):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.fatal = fatal

    def format(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: error: {self.message}"

    def __str__(self) -> str:
        return self.format()


class Source:
    """A file's text with offset -> (line, column) conversion (both 1-based)."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.masked = text  # the text with comments (and, in Markdown, code) blanked
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def error(self, message: str, offset: int | None, fatal: bool = False) -> LatexError:
        if offset is None:
            return LatexError(message, self.path, fatal=fatal)
        line, column = self.position(offset)
        return LatexError(message, self.path, line, column, fatal=fatal)


@dataclass
class Text:
    """A string assembled from pieces of the file, with the file offset of every character."""

    text: str = ""
    offsets: list[int] = field(default_factory=list)

    def append(self, piece: str, offset: int, separator: bool = True) -> None:
        if separator and self.text:
            self.text += " "
            self.offsets.append(offset)
        self.text += piece
        self.offsets.extend(range(offset, offset + len(piece)))

    def offset(self, index: int) -> int:
        if not self.offsets:
            return 0
        if index >= len(self.offsets):
            return self.offsets[-1] + 1
        return self.offsets[max(0, index)]


@dataclass
class LogicalLine:
    """One line of a derivation: its text (rows joined), the tag if any, and where it is in the file."""

    text: Text
    block: int  # index of the math block where it starts
    tag: str | None = None
    rows: int = 1

    def offset(self, index: int) -> int:
        return self.text.offset(index)

    @property
    def start(self) -> int:
        stripped = len(self.text.text) - len(self.text.text.lstrip())
        return self.text.offset(stripped)


@dataclass
class HeaderText:
    """The raw header: the text after ``elbocheck`` on its first line, then one entry per following line."""

    lines: list[tuple[str, int]]  # (text, file offset of the text)
    offset: int


@dataclass
class Section:
    header: HeaderText
    lines: list[LogicalLine] = field(default_factory=list)
    error: LatexError | None = None  # the first problem in the section's math (reading stops there)


@dataclass
class Document:
    source: Source
    sections: list[Section]
    blocks: int  # display math blocks found in the whole file


DISPLAY_ENVIRONMENTS = ("equation", "align", "gather", "multline", "eqnarray", "flalign", "alignat", "displaymath",
                        "math")
INNER_ENVIRONMENTS = ("aligned", "split", "gathered", "alignedat", "multlined")

_RELATION_START = re.compile(
    r"^(=|:=|\\coloneqq|\\triangleq|\\equiv|\\geq?(?![a-zA-Z])|\\leq?(?![a-zA-Z])|\\geqslant|\\leqslant|>=|<=|"
    r"\\(overset|stackrel)\s*\{|\\approx|\\simeq|\\propto|\\neq?(?![a-zA-Z])|<|>|\\doteq)"
)
_OPERATOR_END = re.compile(
    r"(=|\\geq?|\\leq?|\\geqslant|\\leqslant|>=|<=|\+|-|\\cdot|\\times|\\coloneqq|:=|\{\s*(=|\\geq?|\\leq?)\s*\})\s*$"
)
_LEADING_SPACE = re.compile(r"^(\s|\\q?quad(?![a-zA-Z])|\\[,;:! ]|~|\\hspace\*?\{[^{}]*\})*")
_TRAILING_TAG = re.compile(
    r"((\\q?quad(?![a-zA-Z])|\\hspace\*?\{[^{}]*\}|\\hfill(?![a-zA-Z])|~|\\[,;: ])\s*)+"
    r"\(\s*([A-Za-z0-9.*'\-]{1,12})\s*\)\s*[.,;]?\s*$"
)
_TAG = re.compile(r"\\tag\*?\s*\{([^{}]*)\}")
_REMOVED = re.compile(r"\\(label|eqref)\s*\{[^{}]*\}|\\(nonumber|notag)(?![a-zA-Z])")
_TRAILING_PUNCTUATION = re.compile(r"[.,;]\s*$")


def blank(text: str, start: int, end: int) -> str:
    """Replace text[start:end] by spaces, keeping newlines (so that offsets and line numbers stay)."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


# ------------------------------------------------------------------------------------------------ reading


def read_document(path: str | Path, name: str | None = None) -> Document:
    """Read a file into sections of logical lines. Raises a fatal :class:`LatexError` when the file cannot be read."""
    path = Path(path)
    name = str(path) if name is None else name  # how errors name the file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LatexError("cannot read the file: no such file; expected a .tex or .md file", name, fatal=True) from None
    except IsADirectoryError:
        raise LatexError("cannot read the file: it is a directory; expected a .tex or .md file", name,
                         fatal=True) from None
    except OSError as error:
        raise LatexError(f"cannot read the file: {error.strerror or error}", name, fatal=True) from None
    too_large = file_problem(data)
    if too_large is not None:
        message, at = too_large
        raise LatexError(message, name, *_line_and_column(data, at), fatal=True)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LatexError(f"the file is not UTF-8 text (byte 0x{data[error.start]:02x}); expected UTF-8", name,
                         *_line_and_column(data, error.start), fatal=True) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    markdown = path.suffix.lower() in (".md", ".markdown", ".mdown", ".mkd")
    return parse_document(name, text, markdown)


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    prefix = data[:offset].decode("utf-8", errors="replace")
    return prefix.count("\n") + 1, len(prefix) - (prefix.rfind("\n") + 1) + 1


def parse_document(name: str, text: str, markdown: bool) -> Document:
    if len(text) > MAX_FILE_BYTES // 4:  # cheap test first: 4 bytes per character at most
        data = text.encode("utf-8", errors="replace")
        too_large = file_problem(data)
        if too_large is not None:
            message, at = too_large
            raise LatexError(message, name, *_line_and_column(data, at), fatal=True)
    source = Source(name, text)
    masked, events = (_markdown_events if markdown else _tex_events)(source)
    source.masked = masked
    blocks = _find_blocks(source, masked)
    events.extend(("block", start, block) for start, block in blocks)
    events.sort(key=lambda e: (e[1], 0 if e[0] != "block" else 1))
    sections: list[Section] = []
    current: Section | None = None
    skipping = False
    skip_next = False
    block_index = 0
    pending: list[tuple[int, object]] = []  # blocks of the current section
    for kind, offset, payload in events:
        if kind == "header":
            if current is not None:
                _finish_section(source, current, pending)
            current = Section(payload)
            sections.append(current)
            pending = []
            skipping = skip_next = False
        elif kind == "end":
            skipping = True
        elif kind == "skip":
            skip_next = True
        elif kind == "block":
            block_index += 1
            if current is None or skipping:
                continue
            if skip_next:
                skip_next = False
                continue
            pending.append((block_index, payload))
    if current is not None:
        _finish_section(source, current, pending)
    if not sections:
        example = ("<!-- elbocheck model NAME: p(z) p_theta(x|z) q_phi(z|x) -->" if markdown
                   else "% elbocheck model NAME: p(z) p_theta(x|z) q_phi(z|x)")
        raise source.error(f"no elbocheck model header; expected a header such as '{example}' before the derivation",
                           0, fatal=True)
    if block_index == 0:
        raise source.error("no display math in the file; expected the derivation in $$ ... $$, \\[ ... \\] or "
                           "\\begin{align} ... \\end{align} blocks", 0, fatal=True)
    return Document(source, sections, block_index)


def has_header(text: str, markdown: bool) -> bool:
    """Whether ``text`` holds an elbocheck model header (in a comment of ``.tex``; in an HTML comment or a fenced
    ```` ```elbocheck ```` block of ``.md``; never in code or prose)."""
    _, events = (_markdown_events if markdown else _tex_events)(Source("<probe>", text))
    return any(kind == "header" for kind, _, _ in events)


def _directive(text: str) -> str | None:
    """'header', 'end' or 'skip' for a comment that starts with the elbocheck keyword, else None."""
    m = re.match(r"\s*elbocheck\b\s*(\S*)", text, flags=re.IGNORECASE)
    if not m:
        return None
    word = m.group(1).lower().rstrip(":")
    if word in ("end", "stop"):
        return "end"
    if word == "skip":
        return "skip"
    return "header"


def _tex_events(source: Source):
    """Comments are blanked; ``% elbocheck`` comment runs become headers or directives."""
    text = source.text
    chars = list(text)
    events: list = []
    header: HeaderText | None = None
    offset = 0
    for raw in text.split("\n"):
        line_start = offset
        offset += len(raw) + 1
        m = re.search(r"(?<!\\)%", raw)
        comment_only = m is not None and not raw[: m.start()].strip()
        if m is not None:
            for k in range(line_start + m.start(), line_start + len(raw)):
                chars[k] = " "
        if not comment_only:
            header = None
            continue
        content_start = m.end()
        while content_start < len(raw) and raw[content_start] == "%":
            content_start += 1
        content = raw[content_start:]
        lead = len(content) - len(content.lstrip())
        content_offset = line_start + content_start + lead
        content = content.strip()
        if header is not None:
            if raw[m.end():].startswith("%"):
                continue  # a %% remark inside the header
            header.lines.append((content, content_offset))
            continue
        kind = _directive(content)
        if kind == "header":
            keyword = re.match(r"\s*elbocheck\b", content, flags=re.IGNORECASE)
            rest = content[keyword.end():]
            lead = len(rest) - len(rest.lstrip())
            header = HeaderText([(rest.strip(), content_offset + keyword.end() + lead)], content_offset)
            events.append(("header", content_offset, header))
        elif kind is not None:
            events.append((kind, content_offset, None))
    return "".join(chars), events


def _markdown_events(source: Source):
    """HTML comments and fenced code are blanked; ``<!-- elbocheck ... -->`` and ```` ```elbocheck ```` blocks
    become headers or directives."""
    text = source.text
    chars = list(text)
    events: list = []

    def mask(a: int, b: int) -> None:
        for k in range(a, b):
            if chars[k] != "\n":
                chars[k] = " "

    # fenced code blocks
    for m in re.finditer(r"^([ \t]*)(```+|~~~+)[ \t]*([^\n]*)\n(.*?)^[ \t]*\2[ \t]*$", text, flags=re.M | re.S):
        mask(m.start(), m.end())
        info = m.group(3).strip()
        if _directive(info) == "header":
            keyword = re.match(r"\s*elbocheck\b", info, flags=re.IGNORECASE)
            rest = info[keyword.end():].strip()
            after = info[keyword.end():]
            lines = [(rest, m.start(3) + keyword.end() + (len(after) - len(after.lstrip())))]
            lines.extend(_content_lines(m.group(4), m.start(4)))
            events.append(("header", m.start(), HeaderText(lines, m.start(3))))
    # inline code spans (`$$` in code is not math)
    for m in re.finditer(r"(?<!`)`[^`\n]+`(?!`)", text):
        if chars[m.start()] != " ":
            mask(m.start(), m.end())
    # HTML comments
    for m in re.finditer(r"<!--(.*?)-->", text, flags=re.S):
        if chars[m.start()] == " ":
            continue  # inside a fenced block
        mask(m.start(), m.end())
        body = m.group(1)
        lines = _content_lines(body, m.start(1))
        lines = [(t, o) for t, o in lines if t]
        if not lines:
            continue
        kind = _directive(lines[0][0])
        if kind == "header":
            first, first_offset = lines[0]
            keyword = re.match(r"\s*elbocheck\b", first, flags=re.IGNORECASE)
            rest = first[keyword.end():]
            lead = len(rest) - len(rest.lstrip())
            header_lines = [(rest.strip(), first_offset + keyword.end() + lead)] + lines[1:]
            events.append(("header", m.start(), HeaderText(header_lines, first_offset)))
        elif kind is not None:
            events.append((kind, m.start(), None))
    return "".join(chars), events


def _content_lines(body: str, offset: int) -> list[tuple[str, int]]:
    out = []
    position = offset
    for raw in body.split("\n"):
        lead = len(raw) - len(raw.lstrip())
        out.append((raw.strip(), position + lead))
        position += len(raw) + 1
    return out


# ------------------------------------------------------------------------------------------------ math blocks


@dataclass
class Block:
    start: int  # offset of the opening delimiter
    content_start: int
    content_end: int
    opener: str


def _find_blocks(source: Source, masked: str) -> list[tuple[int, Block]]:
    blocks = []
    i, n = 0, len(masked)
    env_open = re.compile(r"\\begin\s*\{(" + "|".join(DISPLAY_ENVIRONMENTS) + r")(\*?)\}")
    while i < n:
        c = masked[i]
        if c == "\\" and i + 1 < n:
            nxt = masked[i + 1]
            if nxt == "[":
                end = masked.find("\\]", i + 2)
                if end < 0:
                    raise _unclosed(source, i, "\\]")
                blocks.append((i, Block(i, i + 2, end, "\\[")))
                i = end + 2
                continue
            m = env_open.match(masked, i)
            if m:
                name = m.group(1) + m.group(2)
                close = re.compile(r"\\end\s*\{" + re.escape(name) + r"\}")
                cm = close.search(masked, m.end())
                if not cm:
                    raise _unclosed(source, i, f"\\end{{{name}}}")
                blocks.append((i, Block(i, m.end(), cm.start(), f"\\begin{{{name}}}")))
                i = cm.end()
                continue
            i += 2  # an escaped character such as \$ or \%
            continue
        if c == "$":
            if masked.startswith("$$", i):
                end = _find_unescaped(masked, "$$", i + 2)
                if end < 0:
                    raise _unclosed(source, i, "$$")
                blocks.append((i, Block(i, i + 2, end, "$$")))
                i = end + 2
                continue
            end = _find_unescaped(masked, "$", i + 1)
            i = (end + 1) if end >= 0 else i + 1  # inline math is prose
            continue
        i += 1
    return blocks


def _find_unescaped(text: str, needle: str, start: int) -> int:
    while True:
        k = text.find(needle, start)
        if k < 0:
            return -1
        backslashes = 0
        j = k - 1
        while j >= 0 and text[j] == "\\":
            backslashes += 1
            j -= 1
        if backslashes % 2 == 0:
            return k
        start = k + 1


def _unclosed(source: Source, offset: int, closer: str) -> LatexError:
    return source.error(f"the math block opened here is never closed; expected '{closer}'", offset, fatal=True)


# ------------------------------------------------------------------------------------------------ rows and lines


def _check_braces(source: Source, text: str, start: int, end: int) -> LatexError | None:
    stack: list[int] = []
    i = start
    while i < end:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append(i)
        elif c == "}":
            if not stack:
                return source.error("unbalanced braces: this '}' closes no '{'; expected a matching '{' before it", i)
            stack.pop()
        i += 1
    if stack:
        return source.error("unbalanced braces: this '{' is never closed; expected a matching '}' before the end of "
                            "the math block", stack[-1])
    return None


def _rows(source: Source, masked: str, block: Block) -> list[tuple[Text, str | None]]:
    """The rows of a block: (text with offsets, tag)."""
    start, end = block.content_start, block.content_end
    content = masked[start:end]
    inner = re.compile(r"\\(begin|end)\s*\{(" + "|".join(INNER_ENVIRONMENTS + DISPLAY_ENVIRONMENTS)
                       + r")\*?\}(\s*\{[^{}]*\})?")
    for m in list(inner.finditer(content)) + list(_REMOVED.finditer(content)):
        content = blank(content, m.start(), m.end())
    # column separators, and the row breaks \\ (with an optional [2pt])
    chars = list(content)
    rows: list[tuple[int, int]] = []
    row_start = k = 0
    while k < len(content):
        if content.startswith("\\\\", k):
            rows.append((row_start, k))
            k += 2
            spacing = re.match(r"\s*\[[^\]]*\]", content[k:])
            if spacing:
                k += spacing.end()
            row_start = k
            continue
        if content[k] == "\\":
            k += 2
            continue
        if content[k] == "&":
            chars[k] = " "
        k += 1
    rows.append((row_start, len(content)))
    content = "".join(chars)
    out = []
    for a, b in rows:
        row = content[a:b]
        tag = None
        for m in _TAG.finditer(row):
            tag = m.group(1).strip()
            row = blank(row, m.start(), m.end())
        m = _TRAILING_TAG.search(row)
        if m:
            tag = m.group(3)
            row = blank(row, m.start(), m.end())
        m = _TRAILING_PUNCTUATION.search(row)
        if m:
            row = blank(row, m.start(), m.end())
        text = Text()
        text.append(row, start + a, separator=False)
        out.append((text, tag))
    return out


def _finish_section(source: Source, section: Section, blocks: list[tuple[int, Block]]) -> None:
    masked = source.masked
    lines: list[LogicalLine] = []
    for index, block in blocks:
        problem = _check_braces(source, masked, block.content_start, block.content_end)
        if problem is not None:
            section.error = problem
            break
        first_row = True
        for text, tag in _rows(source, masked, block):
            stripped = text.text.strip()
            if not stripped:
                first_row = False
                if tag and lines:
                    lines[-1].tag = tag
                continue
            lead = _LEADING_SPACE.match(text.text).end()
            body = text.text[lead:].rstrip()
            starts_relation = bool(_RELATION_START.match(body))
            current = lines[-1] if lines else None
            continues = False
            if current is not None and not starts_relation:
                if _OPERATOR_END.search(current.text.text):
                    continues = True
                elif body.startswith("+"):
                    continues = True
                elif body.startswith("-") and not first_row and current.block == index:
                    continues = True
            if continues:
                current.text.append(text.text[lead:], text.offset(lead))
                current.rows += 1
                if tag:
                    current.tag = tag
            else:
                line = Text()
                line.append(text.text[lead:], text.offset(lead), separator=False)
                lines.append(LogicalLine(line, index, tag))
            first_row = False
    section.lines = lines

