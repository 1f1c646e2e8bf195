"""The language server's workspace folders: what it does between its handlers and the Workspaces.

`WorkspaceFolders` holds one `IndexedFolder` per workspace folder and does the asynchronous parts: opening
folders and indexing them in the background with `$/progress`, announcing state changes with
`codeSearch/indexStatus`, applying file changes (debounced), the polling watcher for clients that
cannot watch files, and answering searches across folders (merged by score, limit after merge).
Blocking Workspace calls run on executors, never on the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from ..chunk.chunker import Chunk
from ..config import Settings, from_mapping
from ..errors import WorkspaceError
from ..index.indexer import IndexReport
from ..locations import index_root
from ..search.cascade import Hit, SearchResult, SearchStats, merge_ranked_lists
from ..workspace import SHARED, combined_state, real_path
from .indexed_folder import IndexedFolder, apply_changes, chunk_around, describe
from .protocol import (
    INDEX_STATUS,
    FindRequest,
    SimilarRequest,
    hit_json,
    invalid_params,
    path_of,
    request_failed,
    shown,
    uri_of,
)
from .status import ServerStatus

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkspaceFolders:
    """The server's folders, their indexing, and search across them."""

    def __init__(self, server: LanguageServer, base: Settings) -> None:
        self.server = server
        self.base = base  # from the command line; settings apply over it
        self.config = base
        self.folders: dict[str, IndexedFolder] = {}
        self.nested: dict[str, str] = {}  # URI of a folder inside another -> URI of the one serving it
        self.started = False  # whether `start` ran: folders added since are opened at once
        self.watched_by_client = False
        self.searcher = ThreadPoolExecutor(2, thread_name_prefix="codesieve-search")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tokens = itertools.count(1)
        self._announced: tuple[str, tuple[str, ...]] | None = None
        self._poller: asyncio.Task[None] | None = None

    # settings -----------------------------------------------------------------------------------
    def apply_settings(self, settings: Mapping[str, Any]) -> tuple[bool, list[str]]:
        """Take a settings object; returns whether the Workspaces must reopen, and error messages."""
        config, errors = from_mapping(settings, self.base)
        changed, self.config = not config.same_workspaces(self.config), config
        return changed, errors

    # folders ------------------------------------------------------------------------------------
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
        if uri in self.folders or uri in self.nested:
            return
        folder = IndexedFolder(uri, path_of(uri), self.config)
        outer = self.folder_of(folder.real_root)
        if outer is not None:
            log.info("%s is inside %s: served by it", folder.root, outer.root)
            self.nested[uri] = outer.uri
            folder.retire()
            return
        for inner in [
            other for other in self.folders.values() if other.real_root.is_relative_to(folder.real_root)
        ]:
            log.info("%s is inside %s: served by it from now on", inner.root, folder.root)
            del self.folders[inner.uri]
            self.nested[inner.uri] = uri
            self.spawn(inner.close())
        for inner_uri, outer_uri in self.nested.items():
            if outer_uri not in self.folders:  # its outer folder was just taken over too
                self.nested[inner_uri] = uri
        self.folders[uri] = folder
        if start:
            self.spawn(self._open_and_index(folder))

    def start(self) -> None:
        """Open and index, in the background, the folders added with `start=False`."""
        self.started = True
        for folder in self.folders.values():
            if not folder.started:
                self.spawn(self._open_and_index(folder))

    async def remove_folder(self, uri: str) -> None:
        """Stop serving a folder (its index stays on disk); folders it served get their own again."""
        if self.nested.pop(uri, None) is not None:
            return
        folder = self.folders.pop(uri, None)
        if folder is None:
            return
        await folder.close()
        orphans = sorted((inner for inner, outer in self.nested.items() if outer == uri), key=len)
        for inner in orphans:  # outermost first: deeper ones are nested in it again
            del self.nested[inner]
            self.add_folder(inner, start=self.started)
        await self.announce()

    async def reopen(self) -> None:
        """Reopen every folder with the current config (a new model rebuilds its index)."""
        for folder in self.folders.values():
            folder.config = self.config
            self.spawn(self._open_and_index(folder))

    async def _open_and_index(self, folder: IndexedFolder) -> None:
        folder.started = True
        await self.announce()
        warnings = await folder.open()
        if folder.workspace is not None and folder.workspace.shared:
            log.info("%s: %s", folder.root, SHARED)  # two windows on one folder: normal, nothing to show
        for warning in warnings:
            self.server.window_show_message(
                types.ShowMessageParams(types.MessageType.Warning, f"CodeSieve: {warning}")
            )
        if folder.workspace is None:
            self.server.window_show_message(
                types.ShowMessageParams(types.MessageType.Error, f"CodeSieve: {folder.last_error}")
            )
            await self.announce()
            return
        await self.index(folder)

    async def index(self, folder: IndexedFolder) -> None:
        """Sync one folder with `$/progress` (cancellable); state "indexing" until it ends."""
        workspace = folder.workspace
        if workspace is None:
            return
        folder.state = "indexing"
        await self.announce()
        progress = await self._begin_progress(f"CodeSieve: indexing {folder.root.name}")
        cancel = self.server.work_done_progress.tokens.get(progress) if progress else None
        loop, last = asyncio.get_running_loop(), [-1]

        def on_progress(report: IndexReport) -> None:
            percentage = int(report.fraction * 100)
            if progress is not None and percentage != last[0]:
                last[0] = percentage
                message = f"{report.files_done}/{report.files_total} files"
                value = types.WorkDoneProgressReport(message=message, percentage=percentage, cancellable=True)
                loop.call_soon_threadsafe(self.server.work_done_progress.report, progress, value)

        def cancelled() -> bool:
            return folder.closing.is_set() or (cancel is not None and cancel.cancelled())

        message = "done"
        try:
            report = await folder.run(workspace.sync, on_progress, cancelled)
            folder.state, folder.last_error = "ready", None
            folder.synced_at = datetime.now(UTC).isoformat(timespec="milliseconds")
            message = f"{report.files_total} files, {report.chunks_total} chunks"
            if report.cancelled:
                message = "cancelled: the index has what was done so far; run codeSearch.reindex to finish"
                log.info("indexing %s cancelled", folder.root)
        except Exception as error:
            log.exception("indexing %s failed", folder.root)
            folder.state, folder.last_error = "error", describe(error)
            message = f"failed: {folder.last_error}"
        finally:
            if progress is not None:
                self.server.work_done_progress.end(progress, types.WorkDoneProgressEnd(message=message))
        await self.announce()

    async def _begin_progress(self, title: str) -> str | None:
        """A server-created progress token, begun; None when the client cannot show progress."""
        capabilities = self.server.client_capabilities
        if not (capabilities.window and capabilities.window.work_done_progress):
            return None
        token = f"codesieve-index-{next(self._tokens)}"
        try:
            await self.server.work_done_progress.create_async(token)
        except Exception as error:
            log.warning("the client refused a progress token: %s", error)
            return None
        begin = types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0)
        self.server.work_done_progress.begin(token, begin)
        return token

    async def close(self) -> None:
        """Close every folder (on shutdown)."""
        if self._poller is not None:
            self._poller.cancel()
        for folder in list(self.folders.values()):
            await folder.close()
        self.folders.clear()
        self.searcher.shutdown(wait=False)

    # status ------------------------------------------------------------------------------------
    def _status_now(self) -> dict[str, Any]:
        folders = [folder.status() for folder in list(self.folders.values())]
        return ServerStatus(folders, str(index_root(self.config)), self.nested).to_json()

    async def status(self) -> dict[str, Any]:
        """The `codeSearch/status` payload."""
        return await asyncio.get_running_loop().run_in_executor(self.searcher, self._status_now)

    async def announce(self) -> None:
        """Send `codeSearch/indexStatus` when the state of the server or of a folder changed."""
        states = tuple(folder.state for folder in self.folders.values())
        key = (combined_state(list(states)), states)
        if key == self._announced:
            return
        self._announced = key
        self.server.protocol.notify(INDEX_STATUS, await self.status())

    # client paths ------------------------------------------------------------------------------
    def folder_of(self, path: Path) -> IndexedFolder | None:
        """The innermost folder whose real root holds `path` (a real path: see `locate`)."""
        holders = [folder for folder in self.folders.values() if path.is_relative_to(folder.real_root)]
        return max(holders, key=lambda folder: len(folder.real_root.parts), default=None)

    def locate(self, uri: str) -> tuple[IndexedFolder, Path]:
        """The folder that holds a client's file URI, and the file's real path.

        The path is resolved (`..`, %-escapes, symlinks) before it is compared with the folders, so
        nothing outside them is ever read. A path outside every folder gets InvalidParams whose
        message depends on the URI alone: the same whether such a file exists or not.
        """
        real = real_path(path_of(uri))
        folder = None if real is None else self.folder_of(real)
        if folder is None or real is None:
            raise invalid_params(f"{shown(uri)} is not inside a workspace folder CodeSieve serves.")
        return folder, real

    def file_changed(self, uri: str) -> None:
        """A file was saved, created, changed or deleted: re-index it after a quiet period."""
        try:
            folder, path = self.locate(uri)
        except JsonRpcException:
            log.debug("ignored a change to %s: not a file inside a workspace folder", uri[:200])
            return
        folder.schedule(str(path), lambda ready: self.spawn(self._flush(ready)))

    async def _flush(self, folder: IndexedFolder) -> None:
        paths = folder.take_pending()
        await folder.opened.wait()
        workspace = folder.workspace
        if not paths or workspace is None:
            return
        try:
            report = await folder.run(apply_changes, workspace, paths)
            log.info("updated %d files, dropped %d", report.files_changed, report.files_deleted)
        except Exception:
            log.exception("updating %s failed", paths)

    def start_polling(self) -> None:
        """Watch the folders by re-syncing them (stat-only scan) every `pollInterval` seconds."""
        if self._poller is None:
            self._poller = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval or Settings().poll_interval)
            if self.config.poll_interval <= 0 or self.watched_by_client:
                continue
            for folder in list(self.folders.values()):
                workspace = folder.workspace
                if workspace is None or folder.state != "ready" or folder.queued:
                    continue
                try:
                    report = await folder.run(workspace.sync, None, folder.closing.is_set)
                except Exception:
                    log.exception("polling %s failed", folder.root)
                    continue
                if report.files_changed or report.files_deleted:
                    log.info("poll: %d files changed, %d deleted", report.files_changed, report.files_deleted)

    # search ------------------------------------------------------------------------------------
    async def _usable(self) -> list[IndexedFolder]:
        """Folders that can answer now (waiting for those still opening); errors when none can."""
        if not self.folders:
            raise request_failed("CodeSieve has no workspace folder: open a folder, then search.")
        folders = list(self.folders.values())
        await asyncio.gather(*(folder.opened.wait() for folder in folders))
        usable = [folder for folder in folders if folder.workspace is not None]
        if not usable:
            errors = "; ".join(folder.last_error or "unknown error" for folder in folders)
            raise request_failed(f"CodeSieve cannot search: {errors}")
        return usable

    async def _in_searcher(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        future: ThreadFuture[Any] = self.searcher.submit(partial(function, *args, **kwargs))
        try:
            return await asyncio.wrap_future(future)
        except (WorkspaceError, ValueError) as error:
            raise request_failed(str(error)) from error

    def _answer(self, results: list[tuple[IndexedFolder, SearchResult]], limit: int) -> dict[str, Any]:
        """Merge per-folder results (each keeps its cascade order), cut to `limit`, shape for the wire."""
        codec = self.server.workspace.position_codec
        folder_of = {id(hit): folder for folder, result in results for hit in result.hits}
        open_lines: dict[str, list[str] | None] = {}  # per open document, split once per answer
        merged = merge_ranked_lists([result.hits for _, result in results])
        hits: list[tuple[IndexedFolder, Hit]] = [(folder_of[id(hit)], hit) for hit in merged]
        stats = SearchStats.combined([result.stats for _, result in results])
        body: dict[str, Any] = {
            "hits": [
                hit_json(folder.root, hit, codec, self._open_line(folder, hit, open_lines))
                for folder, hit in hits[:limit]
            ],
            "stats": {
                **stats.to_json(),
                "indexState": combined_state([folder.state for folder, _ in results]),
                "ranker": any(folder.has_ranker for folder, _ in results),
            },
        }
        return body

    def _open_line(
        self, folder: IndexedFolder, hit: Hit, open_lines: dict[str, list[str] | None]
    ) -> str | None:
        """The hit's last line as the editor has it, when the file is open there."""
        uri = hit_uri(folder, hit)
        if uri not in open_lines:
            text = self.open_text(uri)
            open_lines[uri] = text.split("\n") if text is not None else None
        lines = open_lines[uri]
        if lines is None:
            return None
        return lines[hit.chunk.end_line - 1] if hit.chunk.end_line <= len(lines) else None

    def open_text(self, uri: str) -> str | None:
        """A document's text as the editor has it, if open (pygls keys documents by unquoted URI)."""
        document = self.server.workspace.text_documents.get(unquote(uri))
        return document.source if document is not None else None

    async def find(self, request: FindRequest) -> dict[str, Any]:
        """`codeSearch/find` across folders; cancellation is checked between folders."""
        results = []
        for folder in await self._usable():
            workspace = folder.workspace
            if workspace is None:
                continue
            search = partial(
                workspace.search,
                request.query,
                limit=request.limit,
                rerank=request.rerank,
                include_tests=request.include_tests,
            )
            results.append((folder, await self._in_searcher(search, filters=request.filters)))
        return self._answer(results, request.limit)

    async def find_similar(self, request: SimilarRequest) -> dict[str, Any]:
        """`codeSearch/findSimilar` by code, or by the function at a position (left out of the hits)."""
        folders = await self._usable()
        code, own, home = request.code, None, None
        if code is None:
            home, path = self.locate(str(request.uri))
            if home.workspace is None:
                raise request_failed(f"{home.root} could not be opened: {home.last_error}")
            text = self.open_text(str(request.uri))
            own = await self._in_searcher(home.workspace.chunk_at, path, request.line + 1, text)
            code = own.text
        results = []
        for folder in folders:
            workspace = folder.workspace
            if workspace is None:
                continue
            exclude: Chunk | None = own if folder is home else None
            similar = partial(
                workspace.similar_to,
                code,
                limit=request.limit,
                filters=request.filters,
                include_tests=request.include_tests,
            )
            results.append((folder, await self._in_searcher(similar, exclude=exclude)))
        return self._answer(results, request.limit)

    async def chunk_at(self, uri: str, line: int) -> Chunk | None:
        """The function, method or class around a 0-based line of a document, if any (no model needed).

        None outside the workspace folders, whether the file exists or not (see `locate`)."""
        try:
            folder, path = self.locate(uri)
        except JsonRpcException:
            return None
        text = self.open_text(uri)
        find = partial(chunk_around, folder.real_root, path, line + 1, text, self.config.max_file_size)
        return await asyncio.get_running_loop().run_in_executor(self.searcher, find)


def hit_uri(folder: IndexedFolder, hit: Hit) -> str:
    """The file URI of a hit."""
    return uri_of(folder.root / hit.chunk.path)
