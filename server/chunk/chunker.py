"""Cut a source file into chunks: its functions, methods and classes, or line windows.

`chunk_source` parses the file with tree-sitter and makes one chunk per definition the language's
`LanguageSpec` (see `languages.py`) names: functions, methods and classes, nested ones included,
each qualified by the classes, impl blocks, modules and functions around it ("Server.handle",
"outer.inner"). A class chunk spans the whole class and its methods are chunks too, so chunks
overlap. A chunk starts at its first decorator, attribute or leading comment: a run of comment
and decorator lines directly above the definition, with no blank line between them (JavaScript and
TypeScript: or a `/** ... */` one blank line above, `leading_marks.py`).

Choices:
- Every chunk's text is capped at `MAX_CHUNK_LINES` lines: a longer definition keeps its start
  and its first 400 lines (its methods are chunks of their own, so little is lost).
- Definitions that take exactly the same lines make one chunk, the outermost (fewest qualifying
  names): a chunk is a range of lines, and one copy of a line per definition on it would grow a
  minified file's single line into thousands of identical chunks.
- Where a file has no grammar, yields no definitions, or its definitions cover less than
  `MIN_DEFINITION_COVERAGE` of its non-blank lines (scripts, garbage that tree-sitter half
  recovers), the lines outside every definition are cut into overlapping windows of
  `WINDOW_LINES` lines every `WINDOW_STRIDE` lines; windows of whitespace only are dropped.
- Python's `doc_span` is the docstring; a Python definition without one falls back to the
  comment block above it, as every other language does.

Lines are split on "\\n" only, as tree-sitter counts rows; a final "\\n" does not start a line.
Nothing here raises on any string: text that is not valid UTF-8 is handled byte-wise.

Beside this module: `text_positions.py` (lines, bytes and offsets), `definition_roles.py` (what a node
is, and the names that qualify it) and `leading_marks.py` (the comments and decorators a chunk takes in).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from tree_sitter import Node, QueryCursor

from ..languages import language_for_path, parse_within_budget
from .definition_roles import MAX_NESTING, Role, Scope, ScopeResolver, chunk_kind, role_of
from .language_specs import LanguageSpec, definition_query, spec_for
from .leading_marks import MarkIndex, comment_span
from .text_positions import Point, SourceText

# Bump when the same text gives other chunks (a new grammar, a changed rule): an index made by another
# version reads and chunks every file again at its next sync, reusing the vectors of unchanged texts.
CHUNKING_VERSION = "2"  # 2: C, C++, C#, PHP, Kotlin, Swift, Scala, Lua, shell; JSDoc across a blank line
MAX_CHUNK_LINES = 400  # longest chunk text, in lines
WINDOW_LINES = 60  # lines per fallback window
WINDOW_STRIDE = 40  # lines between the starts of consecutive windows
MIN_DEFINITION_COVERAGE = 0.2  # below this share of non-blank lines in definitions, windows fill in
UNKNOWN_LANGUAGE = "text"  # language of a file whose language is neither given nor known by its name

MAX_NAME_CHARS = 300  # longest qualified name; longer ones keep their innermost end
MAX_TREE_DEPTH = 8 * MAX_NESTING  # syntax-tree depth searched for definitions (a few nodes per scope)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable piece of a file: a definition or a window of lines."""

    id: str  # sha1(f"{path}\0{name}\0{content_hash}") hex, first 20 characters: stable across runs
    path: str  # workspace-relative POSIX path, as the caller gave it
    language: str
    kind: str  # "function" | "method" | "class" | "window"
    name: str  # qualified by enclosing classes, impls, modules, functions; windows: "<file>:<start>-<end>"
    start_line: int  # 1-based, inclusive, leading decorators and doc comments included
    end_line: int  # 1-based, inclusive
    text: str  # exactly the source lines start_line..end_line, joined by "\n"
    content_hash: str  # sha1 of text, hex
    # [start, end) character offsets into text of the docstring or leading doc comment, delimiters included
    doc_span: tuple[int, int] | None


