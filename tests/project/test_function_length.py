"""No function in server/, trainer/ or export/ runs past about 60 lines unless its docstring says why."""

from __future__ import annotations

import ast

from helpers import REPO

MAX_LINES = 60
REASON = "Long on purpose:"


def test_long_functions_say_why_in_their_docstring() -> None:
    unexplained = []
    for folder in ("server", "trainer", "export"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES and REASON not in (ast.get_docstring(node) or ""):
                    unexplained.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    assert not unexplained, f"split these, or say why in the docstring ({REASON!r}):\n" + "\n".join(
        unexplained
    )
