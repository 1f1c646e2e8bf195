"""Faults around the index: two processes on one workspace, a read-only or full disk."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from indexcheck import assert_consistent, open_workspace

from codesieve.server.index import vector_index
from codesieve.server.index.store import disk_error
from codesieve.server.workspace import SHARED, Workspace

NEW_FILE = '''
def quokka_ledger_total(entries):
    """Sum the amounts of the quokka ledger."""
    return sum(entry.amount for entry in entries)
'''


def names(workspace: Workspace, query: str) -> list[str]:
    return [hit.chunk.name for hit in workspace.search(query, limit=5, rerank=False).hits]


def test_a_second_workspace_reads_the_writers_index_and_takes_over(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    writer = open_workspace(sample_workspace, tiny_model)
    writer.sync()
    reader = open_workspace(sample_workspace, tiny_model)
    assert reader.shared and not writer.shared and SHARED not in reader.warnings  # a fact, not a warning
    assert reader.store.chunk_count() == writer.store.chunk_count() > 30
    assert_consistent(reader)

    # the writer indexes a new file; the reader's next search finds it without indexing anything
    (sample_workspace / "ledger.py").write_text(NEW_FILE)
    writer.update_paths(["ledger.py"])
    assert "quokka_ledger_total" in names(reader, NEW_FILE)
    report = reader.sync()
    assert report.files_changed == 0 and report.chunks_embedded == 0
    assert_consistent(reader)

    # the writer goes: the reader becomes the writer on its next sync and indexes what changed since
    writer.close()
    (sample_workspace / "ledger.py").unlink()
    report = reader.sync()
    assert not reader.shared and SHARED not in reader.warnings and report.files_deleted == 1
    assert "quokka_ledger_total" not in names(reader, NEW_FILE)
    assert_consistent(reader)
    # and the first one, reopened, is now the reader
    again = open_workspace(sample_workspace, tiny_model)
    assert again.shared
    again.close()
    reader.close()


def test_a_reader_with_another_model_keeps_its_own_index(
    sample_workspace: Path, tiny_model: Path, other_tiny_model: Path, index_dir: Path
) -> None:
    writer = open_workspace(sample_workspace, tiny_model)
    writer.sync()
    other = open_workspace(sample_workspace, other_tiny_model)
    assert not other.shared and other.store.in_memory
    assert any("another model" in warning for warning in other.warnings)
    other.sync()
    assert other.store.chunk_count() == writer.store.chunk_count()
    assert writer.store.get_meta("model_id") == writer.model.model_id  # the shared index is untouched
    assert_consistent(other)
    assert_consistent(writer)


def test_cli_beside_a_running_writer_searches_its_index(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    """A real second process: `codesieve search` while this process holds the index."""
    writer = open_workspace(sample_workspace, tiny_model)
    writer.sync()
    command = [sys.executable, "-m", "codesieve.server.cli", "search", "read a json config"]
    command += [str(sample_workspace), "--json", "--model", str(tiny_model), "-q"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hits"]
    assert SHARED in result.stderr
    assert_consistent(writer)


def test_an_index_folder_that_cannot_be_made_gives_an_index_in_memory(
    sample_workspace: Path, tiny_model: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the index folder should go")
    workspace = open_workspace(sample_workspace, tiny_model, index_dir=blocker / "indexes")
    assert workspace.store.in_memory
    assert any("kept in memory" in warning and "indexDir" in warning for warning in workspace.warnings)
    workspace.sync()
    assert names(workspace, "load the config file")
    assert_consistent(workspace)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root without setpriv")
def test_a_read_only_index_folder_gives_a_warning_and_results(
    sample_workspace: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """Real EACCES: as root the CLI runs without CAP_DAC_OVERRIDE, so the folder's mode applies."""
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    command = [
        sys.executable,
        "-m",
        "codesieve.server.cli",
        "search",
        "load the config",
        str(sample_workspace),
    ]
    command += ["--json", "--model", str(tiny_model), "--index-dir", str(read_only / "indexes")]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        read_only.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hits"]
    assert "kept in memory" in result.stderr and "Permission denied" in result.stderr
    assert not (read_only / "indexes").exists()


def test_a_full_disk_mid_indexing_goes_on_in_memory_and_keeps_the_disk_copy(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    before = workspace.store.chunk_count()
    database = workspace.folder / "index.db"
    # SQLite's page limit makes the next write fail exactly as a full disk does (SQLITE_FULL)
    pages = workspace.store.connection.execute("PRAGMA page_count").fetchone()[0]
    workspace.store.connection.execute(f"PRAGMA max_page_count = {pages}")
    for n in range(20):
        (sample_workspace / f"ledger_{n}.py").write_text(NEW_FILE.replace("quokka", f"quokka{n}") * 30)
    report = workspace.sync()
    assert workspace.store.in_memory and report.files_changed == 20
    assert any("the disk is full" in warning for warning in workspace.warnings)
    assert {chunk.name for chunk in workspace.store.chunks_of("ledger_19.py")} == {"quokka19_ledger_total"}
    assert workspace.search("quokka ledger", limit=5).hits
    assert_consistent(workspace)
    workspace.close()

    # the copy on disk is the index as it was before the failed write, and still consistent
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == before
    reopened = open_workspace(sample_workspace, tiny_model)
    assert not reopened.store.in_memory and reopened.store.chunk_count() == before
    reopened.sync()
    assert_consistent(reopened)


def test_a_snapshot_that_cannot_be_written_leaves_no_temporary_file(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(path: Path) -> str:
        raise OSError(28, "No space left on device", str(path))

    with monkeypatch.context() as patched:  # undoes this patch only, not the index_dir fixture's
        patched.setattr(vector_index, "sha256_file", disk_full)
        workspace = open_workspace(sample_workspace, tiny_model)
        report = workspace.sync()  # the graph is a cache: indexing finishes without a snapshot
        assert report.chunks_total > 30 and names(workspace, "load the config file")
        assert not list(workspace.folder.glob("*vectors*"))
    workspace.close()
    reopened = open_workspace(sample_workspace, tiny_model)
    assert reopened.loaded_how == "rebuilt from the stored vectors"
    assert_consistent(reopened)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("database or disk is full", "the disk is full"),
        ("attempt to write a readonly database", "the database is read-only"),
        ("disk I/O error", "a disk I/O error"),
    ],
)
def test_a_disk_error_is_known_by_its_message_where_python_gives_no_code(message: str, reason: str) -> None:
    error = sqlite3.OperationalError(message)  # as Python 3.10 raises them: no sqlite_errorcode
    assert not hasattr(error, "sqlite_errorcode")
    assert disk_error(error) == reason
    assert disk_error(sqlite3.OperationalError("database is locked")) is None
