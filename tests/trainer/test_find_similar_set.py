"""The find-similar benchmark: which functions of two versions pair up, a query's own name hidden,
one right answer per query, the set built from pinned archives (no download: the archives are made
here), and its evaluation as find similar runs."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from codesieve.server.chunk.chunker import Chunk, chunk_source
from codesieve.trainer.benchmarks import (
    FIND_SIMILAR_VERSION,
    Benchmark,
    CodeRow,
    Query,
    find_similar_folder,
    load_find_similar,
)
from codesieve.trainer.evaluate import evaluate
from codesieve.trainer.find_similar import (
    FindSimilarError,
    archive_sources,
    build_set,
    definition_chunks,
    one_answer_per_query,
    same_function_pairs,
)
from codesieve.trainer.own_name import hide_own_name

OLD = """
def unchanged(items):
    total = 0
    for item in items:
        total += item
    return total


def edited(path, encoding="utf-8"):
    with open(path, encoding=encoding) as handle:
        text = handle.read()
    return text.splitlines()


def rewritten(values):
    result = []
    for value in values:
        result.append(value * 2)
    return result


def short(x):
    return x + 1


class Parser:
    def feed(self, data):
        self.buffer += data
        self.count += 1
        return self.count
"""

NEW = """
def unchanged(items):
    total = 0
    for item in items:
        total += item
    return total


def edited(path, encoding="utf-8", errors="strict"):
    with open(path, encoding=encoding, errors=errors) as handle:
        text = handle.read()
    return text.splitlines()


def rewritten(values):
    import numpy
    return list(numpy.asarray(values, dtype=float).tolist()) or None


def short(x):
    return x + 2


class Parser:
    def feed(self, data):
        self.buffer += data.decode()
        self.count += 1
        return self.count
