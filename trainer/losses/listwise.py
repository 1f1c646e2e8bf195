"""Listwise loss of the cross-encoder ranker (R2PS, Dong et al.; docs/TRAINING.md, "The ranker").

``scale`` follows the package convention (inverse temperature, see ``info_nce``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["listwise_distillation_loss", "listwise_ranking_loss"]


def listwise_ranking_loss(scores: Tensor, scale: float = 20.0) -> Tensor:
    """Softmax cross-entropy over one positive and M negatives per query (Dong et al., R2PS).

    ``L = mean_i -log( exp(scale·y_i0) / Σ_m exp(scale·y_im) )`` = ``cross_entropy(scale·scores, 0)``.

    Args:
        scores: (B, 1+M) cross-encoder scores, column 0 the correct code. The model
            applies tanh, so scores lie in [-1, 1]; the loss only scales them.
        scale: inverse temperature; 20.0 as in the paper.

    Returns:
        Scalar mean loss.
    """
    if scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must have shape (B, 1+M) with M >= 1; got {tuple(scores.shape)}")
    target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scale * scores, target)


def listwise_distillation_loss(
    scores: Tensor, teacher_scores: Tensor, scale: float = 20.0, teacher_scale: float = 20.0
) -> Tensor:
    """Cross-entropy of the ranker's softmax against a teacher's softmax over the same candidates.

    ``L = mean_i -Σ_m softmax(teacher_scale·t_i)_m · log softmax(scale·y_i)_m`` (KL divergence up to
    the teacher's entropy, a constant). **Ours** (docs/TRAINING.md, "Distillation warm-up"): a first
    phase that teaches the fresh ranker the trained retriever's order over each query's top
    candidates, a dense target that does not call an equally good "negative" wrong, before the
    listwise loss on the gold.

    Args:
        scores: (B, C) ranker scores in [-1, 1].
        teacher_scores: (B, C) the teacher's scores of the same pairs (the retriever's cosines).
        scale, teacher_scale: inverse temperatures of the two softmaxes; 20.0 is the retriever's own.

    Returns:
        Scalar mean loss.
    """
    if scores.shape != teacher_scores.shape or scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"scores and teacher_scores must share a shape (B, C) with C >= 2; got "
            f"{tuple(scores.shape)} and {tuple(teacher_scores.shape)}"
        )
    target = torch.softmax(teacher_scale * teacher_scores.detach(), dim=1)
    return F.cross_entropy(scale * scores, target)
