"""Which language a file is in, its tree-sitter grammar, and its parse, bounded in work.

Each grammar is a package of its own from the tree-sitter project or its grammar authors (see
docs/ARCHITECTURE.md, "Grammars", for why not a bundle of them), imported when a file of its
language is first parsed: a search that parses nothing loads none. What the chunker looks for in
each grammar's trees is in `chunk/language_specs.py`.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections.abc import Mapping
from pathlib import PurePosixPath

from tree_sitter import Language, Parser, Point, Tree

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
    ".bats": "shell",
    # Source languages without a grammar here: chunked as line windows.
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
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    "kotlin": ("tree_sitter_kotlin", "language"),
    "swift": ("tree_sitter_swift", "language"),
    "php": ("tree_sitter_php", "language_php"),  # PHP inside HTML, as .php files are
    "scala": ("tree_sitter_scala", "language"),
    "lua": ("tree_sitter_lua", "language"),
    "shell": ("tree_sitter_bash", "language"),
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


def parsed_languages() -> list[str]:
    """The languages whose files are split into definitions (the others into line windows), sorted."""
    return sorted(_GRAMMARS)


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
