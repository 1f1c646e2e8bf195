"""`codesieve mcp` driven as agents drive it: a subprocess over stdio, through the MCP SDK's own client.

The server runs the shipped default model on a copy of tests/data/minirepo, with its index in a
temporary folder. What is asserted holds for any encoder: shapes, filters, errors, roots, and that
an exact copy of a function's text finds that function first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import TESTS
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.session import ClientRequestContext
from mcp.types import CallToolResult, ListRootsResult, Root, TextContent

DATA = TESTS / "data"
pytestmark = pytest.mark.slow


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A copy of the small sample repository that a test may change."""
    root = tmp_path / "minirepo"
    shutil.copytree(DATA / "minirepo", root)
    return root.resolve()


def _parameters(index_dir: Path, folders: Sequence[Path], cwd: Path | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "codesieve.server.cli", "mcp", *map(str, folders), "--threads", "1"],
        env={"CODESIEVE_INDEX_DIR": str(index_dir), "TOKENIZERS_PARALLELISM": "false"},
        cwd=str(cwd) if cwd else None,
    )


@asynccontextmanager
async def mcp_session(
    index_dir: Path,
    folders: Sequence[Path] = (),
    cwd: Path | None = None,
    roots: Sequence[Path] | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized client session with `codesieve mcp`; `roots` makes the client offer MCP roots."""

    async def list_roots(context: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=folder.as_uri()) for folder in roots or ()])

    async with stdio_client(_parameters(index_dir, folders, cwd)) as (read, write):
        callback = list_roots if roots is not None else None
        async with ClientSession(
            read, write, read_timeout_seconds=120, list_roots_callback=callback
        ) as session:
            await session.initialize()
            yield session


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def _call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool's structured answer, checked against the output schema the tool lists."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, _text(result)
    schemas = {listed.name: listed.output_schema for listed in (await session.list_tools()).tools}
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, schemas[tool])
    return result.structured_content


async def _error(session: ClientSession, tool: str, arguments: dict[str, Any]) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, f"{tool}({arguments}) should fail, got {_text(result)[:300]}"
    return _text(result)


@pytest.mark.asyncio
async def test_lists_three_read_only_tools_with_output_schemas(repo: Path, index_dir: Path) -> None:
    async with mcp_session(index_dir, [repo]) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {"search_code", "find_similar_code", "index_status"}
    for tool in tools.values():
        assert tool.output_schema is not None and tool.description
        assert tool.annotations is not None and tool.annotations.read_only_hint
    search = tools["search_code"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["limit"]["default"] == 10 and search["properties"]["limit"]["maximum"] == 50
    assert set(search["properties"]) == {"query", "path", "language", "limit", "include_tests"}
    assert set(tools["find_similar_code"].input_schema["properties"]) == {
        "path",
        "line",
        "code",
        "limit",
        "include_tests",
    }


@pytest.mark.asyncio
async def test_search_code_hits_have_places_names_and_code(repo: Path, index_dir: Path) -> None:
    async with mcp_session(index_dir, [repo]) as session:
        answer = await _call(session, "search_code", {"query": "parse a human readable size", "limit": 3})
        only_go = await _call(session, "search_code", {"query": "area of a shape", "language": "go"})
        under = await _call(session, "search_code", {"query": "split words", "path": "textkit/**"})
        with_tests = await _call(
            session, "search_code", {"query": "strings", "include_tests": True, "limit": 50}
        )
        text = _text(await session.call_tool("search_code", {"query": "parse a human readable size"}))
    assert answer["index_state"] == "ready" and 0 < len(answer["hits"]) <= 3
    for hit in answer["hits"]:
        lines = Path(hit["path"]).read_text(encoding="utf-8").split("\n")
        assert Path(hit["path"]).is_relative_to(repo)
        assert hit["code"] == "\n".join(lines[hit["start_line"] - 1 : hit["end_line"]][:40])
        assert hit["name"] and hit["kind"] in {"function", "method", "class", "window"}
        assert f"{hit['path']}:{hit['start_line']}-{hit['end_line']}" in text
    assert only_go["hits"] and {hit["language"] for hit in only_go["hits"]} == {"go"}
    assert under["hits"] and all(Path(hit["path"]).parent == repo / "textkit" for hit in under["hits"])
    assert any("/tests/" in hit["path"] for hit in with_tests["hits"])  # every chunk is a candidate


@pytest.mark.asyncio
async def test_find_similar_code_by_snippet_and_by_place(repo: Path, index_dir: Path) -> None:
    strings = repo / "textkit" / "strings.py"
    source = strings.read_text(encoding="utf-8").split("\n")
    start = next(number for number, line in enumerate(source, 1) if line.startswith("def is_palindrome"))
    end = next(number for number in range(start + 1, len(source) + 1) if not source[number - 1].strip())
    snippet = "\n".join(source[start - 1 : end - 1])
    async with mcp_session(index_dir, [repo]) as session:
        by_code = await _call(session, "find_similar_code", {"code": snippet, "limit": 5})
        by_place = await _call(
            session, "find_similar_code", {"path": "textkit/strings.py", "line": start + 1}
        )
        absolute = await _call(session, "find_similar_code", {"path": str(strings), "line": start + 1})
    assert by_code["hits"][0]["name"] == "is_palindrome"  # an exact copy is its own nearest neighbour
    assert by_place["hits"] and "is_palindrome" not in {hit["name"] for hit in by_place["hits"]}
    assert absolute == by_place


@pytest.mark.asyncio
async def test_index_status_reports_the_folder_and_its_index(repo: Path, index_dir: Path) -> None:
    async with mcp_session(index_dir, [repo]) as session:
        await _call(session, "search_code", {"query": "anything"})  # waits for the first index
        status = await _call(session, "index_status", {})
    assert status["state"] == "ready" and status["files"] == 6 and status["chunks"] > 6
    assert status["model"] and status["folders_from"] == "arguments"
    (folder,) = status["folders"]
    assert folder["root"] == str(repo) and Path(folder["index_path"]).is_relative_to(index_dir)


@pytest.mark.asyncio
async def test_a_changed_file_is_found_at_the_next_search(repo: Path, index_dir: Path) -> None:
    added = "def brand_new_checksum(blob):\n    return sum(blob) % 65521\n"
    async with mcp_session(index_dir, [repo]) as session:
        before = await _call(session, "find_similar_code", {"code": added})
        with (repo / "textkit" / "numbers.py").open("a", encoding="utf-8") as file:
            file.write("\n\n" + added)
        after = await _call(session, "find_similar_code", {"code": added})
    assert "brand_new_checksum" not in {hit["name"] for hit in before["hits"]}
    assert after["hits"][0]["name"] == "brand_new_checksum"


@pytest.mark.asyncio
async def test_while_the_first_index_is_built_answers_say_so_and_status_shows_progress(
    tmp_path: Path, index_dir: Path
) -> None:
    big = tmp_path / "big"
    big.mkdir()
    for number in range(3000):  # tens of seconds of embedding: far longer than a search waits for it
        (big / f"module_{number}.py").write_text(f"def function_{number}(x):\n    return x + {number}\n")
    async with mcp_session(index_dir, [big]) as session:
        answer = await _call(session, "search_code", {"query": "add a number"})
        status = await _call(session, "index_status", {})
    assert answer["index_state"] == "indexing"
    assert answer["note"] and "being indexed" in answer["note"] and "so far" in answer["note"]
    assert status["state"] == "indexing" and status["progress"]["files_total"] == 3000
    assert status["folders"][0]["progress"]["files_done"] <= 3000


@pytest.mark.asyncio
async def test_bad_input_is_a_tool_error_and_the_server_goes_on(repo: Path, index_dir: Path) -> None:
    (repo / "blob.py").write_bytes(b"\0\1\2binary")
    search, similar = "search_code", "find_similar_code"
    cases: list[tuple[str, dict[str, Any], str]] = [
        (search, {}, "query"),
        (search, {"query": 42}, "query"),
        (search, {"query": "   "}, "empty"),
        (search, {"query": "x" * 1_000_000}, "10000"),
        (search, {"query": "parse", "limit": 0}, "limit"),
        (search, {"query": "parse", "limit": 51}, "limit"),
        (search, {"query": "parse", "limit": "many"}, "limit"),
        (search, {"query": "parse", "path": "[z-a]"}, "not a valid gitignore-style pattern"),
        (search, {"query": "parse", "language": "klingon"}, "Unknown `language`"),
        (similar, {}, "Give `path` and `line`"),
        (similar, {"path": "textkit/strings.py"}, "Give `path` and `line`"),
        (similar, {"code": "x = 1", "path": "textkit/strings.py", "line": 1}, "not both"),
        (similar, {"path": "textkit/strings.py", "line": 100_000}, "line 100000 is past its end"),
        (similar, {"path": "textkit/strings.py", "line": 0}, "line"),
        (similar, {"path": "blob.py", "line": 1}, "binary"),
        (similar, {"path": "textkit", "line": 1}, "not a regular file"),
    ]
    async with mcp_session(index_dir, [repo]) as session:
        for tool, arguments, expected in cases:
            message = await _error(session, tool, arguments)
            assert expected in message, (arguments, message)
        assert (await _call(session, search, {"query": "parse a size"}))["hits"]


@pytest.mark.asyncio
async def test_a_path_outside_the_folders_is_refused_alike_whether_it_exists_or_not(
    repo: Path, index_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def secret():\n    return 1\n", encoding="utf-8")
    (repo / "link.py").symlink_to(outside)
    async with mcp_session(index_dir, [repo]) as session:
        messages = {
            name: await _error(session, "find_similar_code", {"path": str(path), "line": 1})
            for name, path in [
                ("exists", outside),
                ("missing", tmp_path / "missing.py"),
                ("dotdot", Path("..") / "outside.py"),
                ("symlink", Path("link.py")),
            ]
        }
    for path, message in zip(
        [outside, tmp_path / "missing.py", Path("..") / "outside.py", Path("link.py")],
        messages.values(),
        strict=True,
    ):
        assert message.endswith(
            f"{str(path)!r} is not inside the folders this server searches ({repo}): "
            "give a path inside one of them, absolute or relative to it."
        ), message
        assert "secret" not in message


@pytest.mark.asyncio
async def test_folders_come_from_the_client_roots_else_the_working_directory(
    repo: Path, index_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    async with mcp_session(index_dir, cwd=elsewhere, roots=[repo]) as session:
        from_roots = await _call(session, "search_code", {"query": "area of a circle"})
        status = await _call(session, "index_status", {})
    assert from_roots["hits"] and all(Path(hit["path"]).is_relative_to(repo) for hit in from_roots["hits"])
    assert status["folders_from"] == "client roots" and status["folders"][0]["root"] == str(repo)

    async with mcp_session(index_dir, cwd=repo) as session:
        from_cwd = await _call(session, "search_code", {"query": "area of a circle"})
        status = await _call(session, "index_status", {})
    assert status["folders_from"] == "working directory" and status["folders"][0]["root"] == str(repo)
    assert [hit["path"] for hit in from_cwd["hits"]] == [hit["path"] for hit in from_roots["hits"]]


def test_stdout_holds_protocol_messages_only_and_end_of_input_ends_the_server(
    repo: Path, index_dir: Path
) -> None:
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "index_status", "arguments": {}},
        },
    ]
    parameters = _parameters(index_dir, [repo])
    server = subprocess.Popen(
        [parameters.command, *parameters.args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(parameters.env or {})},
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write("".join(json.dumps(message) + "\n" for message in messages))
    server.stdin.flush()
    answers = [json.loads(server.stdout.readline()) for _ in range(2)]  # each line must be JSON-RPC
    server.stdin.close()  # how a client ends a stdio session: the server must exit on its own
    assert server.wait(timeout=60) == 0
    assert server.stderr is not None
    stdout, stderr = server.stdout.read(), server.stderr.read()
    assert [answer["id"] for answer in answers] == [1, 2] and stdout == ""
    assert stderr == ""  # nothing logged unless --verbose


def test_a_named_folder_that_does_not_exist_is_an_error(tmp_path: Path, index_dir: Path) -> None:
    parameters = _parameters(index_dir, [tmp_path / "nope"])
    result = subprocess.run(
        [parameters.command, *parameters.args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and "nope is not a folder" in result.stderr and result.stdout == ""
