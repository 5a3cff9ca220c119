"""From a file's sections to derivations: joining logical lines into chains of steps, and checking them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import sympy
from lark import Tree

from ..checker import Checker, Derivation, DerivationResult, Step, StepResult
from ..display_html import checked_file_html, checked_file_latex
from ..model import Model, ModelError, coefficient_names
from ..time_limit import check_step_in_time
from .document import Document, LatexError, LogicalLine, Section, Source, parse_document, read_document
from .grammar import UNICODE_GREEK
from .header import Header, LineRef, Selector, parse_header
from .limits import line_problem
from .lowering import judge, make_step
from .reader import Built, LineReader

#: The default time limit of one step, in seconds (``elbocheck check --timeout``, ``pytest --elbocheck-timeout``).
DEFAULT_STEP_SECONDS = 5.0

# ------------------------------------------------------------------------------------------------ assembly


@dataclass
class ParsedFile:
    """What a file holds: derivations (the steps read before any error) and the first error, if any."""

    path: str
    derivations: list[Derivation]
    error: LatexError | None = None
    headers: list[Header] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(len(d.steps) for d in self.derivations)


@dataclass
class _Chain:
    exit: Built | None = None
    origin: str | None = None  # "expression" or "definition"
    line: LogicalLine | None = None


class SectionReader:
    """Turns a section's logical lines into the steps of one derivation."""

    def __init__(self, source: Source, section: Section, header: Header, model: Model):
        self.source = source
        self.section = section
        self.header = header
        self.model = model
        self.definitions: dict[str, sympy.Expr] = {}
        self.defined_at: dict[str, str] = {}  # name -> how reports refer to the line that defined it
        self.steps: list[Step] = []
        self.lines: list[LogicalLine] = []

    def line_number(self, line: LogicalLine, index: int | None = None) -> int:
        offset = line.start if index is None else line.offset(index)
        return self.source.position(offset)[0]

    def last_line_number(self, line: LogicalLine) -> int:
        return self.source.position(line.text.offsets[-1] if line.text.offsets else line.start)[0]

    def ref(self, line: LogicalLine) -> str:
        """How a report names a line: its tag, its file line, or file line:column when it shares that line."""
        if line.tag:
            return f"({line.tag})"
        number, column = self.source.position(line.start)
        shared = sum(1 for other in self.section.lines if self.line_number(other) == number)
        return f"line {number}" if shared <= 1 else f"line {number}:{column}"

    def matches(self, ref: LineRef, line: LogicalLine | None) -> bool:
        if line is None:
            return False
        if ref.kind == "all":
            return True
        if ref.kind == "tag":
            return line.tag == ref.value
        return self.line_number(line) <= int(ref.value) <= self.last_line_number(line)

    def selected(self, selectors: list[Selector], previous: LogicalLine | None, line: LogicalLine, link: bool) -> bool:
        hit = False
        for s in selectors:
            if s.last.kind == "all":
                s.used = hit = True
            elif s.first is None:
                if self.matches(s.last, line):
                    s.used = hit = True
            elif link and self.matches(s.first, previous) and self.matches(s.last, line):
                s.used = hit = True
        return hit

    def assumptions_for(self, previous, line, link: bool):
        out = []
        for selectors, factorization, _ in self.header.assumptions:
            if selectors is None or self.selected(selectors, previous, line, link):
                out.append(factorization)
        return tuple(out)

    def substitutions_for(self, previous, line, link: bool):
        return tuple(s for selectors, s, _ in self.header.substitutions
                     if selectors is None or self.selected(selectors, previous, line, link))

    def relation_override(self, previous, line):
        """(found, relation) from the header's ``step`` clauses for the link into ``line``."""
        found, relation = False, None
        for selectors, value, _ in self.header.relations:
            for s in selectors:
                if s.first is None and s.last.kind != "all" and self.matches(s.last, line):
                    s.used, found, relation = True, True, value
                elif s.first is not None and self.matches(s.last, line):
                    if self.matches(s.first, previous):
                        s.used, found, relation = True, True, value
        return found, relation

    def add_step(self, lhs: Built, relation: str, rhs: Built, label: str, line_number: int, previous, line,
                 link: bool, where: int, condition: str = "") -> None:
        if lhs.has_const or rhs.has_const:
            if relation == "=":
                relation = "=const"
            elif relation != "=const":
                raise self.source.error(f"a '+ \\text{{const}}' term needs '=' (equal up to a constant), not "
                                        f"'{relation}'; expected '=' or \\overset{{c}}{{=}}", line.offset(where))
        if relation == ":=":
            relation = "="
        for name, (index, _) in lhs.sample_indices.items():
            other = rhs.sample_indices.get(name)
            if other is not None and other[0] != index:
                raise self.source.error(
                    f"this step relates two different data points, {name}^{{({index})}} and {name}^{{({other[0]})}}, "
                    f"and the model declares one variable {name}; expected the same data point on both sides",
                    line.offset(other[1]))
        assumptions = self.assumptions_for(previous, line, link)
        self.steps.append(make_step(lhs.expr, relation, rhs.expr, model=self.model, assumptions=assumptions,
                                    substitutions=self.substitutions_for(previous, line, link), label=label,
                                    line=line_number, datapoints=self.header.datapoints is not None,
                                    condition=condition))

    def read(self) -> None:
        chain = _Chain()
        previous: LogicalLine | None = None
        for line in self.section.lines:
            problem = line_problem(line.text.text)
            if problem is not None:
                raise self.source.error(problem[0], line.offset(problem[1]))
            try:
                if not self._read_line(line, chain, previous):
                    continue
            except RecursionError:
                raise self.source.error("the line is nested too deeply to read (Python's recursion limit); expected "
                                        "an expression with fewer nested terms", line.start) from None
            chain.line = line
            previous = line
            self.lines.append(line)

    def _read_line(self, line: LogicalLine, chain: _Chain, previous: LogicalLine | None) -> bool:
        """Read one logical line into steps; False when it only names the expression before it."""
        reader = LineReader(self.source, line, self.model, self.definitions, self.header)
        read = reader.read()
        found, override = self.relation_override(previous, line)
        trees = read.trees
        relations = list(read.relations)
        counted = [r for r, _ in relations if r != "implies"]  # relation k of a line counts these
        first = trees[0]
        name = reader.name_of(first)
        known = reader.defined_name(name)  # the definition a name refers to (itself, or its family)
        link_relation: str | None = None
        link_where = 0
        built: list[Built] = []
        origin = "expression"
        defines = False
        consumed = 0  # relations of the line before the loop below (a definition's)
        if read.leading is not None and len(trees) == 1 and name is not None and known is None \
                and read.leading[0] in ("=", ":=") and chain.exit is not None and not found:
            # "&= \mathcal{L}(x)" on its own row names the expression before it
            self.define(name, chain.exit.expr, line)
            return False
        if read.leading is not None:
            if chain.exit is None and not found:
                raise reader.error("the line starts with a relation but there is no line before it; expected an "
                                   "expression before the relation", read.leading[1])
            link_relation, link_where = read.leading
            built.append(reader.expression(first))
            origin = chain.origin or "expression"
        elif name is not None and len(trees) > 1 and known is None:
            relation, where = relations[0]
            if relation not in ("=", ":="):
                raise reader.error(f"'{name}' is not defined yet; expected '=' to define it", where)
            value = reader.expression(trees[1])
            self.define(name, value.expr, line)
            defines = True
            consumed = 1
            built.append(value)
            trees, relations = trees[1:], relations[1:]
            if chain.origin == "expression" and chain.exit is not None and relation == "=":
                link_relation, link_where = "=", reader.position(first)
                origin = "expression"
            else:
                origin = "definition"
        else:
            built.append(reader.expression(first))
            if len(trees) == 1 and chain.exit is not None and not found:
                raise reader.error(
                    f"missing relation between {self.ref(chain.line)} and this line; expected a relation "
                    "(=, \\geq, \\leq or \\overset{c}{=}) at the start of this line, or 'step "
                    f"{self.ref(chain.line)}->{self.ref(line)}: REL' in the header", 0)
        if found:
            link_relation = override
            if read.leading is None:
                link_where = reader.position(first)
            if override is None and origin == "expression" and defines:
                origin = "definition"
        if link_relation is not None:
            if chain.exit is None:
                raise reader.error("the header gives a relation into this line, but there is no line before it",
                                   0)
            self.add_step(chain.exit, link_relation, built[0], f"{self.ref(chain.line)} -> {self.ref(line)}",
                          self.line_number(line, link_where), chain.line, line, True, link_where)
        elif read.leading is None:
            chain.origin = origin
        number = consumed  # relations counted so far
        first_step = True
        condition = ""  # "A \geq 0 \implies B": the statement that B follows from
        k = 0
        while k < len(relations):
            relation, where = relations[k]
            if relation == "implies":  # a new statement starts
                condition = f"the statement before it on {self.ref(line)}"
                built.append(reader.expression(trees[k + 1]))
                k += 1
                continue
            number += 1
            target = trees[k + 1]
            target_name = reader.name_of(target)
            negated = self.negated_name(reader, target)
            last = k == len(relations) - 1
            if last and relation in ("=", ":=") and (
                    (target_name is not None and reader.defined_name(target_name) is None) or negated):
                # "... = \mathcal{L}(x)" (or "= -\mathcal{L}(x)") at the end names the expression before it
                if negated:
                    self.define(negated, -built[-1].expr, line)
                else:
                    self.define(target_name, built[-1].expr, line)
                break
            if not last and target_name is not None and reader.defined_name(target_name) is None and \
                    relations[k + 1][0] in ("=", ":="):
                # "e0 \geq \mathcal{L}(x) = e1": the name is defined by what follows it; the step is e0 >= e1
                value = reader.expression(trees[k + 2])
                self.define(target_name, value.expr, line)
                built.append(value)
                step_number, number = number, number + 1
                k += 2
            else:
                built.append(reader.expression(target))
                step_number = number
                k += 1
            lhs = built[-2]
            label = self.ref(line) if len(counted) == 1 else f"{self.ref(line)}, relation {step_number}"
            if first_step and read.leading is None and not defines and known is not None and \
                    known in self.defined_at:
                label = f"{self.defined_at[known]} -> {label}"  # a name defined before, checked again
            first_step = False
            self.add_step(lhs, relation, built[-1], label, self.line_number(line, where), None, line, False, where,
                          condition)
        if link_relation is not None:
            chain.origin = chain.origin or origin
        chain.exit = built[-1]
        return True

    def define(self, name: str, value, line: LogicalLine) -> None:
        self.definitions[name] = value
        self.defined_at.setdefault(name, self.ref(line))

    @staticmethod
    def negated_name(reader: LineReader, tree) -> str | None:
        """The name in ``-\\mathcal{L}(x)`` when it is not defined yet (``= -\\mathcal{L}(x)`` names the negation)."""
        if isinstance(tree, Tree) and tree.data == "neg":
            name = reader.name_of(tree.children[1])
            if name is not None and reader.defined_name(name) is None:
                return name
        return None

    def unused_selectors(self) -> LatexError | None:
        tags = ", ".join(f"({line.tag})" for line in self.lines if line.tag) or "none"
        for selectors, _, offset in list(self.header.relations) + [
                (s, None, o) for s, _, o in list(self.header.assumptions) + list(self.header.substitutions)
                if s is not None] + [(m.selectors, None, m.offset) for m in self.header.measures if m.selectors]:
            for s in selectors:
                if not s.used:
                    return self.source.error(
                        f"model header: the step '{s.text}' matches no step of the derivation; expected a line tag "
                        f"such as (4) (tags: {tags}), 'line N', '(A)->(B)' for consecutive lines, or 'all'", s.offset)
        return None


    def unused_coefficients(self) -> LatexError | None:
        """A declared coefficient that the math never writes (in the text: terms that cancel still count)."""
        used: set[str] = set()
        for expression in [e for step in self.steps for e in (step.lhs, step.rhs)] + list(self.definitions.values()):
            used |= coefficient_names(expression)
        text = re.sub(r"[\s{}]", "", " ".join(line.text.text for line in self.section.lines))
        for ch, name in UNICODE_GREEK.items():
            text = text.replace(ch, "\\" + name)
        for name, offset in self.header.coefficient_offsets.items():
            letter, _, subscript = name.partition("_")
            written = re.escape("\\" + letter) + (r"_" + re.escape(subscript) if subscript else "") + "(?![a-zA-Z])"
            if name not in used and not re.search(written, text):
                return self.source.error(
                    f"model header: coefficient '{name}' appears nowhere in the derivation; expected a coefficient "
                    f"that the math uses (remove '{name}' from 'coefficients:', or write it as \\{name.split('_')[0]})",
                    offset)
        return None


