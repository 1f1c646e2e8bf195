"""What the ranker's training loop measures: the cascade on dev splits, with the score fused.

The first stage ranks each dev pool once: a runtime model folder's is the runtime's own
(`Cascade.search` without the ranker: the card's hybrid of cosine and lexical scores, twins folded), a
torch checkpoint's the dense cosine (its score the cosine's z-score over the query's top N = 100). The
ranker then rescores each query's top K, and the cascade's final order inside those K is by
``ranker score + w · first-stage score``, as the runtime merges (R2PS fuses with the retriever on
CoSQA). Every w of `FUSION_WEIGHTS` is scored from the same ranker scores, so the weight is chosen on dev for free: w = 0 is the plain cascade, a large w
the retriever's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from codesieve.server.model.encoders import OnnxRetriever, TokenEncoder
from codesieve.server.model.folder import CARD_NAME, ModelFolder
from codesieve.server.search.first_stage import dense_first_stage
from codesieve.trainer.metrics import rank_of_gold, retrieval_metrics

from .benchmarks import Benchmark
from .checkpoints import load_retriever
from .data import embed, load_eval_set
from .evaluate import FIRST_STAGE_DEPTH, cascade_ranks, code_embeddings, default_cache_dir, top_order
from .models import CrossEncoder
from .runtime_pipeline import gold_rank, runtime_cascade

# on the first stage's z-scores: the ranker scores in [-1, 1], neighbours in the top K lie about
# 0.1 to 0.5 standard deviations apart
FUSION_WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 10.0)


def is_runtime_folder(path: Path) -> bool:
    """A model folder made by `trainer export` (ONNX and a card), not a torch checkpoint."""
    return (path / CARD_NAME).is_file()


def retriever_embeddings(
    path: Path,
    tokens: TokenEncoder,
    queries: list[str],
    codes: list[str],
    limits: tuple[int, int],
    device: torch.device,
    threads: int = 1,
) -> tuple[Tensor, Tensor]:
    """(Q, D) and (N, D) L2-normalised embeddings by a trained retriever.

    `path` is a torch retriever checkpoint (texts cut to `limits`, query and code tokens) or a
    runtime model folder, whose int8 ONNX retriever embeds with its card's limits, exactly as
    search does.
    """
    if is_runtime_folder(path):
        encoder = OnnxRetriever(ModelFolder.load(path), threads)
        return torch.from_numpy(encoder.encode_queries(queries)), torch.from_numpy(encoder.encode_code(codes))
    retriever = load_retriever(path).to(device)
    query_ids, code_ids = tokens.ids(queries, limits[0]), tokens.ids(codes, limits[1])
    query_emb = embed(retriever, [tokens.single(ids) for ids in query_ids], device)
    code_emb = embed(retriever, [tokens.single(ids) for ids in code_ids], device)
    return query_emb, code_emb


@dataclass(frozen=True)
class DevSet:
    """One dev split, ranked by the retriever: what the ranker needs to be scored as a cascade."""

    name: str
    query_ids: list[list[int]]  # token ids without specials, cut to the query limit
    code_ids: list[list[int]]  # the pool's codes, cut to the code limit
    gold: NDArray[np.int64]  # (Q,) pool position of each query's correct code
    head: NDArray[np.int64]  # (Q, K) the retriever's top K pool positions, best first
    first_stage: NDArray[np.float64]  # (Q, K) their first-stage scores (cosine z-scores over the top N)
    retriever_ranks: NDArray[np.int64]  # (Q,) the gold's rank by the retriever (ties against it)

    @property
    def retriever_mrr(self) -> float:
        return retrieval_metrics(self.retriever_ranks)["mrr"]


def load_dev_set(
    spec: str,
    retriever: Path,
    tokens: TokenEncoder,
    limits: tuple[int, int],
    depth: int,
    max_queries: int,
    device: torch.device,
    threads: int = 1,
) -> DevSet:
    """A dev split ("cosqa/dev", or a pairs file) ranked once by `retriever`; its first `max_queries` (0 = all)."""
    benchmark = load_eval_set(spec)
    queries = benchmark.queries[: max_queries or None]
    gold = benchmark.gold_positions()[: len(queries)]
    codes = [row.code for row in benchmark.codebase]
    texts = [query.text for query in queries]
    code_ids = tokens.ids(codes, limits[1])
    query_ids = tokens.ids(texts, limits[0])
    if is_runtime_folder(retriever):
        head, first_stage, ranks = _runtime_first_stage(
            benchmark, texts, gold, ModelFolder.load(retriever), threads
        )
        return DevSet(spec, query_ids, code_ids, gold, head[:, :depth], first_stage[:, :depth], ranks)
    query_emb, code_emb = retriever_embeddings(retriever, tokens, texts, codes, limits, device, threads)
    similarity = (query_emb @ code_emb.T).numpy()
    order = top_order(similarity, min(max(depth, FIRST_STAGE_DEPTH), len(codes)))
    first_stage = dense_first_stage(np.take_along_axis(similarity, order, axis=1), FIRST_STAGE_DEPTH)
    return DevSet(
        spec,
        query_ids,
        code_ids,
        gold,
        order[:, :depth],
        first_stage[:, :depth],
        rank_of_gold(similarity, gold),
    )


def _runtime_first_stage(
    benchmark: Benchmark, texts: list[str], gold: NDArray[np.int64], folder: ModelFolder, threads: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """What the runtime's ranker would see: per query, the pool positions of `Cascade.search`'s first
    stage (the card's hybrid of cosine and lexical scores, twins folded), their fused scores, and the
    gold's rank in that list (past its end: one more than its length). The pool's embeddings come from
    (and go to) `trainer eval`'s cache."""
    encoder = OnnxRetriever(folder, threads)
    codes = code_embeddings(encoder, folder, benchmark, default_cache_dir())
    cascade = runtime_cascade(benchmark, folder, codes, threads)
    position = {str(row.id): index for index, row in enumerate(benchmark.codebase)}
    depth = min(FIRST_STAGE_DEPTH, len(benchmark.codebase))
    head = np.zeros((len(texts), depth), dtype=np.int64)
    scores = np.zeros((len(texts), depth))
    ranks = np.zeros(len(texts), dtype=np.int64)
    for row, text in enumerate(texts):
        hits = cascade.search(text, limit=depth, retrieve_depth=depth, rerank=False).hits
        found = [position[hit.chunk.id] for hit in hits]
        ranks[row] = gold_rank(found, int(gold[row]), depth + 1)
        # a list that folded twins is shorter: the rest of the pool after it, each below the last score
        taken = set(found)
        rest = [index for index in range(len(position)) if index not in taken][: depth - len(found)]
        head[row] = found + rest
        last = hits[-1].score if hits else 0.0
        scores[row] = [hit.score for hit in hits] + [last - 1 - step for step in range(len(rest))]
    return head, scores, ranks


def ranker_scores(
    model: CrossEncoder, tokens: TokenEncoder, dev: DevSet, device: torch.device
) -> NDArray[np.float32]:
    """(Q, K) scores of the ranker (torch) on each query's top K; rows whose gold lies below K stay 0."""
    scores = np.zeros(dev.head.shape, dtype=np.float32)
    rows = [row for row in range(len(dev.gold)) if dev.retriever_ranks[row] <= dev.head.shape[1]]
    sequences = [
        tokens.pair(dev.query_ids[row], dev.code_ids[index]) for row in rows for index in dev.head[row]
    ]
    if sequences:
        output = embed(model, sequences, device, batch_size=32).numpy()
        scores[rows] = output.reshape(len(rows), dev.head.shape[1])
    return scores


def fused_mrr(dev: DevSet, scores: NDArray[np.float32], weight: float) -> float:
    """Cascade MRR when the top K are ordered by `scores + weight · first-stage score`, the rest by the
    retriever."""
    fused = scores + weight * dev.first_stage
    ranks = cascade_ranks(dev.retriever_ranks, dev.head, fused, dev.gold, dev.head.shape[1])
    return retrieval_metrics(ranks)["mrr"]


def dev_report(
    model: CrossEncoder, tokens: TokenEncoder, sets: list[DevSet], device: torch.device
) -> dict[str, object]:
    """Per set: the retriever's MRR and the cascade's at each fusion weight; the weight best on their mean.

    Returns {"mrr": mean fused cascade MRR at the chosen weight, "fusion_weight": w,
    "cascade_mrr": mean plain cascade MRR (w = 0), "retriever_mrr": mean retriever MRR,
    "sets": {name: {"retriever": MRR, "cascade": {w: MRR}}}}.
    """
    table = {}
    for dev in sets:
        scores = ranker_scores(model, tokens, dev, device)
        table[dev.name] = {
            "retriever": dev.retriever_mrr,
            "cascade": {str(weight): fused_mrr(dev, scores, weight) for weight in FUSION_WEIGHTS},
        }

    def mean_at(weight: float) -> float:
        return float(np.mean([row["cascade"][str(weight)] for row in table.values()]))  # type: ignore[index]

    best = max(FUSION_WEIGHTS, key=lambda weight: (mean_at(weight), -weight))
    return {
        "mrr": round(mean_at(best), 5),
        "fusion_weight": best,
        "cascade_mrr": round(mean_at(0.0), 5),
        "retriever_mrr": round(float(np.mean([row["retriever"] for row in table.values()])), 5),
        "sets": table,
    }
