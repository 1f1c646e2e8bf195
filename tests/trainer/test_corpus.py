"""The training corpus builder: manifest validation, safe extraction, mining and decontamination (no network)."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO

from codesieve.trainer.benchmarks import find_benchmarks_root
from codesieve.trainer.corpus import build as corpus
from codesieve.trainer.corpus.decontaminate import (
    Contamination,
    decontaminate,
    held_out_packages,
    load_contamination,
    normalise_package_name,
    normalise_query,
)
from codesieve.trainer.corpus.fetch import extract
from codesieve.trainer.corpus.manifest import (
    ManifestError,
    Package,
    is_permissive,
    load_manifest,
    validate_manifest,
    write_manifest,
)
from codesieve.trainer.corpus.package_metadata import deb_version, detect_metadata, repository_slug
from codesieve.trainer.corpus.package_mining import mine_package
from codesieve.trainer.negatives import code_key

SHA = "a" * 64

PYTHON_SOURCE = '''\
def parse_header(text):
    """Parse the header line of a record into fields.

    Args:
        text: the line.
    """
    fields = text.split(",")
    fields = [field.strip() for field in fields]
    return fields


def stolen(items):
    """Return the stolen items from a benchmark row."""
    total = 0
    for item in items:
        total += item
    return total
'''

RUBY_SOURCE = """\
module Shelf
  # Counts the books on every shelf of the library.
  def count_books(shelves)
    shelves.map do |shelf|
      shelf.books.size
    end.sum
  end
