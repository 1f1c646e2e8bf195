"""How the server reads JSON-RPC messages, and how it answers those it cannot use.

`CodeSieveProtocol` is pygls' LanguageServerProtocol with these changes, most for input a client
should not send but might (the frames come from `framing.py`):
- The lifecycle the LSP spec asks for, where pygls left requests unanswered: a request before
  `initialize` gets ServerNotInitialized (-32002) and a notification then is dropped (`exit`
  excepted); after `shutdown` a request gets InvalidRequest and a notification is dropped; a second
  `initialize` gets InvalidRequest. `exit` ends the process with 0 after `shutdown`, else 1 (pygls
  lost the code: its SystemExit ended in a `pass`).
- A message that is not a JSON-RPC request (an array, an id that is an object, an array, null or
  true, no `method` string, another `jsonrpc`) gets InvalidRequest, with a null id when its own is
  unusable; pygls answered object ids with -32603 "unhashable". A request or notification without
  `params` has null params, as JSON-RPC allows.
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
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol, lsp_method

from .protocol import clipped
from .tcp import token_matches

log = logging.getLogger(__name__)
LOGGED_CHARS = 300  # of an error message, in the log


def _usable_id(msg_id: Any) -> bool:
    """Whether a request id is one LSP allows (integer or string), so it can be answered."""
    return isinstance(msg_id, str) or (isinstance(msg_id, int) and not isinstance(msg_id, bool))


def shown_type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _reason(error: Exception) -> str:
    """What was wrong with a message's fields, from cattrs' error (field paths, no values)."""
    if isinstance(error, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(error))
    return f"{type(error).__name__}: {error}"


class CodeSieveProtocol(LanguageServerProtocol):
    """pygls' protocol, answering malformed messages instead of dropping them (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        self.exit_code: int | None = None  # set by `exit`: the process's exit status

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Leave every parsed object as JSON: `handle_message` structures the whole message."""
        return data

    def answer_parse_error(self, reason: str) -> None:
        """Answer a frame whose body is not JSON (its id is unknown, so null)."""
        log.warning("answered a message that is not JSON with ParseError: %s", clipped(reason, LOGGED_CHARS))
        self._send_error(None, JsonRpcParseError(reason))

    def _invalid_request(self, msg_id: Any, reason: str) -> None:
        log.warning("answered an invalid request with InvalidRequest: %s", clipped(reason, LOGGED_CHARS))
        self._send_error(msg_id, JsonRpcInvalidRequest(reason))

    def _send_error(self, msg_id: Any, error: JsonRpcException) -> None:
        """An error response; with a null id when the request's own is unknown or unusable (lsprotocol
        would leave a null id out, and a response without one is no JSON-RPC response)."""
        if msg_id is not None:
            self._send_response(msg_id, error=error.to_response_error())
            return
        self._send_data(
            {"jsonrpc": self.VERSION, "id": None, "error": {"code": error.code, "message": error.message}}
        )

    required_token: str | None = None  # set by `serve --tcp` (lsp/tcp.py): initialize must carry it
    authorised = False

    def handle_message(self, message: Any) -> None:
        """Structure a parsed message and handle it; answer or log one that does not fit its method."""
        if not isinstance(message, Mapping):
            self._invalid_request(None, f"a JSON-RPC message is an object, not {type(message).__name__}")
            return
        if self.required_token is not None and not self.authorised and not self._authorise(message):
            return
        if "method" not in message:  # a response to one of the server's requests: as pygls does
            if message.get("jsonrpc") == self.VERSION and _usable_id(message.get("id")):
                super().handle_message(super().structure_message(dict(message)))
            else:
                log.warning(
                    "ignored a message that is no JSON-RPC 2.0 request or response: %s",
                    clipped(repr(message), LOGGED_CHARS),
                )
            return
        if not self._admitted(message):
            return
        message = message if "params" in message else {**message, "params": None}
        method = message["method"]
        kind = self.get_message_type(method) or (
            JsonRPCRequestMessage if "id" in message else JsonRPCNotification
        )
        try:
            structured = self._converter.structure(message, kind)
        except Exception as error:
            reason = clipped(f"{method}: {_reason(error)}", LOGGED_CHARS)
            if "id" not in message:
                log.warning("ignored a malformed notification: %s", reason)
                return
            log.info("answered a malformed request with InvalidParams: %s", reason)
            self._send_response(message["id"], error=JsonRpcInvalidParams(reason).to_response_error())
            return
        if method == types.INITIALIZE:
            self.initialize_received = True
        super().handle_message(structured)

    def _admitted(self, message: Mapping[str, Any]) -> bool:
        """Whether a request or notification is handled; the rest are answered or dropped here."""
        method, is_request = message["method"], "id" in message
        if is_request and not _usable_id(message["id"]):
            self._invalid_request(
                None, f"a request id is a string or an integer, got {shown_type(message['id'])}"
            )
            return False
        problem = None
        if message.get("jsonrpc") != self.VERSION:
            problem = 'the message lacks "jsonrpc": "2.0"'
        elif not isinstance(method, str):
            problem = f"a method is a string, got {shown_type(method)}"
        if problem is not None:
            if is_request:
                self._invalid_request(message["id"], problem)
            else:
                log.warning("ignored a notification: %s", problem)
            return False
        if method == types.EXIT:
            return True
        if self._shutdown:
            return self._refuse(
                message, JsonRpcInvalidRequest(f"{method}: the server is shutting down; send exit")
            )
        if method == types.INITIALIZE and self.initialize_received:
            return self._refuse(message, JsonRpcInvalidRequest("initialize may be sent only once"))
        if method != types.INITIALIZE and not self.initialize_received:
            error = JsonRpcServerNotInitialized(f"{method}: send initialize first")
            return self._refuse(message, error)
        return True

    def _refuse(self, message: Mapping[str, Any], error: JsonRpcException) -> bool:
        """Answer a request with `error`; drop a notification (with a log line). Returns False."""
        if "id" in message:
            log.info("request %s: %s", clipped(repr(message["id"]), LOGGED_CHARS), error.message)
            self._send_error(message["id"], error)
        else:
            log.info("dropped a notification: %s", error.message)
        return False

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        """Let the server's own exit handler run, then end the process: 0 after shutdown, else 1."""
        if (user_handler := self.fm.features.get(types.EXIT)) is not None:
            yield user_handler, args, None
        self.exit_code = 0 if self._shutdown else 1

    def _authorise(self, message: Mapping[str, Any]) -> bool:
        """TCP: let through an `initialize` with the right token; refuse anything else and hang up."""
        params = message.get("params")
        options = params.get("initializationOptions") if isinstance(params, Mapping) else None
        if message.get("method") == "initialize" and token_matches(options, self.required_token or ""):
            self.authorised = True
            return True
        log.warning("refused a TCP client: its first message was not an initialize with the token")
        if "id" in message:
            refusal = JsonRpcInvalidRequest(
                "codesieve serve --tcp: send the token of its token file as initializationOptions.token"
            )
            self._send_response(message["id"], error=refusal.to_response_error())
        writer: Any = self.writer
        if writer is not None and hasattr(writer, "close"):
            writer.close()
        return False

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        """Send a handler's result; an error it meant to send goes out with one log line."""
        error = None if future.cancelled() else future.exception()
        if not isinstance(error, JsonRpcException) or error.code == JsonRpcInternalError.CODE:
            super()._send_handler_result(future, msg_id=msg_id)
            return
        self._request_futures.pop(msg_id, None)
        log.info("request %s: %s", msg_id, clipped(str(error), LOGGED_CHARS))
        log.debug("request %s failed", msg_id, exc_info=error)
        self._send_response(msg_id, error=error.to_response_error())

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        """Cancel a running request; one already answered needs nothing (see the module doc)."""
        if msg_id not in self._request_futures:
            log.debug("cancellation of request %s, already answered", clipped(repr(msg_id), LOGGED_CHARS))
            return
        super()._handle_cancel_notification(msg_id)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Apply a document's changes, unless it was never opened."""
        uri = params.text_document.uri
        if unquote(uri) not in self.workspace.text_documents:  # pygls keys documents by unquoted URI
            log.warning(
                "ignored changes to %s: it was never opened (textDocument/didOpen)",
                clipped(uri, LOGGED_CHARS),
            )
            return
        yield from super().lsp_text_document__did_change(params)
