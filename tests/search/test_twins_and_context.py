"""What the retriever reads of a chunk (the card's `code_context`), and one answer per twin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import codesieve, write
from indexcheck import assert_consistent, open_workspace

from codesieve.server.index.store import StoredChunk
from codesieve.server.model.encoders import code_text
from codesieve.server.model.folder import ModelError, ModelFolder
from codesieve.server.search.twins import TWIN_WINDOW, twin_leaders

SEND = '''
class Client:
    def send(self, request, timeout=None):
        """Send the request, following redirects."""
        response = self._transport.handle_request(request, timeout=timeout)
        while response.is_redirect and self.follow_redirects:
            request = self._build_redirect_request(request, response)
            response.close()
            response = self._transport.handle_request(request, timeout=timeout)
        return response


class AsyncClient:
    async def send(self, request, timeout=None):
        """Send the request, following redirects."""
        response = await self._transport.handle_request(request, timeout=timeout)
        while response.is_redirect and self.follow_redirects:
            request = self._build_redirect_request(request, response)
            await response.close()
            response = await self._transport.handle_request(request, timeout=timeout)
        return response


def parse_retry_after(value):
    """Seconds to wait from a Retry-After header: a number, or an HTTP date."""
    if value.isdigit():
        return int(value)
    when = email.utils.parsedate_to_datetime(value)
    return max(0, (when - datetime.now(when.tzinfo)).total_seconds())
'''


def stored(name: str, text: str, path: str = "a.py", start: int = 1, language: str = "python") -> StoredChunk:
    end = start + text.count("\n")
    return StoredChunk(
        0,
        name,
        path,
        language,
        "function",
        name,
        start,
        end,
        text,
        "",
    )


def test_sync_and_async_twins_and_copies_are_twins() -> None:
    sync, async_ = SEND.split("\n\n\nclass ")[0], "class " + SEND.split("\n\n\nclass ")[1].split("\n\n\n")[0]
    retry = "def parse_retry_after" + SEND.split("def parse_retry_after")[1]
    chunks = [stored("Client", sync), stored("Retry", retry, "b.py"), stored("Async", async_, "c.py")]
    assert twin_leaders(chunks) == [0, 1, 0]
    copy = stored("Copy", retry, "vendor/b.py")
    assert twin_leaders([*chunks, copy]) == [0, 1, 0, 1]
    assert twin_leaders([*chunks[:2], stored("Async", async_, "c.rb", language="ruby")]) == [0, 1, 2]


def test_nested_chunks_short_code_and_far_hits_are_never_twins() -> None:
    method = (
        "    def send(self, request):\n" + "        request = prepare(request, self.headers, self.auth)\n" * 6
    )
    whole_class = "class Client:\n" + method
    assert twin_leaders([stored("Client", whole_class, start=1), stored("Client.send", method, start=2)]) == [
        0,
        1,
    ]
    getters = [
        stored("a", "def name(self):\n    return self._name"),
        stored("b", "def size(self):\n    return self._size", "b.py"),
    ]
    assert twin_leaders(getters) == [0, 1]  # too short to call copies
    copies = [stored(str(index), method, f"{index}.py") for index in range(TWIN_WINDOW + 2)]
    assert twin_leaders(copies)[:TWIN_WINDOW] == [0] * TWIN_WINDOW
    assert twin_leaders(copies)[TWIN_WINDOW:] == [TWIN_WINDOW, TWIN_WINDOW + 1]  # past the window: as ranked


def test_a_search_shows_twins_as_one_hit_also_at_the_other(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    write(tmp_path / "repo", "client.py", SEND)
    workspace = open_workspace(tmp_path / "repo", tiny_model)
    workspace.sync()
    hits = workspace.search("send the request following redirects", limit=10).hits
    names = [hit.chunk.name for hit in hits]
    assert len([name for name in names if name.endswith(".send")]) == 1
    send = next(hit for hit in hits if hit.chunk.name.endswith(".send"))
    assert [twin.name for twin in send.twins] == [
        {"Client.send": "AsyncClient.send"}.get(send.chunk.name, "Client.send")
    ]

    found = json.loads(
        codesieve(
            "search",
            "send the request following redirects",
            str(tmp_path / "repo"),
            "--json",
            "--model",
            str(tiny_model),
            "-q",
        ).stdout
    )
    listed = next(hit for hit in found["hits"] if hit["name"].endswith(".send"))
    assert [twin["name"] for twin in listed["also_at"]] == [twin.name for twin in send.twins]
    assert listed["also_at"][0]["start_line"] in (3, 14)


def test_code_context_puts_the_path_and_name_before_the_code() -> None:
    chunk = stored("Client.send", "def send(self):\n    pass", "src/http/client.py")
    assert code_text(chunk, ()) == chunk.text
    assert code_text(chunk, ("path", "name")) == "src/http/client.py Client.send\n" + chunk.text
    assert code_text(chunk, ("name",)) == "Client.send\n" + chunk.text
    window = StoredChunk(0, "w", "notes.txt", "text", "window", "notes.txt:1-2", 1, 2, "a\nb", "")
    assert code_text(window, ("path", "name")) == "notes.txt\na\nb"


def with_card(source: Path, folder: Path, **changes: object) -> Path:
    shutil.copytree(source, folder)
    card = json.loads((folder / "model-card.json").read_text())
    (folder / "model-card.json").write_text(json.dumps({**card, **changes}))
    return folder


def test_a_changed_embedding_recipe_rebuilds_the_index_and_embeds_each_place(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, tmp_path: Path
) -> None:
    plain = open_workspace(sample_workspace, tiny_model)
    plain.sync()
    plain.close()
    located = with_card(tiny_model, tmp_path / "located", code_context=["path", "name"])
    assert ModelFolder.load(located).model_id == ModelFolder.load(tiny_model).model_id + "-path+name"
    workspace = open_workspace(sample_workspace, located)
    assert any("another model" in warning for warning in workspace.warnings)
    report = workspace.sync()
    assert report.chunks_reused == 0  # copies in other files have another path: embedded each
    assert_consistent(workspace)
    chunk = workspace.store.chunks_of("sample.py")[0]
    vector = workspace.store.stored_vectors("id", [chunk.id], workspace.model.card.dimension)[chunk.id]
    np.testing.assert_allclose(
        vector, workspace.retriever.encode_code([code_text(chunk, ("path", "name"))])[0], atol=1e-5
    )

    shorter = with_card(tiny_model, tmp_path / "shorter", max_code_tokens=64)
    assert ModelFolder.load(shorter).model_id.endswith("-t64")


@pytest.mark.parametrize("context", [["path", "path"], ["where"], "path"])
def test_a_bad_code_context_is_a_clear_error(tiny_model: Path, tmp_path: Path, context: object) -> None:
    with pytest.raises(ModelError, match="code_context"):
        ModelFolder.load(with_card(tiny_model, tmp_path / "bad", code_context=context))
