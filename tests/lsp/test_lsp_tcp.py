"""`codesieve serve --tcp`, which any local process can reach: loopback only, and a token before anything is answered."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from codesieve.server.lsp.tcp import TcpError, loopback_address, read_token

SERVE = [sys.executable, "-m", "codesieve.server.cli", "serve"]


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def read_message(connection: socket.socket) -> dict[str, Any] | None:
    """One message from the server, or None when it closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = connection.recv(1 << 16)
        if not block:
            return None
        data += block
    header, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line for line in header.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:]
    )
    while len(body) < length:
        body += connection.recv(1 << 16)
    return json.loads(body[:length])  # type: ignore[no-any-return]


def initialize(options: dict[str, Any]) -> dict[str, Any]:
    params = {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


def connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start_tcp_server(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """`serve --tcp` on a free loopback port, its token in tmp_path/token; stop it with kill()."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token_file = tmp_path / "token"
    server = subprocess.Popen(
        [*SERVE, "--tcp", f"127.0.0.1:{port}", "--token-file", str(token_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "CODESIEVE_LOG": "WARNING"},
    )  # fmt: skip
    return server, port, token_file


def test_tcp_refuses_a_host_that_is_not_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SERVE, "--tcp", "0.0.0.0:2087", "--token-file", str(tmp_path / "token")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "only loopback addresses" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "token").exists()
    for host in ("192.0.2.1", "example.com", "[::]", "10.0.0.1", "::ffff:8.8.8.8"):
        with pytest.raises(TcpError, match="only loopback addresses"):
            loopback_address(f"{host}:2087")
    for host, expected in (
        ("", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]", "::1"),
        ("127.0.0.2", "127.0.0.2"),
    ):
        assert loopback_address(f"{host}:2087") == (expected, 2087)


def test_tcp_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a-token-long-enough-to-count\n")
    token.chmod(0o644)
    with pytest.raises(TcpError, match=f"chmod 600 {token}"):
        read_token(token)
    token.chmod(0o600)
    assert read_token(token) == "a-token-long-enough-to-count"


def test_tcp_answers_only_a_client_with_the_token(tmp_path: Path) -> None:
    server, port, token_file = start_tcp_server(tmp_path)
    try:
        deadline = time.monotonic() + 60
        with connect(port, deadline) as stranger:  # no token, then a wrong one: refused, hung up on
            stranger.sendall(
                frame({"jsonrpc": "2.0", "id": 7, "method": "codeSearch/status", "params": None})
            )
            answer = read_message(stranger)
            assert (
                answer is not None
                and answer["error"]["code"] == -32600
                and "token" in answer["error"]["message"]
            )
            assert read_message(stranger) is None
        with connect(port, deadline) as stranger:
            stranger.sendall(frame(initialize({"token": "guess"})))
            answer = read_message(stranger)
            assert answer is not None and answer["error"]["code"] == -32600
        assert (token_file.stat().st_mode & 0o777) == 0o600  # made for the user alone
        with connect(port, deadline) as client:
            client.sendall(frame(initialize({"token": token_file.read_text().strip()})))
            answer = read_message(client)
            assert answer is not None and "capabilities" in answer["result"], answer
            client.sendall(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None}))
            assert read_message(client) == {"jsonrpc": "2.0", "id": 2, "result": None}
        server.wait(timeout=60)  # its client gone, the server ends
    finally:
        server.kill()
        stderr = server.stderr.read().decode() if server.stderr else ""
    assert "Traceback" not in stderr, stderr


def test_tcp_reads_frames_as_stdio_does_and_exits_with_the_status_exit_gives(tmp_path: Path) -> None:
    server, port, token_file = start_tcp_server(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not token_file.exists():  # the server writes it before it listens
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.1)
        with connect(port, deadline) as client:
            client.sendall(frame(initialize({"token": token_file.read_text().strip()})))
            assert "capabilities" in (read_message(client) or {}).get("result", {})
            body = b'{"jsonrpc": "2.0", "id": 3, "method"'  # cut short: a parse error, not the end
            client.sendall(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            answer = read_message(client)
            assert answer is not None and answer["error"]["code"] == -32700, answer
            client.sendall(frame({"jsonrpc": "2.0", "id": 4, "method": "shutdown", "params": None}))
            assert read_message(client) == {"jsonrpc": "2.0", "id": 4, "result": None}
            client.sendall(frame({"jsonrpc": "2.0", "method": "exit", "params": None}))
            assert server.wait(timeout=60) == 0
    finally:
        server.kill()
        stderr = server.stderr.read().decode() if server.stderr else ""
    assert "Traceback" not in stderr, stderr
