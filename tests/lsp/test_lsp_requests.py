"""Protocol tests: the real `codesieve serve` over stdio, driven by pytest-lsp with the client
capabilities of VS Code and of Neovim (see docs/PROTOCOL.md for the contract checked here).

The model is the tiny random BERT of conftest.py, so these tests assert structure (ranges, exact
copies ranking first, deleted files disappearing, errors), never relevance.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from indexcheck import open_workspace
from lsp_harness import NEOVIM, VSCODE, Client, eventually, start
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pygls.workspace.position_codec import PositionCodec

from codesieve.server.lsp.protocol import uri_of

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.timeout(120)]

GREET = 'def greet(name):\n    """Say hello."""\n    return f"héllo {name} 😋"\n'


@pytest.fixture()
def workspace(sample_workspace: Path) -> Path:
    (sample_workspace / "emoji.py").write_text(f"import os\n\n\n{GREET}", encoding="utf-8")
    return sample_workspace


@pytest.fixture()
def options(tiny_model: Path, tmp_path: Path) -> dict[str, Any]:
    return {"model": str(tiny_model), "indexDir": str(tmp_path / "indexes"), "threads": 1}


@pytest_asyncio.fixture(params=[VSCODE, NEOVIM])
async def ready(
    request: pytest.FixtureRequest, workspace: Path, options: dict[str, Any]
) -> AsyncIterator[Client]:
    client = await start([workspace], options, request.param)
    await client.wait_for_state("ready")
    yield client
    await client.shutdown_session()


def assert_hit_ranges(client: Client, result: dict[str, Any]) -> None:
    """Each hit's range starts at column 0 of its first line and ends at the end of its last."""
    codec = PositionCodec(client.encoding)
    for hit in result["hits"]:
        lines = (
            Path(hit["uri"].removeprefix("file://")).read_text(encoding="utf-8", errors="replace").split("\n")
        )
        start, end = hit["range"]["start"], hit["range"]["end"]
        assert start["character"] == 0 and start["line"] <= end["line"] < len(lines)
        assert end["character"] == codec.client_num_units(lines[end["line"]].rstrip("\r"))
        assert hit["stage"] in ("retrieve", "rerank") and hit["kind"] in (1, 5, 6, 12) and hit["preview"]


