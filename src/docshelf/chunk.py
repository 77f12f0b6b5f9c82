"""Split a page's Markdown into heading-aware sections that fit the embedding model.

`chunk_markdown` is the chunk stage of the pipeline. It fixes the origin chunker's defects
(seed/origin-schema.md §6):

- D1: a code fence is never cut. A code block over the budget is split between lines and every
  piece is re-fenced with the block's own opening line (fence and info string verbatim) and
  closing line, so every chunk has balanced fences.
- D2, D3: text is cut at the largest boundary that works: heading, then block (paragraph, list,
  list item, blockquote, table, code block), then table row or code line, then sentence, then
  word. Content is sliced from the source, never stripped or re-joined, so apart from the edits
  listed below every non-whitespace character survives, in order.
- D4: no chunk is empty.

Sections are packed: a chunk takes the sections that follow it (siblings, or the subsections
of its own) while they fit the budget, so an answer that spans two short sections stays in one
chunk and the title and heading path the embedder reads with every chunk are paid less often.
A packed chunk's heading path is what its sections share, and it lists where each section
starts (`Section.sections`) so that a citation can point at the one that matched.

The chunker edits the source in three ways, all on purpose:

- the `{#anchor}` attribute list is removed from section headings: it becomes `Section.anchor`,
  and the stored content stays the Markdown a reader sees;
- the pieces of a split code block gain fence lines, and the pieces of a split table repeat the
  table's header and separator rows;
- a code block left open at the end of the page or container gets a closing fence.

Sizes are tokens of the embedding model counted on the text it reads (`enrich.embedded_tokens`:
no link URLs, no Markdown syntax), so chunking does not depend on where a site is served from.
A chunk exceeds `max_tokens` only when it holds a single line too long to share (a code line, a
table row, a word), together with the heading, fence or table-header lines that must stay with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from markdown_it import MarkdownIt
from markdown_it.token import Token

from docshelf.enrich import embedded_tokens
from docshelf.models import Section, SectionStart

# Only the block structure matters here; inline parsing is more than half of markdown-it's time.
_BLOCK_PARSER = MarkdownIt("commonmark").enable("table").disable("inline")
_INLINE_PARSER = MarkdownIt("commonmark")

# `## Heading text {#anchor-id}`, also `{#id .class key=value}` (Pandoc / attr_list syntax).
_ANCHOR = re.compile(r"[ \t]*\{#([^\s}]+)[^}\n]*\}[ \t]*$", re.MULTILINE)
# The end of a sentence: terminal punctuation, closing quotes/brackets/emphasis, then whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"')\]*_`]*(\s+)")
_WORD = re.compile(r"\S+")
_NON_BLANK_LINE = re.compile(r"^[ \t]*\S.*$", re.MULTILINE)
_CONTAINERS = frozenset({"bullet_list", "ordered_list", "list_item", "blockquote"})
_CONTAINER_CLOSE = frozenset(f"{name}_close" for name in _CONTAINERS)

_Kind = Literal["heading", "fence", "table", "prose", "lines", "container"]


@dataclass(eq=False)
class _Block:
    """A run of source text that stays whole unless it cannot fit a chunk."""

    kind: _Kind
    text: str
    sep: str
    """The whitespace between the previous block and this one in the source."""
    children: list[_Block] = field(default_factory=list)
    heading: _Heading | None = None
    tokens: int = -1
    """Counted on first use: most blocks are never split, so their units are never counted."""
    units: _Units | None = None


@dataclass(eq=False)
class _Units:
    """A block cut into the units a split may separate: lines, table rows, sentences or words."""

    head: str
    """Repeated at the start of every part: a code block's opening fence, a table's header rows."""
    spans: list[tuple[int, int]]
    """The units, as ranges of the block's text."""
    tail: str
    """Repeated at the end of every part: a code block's closing fence."""
    sizes: list[int]
    overhead: int
    """The tokens of head and tail."""


@dataclass(frozen=True)
class _Heading:
    """What a top-level heading contributes to the heading path."""

    level: int
    title: str
    anchor: str | None


