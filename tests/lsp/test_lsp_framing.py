"""The base protocol's framing and the LSP lifecycle, as any client drives them.

What must hold: what can be answered is answered, per the LSP spec; what cannot be framed ends the
process with one log line and exit status 1, so that the client can restart it, instead of a crash
(MemoryError, OverflowError) or a deaf process that keeps its index's writer lock. The reader is
tested in process (`FrameReader` over bytes, hypothesis-fuzzed); the server over stdio, one process
for all the cases that leave it running.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_raw import RawServer, frame, request

from codesieve.server.lsp.framing import MAX_MESSAGE_BYTES, FrameReader, FramingError, Message, Unparsable

pytestmark = pytest.mark.timeout(180)


# the reader, in process -------------------------------------------------------------------------------
class Chunks:
    """A byte source handing out `data` in blocks of the given sizes, then the end of the stream."""

    def __init__(self, data: bytes, sizes: list[int] | None = None) -> None:
        self.data, self.sizes = data, list(sizes or [])

    async def read(self, n: int = -1) -> bytes:
        size = self.sizes.pop(0) if self.sizes else 1 << 16
        block, self.data = self.data[:size], self.data[size:]
        return block


def read_all(data: bytes, sizes: list[int] | None = None) -> list[Any]:
    """Every frame of `data` (Message values, Unparsable), then "end" or the FramingError."""

    async def run() -> list[Any]:
        reader, frames = FrameReader(Chunks(data, sizes), stall_seconds=0.01), []
        while True:
            try:
                found = await reader.next()
            except FramingError as error:
                return [*frames, error]
            if found is None:
                return [*frames, "end"]
            frames.append(found.value if isinstance(found, Message) else found)

    return asyncio.run(asyncio.wait_for(run(), 30))


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    "header",
    [b"Content-Length: %d\r\n\r\n", b"content-length: %d\r\n\r\n", b"Content-Length:   %d  \r\n\r\n",
     b"Content-Length: %d\n\n", b"CONTENT-LENGTH:%d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
     b"\r\nContent-Length: %d\r\n\r\n"],
)  # fmt: skip
def test_header_names_in_any_case_extra_spaces_and_lf_line_ends_are_read(header: bytes) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "x"}
    assert read_all(header % len(body(message)) + body(message)) == [message, "end"]


@pytest.mark.parametrize("off_by", [-9, -2, -1, 1, 3])
def test_a_content_length_a_few_bytes_off_is_read_to_the_end_of_the_message(off_by: int) -> None:
    first, second = {"id": 1, "params": {"text": "é \\u00e9 null"}}, {"id": 2}
    data = b"Content-Length: %d\r\n\r\n%s" % (len(body(first)) + off_by, body(first)) + frame(second)
    assert read_all(data, sizes=[7, 3, 20]) == [first, second, "end"]


def test_a_content_length_too_long_with_nothing_behind_it_is_read_once_the_bytes_stop() -> None:
    message = {"id": 1}
    assert read_all(b"Content-Length: %d\r\n\r\n%s" % (len(body(message)) + 5, body(message))) == [
        message,
        "end",
    ]


def test_a_body_that_is_not_json_is_unparsable_and_the_next_frame_is_read() -> None:
    frames = read_all(b"Content-Length: 9\r\n\r\n{not json" + frame({"id": 2}))
    assert isinstance(frames[0], Unparsable) and frames[1:] == [{"id": 2}, "end"]


@pytest.mark.parametrize(
    "data",
    [b"Content-Length: %d\r\n\r\n{}" % (MAX_MESSAGE_BYTES + 1), b"Content-Length: 10000000000000000000000\r\n\r\n",
     b"Content-Length: " + b"9" * 400 + b"\r\n\r\n", b"Content-Length: -1\r\n\r\n", b"Content-Length: x\r\n\r\n",
     b"no header here\r\n\r\n", b"Content-Type: a\r\n\r\n", b"\xff" * 20_000, b"X: y\r\n" * 40 + b"\r\n",
     b"Content-Length: 10\r\n\r\n{", b"Content-Length: 5\r\n"],
)  # fmt: skip
def test_framing_that_cannot_be_recovered_is_a_framing_error(data: bytes) -> None:
    frames = read_all(data)
    assert len(frames) == 1 and isinstance(frames[0], FramingError), frames


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_HEADERS = st.sampled_from(
    [b"Content-Length: %d\r\n\r\n", b"content-length:%d\n\n", b"Content-Length:  %d \r\nX-Y: z\r\n\r\n"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(
        st.tuples(_HEADERS, st.dictionaries(st.text(max_size=8), _JSON, max_size=4)), max_size=5
    ),
    sizes=st.lists(st.integers(1, 64), max_size=30),
)
def test_fuzzed_well_formed_streams_give_back_their_messages(messages: list[Any], sizes: list[int]) -> None:
    data = b"".join(header % len(body(value)) + body(value) for header, value in messages)
    assert read_all(data, sizes) == [json.loads(body(value)) for _, value in messages] + ["end"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.lists(st.dictionaries(st.text(max_size=5), _JSON, max_size=3), max_size=3),
    cut=st.integers(0, 400),
    noise=st.binary(max_size=60),
    offset=st.integers(-20, 20),
    sizes=st.lists(st.integers(1, 64), max_size=20),
)
def test_fuzzed_broken_streams_end_in_frames_or_a_framing_error_never_a_crash_or_a_hang(
    prefix: list[Any], cut: int, noise: bytes, offset: int, sizes: list[int]
) -> None:
    stream = b"".join(frame(value) for value in prefix)
    length_at = stream.find(b"Content-Length: ")
    if length_at >= 0 and offset:  # one Content-Length off by `offset`
        end = stream.index(b"\r\n", length_at)
        number = int(stream[length_at + 16 : end]) + offset
        stream = stream[: length_at + 16] + str(max(number, 0)).encode() + stream[end:]
    data = stream[:cut] + noise + stream[cut:]
    frames = read_all(data, sizes)  # bounded: asyncio.wait_for(30 s), hypothesis-sized input
    assert frames[-1] == "end" or isinstance(frames[-1], FramingError)
    assert all(
        isinstance(found, dict | list | str | int | float | bool | Unparsable) or found is None
        for found in frames[:-1]
    )


# the server, over stdio ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    """One initialized server for every case that leaves it running."""
    server = RawServer()
    server.initialize()
    yield server
    server.close()


def assert_one_line_about_framing(server: RawServer) -> None:
    log = server.log()
    assert "Traceback" not in log and "MemoryError" not in log and "OverflowError" not in log, log
    assert log.count("cannot read the client's messages any more") == 1, log


@pytest.mark.parametrize("length", [10**12, 10**20])
def test_a_content_length_over_the_limit_ends_the_server_with_one_log_line(length: int) -> None:
    server = RawServer()
    try:
        server.initialize()
        server.send(b"Content-Length: %d\r\n\r\n{}" % length)
        assert server.exit_code() == 1
        assert_one_line_about_framing(server)
    finally:
        server.close()


def test_the_server_answers_messages_whose_framing_is_a_few_bytes_off(server: RawServer) -> None:
    status = json.dumps(request("off", "codeSearch/status")).encode()
    server.send(
        b"content-length:  %d\n\n%s" % (len(status) + 3, status) + frame(request("next", "codeSearch/status"))
    )
    assert "result" in server.answer("off") and "result" in server.answer("next")
    server.send(b"Content-Length: 9\r\n\r\n{not json")
    assert server.answer(None)["error"]["code"] == -32700
    assert "result" in server.ask("after", "codeSearch/status")
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("msg_id", [{"a": 1}, [1], None, True, 1.5])
def test_a_request_whose_id_is_not_a_string_or_integer_gets_invalid_request(
    server: RawServer, msg_id: object
) -> None:
    server.send(frame(request(msg_id, "codeSearch/status")))
    answer = server.answer(None)
    assert answer["error"]["code"] == -32600 and "request id" in answer["error"]["message"]
    assert "result" in server.ask("string ids work", "codeSearch/status")


def test_messages_that_are_not_requests_get_invalid_request(server: RawServer) -> None:
    for message in ([1, 2], [], "x", 7):
        server.send(frame(message))
        assert server.answer(None)["error"]["code"] == -32600
    server.send(frame({"jsonrpc": "1.0", "id": 5, "method": "codeSearch/status"}))
    assert server.answer(5)["error"]["code"] == -32600
    server.send(frame({"jsonrpc": "2.0", "id": 6, "method": 42}))
    assert server.answer(6)["error"]["code"] == -32600
    assert "Traceback" not in server.log()


def test_a_request_without_params_is_answered(server: RawServer) -> None:
    server.send(frame({"jsonrpc": "2.0", "id": "bare", "method": "codeSearch/status"}))
    assert server.answer("bare")["result"]["state"] == "ready"


def test_the_lifecycle_the_spec_asks_for_and_exit_0_after_shutdown() -> None:
    server = RawServer()
    try:
        assert server.ask(1, "codeSearch/status")["error"]["code"] == -32002  # before initialize
        assert server.ask(2, "shutdown")["error"]["code"] == -32002
        server.send(frame({"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {}}))  # dropped
        server.initialize()
        assert "result" in server.ask(3, "codeSearch/status")
        assert server.ask(4, "initialize", {"processId": None, "capabilities": {}})["error"]["code"] == -32600
        assert server.ask(5, "shutdown") == {"jsonrpc": "2.0", "id": 5, "result": None}
        assert server.ask(6, "codeSearch/status")["error"]["code"] == -32600  # after shutdown
        assert server.ask(7, "initialize", {"processId": None, "capabilities": {}})["error"]["code"] == -32600
        server.send(frame({"jsonrpc": "2.0", "method": "exit"}))
        assert server.exit_code() == 0
        assert "Traceback" not in server.log()
    finally:
        server.close()


def test_exit_without_shutdown_ends_with_1() -> None:
    server = RawServer()
    try:
        server.initialize()
        server.send(frame({"jsonrpc": "2.0", "method": "exit", "params": None}))
        assert server.exit_code() == 1
    finally:
        server.close()
