"""What the lexical side of the first stage costs per query, at a given index size.

Chunks real source files (the corpus sources that `python -m codesieve.trainer.corpus build`
downloads) until the index holds about CHUNKS chunks, stores them with random unit vectors (the
lexical side never reads them; no model is needed), and times, over engine_speed's queries, the
store's `lexical_search` (FTS5 BM25, top `SearchSettings.lexical_depth`) and the whole first
stage with and without it (`FirstStage.candidates`, query embedding excluded).

    python bench/lexical_speed.py --chunks 100000
    python bench/lexical_speed.py --chunks 30000 --max-postings 5000 2000 1000   # the store's cap, varied
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from engine_speed import QUERIES

from codesieve.server.chunk.chunker import chunk_source
from codesieve.server.index import store as store_module
from codesieve.server.index.lexical import query_words
from codesieve.server.index.store import ChunkStore, FileRecord, FileUpdate
from codesieve.server.index.vector_index import VectorIndex
from codesieve.server.model.folder import SearchSettings
from codesieve.server.scan.safe_read import SourceError, read_source
from codesieve.server.scan.walk import scan_workspace
from codesieve.server.search.first_stage import FirstStage

SOURCES = Path.home() / ".cache" / "codesieve-corpus" / "sources"
DIMENSION = 384
DEPTH = 100


def fill(store: ChunkStore, target: int, rng: np.random.Generator) -> int:
    """Index corpus files (in path order) until about `target` chunks; the count indexed."""
    total = 0
    for source in scan_workspace(SOURCES).files:
        try:
            chunks = chunk_source(source.path, read_source(source.abspath, 1_000_000), source.language)
        except (SourceError, OSError):
            continue
        if not chunks:
            continue
        vectors = rng.standard_normal((len(chunks), DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        record = FileRecord(source.path, source.language, source.size, 0, "")
        store.apply([FileUpdate(record, chunks, vectors)], [])
        total += len(chunks)
        if total >= target:
            break
    return total


def milliseconds(run: list[float]) -> str:
    return f"{statistics.median(run):.1f} / {sorted(run)[int(0.95 * (len(run) - 1))]:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000, help="index size (default 100000)")
    parser.add_argument(
        "--max-postings",
        type=int,
        nargs="+",
        default=[store_module.MAX_SCORED_POSTINGS],
        help="the store's cap on scored postings, one run each (default: the store's)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    store = ChunkStore(None)
    store.reset("lexical-speed", str(SOURCES))
    count = fill(store, args.chunks, rng)
    vectors, _, _ = VectorIndex.open(None, store, DIMENSION)
    stage = FirstStage(vectors, store, SearchSettings(lexical_weight=0.1))
    print(f"{count} chunks, {len(QUERIES) * 3} queries; p50 / p95")
    for cap in args.max_postings:
        store_module.MAX_SCORED_POSTINGS = cap
        lexical, dense_only, hybrid = [], [], []
        for query in QUERIES * 3:
            vector = rng.standard_normal(DIMENSION).astype(np.float32)
            vector /= np.linalg.norm(vector)
            started = time.perf_counter()
            store.lexical_search(query_words(query), stage.settings.lexical_depth)
            lexical.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            stage.candidates(query, vector, depth=DEPTH, lexical=False)
            dense_only.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            stage.candidates(query, vector, depth=DEPTH)
            hybrid.append((time.perf_counter() - started) * 1000)
        print(f"at most {cap} postings scored:")
        print(f"  lexical_search (FTS5, top {stage.settings.lexical_depth}): {milliseconds(lexical)}")
        print(f"  first stage, dense only: {milliseconds(dense_only)}")
        print(f"  first stage, dense + lexical: {milliseconds(hybrid)}")
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
