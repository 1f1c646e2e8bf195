"""The folders `codesieve mcp` searches: where they come from, their Workspaces, their indexing.

The folders are those named on the command line, else the client's MCP roots (asked for at every
tool call, so a client that changes its roots is followed), else the working directory. A folder
inside another is searched as part of the outer one. Each folder has one `Workspace`, opened and
indexed in the background as soon as the folder is known, on the same index as the CLI and the
language server (same location, same writer lock: a second process reads the first one's index).

Every call that writes a folder's index (open, sync, close) runs on that folder's own lane, a thread
limiter of one, so two never overlap; searches run on other threads and read while it writes.
Before a search a folder picks up the files changed since the last one (a sync: stat-only when
nothing changed) and waits for it at most `FRESH_SECONDS` from its start; past that, and while the
first index is being built, searches answer from what is indexed so far and say so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from .config import Settings
from .errors import WorkspaceError
from .index.indexer import IndexReport
from .workspace import Workspace, combined_state, describe_error, real_path

FRESH_SECONDS = 2.0  # longest a search waits, from a sync's start, for its folder to be up to date
ROOTS_SECONDS = 5.0  # longest a tool call waits for the client's answer to roots/list
SHOWN_CHARS = 200  # of a path the client sent, quoted back in a refusal

log = logging.getLogger(__name__)
T = TypeVar("T")


def describe(error: BaseException) -> str:
    """A message for the agent: CodeSieve's own errors say what to do; others name their type."""
    return describe_error(error, "run `codesieve mcp --verbose` to log the details on stderr")


def folder_of_uri(uri: str) -> Path | None:
    """The real path of a client root's file:// URI; None for another scheme or a missing folder."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    folder = real_path(Path(url2pathname(unquote(parsed.path))))
    return folder if folder is not None and folder.is_dir() else None


def outermost(folders: Sequence[Path]) -> list[Path]:
    """The folders that are inside no other one of them, in their order, without repeats."""
    unique = list(dict.fromkeys(folders))
    return [
        folder
        for folder in unique
        if not any(other != folder and folder.is_relative_to(other) for other in unique)
    ]


class SearchedFolder:
    """One folder: its Workspace once open, its state, and the sync running on it."""

    def __init__(self, root: Path, config: Settings) -> None:
        self.root = root  # a real path
        self.config = config
        self.workspace: Workspace | None = None
        self.state = "indexing"  # "indexing" | "ready" | "error"; opening counts as indexing
        self.error: str | None = None
        self.progress: IndexReport | None = None  # the running sync's latest report
        self.opened = anyio.Event()  # set once opening has ended, whether it worked or not
        self.closing = threading.Event()  # asks a running sync to stop
        self._lane = anyio.CapacityLimiter(1)
        self._sync_done: anyio.Event | None = None  # the running sync's end
        self._sync_started = 0.0

    async def in_lane(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking index work on this folder's lane (one call at a time)."""
        return await anyio.to_thread.run_sync(partial(function, *args), limiter=self._lane)

    async def open_and_index(self, group: TaskGroup) -> None:
        """Open the Workspace, then index the folder (the first time: all of it)."""
        try:
            self.workspace = await self.in_lane(Workspace, self.root, self.config)
            for warning in self.workspace.warnings:
                log.warning("%s: %s", self.root, warning)
        except Exception as error:
            log.exception("cannot open %s", self.root)
            self.state, self.error = "error", describe(error)
        finally:
            self.opened.set()
        if self.workspace is not None and self.closing.is_set():  # closed while it was opening
            await self.close()
        elif self.workspace is not None:
            self.start_sync(group)

    def start_sync(self, group: TaskGroup) -> anyio.Event:
        """Start a sync unless one runs; returns the event set when the running one ends."""
        if self._sync_done is None:
            self._sync_done, self._sync_started = anyio.Event(), time.monotonic()
            group.start_soon(self._sync, self._sync_done)
        return self._sync_done

    async def _sync(self, done: anyio.Event) -> None:
        workspace = self.workspace
        try:
            if workspace is None or self.closing.is_set():
                return
            self.state = "indexing"
            await self.in_lane(workspace.sync, self._on_progress, self.closing.is_set)
            self.state, self.error = "ready", None
        except Exception as error:
            log.exception("indexing %s failed", self.root)
            self.state, self.error = "error", describe(error)
        finally:
            self.progress, self._sync_done = None, None
            done.set()

    def _on_progress(self, report: IndexReport) -> None:
        self.progress = report  # read by index_status and the searches' notes

    async def fresh(self, group: TaskGroup) -> None:
        """Pick up changed files before a search: wait for a sync up to FRESH_SECONDS from its start."""
        await self.opened.wait()
        if self.workspace is None:
            return
        done = self.start_sync(group)
        with anyio.move_on_after(max(0.0, FRESH_SECONDS - (time.monotonic() - self._sync_started))):
            await done.wait()

    async def close(self) -> None:
        """Stop the running sync (it keeps what it committed) and close the index."""
        self.closing.set()
        if self._sync_done is not None:
            await self._sync_done.wait()
        workspace, self.workspace = self.workspace, None
        if workspace is not None:
            await self.in_lane(workspace.close)

    def status(self) -> dict[str, Any]:
        """This folder's state, model, counts and progress (reads the store: call off the event loop)."""
        status: dict[str, Any] = {"root": str(self.root), "state": self.state}
        if self.workspace is not None:
            summary = self.workspace.summary()
            status |= {"files": summary.files, "chunks": summary.chunks, "model": summary.model}
            status |= {"warnings": list(summary.warnings), "index_path": summary.index_path}
            status["shared_index"] = summary.shared_index
        else:
            status |= {"files": 0, "chunks": 0, "model": None, "warnings": [], "index_path": None}
            status["shared_index"] = False
        report = self.progress
        if self.state == "indexing" and report is not None:
            status["progress"] = {
                "files_done": report.files_done,
                "files_total": report.files_total,
                "chunks_embedded": report.chunks_embedded,
            }
        if self.error:
            status["error"] = self.error
        return status

    def indexing_note(self) -> str | None:
        """What a search answered from this folder should say about its index, if anything."""
        if self.state == "error":
            return f"{self.root}: {self.error}"
        if self.state != "indexing":
            return None
        report = self.progress
        done = f" ({report.files_done} of {report.files_total} files so far)" if report else ""
        return (
            f"{self.root} is being indexed{done}: these hits come from what is indexed so far; "
            "search again later for complete results."
        )


