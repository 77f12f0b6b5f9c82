"""Read a page's Markdown in slices that fit a token budget, and continue exactly where a slice ended.

A slice is a byte range of the stored Markdown. It ends at the largest boundary
that fits: a section (heading) when whole sections fit, else a block (blank
line, code fence), else a line, else a word. A cut never falls inside a fence
line; a slice that starts or ends inside a code block is shown with the
block's own opening line and a closing fence added, so every rendered slice
has balanced fences while the byte ranges of successive slices still cover
the page exactly once, in order.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from docshelf.budget.tokens import TokenCounter

SECTION, BLOCK, LINE = 0, 1, 2
"""Cut levels, coarsest first."""

_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})([^\n]*)$")
_HEADING = re.compile(r"^#{1,6}(?:[ \t]|$)")
_ANCHOR = re.compile(r"\{#([^\s}]+)[^}\n]*\}[ \t]*$")


@dataclass(frozen=True)
class Cut:
    """A place the page may be cut: a character offset, how coarse a boundary it is, and the fence it is in."""

    offset: int
    level: int
    fence: str | None = None
    """The opening line (without newline) of the code block the offset lies inside, else None."""
    after_heading: bool = False
    """Only blank lines since a heading: a slice ending here would end on a heading without its text."""


@dataclass(frozen=True)
class HeadingSection:
    """A heading-delimited section: [start, end) in characters, and its heading's anchor."""

    start: int
    end: int
    anchor: str | None


