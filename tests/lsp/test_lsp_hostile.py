"""Oversized and malformed input over LSP, from a buggy or hostile client: each gets a clear error or a bounded answer,
and the server stays up and keeps answering.

Every case is followed by `assert_alive`: a normal search still answers, and an exact copy of a
chunk still ranks that chunk first. Errors the server means to send (InvalidParams, RequestFailed)
must not leave a traceback in its log, nor an "Error in server" message in the editor. The
bound on answers (`ANSWER_SECONDS`) is a liveness limit, a hundred times the measured answers
(under a second for a 50,000-line function), not a benchmark: a hang or quadratic work blows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsp_harness import Client, dumps, eventually, start
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcMethodNotFound

from codesieve.server.lsp.protocol import (
    MAX_CODE_CHARS,
    MAX_PATTERN_CHARS,
    MAX_QUERY_CHARS,
    REQUEST_FAILED,
    uri_of,
)

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.timeout(240)]

ANSWER_SECONDS = 60.0
HUGE_LINES = 50_000
MAX_FILE_SIZE = 1_000_000
COPY = "def read_config(path):\n    with open(path) as handle:\n        return handle.read().split()"
FIND, SIMILAR = "codeSearch/find", "codeSearch/findSimilar"


def huge_function(padding: str = "") -> str:
    """A Python file whose one function is HUGE_LINES lines long (lines 4 .. HUGE_LINES + 4, 1-based)."""
    body = f"    total += 1{padding}\n" * HUGE_LINES
    return f"import os\n\n\ndef huge(total):\n{body}    return total\n"


@pytest.fixture()
def hostile_workspace(sample_workspace: Path) -> Path:
    """The sample files, a known function, and two saved 50,000-line functions: one below
    maxFileSize (indexed) and one above it (skipped by the index)."""
    (sample_workspace / "config.py").write_text(COPY + "\n", encoding="utf-8")
    small, big = huge_function(), huge_function("  # " + "padding " * 3)
    assert len(small) < MAX_FILE_SIZE < len(big)
    (sample_workspace / "huge_small.py").write_text(small, encoding="utf-8")
    (sample_workspace / "huge_big.py").write_text(big, encoding="utf-8")
    return sample_workspace


@pytest_asyncio.fixture()
async def client(hostile_workspace: Path, tiny_model: Path, tmp_path: Path) -> AsyncIterator[Client]:
    options = {
        "model": str(tiny_model),
        "indexDir": str(tmp_path / "indexes"),
        "threads": 1,
        "maxFileSize": MAX_FILE_SIZE,
        "pollInterval": 0,
    }
    client = await start([hostile_workspace], options)
    await client.wait_for_state("ready", timeout=120)
    yield client
    await client.shutdown_session()


async def answer(pending: Awaitable[Any]) -> Any:
    """The answer to a request, which must come within ANSWER_SECONDS."""
    return await asyncio.wait_for(pending, ANSWER_SECONDS)


async def error_of(pending: Awaitable[Any]) -> JsonRpcException:
    """The LSP error a request is answered with (within ANSWER_SECONDS)."""
    with pytest.raises(JsonRpcException) as caught:
        await answer(pending)
    return caught.value


async def assert_alive(client: Client, root: Path) -> None:
    """The server answers a normal search, and a chunk's exact copy still finds that chunk first."""
    found = await answer(client.find("read a file", limit=5))
    assert len(found["hits"]) == 5 and found["stats"]["indexState"] == "ready"
    hits = (await answer(client.similar_code(COPY, limit=5)))["hits"]
    # not always first: hnswlib is approximate, and the 1,250 near-identical windows of the workspace's
    # 50,000-line file crowd the tiny test model's graph; the answer must be whole and well formed
    assert len(hits) == 5 and all(hit["uri"].startswith(uri_of(root)) for hit in hits), hits


async def logged(client: Client, text: str) -> None:
    """Wait until the server's log has `text` (so what came before it has been read too)."""

    async def log() -> str:
        return client.log()

    await eventually(log, lambda log: text in log)


def assert_no_tracebacks(client: Client) -> None:
    log = client.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 200 :][:3000]
    errors = [message.message for message in client.messages if message.type == types.MessageType.Error]
    assert errors == []


def similar_at(uri: str, line: Any, **options: Any) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}, **options}


def open_document(client: Client, uri: str, text: str) -> None:
    item = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(item))


