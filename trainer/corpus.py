"""Build the training corpus: (description, code) pairs mined from pinned registry packages.

    python -m codesieve.trainer.corpus build --manifest data/corpus/manifest.json --out ~/.cache/codesieve-corpus
    python -m codesieve.trainer.corpus pin --manifest data/corpus/manifest.json [NAME ...]
    python -m codesieve.trainer.corpus check --manifest data/corpus/manifest.json

The manifest (``data/corpus/manifest.json``) pins every package: ``{name, registry, version, licence,
sha256, repository, language}``, registry one of ``pypi`` (a source distribution, ``pip download
--no-deps --no-binary :all:``), ``npm`` (``npm pack``) or ``debian`` (``apt-get download``; the binary
packages of Go, Rust and Ruby libraries carry their sources). ``build``:

1. downloads each package with its registry's own client into ``OUT/archives`` (skipped when a file
   there already has the pinned sha256) and refuses an archive whose sha256 differs from the pin;
2. extracts it safely (``tarfile`` with the ``data`` filter, ``zipfile`` with path checks, a ``.deb``'s
   ``data.tar`` the same way) into ``OUT/sources``;
3. mines pairs with :func:`codesieve.trainer.mining.mine_repository` (cached in ``OUT/mined`` by archive
   hash and miner version), tags each with package, version, registry, licence and language;
4. decontaminates against every file of the shared benchmarks (CoSQA and CSN Ruby, all splits): a
   package whose repository is a CSN Ruby benchmark repository (by URL, or by the package's name
   against the benchmark repositories' names) is dropped whole; a pair is dropped when its code
   matches any benchmark code (``negatives.code_key``, the code as given and with its docstring cut
   out) or its description matches any benchmark query or docstring (lower-cased words);
5. drops a pair whose code an earlier package (manifest order) already gave;
6. writes ``OUT/pairs.jsonl`` (manifest order, then path order) and ``OUT/corpus-report.json``.

Output is deterministic: the same manifest, miner and benchmarks give byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import Any

REGISTRIES = ("pypi", "npm", "debian")
LANGUAGES = ("python", "javascript", "typescript", "go", "ruby", "rust", "java")
MANIFEST_FIELDS = ("name", "registry", "version", "licence", "sha256", "repository", "language")
CACHE_FORMAT = 1  # bump to invalidate OUT/mined

# Licence identifiers accepted as permissive (compared case-insensitively, as whole words).
PERMISSIVE = (
    "MIT",
    "MIT-0",
    "X11",
    "Expat",
    "BSD",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "0BSD",
    "Apache",
    "Apache-2.0",
    "Apache-2",
    "ISC",
    "PSF",
    "PSF-2.0",
    "Python-2.0",
    "Zlib",
    "Unlicense",
    "CC0-1.0",
    "Ruby",
    "BSD-2-clause",
    "BSD-3-clause",
)
COPYLEFT = re.compile(r"\b(?:A?GPL|LGPL|MPL|EPL|CDDL|EUPL|OSL|CC-BY-SA|SSPL|Artistic)", re.IGNORECASE)


class ManifestError(ValueError):
    """A manifest that does not validate; the message lists every problem."""


@dataclass(frozen=True)
class Package:
    """One pinned package of the manifest."""

    name: str
    registry: str
    version: str
    licence: str
    sha256: str
    repository: str
    language: str

    @property
    def key(self) -> str:
        """``registry:name@version``, unique in a manifest."""
        return f"{self.registry}:{self.name}@{self.version}"

    @property
    def slug(self) -> str:
        """A file-name-safe form of the key."""
        return re.sub(r"[^A-Za-z0-9._+-]", "_", f"{self.registry}-{self.name}-{self.version}")


# --------------------------------------------------------------------------------------------------
# Manifest


def is_permissive(licence: str) -> bool:
    """Whether an SPDX-like licence expression allows permissive use.

    ``A OR B`` is permissive when one side is; ``A AND B`` when both are. Any copyleft name (GPL, LGPL,
    MPL, EPL ...) inside a conjunct makes that conjunct non-permissive.
    """
    text = licence.strip().strip("()")
    if not text:
        return False
    for alternative in re.split(r"\s+OR\s+|\s*/\s*|\s+or\s+", text):
        parts = [part.strip().strip("()") for part in re.split(r"\s+AND\s+|\s+and\s+", alternative)]
        if parts and all(_permissive_term(part) for part in parts):
            return True
    return False


def _permissive_term(term: str) -> bool:
    if not term or COPYLEFT.search(term):
        return False
    words = {word.lower() for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9.+-]*", term)}
    words |= {word.rstrip("+").lower() for word in words}
    return any(name.lower() in words for name in PERMISSIVE)


def validate_manifest(data: Any, *, require_pins: bool = True) -> list[Package]:
    """The manifest's packages; ManifestError listing every problem.

    With ``require_pins`` False, version, sha256, licence and repository may be empty (a manifest
    waiting for ``pin``).
    """
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("packages"), list):
        raise ManifestError('manifest must be a JSON object with a "packages" list')
    packages: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(data["packages"]):
        where = f"packages[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not an object")
            continue
        where = f"packages[{index}] ({entry.get('name', '?')})"
        unknown = sorted(set(entry) - set(MANIFEST_FIELDS) - {"note"})
        if unknown:
            problems.append(f"{where}: unknown fields {unknown}")
        values: dict[str, str] = {}
        for name in MANIFEST_FIELDS:
            value = entry.get(name, "")
            if not isinstance(value, str):
                problems.append(f"{where}: {name} must be a string")
                value = ""
            values[name] = value.strip()
        if not values["name"]:
            problems.append(f"{where}: name is missing")
        if values["registry"] not in REGISTRIES:
            problems.append(f"{where}: registry must be one of {', '.join(REGISTRIES)}")
        if values["language"] not in LANGUAGES:
            problems.append(f"{where}: language must be one of {', '.join(LANGUAGES)}")
        pinned = require_pins or any(values[name] for name in ("sha256", "version"))
        if pinned:
            if not values["version"]:
                problems.append(f"{where}: version is missing (run `pin`)")
            if not re.fullmatch(r"[0-9a-f]{64}", values["sha256"]):
                problems.append(f"{where}: sha256 must be 64 lower-case hex digits (run `pin`)")
            if not values["repository"]:
                problems.append(f"{where}: repository is missing")
        if (pinned or values["licence"]) and not is_permissive(values["licence"]):
            problems.append(f"{where}: licence {values['licence']!r} is not a permissive licence")
        identity = (values["registry"], values["name"])
        if identity in seen:
            problems.append(f"{where}: {identity[0]}:{identity[1]} is listed twice")
        seen.add(identity)
        packages.append(Package(**values))
    if problems:
        raise ManifestError("invalid manifest:\n  " + "\n  ".join(problems))
    return packages


def load_manifest(path: Path, *, require_pins: bool = True) -> tuple[dict[str, Any], list[Package]]:
    """The manifest's JSON and its validated packages."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data, validate_manifest(data, require_pins=require_pins)


