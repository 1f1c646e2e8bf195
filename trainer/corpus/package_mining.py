"""Mine one extracted package for (description, code) pairs, cached by archive hash and miner version."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .manifest import Package, write_atomic

CACHE_FORMAT = 2  # bump to invalidate OUT/mined


def miner_fingerprint() -> str:
    """A hash of the miner's code, so cached mining is redone when the miner changes."""
    from codesieve.server import languages
    from codesieve.server.chunk import (
        chunker,
        definition_roles,
        language_specs,
        leading_marks,
        text_positions,
    )
    from codesieve.server.scan import ignore_rules, safe_read, walk

    from .. import mining as pair_mining

    miner = (
        pair_mining,
        chunker,
        text_positions,
        definition_roles,
        language_specs,
        leading_marks,
        walk,
        ignore_rules,
        safe_read,
    )
    digest = hashlib.sha256(str(CACHE_FORMAT).encode())
    for module in (*miner, languages):
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
    from ..mining import mine_repository

    report = mine_repository(root)
    pairs = [
        {
            "id": f"{package.registry}:{package.name}@{package.version}:{pair.id}",
            "query": pair.query,
            "code": pair.code,
            "language": pair.language,
            "path": pair.path,
            "name": pair.name,
            "doc_code": pair.doc_code,
            "source": pair.source,
            "package": package.name,
            "registry": package.registry,
            "version": package.version,
            "licence": package.licence,
        }
        for pair in report.pairs
    ]
    return MinedPackage(pairs, report.files, dict(sorted(report.dropped.items())))


def mine_cached(package: Package, root: Path, cache: Path, fingerprint: str) -> MinedPackage:
    """``mine_package``, read from ``cache`` when this archive was mined by this miner before."""
    path = cache / f"{package.slug}-{package.sha256[:12]}-{fingerprint}.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        return MinedPackage(data["pairs"], data["files"], data["dropped"])
    mined = mine_package(package, root)
    cache.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(mined), ensure_ascii=False))
    return mined


def mine_job(args: tuple[Package, Path, Path, str]) -> MinedPackage:
    """``mine_cached`` with its arguments as one tuple, for ``ProcessPoolExecutor.map``."""
    return mine_cached(*args)
