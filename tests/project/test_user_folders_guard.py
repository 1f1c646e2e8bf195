"""The run's guard: a test that writes into the user's CodeSieve cache fails the whole run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import platformdirs
from helpers import TESTS


def test_a_run_whose_test_writes_into_the_users_cache_fails(tmp_path: Path) -> None:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_careless.py").write_text(
        "import os\nfrom pathlib import Path\n\n"
        "def test_careless():\n"
        "    folder = Path(os.environ['USER_CACHE_OF_THE_RUN']) / 'indexes'\n"
        "    folder.mkdir(parents=True, exist_ok=True)\n"
        "    (folder / 'index.db').write_text('x')\n",
        encoding="utf-8",
    )
    # the inner run's "user cache" is this run's private one (XDG_CACHE_HOME is already redirected)
    users = Path(platformdirs.user_cache_dir("codesieve"))
    env = {**os.environ, "USER_CACHE_OF_THE_RUN": str(users)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    shutil.rmtree(users / "indexes", ignore_errors=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout and "the tests changed the user's cache" in result.stderr