def chunk_source(path: str, text: str, language: str | None = None) -> list[Chunk]:
    """Cut one file's text into chunks, ordered by start line, then outer before inner (longer
    first; on equal lines, fewer qualifying names first).

    `language` defaults to the one `language_for_path(path)` gives, else `UNKNOWN_LANGUAGE`.
    """
    language = language or language_for_path(path) or UNKNOWN_LANGUAGE
    source = SourceText(text)
    chunks = _definition_chunks(path, language, source)
    chunks += _uncovered_windows(path, language, source, chunks)
    chunks.sort(
        key=lambda chunk: (
            chunk.start_line,
            -chunk.end_line,
            chunk.name.count("."),
            chunk.name,
            chunk.kind,
            chunk.id,
        )
    )
    return _with_unique_ids(chunks)


def content_sha1(text: str) -> str:
    """The sha1 of a text's UTF-8 bytes (lone surrogates kept), hex: how files and chunks are told apart."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def chunk_at_line(chunks: Sequence[Chunk], line: int) -> Chunk | None:
    """Return the smallest definition chunk containing a 1-based line, else the smallest window
    containing it, else None."""
    containing = [chunk for chunk in chunks if chunk.start_line <= line <= chunk.end_line]
    definitions = [chunk for chunk in containing if chunk.kind != "window"]
    return min(
        definitions or containing,
        key=lambda chunk: (chunk.end_line - chunk.start_line, -chunk.start_line, -chunk.name.count(".")),
        default=None,
    )


def _definition_chunks(path: str, language: str, source: SourceText) -> list[Chunk]:
    """Return a chunk for every definition tree-sitter finds, or [] without a grammar."""
    spec, query = spec_for(language), definition_query(language)
    if spec is None or query is None:
        return []
    tree = parse_within_budget(language, source.data)
    if tree is None:
        log.info("%s: past the parse budget; cut into line windows", path)
        return []
    cursor = QueryCursor(query)
    # Deeper nodes are not visited: tree-sitter finds a node's parent from the root down, so the
    # scopes of 10,000 nested definitions took minutes. MAX_NESTING is reached well before.
    cursor.set_max_start_depth(MAX_TREE_DEPTH)
    captures = cursor.captures(tree.root_node)
    marks = MarkIndex(source, spec, captures.get("prefix", []))
    scopes = ScopeResolver(spec, source)
    by_rows: dict[tuple[int, int], _Definition] = {}
    for node in captures.get("definition", []):
        role = role_of(node, spec, source)
        if role is None or role.kind == "container" or not role.name:
            continue
        scope = scopes.enclosing(node)
        if scope.depth >= MAX_NESTING:  # its text is in the chunks of the definitions around it
            continue
        definition = _definition(source, spec, marks, node, role, scope)
        kept = by_rows.get(definition.rows)
        if kept is None or definition.precedence < kept.precedence:
            by_rows[definition.rows] = definition
    return [
        _make_chunk(path, language, definition.kind, definition.name, source, *rows, definition.doc)
        for rows, definition in by_rows.items()
    ]


@dataclass(frozen=True, slots=True)
class _Definition:
    """A definition found in the tree, before it is made a chunk."""

    rows: tuple[int, int]  # the chunk's first and last rows, 0-based, capped as `_chunk_rows` caps them
    kind: str
    name: str
    doc: tuple[Point, Point] | None

    @property
    def precedence(self) -> tuple[int, str, str]:
        """Of two definitions on the same rows the smaller is kept: outermost first, as chunks sort."""
        return self.name.count("."), self.name, self.kind


def _definition(
    source: SourceText, spec: LanguageSpec, marks: MarkIndex, node: Node, role: Role, scope: Scope
) -> _Definition:
    """Find the rows, name and doc of one definition node."""
    extent = _extent(node, spec)
    start_row, leading = marks.leading(extent.start_point)
    end_row = source.end_point(extent)[0]
    if spec.indented_blocks:
        end_row = marks.trim_dedented_comments(start_row, end_row)
    name = ".".join((*scope.names, role.name or ""))
    if len(name) > MAX_NAME_CHARS:
        name = "…" + name[len(name) - MAX_NAME_CHARS + 1 :]
    doc = _docstring(node, spec, source) or comment_span(leading)
    return _Definition(_chunk_rows(source, start_row, end_row), chunk_kind(role, scope), name, doc)


def _extent(node: Node, spec: LanguageSpec) -> Node:
    """Return the node whose span a definition takes: itself, or the wrappers around it alone
    (`export`, `@decorator`, `const f = ...`)."""
    extent = node
    parent = node.parent
    while parent is not None and parent.type in spec.wrappers and _holds_only(parent, extent, spec):
        extent, parent = parent, parent.parent
    return extent


def _holds_only(parent: Node, child: Node, spec: LanguageSpec) -> bool:
    """Whether a node's named children are one child plus comments and decorators."""
    ignorable = spec.comments | spec.prefixes
    return all(other.id == child.id or other.type in ignorable for other in parent.named_children)


