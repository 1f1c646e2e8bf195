"""`codesieve mcp` driven by a client we did not write: the MCP Inspector's command-line mode, from npm.

The Inspector (`@modelcontextprotocol/inspector`, the version pinned below) is installed once into the
cache folder of the editor tests ($CODESIEVE_E2E_CACHE, default ~/.cache/codesieve-e2e), and run as
`npx @modelcontextprotocol/inspector --cli` runs it: its launcher, on a node new enough for it (the
machine's, else the node@24 that scripts/setup-editor-tests.sh installs there, installed the same way
when missing). It starts `codesieve mcp` on a copy of tests/data/minirepo with the index in a temporary
folder, lists the tools with its schema portability checks, calls `search_code`, and sends bad input.

Skipped, with the reason, when npm is missing or the registry cannot be reached to install it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import TESTS

DATA = TESTS / "data"
INSPECTOR_VERSION = "2.12.0"
INSPECTOR_NODE = (22, 19)  # the oldest node the Inspector runs on (its package.json's engines)
NODE_MAJOR = "24"  # what scripts/setup-editor-tests.sh installs, in the same cache folder
TOOL_ERROR_EXIT = 5  # the Inspector's exit code for a tool answer with isError: true

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def _cache() -> Path:
    return Path(os.environ.get("CODESIEVE_E2E_CACHE", Path.home() / ".cache" / "codesieve-e2e"))


def _node_version(node: str) -> tuple[int, ...] | None:
    try:
        shown = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    match = re.match(r"v(\d+)\.(\d+)", shown.strip())
    return (int(match[1]), int(match[2])) if match else None


def _npm_install(folder: Path, package: str, node_dir: Path | None = None) -> None:
    """`npm install package` into `folder`, built in a temporary folder and renamed into place (or skips)."""
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "package.json").write_text('{"name": "codesieve-test-tools", "private": true}\n')
    env = {**os.environ, "npm_config_update_notifier": "false"}
    if node_dir is not None:  # npm and its install scripts run on that node
        env["PATH"] = f"{node_dir}{os.pathsep}{env.get('PATH', '')}"
    command = ["npm", "install", "--no-audit", "--no-fund", "--omit=dev", "--save-exact", package]
    try:
        done = subprocess.run(command, cwd=partial, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        why = "timed out after 600 s" if done is None else done.stderr.strip()[-800:]
        pytest.skip(
            f"MCP Inspector test: npm could not install {package} (is the registry reachable?): {why}"
        )
    if folder.exists():  # another run got there first
        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial.rename(folder)


def _node() -> str:
    """A node the Inspector runs on: the machine's if new enough, else node@24 in the cache folder."""
    machine = shutil.which("node")
    if machine and (_node_version(machine) or (0,)) >= INSPECTOR_NODE:
        return machine
    cached = _cache() / f"node{NODE_MAJOR}" / "node_modules" / "node" / "bin" / "node"
    if not cached.exists():
        _npm_install(cached.parents[3], f"node@{NODE_MAJOR}")
    if (_node_version(str(cached)) or (0,)) < INSPECTOR_NODE:
        pytest.skip(f"MCP Inspector test: {cached} does not run as node {NODE_MAJOR}")
    return str(cached)


