"""What an extracted package says about itself: version, licence and repository (for ``pin``)."""

from __future__ import annotations

import io
import json
import re
import tarfile
from email.parser import HeaderParser
from pathlib import Path

from .fetch import deb_members


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


def repository_slug(url: str) -> str:
    """``owner/name`` (lower case) of a GitHub/GitLab/... URL, else ""."""
    match = re.search(
        r"(?:github\.com|gitlab\.com|bitbucket\.org|codeberg\.org)[/:]([^/\s]+)/([^/\s#?]+)", url.lower()
    )
    if not match:
        return ""
    return f"{match.group(1)}/{match.group(2).removesuffix('.git')}"


def deb_version(path: Path) -> str:
    """The ``Version`` field of a Debian package's control file, or ""."""
    for name, payload in deb_members(path):
        if name.startswith("control.tar"):
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as archive:
                for member in archive.getmembers():
                    if member.name.lstrip("./") == "control":
                        handle = archive.extractfile(member)
                        text = handle.read().decode("utf-8") if handle else ""
                        match = re.search(r"^Version:\s*(\S+)", text, re.MULTILINE)
                        return match.group(1) if match else ""
    return ""