async def test_index_find_and_similar(ready: Client, workspace: Path) -> None:
    client = ready
    assert any(
        isinstance(reports[0], types.WorkDoneProgressBegin)
        and isinstance(reports[-1], types.WorkDoneProgressEnd)
        for reports in client.progress_reports.values()
        if reports
    ), client.progress_reports
    assert client.index_statuses[-1]["state"] == "ready"
    status = await client.status()
    assert status["files"] >= 10 and status["chunks"] > 10 and status["model"] == "tiny-random-0"
    assert status["folders"][0]["root"] == str(workspace.resolve())

    result = await client.find("say hello to someone", limit=5)
    assert 0 < len(result["hits"]) <= 5 and result["stats"]["indexState"] == "ready"
    assert result["stats"]["reranked"] > 0
    assert status["ranker"] and (await client.find("hello", rerank=False))["stats"]["ranker"]
    assert_hit_ranges(client, result)
    # the cascade's order survives the server: the ranker reorders the retriever's top 10, nothing else
    retrieved = [
        hit["name"] + hit["uri"] for hit in (await client.find("say hello", limit=30, rerank=False))["hits"]
    ]
    reranked = [hit["name"] + hit["uri"] for hit in (await client.find("say hello", limit=30))["hits"]]
    assert sorted(reranked[:10]) == sorted(retrieved[:10]) and reranked[10:] == retrieved[10:]
    plain = await client.find("say hello", rerank=False, languages=["python"])
    assert {hit["stage"] for hit in plain["hits"]} == {"retrieve"}
    assert {hit["language"] for hit in plain["hits"]} == {"python"}
    go_only = await client.find("parse", include=["*.go"])
    assert go_only["hits"] and all(hit["uri"].endswith(".go") for hit in go_only["hits"])

    emoji = uri_of(workspace / "emoji.py")
    copy = await client.similar_code(GREET.rstrip("\n"))
    top = copy["hits"][0]
    assert (top["uri"], top["name"], top["kind"]) == (emoji, "greet", 12)
    last = PositionCodec(client.encoding).client_num_units(GREET.split("\n")[2])
    assert top["range"] == {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": last}}
    by_position = await client.request(
        "codeSearch/findSimilar", {"textDocument": {"uri": emoji}, "position": {"line": 4, "character": 4}}
    )
    assert by_position["hits"] and not any(
        hit["uri"] == emoji and hit["name"] == "greet" for hit in by_position["hits"]
    )
    by_command = await client.workspace_execute_command_async(
        types.ExecuteCommandParams("codeSearch.findSimilar", [emoji, {"line": 4, "character": 0}])
    )
    assert [hit["name"] for hit in by_command["hits"]] == [hit["name"] for hit in by_position["hits"]]
    found = await client.workspace_execute_command_async(
        types.ExecuteCommandParams("codeSearch.find", ["hello"])
    )
    assert found["hits"]

    # codeSearch.reindex runs a new full sync: lastSynced moves on and the index is ready again
    synced = status["lastSynced"]
    assert status["folders"][0]["lastSynced"] == synced
    await client.workspace_execute_command_async(types.ExecuteCommandParams("codeSearch.reindex", []))
    for _ in range(200):
        status = await client.status()
        if status["state"] == "ready" and status.get("lastSynced", "") > synced:
            break
        await asyncio.sleep(0.05)
    assert status["state"] == "ready" and status["lastSynced"] > synced and status["chunks"] > 10


async def test_find_puts_implementation_first_unless_include_tests(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_greet.py").write_text(GREET, encoding="utf-8")  # indexed first
    (root / "zlib").mkdir()
    (root / "zlib" / "greet.py").write_text(GREET, encoding="utf-8")
    client = await start([root], options, NEOVIM)
    try:
        await client.wait_for_state("ready")
        found = await client.find(GREET, limit=2, rerank=False)
        assert [hit["uri"] for hit in found["hits"]] == [
            uri_of(root / "zlib" / "greet.py"),
            uri_of(root / "tests" / "test_greet.py"),
        ]
        with_tests = await client.find(GREET, limit=2, rerank=False, includeTests=True)
        assert len(with_tests["hits"]) == 2
        by_command = await client.workspace_execute_command_async(
            types.ExecuteCommandParams("codeSearch.find", [GREET, {"limit": 1, "includeTests": False}])
        )
        assert by_command["hits"][0]["uri"] == uri_of(root / "zlib" / "greet.py")
    finally:
        await client.shutdown_session()


async def test_unsaved_edits_and_code_actions(ready: Client, workspace: Path) -> None:
    client = ready
    uri = uri_of(workspace / "scratch.py")  # never saved: exists only in the editor
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="python", version=1, text="x = 1\n")
        )
    )
    edited = "import os\n\n\ndef fresh_unsaved(a, b):\n    total = a * b\n    return total + 42\n"
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=uri),
            [types.TextDocumentContentChangeWholeDocument(edited)],
        )
    )
    similar = await client.request(
        "codeSearch/findSimilar", {"textDocument": {"uri": uri}, "position": {"line": 4, "character": 6}}
    )
    assert similar["hits"]

    async def actions(line: int) -> list[Any]:
        position = types.Position(line, 2)
        params = types.CodeActionParams(
            types.TextDocumentIdentifier(uri), types.Range(position, position), types.CodeActionContext([])
        )
        return await client.text_document_code_action_async(params) or []

    inside = await actions(4)
    assert len(inside) == 1 and isinstance(inside[0], types.CodeAction)
    assert inside[0].kind == "refactor.codeSearch" and inside[0].command.command == "codeSearch.findSimilar"
    assert list(inside[0].command.arguments) == [uri, {"line": 4, "character": 2}]
    assert await actions(0) == []
    with pytest.raises(JsonRpcException, match="not inside a function"):
        await client.request(
            "codeSearch/findSimilar", {"textDocument": {"uri": uri}, "position": {"line": 1}}
        )


