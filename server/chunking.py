"""Cut a source file into chunks: its functions, methods and classes, or line windows.

`chunk_source` parses the file with tree-sitter and makes one chunk per definition the language's
`LanguageSpec` (see `languages.py`) names: functions, methods and classes, nested ones included,
each qualified by the classes, impl blocks, modules and functions around it ("Server.handle",
"outer.inner"). A class chunk spans the whole class and its methods are chunks too, so chunks
overlap. A chunk starts at its first decorator, attribute or leading comment: a run of comment
and decorator lines directly above the definition, with no blank line between them.

Choices:
- Every chunk's text is capped at `MAX_CHUNK_LINES` lines: a longer definition keeps its start
  and its first 400 lines (its methods are chunks of their own, so little is lost).
- Where a file has no grammar, yields no definitions, or its definitions cover less than
  `MIN_DEFINITION_COVERAGE` of its non-blank lines (scripts, garbage that tree-sitter half
  recovers), the lines outside every definition are cut into overlapping windows of
  `WINDOW_LINES` lines every `WINDOW_STRIDE` lines; windows of whitespace only are dropped.
- Python's `doc_span` is the docstring; a Python definition without one falls back to the
  comment block above it, as every other language does.

Lines are split on "\\n" only, as tree-sitter counts rows; a final "\\n" does not start a line.
Nothing here raises on any string: text that is not valid UTF-8 is handled byte-wise.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from tree_sitter import Node, QueryCursor

from codesieve.server.languages import (
    NAME_UNWRAP,
    LanguageSpec,
    definition_query,
    language_for_path,
    parser_for,
    spec_for,
)

MAX_CHUNK_LINES = 400  # longest chunk text, in lines
WINDOW_LINES = 60  # lines per fallback window
WINDOW_STRIDE = 40  # lines between the starts of consecutive windows
MIN_DEFINITION_COVERAGE = 0.2  # below this share of non-blank lines in definitions, windows fill in
UNKNOWN_LANGUAGE = "text"  # language of a file whose language is neither given nor known by its name

_PARSE_LOCK = threading.Lock()  # tree-sitter parsers are shared per language and not thread-safe
_MAX_NAME_DEPTH = 16  # how far a name node is unwrapped before giving up (`*pkg.T[U]` -> `T`)

Point = tuple[int, int]  # (row, byte column), 0-based, as tree-sitter reports them


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
    source = _Source(text)
    chunks = _definition_chunks(path, language, source)
    chunks += _uncovered_windows(path, language, source, chunks)
    chunks.sort(key=lambda chunk: (chunk.start_line, -chunk.end_line, chunk.name.count("."), chunk.name))
    return _with_unique_ids(chunks)


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


class _Source:
    """The text being chunked: its lines, its UTF-8 bytes, and conversions between positions."""

    __slots__ = ("_line_offsets", "data", "lines")

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8", "surrogatepass")
        lines = text.split("\n")
        if len(lines) > 1 and not lines[-1]:
            lines.pop()
        self.lines = lines
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line) + 1)
        self._line_offsets = offsets

    def line(self, row: int) -> str:
        """Return a line without its "\\n", or "" past the end."""
        return self.lines[row] if 0 <= row < len(self.lines) else ""

    def line_bytes(self, row: int) -> bytes:
        """Return a line's UTF-8 bytes."""
        return self.line(row).encode("utf-8", "surrogatepass")

    def text_of(self, node: Node) -> str:
        """Return the source text of a node."""
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def offset(self, point: Point) -> int:
        """Return the character offset in the text of a (row, byte column) point."""
        row, byte_column = point
        row = min(max(row, 0), len(self.lines) - 1)
        line = self.lines[row]
        if line.isascii():
            return self._line_offsets[row] + min(byte_column, len(line))
        prefix = line.encode("utf-8", "surrogatepass")[:byte_column]
        try:
            return self._line_offsets[row] + len(prefix.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:  # the column splits a character: count the whole ones before it
            return self._line_offsets[row] + len(prefix.decode("utf-8", "ignore"))

    def blank_before(self, point: Point) -> bool:
        """Whether only whitespace precedes a point on its line."""
        return not self.line_bytes(point[0])[: point[1]].strip()

    def blank_after(self, point: Point) -> bool:
        """Whether only whitespace follows a point on its line."""
        return not self.line_bytes(point[0])[point[1] :].strip()

    def end_point(self, node: Node) -> Point:
        """Return where a node's text ends, a trailing newline not counted."""
        row, column = node.end_point
        if column == 0 and row > node.start_point[0]:
            return row - 1, len(self.line_bytes(row - 1))
        return row, column


@dataclass(frozen=True, slots=True)
class _Role:
    """What a node is to the chunker: a definition or a scope that qualifies names."""

    kind: str  # "function" | "class" | "container"
    name: str | None  # None: a nameless scope, which qualifies nothing
    class_like: bool  # functions directly inside it are methods
    method: bool = False  # a method by its own declaration (Go receivers)


@dataclass(frozen=True, slots=True)
class _Scope:
    """The names enclosing a node, outermost first, and whether the innermost is class-like."""

    names: tuple[str, ...]
    class_like: bool

    def enter(self, role: _Role | None) -> _Scope:
        """Return the scope inside a node with this role."""
        if role is None:
            return self
        names = (*self.names, role.name) if role.name else self.names
        return _Scope(names, role.class_like)


@dataclass(frozen=True, slots=True)
class _Mark:
    """A comment or decorator: something that may belong to the definition below it."""

    start: Point
    end: Point
    comment: bool


def _definition_chunks(path: str, language: str, source: _Source) -> list[Chunk]:
    """Return a chunk for every definition tree-sitter finds, or [] without a grammar."""
    spec, parser, query = spec_for(language), parser_for(language), definition_query(language)
    if spec is None or parser is None or query is None:
        return []
    with _PARSE_LOCK:
        tree = parser.parse(source.data)
    captures = QueryCursor(query).captures(tree.root_node)
    marks = _MarkIndex(source, spec, captures.get("prefix", []))
    scopes = _ScopeResolver(spec, source)
    chunks: list[Chunk] = []
    for node in captures.get("definition", []):
        role = _role(node, spec, source)
        if role is None or role.kind == "container" or not role.name:
            continue
        scope = scopes.enclosing(node)
        chunks.append(_definition_chunk(path, language, source, spec, marks, node, role, scope))
    return chunks


def _definition_chunk(
    path: str,
    language: str,
    source: _Source,
    spec: LanguageSpec,
    marks: _MarkIndex,
    node: Node,
    role: _Role,
    scope: _Scope,
) -> Chunk:
    """Make the chunk of one definition node."""
    extent = _extent(node, spec)
    start_row, leading = marks.leading(extent.start_point)
    end_row = source.end_point(extent)[0]
    if spec.indented_blocks:
        end_row = marks.trim_dedented_comments(start_row, end_row)
    name = ".".join((*scope.names, role.name or ""))
    doc = _docstring(node, spec, source) or _comment_span(leading)
    return _make_chunk(path, language, _kind(role, scope), name, source, start_row, end_row, doc)


def _kind(role: _Role, scope: _Scope) -> str:
    """Return a definition's chunk kind: a function is a method inside a class-like scope."""
    if role.kind == "class":
        return "class"
    return "method" if role.method or scope.class_like else "function"


def _role(node: Node, spec: LanguageSpec, source: _Source) -> _Role | None:
    """Return what a node is to the chunker, or None for a node that is neither definition nor scope."""
    node_type = node.type
    if node_type in spec.functions:
        name = _name(node, spec.name_fields.get(node_type, "name"), source)
        receiver = node.child_by_field_name(spec.receiver_field) if spec.receiver_field else None
        if receiver is None:
            return _Role("function", name, class_like=False)
        owner = _bare_name(receiver, source)
        return _Role("function", f"{owner}.{name}" if owner and name else name, class_like=False, method=True)
    if node_type in spec.classes:
        return _Role("class", _name(node, spec.name_fields.get(node_type, "name"), source), class_like=True)
    if node_type in spec.containers:
        name_field, class_like = spec.containers[node_type]
        name = _name(node, name_field, source) if name_field else None
        return _Role("container", name, class_like)
    if node_type in spec.valued:
        name_field, value_field = spec.valued[node_type]
        value = node.child_by_field_name(value_field)
        kind = spec.value_kinds.get(value.type) if value is not None else None
        if kind is None:
            return None
        return _Role(kind, _name(node, name_field, source), class_like=kind != "function")
    return None


def _name(node: Node, name_field: str, source: _Source) -> str | None:
    """Return the bare name in a node's name field, or None where it has none."""
    name_node = node.child_by_field_name(name_field)
    return _bare_name(name_node, source) if name_node is not None else None


def _bare_name(node: Node, source: _Source) -> str | None:
    """Reduce a name or type node to its identifier (`*Server` -> `Server`, `S<T>` -> `S`)."""
    for _ in range(_MAX_NAME_DEPTH):
        if node.type not in NAME_UNWRAP:
            break
        name_field = NAME_UNWRAP[node.type]
        inner = node.child_by_field_name(name_field) if name_field else node.named_child(0)
        if inner is None:
            break
        node = inner
    name = " ".join(source.text_of(node).split()).strip("'\"`")
    return name or None


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


def _docstring(node: Node, spec: LanguageSpec, source: _Source) -> tuple[Point, Point] | None:
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


def _comment_span(leading: Sequence[_Mark]) -> tuple[Point, Point] | None:
    """Return the span from the first to the last comment among a definition's leading marks."""
    comments = [mark for mark in leading if mark.comment]
    if not comments:
        return None
    return min(mark.start for mark in comments), max(mark.end for mark in comments)


def _make_chunk(
    path: str,
    language: str,
    kind: str,
    name: str,
    source: _Source,
    start_row: int,
    end_row: int,
    doc: tuple[Point, Point] | None = None,
) -> Chunk:
    """Make a chunk of whole lines start_row..end_row (0-based, capped at MAX_CHUNK_LINES)."""
    last_row = len(source.lines) - 1
    start_row = min(max(start_row, 0), last_row)
    end_row = min(max(end_row, start_row), start_row + MAX_CHUNK_LINES - 1, last_row)
    text = "\n".join(source.lines[start_row : end_row + 1])
    content_hash = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
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


def _chunk_id(path: str, name: str, content_hash: str, repeat: int = 0) -> str:
    """Return a chunk's stable id; the n-th repeat of a path, name and text in one file hashes n in too."""
    key = f"{path}\0{name}\0{content_hash}" + (f"\0{repeat}" if repeat else "")
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _with_unique_ids(chunks: list[Chunk]) -> list[Chunk]:
    """Give each repeat of an earlier chunk (same name and text, e.g. a function defined in both
    branches of an `if`) an id of its own: the metadata store keys chunks by id."""
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
    source: _Source, start_row: int, text: str, doc: tuple[Point, Point] | None
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


class _ScopeResolver:
    """Finds the scope enclosing a node, remembering the scope inside every ancestor it visits."""

    def __init__(self, spec: LanguageSpec, source: _Source) -> None:
        self._spec = spec
        self._source = source
        self._inside: dict[int, _Scope] = {}

    def enclosing(self, node: Node) -> _Scope:
        """Return the scope that holds a node."""
        chain: list[Node] = []
        ancestor = node.parent
        while ancestor is not None and ancestor.id not in self._inside:
            chain.append(ancestor)
            ancestor = ancestor.parent
        scope = self._inside[ancestor.id] if ancestor is not None else _Scope((), class_like=False)
        for outer in reversed(chain):
            scope = scope.enter(_role(outer, self._spec, self._source))
            self._inside[outer.id] = scope
        return scope


class _MarkIndex:
    """The file's comments and decorators by the row they end on, to find what leads a definition."""

    def __init__(self, source: _Source, spec: LanguageSpec, nodes: Iterable[Node]) -> None:
        self._source = source
        self._by_end_row: dict[int, list[_Mark]] = {}
        for node in nodes:
            mark = _Mark(node.start_point, source.end_point(node), node.type in spec.comments)
            self._by_end_row.setdefault(mark.end[0], []).append(mark)
        for marks in self._by_end_row.values():
            marks.sort(key=lambda mark: mark.end)

    def leading(self, start: Point) -> tuple[int, list[_Mark]]:
        """Return the row a definition starting at `start` really starts on, and the comments and
        decorators directly above it (or before it on its line) that it takes in."""
        first_row = start[0]
        taken: list[_Mark] = []
        pending: list[_Mark] = []
        position = start
        while (mark := self._before(position)) is not None:
            pending.append(mark)
            position = mark.start
            if self._source.blank_before(position):
                first_row, taken, pending = position[0], taken + pending, []
        return first_row, taken

    def _before(self, position: Point) -> _Mark | None:
        """Return the mark right before a position: on the line above if the position starts its
        line, else earlier on the same line; None if code or a blank line comes between."""
        row, column = position
        if self._source.blank_before(position):
            marks = self._by_end_row.get(row - 1, [])
            mark = marks[-1] if marks else None
            found = mark if mark is not None and self._source.blank_after(mark.end) else None
        else:
            earlier = [mark for mark in self._by_end_row.get(row, []) if mark.end[1] <= column]
            found = earlier[-1] if earlier else None
            if found is not None and self._source.line_bytes(row)[found.end[1] : column].strip():
                found = None
        return found if found is not None and found.start < position else None

    def trim_dedented_comments(self, start_row: int, end_row: int) -> int:
        """Drop trailing comment lines indented no deeper than the definition's first line:
        Python grammars put a comment that leads the next definition at the end of this one."""
        first_line = self._source.line(start_row)
        indent = len(first_line) - len(first_line.lstrip())
        row = end_row
        while row > start_row:
            line = self._source.line(row)
            if line.strip() and not (self._comment_line(row) and len(line) - len(line.lstrip()) <= indent):
                break
            row -= 1
        return row

    def _comment_line(self, row: int) -> bool:
        """Whether a line holds a single-line comment and nothing else."""
        return any(
            mark.comment and mark.start[0] == row and self._source.blank_before(mark.start)
            for mark in self._by_end_row.get(row, [])
        )


def _uncovered_windows(
    path: str, language: str, source: _Source, definitions: Sequence[Chunk]
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


def _trim_blank(source: _Source, first: int, last: int) -> tuple[int, int]:
    """Narrow a row range to exclude blank lines at both ends (an all-blank range stays as is)."""
    while first < last and not source.line(first).strip():
        first += 1
    while last > first and not source.line(last).strip():
        last -= 1
    return first, last


def _windows(path: str, language: str, source: _Source, first: int, last: int) -> list[Chunk]:
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
