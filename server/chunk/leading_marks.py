"""The comments and decorators that lead a definition: which of them a chunk takes in above it.

A mark is a comment or decorator node. A definition takes in the run of marks directly above it (or
before it on its own line) with no blank line or code between them; its leading comments are its doc
comment where the language has no docstring. Where the language's habit is so (JSDoc), a `/** ... */`
comment one blank line above a definition that has no comment of its own is its doc comment too,
unless it describes the file (`@file`, `@fileoverview`, `@overview`, `@module`, `@license`).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tree_sitter import Node

from .language_specs import LanguageSpec
from .text_positions import Point, SourceText

_FILE_TAGS = re.compile(rb"@(?:file|fileoverview|overview|module|license|copyright)\b")
_MAX_DOC_LINES = 200  # of a doc comment searched for file tags


@dataclass(frozen=True, slots=True)
class Mark:
    """A comment or decorator: something that may belong to the definition below it."""

    start: Point
    end: Point
    comment: bool


class MarkIndex:
    """The file's comments and decorators by the row they end on, to find what leads a definition."""

    def __init__(self, source: SourceText, spec: LanguageSpec, nodes: Iterable[Node]) -> None:
        self._source = source
        self._doc_across_blank_line = spec.doc_across_blank_line
        self._by_end_row: dict[int, list[Mark]] = {}
        for node in nodes:
            mark = Mark(node.start_point, source.end_point(node), node.type in spec.comments)
            self._by_end_row.setdefault(mark.end[0], []).append(mark)
        for marks in self._by_end_row.values():
            marks.sort(key=lambda mark: mark.end)

    def leading(self, start: Point) -> tuple[int, list[Mark]]:
        """Return the row a definition starting at `start` really starts on, and the comments and
        decorators directly above it (or before it on its line) that it takes in."""
        first_row, taken = self._run_above(start)
        if not taken and self._doc_across_blank_line:
            doc = self._doc_a_blank_line_above(start)
            if doc is not None:
                above_row, above = self._run_above(doc.start)
                return (above_row if above else doc.start[0]), [doc, *above]
        return first_row, taken

    def _run_above(self, start: Point) -> tuple[int, list[Mark]]:
        """The marks directly above `start` with no blank line or code between, and the row they start."""
        first_row = start[0]
        taken: list[Mark] = []
        pending: list[Mark] = []
        position = start
        while (mark := self._before(position)) is not None:
            pending.append(mark)
            position = mark.start
            if self._source.blank_before(position):
                first_row, taken, pending = position[0], taken + pending, []
        return first_row, taken

    def _doc_a_blank_line_above(self, start: Point) -> Mark | None:
        """A `/**` comment on lines of its own, one blank line above a definition that starts its line;
        None where there is none, or it carries a tag that makes it the file's."""
        row = start[0]
        if row < 2 or not self._source.blank_before(start) or self._source.line(row - 1).strip():
            return None
        marks = self._by_end_row.get(row - 2, [])
        mark = marks[-1] if marks else None
        if mark is None or not mark.comment or not self._source.blank_after(mark.end):
            return None
        if not self._source.blank_before(mark.start):
            return None
        first_line = self._source.line_bytes(mark.start[0])
        if first_line[mark.start[1] : mark.start[1] + 3] != b"/**":
            return None
        last = min(mark.end[0], mark.start[0] + _MAX_DOC_LINES)
        if any(_FILE_TAGS.search(self._source.line_bytes(line)) for line in range(mark.start[0], last + 1)):
            return None
        return mark

    def _before(self, position: Point) -> Mark | None:
        """Return the mark right before a position: on the line above if the position starts its
        line, else earlier on the same line; None if code or a blank line comes between."""
        row, column = position
        if self._source.blank_before(position):
            marks = self._by_end_row.get(row - 1, [])
            mark = marks[-1] if marks else None
            found = mark if mark is not None and self._source.blank_after(mark.end) else None
        else:
            marks = self._by_end_row.get(row, [])
            earlier = bisect_right(marks, column, key=lambda mark: mark.end[1])
            found = marks[earlier - 1] if earlier else None
            if found is not None and not self._source.blank_between(row, found.end[1], column):
                found = None
        return found if found is not None and found.start < position else None

    def trim_dedented_comments(self, start_row: int, end_row: int) -> int:
        """Drop trailing comment lines indented no deeper than the definition's first line:
        Python grammars put a comment that leads the next definition at the end of this one."""
        first_line = self._source.line(start_row)
        indent = len(first_line) - len(first_line.lstrip())
        row = end_row
        while row > start_row:
            line = self._source.line(row)
            if line.strip() and not (self._comment_line(row) and len(line) - len(line.lstrip()) <= indent):
                break
            row -= 1
        return row

    def _comment_line(self, row: int) -> bool:
        """Whether a line holds a single-line comment and nothing else."""
        return any(
            mark.comment and mark.start[0] == row and self._source.blank_before(mark.start)
            for mark in self._by_end_row.get(row, [])
        )


def comment_span(leading: Sequence[Mark]) -> tuple[Point, Point] | None:
    """Return the span from the first to the last comment among a definition's leading marks."""
    comments = [mark for mark in leading if mark.comment]
    if not comments:
        return None
    return min(mark.start for mark in comments), max(mark.end for mark in comments)
