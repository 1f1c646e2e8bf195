"""Reading LSP messages off a byte stream: the base protocol's framing, bounded and tolerant.

The LSP base protocol frames each JSON-RPC message as a header part (`Content-Length: N`, maybe a
`Content-Type`, each line ended by CRLF, then an empty line) and a body of N bytes. pygls' reader
accepts only the exact spelling `Content-Length: N\\r\\n` and reads whatever length it is told, so a
Content-Length of 10**12 killed the server (MemoryError; 10**20: OverflowError), and one that was a
few bytes off, a lower-case or double-spaced header, or LF-only line ends left it reading forever,
deaf, still holding its index's writer lock. `FrameReader` reads frames this way instead:

- Header names are matched case-insensitively, the whitespace around a value is ignored, LF-only
  line ends are accepted (as HTTP readers do) and headers other than Content-Length are ignored.
- A body holding one complete JSON value followed by more bytes (a Content-Length a few bytes too
  long, the next message already sent) is that value, and the rest begins the next frame. A body
  that ends inside a JSON value (a Content-Length a few bytes short) is read on to the value's end,
  at most `MAX_OVERRUN` bytes. A Content-Length too long with nothing more sent: once no byte has
  come for `STALL_SECONDS` and the bytes so far are a complete JSON value, that is the message.
- A body that is not JSON is `Unparsable`: the server answers it with ParseError and goes on.
- What cannot be framed at all raises `FramingError`: a Content-Length over `MAX_MESSAGE_BYTES` or
  not a number, a header part without one, a header line over `MAX_HEADER_LINE` bytes or more than
  `MAX_HEADER_LINES` lines. The server then logs one line and exits, so the client can restart it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Protocol

MAX_MESSAGE_BYTES = 128 * 1024 * 1024  # one message; an editor's didOpen of a 50 MB file still fits
MAX_HEADER_LINE = 8192  # bytes of one header line
MAX_HEADER_LINES = 32  # lines in one header part
MAX_OVERRUN = 1024 * 1024  # bytes read past a Content-Length that stopped inside a JSON value
STALL_SECONDS = 1.0  # a body's bytes stopped coming: see the module doc
READ_BYTES = 1 << 16

log = logging.getLogger(__name__)
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*?)[ \t]*")  # RFC 7230 field
_DECODER = json.JSONDecoder()
_LONGEST_CUT_TOKEN = 6  # characters of a literal or escape that a cut can leave unfinished (`"\u00`)


class FramingError(Exception):
    """The stream cannot be cut into messages any more; the message says where it went wrong."""


class ByteSource(Protocol):
    """Where frames come from: asyncio.StreamReader, or anything with its `read`."""

    async def read(self, n: int = -1) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Message:
    """A framed, parsed JSON value (the protocol layer judges whether it is JSON-RPC)."""

    value: Any


@dataclass(frozen=True, slots=True)
class Unparsable:
    """A frame whose body is not JSON; `reason` says what was wrong, for the ParseError."""

    reason: str


Frame = Message | Unparsable


class FrameReader:
    """Cuts a byte stream into LSP frames (see the module doc); `next` is None at the end."""

    def __init__(self, source: ByteSource, stall_seconds: float = STALL_SECONDS) -> None:
        self._source = source
        self._stall = stall_seconds
        self._buffer = bytearray()
        self._ended = False

    async def next(self) -> Frame | None:
        """The next frame; None when the stream ends between frames. Raises FramingError."""
        length = await self._header()
        if length is None:
            return None
        return await self._body(length)

    # reading ----------------------------------------------------------------------------------------
    async def _fill(self, timeout: float | None = None) -> bool:
        """Read more bytes into the buffer; False at the end of the stream or after `timeout` s idle."""
        if self._ended:
            return False
        try:
            block = await asyncio.wait_for(self._source.read(READ_BYTES), timeout)
        except TimeoutError:
            return False
        if not block:
            self._ended = True
            return False
        self._buffer += block
        return True

    async def _line(self) -> bytes | None:
        """One header line without its line end; None at the end of the stream."""
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_HEADER_LINE:
                raise FramingError(f"a header line is longer than {MAX_HEADER_LINE} bytes")
            if not await self._fill():
                if self._buffer:
                    raise FramingError("the stream ended inside a header")
                return None
        if end > MAX_HEADER_LINE:
            raise FramingError(f"a header line is longer than {MAX_HEADER_LINE} bytes")
        line = bytes(self._buffer[:end]).removesuffix(b"\r")
        del self._buffer[: end + 1]
        return line

    async def _header(self) -> int | None:
        """The Content-Length of the next frame; None at the end of the stream."""
        length: int | None = None
        lines = 0
        while True:
            line = await self._line()
            if line is None:
                if lines:
                    raise FramingError("the stream ended inside a header")
                return None
            if not line.strip():
                if length is not None:
                    return length
                if lines:
                    raise FramingError("a header part without Content-Length")
                continue  # blank lines between messages
            lines += 1
            if lines > MAX_HEADER_LINES:
                raise FramingError(f"a header part of more than {MAX_HEADER_LINES} lines")
            length = _content_length(line, length)

    async def _body(self, length: int) -> Frame:
        while len(self._buffer) < length:
            if not await self._fill(self._stall):
                frame = self._early_end(length)
                if frame is not None:
                    return frame
                if self._ended:
                    raise FramingError(f"the stream ended inside a body of {length} bytes")
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return await self._parse(body)

    def _early_end(self, length: int) -> Frame | None:
        """The body so far, when the bytes stopped coming and it is already one whole JSON value."""
        text = bytes(self._buffer).decode("utf-8", "surrogateescape")
        value, end = _value(text)
        if value is None or text[end:].strip():
            return None
        log.warning("Content-Length was %d, but the message ended after %d bytes", length, len(self._buffer))
        self._buffer.clear()
        return value

    async def _parse(self, body: bytes) -> Frame:
        """The body's JSON value; a value that ends early or runs past the body is mended (module doc)."""
        text = body.decode("utf-8", "surrogateescape")
        value, end = _value(text)
        overrun = bytearray()
        while value is None and end < 0 and len(overrun) < MAX_OVERRUN:  # cut inside a value: read on
            if not self._buffer and not await self._fill(self._stall):
                break
            taken = min(len(self._buffer), MAX_OVERRUN - len(overrun))
            overrun += self._buffer[:taken]
            del self._buffer[:taken]
            text = (body + overrun).decode("utf-8", "surrogateescape")
            value, end = _value(text)
        if value is None:
            self._buffer[:0] = overrun  # not a value after all: those bytes are the stream's again
            return Unparsable(_reason(text))
        rest = text[end:].encode("utf-8", "surrogateescape") if text[end:].strip() else b""
        self._buffer[:0] = rest  # the start of the next frame
        if overrun:
            log.warning("Content-Length was %d bytes short of the message's end", len(overrun) - len(rest))
        elif rest:
            log.warning(
                "Content-Length was %d bytes too long; the rest is read as the next message", len(rest)
            )
        return value


