"""Nearest-neighbour search over chunk embeddings with hnswlib, and its crash-safe snapshots.

Where hnswlib is not installed (it needs a compiler), `exact_graph.ExactGraph` answers instead:
exact search with numpy, slower on large indexes; `BACKEND` says which one runs.

Vectors are L2-normalised, so hnswlib's inner-product space ranks by cosine; `score = 1 - distance`.
Labels are the chunk labels of the SQLite store, which holds every vector too: the graph is a
cache. A snapshot is written to a temporary file, flushed and renamed into place under a name that
carries the store generation it reflects and the sha256 of its bytes
(`vectors-<generation>-<sha256[:16]>.hnsw`). On load the newest snapshot whose hash checks out is
read, then brought up to date: labels the store no longer has are deleted, chunks written after its
generation are added (labels are never reused, so nothing else can differ). With no usable
snapshot the graph is rebuilt from the stored vectors. hnswlib does not save `ef`, so it is set
after every load.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..model.folder import DigestCache, sha256_file, sha256_of
from .exact_graph import ExactGraph
from .store import ChunkStore

try:
    import hnswlib

    Graph: Any = hnswlib.Index
    BACKEND = "hnswlib"
except ImportError:  # no wheel for this machine and no compiler to build one: exact search
    Graph = ExactGraph
    BACKEND = "exact (numpy)"

SNAPSHOT_PATTERN = re.compile(r"^vectors-(\d+)-([0-9a-f]{16})\.hnsw$")
M = 16
EF_CONSTRUCTION = 200
MIN_EF = 128
BRUTE_FORCE_LIMIT = 5_000  # filtered searches over at most this many chunks are exact


class VectorIndex:
    """An hnswlib graph that grows as needed, with replace and delete, guarded by a lock."""

    def __init__(self, graph: Any, live: set[int]) -> None:
        self.lock = threading.RLock()
        self.graph = graph
        self.graph.set_ef(MIN_EF)  # hnswlib does not save ef
        self.live = live
        self.damaged: set[int] = set()  # stored chunks whose vector failed validation: not in the graph

    @classmethod
    def empty(cls, dimension: int, capacity: int = 1024) -> VectorIndex:
        """A new graph with room for `capacity` vectors (it grows when full)."""
        graph = Graph(space="ip", dim=dimension)
        graph.init_index(
            max_elements=max(capacity, 16), ef_construction=EF_CONSTRUCTION, M=M, allow_replace_deleted=True
        )
        return cls(graph, set())

    def __len__(self) -> int:
        return len(self.live)

    def add(self, labels: Sequence[int], vectors: NDArray[np.float32]) -> None:
        """Insert or replace vectors under their labels, growing the graph when it is full."""
        if not len(labels):
            return
        with self.lock:
            needed = self.graph.element_count + len(labels)
            if needed > self.graph.get_max_elements():
                self.graph.resize_index(max(needed, 2 * self.graph.get_max_elements()))
            fresh = [index for index, label in enumerate(labels) if label not in self.live]
            if fresh:
                self.graph.add_items(vectors[fresh], np.asarray(labels)[fresh], replace_deleted=True)
            self.live.update(labels)

    def remove(self, labels: Sequence[int]) -> None:
        with self.lock:
            for label in labels:
                if label in self.live:
                    self.graph.mark_deleted(label)
                    self.live.discard(label)

    def search(
        self, query: NDArray[np.float32], k: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """Top `k` (label, cosine) pairs, best first, optionally among `allowed` labels only."""
        with self.lock:
            if allowed is not None:
                allowed = [label for label in allowed if label in self.live]
                if len(allowed) <= BRUTE_FORCE_LIMIT:
                    return self._exact(query, k, allowed)
            count = len(self.live) if allowed is None else len(allowed)
            k = min(k, count)
            if k == 0:
                return []
            self.graph.set_ef(max(MIN_EF, 2 * k))
            permitted: Callable[[int], bool] | None = None
            if allowed is not None:
                allowed_set = set(allowed)
                permitted = allowed_set.__contains__
            try:
                labels, distances = self.graph.knn_query(query.reshape(1, -1), k=k, filter=permitted)
            except RuntimeError:  # too few reachable neighbours under a filter: fall back to exact
                return self._exact(query, k, list(allowed) if allowed is not None else sorted(self.live))
        return [
            (int(label), 1.0 - float(distance))
            for label, distance in zip(labels[0], distances[0], strict=True)
        ]

    def _exact(self, query: NDArray[np.float32], k: int, labels: Sequence[int]) -> list[tuple[int, float]]:
        if not labels:
            return []
        vectors = np.asarray(self.graph.get_items(list(labels)), dtype=np.float32)
        scores = vectors @ query.reshape(-1)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(labels[index]), float(scores[index])) for index in order]

    # snapshots --------------------------------------------------------------------------------
    def save(self, folder: Path, generation: int) -> Path:
        """Write a snapshot for `generation` atomically and remove older ones."""
        temporary = folder / f".vectors-{generation}-{os.getpid()}.tmp"
        try:
            with self.lock:
                self.graph.save_index(str(temporary))
            digest = sha256_file(temporary)
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
            target = folder / f"vectors-{generation}-{digest[:16]}.hnsw"
            temporary.replace(target)
        except (OSError, RuntimeError) as error:  # hnswlib reports a failed write as RuntimeError
            temporary.unlink(missing_ok=True)
            raise OSError(f"cannot write the vector snapshot: {error}") from error
        for old in folder.glob("vectors-*.hnsw"):
            if old != target:
                old.unlink(missing_ok=True)
        return target

    @classmethod
    def open(
        cls,
        folder: Path | None,
        store: ChunkStore,
        dimension: int,
        writer: bool = True,
        digests: DigestCache | None = None,
    ) -> tuple[VectorIndex, int, str]:
        """The graph for the store's current state: (index, snapshot generation used, how it was made).

        `folder` holds the snapshots (None: there are none, the store is in memory). `writer=False`
        for a process that only reads an index another one writes: it leaves that one's files alone.
        `digests` remembers the snapshots' hashes between processes (the check costs 30 ms a start).
        """
        if writer and folder is not None:
            for leftover in folder.glob(".vectors-*.tmp"):  # a snapshot write that was killed
                leftover.unlink(missing_ok=True)
        for generation, path in _snapshots(folder) if folder is not None else []:
            if generation > store.generation:
                continue
            loaded = cls._load(path, dimension, digests)
            if loaded is not None:
                loaded._replay(store, generation)
                return (
                    loaded,
                    generation,
                    f"loaded {path.name}, replayed changes since generation {generation}",
                )
        index = cls.empty(dimension, capacity=store.chunk_count() + 1024)
        index._replay(store, -1)
        return index, -1, "rebuilt from the stored vectors"

    @classmethod
    def _load(cls, path: Path, dimension: int, digests: DigestCache | None = None) -> VectorIndex | None:
        match = SNAPSHOT_PATTERN.match(path.name)
        graph = Graph(space="ip", dim=dimension)
        try:
            if match is None or sha256_of(path, digests)[:16] != match.group(2):
                return None
            graph.load_index(str(path), allow_replace_deleted=True)
        except (OSError, RuntimeError):  # unreadable, or removed by the writing process meanwhile
            return None
        return cls(graph, {int(label) for label in graph.get_ids_list()})  # deleted ones too, until replayed

    def refresh(self, store: ChunkStore, since: int) -> None:
        """Catch up with changes another process wrote to the store after generation `since`."""
        with self.lock:
            self._replay(store, since)

    def _replay(self, store: ChunkStore, since: int) -> None:
        """Bring the graph to the store's state: drop labels it no longer has, add newer chunks."""
        stored = store.labels()
        for label in self.live - stored:
            with contextlib.suppress(RuntimeError):  # it may be marked deleted in the snapshot already
                self.graph.mark_deleted(label)
        self.live &= stored
        found = store.vectors_since(since, self.graph.dim)
        self.add(found.labels, found.vectors)
        self.damaged = (self.damaged | set(found.damaged)) - set(found.labels)
        self.damaged &= stored


def _snapshots(folder: Path) -> list[tuple[int, Path]]:
    """Snapshot files in the folder, newest generation first."""
    found = []
    for path in folder.glob("vectors-*.hnsw"):
        match = SNAPSHOT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)
