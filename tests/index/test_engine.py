"""The engine on real files with a tiny real model: indexing, incremental updates, search, recovery."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from indexcheck import assert_consistent, open_workspace

from codesieve.server.errors import WorkspaceError
from codesieve.server.index import store as store_module
from codesieve.server.index.store import StoredChunk
from codesieve.server.model.folder import ModelError, ModelFolder, write_card
from codesieve.server.search.cascade import Hit, merge_ranked_lists, merge_reranked
from codesieve.server.workspace import Filters, Workspace

NEW_FUNCTION = '''

def checksum_of_blocks(blocks: list[bytes]) -> int:
    """Add up the bytes of every block, modulo a prime."""
    total = 0
    for block in blocks:
        total = (total + sum(block)) % 1_000_003
    return total
'''


def indexed_names(workspace: Workspace) -> set[str]:
    return {chunk.name for path in workspace.store.files() for chunk in workspace.store.chunks_of(path)}


def test_index_then_exact_copy_ranks_first(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    report = workspace.sync()
    assert report.files_total == 10 and report.files_changed == 10
    assert report.chunks_total == workspace.store.chunk_count() > 30
    assert report.chunks_embedded + report.chunks_reused == report.chunks_total  # copies count as reused
    for path in ("sample.py", "sample.go", "Sample.java"):
        for chunk in workspace.store.chunks_of(path):
            hits = workspace.similar_to(chunk.text, limit=3).hits
            assert hits[0].chunk.content_hash == chunk.content_hash, chunk.name
            assert hits[0].cosine == pytest.approx(1.0, abs=1e-3)
    assert_consistent(workspace)


def test_results_are_deterministic(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    first = workspace.search("read a json file into a config", limit=10)
    second = workspace.search("read a json file into a config", limit=10)
    assert [(hit.chunk.id, hit.score) for hit in first.hits] == [
        (hit.chunk.id, hit.score) for hit in second.hits
    ]
    assert len(first.hits) == 10


def test_cascade_reranks_top_k_then_keeps_retriever_order(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model, rerank_depth=5)
    workspace.sync()
    plain = workspace.search("retry a function", limit=20, rerank=False)
    reranked = workspace.search("retry a function", limit=20, rerank=True)
    assert [hit.stage for hit in reranked.hits] == ["rerank"] * 5 + ["retrieve"] * 15
    assert reranked.stats.reranked == 5 and reranked.stats.rerank_ms > 0
    assert {hit.chunk.id for hit in reranked.hits[:5]} == {hit.chunk.id for hit in plain.hits[:5]}
    assert [hit.chunk.id for hit in reranked.hits[5:]] == [hit.chunk.id for hit in plain.hits[5:]]
    head_scores = [hit.score for hit in reranked.hits[:5]]
    assert head_scores == sorted(head_scores, reverse=True)
    assert plain.stats.note == "reranking turned off"


def _retrieved(count: int, defines: int = -1) -> list[Hit]:
    """First-stage hits scored 1.0, 0.9, ... (cosines 0.5, 0.4, ...); `defines` names a definition."""
    chunks = [
        StoredChunk(i, str(i), "a.py", "python", "function", f"f{i}", 1, 2, "x", "h") for i in range(count)
    ]
    return [
        Hit(chunk, 1.0 - 0.1 * i, "retrieve", 0.5 - 0.1 * i, i == defines) for i, chunk in enumerate(chunks)
    ]


def test_merge_reranked_is_an_explicit_two_stage_merge() -> None:
    hits = merge_reranked(_retrieved(5), np.array([0.1, 0.9, 0.5], dtype=np.float32))
    assert [hit.chunk.label for hit in hits] == [1, 2, 0, 3, 4]
    assert [hit.stage for hit in hits] == ["rerank"] * 3 + ["retrieve"] * 2
    assert hits[3].score == pytest.approx(0.7) and hits[3].cosine == pytest.approx(0.2)


def test_merge_reranked_fuses_the_ranker_score_with_the_first_stage_score() -> None:
    scores = np.array([0.1, 0.9, 0.5], dtype=np.float32)
    fused = merge_reranked(_retrieved(4), scores, fusion_weight=1.0)  # 1.1, 1.8, 1.3
    assert [hit.chunk.label for hit in fused] == [1, 2, 0, 3]
    assert [hit.score for hit in fused[:3]] == pytest.approx([1.8, 1.3, 1.1])
    assert [hit.cosine for hit in fused[:3]] == pytest.approx([0.4, 0.3, 0.5])
    heavy = merge_reranked(_retrieved(4), scores, fusion_weight=10.0)  # 10.1, 9.9, 8.5: first-stage order
    assert [hit.chunk.label for hit in heavy] == [0, 1, 2, 3] and heavy[0].stage == "rerank"


def test_a_definition_named_by_the_query_stays_first_when_reranked() -> None:
    hits = merge_reranked(_retrieved(4, defines=0), np.array([-0.9, 0.9, 0.5], dtype=np.float32))
    assert [hit.chunk.label for hit in hits] == [0, 1, 2, 3]


def test_the_model_cards_fusion_weight_orders_the_reranked_hits(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, tmp_path: Path
) -> None:
    fused_model = tmp_path / "fused-model"
    shutil.copytree(tiny_model, fused_model)
    card = ModelFolder.load(fused_model).card
    write_card(fused_model, dataclasses.replace(card, fusion_weight=1e6))  # cosine decides
    workspace = open_workspace(sample_workspace, fused_model, rerank_depth=5)
    workspace.sync()
    plain = workspace.search("retry a function", limit=10, rerank=False)
    fused = workspace.search("retry a function", limit=10, rerank=True)
    assert [hit.stage for hit in fused.hits] == ["rerank"] * 5 + ["retrieve"] * 5
    assert [hit.chunk.id for hit in fused.hits] == [hit.chunk.id for hit in plain.hits]


def test_merging_indexes_keeps_each_cascade_order() -> None:
    def hit(name: str, score: float, cosine: float) -> Hit:
        chunk = StoredChunk(0, name, "a.py", "python", "function", name, 1, 2, "x", "h")
        return Hit(chunk, score, "rerank" if score != cosine else "retrieve", cosine)

    first = [hit("a1", -0.9, 0.6), hit("a2", -0.95, 0.8), hit("a3", 0.5, 0.5)]  # reranked, then retrieved
    second = [hit("b1", 0.7, 0.7), hit("b2", 0.4, 0.4)]
    merged = [item.chunk.name for item in merge_ranked_lists([first, second])]
    assert merged == ["b1", "a1", "a2", "a3", "b2"]
    assert [item.chunk.name for item in merge_ranked_lists([first])] == ["a1", "a2", "a3"]


def test_no_ranker_means_retriever_order_and_says_so(
    sample_workspace: Path, other_tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, other_tiny_model)
    workspace.sync()
    result = workspace.search("retry a function", limit=5)
    assert all(hit.stage == "retrieve" for hit in result.hits)
    assert "no ranker" in result.stats.note


def test_filters_apply_before_ranking(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    (sample_workspace / "src").mkdir()
    shutil.copy(sample_workspace / "sample.go", sample_workspace / "src" / "server.go")
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    go_only = workspace.search("handle a request", limit=50, filters=Filters(languages=("go",)))
    assert go_only.hits and {hit.chunk.language for hit in go_only.hits} == {"go"}
    under_src = workspace.search("handle a request", limit=50, filters=Filters(include=("src/**",)))
    assert under_src.hits and {hit.chunk.path for hit in under_src.hits} == {"src/server.go"}
    # a narrow filter returns every chunk it admits, however far they rank overall
    ruby = {chunk.id for chunk in workspace.store.chunks_of("sample.rb")}
    only = workspace.search(
        "anything", limit=100, filters=Filters(languages=("ruby",), include=("sample.rb",))
    )
    assert {hit.chunk.id for hit in only.hits} == ruby


def test_an_invalid_filter_glob_is_an_error_naming_it(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    for filters, named in [
        # git accepts the empty range [z-a]; Python's re rejects it
        (Filters(include=("src/**", "[z-a]")), "include glob '[z-a]'"),
        (Filters(exclude=("!",)), "exclude glob '!'"),
    ]:
        with pytest.raises(WorkspaceError, match=re.escape(named)):
            workspace.search("handle a request", filters=filters)
    assert workspace.search("handle a request", filters=Filters(include=("*.py",))).hits  # still searches


def test_searches_answer_from_the_partial_index_while_indexing(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(30):
        (sample_workspace / f"extra_{n}.py").write_text(
            NEW_FUNCTION.replace("checksum_of_blocks", f"sum_{n}")
        )
    workspace = open_workspace(sample_workspace, tiny_model, batch_size=4)
    encode, groups, resume = workspace.retriever.encode_code, [], threading.Event()

    def held_after_the_first_group(texts: list[str]) -> object:
        groups.append(len(texts))
        if len(groups) > 1:
            assert resume.wait(30)  # indexing stalls here, in the middle of the folder
        return encode(texts)

    monkeypatch.setattr(workspace.retriever, "encode_code", held_after_the_first_group)
    indexing = threading.Thread(target=workspace.sync)
    indexing.start()
    try:
        deadline = time.monotonic() + 30
        while workspace.store.chunk_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        partial = workspace.store.chunk_count()
        started = time.perf_counter()
        result = workspace.search("add up the bytes of every block", limit=5)
        assert time.perf_counter() - started < 2  # no lock held by the stalled indexing thread
        assert indexing.is_alive() and partial > 0 and result.hits
        assert workspace.store.chunk_count() == partial  # still stalled: answered from what was indexed
    finally:
        resume.set()
        indexing.join(30)
    assert workspace.store.chunk_count() > partial
    assert_consistent(workspace)


def test_edit_reembeds_only_changed_functions(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    path = sample_workspace / "sample.py"
    path.write_text(path.read_text() + NEW_FUNCTION)
    report = workspace.sync()
    assert report.files_changed == 1
    assert report.chunks_embedded == 1  # only the new function; the file's other chunks reuse vectors
    assert "checksum_of_blocks" in indexed_names(workspace)
    assert_consistent(workspace)
    unchanged = workspace.sync()
    assert unchanged.files_changed == 0 and unchanged.chunks_embedded == 0


def test_an_index_cut_by_another_chunker_is_chunked_again_reusing_its_vectors(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    (sample_workspace / "util.c").write_text("/* Add. */\nint add(int a, int b) {\n  return a + b;\n}\n")
    workspace = open_workspace(sample_workspace, tiny_model)
    first = workspace.sync()
    assert {chunk.kind for chunk in workspace.store.chunks_of("util.c")} == {"function"}
    with workspace.store.transaction() as db:  # made by a chunker that cut C into windows
        db.execute("DELETE FROM meta WHERE key = 'chunking'")
        db.execute("UPDATE chunks SET kind = 'window', name = 'util.c:1-4' WHERE path = 'util.c'")
    workspace.close()
    reopened = open_workspace(sample_workspace, tiny_model)
    report = reopened.sync()
    assert report.files_changed == first.files_total and report.chunks_embedded == 0
    assert [(chunk.kind, chunk.name) for chunk in reopened.store.chunks_of("util.c")] == [("function", "add")]
    assert reopened.store.chunked_as_now and reopened.sync().files_changed == 0
    assert_consistent(reopened)


def test_delete_and_rename(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    (sample_workspace / "sample.rb").unlink()
    (sample_workspace / "sample.go").rename(sample_workspace / "renamed.go")
    report = workspace.sync()
    assert report.files_deleted == 2 and report.chunks_embedded == 0
    paths = {hit.chunk.path for hit in workspace.search("anything", limit=100).hits}
    assert "sample.rb" not in paths and "sample.go" not in paths and "renamed.go" in paths
    assert_consistent(workspace)


def test_update_paths_handles_create_change_delete(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    created = sample_workspace / "blocks.py"
    created.write_text(NEW_FUNCTION)
    workspace.update_paths([created])
    assert "checksum_of_blocks" in indexed_names(workspace)
    created.unlink()
    report = workspace.update_paths([created])
    assert report.files_deleted == 1 and "checksum_of_blocks" not in indexed_names(workspace)
    assert_consistent(workspace)


def test_a_changed_ignore_file_reindexes_what_it_covers(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    (sample_workspace / ".gitignore").write_text("*.go\n")
    report = workspace.update_paths([sample_workspace / ".gitignore"])
    assert report.files_deleted == 1 and "sample.go" not in workspace.store.files()
    (sample_workspace / ".gitignore").unlink()
    workspace.update_paths([".gitignore"])
    assert "sample.go" in workspace.store.files()
    assert_consistent(workspace)


def test_index_survives_reopen_without_reembedding(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    first = open_workspace(sample_workspace, tiny_model)
    first.sync()
    expected = [hit.chunk.id for hit in first.search("parse", limit=10).hits]
    first.close()
    second = open_workspace(sample_workspace, tiny_model)
    assert second.loaded_how.startswith("loaded vectors-")
    report = second.sync()
    assert report.chunks_embedded == 0 and report.files_changed == 0
    assert [hit.chunk.id for hit in second.search("parse", limit=10).hits] == expected


def test_model_change_rebuilds_the_index(
    sample_workspace: Path, tiny_model: Path, other_tiny_model: Path, index_dir: Path
) -> None:
    open_workspace(sample_workspace, tiny_model).sync()
    switched = open_workspace(sample_workspace, other_tiny_model)
    assert any("another model" in warning for warning in switched.warnings)
    assert switched.store.chunk_count() == 0
    report = switched.sync()
    assert report.files_changed == 10 and report.chunks_total > 0
    assert_consistent(switched)


def test_corrupt_database_is_reported_and_rebuilt(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    database = workspace.store.path
    workspace.close()
    for suffix in ("-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    database.write_bytes(b"this is not a database" * 100)
    reopened = open_workspace(sample_workspace, tiny_model)
    assert any("unreadable" in warning for warning in reopened.warnings)
    assert list(database.parent.glob("index.db.corrupt-*"))
    report = reopened.sync()
    assert report.files_changed == 10
    assert_consistent(reopened)


def test_a_database_damaged_after_it_passed_its_check_is_checked_again(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    database = workspace.store.path
    assert database is not None
    workspace.close()
    open_workspace(sample_workspace, tiny_model).close()  # checked, and remembered: nothing written since
    checks = []
    real_connect = sqlite3.connect

    def counting(*args: object, **kwargs: object) -> sqlite3.Connection:
        connection = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        return CountingConnection(connection, checks)

    monkeypatch.setattr(store_module.sqlite3, "connect", counting)
    open_workspace(sample_workspace, tiny_model).close()
    assert checks == []  # the unchanged database was not read whole again
    stat = database.stat()
    data = bytearray(database.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = os.urandom(4096)  # the same size, the same mtime
    database.write_bytes(bytes(data))
    os.utime(database, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    reopened = open_workspace(sample_workspace, tiny_model)
    assert checks  # checked again: the write changed the ctime (and a damage found is moved aside)
    assert reopened.store.recovered_from is not None or reopened.store.chunk_count() > 30
    assert_consistent(reopened)


class CountingConnection:
    """A sqlite3 connection that records the quick_checks run through it."""

    def __init__(self, connection: sqlite3.Connection, checks: list[str]) -> None:
        self.connection, self.checks = connection, checks

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if "quick_check" in sql:
            self.checks.append(sql)
        return self.connection.execute(sql, *args)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.connection, name)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_corrupt_vector_snapshot_is_rebuilt_from_the_store(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, damage: str
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    expected = [hit.chunk.id for hit in workspace.search("parse", limit=10).hits]
    workspace.close()
    (snapshot,) = workspace.folder.glob("vectors-*.hnsw")
    if damage == "truncate":
        snapshot.write_bytes(snapshot.read_bytes()[:1000])
    elif damage == "garbage":
        snapshot.write_bytes(os.urandom(snapshot.stat().st_size))
    else:
        snapshot.unlink()
    reopened = open_workspace(sample_workspace, tiny_model)
    assert reopened.loaded_how == "rebuilt from the stored vectors"
    assert reopened.sync().chunks_embedded == 0
    assert [hit.chunk.id for hit in reopened.search("parse", limit=10).hits] == expected


def test_stale_snapshot_is_brought_up_to_date(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    """A crash after a commit but before the snapshot: the old snapshot plus the store's newer rows."""
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    (old_snapshot,) = workspace.folder.glob("vectors-*.hnsw")
    kept = old_snapshot.read_bytes()
    (sample_workspace / "sample.rb").unlink()
    (sample_workspace / "blocks.py").write_text(NEW_FUNCTION)
    workspace.sync()
    workspace.close()
    for snapshot in workspace.folder.glob("vectors-*.hnsw"):
        snapshot.unlink()
    old_snapshot.write_bytes(kept)
    reopened = open_workspace(sample_workspace, tiny_model)
    assert reopened.loaded_how.startswith(f"loaded {old_snapshot.name}")
    assert_consistent(reopened)
    assert "checksum_of_blocks" in {hit.chunk.name for hit in reopened.search("checksum", limit=100).hits}


