"""Gitignore-style ignore rules, compiled to match a path itself, and their layering by directory.

A layer is one ignore file's rules with the directory they are relative to; the last matching rule
wins, and deeper layers override shallower ones (see `walk.py` for the order the walk uses).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
_DIR_GROUP = "(?P<ps_d>/)"  # the group pathspec's gitignore regexes use for "matched as a directory"
_PATTERNS_PER_RULE = 512  # patterns compiled into one regex (a bad one costs compiling these alone)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rule:
    """Consecutive ignore patterns with one verdict and scope, as one regex (see `rule_matches`)."""

    ignores: bool  # True: the paths it matches are ignored; False: a negation (`!`) that re-includes them
    regex: re.Pattern[str]
    scope: str  # "whole": the regex must match the whole path; "below": a proper ancestor; "any": anything


Rules = tuple[Rule, ...]
Layer = tuple[str, Rules]  # (base directory as "" or "a/b/", its patterns)


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One ignore line as a regex source, before compiling."""

    ignores: bool
    source: str
    scope: str
    line: int  # 1-based, for warnings
    text: str


def _pattern(text: str, line: int, origin: str) -> _Pattern | None:
    """The regex source of one gitignore line; None for blanks, comments and invalid lines."""
    try:
        from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern  # loaded when a rule is read

        regex, ignores = GitIgnoreSpecPattern.pattern_to_regex(text)  # pathspec calls it "include"
    except ValueError as error:
        _warn_invalid(origin, line, text, str(error))
        return None
    if ignores is None or regex is None:
        return None
    # pathspec searches; anchor unanchored regexes (`*/` is just "/") so that fullmatch means the same.
    source = regex if regex.startswith("^") else f".*(?:{regex})"
    if _DIR_GROUP in source:
        # `foo`, `foo/`, `*.py`, `a/**/b`: the path itself. The group only marks "matched as a
        # directory"; a rule's patterns share one regex, where a group name may occur once. `/` cannot
        # occur in a bracket expression (gitignore splits patterns on it first), so this text is
        # always pathspec's group.
        scope, source = "whole", source.replace(_DIR_GROUP, "/")
    else:
        scope = "below" if source.endswith("/") else "any"  # `foo/**`: inside foo, not foo; `*`, `**`
    return _Pattern(ignores, source, scope, line, text)


def _warn_invalid(origin: str, line: int, text: str, reason: str) -> None:
    log.warning("%s:%d: skipped %r, not a valid pattern (%s), as git does", origin, line, text[:200], reason)


def _alternatives(patterns: Sequence[_Pattern]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{pattern.source})" for pattern in patterns), re.DOTALL)


def _compiled(patterns: Sequence[_Pattern], origin: str) -> re.Pattern[str] | None:
    """One regex matching what any of `patterns` matches (names may hold newlines); a line that git
    accepts but Python's `re` rejects (`[z-a]*.log`) is left out with a warning."""
    try:
        return _alternatives(patterns)
    except re.error:
        valid = []
        for pattern in patterns:
            try:
                re.compile(pattern.source)
            except re.error as error:
                _warn_invalid(origin, pattern.line, pattern.text, error.msg)  # its position is in the regex
                continue
            valid.append(pattern)
        return _alternatives(valid) if valid else None


def compile_rules(lines: Iterable[str], origin: str = "ignore patterns") -> Rules:
    """Compile gitignore lines into rules that match a path itself; `origin` names them in warnings.

    pathspec applies a directory pattern to everything below the directory too, which is right for a
    flat list of files but not for a walk that checks each directory before entering it: with `gen/`
    then `!src/`, pathspec re-includes `src/gen/` while git keeps it ignored. So the regexes pathspec
    translates patterns to are used here, but a rule must match the path itself, as git's
    per-directory check does. The last matching pattern wins, so a run of consecutive patterns with
    the same verdict and scope can be one rule: one regex to try per 512 lines, not one per line.
    """
    patterns = [
        pattern for line, text in enumerate(lines, 1) if (pattern := _pattern(text, line, origin)) is not None
    ]
    rules = []
    for (ignores, scope), run in itertools.groupby(
        patterns, key=lambda pattern: (pattern.ignores, pattern.scope)
    ):
        group = list(run)
        for start in range(0, len(group), _PATTERNS_PER_RULE):
            regex = _compiled(group[start : start + _PATTERNS_PER_RULE], origin)
            if regex is not None:
                rules.append(Rule(ignores, regex, scope))
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
            return rule.ignores
    return None


def read_ignore_file(path: str) -> Rules:
    """Rules from one ignore file; none if it is missing or unreadable.

    Compiled once per version of the file (its identity, size and mtime): a sync that finds nothing
    changed does not compile a long ignore file again, nor warn again about its invalid lines.
    """
    try:
        info = os.stat(path)
    except OSError:
        return ()
    return _read_ignore_file(path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _read_ignore_file(path: str, device: int, inode: int, size: int, mtime_ns: int) -> Rules:
    """`read_ignore_file` for one version of the file (the arguments after `path` key the cache)."""
    try:
        data = open_regular(path, _MAX_IGNORE_FILE, _MAX_IGNORE_FILE)
    except SourceError:
        return ()
    return compile_rules(data.decode("utf-8", errors="replace").splitlines(), path)


def layers_match(layers: Sequence[Layer], relpath: str) -> bool:
    """Whether the last matching pattern, deepest layer first, ignores `relpath`."""
    for base, rules in reversed(layers):
        verdict = last_match(rules, relpath[len(base) :])
        if verdict is not None:
            return verdict
    return False
