"""Listwise loss of the cross-encoder ranker (R2PS, Dong et al., METHODS §4).

``scale`` follows the package convention (inverse temperature, see ``info_nce``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["listwise_ranking_loss"]


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
