"""A source file's text as the chunker sees it: lines, UTF-8 bytes, and conversions between positions.

tree-sitter reports positions as (row, byte column) points; chunks need lines and character offsets.
Lines are split on "\\n" only, as tree-sitter counts rows; a final "\\n" does not start a line.
"""

from __future__ import annotations

import re

from tree_sitter import Node

Point = tuple[int, int]  # (row, byte column), 0-based, as tree-sitter reports them

_NON_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")  # what bytes.strip() does not strip


class SourceText:
    """The text being chunked: its lines, its UTF-8 bytes, and conversions between positions."""

    __slots__ = ("_line_bytes", "_line_offsets", "data", "lines")

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8", "surrogatepass")
        lines = text.split("\n")
        if len(lines) > 1 and not lines[-1]:
            lines.pop()
        self.lines = lines
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line) + 1)
        self._line_offsets = offsets
        self._line_bytes: dict[int, bytes] = {}

    def line(self, row: int) -> str:
        """Return a line without its "\\n", or "" past the end."""
        return self.lines[row] if 0 <= row < len(self.lines) else ""

    def line_bytes(self, row: int) -> bytes:
        """Return a line's UTF-8 bytes (encoded once: a minified line is asked for once per definition)."""
        encoded = self._line_bytes.get(row)
        if encoded is None:
            encoded = self._line_bytes[row] = self.line(row).encode("utf-8", "surrogatepass")
        return encoded

    def text_of(self, node: Node) -> str:
        """Return the source text of a node."""
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def offset(self, point: Point) -> int:
        """Return the character offset in the text of a (row, byte column) point."""
        row, byte_column = point
        row = min(max(row, 0), len(self.lines) - 1)
        line = self.lines[row]
        if line.isascii():
            return self._line_offsets[row] + min(byte_column, len(line))
        prefix = line.encode("utf-8", "surrogatepass")[:byte_column]
        try:
            return self._line_offsets[row] + len(prefix.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:  # the column splits a character: count the whole ones before it
            return self._line_offsets[row] + len(prefix.decode("utf-8", "ignore"))

    def blank_between(self, row: int, start_column: int, end_column: int) -> bool:
        """Whether only whitespace lies between two byte columns of a line (searched, not copied)."""
        line = self.line_bytes(row)
        return _NON_BLANK.search(line, max(start_column, 0), max(end_column, 0)) is None

    def blank_before(self, point: Point) -> bool:
        """Whether only whitespace precedes a point on its line."""
        return self.blank_between(point[0], 0, point[1])

    def blank_after(self, point: Point) -> bool:
        """Whether only whitespace follows a point on its line."""
        return self.blank_between(point[0], point[1], len(self.line_bytes(point[0])))

    def end_point(self, node: Node) -> Point:
        """Return where a node's text ends, a trailing newline not counted."""
        row, column = node.end_point
        if column == 0 and row > node.start_point[0]:
            return row - 1, len(self.line_bytes(row - 1))
        return row, column
