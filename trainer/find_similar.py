"""The find-similar benchmark: the same function in two released versions of packages outside the corpus.

"Find similar code" embeds the function at the cursor as code and ranks the index's chunks by
their code embeddings. This set measures that: for each package pinned in the manifest
(bench/find_similar/manifest.json: name, registry, old and new version, sha256 of each archive;
none of them in data/corpus/manifest.json nor held out for independent measurement), both archives
are unpacked and read as an index reads a folder: the runtime's scan (`server.scan.walk`, so its
default excludes such as `dist/` and `build/` apply) and chunker (`server.chunk.chunker`). A query
is the old version of a function or method whose text changed in the new version but is still
recognisably the same function:

- same path (below the archive's top folder) and qualified name, one definition of that name per file;
- at least `MIN_LINES` lines in the old version;
- a difflib ratio between `MIN_RATIO` and `MAX_RATIO` (identical or near-identical text is a
  lookup, not a similarity search; below it the function was rewritten), and not the same words
  (`server.search.twins.code_words`, counted) in another layout: a reformat is a lookup too;
- its own name hidden (`trainer.own_name`): the definition's name and its self-references become
  a placeholder, so the query cannot find its other version by name alone. The gold keeps its
  name, as the index holds it.

The pool is every function, method and class chunk of every package's new version, as an index of
them would hold, all packages in one pool so that packages of the same domain (markdown parsers,
date libraries, argument parsers, serialisers, version parsers) put near-namesakes side by side;
the gold is the new version of the query's function. Near-copies count as one answer, as the
runtime shows them (`server.search.twins`: "also at"): a pool chunk that is a twin of a gold is
left out of the pool, a query whose gold is a twin of an earlier query's gold is left out, and so
is a query with an unchanged near-copy of itself in the pool (two right answers).

The set is written as the shared/benchmarks JSONL format (queries.jsonl, codebase.jsonl) into a
folder named for `FIND_SIMILAR_VERSION`, so a set built by older rules is never read as this one;
archives are downloaded with the registry's own client (`pip download`, `npm pack`) and checked
against the manifest's sha256 before anything is read from them.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from codesieve.server.chunk.chunker import Chunk, chunk_source
from codesieve.server.chunk.language_specs import spec_for
from codesieve.server.config import Settings
from codesieve.server.scan.walk import scan_workspace
from codesieve.server.search.twins import MIN_WORDS, TWIN_SIMILARITY, code_words, similarity

from .benchmarks import FIND_SIMILAR_VERSION
from .own_name import hide_own_name

MIN_RATIO = 0.5  # below: rewritten, no longer the same function
MAX_RATIO = 0.98  # above: a one-character edit, finding it is a lookup
MIN_LINES = 3  # shorter functions are one-liners that many functions resemble
QUERY_KINDS = ("function", "method")
POOL_KINDS = ("function", "method", "class")


class FindSimilarError(Exception):
    """A manifest, download or archive problem, with what to do about it."""


@dataclass(frozen=True)
class Release:
    """One released archive of a package, pinned by its sha256."""

    version: str
    sha256: str


@dataclass(frozen=True)
class PackagePair:
    """A package outside the corpus, in an old and a new release."""

    name: str
    registry: str  # "pypi" | "npm"
    old: Release
    new: Release


def read_manifest(path: Path) -> list[PackagePair]:
    """The package pairs of a manifest; raises FindSimilarError naming the file and the bad entry."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version, entries = data["version"], data["packages"]
        pairs = [
            PackagePair(
                name=entry["name"],
                registry=entry["registry"],
                old=Release(entry["old"]["version"], entry["old"]["sha256"]),
                new=Release(entry["new"]["version"], entry["new"]["sha256"]),
            )
            for entry in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FindSimilarError(f"{path}: not a find-similar manifest ({error!r})") from error
    if version != FIND_SIMILAR_VERSION:
        raise FindSimilarError(
            f"{path}: a manifest of set version {version!r}; this code builds version "
            f"{FIND_SIMILAR_VERSION}: set its version once its packages follow this version's rules"
        )
    for pair in pairs:
        if pair.registry not in ("pypi", "npm"):
            raise FindSimilarError(f"{path}: {pair.name} has registry {pair.registry!r}; use pypi or npm")
    return pairs


def download(name: str, registry: str, release: Release, folder: Path) -> Path:
    """The archive of `name` at `release` in `folder`, downloaded once and checked against its sha256."""
    target = folder / f"{name}-{release.version}.{'tar.gz' if registry == 'pypi' else 'tgz'}"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            if registry == "pypi":
                command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
                command += ["--no-binary", ":all:", "--dest", scratch, f"{name}=={release.version}"]
            else:
                command = [
                    "npm",
                    "pack",
                    "--silent",
                    "--pack-destination",
                    scratch,
                    f"{name}@{release.version}",
                ]
            finished = subprocess.run(command, capture_output=True, text=True)
            archives = sorted(Path(scratch).iterdir())
            if finished.returncode != 0 or len(archives) != 1:
                raise FindSimilarError(
                    f"could not download {name} {release.version} with `{' '.join(command)}`: "
                    f"{finished.stderr.strip()[-500:] or 'no single archive came back'}"
                )
            os.replace(archives[0], target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != release.sha256:
        raise FindSimilarError(
            f"{target} has sha256 {digest}, the manifest pins {release.sha256}; delete the file to "
            "download it again, or fix the manifest if the pin is wrong"
        )
    return target


def archive_sources(archive: Path, max_file_size: int = Settings.max_file_size) -> dict[str, str]:
    """Path (below the archive's top folder) -> text, for every file the runtime's scan would index
    in a language the chunker parses (the archive unpacked into a scratch folder and scanned)."""
    with tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, members=_plain_files(tar), filter="data")
        tops = [entry for entry in Path(scratch).iterdir() if entry.is_dir()]
        if len(tops) != 1:
            raise FindSimilarError(f"{archive}: expected one top folder, found {len(tops)}")
        scan = scan_workspace(tops[0], max_file_size=max_file_size)
        return {
            file.path: file.abspath.read_bytes().decode("utf-8", errors="replace")
            for file in scan.files
            if spec_for(file.language) is not None
        }


def _plain_files(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The regular files and folders of an archive (no links, devices, absolute or `..` paths)."""
    return [
        member
        for member in tar.getmembers()
        if (member.isfile() or member.isdir())
        and not PurePosixPath(member.name).is_absolute()
        and ".." not in PurePosixPath(member.name).parts
    ]


def definition_chunks(sources: dict[str, str]) -> list[Chunk]:
    """The function, method and class chunks of a version's files, in path order."""
    chunks: list[Chunk] = []
    for path in sorted(sources):
        chunks += [chunk for chunk in chunk_source(path, sources[path]) if chunk.kind in POOL_KINDS]
    return chunks


def same_function_pairs(old: Sequence[Chunk], new: Sequence[Chunk]) -> list[tuple[Chunk, Chunk]]:
    """(old, new) chunks of the same function or method whose text changed, but not beyond recognition."""
    new_by_key = _unique_by_key(new)
    pairs = []
    for key, before in _unique_by_key(old).items():
        after = new_by_key.get(key)
        if after is None or before.kind not in QUERY_KINDS or before.text.count("\n") + 1 < MIN_LINES:
            continue
        if code_words(before.text) == code_words(after.text):
            continue  # the same words, moved, re-indented or re-punctuated: a lookup, not an edit
        if MIN_RATIO <= difflib.SequenceMatcher(None, before.text, after.text).ratio() <= MAX_RATIO:
            pairs.append((before, after))
    return pairs


def _unique_by_key(chunks: Iterable[Chunk]) -> dict[tuple[str, str, str], Chunk]:
    """Chunks by (path, qualified name, kind), leaving out names defined more than once in a file."""
    chunks = list(chunks)
    counts = Counter((chunk.path, chunk.name, chunk.kind) for chunk in chunks)
    return {
        (chunk.path, chunk.name, chunk.kind): chunk
        for chunk in chunks
        if counts[(chunk.path, chunk.name, chunk.kind)] == 1
    }


class _Words:
    """Chunks' words as the runtime's twin rule counts them, computed once each."""

    def __init__(self) -> None:
        self._bags: dict[str, tuple[Counter[str], int]] = {}

    def of(self, text: str) -> tuple[Counter[str], int]:
        if text not in self._bags:
            bag = code_words(text)
            self._bags[text] = (bag, sum(bag.values()))
        return self._bags[text]

    def twins(self, first: Chunk, second: Chunk, same_version: bool = True) -> bool:
        """The runtime's twin rule (`server.search.twins`): same kind and language, enough words,
        at least `TWIN_SIMILARITY` of them shared, neither holding the other (two chunks of one
        version; lines of two versions of a file do not hold one another)."""
        if (first.kind, first.language) != (second.kind, second.language):
            return False
        (bag, size), (other, other_size) = self.of(first.text), self.of(second.text)
        smaller, larger = sorted((size, other_size))
        if smaller < MIN_WORDS or smaller < TWIN_SIMILARITY * larger:
            return False
        if same_version and first.path == second.path and _nested(first, second):
            return False
        return similarity(bag, other) >= TWIN_SIMILARITY


def _nested(first: Chunk, second: Chunk) -> bool:
    """Whether one chunk's lines hold the other's."""
    return (
        first.start_line <= second.start_line <= second.end_line <= first.end_line
        or second.start_line <= first.start_line <= first.end_line <= second.end_line
    )


def one_answer_per_query(
    pairs: Sequence[tuple[Chunk, Chunk]], new: Sequence[Chunk]
) -> tuple[list[tuple[Chunk, Chunk]], list[Chunk]]:
    """The pairs to ask and the pool chunks to keep, so that each query has exactly one right answer.

    A pair is left out when its gold is a twin of a kept pair's gold (the same function asked twice,
    say from a copy of the source) or when the pool holds a twin of its old version other than its
    gold (an unchanged copy: a second right answer); a pool chunk is left out when it is a twin of a
    kept gold (the runtime would show it as that gold's "also at")."""
    words = _Words()
    kept: list[tuple[Chunk, Chunk]] = []
    for before, after in pairs:
        if any(words.twins(after, gold) for _, gold in kept):
            continue
        if any(chunk.id != after.id and words.twins(before, chunk, same_version=False) for chunk in new):
            continue
        kept.append((before, after))
    golds = {after.id for _, after in kept}
    pool = [
        chunk for chunk in new if chunk.id in golds or not any(words.twins(chunk, gold) for _, gold in kept)
    ]
    return kept, pool


def build_set(manifest: Path, folder: Path, hide_names: bool = True) -> tuple[int, int]:
    """Write queries.jsonl and codebase.jsonl of the manifest's packages into `folder`; (queries, pool).

    `hide_names=False` leaves each query's own name in (the same queries and pool otherwise: what
    hiding the name does to each system's score)."""
    (folder / "manifest.json").unlink(missing_ok=True)  # a build that fails half-way is not a built set
    queries: list[dict[str, object]] = []
    pool: list[dict[str, object]] = []
    for package in read_manifest(manifest):
        old_sources, new_sources = (
            archive_sources(download(package.name, package.registry, release, folder / "archives"))
            for release in (package.old, package.new)
        )
        pairs, new = one_answer_per_query(
            same_function_pairs(definition_chunks(old_sources), definition_chunks(new_sources)),
            definition_chunks(new_sources),
        )
        code_id = {chunk.id: len(pool) + offset for offset, chunk in enumerate(new)}
        pool += [
            {
                "id": len(pool) + offset,
                "code": chunk.text,
                "language": chunk.language,
                "registry": package.registry,
                "package": package.name,
                "path": chunk.path,
                "name": chunk.name,
            }
            for offset, chunk in enumerate(new)
        ]
        queries += [
            {
                "id": f"{package.name}:{before.path}:{before.name}",
                "query": hide_own_name(old_sources[before.path], before) if hide_names else before.text,
                "code_id": code_id[after.id],
                "language": before.language,
            }
            for before, after in pairs
        ]
    _write_jsonl(folder / "codebase.jsonl", pool)
    _write_jsonl(folder / "queries.jsonl", queries)
    shutil.copyfile(manifest, folder / "manifest.json")
    return len(queries), len(pool)


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def ensure_set(manifest: Path, folder: Path, hide_names: bool = True) -> None:
    """Build the set in `folder` unless it is already built from this very manifest."""
    built = folder / "manifest.json"
    if built.is_file() and built.read_bytes() == manifest.read_bytes():  # written last by build_set
        return
    print(f"building the find-similar set from {manifest} into {folder}", file=sys.stderr)
    build_set(manifest, folder, hide_names)