@pytest.fixture(scope="module")
def inspector() -> list[str]:
    """The command that runs `npx @modelcontextprotocol/inspector@INSPECTOR_VERSION`, installed once."""
    if shutil.which("npm") is None:
        pytest.skip("MCP Inspector test: needs npm to install @modelcontextprotocol/inspector")
    node = _node()
    folder = _cache() / f"mcp-inspector-{INSPECTOR_VERSION}"
    package = folder / "node_modules" / "@modelcontextprotocol" / "inspector"
    if not folder.exists():
        _npm_install(folder, f"@modelcontextprotocol/inspector@{INSPECTOR_VERSION}", Path(node).parent)
    manifest = json.loads((package / "package.json").read_text(encoding="utf-8"))
    assert manifest["version"] == INSPECTOR_VERSION, f"{folder} holds {manifest['version']}"
    return [node, str(package / manifest["bin"]["mcp-inspector"]), "--cli"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """`codesieve mcp` on a copy of the small sample repository; the Inspector's -e gives its index folder."""
    work = tmp_path_factory.mktemp("inspector")
    repo = work / "minirepo"
    shutil.copytree(DATA / "minirepo", repo)
    return [
        "-e", f"CODESIEVE_INDEX_DIR={work / 'indexes'}",
        "-e", "TOKENIZERS_PARALLELISM=false",
        "--",
        sys.executable, "-m", "codesieve.server.cli", "mcp", str(repo.resolve()), "--threads", "1",
    ]  # fmt: skip


def _run(inspector: list[str], server: list[str], tmp_path: Path, *request: str) -> tuple[int, Any, str]:
    """Runs the Inspector once (`--format json`); returns its exit code, the JSON it printed, its stderr."""
    env = {  # the Inspector's own files in tmp_path, not in ~/.mcp-inspector
        **os.environ,
        "MCP_CATALOG_PATH": str(tmp_path / "catalog.json"),
        "MCP_CLIENT_CONFIG_PATH": str(tmp_path / "client.json"),
    }
    command = [*inspector, "--format", "json", "--connect-timeout", "120000", *request, *server]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        message = f"no JSON from {command} ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise AssertionError(message) from error
    return done.returncode, answer, done.stderr


def _tools(inspector: list[str], server: list[str], tmp_path: Path) -> dict[str, Any]:
    code, answer, stderr = _run(inspector, server, tmp_path, "--method", "tools/list", "--strict")
    assert code == 0, f"tools/list --strict exited {code} (schema problems?):\n{stderr}\n{answer}"
    return {tool["name"]: tool for tool in answer["result"]["tools"]}


def test_the_inspector_lists_the_three_tools_with_portable_schemas(
    inspector: list[str], server: list[str], tmp_path: Path
) -> None:
    tools = _tools(inspector, server, tmp_path)
    assert set(tools) == {"search_code", "find_similar_code", "index_status"}
    assert all(tool["outputSchema"]["type"] == "object" for tool in tools.values())
    assert tools["search_code"]["inputSchema"]["required"] == ["query"]


def test_the_inspector_calls_search_code_on_a_real_folder(
    inspector: list[str], server: list[str], tmp_path: Path
) -> None:
    """The query is a function's own text, so any encoder ranks that function first."""
    source = (DATA / "minirepo" / "textkit" / "numbers.py").read_text(encoding="utf-8").split("\n")
    start = next(n for n, line in enumerate(source, 1) if line.startswith("def parse_size"))
    end = next(n for n in range(start + 1, len(source) + 1) if not source[n - 1].strip()) - 1
    query = " ".join(line.strip() for line in source[start - 1 : end])
    code, answer, stderr = _run(
        inspector, server, tmp_path,
        "--method", "tools/call", "--tool-name", "search_code",
        "--tool-arg", f"query={query}", "--tool-arg", "limit=3",
    )  # fmt: skip
    assert code == 0, f"search_code exited {code}:\n{stderr}\n{answer}"
    result = answer["result"]
    assert not result.get("isError"), result
    schema = _tools(inspector, server, tmp_path)["search_code"]["outputSchema"]
    jsonschema.validate(result["structuredContent"], schema)
    hits = result["structuredContent"]["hits"]
    assert 0 < len(hits) <= 3 and result["structuredContent"]["index_state"] == "ready"
    first = hits[0]
    assert (Path(first["path"]).name, first["name"], first["start_line"], first["end_line"]) == (
        "numbers.py",
        "parse_size",
        start,
        end,
    ), hits
    assert first["code"].startswith("def parse_size(text):")
    text = "\n".join(block["text"] for block in result["content"] if block["type"] == "text")
    assert f"numbers.py:{start}-{end}  parse_size" in text, text


def test_the_inspector_gets_a_tool_error_for_an_empty_query(
    inspector: list[str], server: list[str], tmp_path: Path
) -> None:
    code, answer, stderr = _run(
        inspector,
        server,
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "search_code",
        "--tool-arg",
        "query=   ",
    )
    assert code == TOOL_ERROR_EXIT, f"exit {code}:\n{stderr}\n{answer}"
    assert answer["result"]["isError"] is True
    assert "`query` is empty" in answer["result"]["content"][0]["text"], answer
