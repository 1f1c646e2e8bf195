"""Fuzzed LSP params, and an open document too large to read, against one real server: a client may send anything.

One `codesieve serve` over stdio indexes a copy of the chunking samples with the tiny test model.
Hypothesis sends it requests and notifications with params of any shape; each request must get an
answer (a result, or an error the server means: never InternalError, which is a crash in a
handler) within ANSWER_SECONDS, and the log must hold no traceback. The run is bounded by
`max_examples`, and every answer by that liveness limit.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import TESTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_raw import RawServer, frame, request

from codesieve.server.lsp.protocol import uri_of

pytestmark = pytest.mark.timeout(600)

SAMPLES = TESTS / "data" / "chunking"
EXPECTED_ERRORS = {-32600, -32601, -32602, -32002, -32800, -32803}  # never -32603, InternalError
_IDS = itertools.count(1)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[tuple[RawServer, Path]]:
    root = tmp_path_factory.mktemp("fuzz") / "workspace"
    shutil.copytree(SAMPLES, root)
    server = RawServer()
    options = {
        "model": str(tiny_model),
        "indexDir": str(root.parent / "indexes"),
        "threads": 1,
        "pollInterval": 0,
    }
    server.initialize([root], options)
    deadline = time.monotonic() + 120
    while server.ask(f"ready-{next(_IDS)}", "codeSearch/status")["result"]["state"] != "ready":
        assert time.monotonic() < deadline, server.log()[-2000:]
        time.sleep(0.2)
    yield server, root
    server.close()


def ask(server: RawServer, method: str, params: Any) -> dict[str, Any]:
    answer = server.ask(f"fuzz-{next(_IDS)}", method, params)
    assert "result" in answer or answer["error"]["code"] in EXPECTED_ERRORS, (method, params, answer)
    return answer


def test_a_50_mb_open_document_does_not_hold_up_a_find(served: tuple[RawServer, Path]) -> None:
    server, root = served
    uri = uri_of(root / "grown.py")
    text = "def grown(total):\n" + "    total += 1\n" * 3_500_000  # 52.5 MB
    document = {"uri": uri, "languageId": "python", "version": 1, "text": text}
    server.send(
        frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": document}})
    )
    similar = {"textDocument": {"uri": uri}, "position": {"line": 1_000_000, "character": 4}}
    server.send(frame(request("similar", "codeSearch/findSimilar", similar)))
    server.send(frame(request("find", "codeSearch/find", {"query": "read a config file"})))
    found, refused = server.answer("find", timeout=120), server.answer("similar", timeout=120)
    assert found["result"]["hits"], found
    assert refused["error"]["code"] == -32803 and "at most" in refused["error"]["message"]
    server.send(
        frame({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
    )


def _uris(root: Path) -> st.SearchStrategy[str]:
    files = sorted(path.name for path in SAMPLES.iterdir())
    inside = st.sampled_from(files).map(lambda name: uri_of(root / name))
    return inside | st.sampled_from(
        ["file:///etc/hostname", "untitled:1", "https://x.org/a.py", "", "file://"]
    )


def _params(root: Path) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30)
    anything = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    )
    position = st.fixed_dictionaries(
        {"line": st.integers(-2, 2**40) | anything, "character": st.integers(-1, 500)}
    )
    document = st.fixed_dictionaries({"uri": _uris(root) | anything})
    fields = st.fixed_dictionaries(
        {},
        optional={
            "query": st.text(max_size=200) | anything,
            "limit": st.integers(-5, 2000) | anything,
            "rerank": anything,
            "include": st.lists(st.text(max_size=20), max_size=3) | anything,
            "exclude": st.lists(st.text(max_size=20), max_size=3) | anything,
            "languages": st.lists(st.sampled_from(["python", "go", "x"]), max_size=2) | anything,
            "code": st.text(max_size=300) | anything,
            "language": anything,
            "textDocument": document | anything,
            "position": position | anything,
            "range": st.fixed_dictionaries({"start": position, "end": position}) | anything,
            "context": st.fixed_dictionaries({"diagnostics": st.just([])}) | anything,
            "command": st.sampled_from(["codeSearch.find", "codeSearch.findSimilar", "nope"]) | anything,
            "arguments": st.lists(anything | _uris(root), max_size=3) | anything,
        },
    )
    return fields | anything


REQUESTS = ["codeSearch/find", "codeSearch/findSimilar", "codeSearch/status", "textDocument/codeAction",
            "workspace/executeCommand", "textDocument/hover", "initialize"]  # fmt: skip
NOTIFICATIONS = ["textDocument/didOpen", "textDocument/didChange", "textDocument/didSave", "textDocument/didClose",
                 "workspace/didChangeWatchedFiles", "$/cancelRequest", "workspace/didChangeConfiguration"]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_params_get_answers_and_never_crash_the_server(
    served: tuple[RawServer, Path], data: st.DataObject
) -> None:
    server, root = served
    if data.draw(st.booleans(), label="notification first"):
        method = data.draw(st.sampled_from(NOTIFICATIONS), label="notification")
        if method != "workspace/didChangeConfiguration":  # settings would reopen and re-index the folder
            server.send(
                frame(
                    {
                        "jsonrpc": "2.0",
                        "method": method,
                        "params": data.draw(_params(root), label="its params"),
                    }
                )
            )
    ask(
        server, data.draw(st.sampled_from(REQUESTS), label="method"), data.draw(_params(root), label="params")
    )
    assert "result" in ask(server, "codeSearch/status", None)  # still answering
    assert "Traceback" not in server.log(), server.log()[-3000:]