async def file_lifecycle(client: Client, root: Path, notify: bool) -> None:
    """A file created, changed and deleted on disk shows up in, changes in and leaves the results."""
    path, uri = root / "added.py", uri_of(root / "added.py")

    def changed(kind: types.FileChangeType) -> None:
        if notify:
            client.workspace_did_change_watched_files(
                types.DidChangeWatchedFilesParams([types.FileEvent(uri, kind)])
            )

    async def top_for(code: str) -> tuple[str, str] | None:
        hits = (await client.similar_code(code, limit=3))["hits"]
        return (hits[0]["uri"], hits[0]["name"]) if hits else None

    first = "def brand_new_helper(items):\n    return sorted(set(items), reverse=True)[:3]"
    path.write_text(first + "\n", encoding="utf-8")
    changed(types.FileChangeType.Created)
    await eventually(lambda: top_for(first), lambda top: top == (uri, "brand_new_helper"))

    second = (
        "class Renamed:\n    def method(self, value):\n        return {value: value * 2 for _ in range(7)}"
    )
    path.write_text(second + "\n", encoding="utf-8")
    changed(types.FileChangeType.Changed)
    await eventually(lambda: top_for(second), lambda top: top == (uri, "Renamed"))

    path.unlink()
    changed(types.FileChangeType.Deleted)

    async def uris() -> set[str]:
        return {hit["uri"] for hit in (await client.similar_code(second, limit=50))["hits"]}

    await eventually(uris, lambda found: uri not in found)


async def test_watched_files_update_the_index(workspace: Path, options: dict[str, Any]) -> None:
    client = await start([workspace], {**options, "pollInterval": 0}, VSCODE)
    try:
        await client.wait_for_state("ready")
        assert [registration.method for registration in client.registrations] == [
            "workspace/didChangeWatchedFiles"
        ]
        await file_lifecycle(client, workspace, notify=True)
    finally:
        await client.shutdown_session()


async def test_polling_updates_the_index(workspace: Path, options: dict[str, Any]) -> None:
    client = await start([workspace], {**options, "pollInterval": 0.3}, NEOVIM)  # Neovim cannot register
    try:
        await client.wait_for_state("ready")
        assert client.registrations == []
        await file_lifecycle(client, workspace, notify=False)
    finally:
        await client.shutdown_session()


async def test_requests_can_be_cancelled(workspace: Path, options: dict[str, Any]) -> None:
    client = await start([workspace], options)
    try:
        # Sent at once, the request waits for the folder to open (the model takes a while to load),
        # and the cancellation reaches it while it waits. (The short sleep lets the
        # client send the request before the cancellation.)
        pending = asyncio.ensure_future(
            client.protocol.send_request_async("codeSearch/find", {"query": "sort"}, msg_id="early")
        )
        await asyncio.sleep(0.02)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="early"))
        with pytest.raises(JsonRpcRequestCancelled):
            await pending
        await client.wait_for_state("ready")
        assert (await client.find("sort"))["hits"]
    finally:
        await client.shutdown_session()


async def test_invalid_settings_fall_back_to_defaults(workspace: Path, options: dict[str, Any]) -> None:
    client = await start([workspace], {"codesieve": {**options, "rerankDepth": "lots"}})
    try:
        await client.wait_for_state("ready")
        warnings = [message for message in client.messages if message.type == types.MessageType.Warning]
        assert any(
            "rerankDepth" in message.message and "default 10" in message.message for message in warnings
        )
        assert (await client.find("sort the list", limit=20))["stats"]["reranked"] == 10
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams({"codesieve": {**options, "retrieveDepth": 0}})
        )
        await eventually(
            client.status, lambda _: any("retrieveDepth" in message.message for message in client.messages)
        )
        assert (await client.status())["state"] == "ready"
    finally:
        await client.shutdown_session()


async def test_the_tcp_token_in_initialization_options_is_not_taken_for_a_setting(
    workspace: Path, options: dict[str, Any]
) -> None:
    client = await start([workspace], {**options, "token": "t" * 32})  # as `serve --tcp` clients send it
    try:
        await client.wait_for_state("ready")
        assert [message.message for message in client.messages if "token" in message.message] == []
    finally:
        await client.shutdown_session()


async def test_missing_model_is_reported_and_server_stays_up(
    workspace: Path, options: dict[str, Any]
) -> None:
    missing = workspace.parent / "no-such-model"
    client = await start([workspace], {**options, "model": str(missing)}, NEOVIM, literal_code_actions=False)
    try:
        status = await client.wait_for_state("error")
        assert str(missing) in status["lastError"] and "model" in status["lastError"]
        with pytest.raises(JsonRpcException, match="does not exist"):
            await client.find("anything")
        assert any(message.type == types.MessageType.Error for message in client.messages)
        position = types.Position(4, 4)
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                types.TextDocumentIdentifier(uri_of(workspace / "emoji.py")),
                types.Range(position, position),
                types.CodeActionContext([]),
            )
        )
        assert (
            actions
            and isinstance(actions[0], types.Command)
            and actions[0].command == "codeSearch.findSimilar"
        )
        assert (await client.status())["state"] == "error"
    finally:
        await client.shutdown_session()


