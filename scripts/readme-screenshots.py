"""Takes the README's VS Code screenshots: a real repository, the shipped model, code-server in headless Chromium.

    .venv/bin/python scripts/readme-screenshots.py ~/src/requests "retry a request when the connection fails"

Copies the folder, opens it in a fresh code-server with the .vsix (scripts/setup-editor-tests.sh
builds it), indexes it with the shipped model, and writes editor-client/media/vscode-{status-bar,
find-code,find-similar}.png (inside the extension, so the .vsix carries them) through tests/e2e/vscode/driver.js
(MODE=screenshots).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_vscode_e2e import DRIVER, SETUP, _start_code_server, _stop  # noqa: E402


def main(folder: Path, query: str) -> int:
    setup = subprocess.run(["bash", str(SETUP)], cwd=ROOT, capture_output=True, text=True, check=True)
    tools = dict(line.split("=", 1) for line in setup.stdout.splitlines() if "=" in line)
    with tempfile.TemporaryDirectory(prefix="codesieve-screenshots-") as scratch:
        work = Path(scratch)
        copy = work / folder.resolve().name
        shutil.copytree(folder, copy, symlinks=True)
        settings = {"codesieve.pythonPath": sys.executable, "workbench.colorTheme": "Default Dark Modern"}
        process, info = _start_code_server(tools, work, copy, settings)
        try:
            env = {
                "PATH": "/usr/bin:/bin",
                "NODE_PATH": tools["NODE_PATH"],
                "CS_URL": str(info["url"]),
                "CS_FOLDER": str(copy),
                "ARTIFACTS": str(ROOT / "editor-client" / "media"),
                "RESULT": str(work / "result.json"),
                "USER_SETTINGS": str(info["user_settings"]),
                "MODE": "screenshots",
                "QUERY": query,
                "READY_TIMEOUT_MS": "900000",
                "BROWSER_PROFILE": str(work / "chromium-profile"),
                "CHROMIUM": tools.get("CHROMIUM", "/usr/bin/chromium"),
            }
            driver = subprocess.run([tools["NODE"], str(DRIVER)], env=env, text=True, check=False)
            return driver.returncode
        finally:
            _stop(process)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
