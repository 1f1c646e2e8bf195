"""What test modules share: files on disk, the chunker's lines, and the `codesieve` command line run as a
user runs it. (Index invariants are in indexcheck.py, language-server clients in lsp_harness.py and lsp_raw.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, overload

TESTS = Path(__file__).resolve().parent  # the tests' root: data/, e2e/ and the shared modules
REPO = TESTS.parent


def write(root: Path, relpath: str, content: str | bytes = "x = 1\n") -> Path:
    """Create a file (and its parents) under root; text is written as UTF-8, newlines as given."""
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def lines_of(text: str) -> list[str]:
    """The chunker's lines: split on "\\n" only; a final "\\n" does not start a line."""
    lines = text.split("\n")
    return lines[:-1] if len(lines) > 1 and not lines[-1] else lines


@overload
def codesieve(
    *args: str, env: Mapping[str, str] | None = None, text: Literal[True] = True
) -> subprocess.CompletedProcess[str]: ...


@overload
def codesieve(
    *args: str | bytes, env: Mapping[str, str] | None = None, text: Literal[False]
) -> subprocess.CompletedProcess[bytes]: ...


def codesieve(
    *args: str | bytes, env: Mapping[str, str] | None = None, text: bool = True
) -> subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]:
    """Run the CLI in a new process; its stdout is strict UTF-8, as in a terminal with a UTF-8 locale that
    is not C.UTF-8. `text=False` keeps stdout and stderr as bytes (names and queries that are not UTF-8)."""
    command = [sys.executable, "-m", "codesieve.server.cli", *args]
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    return subprocess.run(command, capture_output=True, text=text, timeout=300, env=environment)
