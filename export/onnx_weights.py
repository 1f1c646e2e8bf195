"""BERT weights rebuilt from an exported retriever graph: the reverse of `export.onnx_export`.

Model folders hold only ONNX graphs, so fine-tuning the model a user already has (the shipped
default or a fitted one) starts by reading its weights back out. `export` writes graphs fused by
ONNX Runtime's BERT optimizer and, by default, with int8 weights; this module reads exactly that:

- ``(Q)EmbedLayerNormalization``: word, position and token-type embeddings and their LayerNorm;
- ``(Q)Attention``, one per layer in order: the query, key and value projections side by side in
  one ``(hidden, 3·hidden)`` weight and one bias;
- ``MatMul`` / ``MatMulInteger`` named after their module (``/bert/encoder/layer.N/intermediate/
  dense/MatMul``): the dense weights, stored ``(in, out)``, i.e. transposed against ``nn.Linear``;
- ``BiasGelu`` and ``SkipLayerNormalization``: the dense biases and the LayerNorms, found through
  the names of the tensors they read and write.

Quantised weights are dequantised, ``(q - zero_point) · scale`` (per tensor or per output
channel), so the torch model computes what the int8 graph computes up to the rounding of its
activations. Parameters are matched by graph position, never by initializer name: the exporter
stores equal tensors once (every LayerNorm of a fresh model is ones and zeros) under the first name.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from onnx import numpy_helper
from transformers import BertConfig, BertModel

from codesieve.server.model.encoders import OnnxRetriever, TokenEncoder, pad
from codesieve.server.model.folder import ModelFolder

from .onnx_export import MIN_MEAN_COSINE, MIN_WORST_COSINE  # the export's own parity bars
from .torch_model import TorchModel

Array = NDArray[np.float32]

# The module path in a node or tensor name: "/bert/encoder/layer.0/intermediate/dense/MatMul".
_MODULE_PATH = re.compile(r"/bert/(encoder/layer\.\d+/(?:attention/output|intermediate|output))/")


class GraphWeightsError(Exception):
    """The graph is not one `trainer export` writes, so its weights cannot be read back."""


class _Graph:
    """Initializers (dequantised on request) and nodes of one ONNX graph."""

    def __init__(self, path: Path) -> None:
        model = onnx.load(str(path))
        self.path = path
        self.nodes = list(model.graph.node)
        self.tensors = {tensor.name: tensor for tensor in model.graph.initializer}
        self.dequantize_nodes = {
            node.output[0]: node for node in self.nodes if node.op_type == "DequantizeLinear"
        }

    def array(self, name: str) -> Array:
        """A stored weight, or one the quantiser stored as int8 behind a DequantizeLinear node."""
        if name in self.dequantize_nodes:
            node = self.dequantize_nodes[name]
            axis = int(_attribute(node, "axis")) if any(a.name == "axis" for a in node.attribute) else 1
            return self.dequantized(node.input[0], node.input[1], node.input[2], axis=axis)
        if name not in self.tensors:
            raise GraphWeightsError(f"{self.path}: {name!r} is not a stored weight")
        return np.asarray(numpy_helper.to_array(self.tensors[name]), dtype=np.float32)

    def dequantized(self, quantized: str, scale: str, zero_point: str, axis: int | None) -> Array:
        """`(q - zero_point) · scale`; `axis` is the channel axis of per-channel scales."""
        values, scales, zeros = self.array(quantized), self.array(scale), self.array(zero_point)
        if scales.ndim == 1 and axis is not None:
            shape = [1] * values.ndim
            shape[axis] = -1
            scales, zeros = scales.reshape(shape), zeros.reshape(shape)
        result: Array = (values - zeros) * scales
        return result

    def matmul_weight(self, node: onnx.NodeProto) -> Array:
        """The (in, out) weight of a MatMul, or of a MatMulInteger with its per-column scales."""
        if node.op_type == "MatMul":
            return self.array(node.input[1])
        quantized = node.input[1]
        if not quantized.endswith("_quantized"):
            raise GraphWeightsError(f"{self.path}: {node.name} reads {quantized}, not a quantised weight")
        return self.dequantized(quantized, quantized[: -len("quantized")] + "scale", node.input[3], axis=1)


def _attribute(node: onnx.NodeProto, name: str) -> float | int:
    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            assert isinstance(value, (int, float))
            return value
    raise GraphWeightsError(f"{node.name} ({node.op_type}) has no attribute {name!r}")


def _embeddings(graph: _Graph, node: onnx.NodeProto) -> dict[str, Array]:
    names = ["word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight"]
    names += ["LayerNorm.weight", "LayerNorm.bias"]
    inputs = list(node.input)
    if node.op_type == "EmbedLayerNormalization":
        values = [graph.array(name) for name in inputs[2:7]]
    else:  # QEmbedLayerNormalization: 5 weights, the mask, then 5 scales and 5 zero points
        values = [
            graph.dequantized(inputs[2 + i], inputs[8 + i], inputs[13 + i], axis=None) for i in range(5)
        ]
    return {f"bert.embeddings.{name}": value for name, value in zip(names, values, strict=True)}


def _attention(graph: _Graph, node: onnx.NodeProto, layer: int) -> dict[str, Array]:
    inputs = list(node.input)
    if node.op_type == "Attention":
        weight = graph.array(inputs[1])
    else:  # QAttention: input, weight, bias, input scale, weight scale, mask, input zero point, weight zero point
        weight = graph.dequantized(inputs[1], inputs[4], inputs[7], axis=1)
    bias = graph.array(inputs[2])
    hidden = weight.shape[0]
    prefix = f"bert.encoder.layer.{layer}.attention.self"
    parameters: dict[str, Array] = {}
    for part, name in enumerate(("query", "key", "value")):
        columns = slice(part * hidden, (part + 1) * hidden)
        parameters[f"{prefix}.{name}.weight"] = weight[:, columns].T
        parameters[f"{prefix}.{name}.bias"] = bias[columns]
    return parameters


def _module(name: str) -> str | None:
    """The module, e.g. "encoder.layer.0.intermediate", of a tensor or node named under that module, else None."""
    match = _MODULE_PATH.search(name)
    return match.group(1).replace("/", ".") if match else None


def read_parameters(path: Path) -> tuple[dict[str, Array], BertConfig]:
    """The BertModel state dict (as arrays) stored in a fused retriever graph, and its config."""
    graph = _Graph(path)
    parameters: dict[str, Array] = {}
    attention_layers = 0
    heads, epsilon = 0, 1e-12
    for node in graph.nodes:
        if node.op_type in ("EmbedLayerNormalization", "QEmbedLayerNormalization"):
            parameters.update(_embeddings(graph, node))
            epsilon = float(_attribute(node, "epsilon"))
        elif node.op_type in ("Attention", "QAttention"):
            parameters.update(_attention(graph, node, attention_layers))
            heads = int(_attribute(node, "num_heads"))
            attention_layers += 1
        elif node.op_type in ("MatMul", "MatMulInteger") and (module := _module(node.name)):
            parameters[f"bert.{module}.dense.weight"] = graph.matmul_weight(node).T
        elif node.op_type == "BiasGelu" and (module := _module(node.input[0])):
            parameters[f"bert.{module}.dense.bias"] = graph.array(node.input[1])
        elif node.op_type == "SkipLayerNormalization" and (module := _module(node.output[0])):
            parameters[f"bert.{module}.LayerNorm.weight"] = graph.array(node.input[2])
            parameters[f"bert.{module}.LayerNorm.bias"] = graph.array(node.input[3])
            parameters[f"bert.{module}.dense.bias"] = graph.array(node.input[4])
    if "bert.embeddings.word_embeddings.weight" not in parameters or attention_layers == 0:
        raise GraphWeightsError(
            f"{path} has no fused embedding or attention nodes: it was not written by `trainer export`"
        )
    words = parameters["bert.embeddings.word_embeddings.weight"]
    config = BertConfig(
        vocab_size=words.shape[0],
        hidden_size=words.shape[1],
        num_hidden_layers=attention_layers,
        num_attention_heads=heads,
        intermediate_size=parameters["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=parameters["bert.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=parameters["bert.embeddings.token_type_embeddings.weight"].shape[0],
        layer_norm_eps=epsilon,
        hidden_act="gelu",  # BiasGelu is the exact (erf) GELU
    )
    return parameters, config


def bert_from_graph(path: Path) -> BertModel:
    """A BertModel (no pooler) holding the weights of the fused, possibly int8, retriever graph."""
    parameters, config = read_parameters(path)
    bert = BertModel(config, add_pooling_layer=False)
    state = {name.removeprefix("bert."): torch.tensor(value) for name, value in parameters.items()}
    expected = {name for name, _ in bert.named_parameters()}
    missing, unexpected = expected - state.keys(), state.keys() - expected
    if missing or unexpected:
        raise GraphWeightsError(
            f"{path}: the graph does not describe a whole BERT "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    bert.load_state_dict(state, strict=False)  # buffers (position ids) are not parameters
    return bert


# Parity inputs: a query, short and long code, so that padding and truncation both show.
PARITY_TEXTS = (
    "read a csv file into a list of dictionaries keyed by header",
    "retry an http request with exponential backoff",
    "def load(path):\n    with open(path) as f:\n        return json.load(f)",
    "function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }",
    "class LRUCache:\n    def __init__(self, capacity):\n        self.capacity = capacity\n" * 8,
    "sort",
)


class ParityError(GraphWeightsError):
    """The rebuilt torch model does not embed like the model folder's graph."""


def check_against_runtime(model: TorchModel, folder: ModelFolder) -> dict[str, float]:
    """Cosines of torch and runtime embeddings of `PARITY_TEXTS`; ParityError below the export's bars."""
    runtime = OnnxRetriever(folder, threads=1)
    tokens = TokenEncoder(folder.tokenizer_path)
    sequences = [tokens.single(ids) for ids in tokens.ids(PARITY_TEXTS, folder.card.max_code_tokens)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        batch = {name: torch.from_numpy(array) for name, array in pad(sequences).items()}
        expected = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).numpy()
    model.train(was_training)
    actual = runtime.encode_code(list(PARITY_TEXTS))
    cosines = np.sum(expected * actual, axis=1)  # both L2-normalised
    result = {"mean_cosine": round(float(cosines.mean()), 5), "min_cosine": round(float(cosines.min()), 5)}
    if result["mean_cosine"] < MIN_MEAN_COSINE or result["min_cosine"] < MIN_WORST_COSINE:
        raise ParityError(
            f"the weights read from {folder.retriever_path} do not reproduce it: {result}, needs mean >= "
            f"{MIN_MEAN_COSINE} and min >= {MIN_WORST_COSINE}. Re-export the model folder with `trainer export`."
        )
    return result