def _parse_sections(document: Document, path: str) -> ParsedFile:
    source = document.source
    stem = Path(path).stem or "derivation"
    parsed = ParsedFile(path, [])
    used_names: set[str] = set()
    models = []
    for number, section in enumerate(document.sections, start=1):  # every header first: a bad one is fatal
        default = stem if len(document.sections) == 1 else f"{stem}_{number}"
        header, model = parse_header(source, section.header, default)
        for _, factorization, offset in header.assumptions:
            try:
                factorization.apply(model)
            except (ModelError, ValueError) as error:
                raise source.error(f"model header: {error}; expected a declared factor split into factors",
                                   offset, fatal=True) from None
        models.append((header, model))
    for section, (header, model) in zip(document.sections, models):
        name = header.name
        while name in used_names:
            name += "_"
        used_names.add(name)
        parsed.headers.append(header)
        reader = SectionReader(source, section, header, model)
        title = header.title or f"{Path(path).name}: {name}"
        derivation = Derivation(name, title, f"{path} (line {source.position(section.header.offset)[0]})", model,
                                reader.steps)
        parsed.derivations.append(derivation)
        try:
            reader.read()
        except LatexError as error:
            parsed.error = error
            return parsed
        if section.error is not None:
            parsed.error = section.error
            return parsed
        problem = reader.unused_selectors() or reader.unused_coefficients()
        if problem is not None:
            problem.fatal = False
            parsed.error = problem
            return parsed
    if parsed.steps == 0:
        parsed.error = source.error("no derivation steps found; expected lines joined by relations (=, \\geq, "
                                    "\\leq) in display math after the model header", document.sections[0].header.offset,
                                    fatal=True)
    return parsed


