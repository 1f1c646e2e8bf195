"""A model fine-tuned from an int8 model folder, as `trainer fit` does, keeps its fine-tuning in int8.

Fine-tuning starts from the folder's dequantised weights, which lie on that folder's int8 grid, and
moves them by a small share of a quantisation step. Quantised onto the same grid again, they round
back to where they started: the export reproduces the starting model, and its parity with the
fine-tuned one falls short. `off_grid_weight_type` picks a type whose grid they do not lie on: a zero
point per channel moves the grid.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build_tiny_model
from numpy.typing import NDArray

from codesieve.export.onnx_export import (
    PARITY_TEXTS,
    check_parity,
    export_graph,
    export_model_folder,
    off_grid_weight_type,
    quantize_int8,
    weight_type_of,
)
from codesieve.server.model.encoders import TokenEncoder, open_session, pad
from codesieve.server.model.folder import ModelFolder, default_model_dir
from codesieve.trainer.checkpoints import retriever_from_model_folder
from codesieve.trainer.data import to_tensors, tokenize
from codesieve.trainer.losses.info_nce import info_nce
from codesieve.trainer.models import DualEncoder

NOUNS = ["planet", "ticket", "garden", "rocket", "violin", "harbor", "lantern", "meadow"]
ATTRIBUTES = ["weight", "price", "colour", "height"]
PAIRS = [
    (
        f"return the {attribute} of the {noun}",
        f"def {noun}_{attribute}({noun}):\n    return {noun}.{attribute}",
    )
    for noun in NOUNS
    for attribute in ATTRIBUTES
]


def _fine_tune(model: DualEncoder, tokens: TokenEncoder, steps: int) -> None:
    """A few InfoNCE steps on generated pairs: weights move by a few hundredths of an int8 step."""
    device = torch.device("cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    for step in range(steps):
        batch = PAIRS[(step * 8) % len(PAIRS) :][:8]
        queries = model(**to_tensors(tokenize(tokens, [query for query, _ in batch], 32), device))
        codes = model(**to_tensors(tokenize(tokens, [code for _, code in batch], 128), device))
        info_nce(queries, codes).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def _embeddings(model: DualEncoder, tokens: TokenEncoder, texts: list[str]) -> NDArray[np.float32]:
    batch = to_tensors(tokenize(tokens, texts, 128), torch.device("cpu"))
    with torch.no_grad():
        return np.asarray(model(**batch).numpy())


def _share_kept(
    start: NDArray[np.float32], fitted: NDArray[np.float32], exported: NDArray[np.float32]
) -> float:
    """How much of the fine-tuning's movement of the embeddings the exported graph shows (1 = all)."""
    movement = fitted - start
    return float(np.sum((exported - start) * movement) / np.sum(movement * movement))


@pytest.mark.slow
def test_a_model_fine_tuned_from_the_shipped_int8_folder_keeps_its_fine_tuning_in_int8(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    shipped = ModelFolder.load(default_model_dir())
    start, tokenizer = retriever_from_model_folder(shipped.path)
    start.eval()
    fitted = copy.deepcopy(start)
    tokens = TokenEncoder(tokenizer)
    _fine_tune(fitted, tokens, steps=8)
    texts = [*PARITY_TEXTS, *(code for _, code in PAIRS[::3])]
    before, after = _embeddings(start, tokens, texts), _embeddings(fitted, tokens, texts)
    graph = tmp_path / "fitted.fp32.onnx"
    export_graph(fitted, graph)

    kept = {}
    for weight_type in ("int8", "int8-asym", "uint8"):
        quantized = tmp_path / f"fitted.{weight_type}.onnx"
        quantize_int8(graph, quantized, weight_type)
        exported = np.asarray(
            open_session(quantized, threads=1).run(None, pad(tokenize(tokens, texts, 128)))[0]
        )
        kept[weight_type] = _share_kept(before, after, exported)

    grid = weight_type_of(shipped.retriever_path)  # the shipped folder's weights
    other = off_grid_weight_type(shipped.retriever_path)
    assert grid in kept and other in kept and other != grid
    assert kept[grid] < 0.3, kept  # on the start's grid the fine-tuning is rounded away
    assert kept[other] > 0.6, kept
    parity = check_parity(fitted, tmp_path / f"fitted.{other}.onnx", tokenizer, shipped.card.max_code_tokens)
    assert parity["mean_cosine"] >= 0.99  # check_parity raises below its bars; the bar, stated


def test_the_fine_tuned_weights_take_the_int8_type_the_start_does_not_use(tmp_path: Path) -> None:
    signed = build_tiny_model(tmp_path / "signed", with_ranker=False)
    assert weight_type_of(signed / "retriever.onnx") == "int8"
    assert off_grid_weight_type(signed / "retriever.onnx") == "int8-asym"

    start, tokenizer = retriever_from_model_folder(signed)
    card = ModelFolder.load(signed).card
    for weight_type, label in (("int8-asym", "asymmetric int8"), ("uint8", "asymmetric uint8")):
        other = export_model_folder(
            start, None, tokenizer, tmp_path / weight_type, card, weight_type=weight_type
        )
        assert weight_type_of(other.folder / "retriever.onnx") == weight_type
        assert label in other.card.quantization
        assert off_grid_weight_type(other.folder / "retriever.onnx") == "int8"
        # a fit can start from such a folder: its weights read back embed as the runtime does (else ParityError)
        retriever_from_model_folder(other.folder)

    fp32 = build_tiny_model(tmp_path / "fp32", with_ranker=False, quantize=False)
    assert weight_type_of(fp32 / "retriever.onnx") is None
    assert off_grid_weight_type(fp32 / "retriever.onnx") == "int8-asym"
