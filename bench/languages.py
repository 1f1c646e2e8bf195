"""How many of a real project's definitions the chunker finds, per language, against Universal Ctags.

For each language split into definitions since the grammars of C, C++, C#, PHP, Kotlin, Swift, Lua and
shell came in, one real project, pinned by version and sha256 and fetched once with its registry's
own client into ~/.cache/codesieve-bench: PyPI, npm or Debian (`apt-get download`; run `apt-get
update` first if the pin is newer than the package lists; a source package's original archive comes
from the Debian pool over HTTP, since Debian builds Scala packages into jars). Universal Ctags (`apt-get install
universal-ctags`) tags the same files, forced to the same language, with the kinds the chunker makes
chunks of (functions, methods, classes, structs, unions, enums, interfaces, traits, objects; not
namespaces, which qualify names, nor fields, properties, macros or variables).

Tags that name nothing are left out and counted as ctags's noise: Kotlin's `<lambda>` and lambda
parameters that 5.9 tags as methods (`{ p0, p1 -> ... }`: a line with no `fun`, `class`, `interface` or
`object`), Lua lines its regex takes for a function that neither define (`function f(`) nor assign one
(`= function(`): `f = function_arg(f)`, `message = "function 'iter' was renamed"`,
and shell array assignments that it takes for functions (`_links=`). A tag is **found** when a definition chunk
containing its line has its name as the last part of the chunk's name, spaces aside (ctags's Lua
names keep their table, `M.add`: its last part is compared; `operator ()` is `operator()`). A **wrong
name** is a tag not found where a chunk's definition line (its first line that is not a comment,
attribute or blank) is the tag's line: the chunker gave that definition another name. A **wrong
qualifier** is a found tag whose ctags scope ends in another name than the part before the chunk's
own (Kotlin's package scopes aside: like Java's, packages qualify no names). Ctags 5.9 has no Swift or
Scala parser: for those two a line pattern is the reference (`REFERENCE`: a line that declares a
`func`/`def`, `class`, `struct`, `enum`, `protocol`, `trait` or `object`, modifiers before it), which
checks names but gives no scopes. Chunking speed is one thread, best of three
passes over the files read into memory: chunks a second, windows included. Embedding costs the same
per chunk in every language (`bench/cli_speed.py`: about 100 a second at one thread).

    python bench/languages.py                       # every language, 8 examples of each kind of miss
    python bench/languages.py --language csharp --examples 40
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from codesieve.server.chunk.chunker import Chunk, chunk_source
from codesieve.server.languages import language_for_path
from codesieve.trainer.corpus.fetch import extract, fetch_archive

CACHE = Path.home() / ".cache" / "codesieve-bench"
PASSES = 3
NOT_CODE = re.compile(r"^\s*(//|/\*|\*|#|--|@|\[|$)")  # comment, attribute or decorator, blank


# The reference for the languages ctags 5.9 cannot parse: one declaration a line, the name after its keyword.
MODIFIERS = r"(?:(?:@\w+(?:\([^)]*\))?|[a-z]+(?:\[\w.]+\])?|case)\s+)*"
REFERENCE = {
    "swift": re.compile(rf"^\s*{MODIFIERS}(?:func|class|struct|enum|protocol|actor)\s+([A-Za-z_]\w*)"),
    "scala": re.compile(rf"^\s*{MODIFIERS}(?:def|class|trait|object)\s+([A-Za-z_]\w*|`[^`]+`|[^\s\w\[(:]+)"),
}
DEBIAN_POOL = "http://deb.debian.org/debian/pool/main"


@dataclass(frozen=True)
class Project:
    registry: str  # pypi | npm | debian | debian-source (the pool's original archive)
    name: str
    version: str
    sha256: str  # of the archive the registry's client downloads
    ctags_language: str | None  # None: Universal Ctags 5.9 has no parser for it
    ctags_kinds: str = ""
    ctags_noise: str = ""  # a regex: a tag whose source line matches it names nothing


PROJECTS: dict[str, Project] = {
    "c": Project("pypi", "Brotli", "1.1.0", "81de08ac11bcb85841e440c13611c00b67d3bf82698314928d0b676362546724", "C", "fsug"),
    "cpp": Project("debian", "libcli11-dev", "2.1.2+ds-1", "f1f6ee9ec053e0e0bcec47345e241b6a8ee006321248b4329e9ce88d2b4b64a8", "C++", "fcsug"),
    "csharp": Project("pypi", "pythonnet", "3.0.5", "48e43ca463941b3608b32b4e236db92d8d40db4c58a75ace902985f76dac21cf", "C#", "csigm"),
    "php": Project("debian", "php-monolog", "2.9.1-1", "f8a26688b521e33cf6ef73b75ae5eac0cb026d986a336161456dd37dbb710681", "PHP", "cift"),
    "kotlin": Project("npm", "expo-modules-core", "2.5.0", "2c9e84e55906407f4761deebb99dd7b4004701661b88df390c4569d65ce3ad8c", "Kotlin", "ciom", ctags_noise=r"^(?!.*\b(fun|class|interface|object)\b)"),
    "swift": Project("npm", "@capacitor/ios", "7.4.3", "9f21078815684e66fd9f5f542796652c251a378dcb41eee417540f2f5714b629", None),
    # json4s 3.2.10 as Debian 12 packages it (Apache-2.0): the binary package is a jar, the source package keeps the sources
    "scala": Project("debian-source", "json4s", "3.5.1+really3.2.10", "7b0dd89a60bddd59152a90d8756f91afd89bd614e492f060c5910367354b4cc1", None),
    "lua": Project("debian", "lua-penlight", "1.13.1-3", "69918434ee650d06aa470d49ba05a1a16ae43e66b8216e135cc5075f7d5d9ff3", "Lua", "f", ctags_noise=r"^(?!.*(\bfunction\s+[\w.:]+\s*\(|=\s*function\s*\())"),
    # dracut-core is built per architecture: this is the amd64 package's digest
    "shell": Project("debian", "dracut-core", "059-4", "d0598a5f7b5dcdd1172303a9da4c156a2b6df75fd85a97bc3d228bfafa5f39f9", "Sh", "f"),
}  # fmt: skip


@dataclass(frozen=True)
class Tag:
    path: str
    name: str
    line: int
    scope: str  # the enclosing scope's last name, "" at top level or in a package


def fetch(project: Project) -> Path:
    """Download the pinned archive once, check its sha256 and unpack it; the unpacked folder."""
    folder = CACHE / f"{project.name.replace('/', '+')}-{project.version}"
    if not (folder / ".complete").exists():
        with tempfile.TemporaryDirectory() as download:
            if project.registry == "debian-source":
                archive = Path(download) / f"{project.name}_{project.version}.orig.tar.xz"
                url = f"{DEBIAN_POOL}/{project.name[0]}/{project.name}/{archive.name}"
                with urllib.request.urlopen(url, timeout=60) as response:
                    archive.write_bytes(response.read())
            else:
                archive = fetch_archive(project.registry, project.name, project.version, Path(download))
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
            if digest != project.sha256:
                sys.exit(f"{archive.name}: sha256 {digest}, pinned {project.sha256}; not used")
            extract(archive, folder)
    return folder


def sources(folder: Path, language: str) -> dict[str, str]:
    """The project's files of one language (as the scanner names languages), by relative path."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and language_for_path(path.name) == language:
            files[path.relative_to(folder).as_posix()] = path.read_text("utf-8", "surrogateescape")
    return files


