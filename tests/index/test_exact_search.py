"""Search without hnswlib (it needs a compiler to install): exact search with numpy, the same answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codesieve.server.index.exact_graph import ExactGraph

BLOCKED = "import sys; sys.modules['hnswlib'] = None; from codesieve.server.cli import main; sys.exit(main(sys.argv[1:]))"


def test_the_exact_graph_answers_as_a_full_sort_does_through_deletes_replaces_and_a_snapshot(
    tmp_path: Path,
) -> None:
    generator = np.random.default_rng(0)
    vectors = generator.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    graph = ExactGraph(space="ip", dim=16)
    graph.init_index(max_elements=10)
    graph.add_items(vectors[:200], list(range(200)))
    for label in range(0, 200, 3):
        graph.mark_deleted(label)
    with pytest.raises(RuntimeError):
        graph.mark_deleted(0)  # as hnswlib: deleting twice is an error
    graph.add_items(vectors[200:], list(range(200, 300)))
    graph.add_items(vectors[:1], [3])  # a deleted label comes back with another vector
    live = [label for label in range(300) if label % 3 or label >= 200 or label == 3]
    stored = {label: vectors[label] for label in live} | {3: vectors[0]}
    query = vectors[7]
    expected = sorted(live, key=lambda label: (-float(stored[label] @ query), label))[:10]
    labels, distances = graph.knn_query(query.reshape(1, -1), k=10)
    assert labels[0].tolist() == expected and distances[0][0] == pytest.approx(0.0, abs=1e-6)
    odd = graph.knn_query(query.reshape(1, -1), k=5, filter=lambda label: label % 2 == 1)[0][0]
    assert (
        odd.tolist()
        == [
            label
            for label in sorted(live, key=lambda label: (-float(stored[label] @ query), label))
            if label % 2
        ][:5]
    )
    graph.save_index(str(tmp_path / "vectors-1-0.hnsw"))
    again = ExactGraph(space="ip", dim=16)
    again.load_index(str(tmp_path / "vectors-1-0.hnsw"))
    assert again.knn_query(query.reshape(1, -1), k=10)[0].tolist() == labels.tolist()


def test_an_hnswlib_snapshot_is_refused_so_the_graph_is_rebuilt(tmp_path: Path) -> None:
    hnswlib = pytest.importorskip("hnswlib", reason="hnswlib is an extra: `pip install -e '.[hnsw]'`")
    vectors = np.eye(5, 16, dtype=np.float32)
    real = hnswlib.Index(space="ip", dim=16)
    real.init_index(max_elements=10)
    real.add_items(vectors[:5], list(range(5)))
    real.save_index(str(tmp_path / "hnsw.bin"))
    with pytest.raises(RuntimeError):  # an hnswlib snapshot: not loaded, so the graph is rebuilt
        ExactGraph(space="ip", dim=16).load_index(str(tmp_path / "hnsw.bin"))


def test_with_hnswlib_blocked_the_cli_indexes_searches_and_says_so(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("hnswlib", reason="compares with hnswlib, an extra: `pip install -e '.[hnsw]'`")

    def run(*args: str, blocked: bool) -> subprocess.CompletedProcess[str]:
        code = (
            BLOCKED
            if blocked
            else "import sys; from codesieve.server.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        return subprocess.run(
            [sys.executable, "-c", code, *args, "--model", str(tiny_model), "--index-dir", str(where)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    answers = {}
    for blocked in (True, False):
        where = tmp_path / f"indexes-{blocked}"
        assert run("index", str(sample_workspace), "-q", blocked=blocked).returncode == 0
        found = run("search", "read a json config", str(sample_workspace), "--json", "-q", blocked=blocked)
        assert found.returncode == 0, found.stderr
        answers[blocked] = [(hit["path"], hit["name"]) for hit in json.loads(found.stdout)["hits"]]
        status = run("status", str(sample_workspace), blocked=blocked)
        assert ("search:    exact (numpy)" in status.stdout) == blocked, status.stdout
        reopened = run("search", "sort a list", str(sample_workspace), "--json", "-q", blocked=blocked)
        assert reopened.returncode == 0 and json.loads(reopened.stdout)["hits"], (
            reopened.stderr
        )  # from its snapshot
    assert answers[True] == answers[False]  # exact and hnswlib agree on a small index
