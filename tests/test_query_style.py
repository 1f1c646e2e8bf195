"""Docstring summaries rewritten as web-search queries (trainer.query_style)."""

from __future__ import annotations

import random

from codesieve.trainer.data import Pair
from codesieve.trainer.query_style import web_query, with_web_queries


def test_a_docstring_summary_becomes_a_short_query_naming_the_language() -> None:
    for seed in range(20):
        query = web_query(
            "ReadFrom reads the index from r into x; x must not be nil.",
            "go",
            "Index.ReadFrom",
            random.Random(seed),
        )
        words = query.split()
        assert "readfrom" not in words and "nil" not in words  # own name and the trailing clause dropped
        assert "read" in words and "reads" not in words and "the" not in words
        assert {"golang", "go"} & {words[0], words[-1]}
        assert query == query.lower()


def test_imperative_forms() -> None:
    cases = {
        "Returns the cell height.": "return",
        "Applies the plugin.": "apply",
        "Matches a glob pattern against paths.": "match",
        "Process all the items.": "process",
    }
    for summary, verb in cases.items():
        query = web_query(summary, "", "", random.Random(0))
        assert query.split()[0] in (verb, "how") and verb in query.split()


def test_a_seeded_share_of_pairs_is_rewritten() -> None:
    pairs = [Pair(str(n), f"Returns item number {n} of the list.", "code", "python") for n in range(400)]
    rewritten = with_web_queries(pairs, 0.5, seed=1)
    changed = sum(new.query != old.query for new, old in zip(rewritten, pairs, strict=True))
    assert 150 < changed < 250
    assert with_web_queries(pairs, 0.5, seed=1) == rewritten
    assert with_web_queries(pairs, 0.0, seed=1) == pairs
    assert all("python" in pair.query.split() for pair in with_web_queries(pairs, 1.0, seed=2))
