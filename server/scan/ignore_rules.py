"""Gitignore-style ignore rules, compiled to match a path itself, and their layering by directory.

A layer is one ignore file's rules with the directory they are relative to; the last matching rule
wins, and deeper layers override shallower ones (see `walk.py` for the order the walk uses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pathspec import GitIgnoreSpec

from .safe_read import SourceError, open_regular

VCS_DIRS = frozenset({".git", ".hg", ".svn"})
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "node_modules/",
    "__pycache__/",
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    "dist/",
    "build/",
    "target/",
    ".idea/",
    ".vscode/",
)
"""Lowest-priority ignore patterns, relative to the root; any ignore file can re-include them."""

IGNORE_FILES = (".gitignore", ".codesieveignore")
"""Per-directory ignore files, lowest priority first."""

_MAX_IGNORE_FILE = 4_000_000
_DIR_MARK = "ps_d"  # the group pathspec's gitignore regexes use for "matched as a directory"


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled ignore pattern, applied to a path itself (see `rule_matches`)."""

    include: bool  # True: ignore; False: a negation that re-includes
    regex: re.Pattern[str]
    scope: str  # "whole": the regex must match the whole path; "below": a proper ancestor; "any": anything


Rules = tuple[Rule, ...]
Layer = tuple[str, Rules]  # (base directory as "" or "a/b/", its patterns)


def _parse(lines: list[str]) -> GitIgnoreSpec:
    """Parse gitignore lines with pathspec, dropping any line that is not a valid pattern."""
    try:
        return GitIgnoreSpec.from_lines(lines)
    except ValueError:
        valid = []
        for line in lines:
            try:
                GitIgnoreSpec.from_lines([line])
            except ValueError:
                continue
            valid.append(line)
        return GitIgnoreSpec.from_lines(valid)


def compile_rules(lines: Iterable[str]) -> Rules:
    """Compile gitignore lines into rules that match a path itself.

    pathspec applies a directory pattern to everything below the directory too, which is right for a flat
    list of files but not for a walk that checks each directory before entering it: with `gen/` then
    `!src/`, pathspec re-includes `src/gen/` while git keeps it ignored. So the regexes pathspec compiles
    are used here, but a rule must match the path itself, as git's per-directory check does.
    """
    rules = []
    for pattern in _parse(list(lines)).patterns:
        compiled = getattr(pattern, "regex", None)
        if pattern.include is None or not isinstance(compiled, re.Pattern):
            continue
        # pathspec searches; anchor unanchored regexes (`*/` is just "/") so that fullmatch means the same.
        source = compiled.pattern if compiled.pattern.startswith("^") else f".*(?:{compiled.pattern})"
        regex = re.compile(source, compiled.flags | re.DOTALL)  # names may hold newlines
        if _DIR_MARK in regex.groupindex:
            scope = "whole"  # `foo`, `foo/`, `*.py`, `a/**/b`: the path itself
        elif regex.pattern.endswith("/"):
            scope = "below"  # `foo/**`: everything inside foo, but not foo itself
        else:
            scope = "any"  # `*`, `**`
        rules.append(Rule(pattern.include, regex, scope))
    return tuple(rules)


def rule_matches(rule: Rule, path: str) -> bool:
    """Whether `rule` matches `path` ("a/b.py" for a file, "a/b/" for a directory)."""
    if rule.scope == "whole":
        return rule.regex.fullmatch(path) is not None
    if rule.scope == "any":
        return rule.regex.search(path) is not None
    slash = path.find("/")
    while 0 <= slash < len(path) - 1:
        if rule.regex.fullmatch(path, 0, slash + 1) is not None:
            return True
        slash = path.find("/", slash + 1)
    return False


def last_match(rules: Rules, path: str) -> bool | None:
    """Whether the last rule matching `path` ignores it (True) or re-includes it (False); None if none."""
    for rule in reversed(rules):
        if rule_matches(rule, path):
            return rule.include
    return None


def read_ignore_file(path: str) -> Rules:
    """Rules from one ignore file; none if it is missing or unreadable."""
    try:
        data = open_regular(path, _MAX_IGNORE_FILE, _MAX_IGNORE_FILE)
    except SourceError:
        return ()
    return compile_rules(data.decode("utf-8", errors="replace").splitlines())


def layers_match(layers: Sequence[Layer], relpath: str) -> bool:
    """Whether the last matching pattern, deepest layer first, ignores `relpath`."""
    for base, rules in reversed(layers):
        verdict = last_match(rules, relpath[len(base) :])
        if verdict is not None:
            return verdict
    return False
