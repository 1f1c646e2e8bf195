"""The first stage of a search: dense retrieval fused with the lexical index, tests after implementation.

Candidates are the vector index's top N by cosine and the lexical index's top N by BM25 (FTS5 over
the words of `lexical.py`), both among the chunks the filters allow. Each candidate gets both
scores: its cosine (from its stored vector when only the lexical side found it) and its BM25 score
(0 when it holds none of the query's words, or ranks below the lexical top `lexical_depth`). Per query, each score becomes a z-score over the
candidates, and the first-stage score is

    score = (1 - w) * z(cosine) + w * z(bm25) - test_penalty * is_test

with the model's `SearchSettings` (`model/folder.py`): w is the card's `lexical_weight` (absent: 0, dense
only, and no BM25 is computed;
`bench/hybrid_weight.py` chooses it on the dev splits) and `is_test` is 1 for test code
(`tests_by_path.py`: test files, and definitions marked as tests) unless the search includes tests. Candidates come out best first, ties in dense
order. A query that is a name (`should_bypass_proxies`, `HTTPAdapter.send`) puts the definitions of
that name first, in that same order: someone who types a name wants its definition, which a long
function's embedding or BM25 (which discounts long chunks) may rank below shorter code that
mentions it. The cascade (`cascade.py`) reranks the head of this list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..index.lexical import query_words, symbol_of
from ..index.store import ChunkStore, StoredChunk
from ..index.vector_index import VectorIndex
from ..model.folder import SearchSettings
from .tests_by_path import is_test_code

# How far the definitions of a name typed as the query score above the best other candidate, so that
# the score shown is the one that orders the list.
DEFINITION_MARGIN = 0.01


@dataclass(frozen=True)
class Candidate:
    """A chunk the first stage considers, with the two scores it is ranked by."""

    chunk: StoredChunk
    cosine: float
    lexical: float  # BM25; 0 when the chunk holds none of the query's words
    defines: bool = False  # the query is this chunk's name (or its last parts)
    score: float = 0.0  # the first-stage score, set by `rank`: what orders the candidates


def z_scores(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """(values - mean) / standard deviation; zeros when all values are equal."""
    if len(values) == 0:
        return np.zeros_like(values)  # std() of nothing warns on stderr (the first find on an empty index)
    spread = float(values.std())
    if spread == 0.0:
        return np.zeros_like(values)
    result: NDArray[np.float64] = (values - values.mean()) / spread
    return result


def dense_first_stage(cosines: NDArray[np.floating[Any]], over: int = 100) -> NDArray[np.float64]:
    """Row by row (each row a query's cosines, best first), the first-stage score of a dense-only first
    stage (no lexical weight, no test code): z-scores with the mean and spread of the top `over` (the
    runtime's N), so the cascade's fusion reads the same scale on a benchmark pool as in search."""
    values = np.atleast_2d(np.asarray(cosines, dtype=np.float64))
    top = values[:, :over]
    spread = top.std(axis=1, keepdims=True) if top.shape[1] else np.ones((len(values), 1))
    result: NDArray[np.float64] = (values - top.mean(axis=1, keepdims=True)) / np.where(
        spread > 0, spread, 1.0
    )
    return result


def fused_scores(
    candidates: Sequence[Candidate], settings: SearchSettings, include_tests: bool
) -> NDArray[np.float64]:
    """The first-stage score of each candidate (see the module doc)."""
    scores = z_scores(np.array([candidate.cosine for candidate in candidates], dtype=np.float64))
    weight = settings.lexical_weight
    if weight > 0:
        lexical = z_scores(np.array([candidate.lexical for candidate in candidates], dtype=np.float64))
        scores = (1.0 - weight) * scores + weight * lexical
    if not include_tests:
        scores = scores - settings.test_penalty * np.array(
            [is_test_code(candidate.chunk) for candidate in candidates], dtype=np.float64
        )
    return scores


def rank(
    candidates: Sequence[Candidate], settings: SearchSettings, include_tests: bool = False
) -> list[Candidate]:
    """Definitions of the query's name first, then the rest, each by first-stage score (which each
    candidate then carries: the definitions' lifted above the rest's); ties keep order."""
    scores = fused_scores(candidates, settings, include_tests)
    defines = np.array([candidate.defines for candidate in candidates], dtype=bool)
    if defines.any() and not defines.all():  # lift the definitions above the rest, keeping their order
        scores[defines] += max(0.0, float(scores[~defines].max() - scores[defines].min())) + DEFINITION_MARGIN
    order = sorted(
        range(len(candidates)), key=lambda index: (not candidates[index].defines, -scores[index], index)
    )
    return [replace(candidates[index], score=float(scores[index])) for index in order]


class FirstStage:
    """Dense and lexical candidates of a query from one index, and their fused order."""

    def __init__(self, vectors: VectorIndex, store: ChunkStore, settings: SearchSettings) -> None:
        self.vectors = vectors
        self.store = store
        self.settings = settings

    def search(
        self,
        query: str,
        vector: NDArray[np.float32],
        *,
        depth: int,
        allowed: Sequence[int] | None = None,
        include_tests: bool = False,
    ) -> list[Candidate]:
        """The candidates of `query` (embedded as `vector`), best first."""
        lexical = self.settings.lexical_weight > 0
        found = self.candidates(query, vector, depth=depth, allowed=allowed, lexical=lexical)
        return rank(found, self.settings, include_tests)

    def candidates(
        self,
        query: str,
        vector: NDArray[np.float32],
        *,
        depth: int,
        allowed: Sequence[int] | None = None,
        lexical: bool = True,
    ) -> list[Candidate]:
        """Dense top `depth`, the lexical top `depth` and the query name's definitions, with both scores."""
        dense = self.vectors.search(vector, depth, allowed)
        ready = self.store.lexical_ready  # False on an index another, older process writes
        matches = self._lexical_matches(query, allowed) if lexical and ready else {}
        definitions = self._definitions(query, allowed, depth) if ready else set()
        cosines = {label: score for label, score in dense}
        lexical_top = sorted(matches, key=lambda label: (-matches[label], label))[:depth]
        extra = list(
            dict.fromkeys(label for label in [*lexical_top, *sorted(definitions)] if label not in cosines)
        )
        for label, stored in self.store.vectors_by_label(extra).items():
            cosines[label] = float(stored @ vector)
        labels = [label for label, _ in dense] + [label for label in extra if label in cosines]
        chunks = self.store.chunks_by_label(labels)
        return [
            Candidate(chunks[label], cosines[label], matches.get(label, 0.0), label in definitions)
            for label in labels
            if label in chunks
        ]

    def _definitions(self, query: str, allowed: Sequence[int] | None, depth: int) -> set[int]:
        """Labels of the chunks the query names, when it is a name (at most `depth`)."""
        symbol = symbol_of(query)
        if symbol is None:
            return set()
        labels = self.store.labels_with_word(symbol)
        if allowed is not None:
            permitted = set(allowed)
            labels = [label for label in labels if label in permitted]
        return set(sorted(labels)[:depth])

    def _lexical_matches(self, query: str, allowed: Sequence[int] | None) -> dict[int, float]:
        """BM25 of the lexical top `lexical_depth` among `allowed` (all matches when filtered)."""
        if allowed is None:
            return self.store.lexical_search(query_words(query), self.settings.lexical_depth)
        permitted = set(allowed)
        matches = self.store.lexical_search(query_words(query), None)
        return {label: score for label, score in matches.items() if label in permitted}
