"""Reading a model folder's retriever back into torch: the weights, and parity with the runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import _tiny_bert_config, build_tiny_model

from codesieve.export.onnx_weights import ParityError, check_against_runtime
from codesieve.server.model.folder import ModelFolder
from codesieve.trainer.checkpoints import retriever_from_model_folder


def _exported_weights(folder: Path, seed: int) -> dict[str, torch.Tensor]:
    """The weights `build_tiny_model(seed=seed)` exported: it seeds torch, then builds the BERT."""
    from transformers import BertModel

    torch.manual_seed(seed)
    bert = BertModel(_tiny_bert_config(folder / "tokenizer.json"), add_pooling_layer=False)
    return {name: parameter.detach() for name, parameter in bert.named_parameters()}


def test_weights_read_from_an_fp32_graph_are_the_exported_weights(tmp_path: Path) -> None:
    folder = build_tiny_model(tmp_path / "fp32", with_ranker=False, seed=3, quantize=False)
    retriever, tokenizer = retriever_from_model_folder(folder)
    read = dict(retriever.bert.named_parameters())
    expected = _exported_weights(folder, seed=3)
    assert read.keys() == expected.keys()
    for name, weight in expected.items():
        assert torch.allclose(read[name], weight, atol=1e-6), name
    assert tokenizer == folder / "tokenizer.json"


def test_weights_read_from_an_int8_graph_are_the_exported_weights_dequantised(tiny_model: Path) -> None:
    retriever, _ = retriever_from_model_folder(tiny_model)
    read = dict(retriever.bert.named_parameters())
    for name, weight in _exported_weights(tiny_model, seed=0).items():
        # int8 steps are 1/127 of a channel's largest weight (1/255 of a tensor's range for embeddings)
        step = weight.abs().max() / 100
        assert (read[name] - weight).abs().max() <= step, name


def test_retriever_read_from_a_model_folder_embeds_as_the_runtime_does(tiny_model: Path) -> None:
    retriever, _ = retriever_from_model_folder(tiny_model)
    parity = check_against_runtime(retriever, ModelFolder.load(tiny_model))
    assert parity["min_cosine"] > 0.99


def test_parity_check_rejects_weights_that_are_not_the_folders(
    tiny_model: Path, other_tiny_model: Path
) -> None:
    other, _ = retriever_from_model_folder(other_tiny_model)
    with pytest.raises(ParityError, match="do not reproduce it"):
        check_against_runtime(other, ModelFolder.load(tiny_model))
