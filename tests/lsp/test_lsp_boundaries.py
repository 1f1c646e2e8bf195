"""What the language server lets a client reach, since a client names the paths: files inside its workspace folders only,
and each of their files once.

A client names files by URI in findSimilar, the `codeSearch.findSimilar` command, code actions,
opened documents and file events. Each URI is resolved (`..`, %-escapes, symlinks) before it is
used; outside every workspace folder the request gets one InvalidParams whose message depends on
the URI alone, so it tells nothing about the file (whether it exists, where its functions are).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsp_harness import Client, start
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from codesieve.server.lsp.protocol import shown, uri_of

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.timeout(180)]

SECRET = 'import os\n\n\ndef secret_function(key):\n    return "s3cr3t" + key\n'
CONFIG = "def read_config(path):\n    with open(path) as handle:\n        return handle.read().split()\n"
SIMILAR = "codeSearch/findSimilar"


@pytest.fixture()
def layout(sample_workspace: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The workspace, and a folder beside it (`secret/x.py`) reached through `..` and two symlinks."""
    root = sample_workspace
    (root / "config.py").write_text(CONFIG, encoding="utf-8")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "x.py").write_text(SECRET, encoding="utf-8")
    (root / "link").symlink_to(secret, target_is_directory=True)
    (root / "link_file.py").symlink_to(secret / "x.py")
    (root / "inner_link.py").symlink_to(root / "config.py")  # a link that stays inside
    return root, secret


@pytest_asyncio.fixture()
async def client(layout: tuple[Path, Path], tiny_model: Path, tmp_path: Path) -> AsyncIterator[Client]:
    options = {"model": str(tiny_model), "indexDir": str(tmp_path / "indexes"), "threads": 1}
    client = await start([layout[0]], {**options, "pollInterval": 0})
    await client.wait_for_state("ready", timeout=120)
    yield client
    await client.shutdown_session()


def outside_uris(root: Path, secret: Path) -> list[str]:
    """URIs of `secret/x.py` (which exists) and of `secret/gone.py` (which does not), every way."""
    base = uri_of(root)
    uris: list[str] = []
    for name in ("x.py", "gone.py"):
        uris += [
            f"{base}/../{secret.name}/{name}",
            f"{base}/%2E%2E/{secret.name}/{name}",
            base + "/%2e%2e" * len(root.parts) + f"{secret}/{name}",  # up to / and down again
            f"{base}/link/{name}",
            uri_of(secret / name),
        ]
    return [*uris, uri_of(root / "link_file.py"), "file:///nowhere/else.py"]


def at(uri: str, line: int) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}}


async def error_of(pending: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(pending, 60)
    return caught.value


def code_action(client: Client, uri: str, line: int) -> Any:
    here = types.Range(types.Position(line, 4), types.Position(line, 4))
    params = types.CodeActionParams(types.TextDocumentIdentifier(uri), here, types.CodeActionContext([]))
    return client.text_document_code_action_async(params)


async def test_paths_outside_the_workspace_get_one_answer_that_reveals_nothing(
    client: Client, layout: tuple[Path, Path]
) -> None:
    root, secret = layout
    uris = outside_uris(root, secret)
    # opened in the editor too: its text is the client's, but the path is still outside
    opened = f"{uri_of(root)}/../{secret.name}/opened.py"
    item = types.TextDocumentItem(uri=opened, language_id="python", version=1, text=SECRET)
    client.text_document_did_open(types.DidOpenTextDocumentParams(item))
    for uri in [*uris, opened]:
        expected = f"{shown(uri)} is not inside a workspace folder CodeSieve serves."
        for line in (0, 3):  # outside a function and inside one: no difference shows
            error = await error_of(client.request(SIMILAR, at(uri, line)))
            assert isinstance(error, JsonRpcInvalidParams) and error.message == expected, (uri, error.message)
            command = types.ExecuteCommandParams(
                "codeSearch.findSimilar", [uri, {"line": line, "character": 0}]
            )
            error = await error_of(client.workspace_execute_command_async(command))
            assert isinstance(error, JsonRpcInvalidParams) and error.message == expected, (uri, error.message)
            assert await asyncio.wait_for(code_action(client, uri, line), 60) is None, uri

    # inside: a `..` that stays in, and a symlink to a file of the workspace, are answered
    (root / "pkg").mkdir()
    for uri in (f"{uri_of(root)}/pkg/%2E%2E/config.py", uri_of(root / "inner_link.py")):
        assert (await client.request(SIMILAR, at(uri, 1)))["hits"], uri
        assert await code_action(client, uri, 1), uri
    log = client.log()
    assert "s3cr3t" not in log and "No such file" not in log and "Traceback" not in log


async def test_a_folder_inside_another_is_indexed_once_and_found_once(
    sample_workspace: Path, tiny_model: Path, tmp_path: Path
) -> None:
    root = sample_workspace
    inner = root / "sub"
    inner.mkdir()
    (inner / "only_here.py").write_text("def only_in_the_inner_folder(a):\n    return a * 7\n")
    options = {
        "model": str(tiny_model),
        "indexDir": str(tmp_path / "indexes"),
        "threads": 1,
        "pollInterval": 0,
    }
    client = await start([root, inner], options)
    try:
        status = await client.wait_for_state("ready", timeout=120)
        files = sum(1 for path in root.rglob("*") if path.is_file())
        assert status["files"] == files and len(status["folders"]) == 1, status
        assert status["nestedFolders"] == [{"uri": uri_of(inner), "servedBy": uri_of(root)}]
        found = await client.find("only in the inner folder", limit=1000)
        uris = [(hit["uri"], hit["name"]) for hit in found["hits"]]
        assert len(uris) == len(set(uris)) and ("only_in_the_inner_folder" in dict(map(reversed, uris)))

        # the outer folder goes: the inner one is served on its own
        removed = types.WorkspaceFoldersChangeEvent(
            added=[], removed=[types.WorkspaceFolder(uri_of(root), "w")]
        )
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(removed))
        for _ in range(600):
            status = await client.status()
            if status["state"] == "ready" and [folder["uri"] for folder in status["folders"]] == [
                uri_of(inner)
            ]:
                break
            await asyncio.sleep(0.1)
        assert status["files"] == 1 and "nestedFolders" not in status, status
        found = await client.find("only in the inner folder", limit=1000)
        assert [hit["name"] for hit in found["hits"]] == ["only_in_the_inner_folder"]
    finally:
        await client.shutdown_session()