def ctags(folder: Path, paths: list[str], project: Project) -> tuple[list[Tag], int]:
    """Universal Ctags's tags of the given kinds, the files forced to the project's language, and
    how many tags were left out as naming nothing."""
    assert project.ctags_language is not None
    command = [
        "ctags",
        f"--language-force={project.ctags_language}",
        f"--kinds-{project.ctags_language}={project.ctags_kinds}",
        "--output-format=json",
        "--fields=+nKs",
        "-f",
        "-",
        *paths,
    ]
    output = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout
    tags, noise = [], 0
    for line in output.splitlines():
        entry = json.loads(line)
        if entry.get("_type") != "tag" or entry["name"].startswith("__anon"):
            continue
        line_text = entry.get("pattern", "")
        if (
            not re.search(r"\w", entry["name"])
            or entry["name"] == "<lambda>"
            or "=" in entry["name"]
            or (project.ctags_noise and re.search(project.ctags_noise, line_text))
        ):
            noise += 1
            continue
        in_package = entry.get("scopeKind") == "package"
        scope = "" if in_package else re.split(r"::|[.\\:]", entry.get("scope", ""))[-1]
        tags.append(Tag(entry["path"], entry["name"], int(entry["line"]), scope))
    return tags, noise


def line_tags(files: dict[str, str], pattern: re.Pattern[str]) -> list[Tag]:
    """The line pattern's tags: each line that declares a definition, with its name and no scope."""
    return [
        Tag(path, match.group(1), number, "")
        for path, text in files.items()
        for number, line in enumerate(text.split("\n"), 1)
        if (match := pattern.match(line))
    ]


