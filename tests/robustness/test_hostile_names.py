"""Hostile names and special files: newlines, glob characters, NFC/NFD, names that are not UTF-8, trees past
PATH_MAX, FIFOs and devices named like source and ignore files. Everything is indexed, searched and printed
as valid JSON, or skipped with its reason; nothing is read that should not be, and nothing blocks.

Symlink loops, unreadable files and plain FIFOs in a scan are covered in scan/test_walk.py.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from helpers import codesieve, write
from indexcheck import assert_consistent, hits_json, open_workspace

from codesieve.server.workspace import Filters

ODD_NAMES = [
    "new\nline.py",
    "carriage\rreturn.py",
    "tab\there.py",
    " leading space.py",
    "trailing space /in.py",
    "-starts-with-dash.py",
    "back\\slash.py",
    "[brackets].py",
    "*star?.py",
    "!bang.py",
    "#hash.py",
    "caf\u00e9.py",  # NFC
    "cafe\u0301.py",  # NFD: a different file on Linux
    "\u202eyp.evil.py",  # right-to-left override
    "emoji \U0001f389.py",
    "x" * 252 + ".py",  # 255 bytes, the longest name Linux allows
    "dir\nwith newline/inner.py",
    "ünïcödé dir/ü.rs",
]


def test_odd_names_are_indexed_searched_and_printed_as_json(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    root = tmp_path / "workspace"
    for number, name in enumerate(ODD_NAMES):
        write(root, name, f"def handler_{number}(request):\n    return request.reply({number})\n")
    workspace = open_workspace(root, tiny_model)
    report = workspace.sync()
    assert not report.skipped
    assert set(workspace.store.files()) == set(ODD_NAMES)
    assert_consistent(workspace)
    for name in ODD_NAMES:
        assert workspace.chunk_at(root / name, 1).path == name
        assert workspace.update_paths([root / name]).files_changed == 0
    found = {hit.chunk.path for hit in workspace.search("reply to a request", limit=50).hits}
    assert found == set(ODD_NAMES)
    workspace.close()

    result = codesieve("search", "reply to a request", str(root), "--json", "--limit", "50", "--model", str(tiny_model), "-q", text=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout.decode("utf-8"))["hits"]
    assert {str(Path(hit["path"]).resolve().relative_to(root.resolve())) for hit in hits} == set(ODD_NAMES)
    assert all(Path(hit["path"]).is_file() for hit in hits)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Workspace.allowed_labels matches path globs with pathspec's regexes, whose `.` stops at a "
    "newline (the scanner compiles its copies with re.DOTALL)",
)
def test_path_filters_match_folders_with_newlines(tmp_path: Path, tiny_model: Path, index_dir: Path) -> None:
    root = tmp_path / "workspace"
    for name in ("plain/inner.py", "dir\nwith newline/inner.py"):
        write(root, name, "def inner():\n    return 1\n")
    workspace = open_workspace(root, tiny_model)
    workspace.sync()
    try:
        hits = workspace.search("inner", limit=10, filters=Filters(include=("*.py",))).hits
        assert {hit.chunk.path for hit in hits} == {"plain/inner.py", "dir\nwith newline/inner.py"}
    finally:
        workspace.close()


@pytest.mark.skipif(
    sys.platform != "linux", reason="needs a filesystem that accepts names that are not UTF-8"
)
def test_names_that_are_not_utf8_are_skipped_and_reported_readably(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    root = tmp_path / "workspace"
    write(root, "good.py", "def fine():\n    return 1\n")
    raw = os.fsencode(root)
    os.close(os.open(raw + b"/bad\xff.py", os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(raw + b"/dir\xfe")
    os.close(os.open(raw + b"/dir\xfe/inner.py", os.O_CREAT | os.O_WRONLY, 0o644))
    workspace = open_workspace(root, tiny_model)
    report = workspace.sync()
    assert report.skipped == {"bad-name": 2}
    assert set(workspace.store.files()) == {"good.py"}
    assert_consistent(workspace)
    # Skipped names are os.fsdecode()d: JSON writes their bad bytes as \udcXX escapes, and
    # json.loads then os.fsencode give the exact name back.
    examples = json.loads(json.dumps(report.skipped_examples))["bad-name"]
    assert sorted(os.fsencode(name) for name in examples) == [b"bad\xff.py", b"dir\xfe"]
    assert json.loads(hits_json(workspace, "fine"))
    workspace.close()

    indexed = codesieve("index", str(root), "--model", str(tiny_model), "-q", text=False)
    assert indexed.returncode == 0, indexed.stderr
    assert b"bad\xff.py" in indexed.stdout and b"dir\xfe" in indexed.stdout  # the names' own bytes
    query = codesieve(
        "search", b"return \xff one", str(root), "--json", "--model", str(tiny_model), "-q", text=False
    )
    assert query.returncode == 0, query.stderr
    assert [hit["name"] for hit in json.loads(query.stdout)["hits"]] == ["fine"]


@pytest.mark.skipif(
    sys.platform != "linux", reason="needs a filesystem that accepts names that are not UTF-8"
)
def test_a_workspace_folder_whose_name_is_not_utf8_opens(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/work\xff"))
    write(root, "a.py", "def fine():\n    return 1\n")
    workspace = open_workspace(root, tiny_model)
    workspace.sync()
    assert_consistent(workspace)
    workspace.close()


def make_chain(base: Path, names: list[str]) -> Path:
    """Create nested folders one level at a time, relative to an open folder, so that no call needs
    a path longer than PATH_MAX; return the path of the innermost one (which may be longer)."""
    parent = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=parent)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent)
            os.close(parent)
            parent = child
        descriptor = os.open("leaf.py", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=parent)
        os.write(descriptor, b"def deep_leaf():\n    return 'found at the bottom'\n")
        os.close(descriptor)
    finally:
        os.close(parent)
    return base.joinpath(*names)


def test_very_deep_trees_index_and_paths_past_path_max_are_skipped(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    root = tmp_path / "workspace"
    root.mkdir()
    deep = make_chain(root, [f"level{depth}" for depth in range(200)])
    make_chain(root, ["long" + "g" * 200 + str(depth) for depth in range(25)])  # past 4096 bytes
    deep_leaf = (deep / "leaf.py").relative_to(root).as_posix()
    try:
        workspace = open_workspace(root, tiny_model)
        report = workspace.sync()
        assert set(workspace.store.files()) == {deep_leaf}
        assert report.skipped["unreadable"] == 1  # the first folder whose path is too long to open
        assert_consistent(workspace)
        assert [hit.chunk.path for hit in workspace.search("deep leaf", limit=5).hits] == [deep_leaf]
        assert workspace.chunk_at(deep / "leaf.py", 2).name == "deep_leaf"
        assert workspace.update_paths([deep_leaf]).files_changed == 0
        workspace.close()
    finally:
        shutil.rmtree(root)  # by file descriptors, so paths past PATH_MAX are removed too


def make_special_files(root: Path) -> list[str]:
    """FIFOs, device links, a device node and a folder, named like source and ignore files; return
    the names of all but the folder."""
    names = ["pipe.py", "to_pipe.py", "zero.py", "urandom.rs", "sub/.gitignore", ".codesieveignore"]
    (root / "sub").mkdir(parents=True)
    write(root, ".gitignore/kept.py", "def kept():\n    return 2\n")  # a folder named like an ignore file
    os.mkfifo(root / "pipe.py")
    os.symlink("pipe.py", root / "to_pipe.py")  # inside the workspace: resolved, then found not regular
    os.symlink("/dev/zero", root / "zero.py")
    os.symlink("/dev/urandom", root / "urandom.rs")
    os.mkfifo(root / "sub" / ".gitignore")
    os.symlink("/dev/zero", root / ".codesieveignore")
    (root / ".git" / "info").mkdir(parents=True)
    os.mkfifo(root / ".git" / "info" / "exclude")
    try:
        os.mknod(root / "device.c", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # a /dev/zero of our own
        names.append("device.c")
    except (PermissionError, AttributeError):
        pass  # not root, or no mknod here
    return names


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.timeout(120)
def test_fifos_and_devices_never_block_or_get_read(tmp_path: Path, tiny_model: Path, index_dir: Path) -> None:
    root = tmp_path / "workspace"
    specials = make_special_files(root)
    write(root, "sub/good.py", "def fine():\n    return 1\n")
    workspace = open_workspace(root, tiny_model)
    report = workspace.sync()
    assert set(workspace.store.files()) == {"sub/good.py", ".gitignore/kept.py"}
    assert report.skipped["symlink-outside"] == 3  # zero.py, urandom.rs, .codesieveignore
    assert report.skipped["not-regular"] == 2 + ("device.c" in specials)  # pipe.py, to_pipe.py, device.c
    assert_consistent(workspace)
    update = workspace.update_paths([root / name for name in specials])  # an ignore file: a full sync
    assert update.files_changed == 0 and len(workspace.store.files()) == 2
    assert workspace.status(check_staleness=True)["stale"] == {"changed": 0, "deleted": 0}
    workspace.close()