@dataclass(eq=False)
class _Part:
    """Text on its way to becoming a chunk, with its token count."""

    sep: str
    """The separator to use when this part is appended to the one before it."""
    pieces: list[str] = field(default_factory=list)
    tokens: int = 0
    glued: bool = False
    """True when the part ends with a heading, which must not end a chunk."""

    def add(self, sep: str, text: str, tokens: int, *, glued: bool = False) -> None:
        """Append `text`, after `sep` unless the part is still empty."""
        if self.pieces:
            self.pieces.append(sep)
        self.pieces.append(text)
        self.tokens += tokens
        self.glued = glued

    def extend(self, other: _Part, sep: str | None = None) -> None:
        """Append another part, after `sep` or else the other part's own separator."""
        self.add(other.sep if sep is None else sep, "".join(other.pieces), other.tokens, glued=other.glued)


@dataclass(eq=False)
class _Chunk:
    """A finished part with the heading path and anchor of the section it starts in."""

    part: _Part
    path: list[str]
    anchor: str | None
    sections: list[tuple[int, str | None, list[str]]] = field(default_factory=list)
    """(offset, anchor, heading path) of every section begun in the chunk, once packed."""

    def __post_init__(self) -> None:
        self.sections = self.sections or [(0, self.anchor, self.path)]


def chunk_markdown(
    markdown: str,
    *,
    max_tokens: int = 200,
    min_tokens: int = 40,
    count_tokens: Callable[[str], int] = embedded_tokens,
    pack: bool = True,
) -> list[Section]:
    """Return the page's Markdown cut into sections of at most `max_tokens` tokens, in page order.

    Args:
        markdown: the page as produced by docshelf's extractor.
        max_tokens: the budget per chunk. The default leaves room, within the model's 256 tokens,
            for the title and heading path that `enrich.embedding_text` puts first.
        min_tokens: a block is split to fill a chunk only when the room left is at least this, and
            a chunk smaller than this joins a neighbouring section when the two fit together.
        count_tokens: the token counter; the default counts the bundled model's tokens of the text
            the embedder reads. Pieces are counted once and their counts added, so a counter must
            give text joined at whitespace the sum of its pieces' counts, as a WordPiece tokenizer
            or a word count does.
        pack: pack sections together up to the budget; False packs only chunks under `min_tokens`.
    """
    if not 0 <= min_tokens <= max_tokens or max_tokens < 1:
        raise ValueError(
            f"need 0 <= min_tokens <= max_tokens and max_tokens >= 1, got {min_tokens}, {max_tokens}"
        )
    # markdown-it normalises newlines before parsing; doing the same keeps its line numbers valid here.
    text = markdown.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    blocks = _Source(text).blocks()
    splitter = _Splitter(count_tokens, max_tokens, min_tokens)
    chunks: list[_Chunk] = []
    for section in _sections(blocks):
        first, *rest = splitter.flow(section.blocks, max_tokens, may_skip_first=False)
        chunk = _Chunk(first, section.first_path, section.first_anchor)
        if section.first_path != section.path:  # the subsection the carried headings open starts here too
            heading = next(b for b in reversed(section.blocks) if b.heading is not None)
            offset = "".join(first.pieces).find(heading.text)
            chunk.sections.append((offset, section.anchor, section.path))
        chunks.append(chunk)
        chunks.extend(_Chunk(part, section.path, section.anchor) for part in rest)
    return [_section(chunk) for chunk in _pack_sections(chunks, max_tokens, min_tokens if not pack else None)]


def _section(chunk: _Chunk) -> Section:
    """Return the finished chunk as a Section, listing its sections when it packs several."""
    starts = [SectionStart(offset, anchor, path) for offset, anchor, path in chunk.sections]
    return Section("".join(chunk.part.pieces), chunk.path, chunk.anchor, starts if len(starts) > 1 else [])


@dataclass(eq=False)
class _Node:
    """A block of the parse tree: its opening token, source lines, and children if a container."""

    token: Token
    lines: tuple[int, int]
    inline: str = ""
    """The raw inline Markdown of a heading."""
    children: list[_Node] = field(default_factory=list)

    @property
    def type(self) -> str:
        """Return the block type without the `_open` suffix: "paragraph", "fence", "bullet_list"."""
        return self.token.type.removesuffix("_open")


