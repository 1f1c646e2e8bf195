"""The invariant every index must satisfy, whatever happened to the process that wrote it; and how tests
open a workspace on a test model."""

from __future__ import annotations

from pathlib import Path

from codesieve.server.chunk.chunker import chunk_source
from codesieve.server.config import Settings
from codesieve.server.index.lexical import definition_tokens
from codesieve.server.workspace import Workspace


def assert_consistent(workspace: Workspace, against_disk: bool = True) -> None:
    """Every stored chunk matches its file on disk, no duplicates, and the graph holds exactly them.

    `against_disk=False` skips the first part: for an index that has not yet seen the latest changes.
    """
    files = workspace.store.files()
    labels = workspace.store.labels()
    stored = workspace.store.chunks_by_label(sorted(labels))
    assert len({chunk.id for chunk in stored.values()}) == len(stored)
    for path, record in files.items() if against_disk else ():
        # As the indexer reads it: bytes decoded, newlines untouched (read_text would turn CRLF into LF).
        text = (workspace.root / path).read_bytes().decode("utf-8", errors="replace")
        expected = {chunk.id for chunk in chunk_source(path, text, record.language)}
        assert {chunk.id for chunk in workspace.store.chunks_of(path)} == expected, path
    assert {chunk.path for chunk in stored.values()} <= set(files)
    assert workspace.vectors.live == labels
    if workspace.store.lexical_ready:  # the lexical table indexes exactly the stored chunks
        with workspace.store.lock:
            rows = workspace.store.connection.execute("SELECT id FROM lexical_docsize").fetchall()
        assert {int(row[0]) for row in rows} == labels
        for label, chunk in stored.items():
            for token in definition_tokens(chunk.name)[:1]:
                assert label in workspace.store.labels_with_word(token), chunk.name


def open_workspace(root: Path, model: Path, **settings: object) -> Workspace:
    """A Workspace on `model` with one thread (and any other settings)."""
    return Workspace(root, Settings(model=model, threads=1, **settings))  # type: ignore[arg-type]
