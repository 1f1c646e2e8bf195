"""The find-similar benchmark: which functions of two versions pair up, the set built from pinned
archives (no download: the archives are made here), and its evaluation as find similar runs."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from codesieve.trainer.benchmarks import load_find_similar
from codesieve.trainer.evaluate import evaluate
from codesieve.trainer.find_similar import (
    FindSimilarError,
    build_set,
    definition_chunks,
    same_function_pairs,
)

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


def test_a_name_defined_twice_in_a_file_is_not_paired() -> None:
    twice = OLD + "\n\n" + _block(OLD, "edited")  # a second `edited` in the old file
    assert "edited" not in _pairs(twice, NEW)


def test_functions_pair_by_path_as_well_as_name() -> None:
    old = definition_chunks({"pkg/core.py": OLD})
    new = definition_chunks({"pkg/moved.py": NEW})
    assert same_function_pairs(old, new) == []


def _archive(folder: Path, name: str, version: str, source: str, other: str = "") -> tuple[Path, str]:
    """A PyPI-style sdist holding core.py (and other.py, if given) of a package, with its sha256."""
    archive = folder / "archives" / f"{name}-{version}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for module, text in (("core", source), ("other", other)):
            if text:
                member = tarfile.TarInfo(f"{name}-{version}/{name}/{module}.py")
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
    manifest.write_text(json.dumps({"packages": [entry]}))
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


def test_an_archive_that_does_not_match_its_pin_is_refused(tmp_path: Path) -> None:
    _, old_sha = _archive(tmp_path, "tiny", "1.0", OLD)
    _archive(tmp_path, "tiny", "2.0", NEW)
    with pytest.raises(FindSimilarError, match="sha256"):
        build_set(_manifest(tmp_path, old_sha, "0" * 64), tmp_path)


def test_a_code_query_never_finds_its_own_text(tiny_model: Path, tmp_path: Path) -> None:
    _, old_sha = _archive(tmp_path, "tiny", "1.0", OLD)
    _, new_sha = _archive(tmp_path, "tiny", "2.0", NEW, other=_block(OLD, "edited"))  # old text, kept
    build_set(_manifest(tmp_path, old_sha, new_sha), tmp_path)
    benchmark = load_find_similar(tmp_path)
    edited = next(i for i, query in enumerate(benchmark.queries) if query.id.endswith(":edited"))
    own = [row.id for row in benchmark.codebase if row.code == benchmark.queries[edited].text]
    assert len(own) == 1  # the old text of `edited` is in the pool, in other.py
    result = evaluate(benchmark, tiny_model, rerank_depths=(10,), keep_rankings=True, cache_dir=None)
    assert set(result.rows) == {"retriever"}  # find similar is retriever only
    assert result.rankings["retriever"][edited][-1] == own[0]  # its identical embedding would rank first
