"""CoSENT and the order-augmented InfoNCE of OASIS (ACL 2025; docs/TRAINING.md, "Order-augmented loss").

``scale`` follows the package convention (inverse temperature, see ``info_nce``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .info_nce import info_nce

__all__ = ["cosent", "order_augmented_loss", "teacher_labels"]


def cosent(scores: Tensor, labels: Tensor, scale: float = 20.0) -> Tensor:
    """CoSENT ranking loss (Su, 2022; used by OASIS, ACL 2025).

    ``L = log(1 + Σ_{(a,b): y_a < y_b} exp(scale·s_a - scale·s_b))``, computed as a
    logsumexp with a zero prepended. Only the order of the labels matters; ties add no
    term. Memory is O(P²): P = 1024 pairs (a batch of 32 in the order-augmented loss)
    is a 1M-entry matrix.

    Args:
        scores: (P,) scores of P labelled pairs, e.g. cosines.
        labels: (P,) graded labels; a higher label should score higher.
        scale: inverse temperature; 20.0.

    Returns:
        Scalar loss; 0 when no pair of labels differs.
    """
    if scores.dim() != 1 or labels.shape != scores.shape:
        raise ValueError(
            f"scores and labels must both have shape (P,); got {tuple(scores.shape)} and {tuple(labels.shape)}"
        )
    differences = scale * (scores[:, None] - scores[None, :])  # [a, b] = s_a - s_b
    ordered = labels[:, None] < labels[None, :]  # y_a < y_b
    terms = differences[ordered]
    return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)


def order_augmented_loss(
    query_emb: Tensor,
    code_emb: Tensor,
    labels: Tensor,
    scale: float = 20.0,
    w_ibn: float = 0.98,
    w_cos: float = 0.02,
    mask: Tensor | None = None,
    hard_emb: Tensor | None = None,
) -> Tensor:
    """Order-augmented InfoNCE (OASIS, ACL 2025): ``w_ibn·InfoNCE + w_cos·CoSENT``.

    CoSENT runs over all B·B (query, code) pairs of the batch, pair ``a = (i, j)``
    scored by ``cos(q_i, c_j)`` and labelled ``labels[i, j]``, so negatives are ordered
    among themselves and against every query's positive.

    Args:
        query_emb: (B, D) L2-normalised query embeddings.
        code_emb: (B, D) L2-normalised codes; row i is query i's positive.
        labels: (B, B) graded teacher labels, diagonal 1.0 (see :func:`teacher_labels`).
        scale: inverse temperature of both terms; 20.0.
        w_ibn, w_cos: weights of InfoNCE and CoSENT; 0.98 and 0.02 as in OASIS.
        mask: optional bool mask of false negatives, excluded from InfoNCE only (give
            duplicates label 1.0 so CoSENT treats them as positives): (B, B), or with hard
            negatives the mask :func:`info_nce` takes for them.
        hard_emb: optional (B, k, D) mined hard negatives, in the InfoNCE term only.

    Returns:
        Scalar loss.
    """
    batch = query_emb.shape[0]
    if labels.shape != (batch, batch):
        raise ValueError(f"labels must have shape ({batch}, {batch}); got {tuple(labels.shape)}")
    loss = w_ibn * info_nce(query_emb, code_emb, hard_emb, scale=scale, hard_neg_mask=mask)
    if w_cos == 0.0:
        return loss
    cosines = query_emb @ code_emb.T
    return loss + w_cos * cosent(cosines.reshape(-1), labels.reshape(-1).to(cosines.device), scale)


def teacher_labels(teacher_scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """Graded labels for :func:`order_augmented_loss` from a teacher's (B, B) scores.

    Off-diagonal: ``sigmoid(score)``, in (0, 1) and capped just below 1.0. Sigmoid is one
    global monotone map, so labels stay comparable across rows, which CoSENT needs (it
    compares pairs of different queries); a per-row min-max would not. Any real-valued
    teacher works: a cross-encoder's tanh score or a frozen model's cosine. The diagonal
    (the correct pairs) and masked duplicates (optional (B, B) bool mask) get 1.0.
    Returns (B, B) float labels without gradient.
    """
    scores = teacher_scores.detach()
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"teacher_scores must have shape (B, B); got {tuple(scores.shape)}")
    scores = scores if scores.is_floating_point() else scores.float()
    below_one = torch.nextafter(torch.ones((), dtype=scores.dtype), torch.zeros((), dtype=scores.dtype))
    labels = torch.sigmoid(scores).clamp(max=below_one)
    if mask is not None:
        labels = labels.masked_fill(mask.to(device=labels.device, dtype=torch.bool), 1.0)
    labels.fill_diagonal_(1.0)
    return labels
