"""In-batch InfoNCE for the dual encoder, with optional hard negatives (docs/TRAINING.md, "InfoNCE with
in-batch and hard negatives").

Convention for every loss in this package: embeddings are L2-normalised, so a dot
product is a cosine, and ``scale`` is the inverse temperature, ``scale = 1/τ``. The
logit of a (query, code) pair is ``scale · cos(q, c)``; the default ``scale = 20.0``
is τ = 0.05.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["duplicate_mask", "info_nce", "similarity_logits"]


def _has_hard_negatives(hard_neg_emb: Tensor | None) -> bool:
    return hard_neg_emb is not None and hard_neg_emb.shape[1] > 0


def similarity_logits(
    query_emb: Tensor,
    code_emb: Tensor,
    hard_neg_emb: Tensor | None = None,
    *,
    share_hard_negatives: bool = True,
) -> Tensor:
    """Cosines of each query with the batch's codes, then its hard negatives (unscaled).

    Columns ``0..B-1`` are the batch's codes (column ``i`` is query ``i``'s positive).
    With ``share_hard_negatives`` the ``B·k`` hard negatives follow, flattened query by
    query (query 0's k, then query 1's k, ...), so shape (B, B + B·k); without it each
    row gets only its own k, shape (B, B + k). No hard negatives (``None`` or k = 0):
    shape (B, B).
    """
    logits = query_emb @ code_emb.T
    if hard_neg_emb is None or not _has_hard_negatives(hard_neg_emb):
        return logits
    if hard_neg_emb.dim() != 3 or hard_neg_emb.shape[0] != query_emb.shape[0]:
        raise ValueError(f"hard_neg_emb must have shape (B, k, D); got {tuple(hard_neg_emb.shape)}")
    if share_hard_negatives:
        extra = query_emb @ hard_neg_emb.reshape(-1, hard_neg_emb.shape[-1]).T
    else:
        extra = torch.einsum("bd,bkd->bk", query_emb, hard_neg_emb)
    return torch.cat([logits, extra], dim=1)


def _full_width_mask(mask: Tensor, width: int) -> Tensor:
    """Pad a (B, B) mask with False for the hard-negative columns; check its shape."""
    batch = mask.shape[0]
    if mask.dim() != 2 or mask.shape[1] not in (batch, width):
        raise ValueError(
            f"mask must have shape ({batch}, {batch}) or ({batch}, {width}); got {tuple(mask.shape)}"
        )
    mask = mask.to(torch.bool)
    if bool(mask.diagonal().any()):
        raise ValueError(
            "mask excludes a query's own positive (a True on the diagonal); the loss would be infinite"
        )
    if mask.shape[1] == width:
        return mask
    return F.pad(mask, (0, width - batch), value=False)


def info_nce(
    query_emb: Tensor,
    code_emb: Tensor,
    hard_neg_emb: Tensor | None = None,
    scale: float = 20.0,
    hard_neg_mask: Tensor | None = None,
    *,
    share_hard_negatives: bool = True,
) -> Tensor:
    """InfoNCE with in-batch negatives and optional mined hard negatives (van den Oord et al., 2018).

    ``s_ij = scale · cos(q_i, x_j)`` over the columns ``x`` of :func:`similarity_logits`;
    ``L = mean_i -log( exp(s_ii) / Σ_j exp(s_ij) )`` = ``cross_entropy(S, arange(B))``.

    Args:
        query_emb: (B, D) L2-normalised query embeddings.
        code_emb: (B, D) L2-normalised code embeddings; row i is query i's correct code.
        hard_neg_emb: (B, k, D) mined hard negatives, or None. k = 0 is the same as None.
            Each query's k join its own denominator; with ``share_hard_negatives`` (default
            True) all B·k are also negatives for every other query: they are in the batch anyway.
        scale: inverse temperature; 20.0 (τ = 0.05).
        hard_neg_mask: bool mask of logits to exclude (set to -inf), shape (B, B) or the
            full width (B, B + B·k) shared / (B, B + k) not shared. Use it for false
            negatives, e.g. :func:`duplicate_mask`. It must not mask the diagonal.
        share_hard_negatives: see ``hard_neg_emb``.

    Returns:
        Scalar mean loss over the B queries.
    """
    logits = scale * similarity_logits(
        query_emb, code_emb, hard_neg_emb, share_hard_negatives=share_hard_negatives
    )
    if hard_neg_mask is not None:
        excluded = _full_width_mask(hard_neg_mask.to(logits.device), logits.shape[1])
        logits = logits.masked_fill(excluded, float("-inf"))
    target = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, target)


def _key_ids(keys: Sequence[str], ids: dict[str, int]) -> Tensor:
    return torch.tensor([ids.setdefault(key, len(ids)) for key in keys], dtype=torch.long)


def duplicate_mask(code_keys: Sequence[str], hard_neg_keys: Sequence[Sequence[str]] | None = None) -> Tensor:
    """Mark false negatives: columns whose code key equals the key of the row's own code.

    ``code_keys[i]`` is the key of query i's code (``negatives.code_key``: a hash of the
    whitespace-normalised text). Returns a bool (B, B) mask, True at ``(i, j)``, j ≠ i,
    when ``code_keys[j] == code_keys[i]``; the diagonal is always False. With
    ``hard_neg_keys`` ((B, k) keys of the hard negatives) the mask has the shared layout
    of :func:`info_nce`, (B, B + B·k), and also marks hard negatives (any query's) that
    duplicate row i's code.
    """
    ids: dict[str, int] = {}
    row_ids = _key_ids(code_keys, ids)
    column_ids = row_ids
    if hard_neg_keys is not None:
        flat = [key for keys in hard_neg_keys for key in keys]
        column_ids = torch.cat([row_ids, _key_ids(flat, ids)])
    mask = row_ids[:, None] == column_ids[None, :]
    mask.fill_diagonal_(False)
    return mask
