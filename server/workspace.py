"""One workspace folder: its model, its index, and the searches and syncs on them; where the pieces meet.

The CLI and the language server both drive this class. Opening a workspace picks the model
(the `model` setting, else the model `trainer fit` installed for this workspace, else the shipped
default), opens the index in the user cache directory, and rebuilds the index when it was made
with another model or its database is unreadable, saying so in `warnings`.

One process at a time writes a workspace's index: it holds `writer.lock` in the index folder (an
OS lock, released when the process dies). Another process on the same workspace (a second editor
window, `codesieve search` beside the server) reads that index and takes in what the writer commits
before each search; it becomes the writer when the lock frees. An index folder that cannot be
written (read-only, disk full) gives a warning and an index in memory for the session.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

from .chunk.chunker import Chunk, chunk_at_line, chunk_source
from .config import Settings
from .errors import WorkspaceError
from .index.indexer import Cancelled, Indexer, IndexReport, OnProgress
from .index.store import SCHEMA_VERSION, UPGRADABLE_SCHEMAS, ChunkStore
from .index.vector_index import BACKEND as VECTOR_BACKEND
from .index.vector_index import VectorIndex
from .languages import language_for_path
from .locations import index_folder_for, index_root, resolve_model_dir
from .model.encoders import OnnxRanker, OnnxRetriever
from .model.folder import DigestCache, ModelError, ModelFolder
from .scan.safe_read import SourceError, read_source
from .scan.walk import scan_workspace
from .search.cascade import Cascade, Hit, SearchResult, collapse_twins
from .search.twins import TWIN_WINDOW

OPEN_DOCUMENT_FACTOR = 4  # an editor's unsaved text is read up to this many times max_file_size
WRITER_LOCK = "writer.lock"
DIGESTS_FILE = "model-digests.json"  # in the index root: the model files' hashes (model.folder.DigestCache)
SHARED = (
    "Another CodeSieve process writes this workspace's index: this one searches the same index and "
    "takes over the writing when that process ends."
)  # a fact about the session, not a problem: `shared` holds it, `warnings` does not


@dataclass(frozen=True)
class WorkspaceSummary:
    """What every status shows of an open workspace (the CLI's, the language server's, MCP's)."""

    model: str
    index_path: str
    shared_index: bool  # another process writes the index: this one reads it
    ranker: bool
    vector_search: str  # hnswlib, or exact search with numpy
    files: int
    chunks: int
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The summary's part of a status, in the JSON's names."""
        return {
            "model": self.model,
            "indexPath": self.index_path,
            "sharedIndex": self.shared_index,
            "ranker": self.ranker,
            "vectorSearch": self.vector_search,
            "files": self.files,
            "chunks": self.chunks,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Filters:
    """Restrict a search before ranking: languages, and path globs (gitignore syntax)."""

    languages: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.languages or self.include or self.exclude)


def path_globs(patterns: Sequence[str], role: str) -> GitIgnoreSpec:
    """The gitignore-style globs of a search filter (`role`: "include" or "exclude"), compiled.

    A filter the user gave is an error when one of its globs is not valid, not a warning: skipping
    an include glob would widen the search to everything. Some globs git accepts are not valid
    regular expressions in Python (`[z-a]`, a reversed range); those are errors too.
    """
    from pathspec import GitIgnoreSpec  # here: a search without path filters need not load it

    for pattern in patterns:
        try:
            GitIgnoreSpec.from_lines([pattern])
        except (ValueError, re.error) as error:
            reason = error.msg if isinstance(error, re.error) else str(error)  # re's position is in its regex
            raise WorkspaceError(
                f"The {role} glob {pattern!r} is not a valid gitignore-style pattern ({reason}). "
                "Fix or remove it: e.g. 'src/**', '*.py', 'tests/'."
            ) from None
    return GitIgnoreSpec.from_lines(patterns)


def open_document_limit(max_file_size: int) -> int:
    """The most characters of an open document that find-similar and code actions read."""
    return OPEN_DOCUMENT_FACTOR * max_file_size


# Find similar reads this many nearest chunks when test code goes after implementation, so that the
# implementations below a run of near-identical tests still come up.
SIMILAR_DEPTH = 50


class Workspace:
    """Index, search and find-similar for one folder."""

    def __init__(self, root: Path, config: Settings | None = None) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise WorkspaceError(f"{root} is not a folder")
        self.config = config or Settings()
        self.folder = index_folder_for(self.root, self.config)
        self.warnings: list[str] = []
        self.writer_lock: FileLock | None = None
        self.shared = False  # reading an index that another process writes
        self.copied = False  # searching a copy, in memory, of an index in a folder this one cannot write
        digests = DigestCache(index_root(self.config) / DIGESTS_FILE)
        self._load_model(digests)
        self._open_index()
        self._open_vectors(digests)
        self.cascade = Cascade(self.retriever, self.ranker, self.vectors, self.store, self.model.card.search)

    def _load_model(self, digests: DigestCache) -> None:
        """The model folder this workspace uses (`locations.resolve_model_dir`), checked, and its encoders."""
        self.model = ModelFolder.load(resolve_model_dir(self.root, self.config), digests=digests)
        self.retriever = OnnxRetriever(self.model, self.config.threads)
        self.ranker = OnnxRanker(self.model, self.config.threads) if self.model.ranker_path else None

    def _open_index(self) -> None:
        """The index database (written by this process, shared, or in memory), emptied when it was made
        with another model or schema."""
        self.store = self._open_store()
        if self.store.recovered_from is not None:
            self.warnings.append(
                f"The index database was unreadable; it was moved to {self.store.recovered_from} "
                "and the workspace is indexed again."
            )
        if self.shared and self.store.get_meta("model_id") not in (None, self.model.model_id):
            self._go_private("it is indexed with another model")
        if not self.shared:
            self._reset_if_stale()
        self.seen_generation = self.store.generation

    def _open_vectors(self, digests: DigestCache) -> None:
        """The vector index (from its snapshot, else rebuilt from the stored vectors), and the indexer,
        which embeds again any stored vector found damaged."""
        snapshots = self.folder if self.store.path is not None or self.copied else None
        self.vectors, _, self.loaded_how = VectorIndex.open(
            snapshots, self.store, self.model.card.dimension, writer=self.owns_folder, digests=digests
        )
        digests.save()  # once, with what the model and the snapshot taught it
        self.indexer = Indexer(self.root, self.store, self.vectors, self.retriever, self.config)
        if self.vectors.damaged:
            repaired = self.indexer.repair(sorted(self.vectors.damaged), persist=not self.shared)
            self.warnings.append(
                f"{repaired} stored vectors in {self.folder / 'index.db'} were damaged (not finite, not unit "
                "length or of the wrong size) and were embedded again."
            )
            self.seen_generation = self.store.generation

    def _open_store(self) -> ChunkStore:
        """This process's index database, the one another process writes, or one in memory."""
        database = self.folder / "index.db"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.folder / WRITER_LOCK)
            try:
                lock.acquire(timeout=0)
                self.writer_lock = lock
            except Timeout:
                self.shared = True
            return ChunkStore(database, self.warnings.append)
        except (OSError, sqlite3.OperationalError) as error:
            self._release()
            self.shared = False
            self.warnings[:] = [warning for warning in self.warnings if warning != SHARED]
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            fix = "Set codesieve.indexDir (or CODESIEVE_INDEX_DIR) to a writable folder."
            copy = ChunkStore.copy_of(database, self.warnings.append)
            if copy is not None:  # an index is there (built by another user, say): search a copy of it
                self.copied = True
                self.warnings.append(
                    f"Cannot write the index folder {self.folder} ({reason}): this session searches a copy "
                    f"of its index in memory and leaves the folder as it is; changes are not saved. {fix}"
                )
                return copy
            self.warnings.append(
                f"Cannot write the index folder {self.folder} ({reason}): the index is kept in memory for "
                f"this session. {fix}"
            )
            return ChunkStore(None, self.warnings.append)

    @property
    def owns_folder(self) -> bool:
        """Whether this process writes the index folder (else it deletes nothing there, ever)."""
        return self.writer_lock is not None and self.store.path is not None

    def _go_private(self, reason: str) -> None:
        """Stop sharing the other process's index: index into memory instead."""
        self.store.close()
        self.store, self.shared = ChunkStore(None, self.warnings.append), False
        self.warnings.append(
            f"Another CodeSieve process writes this workspace's index and {reason}: "
            "this one keeps its own index in memory for the session."
        )

    def _take_over(self) -> bool:
        """Shared: become the writer if the writing process is gone. True when this one writes."""
        if not self.shared:
            return True
        lock = FileLock(self.folder / WRITER_LOCK)
        try:
            lock.acquire(timeout=0)
        except (Timeout, OSError):
            return False
        self.writer_lock, self.shared = lock, False
        self._reset_if_stale()
        self.vectors.refresh(self.store, self.seen_generation)
        return True

    def refresh(self) -> IndexReport:
        """Shared: take in what the writing process committed since the last look."""
        started = time.perf_counter()
        self._catch_up()
        return IndexReport(
            files_total=len(self.store.files()),
            chunks_total=len(self.vectors),
            seconds=time.perf_counter() - started,
        )

    def _catch_up(self) -> None:
        """Shared: replay the writer's commits into the graph (one query when there are none)."""
        generation = self.store.generation
        if self.shared and generation != self.seen_generation:
            if self.store.get_meta("model_id") not in (None, self.model.model_id):
                raise WorkspaceError(
                    "Another CodeSieve process re-indexed this workspace with another model; "
                    "reindex (or restart) to use this one's."
                )
            self.vectors.refresh(self.store, self.seen_generation)
            self.seen_generation = generation

    def _reset_if_stale(self) -> None:
        """Start over for another model; upgrade an index of an earlier schema in place; have every
        file chunked again when the chunker changed since the index was made."""
        model_id, schema = self.store.get_meta("model_id"), self.store.get_meta("schema")
        if model_id == self.model.model_id and schema in UPGRADABLE_SCHEMAS:
            if schema != SCHEMA_VERSION or not self.store.lexical_ready:
                self.store.fill_lexical()  # made before the lexical table, or by another version's words
            if not self.store.chunked_as_now:
                self.store.chunk_again()
            return
        if model_id is not None:
            self.warnings.append(
                f"The index was built with another model ({model_id}); rebuilding it for {self.model.model_id}."
            )
        # informational; a folder name that is not UTF-8 keeps its bytes as escapes
        self.store.reset(self.model.model_id, os.fsencode(self.root).decode("utf-8", "backslashreplace"))
        if self.owns_folder:  # an index in memory (a read-only fallback) leaves the folder's files alone
            for snapshot in self.folder.glob("vectors-*.hnsw"):
                snapshot.unlink(missing_ok=True)

    def close(self) -> None:
        self.store.close()
        self._release()

    def _release(self) -> None:
        if self.writer_lock is not None:
            self.writer_lock.release()
            self.writer_lock = None

    # indexing -----------------------------------------------------------------------------------
    def sync(self, progress: OnProgress | None = None, cancelled: Cancelled | None = None) -> IndexReport:
        """Index everything that changed since the last run (the whole folder the first time).

        Shared: another process indexes; this takes in its work instead (see the module doc).
        """
        if not self._take_over():
            return self.refresh()
        return self.indexer.sync(progress, cancelled)

    def update_paths(self, paths: Sequence[str | Path], cancelled: Cancelled | None = None) -> IndexReport:
        """Re-index just these files (absolute or workspace-relative); deleted ones are dropped."""
        if not self._take_over():
            return self.refresh()
        return self.indexer.update_paths([self.relative(path) for path in paths], cancelled)

    @property
    def is_empty(self) -> bool:
        return not self.store.files()

    def relative(self, path: str | Path) -> str:
        """A workspace-relative POSIX path; WorkspaceError for a path outside the workspace.

        `..` is resolved first, so it never leads out. The folders on the way are resolved (a path
        through a symlinked root is inside), the last part is not: a symlink keeps its own path.
        """
        candidate = Path(os.path.normpath(self.root / path))
        for form in (candidate, real_path(candidate, last=False)):
            if form is not None and form.is_relative_to(self.root):
                return form.relative_to(self.root).as_posix()
        raise WorkspaceError(f"{path} is not inside the workspace {self.root}")

    def readable(self, path: str | Path) -> str:
        """`relative(path)` for a file to read: also its real path (symlinks resolved) must be inside."""
        relpath = self.relative(path)
        real = real_path(Path(os.path.normpath(self.root / relpath)))
        if real is None or not real.is_relative_to(self.root):
            raise WorkspaceError(f"{path} is not inside the workspace {self.root}")
        return relpath

    # search -------------------------------------------------------------------------------------
    def allowed_labels(self, filters: Filters) -> list[int] | None:
        """Labels that pass the filters, or None when there are no filters."""
        if not filters:
            return None
        paths: list[str] | None = None
        if filters.include or filters.exclude:
            include = path_globs(filters.include, "include") if filters.include else None
            exclude = path_globs(filters.exclude, "exclude") if filters.exclude else None
            paths = [
                path
                for path in self.store.files()
                if (include is None or include.match_file(path))
                and not (exclude and exclude.match_file(path))
            ]
        return self.store.labels_where(filters.languages or None, paths)

    def search(
        self,
        query: str,
        *,
        limit: int = 20,
        rerank: bool = True,
        filters: Filters = Filters(),
        include_tests: bool = False,
    ) -> SearchResult:
        """The cascade over this workspace's index; test code after implementation unless `include_tests`."""
        if not query.strip():
            raise WorkspaceError("The query is empty: type what the code should do.")
        self._catch_up()
        return self.cascade.search(
            query,
            limit=limit,
            retrieve_depth=self.config.retrieve_depth,
            rerank_depth=self.config.rerank_depth,
            rerank=rerank,
            allowed=self.allowed_labels(filters),
            include_tests=include_tests,
        )

    def chunk_at(self, path: str | Path, line: int, text: str | None = None) -> Chunk:
        """The function, method or class around a 1-based line, from `text` or the file on disk."""
        return chunk_in_file(self.root, self.readable(path), line, text, self.config.max_file_size)

    def similar_to(
        self,
        code: str,
        *,
        limit: int = 20,
        filters: Filters = Filters(),
        exclude: Chunk | None = None,
        include_tests: bool = False,
    ) -> SearchResult:
        """Chunks whose embedding is nearest to `code` (retriever only: the ranker reads queries); test
        code after implementation unless `include_tests`."""
        if not code.strip():
            raise WorkspaceError("There is no code to compare with.")
        self._catch_up()
        vector = self.retriever.encode_code([code])[0]
        # twins fold into one hit (`collapse_twins`): enough neighbours that `limit` hits remain
        depth = (limit + 5 if include_tests else max(limit + 5, SIMILAR_DEPTH)) + TWIN_WINDOW
        result = self.cascade.by_vector(
            vector, depth=depth, allowed=self.allowed_labels(filters), include_tests=include_tests
        )
        if exclude is not None:
            result.hits = [hit for hit in result.hits if not _same_chunk(hit, exclude)]
        result.hits = collapse_twins(result.hits)[:limit]
        result.stats.note = "similar code: retriever only"
        return result

    def similar_at(
        self,
        path: str | Path,
        line: int,
        *,
        limit: int = 20,
        text: str | None = None,
        include_tests: bool = False,
    ) -> SearchResult:
        """Code similar to the function around `path:line`; that function itself is left out."""
        chunk = self.chunk_at(path, line, text)
        return self.similar_to(chunk.text, limit=limit, exclude=chunk, include_tests=include_tests)

    # status ------------------------------------------------------------------------------------
    def summary(self) -> WorkspaceSummary:
        """What every status shows of this workspace: its model, its index and their warnings."""
        return WorkspaceSummary(
            model=self.model.card.name,
            index_path=str(self.folder),
            shared_index=self.shared,
            ranker=self.ranker is not None,
            vector_search=VECTOR_BACKEND,
            files=len(self.store.files()),
            chunks=self.store.chunk_count(),
            warnings=tuple(self.warnings),
        )

    def status(self, check_staleness: bool = False) -> dict[str, Any]:
        """Model, index size and location; with `check_staleness`, how many files changed on disk."""
        status: dict[str, Any] = {
            "root": str(self.root),
            **self.summary().to_json(),
            "modelPath": str(self.model.path),
            "indexBytes": sum(path.stat().st_size for path in self.folder.glob("*") if path.is_file()),
        }
        if check_staleness:
            files = self.store.files()
            scan = scan_workspace(
                self.root, max_file_size=self.config.max_file_size, exclude=self.config.exclude
            )
            on_disk = {file.path: file for file in scan.files}
            changed = sum(
                1
                for path, file in on_disk.items()
                if path not in files or (files[path].size, files[path].mtime_ns) != (file.size, file.mtime_ns)
            )
            status["stale"] = {"changed": changed, "deleted": sum(1 for path in files if path not in on_disk)}
        return status