def parse_file(path: str | Path, name: str | None = None) -> ParsedFile:
    """Read a ``.tex``/``.md`` derivation. Raises a fatal :class:`LatexError` when the file cannot be read at all
    (missing, not UTF-8, no header, a malformed header, no display math); a problem in the math is returned in
    :attr:`ParsedFile.error`, with the derivations holding the steps read before it. ``name``: how errors and
    reports name the file (default: ``path``)."""
    name = str(path) if name is None else name
    return _parse_sections(read_document(path, name), name)


def parse_text(text: str, name: str = "<input>", markdown: bool = False) -> ParsedFile:
    """Like :func:`parse_file`, for text in memory."""
    return _parse_sections(parse_document(name, text, markdown), name)


# ------------------------------------------------------------------------------------------------ checking


@dataclass
class CheckedFile:
    parsed: ParsedFile
    results: list[DerivationResult]

    @property
    def error(self) -> LatexError | None:
        return self.parsed.error

    @property
    def step_results(self) -> list[StepResult]:
        return [s for r in self.results for s in r.steps]

    def _repr_html_(self) -> str:
        return checked_file_html(self)

    def _repr_latex_(self) -> str:
        return checked_file_latex(self)


def iter_check(parsed: ParsedFile, checker: Checker | None = None, timeout: float | None = DEFAULT_STEP_SECONDS,
               on_start: Callable[[Derivation, Step, int], None] | None = None
               ) -> Iterator[tuple[Derivation, StepResult]]:
    """Judge the steps that were read one by one, yielding ``(derivation, result)`` as each is judged.

    Each step runs under a time limit of ``timeout`` seconds (None or 0: none; see :mod:`..time_limit` for where it
    is enforced); a step over it, or one whose check fails unexpectedly, is *undecided* with the reason.
    ``on_start(derivation, step, number)`` is called before each step (``number`` counts from 1 over the file)."""
    checker = checker or Checker()
    number = 0
    for derivation in parsed.derivations:
        for index, step in enumerate(derivation.steps, start=1):
            number += 1
            if on_start is not None:
                on_start(derivation, step, number)
            yield derivation, check_step_in_time(LoweredChecker(checker), derivation.model, step, index, timeout)


