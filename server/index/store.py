"""The index's source of truth: one SQLite database per workspace.

It holds every indexed file (path, size, mtime, content hash), every chunk (metadata, text and its
embedding) and the model the embeddings came from. Chunk labels are never reused (AUTOINCREMENT),
so a vector graph saved earlier can be brought up to date from the labels alone. Each change is
one transaction, so a process killed at any moment leaves the database as it was before or after
that change. The hnswlib graph (`vector_index.py`) is a cache rebuilt from this database whenever
its snapshot is missing, stale or corrupt. The lexical index (an FTS5 table of each chunk's words,
`lexical.py`) is written in the same transactions as the chunk rows, so it always matches them. An
index made before it existed (schema 1) gets it filled from the stored chunks on open
(`fill_lexical`): nothing is re-embedded.

A database that SQLite cannot read is moved aside (`index.db.corrupt-<time>`) and a fresh one is
started; the caller reports it and re-indexes. When a write fails because the disk is full or the
file became read-only, the database is copied into memory and the write is done there: indexing and
search go on for this session, and `on_fallback` is told why (the copy on disk stays as it was).
A store made with `path=None` lives in memory from the start.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..chunk.chunker import CHUNKING_VERSION, Chunk
from ..model.folder import stat_key
from .lexical import LEXICAL_VERSION, chunk_words

SCHEMA_VERSION = "2"  # 2: the lexical table; a schema-1 index is upgraded in place (fill_lexical)
UPGRADABLE_SCHEMAS = ("1", SCHEMA_VERSION)
MAX_SCORED_POSTINGS = 5_000  # (chunk, word) pairs a lexical search scores at most: bounds its time
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, language TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, sha1 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    label INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, path TEXT NOT NULL,
    language TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, text TEXT NOT NULL,
    content_hash TEXT NOT NULL, generation INTEGER NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_content ON chunks(content_hash);
CREATE INDEX IF NOT EXISTS chunks_generation ON chunks(generation);
CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5(words, content='', tokenize="ascii tokenchars '_.='");
CREATE VIRTUAL TABLE IF NOT EXISTS lexical_vocabulary USING fts5vocab(lexical, 'row');
"""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the index returns it: its label in the vector index plus its metadata."""

    label: int
    id: str
    path: str
    language: str
    kind: str
    name: str
    start_line: int
    end_line: int
    text: str
    content_hash: str


@dataclass(frozen=True)
class FileRecord:
    path: str
    language: str
    size: int
    mtime_ns: int
    sha1: str


@dataclass(frozen=True)
class FileUpdate:
    """A file's new state: its record and its chunks with their vectors (one row per chunk)."""

    record: FileRecord
    chunks: Sequence[Chunk]
    vectors: NDArray[np.float32]


@dataclass
class AppliedChange:
    """Labels a change removed, and labels it added with their vectors (for the vector graph)."""

    removed: list[int] = field(default_factory=list)
    added: list[int] = field(default_factory=list)
    vectors: list[NDArray[np.float32]] = field(default_factory=list)


@dataclass
class StoredVectors:
    """Vectors read from the store: the usable ones with their labels, and the labels of damaged ones."""

    vectors: NDArray[np.float32]
    labels: list[int] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)


# An embedding is L2-normalised when stored; int8 models and float32 rounding stay far inside this.
NORM_TOLERANCE = 1e-3


