"""The LSP client the protocol tests drive `codesieve serve` with (pytest-lsp over stdio).

Shared by lsp/test_lsp_requests.py (the contract) and lsp/test_lsp_hostile.py (oversized and malformed input).
The client keeps custom payloads as plain JSON, records what the server sends (index statuses,
registrations, its stderr) and can send messages no typed client would: raw JSON-RPC requests
with params of any shape, and bytes that are not JSON at all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Union

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import register_lsp_features

from codesieve.server.lsp.protocol import raw_params_converter, uri_of

SERVER_COMMAND = [sys.executable, "-m", "codesieve.server.cli", "serve"]
VSCODE, NEOVIM = "visual-studio-code", "neovim"
_RAW_IDS = itertools.count(1)


def converter() -> Any:
    """Raw JSON for custom methods; and a CodeAction with a `command` is not a Command (lsprotocol
    2025.0.0 decides by the key alone, where the spec says to look at its type)."""
    converter = raw_params_converter()
    union = Union[types.Command, types.CodeAction]  # noqa: UP007 - the key lsprotocol registered

    def command_or_action(value: dict[str, Any], _: Any) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(value.get("command"), str) else types.CodeAction
        return converter.structure(value, kind)  # type: ignore[no-any-return]

    converter.register_structure_hook(union, command_or_action)
    return converter


class Client(LanguageClient):
    """pytest-lsp's client, keeping custom payloads as JSON and recording what the server sends."""

    def __init__(self) -> None:
        super().__init__(converter_factory=converter)
        register_lsp_features(self)
        self.index_statuses: list[dict[str, Any]] = []
        self.registrations: list[types.Registration] = []
        self.stderr = bytearray()  # the server's log so far
        self.encoding = "utf-16"

        @self.feature("codeSearch/indexStatus")
        def on_index_status(params: dict[str, Any]) -> None:
            self.index_statuses.append(params)

        @self.feature(types.CLIENT_REGISTER_CAPABILITY)
        def on_register(params: types.RegistrationParams) -> None:
            self.registrations.extend(params.registrations)

    async def start_io(self, cmd: str, *args: Any, **kwargs: Any) -> None:
        """Start the server; its stderr is recorded (and still forwarded, as pytest-lsp does)."""
        await super().start_io(cmd, *args, **kwargs)
        if self._stderr_forwarder is not None:  # pytest-lsp's forwarder, not yet run: record instead
            self._stderr_forwarder.cancel()
        self._stderr_forwarder = asyncio.create_task(self._record_stderr())

    async def _record_stderr(self) -> None:
        stream = self._server.stderr if self._server is not None else None
        if stream is None:
            return
        while block := await stream.read(1 << 16):  # not readline: a line may pass its 64 KiB limit
            sys.stderr.buffer.write(block)
            self.stderr += block

    def log(self) -> str:
        """What the server logged: on stderr, and to the client (window/logMessage, once initialized)."""
        messages = [params.message for params in self.log_messages]
        return "\n".join([self.stderr.decode("utf-8", errors="replace"), *messages])

    async def request(self, method: str, params: Any) -> Any:
        return await self.protocol.send_request_async(method, params)

    async def raw_request(self, method: str, params: Any) -> Any:
        """A request whose params go out exactly as given, whatever the method's declared type."""
        msg_id = f"raw-{next(_RAW_IDS)}"
        future: Future[Any] = Future()
        self.protocol._request_futures[msg_id] = future
        self.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return await asyncio.wrap_future(future)

    def raw_notify(self, method: str, params: Any) -> None:
        """A notification whose params go out exactly as given."""
        self.protocol._send_data({"jsonrpc": "2.0", "method": method, "params": params})

    def write_bytes(self, body: bytes) -> None:
        """One message frame around `body`, which need not be JSON."""
        header = f"Content-Length: {len(body)}\r\n\r\n".encode("ascii")
        assert self.protocol.writer is not None
        self.protocol.writer.write(header + body)

    async def find(self, query: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("codeSearch/find", {"query": query, **options})
        return result

    async def similar_code(self, code: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("codeSearch/findSimilar", {"code": code, **options})
        return result

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("codeSearch/status", None)
        return result

    async def wait_for_state(self, state: str, timeout: float = 40) -> dict[str, Any]:
        status = await eventually(self.status, lambda status: status["state"] == state, timeout)
        return status


def dumps(value: Any) -> bytes:
    """JSON as the wire carries it."""
    return json.dumps(value).encode("utf-8")


async def eventually(
    probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 15
) -> Any:
    """Call `probe` until `done(result)` holds; fail with the last result after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s; last result: {result!r}")
        await asyncio.sleep(0.1)


def capabilities(profile: str, literal_code_actions: bool = True) -> types.ClientCapabilities:
    caps = client_capabilities(profile)
    if not literal_code_actions and caps.text_document and caps.text_document.code_action:
        caps.text_document.code_action.code_action_literal_support = None
    return caps


async def start(
    folders: list[Path], options: dict[str, Any], profile: str = VSCODE, literal_code_actions: bool = True
) -> Client:
    client = Client()
    await client.start_io(*SERVER_COMMAND)
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(profile, literal_code_actions),
            root_uri=uri_of(folders[0]),
            workspace_folders=[types.WorkspaceFolder(uri_of(folder), folder.name) for folder in folders],
            initialization_options=options,
        )
    )
    client.encoding = str(result.capabilities.position_encoding or "utf-16")
    return client
