"""Rewrite docstring summaries as the short queries people type into a web search.

Mined pairs pair code with its docstring's first sentence ("Returns the number of items in the
queue."); people searching type "python queue size" or "how to count items in a queue python" (CoSQA's
queries are of that kind). `web_query` turns the first into something like the second, with rules
only: the function's own name and a trailing clause dropped, the verb in the imperative ("returns" ->
"return"), articles dropped, lower case, the language's name before or after, sometimes "how to".
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import replace

from .data import Pair

LANGUAGE_NAMES = {
    "python": ("python",),
    "javascript": ("javascript", "js", "node"),
    "typescript": ("typescript", "ts"),
    "go": ("golang", "go"),
    "ruby": ("ruby",),
    "rust": ("rust",),
    "java": ("java",),
}
_CLAUSE_END = re.compile(r"[(;:]|, | - ")
_WORD = re.compile(r"[\w'-]+(?:\.\w+)*")


def _imperative(verb: str) -> str:
    """ "returns" -> "return", "applies" -> "apply", "matches" -> "match"; other words unchanged."""
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "zes")):
        return verb[:-2]
    if verb.endswith("s") and not verb.endswith(("ss", "us", "is")) and len(verb) > 3:
        return verb[:-1]
    return verb


def web_query(query: str, language: str, name: str, rng: random.Random) -> str:
    """A web-search-style rewrite of a docstring summary (see the module doc)."""
    text = query.strip()
    own = re.split(r"[.:#]", name)[-1]  # "Index.ReadFrom" -> "ReadFrom"
    if own and text.startswith(own + " "):
        text = text[len(own) + 1 :]  # Go style: "ReadFrom reads the index ..."
    clause = _CLAUSE_END.search(text)
    if clause and len(text[: clause.start()].split()) >= 3:
        text = text[: clause.start()]
    words = [word.lower() for word in _WORD.findall(text)]
    if not words:
        return query
    words[0] = _imperative(words[0])
    words = [word for word in words if word != "the" and (word not in ("a", "an") or rng.random() < 0.5)]
    if rng.random() < 0.25:
        words = ["how", "to", *words]
    names = LANGUAGE_NAMES.get(language)
    if names:
        label = rng.choice(names)
        where = rng.random()
        words = [label, *words] if where < 0.45 else [*words, label] if where < 0.8 else [*words, "in", label]
    return " ".join(words) or query


def with_web_queries(pairs: Sequence[Pair], share: float, seed: int) -> list[Pair]:
    """`pairs` with the queries of a seeded random `share` of them rewritten by `web_query`."""
    rng = random.Random(seed)
    return [
        replace(pair, query=web_query(pair.query, pair.language, pair.name, rng))
        if rng.random() < share
        else pair
        for pair in pairs
    ]
