"""One workspace folder as the language server holds it: its Workspace, its state, its worker.

Every call that writes to a folder's index (open, sync, update, close) runs on the folder's own
single-thread executor, so two of them never overlap; searches run elsewhere and read while it
writes (the store and the vector index lock themselves). File events are collected and applied
after a quiet period (`DEBOUNCE_SECONDS`), as one update.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ..chunk.chunker import Chunk
from ..config import Settings
from ..errors import WorkspaceError
from ..index.indexer import IndexReport
from ..workspace import Workspace, chunk_in_file, describe_error, real_path
from .status import FolderStatus

DEBOUNCE_SECONDS = 0.3

log = logging.getLogger(__name__)
T = TypeVar("T")


def apply_changes(workspace: Workspace, paths: list[str]) -> IndexReport:
    """Re-index changed or deleted files; a created or deleted folder makes it a (stat-only) sync."""
    known = workspace.store.files()
    relpaths: list[str] = []
    for path in paths:
        try:
            relpath = workspace.relative(path)
        except WorkspaceError:
            continue
        absolute = workspace.root / relpath
        if absolute.is_dir() or (relpath not in known and not absolute.exists()):
            return workspace.sync()
        relpaths.append(relpath)
    return workspace.update_paths(relpaths) if relpaths else IndexReport()


def chunk_around(root: Path, path: Path, line: int, text: str | None, max_file_size: int) -> Chunk | None:
    """The definition around a 1-based line of `text` (else the file on disk); None outside any."""
    try:
        chunk = chunk_in_file(root, path.relative_to(root).as_posix(), line, text, max_file_size)
    except (ValueError, WorkspaceError):
        return None
    return chunk if chunk.kind != "window" else None


def describe(error: BaseException) -> str:
    """A message for the user: Workspace errors already say what to do; others get a pointer."""
    return describe_error(error, "see the server log on stderr; `codeSearch.reindex` retries")


class IndexedFolder:
    """A workspace folder: its Workspace (once open), its state and its index worker."""

    def __init__(self, uri: str, root: Path, config: Settings) -> None:
        self.uri = uri
        self.root = root
        self.real_root = real_path(root) or root  # what client paths are checked against
        self.config = config
        self.workspace: Workspace | None = None
        self.state = "indexing"  # "indexing" | "ready" | "error"; opening counts as indexing
        self.last_error: str | None = None
        self.synced_at: str | None = None  # when a sync last finished (ISO 8601, UTC)
        self.opened = asyncio.Event()  # set once opening has finished, whether it worked or not
        self.closing = threading.Event()  # asks a running sync to stop
        self.started = False  # whether opening has begun
        self.queued = 0  # jobs submitted to the worker and not yet finished
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"codesieve-index-{root.name}")
        self._pending: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def has_ranker(self) -> bool:
        """Whether this folder's model can rerank (a model folder with ranker.onnx)."""
        return self.workspace is not None and self.workspace.ranker is not None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking index work on this folder's worker thread."""
        self.queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, partial(function, *args))
        finally:
            self.queued -= 1

    async def open(self) -> list[str]:
        """Open (or reopen) the Workspace; returns its warnings. On failure: state "error"."""
        self.opened.clear()
        old, self.workspace = self.workspace, None
        self.state, self.last_error = "indexing", None
        try:
            if old is not None:
                await self.run(old.close)
            self.workspace = await self.run(Workspace, self.root, self.config)
            return list(self.workspace.warnings)
        except Exception as error:
            log.exception("cannot open %s", self.root)
            self.state, self.last_error = "error", describe(error)
            return []
        finally:
            self.opened.set()

    def schedule(self, path: str, flush: Callable[[IndexedFolder], None]) -> None:
        """Remember a changed path; `flush(self)` runs once no change came for DEBOUNCE_SECONDS."""
        self._pending.add(path)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(DEBOUNCE_SECONDS, flush, self)

    def take_pending(self) -> list[str]:
        """The paths changed since the last call, in no particular order."""
        paths, self._pending, self._timer = sorted(self._pending), set(), None
        return paths

    def retire(self) -> None:
        """Let go of a folder that was never opened (its worker thread)."""
        self._worker.shutdown(wait=False)

    async def close(self) -> None:
        """Stop the running sync, close the index and the worker."""
        self.closing.set()
        if self._timer is not None:
            self._timer.cancel()
        workspace, self.workspace = self.workspace, None
        if workspace is not None:
            await self.run(workspace.close)
        self._worker.shutdown(wait=False)

    def status(self) -> FolderStatus:
        """This folder's part of `codeSearch/status` (reads the store: call off the event loop)."""
        summary = self.workspace.summary() if self.workspace is not None else None
        return FolderStatus(self.uri, str(self.root), self.state, summary, self.synced_at, self.last_error)
