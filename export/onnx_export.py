"""Torch models to a runtime model folder: ONNX graphs, int8 weights, a parity check, a model card.

The graph is traced with eager attention, whose pattern ONNX Runtime's BERT optimizer recognises
and fuses (attention, embedding + LayerNorm, bias + GELU, skip + LayerNorm): about 10% faster
embedding and 17% faster reranking on this CPU than the unfused SDPA trace.

Quantisation is ONNX Runtime's dynamic int8 with per-channel weight scales: per-tensor int8 loses
too much on MiniLM (cosine to fp32 about 0.94, against 0.99 per channel). Three weight types:
signed int8, symmetric (`int8`, the default) or with a zero point per channel (`int8-asym`), both on
the fast kernels; and uint8 with a zero point (`uint8`), as exact as `int8-asym` but about half as fast
on this CPU. A model fine-tuned from an int8 folder needs another grid (`off_grid_weight_type`): its
training started from the folder's dequantised weights, which lie on that folder's grid, and moved
them by a few percent of a step, so quantising it onto the same grid again rounds nearly every weight
back to where it started and the export reproduces the starting model, not the fine-tuned one (the
`trainer fit` runs of docs/BENCHMARKS.md kept 1 to 7% of the fit's movement that way, and missed
parity). A zero point moves the grid, so symmetric and asymmetric weights take turns. The parity check runs
the torch model and the int8 graph on the same inputs at several batch sizes and lengths, and
fails the export when the mean embedding cosine falls below 0.99 (or any single one below 0.97),
or when the ranker's order disagrees with torch's (Spearman below 0.9) by more than noise (some
score off by over 0.02).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.optimizer import optimize_model

from codesieve.server.model.encoders import TokenEncoder, open_session, pad
from codesieve.server.model.folder import (
    RANKER_FILE,
    RETRIEVER_FILE,
    TOKENIZER_FILE,
    ModelCard,
    replace_folder,
    write_card,
)

from .torch_model import OUTPUT_NAMES, TorchModel

OPSET = 17
WeightType = Literal["int8", "int8-asym", "uint8"]
# the quantised type, and whether its grid is symmetric about zero (no zero point)
QUANT_TYPES = {
    "int8": (QuantType.QInt8, True),
    "int8-asym": (QuantType.QInt8, False),
    "uint8": (QuantType.QUInt8, False),
}
MIN_MEAN_COSINE = 0.99
MIN_WORST_COSINE = 0.97
MIN_RANK_CORRELATION = 0.9
MAX_SCORE_DIFFERENCE = 0.02  # ranker scores lie in [-1, 1]; closer than this, order is noise

# Parity inputs: short and long, natural language and code, so that padding and truncation both show.
PARITY_TEXTS = [
    "parse the config file and fall back to defaults",
    "retry an http request with exponential backoff",
    "def load(path):\n    with open(path) as f:\n        return json.load(f)",
    "function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }",
    'func (s *Server) Handle(w http.ResponseWriter, r *http.Request) {\n\tif r.Method != "GET" {\n\t\thttp.Error(w, "bad", 405)\n\t\treturn\n\t}\n}',
    "sort",
    "class LRUCache:\n    def __init__(self, capacity):\n        self.capacity = capacity\n        self.items = OrderedDict()\n"
    * 6,
    "read a csv file into a list of dictionaries keyed by header",
]


class ParityError(Exception):
    """The exported graph does not reproduce the torch model closely enough."""


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    card: ModelCard
    parity: dict[str, Any]


def export_graph(model: TorchModel, path: Path) -> None:
    """Write `model` as an fp32 ONNX graph with dynamic batch and sequence axes, attention fused."""
    model.eval()
    previous = model.bert.config._attn_implementation
    model.bert.set_attn_implementation("eager")  # the pattern ONNX Runtime's fusion recognises
    example = pad([([1, 1, 1, 1], [0, 0, 0, 0]), ([1, 1, 1], [0, 0, 0])])  # ids valid in any vocabulary
    inputs = tuple(
        torch.from_numpy(example[name]) for name in ("input_ids", "attention_mask", "token_type_ids")
    )
    output_name = OUTPUT_NAMES[model.kind]
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            inputs,
            str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=[output_name],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                output_name: {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    model.bert.set_attn_implementation(previous)
    config = model.bert.config
    fused = optimize_model(
        str(path), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
    )
    fused.save_model_to_file(str(path))


def quantize_int8(source: Path, target: Path, weight_type: WeightType = "int8") -> None:
    """Dynamic int8 quantisation of MatMul/Gemm weights with one scale per output channel."""
    quant_type, symmetric = QUANT_TYPES[weight_type]
    quantize_dynamic(
        str(source),
        str(target),
        per_channel=True,
        weight_type=quant_type,
        # fused ops have no inferred types
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "WeightSymmetric": symmetric},
    )


def weight_type_of(graph: Path) -> WeightType | None:
    """The type of a graph's quantised weights, or None when they are fp32."""
    model = onnx.load(str(graph))
    tensors = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("MatMulInteger", "QAttention"):
            if tensors[node.input[1]].data_type == onnx.TensorProto.UINT8:
                return "uint8"
            zero_point = tensors.get(node.input[3 if node.op_type == "MatMulInteger" else 7])
            asymmetric = zero_point is not None and np.any(onnx.numpy_helper.to_array(zero_point))
            return "int8-asym" if asymmetric else "int8"
    return None


