"""Evaluate an exported model folder the way users run it: through the runtime's ONNX encoders.

Protocol (docs/TRAINING.md, "Evaluation protocol"): every query is ranked against the whole pool, one code is
correct, a tie with it counts against it (`metrics.rank_of_gold`); MRR over the full
ranking and Recall@1/5/10/100. Rows:

- ``bm25``: the lexical baseline (`trainer.bm25.BM25`, as bench/bm25_baseline.py);
- ``retriever``: the model folder's dual encoder alone;
- ``runtime``: the default runtime pipeline, computed by the code `codesieve search` runs
  (`trainer.runtime_pipeline`: the pool as an in-memory index, each query through `Cascade.search`,
  N = 100, K = 10; the first stage fuses the lexical index with the card's weight). A gold outside
  the N returned keeps its retriever rank (at least N + 1);
- ``cascade@K``: the retriever's top K reordered by the ranker's score fused with the first stage's
  (`ranker + w * z(cosine)`, the z-score over the top N = 100, w the card's `fusion_weight`), the
  rest in retriever order: the runtime's explicit two-stage merge
  (`server.search.cascade.merge_reranked`) over a dense first stage. Inside the top K a
  tie with the gold counts against it; a gold outside the top K keeps its retriever rank.

A benchmark whose queries are code (the find-similar set) is run as "Find similar code" runs: each
query is embedded as code, the pool entries with exactly the query's text are left out of its
ranking (find similar leaves out the function at the cursor), and there is no cascade row (find
similar is retriever only: the ranker reads natural-language queries).

Code embeddings are cached per (retriever sha256, pool content sha256, code token limit) under the
cache folder, so a second evaluation of the same model on the same pool only encodes the queries.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
from numpy.typing import NDArray
from tqdm import tqdm

from codesieve.server.index.store import StoredChunk
from codesieve.server.model.encoders import OnnxRanker, OnnxRetriever, code_text
from codesieve.server.model.folder import ModelFolder
from codesieve.server.search.cascade import Hit, merge_reranked
from codesieve.server.search.first_stage import dense_first_stage
from codesieve.trainer.metrics import DEFAULT_KS, rank_of_gold, retrieval_metrics

from .benchmarks import Benchmark
from .bm25 import BM25
from .runtime_pipeline import code_chunk, gold_rank, runtime_cascade, runtime_rankings

RANKING_DEPTH = 1000  # ids written per query in a rankings file
FIRST_STAGE_DEPTH = 100  # the runtime's N: the cosines the first-stage z-scores are taken over
QUERY_CHUNK = 512  # BM25 queries scored at once
ENCODE_BLOCK = 512  # codes encoded between progress updates and cache writes


def default_cache_dir() -> Path:
    """$CODESIEVE_EVAL_CACHE, else the user cache folder's eval-embeddings."""
    if os.environ.get("CODESIEVE_EVAL_CACHE"):
        return Path(os.environ["CODESIEVE_EVAL_CACHE"]).expanduser()
    return Path(platformdirs.user_cache_dir("codesieve")) / "eval-embeddings"


@dataclass
class Evaluation:
    """Metrics per system (row name -> metrics) and, optionally, each system's rankings."""

    benchmark: str
    queries: int
    pool: int
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    rankings: dict[str, list[list[int]]] = field(
        default_factory=dict
    )  # row -> per query, code ids best first


