"""`codesieve serve --tcp`: the language server on a loopback TCP port, behind a token.

A TCP port can be reached by every process on the machine, whoever runs it, where stdio reaches
only the editor that started the server. A client that can talk to the server can add any folder
as a workspace folder and read previews of its code, so `--tcp`:
- binds loopback addresses only (127.0.0.0/8, ::1, localhost); any other host is refused;
- requires a token: the client sends it as `initializationOptions.token` in `initialize`. It is read
  from a file only its owner can read (created with a fresh random token when missing). Anything
  sent before a right token gets InvalidRequest and the connection is closed;
- serves one client: a second connection while one is open is closed at once. The server ends when
  its (authorised) client exits or disconnects, as over stdio, and reads its frames the same way
  (lsp/framing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import secrets
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pygls.lsp.server import LanguageServer

from .framing import serve_frames

log = logging.getLogger(__name__)
TOKEN_OPTION = "token"  # the initializationOptions key a TCP client sends its token in


class TcpError(Exception):
    """`--tcp` cannot start as asked; the message says why and what to do."""


def default_token_file() -> Path:
    return Path(platformdirs.user_cache_dir("codesieve")) / "tcp-token"


def loopback_address(tcp: str) -> tuple[str, int]:
    """HOST:PORT or PORT as (host, port); TcpError unless the host is a loopback address."""
    host, _, port = tcp.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise TcpError(f"--tcp expects HOST:PORT or PORT, got {tcp!r}")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise TcpError(
                f"--tcp refuses to listen on {host}: only loopback addresses (127.0.0.1, ::1, localhost) are "
                "allowed, since any client that connects can read the code of any folder. Use stdio, or "
                "an SSH tunnel to a loopback port."
            )
    return host, int(port)


def read_token(path: Path) -> str:
    """The token in `path`, created (mode 600) with a random one when missing; TcpError when the file
    can be read by anyone but its owner, or is not this user's."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    info = path.stat()
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 or info.st_uid != os.geteuid():
        raise TcpError(
            f"{path} must be a file of yours that only you can read: chmod 600 {path} (or remove it to "
            "get a new token)."
        )
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise TcpError(f"{path} holds no token of at least 16 characters; remove it to get a new one.")
    return token


def token_matches(initialization_options: Any, token: str) -> bool:
    """Whether an `initialize` carries the token (compared in constant time)."""
    given = initialization_options.get(TOKEN_OPTION) if isinstance(initialization_options, Mapping) else None
    return isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())


def serve_tcp(server: LanguageServer, host: str, port: int, token: str) -> None:
    """Listen on host:port for one authorised client at a time (see the module doc)."""
    protocol: Any = server.protocol
    protocol.required_token = token
    stop = threading.Event()
    server._stop_event = stop
    busy = asyncio.Lock()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if busy.locked():
            log.warning("closed a second TCP connection: one client at a time")
            writer.close()
            return
        async with busy:
            protocol.authorised = False
            protocol.set_writer(writer)
            code = await serve_frames(reader, protocol)  # the tolerant frame reader, as over stdio
            writer.close()
        if protocol.authorised:  # its client is gone: end, as over stdio, with the status `exit` gave
            server.exit_code = code  # type: ignore[attr-defined]
            server.shutdown()  # type: ignore[no-untyped-call]

    async def listen() -> None:
        server._server = await asyncio.start_server(connection, host, port)
        log.info("listening on %s:%d (token required)", host, port)
        async with server._server:
            await server._server.serve_forever()

    with contextlib.suppress(asyncio.CancelledError):  # the server was shut down
        asyncio.run(listen())