def off_grid_weight_type(start: Path) -> WeightType:
    """The weight type for a model fine-tuned from the retriever graph `start`: a fast signed type
    whose grid the starting weights do not lie on, so that rounding keeps the fine-tuning (with a zero
    point from a symmetric or fp32 start, without one from an asymmetric start)."""
    return "int8" if weight_type_of(start) in ("int8-asym", "uint8") else "int8-asym"


def _parity_sequences(
    tokens: TokenEncoder, kind: str, max_tokens: int, texts: Sequence[str]
) -> list[tuple[list[int], list[int]]]:
    ids = tokens.ids(texts, max_tokens)
    if kind == "retriever":
        return [tokens.single(row) for row in ids]
    query = ids[0][:32]
    return [tokens.pair(query, row) for row in ids]


def _torch_outputs(model: torch.nn.Module, sequences: list[tuple[list[int], list[int]]]) -> np.ndarray:
    batch = {name: torch.from_numpy(array) for name, array in pad(sequences).items()}
    with torch.no_grad():
        return np.asarray(model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).numpy())


def check_parity(
    model: TorchModel,
    graph: Path,
    tokenizer: Path,
    max_tokens: int,
    texts: Sequence[str] = PARITY_TEXTS,
) -> dict[str, float]:
    """Compare torch and ONNX outputs on several batch sizes; raise ParityError below the bars."""
    kind = model.kind
    session = open_session(graph, threads=1)
    sequences = _parity_sequences(TokenEncoder(tokenizer), kind, max_tokens, texts)
    cosines: list[float] = []
    correlations: list[float] = []
    differences: list[float] = []
    for size in (1, 3, len(sequences)):
        for start in range(0, len(sequences), size):
            chunk = sequences[start : start + size]
            expected = _torch_outputs(model, chunk)
            actual = np.asarray(session.run(None, pad(chunk))[0])
            if kind == "retriever":
                norms = np.linalg.norm(expected, axis=1) * np.linalg.norm(actual, axis=1)
                cosines.extend((np.sum(expected * actual, axis=1) / norms).tolist())
            else:
                differences.append(float(np.max(np.abs(expected.reshape(-1) - actual.reshape(-1)))))
                if len(chunk) > 2:
                    correlations.append(_spearman(expected.reshape(-1), actual.reshape(-1)))
    if kind == "retriever":
        result = {"mean_cosine": float(np.mean(cosines)), "min_cosine": float(np.min(cosines))}
        failed = result["mean_cosine"] < MIN_MEAN_COSINE or result["min_cosine"] < MIN_WORST_COSINE
        bars = f"mean >= {MIN_MEAN_COSINE}, min >= {MIN_WORST_COSINE}"
    else:
        result = {
            "min_spearman": float(np.min(correlations)),
            "max_score_difference": float(np.max(differences)),
        }
        failed = (
            result["min_spearman"] < MIN_RANK_CORRELATION
            and result["max_score_difference"] > MAX_SCORE_DIFFERENCE
        )
        bars = f"min_spearman >= {MIN_RANK_CORRELATION} or max_score_difference <= {MAX_SCORE_DIFFERENCE}"
    result = {key: round(value, 5) for key, value in result.items()}
    if failed:
        raise ParityError(f"{graph.name} against torch: {result}, needs {bars}")
    return result


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    first_ranks = np.argsort(np.argsort(first)).astype(float)
    second_ranks = np.argsort(np.argsort(second)).astype(float)
    if first_ranks.std() == 0 or second_ranks.std() == 0:
        return 1.0
    return float(np.corrcoef(first_ranks, second_ranks)[0, 1])