def write_manifest(path: Path, data: dict[str, Any]) -> None:
    """Write the manifest with a stable layout (two-space indent, fields in MANIFEST_FIELDS order)."""
    ordered = dict(data)
    ordered["packages"] = [
        {name: entry.get(name, "") for name in MANIFEST_FIELDS}
        | ({"note": entry["note"]} if entry.get("note") else {})
        for entry in data["packages"]
    ]
    _write_atomic(Path(path), json.dumps(ordered, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------------
# Download and extraction


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: Sequence[str], cwd: Path) -> str:
    result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def fetch_archive(registry: str, name: str, version: str, workdir: Path) -> Path:
    """Download one package with its registry's client into an empty ``workdir``; the archive's path.

    ``version`` may be empty (``pin`` of a new package): the registry's current version is taken.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if registry == "pypi":
        spec = f"{name}=={version}" if version else name
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-q",
                "-d",
                ".",
                spec,
            ],
            workdir,
        )
    elif registry == "npm":
        spec = f"{name}@{version}" if version else name
        _run(["npm", "pack", "--silent", spec], workdir)
    elif registry == "debian":
        spec = f"{name}={version}" if version else name
        os.chmod(workdir, 0o777)
        _run(["apt-get", "download", "-q", spec], workdir)
    else:
        raise ValueError(f"unknown registry {registry!r}")
    files = [path for path in workdir.iterdir() if path.is_file()]
    if len(files) != 1:
        raise RuntimeError(f"expected one archive from {registry}:{name}, got {[p.name for p in files]}")
    return files[0]


def download(package: Package, archives: Path) -> Path:
    """The package's archive under ``archives``, verified against the pinned sha256.

    A file already there with the right hash is reused (no network).
    """
    folder = archives / package.registry
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{package.slug}.sha256"
    if marker.exists():
        cached = folder / marker.read_text(encoding="utf-8").split()[1]
        if cached.exists() and sha256_file(cached) == package.sha256:
            return cached
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as temporary:
        fetched = fetch_archive(package.registry, package.name, package.version, Path(temporary))
        digest = sha256_file(fetched)
        if digest != package.sha256:
            raise RuntimeError(
                f"{package.key}: sha256 mismatch: downloaded {digest}, manifest pins {package.sha256}"
            )
        target = folder / fetched.name
        os.replace(fetched, target)
    _write_atomic(marker, f"{package.sha256} {target.name}\n")
    return target


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


def _extract_tar(
    fileobj: io.BufferedIOBase | io.BytesIO | None, target: Path, path: Path | None = None
) -> None:
    with tarfile.open(name=None if fileobj else path, fileobj=fileobj, mode="r:*") as archive:
        members = []
        for member in archive.getmembers():
            if not (member.isfile() or member.isdir()):
                continue  # links, devices, fifos: never needed for mining
            if not _safe_member(member.name):
                continue
            members.append(member)
        archive.extractall(target, members=members, filter="data")


def _extract_zip(path: Path, target: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir() or not _safe_member(info.filename):
                continue
            destination = (target / info.filename).resolve()
            if not destination.is_relative_to(target.resolve()):
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)


def _deb_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """The members of a Debian package (an ``ar`` archive): (name, bytes)."""
    data = path.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{path} is not a Debian package (no ar header)")
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        offset += 60
        yield name, data[offset : offset + size]
        offset += size + (size % 2)


def _extract_deb(path: Path, target: Path) -> None:
    for name, payload in _deb_members(path):
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):
            # tarfile cannot read zstd before Python 3.14: dpkg-deb can.
            subprocess.run(["dpkg-deb", "-x", str(path), str(target)], check=True)
            return
        _extract_tar(io.BytesIO(payload), target)
        return
    raise ValueError(f"{path} has no data.tar member")


def extract(archive: Path, target: Path) -> Path:
    """Extract ``archive`` into ``target`` (created whole, atomically; reused when complete)."""
    if (target / ".complete").exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    name = archive.name
    if name.endswith(".deb"):
        _extract_deb(archive, partial)
    elif name.endswith(".zip"):
        _extract_zip(archive, partial)
    elif re.search(r"\.(tar(\.(gz|bz2|xz))?|tgz|tbz2?)$", name):
        _extract_tar(None, partial, archive)
    else:
        raise ValueError(f"unknown archive type: {name}")
    for directory, _, _ in os.walk(partial):
        os.chmod(directory, 0o755)
    (partial / ".complete").write_text(archive.name + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target


# --------------------------------------------------------------------------------------------------
# Metadata for `pin`


def detect_metadata(registry: str, root: Path) -> dict[str, str]:
    """Version, licence and repository found in an extracted package (missing keys: not found)."""
    if registry == "pypi":
        return _pypi_metadata(root)
    if registry == "npm":
        return _npm_metadata(root)
    return _debian_metadata(root)


_CLASSIFIER_LICENCES = {
    "MIT License": "MIT",
    "BSD License": "BSD",
    "Apache Software License": "Apache-2.0",
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "zlib/libpng License": "Zlib",
}


def _pypi_metadata(root: Path) -> dict[str, str]:
    candidates = sorted(root.glob("*/PKG-INFO")) or sorted(root.glob("PKG-INFO"))
    if not candidates:
        return {}
    headers = HeaderParser().parsestr(candidates[0].read_text(encoding="utf-8", errors="replace"))
    found: dict[str, str] = {"version": str(headers.get("Version", "")).strip()}
    licence = str(headers.get("License-Expression", "") or "").strip()
    if not licence:
        for classifier in headers.get_all("Classifier") or []:
            tail = str(classifier).rsplit("::", 1)[-1].strip()
            if str(classifier).startswith("License ::") and tail in _CLASSIFIER_LICENCES:
                licence = _CLASSIFIER_LICENCES[tail]
                break
    if not licence:
        short = str(headers.get("License", "") or "").strip()
        if short and "\n" not in short and len(short) < 60:
            licence = short
    if licence:
        found["licence"] = licence
    urls = [str(value).split(",", 1)[-1].strip() for value in headers.get_all("Project-URL") or []]
    urls.append(str(headers.get("Home-page", "") or "").strip())
    repository = next((url for url in urls if _code_host(url)), next((url for url in urls if url), ""))
    if repository:
        found["repository"] = repository
    return {key: value for key, value in found.items() if value}


def _npm_metadata(root: Path) -> dict[str, str]:
    manifest = root / "package" / "package.json"
    if not manifest.exists():
        candidates = sorted(root.glob("*/package.json"))
        if not candidates:
            return {}
        manifest = candidates[0]
    data = json.loads(manifest.read_text(encoding="utf-8"))
    found = {"version": str(data.get("version", ""))}
    licence = data.get("license", "")
    if isinstance(licence, dict):
        licence = licence.get("type", "")
    if not licence and isinstance(data.get("licenses"), list):
        licence = " OR ".join(
            str(item.get("type", "")) for item in data["licenses"] if isinstance(item, dict)
        )
    found["licence"] = str(licence)
    repository = data.get("repository", "")
    if isinstance(repository, dict):
        repository = repository.get("url", "")
    repository = str(repository)
    if re.fullmatch(r"(github:)?[\w.-]+/[\w.-]+", repository):
        repository = "https://github.com/" + repository.removeprefix("github:")
    found["repository"] = repository or str(data.get("homepage", ""))
    return {key: value for key, value in found.items() if value}


def _debian_metadata(root: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    copyrights = sorted(root.glob("usr/share/doc/*/copyright"))
    if copyrights:
        text = copyrights[0].read_text(encoding="utf-8", errors="replace")
        source = re.search(r"^Source:\s*(\S+)", text, re.MULTILINE)
        if source:
            found["repository"] = source.group(1)
        for paragraph in re.split(r"\n\s*\n", text):
            if re.search(r"^Files:\s*\*\s*$", paragraph, re.MULTILINE):
                licence = re.search(r"^License:\s*(.+)$", paragraph, re.MULTILINE)
                if licence:
                    found["licence"] = licence.group(1).strip()
                break
    return found


def clean_repository(url: str) -> str:
    """A repository URL as ``https://host/owner/name`` when it is on a code host, else stripped."""
    url = url.strip()
    slug = repository_slug(url)
    if slug:
        host = re.search(r"(github\.com|gitlab\.com|bitbucket\.org|codeberg\.org)", url.lower())
        return f"https://{host.group(1) if host else 'github.com'}/{slug}"
    return url.rstrip("/")


def _code_host(url: str) -> bool:
    return bool(re.search(r"(github\.com|gitlab\.com|bitbucket\.org|codeberg\.org|sr\.ht)/", url))


# --------------------------------------------------------------------------------------------------
# Mining


def _miner_fingerprint() -> str:
    """A hash of the miner's code, so cached mining is redone when the miner changes."""
    from codesieve.server import chunking, languages, scanning

    from . import mining

    digest = hashlib.sha256(str(CACHE_FORMAT).encode())
    for module in (mining, chunking, scanning, languages):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class MinedPackage:
    """What mining one package gave, before decontamination."""

    pairs: list[dict[str, str]] = field(default_factory=list)
    files: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


def mine_package(package: Package, root: Path) -> MinedPackage:
    """Pairs of one extracted package, each tagged with the package, its registry, version and licence."""
    from .mining import mine_repository

    report = mine_repository(root)
    pairs = [
        {
            "id": f"{package.registry}:{package.name}@{package.version}:{pair.id}",
            "query": pair.query,
            "code": pair.code,
            "language": pair.language,
            "path": pair.path,
            "name": pair.name,
            "package": package.name,
            "registry": package.registry,
            "version": package.version,
            "licence": package.licence,
        }
        for pair in report.pairs
    ]
    return MinedPackage(pairs, report.files, dict(sorted(report.dropped.items())))


def _mine_cached(package: Package, root: Path, cache: Path, fingerprint: str) -> MinedPackage:
    path = cache / f"{package.slug}-{package.sha256[:12]}-{fingerprint}.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        return MinedPackage(data["pairs"], data["files"], data["dropped"])
    mined = mine_package(package, root)
    cache.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(asdict(mined), ensure_ascii=False))
    return mined


