"""An index damaged on disk, or on a disk this process cannot write: what is read is
checked, what cannot be written is left exactly as it was."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from indexcheck import assert_consistent, open_workspace

from codesieve.server.index.store import stored_vector

GARBAGE = b"\x7f" * 64  # sixteen floats of 3.4e38 each


def damage_one_vector(database: Path) -> int:
    """Overwrite 64 bytes of one chunk's stored vector in the file itself; returns its label."""
    with sqlite3.connect(database) as db:
        label, blob = db.execute(
            "SELECT label, vector FROM chunks ORDER BY label LIMIT 1 OFFSET 5"
        ).fetchone()
    db.close()
    data = bytearray(database.read_bytes())
    offset = data.find(blob)
    assert offset > 0 and data.find(blob, offset + 1) == -1
    data[offset + 16 : offset + 16 + len(GARBAGE)] = GARBAGE
    database.write_bytes(bytes(data))
    with sqlite3.connect(database) as db:  # SQLite's own checks see nothing wrong
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    return int(label)


def test_a_damaged_stored_vector_is_embedded_again_and_never_tops_a_search(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    database = workspace.store.path
    assert database is not None
    workspace.close()
    for snapshot in database.parent.glob("vectors-*.hnsw"):  # no snapshot: the graph comes from the store
        snapshot.unlink()
    label = damage_one_vector(database)

    reopened = open_workspace(sample_workspace, tiny_model)
    assert any("1 stored vectors" in warning and "embedded again" in warning for warning in reopened.warnings)
    for query in ("read a file", "sort a list", "parse the config"):
        hits = reopened.search(query, limit=5, rerank=False).hits
        assert hits and all(-1.01 <= hit.cosine <= 1.01 for hit in hits), [hit.cosine for hit in hits]
    chunk = reopened.store.chunks_by_label([label])[label]
    with sqlite3.connect(database) as db:
        (blob,) = db.execute("SELECT vector FROM chunks WHERE label = ?", (label,)).fetchone()
    db.close()
    vector = stored_vector(blob, 32)
    assert vector is not None  # repaired in the store, with the chunk's own embedding
    np.testing.assert_allclose(vector, reopened.retriever.encode_code([chunk.text])[0], atol=1e-5)
    assert_consistent(reopened)
    reopened.close()
    assert not open_workspace(sample_workspace, tiny_model).warnings  # and repaired once only


def test_stored_vectors_of_the_wrong_size_or_length_are_refused() -> None:
    unit = np.full(4, 0.5, dtype=np.float32)
    assert stored_vector(unit.tobytes(), 4) is not None
    assert stored_vector(unit.tobytes(), 8) is None  # another dimension
    assert stored_vector((unit * 3).tobytes(), 4) is None  # not unit length
    assert stored_vector(np.array([np.nan, 0.5, 0.5, 0.5], dtype=np.float32).tobytes(), 4) is None
    assert stored_vector(GARBAGE[:16], 4) is None


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry of an index folder with its size and mtime."""
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.iterdir()}


@pytest.mark.parametrize("blocked", ["index.db", "writer.lock"])
def test_a_read_only_fallback_deletes_nothing(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, blocked: str
) -> None:
    """A folder where the database or the lock file should be: the session goes on in memory, and
    the files on disk, the vector snapshot first, stay exactly as they were."""
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    folder = workspace.folder
    workspace.close()
    assert list(folder.glob("vectors-*.hnsw"))
    if blocked == "index.db":
        (folder / "index.db").rename(folder / "index.db.kept")
    else:
        (folder / "writer.lock").unlink()
    (folder / blocked).mkdir()
    before = listing(folder)

    fallback = open_workspace(sample_workspace, tiny_model)
    assert fallback.store.in_memory and len(fallback.warnings) == 1, fallback.warnings
    report = fallback.sync()
    assert fallback.search("read a file", limit=3).hits
    assert_consistent(fallback)
    if blocked == "writer.lock":  # the database is readable: a copy of it is searched, nothing embedded
        assert "copy of its index" in fallback.warnings[0] and report.chunks_embedded == 0
        assert fallback.loaded_how.startswith("loaded vectors-")
    fallback.close()
    assert listing(folder) == before


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root without setpriv")
def test_a_read_only_index_folder_that_holds_an_index_is_searched_as_it_is(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    """An index built by another user (sudo, say): every command reads it, with one warning."""
    base = [sys.executable, "-m", "codesieve.server.cli"]
    model = ["--model", str(tiny_model), "-q"]
    built = subprocess.run([*base, "index", str(sample_workspace), *model], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (folder,) = [path for path in index_dir.iterdir() if path.is_dir()]  # beside it: the model digests
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = listing(folder)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        for command in (
            ["search", "read a file", str(sample_workspace), "--json"],
            ["status", str(sample_workspace)],
        ):
            result = subprocess.run(
                [*drop, *base, *command, *model], capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
            warnings = [line for line in result.stderr.splitlines() if line.startswith("codesieve:")]
            assert len(warnings) == 1 and "copy of its index" in warnings[0], result.stderr
            if command[0] == "search":
                output = json.loads(result.stdout)
                assert output["hits"] and output["stats"]["indexed"] == {"changed": 0, "deleted": 0}
            else:
                assert "staleness: up to date" in result.stdout
    finally:
        for path in [folder, *folder.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert listing(folder) == before