end
"""


def _entry(**overrides: str) -> dict[str, str]:
    entry = {
        "name": "widgets",
        "registry": "pypi",
        "version": "1.0",
        "licence": "MIT",
        "sha256": SHA,
        "repository": "https://github.com/example/widgets",
        "language": "python",
    }
    entry.update(overrides)
    return entry


def _package(**overrides: str) -> Package:
    return validate_manifest({"packages": [_entry(**overrides)]})[0]


# --------------------------------------------------------------------------------------------------
# Manifest


def test_the_committed_manifest_validates() -> None:
    data = json.loads((REPO / "data" / "corpus" / "manifest.json").read_text(encoding="utf-8"))
    packages = validate_manifest(data)
    assert len(packages) >= 40
    languages = {package.language for package in packages}
    assert {"python", "javascript", "go", "ruby", "rust"} <= languages
    assert all(is_permissive(package.licence) for package in packages)


def _find_similar_packages() -> list[dict[str, Any]]:
    manifest = REPO / "bench" / "find_similar" / "manifest.json"
    packages: list[dict[str, Any]] = json.loads(manifest.read_text(encoding="utf-8"))["packages"]
    return packages


def _normalised(name: str) -> str:
    """Lower case, each run of `-`, `_` and `.` one `-`: how package names are compared."""
    return re.sub(r"[-_.]+", "-", name.strip().lower())


def test_no_find_similar_package_is_in_the_committed_manifest() -> None:
    # bench/find_similar measures packages outside the corpus: training on a newer release of one of them
    # would teach the model the very functions its queries look for (by name, whatever the registry).
    corpus_manifest = json.loads((REPO / "data" / "corpus" / "manifest.json").read_text(encoding="utf-8"))
    in_corpus = {_normalised(entry["name"]) for entry in corpus_manifest["packages"]}
    assert not {_normalised(entry["name"]) for entry in _find_similar_packages()} & in_corpus


def benchmarks_or_skip() -> Path:
    """The shared benchmarks folder (its holdout list), or a skip where this checkout has none beside it."""
    try:
        root: Path = find_benchmarks_root()
    except FileNotFoundError as error:
        pytest.skip(f"shared benchmarks folder not found ({error})")
    return root


def test_no_find_similar_package_is_held_out() -> None:
    # the held-out packages are kept for an independent measurement: none of them may be read here
    names = [entry["name"] for entry in _find_similar_packages()]
    assert held_out_packages(names, benchmarks_or_skip()) == []


def test_find_similar_packages_are_permissive_and_pinned_in_two_releases() -> None:
    packages = _find_similar_packages()
    assert 25 <= len(packages) <= 40
    assert len({(entry["registry"], _normalised(entry["name"])) for entry in packages}) == len(packages)
    for entry in packages:
        assert is_permissive(entry["licence"]), entry["name"]
        assert entry["old"]["version"] != entry["new"]["version"], entry["name"]
        assert all(re.fullmatch(r"[0-9a-f]{64}", entry[key]["sha256"]) for key in ("old", "new"))


def test_a_valid_manifest_gives_packages() -> None:
    [package] = validate_manifest({"packages": [_entry()]})
    assert package.key == "pypi:widgets@1.0"
    assert package.sha256 == SHA


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"registry": "rubygems"}, "registry must be one of"),
        ({"language": "cobol"}, "language must be one of"),
        ({"sha256": "abc"}, "sha256 must be 64"),
        ({"version": ""}, "version is missing"),
        ({"repository": ""}, "repository is missing"),
        ({"licence": "GPL-3.0-or-later"}, "not a permissive licence"),
        ({"licence": ""}, "not a permissive licence"),
    ],
)
def test_manifest_problems_are_named(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        validate_manifest({"packages": [_entry(**overrides)]})


def test_manifest_rejects_duplicates_unknown_fields_and_bad_shapes() -> None:
    with pytest.raises(ManifestError, match="listed twice"):
        validate_manifest({"packages": [_entry(), _entry(version="2.0")]})
    with pytest.raises(ManifestError, match="unknown fields"):
        validate_manifest({"packages": [{**_entry(), "url": "x"}]})
    with pytest.raises(ManifestError, match="packages"):
        validate_manifest({"items": []})


def test_unpinned_entries_pass_only_without_require_pins() -> None:
    entry = {"name": "widgets", "registry": "npm", "language": "javascript"}
    [package] = validate_manifest({"packages": [entry]}, require_pins=False)
    assert package.sha256 == ""
    with pytest.raises(ManifestError):
        validate_manifest({"packages": [entry]})


@pytest.mark.parametrize(
    ("licence", "expected"),
    [
        ("MIT", True),
        ("BSD-3-Clause", True),
        ("Apache-2.0", True),
        ("MIT OR Apache-2.0", True),
        ("Apache-2.0 or MIT", True),
        ("ISC", True),
        ("PSF-2.0", True),
        ("Expat", True),
        ("BSD-2-clause or Ruby", True),
        ("GPL-2+", False),
        ("MPL-2.0 AND MIT", False),
        ("LGPL-2.1 OR MIT", True),
        ("LGPL-3.0", False),
        ("", False),
    ],
)
def test_is_permissive(licence: str, expected: bool) -> None:
    assert is_permissive(licence) is expected


def test_write_manifest_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    data: dict[str, Any] = {"description": "x", "packages": [{**_entry(), "note": "why"}]}
    write_manifest(path, copy.deepcopy(data))
    assert json.loads(path.read_text(encoding="utf-8")) == data


# --------------------------------------------------------------------------------------------------
# Extraction and mining


def _tar_bytes(files: dict[str, str], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


def test_tarballs_extract_safely(tmp_path: Path) -> None:
    evil = tarfile.TarInfo("../escape.py")
    evil.size = 1
    link = tarfile.TarInfo("widgets-1.0/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = tmp_path / "widgets-1.0.tar.gz"
    archive.write_bytes(_tar_bytes({"widgets-1.0/widgets/core.py": PYTHON_SOURCE}, [evil, link]))
    root = extract(archive, tmp_path / "src")
    assert (root / "widgets-1.0" / "widgets" / "core.py").read_text(encoding="utf-8") == PYTHON_SOURCE
    assert not (tmp_path / "escape.py").exists()
    assert not (root / "widgets-1.0" / "link").exists()
    # A second call reuses the completed folder.
    (root / "widgets-1.0" / "widgets" / "core.py").write_text("changed", encoding="utf-8")
    assert extract(archive, tmp_path / "src") == root
    assert (root / "widgets-1.0" / "widgets" / "core.py").read_text(encoding="utf-8") == "changed"


def test_zip_archives_extract_safely(tmp_path: Path) -> None:
    archive = tmp_path / "widgets-1.0.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("widgets-1.0/core.py", PYTHON_SOURCE)
        handle.writestr("../escape.py", "x")
    root = extract(archive, tmp_path / "src")
    assert (root / "widgets-1.0" / "core.py").exists()
    assert not (tmp_path / "escape.py").exists()


def _deb_bytes(files: dict[str, str]) -> bytes:
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", _tar_bytes({"./control": "Package: ruby-shelf\nVersion: 1.2-3\n"})),
        ("data.tar.gz", _tar_bytes(files)),
    ]
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, payload in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n"
        out.write(header.encode("ascii"))
        out.write(payload)
        if len(payload) % 2:
            out.write(b"\n")
    return out.getvalue()


def test_debian_packages_extract_and_mine_without_dpkg(tmp_path: Path) -> None:
    deb = tmp_path / "ruby-shelf_1.2-3_all.deb"
    deb.write_bytes(
        _deb_bytes(
            {
                "./usr/lib/ruby/vendor_ruby/shelf.rb": RUBY_SOURCE,
                "./usr/share/doc/ruby-shelf/copyright": "Source: https://github.com/example/shelf\n\n"
                "Files: *\nCopyright: 2020 Someone\nLicense: Expat\n",
            }
        )
    )
    assert deb_version(deb) == "1.2-3"
    root = extract(deb, tmp_path / "src")
    assert detect_metadata("debian", root) == {
        "repository": "https://github.com/example/shelf",
        "licence": "Expat",
    }
    package = _package(
        name="ruby-shelf", registry="debian", version="1.2-3", language="ruby", licence="Expat"
    )
    mined = mine_package(package, root)
    [pair] = mined.pairs
    assert pair["query"] == "Counts the books on every shelf of the library."
    assert pair["language"] == "ruby"
    assert pair["package"] == "ruby-shelf"
    assert pair["licence"] == "Expat"
    assert pair["path"] == "usr/lib/ruby/vendor_ruby/shelf.rb"


def test_a_fake_sdist_mines_tagged_pairs(tmp_path: Path) -> None:
    archive = tmp_path / "widgets-1.0.tar.gz"
    archive.write_bytes(
        _tar_bytes(
            {
                "widgets-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: widgets\nVersion: 1.0\n"
                "Classifier: License :: OSI Approved :: MIT License\n"
                "Project-URL: Source, https://github.com/example/widgets\n",
                "widgets-1.0/widgets/core.py": PYTHON_SOURCE,
                "widgets-1.0/tests/test_core.py": PYTHON_SOURCE,
            }
        )
    )
    root = extract(archive, tmp_path / "src")
    assert detect_metadata("pypi", root) == {
        "version": "1.0",
        "licence": "MIT",
        "repository": "https://github.com/example/widgets",
    }
    mined = mine_package(_package(), root)
    assert [pair["name"] for pair in mined.pairs] == ["parse_header", "stolen"]
    first = mined.pairs[0]
    assert first["id"].startswith("pypi:widgets@1.0:")
    assert first["query"] == "Parse the header line of a record into fields."
    assert '"""' not in first["code"]
    assert {pair["path"] for pair in mined.pairs} == {"widgets-1.0/widgets/core.py"}  # tests/ skipped
    assert mined.dropped.get("test-file") == 1


