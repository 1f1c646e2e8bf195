"""The server's log reaches an LSP client with each line's level (server/lsp/client_log.py).

A client files a server's stderr under one level of its own (Neovim tags every line [ERROR]), so over
stdio, from `initialize` on, the log goes out as window/logMessage with the record's MessageType.
"""

from __future__ import annotations

import logging

from lsp_raw import RawServer, frame, request
from lsprotocol import types

from codesieve.server.lsp.client_log import message_type


def test_each_logging_level_has_its_message_type() -> None:
    assert message_type(logging.CRITICAL) == message_type(logging.ERROR) == types.MessageType.Error
    assert message_type(logging.WARNING) == types.MessageType.Warning
    assert message_type(logging.INFO) == types.MessageType.Info
    assert message_type(logging.DEBUG) == types.MessageType.Log


def test_log_lines_go_to_the_client_with_their_levels_not_to_stderr() -> None:
    server = RawServer()
    try:
        server.initialize()
        server.send(frame(request("bad", "codeSearch/find", {"query": "a", "limit": "many"})))
        assert server.answer("bad")["error"]["code"] == -32602  # logged at INFO
        server.send(b"Content-Length: %d\r\n\r\n{}" % 10**13)  # logged at ERROR, then the server exits
        assert server.exit_code() == 1

        def level_of(text: str) -> int:
            return next(int(params["type"]) for params in server.log_messages if text in params["message"])

        assert level_of("limit must be an integer") == types.MessageType.Info, server.log_messages
        assert level_of("cannot read the client's messages") == types.MessageType.Error, server.log_messages
        stderr = server.stderr.decode("utf-8", "replace")
        assert "limit must be" not in stderr and "cannot read" not in stderr, stderr
    finally:
        server.close()
