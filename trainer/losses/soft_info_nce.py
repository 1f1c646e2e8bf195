"""Soft-InfoNCE: weighted in-batch negatives (Li et al., EMNLP 2023; docs/TRAINING.md, "Soft-InfoNCE").

``scale`` follows the package convention (inverse temperature, see ``info_nce``).
The estimator temperature ``t`` is separate: it sharpens the estimator's similarities
``r`` into the negative distribution ``p``, it is not the loss temperature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..bm25 import BM25

__all__ = [
    "ESTIMATOR_PRESETS",
    "EstimatorPreset",
    "bm25_query_similarity",
    "encoder_query_similarity",
    "soft_info_nce",
    "soft_weights",
    "trained_model_similarity",
]


@dataclass(frozen=True)
class EstimatorPreset:
    """Settings of ``soft_weights`` for one estimator of r_ij (docs/TRAINING.md, "Soft-InfoNCE")."""

    t: float  # temperature of p_ij = softmax_{j≠i}(r_ij / t)
    alpha: float
    beta: float


_SENTENCE_ENCODER = EstimatorPreset(t=0.1, alpha=1.3, beta=0.7)

ESTIMATOR_PRESETS: Mapping[str, EstimatorPreset] = MappingProxyType(
    {
        # BM25 of query j against query i; scores are unbounded, t = 1.
        "bm25": EstimatorPreset(t=1.0, alpha=1.5, beta=0.5),
        # Cosine of two queries under the frozen base model ("SimCSE" in the paper).
        "base": _SENTENCE_ENCODER,
        "simcse": _SENTENCE_ENCODER,
        # Query-to-code cosine of a frozen retriever trained with InfoNCE. The paper's
        # t = 5.0 was for raw dot products; on cosines we use t = 0.05 = the training
        # temperature (scale 20), so p_ij is exactly the trained model's own in-batch
        # softmax over the negatives. A cosine gap of 0.1 then changes p by e^2 ≈ 7.4x,
        # twice the sharpness (in log space) of the query-query encoder preset (t = 0.1),
        # which fits a query-to-code score that was trained to separate codes at τ = 0.05.
        "trained": EstimatorPreset(t=0.05, alpha=1.3, beta=0.7),
    }
)


def _negative_mask(batch: int, mask: Tensor | None, device: torch.device) -> Tensor:
    """True where (i, j) is a negative of query i: off-diagonal and not masked."""
    negatives = ~torch.eye(batch, dtype=torch.bool, device=device)
    if mask is not None:
        if mask.shape != (batch, batch):
            raise ValueError(f"mask must have shape ({batch}, {batch}); got {tuple(mask.shape)}")
        negatives &= ~mask.to(device=device, dtype=torch.bool)
    return negatives


def soft_weights(
    similarity: Tensor,
    t: float,
    alpha: float,
    beta: float,
    clip: float = 0.1,
    mask: Tensor | None = None,
) -> Tensor:
    """Soft-InfoNCE weights of the in-batch negatives (Li et al., EMNLP 2023).

    ``p_ij = softmax_{j≠i, j not masked}(r_ij / t)``;
    ``w_ij = max(clip, (β - α·p_ij) / (β - α/(N_i-1)))``, where N_i-1 is the number of
    negatives of query i (B-1 minus its masked columns). Before clipping a row's weights
    sum to N_i-1, as in InfoNCE; the clip is not renormalised (pass ``clip=-inf`` to
    disable it). The diagonal weight is 1; masked (duplicate) negatives get 0.

    A row whose denominator ``β - α/(N_i-1)`` is ≤ 0 (too few negatives for these α, β,
    e.g. fewer than 4 with the BM25 preset; or α = β with one negative) keeps uniform
    weights 1, i.e. plain InfoNCE for that query.

    Args:
        similarity: (B, B) estimator similarities r (any dtype); no gradient is taken.
        t, alpha, beta: see :data:`ESTIMATOR_PRESETS`.
        clip: lower bound on a negative's weight; 0.1 in the paper.
        mask: optional (B, B) bool, True for excluded (duplicate) columns.

    Returns:
        (B, B) weights, no gradient.
    """
    r = similarity.detach().to(torch.float64)
    batch = r.shape[0]
    if r.dim() != 2 or r.shape[1] != batch:
        raise ValueError(f"similarity must have shape (B, B); got {tuple(r.shape)}")
    negatives = _negative_mask(batch, mask, r.device)
    count = negatives.sum(dim=1, keepdim=True).to(r.dtype)  # N_i - 1
    p = torch.softmax((r / t).masked_fill(~negatives, float("-inf")), dim=1)
    p = torch.nan_to_num(p, nan=0.0)  # rows with no negatives
    denominator = beta - alpha / count.clamp(min=1.0)
    usable = denominator > 0
    raw = (beta - alpha * p) / torch.where(usable, denominator, torch.ones_like(denominator))
    weights = torch.where(usable, raw.clamp(min=clip), torch.ones_like(raw))
    weights = weights.masked_fill(~negatives, 0.0)
    weights.fill_diagonal_(1.0)
    return weights.to(similarity.dtype if similarity.is_floating_point() else torch.float32)


def soft_info_nce(
    query_emb: Tensor,
    code_emb: Tensor,
    weights: Tensor,
    scale: float = 20.0,
    hard_neg_emb: Tensor | None = None,
    hard_neg_weights: Tensor | None = None,
) -> Tensor:
    """Soft-InfoNCE loss (Li et al., EMNLP 2023, "Rethinking Negative Pairs in Code Search").

    ``s_ij = scale · cos(q_i, c_j)``;
    ``L = mean_i -log( exp(s_ii) / (exp(s_ii) + Σ_{j≠i} w_ij·exp(s_ij) + Σ_h v_ih·exp(s_ih)) )``,
    computed stably as cross-entropy over logits ``s_ij + log w_ij`` (w = 0 → -inf).

    Args:
        query_emb: (B, D) L2-normalised query embeddings.
        code_emb: (B, D) L2-normalised codes; row i is query i's positive.
        weights: (B, B) non-negative weights, e.g. :func:`soft_weights`; the diagonal is
            ignored (the positive has weight 1). Detached: no gradient flows into them.
        scale: inverse temperature; 20.0.
        hard_neg_emb: optional (B, k, D) hard negatives, each in its own query's
            denominator only (not shared across the batch, unlike ``info_nce``'s default).
        hard_neg_weights: optional (B, k) weights v of the hard negatives; default 1.

    Returns:
        Scalar mean loss.
    """
    batch = query_emb.shape[0]
    if weights.shape != (batch, batch):
        raise ValueError(f"weights must have shape ({batch}, {batch}); got {tuple(weights.shape)}")
    if bool((weights < 0).any()):
        raise ValueError("weights must be non-negative (0 excludes a negative)")
    logits = scale * (query_emb @ code_emb.T)
    log_w = weights.detach().to(logits.dtype).log()
    log_w.fill_diagonal_(0.0)
    logits = logits + log_w
    if hard_neg_emb is not None and hard_neg_emb.shape[1] > 0:
        hard = scale * torch.einsum("bd,bkd->bk", query_emb, hard_neg_emb)
        if hard_neg_weights is not None:
            hard = hard + hard_neg_weights.detach().to(hard.dtype).log()
        logits = torch.cat([logits, hard], dim=1)
    return F.cross_entropy(logits, torch.arange(batch, device=logits.device))


# ---- Estimators of r_ij: each returns a (B, B) tensor without gradient. ----


def bm25_query_similarity(queries: Sequence[str], k1: float = 1.2, b: float = 0.75) -> Tensor:
    """BM25 of query j's words against query i as a document, within the batch.

    ``r_ij = Σ_{distinct words w of q_j} idf(w) · tf_i(w)·(k1+1) / (tf_i(w) + k1·(1 - b + b·|q_i|/avgdl))``
    with the batch's B queries as the collection and Lucene's idf
    ``log(1 + (B - df(w) + 0.5)/(df(w) + 0.5))``: the project's :class:`~codesieve.trainer.bm25.BM25`
    over words from ``split_identifiers`` (lowercased; camelCase and snake_case split).
    Returns (B, B) float32 without gradient; the diagonal is not used by :func:`soft_weights`.
    """
    index = BM25(queries, k1=k1, b=b)
    scores = index.score_matrix(queries)  # [j, i]: query j against document i
    return torch.from_numpy(scores.T.astype(np.float32))


def encoder_query_similarity(frozen_query_emb: Tensor) -> Tensor:
    """Cosine of queries i and j under a frozen sentence encoder (ours: the frozen base model).

    ``frozen_query_emb``: (B, D), normalised here. Returns (B, B) without gradient.
    """
    with torch.no_grad():
        emb = F.normalize(frozen_query_emb.detach(), dim=-1)
        return emb @ emb.T


def trained_model_similarity(frozen_query_emb: Tensor, frozen_code_emb: Tensor) -> Tensor:
    """Query-to-code cosine ``r_ij = cos(q_i, c_j)`` under a frozen, already trained retriever.

    The embeddings must come from a *frozen deep copy* of that retriever
    (``copy.deepcopy(model).eval().requires_grad_(False)``, encoded under
    ``torch.no_grad()``), never from the module being trained: the authors' released
    code shared the module, so the estimator drifted with training and leaked gradient.
    Inputs (B, D), normalised here; returns (B, B) without gradient. Use with
    ``ESTIMATOR_PRESETS["trained"]`` (t = 0.05 for cosines).
    """
    with torch.no_grad():
        queries = F.normalize(frozen_query_emb.detach(), dim=-1)
        codes = F.normalize(frozen_code_emb.detach(), dim=-1)
        return queries @ codes.T