"""


def _block(source: str, name: str) -> str:
    """The top-level definition `name` of a source, up to the next blank-line gap."""
    return next(block for block in source.split("\n\n\n") if block.lstrip().startswith(f"def {name}("))


def _pairs(old: str, new: str) -> dict[str, str]:
    pairs = same_function_pairs(
        definition_chunks({"pkg/core.py": old}), definition_chunks({"pkg/core.py": new})
    )
    return {before.name: after.text for before, after in pairs}


def test_only_changed_but_recognisable_functions_and_methods_pair_up() -> None:
    pairs = _pairs(OLD, NEW)
    assert set(pairs) == {"edited", "Parser.feed"}  # not identical, rewritten, two-line or class chunks
    assert "errors=errors" in pairs["edited"]


def test_a_function_only_reformatted_is_not_paired() -> None:
    reformatted = NEW.replace(
        'def edited(path, encoding="utf-8", errors="strict"):',
        'def edited(\n    path,\n    encoding="utf-8",\n    errors="strict",\n):',
    )
    assert set(_pairs(NEW, reformatted)) == set()  # the same words, laid out anew
    assert "edited" in _pairs(OLD, reformatted)


def test_a_name_defined_twice_in_a_file_is_not_paired() -> None:
    twice = OLD + "\n\n" + _block(OLD, "edited")  # a second `edited` in the old file
    assert "edited" not in _pairs(twice, NEW)


def test_functions_pair_by_path_as_well_as_name() -> None:
    old = definition_chunks({"pkg/core.py": OLD})
    new = definition_chunks({"pkg/moved.py": NEW})
    assert same_function_pairs(old, new) == []


def _archive(
    folder: Path, name: str, version: str, source: str, other: str = "", built: str = ""
) -> tuple[Path, str]:
    """A PyPI-style sdist holding core.py (other.py, and build/lib/core.py, if given) of a package,
    with its sha256."""
    archive = folder / "archives" / f"{name}-{version}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for module, text in ((f"{name}/core", source), (f"{name}/other", other), ("build/lib/core", built)):
            if text:
                member = tarfile.TarInfo(f"{name}-{version}/{module}.py")
                member.size = len(text.encode())
                tar.addfile(member, io.BytesIO(text.encode()))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def _manifest(folder: Path, old_sha: str, new_sha: str) -> Path:
    manifest = folder / "pins.json"  # the build copies it to manifest.json
    entry = {
        "name": "tiny",
        "registry": "pypi",
        "old": {"version": "1.0", "sha256": old_sha},
        "new": {"version": "2.0", "sha256": new_sha},
    }
    manifest.write_text(json.dumps({"version": FIND_SIMILAR_VERSION, "packages": [entry]}))
    return manifest


def test_the_set_queries_old_functions_against_the_new_versions_pool(tmp_path: Path) -> None:
    _, old_sha = _archive(tmp_path, "tiny", "1.0", OLD)
    _, new_sha = _archive(tmp_path, "tiny", "2.0", NEW)
    queries, pool = build_set(_manifest(tmp_path, old_sha, new_sha), tmp_path)
    assert (queries, pool) == (2, 6)  # edited and Parser.feed; the new version's 6 definitions
    benchmark = load_find_similar(tmp_path)
    assert benchmark.query_kind == "code"
    gold = {
        query.id: benchmark.codebase[position].code
        for query, position in zip(benchmark.queries, benchmark.gold_positions(), strict=True)
    }
    assert "errors=errors" in gold["tiny:tiny/core.py:edited"]
    assert "data.decode()" in gold["tiny:tiny/core.py:Parser.feed"]
    texts = {query.id: query.text for query in benchmark.queries}
    assert texts["tiny:tiny/core.py:edited"].startswith('def f(path, encoding="utf-8"):')  # name hidden
    assert texts["tiny:tiny/core.py:Parser.feed"].lstrip().startswith("def f(self, data):")
    assert gold["tiny:tiny/core.py:edited"].startswith("def edited(")  # the gold keeps its name
    assert {row.path for row in benchmark.codebase} == {"tiny/core.py"}
    assert "Parser.feed" in {row.name for row in benchmark.codebase}  # qualified, as the index names it
    visible = tmp_path / "visible"
    (visible / "archives").mkdir(parents=True)
    for archive in (tmp_path / "archives").iterdir():
        (visible / "archives" / archive.name).write_bytes(archive.read_bytes())
    assert build_set(_manifest(tmp_path, old_sha, new_sha), visible, hide_names=False) == (2, 6)
    named = {query.id: query.text for query in load_find_similar(visible).queries}
    assert named["tiny:tiny/core.py:edited"] == _block(OLD, "edited").strip("\n")  # the old text as it was


def test_an_archive_that_does_not_match_its_pin_is_refused(tmp_path: Path) -> None:
    _, old_sha = _archive(tmp_path, "tiny", "1.0", OLD)
    _archive(tmp_path, "tiny", "2.0", NEW)
    with pytest.raises(FindSimilarError, match="sha256"):
        build_set(_manifest(tmp_path, old_sha, "0" * 64), tmp_path)


def test_a_manifest_of_another_set_version_is_refused(tmp_path: Path) -> None:
    _, old_sha = _archive(tmp_path, "tiny", "1.0", OLD)
    _, new_sha = _archive(tmp_path, "tiny", "2.0", NEW)
    manifest = _manifest(tmp_path, old_sha, new_sha)
    manifest.write_text(manifest.read_text().replace(f'"version": {FIND_SIMILAR_VERSION}', '"version": 1'))
    with pytest.raises(FindSimilarError, match="set version 1"):
        build_set(manifest, tmp_path)


def test_the_set_is_built_in_a_folder_named_for_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODESIEVE_FIND_SIMILAR", raising=False)
    assert find_similar_folder().name == f"find-similar-v{FIND_SIMILAR_VERSION}"


def test_an_archive_is_read_as_the_runtime_scan_reads_a_folder(tmp_path: Path) -> None:
    archive, _ = _archive(tmp_path, "tiny", "2.0", NEW, built=NEW)  # build/ is a default exclude
    assert set(archive_sources(archive)) == {"tiny/core.py"}


LONG_OLD = """
def render_rows(rows, widths, separator=" | "):
    lines = []
    for row in rows:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths)]
        lines.append(separator.join(cells).rstrip())
    return "\\n".join(lines)
