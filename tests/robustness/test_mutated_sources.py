"""Mutated source in every language the chunker knows: seed programs with odd line ends, byte edits,
inserted code points, minified lines and lone surrogates. Nothing raises, every chunk holds whole lines
of its file, and a workspace of mutated files indexes consistently.

Random text and token soup in the chunker are covered in chunk/test_chunker.py; this module starts from valid
programs instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from helpers import lines_of, write
from hypothesis import example, given, settings
from hypothesis import strategies as st
from indexcheck import assert_consistent, assert_index_matches_disk, hits_json, open_workspace

from codesieve.server.chunk.chunker import MAX_CHUNK_LINES, Chunk, chunk_source
from codesieve.server.languages import _EXTENSIONS, _FILE_NAMES, language_for_path, parser_for

# A small valid program per language, under a file name that maps to it.
SEED_PROGRAMS: dict[str, tuple[str, str]] = {
    "python": ("seed.py", '@cache\nclass Store:\n    """Keep items."""\n\n    def put(self, key):\n        return [key for _ in (1, 2)]\n'),
    "javascript": ("seed.js", "// Add one.\nexport function inc(a) {\n  return { b: () => a + 1 };\n}\nclass Cache {\n  /** Get. */\n  get(k) { return this.m[k]; }\n}\n"),
    "typescript": ("seed.ts", "interface Item { id: number }\nexport class Repo<T> {\n  @Log()\n  find(id: number): T | undefined { return undefined; }\n}\nnamespace Util { export function slug(s: string) { return s; } }\n"),
    "tsx": ("seed.tsx", "export function Button({ label }: Props) {\n  return <button onClick={() => go(label)}>{label}</button>;\n}\n"),
    "go": ("seed.go", "package main\n\n// Server serves.\ntype Server struct{ port int }\n\nfunc (s *Server) Handle(r *Request) error {\n\treturn nil\n}\n"),
    "java": ("Seed.java", "package p;\n\n/** An account. */\npublic class Seed {\n  @Override\n  public int deposit(int amount) { return amount; }\n  enum Kind { A, B }\n}\n"),
    "rust": ("seed.rs", "/// A stack.\n#[derive(Debug)]\npub struct Stack<T> { items: Vec<T> }\n\nimpl<T> Stack<T> {\n    pub fn push(&mut self, item: T) { self.items.push(item); }\n}\n"),
    "ruby": ("Rakefile", "# Settings.\nmodule Config\n  class Entry\n    def initialize(key)\n      @key = key\n    end\n  end\nend\n"),
    "c": ("seed.c", "#include <stdio.h>\n\nint main(int argc, char **argv) {\n  printf(\"%d\\n\", argc);\n  return 0;\n}\n"),
    "cpp": ("seed.hpp", "template <typename T>\nclass Box {\n public:\n  T get() const { return value_; }\n private:\n  T value_;\n};\n"),
    "csharp": ("seed.cs", "namespace App {\n  public class Greeter {\n    public string Hello(string name) => $\"Hi {name}\";\n  }\n}\n"),
    "kotlin": ("seed.kt", "data class User(val name: String)\n\nfun greet(user: User): String {\n    return \"Hi ${user.name}\"\n}\n"),
    "swift": ("seed.swift", "struct Point {\n    var x: Double\n    func norm() -> Double { return x * x }\n}\n"),
    "php": ("seed.php", "<?php\nfunction add($a, $b) {\n    return $a + $b;\n}\n?>\n"),
    "scala": ("seed.scala", "object Main {\n  def main(args: Array[String]): Unit = println(args.mkString(\",\"))\n}\n"),
    "lua": ("seed.lua", "local M = {}\nfunction M.add(a, b)\n  return a + b\nend\nreturn M\n"),
    "shell": ("seed.sh", "#!/bin/sh\nset -eu\nbackup() {\n  tar czf \"$1.tgz\" \"$1\"\n}\nbackup \"${1:-.}\"\n"),
    "sql": ("seed.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\nSELECT name FROM users WHERE id = 1;\n"),
}  # fmt: skip

POSITION = st.integers(0, 1 << 20)  # taken modulo the length of the data it lands in
LINE_ENDINGS = ["\n", "\n", "\r\n", "\r", "\n\r", "\x0b", "\x0c", "\x85", "\u2028", "\n\n\n"]
CHARACTERS = st.characters(exclude_categories=())  # surrogates, NUL and other controls included


@dataclass(frozen=True)
class Edit:
    """One byte-level mutation at `at` (modulo the length of the data, plus one)."""

    kind: str  # "delete" `size` bytes, "duplicate" `size` bytes `times` over, or "insert" `inserted`
    at: int
    size: int = 0
    times: int = 1
    inserted: bytes = b""

    def apply(self, data: bytes) -> bytes:
        at = self.at % (len(data) + 1)
        if self.kind == "delete":
            return data[:at] + data[at + self.size :]
        if self.kind == "duplicate":
            return data[:at] + data[at : at + self.size] * self.times + data[at:]
        return data[:at] + self.inserted + data[at:]


def nesting(brackets: str, opened: int, closed: int) -> bytes:
    return (brackets[0] * opened + brackets[1] * closed).encode()


LONG_LINES = st.builds(
    bytes.__mul__, st.sampled_from([b"x", b"a+", b"/**/", b"#[a]", b"'", b" "]), st.integers(500, 20_000)
)
DEEP_NESTING = st.builds(
    nesting, st.sampled_from(["()", "[]", "{}", "<>", "'\""]), st.integers(1, 2_000), st.integers(0, 2_000)
)
EDITS = st.one_of(
    st.builds(Edit, st.just("delete"), POSITION, st.integers(1, 64)),
    st.builds(Edit, st.just("duplicate"), POSITION, st.integers(1, 64), st.integers(2, 40)),
    st.builds(
        Edit, st.just("insert"), POSITION, inserted=st.binary(min_size=1, max_size=32)
    ),  # NUL, not UTF-8
    st.builds(Edit, st.just("insert"), POSITION, inserted=LONG_LINES),
    st.builds(Edit, st.just("insert"), POSITION, inserted=DEEP_NESTING),
)


@dataclass(frozen=True)
class Mutant:
    """A mutated seed program: the bytes to put on disk and a text to give the chunker directly."""

    path: str
    language: str
    data: bytes
    text: str  # data decoded (replacing or surrogate-escaping bad bytes), then lone code points inserted


@st.composite
def mutants(draw: st.DrawFn) -> Mutant:
    """A seed program in any supported language with odd line endings, byte edits and inserted code points."""
    language = draw(st.sampled_from(sorted(SEED_PROGRAMS)))
    name, program = SEED_PROGRAMS[language]
    data = program.replace("\n", draw(st.sampled_from(LINE_ENDINGS))).encode()
    for edit in draw(st.lists(EDITS, max_size=5)):
        data = edit.apply(data)
    text = data.decode("utf-8", draw(st.sampled_from(["replace", "surrogateescape"])))
    for at, inserted in draw(st.lists(st.tuples(POSITION, st.text(CHARACTERS, min_size=1)), max_size=3)):
        at %= len(text) + 1
        text = text[:at] + inserted + text[at:]
    return Mutant(name, language, data, text)


def assert_chunk_contract(chunks: list[Chunk], path: str, language: str, text: str) -> None:
    """What `Chunk` promises about any text: whole lines of the file, hashed, named, ordered, unique."""
    lines = lines_of(text)
    for chunk in chunks:
        assert (chunk.path, chunk.language) == (path, language)
        assert chunk.kind in ("function", "method", "class", "window")
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines)
        assert chunk.end_line - chunk.start_line < MAX_CHUNK_LINES
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert chunk.content_hash == hashlib.sha1(chunk.text.encode("utf-8", "surrogatepass")).hexdigest()
        if chunk.doc_span is not None:
            assert 0 <= chunk.doc_span[0] < chunk.doc_span[1] <= len(chunk.text)
        if chunk.kind == "window":
            assert chunk.name == f"{PurePosixPath(path).name}:{chunk.start_line}-{chunk.end_line}"
            assert chunk.text.strip()
        else:
            assert chunk.name
    assert len({chunk.id for chunk in chunks}) == len(chunks)
    definitions = [(chunk.start_line, chunk.end_line) for chunk in chunks if chunk.kind != "window"]
    assert len(set(definitions)) == len(definitions), "two definition chunks hold the same lines"
    order = [(chunk.start_line, -chunk.end_line) for chunk in chunks]
    assert order == sorted(order)
    if not definitions:  # windows alone: every line with something on it is in one
        covered = {line for chunk in chunks for line in range(chunk.start_line, chunk.end_line + 1)}
        assert covered >= {number for number, line in enumerate(lines, 1) if line.strip()}


def test_seed_programs_cover_every_language_and_parse() -> None:
    languages = set(_EXTENSIONS.values()) | set(_FILE_NAMES.values())
    assert set(SEED_PROGRAMS) == languages
    for language, (name, program) in SEED_PROGRAMS.items():
        assert language_for_path(name) == language
        chunks = chunk_source(name, program)
        assert chunks, language
        if parser_for(language) is not None:  # mutations start from code with definitions
            assert any(chunk.kind != "window" for chunk in chunks), language


ONE_LINE_JS = SEED_PROGRAMS["javascript"][1].replace("\n", "\r")  # three definitions, one line


@settings(max_examples=250, deadline=None)
@given(mutant=mutants())
@example(mutant=Mutant("seed.js", "javascript", ONE_LINE_JS.encode(), ONE_LINE_JS))
def test_mutated_sources_chunk_into_whole_lines_of_the_file(mutant: Mutant) -> None:
    for text in (mutant.text, mutant.data.decode("utf-8", "replace")):  # as given, and as read from disk
        chunks = chunk_source(mutant.path, text)
        assert_chunk_contract(chunks, mutant.path, mutant.language, text)
        assert chunk_source(mutant.path, text) == chunks


def test_mutated_files_index_consistently(tmp_path: Path, tiny_model: Path, index_dir: Path) -> None:
    """One workspace across examples: each one replaces the files, so every sync is incremental."""
    root = tmp_path / "workspace"
    root.mkdir()
    workspace = open_workspace(root, tiny_model, batch_size=16)

    @settings(max_examples=10, deadline=None)
    @given(files=st.lists(mutants(), min_size=1, max_size=6))
    def sync_holds(files: list[Mutant]) -> None:
        for old in list(root.rglob("*")):
            if old.is_file():
                old.unlink()
        for number, mutant in enumerate(files):
            write(root, f"m{number}/{mutant.path}", mutant.data)
        workspace.sync()
        assert_index_matches_disk(workspace)
        json.loads(hits_json(workspace, "return the value of a key"))
        for path in workspace.store.files():
            for chunk in workspace.store.chunks_of(path)[:1]:
                best = workspace.similar_to(chunk.text, limit=1).hits
                assert best and best[0].cosine == pytest.approx(1.0, abs=1e-3)

    try:
        sync_holds()
    finally:
        workspace.close()


def minified_bundle(functions: int) -> str:
    """One line of code as a minifier writes it: many functions, `/*#__PURE__*/` marks between them."""
    body = "".join(
        f"function f{n}(a){{return a+{n}}}var v{n}=/*#__PURE__*/f{n}(1);" for n in range(functions)
    )
    return f"/*! bundle v1 */\n{body}\n"


@pytest.mark.timeout(60)
def test_minified_lines_make_one_chunk_not_one_per_definition() -> None:
    text = minified_bundle(15_000)
    chunks = chunk_source("dist.js", text)
    assert_chunk_contract(chunks, "dist.js", "javascript", text)
    assert len(chunks) == 2  # f0 with the licence comment above it, and the rest of the line
    assert sum(len(chunk.text) for chunk in chunks) <= 2 * len(text)
    comments = chunk_source("c.js", "/**/ " * 50_000 + "function f() {}\n")  # each comment leads f
    assert [(chunk.name, chunk.start_line) for chunk in comments] == [("f", 1)]


def test_a_minified_file_takes_about_its_own_size_in_the_index(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    root = tmp_path / "workspace"
    bundle = write(root, "vendor.js", minified_bundle(2_000))
    workspace = open_workspace(root, tiny_model)
    workspace.sync()
    stored = [chunk for path in workspace.store.files() for chunk in workspace.store.chunks_of(path)]
    assert 0 < sum(len(chunk.text) for chunk in stored) <= 2 * bundle.stat().st_size
    assert_consistent(workspace)
    workspace.close()


def test_queries_and_code_with_lone_surrogates_are_searchable(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    root = tmp_path / "workspace"
    write(root, "a.py", "def parse(config):\n    return dict(config)\n")
    workspace = open_workspace(root, tiny_model)
    workspace.sync()
    assert workspace.search("parse \udcff the config \ud800", limit=3).hits
    assert workspace.similar_to("def parse(\udcfe):\n    return \ud83c\n", limit=3).hits
    workspace.close()
