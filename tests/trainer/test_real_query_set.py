"""The real-query benchmark's set (bench/real_queries/): its shape, its projects outside the training
corpus and the holdout list, and how the runner matches hits to answers. No network, no index."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from collections import Counter
from types import ModuleType

import pytest
from helpers import REPO

from codesieve.trainer.benchmarks import find_benchmarks_root
from codesieve.trainer.corpus.manifest import is_permissive


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(REPO / "bench"))  # the runner imports bench/quality.py beside it
    try:
        spec = importlib.util.spec_from_file_location("real_queries", REPO / "bench" / "real_queries.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["real_queries"] = module  # its dataclasses look their module up while being made
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "bench"))
    return module


def registry_key(name: str) -> str:
    """A package name as the holdout list hashes it: lower case, runs of -, _ and . as one -."""
    return re.sub(r"[-_.]+", "-", name.lower())


def test_the_set_is_large_and_varied_enough(bench: ModuleType) -> None:
    queries = bench.load_queries()
    packages, _ = bench.load_projects()
    assert len(queries) >= 100
    assert len({query.id for query in queries}) == len(queries)
    assert len(packages) >= 4
    assert len({package.language for package in packages}) >= 2
    per_kind = Counter(query.kind for query in queries)
    assert set(per_kind) == set(bench.KINDS)
    assert min(per_kind.values()) >= len(queries) // 8  # roughly balanced: no kind under half its share
    assert set(Counter(query.repo for query in queries)) == {package.name for package in packages}


def test_every_query_has_well_formed_answers(bench: ModuleType) -> None:
    for query in bench.load_queries():
        assert query.query.strip() == query.query and query.query, query.id
        assert query.answers, f"{query.id} has no answer"
        for answer in query.answers:
            assert answer.name and not answer.path.startswith("/") and ".." not in answer.path.split("/"), (
                query.id
            )
        assert len(set(query.answers)) == len(query.answers), f"{query.id} lists an answer twice"


def test_manifest_pins_each_project_with_a_permissive_licence(bench: ModuleType) -> None:
    packages, excludes = bench.load_projects()  # the corpus manifest's checks: fields, registry, sha256
    for package in packages:
        assert re.fullmatch(r"[0-9a-f]{64}", package.sha256), package.name
        assert is_permissive(package.licence), package.name
    assert set(excludes) <= {package.name for package in packages}


def test_no_project_is_in_the_training_corpus(bench: ModuleType) -> None:
    corpus = json.loads((REPO / "data" / "corpus" / "manifest.json").read_text(encoding="utf-8"))
    in_corpus = {registry_key(entry["name"]) for entry in corpus["packages"]}
    packages, _ = bench.load_projects()
    assert not {registry_key(package.name) for package in packages} & in_corpus


def test_no_project_is_on_the_holdout_list(bench: ModuleType) -> None:
    try:
        holdout = find_benchmarks_root() / "holdout-sha256.txt"
    except FileNotFoundError:
        pytest.skip("no shared/benchmarks folder here")
    if not holdout.exists():
        pytest.skip(f"no {holdout}")
    held = {
        line.strip() for line in holdout.read_text(encoding="utf-8").splitlines() if line.strip()[:1] != "#"
    }
    packages, _ = bench.load_projects()
    for package in packages:
        for name in {package.name, package.name.rsplit("/", 1)[-1]}:  # a scoped npm name, and its last part
            assert hashlib.sha256(registry_key(name).encode()).hexdigest() not in held, package.name


def test_a_hit_matches_by_path_and_name_only(bench: ModuleType) -> None:
    answers = [bench.Answer("src/http.py", "Cookie.parse")]
    enclosing = {"path": "src/http.py", "name": "Cookie"}  # the class holding the answer does not count
    other_file = {"path": "src/other.py", "name": "Cookie.parse"}
    exact = {"path": "src/http.py", "name": "Cookie.parse"}
    assert bench.first_match([enclosing, other_file, exact], answers) == 3
    assert bench.first_match([enclosing, other_file], answers) is None


def test_metrics_of_hand_made_results(bench: ModuleType) -> None:
    hit, test_hit, twin_hit = (
        {"test": False, "twins": 0},
        {"test": True, "twins": 0},
        {"test": False, "twins": 2},
    )
    results = [
        {"rank": 1, "hits": [twin_hit, test_hit]},
        {"rank": 4, "hits": [test_hit, hit, hit, hit]},
        {"rank": None, "hits": [hit, hit]},
    ]
    found = bench.metrics(results)
    assert found["mrr@10"] == pytest.approx((1 + 1 / 4) / 3)
    assert found["recall@1"] == pytest.approx(1 / 3)
    assert found["recall@5"] == pytest.approx(2 / 3)
    assert found["recall@10"] == pytest.approx(2 / 3)
    assert found["test_share@10"] == pytest.approx(2 / 8)
    assert (found["twins_in_top5"], found["queries_with_twins_in_top5"]) == (2, 1)
