"""Build the training corpus: (description, code) pairs mined from pinned registry packages.

    python -m codesieve.trainer.corpus build --manifest data/corpus/manifest.json --out ~/.cache/codesieve-corpus
    python -m codesieve.trainer.corpus pin --manifest data/corpus/manifest.json [NAME ...]
    python -m codesieve.trainer.corpus check --manifest data/corpus/manifest.json

The manifest (``data/corpus/manifest.json``) pins every package: ``{name, registry, version, licence,
sha256, repository, language}``, registry one of ``pypi`` (a source distribution, ``pip download
--no-deps --no-binary :all:``), ``npm`` (``npm pack``) or ``debian`` (``apt-get download``; the binary
packages of Go, Rust and Ruby libraries carry their sources). ``build`` first refuses, by name, a
package held out for independent measurement (its normalised name's sha256 is listed in the
benchmarks' ``holdout-sha256.txt``), then:

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

This module holds the build and pin orchestration and the command line; the steps live beside it:
``manifest.py`` (schema, validation, licences), ``fetch.py`` (registry clients,
safe extraction), ``package_metadata.py`` (what ``pin`` reads from a package), ``package_mining.py``
(mining one package, cached) and ``decontaminate.py`` (the benchmark checks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from codesieve.server.model.folder import sha256_file

from .decontaminate import (
    Contamination,
    decontaminate,
    held_out_packages,
    load_contamination,
    normalise_package_name,
    normalise_query,
)
from .fetch import extract, fetch_archive
from .manifest import (
    COPYLEFT,
    LANGUAGES,
    MANIFEST_FIELDS,
    PERMISSIVE,
    REGISTRIES,
    ManifestError,
    Package,
    is_permissive,
    load_manifest,
    validate_manifest,
    write_atomic,
    write_manifest,
)
from .package_metadata import clean_repository, detect_metadata, repository_slug
from .package_metadata import deb_version as _deb_version
from .package_mining import CACHE_FORMAT, MinedPackage, mine_job, mine_package, miner_fingerprint

__all__ = [
    "CACHE_FORMAT",
    "COPYLEFT",
    "LANGUAGES",
    "MANIFEST_FIELDS",
    "PERMISSIVE",
    "REGISTRIES",
    "Contamination",
    "ManifestError",
    "MinedPackage",
    "Package",
    "build",
    "clean_repository",
    "decontaminate",
    "detect_metadata",
    "download",
    "extract",
    "fetch_archive",
    "is_permissive",
    "load_contamination",
    "load_manifest",
    "main",
    "mine_package",
    "normalise_package_name",
    "normalise_query",
    "pin",
    "repository_slug",
    "sha256_file",
    "validate_manifest",
    "write_manifest",
]


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
    write_atomic(marker, f"{package.sha256} {target.name}\n")
    return target


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
    if held := held_out_packages([package.name for package in packages], benchmarks):
        raise ManifestError(
            f"{', '.join(held)}: held out of every training corpus so that quality can be measured on code the "
            f"model never saw (listed by hash in {Path(benchmarks) / 'holdout-sha256.txt'}); remove "
            f"{'it' if len(held) == 1 else 'them'} from {manifest}"
        )
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    contamination = load_contamination(benchmarks)
    print(
        f"benchmarks: {len(contamination.code_keys)} code keys, {len(contamination.queries)} queries, "
        f"{len(contamination.repositories)} repositories from {len(contamination.files)} files",
        file=log,
        flush=True,
    )
    excluded, work = _fetch_all(packages, contamination, out, log)
    fingerprint = miner_fingerprint()
    mined = _mine_all(work, out / "mined", fingerprint, jobs)

    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    package_reports: list[dict[str, Any]] = []
    for (package, _), result in zip(work, mined, strict=True):
        kept, dropped = decontaminate(result.pairs, contamination, seen)
        rows.extend(kept)
        package_reports.append(_package_report(package, result, kept, dropped))
        print(
            f"{package.key}: mined {len(result.pairs)}, kept {len(kept)}, dropped {dict(sorted(dropped.items()))}",
            file=log,
            flush=True,
        )

    return _write_outputs(out, manifest, fingerprint, contamination, rows, work, excluded, package_reports)


def _mine_all(
    work: Sequence[tuple[Package, Path]], cache: Path, fingerprint: str, jobs: int
) -> list[MinedPackage]:
    """Mine every extracted package (cached), in ``jobs`` processes when more than one."""
    args = [(package, root, cache, fingerprint) for package, root in work]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(mine_job, args))
    return [mine_job(arg) for arg in args]


def _write_outputs(
    out: Path,
    manifest: Path,
    fingerprint: str,
    contamination: Contamination,
    rows: list[dict[str, str]],
    work: Sequence[tuple[Package, Path]],
    excluded: list[dict[str, str]],
    package_reports: list[dict[str, Any]],
) -> dict[str, Any]:
    """Write ``OUT/pairs.jsonl`` and ``OUT/corpus-report.json``; the report."""
    pairs_path = out / "pairs.jsonl"
    write_atomic(pairs_path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    dropped_total: Counter[str] = Counter()
    for report in package_reports:
        dropped_total.update(report["dropped"])
    report = {
        "manifest_sha256": sha256_file(manifest),
        "miner": fingerprint,
        "benchmark_files": contamination.files,
        "pairs": len(rows),
        "pairs_sha256": sha256_file(pairs_path),
        "pairs_by_language": dict(sorted(Counter(row["language"] for row in rows).items())),
        "packages_by_language": dict(sorted(Counter(package.language for package, _ in work).items())),
        "dropped": dict(sorted(dropped_total.items())),
        "excluded_packages": excluded,
        "packages": package_reports,
    }
    write_atomic(out / "corpus-report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def _fetch_all(
    packages: Sequence[Package], contamination: Contamination, out: Path, log: Any
) -> tuple[list[dict[str, str]], list[tuple[Package, Path]]]:
    """Leave out benchmark packages; download, verify and extract the others. (excluded, to mine)."""
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
    return excluded, work


def _package_report(
    package: Package, result: MinedPackage, kept: list[dict[str, str]], dropped: Counter[str]
) -> dict[str, Any]:
    """One package's entry in the corpus report."""
    languages = Counter(pair["language"] for pair in kept)
    return {
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
            write_atomic(folder / f"{slug}.sha256", f"{digest} {filename}\n")
            permissive = "" if is_permissive(entry["licence"]) else "  NOT PERMISSIVE"
            print(
                f"{registry}:{name}@{entry['version']} sha256 {digest[:12]} licence {entry['licence']!r}"
                f"{permissive} repository {entry['repository']}",
                file=log,
                flush=True,
            )
            write_manifest(manifest, data)
    return failures


# --------------------------------------------------------------------------------------------------
# Command line


def _default_benchmarks() -> Path:
    from ..benchmarks import find_benchmarks_root

    return find_benchmarks_root()


def _parser() -> argparse.ArgumentParser:
    """The command line of ``python -m codesieve.trainer.corpus``: build, pin and check."""
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m codesieve.trainer.corpus`` command."""
    args = _parser().parse_args(argv)
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
