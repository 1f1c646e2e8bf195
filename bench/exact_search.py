"""Vector search with hnswlib against the numpy fallback (`server/index/exact_graph.py`), at 10k and 100k chunks.

The machine without a compiler gets exact search; this measures what that costs. Both backends hold the
same random unit vectors (dimension 384, the shipped model's); each answers the same queries (stored
vectors with noise, as a query lands near code) for the top 100, the runtime's N. Prints the time to
build each, the search latency p50/p95 (one thread; the search holds the GIL either way), and hnswlib's
recall@100 against the exact answer.

    python bench/exact_search.py                    # 10k and 100k
    python bench/exact_search.py --sizes 10000 --queries 50
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time

import hnswlib
import numpy as np

from codesieve.server.index import vector_index
from codesieve.server.index.exact_graph import ExactGraph
from codesieve.server.index.vector_index import VectorIndex

DIMENSION = 384
DEPTH = 100


def build(vectors: np.ndarray, graph: type) -> tuple[VectorIndex, float]:
    vector_index.Graph = graph
    started = time.perf_counter()
    index = VectorIndex.empty(DIMENSION, capacity=len(vectors))
    for start in range(0, len(vectors), 5_000):
        index.add(list(range(start, min(start + 5_000, len(vectors)))), vectors[start : start + 5_000])
    return index, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="chunks")
    parser.add_argument("--queries", type=int, default=200, help="timed searches per size (default 200)")
    args = parser.parse_args()
    generator = np.random.default_rng(0)
    print("| chunks | backend | build | search p50 / p95 | recall@100 against exact |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        vectors = generator.normal(size=(size, DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        picks = generator.choice(size, args.queries, replace=False)
        queries = vectors[picks] + 0.05 * generator.normal(size=(args.queries, DIMENSION)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        answers = {}
        for name, graph in (("exact (numpy)", ExactGraph), ("hnswlib", hnswlib.Index)):
            index, seconds = build(vectors, graph)
            times, found = [], []
            for query in queries:
                started = time.perf_counter()
                found.append([label for label, _ in index.search(query, DEPTH)])
                times.append(time.perf_counter() - started)
            answers[name] = found
            ordered = sorted(times)
            recall = np.mean(
                [len(set(a) & set(e)) / DEPTH for a, e in zip(found, answers["exact (numpy)"], strict=True)]
            )
            print(
                f"| {size:,} | {name} | {seconds:.1f} s | {statistics.median(times) * 1000:.1f} / "
                f"{ordered[int(0.95 * (len(ordered) - 1))] * 1000:.1f} ms | {recall:.3f} |",
                flush=True,
            )
    print("reproduce: python " + shlex.join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