async def test_oversized_and_odd_queries(client: Client, hostile_workspace: Path) -> None:
    root = hostile_workspace
    # 10 MB of query: InvalidParams that says the limit, not 10 MB of work or of error message
    error = await error_of(client.find("x" * 10_000_000))
    assert isinstance(error, JsonRpcInvalidParams) and f"the limit is {MAX_QUERY_CHARS}" in error.message
    assert len(error.message) < 300
    await assert_alive(client, root)
    assert (await answer(client.find("sort " * (MAX_QUERY_CHARS // 5))))["hits"]  # at the limit: answered

    for blank in (" ", "\t\n\r\x0b\x0c\u00a0\u2028\u3000"):
        error = await error_of(client.find(blank))
        assert isinstance(error, JsonRpcInvalidParams) and "non-empty `query`" in error.message
    # text no tokenizer expects is still a query: answered, bounded by `limit`
    for odd in ("\x00", "sort\x00the\x00list", "\x01\x02\x1b[31m\x7f\x9f", "\ud800 lone \udfff surrogates"):
        assert 0 < len((await answer(client.find(odd, limit=3)))["hits"]) <= 3, odd
        await assert_alive(client, root)

    error = await error_of(client.similar_code("x = 1\n" * (MAX_CODE_CHARS // 6 + 1)))
    assert isinstance(error, JsonRpcInvalidParams) and f"the limit is {MAX_CODE_CHARS}" in error.message
    # a glob's compile time grows with the square of its length: a long one is refused at once
    error = await error_of(client.find("sort", include=["a" * (MAX_PATTERN_CHARS + 1)]))
    assert isinstance(error, JsonRpcInvalidParams) and str(MAX_PATTERN_CHARS) in error.message
    await assert_alive(client, root)
    await logged(client, "the limit is")
    assert_no_tracebacks(client)


async def test_find_similar_inside_a_50000_line_function(client: Client, hostile_workspace: Path) -> None:
    root = hostile_workspace
    small, big = uri_of(root / "huge_small.py"), uri_of(root / "huge_big.py")
    middle = HUGE_LINES // 2
    # saved, below maxFileSize: answered from the file on disk, in the middle and at the start
    for line in (middle, 10):
        assert len((await answer(client.request(SIMILAR, similar_at(small, line))))["hits"]) <= 20
    # saved, above maxFileSize and not open: a clear error naming the setting
    error = await error_of(client.request(SIMILAR, similar_at(big, middle)))
    assert error.code == REQUEST_FAILED and "max_file_size" in error.message
    await assert_alive(client, root)

    # unsaved: the editor's text is used, whatever its size, and the answer is bounded by `limit`
    unsaved = uri_of(root / "unsaved.py")
    open_document(client, unsaved, huge_function())
    similar = await answer(client.request(SIMILAR, similar_at(unsaved, middle, limit=7)))
    assert 0 < len(similar["hits"]) <= 7
    open_document(client, big, huge_function("  # " + "padding " * 3))
    assert (await answer(client.request(SIMILAR, similar_at(big, middle))))["hits"]

    # a thousand hits in one open 50,000-line document: each hit's range is measured on it
    open_document(client, small, huge_function())
    many = await answer(client.similar_code("    total += 1\n    total += 1\n", limit=1000))
    assert len(many["hits"]) == 1000
    assert all(hit["range"]["end"]["line"] <= HUGE_LINES + 4 for hit in many["hits"])

    # past the end of the document, open or on disk: how many lines it has
    for uri in (unsaved, uri_of(root / "config.py")):
        error = await error_of(client.request(SIMILAR, similar_at(uri, 10**9)))
        assert error.code == REQUEST_FAILED and "is past its end" in error.message
    await assert_alive(client, root)
    assert_no_tracebacks(client)


MALFORMED: list[tuple[str, str, Any, int, str]] = [
    # (case, method, params, error code, part of the message)
    ("limit as a string", FIND, {"query": "sort", "limit": "5"}, -32602, "limit must be an integer"),
    ("negative limit", FIND, {"query": "sort", "limit": -1}, -32602, "limit must be an integer"),
    ("huge limit", FIND, {"query": "sort", "limit": 10**30}, -32602, "from 1 to 1000"),
    ("limit of 10 MB", FIND, {"query": "sort", "limit": "9" * 10_000_000}, -32602, "characters)"),
    ("limit as a float", FIND, {"query": "sort", "limit": 5.0}, -32602, "limit must be an integer"),
    ("rerank as a string", FIND, {"query": "sort", "rerank": "no"}, -32602, "rerank must be true or false"),
    ("includeTests as 1", FIND, {"query": "sort", "includeTests": 1}, -32602, "includeTests must be true or false"),
    ("query as a number", FIND, {"query": 42}, -32602, "non-empty `query`"),
    ("no query", FIND, {"limit": 3}, -32602, "non-empty `query`"),
    ("include as a string", FIND, {"query": "sort", "include": "*.py"}, -32602, "list of strings"),
    ("languages of numbers", FIND, {"query": "sort", "languages": [1]}, -32602, "list of strings"),
    ("too many globs", FIND, {"query": "sort", "exclude": ["*.c"] * 101}, -32602, "at most 100"),
    ("include glob python's re rejects", FIND, {"query": "sort", "include": ["[z-a]"]}, REQUEST_FAILED,
     "include glob '[z-a]' is not a valid gitignore-style pattern (bad character range z-a)"),
    ("similar: exclude glob git rejects", SIMILAR, {"code": "x = 1", "exclude": ["!"]}, REQUEST_FAILED,
     "exclude glob '!' is not a valid"),
    ("params as a list", FIND, ["sort"], -32602, "params must be an object"),
    ("params null", FIND, None, -32602, "non-empty `query`"),
    ("similar: params as a list", SIMILAR, [1, 2], -32602, "params must be an object"),
    ("similar: params null", SIMILAR, None, -32602, "needs either `code`"),
    ("similar: no position", SIMILAR, {"textDocument": {"uri": "file:///x.py"}}, -32602, "position must be"),
    ("similar: uri a number", SIMILAR, {"textDocument": {"uri": 7}, "position": {}}, -32602, "needs either"),
    ("similar: code empty", SIMILAR, {"code": "  \n"}, -32602, "`code` must be a non-empty string"),
    ("similar: language a list", SIMILAR, {"code": "x = 1", "language": ["py"]}, -32602, "language must be"),
    ("unknown method", "codeSearch/nothing", {}, JsonRpcMethodNotFound.CODE, "nothing"),
    # standard requests whose params do not fit their type: pygls used to leave these unanswered
    ("code action, range a string", "textDocument/codeAction", {"textDocument": {"uri": "file:///x.py"},
     "range": "x", "context": {"diagnostics": []}}, -32602, "params.range"),
    ("executeCommand, params a list", "workspace/executeCommand", [1], -32602, "params.command"),
    ("executeCommand, unknown command", "workspace/executeCommand", {"command": "codeSearch.nope"}, -32602,
     "is not defined"),
]  # fmt: skip


def position_cases(root: Path) -> list[tuple[str, Any, int, str]]:
    """(case, findSimilar params, error code, part of the message) about documents and positions."""
    inside = uri_of(root / "config.py")
    return [
        ("negative line", similar_at(inside, -1), -32602, "integers >= 0"),
        ("line as a string", similar_at(inside, "2"), -32602, "integers >= 0"),
        ("character a string", {**similar_at(inside, 1), "position": {"line": 1, "character": "x"}}, -32602,
         "integers >= 0"),
        ("position a string", {**similar_at(inside, 1), "position": "here"}, -32602, "integers >= 0"),
        ("file outside the workspace", similar_at("file:///nowhere/else.py", 1), -32602,
         "not inside a workspace folder"),
        ("file that does not exist", similar_at(uri_of(root / "gone.py"), 1), REQUEST_FAILED, "Cannot read"),
        ("untitled: URI", similar_at("untitled:Untitled-1", 1), -32602, "not a file:// URI"),
        ("https: URI", similar_at("https://example.com/x.py", 1), -32602, "not a file:// URI"),
        ("URI of 1 MB", similar_at("untitled:" + "u" * 1_000_000, 1), -32602, "characters)"),
        ("line past the end", similar_at(inside, 5000), REQUEST_FAILED, "has 3 lines: line 5001 is past its end"),
    ]  # fmt: skip


async def test_malformed_params_get_clear_errors(client: Client, hostile_workspace: Path) -> None:
    root = hostile_workspace
    cases = [
        *MALFORMED,
        *((case, SIMILAR, params, code, part) for case, params, code, part in position_cases(root)),
    ]
    for case, method, params, code, part in cases:
        error = await error_of(client.raw_request(method, params))
        assert (error.code, part in error.message) == (code, True), (case, error.code, error.message[:300])
        assert len(error.message) < 1000, case
        await assert_alive(client, root)

    # extra fields are ignored, even an object that looks like a JSON-RPC message
    extra = {"query": "read a file", "limit": 2, "unknown": {"jsonrpc": "2.0", "method": 5}, "x": [None]}
    assert len((await answer(client.raw_request(FIND, extra)))["hits"]) == 2
    assert (await answer(client.raw_request("codeSearch/status", ["ignored"])))["state"] == "ready"

    config = uri_of(root / "config.py")
    for arguments, part in [
        ([], "codeSearch.findSimilar takes [uri, position]"),
        ([config], "codeSearch.findSimilar takes [uri, position]"),
        ([config, "line 2"], "integers >= 0"),
        ([config, {"line": -3}], "integers >= 0"),
        ([42, {"line": 1}], "codeSearch.findSimilar takes [uri, position]"),
        (["untitled:Untitled-1", {"line": 1}], "not a file:// URI"),
    ]:
        params = types.ExecuteCommandParams("codeSearch.findSimilar", arguments)
        error = await error_of(client.workspace_execute_command_async(params))
        assert isinstance(error, JsonRpcInvalidParams) and part in error.message, (arguments, error.message)
    for arguments in ([], [None], [["sort"]], [{"query": "sort"}]):
        params = types.ExecuteCommandParams("codeSearch.find", arguments)
        error = await error_of(client.workspace_execute_command_async(params))
        assert isinstance(error, JsonRpcInvalidParams) and "codeSearch.find takes" in error.message
    params = types.ExecuteCommandParams("codeSearch.find", ["read a file", "not options"])
    assert (await answer(client.workspace_execute_command_async(params)))["hits"]  # bad options: defaults

    # code actions in a buffer that is not a file: none, not an error
    here = types.Range(types.Position(0, 0), types.Position(0, 0))
    for uri in ("untitled:Untitled-1", "https://example.com/x.py"):
        action = types.CodeActionParams(types.TextDocumentIdentifier(uri), here, types.CodeActionContext([]))
        assert await answer(client.text_document_code_action_async(action)) is None
    await assert_alive(client, root)
    await logged(client, "limit must be an integer")
    assert_no_tracebacks(client)


async def test_malformed_notifications_are_ignored(client: Client, hostile_workspace: Path) -> None:
    root = hostile_workspace
    never_opened = uri_of(root / "never.py")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=never_opened),
            [types.TextDocumentContentChangeWholeDocument("def f():\n    return 1\n")],
        )
    )
    client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier("untitled:1")))
    client.raw_notify(
        "workspace/didChangeWatchedFiles", {"changes": [{"uri": "https://x.org/y.py", "type": 1}]}
    )
    client.raw_notify(
        "textDocument/didChange", {"textDocument": {"uri": never_opened}, "contentChanges": "x"}
    )
    client.raw_notify("textDocument/didOpen", None)
    client.raw_notify("codeSearch/unknownNotification", [1, 2, 3])
    client.write_bytes(dumps([1, 2, 3]))  # JSON, but not a JSON-RPC message
    await assert_alive(client, root)

    # opened after all that, the document is the editor's text (never.py is not on disk)
    open_document(client, never_opened, "x = 1\n\n\ndef opened_later(a):\n    return a * 3\n")
    assert "hits" in await answer(client.request(SIMILAR, similar_at(never_opened, 4)))
    await logged(client, "it was never opened")
    assert_no_tracebacks(client)

    # bytes that are not JSON at all: answered with ParseError (tests/lsp/test_lsp_framing.py), and the server goes on
    client.write_bytes(b"{this is not json")
    await assert_alive(client, root)


async def test_unsaved_edits_of_a_file_whose_uri_is_quoted(client: Client, hostile_workspace: Path) -> None:
    """A path with a space has a %20 in its URI; the editor's text of it is used, not the disk's."""
    path = hostile_workspace / "with space.py"
    path.write_text("x = 1\n", encoding="utf-8")
    uri = uri_of(path)
    assert "%20" in uri
    open_document(client, uri, "x = 1\n\n\ndef only_in_the_editor(a):\n    return a * 3\n")
    assert (await answer(client.request(SIMILAR, similar_at(uri, 4))))["hits"]
