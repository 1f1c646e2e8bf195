"""The find-similar benchmark: the same function in two released versions of packages outside the corpus.

"Find similar code" embeds the function at the cursor as code and ranks the index's chunks by
their code embeddings. This set measures that: for each package pinned in the manifest
(bench/find_similar/manifest.json: name, registry, old and new version, sha256 of each archive;
none of them in data/corpus/manifest.json), both archives are chunked with the runtime chunker
(`server.chunk.chunker.chunk_source`, as indexing does). A query is the old version of a function or
method whose text changed in the new version but is still recognisably the same function:

- same path (below the archive's top folder) and qualified name, one definition of that name per file;
- at least `MIN_LINES` lines in the old version;
- a difflib ratio between `MIN_RATIO` and `MAX_RATIO` (identical or near-identical text is a
  lookup, not a similarity search; below it the function was rewritten).

The pool is every function, method and class chunk of every package's new version, as an index of
them would hold; the gold is the new version of the query's function. The set is written as the
shared/benchmarks JSONL format (queries.jsonl, codebase.jsonl) into a cache folder; archives are
downloaded with the registry's own client (`pip download`, `npm pack`) and checked against the
manifest's sha256 before anything is read from them.
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
from codesieve.server.languages import language_for_path

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
        entries = json.loads(path.read_text(encoding="utf-8"))["packages"]
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
    """Path (below the archive's top folder) -> text, for every file in a language the chunker parses."""
    sources: dict[str, str] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts[1:]
            if not member.isfile() or not parts or member.size > max_file_size:
                continue
            path = "/".join(parts)
            language = language_for_path(path)
            if language is None or spec_for(language) is None:
                continue
            data = tar.extractfile(member)
            if data is not None:
                sources[path] = data.read().decode("utf-8", errors="replace")
    return sources


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


def build_set(manifest: Path, folder: Path) -> tuple[int, int]:
    """Write queries.jsonl and codebase.jsonl of the manifest's packages into `folder`; (queries, pool)."""
    (folder / "manifest.json").unlink(missing_ok=True)  # a build that fails half-way is not a built set
    queries: list[dict[str, object]] = []
    pool: list[dict[str, object]] = []
    for package in read_manifest(manifest):
        old, new = (
            definition_chunks(
                archive_sources(download(package.name, package.registry, release, folder / "archives"))
            )
            for release in (package.old, package.new)
        )
        code_id = {chunk.id: len(pool) + offset for offset, chunk in enumerate(new)}
        pool += [
            {
                "id": len(pool) + offset,
                "code": chunk.text,
                "language": chunk.language,
                "package": package.name,
                "path": chunk.path,
                "name": chunk.name,
            }
            for offset, chunk in enumerate(new)
        ]
        for before, after in same_function_pairs(old, new):
            queries.append(
                {
                    "id": f"{package.name}:{before.path}:{before.name}",
                    "query": before.text,
                    "code_id": code_id[after.id],
                    "language": before.language,
                }
            )
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


def ensure_set(manifest: Path, folder: Path) -> None:
    """Build the set in `folder` unless it is already built from this very manifest."""
    built = folder / "manifest.json"
    if built.is_file() and built.read_bytes() == manifest.read_bytes():  # written last by build_set
        return
    print(f"building the find-similar set from {manifest} into {folder}", file=sys.stderr)
    build_set(manifest, folder)
