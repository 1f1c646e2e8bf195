"""Negative samplers for the retriever and the ranker: index arithmetic on embeddings, no models.

Both samplers rank the corpus by the dot product of L2-normalised embeddings (cosine),
exclude each query's correct code and every exact duplicate of it (same ``code_key``:
identical after whitespace normalisation: a duplicate of the answer is a correct answer, not a
negative; docs/TRAINING.md, "Mined hard negatives (retriever)"), and return a window of the
remaining ranking. They score queries in chunks, one matrix multiply and one ``topk``
per chunk, so the corpus is ranked once for all queries, not sorted per example.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy.typing as npt
import torch
from torch import Tensor

__all__ = [
    "code_key",
    "mine_hard_negatives",
    "normalise_code",
    "ranked_window",
    "ranking_based_negatives",
]

ArrayLike: TypeAlias = Tensor | npt.NDArray[Any]

PAD = -1  # index returned where a query has fewer candidates than asked for
_CHUNK_ELEMENTS = 1 << 25  # scores held at once: 32M float32 = 128 MiB


def normalise_code(text: str) -> str:
    """Collapse every run of whitespace into one space and strip the ends."""
    return " ".join(text.split())


def code_key(text: str) -> str:
    """SHA-1 hex digest of :func:`normalise_code` of ``text``: equal keys mean exact duplicates."""
    return hashlib.sha1(normalise_code(text).encode("utf-8")).hexdigest()


def _key_ids(code_keys: Sequence[str], device: torch.device) -> Tensor:
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(key, len(ids)) for key in code_keys], dtype=torch.long, device=device)


def _check_inputs(queries: Tensor, codes: Tensor, gold: Tensor, code_keys: Sequence[str]) -> None:
    if queries.dim() != 2 or codes.dim() != 2 or queries.shape[1] != codes.shape[1]:
        raise ValueError(
            f"query_emb (Q, D) and code_emb (N, D) must share D; got {tuple(queries.shape)} and {tuple(codes.shape)}"
        )
    if gold.shape != (queries.shape[0],):
        raise ValueError(f"gold must have shape ({queries.shape[0]},); got {tuple(gold.shape)}")
    if len(code_keys) != codes.shape[0]:
        raise ValueError(f"code_keys has {len(code_keys)} entries for {codes.shape[0]} codes")
    if gold.numel() and (int(gold.min()) < 0 or int(gold.max()) >= codes.shape[0]):
        raise ValueError(f"gold indices must lie in [0, {codes.shape[0]})")


def _window_of_chunk(scores: Tensor, excluded: Tensor, start: int, count: int) -> Tensor:
    """Indices ranked [start, start+count) of each row after excluding columns; PAD past the end."""
    scores = scores.masked_fill(excluded, float("-inf"))
    depth = min(start + count, scores.shape[1])
    values, indices = torch.topk(scores, depth, dim=1, largest=True, sorted=True)
    indices = indices.masked_fill(values == float("-inf"), PAD)[:, start:]
    missing = count - indices.shape[1]
    if missing > 0:
        indices = torch.nn.functional.pad(indices, (0, missing), value=PAD)
    return indices


def ranked_window(
    query_emb: ArrayLike,
    code_emb: ArrayLike,
    gold: ArrayLike,
    code_keys: Sequence[str],
    start: int,
    count: int,
    chunk_size: int | None = None,
) -> Tensor:
    """Codes ranked ``[start, start+count)`` for each query, gold and its duplicates removed.

    Args:
        query_emb: (Q, D) L2-normalised query embeddings (torch or numpy).
        code_emb: (N, D) L2-normalised code embeddings of the corpus.
        gold: (Q,) index of each query's correct code.
        code_keys: (N,) :func:`code_key` of each code.
        start, count: the window of the ranking to return.
        chunk_size: queries scored per matrix multiply; default keeps chunk × N ≤ 2^25.

    Returns:
        (Q, count) int64 code indices, best first; :data:`PAD` (-1) where the ranking
        runs out (fewer than ``start + count`` candidates).
    """
    if start < 0 or count < 0:
        raise ValueError(f"start and count must be >= 0; got {start} and {count}")
    queries = torch.as_tensor(query_emb)
    codes = torch.as_tensor(code_emb, device=queries.device).to(queries.dtype)
    gold_ids = torch.as_tensor(gold, device=queries.device).long()
    _check_inputs(queries, codes, gold_ids, code_keys)
    key_ids = _key_ids(code_keys, queries.device)
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // max(codes.shape[0], 1))
    windows = [torch.empty(0, count, dtype=torch.long, device=queries.device)]
    with torch.no_grad():
        for first in range(0, queries.shape[0], chunk_size):
            chunk_gold = gold_ids[first : first + chunk_size]
            excluded = key_ids[None, :] == key_ids[chunk_gold][:, None]
            scores = queries[first : first + chunk_size] @ codes.T
            windows.append(_window_of_chunk(scores, excluded, start, count))
    return torch.cat(windows)


def mine_hard_negatives(
    query_emb: ArrayLike,
    code_emb: ArrayLike,
    gold: ArrayLike,
    code_keys: Sequence[str],
    k: int,
    exclude_top: int = 0,
    chunk_size: int | None = None,
) -> Tensor:
    """The k top-scoring codes of each query that are neither its gold code nor a duplicate of it.

    ``exclude_top`` skips that many of the best remaining codes first (likely false
    negatives). Returns (Q, k) int64 indices, padded with -1 when fewer remain. Shapes as
    in :func:`ranked_window`.
    """
    return ranked_window(query_emb, code_emb, gold, code_keys, exclude_top, k, chunk_size)


def ranking_based_negatives(
    query_emb: ArrayLike,
    code_emb: ArrayLike,
    gold: ArrayLike,
    code_keys: Sequence[str],
    M: int = 31,
    lam: float = 0.0,
    chunk_size: int | None = None,
) -> Tensor:
    """Ranking-based hard negatives of R2PS (Dong et al.) for the ranker (docs/TRAINING.md, "Ranking-based
    hard negatives (R2PS)").

    The negatives of query i are the codes ranked ``[⌊λN⌋, ⌊λN⌋ + M)`` by the trained
    retriever over the N codes of the corpus, after removing the gold code and its exact
    duplicates (the authors' code left the gold in with λ = 0). ``⌊λN⌋`` tolerates a
    1e-9 rounding error in ``λ·N`` (so 0.29 · 100 gives 29). Defaults M = 31, λ = 0
    (CodeSearchNet, CoSQA); the paper used λ = 0.004 on a noisier set. Returns (Q, M)
    int64 indices, padded with -1 when fewer remain.
    """
    if not 0.0 <= lam < 1.0:
        raise ValueError(f"lam must lie in [0, 1); got {lam}")
    start = math.floor(lam * len(code_keys) + 1e-9)
    return ranked_window(query_emb, code_emb, gold, code_keys, start, M, chunk_size)
