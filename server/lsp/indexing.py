"""Opening a workspace folder and indexing it, shown to the client as `$/progress`.

The sync runs on the folder's own worker (indexed_folder.py); its progress reports come from that
thread and reach the client through the event loop. The user can cancel from the progress UI; the
index then keeps what was done so far.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import datetime, timezone

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..index.indexer import IndexReport
from ..workspace import SHARED
from .indexed_folder import IndexedFolder, describe
from .status_reporter import StatusReporter

log = logging.getLogger(__name__)


class IndexRunner:
    """Opens and indexes folders with `$/progress`, announcing each change of state."""

    def __init__(self, server: LanguageServer, reporter: StatusReporter) -> None:
        self.server = server
        self.reporter = reporter
        self._tokens = itertools.count(1)

    async def open_and_index(self, folder: IndexedFolder) -> None:
        """Open a folder's Workspace (showing its warnings, or why it failed), then index it."""
        folder.started = True
        await self.reporter.announce()
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
            await self.reporter.announce()
            return
        await self.index(folder)

    async def index(self, folder: IndexedFolder) -> None:
        """Sync one folder with `$/progress` (cancellable); state "indexing" until it ends."""
        workspace = folder.workspace
        if workspace is None:
            return
        folder.state = "indexing"
        await self.reporter.announce()
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
            folder.synced_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
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
        await self.reporter.announce()

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
