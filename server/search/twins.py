"""One answer per twin: near-duplicate chunks, such as sync/async pairs and copied functions.

Two chunks are twins when their code is nearly the same word for word: the multiset Jaccard
similarity of their words (identifiers, keywords and numbers; `async` and `await` left out, which is
all that tells most sync/async pairs apart) is at least `TWIN_SIMILARITY`, both have at least
`MIN_WORDS` words (short getters and setters look alike without being copies), they are of the same
kind and language (a class with one method is not that method's twin, nor its twin's), and neither
holds the other. The cascade keeps the best-ranked chunk of each group and lists the others as its
twins ("also at").
Only the first `TWIN_WINDOW` hits are compared, so a long result list costs no more than a short one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from ..index.store import StoredChunk

TWIN_SIMILARITY = 0.85
MIN_WORDS = 20
TWIN_WINDOW = 50
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_IGNORED = frozenset({"async", "await"})


def code_words(text: str) -> Counter[str]:
    """The words of a code, counted, without `async` and `await`."""
    return Counter(word for word in _WORD.findall(text) if word not in _IGNORED)


def similarity(first: Counter[str], second: Counter[str]) -> float:
    """Multiset Jaccard similarity: shared word occurrences over all of them."""
    union = sum((first | second).values())
    return sum((first & second).values()) / union if union else 0.0


def _nested(first: StoredChunk, second: StoredChunk) -> bool:
    return first.path == second.path and (
        first.start_line <= second.start_line <= second.end_line <= first.end_line
        or second.start_line <= first.start_line <= first.end_line <= second.end_line
    )


def twin_leaders(chunks: Sequence[StoredChunk], window: int = TWIN_WINDOW) -> list[int]:
    """For each chunk, the position of the first chunk before it that it is a twin of, else its own.

    Chunks past `window` are their own leaders."""
    leaders = list(range(len(chunks)))
    words: list[tuple[int, Counter[str], int]] = []  # leaders so far: position, words, word count
    for position, chunk in enumerate(chunks[:window]):
        bag = code_words(chunk.text)
        size = sum(bag.values())
        if size >= MIN_WORDS:
            for leader, leader_bag, leader_size in words:
                other = chunks[leader]
                if (
                    min(size, leader_size) >= TWIN_SIMILARITY * max(size, leader_size)  # a bound, cheap
                    and (other.kind, other.language) == (chunk.kind, chunk.language)
                    and not _nested(other, chunk)
                    and similarity(bag, leader_bag) >= TWIN_SIMILARITY
                ):
                    leaders[position] = leader
                    break
        if leaders[position] == position and size >= MIN_WORDS:
            words.append((position, bag, size))
    return leaders