def last_part(name: str) -> str:
    return "".join(re.split(r"[.:]", name)[-1].split())


def definition_line(chunk: Chunk) -> int:
    """The chunk's first line that is neither comment, attribute nor blank (1-based)."""
    for offset, line in enumerate(chunk.text.split("\n")):
        if not NOT_CODE.match(line):
            return chunk.start_line + offset
    return chunk.start_line


def compare(tags: list[Tag], chunks: dict[str, list[Chunk]], examples: int) -> dict[str, object]:
    """Found, wrong-name and wrong-qualifier counts of the tags, with examples of each miss."""
    found = wrong_name = wrong_scope = 0
    shown: dict[str, list[str]] = {"missed": [], "wrong name": [], "wrong qualifier": []}
    for tag in tags:
        definitions = [c for c in chunks.get(tag.path, []) if c.kind != "window"]
        holding = [c for c in definitions if c.start_line <= tag.line <= c.end_line]
        named = [c for c in holding if last_part(c.name) == last_part(tag.name)]
        if named:
            found += 1
            chunk = min(named, key=lambda c: c.end_line - c.start_line)
            owners = chunk.name.split(".")[:-1]
            if tag.scope and (not owners or owners[-1] != tag.scope):
                wrong_scope += 1
                shown["wrong qualifier"].append(
                    f"{tag.path}:{tag.line} {tag.scope}.{tag.name} -> {chunk.name}"
                )
            continue
        at_line = [c for c in definitions if definition_line(c) == tag.line]
        if at_line:
            wrong_name += 1
            shown["wrong name"].append(f"{tag.path}:{tag.line} {tag.name} -> {at_line[0].name}")
        else:
            shown["missed"].append(f"{tag.path}:{tag.line} {tag.name}")
    return {
        "found": found,
        "wrong_name": wrong_name,
        "wrong_scope": wrong_scope,
        "examples": {kind: lines[:examples] for kind, lines in shown.items()},
    }


def chunk_all(files: dict[str, str]) -> tuple[dict[str, list[Chunk]], float]:
    """Every file's chunks, and the best of PASSES timings of chunking them all."""
    best = float("inf")
    chunks: dict[str, list[Chunk]] = {}
    for _ in range(PASSES):
        started = time.perf_counter()
        chunks = {path: chunk_source(path, text) for path, text in files.items()}
        best = min(best, time.perf_counter() - started)
    return chunks, best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--language", action="append", choices=sorted(PROJECTS), help="only these (repeatable)"
    )
    parser.add_argument("--examples", type=int, default=8, help="examples of each kind of miss (default 8)")
    args = parser.parse_args()
    ctags_version = subprocess.run(["ctags", "--version"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; {ctags_version}")
    rows, details = [], []
    for language in args.language or sorted(PROJECTS):
        project = PROJECTS[language]
        folder = fetch(project)
        files = sources(folder, language)
        chunks, seconds = chunk_all(files)
        total = sum(len(found) for found in chunks.values())
        definitions = Counter(c.kind for found in chunks.values() for c in found)
        windows = definitions.pop("window", 0)
        size = sum(len(text.encode("utf-8", "surrogateescape")) for text in files.values())
        coverage = wrong = "–"
        if project.ctags_language is not None or language in REFERENCE:
            if project.ctags_language is not None:
                tags, noise = ctags(folder, sorted(files), project)
            else:
                tags, noise = line_tags(files, REFERENCE[language]), 0
            result = compare(tags, chunks, args.examples)
            found, tagged = int(result["found"]), len(tags)  # type: ignore[call-overload]
            coverage = (
                f"{found}/{tagged} = {found / max(tagged, 1):.1%}"
                + (f" ({noise} noise)" if noise else "")
                + ("" if project.ctags_language else " (line pattern)")
            )
            wrong = f"{result['wrong_name']} / {result['wrong_scope']}"
            details.append((language, result["examples"]))
        rows.append(
            f"| {language} | {project.registry}: {project.name} {project.version} | {len(files)} files, "
            f"{size / 1e6:.2f} MB | {sum(definitions.values())} ({windows} windows) | {coverage} | {wrong} | "
            f"{total / seconds:,.0f} | {size / 1e6 / seconds:.2f} |"
        )
    print(
        "| language | project | source | definition chunks (+ windows) | ctags definitions found | "
        "wrong name / wrong qualifier | chunks/s, one thread | MB/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for language, examples in details:
        for kind, lines in examples.items():  # type: ignore[attr-defined]
            if lines:
                print(f"\n{language}, {kind}:\n  " + "\n  ".join(lines))
    print("\nreproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
