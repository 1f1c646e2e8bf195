"""Word splitting, BM25 scores on a hand-computed case, and the benchmark loaders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from codesieve.server.index.lexical import split_identifiers
from codesieve.trainer.benchmarks import find_benchmarks_root, load_benchmark, load_jsonl_benchmark
from codesieve.trainer.bm25 import BM25


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("parseHTTPResponse_v2", ["parse", "http", "response", "v", "2"]),
        ("HTTPServer", ["http", "server"]),
        ("getID", ["get", "id"]),
        ("snake_case_name", ["snake", "case", "name"]),
        ("__init__(self)", ["init", "self"]),
        ("md5sum utf8", ["md", "5", "sum", "utf", "8"]),
        ("x.y = f(z) + 1;", ["x", "y", "f", "z", "1"]),
        ("How to Sort a dict?", ["how", "to", "sort", "a", "dict"]),
        ("café ÉcoleNormale", ["café", "école", "normale"]),
        ("  --  ", []),
    ],
)
def test_split_identifiers(text: str, words: list[str]) -> None:
    assert split_identifiers(text) == words


def test_bm25_scores_match_the_formula_by_hand() -> None:
    # Words: d0 = [apple, banana] (|d0| = 2), d1 = [apple, apple, cherry] (3), d2 = [date] (1).
    # N = 3, avgdl = 2, k1 = 1.2, b = 0.75.
    # idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)): apple (df 2) ln(1.6); cherry, date (df 1) ln(8/3).
    # score = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl)), where the length factor
    # 1 - b + b * |d| / avgdl is 1 for d0, 1.375 for d1 and 0.625 for d2.
    index = BM25(["apple banana", "appleApple cherry", "date"])
    apple = math.log(1.6)
    expected_apple = [apple * 1 * 2.2 / (1 + 1.2 * 1.0), apple * 2 * 2.2 / (2 + 1.2 * 1.375), 0.0]
    assert index.scores("apple") == pytest.approx(expected_apple)
    rare = math.log(8 / 3)
    expected_rare = [0.0, rare * 2.2 / (1 + 1.2 * 1.375), rare * 2.2 / (1 + 1.2 * 0.625)]
    assert index.scores("Cherry_date") == pytest.approx(expected_rare)
    # A repeated query word counts once; unknown words add nothing.
    assert index.scores("apple apple unknown") == pytest.approx(expected_apple)
    matrix = index.score_matrix(["apple", "cherry date", "nothing"])
    assert matrix.shape == (3, 3)
    assert np.array_equal(matrix[1], index.scores("cherry date"))
    assert not matrix[2].any()


def test_bm25_on_an_empty_corpus() -> None:
    assert BM25([]).scores("apple").shape == (0,)
    assert BM25(["", "..."]).scores("apple").tolist() == [0.0, 0.0]


def _benchmarks_root() -> Path:
    try:
        root: Path = find_benchmarks_root()
    except FileNotFoundError as error:
        pytest.skip(f"shared benchmarks folder not found ({error})")
    return root


@pytest.mark.parametrize(
    ("name", "split", "num_queries", "pool_size"),
    [("cosqa", "test", 500, 6267), ("cosqa", "dev", 500, 6267), ("csn_ruby", "test", 1261, 1261)],
)
def test_load_benchmark_follows_the_protocol(name: str, split: str, num_queries: int, pool_size: int) -> None:
    benchmark = load_benchmark(name, split, root=_benchmarks_root())
    assert (len(benchmark.queries), len(benchmark.codebase)) == (num_queries, pool_size)
    pool = {row.id for row in benchmark.codebase}
    assert all(query.code_id in pool for query in benchmark.queries)
    positions = benchmark.gold_positions()
    assert [benchmark.codebase[p].id for p in positions] == [q.code_id for q in benchmark.queries]


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_generic_loader_filters_the_pool_by_split(tmp_path: Path) -> None:
    codebase = _write_jsonl(
        tmp_path / "codebase.jsonl",
        [
            {"id": 0, "code": "def a(): pass", "language": "python", "split": "test"},
            {"id": 1, "code": "def b(): pass", "language": "python", "split": "valid"},
            {"id": 2, "code": "def c(): pass", "language": "python"},
        ],
    )
    queries = _write_jsonl(tmp_path / "queries.jsonl", [{"id": "q0", "query": "a", "code_id": 0}])
    benchmark = load_jsonl_benchmark(queries, codebase, pool_split="test")
    assert [row.id for row in benchmark.codebase] == [0, 2]
    assert len(load_jsonl_benchmark(queries, codebase).codebase) == 3
    wrong_pool = _write_jsonl(tmp_path / "wrong.jsonl", [{"id": "q1", "query": "b", "code_id": 1}])
    with pytest.raises(ValueError, match=r"wrong\.jsonl:1: code_id 1"):
        load_jsonl_benchmark(wrong_pool, codebase, pool_split="test")


def test_generic_loader_names_the_file_on_errors(tmp_path: Path) -> None:
    codebase = _write_jsonl(tmp_path / "codebase.jsonl", [{"id": 0, "code": "x"}])
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        load_jsonl_benchmark(tmp_path / "missing.jsonl", codebase)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "q0", "query": "x", "code_id": 0}\n{"id": "q1", \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: not valid JSON"):
        load_jsonl_benchmark(broken, codebase)
    no_field = _write_jsonl(tmp_path / "no_field.jsonl", [{"id": "q0", "code_id": 0}])
    with pytest.raises(ValueError, match=r"no_field\.jsonl:1: missing field 'query'"):
        load_jsonl_benchmark(no_field, codebase)
