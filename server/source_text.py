"""A source file's text as the chunker sees it: lines, UTF-8 bytes, and conversions between positions.

tree-sitter reports positions as (row, byte column) points; chunks need lines and character offsets.
Lines are split on "\\n" only, as tree-sitter counts rows; a final "\\n" does not start a line.
"""

from __future__ import annotations

from tree_sitter import Node

Point = tuple[int, int]  # (row, byte column), 0-based, as tree-sitter reports them


class SourceText:
    """The text being chunked: its lines, its UTF-8 bytes, and conversions between positions."""

    __slots__ = ("_line_offsets", "data", "lines")

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

    def line(self, row: int) -> str:
        """Return a line without its "\\n", or "" past the end."""
        return self.lines[row] if 0 <= row < len(self.lines) else ""

    def line_bytes(self, row: int) -> bytes:
        """Return a line's UTF-8 bytes."""
        return self.line(row).encode("utf-8", "surrogatepass")

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

    def blank_before(self, point: Point) -> bool:
        """Whether only whitespace precedes a point on its line."""
        return not self.line_bytes(point[0])[: point[1]].strip()

    def blank_after(self, point: Point) -> bool:
        """Whether only whitespace follows a point on its line."""
        return not self.line_bytes(point[0])[point[1] :].strip()

    def end_point(self, node: Node) -> Point:
        """Return where a node's text ends, a trailing newline not counted."""
        row, column = node.end_point
        if column == 0 and row > node.start_point[0]:
            return row - 1, len(self.line_bytes(row - 1))
        return row, column
