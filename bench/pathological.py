"""Time the inputs of issue 14 that used to stop indexing: a long .gitignore, and sources that are
slow to parse or nest definitions deeply. No model is needed: this is the scan and the chunker.

    python bench/pathological.py                  # every case
    python bench/pathological.py --ignore-lines 100000 --comment-lines 10000 40000 100000 --nesting 10000

Prints one line per case: seconds, chunks, the bytes of their names and texts, and peak memory
of the chunker (tracemalloc).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from codesieve.server.chunk.chunker import chunk_source
from codesieve.server.scan.walk import scan_workspace


def ignore_file(lines: int) -> None:
    """A workspace of 100 files under a .gitignore of `lines` patterns: the first scan and two more."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        patterns = [f"generated_{i}/*.log" if i % 3 else f"tmp{i}.py" for i in range(lines)]
        (root / ".gitignore").write_text("\n".join(patterns) + "\n", encoding="utf-8")
        for package in range(5):
            (root / f"pkg{package}").mkdir()
            for module in range(20):
                (root / f"pkg{package}" / f"m{module}.py").write_text("def f():\n    return 1\n")
        for run in ("first scan", "no-change scan", "no-change scan"):
            started = time.perf_counter()
            found = len(scan_workspace(root).files)
            print(f".gitignore of {lines} lines, {run}: {time.perf_counter() - started:.2f} s, {found} files")


def chunked(label: str, path: str, text: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    chunks = chunk_source(path, text)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    names, texts = sum(len(chunk.name) for chunk in chunks), sum(len(chunk.text) for chunk in chunks)
    kinds = ", ".join(sorted({chunk.kind for chunk in chunks}))
    print(
        f"{label} ({len(text) / 1e3:.0f} KB): {seconds:.2f} s, {len(chunks)} chunks ({kinds}), "
        f"names {names / 1e3:.1f} KB, texts {texts / 1e6:.2f} MB, peak {peak / 1e6:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ignore-lines", type=int, default=100_000)
    parser.add_argument("--comment-lines", type=int, nargs="*", default=[10_000, 40_000, 60_000])
    parser.add_argument("--nesting", type=int, default=10_000)
    args = parser.parse_args()
    ignore_file(args.ignore_lines)
    for lines in args.comment_lines:
        chunked(
            f"python, {lines} comment lines after a statement", "c.py", "x = 1\n" + "# comment line\n" * lines
        )
    depth = args.nesting
    nested = {
        "rust": ("n.rs", "".join(f"fn f{i}() {{\n" for i in range(depth)) + "}\n" * depth),
        "javascript": ("n.js", "".join(f"function f{i}() {{\n" for i in range(depth)) + "}\n" * depth),
        "ruby": ("n.rb", "".join(f"def f{i}\n" for i in range(depth)) + "end\n" * depth),
    }
    for language, (path, text) in nested.items():
        chunked(f"{language}, {depth} nested definitions", path, text)


if __name__ == "__main__":
    main()
