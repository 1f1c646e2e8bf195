"""A benchmark's pool as a runtime index, searched by the code `codesieve search` runs.

The pool's codes become chunks of an in-memory `ChunkStore` (named by the runtime chunker, with
the embeddings `evaluate.code_embeddings` cached), the vector graph is built from the store as
`Workspace` builds it, and each query goes through `Cascade.search`: the first stage (dense + lexical
with the model card's weight, test code after implementation) and the ranker when the model folder
has one. The codes carry no paths, so none of them counts as test code. Nothing here re-implements
a ranking: `bench/hybrid_weight.py` uses `candidates` and `first_stage.rank` to score a grid of
weights on the same candidates.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from codesieve.server.chunk.chunker import Chunk, chunk_source
from codesieve.server.index.store import ChunkStore, FileRecord, FileUpdate
from codesieve.server.index.vector_index import VectorIndex
from codesieve.server.model.encoders import OnnxRanker, OnnxRetriever
from codesieve.server.model.folder import ModelFolder
from codesieve.server.search.cascade import Cascade, merge_reranked
from codesieve.server.search.first_stage import Candidate

from .benchmarks import Benchmark, CodeRow

EXTENSIONS = {"python": ".py", "ruby": ".rb", "javascript": ".js", "go": ".go", "java": ".java"}
FILES_PER_WRITE = 500


def code_chunk(row: CodeRow) -> Chunk:
    """One pool code as one chunk: its whole text, named by the row (its qualified name, in its file) or
    else as the runtime chunker names the definition it holds."""
    path = f"pool/{row.id}{EXTENSIONS.get(row.language, '.txt')}"
    definitions = [] if row.name else chunk_source(path, row.code, row.language)
    name = row.name or (definitions[0].name if definitions else str(row.id))
    content_hash = hashlib.sha1(row.code.encode("utf-8", "surrogatepass")).hexdigest()
    end_line = row.code.count("\n") + 1
    return Chunk(str(row.id), path, row.language, "function", name, 1, end_line, row.code, content_hash, None)


def runtime_cascade(
    benchmark: Benchmark, model: ModelFolder, codes: NDArray[np.float32], threads: int | None = None
) -> Cascade:
    """The runtime's cascade over an in-memory index of the pool (`codes`: its embeddings, in order)."""
    store = ChunkStore(None)
    store.reset(model.model_id, benchmark.name)
    rows = benchmark.codebase
    for start in range(0, len(rows), FILES_PER_WRITE):
        updates = [
            FileUpdate(
                FileRecord(chunk.path, chunk.language, len(row.code), 0, chunk.content_hash),
                [chunk],
                codes[index : index + 1],
            )
            for index, (row, chunk) in enumerate(
                ((row, code_chunk(row)) for row in rows[start : start + FILES_PER_WRITE]), start
            )
        ]
        store.apply(updates, [])
    vectors, _, _ = VectorIndex.open(None, store, model.card.dimension)
    ranker = OnnxRanker(model, threads) if model.ranker_path else None
    return Cascade(OnnxRetriever(model, threads), ranker, vectors, store, model.card.search)


def gold_rank(ranking: Sequence[int], gold: int, fallback: int) -> int:
    """1-based rank of the gold id in a ranking; outside it, `fallback` (at least one past its end)."""
    try:
        return ranking.index(gold) + 1
    except ValueError:
        return max(fallback, len(ranking) + 1)


def runtime_rankings(
    benchmark: Benchmark, cascade: Cascade, depth: int = 100, rerank_depth: int = 10
) -> list[list[int]]:
    """Per query, the code ids `Cascade.search` returns (the runtime's N and K), best first; a hit's
    twins (near-copies shown with it as "also at") right after it, where the user sees them."""
    rankings = []
    for query in tqdm(benchmark.queries, desc="runtime pipeline", file=sys.stderr):
        result = cascade.search(query.text, limit=depth, retrieve_depth=depth, rerank_depth=rerank_depth)
        rankings.append([int(chunk.id) for hit in result.hits for chunk in (hit.chunk, *hit.twins)])
    return rankings


def candidates(benchmark: Benchmark, cascade: Cascade, depth: int = 100) -> list[list[Candidate]]:
    """Per query, the first stage's candidates with both scores (lexical side on, whatever the card)."""
    found = []
    for query in tqdm(benchmark.queries, desc="first-stage candidates", file=sys.stderr):
        vector = cascade.retriever.encode_queries([query.text])[0]
        found.append(cascade.first_stage.candidates(query.text, vector, depth=depth))
    return found


@dataclass
class RerankGrid:
    """Per query, the runtime's retrieval-only ids and its reranked ids at each (K, fusion weight)."""

    retrieved: list[list[int]] = field(default_factory=list)
    reranked: dict[tuple[int, float], list[list[int]]] = field(default_factory=dict)


def rerank_grid(
    benchmark: Benchmark,
    cascade: Cascade,
    depths: Sequence[int],
    weights: Sequence[float],
    depth: int = 100,
) -> RerankGrid:
    """`Cascade.search` at every rerank depth K and fusion weight w, the ranker run once per query.

    Each query's first stage runs once (`rerank=False`: what the runtime returns without a ranker),
    the ranker scores its top max(K) once, and each (K, w) is the runtime's merge
    (`merge_reranked`) of that list with the first K scores, as `Cascade.search` does with
    `rerank_depth=K` and a card whose `fusion_weight` is w.
    """
    if cascade.ranker is None:
        raise ValueError("rerank_grid needs a model folder with a ranker")
    grid = RerankGrid(reranked={(k, w): [] for k in depths for w in weights})
    for query in tqdm(benchmark.queries, desc="runtime rerank grid", file=sys.stderr):
        hits = cascade.search(query.text, limit=depth, retrieve_depth=depth, rerank=False).hits
        grid.retrieved.append([int(hit.chunk.id) for hit in hits])
        head = hits[: max(depths)]
        scores = cascade.ranker.score(query.text, [hit.chunk.text for hit in head])
        for k, w in grid.reranked:
            merged = merge_reranked(hits, scores[:k], w)
            grid.reranked[(k, w)].append([int(hit.chunk.id) for hit in merged])
    return grid