def _block_tree(tokens: Sequence[Token]) -> list[_Node]:
    """Return the top-level blocks of a token stream, lists and blockquotes with their children.

    markdown-it's own SyntaxTreeNode also builds a node for every table row and cell, which on
    table-heavy pages adds half the parse time again; tables are leaves here.
    """
    roots: list[_Node] = []
    open_containers: list[_Node] = []
    for index, token in enumerate(tokens):
        if token.type in _CONTAINER_CLOSE:
            open_containers.pop()
            continue
        # A block directly inside the innermost open container (or at the top) sits at its depth.
        if token.map is None or token.nesting == -1 or token.level != len(open_containers):
            continue
        inline = tokens[index + 1].content if token.type == "heading_open" else ""
        node = _Node(token, (token.map[0], token.map[1]), inline)
        (open_containers[-1].children if open_containers else roots).append(node)
        if node.type in _CONTAINERS:
            open_containers.append(node)
    return roots


class _Source:
    """The normalised page text and its block tree, in character offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def blocks(self) -> list[_Block]:
        """Return the top-level blocks, headings marked, covering every non-blank character."""
        return self._cover(_block_tree(_BLOCK_PARSER.parse(self.text)), 0, len(self.text), top=True)

    def _cover(self, nodes: Sequence[_Node], start: int, end: int, *, top: bool) -> list[_Block]:
        """Return blocks for `nodes` plus any text between them that no node claims.

        markdown-it emits no token for link reference definitions or a list item's bare marker
        line; keeping them as plain-line blocks is what guarantees no content is lost.
        """
        blocks: list[_Block] = []
        pos = start
        for node in nodes:
            node_start, node_end = self._span(node)
            pos = self._add_gap(blocks, pos, node_start)
            blocks.append(self._block(node, node_start, node_end, self.text[pos:node_start], top=top))
            pos = node_end
        self._add_gap(blocks, pos, end)
        return blocks

    def _add_gap(self, blocks: list[_Block], start: int, end: int) -> int:
        """Append the unclaimed text in [start, end) as a block if it is not blank; return the new position."""
        gap = self.text[start:end]
        if not gap.strip():
            return start
        lead = len(gap) - len(gap.lstrip())
        body = gap.strip()
        blocks.append(_Block("lines", body, gap[:lead]))
        return start + lead + len(body)

    def _span(self, node: _Node) -> tuple[int, int]:
        """Return the character range of a node's source lines, trailing whitespace excluded."""
        first, last = node.lines
        start = self.line_starts[first]
        end = self.line_starts[last] if last < len(self.line_starts) else len(self.text)
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return start, end

    def _block(self, node: _Node, start: int, end: int, sep: str, *, top: bool) -> _Block:
        """Return the block for one parsed node."""
        source = self.text[start:end]
        if node.type == "heading" and top:
            return _Block("heading", _ANCHOR.sub("", source), sep, heading=_heading(node))
        if node.type == "fence":
            return _Block("fence", _closed_fence(source, node.token.markup), sep)
        if node.type == "table":
            return _Block("table", source, sep)
        if node.type == "paragraph":
            return _Block("prose", source, sep)
        if node.type in _CONTAINERS:
            children = self._cover(node.children, start, end, top=False)
            # Rebuilt from the children so that a fence they closed is closed here too.
            text = "".join(child.sep + child.text for child in children)[len(children[0].sep) :]
            return _Block("container", text, sep, children)
        return _Block("lines", source, sep)


def _closed_fence(source: str, markup: str) -> str:
    """Return a fenced code block's source with a closing fence added if it has none."""
    lines = source.split("\n")
    closing = re.compile(rf"[ \t>]*{re.escape(markup[0])}{{{len(markup)},}}[ \t]*")
    if len(lines) > 1 and closing.fullmatch(lines[-1]):
        return source
    prefix = lines[0][: lines[0].index(markup)]
    # Keep blockquote markers and indentation; a list marker becomes spaces so the fence stays in the item.
    return source + "\n" + re.sub(r"[^\s>]", " ", prefix) + markup


def _heading(node: _Node) -> _Heading:
    """Return a heading node's level, plain text (anchor removed) and anchor."""
    match = _ANCHOR.search(node.inline)
    title = _plain_text(_ANCHOR.sub("", node.inline))
    return _Heading(int(node.token.tag[1:]), title, match.group(1) if match else None)


def _plain_text(inline: str) -> str:
    """Return inline Markdown as the text a reader sees: no link targets, emphasis or backticks."""
    tokens = _INLINE_PARSER.parseInline(inline)
    children = (tokens[0].children or []) if tokens else []
    words = [t.content for t in children if t.type in ("text", "code_inline", "softbreak", "hardbreak")]
    return " ".join(" ".join(words).split())