def _docstring(node: Node, spec: LanguageSpec, source: SourceText) -> tuple[Point, Point] | None:
    """Return the span of a definition's docstring, for languages that have them."""
    if spec.docstring_field is None:
        return None
    body = node.child_by_field_name(spec.docstring_field)
    if body is None:
        return None
    statements = [child for child in body.named_children if child.type not in spec.comments]
    if not statements or statements[0].type != "expression_statement":
        return None
    expressions = statements[0].named_children
    if len(expressions) != 1 or expressions[0].type not in ("string", "concatenated_string"):
        return None
    return expressions[0].start_point, source.end_point(expressions[0])


def _make_chunk(
    path: str,
    language: str,
    kind: str,
    name: str,
    source: SourceText,
    start_row: int,
    end_row: int,
    doc: tuple[Point, Point] | None = None,
) -> Chunk:
    """Make a chunk of whole lines start_row..end_row (0-based, capped at MAX_CHUNK_LINES)."""
    start_row, end_row = _chunk_rows(source, start_row, end_row)
    text = "\n".join(source.lines[start_row : end_row + 1])
    content_hash = content_sha1(text)
    return Chunk(
        id=_chunk_id(path, name, content_hash),
        path=path,
        language=language,
        kind=kind,
        name=name,
        start_line=start_row + 1,
        end_line=end_row + 1,
        text=text,
        content_hash=content_hash,
        doc_span=_doc_offsets(source, start_row, text, doc),
    )


def _chunk_rows(source: SourceText, start_row: int, end_row: int) -> tuple[int, int]:
    """Clamp 0-based rows to the file and to at most MAX_CHUNK_LINES lines from the start."""
    last_row = len(source.lines) - 1
    start_row = min(max(start_row, 0), last_row)
    return start_row, min(max(end_row, start_row), start_row + MAX_CHUNK_LINES - 1, last_row)


def _chunk_id(path: str, name: str, content_hash: str, repeat: int = 0) -> str:
    """Return a chunk's stable id; the n-th repeat of a path, name and text in one file hashes n in too."""
    key = f"{path}\0{name}\0{content_hash}" + (f"\0{repeat}" if repeat else "")
    return content_sha1(key)[:20]


def _with_unique_ids(chunks: list[Chunk]) -> list[Chunk]:
    """Give each repeat of an earlier chunk (same name and text, e.g. a function defined in both
    branches of an `if`) an id of its own: the chunk store keys chunks by id."""
    seen: dict[str, int] = {}
    unique: list[Chunk] = []
    for chunk in chunks:
        repeat = seen.get(chunk.id, 0)
        seen[chunk.id] = repeat + 1
        if repeat:
            chunk = replace(chunk, id=_chunk_id(chunk.path, chunk.name, chunk.content_hash, repeat))
        unique.append(chunk)
    return unique


