"""BM25 baseline on the shared benchmarks: MRR and Recall@1/5/10/100, and the command that made them.

    python bench/bm25_baseline.py                       # CoSQA dev+test, CSN Ruby valid+test
    python bench/bm25_baseline.py --sets cosqa/test --k1 1.2 --b 0.75

Reference (shared/benchmarks/README.md): CoSQA test MRR 0.330 (R@1 0.224, R@10 0.542);
CSN Ruby test MRR 0.489. Measured with the defaults (k1 1.2, b 0.75):

    set               MRR    R@1    R@5   R@10  R@100
    cosqa/dev       0.334  0.236  0.444  0.518  0.804
    cosqa/test      0.330  0.224  0.450  0.542  0.790
    csn_ruby/valid  0.513  0.399  0.651  0.716  0.891
    csn_ruby/test   0.489  0.389  0.608  0.681  0.864

Counting each occurrence of a repeated query word instead of each distinct word gives CSN Ruby
test MRR 0.475, so the index scores distinct query words (see codesieve.trainer.bm25).
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

import numpy as np

from codesieve.trainer.benchmarks import BENCHMARKS_ENV, Benchmark, load_benchmark
from codesieve.trainer.bm25 import BM25
from codesieve.trainer.metrics import DEFAULT_KS, rank_of_gold, retrieval_metrics

ALL_SETS = ("cosqa/dev", "cosqa/test", "csn_ruby/valid", "csn_ruby/test")
QUERY_CHUNK = 512  # queries scored at once: bounds the (chunk, N) score matrix


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Rank every benchmark query against its whole pool with BM25 (words from split_identifiers, "
            "Lucene IDF) and print MRR over the full ranking and Recall@1/5/10/100; ties with the "
            "correct code count against it. Ends with the command that reproduces the table."
        )
    )
    parser.add_argument(
        "--sets",
        nargs="+",
        default=list(ALL_SETS),
        choices=ALL_SETS,
        metavar="NAME/SPLIT",
        help=f"benchmark/split pairs to run (default: all of {', '.join(ALL_SETS)})",
    )
    parser.add_argument("--k1", type=float, default=1.2, help="term-frequency saturation (default 1.2)")
    parser.add_argument("--b", type=float, default=0.75, help="length normalisation (default 0.75)")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help=f"benchmarks folder (default: ${BENCHMARKS_ENV}, else shared/benchmarks found above here)",
    )
    return parser.parse_args(argv)


def evaluate(benchmark: Benchmark, k1: float, b: float) -> dict[str, float]:
    """Return BM25 retrieval metrics for one benchmark."""
    index = BM25([row.code for row in benchmark.codebase], k1=k1, b=b)
    gold = benchmark.gold_positions()
    texts = [query.text for query in benchmark.queries]
    ranks = np.concatenate(
        [
            rank_of_gold(
                index.score_matrix(texts[start : start + QUERY_CHUNK]), gold[start : start + QUERY_CHUNK]
            )
            for start in range(0, len(texts), QUERY_CHUNK)
        ]
    )
    metrics: dict[str, float] = retrieval_metrics(ranks, DEFAULT_KS)
    return metrics


def main(argv: list[str] | None = None) -> None:
    """Run BM25 on each chosen set and print a table."""
    args = parse_args(argv)
    columns = ["mrr", *(f"recall@{k}" for k in DEFAULT_KS)]
    print(
        f"{'set':<16}{'queries':>8}{'pool':>7}" + "".join(f"{c.replace('recall', 'R'):>8}" for c in columns)
    )
    for name_split in args.sets:
        name, split = name_split.split("/")
        benchmark = load_benchmark(name, split, root=args.root)
        started = time.perf_counter()
        metrics = evaluate(benchmark, args.k1, args.b)
        seconds = time.perf_counter() - started
        cells = "".join(f"{metrics[c]:>8.3f}" for c in columns)
        print(
            f"{name_split:<16}{len(benchmark.queries):>8}{len(benchmark.codebase):>7}{cells}   ({seconds:.1f} s)",
            flush=True,
        )
    command = [
        "python",
        "bench/bm25_baseline.py",
        "--sets",
        *args.sets,
        "--k1",
        str(args.k1),
        "--b",
        str(args.b),
    ]
    if args.root is not None:
        command += ["--root", str(args.root)]
    print(f"\nreproduce (from the repository root, venv active): {shlex.join(command)}")


if __name__ == "__main__":
    main()