"""
LONG_NEW = LONG_OLD.replace('separator=" | "', 'separator=" | ", strip=True').replace(
    ".rstrip())", ".rstrip() if strip else separator.join(cells))"
)


def _chunks(path: str, source: str) -> list[Chunk]:
    return [chunk for chunk in chunk_source(path, source) if chunk.kind in ("function", "method", "class")]


def test_a_near_copy_of_a_gold_leaves_the_pool() -> None:
    new = _chunks("pkg/core.py", LONG_NEW) + _chunks("pkg/copy.py", LONG_NEW.replace("lines", "out"))
    pairs, pool = one_answer_per_query(same_function_pairs(_chunks("pkg/core.py", LONG_OLD), new), new)
    assert [after.path for _, after in pairs] == ["pkg/core.py"]
    assert [chunk.path for chunk in pool] == ["pkg/core.py"]  # the copy would be the gold's "also at"


def test_a_query_with_an_unchanged_copy_in_the_pool_is_left_out() -> None:
    new = _chunks("pkg/core.py", LONG_NEW) + _chunks("pkg/vendored.py", LONG_OLD)
    pairs, pool = one_answer_per_query(same_function_pairs(_chunks("pkg/core.py", LONG_OLD), new), new)
    assert pairs == []  # two right answers: its new version and its old text, kept elsewhere
    assert len(pool) == 2


def test_a_code_query_never_finds_its_own_text(tiny_model: Path) -> None:
    codes = [LONG_OLD.strip(), LONG_NEW.strip(), OLD.strip()]
    benchmark = Benchmark(
        [Query("q", codes[0], code_id=1)],
        [CodeRow(index, code, "python") for index, code in enumerate(codes)],
        name="find_similar/test",
        query_kind="code",
    )
    result = evaluate(benchmark, tiny_model, rerank_depths=(), keep_rankings=True, cache_dir=None)
    assert set(result.rows) == {"retriever"}  # as search runs find similar: the retriever alone
    assert result.rankings["retriever"][0][-1] == 0  # its identical embedding would rank first
    # the ranker on code queries, when asked for (bench/find_similar.py --rerank-depth): the same pool
    reranked = evaluate(benchmark, tiny_model, rerank_depths=(2,), keep_rankings=True, cache_dir=None)
    assert reranked.rankings["cascade@2"][0][-1] == 0


# Real code, a few lines each: Python-Markdown 3.3.7 (BSD-3-Clause), markdown-it 10.0.0 and
# commander 8.3.0 (MIT), as the queries of the set hold them.
PRETTIFY = """
class PrettifyTreeprocessor(Treeprocessor):
    def _prettifyETree(self, elem):
        \"\"\" Recursively add linebreaks to ElementTree children. \"\"\"

        i = "\\n"
        if self.md.is_block_level(elem.tag) and elem.tag not in ['code', 'pre']:
            for e in elem:
                if self.md.is_block_level(e.tag):
                    self._prettifyETree(e)
            if not elem.tail or not elem.tail.strip():
                elem.tail = i
"""
TOC = """
def build_toc_div(self, toc_list):
    div = etree.Element("div")

    def build_etree_ul(toc_list, parent):
        ul = etree.SubElement(parent, "ul")
        for item in toc_list:
            li = etree.SubElement(ul, "li")
            if item['children']:
                build_etree_ul(item['children'], li)
        return ul

    build_etree_ul(toc_list, div)
"""
PROPERTY = """
class Table:
    def __init__(self, rows):
        self._rows = rows

    @property
    def rows(self):
        f = self._rows
        return list(f)

    @rows.setter
    def rows(self, value):
        self._rows = value
