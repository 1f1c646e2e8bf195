"""CodeSieve's language server: the handlers. docs/PROTOCOL.md is the contract they implement.

Each handler takes `(server, params)`, says in one line what it answers, and hands the work to
`WorkspaceFolders` (workspace_folders.py) or to one of its parts (the folder set, the search, the status,
the change watcher), which run blocking Workspace calls off the event loop. The wire format of
the `codeSearch/*` extensions lives in protocol.py. Only protocol goes to stdout: `serve`
moves file descriptor 1 to stderr before anything else can print. Over stdio the log goes to the client as
window/logMessage, each line with its level, from `initialize` on (client_log.py); otherwise to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from codesieve import __version__

from ..config import Settings
from .client_log import ClientLogHandler
from .framing import ThreadedSource, serve_frames
from .messages import CodeSieveProtocol
from .protocol import (
    CODE_ACTION_KIND,
    CODE_ACTION_TITLE,
    COMMAND_FIND,
    COMMAND_FIND_SIMILAR,
    COMMAND_REINDEX,
    FIND,
    FIND_SIMILAR,
    STATUS,
    invalid_params,
    line_of,
    local_path,
    parse_find,
    parse_find_similar,
    raw_params_converter,
)
from .tcp import TOKEN_OPTION, default_token_file, loopback_address, read_token, serve_tcp
from .workspace_folders import WorkspaceFolders

SETTINGS_SECTION = "codesieve"
log = logging.getLogger("codesieve.lsp")


class CodeSieveServer(LanguageServer):
    """pygls' LanguageServer plus CodeSieve's workspace folders and the settings messages still to show;
    its messages are framed by `framing.py` instead of pygls' reader."""

    protocol: CodeSieveProtocol

    def __init__(self) -> None:
        super().__init__(
            "codesieve", __version__, protocol_cls=CodeSieveProtocol, converter_factory=raw_params_converter
        )
        self.workspace_folders = WorkspaceFolders(self, Settings())
        self.pending_messages: list[str] = []
        self.exit_code = 0
        self.client_log: ClientLogHandler | None = None  # over stdio: the log, sent to the client

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve one client over a pair of byte streams until it exits; `exit_code` says how it ended."""
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        source = stdin or sys.stdin.buffer

        async def serve() -> int:
            return await serve_frames(
                ThreadedSource(source.fileno(), asyncio.get_running_loop()), self.protocol
            )

        try:
            self.exit_code = asyncio.run(serve())
        except KeyboardInterrupt:
            self.exit_code = 130

    def warn(self, messages: list[str]) -> None:
        """Show setting errors and the like as one warning."""
        if messages:
            text = "CodeSieve: " + "\n".join(messages)
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, text))


SERVER = CodeSieveServer()


def _section(settings: Any) -> Mapping[str, Any] | None:
    """The `codesieve` section of a settings object, or the object itself when it has none."""
    if not isinstance(settings, Mapping):
        return None
    section = settings.get(SETTINGS_SECTION, settings)
    return section if isinstance(section, Mapping) else None


# lifecycle -------------------------------------------------------------------------------------
@SERVER.feature(types.INITIALIZE)
def initialize(server: CodeSieveServer, params: types.InitializeParams) -> None:
    """Take the settings from initializationOptions (shown once initialized) and the folders."""
    if server.client_log is not None:
        server.client_log.attach()  # the client may be sent log messages from now on
    section = _section(params.initialization_options)
    if section is not None:
        settings = {
            name: value for name, value in section.items() if name != TOKEN_OPTION
        }  # tcp.py's, not a setting
        _, errors = server.workspace_folders.folders.apply_settings(settings)
        server.pending_messages.extend(errors)
    folders = [folder.uri for folder in params.workspace_folders or []]
    for uri in folders or ([params.root_uri] if params.root_uri else []):
        server.workspace_folders.add_folder(
            uri, start=False
        )  # "indexing" from now on; started once initialized


@SERVER.feature(types.INITIALIZED)
async def initialized(server: CodeSieveServer, params: types.InitializedParams) -> None:
    """Watch files (through the client when it can, else by polling) and index every folder."""
    server.warn(server.pending_messages)
    server.pending_messages.clear()
    server.workspace_folders.start()
    watch = (
        server.client_capabilities.workspace and server.client_capabilities.workspace.did_change_watched_files
    )
    if watch and watch.dynamic_registration:
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern="**/*")]
        )
        registration = types.Registration(
            id="codesieve-watch", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options
        )
        try:
            await server.client_register_capability_async(types.RegistrationParams([registration]))
            server.workspace_folders.changes.watched_by_client = True
        except Exception as error:
            log.warning("the client did not register the file watcher (%s); polling instead", error)
    if not server.workspace_folders.changes.watched_by_client:
        server.workspace_folders.changes.start_polling()


@SERVER.feature(types.SHUTDOWN)
async def shutdown(server: CodeSieveServer, params: None) -> None:
    """Stop indexing and close every index."""
    await server.workspace_folders.close()


@SERVER.feature(types.EXIT)
def exit_(server: CodeSieveServer, params: None) -> None:
    """Ask running syncs to stop, so the process can exit promptly."""
    for folder in server.workspace_folders.folders.served.values():
        folder.closing.set()


# workspace events ------------------------------------------------------------------------------
@SERVER.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
async def change_folders(server: CodeSieveServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    """Index added folders in the background; forget removed ones."""
    for removed in params.event.removed:
        await server.workspace_folders.remove_folder(removed.uri)
    for added in params.event.added:
        server.workspace_folders.add_folder(added.uri)


@SERVER.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def change_configuration(server: CodeSieveServer, params: types.DidChangeConfigurationParams) -> None:
    """Apply new settings (pulled with workspace/configuration when not pushed); reopen on change."""
    section = _section(params.settings) if params.settings else None
    capabilities = server.client_capabilities.workspace
    if section is None and capabilities is not None and capabilities.configuration:
        items = [types.ConfigurationItem(section=SETTINGS_SECTION)]
        pulled = await server.workspace_configuration_async(types.ConfigurationParams(items))
        section = _section(pulled[0]) if pulled else None
    changed, errors = server.workspace_folders.folders.apply_settings(section or {})
    server.warn(errors)
    if changed:
        await server.workspace_folders.reopen()


@SERVER.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def watched_files_changed(server: CodeSieveServer, params: types.DidChangeWatchedFilesParams) -> None:
    """Re-index created and changed files, drop deleted ones (debounced)."""
    for change in params.changes:
        _file_changed(server, change.uri)


@SERVER.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(server: CodeSieveServer, params: types.DidSaveTextDocumentParams) -> None:
    """Re-index a saved file (debounced)."""
    _file_changed(server, params.text_document.uri)


def _file_changed(server: CodeSieveServer, uri: str) -> None:
    """Hand a changed file to the workspace folders; anything but a file inside a workspace folder is ignored."""
    if local_path(uri) is None:  # an untitled buffer, a remote file: nothing on disk to index
        log.debug("ignored a change to %s: not a file:// URI", uri[:200])
        return
    server.workspace_folders.changes.file_changed(uri)


# requests --------------------------------------------------------------------------------------
@SERVER.feature(FIND)
async def find(server: CodeSieveServer, params: Any) -> dict[str, Any]:
    """Search every folder for code that does what the query says."""
    return await server.workspace_folders.search.find(parse_find(params))


@SERVER.feature(FIND_SIMILAR)
async def find_similar(server: CodeSieveServer, params: Any) -> dict[str, Any]:
    """Code similar to the function at a position (as edited) or to a given snippet."""
    return await server.workspace_folders.search.find_similar(parse_find_similar(params))


@SERVER.feature(STATUS)
async def status(server: CodeSieveServer, params: Any) -> dict[str, Any]:
    """State, size, model and index location, aggregated and per folder."""
    return await server.workspace_folders.reporter.status()


@SERVER.feature(
    types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=[CODE_ACTION_KIND])
)
async def code_action(
    server: CodeSieveServer, params: types.CodeActionParams
) -> list[types.CodeAction | types.Command] | None:
    """ "Find similar code" inside a function, method or class; nothing elsewhere."""
    only = params.context.only
    if only is not None and not any(
        kind in ("", CODE_ACTION_KIND) or CODE_ACTION_KIND.startswith(f"{kind}.") for kind in only
    ):
        return None
    position = params.range.start
    if local_path(params.text_document.uri) is None:  # an untitled buffer: nothing to search from
        return None
    if await server.workspace_folders.search.chunk_at(params.text_document.uri, position.line) is None:
        return None
    arguments = [params.text_document.uri, {"line": position.line, "character": position.character}]
    command = types.Command(title=CODE_ACTION_TITLE, command=COMMAND_FIND_SIMILAR, arguments=arguments)
    document = server.client_capabilities.text_document
    actions = document.code_action if document is not None else None
    if actions is None or actions.code_action_literal_support is None:
        return [command]
    return [types.CodeAction(title=CODE_ACTION_TITLE, kind=CODE_ACTION_KIND, command=command)]


# commands (workspace/executeCommand) -----------------------------------------------------------
@SERVER.command(COMMAND_FIND)
async def find_command(server: CodeSieveServer, *arguments: Any) -> dict[str, Any]:
    """`codeSearch.find` [query, options?]: the same answer as codeSearch/find."""
    if not arguments or not isinstance(arguments[0], str):
        raise invalid_params(
            "codeSearch.find takes [query] or [query, {limit, rerank, includeTests, include, exclude, languages}]"
        )
    options = arguments[1] if len(arguments) > 1 and isinstance(arguments[1], Mapping) else {}
    return await server.workspace_folders.search.find(parse_find({**options, "query": arguments[0]}))


@SERVER.command(COMMAND_FIND_SIMILAR)
async def find_similar_command(server: CodeSieveServer, *arguments: Any) -> dict[str, Any]:
    """`codeSearch.findSimilar` [uri, position]: the same answer as codeSearch/findSimilar."""
    if len(arguments) < 2 or not isinstance(arguments[0], str):
        raise invalid_params("codeSearch.findSimilar takes [uri, position]")
    params = {
        "textDocument": {"uri": arguments[0]},
        "position": {"line": line_of(arguments[1]), "character": 0},
    }
    return await server.workspace_folders.search.find_similar(parse_find_similar(params))


@SERVER.command(COMMAND_REINDEX)
async def reindex_command(server: CodeSieveServer, *arguments: Any) -> dict[str, Any]:
    """`codeSearch.reindex`: reopen every folder (retrying a failed model) and sync it."""
    await server.workspace_folders.reopen()
    return {"started": sorted(server.workspace_folders.folders.served)}


# entry point -----------------------------------------------------------------------------------
def _claim_stdout() -> BinaryIO:
    """The protocol's stdout; file descriptor 1 and sys.stdout then write to stderr instead."""
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def serve(tcp: str | None = None, config: Settings | None = None, token_file: Path | None = None) -> int:
    """Run the language server over stdio, or over loopback TCP behind a token (lsp/tcp.py); returns
    the exit status: 0 after shutdown and exit, or when the client closed the stream; else 1."""
    address, token = None, None
    if tcp is not None:
        address = loopback_address(tcp)  # TcpError: before anything starts
        token_file = token_file or default_token_file()
        token = read_token(token_file)
    protocol_out = _claim_stdout()
    level = os.environ.get("CODESIEVE_LOG", "INFO").upper()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("codesieve %(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler: logging.Handler = stderr
    if address is None:  # the client shows the level and the time
        handler = SERVER.client_log = ClientLogHandler(SERVER, stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if level != "DEBUG":  # pygls logs every message it sends at INFO
        logging.getLogger("pygls").setLevel(logging.WARNING)
    SERVER.workspace_folders.folders.base = SERVER.workspace_folders.folders.config = config or Settings()
    try:
        if address is None or token is None:
            SERVER.start_io(sys.stdin.buffer, protocol_out)
        else:
            log.info("TCP clients must send the token in %s as initializationOptions.token", token_file)
            serve_tcp(SERVER, *address, token)
    finally:
        for folder in SERVER.workspace_folders.folders.served.values():
            folder.closing.set()
    return SERVER.exit_code
