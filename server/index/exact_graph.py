"""Exact nearest-neighbour search with numpy, for machines where hnswlib cannot be installed.

hnswlib publishes no wheels: without a C++ compiler and the Python headers it does not install. Then
`vector_index.py` uses `ExactGraph` instead: the part of `hnswlib.Index`'s interface that the vector
index uses, answered by a matrix product over every live vector. The results are the exact top k
(hnswlib's are approximate), and the time grows with the index (`bench/scale.py --exact` measures it).
Snapshots are numpy archives under the same names, so an index written by one backend and opened by
the other fails its load and is rebuilt from the stored vectors, as any unreadable snapshot is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


class ExactGraph:
    """Vectors in rows of one matrix, a row per label ever added; deleted rows are masked out."""

    def __init__(self, space: str, dim: int) -> None:
        if space != "ip":
            raise ValueError(f"ExactGraph ranks by inner product only, not {space!r}")
        self.dim = dim
        self.count = 0  # rows in use; the arrays hold room for more, doubled when full
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._labels = np.zeros(0, dtype=np.int64)
        self._deleted = np.zeros(0, dtype=bool)
        self.rows: dict[int, int] = {}

    @property
    def vectors(self) -> NDArray[np.float32]:
        return self._vectors[: self.count]

    @property
    def labels(self) -> NDArray[np.int64]:
        return self._labels[: self.count]

    @property
    def deleted(self) -> NDArray[np.bool_]:
        return self._deleted[: self.count]

    def init_index(self, max_elements: int, **_: Any) -> None:
        self.resize_index(max_elements)

    @property
    def element_count(self) -> int:
        return self.count

    def get_max_elements(self) -> int:
        return len(self._labels)

    def resize_index(self, size: int) -> None:
        if size > len(self._labels):
            grown = size - len(self._labels)
            self._vectors = np.concatenate([self._vectors, np.zeros((grown, self.dim), dtype=np.float32)])
            self._labels = np.concatenate([self._labels, np.zeros(grown, dtype=np.int64)])
            self._deleted = np.concatenate([self._deleted, np.zeros(grown, dtype=bool)])

    def set_ef(self, ef: int) -> None:
        """Nothing to tune: the search is exact."""

    def add_items(self, vectors: NDArray[np.float32], labels: Sequence[int], **_: Any) -> None:
        """Add vectors under new labels, or put them back under labels added before."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        for vector, label in zip(vectors, (int(label) for label in labels), strict=True):
            row = self.rows.get(label)
            if row is None:
                if self.count == len(self._labels):
                    self.resize_index(max(16, 2 * self.count))
                row = self.rows[label] = self.count
                self._labels[row] = label
                self.count += 1
            self._vectors[row] = vector
            self._deleted[row] = False

    def mark_deleted(self, label: int) -> None:
        row = self.rows.get(int(label))
        if row is None or self.deleted[row]:
            raise RuntimeError(f"label {label} is not in the index")  # as hnswlib says it
        self._deleted[row] = True

    def get_ids_list(self) -> list[int]:
        return [int(label) for label in self.labels]

    def get_items(self, labels: Sequence[int]) -> NDArray[np.float32]:
        return self.vectors[[self.rows[int(label)] for label in labels]]

    def knn_query(
        self, query: NDArray[np.float32], k: int = 1, filter: Callable[[int], bool] | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The k best (labels, distances = 1 - inner product), as hnswlib returns them, for one query."""
        live = ~self.deleted
        if filter is not None:
            live &= np.fromiter((filter(int(label)) for label in self.labels), dtype=bool, count=self.count)
        rows = np.flatnonzero(live)
        if len(rows) < k:
            raise RuntimeError("fewer live vectors than asked for")
        scores = (self.vectors @ np.asarray(query, dtype=np.float32).reshape(-1))[
            rows
        ]  # no copy of the matrix
        best = np.argpartition(-scores, k - 1)[:k] if k < len(rows) else np.arange(len(rows))
        best = best[np.lexsort((self.labels[rows[best]], -scores[best]))]
        return self.labels[rows[best]].reshape(1, -1), (1.0 - scores[best]).reshape(1, -1)

    def save_index(self, path: str) -> None:
        with Path(path).open("wb") as handle:
            np.savez(handle, vectors=self.vectors, labels=self.labels, deleted=self.deleted)

    def load_index(self, path: str, **_: Any) -> None:
        try:
            with np.load(path, allow_pickle=False) as stored:
                vectors, labels, deleted = stored["vectors"], stored["labels"], stored["deleted"]
        except (OSError, ValueError, KeyError) as error:  # an hnswlib snapshot, or a damaged file
            raise RuntimeError(f"not a snapshot of exact search: {error}") from error
        if (
            vectors.ndim != 2
            or vectors.shape[1] != self.dim
            or not len(vectors) == len(labels) == len(deleted)
        ):
            raise RuntimeError("the snapshot's shapes do not match")
        self._vectors = vectors.astype(np.float32)
        self._labels, self._deleted = labels.astype(np.int64), deleted.astype(bool)
        self.count = len(labels)
        self.rows = {int(label): row for row, label in enumerate(self._labels)}