@dataclass
class _SectionBlocks:
    """The blocks of one section, with the heading path and anchor its chunks take."""

    blocks: list[_Block]
    path: list[str]
    anchor: str | None
    first_path: list[str]
    """For the first chunk: differs from `path` when empty parent headings were carried in."""
    first_anchor: str | None


def _sections(blocks: list[_Block]) -> list[_SectionBlocks]:
    """Return the blocks grouped into sections, each with its heading path and anchor.

    A section is a top-level heading and the blocks up to the next one; the text before the
    first heading is a section with an empty path. A heading directly followed by a subheading
    has no section of its own: it opens its first subsection's first chunk, so that it neither
    stands alone nor ends the chunk before.
    """
    sections: list[_SectionBlocks] = []
    stack: list[_Heading] = []
    for block in blocks:
        heading = block.heading
        if heading is None and sections:
            sections[-1].blocks.append(block)
            continue
        if heading is None:  # text before the first heading
            sections.append(_SectionBlocks([block], [], None, [], None))
            continue
        # Only a section that is nothing but headings is carried, and only into a subsection.
        carried = (
            bool(stack) and heading.level > stack[-1].level and all(b.heading for b in sections[-1].blocks)
        )
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        path = [h.title for h in stack]
        anchor = next((h.anchor for h in reversed(stack) if h.anchor), None)
        if carried:
            sections[-1].blocks.append(block)
            sections[-1].path, sections[-1].anchor = path, anchor
        else:
            sections.append(_SectionBlocks([block], path, anchor, path, anchor))
    return sections


