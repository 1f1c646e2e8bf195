"""CodeSieve's shipped models against what users otherwise get, on the public benchmarks, on this machine.

Rows: BM25 (what lexical search gives), all-MiniLM-L6-v2 zero-shot (what other local code-search
tools embed with), the shipped retriever alone, and what `codesieve search` returns by default: the
pool indexed by the runtime and searched by `Cascade.search` (the hybrid first stage with the card's
lexical weight, then the ranker on the top K=10 when the model folder has one). Columns: MRR, R@1
and R@10 on CoSQA test and CodeSearchNet Ruby test (the protocol of shared/benchmarks/README.md) and
on the find-similar set (bench/find_similar.py: code queries embedded as code, retriever only, as
"Find similar code" runs, so the default row is the retriever's there), and the p50 latency of one
query against the benchmark's pool (BM25 scoring; query encoding plus nearest neighbours; the whole
`Cascade.search`), single-threaded.

The zero-shot model is the base weights exported the same way as the shipped ones (int8, fused);
building it needs the `train` extra once (`trainer export --base`), then it is cached.

    python bench/quality.py                       # the shipped default model
    python bench/quality.py --model DIR           # another model folder
    python bench/quality.py --model OLD --model NEW   # two models, one run

The find-similar set is built on first use (it downloads its pinned archives once).
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from codesieve.server.model.encoders import OnnxRetriever
from codesieve.server.model.folder import ModelFolder, default_model_dir
from codesieve.trainer.benchmarks import Benchmark, find_similar_folder, load_benchmark
from codesieve.trainer.bm25 import BM25
from codesieve.trainer.evaluate import code_embeddings, default_cache_dir, evaluate
from codesieve.trainer.find_similar import ensure_set
from codesieve.trainer.runtime_pipeline import runtime_cascade

CACHE = Path.home() / ".cache" / "codesieve-bench"
SETS = (("cosqa", "test"), ("csn_ruby", "test"), ("find_similar", "test"))
FIND_SIMILAR_MANIFEST = Path(__file__).parent / "find_similar" / "manifest.json"
TIMED_QUERIES = 100


def base_model() -> Path:
    """all-MiniLM-L6-v2 exported like a shipped model (built once, needs the train extra)."""
    folder = CACHE / "base-model"
    if not (folder / "model-card.json").exists():
        subprocess.run(
            [sys.executable, "-m", "codesieve.trainer.cli", "export", "--base", "--out", str(folder)],
            check=True,
        )
    return folder


def timed_queries(benchmark: Benchmark) -> list[str]:
    return [query.text for query in benchmark.queries[:TIMED_QUERIES]]


def p50_ms(run: Callable[[str], object], queries: list[str]) -> float:
    run(queries[0])  # warm-up
    timings = []
    for query in queries:
        started = time.perf_counter()
        run(query)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def latencies(benchmark: Benchmark, model_dir: Path, runtime: bool) -> tuple[float, float | None]:
    """p50 ms of retrieval (encode the query, top 100 of the pool), and of the runtime's search."""
    model = ModelFolder.load(model_dir)
    encoder = OnnxRetriever(model, threads=1)
    codes = code_embeddings(encoder, model, benchmark, default_cache_dir())
    queries = timed_queries(benchmark)

    encode = encoder.encode_code if benchmark.query_kind == "code" else encoder.encode_queries

    def retrieve(query: str) -> np.ndarray:
        scores = codes @ encode([query])[0]
        top = np.argpartition(-scores, 100)[:100]
        return top[np.argsort(-scores[top])]

    searched = None
    if runtime:
        cascade = runtime_cascade(benchmark, model, codes, threads=1)
        searched = p50_ms(lambda query: cascade.search(query, limit=10), queries)
    return p50_ms(retrieve, queries), searched


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        help="model folder, repeatable: rows for each, in one run (default: the shipped one)",
    )
    parser.add_argument(
        "--base", type=Path, help="zero-shot model folder (default: built once from the base)"
    )
    args = parser.parse_args()
    base = args.base or base_model()
    models = args.model or [default_model_dir()]
    rows: dict[str, dict[str, str]] = {}
    cache = default_cache_dir()
    ensure_set(FIND_SIMILAR_MANIFEST, find_similar_folder())
    for name, split in SETS:
        benchmark = load_benchmark(name, split)
        label = f"{name} {split}"
        bm25_ms = p50_ms(BM25([row.code for row in benchmark.codebase]).scores, timed_queries(benchmark))
        found = evaluate(benchmark, None, bm25=True).rows["bm25"]
        zero = evaluate(benchmark, base, rerank_depths=(), threads=1, cache_dir=cache).rows["retriever"]
        text_queries = benchmark.query_kind == "text"
        zero_ms, _ = latencies(benchmark, base, runtime=False)
        systems = {"BM25": (found, bm25_ms), "all-MiniLM-L6-v2 zero-shot": (zero, zero_ms)}
        for model in models:
            name = ModelFolder.load(model).card.name
            ours = evaluate(
                benchmark, model, rerank_depths=(), threads=1, cache_dir=cache, runtime=text_queries
            ).rows
            ours_ms, searched_ms = latencies(benchmark, model, runtime=text_queries)
            systems[f"CodeSieve retriever ({name})"] = (ours["retriever"], ours_ms)
            # find similar runs the retriever alone
            systems[f"`codesieve search` with {name}"] = (
                ours.get("runtime", ours["retriever"]),
                searched_ms or ours_ms,
            )
        for system, (metrics, ms) in systems.items():
            rows.setdefault(system, {})[label] = (
                f"{metrics['mrr']:.3f} | {metrics['recall@1']:.3f} / {metrics['recall@10']:.3f} | {ms:.2f} ms"
            )
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, ONNX Runtime 1 thread")
    header = " | ".join(f"{name} {split} MRR | R@1 / R@10 | p50" for name, split in SETS)
    print(f"| system | {header} |")
    print("|---" * (1 + 3 * len(SETS)) + "|")
    for system, cells in rows.items():
        print(f"| {system} | " + " | ".join(cells[f"{name} {split}"] for name, split in SETS) + " |")
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