def test_npm_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "package.json").write_text(
        json.dumps({"name": "w", "version": "2.0.1", "license": "ISC", "repository": "github:example/w"}),
        encoding="utf-8",
    )
    assert detect_metadata("npm", tmp_path) == {
        "version": "2.0.1",
        "licence": "ISC",
        "repository": "https://github.com/example/w",
    }


# --------------------------------------------------------------------------------------------------
# Decontamination


def _write_benchmarks(root: Path, stolen_code: str) -> None:
    (root / "cosqa").mkdir(parents=True)
    (root / "csn_ruby").mkdir(parents=True)
    rows = [{"id": 0, "code": stolen_code, "language": "python"}]
    (root / "cosqa" / "codebase.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    queries = [{"id": "q", "query": "python sort a dict by value", "code": "x = 1", "code_id": 0}]
    (root / "cosqa" / "test_queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries))
    ruby = [
        {
            "id": "r",
            "query": "Counts the books on every shelf",
            "docstring": "Counts the books on every shelf",
            "code": "def a\n  1\nend",
            "code_id": 0,
            "repo": "Example/Shelf",
            "url": "https://github.com/other/thing/blob/abc/lib/x.rb#L1-L3",
        }
    ]
    (root / "csn_ruby" / "valid_queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ruby))


def test_benchmark_code_with_its_docstring_matches_mined_code_without(tmp_path: Path) -> None:
    stolen = (
        "def stolen(items):\n"
        '        """Return the stolen items from a benchmark row."""\n'
        "        total = 0\n        for item in items:\n            total += item\n        return total"
    )
    _write_benchmarks(tmp_path / "bench", stolen)
    contamination = load_contamination(tmp_path / "bench")
    assert contamination.files == [
        "cosqa/codebase.jsonl",
        "cosqa/test_queries.jsonl",
        "csn_ruby/valid_queries.jsonl",
    ]
    archive = tmp_path / "widgets-1.0.tar.gz"
    archive.write_bytes(_tar_bytes({"widgets-1.0/widgets/core.py": PYTHON_SOURCE}))
    mined = mine_package(_package(), extract(archive, tmp_path / "src"))
    kept, dropped = decontaminate(mined.pairs, contamination, set())
    assert [pair["name"] for pair in kept] == ["parse_header"]
    assert dropped == {"benchmark-code": 1}


def test_queries_and_earlier_packages_are_decontaminated() -> None:
    contamination = Contamination()
    contamination.add_query("Counts the books on every shelf")
    pairs = [
        {"query": "counts the BOOKS on every shelf.", "code": "def a\n  1\nend"},
        {"query": "Adds two numbers together.", "code": "def add(a, b):\n    return a + b"},
        {"query": "Adds two numbers, again.", "code": "def add(a, b):  \n  return a + b"},
    ]
    seen = {code_key("x")}
    kept, dropped = decontaminate(pairs, contamination, seen)
    assert kept == [pairs[1]]
    assert dropped == {"benchmark-query": 1, "duplicate-of-earlier-package": 1}
    assert code_key(pairs[1]["code"]) in seen


def test_packages_from_benchmark_repositories_are_excluded(tmp_path: Path) -> None:
    _write_benchmarks(tmp_path / "bench", "def f():\n    return 1")
    contamination = load_contamination(tmp_path / "bench")
    assert {"example/shelf", "other/thing"} <= contamination.repositories
    by_url = _package(name="bookcase", repository="https://github.com/Other/Thing.git", language="ruby")
    by_name = _package(name="ruby-shelf", registry="debian", repository="https://salsa.debian.org/x")
    unrelated = _package(name="ruby-widgets", registry="debian")
    assert "benchmark repository" in str(contamination.package_reason(by_url))
    assert "matches a benchmark repository's name" in str(contamination.package_reason(by_name))
    assert contamination.package_reason(unrelated) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ruby-net-ssh", "net-ssh"),
        ("net_ssh", "net-ssh"),
        ("travis.rb", "travis"),
        ("golang-github-spf13-cobra-dev", "cobra"),
        ("librust-serde-json-dev", "serde-json"),
        ("sixword", "sixword"),
    ],
)
def test_normalise_package_name(name: str, expected: str) -> None:
    assert normalise_package_name(name) == expected


def test_small_helpers() -> None:
    assert repository_slug("git+https://github.com/Owner/Repo.git") == "owner/repo"
    assert repository_slug("https://example.org/repo") == ""
    assert normalise_query("  Returns the `value`, e.g. 3!") == "returns the value e g 3"


def test_build_is_deterministic_and_cached_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole build on a fake registry: verified archive, report counts, identical reruns."""
    archive_bytes = _tar_bytes({"widgets-1.0/widgets/core.py": PYTHON_SOURCE})
    digest = hashlib.sha256(archive_bytes).hexdigest()
    calls: list[str] = []

    def fake_fetch(registry: str, name: str, version: str, workdir: Path) -> Path:
        calls.append(name)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"{name}-{version}.tar.gz"
        path.write_bytes(archive_bytes)
        return path

    monkeypatch.setattr(corpus, "fetch_archive", fake_fetch)
    stolen = (
        "def stolen(items):\n    total = 0\n    for item in items:\n        total += item\n    return total"
    )
    _write_benchmarks(tmp_path / "bench", stolen)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "packages": [
                    _entry(sha256=digest),
                    _entry(name="widgets-copy", sha256=digest),
                    _entry(name="shelf", sha256=digest, language="ruby"),
                ]
            }
        )
    )
    out = tmp_path / "out"
    log = io.StringIO()
    report = corpus.build(manifest, out, tmp_path / "bench", log=log)
    assert report["pairs"] == 1
    assert report["pairs_by_language"] == {"python": 1}
    assert report["dropped"] == {"benchmark-code": 2, "duplicate-of-earlier-package": 1}
    assert report["excluded_packages"][0]["package"] == "pypi:shelf@1.0"
    assert [entry["kept"] for entry in report["packages"]] == [1, 0]
    first = (out / "pairs.jsonl").read_bytes()
    assert hashlib.sha256(first).hexdigest() == report["pairs_sha256"]
    row = json.loads(first)
    assert (row["package"], row["licence"], row["language"]) == ("widgets", "MIT", "python")
    assert calls == ["widgets", "widgets-copy"]

    report_text = (out / "corpus-report.json").read_text()
    corpus.build(manifest, out, tmp_path / "bench", log=io.StringIO())
    assert calls == ["widgets", "widgets-copy"]  # cached: nothing downloaded again
    assert (out / "pairs.jsonl").read_bytes() == first
    assert (out / "corpus-report.json").read_text() == report_text


def test_a_tampered_archive_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_fetch(registry: str, name: str, version: str, workdir: Path) -> Path:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "widgets-1.0.tar.gz"
        path.write_bytes(b"not what was pinned")
        return path

    monkeypatch.setattr(corpus, "fetch_archive", fake_fetch)
    with pytest.raises(RuntimeError, match="sha256 mismatch"):
        corpus.download(_package(), tmp_path / "archives")


def test_cli_check_and_help(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"packages": [_entry()]}))
    assert corpus.main(["check", "--manifest", str(manifest)]) == 0
    assert "1 packages" in capsys.readouterr().out
    manifest.write_text(json.dumps({"packages": [_entry(licence="GPL-3.0")]}))
    assert corpus.main(["check", "--manifest", str(manifest)]) == 1
    assert "not a permissive licence" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        corpus.main(["build", "--help"])
    assert "benchmark" in capsys.readouterr().out


def test_a_held_out_package_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package listed by the hash of its normalised name is refused before anything is fetched."""
    fetched: list[str] = []
    monkeypatch.setattr(corpus, "fetch_archive", lambda registry, name, *rest: fetched.append(name))
    bench = tmp_path / "bench"
    _write_benchmarks(bench, "def unrelated():\n    return 1")
    listed = hashlib.sha256(b"kept-out-pkg").hexdigest()
    (bench / "holdout-sha256.txt").write_text(f"# held out\n{listed}\n")
    manifest = tmp_path / "manifest.json"
    packages = [_entry(sha256="0" * 64), _entry(name="Kept_Out.pkg", sha256="0" * 64)]
    manifest.write_text(json.dumps({"packages": packages}))

    with pytest.raises(ManifestError, match=r"^Kept_Out\.pkg: held out of every training corpus"):
        corpus.build(manifest, tmp_path / "out", bench, log=io.StringIO())
    assert fetched == []
    assert (
        corpus.main(
            ["build", "--manifest", str(manifest), "--out", str(tmp_path / "out"), "--benchmarks", str(bench)]
        )
        == 1
    )

    assert held_out_packages(["python3-kept-out-pkg", "widgets"], bench) == ["python3-kept-out-pkg"]
    assert held_out_packages(["kept-out-pkg"], tmp_path) == []  # no list, nothing held out


def test_the_committed_manifest_holds_no_held_out_package() -> None:
    _, packages = load_manifest(REPO / "data" / "corpus" / "manifest.json")
    assert held_out_packages([package.name for package in packages], benchmarks_or_skip()) == []
