"""Mine (description, code) pairs from a repository, the way CodeSearchNet built its corpus.

The runtime's scanner finds the files (ignore files honoured) and its chunker cuts them into
definitions, so training sees code exactly as search indexes it. Every function or method with
a docstring or leading doc comment (`Chunk.doc_span`) gives one pair:

- description: the first sentence of the docstring, with quote and comment markers, parameter
  and return sections (``:param``, ``@param``, ``Args:`` ...), reST/Javadoc/markdown markup and
  URLs removed, and whitespace collapsed;
- code: the chunk's text with the docstring removed (a query must not be found in its answer).

Filters, as CodeSearchNet: code of at least 3 non-blank lines; a description of 3 to 256
whitespace tokens; no tests (a path part named test/tests/spec, a test file name, or a function
name starting with "test"); no dunder methods; no generated files (the first lines say
"generated" or "DO NOT EDIT"); and no exact duplicates of code already mined (whitespace
normalised, `negatives.code_key`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from codesieve.server.chunking import Chunk, chunk_source
from codesieve.server.scanning import SourceError, read_source, scan_workspace

from .data import Pair
from .negatives import code_key

MIN_CODE_LINES = 3
MIN_DESCRIPTION_TOKENS = 3
MAX_DESCRIPTION_TOKENS = 256
HEADER_CHARS = 1000  # how much of a file's start is searched for "generated" markers

TEST_DIRECTORIES = frozenset({"test", "tests", "spec", "specs", "__tests__", "testing"})
_TEST_FILE = re.compile(
    r"(^test_|_test\.|_tests\.|_spec\.|\.spec\.|\.test\.|Tests?\.(java|kt|cs|scala)$|^conftest\.py$)"
)
_DUNDER = re.compile(r"^__\w+__$")
_GENERATED = re.compile(r"generated|do not edit", re.IGNORECASE)

# A line that starts a parameter/returns/examples section: the description stops before it.
_SECTION = re.compile(
    r"^\s*(?:[:@](?:param|parameter|arg|argument|key|keyword|type|return|returns|rtype|raise|raises|"
    r"throws|exception|yield|yields|see|since|deprecated|author|version|example|note|todo)\b"
    r"|(?:args|arguments|parameters|params|returns?|raises|yields|examples?|notes?|attributes|"
    r"see also|references|warnings?|todo|usage)\s*:?\s*$"
    r"|(?:args|arguments|parameters|params|returns?|raises|yields|examples?)\s*:"
    r"|>>>|-{3,}\s*$|={3,}\s*$|```)",
    re.IGNORECASE,
)
_COMMENT_PREFIX = re.compile(r"^\s*(?:/\*\*+|/\*!?|\*+/|\*(?!\*)|///?!?|//|#+!?|--|=begin|=end)?\s?")
_QUOTES = re.compile(r'^\s*[rRuUbBfF]{0,2}("""|\'\'\'|"|\')|("""|\'\'\'|"|\')\s*$')
_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+")
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_JAVADOC_INLINE = re.compile(r"\{@\w+\s+([^}]*)\}")
_REST_ROLE = re.compile(r":[\w.-]+:`~?([^`]*)`")
_BACKTICKS = re.compile(r"`+([^`]*)`+")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "Mr.", "Dr.", "No.")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


@dataclass
class MiningReport:
    """The pairs mined from a repository and how many definitions each filter dropped."""

    pairs: list[Pair] = field(default_factory=list)
    files: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> definitions