def export_model_folder(
    retriever: TorchModel,
    ranker: TorchModel | None,
    tokenizer_file: Path,
    out: Path,
    card: ModelCard,
    quantize: bool = True,
    weight_type: WeightType = "int8",
) -> ExportResult:
    """Export both models into `out` (replaced atomically) and write the model card."""
    with _staged_folder(Path(out)) as staging:
        parity: dict[str, Any] = {}
        for model, name, max_tokens in (
            (retriever, RETRIEVER_FILE, card.max_code_tokens),
            (ranker, RANKER_FILE, card.max_code_tokens),
        ):
            if model is None:
                continue
            _export_graph_file(model, staging / name, quantize, weight_type)
            parity[name] = check_parity(model, staging / name, tokenizer_file, max_tokens)
        _write_tokenizer(tokenizer_file, staging / TOKENIZER_FILE)
        final_card = replace(
            card,
            quantization=_quantization_label(quantize, weight_type),
            extra={**card.extra, "parity": parity},
        )
        write_card(staging, final_card)
    return ExportResult(folder=Path(out), card=final_card, parity=parity)


@contextmanager
def _staged_folder(out: Path) -> Iterator[Path]:
    """A private temporary folder beside `out`, renamed into place as `out` when the block ends
    without an error, and removed in every case that leaves it behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it private
        replace_folder(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _export_graph_file(
    model: TorchModel, target: Path, quantize: bool, weight_type: WeightType = "int8"
) -> None:
    """`model` as an ONNX graph at `target`: `weight_type` weights when `quantize`, else fp32."""
    fp32 = target.with_name(target.name + ".fp32")
    export_graph(model, fp32)
    if quantize:
        quantize_int8(fp32, target, weight_type)
        fp32.unlink()
    else:
        fp32.rename(target)


def export_ranker_beside(
    ranker: TorchModel,
    retriever_graph: Path,
    tokenizer_file: Path,
    out: Path,
    card: ModelCard,
    quantize: bool,
    parity: dict[str, Any],
    weight_type: WeightType = "int8",
) -> ExportResult:
    """A model folder in `out` (replaced atomically) holding a copy of an exported retriever graph,
    the tokenizer, and `ranker` exported and checked for parity; `parity` has the retriever's."""
    with _staged_folder(Path(out)) as staging:
        shutil.copyfile(retriever_graph, staging / RETRIEVER_FILE)
        shutil.copyfile(tokenizer_file, staging / TOKENIZER_FILE)
        _export_graph_file(ranker, staging / RANKER_FILE, quantize, weight_type)
        parity = {
            **parity,
            RANKER_FILE: check_parity(ranker, staging / RANKER_FILE, tokenizer_file, card.max_code_tokens),
        }
        final_card = replace(card, extra={**card.extra, "parity": parity})
        write_card(staging, final_card)
    return ExportResult(folder=Path(out), card=final_card, parity=parity)


def _quantization_label(quantize: bool, weight_type: WeightType = "int8") -> str:
    if not quantize:
        return "none (fp32)"
    if weight_type != "int8":
        kind = "int8" if weight_type == "int8-asym" else "uint8"
        return f"int8 dynamic, per-channel asymmetric {kind} weights (onnxruntime)"
    return "int8 dynamic, per-channel weights (onnxruntime)"


def _write_tokenizer(source: Path, target: Path) -> None:
    """Copy tokenizer.json with its baked-in padding and truncation removed."""
    data = json.loads(source.read_text(encoding="utf-8"))
    data["padding"] = None
    data["truncation"] = None
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
