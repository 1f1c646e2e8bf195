"""Tests for the workspace walk: ignore rules, symlinks, odd files and the single-path filter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path, PurePosixPath

import pytest
from helpers import write
from hypothesis import given, settings
from hypothesis import strategies as st

from codesieve.server.scan.safe_read import SourceError, read_source
from codesieve.server.scan.walk import ScanResult, SourceFile, WorkspaceFilter, scan_workspace

_SUFFIXES = {".py": "python", ".js": "javascript", ".rs": "rust"}


def language_of(path: str) -> str | None:
    """A stand-in for languages.language_for_path, so these tests do not depend on it."""
    return _SUFFIXES.get(PurePosixPath(path).suffix)


def scan(root: Path, *, max_file_size: int = 1_000_000, exclude: tuple[str, ...] = ()) -> ScanResult:
    return scan_workspace(root, max_file_size=max_file_size, exclude=exclude, language_of=language_of)


def paths(result: ScanResult) -> list[str]:
    return [f.path for f in result.files]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def test_nested_gitignore_negation_and_anchoring(ws: Path) -> None:
    write(ws, ".gitignore", "gen_*.py\n/top.py\nsecret/\ndocs/**/skip.py\n")
    write(ws, "sub/.gitignore", "!gen_b.py\nlocal.py\n")
    for rel in ["top.py", "sub/top.py", "gen_a.py", "sub/gen_b.py", "sub/local.py", "local.py"]:
        write(ws, rel)
    for rel in ["secret/x.py", "docs/a/b/skip.py", "docs/a/keep.py"]:
        write(ws, rel)

    result = scan(ws)

    assert paths(result) == ["docs/a/keep.py", "local.py", "sub/gen_b.py", "sub/top.py"]
    assert result.skipped == Counter({"ignored": 5, "not-source": 2})
    assert sorted(result.examples["ignored"]) == [
        "docs/a/b/skip.py",
        "gen_a.py",
        "secret",
        "sub/local.py",
        "top.py",
    ]


def test_codesieveignore_overrides_gitignore_beside_it(ws: Path) -> None:
    write(ws, ".gitignore", "generated/*\nlogs/\n")
    write(ws, ".codesieveignore", "!generated/keep.py\n!logs/keep.py\nvendor/\n")
    for rel in ["generated/keep.py", "generated/other.py", "logs/keep.py", "vendor/lib.py", "main.py"]:
        write(ws, rel)

    result = scan(ws)

    # logs/ stays pruned: a negation cannot re-include a file below an ignored directory.
    assert paths(result) == ["generated/keep.py", "main.py"]
    assert result.skipped == Counter({"ignored": 3, "not-source": 2})


def test_deeper_gitignore_overrides_shallower_codesieveignore(ws: Path) -> None:
    write(ws, ".codesieveignore", "!sub/mine.py\n")
    write(ws, "sub/.gitignore", "mine.py\n")
    write(ws, "sub/mine.py")

    assert paths(scan(ws)) == []


def test_exclude_setting_always_excludes(ws: Path) -> None:
    write(ws, ".codesieveignore", "!important.py\n")
    for rel in ["important.py", "gen/a.py", "src/gen/b.py", "src/c.py"]:
        write(ws, rel)

    result = scan(ws, exclude=("important.py", "/gen/"))

    assert paths(result) == ["src/c.py", "src/gen/b.py"]
    assert result.skipped == Counter({"ignored": 2, "not-source": 1})


def test_default_excludes_can_be_overridden_but_vcs_dirs_cannot(ws: Path) -> None:
    for rel in ["node_modules/m.js", "build/b.py", "__pycache__/c.py", ".git/hooks/h.py", "src/a.py"]:
        write(ws, rel)
    write(ws, ".git/info/exclude", "private.py\n")
    write(ws, "private.py")
    write(ws, ".gitignore", "!build/\n!.git/\n")

    result = scan(ws)

    assert paths(result) == ["build/b.py", "src/a.py"]
    assert result.skipped == Counter({"ignored": 4, "not-source": 1})
    assert sorted(result.examples["ignored"]) == [".git", "__pycache__", "node_modules", "private.py"]


def test_invalid_ignore_lines_are_dropped_and_the_rest_apply(ws: Path) -> None:
    write(ws, ".gitignore", "!\nskip.py\n")
    write(ws, "skip.py")
    write(ws, "keep.py")

    assert paths(scan(ws)) == ["keep.py"]


def test_binary_file_is_skipped_and_read_source_refuses_it(ws: Path) -> None:
    blob = write(ws, "blob.py", b"abc\0def")
    write(ws, "ok.py")

    result = scan(ws)

    assert paths(result) == ["ok.py"]
    assert result.skipped == Counter({"binary": 1})
    with pytest.raises(SourceError) as caught:
        read_source(blob, 1_000_000)
    assert caught.value.reason == "binary"


def test_huge_sparse_file_is_too_large_without_being_read(ws: Path) -> None:
    with (ws / "huge.py").open("wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    write(ws, "small.py", "y = 2\n")

    result = scan(ws)

    assert paths(result) == ["small.py"]
    assert result.skipped == Counter({"too-large": 1})
    assert result.examples == {"too-large": ["huge.py"]}
    with pytest.raises(SourceError) as caught:
        read_source(ws / "huge.py", 1_000_000)
    assert caught.value.reason == "too-large"
    assert paths(scan(ws, max_file_size=5)) == []


def test_invalid_utf8_is_included_and_read_with_replacement(ws: Path) -> None:
    write(ws, "latin1.py", b"name = '\xe9t\xe9'\n")

    result = scan(ws)

    assert paths(result) == ["latin1.py"]
    assert result.files[0].size == 13
    assert read_source(result.files[0].abspath, 1_000_000) == "name = '\ufffdt\ufffd'\n"


def test_read_source_keeps_text_exactly(ws: Path) -> None:
    path = write(ws, "crlf.py", b"a = '\xc3\xa9'\r\nb = 2\n")

    assert read_source(path, 100) == "a = 'é'\r\nb = 2\n"


def test_source_file_fields(ws: Path) -> None:
    path = write(ws, "pkg/mod.py", "print(1)\n")

    (found,) = scan(ws).files

    info = path.stat()
    assert found == SourceFile("pkg/mod.py", ws / "pkg" / "mod.py", "python", 9, info.st_mtime_ns)


def test_symlink_loops_are_not_followed(ws: Path) -> None:
    write(ws, "sub/a.py")
    os.symlink("..", ws / "sub" / "up")
    os.symlink(".", ws / "here")
    os.symlink("self.py", ws / "self.py")

    result = scan(ws)

    assert paths(result) == ["sub/a.py"]
    assert result.skipped == Counter({"symlink-loop": 3})
    assert sorted(result.examples["symlink-loop"]) == ["here", "self.py", "sub/up"]


def test_symlinks_to_outside_the_workspace_are_skipped(ws: Path) -> None:
    outside = ws.parent / "outside"
    write(outside, "secret.py")
    os.symlink(outside, ws / "linked_dir")
    os.symlink(outside / "secret.py", ws / "linked_file.py")
    os.symlink("../outside/missing.py", ws / "dangling_outside.py")

    result = scan(ws)

    assert paths(result) == []
    assert result.skipped == Counter({"symlink-outside": 3})


def test_links_inside_the_workspace_are_indexed_once(ws: Path) -> None:
    write(ws, "pkg/a.py")
    write(ws, "node_modules/lib/index.js")
    os.symlink("pkg/a.py", ws / "alias.py")
    os.symlink("pkg", ws / "pkg_link")
    os.symlink("node_modules/lib", ws / "vendored")

    result = scan(ws)

    # The real path wins over links; a link to a pruned directory exposes it under the link's name.
    assert paths(result) == ["pkg/a.py", "vendored/index.js"]
    assert result.skipped == Counter({"duplicate": 1, "symlink-loop": 1, "ignored": 1})
    assert result.examples["duplicate"] == ["alias.py"]
    assert result.examples["symlink-loop"] == ["pkg_link"]


def test_link_to_an_unindexed_file_is_indexed_under_the_link(ws: Path) -> None:
    write(ws, ".gitignore", "hidden/\n")
    write(ws, "hidden/real.py")
    os.symlink("hidden/real.py", ws / "shown.py")

    assert paths(scan(ws)) == ["shown.py"]


def test_dangling_symlink_is_unreadable(ws: Path) -> None:
    os.symlink("missing.py", ws / "gone.py")

    result = scan(ws)

    assert result.skipped == Counter({"unreadable": 1})
    assert result.examples == {"unreadable": ["gone.py"]}
    with pytest.raises(SourceError) as caught:
        read_source(ws / "gone.py", 1000)
    assert caught.value.reason == "unreadable"
    assert "gone.py" in str(caught.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read files without permission")
def test_permission_denied_is_unreadable(ws: Path) -> None:
    locked_file = write(ws, "locked.py")
    locked_dir = write(ws, "closed/inner.py").parent
    write(ws, "open.py")
    locked_file.chmod(0)
    locked_dir.chmod(0)
    try:
        result = scan(ws)
        assert paths(result) == ["open.py"]
        assert result.skipped == Counter({"unreadable": 2})
        assert sorted(result.examples["unreadable"]) == ["closed", "locked.py"]
        assert not WorkspaceFilter(ws, language_of=language_of).accepts("closed/inner.py")
    finally:
        locked_dir.chmod(0o755)
        locked_file.chmod(0o644)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_skipped_without_blocking(ws: Path) -> None:
    os.mkfifo(ws / "pipe.py")
    os.mkfifo(ws / "pipe")
    write(ws, "a.py")
    outcome: list[ScanResult] = []
    worker = threading.Thread(target=lambda: outcome.append(scan(ws)), daemon=True)

    worker.start()
    worker.join(timeout=10)

    assert outcome, "the scan blocked on a FIFO"
    assert paths(outcome[0]) == ["a.py"]
    assert outcome[0].skipped == Counter({"not-regular": 1, "not-source": 1})
    with pytest.raises(SourceError) as caught:
        read_source(ws / "pipe.py", 1000)
    assert caught.value.reason == "not-regular"


def test_names_with_spaces_and_newlines_are_included(ws: Path) -> None:
    write(ws, "with space.py", "a = 1\n")
    write(ws, "new\nline.py", "b = 2\n")
    write(ws, "dir with space/c.py")

    result = scan(ws)

    assert paths(result) == ["dir with space/c.py", "new\nline.py", "with space.py"]
    assert read_source(result.files[1].abspath, 100) == "b = 2\n"


@pytest.mark.skipif(sys.platform != "linux", reason="needs a filesystem that accepts non-UTF-8 names")
def test_names_that_are_not_utf8_are_skipped_as_bad_name(ws: Path) -> None:
    os.close(os.open(os.fsencode(ws) + b"/bad\xff.py", os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(os.fsencode(ws) + b"/dir\xfe")
    write(ws, "good.py")

    result = scan(ws)

    assert paths(result) == ["good.py"]
    assert result.skipped == Counter({"bad-name": 2})
    assert not WorkspaceFilter(ws, language_of=language_of).accepts(os.fsdecode(b"bad\xff.py"))


def test_deep_trees_do_not_hit_the_recursion_limit(ws: Path) -> None:
    depth = sys.getrecursionlimit() + 100
    chain = [str(ws)]
    for _ in range(depth):  # pathlib's and os.makedirs' parent creation recurse, so go one level at a time
        chain.append(os.path.join(chain[-1], "d"))
        os.mkdir(chain[-1])
    leaf = os.path.join(chain[-1], "leaf.py")
    with open(leaf, "w", encoding="utf-8") as handle:
        handle.write("x = 1\n")
    try:
        assert paths(scan(ws)) == ["/".join(["d"] * depth) + "/leaf.py"]
    finally:
        # shutil.rmtree recurses too (Python < 3.12), and pytest's clean-up of old temporary folders with it.
        os.remove(leaf)
        for directory in reversed(chain[1:]):
            os.rmdir(directory)


def test_scan_is_deterministic_and_sorted(ws: Path) -> None:
    for rel in ["b/z.py", "a.py", "b/a.py", "B.py", "a/b.py"]:
        write(ws, rel)

    first, second = scan(ws), scan(ws)

    assert paths(first) == sorted(paths(first)) == ["B.py", "a.py", "a/b.py", "b/a.py", "b/z.py"]
    assert first == second


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="workspace root"):
        scan(tmp_path / "nope")
    write(tmp_path, "file.py")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        scan(tmp_path / "file.py")


def _build_mixed_tree(ws: Path) -> None:
    """A workspace that exercises every rule at once."""
    write(ws, ".gitignore", "*.gen.py\n/out/\n!keep.gen.py\ndocs/**/draft.py\n")
    write(ws, "src/.gitignore", "local_*.py\n!local_ok.py\n")
    write(ws, "src/.codesieveignore", "!local_forced.py\n")
    for rel in [
        "src/main.py",
        "src/x.gen.py",
        "src/keep.gen.py",
        "src/local_a.py",
        "src/local_ok.py",
        "src/local_forced.py",
        "src/deep/er/mod.rs",
        "out/o.py",
        "docs/a/draft.py",
        "docs/a/final.py",
        "node_modules/pkg/index.js",
        "excluded/e.py",
        "README.md",
        "new\nline.py",
    ]:
        write(ws, rel)
    write(ws, "src/blob.py", b"\0\1\2")
    with (ws / "src" / "big.py").open("wb") as handle:
        handle.truncate(2_000_000)
    os.symlink("..", ws / "src" / "up")
    os.symlink("main.py", ws / "src" / "alias.py")
    os.symlink("node_modules/pkg", ws / "pkg")
    os.symlink("missing.py", ws / "dangling.py")
    os.symlink(ws.parent, ws / "escape")
    if hasattr(os, "mkfifo"):
        os.mkfifo(ws / "src" / "fifo.py")


def _all_paths(ws: Path, indexed: list[str]) -> set[str]:
    """Every entry under ws without following links, plus everything the walk indexed."""
    found = set(indexed)
    for dirpath, dirnames, filenames in os.walk(ws):
        base = Path(dirpath).relative_to(ws).as_posix()
        for name in dirnames + filenames:
            found.add(name if base == "." else f"{base}/{name}")
    return found


def test_counts_are_exact_on_a_mixed_tree(ws: Path) -> None:
    _build_mixed_tree(ws)

    result = scan(ws, exclude=("excluded/",))

    assert paths(result) == [
        "docs/a/final.py",
        "new\nline.py",
        "pkg/index.js",
        "src/deep/er/mod.rs",
        "src/keep.gen.py",
        "src/local_forced.py",
        "src/local_ok.py",
        "src/main.py",
    ]
    expected = {
        "ignored": 6,  # x.gen.py, local_a.py, out/, docs/a/draft.py, node_modules/, excluded/
        "not-source": 4,  # README.md, three ignore files
        "binary": 1,
        "too-large": 1,
        "symlink-loop": 1,
        "duplicate": 1,
        "unreadable": 1,
        "symlink-outside": 1,
    }
    if hasattr(os, "mkfifo"):
        expected["not-regular"] = 1
    assert result.skipped == Counter(expected)


def test_filter_agrees_with_the_walk_on_every_path(ws: Path) -> None:
    _build_mixed_tree(ws)
    result = scan(ws, exclude=("excluded/",))
    workspace = WorkspaceFilter(ws, ["excluded/"], 1_000_000, language_of)
    indexed = {f.path: f for f in result.files}

    for relpath in sorted(_all_paths(ws, list(indexed))):
        verdict = workspace.classify(relpath)
        if relpath in indexed:
            assert verdict == indexed[relpath], relpath
        else:
            assert isinstance(verdict, str), relpath
        assert workspace.accepts(relpath) == (relpath in indexed)
    for reason, examples in result.examples.items():
        for relpath in examples:
            assert workspace.classify(relpath) == reason, relpath


def test_filter_rejects_paths_outside_and_directories(ws: Path) -> None:
    write(ws, "src/a.py")
    workspace = WorkspaceFilter(ws, language_of=language_of)

    assert workspace.accepts("src/a.py")
    assert workspace.accepts("./src/a.py")
    assert not workspace.accepts("../ws/src/a.py")
    assert not workspace.accepts("/etc/passwd")
    assert not workspace.accepts("src")
    assert not workspace.accepts("src/missing.py")
    assert workspace.classify("src/a.py/child.py") == "not-a-directory"


_TREE_PATHS = [
    "a.py",
    "b.js",
    "src/a.py",
    "src/gen/c.py",
    "src/gen/d.rs",
    "lib/src/e.py",
    "build/f.py",
    "g.txt",
]
_PATTERNS = [
    "*.py",
    "!a.py",
    "src/",
    "!src/",
    "gen/",
    "/a.py",
    "**/gen/*.py",
    "!gen/c.py",
    "build/",
    "!build/",
]


@settings(max_examples=40, deadline=None)
@given(
    files=st.sets(st.sampled_from(_TREE_PATHS), min_size=1),
    root_rules=st.lists(st.sampled_from(_PATTERNS), max_size=4),
    src_rules=st.lists(st.sampled_from(_PATTERNS), max_size=3),
    override_rules=st.lists(st.sampled_from(_PATTERNS), max_size=3),
)
def test_filter_agrees_with_the_walk_for_random_rules(
    files: set[str], root_rules: list[str], src_rules: list[str], override_rules: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel in files:
            write(root, rel)
        write(root, ".gitignore", "\n".join(root_rules) + "\n")
        write(root, ".codesieveignore", "\n".join(override_rules) + "\n")
        if any(rel.startswith("src/") for rel in files):
            write(root, "src/.gitignore", "\n".join(src_rules) + "\n")
        indexed = set(paths(scan(root)))
        workspace = WorkspaceFilter(root, language_of=language_of)

        assert {rel for rel in files if workspace.accepts(rel)} == indexed


_GIT_PATHS = [
    "a.py",
    "b.py",
    "src/a.py",
    "src/gen/c.py",
    "lib/gen/a.py",
    "x/y/z/a.py",
    "x/keep.py",
    "gen/src/b.py",
]
_GIT_PATTERNS = [
    *["*.py", "!a.py", "src/", "!src/", "gen/", "/a.py", "**/gen/*.py", "!gen/c.py", "src/*", "!src/gen/"],
    *["gen", "/lib/", "!*.py", "x/**", "**/z", "!x/y/z/a.py", "*", "!*/", "*/", "!x/y/", "**/gen/**"],
]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git as the reference for .gitignore semantics")
@settings(max_examples=60, deadline=None)
@given(
    files=st.sets(st.sampled_from(_GIT_PATHS), min_size=1),
    root_rules=st.lists(st.sampled_from(_GIT_PATTERNS), max_size=5),
    src_rules=st.lists(st.sampled_from(_GIT_PATTERNS), max_size=3),
)
def test_gitignore_semantics_match_git(files: set[str], root_rules: list[str], src_rules: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel in files:
            write(root, rel)
        write(root, ".gitignore", "\n".join(root_rules) + "\n")
        if (root / "src").is_dir():
            write(root, "src/.gitignore", "\n".join(src_rules) + "\n")
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        listing = subprocess.run(
            ["git", "ls-files", "--others", "--exclude-standard", "-z"],
            cwd=root,
            check=True,
            capture_output=True,
        ).stdout.decode()

        assert set(paths(scan(root))) == {rel for rel in listing.split("\0") if rel.endswith(".py")}


# ignore files that git accepts but Python's re does not, and long ones, which stalled indexing ---------------------
def test_an_ignore_line_that_python_re_rejects_is_skipped_with_one_warning(
    ws: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(ws, ".gitignore", "[z-a]*.log\nskipped.py\n")  # git accepts the empty range; re raises re.error
    write(ws, "kept.py")
    write(ws, "skipped.py")
    with caplog.at_level("WARNING"):
        first, second = scan(ws), scan(ws)
    assert paths(first) == paths(second) == ["kept.py"]
    warnings = [record.getMessage() for record in caplog.records if "[z-a]*.log" in record.getMessage()]
    assert len(warnings) == 1 and ".gitignore:1" in warnings[0], warnings


def test_an_invalid_exclude_setting_line_is_skipped_and_the_rest_apply(ws: Path) -> None:
    write(ws, "a.py")
    write(ws, "b.py")
    assert paths(scan(ws, exclude=("[z-a]", "b.py"))) == ["a.py"]


def test_a_long_ignore_file_is_one_rule_per_512_lines_and_compiled_once_per_version(ws: Path) -> None:
    from codesieve.server.scan.ignore_rules import read_ignore_file

    lines = [f"generated_{number}/" for number in range(5_000)] + ["!generated_7/", "*.log"]
    ignore = write(ws, ".gitignore", "\n".join(lines) + "\n")
    write(ws, "generated_7/kept.py")
    write(ws, "generated_8/gone.py")
    write(ws, "src/main.py")
    rules = read_ignore_file(str(ignore))
    assert len(rules) == 12  # 10 runs of directory patterns, the negation, `*.log`
    assert read_ignore_file(str(ignore)) is rules  # an unchanged file is not compiled again
    assert paths(scan(ws)) == ["generated_7/kept.py", "src/main.py"]
    ignore.write_text("generated_7/\n", encoding="utf-8")
    assert read_ignore_file(str(ignore)) is not rules
    assert paths(scan(ws)) == ["generated_8/gone.py", "src/main.py"]
