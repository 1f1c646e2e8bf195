"""What code past the chunker reads of a chunk, whichever holds it (`chunker.Chunk`, `store.StoredChunk`).

A module of its own, without tree-sitter, so that the encoders and the searches can name it cheaply.
"""

from __future__ import annotations

from typing import Protocol


class CodeUnit(Protocol):
    """A chunk's place, kind, name and code."""

    @property
    def path(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def text(self) -> str: ...
