"""Does a ranker add anything to its retriever? The cascade with the ranker's score fused with the cosine.

For each query of a dev split, the retriever's top K are rescored by `ranker score + w * cosine` for a
grid of w (w = 0 is the plain cascade; a large w is the retriever's order). A ranker worth shipping
beats the retriever row at some w; choose w on the dev splits only.

    python bench/rerank_fusion.py MODEL_DIR cosqa/dev csn_ruby/valid   # MODEL_DIR holds both models
    python bench/rerank_fusion.py MODEL_DIR cosqa/dev --depth 5 10 20 --max-queries 200

The grid is the trainer's (`ranker_dev.FUSION_WEIGHTS`), so what the training run chose on torch
scores can be checked here on the int8 graphs the runtime runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

import numpy as np

from codesieve.server.model.encoders import CrossEncoder, DualEncoder
from codesieve.server.model.folder import ModelFolder
from codesieve.server.search.metrics import rank_of_gold, retrieval_metrics
from codesieve.trainer.data import load_eval_set
from codesieve.trainer.evaluate import (
    cascade_ranks,
    code_embeddings,
    default_cache_dir,
    rerank_scores,
    top_order,
)
from codesieve.trainer.ranker_dev import FUSION_WEIGHTS

WEIGHTS = FUSION_WEIGHTS


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="model folder with a retriever and a ranker")
    parser.add_argument("sets", nargs="+", help="dev splits: cosqa/dev, csn_ruby/valid")
    parser.add_argument(
        "--depth", type=int, nargs="+", default=[10], help="K, candidates the ranker rescores (default 10)"
    )
    parser.add_argument(
        "--max-queries",
        type=int,
        default=0,
        help="only the first N queries of each set (the pool stays whole)",
    )
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    args = parser.parse_args()
    model = ModelFolder.load(args.model)
    if model.ranker_path is None:
        sys.exit(f"{args.model} holds no ranker")
    retriever, ranker = DualEncoder(model, args.threads), CrossEncoder(model, args.threads)
    print(f"card fusion_weight: {model.card.fusion_weight}")
    print("| set | queries | K | retriever | " + " | ".join(f"w={w:g}" for w in WEIGHTS) + " |")
    print("|---|---|---|---|" + "---|" * len(WEIGHTS))
    deepest = max(args.depth)
    for name in args.sets:
        benchmark = load_eval_set(name)
        if args.max_queries:
            benchmark = dataclasses.replace(benchmark, queries=benchmark.queries[: args.max_queries])
        gold = np.asarray(benchmark.gold_positions())
        codes = code_embeddings(retriever, model, benchmark, default_cache_dir())
        similarity = retriever.encode_queries([query.text for query in benchmark.queries]) @ codes.T
        ranks = rank_of_gold(similarity, gold)
        order = top_order(similarity, deepest)
        cosines = np.take_along_axis(similarity, order, axis=1)
        scores = rerank_scores(ranker, benchmark, order)
        for depth in sorted(args.depth):
            fused = [
                retrieval_metrics(cascade_ranks(ranks, order, scores + w * cosines, gold, depth))["mrr"]
                for w in WEIGHTS
            ]
            cells = " | ".join(f"{mrr:.3f}" for mrr in fused)
            retrieved = retrieval_metrics(ranks)["mrr"]
            print(f"| {name} | {len(gold)} | {depth} | {retrieved:.3f} | {cells} |", flush=True)
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