def _content_length(line: bytes, known: int | None) -> int | None:
    """The Content-Length a header line gives (else `known`); FramingError for a line that is no header."""
    field = _HEADER.fullmatch(line)
    if field is None:
        raise FramingError(f"not a header line: {line[:80]!r}")
    if field.group(1).lower() != b"content-length":
        return known
    value = field.group(2)
    if not value.isdigit() or len(value) > 20:
        raise FramingError(f"Content-Length is not a number of bytes: {value[:40]!r}")
    length = int(value)
    if length > MAX_MESSAGE_BYTES:
        raise FramingError(f"Content-Length {length} is over the {MAX_MESSAGE_BYTES}-byte limit on a message")
    return length


def _value(text: str) -> tuple[Message | None, int]:
    """(the JSON value at the start of `text`, where it ends); (None, -1) when `text` stops inside
    one, (None, 0) when it is not JSON."""
    start = len(text) - len(text.lstrip())
    try:
        value, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        # cut short: the error is in the last few characters (`nul`, `"\\u00`) or in an open string
        near_end = error.pos >= len(text.rstrip()) - _LONGEST_CUT_TOKEN
        cut = text.startswith(("{", "["), start) and (near_end or error.msg.startswith("Unterminated string"))
        return None, -1 if cut else 0
    except RecursionError:
        return None, 0
    return Message(value), end


def _reason(text: str) -> str:
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return f"the message is not JSON: {error}"
    except RecursionError:
        return "the message is not JSON this server can read: nested too deeply"
    return "the message is not one JSON value"


class MessageHandler(Protocol):
    """What `serve_frames` hands frames to: `CodeSieveProtocol`."""

    exit_code: int | None

    def handle_message(self, message: Any) -> None: ...

    def answer_parse_error(self, reason: str) -> None: ...


async def serve_frames(source: ByteSource, protocol: MessageHandler) -> int:
    """Hand every frame of `source` to `protocol` until `exit` (its code), the end of the stream (0),
    or framing that cannot go on (1, after one log line)."""
    frames = FrameReader(source)
    while protocol.exit_code is None:
        try:
            frame = await frames.next()
        except FramingError as error:
            log.error(
                "cannot read the client's messages any more (%s): exiting, so that it can restart me", error
            )
            return 1
        if frame is None:
            return 0
        try:
            if isinstance(frame, Unparsable):
                protocol.answer_parse_error(frame.reason)
            else:
                protocol.handle_message(frame.value)
        except BrokenPipeError:
            log.error("the client closed the connection: exiting")
            return 1
        except Exception:
            log.exception("could not handle a message")
    return protocol.exit_code


class ThreadedSource:
    """A blocking binary stream (stdin) read on a thread of its own and handed to the event loop,
    at most `AHEAD` blocks ahead of what the frames have taken."""

    AHEAD = 16

    def __init__(self, fileno: int, loop: asyncio.AbstractEventLoop) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(self.AHEAD)
        self._loop = loop
        threading.Thread(target=self._pump, args=(fileno,), name="codesieve-stdin", daemon=True).start()

    async def read(self, n: int = -1) -> bytes:
        return await self._queue.get()

    def _pump(self, fileno: int) -> None:
        while True:
            try:
                block = os.read(fileno, READ_BYTES)
            except OSError as error:
                log.error("cannot read stdin: %s", error)
                block = b""
            try:
                asyncio.run_coroutine_threadsafe(self._queue.put(block), self._loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):  # the loop has ended
                return
            if not block:
                return
