"""Fetch a package archive with its registry's own client, and extract it safely.

``pypi``: ``pip download --no-deps --no-binary :all:`` (a source distribution); ``npm``: ``npm pack``;
``debian``: ``apt-get download``. Extraction keeps regular files and directories only: ``tarfile``
with the ``data`` filter, ``zipfile`` with path checks, a ``.deb``'s ``data.tar`` the same way.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath


def _run(command: Sequence[str], cwd: Path) -> str:
    result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def fetch_archive(registry: str, name: str, version: str, workdir: Path) -> Path:
    """Download one package with its registry's client into an empty ``workdir``; the archive's path.

    ``version`` may be empty (``pin`` of a new package): the registry's current version is taken.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if registry == "pypi":
        spec = f"{name}=={version}" if version else name
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-q",
                "-d",
                ".",
                spec,
            ],
            workdir,
        )
    elif registry == "npm":
        spec = f"{name}@{version}" if version else name
        _run(["npm", "pack", "--silent", spec], workdir)
    elif registry == "debian":
        spec = f"{name}={version}" if version else name
        os.chmod(workdir, 0o777)
        try:
            _run(["apt-get", "download", "-q", spec], workdir)
        except RuntimeError as error:
            if "was not found" not in str(error):
                raise
            raise RuntimeError(  # the machine's package lists predate the pin (a security update, say)
                f"{error}\nThe package lists may be older than the pin: run `apt-get update`, then build again."
            ) from None
    else:
        raise ValueError(f"unknown registry {registry!r}")
    files = [path for path in workdir.iterdir() if path.is_file()]
    if len(files) != 1:
        raise RuntimeError(f"expected one archive from {registry}:{name}, got {[p.name for p in files]}")
    return files[0]


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


def _extract_tar(
    fileobj: io.BufferedIOBase | io.BytesIO | None, target: Path, path: Path | None = None
) -> None:
    with tarfile.open(name=None if fileobj else path, fileobj=fileobj, mode="r:*") as archive:
        members = []
        for member in archive.getmembers():
            if not (member.isfile() or member.isdir()):
                continue  # links, devices, fifos: never needed for mining
            if not _safe_member(member.name):
                continue
            members.append(member)
        archive.extractall(target, members=members, filter="data")


def _extract_zip(path: Path, target: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir() or not _safe_member(info.filename):
                continue
            destination = (target / info.filename).resolve()
            if not destination.is_relative_to(target.resolve()):
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)


def deb_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """The members of a Debian package (an ``ar`` archive): (name, bytes)."""
    data = path.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{path} is not a Debian package (no ar header)")
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        offset += 60
        yield name, data[offset : offset + size]
        offset += size + (size % 2)


def _extract_deb(path: Path, target: Path) -> None:
    for name, payload in deb_members(path):
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):
            # tarfile cannot read zstd before Python 3.14: dpkg-deb can.
            subprocess.run(["dpkg-deb", "-x", str(path), str(target)], check=True)
            return
        _extract_tar(io.BytesIO(payload), target)
        return
    raise ValueError(f"{path} has no data.tar member")


def extract(archive: Path, target: Path) -> Path:
    """Extract ``archive`` into ``target`` (created whole, atomically; reused when complete)."""
    if (target / ".complete").exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    name = archive.name
    if name.endswith(".deb"):
        _extract_deb(archive, partial)
    elif name.endswith(".zip"):
        _extract_zip(archive, partial)
    elif re.search(r"\.(tar(\.(gz|bz2|xz))?|tgz|tbz2?)$", name):
        _extract_tar(None, partial, archive)
    else:
        raise ValueError(f"unknown archive type: {name}")
    for directory, _, _ in os.walk(partial):
        os.chmod(directory, 0o755)
    (partial / ".complete").write_text(archive.name + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target