class _Splitter:
    """Packs blocks into parts within the token budget, splitting the ones that cannot fit."""

    def __init__(self, count: Callable[[str], int], max_tokens: int, min_tokens: int) -> None:
        self.count = count
        self.max = max_tokens
        self.min = min_tokens
        # A block this long rarely fits, so it is counted unit by unit, once, and a split reuses
        # the counts instead of counting the text a second time.
        self.long_block_chars = 4 * max_tokens

    def tokens(self, block: _Block) -> int:
        """Return the block's token count, counting its text only once."""
        if block.tokens >= 0:
            return block.tokens
        if block.kind == "container":
            # The children's counts add up exactly (see `flow`), so nested lists count each leaf once.
            block.tokens = sum(self.tokens(child) for child in block.children)
        elif len(block.text) > self.long_block_chars:
            units = self.units(block)
            block.tokens = units.overhead + sum(units.sizes)
        else:
            block.tokens = self.count(block.text)
        return block.tokens

    def units(self, block: _Block) -> _Units:
        """Return the block cut into the units a split may separate, each counted."""
        if block.units is None:
            head, spans, tail = _atoms(block)
            sizes = [self.count(block.text[start:end]) for start, end in spans]
            if block.kind == "prose":
                spans, sizes = self._words_of_long_sentences(block.text, spans, sizes, self.max)
            overhead = (self.count(head) if head else 0) + (self.count(tail) if tail else 0)
            block.units = _Units(head, spans, tail, sizes, overhead)
        return block.units

    def _words_of_long_sentences(
        self, text: str, spans: list[tuple[int, int]], sizes: list[int], limit: int
    ) -> tuple[list[tuple[int, int]], list[int]]:
        """Return the spans and sizes with each sentence over `limit` tokens replaced by its words."""
        word_spans: list[tuple[int, int]] = []
        word_sizes: list[int] = []
        for (start, end), size in zip(spans, sizes):
            if size <= limit:
                word_spans.append((start, end))
                word_sizes.append(size)
                continue
            for word in _WORD.finditer(text, start, end):
                word_spans.append(word.span())
                word_sizes.append(self.count(word.group()))
        return word_spans, word_sizes

    def flow(self, blocks: Sequence[_Block], first: int, *, may_skip_first: bool) -> list[_Part]:
        """Return `blocks` packed greedily into parts of at most `max` tokens, in order.

        The first part may hold only `first` tokens: it continues a part the caller has
        started. With `may_skip_first` it may stay empty, telling the caller to close its part;
        otherwise it holds at least the first unit. Counts add up because the tokenizer splits
        on whitespace before anything else and parts are joined at whitespace.
        """
        parts = [_Part(blocks[0].sep)]
        cap = first
        for block in blocks:
            size = self.tokens(block)
            if parts[-1].tokens + size <= cap:
                parts[-1].add(block.sep, block.text, size, glued=block.heading is not None)
                continue
            fresh = self._needs_new_part(parts[-1], cap, size, may_skip_first=may_skip_first)
            if fresh:
                parts.append(_Part(block.sep))
                cap = self.max
                if size <= cap:
                    parts[-1].add(block.sep, block.text, size, glued=block.heading is not None)
                    continue
            current = parts[-1]
            may_skip = not (fresh or current.glued) and (bool(current.pieces) or may_skip_first)
            pieces = self.split(block, cap - current.tokens, may_skip_first=may_skip)
            if pieces[0].pieces:
                current.extend(pieces[0], sep=block.sep)
            if len(pieces) > 1:
                parts.extend(pieces[1:])
                cap = self.max
        return parts

    def _needs_new_part(self, current: _Part, cap: int, size: int, *, may_skip_first: bool) -> bool:
        """Return whether a block that does not fit in `current` should start a new part."""
        if current.glued:  # a heading takes at least the start of its first block along
            return False
        if not current.pieces:  # the caller's first part: start afresh only if allowed and worth it
            return may_skip_first and size <= self.max
        # Split a block only if it fits no chunk, and then only into a room worth filling.
        return size <= self.max or cap - current.tokens < self.min

    def split(self, block: _Block, first: int, *, may_skip_first: bool) -> list[_Part]:
        """Return a block that does not fit the room left cut into parts; see `flow` for `first`."""
        if block.kind == "container":
            return self.flow(block.children, first, may_skip_first=may_skip_first)
        units = self.units(block)
        if block.heading is not None or not units.spans:  # one line, or a table that is only a header
            whole = _Part(block.sep, [block.text], self.tokens(block), glued=block.heading is not None)
            return [_Part(block.sep), whole] if may_skip_first else [whole]
        spans, sizes = units.spans, units.sizes
        if block.kind == "prose" and not may_skip_first and sizes[0] > first:
            # The first sentence must start here (after a heading): only its words can fit.
            head_spans, head_sizes = self._words_of_long_sentences(block.text, spans[:1], sizes[:1], first)
            spans, sizes = head_spans + spans[1:], head_sizes + sizes[1:]
        budget = self.max - units.overhead
        groups = _pack(sizes, first - units.overhead, budget, self.min, may_skip_first=may_skip_first)
        return [_render(block, units, spans, sizes, group) for group in groups]


def _atoms(block: _Block) -> tuple[str, list[tuple[int, int]], str]:
    """Return what a split block repeats at the head and tail of every part, and its cut units.

    The units are spans of `block.text`: sentences for prose, rows for a table, lines for code
    and everything else. A code block's parts repeat its opening and closing fence lines; a
    table's parts repeat its header and separator rows.
    """
    text = block.text
    if block.kind == "prose":
        return "", _sentences(text), ""
    if block.kind == "fence":
        body_start = text.index("\n") + 1
        body_end = text.rindex("\n")
        return text[: body_start - 1], _lines(text, body_start, body_end), text[body_end + 1 :]
    if block.kind == "table":
        header_end = text.find("\n", text.find("\n") + 1)
        if header_end < 0:
            return text, [], ""
        return text[:header_end], _lines(text, header_end + 1, len(text)), ""
    return "", _lines(text, 0, len(text)), ""


