"""A client that writes raw bytes to `codesieve serve` and reads its frames back (no pytest-lsp).

The framing and lifecycle tests need what no well-behaved client sends: wrong Content-Lengths, odd
header spellings, requests before `initialize` or after `shutdown`, ids that are objects. The
server's stdout is read on a thread and cut into messages; its log (stderr, and the window/logMessage
notifications it sends once initialized) is kept for the assertions.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from codesieve.server.lsp.protocol import uri_of

SERVER_COMMAND = [sys.executable, "-m", "codesieve.server.cli", "serve"]
ANSWER_SECONDS = 90.0  # a liveness limit: the server starts in seconds, on a busy machine in tens


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def request(msg_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def initialize_params(folders: list[Path], options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "processId": None,
        "rootUri": uri_of(folders[0]) if folders else None,
        "capabilities": {},
        "workspaceFolders": [{"uri": uri_of(folder), "name": folder.name} for folder in folders],
        "initializationOptions": options or {},
    }


class RawServer:
    """`codesieve serve` as a subprocess, spoken to in bytes."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            SERVER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.responses: list[dict[str, Any]] = []  # read, not yet asked for
        self.stderr = bytearray()
        self.log_messages: list[dict[str, Any]] = []  # window/logMessage params: type, message
        self._stdout_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._stdout_reader.start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line or length is None:
                return
            message = json.loads(stream.read(length))
            if isinstance(message, dict) and message.get("method") == "window/logMessage":
                self.log_messages.append(message["params"])
            self.messages.put(message)

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while block := stream.read1(1 << 16):
            self.stderr += block

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def answer(self, msg_id: Any, timeout: float = ANSWER_SECONDS) -> dict[str, Any]:
        """The response with this id; other responses wait for their own call, notifications are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            for position, message in enumerate(self.responses):
                if message.get("id") == msg_id:
                    return self.responses.pop(position)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no answer to {msg_id!r} within {timeout} s; log:\n{self.log()[-3000:]}"
                )
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if "method" not in message:
                self.responses.append(message)

    def ask(self, msg_id: Any, method: str, params: Any = None) -> dict[str, Any]:
        self.send(frame(request(msg_id, method, params)))
        return self.answer(msg_id)

    def initialize(self, folders: list[Path] | None = None, options: dict[str, Any] | None = None) -> None:
        assert "result" in self.ask("init", "initialize", initialize_params(folders or [], options))
        self.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))

    def exit_code(self, timeout: float = ANSWER_SECONDS) -> int:
        """The server's exit status, once it has exited (its log is then complete)."""
        code = self.process.wait(timeout)
        self._stdout_reader.join(5)
        self._stderr_reader.join(5)
        return code

    def log(self) -> str:
        """What the server logged: on stderr, and to the client (window/logMessage)."""
        messages = [str(params["message"]) for params in self.log_messages]
        return "\n".join([self.stderr.decode("utf-8", "replace"), *messages])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