def test_bad_files_are_skipped_with_counts(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    (sample_workspace / "blob.py").write_bytes(b"\x00\x01binary" * 100)
    with (sample_workspace / "huge.py").open("wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    (sample_workspace / "latin1.py").write_bytes(b"def caf\xe9():\n    return '\xe9t\xe9'\n")
    (sample_workspace / "loop").symlink_to(sample_workspace, target_is_directory=True)
    os.mkfifo(sample_workspace / "pipe.py")
    workspace = open_workspace(sample_workspace, tiny_model)
    report = workspace.sync()
    assert report.skipped["binary"] == 1
    assert report.skipped["too-large"] == 1
    assert report.skipped["symlink-loop"] == 1
    assert report.skipped["not-regular"] == 1
    assert "latin1.py" in workspace.store.files()  # invalid UTF-8 is still searchable
    assert "broken.py" in workspace.store.files()  # so is a file with syntax errors
    assert_consistent(workspace)


def test_similar_at_leaves_out_the_function_itself(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    result = workspace.similar_at(sample_workspace / "sample.py", 20)  # inside Config.load
    names = [(hit.chunk.path, hit.chunk.name) for hit in result.hits]
    assert ("sample.py", "Config.load") not in names and len(names) == 20
    with pytest.raises(WorkspaceError, match="not inside a function"):
        workspace.similar_at(sample_workspace / "sample.py", 3)
    with pytest.raises(WorkspaceError, match="not inside the workspace"):
        workspace.similar_at(Path("/etc/hostname"), 1)


def test_missing_or_corrupt_model_gives_a_clear_error(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        ModelFolder.load(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    with (broken / "retriever.onnx").open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff" * 16)
    with pytest.raises(ModelError, match="sha256"):
        ModelFolder.load(broken)


def test_index_database_is_sqlite_with_vectors(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    assert str(workspace.folder).startswith(str(index_dir))
    with sqlite3.connect(workspace.store.path) as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM chunks WHERE length(vector) = 32 * 4").fetchone()
    assert rows == workspace.store.chunk_count()


def test_an_open_document_over_four_times_max_file_size_gets_a_clear_error_at_once(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model, max_file_size=100_000)
    workspace.sync()
    function = "def grows(total):\n" + "    total += 1\n" * 30_000  # 450,000 characters
    started = time.perf_counter()
    with pytest.raises(WorkspaceError, match="at most 400000"):
        workspace.similar_at(sample_workspace / "sample.py", 2, text=function)
    assert time.perf_counter() - started < 1.0  # it is refused before anything is parsed
    assert workspace.similar_at(sample_workspace / "sample.py", 2, text=function[:300_000]).hits


def test_find_similar_ranks_a_test_copy_after_implementation_unless_tests_are_included(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    source = (sample_workspace / "sample.py").read_text(encoding="utf-8")
    (sample_workspace / "tests").mkdir()
    (sample_workspace / "tests" / "test_sample.py").write_text(source, encoding="utf-8")
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    chunk = workspace.store.chunks_of("sample.py")[0]
    default = workspace.similar_to(chunk.text, limit=10).hits
    included = workspace.similar_to(chunk.text, limit=10, include_tests=True).hits
    assert default[0].chunk.path == "sample.py"  # the copy under tests/ scores the same cosine
    position = {(hit.chunk.path, hit.chunk.name): rank for rank, hit in enumerate(default)}
    for (path, name), rank in position.items():  # each test copy below its original
        if path.startswith("tests/") and ("sample.py", name) in position:
            assert rank > position[("sample.py", name)], name
    # with tests included the copy scores the same: one hit, the other its twin ("also at")
    assert {included[0].chunk.path, *(twin.path for twin in included[0].twins)} == {
        "sample.py",
        "tests/test_sample.py",
    }
    for hits in (default, included):
        assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_every_search_hit_scores_no_higher_than_the_one_above_it_in_its_stage(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    for rerank in (False, True):
        hits = workspace.search("read a json file into a config", limit=20, rerank=rerank).hits
        stages = [hit.stage for hit in hits]
        assert stages == sorted(stages, key=lambda stage: stage != "rerank")  # reranked hits first
        for stage in ("rerank", "retrieve"):
            scores = [hit.score for hit in hits if hit.stage == stage]
            assert scores == sorted(scores, reverse=True)


def test_the_index_report_accounts_for_every_chunk(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    source = (sample_workspace / "sample.py").read_text(encoding="utf-8")
    (sample_workspace / "copy.py").write_text(source, encoding="utf-8")  # every chunk twice in one batch
    workspace = open_workspace(sample_workspace, tiny_model)
    first = workspace.sync()
    assert first.chunks_embedded + first.chunks_reused == first.chunks_total and first.chunks_reused > 0
    (sample_workspace / "copy.py").write_text(source + "\ndef added():\n    return 1\n", encoding="utf-8")
    second = workspace.sync()
    assert second.chunks_embedded == 1 and second.chunks_embedded + second.chunks_reused < second.chunks_total


def test_a_name_no_definition_has_is_said_and_a_name_found_scores_first(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    missing = workspace.search("Client.send_later", limit=5, rerank=False)
    assert missing.stats.missing_name == "Client.send_later" and missing.hits  # then what is near
    assert missing.stats.to_json()["noDefinition"] == "Client.send_later"
    assert not workspace.search("load the config", limit=5).stats.missing_name  # words, not a name
    found = workspace.search("Config.load", limit=10, rerank=False)
    assert found.hits[0].chunk.name == "Config.load" and not found.stats.missing_name
    scores = [hit.score for hit in found.hits]
    assert scores == sorted(scores, reverse=True)