class LoweredChecker:
    """A checker that judges a read step with what its reading implies (:func:`.lowering.judge`)."""

    def __init__(self, checker: Checker):
        self.checker = checker

    def check_step(self, model, step, index: int = 1) -> StepResult:
        return judge(self.checker, model, step, index)


def check_parsed(parsed: ParsedFile, checker: Checker | None = None,
                 timeout: float | None = DEFAULT_STEP_SECONDS) -> CheckedFile:
    """Judge every step that was read (:func:`iter_check`, collected per derivation)."""
    by_derivation: dict[int, list[StepResult]] = {id(d): [] for d in parsed.derivations}
    for derivation, result in iter_check(parsed, checker, timeout):
        by_derivation[id(derivation)].append(result)
    return CheckedFile(parsed, [DerivationResult(d, by_derivation[id(d)]) for d in parsed.derivations])


def check_file(path: str | Path, checker: Checker | None = None,
               timeout: float | None = DEFAULT_STEP_SECONDS) -> CheckedFile:
    """Read and judge a LaTeX derivation (fatal :class:`LatexError` if the file cannot be read)."""
    return check_parsed(parse_file(path), checker, timeout)


def place(step: Step | StepResult) -> str:
    """How progress lines and test names refer to a step: ``line 20 (3) -> (4)``, or its label when that is a line."""
    prefix = f"line {step.line}" if step.line is not None else ""
    if step.label and not step.label.startswith("line "):
        return f"{prefix} {step.label}".strip()
    return step.label or prefix


def labelled(result: StepResult) -> StepResult:
    """A copy whose label starts with the file line (for the text table)."""
    prefix = f"line {result.line}" if result.line is not None else ""
    label = f"{prefix}: {result.label}" if result.label and not result.label.startswith("line ") else \
        (result.label or prefix)
    return replace(result, label=label)
