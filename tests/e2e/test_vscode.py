"""The VS Code extension end to end, in a real VS Code: code-server driven in headless Chromium.

`scripts/setup-editor-tests.sh` installs Chromium, node 24 and code-server (cached in
~/.cache/codesieve-e2e) and builds editor-client/codesieve-X.Y.Z.vsix. This test installs that
.vsix into a fresh code-server, opens a copy of the sample files with the tiny test model, and runs
tests/e2e/vscode/driver.js, which uses the editor like a person: status bar, Find Code, the
"Find similar code" code action, an edit that the next search finds, and retraining (on a folder
this small, `trainer fit` says there are too few pairs and the extension asks). Screenshots go to
artifacts/screenshots/. The extension also offers `codesieve mcp` to agent mode: the CodeSieve output
shows the MCP server definition VS Code asked it for, with the language server's Python, or that the
setting turned it off. On a machine state with no Python that has CodeSieve, the extension sets up its own
environment from the wheel the .vsix carries (the dependencies from a folder of wheels, tests/wheelhouse.py).

Skipped, with the reason, only when the tools cannot be installed here (the setup script exits 75).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO
from wheelhouse import runtime_wheelhouse, without_pip_configuration

SETUP = REPO / "scripts" / "setup-editor-tests.sh"
DRIVER = REPO / "tests" / "e2e" / "vscode" / "driver.js"
SAMPLES = REPO / "tests" / "data" / "chunking"
ARTIFACTS = REPO / "artifacts" / "screenshots"
UNAVAILABLE = 75  # the setup script's exit code when Chromium, node or code-server cannot be installed

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def editor_tools() -> dict[str, str]:
    """Runs the setup script (installs if needed, builds the .vsix) and returns its KEY=VALUE lines."""
    if shutil.which("bash") is None or shutil.which("npm") is None:
        pytest.skip("VS Code e2e: needs bash and npm to install node 24, code-server and Chromium")
    started = time.monotonic()
    process = subprocess.run(
        ["bash", str(SETUP)], cwd=REPO, capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL
    )
    if process.returncode == UNAVAILABLE:
        pytest.skip(
            f"VS Code e2e: the editor tools cannot be installed here: {process.stderr.strip()[-800:]}"
        )
    assert process.returncode == 0, (
        f"scripts/setup-editor-tests.sh failed ({process.returncode}):\n{process.stderr[-4000:]}"
    )
    tools = dict(line.split("=", 1) for line in process.stdout.splitlines() if "=" in line)
    print(f"setup-editor-tests.sh: {time.monotonic() - started:.1f} s")
    return tools


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"code-server exited with {process.returncode} before listening")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"code-server did not answer {url} within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stops code-server and everything it started (its process group, led by its PID)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # children that outlived it (the Python server)
        os.killpg(process.pid, signal.SIGKILL)


def _logs(user_data: Path, server_log: Path) -> str:
    """The extension's output channel and code-server's own log, for failure messages."""
    parts = []
    logs = [
        *sorted(user_data.glob("logs/**/*CodeSieve*.log")),
        *sorted(user_data.glob("logs/**/*exthost.log")),
    ]
    for log in logs:
        parts.append(f"--- {log.relative_to(user_data)}\n{log.read_text(errors='replace')[-6000:]}")
    if server_log.exists():
        parts.append(f"--- code-server output\n{server_log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def _codesieve_output(user_data: Path) -> str:
    """All of the extension's output channel (what it logs, and the server's stderr)."""
    return "\n".join(
        log.read_text(errors="replace") for log in sorted(user_data.glob("logs/**/*CodeSieve*.log"))
    )


MCP_UNAVAILABLE = "agent mode is unavailable: VS Code"
MCP_DEFINITION = "MCP server for agent mode: "


def _mcp_definitions(output: str) -> list[str]:
    """The `codesieve mcp` command lines the extension gave VS Code's agent mode, in order."""
    return [line.split(MCP_DEFINITION, 1)[1] for line in output.splitlines() if MCP_DEFINITION in line]


