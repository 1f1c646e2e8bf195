"""Which language a file is in, its tree-sitter parse (bounded), and the node types the chunker looks for.

Every grammar-backed language has a `LanguageSpec`: the table of node types that are functions,
classes and naming containers, where their names live, and which neighbouring nodes (comments,
decorators, attributes) belong to a definition. The chunker (`chunk/chunker.py`) is generic over these
tables; only this module knows grammar node names.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tree_sitter import Language, Parser, Point, Query, Tree

PARSE_READ_FACTOR = 8  # see `parse_within_budget`
PARSE_READ_ALLOWANCE = 4 * 1024 * 1024
PARSE_BYTES_PER_STEP = 5
PARSE_STEP_ALLOWANCE = 10_000
PARSE_SECONDS = 10.0
PARSE_BLOCK = 4096  # bytes handed to the lexer at a time, so that the budget is checked often

_EXTENSIONS: Mapping[str, str] = {
    # Languages with a grammar: definitions become chunks.
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    # Source languages without a grammar here: chunked as line windows.
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".cs": "csharp",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".php": "php",
    ".scala": "scala",
    ".lua": "lua",
    ".sh": "shell",
    ".bash": "shell",
    ".sql": "sql",
}

_FILE_NAMES: Mapping[str, str] = {"Rakefile": "ruby", "Gemfile": "ruby"}

# Each language's grammar package and the function in it that gives the grammar, imported when a file
# of the language is first parsed (a search that parses nothing loads none of them).
_GRAMMARS: Mapping[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """Node-type tables that tell the chunker what a definition looks like in one grammar.

    A definition node's name is the text of its `name` field (or the field named in
    `name_fields`), reduced by `NAME_UNWRAP` to a bare identifier (`S<T>` -> `S`).
    """

    functions: frozenset[str]
    """Function-like definitions; a method when the innermost enclosing scope is class-like."""
    classes: frozenset[str]
    """Class-like definitions: chunks of kind "class", and class-like scopes for what they hold."""
    containers: Mapping[str, tuple[str | None, bool]] = field(default_factory=dict)
    """Scopes that are not chunks: node type -> (name field or None for a nameless scope, class-like)."""
    valued: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Bindings named by a target: node type -> (name field, value field), e.g. `const f = () => 1`."""
    value_kinds: Mapping[str, str] = field(default_factory=dict)
    """Value node type -> what a binding to it is: "function", "class" or "container"."""
    name_fields: Mapping[str, str] = field(default_factory=dict)
    """Definition node type -> its name field, where that is not `name`."""
    receiver_field: str | None = None
    """Field holding a method receiver (Go): its type qualifies the name and makes it a method."""
    comments: frozenset[str] = frozenset()
    """Comment node types; a block of them directly above a definition is its doc comment."""
    prefixes: frozenset[str] = frozenset()
    """Decorators and attributes that belong to the definition directly below them."""
    wrappers: frozenset[str] = frozenset()
    """Nodes wrapping a single definition (export, decorated_definition): the chunk takes their span."""
    docstring_field: str | None = None
    """Body field whose first statement, when a string, is the docstring (Python)."""
    indented_blocks: bool = False
    """Blocks end by indentation (Python): comment lines dedented past the definition are not in it."""

    def definition_types(self) -> frozenset[str]:
        """All node types that can start a chunk."""
        return self.functions | self.classes | frozenset(self.valued)


NAME_UNWRAP: Mapping[str, str | None] = {
    # node type -> field leading to the bare name, None for the first named child.
    "generic_type": "type",
    "scoped_type_identifier": "name",
    "qualified_type": "name",
    "reference_type": "type",
    "pointer_type": None,
    "parameter_list": None,
    "parameter_declaration": "type",
    "member_expression": "property",
}

_JS_FUNCTION_VALUES = {
    "arrow_function": "function",
    "function_expression": "function",
    "function": "function",
    "generator_function": "function",
    "class": "class",
    "object": "container",
}

