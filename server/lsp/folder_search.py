"""Searching across the workspace folders, and shaping the answer for the wire.

Each folder's Workspace searches on the shared search executor, one folder after another (so a
cancelled request stops between folders); the per-folder results are merged by score and cut to the
limit after the merge. A hit in a file open in the editor carries the line as the editor has it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import unquote

from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from ..chunk.chunker import Chunk
from ..errors import WorkspaceError
from ..search.cascade import Hit, SearchResult, SearchStats, merge_ranked_lists
from ..workspace import combined_state
from .folder_set import FolderSet
from .indexed_folder import IndexedFolder, chunk_around
from .protocol import FindRequest, SimilarRequest, hit_json, request_failed, uri_of


class FolderSearch:
    """`codeSearch/find`, `codeSearch/findSimilar` and the code action's lookup, across every folder."""

    def __init__(self, server: LanguageServer, folders: FolderSet, searcher: ThreadPoolExecutor) -> None:
        self.server = server
        self.folders = folders
        self.searcher = searcher

    async def _usable(self) -> list[IndexedFolder]:
        """Folders that can answer now (waiting for those still opening); errors when none can."""
        if not self.folders.served:
            raise request_failed("CodeSieve has no workspace folder: open a folder, then search.")
        folders = list(self.folders.served.values())
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
            home, path = self.folders.locate(str(request.uri))
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

        None outside the workspace folders, whether the file exists or not (see `FolderSet.locate`)."""
        try:
            folder, path = self.folders.locate(uri)
        except JsonRpcException:
            return None
        text = self.open_text(uri)
        find = partial(
            chunk_around, folder.real_root, path, line + 1, text, self.folders.config.max_file_size
        )
        return await asyncio.get_running_loop().run_in_executor(self.searcher, find)


def hit_uri(folder: IndexedFolder, hit: Hit) -> str:
    """The file URI of a hit."""
    return uri_of(folder.root / hit.chunk.path)