def _no_codesieve_path() -> str:
    """The PATH without folders whose `python3` or `codesieve` is this checkout's (so discovery is real)."""
    here = Path(sys.executable).parent.resolve()
    parts = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(part for part in parts if part and Path(part).resolve() != here)


def _start_code_server(
    editor_tools: dict[str, str],
    tmp_path: Path,
    folder: Path,
    extra_settings: dict[str, object],
    trust: bool = False,
) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    """A fresh code-server with the .vsix installed and `folder` open; codesieve.* in User settings only.

    code-server is a remote window: its extension host runs on the "remote" side, where settings of
    machine scope are read from the Machine settings only. The extension's settings must work from
    the User settings, where a user puts them. `trust`: Workspace Trust is on, so the folder opens in
    Restricted Mode until it is trusted; and pip gets no configuration (no index mirror, no find-links)
    but what the extension passes it.
    """
    node, entry, vsix = editor_tools["NODE"], editor_tools["CODE_SERVER_ENTRY"], editor_tools["VSIX"]
    user_data, extensions, config = tmp_path / "user-data", tmp_path / "extensions", tmp_path / "config.yaml"
    (user_data / "User").mkdir(parents=True)
    config.write_text("bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n")
    settings = {
        "workbench.startupEditor": "none",
        "extensions.ignoreRecommendations": True,
        "security.workspace.trust.enabled": trust,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "workbench.tips.enabled": False,
        "chat.disableAIFeatures": True,
        "extensions.autoUpdate": False,
        "extensions.autoCheckUpdates": False,
        # typing in the editor should produce exactly the typed text
        "editor.autoClosingBrackets": "never",
        "editor.autoClosingQuotes": "never",
        "editor.autoIndent": "none",
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.acceptSuggestionOnEnter": "off",
        "editor.wordBasedSuggestions": "off",
        "files.autoSave": "off",
        "codesieve.indexDir": str(tmp_path / "indexes"),
        **extra_settings,
    }
    (user_data / "User" / "settings.json").write_text(json.dumps(settings, indent=2))
    env = {
        **(without_pip_configuration(os.environ) if trust else os.environ),
        "PATH": f"{Path(node).parent}{os.pathsep}{_no_codesieve_path()}",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("VIRTUAL_ENV", None)
    env.pop(
        "CODESIEVE_INDEX_DIR", None
    )  # the setting alone says where indexes live: retraining must follow it
    base = [
        node,
        entry,
        "--config",
        str(config),
        "--user-data-dir",
        str(user_data),
        "--extensions-dir",
        str(extensions),
    ]
    install = subprocess.run(
        [*base, "--install-extension", vsix], env=env, capture_output=True, text=True, timeout=180
    )
    assert install.returncode == 0, f"installing {vsix} failed:\n{install.stdout}\n{install.stderr}"
    assert any(extensions.glob("codesieve.codesieve-*")), f"no extension in {extensions}: {install.stdout}"

    port = _free_port()
    server_log = tmp_path / "code-server.log"
    with server_log.open("wb") as output:
        process = subprocess.Popen(
            [*base, "--bind-addr", f"127.0.0.1:{port}", "--auth", "none", "--disable-telemetry",
             "--disable-update-check", *([] if trust else ["--disable-workspace-trust"]),
             "--disable-getting-started-override", str(folder)],
            env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", process, timeout=60)
    except BaseException:
        _stop(process)
        raise
    return process, {
        "url": f"http://127.0.0.1:{port}",
        "folder": folder,
        "user_data": user_data,
        "log": server_log,
        "user_settings": user_data / "User" / "settings.json",
    }


def _model(request: pytest.FixtureRequest, fixture: str) -> Path:
    # CODESIEVE_E2E_MODEL: an already built model folder (saves building the tiny one when iterating).
    override = os.environ.get("CODESIEVE_E2E_MODEL") if fixture == "tiny_model" else None
    return Path(override) if override else Path(request.getfixturevalue(fixture))


@pytest.fixture()
def code_server(
    editor_tools: dict[str, str], request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[dict[str, object]]:
    """The sample files open, codesieve.pythonPath set (in the User settings), the tiny model with a ranker."""
    folder = tmp_path / "workspace"
    shutil.copytree(SAMPLES, folder)
    settings: dict[str, object] = {
        "codesieve.pythonPath": sys.executable,
        "codesieve.model": str(_model(request, "tiny_model")),
    }
    process, info = _start_code_server(editor_tools, tmp_path, folder, settings)
    try:
        yield info
    finally:
        _stop(process)


def _run_driver(
    code_server: dict[str, object],
    editor_tools: dict[str, str],
    tmp_path: Path,
    mode: str,
    extra_env: dict[str, str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Runs driver.js against the code-server; returns its result and the logs (for failure messages)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    result_file = tmp_path / "result.json"
    env = {
        **os.environ,
        "NODE_PATH": editor_tools["NODE_PATH"],
        "CS_URL": str(code_server["url"]),
        "CS_FOLDER": str(code_server["folder"]),
        "ARTIFACTS": str(ARTIFACTS),
        "RESULT": str(result_file),
        "USER_SETTINGS": str(code_server["user_settings"]),
        "USER_DATA": str(code_server["user_data"]),
        "MODE": mode,
        "BROWSER_PROFILE": str(tmp_path / "chromium-profile"),
        "CHROMIUM": editor_tools.get("CHROMIUM", "/usr/bin/chromium"),
        **(extra_env or {}),
    }
    started = time.monotonic()
    driver = subprocess.run(
        [editor_tools["NODE"], str(DRIVER)], env=env, capture_output=True, text=True, timeout=600
    )
    print(driver.stdout)
    print(f"driver: {time.monotonic() - started:.1f} s")
    logs = _logs(Path(str(code_server["user_data"])), Path(str(code_server["log"])))
    assert result_file.exists(), f"the driver wrote no result ({driver.returncode}):\n{driver.stderr}\n{logs}"
    result: dict[str, Any] = json.loads(result_file.read_text())
    failed = [f"{c['name']}: {c['detail']}" for c in result["checks"] if not c["ok"]]
    assert not result["error"], f"driver error: {result['error']}\n{driver.stdout[-3000:]}\n{logs}"
    assert not failed, "failed checks:\n" + "\n".join(failed) + f"\n{driver.stdout[-3000:]}\n{logs}"
    return result, logs


def test_the_vsix_declares_restricted_mode_and_carries_the_readme_images(
    editor_tools: dict[str, str],
) -> None:
    """The extension page shows the README from inside the .vsix: every image it links is in the package.
    In an untrusted folder the extension activates with limited support (to say the folder needs trust)."""
    with zipfile.ZipFile(editor_tools["VSIX"]) as vsix:
        files = set(vsix.namelist())
        manifest = json.loads(vsix.read("extension/package.json"))
        readme = vsix.read("extension/readme.md" if "extension/readme.md" in files else "extension/README.md")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme.decode("utf-8"))
    assert images, "the README links no images"
    for image in images:
        assert not image.startswith(("..", "/")), image
        assert image.startswith("https:") or f"extension/{image}" in files, (image, sorted(files))
    untrusted = manifest["capabilities"]["untrustedWorkspaces"]
    assert untrusted["supported"] == "limited" and "trusted" in untrusted["description"], untrusted


def test_vscode_extension_end_to_end(
    code_server: dict[str, object],
    editor_tools: dict[str, str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    result, _ = _run_driver(code_server, editor_tools, tmp_path, "full")
    names = {c["name"] for c in result["checks"]}
    for required in (
        "status bar reaches ready with a chunk count",  # with pythonPath in the User settings of a remote window
        "no preview before the user moves",
        "the reranked list replaced the first one",
        "Find Code lists the function whose text was typed",
        "Enter opens the hit on its line",
        "Find Similar lists similar functions",
        "a saved edit is found by the next search",
        "Retrain runs trainer fit in a task and acts on its report (too few pairs: train anyway?)",
        "the User settings show codesieve.pythonPath",
        "a Python that cannot run gives a notification saying to set codesieve.pythonPath",
        "its Open Settings shows the codesieve.pythonPath setting",
    ):
        assert required in names, f"the driver did not get to {required!r}"
    for shot in ("vscode-status-bar.png", "vscode-find-code.png", "vscode-find-similar.png"):
        assert (ARTIFACTS / shot).stat().st_size > 1000, f"missing screenshot {shot}"
    assert result["ok"], result
    # Retrain ran with only codesieve.indexDir saying where indexes live: fit worked in that index folder
    # (its work folder, training/, which it empties once it has decided)
    assert list((tmp_path / "indexes").glob("*/training/")), "trainer fit did not follow the setting"
    # Agent mode: VS Code (1.101+) took the MCP server definition provider and asked it for the server,
    # which runs with the language server's Python, on the workspace, with the same model and index folder.
    output = _codesieve_output(Path(str(code_server["user_data"])))
    if MCP_UNAVAILABLE in output:  # a VS Code without the MCP API: the extension says so and goes on
        assert "registered MCP server definition provider" not in output, output[-3000:]
        return
    assert "registered MCP server definition provider codesieve.mcp" in output, output[-3000:]
    definitions = _mcp_definitions(output)
    assert definitions, f"VS Code never asked for the MCP server definition:\n{output[-3000:]}"
    command = f"{sys.executable} -m codesieve.server.cli mcp {code_server['folder']} "
    assert definitions[0].startswith(command) and definitions[0].endswith("(from codesieve.pythonPath)"), (
        definitions
    )
    assert f" --index-dir {tmp_path / 'indexes'}" in definitions[0], definitions
    assert f" --model {_model(request, 'tiny_model')}" in definitions[0], definitions


VENV_PYTHON = """#!/bin/sh
# The workspace's own environment, as `python -m venv .venv && pip install <the codesieve wheel>` makes it.
exec {python} "$@"
"""


TEST_FUNCTION = """def test_parse_header():
    key, value = "Host: example.org".split(":", 1)
    assert (key.strip(), value.strip()) == ("Host", "example.org")
"""


def test_vscode_finds_the_workspace_venv_asks_once_per_query_and_includes_tests_on_request(
    editor_tools: dict[str, str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """No codesieve.pythonPath: the server runs from the workspace's .venv. No ranker: one request a query.
    codesieve.mcp.enabled false: agent mode is offered no MCP server.

    A test function, and a near copy of it outside tests/, with one result shown: the query that is the
    test function's text lists the copy, and the test function once Find Code's beaker button is pressed.
    """
    folder = tmp_path / "workspace"
    shutil.copytree(SAMPLES, folder)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_headers.py").write_text(TEST_FUNCTION, encoding="utf-8")
    near_copy = TEST_FUNCTION.replace("def test_parse_header", "def check_parse_header")
    (folder / "selfcheck.py").write_text(near_copy, encoding="utf-8")
    venv_python = folder / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text(VENV_PYTHON.format(python=sys.executable))
    venv_python.chmod(0o755)
    settings = {
        "codesieve.model": str(_model(request, "other_tiny_model")),  # no ranker.onnx
        "codesieve.trace.server": "messages",  # every request in the CodeSieve output
        "codesieve.resultLimit": 1,  # the first-stage winner alone: the copy, or the test function itself
        "codesieve.mcp.enabled": False,  # agent mode gets no MCP server
    }
    process, info = _start_code_server(editor_tools, tmp_path, folder, settings)
    try:
        result, logs = _run_driver(info, editor_tools, tmp_path, "discovery")
    finally:
        _stop(process)
    assert {
        "query 1 is answered",
        "query 2 is answered",
        "query 1's title says retrieval only",
        "pressing the beaker button brings the test function into the results",
        "Find Code opens again with tests included (remembered for the workspace)",
    } <= {c["name"] for c in result["checks"]}, result
    output = _codesieve_output(Path(str(info["user_data"])))
    assert f"starting: {venv_python} -m codesieve.server.cli serve" in output, logs
    if MCP_UNAVAILABLE not in output:
        definitions = _mcp_definitions(output)
        assert definitions and set(definitions) == {"off (codesieve.mcp.enabled is false)"}, logs
    finds = output.count("Sending request 'codeSearch/find ")
    # two queries, the test function's text, and the same again with includeTests after the button
    assert finds == 4, f"{finds} codeSearch/find requests for 4 searches:\n{logs}"


def test_vscode_sets_up_its_own_environment_on_a_machine_without_codesieve(
    editor_tools: dict[str, str], tmp_path: Path
) -> None:
    """No Python has CodeSieve and codesieve.pythonPath is unset: install the .vsix, open a folder and trust
    it, accept the offer to set up CodeSieve's own environment, reach ready and find code with the shipped
    model. The environment is a virtual environment in the extension's storage with the wheel the .vsix
    carries; its dependencies come from codesieve.setup.wheelhouse, a local folder of wheels (no index,
    and no hnswlib: it has no wheels, so the search is exact). That setting first names an empty folder:
    pip fails, and the message leads to the setting. Then the environment's record says it holds another
    wheel, as after an extension update, and the next start installs the carried one over it.
    """
    python3 = shutil.which("python3", path=_no_codesieve_path())
    assert python3, "the setup needs a python3 on the PATH"
    without = subprocess.run(
        [python3, "-c", "import codesieve"], capture_output=True, text=True, cwd=tmp_path
    )
    assert "No module named 'codesieve'" in without.stderr, "python3 must not have CodeSieve for this test"
    with zipfile.ZipFile(editor_tools["VSIX"]) as vsix:
        (carried,) = (
            name for name in vsix.namelist() if re.fullmatch(r"extension/wheel/codesieve-.+\.whl", name)
        )
        wheel = Path(vsix.extract(carried, tmp_path / "vsix"))
    folder = tmp_path / "workspace"
    shutil.copytree(SAMPLES, folder)
    wheelhouse = runtime_wheelhouse(python3, wheel)
    (tmp_path / "no-wheels").mkdir()
    settings = {"codesieve.setup.wheelhouse": str(tmp_path / "no-wheels")}
    process, info = _start_code_server(editor_tools, tmp_path, folder, settings, trust=True)
    try:
        result, logs = _run_driver(info, editor_tools, tmp_path, "setup", {"WHEELHOUSE": str(wheelhouse)})
    finally:
        _stop(process)
    assert {
        "the folder is trusted",
        "with no Python that has CodeSieve, the extension offers to set up its own environment",
        "a failed install names the log, the wheelhouse setting and Retry",
        "its Open Settings shows codesieve.setup.wheelhouse",
        "the setup shows its progress",
        "the server starts from the new environment and reaches ready",
        "Find Code lists the function whose text was typed",
        "a restart with another wheel recorded installs the carried one and gets back to ready",
    } <= {c["name"] for c in result["checks"]}, result
    user_data = Path(str(info["user_data"]))
    (environment,) = user_data.glob("**/codesieve.codesieve/env")
    output = _codesieve_output(user_data)
    python = environment / "bin" / "python"
    assert f"starting: {python} -m codesieve.server.cli serve (from CodeSieve's own environment)" in output, (
        logs
    )
    assert f"--no-index --find-links {wheelhouse}" in output and "hnswlib: no" in output, logs
    print(
        f"first-run setup, 'setting up' to ready: {result['timings']['setupSeconds']} s; "
        f"update to another wheel, restart to ready: {result['timings']['updateSeconds']} s"
    )
