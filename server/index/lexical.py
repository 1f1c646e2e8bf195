"""Words for lexical matching: identifiers split into lowercase words, plus the whole identifiers.

`split_identifiers` is the tokenisation of the BM25 baseline (bench/bm25_baseline.py, which
reproduces the benchmarks' reference figures). The index's lexical table (`store.py`, SQLite FTS5)
holds, per chunk, those words of its qualified name and text, and each multi-word identifier whole
as well ("should_bypass_proxies", "httpadapter", and the qualified name "httpadapter.send"), so an
identifier typed as a query matches the code that spells it out more strongly than code that only
shares its words. Queries get the same words, and dotted names whole ("HTTPAdapter.send").

Each chunk also gets definition tokens, one per trailing part of its qualified name ("=send",
"=httpadapter.send" for `HTTPAdapter.send`): a query that is a name (`symbol_of`) finds the
definitions of that name through them (`first_stage.py` puts those first). No query word starts
with "=", so they never enter a BM25 score.

The words are computed here, not by an FTS5 tokenizer (Python's sqlite3 cannot register one): they
are given space-separated to a contentless table whose tokenizer (`ascii` with `_`, `.` and `=` as word
characters) splits them on the spaces alone, so what FTS5 indexes is exactly this module's output. Changing the output changes what is indexed: bump
`LEXICAL_VERSION` with it, and indexes rebuild their lexical table on open.
"""

from __future__ import annotations

import re

LEXICAL_VERSION = "1"  # of the words below; stored in the index, a mismatch rebuilds the lexical table

# Runs of letters and digits: underscores, punctuation and whitespace separate them (snake_case).
_ALNUM_RUN = re.compile(r"[^\W_]+")
# Within a run: an acronym before a capitalised word (HTTP|Server), a capitalised or lowercase word
# (parse, Json), an acronym at the end (ID), or digits. Only ASCII capitals start a new word; other
# letters (é, É, CJK) continue the current one.
_LOWER = r"[^\W\d_A-Z]"
_WORD = re.compile(rf"[A-Z]+(?=[A-Z]{_LOWER})|[A-Z]?{_LOWER}+|[A-Z]+|\d+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Starts only where an identifier starts: tried inside a long run it would rescan the run from every
# position (10,000 characters took a second).
_DOTTED = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
DEFINITION_MARK = "="  # starts a definition token; a word character of the table's tokenizer


def split_identifiers(text: str) -> list[str]:
    """Split text into lowercase words, breaking camelCase, PascalCase, snake_case and digits.

    "parseHTTPResponse_v2" -> ["parse", "http", "response", "v", "2"]. Punctuation is dropped.
    """
    words: list[str] = []
    for run in _ALNUM_RUN.findall(text):
        words.extend(word.lower() for word in _WORD.findall(run))
    return words


def whole_identifiers(text: str) -> list[str]:
    """Lowercased identifiers that are more than their one split word ("get_URL", "HTTPAdapter")."""
    found = []
    for identifier in _IDENTIFIER.findall(text):
        if identifier.isalpha() and (identifier[1:].islower() or identifier.isupper()):
            continue  # one word ("send", "Send", "URL"): the split words already hold it
        lowered = identifier.lower()
        if split_identifiers(identifier) != [lowered]:
            found.append(lowered)
    return found


def chunk_words(name: str, text: str) -> str:
    """What the lexical table holds for a chunk: its words, space-separated (see the module doc)."""
    words = [*split_identifiers(name), *whole_identifiers(name), *split_identifiers(text)]
    words += whole_identifiers(text)
    if "." in name:
        words.append(name.lower())
    return " ".join(words + definition_tokens(name))


def definition_tokens(name: str) -> list[str]:
    """ "=c", "=b.c", "=a.b.c" for a chunk named "A.b.c"; none for a window ("file.c:1-60")."""
    if not _NAME.fullmatch(name):
        return []
    parts = name.lower().split(".")
    return [DEFINITION_MARK + ".".join(parts[start:]) for start in reversed(range(len(parts)))]


def symbol_of(query: str) -> str | None:
    """The definition token a query asks for when it is a name ("HTTPAdapter.send"), else None."""
    stripped = query.strip()
    return DEFINITION_MARK + stripped.lower() if _NAME.fullmatch(stripped) else None


MAX_QUERY_WORDS = 256  # a pasted page of text becomes a lexical query of its first 256 distinct words


def query_words(query: str) -> list[str]:
    """The distinct words of a query, in order: split words, whole identifiers, dotted names (at most
    MAX_QUERY_WORDS)."""
    words = [*split_identifiers(query), *whole_identifiers(query)]
    words += [dotted.lower() for dotted in _DOTTED.findall(query)]
    return list(dict.fromkeys(words))[:MAX_QUERY_WORDS]
