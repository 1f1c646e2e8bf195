"""The server's status as the client sees it: `codeSearch/status` on request, `codeSearch/indexStatus` on change.

Reading a status reads every folder's store, so it runs on an executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pygls.lsp.server import LanguageServer

from ..locations import index_root
from ..workspace import combined_state
from .folder_set import FolderSet
from .protocol import INDEX_STATUS
from .status import ServerStatus


class StatusReporter:
    """Answers `codeSearch/status` and announces each change of state with `codeSearch/indexStatus`."""

    def __init__(self, server: LanguageServer, folders: FolderSet, executor: ThreadPoolExecutor) -> None:
        self.server = server
        self.folders = folders
        self.executor = executor  # shared with the searches
        self._announced: tuple[str, tuple[str, ...]] | None = None

    def _status_now(self) -> dict[str, Any]:
        folders = [folder.status() for folder in list(self.folders.served.values())]
        return ServerStatus(folders, str(index_root(self.folders.config)), self.folders.nested).to_json()

    async def status(self) -> dict[str, Any]:
        """The `codeSearch/status` payload."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._status_now)

    async def announce(self) -> None:
        """Send `codeSearch/indexStatus` when the state of the server or of a folder changed."""
        states = tuple(folder.state for folder in self.folders.served.values())
        key = (combined_state(list(states)), states)
        if key == self._announced:
            return
        self._announced = key
        self.server.protocol.notify(INDEX_STATUS, await self.status())
