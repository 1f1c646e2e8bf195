"""Which files hold test code: the path says so (a `tests/` folder, a `test_*.py` or `*_test.go` name).

Search ranks implementation ahead of test code of similar relevance (`first_stage.py`), and the
trainer mines no pairs from tests (`trainer/mining.py`): both use this one detector. It reads the
workspace-relative path only, so it costs nothing at search time and cannot misjudge a function by
its body.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

TEST_DIRECTORIES = frozenset({"test", "tests", "spec", "specs", "__tests__", "testing"})
_TEST_FILE = re.compile(
    r"(^test_|_test\.|_tests\.|_spec\.|\.spec\.|\.test\.|Tests?\.(java|kt|cs|scala)$|^conftest\.py$)"
)


def is_test_path(path: str) -> bool:
    """Whether a workspace-relative path looks like a test file."""
    parts = PurePosixPath(path).parts
    if not parts:
        return False
    return any(part.lower() in TEST_DIRECTORIES for part in parts[:-1]) or bool(_TEST_FILE.search(parts[-1]))
