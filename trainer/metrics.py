"""Retrieval metrics: the rank of the one correct code, MRR and Recall@k.

The protocol (docs/TRAINING.md, "Evaluation protocol"): each query is ranked against the whole pool, one code
is correct, and a tie with the correct code counts against it. Ranks are 1-based throughout.
numpy only: the benchmarks use it without the trainer's torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 100)


def rank_of_gold(scores: npt.ArrayLike, gold: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Return the 1-based rank of each query's correct code; ties count against it.

    `scores` is (Q, N), higher is better; `gold` is (Q,), the column of each query's correct code.
    rank = 1 + the number of other codes whose score is >= the correct code's score, so a code
    tied with the correct one is ranked ahead of it. Raises ValueError on NaN scores, a shape
    mismatch or a gold index outside [0, N).
    """
    score_matrix = np.asarray(scores)
    gold_index = np.asarray(gold)
    if score_matrix.ndim != 2:
        raise ValueError(f"scores must be a (Q, N) matrix, got shape {score_matrix.shape}")
    num_queries, num_codes = score_matrix.shape
    if gold_index.shape != (num_queries,):
        raise ValueError(f"gold must have shape ({num_queries},), got {gold_index.shape}")
    if not np.issubdtype(gold_index.dtype, np.integer):
        raise ValueError(f"gold must hold integer column indices, got dtype {gold_index.dtype}")
    if num_queries and (gold_index.min() < 0 or gold_index.max() >= num_codes):
        raise ValueError(
            f"gold indices must lie in [0, {num_codes}), got {gold_index.min()}..{gold_index.max()}"
        )
    if np.issubdtype(score_matrix.dtype, np.floating) and np.isnan(score_matrix).any():
        raise ValueError("scores contain NaN; a NaN cannot be ranked")
    gold_scores = score_matrix[np.arange(num_queries), gold_index]
    # Counting >= includes the gold itself, which supplies the "1 +".
    ranks: npt.NDArray[np.int64] = (score_matrix >= gold_scores[:, None]).sum(axis=1).astype(np.int64)
    return ranks


def rank_of_gold_dot(
    queries: npt.ArrayLike,
    codes: npt.ArrayLike,
    gold: npt.ArrayLike,
    chunk_size: int = 1024,
) -> npt.NDArray[np.int64]:
    """Rank by dot product: `rank_of_gold(queries @ codes.T, gold)`, a chunk of queries at a time.

    `queries` is (Q, D), `codes` is (N, D) (normalise them first for cosine similarity). Only a
    (chunk_size, N) block of scores is held at once, so memory stays bounded for large pools.
    """
    query_matrix = np.asarray(queries)
    code_matrix = np.asarray(codes)
    gold_index = np.asarray(gold)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if query_matrix.ndim != 2 or code_matrix.ndim != 2 or query_matrix.shape[1] != code_matrix.shape[1]:
        raise ValueError(
            f"need (Q, D) queries and (N, D) codes, got {query_matrix.shape} and {code_matrix.shape}"
        )
    if gold_index.shape != (query_matrix.shape[0],):
        raise ValueError(f"gold must have shape ({query_matrix.shape[0]},), got {gold_index.shape}")
    parts = [
        rank_of_gold(
            query_matrix[start : start + chunk_size] @ code_matrix.T, gold_index[start : start + chunk_size]
        )
        for start in range(0, query_matrix.shape[0], chunk_size)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def retrieval_metrics(ranks: npt.ArrayLike, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Return {"mrr": mean(1 / rank), "recall@k": fraction of ranks <= k for each k} from 1-based ranks."""
    rank_array = np.asarray(ranks)
    if rank_array.ndim != 1 or rank_array.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {rank_array.shape}")
    if rank_array.min() < 1:
        raise ValueError(f"ranks are 1-based; got a rank of {rank_array.min()}")
    metrics = {"mrr": float(np.mean(1.0 / rank_array))}
    for k in ks:
        metrics[f"recall@{k}"] = float(np.mean(rank_array <= k))
    return metrics
