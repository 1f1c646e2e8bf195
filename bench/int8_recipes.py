"""Int8 recipes for fitted retrievers: parity, how much of the fit survives, size and speed.

For each `trainer fit` work folder (its `start/`: the model it started from, read back from the
int8 folder in use; `retriever/model`: the fitted weights; `held-out.jsonl`) the fitted retriever
is exported once as a fused fp32 graph and quantised with each recipe. Per recipe:

- mean / min: the export's own parity check (`onnx_export.check_parity`, bars 0.99 / 0.97);
- held-out mean / min: cosine of int8 and torch embeddings of 60 held-out descriptions and codes;
- kept: how much of the fit's movement of those embeddings the int8 graph shows,
  <e_int8 - e_start, e_fit - e_start> / |e_fit - e_start|^2 (1 = all of it, 0 = the start model);
- MB, and ms per chunk (a batch of 32 held-out codes, up to 128 tokens) and per query (batch 1,
  up to 32 tokens) on one ONNX Runtime thread, best of `--rounds` round-robin rounds (first folder only).

    python bench/int8_recipes.py ~/.cache/codesieve/indexes/REPO-*/training [MORE_WORK_FOLDERS...]
    python bench/int8_recipes.py WORK --start     # the starting models themselves, re-exported
    python bench/int8_recipes.py WORK --weights   # the fit's weight change against signed int8 rounding only
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from onnxruntime.quantization import QuantType, quantize_dynamic

from codesieve.export import onnx_export
from codesieve.export.onnx_export import check_parity, export_graph
from codesieve.server.model.encoders import TokenEncoder, open_session, pad
from codesieve.trainer.models import DualEncoder, load_model

RECIPES: dict[str, tuple[QuantType, bool]] = {  # weight type, FFN output MatMuls kept fp32
    "int8 (signed, symmetric): before": (QuantType.QInt8, False),
    "uint8 (asymmetric)": (QuantType.QUInt8, False),
    "int8, FFN output fp32": (QuantType.QInt8, True),
    "uint8, FFN output fp32": (QuantType.QUInt8, True),
}
Array = NDArray[np.float32]


def _unit(rows: Array) -> Array:
    result: Array = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return result


def _torch(model: DualEncoder, sequences: list[tuple[list[int], list[int]]]) -> Array:
    batch = {name: torch.from_numpy(array) for name, array in pad(sequences).items()}
    with torch.no_grad():
        return _unit(model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).numpy())


def _ffn_outputs(graph: Path) -> list[str]:
    return [
        node.name
        for node in onnx.load(str(graph)).graph.node
        if node.op_type == "MatMul" and "/output/dense/" in node.name and "/attention/" not in node.name
    ]


def _speed(graph: Path, codes: dict[str, np.ndarray], query: dict[str, np.ndarray]) -> tuple[float, float]:
    session = open_session(graph, threads=1)
    started = time.perf_counter()
    session.run(None, codes)
    chunk = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(5):
        session.run(None, query)
    return 1000 * chunk / len(codes["input_ids"]), 1000 * (time.perf_counter() - started) / 5


def weight_change(work: Path) -> str:
    """Mean |fit's change| in steps of signed per-channel int8, and the cosine between that change and the
    rounding error of quantising the fitted weights that way (-1: rounding undoes the fit)."""
    start = dict(load_model(work / "start", "retriever").named_parameters())
    fitted = dict(load_model(work / "retriever" / "model", "retriever").named_parameters())
    steps, changes, errors = [], [], []
    for name, weight in fitted.items():
        if weight.ndim != 2 or "embeddings" in name:
            continue  # the dense weights (out, in); embeddings are quantised per tensor
        after = weight.detach().double().numpy()
        step = np.abs(after).max(axis=1, keepdims=True) / 127
        change = after - start[name].detach().double().numpy()
        steps.append(float(np.mean(np.abs(change) / step)))
        changes.append(change.ravel())
        errors.append((np.round(after / step) * step - after).ravel())
    change, error = np.concatenate(changes), np.concatenate(errors)
    cosine = float(change @ error / (np.linalg.norm(change) * np.linalg.norm(error)))
    return f"{work.parent.name}: mean |change| {np.mean(steps):.3f} of a step, cosine(change, rounding error) {cosine:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("work", nargs="+", type=Path, help="`trainer fit` work folders")
    parser.add_argument("--start", action="store_true", help="quantise the starting models instead")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--weights", action="store_true", help="only the weight change against int8 rounding")
    args = parser.parse_args()
    if args.weights:
        for work in args.work:
            print(weight_change(work))
        return
    torch.set_num_threads(1)
    onnx_export.MIN_MEAN_COSINE = onnx_export.MIN_WORST_COSINE = 0.0  # report every recipe, failing or not
    scratch = Path(tempfile.mkdtemp(prefix="int8-recipes-"))
    timed: dict[str, Path] = {}
    print("| model | recipe | mean | min | held-out mean | held-out min | kept | MB |")
    print("|---|---|---|---|---|---|---|---|")
    for index, work in enumerate(args.work):
        start = load_model(work / "start", "retriever").eval()
        fitted = start if args.start else load_model(work / "retriever" / "model", "retriever").eval()
        assert isinstance(start, DualEncoder) and isinstance(fitted, DualEncoder)
        tokenizer = work / "start" / "tokenizer.json"
        tokens = TokenEncoder(tokenizer)
        rows = [json.loads(line) for line in (work / "held-out.jsonl").read_text().splitlines()][:60]
        texts = [row["query"] for row in rows] + [row["code"] for row in rows]
        sequences = [tokens.single(ids) for ids in tokens.ids(texts, 128)]
        before, after = _torch(start, sequences), _torch(fitted, sequences)
        fp32 = scratch / f"{index}.fp32.onnx"
        export_graph(fitted, fp32)
        for name, (weight_type, keep_ffn) in RECIPES.items():
            graph = scratch / f"{index}.{weight_type.name}.{int(keep_ffn)}.onnx"
            quantize_dynamic(
                str(fp32),
                str(graph),
                per_channel=True,
                weight_type=weight_type,
                nodes_to_exclude=_ffn_outputs(fp32) if keep_ffn else [],
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            parity = check_parity(fitted, graph, tokenizer, 128)
            exported = _unit(np.asarray(open_session(graph, threads=1).run(None, pad(sequences))[0]))
            cosines = np.sum(exported * after, axis=1)
            movement = after - before
            kept = (
                f"{np.sum((exported - before) * movement) / np.sum(movement * movement):.3f}"
                if not args.start
                else "—"
            )
            print(
                f"| {work.parent.name.rsplit('-', 1)[0]}{' (start)' if args.start else ''} | {name} | "
                f"{parity['mean_cosine']:.5f} | {parity['min_cosine']:.5f} | {cosines.mean():.5f} | "
                f"{cosines.min():.5f} | {kept} | {graph.stat().st_size / 1e6:.1f} |",
                flush=True,
            )
            if index == 0:
                timed[name] = graph
        if index == 0:
            timed["fp32"] = fp32
            code_batch = pad(sequences[len(rows) : len(rows) + 32])
            query_batch = pad(sequences[:1])
    best = {name: (1e9, 1e9) for name in timed}
    for _ in range(args.rounds):
        for name, graph in timed.items():
            chunk, query = _speed(graph, code_batch, query_batch)
            best[name] = (min(best[name][0], chunk), min(best[name][1], query))
    print("\n| recipe | ms / chunk | ms / query | MB |\n|---|---|---|---|")
    for name, (chunk, query) in best.items():
        print(f"| {name} | {chunk:.1f} | {query:.2f} | {timed[name].stat().st_size / 1e6:.1f} |")


if __name__ == "__main__":
    main()
