"""`trainer eval`: the protocol (ties against the gold), rankings files, BM25 as bench/, the cascade merge."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO

from codesieve.server.model.encoders import OnnxRetriever
from codesieve.server.model.folder import ModelFolder
from codesieve.trainer.benchmarks import load_jsonl_benchmark
from codesieve.trainer.cli import main
from codesieve.trainer.evaluate import cascade_ranks, code_embeddings, evaluate, top_order
from codesieve.trainer.runtime_pipeline import rerank_grid, runtime_cascade

WORDS = [
    "parse",
    "read",
    "write",
    "json",
    "file",
    "http",
    "request",
    "retry",
    "sort",
    "list",
    "merge",
    "cache",
    "user",
    "token",
    "hash",
    "path",
]


def _synthetic(folder: Path, pool: int = 40, queries: int = 12) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    codes = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) for _ in range(pool)]
    codes[1] = codes[0]  # an exact duplicate: a tie with the gold
    codebase = folder / "codebase.jsonl"
    codebase.write_text(
        "".join(
            json.dumps({"id": 100 + i, "code": code, "language": "python"}) + "\n"
            for i, code in enumerate(codes)
        )
    )
    rows = [{"id": "q0", "query": codes[0], "code": codes[0], "code_id": 100}]
    for q in range(1, queries):
        gold = int(rng.integers(0, pool))
        text = " ".join(rng.choice(codes[gold].split(), size=2))
        rows.append({"id": f"q{q}", "query": text, "code": codes[gold], "code_id": 100 + gold})
    query_file = folder / "queries.jsonl"
    query_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return query_file, codebase


def test_bm25_row_equals_the_bench_baseline(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bm25_baseline", REPO / "bench" / "bm25_baseline.py")
    assert spec is not None and spec.loader is not None
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    query_file, codebase = _synthetic(tmp_path)
    benchmark = load_jsonl_benchmark(query_file, codebase)
    metrics = tmp_path / "metrics.json"
    argv = [
        "eval",
        "--queries",
        str(query_file),
        "--codebase",
        str(codebase),
        "--no-model",
        "--bm25",
        "--json",
        str(metrics),
    ]
    assert main(argv) == 0
    row = json.loads(metrics.read_text())[benchmark.name]["bm25"]
    assert row == baseline.evaluate(benchmark, 1.2, 0.75)
    assert row["recall@1"] < 1.0  # q0's gold is tied with its duplicate: the tie counts against it


def test_rankings_file_and_ties_against_the_gold(tiny_model: Path, tmp_path: Path) -> None:
    query_file, codebase = _synthetic(tmp_path)
    rankings = tmp_path / "rankings.jsonl"
    argv = ["eval", "--queries", str(query_file), "--codebase", str(codebase), "--model", str(tiny_model)]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--rerank-depth", "3", "5", "--rankings", str(rankings)]
    argv += ["--rankings-of", "cascade@5"]
    assert main(argv) == 0
    lines = [json.loads(line) for line in rankings.read_text().splitlines()]
    pool_ids = {100 + i for i in range(40)}
    assert [line["id"] for line in lines] == [f"q{i}" for i in range(12)]
    for line in lines:
        assert len(line["ranking"]) == min(1000, 40) and set(line["ranking"]) == pool_ids

    benchmark = load_jsonl_benchmark(query_file, codebase)
    first = evaluate(benchmark, tiny_model, (3, 5), cache_dir=tmp_path / "cache", keep_rankings=True)
    assert list(first.rows) == ["retriever", "cascade@3", "cascade@5"]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # the second run read the cache
    for retrieved, reranked in zip(first.rankings["retriever"], first.rankings["cascade@5"], strict=True):
        assert set(retrieved[:5]) == set(reranked[:5]) and retrieved[5:] == reranked[5:]
    # q0 is an exact copy of a short gold code that has a duplicate in the pool: cosine 1.0 twice.
    only_q0 = load_jsonl_benchmark(query_file, codebase)
    only_q0 = type(only_q0)(queries=only_q0.queries[:1], codebase=only_q0.codebase, name="q0")
    rows = evaluate(only_q0, tiny_model, (), cache_dir=tmp_path / "cache").rows
    assert rows["retriever"]["mrr"] == pytest.approx(0.5) and rows["retriever"]["recall@1"] == 0.0

    # the same weights with another code token limit on the card embed the pool anew
    shorter = tmp_path / "shorter-model"
    shutil.copytree(tiny_model, shorter)
    card = json.loads((shorter / "model-card.json").read_text())
    (shorter / "model-card.json").write_text(json.dumps({**card, "max_code_tokens": 8}))
    evaluate(benchmark, shorter, (), cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_cascade_ranks_count_ranker_ties_against_the_gold() -> None:
    order = np.array([[4, 2, 7, 1], [0, 1, 2, 3], [3, 2, 1, 0]])
    gold = np.array([2, 3, 1])
    retriever_ranks = np.array([2, 4, 3])
    scores = np.array([[0.5, 0.5, 0.1, 0.0], [0.9, 0.8, 0.7, 0.95], [0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    # query 0: gold at head position 1, tied with position 0 -> rank 2; query 1: below depth 3 -> 4;
    # query 2: gold (position 2) scores best of the head -> 1
    assert cascade_ranks(retriever_ranks, order, scores, gold, depth=3).tolist() == [2, 4, 1]


def test_top_order_breaks_ties_by_position() -> None:
    scores = np.array([[0.1, 0.5, 0.5, 0.9, 0.0]])
    assert top_order(scores, 3).tolist() == [[3, 1, 2]]
    assert top_order(scores, 10).tolist() == [[3, 1, 2, 0, 4]]


def test_runtime_row_searches_the_pool_with_the_cards_first_stage(tiny_model: Path, tmp_path: Path) -> None:
    query_file, codebase = _synthetic(tmp_path)
    benchmark = load_jsonl_benchmark(query_file, codebase)
    cache = tmp_path / "cache"
    retriever_only = tmp_path / "retriever-only"  # the random ranker would shuffle the top 10
    shutil.copytree(tiny_model, retriever_only)
    (retriever_only / "ranker.onnx").unlink()
    dense = evaluate(benchmark, retriever_only, (), cache_dir=cache, keep_rankings=True, runtime=True)
    assert list(dense.rows) == ["retriever", "runtime"]
    assert all(set(ranking) <= {100 + i for i in range(40)} for ranking in dense.rankings["runtime"])
    lexical = tmp_path / "lexical-model"
    shutil.copytree(retriever_only, lexical)
    card = json.loads((lexical / "model-card.json").read_text())
    (lexical / "model-card.json").write_text(json.dumps({**card, "first_stage": {"lexical_weight": 1.0}}))
    fused = evaluate(benchmark, lexical, (), cache_dir=cache, keep_rankings=True, runtime=True)
    # words are all the synthetic queries share with their gold: BM25 alone finds more of them than a random model
    assert fused.rankings["runtime"] != dense.rankings["runtime"]
    assert fused.rows["runtime"]["mrr"] > dense.rows["retriever"]["mrr"]


def test_rerank_grid_is_the_runtime_search_at_each_depth_and_weight(tiny_model: Path, tmp_path: Path) -> None:
    query_file, codebase = _synthetic(tmp_path, pool=40, queries=6)
    benchmark = load_jsonl_benchmark(query_file, codebase)
    model = ModelFolder.load(tiny_model)
    codes = code_embeddings(OnnxRetriever(model, 1), model, benchmark, tmp_path / "cache")
    grid = rerank_grid(benchmark, runtime_cascade(benchmark, model, codes, 1), [3, 10], [0.0, 2.0])
    assert sorted(grid.reranked) == [(3, 0.0), (3, 2.0), (10, 0.0), (10, 2.0)]
    for weight in (0.0, 2.0):
        folder = tmp_path / f"fused-{weight:g}"
        shutil.copytree(tiny_model, folder)
        card = json.loads((folder / "model-card.json").read_text())
        (folder / "model-card.json").write_text(json.dumps({**card, "fusion_weight": weight}))
        cascade = runtime_cascade(benchmark, ModelFolder.load(folder), codes, 1)
        for depth in (3, 10):
            searched = [
                [int(hit.chunk.id) for hit in cascade.search(query.text, limit=100, rerank_depth=depth).hits]
                for query in benchmark.queries
            ]
            assert grid.reranked[(depth, weight)] == searched
        plain = [
            [int(hit.chunk.id) for hit in cascade.search(query.text, limit=100, rerank=False).hits]
            for query in benchmark.queries
        ]
        assert grid.retrieved == plain
    assert grid.reranked[(3, 0.0)] != grid.retrieved  # the random ranker reorders some head