def _doc_offsets(
    source: SourceText, start_row: int, text: str, doc: tuple[Point, Point] | None
) -> tuple[int, int] | None:
    """Turn a doc span in points into character offsets into a chunk's text, or None if it
    falls outside the text."""
    if doc is None:
        return None
    base = source.offset((start_row, 0))
    start, end = source.offset(doc[0]) - base, source.offset(doc[1]) - base
    while end > start and text[end - 1 : end] in ("\n", "\r"):
        end -= 1
    return (start, end) if 0 <= start < end <= len(text) else None


def _uncovered_windows(
    path: str, language: str, source: SourceText, definitions: Sequence[Chunk]
) -> list[Chunk]:
    """Return windows over the lines outside every definition, when definitions cover too little."""
    if not definitions:
        return _windows(path, language, source, 0, len(source.lines) - 1)
    covered = bytearray(len(source.lines))
    for chunk in definitions:
        covered[chunk.start_line - 1 : chunk.end_line] = b"\x01" * (chunk.end_line - chunk.start_line + 1)
    non_blank = [row for row, line in enumerate(source.lines) if line.strip()]
    in_definitions = sum(covered[row] for row in non_blank)
    if in_definitions >= MIN_DEFINITION_COVERAGE * len(non_blank):
        return []
    windows: list[Chunk] = []
    for first, last in _runs(covered, 0):
        windows += _windows(path, language, source, *_trim_blank(source, first, last))
    return windows


def _runs(flags: bytearray, value: int) -> list[tuple[int, int]]:
    """Return the maximal [first, last] index ranges where flags equal value."""
    runs: list[tuple[int, int]] = []
    start = None
    for index, flag in enumerate([*flags, value + 1]):
        if flag == value and start is None:
            start = index
        elif flag != value and start is not None:
            runs.append((start, index - 1))
            start = None
    return runs


def _trim_blank(source: SourceText, first: int, last: int) -> tuple[int, int]:
    """Narrow a row range to exclude blank lines at both ends (an all-blank range stays as is)."""
    while first < last and not source.line(first).strip():
        first += 1
    while last > first and not source.line(last).strip():
        last -= 1
    return first, last


def _windows(path: str, language: str, source: SourceText, first: int, last: int) -> list[Chunk]:
    """Cut rows first..last (0-based) into overlapping windows, dropping all-whitespace ones."""
    file_name = PurePosixPath(path).name or path
    windows: list[Chunk] = []
    start = first
    while start <= last:
        end = min(start + WINDOW_LINES - 1, last)
        if any(source.line(row).strip() for row in range(start, end + 1)):
            name = f"{file_name}:{start + 1}-{end + 1}"
            windows.append(_make_chunk(path, language, "window", name, source, start, end))
        if end >= last:
            break
        start += WINDOW_STRIDE
    return windows


NOT_CODE = ("@", "#", "//", "/*", "*", '"""', "'''")  # decorators, attributes, comments, docstrings


def preview(text: str, width: int = 100) -> str:
    """The first line that is code rather than a decorator, comment or blank, shortened.

    A decorator or attribute whose arguments run over several lines (`@pytest.mark.parametrize(`
    ... `)`, `#[cfg(` ... `)]`) is skipped whole: its lines are skipped until its brackets close.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    depth = 0  # brackets a decorator opened and has not closed yet
    for line in lines:
        if depth > 0 or line.startswith(("@", "#[")):
            depth = max(0, depth + _bracket_balance(line))
        elif not line.startswith(NOT_CODE):
            return line[:width]
    return (lines[0] if lines else "")[:width]


def _bracket_balance(line: str) -> int:
    """Opening minus closing brackets on a line (those in strings count too: enough for a preview)."""
    return sum(line.count(bracket) for bracket in "([{") - sum(line.count(bracket) for bracket in ")]}")
