"""Every setting, declared once with its default and bounds, and the one converter that checks them.

A setting is a field of `Settings`: its name over LSP (and in the editor, as `codesieve.<name>`) is the
field name in camelCase (`index_dir` is `indexDir`), its type says how a value is read, and an
integer's or a number's bounds are in the field's metadata. The CLI and the language server
(`initializationOptions`, `workspace/didChangeConfiguration`) both go through `from_mapping`. An
invalid value never stops the server: the default stays, with a message that says what was wrong.
editor-client/package.json declares the same settings; tests/cli/test_settings.py compares the two.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

Number = TypeVar("Number", int, float)


def default_onnx_threads() -> int:
    """Threads for ONNX Runtime: all cores up to four."""
    return max(1, min(4, os.cpu_count() or 1))


def _bounded(default: Number, lowest: Number, highest: Number) -> Number:
    """A field whose values must lie in [lowest, highest]."""
    bounded: Number = field(default=default, metadata={"bounds": (lowest, highest)})
    return bounded


@dataclass(frozen=True)
class Settings:
    """Everything a user can set, with its default."""

    model: Path | None = None  # model folder; None = the workspace's trained model, else the shipped default
    index_dir: Path | None = None  # where indexes live; None = the user cache directory
    retrieve_depth: int = _bounded(100, 1, 10_000)  # N: candidates the dual encoder retrieves
    rerank_depth: int = _bounded(10, 1, 1_000)  # K: how many of them the cross-encoder reorders
    max_file_size: int = _bounded(1_000_000, 1, 1 << 30)  # bytes; larger files are skipped and counted
    exclude: tuple[str, ...] = ()  # gitignore-style globs excluded on top of .gitignore files
    threads: int = field(default_factory=default_onnx_threads, metadata={"bounds": (1, 256)})  # ONNX Runtime
    batch_size: int = _bounded(64, 1, 10_000)  # chunks per indexing group (one transaction)
    poll_interval: float = _bounded(3.0, 0.0, 3600.0)  # seconds between polls, for clients that cannot watch
    # files; 0 = off. A setting of the language server: changing it reopens no folder.

    def same_workspaces(self, other: Settings) -> bool:
        """Whether a Workspace opened with these settings would be the same with `other`."""
        return replace(self, poll_interval=0.0) == replace(other, poll_interval=0.0)


def setting_name(attribute: str) -> str:
    """The LSP name of a field: `index_dir` -> `indexDir`."""
    first, *rest = attribute.split("_")
    return first + "".join(word.capitalize() for word in rest)


SETTINGS: dict[str, Field[Any]] = {setting_name(spec.name): spec for spec in fields(Settings)}
_TYPES = typing.get_type_hints(Settings)


def _path(name: str, value: Any) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a path string, got {value!r}")
    return Path(value).expanduser()


def _globs(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of glob strings, got {value!r}")
    return tuple(value)


def _in_bounds(name: str, value: Any, spec: Field[Any], kind: type) -> int | float:
    lowest, highest = spec.metadata["bounds"]
    accepted = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, accepted) or not lowest <= value <= highest:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name} must be {what} from {lowest} to {highest}, got {value!r}")
    return kind(value)  # type: ignore[no-any-return]


def read_setting(name: str, value: Any) -> Any:
    """The value of setting `name` (LSP name) read from `value`; ValueError says what is wrong."""
    spec, kind = SETTINGS[name], _TYPES[SETTINGS[name].name]
    if kind == Path | None:
        return _path(name, value)
    if kind == tuple[str, ...]:
        return _globs(name, value)
    return _in_bounds(name, value, spec, kind)


def from_mapping(settings: Mapping[str, Any], base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Apply LSP-style settings (camelCase keys) over `base`; returns the settings and error messages.

    Unknown keys and invalid values are reported and leave the default in place.
    """
    config = base or Settings()
    defaults = Settings()
    changes: dict[str, Any] = {}
    errors: list[str] = []
    for name, value in settings.items():
        if name not in SETTINGS:
            errors.append(f"Unknown CodeSieve setting {name!r} ignored; known: {', '.join(SETTINGS)}")
            continue
        attribute = SETTINGS[name].name
        try:
            changes[attribute] = read_setting(name, value)
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
