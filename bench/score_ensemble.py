"""Two dense retrievers' scores mixed, a * first + (1 - a) * second, on the dev splits.

The question it answers: does an ensemble of zero-shot all-MiniLM-L6-v2 (strong on CoSQA's web
queries) and the shipped retriever (strong on docstring-style queries) beat both? One model folder
whose retriever output is the two embeddings side by side, scaled by sqrt(a) and sqrt(1 - a), would
run it at the runtime's cost of two encoders; this script scores it without building that folder.
`--drop-word` also scores each model with a word taken out of every query (for example the
language's name, which nearly every CoSQA query carries).

    python bench/score_ensemble.py ~/.cache/codesieve-bench/base-model codesieve/models/default
    python bench/score_ensemble.py A B --drop-word python --benchmarks cosqa/dev
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from codesieve.server.model.encoders import OnnxRetriever
from codesieve.server.model.folder import ModelFolder
from codesieve.trainer.benchmarks import Benchmark, load_benchmark
from codesieve.trainer.evaluate import code_embeddings, default_cache_dir, leave_out_query_copies
from codesieve.trainer.metrics import rank_of_gold, retrieval_metrics

WEIGHTS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0)


def similarity(benchmark: Benchmark, model_dir: Path, queries: list[str]) -> NDArray[np.float32]:
    model = ModelFolder.load(model_dir)
    encoder = OnnxRetriever(model, threads=1)
    codes = code_embeddings(encoder, model, benchmark, default_cache_dir())
    scores: NDArray[np.float32] = encoder.encode_queries(queries) @ codes.T
    leave_out_query_copies(scores, benchmark)
    return scores


def line(label: str, scores: NDArray[np.float32], gold: NDArray[np.int64]) -> str:
    metrics = retrieval_metrics(rank_of_gold(scores, gold), (1, 10))
    return f"| {label} | {metrics['mrr']:.3f} | {metrics['recall@1']:.3f} / {metrics['recall@10']:.3f} |"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("first", type=Path, help="model folder whose weight is a")
    parser.add_argument("second", type=Path, help="model folder whose weight is 1 - a")
    parser.add_argument("--benchmarks", nargs="+", default=["cosqa/dev", "csn_ruby/valid"])
    parser.add_argument("--drop-word", help="also score each model with this word taken out of every query")
    args = parser.parse_args()
    for name in args.benchmarks:
        benchmark = load_benchmark(*name.split("/"))
        gold = benchmark.gold_positions()
        texts = [query.text for query in benchmark.queries]
        print(f"| {name} | MRR | R@1 / R@10 |\n|---|---|---|")
        first, second = similarity(benchmark, args.first, texts), similarity(benchmark, args.second, texts)
        for a in WEIGHTS:
            print(line(f"a = {a}", a * first + (1 - a) * second, gold))
        if args.drop_word:
            pattern = re.compile(rf"\b{re.escape(args.drop_word)}\b", re.IGNORECASE)
            dropped = [" ".join(pattern.sub(" ", text).split()) or text for text in texts]
            for model_dir in (args.first, args.second):
                print(
                    line(
                        f"{model_dir.name}, no '{args.drop_word}'",
                        similarity(benchmark, model_dir, dropped),
                        gold,
                    )
                )
    print("reproduce: python " + " ".join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