def _mine_job(args: tuple[Package, Path, Path, str]) -> MinedPackage:
    return _mine_cached(*args)


# --------------------------------------------------------------------------------------------------
# Decontamination


def normalise_query(text: str) -> str:
    """Lower-cased words joined by single spaces: how descriptions and benchmark queries are compared."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _doc_stripped_codes(code: str, language: str) -> list[str]:
    """The code of each definition in ``code`` with its docstring cut out, as the miner cuts it."""
    from codesieve.server.chunking import chunk_source

    from .mining import code_without_doc

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
        from .negatives import code_key

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


def repository_slug(url: str) -> str:
    """``owner/name`` (lower case) of a GitHub/GitLab/... URL, else ""."""
    match = re.search(
        r"(?:github\.com|gitlab\.com|bitbucket\.org|codeberg\.org)[/:]([^/\s]+)/([^/\s#?]+)", url.lower()
    )
    if not match:
        return ""
    return f"{match.group(1)}/{match.group(2).removesuffix('.git')}"


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
    from .negatives import code_key

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


# --------------------------------------------------------------------------------------------------
# Build


def build(
    manifest: Path,
    out: Path,
    benchmarks: Path,
    *,
    jobs: int = 1,
    only: Sequence[str] = (),
    log: Any = sys.stderr,
) -> dict[str, Any]:
    """Download, verify, extract, mine and decontaminate every package; write pairs and report."""
    _, packages = load_manifest(manifest)
    if only:
        packages = [package for package in packages if package.name in set(only)]
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    contamination = load_contamination(benchmarks)
    print(
        f"benchmarks: {len(contamination.code_keys)} code keys, {len(contamination.queries)} queries, "
        f"{len(contamination.repositories)} repositories from {len(contamination.files)} files",
        file=log,
        flush=True,
    )
    excluded: list[dict[str, str]] = []
    work: list[tuple[Package, Path]] = []
    for number, package in enumerate(packages, start=1):
        reason = contamination.package_reason(package)
        if reason is not None:
            excluded.append({"package": package.key, "reason": reason})
            print(f"[{number}/{len(packages)}] {package.key}: excluded, {reason}", file=log, flush=True)
            continue
        archive = download(package, out / "archives")
        root = extract(archive, out / "sources" / package.slug)
        print(f"[{number}/{len(packages)}] {package.key}: {archive.name} verified", file=log, flush=True)
        work.append((package, root))
    fingerprint = _miner_fingerprint()
    args = [(package, root, out / "mined", fingerprint) for package, root in work]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            mined = list(pool.map(_mine_job, args))
    else:
        mined = [_mine_job(arg) for arg in args]

    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    package_reports: list[dict[str, Any]] = []
    for (package, _), result in zip(work, mined, strict=True):
        kept, dropped = decontaminate(result.pairs, contamination, seen)
        rows.extend(kept)
        languages = Counter(pair["language"] for pair in kept)
        package_reports.append(
            {
                "package": package.name,
                "registry": package.registry,
                "version": package.version,
                "language": package.language,
                "licence": package.licence,
                "files": result.files,
                "mined": len(result.pairs),
                "kept": len(kept),
                "dropped": {reason: dropped[reason] for reason in sorted(dropped)},
                "kept_by_language": dict(sorted(languages.items())),
                "mining_dropped": result.dropped,
            }
        )
        print(
            f"{package.key}: mined {len(result.pairs)}, kept {len(kept)}, dropped {dict(sorted(dropped.items()))}",
            file=log,
            flush=True,
        )

    pairs_path = out / "pairs.jsonl"
    _write_atomic(pairs_path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    by_language = Counter(row["language"] for row in rows)
    packages_by_language = Counter(package.language for package, _ in work)
    dropped_total: Counter[str] = Counter()
    for report in package_reports:
        dropped_total.update(report["dropped"])
    report = {
        "manifest_sha256": sha256_file(manifest),
        "miner": fingerprint,
        "benchmark_files": contamination.files,
        "pairs": len(rows),
        "pairs_sha256": sha256_file(pairs_path),
        "pairs_by_language": dict(sorted(by_language.items())),
        "packages_by_language": dict(sorted(packages_by_language.items())),
        "dropped": dict(sorted(dropped_total.items())),
        "excluded_packages": excluded,
        "packages": package_reports,
    }
    _write_atomic(out / "corpus-report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def _pin_one(registry: str, name: str, version: str, out: Path) -> tuple[str, dict[str, str], str]:
    """Download one package: its sha256, the metadata found in it, and the archive's file name."""
    with tempfile.TemporaryDirectory(prefix="pin-") as temporary:
        fetched = fetch_archive(registry, name, version, Path(temporary) / "download")
        digest = sha256_file(fetched)
        root = extract(fetched, Path(temporary) / "source")
        found = detect_metadata(registry, root)
        if registry == "debian":
            found["version"] = _deb_version(fetched)
        folder = Path(out).expanduser() / "archives" / registry
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(fetched, folder / fetched.name)
        return digest, found, fetched.name