_JAVASCRIPT = LanguageSpec(
    functions=frozenset({"function_declaration", "generator_function_declaration", "method_definition"}),
    classes=frozenset({"class_declaration"}),
    containers={"object": (None, True)},
    valued={
        "variable_declarator": ("name", "value"),
        "field_definition": ("property", "value"),
        "pair": ("key", "value"),
        "assignment_expression": ("left", "right"),
    },
    value_kinds=_JS_FUNCTION_VALUES,
    comments=frozenset({"comment"}),
    prefixes=frozenset({"decorator"}),
    wrappers=frozenset(
        {"export_statement", "lexical_declaration", "variable_declaration", "expression_statement"}
    ),
)

_TYPESCRIPT = LanguageSpec(
    functions=_JAVASCRIPT.functions,
    classes=frozenset(
        {"class_declaration", "abstract_class_declaration", "interface_declaration", "enum_declaration"}
    ),
    containers={"object": (None, True), "internal_module": ("name", False), "module": ("name", False)},
    valued={
        "variable_declarator": ("name", "value"),
        "public_field_definition": ("name", "value"),
        "pair": ("key", "value"),
        "assignment_expression": ("left", "right"),
    },
    value_kinds=_JS_FUNCTION_VALUES,
    comments=_JAVASCRIPT.comments,
    prefixes=_JAVASCRIPT.prefixes,
    wrappers=_JAVASCRIPT.wrappers | {"ambient_declaration"},
)

_SPECS: Mapping[str, LanguageSpec] = {
    "python": LanguageSpec(
        functions=frozenset({"function_definition"}),
        classes=frozenset({"class_definition"}),
        comments=frozenset({"comment"}),
        prefixes=frozenset({"decorator"}),
        wrappers=frozenset({"decorated_definition"}),
        docstring_field="body",
        indented_blocks=True,
    ),
    "javascript": _JAVASCRIPT,
    "typescript": _TYPESCRIPT,
    "tsx": _TYPESCRIPT,
    "go": LanguageSpec(
        functions=frozenset({"function_declaration", "method_declaration"}),
        classes=frozenset(),
        valued={"type_spec": ("name", "type")},
        value_kinds={"struct_type": "class", "interface_type": "class"},
        receiver_field="receiver",
        comments=frozenset({"comment"}),
        wrappers=frozenset({"type_declaration"}),
    ),
    "java": LanguageSpec(
        functions=frozenset(
            {"method_declaration", "constructor_declaration", "compact_constructor_declaration"}
        ),
        classes=frozenset(
            {
                "class_declaration",
                "interface_declaration",
                "enum_declaration",
                "record_declaration",
                "annotation_type_declaration",
            }
        ),
        comments=frozenset({"line_comment", "block_comment"}),
    ),
    "rust": LanguageSpec(
        functions=frozenset({"function_item"}),
        classes=frozenset({"struct_item", "enum_item", "union_item", "trait_item"}),
        containers={"impl_item": ("type", True), "mod_item": ("name", False)},
        comments=frozenset({"line_comment", "block_comment"}),
        prefixes=frozenset({"attribute_item"}),
    ),
    "ruby": LanguageSpec(
        functions=frozenset({"method", "singleton_method"}),
        classes=frozenset({"class", "module"}),
        containers={"singleton_class": (None, True)},
        comments=frozenset({"comment"}),
    ),
}


def language_for_path(path: str) -> str | None:
    """Return the language of a source file from its name, or None for anything that is not code."""
    name = PurePosixPath(path.replace("\\", "/")).name
    if name in _FILE_NAMES:
        return _FILE_NAMES[name]
    return _EXTENSIONS.get(PurePosixPath(name).suffix.lower())


def known_languages() -> list[str]:
    """The language names files are indexed under (what a search's language filter accepts), sorted."""
    return sorted({*_EXTENSIONS.values(), *_FILE_NAMES.values()})


def spec_for(language: str) -> LanguageSpec | None:
    """Return the node-type tables of a language, or None where it has no grammar."""
    return _SPECS.get(language)


