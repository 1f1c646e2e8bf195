"""Mining (description, code) pairs: description cleaning, CodeSearchNet filters, the split by file."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TESTS

from codesieve.server.chunk.chunker import chunk_source
from codesieve.trainer.data import Pair, read_pairs, split_by_file, write_pairs
from codesieve.trainer.mining import (
    clean_description,
    code_with_rest_of_doc,
    code_without_doc,
    identifier_words,
    mine_repository,
    pairs_from_source,
)

DATA = TESTS / "data"


@pytest.mark.parametrize(
    ("docstring", "expected"),
    [
        ('"""Read a JSON file into a Config."""', "Read a JSON file into a Config."),
        ("'''Summary spans\n    two lines. Second sentence.\n    '''", "Summary spans two lines."),
        ('r"""Parse the header.\n\n    Args:\n        text: the header.\n    """', "Parse the header."),
        ('"""Load the file\n    :param path: where\n    :returns: rows\n    """', "Load the file"),
        (
            '"""Call :func:`os.walk` over `root`, see https://x.org/a for more."""',
            "Call os.walk over root, see for more.",
        ),
        (
            "/**\n * Returns the {@link Entry} for a key, e.g. the first one. Rest.\n * @param key the key\n */",
            "Returns the Entry for a key, e.g. the first one.",
        ),
        ("// Handle answers one request.\n// It is safe for concurrent use.", "Handle answers one request."),
        ("/// Parses [the config](http://a.b) **file**.", "Parses the config file."),
        ("# Whether the key\n# is secret.", "Whether the key is secret."),
        ("/* <p>Sorts the <b>list</b> in place.</p> */", "Sorts the list in place."),
        ('"""\n    Examples:\n        >>> f()\n    """', ""),
    ],
)
def test_clean_description(docstring: str, expected: str) -> None:
    assert clean_description(docstring) == expected


def test_code_without_doc_removes_the_docstring_lines() -> None:
    text = 'def area(r):\n    """Area of a circle of radius r."""\n    pi = 3.14159\n    return pi * r * r\n'
    chunk = next(c for c in chunk_source("m.py", text) if c.name == "area")
    assert code_without_doc(chunk) == "def area(r):\n    pi = 3.14159\n    return pi * r * r"
    go = "// Area of a circle.\nfunc Area(r float64) float64 {\n\treturn r * r\n}\n"
    chunk = next(c for c in chunk_source("m.go", go) if c.name == "Area")
    assert code_without_doc(chunk) == "func Area(r float64) float64 {\n\treturn r * r\n}"


def test_code_with_rest_of_doc_cuts_only_the_summary_sentence() -> None:
    text = (
        "def load(path):\n"
        '    """Load the config file. Missing keys come from the defaults.\n\n'
        "    Args:\n        path: where it is.\n"
        '    """\n'
        "    return open(path).read()\n"
    )
    chunk = next(c for c in chunk_source("m.py", text) if c.name == "load")
    kept = code_with_rest_of_doc(chunk)
    assert "Load the config file" not in kept
    assert kept.startswith('def load(path):\n    """Missing keys come from the defaults.\n\n    Args:')
    assert kept.endswith("    return open(path).read()")
    js = "/**\n * Adds two numbers. Overflow wraps.\n * @param a first\n */\nfunction add(a, b) {\n  return a + b;\n}\n"
    chunk = next(c for c in chunk_source("m.js", js) if c.name == "add")
    assert code_with_rest_of_doc(chunk).startswith(
        "/**\n * Overflow wraps.\n * @param a first\n */\nfunction"
    )


def test_code_with_rest_of_doc_is_the_bare_code_when_only_a_summary_is_documented() -> None:
    text = 'def area(r):\n    """Area of a circle of radius r."""\n    return 3.14 * r * r\n'
    chunk = next(c for c in chunk_source("m.py", text) if c.name == "area")
    assert code_with_rest_of_doc(chunk) == code_without_doc(chunk)


def test_identifier_words_split_snake_and_camel_case() -> None:
    assert identifier_words("parseConfig_fromHTTPFile2") == ["parse", "config", "from", "http", "file", "2"]


def test_test_names_become_queries_for_the_function_they_test(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "pkg" / "config.py").write_text(
        "def parse_config(path, defaults=None):\n    text = open(path).read()\n    value = text or defaults\n"
        "    return value\n\n\ndef helper(x):\n    y = x\n    z = y\n    return z\n"
    )
    (tmp_path / "tests" / "test_config.py").write_text(
        "def test_parse_config_falls_back_to_defaults():\n    assert parse_config(helper('x'), {}) == {}\n\n\n"
        "def test_parse_config():\n    parse_config('x')\n\n\n"  # too few words
        "def test_unrelated_words_here():\n    parse_config('x')\n"  # shares no word with the callee
    )
    pairs = [pair for pair in mine_repository(tmp_path).pairs if pair.source == "test-name"]
    assert [(pair.query, pair.name) for pair in pairs] == [
        ("parse config falls back to defaults", "parse_config")
    ]
    assert pairs[0].code.startswith("def parse_config(") and pairs[0].path == "pkg/config.py"


