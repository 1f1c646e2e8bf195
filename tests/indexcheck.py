"""The invariant every index must satisfy, whatever happened to the process that wrote it; how tests
open a workspace on a test model; and its results as a client receives them."""

from __future__ import annotations

import json
from pathlib import Path

from codesieve.server.chunk.chunker import chunk_source
from codesieve.server.config import Settings
from codesieve.server.index.lexical import definition_tokens
from codesieve.server.scan.walk import scan_workspace
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


def assert_index_matches_disk(workspace: Workspace) -> None:
    """The index holds exactly the files a scan accepts now, each chunked as it is on disk."""
    scan = scan_workspace(workspace.root, max_file_size=workspace.config.max_file_size)
    assert set(workspace.store.files()) == {file.path for file in scan.files}
    assert_consistent(workspace)


def hits_json(workspace: Workspace, query: str) -> str:
    """Search results as strict UTF-8 JSON (no lone surrogates may reach a client)."""
    hits = workspace.search(query, limit=10).hits
    rows = [{"path": hit.chunk.path, "name": hit.chunk.name, "text": hit.chunk.text} for hit in hits]
    return json.dumps(rows, ensure_ascii=False).encode("utf-8").decode("utf-8")
