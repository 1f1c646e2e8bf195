"""Does a ranker add anything to the runtime's first stage? The cascade at each depth K and fusion weight w.

Everything goes through the runtime (`trainer.runtime_pipeline`): each split's pool is indexed as
the runtime indexes it, each query's first stage (dense + lexical at the card's weight, the
runtime's N = 100) runs once, the ONNX ranker scores its top max(K) once, and every (K, w) is the
runtime's two-stage merge, `ranker + w * first-stage score` over the top K and first-stage order below them,
as `codesieve search` returns it with rerank depth K and a card whose `fusion_weight` is w. The
"retrieval only" column is the runtime without a ranker. w = 0 is the plain cascade; a large w
gives back the retriever's order.

    python bench/rerank_fusion.py MODEL_DIR cosqa/dev csn_ruby/valid             # choose K and w on dev
    python bench/rerank_fusion.py MODEL_DIR cosqa/test csn_ruby/test --weights 3 # then test, at the chosen w
    python bench/rerank_fusion.py MODEL_DIR cosqa/dev --sample 200               # 200 seeded queries a split

The grid of weights is the trainer's (`ranker_dev.FUSION_WEIGHTS`), so what a training run chose on
torch scores can be checked here on the int8 graphs the runtime runs. The last line names the (K, w)
with the best mean gain over the splits given (ties: smaller K, then smaller w): choose it on dev.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shlex
import sys
from pathlib import Path

import numpy as np

from codesieve.server.model.encoders import OnnxRetriever
from codesieve.server.model.folder import ModelFolder
from codesieve.trainer.benchmarks import Benchmark
from codesieve.trainer.data import load_eval_set
from codesieve.trainer.evaluate import code_embeddings, default_cache_dir
from codesieve.trainer.metrics import retrieval_metrics
from codesieve.trainer.ranker_dev import FUSION_WEIGHTS
from codesieve.trainer.runtime_pipeline import gold_rank, rerank_grid, runtime_cascade

DEPTH = 100  # the runtime's N (EngineConfig.retrieve_depth)


def sampled(benchmark: Benchmark, size: int, seed: int) -> Benchmark:
    """`size` of the benchmark's queries drawn with random.Random(seed), in their order; the pool stays whole."""
    if not size or size >= len(benchmark.queries):
        return benchmark
    keep = sorted(random.Random(seed).sample(range(len(benchmark.queries)), size))
    return dataclasses.replace(benchmark, queries=[benchmark.queries[index] for index in keep])


def mrr(benchmark: Benchmark, rankings: list[list[int]]) -> float:
    """MRR of the gold ids in the rankings; a gold outside the runtime's N counts as rank N + 1."""
    ranks = [
        gold_rank(ranking, query.code_id, DEPTH + 1)
        for query, ranking in zip(benchmark.queries, rankings, strict=True)
    ]
    return float(retrieval_metrics(np.array(ranks, dtype=np.int64))["mrr"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="model folder with a retriever and a ranker")
    parser.add_argument("sets", nargs="+", help="splits: cosqa/dev, csn_ruby/valid (choose), then the tests")
    parser.add_argument(
        "--depth", type=int, nargs="+", default=[5, 10, 20], help="K, candidates the ranker rescores"
    )
    parser.add_argument(
        "--weights", type=float, nargs="+", default=list(FUSION_WEIGHTS), help="fusion weights w"
    )
    parser.add_argument(
        "--sample", type=int, default=0, help="N queries of each split, seeded (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    args = parser.parse_args()
    model = ModelFolder.load(args.model)
    if model.ranker_path is None:
        sys.exit(
            f"{args.model} holds no ranker: add one with `trainer export --onto {args.model} --ranker DIR`"
        )
    encoder = OnnxRetriever(model, args.threads)
    print(
        f"card: fusion_weight {model.card.fusion_weight:g}, first-stage lexical weight {model.card.lexical_weight:g}"
    )
    print("| set | queries | K | retrieval only | " + " | ".join(f"w={w:g}" for w in args.weights) + " |")
    print("|---|---|---|---|" + "---|" * len(args.weights))
    gains: dict[tuple[int, float], list[float]] = {}
    for name in args.sets:
        full = load_eval_set(name)
        cascade = runtime_cascade(
            full, model, code_embeddings(encoder, model, full, default_cache_dir()), args.threads
        )
        benchmark = sampled(full, args.sample, args.seed)
        grid = rerank_grid(benchmark, cascade, sorted(args.depth), args.weights, DEPTH)
        cascade.store.close()
        retrieved = mrr(benchmark, grid.retrieved)
        for k in sorted(args.depth):
            cells = []
            for w in args.weights:
                reranked = mrr(benchmark, grid.reranked[(k, w)])
                gains.setdefault((k, w), []).append(reranked - retrieved)
                cells.append(f"{reranked:.3f}")
            print(
                f"| {name} | {len(benchmark.queries)} | {k} | {retrieved:.3f} | {' | '.join(cells)} |",
                flush=True,
            )
    k, w = min(gains, key=lambda kw: (-sum(gains[kw]) / len(gains[kw]), kw[0], kw[1]))
    shown = ", ".join(f"{name} {gain:+.3f}" for name, gain in zip(args.sets, gains[(k, w)], strict=True))
    print(f"best mean gain over retrieval only: K = {k}, w = {w:g} ({shown})")
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
