"""Does a ranker add anything to its retriever? The cascade with the ranker's score fused with the cosine.

For each query of a dev split, the retriever's top K are rescored by `ranker score + w * cosine` for a
grid of w (w = 0 is the plain cascade; a large w is the retriever's order). A ranker worth shipping
beats the retriever row at some w; choose w on the dev splits only.

    python bench/rerank_fusion.py MODEL_DIR cosqa/dev csn_ruby/valid   # MODEL_DIR holds both models
"""

from __future__ import annotations

import argparse
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

WEIGHTS = (0, 1, 2, 5, 10, 20, 50, 100)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="model folder with a retriever and a ranker")
    parser.add_argument("sets", nargs="+", help="dev splits: cosqa/dev, csn_ruby/valid")
    parser.add_argument(
        "--depth", type=int, default=10, help="K, candidates the ranker rescores (default 10)"
    )
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    args = parser.parse_args()
    model = ModelFolder.load(args.model)
    if model.ranker_path is None:
        sys.exit(f"{args.model} holds no ranker")
    retriever, ranker = DualEncoder(model, args.threads), CrossEncoder(model, args.threads)
    print("| set | retriever | " + " | ".join(f"w={w}" for w in WEIGHTS) + " |")
    print("|---|---|" + "---|" * len(WEIGHTS))
    for name in args.sets:
        benchmark = load_eval_set(name)
        gold = np.asarray(benchmark.gold_positions())
        codes = code_embeddings(retriever, model, benchmark, default_cache_dir())
        similarity = retriever.encode_queries([query.text for query in benchmark.queries]) @ codes.T
        ranks = rank_of_gold(similarity, gold)
        order = top_order(similarity, args.depth)
        cosines = np.take_along_axis(similarity, order, axis=1)
        scores = rerank_scores(ranker, benchmark, order)
        fused = [
            retrieval_metrics(cascade_ranks(ranks, order, scores + w * cosines, gold, args.depth))["mrr"]
            for w in WEIGHTS
        ]
        cells = " | ".join(f"{mrr:.3f}" for mrr in fused)
        print(f"| {name} | {retrieval_metrics(ranks)['mrr']:.3f} | {cells} |", flush=True)
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
