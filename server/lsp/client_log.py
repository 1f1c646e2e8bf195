"""The server's log, sent to the client as `window/logMessage` with each record's level as its MessageType.

A client files what a server writes to stderr under one level of its own (Neovim tags every line [ERROR]),
so over stdio the log goes to the client instead, which shows each line at its true level (VS Code's output
channel, Neovim's lsp.log at its `vim.lsp.log` level). stderr keeps what cannot go there: records from before
the client's `initialize`, after the event loop stopped, and those logged while a log message is being sent.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from lsprotocol import types
from pygls.lsp.server import LanguageServer

MESSAGE_TYPES = (  # the lowest level of each type, highest first
    (logging.ERROR, types.MessageType.Error),
    (logging.WARNING, types.MessageType.Warning),
    (logging.INFO, types.MessageType.Info),
)


def message_type(level: int) -> types.MessageType:
    """The LSP MessageType of a logging level: Error, Warning, Info, else Log (debug)."""
    return next((kind for lowest, kind in MESSAGE_TYPES if level >= lowest), types.MessageType.Log)


class ClientLogHandler(logging.Handler):
    """Sends log records to the client once `attach` was called on its event loop; else to `fallback`."""

    def __init__(self, server: LanguageServer, fallback: logging.Handler) -> None:
        super().__init__()
        self.server = server
        self.fallback = fallback
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sending = threading.local()

    def attach(self) -> None:
        """From now on, send to the client on the running event loop (call it when `initialize` arrives)."""
        self.loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        loop = self.loop
        if loop is None or not loop.is_running() or getattr(self.sending, "active", False):
            self.fallback.handle(record)
            return
        try:
            params = types.LogMessageParams(message_type(record.levelno), self.format(record))
        except Exception:  # a record that cannot be formatted: logging reports it
            self.handleError(record)
            return
        if _on_thread_of(loop):
            self._send(params)
            return
        try:
            loop.call_soon_threadsafe(self._send, params)
        except RuntimeError:  # the loop closed since: the exit is under way
            self.fallback.handle(record)

    def _send(self, params: types.LogMessageParams) -> None:
        self.sending.active = True  # what sending logs (pygls at DEBUG, a write that fails) goes to stderr
        try:
            self.server.window_log_message(params)
        finally:
            self.sending.active = False


def _on_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