def clean_description(docstring: str) -> str:
    """The first sentence of a docstring or doc comment as plain text ("" when there is none).

    Removes quotes and comment markers, stops at the first blank line or section marker
    (``:param``, ``@return``, ``Args:``, ``>>>`` ...), unwraps reST roles, Javadoc inline tags,
    markdown links, backticks and HTML tags, drops URLs, and collapses whitespace.
    """
    lines: list[str] = []
    for raw in docstring.replace("\r\n", "\n").split("\n"):
        line = _QUOTES.sub("", raw)
        line = _COMMENT_PREFIX.sub("", line, count=1).rstrip()
        line = re.sub(r"\*+/\s*$", "", line).rstrip()
        if not line.strip():
            if lines:
                break  # end of the first paragraph
            continue
        if _SECTION.match(line):
            break
        lines.append(line.strip())
    text = " ".join(lines)
    text = _REST_ROLE.sub(r"\1", text)
    text = _JAVADOC_INLINE.sub(r"\1", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _URL.sub("", text)
    text = _BACKTICKS.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _HTML_TAG.sub(" ", text)
    text = " ".join(text.split())
    return _first_sentence(text)


def _first_sentence(text: str) -> str:
    """Text up to the first sentence end that is not an abbreviation like "e.g."."""
    for match in _SENTENCE_END.finditer(text):
        before = text[: match.start()]
        if before.endswith(_ABBREVIATIONS) or re.search(r"\b\w\.$", before):
            continue  # "e.g.", or a single letter such as an initial or "x."
        return before.strip()
    return text.strip()


def code_without_doc(chunk: Chunk) -> str:
    """The chunk's text with its doc span cut out, and the line it leaves blank removed."""
    if chunk.doc_span is None:
        return chunk.text
    start, end = chunk.doc_span
    before, after = chunk.text[:start], chunk.text[end:]
    line_start = before.rfind("\n") + 1
    line_end = after.find("\n")
    line_end = len(after) if line_end < 0 else line_end
    if not (before[line_start:] + after[:line_end]).strip():
        # The doc span had its own lines: drop them with the rest of their line.
        before, after = before[:line_start], after[line_end + 1 :]
    return (before + after).strip("\n")


def is_test_path(path: str) -> bool:
    """Whether a workspace-relative path looks like a test file."""
    parts = PurePosixPath(path).parts
    return any(part.lower() in TEST_DIRECTORIES for part in parts[:-1]) or bool(_TEST_FILE.search(parts[-1]))


def _drop_reason(chunk: Chunk, description: str, code: str) -> str | None:
    short_name = chunk.name.rsplit(".", 1)[-1]
    if short_name.lower().startswith("test"):
        return "test"
    if _DUNDER.match(short_name):
        return "dunder"
    if sum(1 for line in code.split("\n") if line.strip()) < MIN_CODE_LINES:
        return "short-code"
    tokens = len(description.split())
    if tokens < MIN_DESCRIPTION_TOKENS:
        return "short-description"
    if tokens > MAX_DESCRIPTION_TOKENS:
        return "long-description"
    return None


def pairs_from_source(path: str, text: str, language: str | None = None) -> tuple[list[Pair], Counter[str]]:
    """Pairs from one file's text (no duplicate check across files), and the drop counts."""
    dropped: Counter[str] = Counter()
    if is_test_path(path):
        dropped["test-file"] += 1
        return [], dropped
    if _GENERATED.search(text[:HEADER_CHARS]):
        dropped["generated-file"] += 1
        return [], dropped
    pairs: list[Pair] = []
    for chunk in chunk_source(path, text, language):
        if chunk.kind not in ("function", "method"):
            continue
        if chunk.doc_span is None:
            dropped["no-docstring"] += 1
            continue
        description = clean_description(chunk.text[chunk.doc_span[0] : chunk.doc_span[1]])
        code = code_without_doc(chunk)
        reason = _drop_reason(chunk, description, code)
        if reason is not None:
            dropped[reason] += 1
            continue
        pairs.append(Pair(chunk.id, description, code, chunk.language, chunk.path, chunk.name))
    return pairs, dropped


def mine_repository(root: Path, max_file_size: int = 1_000_000, exclude: tuple[str, ...] = ()) -> MiningReport:
    """All pairs of a repository, in path order, exact duplicates of earlier code dropped."""
    report = MiningReport()
    seen: set[str] = set()
    scan = scan_workspace(Path(root), max_file_size=max_file_size, exclude=exclude)
    for source in scan.files:
        try:
            text = read_source(source.abspath, max_file_size)
        except (SourceError, OSError):
            report.dropped["unreadable-file"] += 1
            continue
        report.files += 1
        pairs, dropped = pairs_from_source(source.path, text, source.language)
        report.dropped.update(dropped)
        for pair in pairs:
            key = code_key(pair.code)
            if key in seen:
                report.dropped["duplicate-code"] += 1
                continue
            seen.add(key)
            report.pairs.append(pair)
    return report
