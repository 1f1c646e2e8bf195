"""Checkpoint folders: writing them whole, reading them back, and the retriever of a runtime model
folder as a torch model (`retriever_from_model_folder`). The schedule, seeding and threads are in
`loop.py`, the RNG state in `seeding.py`.

A training output folder holds:

    checkpoint/     the latest weights (`models.save_model`), `train-config.json` and
                    `train-state.pt` (optimiser, scheduler, step, RNG states, the config as
                    JSON, dev history): what `--resume` continues from
    best/           the weights with the best dev MRR so far (only when a dev set is given)
    model/          the result: best/ when there is a dev set, else the last weights, with
                    `train-config.json` (config, data file and its sha256, steps, dev scores)

Each folder is written beside its final name and renamed into place, so an interruption leaves
either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any, TypeVar

import torch

from codesieve.export.onnx_weights import bert_from_graph, check_against_runtime
from codesieve.server.model.folder import ModelFolder, replace_folder

from .models import CrossEncoder, DualEncoder, load_model, save_model
from .seeding import rng_state

CHECKPOINT = "checkpoint"
BEST = "best"
MODEL = "model"
STATE_FILE = "train-state.pt"
CONFIG_FILE = "train-config.json"

Model = TypeVar("Model", DualEncoder, CrossEncoder)


def frozen_copy(model: Model) -> Model:
    """A deep copy in eval mode with no gradients: a teacher or estimator that never drifts."""
    frozen = copy.deepcopy(model).eval()
    frozen.requires_grad_(False)
    return frozen


def save_weights(
    folder: Path, model: DualEncoder | CrossEncoder, tokenizer: Path, info: dict[str, Any]
) -> None:
    """Save a model folder with `train-config.json` (`info`), atomically."""
    staging = folder.with_name(folder.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    save_model(model, staging, tokenizer)
    (staging / CONFIG_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    replace_folder(staging, folder)


def save_checkpoint(
    out: Path, model: DualEncoder | CrossEncoder, tokenizer: Path, info: dict[str, Any], state: dict[str, Any]
) -> None:
    """Write `out/checkpoint/`: weights, the config, and the training state for `--resume`."""
    staging = out / (CHECKPOINT + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    save_model(model, staging, tokenizer)
    (staging / CONFIG_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    torch.save({**state, "rng": rng_state()}, staging / STATE_FILE)
    replace_folder(staging, out / CHECKPOINT)


def load_state(out: Path) -> dict[str, Any] | None:
    """The training state in `out/checkpoint/`, or None when there is none."""
    path = out / CHECKPOINT / STATE_FILE
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def finish(out: Path, use_best: bool, info: dict[str, Any]) -> Path:
    """Copy the chosen weights (best/ or checkpoint/) to `out/model/` with the final info."""
    source = out / BEST if use_best and (out / BEST).exists() else out / CHECKPOINT
    staging = out / (MODEL + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(STATE_FILE))
    (staging / CONFIG_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    replace_folder(staging, out / MODEL)
    return out / MODEL


def stored_config(out: Path) -> dict[str, Any] | None:
    """The config saved in `out/checkpoint/` (what `--resume` continues with), or None."""
    path = out / CHECKPOINT / CONFIG_FILE
    if not path.exists():
        return None
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["config"]
    return config


def load_retriever(folder: Path) -> DualEncoder:
    """A DualEncoder from a saved retriever or from base weights."""
    model = load_model(folder, "retriever")
    assert isinstance(model, DualEncoder)
    return model


def load_ranker(folder: Path) -> CrossEncoder:
    """A CrossEncoder from a saved ranker, or base weights with a fresh head."""
    model = load_model(folder, "ranker")
    assert isinstance(model, CrossEncoder)
    return model


def retriever_from_model_folder(folder: Path) -> tuple[DualEncoder, Path]:
    """The retriever of a runtime model folder as a torch model, and the folder's tokenizer.json.

    Model folders hold only ONNX graphs (usually int8); the BERT weights are read back out of the
    graph and dequantised (`onnx_weights`), then checked against the runtime encoder on a few
    texts (ParityError below the export's bars), so training starts from what search computes.
    The returned model is in eval mode; call `.train()` to fine-tune it.
    """
    model_folder = ModelFolder.load(folder)
    retriever = DualEncoder(bert_from_graph(model_folder.retriever_path)).eval()
    check_against_runtime(retriever, model_folder)
    return retriever, model_folder.tokenizer_path
