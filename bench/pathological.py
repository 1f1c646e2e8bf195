"""Time the inputs that used to stop indexing: a long .gitignore, and sources that are
slow to parse or nest definitions deeply. No model is needed: this is the scan and the chunker.
Every language with a grammar gets a run of comment lines after a statement (what took
tree-sitter-python quadratic time) and definitions nested `--nesting` deep; a name in 20,000 parts
tries the C++, C# and Lua names that are joined from parts.

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
    ordinary = "def f(x):\n    return x + 1\n\n" * 30_000  # what a large file costs without a trap
    chunked("python, 30,000 small functions, for reference", "ordinary.py", ordinary)
    for lines in args.comment_lines:
        for language, (path, statement, comment) in COMMENT_RUNS.items():
            chunked(f"{language}, {lines} comment lines after a statement", path, statement + comment * lines)
    depth = args.nesting
    for language, (path, opening, closing) in NESTING.items():
        prefix = "<?php\n" if language == "php" else ""
        text = prefix + "".join(opening.format(i=i) for i in range(depth)) + closing * depth
        chunked(f"{language}, {depth} nested definitions", path, text)
    for path, text in LONG_NAMES.items():
        chunked(f"{path}, a name in 20,000 parts", path, text)


# language -> (file name, a statement, one comment line)
COMMENT_RUNS = {
    "python": ("c.py", "x = 1\n", "# comment line\n"),
    "c": ("c.c", "int x = 1;\n", "// comment line\n"),
    "cpp": ("c.cpp", "int x = 1;\n", "// comment line\n"),
    "csharp": ("c.cs", "class A {}\n", "// comment line\n"),
    "php": ("c.php", "<?php\n$x = 1;\n", "// comment line\n"),
    "kotlin": ("c.kt", "val x = 1\n", "// comment line\n"),
    "swift": ("c.swift", "let x = 1\n", "// comment line\n"),
    "scala": ("c.scala", "val x = 1\n", "// comment line\n"),
    "lua": ("c.lua", "local x = 1\n", "-- comment line\n"),
    "shell": ("c.sh", "x=1\n", "# comment line\n"),
}
# language -> (file name, how one level opens, how it closes)
NESTING = {
    "rust": ("n.rs", "fn f{i}() {{\n", "}\n"),
    "javascript": ("n.js", "function f{i}() {{\n", "}\n"),
    "ruby": ("n.rb", "def f{i}\n", "end\n"),
    "c": ("n.c", "struct f{i} {{\n", "};\n"),
    "cpp": ("n.cpp", "class f{i} {{\n", "};\n"),
    "csharp": ("n.cs", "class f{i} {{\n", "}\n"),
    "php": ("n.php", "function f{i}() {{\n", "}\n"),
    "kotlin": ("n.kt", "class f{i} {{\n", "}\n"),
    "swift": ("n.swift", "func f{i}() {{\n", "}\n"),
    "scala": ("n.scala", "object f{i} {{\n", "}\n"),
    "lua": ("n.lua", "function f{i}()\n", "end\n"),
    "shell": ("n.sh", "f{i}() {{\n", "}\n"),
}
LONG_NAMES = {
    "q.cpp": "void " + "::".join(f"part{i}" for i in range(20_000)) + "() {}\n",
    "q.cs": "namespace " + ".".join(f"P{i}" for i in range(20_000)) + ";\nclass C { void Run() {} }\n",
    "q.lua": "function " + ".".join(f"part{i}" for i in range(20_000)) + ":run() end\n",
}

if __name__ == "__main__":
    main()
