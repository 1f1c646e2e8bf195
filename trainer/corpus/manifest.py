"""The corpus manifest: its schema, validation, licence policy and stable rewriting.

``data/corpus/manifest.json`` pins every package as ``{name, registry, version, licence, sha256,
repository, language}`` (plus an optional ``note``); see ``build.py`` for how a build uses it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRIES = ("pypi", "npm", "debian")
LANGUAGES = ("python", "javascript", "typescript", "go", "ruby", "rust", "java")
MANIFEST_FIELDS = ("name", "registry", "version", "licence", "sha256", "repository", "language")

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
    write_atomic(Path(path), json.dumps(ordered, indent=2, ensure_ascii=False) + "\n")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
