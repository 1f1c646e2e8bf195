"""A process killed with SIGKILL while it writes the index leaves a usable, consistent index."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from indexcheck import assert_consistent

from codesieve.server.config import Settings
from codesieve.server.workspace import Workspace

WRITER = """
import sys
from pathlib import Path
from codesieve.server.config import Settings
from codesieve.server.workspace import Workspace

workspace = Workspace(Path(sys.argv[1]), Settings(model=Path(sys.argv[2]), threads=1, batch_size=8))
def progress(report):
    print(report.files_done, flush=True)
workspace.sync(progress)
print("done", flush=True)
"""

TEMPLATE = '''
def handler_{n}(request_{n}, retries={n}):
    """Handle request number {n}."""
    for attempt in range({n} % 7 + 1):
        if request_{n}.ok_{n}(attempt):
            return request_{n}.value * {n}
    return None


class Store{n}:
    def put_{n}(self, key, value):
        self.items_{n}[key] = value + {n}
'''


# kills per test; CODESIEVE_CRASH_ROUNDS=100 for a long run (docs/RELIABILITY.md)
ROUNDS = int(os.environ.get("CODESIEVE_CRASH_ROUNDS", "4"))


def make_workspace(root: Path, files: int) -> None:
    root.mkdir()
    for n in range(files):
        (root / f"module_{n:04d}.py").write_text(TEMPLATE.format(n=n))


def last_progress(output: str) -> int:
    """Files done at the last group commit the killed writer reported (0 if none)."""
    return max((int(line) for line in output.split() if line.isdigit()), default=0)


def kill_during_indexing(root: Path, model: Path, commits: int, delay: float) -> str:
    """Start a writer and SIGKILL it `delay` seconds after its `commits`-th group commit (a point that
    does not depend on the machine's speed); return what it printed."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(model)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    output = "".join(process.stdout.readline() for _ in range(commits))
    time.sleep(delay)  # somewhere inside the next group: embedding, or the transaction
    process.send_signal(signal.SIGKILL)
    output += process.stdout.read()
    process.wait(timeout=30)
    return output


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_a_consistent_index(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    root = tmp_path / "workspace"
    make_workspace(root, files=300)
    rng = random.Random(7)
    config = Settings(model=tiny_model, threads=1)
    committed_before = 0
    killed_mid_run = 0
    for _ in range(ROUNDS):
        output = kill_during_indexing(
            root, tiny_model, commits=rng.randint(1, 15), delay=rng.uniform(0, 0.05)
        )
        killed_mid_run += "done" not in output
        workspace = Workspace(root, config)
        assert_consistent(workspace)
        committed = len(workspace.store.files())
        assert committed >= committed_before  # finished work is never lost
        assert committed >= last_progress(output)  # nor what was committed before the kill
        committed_before = committed
        assert workspace.search("handle a request", limit=5).hits or committed == 0
        workspace.close()
        if committed_before == 300:
            break
    assert killed_mid_run >= min(ROUNDS, 4), "the kills should land while indexing, not after it"
    workspace = Workspace(root, config)
    report = workspace.sync()
    assert report.files_changed == 300 - committed_before  # resumes where the killed runs stopped
    assert len(workspace.store.files()) == 300
    assert_consistent(workspace)


@pytest.mark.slow
def test_sigkill_during_incremental_update(tmp_path: Path, tiny_model: Path, index_dir: Path) -> None:
    root = tmp_path / "workspace"
    make_workspace(root, files=120)
    config = Settings(model=tiny_model, threads=1)
    Workspace(root, config).sync()
    rng = random.Random(11)
    for branch in range(ROUNDS):  # branch switches: half the files change, some disappear or come back
        for n in range(branch % 2, 120, 2):
            path = root / f"module_{n:04d}.py"
            if n % 10 == branch % 10:
                path.unlink(missing_ok=True)
            else:
                path.write_text(TEMPLATE.format(n=n + 1000 * (branch + 1)))
        kill_during_indexing(root, tiny_model, commits=rng.randint(1, 4), delay=rng.uniform(0, 0.02))
        workspace = Workspace(root, config)
        assert_consistent(workspace, against_disk=False)  # some of the switch may not be indexed yet
        workspace.sync()
        assert_consistent(workspace)
        assert set(workspace.store.files()) == {path.name for path in root.glob("*.py")}
        workspace.close()
