"""Splitting code and queries into lowercase words, for lexical (BM25) matching."""

from __future__ import annotations

import re

# Runs of letters and digits: underscores, punctuation and whitespace separate them (snake_case).
_ALNUM_RUN = re.compile(r"[^\W_]+")
# Within a run: an acronym before a capitalised word (HTTP|Server), a capitalised or lowercase word
# (parse, Json), an acronym at the end (ID), or digits. Only ASCII capitals start a new word; other
# letters (é, É, CJK) continue the current one.
_LOWER = r"[^\W\d_A-Z]"
_WORD = re.compile(rf"[A-Z]+(?=[A-Z]{_LOWER})|[A-Z]?{_LOWER}+|[A-Z]+|\d+")


def split_identifiers(text: str) -> list[str]:
    """Split text into lowercase words, breaking camelCase, PascalCase, snake_case and digits.

    "parseHTTPResponse_v2" -> ["parse", "http", "response", "v", "2"]. Punctuation is dropped.
    """
    words: list[str] = []
    for run in _ALNUM_RUN.findall(text):
        words.extend(word.lower() for word in _WORD.findall(run))
    return words
