"""The first stage: test code after implementation, the lexical index and its fusion with the cosine,
definitions first for a query that is a name, and the upgrade of an index made before the lexical table."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO
from indexcheck import assert_consistent, open_workspace

from codesieve.server.index.lexical import chunk_words, definition_tokens, query_words, symbol_of
from codesieve.server.index.store import StoredChunk
from codesieve.server.model.folder import ModelError, ModelFolder, SearchSettings
from codesieve.server.search.first_stage import Candidate, dense_first_stage, rank, z_scores
from codesieve.server.search.tests_by_path import is_test_path

GREET = 'def greet_visitor(name):\n    """Say hello."""\n    return "hello " + name\n'
OTHER = "def add_numbers(a, b):\n    return a + b\n"


def candidate(path: str, cosine: float, lexical: float = 0.0, name: str = "f") -> Candidate:
    chunk = StoredChunk(0, f"{path}:{name}", path, "python", "function", name, 1, 2, "", "")
    return Candidate(chunk, cosine, lexical)


def spread_out(*head: Candidate) -> list[Candidate]:
    """`head` followed by twenty weaker candidates, so z-scores have a spread to work with."""
    return [*head, *(candidate(f"pkg/m{index}.py", 0.30 - 0.01 * index) for index in range(20))]


@pytest.mark.parametrize(
    ("path", "is_test"),
    [
        ("tests/test_x.py", True),
        ("src/spec/user_spec.rb", True),
        ("pkg/server_test.go", True),
        ("src/app.test.ts", True),
        ("src/FooTest.java", True),
        ("tests/utils.py", True),
        ("src/contest.py", False),
        ("src/attestation.py", False),
        ("lib/server.go", False),
        ("", False),
    ],
)
def test_is_test_path(path: str, is_test: bool) -> None:
    assert is_test_path(path) is is_test


def test_implementation_ranks_ahead_of_test_code_of_similar_relevance() -> None:
    found = spread_out(candidate("tests/test_net.py", 0.62), candidate("src/net.py", 0.60))
    assert [hit.chunk.path for hit in rank(found, SearchSettings(lexical_weight=0.0))[:2]] == [
        "src/net.py",
        "tests/test_net.py",
    ]


def test_include_tests_ranks_test_code_like_any_other() -> None:
    found = spread_out(candidate("tests/test_net.py", 0.62), candidate("src/net.py", 0.60))
    assert [
        hit.chunk.path for hit in rank(found, SearchSettings(lexical_weight=0.0), include_tests=True)[:2]
    ] == [
        "tests/test_net.py",
        "src/net.py",
    ]


def test_clearly_more_relevant_test_code_keeps_its_place() -> None:
    found = spread_out(candidate("tests/test_net.py", 0.95), candidate("src/net.py", 0.40))
    assert rank(found, SearchSettings(lexical_weight=0.0))[0].chunk.path == "tests/test_net.py"


def test_lexical_weight_zero_is_the_dense_order() -> None:
    found = spread_out(candidate("a.py", 0.60), candidate("b.py", 0.59, lexical=40.0))
    assert [hit.chunk.path for hit in rank(found, SearchSettings(lexical_weight=0.0))[:2]] == ["a.py", "b.py"]


def test_lexical_weight_lifts_a_strong_word_match_over_a_close_cosine() -> None:
    found = spread_out(candidate("a.py", 0.60), candidate("b.py", 0.59, lexical=40.0))
    assert [hit.chunk.path for hit in rank(found, SearchSettings(lexical_weight=0.1))[:2]] == ["b.py", "a.py"]


def test_definitions_of_a_name_come_first() -> None:
    named = Candidate(candidate("src/utils.py", 0.30).chunk, 0.30, 5.0, defines=True)
    found = [candidate("src/other.py", 0.70, 9.0), named]
    assert rank(found, SearchSettings(lexical_weight=0.1))[0].chunk is named.chunk


def test_z_scores_of_equal_values_are_zero() -> None:
    assert z_scores(np.array([0.5, 0.5, 0.5])).tolist() == [0.0, 0.0, 0.0]


def test_z_scores_of_no_candidates_are_empty_and_warn_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's std() of nothing warns, and the server's stderr showed it
        assert z_scores(np.array([], dtype=np.float64)).tolist() == []


def test_identifiers_are_split_and_kept_whole() -> None:
    words = chunk_words("HTTPAdapter.send", "def send(self):\n    should_bypass_proxies(url)").split()
    assert {"http", "adapter", "send", "should", "bypass", "proxies"} <= set(words)
    assert {"httpadapter", "should_bypass_proxies", "httpadapter.send"} <= set(words)
    assert "url" in words and "=send" in words and "=httpadapter.send" in words
    assert query_words("HTTPAdapter.send") == ["http", "adapter", "send", "httpadapter", "httpadapter.send"]
    assert query_words("retry the Request") == ["retry", "the", "request"]


def test_only_a_query_that_is_a_name_asks_for_definitions() -> None:
    assert symbol_of(" HTTPAdapter.send ") == "=httpadapter.send"
    assert symbol_of("should_bypass_proxies") == "=should_bypass_proxies"
    assert symbol_of("retry a request") is None
    assert definition_tokens("Server.handle") == ["=handle", "=server.handle"]
    assert definition_tokens("sample.c:1-60") == []


@pytest.fixture()
def tested_repo(tmp_path: Path) -> Path:
    """The same function in implementation and in a test file (the test file indexed first)."""
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "zlib").mkdir()
    (root / "tests" / "test_greeting.py").write_text(f"{GREET}\n\n{OTHER}", encoding="utf-8")
    (root / "zlib" / "greeting.py").write_text(GREET, encoding="utf-8")
    return root


def test_search_puts_implementation_before_an_identical_test_copy(
    tested_repo: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(tested_repo, tiny_model)
    workspace.sync()
    hits = workspace.search(GREET, limit=2, rerank=False).hits
    assert [hit.chunk.path for hit in hits] == ["zlib/greeting.py", "tests/test_greeting.py"]
    with_tests = workspace.search(GREET, limit=2, rerank=False, include_tests=True).hits
    assert {hit.chunk.path for hit in with_tests} == {"zlib/greeting.py", "tests/test_greeting.py"}


def test_lexical_search_scores_the_top_matches(tested_repo: Path, tiny_model: Path, index_dir: Path) -> None:
    more = "".join(f"def helper_{index}(x):\n    return x * {index}\n\n\n" for index in range(3))
    (tested_repo / "zlib" / "helpers.py").write_text(more, encoding="utf-8")
    workspace = open_workspace(tested_repo, tiny_model)
    workspace.sync()
    store = workspace.store
    everything = store.lexical_search(["greet_visitor", "hello"], None)
    assert len(everything) == 2 and all(score > 0 for score in everything.values())
    best = store.lexical_search(["greet_visitor", "hello"], 1)
    assert len(best) == 1 and best.items() <= everything.items()
    assert store.lexical_search(["return"], None) == {}  # in every chunk: no weight, not scored


def test_a_query_that_is_a_name_finds_its_definition_first(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    names = [chunk.name for chunk in workspace.store.chunks_of("sample.py")]
    for name in names:
        if "." in name or name.isidentifier():
            hits = workspace.search(name, limit=5, rerank=False).hits
            assert hits[0].chunk.name == name, (name, [hit.chunk.name for hit in hits])


def test_lexical_table_follows_edits_and_deletes(
    tested_repo: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(tested_repo, tiny_model)
    workspace.sync()
    store = workspace.store
    assert len(store.labels_with_word("=greet_visitor")) == 2
    assert len(store.lexical_search(["add_numbers"], 10)) == 1
    (tested_repo / "tests" / "test_greeting.py").write_text(OTHER.replace("add", "sum"), encoding="utf-8")
    (tested_repo / "zlib" / "greeting.py").unlink()
    workspace.sync()
    assert store.labels_with_word("=greet_visitor") == []
    assert store.lexical_search(["add_numbers"], 10) == {}
    assert set(store.labels_with_word("=sum_numbers")) == store.labels()
    assert_consistent(workspace)


def test_an_index_from_before_the_lexical_table_is_upgraded_without_reembedding(
    tested_repo: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(tested_repo, tiny_model)
    workspace.sync()
    labels = workspace.store.labels()
    with workspace.store.transaction() as db:  # what a schema-1 index looks like
        db.execute("INSERT INTO lexical(lexical) VALUES('delete-all')")
        db.execute("DELETE FROM meta WHERE key = 'lexical'")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    workspace.close()
    reopened = open_workspace(tested_repo, tiny_model)
    assert reopened.warnings == [] and reopened.store.labels() == labels
    assert reopened.store.lexical_ready and len(reopened.store.labels_with_word("=greet_visitor")) == 2
    assert reopened.sync().chunks_embedded == 0
    assert_consistent(reopened)


def test_the_model_card_gives_the_lexical_weight(tiny_model: Path, tmp_path: Path) -> None:
    assert ModelFolder.load(tiny_model).card.lexical_weight == 0.0  # absent: dense only
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    card = json.loads((folder / "model-card.json").read_text(encoding="utf-8"))
    card["first_stage"] = {"lexical_weight": 0.1}
    (folder / "model-card.json").write_text(json.dumps(card), encoding="utf-8")
    assert ModelFolder.load(folder).card.lexical_weight == 0.1
    card["first_stage"] = {"lexical_weight": 2}
    (folder / "model-card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match="lexical_weight"):
        ModelFolder.load(folder)


def test_each_ranked_candidate_carries_the_score_that_orders_it() -> None:
    found = [candidate("a.py", 0.2), candidate("b.py", 0.9), candidate("tests/test_c.py", 0.95)]
    ranked = rank(found, SearchSettings(lexical_weight=0.0))
    assert [item.chunk.path for item in ranked] == ["b.py", "tests/test_c.py", "a.py"]
    scores = [item.score for item in ranked]
    assert scores == sorted(scores, reverse=True)


def test_a_dense_first_stage_scores_cosines_by_the_spread_of_the_top_n() -> None:
    cosines = np.array([[0.9, 0.7, 0.5, 0.1]])
    assert dense_first_stage(cosines, over=3)[0] == pytest.approx([1.2247, 0.0, -1.2247, -3.6742], abs=1e-3)
    assert dense_first_stage(np.array([[0.5, 0.5]]))[0].tolist() == [0.0, 0.0]  # no spread: no scale


def test_query_words_take_linear_time_on_one_long_run_of_letters() -> None:
    started = time.perf_counter()
    words = query_words("x" * 100_000)  # a regex retried from every position took minutes
    assert words == ["x" * 100_000] and time.perf_counter() - started < 2
    assert query_words("HTTPAdapter.send a.b.c") == [
        "http",
        "adapter",
        "send",
        "a",
        "b",
        "c",
        "httpadapter",
        "httpadapter.send",
        "a.b.c",
    ]
    assert len(query_words(" ".join(f"w{i}" for i in range(1000)))) == 256


def test_no_product_module_is_named_like_test_code() -> None:
    root = REPO
    product = [path for folder in ("server", "trainer", "export") for path in (root / folder).rglob("*.py")]
    assert product and not [path for path in product if is_test_path(path.relative_to(root).as_posix())]
