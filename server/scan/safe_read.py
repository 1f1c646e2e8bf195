"""Read one workspace file safely: regular files only, capped in size, never blocking, binaries refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

SNIFF_BYTES = 8192  # a NUL byte in this many leading bytes marks a file as binary


class SourceError(Exception):
    """A file that cannot be indexed; `reason` is one of ScanResult's skip reasons."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def open_regular(path: str, max_size: int, nbytes: int) -> bytes:
    """Read up to `nbytes` of a regular file no larger than `max_size`, never blocking on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SourceError(
            "unreadable", f"{path}: cannot open ({exc.strerror}); check its permissions"
        ) from exc
    try:
        # Judge the descriptor before open() wraps it: io refuses a directory (a file replaced by one
        # since the scan, a folder named .gitignore) with IsADirectoryError, and leaks the descriptor.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError("not-regular", f"{path}: not a regular file (FIFO, socket, device or folder)")
        if info.st_size > max_size:
            raise SourceError(
                "too-large",
                f"{path}: {info.st_size} bytes is over max_file_size ({max_size}); raise it to index",
            )
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(nbytes)
    except OSError as exc:
        raise SourceError("unreadable", f"{path}: read failed ({exc.strerror})") from exc
    finally:
        os.close(fd)
    if len(data) > max_size:
        raise SourceError("too-large", f"{path}: grew past max_file_size ({max_size}) while being read")
    return data


def read_source(file: Path, max_file_size: int) -> str:
    """Return a source file's text: UTF-8, invalid bytes replaced by U+FFFD, newlines untouched.

    Raises SourceError ("unreadable", "not-regular", "too-large" or "binary").
    """
    data = open_regular(os.fspath(file), max_file_size, max_file_size + 1)
    if b"\0" in data[:SNIFF_BYTES]:
        raise SourceError("binary", f"{file}: looks binary (NUL byte in the first {SNIFF_BYTES} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")