def _render(
    block: _Block, units: _Units, spans: list[tuple[int, int]], sizes: list[int], group: tuple[int, int]
) -> _Part:
    """Return the part made of one group of a block's units, with the head and tail it repeats."""
    start, end = group
    if units.head or start == 0:
        sep = "\n" if start else block.sep
    else:  # cut between two units of the source: the whitespace between them
        sep = block.text[spans[start - 1][1] : spans[start][0]]
    part = _Part(sep)
    if end > start:
        body = block.text[spans[start][0] : spans[end - 1][1]]
        text = "\n".join(piece for piece in (units.head, body, units.tail) if piece)
        part.add("", text, units.overhead + sum(sizes[start:end]))
    return part


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Return the spans of the non-blank lines in text[start:end], indentation included."""
    return [m.span() for m in _NON_BLANK_LINE.finditer(text, start, end)]


def _sentences(text: str) -> list[tuple[int, int]]:
    """Return the spans of the sentences in a paragraph, without the whitespace between them."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start(1)))
        start = match.end(1)
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _pack(
    sizes: list[int], first: int, budget: int, min_size: int, *, may_skip_first: bool
) -> list[tuple[int, int]]:
    """Return index ranges that group consecutive units greedily within the budgets.

    The first group holds at most `first`, the others at most `budget`; a unit larger than its
    budget is a group of its own. With `may_skip_first`, the first group is empty when the first
    unit does not fit `first`. A small last group takes units from the one before it, so a split
    does not end with a fragment.
    """
    groups: list[tuple[int, int]] = []
    start, total, cap = 0, 0, first
    if may_skip_first and sizes[0] > first:
        groups.append((0, 0))
        cap = budget
    for index, size in enumerate(sizes):
        # A zero-token unit (a stray symbol the tokenizer drops) never starts a group of its own.
        if index > start and size > 0 and total + size > cap:
            groups.append((start, index))
            start, total, cap = index, 0, budget
        total += size
    groups.append((start, len(sizes)))
    return _rebalance_tail(groups, sizes, budget, min_size)


def _rebalance_tail(
    groups: list[tuple[int, int]], sizes: list[int], budget: int, min_size: int
) -> list[tuple[int, int]]:
    """Return the groups with units moved from the second-to-last group into a small last one."""
    if len(groups) < 2 or groups[-2][0] == groups[-2][1]:
        return groups
    (prev_start, prev_end), (_, last_end) = groups[-2], groups[-1]
    prev_size, last_size = sum(sizes[prev_start:prev_end]), sum(sizes[prev_end:last_end])
    while last_size < min_size and prev_end - prev_start > 1:
        moved = sizes[prev_end - 1]
        # Stop before the last group overflows or the one before becomes the smaller of the two.
        if last_size + moved > budget or prev_size - moved < last_size + moved:
            break
        prev_end -= 1
        prev_size -= moved
        last_size += moved
    return [*groups[:-2], (prev_start, prev_end), (prev_end, last_end)]


def _pack_sections(chunks: list[_Chunk], max_tokens: int, only_below: int | None = None) -> list[_Chunk]:
    """Return the chunks with each one packed into the one before it while the two fit together.

    A chunk joins the one before when it is a sibling or a subsection of that chunk's section,
    or, once the chunk packs several, when it lies under the heading they share: a chunk never
    climbs out of the section it is in. The packed chunk's heading path is that shared part.
    With `only_below`, only chunks smaller than that join: the one before when it is small, else
    the one before unless it can go forward.
    """
    packed: list[_Chunk] = []
    for index, chunk in enumerate(chunks):
        previous = packed[-1] if packed else None
        if previous is None or not _joinable(previous, chunk, max_tokens):
            packed.append(chunk)
            continue
        if only_below is not None and previous.part.tokens >= only_below:
            following = chunks[index + 1] if index + 1 < len(chunks) else None
            goes_forward = following is not None and _joinable(chunk, following, max_tokens)
            if chunk.part.tokens >= only_below or goes_forward:
                packed.append(chunk)
                continue
        offset = sum(map(len, previous.part.pieces)) + len(chunk.part.sep)
        previous.part.extend(chunk.part)
        for start, anchor, path in chunk.sections:
            if (anchor, path) != previous.sections[-1][1:]:  # a split section's next part is no new section
                previous.sections.append((offset + start, anchor, path))
        previous.path = _common_prefix(previous.path, chunk.path)
    return packed


def _joinable(first: _Chunk, second: _Chunk, max_tokens: int) -> bool:
    """Return whether two chunks fit together and `second` lies under the section `first` is in."""
    root = first.path if len(first.sections) > 1 else first.path[:-1]
    return (
        first.part.tokens + second.part.tokens <= max_tokens
        and len(second.path) > len(root)
        and second.path[: len(root)] == root
    )


def _common_prefix(a: list[str], b: list[str]) -> list[str]:
    """Return the headings two paths share from the top."""
    shared = 0
    while shared < min(len(a), len(b)) and a[shared] == b[shared]:
        shared += 1
    return a[:shared]
