"""Which workspace folders the language server serves, and which of them holds a client's path.

A folder inside another one is not served on its own: the outer one indexes its files once and finds
them once, and `nested` remembers which folder serves it. Nothing here waits or talks to the client;
`WorkspaceFolders` (workspace_folders.py) opens, indexes and closes what this set hands it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import Settings, from_mapping
from ..workspace import real_path
from .indexed_folder import IndexedFolder
from .protocol import invalid_params, path_of, shown

log = logging.getLogger(__name__)


class FolderSet:
    """The served folders by URI, the nested ones, and the settings they are opened with."""

    def __init__(self, base: Settings) -> None:
        self.base = base  # from the command line; settings apply over it
        self.config = base
        self.served: dict[str, IndexedFolder] = {}
        self.nested: dict[str, str] = {}  # URI of a folder inside another -> URI of the one serving it

    def apply_settings(self, settings: Mapping[str, Any]) -> tuple[bool, list[str]]:
        """Take a settings object; returns whether the Workspaces must reopen, and error messages."""
        config, errors = from_mapping(settings, self.base)
        changed, self.config = not config.same_workspaces(self.config), config
        return changed, errors

    def add(self, uri: str) -> tuple[IndexedFolder | None, list[IndexedFolder]]:
        """Serve a folder: returns it (state "indexing", not opened yet) and the served folders it took
        over, for the caller to close; None when it is served already or lies inside a served folder.
        """
        if uri in self.served or uri in self.nested:
            return None, []
        folder = IndexedFolder(uri, path_of(uri), self.config)
        outer = self.folder_of(folder.real_root)
        if outer is not None:
            log.info("%s is inside %s: served by it", folder.root, outer.root)
            self.nested[uri] = outer.uri
            folder.retire()
            return None, []
        taken = [other for other in self.served.values() if other.real_root.is_relative_to(folder.real_root)]
        for inner in taken:
            log.info("%s is inside %s: served by it from now on", inner.root, folder.root)
            del self.served[inner.uri]
            self.nested[inner.uri] = uri
        for inner_uri, outer_uri in self.nested.items():
            if outer_uri not in self.served:  # its outer folder was just taken over too
                self.nested[inner_uri] = uri
        self.served[uri] = folder
        return folder, taken

    def remove(self, uri: str) -> IndexedFolder | None:
        """Stop serving a folder: the served one removed, for the caller to close; None if it was nested."""
        if self.nested.pop(uri, None) is not None:
            return None
        return self.served.pop(uri, None)

    def release(self, uri: str) -> list[str]:
        """The folders a removed folder served, outermost first, forgotten here so they can be added again."""
        orphans = sorted((inner for inner, outer in self.nested.items() if outer == uri), key=len)
        for inner in orphans:
            del self.nested[inner]
        return orphans

    async def close(self) -> None:
        """Close every served folder (on shutdown)."""
        for folder in list(self.served.values()):
            await folder.close()
        self.served.clear()

    def folder_of(self, path: Path) -> IndexedFolder | None:
        """The innermost folder whose real root holds `path` (a real path: see `locate`)."""
        holders = [folder for folder in self.served.values() if path.is_relative_to(folder.real_root)]
        return max(holders, key=lambda folder: len(folder.real_root.parts), default=None)

    def locate(self, uri: str) -> tuple[IndexedFolder, Path]:
        """The folder that holds a client's file URI, and the file's real path.

        The path is resolved (`..`, %-escapes, symlinks) before it is compared with the folders, so
        nothing outside them is ever read. A path outside every folder gets InvalidParams whose
        message depends on the URI alone: the same whether such a file exists or not.
        """
        real = real_path(path_of(uri))
        folder = None if real is None else self.folder_of(real)
        if folder is None or real is None:
            raise invalid_params(f"{shown(uri)} is not inside a workspace folder CodeSieve serves.")
        return folder, real
