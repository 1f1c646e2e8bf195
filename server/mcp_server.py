"""`codesieve mcp`: CodeSieve's search as tools for coding agents, over the Model Context Protocol (stdio).

Built on the official MCP SDK (`MCPServer`): it speaks the protocol, checks each call's arguments
against the tool's input schema, and turns a `ToolError` into a result with `isError`. The tools
here only check what a schema cannot say and hand the work to the folders (`mcp_folders.py`) and
their Workspaces; blocking work runs on threads, never on the event loop. Each answer has text an
agent reads and `structuredContent` that follows the tool's output schema. Nothing but protocol
messages goes to stdout; logs go to stderr, and only errors unless `--verbose`.
"""

from __future__ import annotations

import inspect
import logging
import re
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from codesieve import __version__

from .chunk.chunker import UNKNOWN_LANGUAGE, Chunk
from .config import Settings
from .errors import WorkspaceError
from .languages import known_languages
from .mcp_folders import SearchedFolder, SearchedFolders, describe
from .model.folder import ModelError
from .scan.safe_read import SourceError
from .search.cascade import Hit, SearchResult, merge_ranked_lists
from .workspace import Filters, path_globs

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
CODE_LINES = 40  # of each hit's code in an answer; the rest is a note that points at the file
CODE_CHARS = 4_000  # and at most this many characters of it (a minified line can be long)
MAX_QUERY_CHARS = 10_000  # the encoder reads a query's first 32 tokens: this bounds work, not what is seen
MAX_CODE_CHARS = 100_000  # a snippet for find_similar_code (the encoder reads its first 128 tokens)
MAX_GLOB_CHARS = 1_000  # pathspec's compile time grows with the square of a glob's length

# The arguments both search tools take.
Limit = Annotated[int, Field(description="number of hits", ge=1, le=MAX_LIMIT)]
IncludeTests = Annotated[
    bool, Field(description="rank test code like any other (by default it comes after the rest)")
]

