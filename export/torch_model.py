"""What the export needs of a trained torch model: its BERT and the kind of graph it becomes.

The trainer's models (`trainer.models.DualEncoder` and `CrossEncoder`) derive from `TorchModel`, so
the export turns them into graphs, and reads graphs back, without importing the trainer: the
dependency runs one way, trainer -> export -> server.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from torch import Tensor, nn
from transformers import BertModel

Kind = Literal["retriever", "ranker"]
OUTPUT_NAMES: dict[Kind, str] = {"retriever": "embeddings", "ranker": "scores"}  # the graphs' outputs


class TorchModel(nn.Module):
    """A BERT-based model over `(input_ids, attention_mask, token_type_ids)`: a retriever returns
    (B, H) L2-normalised embeddings, a ranker (B,) scores."""

    kind: ClassVar[Kind]
    bert: BertModel

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        raise NotImplementedError