def pin(manifest: Path, out: Path, names: Sequence[str] = (), *, jobs: int = 4, log: Any = sys.stderr) -> int:
    """Fill version, sha256, licence and repository of unpinned (or named) packages from a download.

    A package with a version keeps it; one without gets the registry's current version. Returns how
    many packages failed; the manifest is rewritten after each package, so an interrupted pin keeps
    what it did.
    """
    data, _ = load_manifest(manifest, require_pins=False)
    wanted = [
        entry for entry in data["packages"] if (entry["name"] in names if names else not entry.get("sha256"))
    ]
    failures = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(_pin_one, entry["registry"], entry["name"], entry.get("version", ""), out): entry
            for entry in wanted
        }
        for future in as_completed(futures):
            entry = futures[future]
            registry, name = entry["registry"], entry["name"]
            try:
                digest, found, filename = future.result()
            except (RuntimeError, ValueError, OSError, tarfile.TarError, zipfile.BadZipFile) as error:
                failures += 1
                print(f"{registry}:{name}: FAILED {error}", file=log, flush=True)
                continue
            entry["version"] = entry.get("version") or found.get("version", "")
            entry["sha256"] = digest
            for key in ("licence", "repository"):
                if not entry.get(key):
                    entry[key] = found.get(key, "")
            entry["repository"] = clean_repository(entry["repository"])
            slug = Package(**{key: entry.get(key, "") for key in MANIFEST_FIELDS}).slug
            folder = Path(out).expanduser() / "archives" / registry
            _write_atomic(folder / f"{slug}.sha256", f"{digest} {filename}\n")
            permissive = "" if is_permissive(entry["licence"]) else "  NOT PERMISSIVE"
            print(
                f"{registry}:{name}@{entry['version']} sha256 {digest[:12]} licence {entry['licence']!r}"
                f"{permissive} repository {entry['repository']}",
                file=log,
                flush=True,
            )
            write_manifest(manifest, data)
    return failures