@functools.cache
def grammar_for(language: str) -> Language | None:
    """Return the tree-sitter grammar of a language, or None where it has none."""
    if language not in _GRAMMARS:
        return None
    package, function = _GRAMMARS[language]
    return Language(getattr(importlib.import_module(package), function)())


class _ThreadParsers(threading.local):
    """Each thread's parsers, by language: a `Parser` is not safe to share between threads, and one
    shared behind a lock let one slow file hold up every parse (a code action waited 202 s)."""

    def __init__(self) -> None:
        self.by_language: dict[str, Parser | None] = {}


_PARSERS = _ThreadParsers()


def parser_for(language: str) -> Parser | None:
    """Return this thread's parser for a language, or None where it has no grammar."""
    parsers = _PARSERS.by_language
    if language not in parsers:
        grammar = grammar_for(language)
        parsers[language] = Parser(grammar) if grammar is not None else None
    return parsers[language]


def parse_within_budget(language: str, data: bytes) -> Tree | None:
    """This thread's parse of `data`, or None without a grammar or past the parse budget.

    The budget is work, counted where tree-sitter reports it, so the same file always gets the same
    answer: the lexer may read `PARSE_READ_FACTOR` times the file plus `PARSE_READ_ALLOWANCE` bytes,
    and the parser take a step (tree-sitter's progress callback, every 100 operations) per
    `PARSE_BYTES_PER_STEP` bytes plus `PARSE_STEP_ALLOWANCE`; ordinary code stays far inside both
    (it lexes each byte once to a few times, and steps once per 50 bytes).
    `PARSE_SECONDS` of wall time is the backstop. tree-sitter-python, for one, lexes a run of comment
    lines after a statement in quadratic time (10,000 lines 3 s, 100,000 lines 243 s).
    """
    parser = parser_for(language)
    if parser is None:
        return None
    budget = _ParseBudget(len(data))
    view = memoryview(data)

    def read(offset: int, _: Point) -> bytes | memoryview:
        if budget.read(min(PARSE_BLOCK, len(data) - offset)):
            return b""  # past the budget: the text ends here, and `progress` halts the parse
        return view[offset : offset + PARSE_BLOCK]

    try:
        tree = parser.parse(read, progress_callback=lambda _offset, _error: budget.step())
    except ValueError:  # halted by the progress callback
        tree = None
    if budget.exceeded or tree is None:
        parser.reset()  # a halted parse would otherwise resume on the next file
        return None
    return tree


class _ParseBudget:
    """What one parse may still do (see `parse_within_budget`)."""

    def __init__(self, size: int) -> None:
        self.bytes_left = PARSE_READ_FACTOR * size + PARSE_READ_ALLOWANCE
        self.steps_left = size // PARSE_BYTES_PER_STEP + PARSE_STEP_ALLOWANCE
        self.deadline = time.monotonic() + PARSE_SECONDS
        self.exceeded = False

    def read(self, size: int) -> bool:
        """Count `size` bytes lexed; True once the budget is spent."""
        self.bytes_left -= max(size, 0)
        return self._check(self.bytes_left < 0)

    def step(self) -> bool:
        """Count one parser step; True once the budget is spent (halting the parse)."""
        self.steps_left -= 1
        return self._check(self.steps_left < 0)

    def _check(self, spent: bool) -> bool:
        self.exceeded = self.exceeded or spent or time.monotonic() > self.deadline
        return self.exceeded


@functools.cache
def definition_query(language: str) -> Query | None:
    """Return the query that captures a language's definitions (`@definition`) and comments and
    decorators (`@prefix`), or None where it has no grammar."""
    grammar = grammar_for(language)
    spec = spec_for(language)
    if grammar is None or spec is None:
        return None
    definitions = " ".join(f"({kind})" for kind in sorted(spec.definition_types()))
    source = f"[{definitions}] @definition"
    if spec.comments | spec.prefixes:
        prefixes = " ".join(f"({kind})" for kind in sorted(spec.comments | spec.prefixes))
        source += f"\n[{prefixes}] @prefix"
    return Query(grammar, source)
