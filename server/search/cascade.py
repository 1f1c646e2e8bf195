"""Retrieve, then rerank: the search cascade (docs/TRAINING.md, "What search does with the models").

The dual encoder embeds the query and the first stage (`first_stage.py`: the vector index's
cosine fused with the lexical index's BM25, test code after implementation) returns its top
`retrieve_depth` (N) candidates, among the chunks the filters allow (filters apply before ranking,
not after). The cross-encoder then scores the top `rerank_depth` (K) of them against the query. The
final order is an explicit two-stage merge: those K ordered by the ranker's score fused with the
first stage's, `ranker + w * first_stage` with w the model card's `fusion_weight` (chosen on dev; 0
is the ranker alone), followed by the rest in first-stage order. The first-stage score already
holds the lexical match and the test penalty, so reranking keeps both; definitions of a name typed
as the query stay first. With no ranker in the model folder, or `rerank=False`, the first-stage
order is the result and the stats say why. Every hit's `score` is the one that orders it. Near-copies
(`twins.py`: sync/async pairs, copied functions) take one place, the best-ranked listing the others.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from ..index.lexical import symbol_of
from ..index.store import ChunkStore, StoredChunk
from ..index.vector_index import VectorIndex
from ..model.encoders import OnnxRanker, OnnxRetriever
from ..model.folder import SearchSettings
from .first_stage import Candidate, FirstStage, rank
from .twins import twin_leaders


@dataclass(frozen=True)
class Hit:
    chunk: StoredChunk
    score: float  # what orders it: the fused ranker score when reranked, else the first-stage score
    stage: str  # "rerank" | "retrieve" (in first-stage order, which fuses more than the cosine)
    cosine: float  # the retriever's cosine, whatever the stage: comparable across indexes
    defines: bool = False  # the query names this chunk's definition (it stays first when reranked)
    twins: tuple[StoredChunk, ...] = ()  # near-copies ranked below it, shown as "also at" (`twins.py`)


@dataclass
class SearchStats:
    retrieved: int = 0
    reranked: int = 0
    retrieve_ms: float = 0.0
    rerank_ms: float = 0.0
    note: str = ""  # why reranking did not happen, when it did not
    query_cut: int = 0  # the tokens of the query the model read, when it had more
    missing_name: str = ""  # the query is a name that no indexed definition has

    @classmethod
    def combined(cls, stats: Sequence[SearchStats]) -> SearchStats:
        """The stats of several searches answered together (one per folder): counts and times add up."""
        return cls(
            retrieved=sum(stat.retrieved for stat in stats),
            reranked=sum(stat.reranked for stat in stats),
            retrieve_ms=sum(stat.retrieve_ms for stat in stats),
            rerank_ms=sum(stat.rerank_ms for stat in stats),
            note="; ".join(sorted({stat.note for stat in stats if stat.note})),
            query_cut=max((stat.query_cut for stat in stats), default=0),
            missing_name=min(stat.missing_name for stat in stats) if stats else "",  # "" once any has it
        )

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "retrieved": self.retrieved,
            "reranked": self.reranked,
            "retrieveMs": round(self.retrieve_ms, 2),
            "rerankMs": round(self.rerank_ms, 2),
        }
        if self.note:
            data["note"] = self.note
        if self.query_cut:
            data["queryCut"] = self.query_cut
        if self.missing_name:
            data["noDefinition"] = self.missing_name
        return data


@dataclass
class SearchResult:
    hits: list[Hit] = field(default_factory=list)
    stats: SearchStats = field(default_factory=SearchStats)


def merge_reranked(
    retrieved: Sequence[Hit], ranker_scores: NDArray[np.float32], fusion_weight: float = 0.0
) -> list[Hit]:
    """The first len(ranker_scores) hits ordered by `ranker + fusion_weight * first-stage score`
    (definitions of the query's name first, ties in first-stage order), then the rest as they came.
    A reranked hit's score is that fused score."""
    depth = len(ranker_scores)
    fused = [float(ranker_scores[index]) + fusion_weight * retrieved[index].score for index in range(depth)]
    order = sorted(range(depth), key=lambda index: (not retrieved[index].defines, -fused[index], index))
    head = [replace(retrieved[index], score=fused[index], stage="rerank") for index in order]
    return head + list(retrieved[depth:])


def collapse_twins(hits: Sequence[Hit]) -> list[Hit]:
    """The hits with each group of twins (`twins.twin_leaders`) as its best-ranked member, which lists
    the others in `twins`."""
    leaders = twin_leaders([hit.chunk for hit in hits])
    twins: dict[int, list[StoredChunk]] = {}
    for position, leader in enumerate(leaders):
        if leader != position:
            twins.setdefault(leader, []).append(hits[position].chunk)
    return [
        replace(hit, twins=tuple(twins[position])) if position in twins else hit
        for position, hit in enumerate(hits)
        if leaders[position] == position
    ]


def merge_ranked_lists(lists: Sequence[Sequence[Hit]]) -> list[Hit]:
    """Merge several indexes' results, keeping each list's own order (its cascade).

    Ranker scores and retriever cosines are on different scales, so hits are never sorted by `score`
    across lists: at each step the list whose next hit has the highest retriever cosine gives it.
    """
    positions = [0] * len(lists)
    merged: list[Hit] = []
    while True:
        heads = [
            (hits[positions[index]].cosine, -index)
            for index, hits in enumerate(lists)
            if positions[index] < len(hits)
        ]
        if not heads:
            return merged
        _, negative_index = max(heads)
        merged.append(lists[-negative_index][positions[-negative_index]])
        positions[-negative_index] += 1


def looks_like_a_name(query: str) -> bool:
    """A query typed as an identifier (`Client.send`, `parse_url`, `HTTPAdapter`), not a plain word."""
    stripped = query.strip()
    return symbol_of(stripped) is not None and (
        "." in stripped or "_" in stripped or any(character.isupper() for character in stripped)
    )


class Cascade:
    """The first stage (dense + lexical) over one index, then optional cross-encoder reranking."""

    def __init__(
        self,
        retriever: OnnxRetriever,
        ranker: OnnxRanker | None,
        vectors: VectorIndex,
        store: ChunkStore,
        settings: SearchSettings | None = None,
    ) -> None:
        self.retriever = retriever
        self.ranker = ranker
        self.vectors = vectors
        self.store = store
        self.settings = settings or SearchSettings()
        self.first_stage = FirstStage(vectors, store, self.settings)

    def search(
        self,
        query: str,
        *,
        limit: int = 20,
        retrieve_depth: int = 100,
        rerank_depth: int = 10,
        rerank: bool = True,
        allowed: Sequence[int] | None = None,
        include_tests: bool = False,
    ) -> SearchResult:
        """Hits for a natural-language query, best first, at most `limit`: see the module doc.

        `include_tests` ranks test code like any other (by default it comes after implementation).
        """
        started = time.perf_counter()
        vector = self.retriever.encode_queries([query])[0]
        candidates = self.first_stage.search(
            query, vector, depth=max(retrieve_depth, limit), allowed=allowed, include_tests=include_tests
        )
        hits = [
            Hit(candidate.chunk, candidate.score, "retrieve", candidate.cosine, candidate.defines)
            for candidate in candidates
        ]
        result = SearchResult(hits=hits, stats=SearchStats(retrieved=len(hits)))
        if self.retriever.query_is_cut(query):
            result.stats.query_cut = self.retriever.card.max_query_tokens
        if looks_like_a_name(query) and not any(candidate.defines for candidate in candidates):
            result.stats.missing_name = query.strip()
        result.stats.retrieve_ms = (time.perf_counter() - started) * 1000
        if not rerank:
            result.stats.note = "reranking turned off"
        elif self.ranker is None:
            result.stats.note = "no ranker in the model folder: retriever order"
        elif result.hits and rerank_depth > 0:
            started = time.perf_counter()
            head = result.hits[:rerank_depth]
            scores = self.ranker.score(query, [hit.chunk.text for hit in head])
            result.hits = merge_reranked(result.hits, scores, self.settings.fusion_weight)
            result.stats.reranked = len(head)
            result.stats.rerank_ms = (time.perf_counter() - started) * 1000
        result.hits = collapse_twins(result.hits)[:limit]
        return result

    def by_vector(
        self,
        vector: NDArray[np.float32],
        *,
        depth: int,
        allowed: Sequence[int] | None = None,
        include_tests: bool = False,
    ) -> SearchResult:
        """The `depth` chunks nearest to an embedding (find similar): by cosine alone when
        `include_tests`, else by the first stage's dense score, which ranks test code after
        implementation (`first_stage.rank` with no lexical side)."""
        neighbours = self.vectors.search(vector, depth, allowed)
        chunks = self.store.chunks_by_label([label for label, _ in neighbours])
        found = [Candidate(chunks[label], score, 0.0) for label, score in neighbours if label in chunks]
        hits = [
            Hit(
                candidate.chunk,
                candidate.cosine if include_tests else candidate.score,
                "retrieve",
                candidate.cosine,
            )
            for candidate in (
                found if include_tests else rank(found, replace(self.settings, lexical_weight=0.0))
            )
        ]
        return SearchResult(hits=hits, stats=SearchStats(retrieved=len(hits)))