def pool_sha256(benchmark: Benchmark) -> str:
    """Hash of the pool's ids and codes, in order: what the cached embeddings depend on."""
    digest = hashlib.sha256()
    for row in benchmark.codebase:
        digest.update(f"{row.id}\0{len(row.code)}\0".encode())
        digest.update(row.code.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def code_embeddings(
    encoder: OnnxRetriever, model: ModelFolder, benchmark: Benchmark, cache_dir: Path | None
) -> NDArray[np.float32]:
    """(N, D) embeddings of the pool's codes, from the cache when this model already encoded this pool.

    Each code is read as the index reads a chunk (`encoders.code_text`): with the card's `code_context`,
    after a line with the row's path (when the benchmark gives one) and its definition's name. The
    rows are made chunks (their definitions parsed and named) only for a recipe with context, and only
    when the cache misses."""
    size = len(benchmark.codebase)
    cache = None
    if cache_dir is not None:
        name = (
            f"{model.retriever_sha256[:20]}-{pool_sha256(benchmark)[:20]}-{model.card.embedding_recipe}.npy"
        )
        cache = cache_dir / name
        if cache.exists():
            cached: NDArray[np.float32] = np.load(cache)
            if cached.shape == (size, model.card.dimension):
                return cached
    codes = pool_texts(benchmark, model.card.code_context)
    parts = []
    with tqdm(
        total=len(codes), desc="encoding codes", unit="code", file=sys.stderr, dynamic_ncols=True, leave=False
    ) as bar:
        for start in range(0, len(codes), ENCODE_BLOCK):
            parts.append(encoder.encode_code(codes[start : start + ENCODE_BLOCK]))
            bar.update(len(parts[-1]))
    embeddings = np.concatenate(parts) if parts else np.zeros((0, model.card.dimension), dtype=np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_name(cache.name + ".tmp.npy")
        np.save(temporary, embeddings)
        os.replace(temporary, cache)
    return embeddings


def pool_texts(benchmark: Benchmark, context: Sequence[str]) -> list[str]:
    """The pool's codes as the index would embed them: with `context`, each row is made a chunk (its
    definition parsed and named) and written after the line of its path and name (`encoders.code_text`)."""
    if not context:
        return [row.code for row in benchmark.codebase]
    return [code_text(replace(code_chunk(row), path=row.path), context) for row in benchmark.codebase]


def top_order(scores: NDArray[np.float32] | NDArray[np.float64], depth: int) -> NDArray[np.int64]:
    """Per row, the column indices of the `depth` best scores, best first (ties: lower index first)."""
    depth = min(depth, scores.shape[1])
    if depth < scores.shape[1]:
        candidates = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    else:
        candidates = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    rows = np.arange(scores.shape[0])[:, None]
    order = np.lexsort((candidates, -scores[rows, candidates]), axis=1)
    result: NDArray[np.int64] = candidates[rows, order].astype(np.int64)
    return result


def bm25_scores(benchmark: Benchmark, k1: float = 1.2, b: float = 0.75) -> NDArray[np.float64]:
    """(Q, N) BM25 scores, as bench/bm25_baseline.py computes them."""
    index = BM25([row.code for row in benchmark.codebase], k1=k1, b=b)
    texts = [query.text for query in benchmark.queries]
    parts = [
        index.score_matrix(texts[start : start + QUERY_CHUNK]) for start in range(0, len(texts), QUERY_CHUNK)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, len(benchmark.codebase)))


def leave_out_query_copies(scores: NDArray[np.float32] | NDArray[np.float64], benchmark: Benchmark) -> None:
    """For code queries, set to -inf (in place) the score of every pool entry whose text is the query's."""
    if benchmark.query_kind != "code":
        return
    positions: dict[str, list[int]] = {}
    for position, code in enumerate(benchmark.codebase):
        positions.setdefault(code.code, []).append(position)
    for row, query in enumerate(benchmark.queries):
        scores[row, positions.get(query.text, [])] = -np.inf


def cascade_ranks(
    retriever_ranks: NDArray[np.int64],
    head: NDArray[np.int64],
    ranker_scores: NDArray[np.floating[Any]],
    gold: NDArray[np.int64],
    depth: int,
) -> NDArray[np.int64]:
    """Rank of the gold after the ranker reorders the top `depth` (ties against the gold)."""
    ranks: NDArray[np.int64] = retriever_ranks.copy()
    for row in range(len(gold)):
        members = np.flatnonzero(head[row, :depth] == gold[row])
        if retriever_ranks[row] > depth or members.size == 0:
            continue  # below the reranked head: retriever order (a tie at the boundary counts against)
        scores = ranker_scores[row, :depth]
        ranks[row] = int((scores >= scores[members[0]]).sum())
    return ranks


def rerank_scores(ranker: OnnxRanker, benchmark: Benchmark, head: NDArray[np.int64]) -> NDArray[np.float32]:
    """(Q, K) ranker scores of each query against the pool positions in its row of `head`."""
    texts = [row.code for row in benchmark.codebase]
    scores = np.zeros(head.shape, dtype=np.float32)
    progress = tqdm(benchmark.queries, desc=f"reranking top {head.shape[1]}", file=sys.stderr, leave=False)
    for row, query in enumerate(progress):
        scores[row] = ranker.score(query.text, [texts[index] for index in head[row]])
    return scores


def _chunk(code_id: int) -> StoredChunk:
    return StoredChunk(code_id, str(code_id), "", "", "", "", 0, 0, "", "")


def cascade_ranking(
    order: Sequence[int],
    ranker_scores: NDArray[np.float32],
    ids: Sequence[int],
    first_stage: Sequence[float],
    fusion_weight: float,
) -> list[int]:
    """Code ids of one query after the runtime's merge: reranked head, then retriever order."""
    retrieved = [
        Hit(_chunk(ids[index]), float(score), "retrieve", float(score))
        for index, score in zip(order, first_stage, strict=True)
    ]
    return [hit.chunk.label for hit in merge_reranked(retrieved, ranker_scores, fusion_weight)]


def evaluate(
    benchmark: Benchmark,
    model_dir: Path | None,
    rerank_depths: Sequence[int] = (10,),
    bm25: bool = False,
    cache_dir: Path | None = None,
    keep_rankings: bool = False,
    threads: int | None = None,
    runtime: bool = False,
) -> Evaluation:
    """Metrics of BM25, the retriever, the runtime pipeline and the cascade at each depth on one benchmark.

    Long on purpose: the rows in the order they are computed, each from the similarity and the order
    of the rows before it.
    """
    gold = benchmark.gold_positions()
    ids = [row.id for row in benchmark.codebase]
    result = Evaluation(benchmark.name, len(benchmark.queries), len(benchmark.codebase))

    def record(name: str, ranks: NDArray[np.int64], rankings: list[list[int]] | None) -> None:
        result.rows[name] = retrieval_metrics(ranks, DEFAULT_KS)
        if keep_rankings and rankings is not None:
            result.rankings[name] = rankings

    if bm25:
        scores = bm25_scores(benchmark)
        leave_out_query_copies(scores, benchmark)
        order = top_order(scores, RANKING_DEPTH) if keep_rankings else None
        record(
            "bm25",
            rank_of_gold(scores, gold),
            None if order is None else [[ids[i] for i in row] for row in order],
        )
    if model_dir is None:
        return result
    model = ModelFolder.load(model_dir)
    encoder = OnnxRetriever(model, threads)
    codes = code_embeddings(encoder, model, benchmark, cache_dir)
    texts = [query.text for query in benchmark.queries]
    code_queries = benchmark.query_kind == "code"
    queries = encoder.encode_code(texts) if code_queries else encoder.encode_queries(texts)
    similarity = queries @ codes.T
    leave_out_query_copies(similarity, benchmark)
    retriever_ranks = rank_of_gold(similarity, gold)
    order = top_order(
        similarity, max(RANKING_DEPTH if keep_rankings else 0, FIRST_STAGE_DEPTH, *rerank_depths, 1)
    )
    record("retriever", retriever_ranks, [[ids[i] for i in row[:RANKING_DEPTH]] for row in order])
    if runtime and not code_queries:
        searched = runtime_rankings(benchmark, runtime_cascade(benchmark, model, codes, threads))
        ranks = np.array(
            [
                gold_rank(ranking, query.code_id, int(retriever_ranks[row]))
                for row, (query, ranking) in enumerate(zip(benchmark.queries, searched, strict=True))
            ],
            dtype=np.int64,
        )
        record("runtime", ranks, searched)
    if model.ranker_path is None or not rerank_depths:
        return result
    deepest = min(max(rerank_depths), len(ids))
    ranker_scores = rerank_scores(OnnxRanker(model, threads), benchmark, order[:, :deepest])
    cosines = np.take_along_axis(similarity, order, axis=1)
    # a code query's own text is left out (-inf): it must not enter the statistics
    kept = np.isfinite(cosines)
    floor = np.min(np.where(kept, cosines, np.inf), axis=1, keepdims=True)
    first_stage = dense_first_stage(np.where(kept, cosines, floor), FIRST_STAGE_DEPTH)
    fused = np.where(
        kept[:, :deepest], ranker_scores + model.card.fusion_weight * first_stage[:, :deepest], -np.inf
    )
    for depth in sorted(set(rerank_depths)):
        used = min(depth, deepest)  # a depth past the pool reranks the whole pool
        ranks = cascade_ranks(retriever_ranks, order, fused, gold, used)
        rankings = None
        if keep_rankings:
            rankings = [
                cascade_ranking(
                    order[row, :RANKING_DEPTH].tolist(),
                    ranker_scores[row, :used],
                    ids,
                    first_stage[row, :RANKING_DEPTH].tolist(),
                    model.card.fusion_weight,
                )
                for row in range(len(gold))
            ]
        record(f"cascade@{depth}", ranks, rankings)
    return result


def write_rankings(path: Path, benchmark: Benchmark, rankings: list[list[int]]) -> None:
    """One line per query: {"id": query id, "ranking": [code ids, best first]}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        for query, ranking in zip(benchmark.queries, rankings, strict=True):
            out.write(json.dumps({"id": query.id, "ranking": ranking}) + "\n")
    os.replace(temporary, path)


def format_table(evaluation: Evaluation) -> str:
    """A fixed-width table: one row per system, MRR and Recall@1/5/10/100."""
    columns = ["mrr", *(f"recall@{k}" for k in DEFAULT_KS)]
    header = f"{'system':<14}" + "".join(f"{column.replace('recall', 'R'):>8}" for column in columns)
    lines = [f"{evaluation.benchmark}: {evaluation.queries} queries, pool of {evaluation.pool}", header]
    for name, metrics in evaluation.rows.items():
        lines.append(f"{name:<14}" + "".join(f"{metrics[column]:>8.3f}" for column in columns))
    return "\n".join(lines)