async def test_bad_files_and_added_folders(tmp_path: Path, options: dict[str, Any]) -> None:
    messy, other = tmp_path / "messy", tmp_path / "other"
    messy.mkdir()
    other.mkdir()
    (messy / "blob.py").write_bytes(b"\x00\x01\x02binary" * 100)
    (messy / "latin.py").write_bytes(b"def caf\xe9(x):\n    return x + 1\n")
    (messy / "broken.py").write_text("def oops(:\n    return [\n\nclass ???\n", encoding="utf-8")
    (messy / "fine.py").write_text(GREET, encoding="utf-8")
    (other / "more.py").write_text("def elsewhere(path):\n    return open(path).read()\n", encoding="utf-8")
    shutil.copy(messy / "fine.py", messy / "copy.py")
    client = await start([messy], options)
    try:
        status = await client.wait_for_state("ready")
        assert status["files"] >= 4 and status["chunks"] >= 3
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri_of(other), "other")], removed=[]
                )
            )
        )
        status = await eventually(
            client.status, lambda status: len(status["folders"]) == 2 and status["state"] == "ready"
        )
        hits = (await client.find("read a file", limit=50, rerank=False))["hits"]
        roots = {hit["uri"].rsplit("/", 1)[0] for hit in hits}
        assert roots == {uri_of(messy), uri_of(other)}
        for root in roots:  # each folder's hits in its own first-stage order (folders merge by cosine)
            scores = [hit["score"] for hit in hits if hit["uri"].rsplit("/", 1)[0] == root]
            assert scores == sorted(scores, reverse=True)
    finally:
        await client.shutdown_session()


async def test_find_stats_say_when_no_ranker_is_installed(
    workspace: Path, other_tiny_model: Path, tmp_path: Path
) -> None:
    """A client asks for the reranked list only when there is a ranker to make it."""
    client = await start(
        [workspace], {"model": str(other_tiny_model), "indexDir": str(tmp_path / "i"), "threads": 1}
    )
    try:
        status = await client.wait_for_state("ready")
        assert status["ranker"] is False and status["folders"][0]["ranker"] is False
        assert (await client.find("say hello", rerank=False))["stats"]["ranker"] is False
        asked = await client.find("say hello")  # rerank asked for, and nothing to rerank with
        assert asked["hits"] and {hit["stage"] for hit in asked["hits"]} == {"retrieve"}
        assert asked["stats"]["reranked"] == 0 and "no ranker" in asked["stats"]["note"]
    finally:
        await client.shutdown_session()


async def test_cancelling_an_answered_request_logs_nothing(workspace: Path, options: dict[str, Any]) -> None:
    """Clients cancel requests whose answer is on its way (VS Code does so while the user types)."""
    client = await start([workspace], options)
    try:
        await client.wait_for_state("ready")
        await client.protocol.send_request_async("codeSearch/find", {"query": "sort"}, msg_id="answered")
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="answered"))
        assert (await client.status())["state"] == "ready"  # the server has read the cancellation
        await asyncio.sleep(0.5)  # and its log has come through
        assert "unknown message id" not in client.log(), client.log()[-2000:]
    finally:
        await client.shutdown_session()


async def test_a_folder_another_process_writes_opens_without_a_message(
    workspace: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """Two windows on one folder share its index: normal, so nothing pops up (Neovim showed a prompt)."""
    writer = open_workspace(workspace, tiny_model, index_dir=tmp_path / "indexes")
    writer.sync()  # then idle, holding the writer lock, as another editor window would
    options = {"model": str(tiny_model), "indexDir": str(tmp_path / "indexes"), "threads": 1}
    client = await start([workspace], options, NEOVIM)
    try:
        status = await client.wait_for_state("ready")
        assert status["folders"][0]["sharedIndex"] is True and status["chunks"] > 10
        assert (await client.find("say hello"))["hits"]
        assert [message.message for message in client.messages] == []
    finally:
        await client.shutdown_session()
        writer.close()