def real_path(path: Path, last: bool = True) -> Path | None:
    """`path` with symlinks and `..` resolved (only its folders' when not `last`); None when it cannot
    be (a loop, a NUL, a name too long)."""
    try:
        return path.resolve() if last else path.parent.resolve() / path.name
    except (OSError, RuntimeError, ValueError):
        return None


def describe_error(error: BaseException, pointer: str) -> str:
    """A message for the user: CodeSieve's own errors already say what to do; others name their type
    and `pointer`, where the details are."""
    if isinstance(error, ModelError | WorkspaceError | SourceError):
        return str(error)
    return f"{type(error).__name__}: {error} ({pointer})"


def chunk_in_file(root: Path, relpath: str, line: int, text: str | None, max_file_size: int) -> Chunk:
    """The chunk around a 1-based line of `text`, else of the file on disk: the smallest definition
    that holds the line, else a line window; WorkspaceError when the file cannot be read.

    `text` (an editor's unsaved document) may be larger than max_file_size, which it may have
    outgrown since it was saved, but not without bound: a 50 MB buffer took two minutes and 1.6 GB.
    """
    limit = open_document_limit(max_file_size)
    if text is not None and len(text) > limit:
        raise WorkspaceError(
            f"{relpath} has {len(text)} characters in the editor; CodeSieve reads at most {limit} "
            f"({OPEN_DOCUMENT_FACTOR} times max_file_size) of an open document."
        )
    if text is None:
        try:
            text = read_source(root / relpath, max_file_size)
        except SourceError as error:
            raise WorkspaceError(f"Cannot read {relpath}: {error}") from error
        except OSError as error:
            raise WorkspaceError(f"Cannot read {relpath}: {error.strerror}") from error
    lines = len(text.splitlines()) or 1
    if line > lines:
        raise WorkspaceError(
            f"{relpath} has {lines} line{'s' if lines != 1 else ''}: line {line} is past its end."
        )
    chunk = chunk_at_line(chunk_source(relpath, text, language_for_path(relpath)), line)
    if chunk is None:
        raise WorkspaceError(f"{relpath}:{line} is not inside a function, method or class.")
    return chunk


def combined_state(states: Sequence[str]) -> str:
    """One state for many folders: indexing while any is, error only when all are."""
    if any(state == "indexing" for state in states):
        return "indexing"
    if states and all(state == "error" for state in states):
        return "error"
    return "ready"


def _same_chunk(hit: Hit, chunk: Chunk) -> bool:
    return hit.chunk.path == chunk.path and (
        hit.chunk.name == chunk.name or hit.chunk.content_hash == chunk.content_hash
    )
