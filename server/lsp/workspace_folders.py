"""The language server's workspace folders: what it does between its handlers and the Workspaces.

`WorkspaceFolders` puts the parts together and runs the folders' lives in the background: a folder
added is opened and indexed (at once, or on `start` once the client is initialized), a removed one
is closed and the folders it served get their own index again, new settings reopen them all.
The parts, one job each: `FolderSet` (which folders are served), `IndexRunner` (opening and indexing
with `$/progress`), `StatusReporter` (`codeSearch/status`, `codeSearch/indexStatus`), `ChangeWatcher`
(debounced file changes, polling) and `FolderSearch` (searches across folders). Blocking Workspace
calls run on executors, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pygls.lsp.server import LanguageServer

from ..config import Settings
from .file_changes import ChangeWatcher
from .folder_search import FolderSearch
from .folder_set import FolderSet
from .indexing import IndexRunner
from .status_reporter import StatusReporter

log = logging.getLogger(__name__)


class WorkspaceFolders:
    """The server's folders and their parts; adds, removes, reopens and closes folders."""

    def __init__(self, server: LanguageServer, base: Settings) -> None:
        self.folders = FolderSet(base)
        self.searcher = ThreadPoolExecutor(2, thread_name_prefix="codesieve-search")
        self.reporter = StatusReporter(server, self.folders, self.searcher)
        self.indexing = IndexRunner(server, self.reporter)
        self.changes = ChangeWatcher(self.folders, self.spawn)
        self.search = FolderSearch(server, self.folders, self.searcher)
        self.started = False  # whether `start` ran: folders added since are opened at once
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine in the background, keeping a reference and logging its failure."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def add_folder(self, uri: str, start: bool = True) -> None:
        """Serve a folder: its state is "indexing" from now; `start` opens and indexes it.

        A folder inside another one is served by the outer one (its files are indexed once, found
        once); one that holds folders already served takes them over.
        """
        folder, taken = self.folders.add(uri)
        for inner in taken:
            self.spawn(inner.close())
        if folder is not None and start:
            self.spawn(self.indexing.open_and_index(folder))

    def start(self) -> None:
        """Open and index, in the background, the folders added with `start=False`."""
        self.started = True
        for folder in self.folders.served.values():
            if not folder.started:
                self.spawn(self.indexing.open_and_index(folder))

    async def remove_folder(self, uri: str) -> None:
        """Stop serving a folder (its index stays on disk); folders it served get their own again."""
        folder = self.folders.remove(uri)
        if folder is None:
            return
        await folder.close()
        for inner in self.folders.release(uri):  # outermost first: deeper ones are nested in it again
            self.add_folder(inner, start=self.started)
        await self.reporter.announce()

    async def reopen(self) -> None:
        """Reopen every folder with the current config (a new model rebuilds its index)."""
        for folder in self.folders.served.values():
            folder.config = self.folders.config
            self.spawn(self.indexing.open_and_index(folder))

    async def close(self) -> None:
        """Stop polling and close every folder (on shutdown)."""
        self.changes.stop()
        await self.folders.close()
        self.searcher.shutdown(wait=False)