def test_filters() -> None:
    source = '''
def test_parses():
    """Check that parsing works on a simple input."""
    a = 1
    b = 2
    assert a < b


def short():
    """Return one for the caller."""
    return 1


def terse(x):
    """Double it."""
    y = x * 2
    z = y + 0
    return z


def __len__(self):
    """Return the number of items in the bag."""
    total = 0
    total += 1
    return total


def keeps(x):
    """Square a number and add one to the result."""
    y = x * x
    y = y + 1
    return y
'''
    pairs, dropped = pairs_from_source("pkg/mod.py", source)
    assert [pair.name for pair in pairs] == ["keeps"]
    assert pairs[0].query == "Square a number and add one to the result."
    assert '"""' not in pairs[0].code and pairs[0].code.startswith("def keeps(x):")
    assert dropped == {"test": 1, "short-code": 1, "short-description": 1, "dunder": 1}
    assert pairs_from_source("tests/mod.py", source)[0] == []
    generated, reasons = pairs_from_source(
        "pkg/gen.py", "# Code generated by protoc. DO NOT EDIT.\n" + source
    )
    assert generated == [] and reasons == {"generated-file": 1}


def test_mining_the_chunking_samples_covers_several_languages(tmp_path: Path) -> None:
    report = mine_repository(DATA / "chunking")
    languages = {pair.language for pair in report.pairs}
    assert {"python", "go", "java", "javascript", "rust", "ruby", "typescript"} <= languages
    for pair in report.pairs:
        assert 3 <= len(pair.query.split()) <= 256
        assert sum(1 for line in pair.code.split("\n") if line.strip()) >= 3
        assert pair.query not in pair.code
    out = tmp_path / "pairs.jsonl"
    write_pairs(out, report.pairs)
    assert read_pairs(out) == report.pairs


def test_mining_the_minirepo() -> None:
    report = mine_repository(DATA / "minirepo")
    names = {pair.name for pair in report.pairs}
    assert {"slugify", "Template.render", "Distance", "Point.Scale", "retry", "parseCookies"} <= names
    assert "listUsers" not in names  # generated file
    assert "check_slug_roundtrip" not in names  # under tests/
    assert "__helper__" not in names and "Template.__init__" not in names
    assert report.dropped["generated-file"] == 1 and report.dropped["test-file"] == 1
    assert len(report.pairs) >= 20
    by_name = {pair.name: pair for pair in report.pairs}
    assert (
        by_name["truncate_words"].query == "Shorten text to at most limit words, adding an ellipsis when cut."
    )
    assert by_name["wrap_lines"].query == "Wrap a paragraph into lines no longer than the given width."
    assert len({pair.id for pair in report.pairs}) == len(report.pairs)


def test_duplicate_code_is_mined_once(tmp_path: Path) -> None:
    body = 'def total(values):\n    """Add up all the values in a list."""\n    result = 0\n    for v in values:\n        result += v\n    return result\n'
    (tmp_path / "a.py").write_text(body)
    (tmp_path / "b.py").write_text(body.replace("    result = 0", "    result  =  0"))
    report = mine_repository(tmp_path)
    assert len(report.pairs) == 1 and report.dropped["duplicate-code"] == 1


def test_held_out_split_is_by_file_and_disjoint() -> None:
    pairs = [
        Pair(f"{f}-{i}", f"query {f} {i}", f"code {f} {i}", path=f"file{f}.py")
        for f in range(20)
        for i in range(f % 4 + 1)
    ]
    train, held_out = split_by_file(pairs, 0.1, seed=3)
    assert len(train) + len(held_out) == len(pairs)
    assert {p.path for p in train}.isdisjoint({p.path for p in held_out})
    assert 0.1 * len(pairs) <= len(held_out) < 0.1 * len(pairs) + 4
    assert split_by_file(pairs, 0.1, seed=3) == (train, held_out)
    real = mine_repository(DATA / "minirepo").pairs
    train, held_out = split_by_file(real, 0.1)
    assert held_out and train and {p.path for p in train}.isdisjoint({p.path for p in held_out})


@pytest.mark.parametrize(
    ("header", "generated"),
    [
        ("// Code generated by protoc-gen-go. DO NOT EDIT.", True),
        ("# @generated by pants", True),
        ("/* Auto-generated file, changes will be lost */", True),
        ('"""This file was automatically generated from schema.json."""', True),
        ('"""Helpers that check generated code for errors."""', False),
        ('"""Mine pairs; no generated files are used."""', False),
    ],
)
def test_generated_headers(header: str, generated: bool) -> None:
    body = (
        header
        + '\n\ndef check(x):\n    """Check the value and return it doubled."""\n    y = x * 2\n    return y\n'
    )
    pairs, dropped = pairs_from_source("pkg/mod.py", body)
    assert (dropped["generated-file"] == 1) is generated and (not pairs) is generated
