"""The settings of a Workspace, with their defaults, validated in one place.

The CLI fills them from flags, the language server from `initializationOptions` and
`workspace/didChangeConfiguration`. An invalid value never stops the server: `from_mapping`
returns the default for it together with a message that says what was wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


def default_onnx_threads() -> int:
    """Threads for ONNX Runtime: all cores up to four."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    """Everything a user can set. Names are the LSP setting keys in camelCase."""

    model: Path | None = None  # model folder; None = the workspace's trained model, else the shipped default
    index_dir: Path | None = None  # where indexes live; None = the user cache directory
    retrieve_depth: int = 100  # N: candidates the dual encoder retrieves
    rerank_depth: int = 10  # K: how many of them the cross-encoder reorders
    max_file_size: int = 1_000_000  # bytes; larger files are skipped and counted
    exclude: tuple[str, ...] = ()  # gitignore-style globs excluded on top of .gitignore files
    threads: int = field(default_factory=default_onnx_threads)  # ONNX Runtime threads
    batch_size: int = 64  # chunks per indexing group (one transaction); the indexer yields between groups


SETTING_NAMES = {
    "model": "model",
    "indexDir": "index_dir",
    "retrieveDepth": "retrieve_depth",
    "rerankDepth": "rerank_depth",
    "maxFileSize": "max_file_size",
    "exclude": "exclude",
    "threads": "threads",
    "batchSize": "batch_size",
}


def _positive_int(name: str, value: Any, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= upper:
        raise ValueError(f"{name} must be an integer from 1 to {upper}, got {value!r}")
    return value


def _optional_path(name: str, value: Any) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a path string, got {value!r}")
    return Path(value).expanduser()


def _globs(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of glob strings, got {value!r}")
    return tuple(value)


def _parse(key: str, value: Any) -> Any:
    if key in ("model", "indexDir"):
        return _optional_path(key, value)
    if key == "exclude":
        return _globs(key, value)
    upper = {"retrieveDepth": 10_000, "rerankDepth": 1_000, "maxFileSize": 1 << 30, "threads": 256}
    return _positive_int(key, value, upper.get(key, 10_000))


def from_mapping(settings: Mapping[str, Any], base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Apply LSP-style settings (camelCase keys) over `base`; returns the config and error messages.

    Unknown keys and invalid values are reported and leave the default in place.
    """
    config = base or Settings()
    defaults = Settings()
    changes: dict[str, Any] = {}
    errors: list[str] = []
    for key, value in settings.items():
        attribute = SETTING_NAMES.get(key)
        if attribute is None:
            errors.append(f"Unknown CodeSieve setting {key!r} ignored; known: {', '.join(SETTING_NAMES)}")
            continue
        try:
            changes[attribute] = _parse(key, value)
        except ValueError as error:
            changes[attribute] = getattr(defaults, attribute)
            errors.append(f"Invalid CodeSieve setting: {error}; using the default {changes[attribute]!r}")
    config = replace(config, **changes)
    if config.rerank_depth > config.retrieve_depth:
        errors.append(
            f"rerankDepth {config.rerank_depth} is larger than retrieveDepth {config.retrieve_depth}; "
            f"reranking {config.retrieve_depth}"
        )
        config = replace(config, rerank_depth=config.retrieve_depth)
    return config, errors
