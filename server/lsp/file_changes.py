"""Keeping the indexes in step with the files on disk: the client's file events, or polling.

Events are collected per folder and applied after a quiet period (`IndexedFolder.schedule`), as one
update on the folder's worker. A client that cannot watch files gets a poller instead, which re-syncs
each ready folder (a stat-only scan) every `pollInterval` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from pygls.exceptions import JsonRpcException

from ..config import Settings
from .folder_set import FolderSet
from .indexed_folder import IndexedFolder, apply_changes

log = logging.getLogger(__name__)


class ChangeWatcher:
    """Re-indexes changed files after a quiet period, and polls the folders when the client does not watch."""

    def __init__(self, folders: FolderSet, spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self.folders = folders
        self.spawn = spawn  # runs a flush in the background
        self.watched_by_client = False
        self._poller: asyncio.Task[None] | None = None

    def file_changed(self, uri: str) -> None:
        """A file was saved, created, changed or deleted: re-index it after a quiet period."""
        try:
            folder, path = self.folders.locate(uri)
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

    def stop(self) -> None:
        """Stop polling (on shutdown)."""
        if self._poller is not None:
            self._poller.cancel()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.folders.config.poll_interval or Settings().poll_interval)
            if self.folders.config.poll_interval <= 0 or self.watched_by_client:
                continue
            for folder in list(self.folders.served.values()):
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
