"""Find similar code, measured: the same function in two released versions of packages outside the corpus.

The set (built by `codesieve.trainer.find_similar` from the pinned archives of
bench/find_similar/manifest.json into ~/.cache/codesieve-bench/find-similar-v<version>, or
$CODESIEVE_FIND_SIMILAR): each query is the old version of a function whose text changed, its own
name hidden; the pool is every function, method and class of the new versions of all the packages
(40, several per domain); the gold is the new version of the same function. Queries and pool are
embedded as code through the model folder's runtime encoders, the pool as the index embeds it, the
query as `Workspace.similar_to` embeds the code at the cursor (`trainer.evaluate.evaluate`, which
also leaves a query's own text out of its ranking); ranked by exact cosine over the whole pool.
Columns: MRR, R@1, R@10, and the p50 latency of one query (encode it as code, score the pool, take
the top 100), single-threaded.

    python bench/find_similar.py --build                  # download and build the set (once)
    python bench/find_similar.py --model DIR [--model DIR2 ...] [--bm25]
    python bench/find_similar.py --names-visible --model DIR ... [--bm25]   # own names left in
    python bench/find_similar.py --model DIR --rerank-depth 5 --rerank-depth 10  # DIR's ranker on code
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
from pathlib import Path

from quality import latencies, p50_ms, timed_queries  # bench/quality.py, beside this script

from codesieve.server.model.folder import ModelFolder, default_model_dir
from codesieve.trainer.benchmarks import find_similar_folder, load_find_similar
from codesieve.trainer.bm25 import BM25
from codesieve.trainer.evaluate import default_cache_dir, evaluate
from codesieve.trainer.find_similar import FindSimilarError, build_set, ensure_set

MANIFEST = Path(__file__).parent / "find_similar" / "manifest.json"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, action="append", help="model folder, repeatable (default: the shipped one)"
    )
    parser.add_argument("--bm25", action="store_true", help="add the BM25 row")
    parser.add_argument("--build", action="store_true", help="(re)build the set from the manifest and stop")
    parser.add_argument(
        "--names-visible",
        action="store_true",
        help="the same set with each query's own name left in (built beside it): what hiding it does",
    )
    parser.add_argument(
        "--rerank-depth",
        type=int,
        action="append",
        metavar="K",
        help="also the cascade's row at depth K for a model with a ranker, repeatable (search never reranks "
        "find similar: this measures whether it should)",
    )
    args = parser.parse_args()
    folder = find_similar_folder()
    if args.names_visible:
        folder = folder.with_name(folder.name + "-names-visible")
    hide_names = not args.names_visible
    try:
        if args.build:
            queries, pool = build_set(MANIFEST, folder, hide_names)
            print(f"find-similar set: {queries} queries, pool of {pool} -> {folder}")
            return 0
        ensure_set(MANIFEST, folder, hide_names)
    except FindSimilarError as error:
        print(f"find_similar: {error}", file=sys.stderr)
        return 2
    benchmark = load_find_similar(folder)
    rows: list[tuple[str, dict[str, float], float | None]] = []
    if args.bm25:
        found = evaluate(benchmark, None, bm25=True).rows["bm25"]
        rows.append(
            (
                "BM25",
                found,
                p50_ms(BM25([row.code for row in benchmark.codebase]).scores, timed_queries(benchmark)),
            )
        )
    depths = args.rerank_depth or []
    for model_dir in args.model or [default_model_dir()]:
        metrics = evaluate(
            benchmark, model_dir, rerank_depths=depths, threads=1, cache_dir=default_cache_dir()
        )
        retrieval_ms, _ = latencies(benchmark, model_dir, runtime=False)
        name = f"{ModelFolder.load(model_dir).card.name} ({model_dir})"
        rows.append((name, metrics.rows["retriever"], retrieval_ms))
        # the ranker reading the code at the cursor as its query (cut to the card's query tokens)
        rows += [(f"{name}, cascade K={depth}", metrics.rows[f"cascade@{depth}"], None) for depth in depths]
    print(
        f"find similar, set {folder.name}: {len(benchmark.queries)} queries, pool of {len(benchmark.codebase)}; "
        f"machine: {platform.machine()}, Python {platform.python_version()}, ONNX Runtime 1 thread"
    )
    print("| system | MRR | R@1 | R@10 | p50 |")
    print("|---|---|---|---|---|")
    for system, metrics, ms in rows:
        print(
            f"| {system} | {metrics['mrr']:.3f} | {metrics['recall@1']:.3f} | "
            f"{metrics['recall@10']:.3f} | {'not timed' if ms is None else f'{ms:.2f} ms'} |"
        )
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