def _deb_version(path: Path) -> str:
    for name, payload in _deb_members(path):
        if name.startswith("control.tar"):
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as archive:
                for member in archive.getmembers():
                    if member.name.lstrip("./") == "control":
                        handle = archive.extractfile(member)
                        text = handle.read().decode("utf-8") if handle else ""
                        match = re.search(r"^Version:\s*(\S+)", text, re.MULTILINE)
                        return match.group(1) if match else ""
    return ""


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# --------------------------------------------------------------------------------------------------
# Command line


def _default_benchmarks() -> Path:
    from .benchmarks import find_benchmarks_root

    return find_benchmarks_root()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m codesieve.trainer.corpus`` command."""
    parser = argparse.ArgumentParser(
        prog="python -m codesieve.trainer.corpus",
        description="Build CodeSieve's training corpus: (docstring sentence, code) pairs mined from permissively "
        "licensed packages pinned in a manifest (PyPI source distributions, npm tarballs, Debian packages), "
        "decontaminated against the shared benchmarks (CoSQA, CSN Ruby).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build_parser = commands.add_parser(
        "build",
        help="download, verify, extract, mine and decontaminate every pinned package",
        description="Download each pinned package with its registry's client (cached: an archive already "
        "verified is not fetched again), check its sha256 against the manifest, extract it safely, mine pairs "
        "with trainer.mining, drop packages from benchmark repositories and pairs whose code or description "
        "matches any benchmark row (all splits), and write OUT/pairs.jsonl and OUT/corpus-report.json.",
    )
    build_parser.add_argument("--manifest", type=Path, default=Path("data/corpus/manifest.json"))
    build_parser.add_argument(
        "--out", type=Path, default=Path("~/.cache/codesieve-corpus"), help="output and cache folder"
    )
    build_parser.add_argument(
        "--benchmarks",
        type=Path,
        help="benchmarks folder (default: $CODESIEVE_BENCHMARKS or shared/benchmarks)",
    )
    build_parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mining processes")
    build_parser.add_argument("--only", nargs="*", default=(), help="build only these package names")

    pin_parser = commands.add_parser(
        "pin",
        help="fill version, sha256, licence and repository of packages from a download",
        description="For each package without a sha256 (or each NAME given), download it (the version given, else "
        "the registry's current one), record its sha256 and version, and fill an empty licence or repository "
        "from its metadata (PKG-INFO, package.json, debian/copyright). Rewrites the manifest.",
    )
    pin_parser.add_argument("names", nargs="*", help="package names to (re)pin")
    pin_parser.add_argument("--manifest", type=Path, default=Path("data/corpus/manifest.json"))
    pin_parser.add_argument(
        "--out", type=Path, default=Path("~/.cache/codesieve-corpus"), help="cache folder"
    )
    pin_parser.add_argument("--jobs", type=int, default=4, help="parallel downloads")

    check_parser = commands.add_parser("check", help="validate the manifest (schema, pins, licences)")
    check_parser.add_argument("--manifest", type=Path, default=Path("data/corpus/manifest.json"))

    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            _, packages = load_manifest(args.manifest)
            counts = Counter(package.language for package in packages)
            print(f"{len(packages)} packages: {dict(sorted(counts.items()))}")
            return 0
        if args.command == "pin":
            return 1 if pin(args.manifest, args.out, args.names, jobs=args.jobs) else 0
        report = build(
            args.manifest,
            args.out,
            args.benchmarks or _default_benchmarks(),
            jobs=max(1, args.jobs),
            only=args.only,
        )
    except (ManifestError, RuntimeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({key: report[key] for key in ("pairs", "pairs_by_language", "dropped", "pairs_sha256")}))
    print(Path(args.out).expanduser() / "pairs.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
