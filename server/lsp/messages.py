"""How the server reads JSON-RPC messages, and how it answers those it cannot use.

`CodeSieveProtocol` is pygls' LanguageServerProtocol with these changes, the first three for input a
client should not send but might:
- Messages are structured whole, once parsed. pygls structures every JSON object that has a
  `jsonrpc` key while parsing, nested ones included, so a request whose params merely contained
  such an object was lost; and a request whose params do not fit the method's type (a `range`
  that is a string) was dropped unanswered, leaving the client waiting forever. Now such a request
  gets InvalidParams naming the field, and such a notification is ignored with one log line.
- An error the server means to send (InvalidParams, RequestFailed) is logged as one line, not as
  a traceback: it is an answer, not a crash. Other exceptions keep pygls' traceback.
- A `didChange` for a document that was never opened is ignored with a warning, where pygls
  raised a KeyError and showed the user "Error in server".
- A `$/cancelRequest` for a request already answered is ignored quietly (DEBUG): a client cancels
  what it no longer needs, and the answer may have crossed the cancellation on the wire. pygls
  logged a warning for each, about 25 while typing a query in VS Code.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping
from concurrent.futures import Future
from typing import Any
from urllib.parse import unquote

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol, lsp_method

log = logging.getLogger(__name__)
LOGGED_CHARS = 300  # of an error message, in the log


def _clipped(text: str) -> str:
    return text if len(text) <= LOGGED_CHARS else f"{text[:LOGGED_CHARS]}... ({len(text)} characters)"


def _reason(error: Exception) -> str:
    """What was wrong with a message's fields, from cattrs' error (field paths, no values)."""
    if isinstance(error, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(error))
    return f"{type(error).__name__}: {error}"


class CodeSieveProtocol(LanguageServerProtocol):
    """pygls' protocol, answering malformed messages instead of dropping them (see the module doc)."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Leave every parsed object as JSON: `handle_message` structures the whole message."""
        return data

    def handle_message(self, message: Any) -> None:
        """Structure a parsed message and handle it; answer or log one that does not fit its method."""
        if not isinstance(message, Mapping) or "jsonrpc" not in message:
            log.warning("ignored a message that is not a JSON-RPC 2.0 object: %s", _clipped(repr(message)))
            return
        if "method" not in message:  # a response to one of the server's requests: as pygls does
            super().handle_message(super().structure_message(dict(message)))
            return
        method = message["method"]
        kind = self.get_message_type(method) if isinstance(method, str) else None
        kind = kind or (JsonRPCRequestMessage if "id" in message else JsonRPCNotification)
        try:
            structured = self._converter.structure(message, kind)
        except Exception as error:
            reason = _clipped(f"{method}: {_reason(error)}")
            if "id" not in message:
                log.warning("ignored a malformed notification: %s", reason)
                return
            log.info("answered a malformed request with InvalidParams: %s", reason)
            self._send_response(message["id"], error=JsonRpcInvalidParams(reason).to_response_error())
            return
        super().handle_message(structured)

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        """Send a handler's result; an error it meant to send goes out with one log line."""
        error = None if future.cancelled() else future.exception()
        if not isinstance(error, JsonRpcException) or error.code == JsonRpcInternalError.CODE:
            super()._send_handler_result(future, msg_id=msg_id)
            return
        self._request_futures.pop(msg_id, None)
        log.info("request %s: %s", msg_id, _clipped(str(error)))
        log.debug("request %s failed", msg_id, exc_info=error)
        self._send_response(msg_id, error=error.to_response_error())

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        """Cancel a running request; one already answered needs nothing (see the module doc)."""
        if msg_id not in self._request_futures:
            log.debug("cancellation of request %s, already answered", _clipped(repr(msg_id)))
            return
        super()._handle_cancel_notification(msg_id)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Apply a document's changes, unless it was never opened."""
        uri = params.text_document.uri
        if unquote(uri) not in self.workspace.text_documents:  # pygls keys documents by unquoted URI
            log.warning("ignored changes to %s: it was never opened (textDocument/didOpen)", _clipped(uri))
            return
        yield from super().lsp_text_document__did_change(params)