INSTRUCTIONS = (
    "CodeSieve searches the code of the open folders by meaning, offline. Use search_code with a "
    "sentence that says what the code does ('retry an http request with backoff') when you do not know "
    "the names to grep for; find_similar_code to find code like a given function or snippet; "
    "index_status to see whether the index is complete. Each hit gives path, lines, qualified name, "
    "score and the start of its code."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

log = logging.getLogger(__name__)
T = TypeVar("T")


# output shapes ---------------------------------------------------------------------------------
class CodeHit(BaseModel):
    path: str = Field(description="absolute path of the file")
    start_line: int = Field(description="first line of the hit, 1-based")
    end_line: int = Field(description="last line of the hit, inclusive")
    name: str = Field(description="qualified name: Class.method, or file:start-end for a window of lines")
    kind: str = Field(description="function, method, class, or window (lines outside any definition)")
    language: str
    score: float = Field(description="higher is better; comparable within one answer only")
    code: str = Field(description=f"the hit's code, at most its first {CODE_LINES} lines")
    code_note: str | None = Field(None, description="set when `code` was cut: what was left out")
    also_at: list[str] = Field(
        default_factory=list,
        description="near-copies of this hit (such as its sync/async twin), as path:line",
    )


class CodeAnswer(BaseModel):
    hits: list[CodeHit]
    index_state: str = Field(description="ready, or indexing: the hits come from the part indexed so far")
    note: str | None = Field(None, description="what the agent should know about this answer")


class IndexProgress(BaseModel):
    files_done: int
    files_total: int
    chunks_embedded: int


class FolderStatus(BaseModel):
    root: str
    state: str = Field(description="indexing, ready or error")
    files: int
    chunks: int
    model: str | None
    index_path: str | None
    shared_index: bool = Field(description="another CodeSieve process writes this index; this one reads it")
    progress: IndexProgress | None = None
    warnings: list[str] = []
    error: str | None = None


class IndexStatus(BaseModel):
    state: str = Field(description="indexing while any folder is, error when every folder failed, else ready")
    files: int
    chunks: int
    model: str | None
    progress: IndexProgress | None = Field(
        None, description="while indexing: files done of all, chunks embedded"
    )
    folders_from: str = Field(description="arguments, client roots, or working directory")
    folders: list[FolderStatus]


# shaping answers -------------------------------------------------------------------------------
def code_hit(root: Path, hit: Hit) -> CodeHit:
    """One hit for the agent: its place, its names, and its code cut to the budget."""
    chunk = hit.chunk
    lines = chunk.text.split("\n")
    code, note = "\n".join(lines[:CODE_LINES]), None
    if len(lines) > CODE_LINES:
        note = (
            f"cut to its first {CODE_LINES} of {len(lines)} lines: read lines "
            f"{chunk.start_line + CODE_LINES}-{chunk.end_line} of the file for the rest"
        )
    if len(code) > CODE_CHARS:
        code, note = (
            code[:CODE_CHARS],
            f"cut to its first {CODE_CHARS} characters: read the file for the rest",
        )
    return CodeHit(
        path=str(root / chunk.path),
        start_line=chunk.start_line,
        end_line=chunk.end_line,
        name=chunk.name,
        kind=chunk.kind,
        language=chunk.language,
        score=round(hit.score, 4),
        code=code,
        code_note=note,
        also_at=[f"{root / twin.path}:{twin.start_line}" for twin in hit.twins],
    )


def _fence(code: str) -> str:
    """A Markdown code fence longer than any run of backticks in `code`."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def answer_text(title: str, answer: CodeAnswer) -> str:
    """The answer as an agent reads it: a header line, then each hit's place and code."""
    parts = [f"{title}: {len(answer.hits)} hits (index {answer.index_state})"]
    if answer.note:
        parts.append(f"Note: {answer.note}")
    for number, hit in enumerate(answer.hits, 1):
        fence = _fence(hit.code)
        head = f"{number}. {hit.path}:{hit.start_line}-{hit.end_line}  {hit.name}  ({hit.kind}, score {hit.score})"
        cut = f"\n({hit.code_note})" if hit.code_note else ""
        also = f"\nalso at {', '.join(hit.also_at)}" if hit.also_at else ""
        parts.append(f"{head}\n{fence}{hit.language}\n{hit.code}\n{fence}{cut}{also}")
    return "\n\n".join(parts)


def code_answer(
    title: str, results: Sequence[tuple[SearchedFolder, SearchResult]], limit: int
) -> CallToolResult:
    """Merge the folders' results (each keeps its own order), cut to `limit`, as text and structure."""
    root_of = {id(hit): folder.root for folder, result in results for hit in result.hits}
    merged = merge_ranked_lists([result.hits for _, result in results])[:limit]
    indexing = [note for folder, _ in results if (note := folder.indexing_note())]
    state = "indexing" if any(folder.state == "indexing" for folder, _ in results) else "ready"
    answer = CodeAnswer(
        hits=[code_hit(root_of[id(hit)], hit) for hit in merged],
        index_state=state,
        note=" ".join(indexing) or None,
    )
    return CallToolResult(
        content=[TextContent(type="text", text=answer_text(title, answer))],
        structured_content=answer.model_dump(mode="json"),
    )


# the tools -------------------------------------------------------------------------------------
class CodeSearchTools:
    """The MCP tools; each checks its arguments and hands the work to the folders' Workspaces."""

    def __init__(self, folders: SearchedFolders) -> None:
        self.folders = folders

    async def _searchable(self, ctx: Context) -> list[SearchedFolder]:
        """The folders to search, each up to date (or as far as FRESH_SECONDS allow); errors when none can."""
        folders = await self.folders.current(ctx.session, ctx.client_capabilities)
        for folder in folders:
            await folder.fresh(self.folders.group)
        usable = [folder for folder in folders if folder.workspace is not None]
        if not usable:
            errors = "; ".join(f"{folder.root}: {folder.error or 'unknown error'}" for folder in folders)
            raise ToolError(f"CodeSieve cannot search: {errors}")
        return usable

    async def search_code(
        self,
        query: Annotated[
            str,
            Field(
                description="what the code does, in a sentence or a few words",
                max_length=MAX_QUERY_CHARS,
            ),
        ],
        ctx: Context,
        path: Annotated[
            str | None,
            Field(
                description="only files matching this gitignore-style glob, relative to the folder: "
                "'src/**', '*.py', 'server/'",
                max_length=MAX_GLOB_CHARS,
            ),
        ] = None,
        language: Annotated[
            str | None, Field(description="only code in this language: python, typescript, go, ...")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        include_tests: IncludeTests = False,
    ) -> Annotated[CallToolResult, CodeAnswer]:
        """Find code by what it does: functions, methods and classes of the open folders, best first.

        Searches by meaning, not by text: describe the behaviour ("parse the config file and fill in
        defaults"). Each hit gives the file, its lines, the qualified name, a score and the start of
        its code.
        """
        if not query.strip():
            raise ToolError("`query` is empty: say what the code should do, e.g. 'retry an http request'.")
        filters = Filters(languages=_languages(language), include=_globs(path))
        folders = await self._searchable(ctx)
        results = []
        for folder in folders:
            workspace = folder.workspace
            if workspace is not None:
                search = partial(workspace.search, query, limit=limit, include_tests=include_tests)
                results.append((folder, await _off_loop(partial(search, filters=filters))))
        return code_answer(f"search_code {query[:80]!r}", results, limit)

    async def find_similar_code(
        self,
        ctx: Context,
        path: Annotated[
            str | None,
            Field(description="a file inside the folders, absolute or relative to a folder; with `line`"),
        ] = None,
        line: Annotated[
            int | None, Field(description="1-based line inside the function, method or class", ge=1)
        ] = None,
        code: Annotated[
            str | None,
            Field(description="a code snippet, instead of path and line", max_length=MAX_CODE_CHARS),
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        include_tests: IncludeTests = False,
    ) -> Annotated[CallToolResult, CodeAnswer]:
        """Find code similar to a function (give `path` and `line`) or to a snippet (give `code`).

        The function at path:line is left out of its own answer. Good for finding duplicates, other
        implementations of the same idea, or examples of how a pattern is used elsewhere.
        """
        if code is not None and (path is not None or line is not None):
            raise ToolError("Give either `code`, or `path` and `line`, not both.")
        if code is None and (path is None or line is None):
            raise ToolError("Give `path` and `line` (a line inside a function), or a `code` snippet.")
        if code is not None and not code.strip():
            raise ToolError("`code` is empty: give the snippet to compare with.")
        folders = await self._searchable(ctx)
        own: tuple[SearchedFolder, Chunk] | None = None
        if path is not None and line is not None:
            own = await self._chunk_at(path, line, folders)
            code = own[1].text
        results = []
        for folder in folders:
            workspace = folder.workspace
            if workspace is not None and code is not None:
                exclude = own[1] if own is not None and own[0] is folder else None
                similar = partial(
                    workspace.similar_to, code, limit=limit, exclude=exclude, include_tests=include_tests
                )
                results.append((folder, await _off_loop(similar)))
        title = f"find_similar_code {path}:{line}" if own is not None else "find_similar_code (snippet)"
        return code_answer(title, results, limit)

    async def _chunk_at(
        self, path: str, line: int, folders: Sequence[SearchedFolder]
    ) -> tuple[SearchedFolder, Chunk]:
        """The function, method or class around path:line, after checking the path and the line."""
        try:
            folder, real = self.folders.locate(path, folders)
        except WorkspaceError as error:
            raise ToolError(str(error)) from None
        workspace = folder.workspace
        if workspace is None:
            raise ToolError(f"{folder.root} could not be opened: {folder.error}")
        return folder, await _off_loop(workspace.chunk_at, real, line)  # reads it, checks the line

    async def index_status(self, ctx: Context) -> Annotated[CallToolResult, IndexStatus]:
        """Whether the index is complete: state, files, chunks, model, and progress while indexing."""
        folders = await self.folders.current(ctx.session, ctx.client_capabilities)
        status = IndexStatus.model_validate(await _off_loop(self.folders.status, folders))
        lines = [f"state: {status.state}; {status.files} files, {status.chunks} chunks; model {status.model}"]
        if status.progress is not None:
            done = status.progress
            lines.append(
                f"indexing: {done.files_done} of {done.files_total} files, {done.chunks_embedded} embedded"
            )
        for folder in status.folders:
            error = f": {folder.error}" if folder.error else ""
            lines.append(
                f"- {folder.root}: {folder.state}, {folder.files} files, {folder.chunks} chunks{error}"
            )
            lines += [f"  warning: {warning}" for warning in folder.warnings]
        lines.append(f"(folders from the {status.folders_from})")
        return CallToolResult(
            content=[TextContent(type="text", text="\n".join(lines))],
            structured_content=status.model_dump(mode="json"),
        )


def _languages(language: str | None) -> tuple[str, ...]:
    if language is None:
        return ()
    known = [*known_languages(), UNKNOWN_LANGUAGE]
    if language.strip().lower() not in known:
        raise ToolError(f"Unknown `language` {language[:80]!r}: use one of {', '.join(known)}.")
    return (language.strip().lower(),)


def _globs(path: str | None) -> tuple[str, ...]:
    if path is None:
        return ()
    if not path.strip():
        raise ToolError("`path` is empty: give a gitignore-style glob such as 'src/**', or leave it out.")
    try:
        path_globs([path], "path")
    except WorkspaceError as error:
        raise ToolError(str(error)) from None
    return (path,)


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run blocking engine work on a thread; its clear errors become tool errors."""
    try:
        return await anyio.to_thread.run_sync(partial(function, *args))
    except (WorkspaceError, ModelError, SourceError, ValueError) as error:
        raise ToolError(describe(error)) from None


# the server ------------------------------------------------------------------------------------
def build_server(folders: SearchedFolders, log_level: str = "ERROR") -> MCPServer[None]:
    """The MCP server with its three tools, serving `folders` while it runs."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[None]) -> AsyncIterator[None]:
        async with folders.running():
            yield

    server: MCPServer[None] = MCPServer(
        "codesieve",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=log_level,  # type: ignore[arg-type]
    )
    tools = CodeSearchTools(folders)
    for tool in (tools.search_code, tools.find_similar_code, tools.index_status):
        server.add_tool(tool, name=tool.__name__, description=inspect.getdoc(tool), annotations=READ_ONLY)
    return server


def serve_mcp(named: Sequence[Path], config: Settings, verbose: bool = False) -> int:
    """Run `codesieve mcp` on stdio until the client closes it; named folders must exist."""
    for folder in named:
        if not folder.is_dir():
            raise WorkspaceError(f"{folder} is not a folder")
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("codesieve").setLevel(level)
    # roots/list is deprecated in the newest protocol revision, which has no sessions; clients on
    # the earlier ones (every editor and agent today) still answer it.
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
    build_server(SearchedFolders(named, config), logging.getLevelName(level)).run("stdio")
    return 0
