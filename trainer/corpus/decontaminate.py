"""Decontamination: keep the corpus free of anything the shared benchmarks hold.

A package whose repository is a CSN Ruby benchmark repository (by URL, or by the package's name
against the benchmark repositories' names) is dropped whole; a pair is dropped when its code matches
any benchmark code (``negatives.code_key``, the code as given and with its docstring cut out) or its
description matches any benchmark query or docstring (lower-cased words), or when an earlier package
already gave its code. A package held out for independent measurement (its normalised name's sha256
is listed in the benchmarks' ``holdout-sha256.txt``) is refused before anything is fetched.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .manifest import Package
from .package_metadata import repository_slug


def normalise_query(text: str) -> str:
    """Lower-cased words joined by single spaces: how descriptions and benchmark queries are compared."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


HOLDOUT_FILE = "holdout-sha256.txt"


def holdout_digest(name: str) -> str:
    """The sha256 a held-out package is listed by: its name lower-cased, each run of ``-``, ``_``, ``.`` one ``-``."""
    return hashlib.sha256(re.sub(r"[-_.]+", "-", name.strip().lower()).encode()).hexdigest()


def held_out_packages(names: Iterable[str], benchmarks: Path) -> list[str]:
    """The names (as given) whose digest the benchmarks' holdout list holds; none when it has no list.

    A Debian or npm name is also checked without its registry prefix (``python3-x``, ``@scope/x``).
    """
    path = Path(benchmarks) / HOLDOUT_FILE
    if not path.is_file():
        return []
    lines = (line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines())
    listed = {line for line in lines if line and not line.startswith("#")}
    return [
        name
        for name in names
        if {holdout_digest(name), holdout_digest(normalise_package_name(name))} & listed
    ]


def _doc_stripped_codes(code: str, language: str) -> list[str]:
    """The code of each definition in ``code`` with its docstring cut out, as the miner cuts it."""
    from codesieve.server.chunk.chunker import chunk_source

    from ..mining import code_without_doc

    extension = {"python": "py", "ruby": "rb"}.get(language, "txt")
    try:
        chunks = chunk_source(f"benchmark.{extension}", code, language)
    except Exception:  # a benchmark snippet tree-sitter cannot take: the raw code key still applies
        return []
    return [code_without_doc(chunk) for chunk in chunks if chunk.kind in ("function", "method")]


_PY_DOCSTRING = re.compile(r'(:\s*\n?\s*)[rRuU]?("""|\'\'\')(?:.|\n)*?\2', re.MULTILINE)


@dataclass
class Contamination:
    """Code keys, normalised queries and repositories of the benchmarks: what the corpus must not hold."""

    code_keys: set[str] = field(default_factory=set)
    queries: set[str] = field(default_factory=set)
    repositories: set[str] = field(default_factory=set)  # "owner/name", lower case
    repository_names: set[str] = field(default_factory=set)  # normalised names
    files: list[str] = field(default_factory=list)

    def add_code(self, code: str, language: str) -> None:
        """Index one benchmark code: as given, with its docstring cut, and its definitions' bodies."""
        from ..negatives import code_key

        self.code_keys.add(code_key(code))
        if language == "python":
            self.code_keys.add(code_key(_PY_DOCSTRING.sub(r"\1", code, count=1)))
        for stripped in _doc_stripped_codes(code, language):
            self.code_keys.add(code_key(stripped))

    def add_query(self, text: str) -> None:
        """Index one benchmark query or docstring."""
        normalised = normalise_query(text)
        if normalised:
            self.queries.add(normalised)

    def add_repository(self, repo: str) -> None:
        """Index one benchmark repository, ``owner/name``."""
        repo = repo.strip().lower().removesuffix(".git")
        if repo:
            self.repositories.add(repo)
            self.repository_names.add(normalise_package_name(repo.rsplit("/", 1)[-1]))

    def package_reason(self, package: Package) -> str | None:
        """Why a package must be left out (its repository is a benchmark's), or None."""
        repo = repository_slug(package.repository)
        if repo and repo in self.repositories:
            return f"repository {repo} is a benchmark repository"
        name = normalise_package_name(package.name)
        if name in self.repository_names:
            return f"package name {package.name!r} matches a benchmark repository's name"
        return None


def normalise_package_name(name: str) -> str:
    """A package or repository name without registry prefixes and suffixes, ``-`` for ``_`` and ``.``.

    ``ruby-net-ssh`` and ``net-ssh``, ``travis.rb`` and ``travis``, ``golang-github-x-y-dev`` and ``y``
    compare equal.
    """
    name = name.lower().rsplit("/", 1)[-1]
    name = re.sub(r"[_.\s]+", "-", name)
    for prefix in ("ruby-", "python3-", "python-", "node-", "librust-", "golang-"):
        name = name.removeprefix(prefix)
    for suffix in ("-dev", "-rb", "-ruby", "-gem", "-py", "-js"):
        name = name.removesuffix(suffix)
    if name.startswith(("github-", "gitlab-")):  # golang-github-owner-name-dev: keep the last part
        name = name.rsplit("-", 1)[-1]
    return name


def load_contamination(benchmarks: Path) -> Contamination:
    """Everything in every JSONL file of the benchmark folders (CoSQA, CSN Ruby; all splits)."""
    found = Contamination()
    for path in sorted(Path(benchmarks).rglob("*.jsonl")):
        found.files.append(str(path.relative_to(benchmarks)))
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                row = json.loads(line)
                language = str(
                    row.get("language", "") or ("ruby" if "ruby" in path.parent.name else "python")
                )
                if isinstance(row.get("code"), str):
                    found.add_code(row["code"], language)
                for name in ("query", "docstring"):
                    if isinstance(row.get(name), str):
                        found.add_query(row[name])
                if isinstance(row.get("repo"), str):
                    found.add_repository(row["repo"])
                if isinstance(row.get("url"), str) and (slug := repository_slug(row["url"])):
                    found.add_repository(slug)
    return found


def decontaminate(
    pairs: Iterable[dict[str, str]], contamination: Contamination, seen: set[str]
) -> tuple[list[dict[str, str]], Counter[str]]:
    """Pairs that match no benchmark code or query and no code in ``seen`` (updated), and drop counts."""
    from ..negatives import code_key

    kept: list[dict[str, str]] = []
    dropped: Counter[str] = Counter()
    for pair in pairs:
        key = code_key(pair["code"])
        if key in contamination.code_keys:
            dropped["benchmark-code"] += 1
        elif normalise_query(pair["query"]) in contamination.queries:
            dropped["benchmark-query"] += 1
        elif key in seen:
            dropped["duplicate-of-earlier-package"] += 1
        else:
            seen.add(key)
            kept.append(pair)
    return kept, dropped