class SearchedFolders:
    """The folders this server searches, opened on first use and closed when they go."""

    def __init__(self, named: Sequence[Path], config: Settings) -> None:
        self.named = outermost([path.resolve() for path in named])
        self.config = config
        self.folders: dict[Path, SearchedFolder] = {}
        self.source = "arguments" if self.named else "working directory"  # where the folders came from
        self._group: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """While the server runs: folders named on the command line are opened at once."""
        async with anyio.create_task_group() as group:
            self._group = group
            if self.named:
                self.serve(self.named)
            try:
                yield
            finally:
                with anyio.CancelScope(shield=True):
                    for folder in list(self.folders.values()):
                        folder.closing.set()
                    for folder in list(self.folders.values()):
                        await folder.close()
                group.cancel_scope.cancel()

    @property
    def group(self) -> TaskGroup:
        if self._group is None:
            raise RuntimeError("SearchedFolders.running() has not started")
        return self._group

    def serve(self, roots: Sequence[Path]) -> list[SearchedFolder]:
        """These folders from now on: new ones are opened and indexed, the others closed."""
        roots = outermost(roots)
        for gone in [root for root in self.folders if root not in roots]:
            self.group.start_soon(self.folders.pop(gone).close)
        for root in roots:
            if root not in self.folders:
                folder = self.folders[root] = SearchedFolder(root, self.config)
                self.group.start_soon(folder.open_and_index, self.group)
        return [self.folders[root] for root in roots]

    async def current(self, session: Any, capabilities: Any) -> list[SearchedFolder]:
        """The folders to search now: the named ones, else the client's roots, else the working directory."""
        if self.named:
            return self.serve(self.named)
        roots = await self._client_roots(session, capabilities)
        self.source = "client roots" if roots else "working directory"
        return self.serve(roots or [Path.cwd().resolve()])

    async def _client_roots(self, session: Any, capabilities: Any) -> list[Path]:
        """The client's roots that are folders on disk; none when it has no roots or does not answer."""
        if capabilities is None or getattr(capabilities, "roots", None) is None:
            return []
        try:
            with anyio.fail_after(ROOTS_SECONDS):
                listed = await session.list_roots()
        except Exception as error:
            log.warning("the client did not list its roots (%s): searching the working directory", error)
            return []
        folders = []
        for root in listed.roots:
            folder = folder_of_uri(str(root.uri))
            if folder is None:
                log.warning("ignored the client root %s: not a local folder", str(root.uri)[:SHOWN_CHARS])
            else:
                folders.append(folder)
        return folders

    def locate(self, path: str, folders: Sequence[SearchedFolder]) -> tuple[SearchedFolder, Path]:
        """The folder that holds `path` (absolute, or relative to a folder) and the file's real path.

        The path is resolved (`..`, symlinks) before it is compared with the folders, so nothing
        outside them is ever read, and a refusal's message depends on `path` alone: it is the same
        whether such a file exists or not.
        """
        candidates: list[tuple[SearchedFolder, Path]] = []
        for folder in folders:
            real = real_path(folder.root / path)
            if real is not None and real.is_relative_to(folder.root):
                candidates.append((folder, real))
        if not candidates:
            shown = path if len(path) <= SHOWN_CHARS else f"{path[:SHOWN_CHARS]}..."
            roots = ", ".join(str(folder.root) for folder in folders)
            raise WorkspaceError(
                f"{shown!r} is not inside the folders this server searches ({roots}): "
                "give a path inside one of them, absolute or relative to it."
            )
        return next((found for found in candidates if found[1].is_file()), candidates[0])

    def status(self, folders: Sequence[SearchedFolder]) -> dict[str, Any]:
        """The index_status answer for these folders (reads the stores: call off the event loop)."""
        each = [folder.status() for folder in folders]
        progress = [folder["progress"] for folder in each if "progress" in folder]
        status: dict[str, Any] = {
            "state": combined_state([folder["state"] for folder in each]),
            "files": sum(folder["files"] for folder in each),
            "chunks": sum(folder["chunks"] for folder in each),
            "model": next((folder["model"] for folder in each if folder["model"]), None),
            "folders_from": self.source,
            "folders": each,
        }
        if progress:
            status["progress"] = {
                key: sum(report[key] for report in progress)
                for key in ("files_done", "files_total", "chunks_embedded")
            }
        return status
