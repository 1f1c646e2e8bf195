"""The language server's status (`codeSearch/status`, `codeSearch/indexStatus`): typed, and its JSON.

A served folder has a `FolderStatus` (its state, and its workspace's summary once the workspace is
open); the server's `ServerStatus` adds them up over every folder and lists each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..workspace import WorkspaceSummary, combined_state


@dataclass(frozen=True)
class FolderStatus:
    """One served folder: its URI and root, its state, and what its open workspace holds."""

    uri: str
    root: str
    state: str  # indexing | ready | error
    summary: WorkspaceSummary | None = None  # None until the workspace is open
    last_synced: str | None = None
    last_error: str | None = None

    @property
    def files(self) -> int:
        return self.summary.files if self.summary else 0

    @property
    def chunks(self) -> int:
        return self.summary.chunks if self.summary else 0

    def to_json(self) -> dict[str, Any]:
        status: dict[str, Any] = {"uri": self.uri, "root": self.root, "state": self.state}
        if self.last_synced:
            status["lastSynced"] = self.last_synced
        if self.summary is not None:
            status |= self.summary.to_json()
        else:
            status |= {"files": 0, "chunks": 0, "model": None, "indexPath": None}
        if self.last_error:
            status["lastError"] = self.last_error
        return status


@dataclass(frozen=True)
class ServerStatus:
    """Every served folder's status, and their totals; `nested` maps a folder inside another (URI) to
    the one serving it."""

    folders: Sequence[FolderStatus]
    index_root: str
    nested: Mapping[str, str] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return combined_state([folder.state for folder in self.folders])

    def to_json(self) -> dict[str, Any]:
        summaries = [folder.summary for folder in self.folders if folder.summary is not None]
        index_path: str | None = self.index_root  # one folder: its own index, once open
        if len(self.folders) == 1:
            only = self.folders[0].summary
            index_path = only.index_path if only is not None else None
        status: dict[str, Any] = {
            "state": self.state,
            "files": sum(folder.files for folder in self.folders),
            "chunks": sum(folder.chunks for folder in self.folders),
            "model": next((summary.model for summary in summaries), None),
            "ranker": any(summary.ranker for summary in summaries),
            "indexPath": index_path,
            "folders": [folder.to_json() for folder in self.folders],
        }
        if self.nested:
            status["nestedFolders"] = [
                {"uri": inner, "servedBy": outer} for inner, outer in self.nested.items()
            ]
        synced = [folder.last_synced for folder in self.folders if folder.last_synced]
        if synced:
            status["lastSynced"] = max(synced)
        errors = [folder.last_error for folder in self.folders if folder.last_error]
        if errors:
            status["lastError"] = "; ".join(errors)
        return status