def stored_vector(blob: bytes, dimension: int) -> NDArray[np.float32] | None:
    """A stored embedding, or None when it is damaged: the wrong size, not finite, not unit length.

    SQLite's own checks do not look inside values: a few bytes of garbage in a page pass
    `integrity_check` and can make a vector enormous (a score of 1e36 would top every search).
    """
    if not isinstance(blob, bytes) or len(blob) != 4 * dimension:
        return None
    vector = np.frombuffer(blob, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        norm = float(np.linalg.norm(vector.astype(np.float64)))
    if not np.isfinite(vector).all() or abs(norm - 1.0) > NORM_TOLERANCE:
        return None
    return vector


# Errors of a write that memory can still take; anything else (a bug, a locked database) propagates. By
# SQLite's primary result code (FULL, READONLY, IOERR, CANTOPEN), and by the message SQLite gives it for
# Pythons before 3.11, whose errors carry no code.
_DISK_ERRORS = {
    13: ("database or disk is full", "the disk is full"),
    8: ("attempt to write a readonly database", "the database is read-only"),
    10: ("disk I/O error", "a disk I/O error"),
    14: ("unable to open database file", "the database cannot be opened"),
}


def disk_error(error: sqlite3.Error) -> str | None:
    """What went wrong, when `error` is one of the disk errors above; else None."""
    code = getattr(error, "sqlite_errorcode", None)
    for primary, (message, reason) in _DISK_ERRORS.items():
        if (code & 0xFF == primary) if code is not None else message in str(error):
            return reason
    return None


CHUNK_COLUMNS = "label, id, path, language, kind, name, start_line, end_line, text, content_hash"


class ChunkStore:
    """Thread-safe access to the workspace database (one connection, serialised by a lock)."""

    def __init__(self, path: Path | None, on_fallback: Callable[[str], None] | None = None) -> None:
        self.path = path  # None: in memory
        self.on_fallback = on_fallback
        self.lock = threading.RLock()
        self.recovered_from: Path | None = None
        self.connection = self._open()

    @classmethod
    def copy_of(cls, path: Path, on_fallback: Callable[[str], None] | None = None) -> ChunkStore | None:
        """A store in memory holding a copy of the database at `path`, which is only read (as an
        immutable file: nothing is written beside it); None when it cannot be read."""
        try:
            source = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)
        except (sqlite3.Error, ValueError):
            return None
        try:
            if source.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                return None
            store = cls(None, on_fallback)
            with store.lock:
                source.backup(store.connection)
                store.connection.executescript(SCHEMA)
            return store
        except sqlite3.Error:
            return None
        finally:
            source.close()

    @property
    def in_memory(self) -> bool:
        return self.path is None

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            return self._connect(":memory:")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect(self.path)
        except sqlite3.OperationalError:  # locked, read-only, unopenable: not corruption
            raise
        except sqlite3.DatabaseError:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            self.recovered_from = aside
            return self._connect(self.path)

    @staticmethod
    def _connect(target: Path | str) -> sqlite3.Connection:
        connection = sqlite3.connect(target, check_same_thread=False, timeout=30, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            if not _checked_before(target):
                if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("quick_check failed")
                _remember_checked(target)
            connection.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        with self.lock:
            self.connection.close()

    def move_to_memory(self, reason: str) -> None:
        """Go on in memory from a copy of the database (a write to the disk failed: `reason`)."""
        with self.lock:
            memory = self._connect(":memory:")
            self.connection.backup(memory)
            self.connection.close()
            self.connection, path, self.path = memory, self.path, None
        if self.on_fallback is not None:
            self.on_fallback(
                f"Cannot write the index at {path}: {reason}. Indexing goes on in memory for this session; "
                "free some space (or fix the folder's permissions) and restart to keep the index on disk."
            )

    def _write(self, change: Callable[[sqlite3.Connection], T]) -> T:
        """Run `change` in one transaction; on a disk error, again in memory (see the module doc)."""
        try:
            with self.transaction() as db:
                return change(db)
        except sqlite3.OperationalError as error:
            reason = disk_error(error)
            if reason is None or self.in_memory:
                raise
            self.move_to_memory(f"{reason} ({error})")
        with self.transaction() as db:
            return change(db)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: committed on success, rolled back on any exception."""
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
                self.connection.execute("COMMIT")
            except BaseException:
                if self.connection.in_transaction:  # also when COMMIT itself failed (disk full)
                    self.connection.execute("ROLLBACK")
                raise

    # meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.lock:
            row = self.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def generation(self) -> int:
        """Incremented by every committed change; vector snapshots are named by it."""
        return int(self.get_meta("generation") or 0)

    def reset(self, model_id: str, root: str) -> None:
        """Forget everything (a new model or schema): all rows go, the generation moves on."""
        generation = self.generation + 1

        def write(db: sqlite3.Connection) -> None:
            for table in ("files", "chunks", "meta"):
                db.execute(f"DELETE FROM {table}")
            db.execute("INSERT INTO lexical(lexical) VALUES('delete-all')")
            for key, value in (
                ("schema", SCHEMA_VERSION),
                ("lexical", LEXICAL_VERSION),
                ("chunking", CHUNKING_VERSION),
                ("model_id", model_id),
                ("root", root),
                ("generation", str(generation)),
            ):
                db.execute("INSERT INTO meta VALUES (?, ?)", (key, value))

        self._write(write)

    @property
    def lexical_ready(self) -> bool:
        """Whether the lexical table holds every chunk's words as this version computes them."""
        return self.get_meta("lexical") == LEXICAL_VERSION

    def fill_lexical(self) -> None:
        """(Re)build the lexical table from the stored chunks, in one transaction (an upgrade)."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO lexical(lexical) VALUES('delete-all')")
            rows = db.execute("SELECT label, name, text FROM chunks").fetchall()
            db.executemany(
                "INSERT INTO lexical(rowid, words) VALUES (?, ?)",
                ((label, chunk_words(name, text)) for label, name, text in rows),
            )
            for key, value in (("schema", SCHEMA_VERSION), ("lexical", LEXICAL_VERSION)):
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

        self._write(write)

    def chunk_again(self) -> None:
        """Have every file read and chunked again at the next sync, for a chunker of another
        `CHUNKING_VERSION` (chunks whose text is unchanged keep their vectors), and record this one."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("UPDATE files SET sha1 = '', mtime_ns = -1")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('chunking', ?)", (CHUNKING_VERSION,))

        self._write(write)

    @property
    def chunked_as_now(self) -> bool:
        """Whether the stored chunks are those this version of the chunker cuts."""
        return self.get_meta("chunking") == CHUNKING_VERSION

    # reads ------------------------------------------------------------------------------------
    def files(self) -> dict[str, FileRecord]:
        with self.lock:
            rows = self.connection.execute(
                "SELECT path, language, size, mtime_ns, sha1 FROM files"
            ).fetchall()
        return {row[0]: FileRecord(*row) for row in rows}

    def chunk_count(self) -> int:
        with self.lock:
            return int(self.connection.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunks_by_label(self, labels: Sequence[int]) -> dict[int, StoredChunk]:
        rows: list[Any] = []
        with self.lock:
            for start in range(0, len(labels), 500):
                part = list(labels[start : start + 500])
                marks = ",".join("?" * len(part))
                rows += self.connection.execute(
                    f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE label IN ({marks})", part
                ).fetchall()
        return {int(row[0]): StoredChunk(*row) for row in rows}

    def chunks_of(self, path: str) -> list[StoredChunk]:
        with self.lock:
            rows = self.connection.execute(
                f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE path = ? ORDER BY start_line", (path,)
            ).fetchall()
        return [StoredChunk(*row) for row in rows]

    def labels_where(self, languages: Sequence[str] | None, paths: Iterable[str] | None) -> list[int]:
        """Labels of chunks in the given languages and paths (None = any)."""
        query, parameters = "SELECT label, path FROM chunks", []
        if languages:
            query += f" WHERE language IN ({','.join('?' * len(languages))})"
            parameters = list(languages)
        with self.lock:
            rows = self.connection.execute(query, parameters).fetchall()
        if paths is None:
            return [int(row[0]) for row in rows]
        allowed = set(paths)
        return [int(row[0]) for row in rows if row[1] in allowed]

    def stored_vectors(
        self, key: Literal["content_hash", "id"], values: Iterable[str], dimension: int
    ) -> dict[str, NDArray[np.float32]]:
        """Stored embeddings of any chunks whose `key` column holds one of `values` (reused instead of
        re-embedding); a damaged one (see `stored_vector`) is left out, so its text is embedded again."""
        if key not in ("content_hash", "id"):  # a column name goes into the statement
            raise ValueError(f"no stored vectors by {key!r}")
        wanted = list(set(values))
        found: dict[str, NDArray[np.float32]] = {}
        with self.lock:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                for value, blob in self.connection.execute(
                    f"SELECT {key}, vector FROM chunks WHERE {key} IN ({marks})", part
                ):
                    vector = stored_vector(blob, dimension)
                    if vector is not None:
                        found[value] = vector
        return found

    def vectors_since(self, generation: int, dimension: int) -> StoredVectors:
        """Labels and vectors of chunks written after `generation` (all of them for -1); damaged
        vectors (see `stored_vector`) are left out and their labels listed in `damaged`."""
        with self.lock:
            rows = self.connection.execute(
                "SELECT label, vector FROM chunks WHERE generation > ? ORDER BY label", (generation,)
            ).fetchall()
        found = StoredVectors(vectors=np.zeros((0, dimension), dtype=np.float32))
        vectors = []
        for label, blob in rows:
            vector = stored_vector(blob, dimension)
            if vector is None:
                found.damaged.append(int(label))
            else:
                found.labels.append(int(label))
                vectors.append(vector)
        if vectors:
            found.vectors = np.stack(vectors)
        return found

    def vectors_by_label(self, labels: Sequence[int]) -> dict[int, NDArray[np.float32]]:
        """Stored embeddings of these chunks."""
        found: dict[int, NDArray[np.float32]] = {}
        with self.lock:
            for start in range(0, len(labels), 500):
                part = list(labels[start : start + 500])
                marks = ",".join("?" * len(part))
                for label, blob in self.connection.execute(
                    f"SELECT label, vector FROM chunks WHERE label IN ({marks})", part
                ):
                    found[int(label)] = np.frombuffer(blob, dtype=np.float32)
        return found

    def lexical_search(self, words: Sequence[str], depth: int | None) -> dict[int, float]:
        """BM25 scores (FTS5's: k1 1.2, b 0.75) of the `depth` best chunks holding any of `words` (all
        of them for None); a chunk holding none has no score (it is 0).

        SQLite scores every chunk that holds a query word, so the commonest words are left out, from
        the commonest down, until those left are held at most MAX_SCORED_POSTINGS times (the rarest
        word always stays): they weigh least (the lowest IDF) and cost most. Words in more than half
        the chunks always go: FTS5 gives them an IDF of 1e-6. Below ~5,000 chunks nothing else is left out.
        """
        with self.lock:
            words = self._informative(words)
            if not words:
                return {}
            expression = " OR ".join(f'"{word}"' for word in words)
            rows = self.connection.execute(
                "SELECT rowid, -bm25(lexical) FROM lexical WHERE lexical MATCH ? ORDER BY rank LIMIT ?",
                (expression, -1 if depth is None else depth),
            ).fetchall()
        return {int(label): float(score) for label, score in rows}

    def _informative(self, words: Sequence[str]) -> list[str]:
        """The query words worth scoring (see `lexical_search`), rarest first."""
        if not words:
            return []
        marks = ",".join("?" * len(words))
        counts = dict(
            self.connection.execute(
                f"SELECT term, doc FROM lexical_vocabulary WHERE term IN ({marks})", list(words)
            )
        )
        total = int(self.connection.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
        held = sorted((count, word) for word, count in counts.items() if 0 < count <= total / 2)
        kept: list[str] = []
        postings = 0
        for count, word in held:
            if kept and postings + count > MAX_SCORED_POSTINGS:
                break
            kept.append(word)
            postings += count
        return kept

    def labels_with_word(self, word: str) -> list[int]:
        """Labels of the chunks whose lexical words include `word` (a definition token, say)."""
        with self.lock:
            rows = self.connection.execute(
                "SELECT rowid FROM lexical WHERE lexical MATCH ?", (f'"{word}"',)
            ).fetchall()
        return [int(row[0]) for row in rows]

    def labels(self) -> set[int]:
        """Labels of all stored chunks."""
        with self.lock:
            return {int(row[0]) for row in self.connection.execute("SELECT label FROM chunks")}

    # writes -----------------------------------------------------------------------------------
    def apply(self, updates: Sequence[FileUpdate], deleted_paths: Sequence[str]) -> AppliedChange:
        """Replace the chunks of whole files in one transaction.

        A file's record is written in the same transaction as its chunks, so a file is either fully
        indexed at its new content or still at its old one.
        """

        def write(db: sqlite3.Connection) -> AppliedChange:
            change = AppliedChange()
            generation = int(db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]) + 1
            for path in [*deleted_paths, *(update.record.path for update in updates)]:
                removed = db.execute(
                    "SELECT label, name, text FROM chunks WHERE path = ?", (path,)
                ).fetchall()
                change.removed += [row[0] for row in removed]
                db.executemany(  # a contentless table forgets a row given the words it was indexed with
                    "INSERT INTO lexical(lexical, rowid, words) VALUES('delete', ?, ?)",
                    [(label, chunk_words(name, text)) for label, name, text in removed],
                )
                db.execute("DELETE FROM chunks WHERE path = ?", (path,))
            db.executemany("DELETE FROM files WHERE path = ?", [(path,) for path in deleted_paths])
            for update in updates:
                record = update.record
                db.execute(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                    (record.path, record.language, record.size, record.mtime_ns, record.sha1),
                )
                for chunk, vector in zip(update.chunks, update.vectors, strict=True):
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO chunks (id, path, language, kind, name, start_line, end_line,"
                        " text, content_hash, generation, vector) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            chunk.id,
                            chunk.path,
                            chunk.language,
                            chunk.kind,
                            chunk.name,
                            chunk.start_line,
                            chunk.end_line,
                            chunk.text,
                            chunk.content_hash,
                            generation,
                            np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
                        ),
                    )
                    if cursor.rowcount:  # 0 for a chunk id repeated within one file
                        label = int(cursor.lastrowid or 0)
                        db.execute(
                            "INSERT INTO lexical(rowid, words) VALUES (?, ?)",
                            (label, chunk_words(chunk.name, chunk.text)),
                        )
                        change.added.append(label)
                        change.vectors.append(vector)
            db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
            return change

        return self._write(write)

    def replace_vectors(self, labels: Sequence[int], vectors: NDArray[np.float32]) -> None:
        """Store new embeddings for existing chunks (damaged ones, embedded again): a new generation,
        so processes reading this index take them in."""

        def write(db: sqlite3.Connection) -> None:
            generation = int(db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]) + 1
            rows = [
                (np.ascontiguousarray(vector, dtype=np.float32).tobytes(), generation, int(label))
                for label, vector in zip(labels, vectors, strict=True)
            ]
            db.executemany("UPDATE chunks SET vector = ?, generation = ? WHERE label = ?", rows)
            db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))

        self._write(write)

    def touch(self, records: Sequence[FileRecord]) -> None:
        """Record new mtimes of files whose content did not change (no new generation)."""
        rows = [(record.size, record.mtime_ns, record.path) for record in records]
        self._write(lambda db: db.executemany("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", rows))


# `PRAGMA quick_check` reads the whole database (18 ms at 4,600 chunks, growing with the index), at every
# open. What passed it is remembered beside the database by the file's `stat_key`, as the model files'
# digests are: a database that no write has touched since (any write changes its ctime), and
# with no write-ahead log left over from a process that did not finish, is not checked again.
CHECKED_SUFFIX = ".checked"


def _checked_before(target: Path | str) -> bool:
    if not isinstance(target, Path):
        return False  # in memory
    try:
        wal = Path(f"{target}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return False
        remembered = json.loads(target.with_name(target.name + CHECKED_SUFFIX).read_text(encoding="utf-8"))
        return bool(remembered == stat_key(target))
    except (OSError, ValueError):
        return False


def _remember_checked(target: Path | str) -> None:
    if isinstance(target, Path):
        with contextlib.suppress(OSError):  # a folder that cannot be written checks every time
            target.with_name(target.name + CHECKED_SUFFIX).write_text(json.dumps(stat_key(target)))
