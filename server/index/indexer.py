"""Keeping a workspace's index in step with its files: scan, chunk, embed what is new, store.

A file whose size and mtime are unchanged is not read. A file that is read but whose content hash
is unchanged only gets its mtime updated. A changed file is chunked again; each chunk whose text
already has a stored embedding (anywhere in the workspace: a renamed file, a moved function)
reuses it, and only chunks with new text are embedded. Files are committed in groups of whole
files, one transaction per group, so a killed process loses at most the group in flight and never
leaves a file half indexed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ..chunk.chunker import Chunk, chunk_source, content_sha1
from ..config import Settings
from ..model.encoders import OnnxRetriever
from ..scan.ignore_rules import IGNORE_FILES
from ..scan.safe_read import SourceError, read_source
from ..scan.walk import SourceFile, WorkspaceFilter, scan_workspace
from .store import ChunkStore, FileRecord, FileUpdate
from .vector_index import VectorIndex

log = logging.getLogger(__name__)
SNAPSHOT_EVERY = 20_000  # new chunks between snapshots during a long indexing run

OnProgress = Callable[["IndexReport"], None]
Cancelled = Callable[[], bool]


@dataclass
class IndexReport:
    """What an indexing run did; also passed to progress callbacks while it runs."""

    files_total: int = 0  # source files considered
    files_done: int = 0  # of those, processed so far
    files_changed: int = 0  # (re)chunked because new or changed
    files_deleted: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0  # chunks in the index afterwards
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def fraction(self) -> float:
        return 1.0 if self.files_total == 0 else self.files_done / self.files_total


@dataclass
class _Pending:
    record: FileRecord
    chunks: list[Chunk]


class Indexer:
    """Brings a store and its vector graph up to date with the files of one workspace."""

    def __init__(
        self,
        root: Path,
        store: ChunkStore,
        vectors: VectorIndex,
        encoder: OnnxRetriever,
        config: Settings,
    ) -> None:
        self.root = root
        self.store = store
        self.vectors = vectors
        self.encoder = encoder
        self.config = config
        self._unsaved_chunks = 0

    def sync(self, progress: OnProgress | None = None, cancelled: Cancelled | None = None) -> IndexReport:
        """Scan the whole workspace and index what changed since the last run."""
        started = time.perf_counter()
        scan = scan_workspace(self.root, max_file_size=self.config.max_file_size, exclude=self.config.exclude)
        report = IndexReport(
            files_total=len(scan.files), skipped=scan.skipped, skipped_examples=scan.examples
        )
        present = {file.path for file in scan.files}
        deleted = [path for path in self.store.files() if path not in present]
        self._index(scan.files, report, progress, cancelled)  # before deleting: a renamed file reuses vectors
        if not report.cancelled:
            self._delete(deleted, report)
        return self._finish(report, started)

    def update_paths(self, relpaths: Sequence[str], cancelled: Cancelled | None = None) -> IndexReport:
        """Index or drop just these workspace-relative paths (editor events, file watcher).

        A changed ignore file can include or exclude anything below it: that takes a full sync.
        """
        if any(PurePosixPath(relpath).name in IGNORE_FILES for relpath in relpaths):
            return self.sync(cancelled=cancelled)
        started = time.perf_counter()
        report = IndexReport()
        files: list[SourceFile] = []
        gone: list[str] = []
        known = self.store.files()
        # A fresh filter: it caches ignore files, which may have changed since the last call.
        workspace_filter = WorkspaceFilter(
            self.root, exclude=self.config.exclude, max_file_size=self.config.max_file_size
        )
        for relpath in dict.fromkeys(relpaths):
            verdict = workspace_filter.classify(relpath)
            if isinstance(verdict, SourceFile):
                files.append(verdict)
            else:
                report.skipped[verdict] += 1
                if relpath in known:
                    gone.append(relpath)
        report.files_total = len(files)
        self._index(files, report, None, cancelled)
        self._delete(gone, report)
        return self._finish(report, started)

    def save_snapshot(self) -> None:
        """Write the vector graph to disk for the store's current generation (a cache: failures
        are logged, and the next open rebuilds what is missing from the store)."""
        self._unsaved_chunks = 0
        if self.store.path is None:  # in memory: nothing on disk to match
            return
        try:
            self.vectors.save(self.store.path.parent, self.store.generation)
        except OSError as error:
            log.warning("cannot save the vector snapshot in %s: %s", self.store.path.parent, error)

    def repair(self, labels: Sequence[int], persist: bool) -> int:
        """Embed again the chunks whose stored vectors are damaged and put them in the graph (and in
        the store when `persist`: a reading process leaves the writer's store alone). Returns how many."""
        chunks = self.store.chunks_by_label(sorted(labels))
        if not chunks:
            return 0
        order = sorted(chunks)
        vectors = self.encoder.encode_chunks([chunks[label] for label in order])
        if persist:
            self.store.replace_vectors(order, vectors)
            self._unsaved_chunks += len(order)  # the next snapshot holds them
        self.vectors.add(order, vectors)
        self.vectors.damaged -= set(order)
        return len(order)

    # internals ----------------------------------------------------------------------------------
    def _finish(self, report: IndexReport, started: float) -> IndexReport:
        if self._unsaved_chunks or report.files_deleted:
            self.save_snapshot()
        report.chunks_total = len(self.vectors)
        report.seconds = time.perf_counter() - started
        return report

    def _delete(self, paths: Sequence[str], report: IndexReport) -> None:
        if paths:
            self.vectors.remove(self.store.apply([], paths).removed)
            report.files_deleted += len(paths)

    def _index(
        self,
        files: Sequence[SourceFile],
        report: IndexReport,
        progress: OnProgress | None,
        cancelled: Cancelled | None,
    ) -> None:
        known = self.store.files()
        group: list[_Pending] = []
        group_chunks = 0
        touched: list[FileRecord] = []
        for file in files:
            if cancelled is not None and cancelled():
                report.cancelled = True
                break
            pending = self._prepare(file, known.get(file.path), report, touched)
            report.files_done += 1
            if pending is not None:
                group.append(pending)
                group_chunks += len(pending.chunks)
            if group_chunks >= self.config.batch_size:
                self._commit(group, report)
                group, group_chunks = [], 0
                if progress is not None:
                    progress(report)
        if group:
            self._commit(group, report)
        if touched:
            self.store.touch(touched)
        if progress is not None:
            progress(report)

    def _prepare(
        self, file: SourceFile, old: FileRecord | None, report: IndexReport, touched: list[FileRecord]
    ) -> _Pending | None:
        if old is not None and old.size == file.size and old.mtime_ns == file.mtime_ns:
            return None
        try:
            text = read_source(file.abspath, self.config.max_file_size)
        except SourceError as error:
            report.skipped[error.reason] += 1
            report.skipped_examples.setdefault(error.reason, []).append(file.path)
            return None
        record = FileRecord(file.path, file.language, file.size, file.mtime_ns, content_sha1(text))
        if old is not None and old.sha1 == record.sha1:
            touched.append(record)
            return None
        report.files_changed += 1
        return _Pending(record, chunk_source(file.path, text, file.language))

    def _commit(self, group: Sequence[_Pending], report: IndexReport) -> None:
        chunks = [chunk for pending in group for chunk in pending.chunks]
        vectors = self._vectors_for(chunks, report)
        updates, start = [], 0
        for pending in group:
            end = start + len(pending.chunks)
            updates.append(FileUpdate(pending.record, pending.chunks, vectors[start:end]))
            start = end
        change = self.store.apply(updates, [])
        self.vectors.remove(change.removed)
        if change.added:
            self.vectors.add(change.added, np.stack(change.vectors))
        self._unsaved_chunks += len(change.added)
        if self._unsaved_chunks >= SNAPSHOT_EVERY:
            self.save_snapshot()

    def _vectors_for(self, chunks: Sequence[Chunk], report: IndexReport) -> NDArray[np.float32]:
        """Embeddings for the chunks: stored ones where the embedded text is known, new ones otherwise.
        The text is the code alone, or with its path and name when the card's recipe adds them: then
        only the same chunk (`Chunk.id`: path, name and code) has the same text."""
        output = np.zeros((len(chunks), self.encoder.dimension), dtype=np.float32)
        key: Literal["content_hash", "id"] = "id" if self.encoder.card.code_context else "content_hash"
        keys = [getattr(chunk, key) for chunk in chunks]
        known = self.store.stored_vectors(key, keys, self.encoder.dimension)
        missing: dict[str, list[int]] = {}
        for position, value in enumerate(keys):
            vector = known.get(value)
            if vector is not None:
                output[position] = vector
                report.chunks_reused += 1
            else:
                missing.setdefault(value, []).append(position)
        if missing:
            embedded = self.encoder.encode_chunks([chunks[positions[0]] for positions in missing.values()])
            for row, positions in enumerate(missing.values()):
                output[positions] = embedded[row]
            report.chunks_embedded += len(missing)
            report.chunks_reused += sum(len(positions) - 1 for positions in missing.values())  # copies
        return output