"""
RENDER_ATTRS = """
Renderer.prototype.renderAttrs = function renderAttrs(token) {
  var i, l, result;

  if (!token.attrs) { return ''; }
  result = '';
  for (i = 0, l = token.attrs.length; i < l; i++) {
    result += ' ' + escapeHtml(token.attrs[i][0]) + '="' + escapeHtml(token.attrs[i][1]) + '"';
  }
  return result;
};
"""
COMMAND = """
class Command extends EventEmitter {
  arguments(names) {
    names.split(/ +/).forEach((detail) => {
      this.argument(detail);
    });
    return this;
  };

  static parse(argv) {
    return argv.length ? Command.parse(argv.slice(1)) : new Command();
  }
}
"""
WALK = """
function walk(node, visit) {
  visit(node);
  node.children.forEach((child) => walk(child, visit));
}
const flatten = (list) => list.reduce((all, item) => all.concat(Array.isArray(item) ? flatten(item) : item), []);
"""


def _hidden(path: str, source: str) -> dict[str, str]:
    return {chunk.name: hide_own_name(source, chunk) for chunk in chunk_source(path, source)}


def test_a_python_method_and_its_recursion_lose_their_name() -> None:
    hidden = _hidden("markdown/treeprocessors.py", PRETTIFY)["PrettifyTreeprocessor._prettifyETree"]
    assert hidden.startswith("    def f(self, elem):")
    assert "self.f(e)" in hidden and "_prettifyETree" not in hidden
    assert "self.md.is_block_level(e.tag)" in hidden  # other names stay


def test_a_nested_python_function_recurs_under_the_placeholder() -> None:
    hidden = _hidden("markdown/extensions/toc.py", TOC)
    assert "build_etree_ul" not in hidden["build_toc_div.build_etree_ul"]
    assert "    def f(toc_list, parent):" in hidden["build_toc_div.build_etree_ul"]
    assert "f(item['children'], li)" in hidden["build_toc_div.build_etree_ul"]
    assert "def f(self, toc_list):" in hidden["build_toc_div"]
    assert "build_etree_ul(toc_list, div)" in hidden["build_toc_div"]  # the inner function is not its name


def test_python_names_the_language_prescribes_stay_and_the_placeholder_avoids_the_code_s_words() -> None:
    hidden = _hidden("table.py", PROPERTY)
    assert "def __init__(self, rows):" in hidden["Table.__init__"]
    getter, setter = (hide_own_name(PROPERTY, chunk) for chunk in chunk_source("t.py", PROPERTY)[2:])
    assert "def f2(self):" in getter and "f = self._rows" in getter  # `f` is taken: `f2`
    assert "@f.setter" in setter and "def f(self, value):" in setter


def test_a_javascript_prototype_method_loses_its_name_and_its_class() -> None:
    hidden = _hidden("lib/renderer.js", RENDER_ATTRS)["renderAttrs"]
    assert hidden.startswith("C.prototype.f = function f(token) {")
    assert "escapeHtml(token.attrs[i][0])" in hidden


def test_a_javascript_class_method_keeps_its_neighbours_names() -> None:
    hidden = _hidden("lib/command.js", COMMAND)
    assert hidden["Command.arguments"].startswith("  f(names) {")
    assert "this.argument(detail)" in hidden["Command.arguments"]  # another method: it stays
    assert "static f(argv)" in hidden["Command.parse"]
    assert "C.f(argv.slice(1)) : new Command()" in hidden["Command.parse"]  # a use of the class stays


def test_javascript_functions_recur_under_the_placeholder() -> None:
    hidden = _hidden("lib/walk.js", WALK)
    assert hidden["walk"].startswith("function f(node, visit) {") and "f(child, visit)" in hidden["walk"]
    assert hidden["flatten"].startswith("const f = (list) =>") and "? f(item)" in hidden["flatten"]