class PageLayout:
    """The cut points and sections of one page's Markdown (computed once per read)."""

    def __init__(self, markdown: str) -> None:
        self.markdown = markdown
        self.cuts: list[Cut] = []
        self.sections: list[HeadingSection] = []
        self._line_fence: list[tuple[int, int, str | None, bool]] = []
        """(start, end, fence opener or None, is a fence line) per line: where word cuts may fall."""
        self._scan()
        self._offsets = [c.offset for c in self.cuts]
        self._line_starts = [line[0] for line in self._line_fence]

    def _scan(self) -> None:
        text = self.markdown
        fence: str | None = None
        fence_marker = ""
        previous_blank = True
        previous_closed_fence = False
        last_text_heading = False
        heading_starts: list[tuple[int, str | None]] = []
        pos = 0
        for line in text.splitlines(keepends=True):
            body = line.rstrip("\r\n")
            start, pos = pos, pos + len(line)
            if fence is not None:
                stripped = body.strip()
                closes = (stripped and set(stripped) == {fence_marker[0]} and len(stripped) >= len(fence_marker))
                # The closing line is no cut point: cutting before it would leave an empty block for the next slice.
                if not closes:
                    self.cuts.append(Cut(start, LINE, fence))
                self._line_fence.append((start, pos, fence, bool(closes)))
                if closes:
                    fence, previous_closed_fence, previous_blank = None, True, False
                last_text_heading = False
                continue
            opened = _FENCE_OPEN.match(body)
            if opened and not (opened.group(1)[0] == "`" and "`" in opened.group(2)):
                level = BLOCK
            elif _HEADING.match(body):
                level = SECTION
                anchor = _ANCHOR.search(body)
                heading_starts.append((start, anchor.group(1) if anchor else None))
            elif body.strip() and (previous_blank or previous_closed_fence):
                level = BLOCK
            else:
                level = LINE
            self.cuts.append(Cut(start, level, None, last_text_heading and level != SECTION))
            self._line_fence.append((start, pos, None, bool(opened)))
            if body.strip():
                last_text_heading = level == SECTION
            if opened and level == BLOCK:
                fence, fence_marker = body, opened.group(1)
            previous_blank = not body.strip()
            previous_closed_fence = False
        self.unclosed = fence
        """The opener of a code block the page leaves open at its end, else None."""
        self.cuts = [c for c in self.cuts if c.offset > 0]
        self.cuts.append(Cut(len(text), SECTION))
        starts = [(0, None)] if not heading_starts or heading_starts[0][0] > 0 else []
        starts += heading_starts
        for (start, anchor), (end, _) in zip(starts, [*starts[1:], (len(text), None)]):
            self.sections.append(HeadingSection(start, end, anchor))

    def fence_at(self, offset: int) -> str | None:
        """Return the opening line of the code block `offset` lies inside, else None."""
        index = bisect_right(self._line_starts, offset) - 1
        if index < 0 or offset >= len(self.markdown):
            return None
        start, _, fence, is_fence_line = self._line_fence[index]
        if fence is not None and is_fence_line and offset > start:
            return None  # past the start of the closing line: the block has ended
        return fence

    def section_index(self, anchor: str) -> int | None:
        """Return the index of the section whose heading carries `{#anchor}`, else None."""
        return next((i for i, s in enumerate(self.sections) if s.anchor == anchor), None)

    def render(self, start: int, end: int) -> str:
        """Return markdown[start:end], re-fenced where it starts or ends inside a code block."""
        text = self.markdown[start:end]
        opener = self.fence_at(start)
        if opener is not None:
            text = opener + "\n" + text
        closer = self.fence_at(end) if end < len(self.markdown) else (self.unclosed if end > start else None)
        if closer is not None:
            marker = _FENCE_OPEN.match(closer)
            assert marker is not None
            text += ("" if text.endswith("\n") else "\n") + marker.group(1)
        return text

    def fit(self, start: int, fits: Callable[[str], bool], limit: int | None = None) -> int:
        """Return the end after `start` of the slice to show: the furthest whole sections that fit, cutting finer only
        into a part too big for any budget.

        At each level (sections, then blocks, then lines) the slice takes the whole parts that fit. It stops
        there when the next part would fit a read of its own; only a part larger than the budget is cut,
        at the next finer level, so that it is read in full slices rather than begun on a nearly empty one.
        Always returns an end past `start` (a single word or character if nothing larger fits), so reading
        on always progresses. `limit` caps the end (default: the page's end).
        """
        limit = len(self.markdown) if limit is None else limit
        first = bisect_right(self._offsets, start)
        last = bisect_right(self._offsets, limit)
        found = None
        for level in (SECTION, BLOCK, LINE):
            candidates = [c.offset for c in self.cuts[first:last] if c.level <= level and not c.after_heading]
            best = _largest_fitting(candidates, lambda end: fits(self.render(start, end)))
            if best is None:
                continue
            found = best
            following = next((c for c in candidates if c > best), None)
            if following is None or fits(self.render(best, following)):
                return best
        if found is not None:
            return found
        return self._fit_words(start, min(limit, self._line_end(start)), fits)

    def _line_end(self, offset: int) -> int:
        newline = self.markdown.find("\n", offset)
        return len(self.markdown) if newline < 0 else newline + 1

    def _fit_words(self, start: int, line_end: int, fits: Callable[[str], bool]) -> int:
        """Cut inside one line: at a space if one fits, else at a character; at least one character.

        A fence line is never cut (half a fence would unbalance both slices): it goes whole, even over
        the budget, which only a budget smaller than the fence line itself can cause.
        """
        text = self.markdown
        index = bisect_right(self._line_starts, start) - 1
        if index >= 0 and self._line_fence[index][3]:
            return line_end
        spaces = [m.end() for m in re.finditer(r"\s+", text[start:line_end])]
        best = _largest_fitting([start + s for s in spaces if start + s < line_end], lambda end: fits(self.render(start, end)))
        if best is not None:
            return best
        best = _largest_fitting(list(range(start + 1, line_end)), lambda end: fits(self.render(start, end)))
        return best if best is not None else start + 1


def _largest_fitting(candidates: list[int], fits: Callable[[int], bool]) -> int | None:
    """Return the largest candidate that fits, by binary search (token counts grow with length)."""
    low, high, best = 0, len(candidates) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if fits(candidates[middle]):
            best, low = candidates[middle], middle + 1
        else:
            high = middle - 1
    return best


def fits_in(counter: TokenCounter, budget: int) -> Callable[[str], bool]:
    """Return a predicate: does a text cost at most `budget` tokens."""
    return lambda text: counter.count(text) <= budget
