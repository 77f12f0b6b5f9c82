"""The four read calls every front end shares: search_docs, list_sources, list_pages, read_page.

The agent, the MCP server and the HTTP API call these and nothing else to
read a shelf, so they all cite the same way: every passage carries its page
URL with the section anchor (the origin's RAG tool dropped URLs, D14), and
every result has a typed form (`.to_json()`) and a compact Markdown form
(`.to_markdown()`) capped in size with a hint saying how to page on. Search and
page reads also take a budget in LLM tokens (`max_tokens`, see `budget/`):
whole passages or sections that fit, and a cursor that reads on exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from docshelf.access import redact_url
from docshelf.budget.page_slices import PageLayout
from docshelf.budget.tokens import TokenCounter, get_token_counter
from docshelf.errors import ConfigError, DocshelfError
from docshelf.models import Chunk, PageInfo, SearchHit, SourceStats, freshness_line
from docshelf.search import HybridSearcher
from docshelf.store.base import Store
from docshelf.versions import NotOnShelfError, ShelfVersions, split_key

if TYPE_CHECKING:
    from docshelf.project.scope import ProjectScope

MAX_OUTPUT_CHARS = 12_000
"""Size cap of one Markdown result: about 3k tokens, small enough for any agent's context."""
MAX_K = 30
MAX_PAGE_LIMIT = 200
DEFAULT_READ_CHUNKS = 20
DEFAULT_SEARCH_TOKENS = 2_000
"""Default budget of an agent's search_docs call: the best few passages (tokens, o200k_base)."""
DEFAULT_READ_TOKENS = 4_000
"""Default budget of an agent's read_page call: a few sections."""
MIN_TOKENS = 100
"""The smallest budget taken: room for a result's heading, its citation and a few lines."""
MAX_TOKENS = 100_000
MAX_QUERY_CHARS = 2000
"""The longest query searched: longer text is a paste of a document, not a question, and costs the FTS dearly."""
MAX_OFFSET = 1_000_000


def _budget(max_tokens: int) -> int:
    """Return `max_tokens` if it is a budget docshelf can keep, else raise a clear error."""
    if not MIN_TOKENS <= max_tokens <= MAX_TOKENS:
        raise ConfigError(f"max_tokens={max_tokens}: give {MIN_TOKENS} to {MAX_TOKENS} tokens "
                          f"(a few thousand suit an agent; default {DEFAULT_READ_TOKENS} for a page)")
    return max_tokens


def _unknown_anchor(url: str, anchor: str, layout: PageLayout) -> str:
    anchors = [s.anchor for s in layout.sections if s.anchor]
    listed = ", ".join(f"#{a}" for a in anchors[:12]) + (" …" if len(anchors) > 12 else "")
    return f"no section #{anchor} on {url}; its sections: {listed or 'none with an anchor'}"


class QueryTooLongError(DocshelfError):
    """A query over `MAX_QUERY_CHARS` characters."""


@dataclass(frozen=True)
class ChunkRef:
    """What a citation points at: one stored chunk."""

    url: str
    """The page URL with `#anchor` when the chunk has one."""
    page_url: str
    title: str
    chunk_number: int

    def to_json(self) -> dict[str, Any]:
        """Return the citation shape of `docshelf ask --json`."""
        return {"url": self.url, "title": self.title, "chunk_number": self.chunk_number}


@dataclass
class Passage:
    """A chunk as a tool hands it out: where it is, and its text."""

    ref: ChunkRef
    source: str
    heading_path: list[str]
    content: str
    score: float | None = None
    fetched_at: str | None = None
    """When the passage's page was last fetched."""
    changed_at: str | None = None
    """When the passage's page last changed."""

    @property
    def version(self) -> str:
        """The documentation version of the passage ("" when its source is unversioned)."""
        return split_key(self.source)[1]

    def to_json(self) -> dict[str, Any]:
        """Return this passage as plain JSON data."""
        return {**self.ref.to_json(), "page_url": self.ref.page_url, "source": split_key(self.source)[0],
                "version": self.version, "fetched_at": self.fetched_at, "changed_at": self.changed_at,
                "heading_path": self.heading_path, "content": self.content, "score": self.score}

    def to_markdown(self, number: int | None = None) -> str:
        """Return the passage as a Markdown block headed by its citation URL, source, version and dates."""
        label = f"[{number}] " if number is not None else ""
        path = " › ".join(self.heading_path) or self.ref.title
        score = f" · score {self.score:.4f}" if self.score is not None else ""
        name, version = split_key(self.source)
        where = f"{name} {version}" if version else name
        dates = freshness_line(self.fetched_at, self.changed_at)
        return (f"### {label}{path}\n<{self.ref.url}> · {where}{' · ' + dates if dates else ''}"
                f" · chunk {self.ref.chunk_number}{score}\n\n{self.content.strip()}\n")


def passage_from_hit(hit: SearchHit) -> Passage:
    """Return the passage for a search hit."""
    return Passage(ChunkRef(hit.url, hit.page_url, hit.title, hit.chunk_number), hit.source,
                   hit.heading_path, hit.content, hit.score, hit.fetched_at, hit.changed_at)


def passage_from_chunk(chunk: Chunk, anchor: str = "", page: PageInfo | None = None) -> Passage:
    """Return the passage for a stored chunk, cited at the section `anchor` names when the chunk holds it."""
    url = f"{chunk.url}#{anchor}"
    return Passage(ChunkRef(url if anchor and url in chunk.cite_urls else chunk.cite_url, chunk.url, chunk.title,
                            chunk.chunk_number), chunk.source, chunk.heading_path, chunk.content,
                   fetched_at=page.fetched_at if page else None, changed_at=page.changed_at if page else None)


def _fit(blocks: Sequence[str], max_chars: int) -> int:
    """Return how many leading blocks fit in `max_chars` (always at least one, so paging progresses)."""
    used = 0
    for count, block in enumerate(blocks):
        used += len(block)
        if used > max_chars and count > 0:
            return count
    return len(blocks)


@dataclass
class SearchResult:
    """The passages a search found, best first."""

    query: str
    passages: list[Passage]
    max_tokens: int | None = None
    """With a budget, `to_markdown` shows the whole passages that fit in it, best first (see `fit_tokens`)."""
    counter: TokenCounter | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data; with a budget, only the passages that fit it."""
        if self.max_tokens is None:
            return {"query": self.query, "passages": [p.to_json() for p in self.passages]}
        fitted = self.fit_tokens()
        return {"query": self.query, "max_tokens": self.max_tokens, "tokens": fitted.tokens,
                "passages": [p.to_json() for p in fitted.passages], "more": fitted.more, "cut": fitted.cut}

    def to_markdown(self, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Return the passages as Markdown, as many as fit in `max_chars` (or the token budget), with a hint when some were cut."""
        if not self.passages:
            return (f"No passages found for {self.query!r}. Try other words (names from the docs, "
                    "identifiers, error messages), another source, or list_pages to browse.")
        if self.max_tokens is not None:
            return self.fit_tokens().markdown
        blocks = [p.to_markdown(n) for n, p in enumerate(self.passages, 1)]
        shown = _fit(blocks, max_chars)
        text = f"Search results for {self.query!r} ({len(self.passages)} passages):\n\n" + "\n".join(blocks[:shown])
        if shown < len(blocks):
            text += (f"\n[{len(blocks) - shown} more passages cut to keep this short: search with a narrower "
                     "query or a smaller k, or read_page a URL above.]\n")
        return text

    def shown_passages(self, max_chars: int = MAX_OUTPUT_CHARS) -> list[Passage]:
        """Return the passages `to_markdown(max_chars)` shows (the ones a reader actually saw)."""
        if self.max_tokens is not None:
            return self.fit_tokens().passages
        return self.passages[: _fit([p.to_markdown(n) for n, p in enumerate(self.passages, 1)], max_chars)]

    def fit_tokens(self) -> FittedSearch:
        """Return the leading passages whose Markdown fits `max_tokens`, best first, and how many more matched.

        Passages are whole; only when not even the best one fits is it cut, at the largest block
        boundary that fits, and marked so (`cut`), with the read_page call for the rest.
        """
        assert self.max_tokens is not None
        counter = self.counter or get_token_counter()
        budget, total = self.max_tokens, len(self.passages)

        def render(blocks: list[str], more: int, note: str = "") -> str:
            head = f"Search results for {self.query!r}: {len(blocks)} of {total} passages, best first.\n\n"
            if not more:
                tail = ""
            elif note:  # a cut passage: the budget is tight, so the hints are short
                tail = f"[{more} more passages matched.]\n"
            else:
                tail = (f"\n[{more} more passages matched but did not fit in max_tokens={budget}: raise max_tokens, "
                        "narrow the query, or read_page a URL above.]\n")
            return head + "\n".join(blocks) + note + tail

        passages = [_fences_closed(p) for p in self.passages]
        blocks = [p.to_markdown(n) for n, p in enumerate(passages, 1)]
        shown = 0
        while shown < total and counter.count(render(blocks[: shown + 1], total - shown - 1)) <= budget:
            shown += 1
        if shown:
            text = render(blocks[:shown], total - shown)
            return FittedSearch(text, passages[:shown], total - shown, False, counter.count(text))
        best = passages[0]
        note = "\n[Cut to fit max_tokens: read_page its URL for all of it.]\n"
        layout = PageLayout(best.content.strip())

        def fits(body: str) -> bool:
            cut = replace(best, content=body)
            return counter.count(render([cut.to_markdown(1)], total - 1, note)) <= budget

        end = layout.fit(0, fits)
        cut = replace(best, content=layout.render(0, end))
        text = render([cut.to_markdown(1)], total - 1, note)
        return FittedSearch(text, [cut], total - 1, True, counter.count(text))


def _fences_closed(passage: Passage) -> Passage:
    """Return the passage with a code block its text leaves open closed (imported records may; chunks never do)."""
    layout = PageLayout(passage.content.strip())
    if layout.unclosed is None:
        return passage
    return replace(passage, content=layout.render(0, len(layout.markdown)))


@dataclass
class FittedSearch:
    """A search result fitted to a token budget."""

    markdown: str
    passages: list[Passage]
    """The passages shown (the first one cut when `cut`)."""
    more: int
    """Passages that matched but were left out."""
    cut: bool
    tokens: int


@dataclass
class SourceList:
    """The shelf's sources with their counts, and which are in the project's scope and why."""

    sources: list[SourceStats]
    in_scope: dict[str, str] | None = None
    """{source key: why it is in scope} when a project scope applies; None: every source is searched."""

    def _scope_note(self, key: str) -> str:
        if self.in_scope is None:
            return ""
        return f" — in scope: {self.in_scope[key]}" if key in self.in_scope else " — not in the project's scope"

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data."""
        return {"sources": [{"name": s.source.name, "source": s.source.base_name, "version": s.source.version,
                             "root": redact_url(s.source.root), "pages": s.pages, "pages_failed": s.pages_failed,
                             "chunks": s.chunks, "last_crawl_at": s.source.last_crawl_at,
                             "packages": s.source.packages,
                             "in_scope": None if self.in_scope is None else s.source.name in self.in_scope,
                             "scope_reason": (self.in_scope or {}).get(s.source.name)}
                            for s in self.sources]}

    def to_markdown(self, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Return one Markdown line per source version, with when it was last crawled."""
        if not self.sources:
            return "The shelf has no sources yet."
        lines = [f"- **{s.source.name}** — {redact_url(s.source.root)} ({s.pages} pages, {s.chunks} chunks"
                 f"{', ' + str(s.pages_failed) + ' failed' if s.pages_failed else ''}"
                 f"{', crawled ' + s.source.last_crawl_at[:10] if s.source.last_crawl_at else ''})"
                 f"{self._scope_note(s.source.name)}"
                 for s in self.sources]
        return "Sources on the shelf:\n" + "\n".join(lines)[:max_chars]


@dataclass
class PageList:
    """One window of a source's pages."""

    source: str
    total: int
    offset: int
    pages: list[PageInfo]

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data."""
        return {"source": self.source, "total": self.total, "offset": self.offset,
                "pages": [{"url": p.url, "title": p.title, "chunks": p.chunks, "status": p.status}
                          for p in self.pages]}

    def to_markdown(self, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Return one line per page and, when more pages follow, the offset to ask for next."""
        if not self.pages:
            return f"No pages in {self.source} at offset {self.offset} (total {self.total})."
        lines = [f"- [{p.title or p.url}]({p.url}) — {p.chunks} chunks"
                 + ("" if p.status == "ok" else f" ({p.status})") for p in self.pages]
        shown = _fit([line + "\n" for line in lines], max_chars)
        end = self.offset + shown
        text = f"Pages {self.offset + 1}–{end} of {self.total} in {self.source}:\n" + "\n".join(lines[:shown])
        if end < self.total:
            text += f"\n[More pages: list_pages(source={self.source!r}, offset={end}).]"
        return text


@dataclass
class PageWindow:
    """Some consecutive chunks of one page, in order."""

    page: PageInfo
    start_chunk: int
    passages: list[Passage] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data."""
        return {"url": self.page.url, "title": self.page.title, "source": split_key(self.page.source)[0],
                "version": split_key(self.page.source)[1], "fetched_at": self.page.fetched_at,
                "changed_at": self.page.changed_at, "total_chunks": self.page.chunks, "start_chunk": self.start_chunk,
                "passages": [p.to_json() for p in self.passages]}

    def to_markdown(self, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Return the chunks as Markdown, as many as fit, with the start_chunk to read next."""
        blocks = [p.to_markdown() for p in self.passages]
        shown = _fit(blocks, max_chars)
        end = self.start_chunk + shown
        dates = freshness_line(self.page.fetched_at, self.page.changed_at)
        head = (f"# {self.page.title}\n<{self.page.url}> · {self.page.source.replace('@', ' ')} · {dates} · "
                f"chunks {self.start_chunk}–{end - 1} of {self.page.chunks}\n\n")
        text = head + "\n".join(blocks[:shown])
        if end < self.page.chunks:
            text += f"\n[Page continues: read_page(url={self.page.url!r}, start_chunk={end}).]\n"
        return text

    def shown_passages(self, max_chars: int = MAX_OUTPUT_CHARS) -> list[Passage]:
        """Return the passages `to_markdown(max_chars)` shows."""
        return self.passages[: _fit([p.to_markdown() for p in self.passages], max_chars)]


@dataclass
class PageSlice:
    """A byte range of a page's stored Markdown, fitted to a token budget, with the cursor that reads on."""

    page: PageInfo
    start: int
    """Byte offset (UTF-8) in the page's Markdown where the slice starts."""
    end: int
    """Byte offset just past the slice: the next slice starts here."""
    total: int
    """The page's size in bytes."""
    text: str
    """The page's bytes [start, end), exactly."""
    shown: str
    """`text` as shown: with the code block's opening line before it and a closing fence after it when the
    slice starts or ends inside a code block, so its fences balance."""
    cursor: str | None
    """Pass to read_page(cursor=…) to read on from `end`; None at the end of the page."""
    max_tokens: int
    tokens: int = 0
    """Tokens of `to_markdown()`."""

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data."""
        return {"url": self.page.url, "title": self.page.title, "source": split_key(self.page.source)[0],
                "version": split_key(self.page.source)[1], "fetched_at": self.page.fetched_at,
                "changed_at": self.page.changed_at, "start": self.start, "end": self.end, "total": self.total, "content": self.shown,
                "cursor": self.cursor, "max_tokens": self.max_tokens, "tokens": self.tokens}

    def to_markdown(self) -> str:
        """Return the slice as Markdown headed by its page and ended, when the page goes on, by the call to read on."""
        return _slice_head(self.page, self.start, self.total) + self.shown + _slice_tail(self.page, self.end, self.total,
                                                                                         self.cursor)


def _slice_head(page: PageInfo, start: int, total: int) -> str:
    where = "from the start" if start == 0 else f"from byte {start}"
    # Only when the page last changed: a read's heading must leave room in the smallest budget (MIN_TOKENS);
    # the JSON has both dates.
    changed = f" · changed {page.changed_at[:10]}" if page.changed_at else ""
    return f"# {page.title}\n<{page.url}> · {page.source.replace('@', ' ')}{changed} · {where} of {total} bytes\n\n"


def _slice_tail(page: PageInfo, end: int, total: int, cursor: str | None) -> str:
    if cursor is None:
        return "\n[End of page.]\n"
    return f"\n[Page continues, {total - end} bytes left: read_page(url={page.url!r}, cursor={cursor!r}).]\n"


def page_cursor(offset: int, content_hash: str | None) -> str:
    """Return the cursor for byte `offset` of a page whose Markdown has `content_hash`."""
    return f"{offset}:{(content_hash or '')[:8]}"


class ShelfTools:
    """The read calls over one shelf, with clear errors for unknown sources and URLs.

    Args:
        store: the shelf.
        searcher: its hybrid searcher (it loads the query embedder on first use).
    """

    def __init__(self, store: Store, searcher: HybridSearcher, scope: ProjectScope | None = None) -> None:
        self.store = store
        self.searcher = searcher
        self.scope = scope
        """The project scope the searcher honours (for list_sources to say so), or None."""

    def search_docs(self, query: str, source: str | Sequence[str] | None = None, k: int | None = None,
                    max_tokens: int | None = None, version: str | None = None) -> SearchResult:
        """Return the best passages for `query`, from one or more sources or all of them.

        Args:
            query: what to look for.
            source: one source, several, or None for all. A source is `name` (its pinned or newest
                version) or `name@version`.
            k: passages to find (default 8; with `max_tokens`, 30, of which those that fit are shown).
            max_tokens: the result's budget in LLM tokens; None keeps the older size cap in characters.
            version: the version of a single `source` given without one.
        """
        if len(query) > MAX_QUERY_CHARS:
            raise QueryTooLongError(f"the query is {len(query)} characters; search with at most {MAX_QUERY_CHARS}")
        sources = (source,) if isinstance(source, str) else tuple(source or ())
        if version:
            if len(sources) != 1 or "@" in sources[0]:
                raise NotOnShelfError("version= needs exactly one source= without @version")
            sources = (f"{sources[0]}@{version}",)
        for name in sources:
            self.resolve_source(name)  # an unknown source or version: a clear error naming those there are
        budget = None if max_tokens is None else _budget(max_tokens)
        k = max(1, min(k if k is not None else (8 if budget is None else MAX_K), MAX_K))
        hits = self.searcher.search(query, k=k, sources=sources, per_page=2)
        return SearchResult(query, [passage_from_hit(h) for h in hits], budget,
                            None if budget is None else get_token_counter())

    def read_page_text(self, url: str, max_tokens: int = DEFAULT_READ_TOKENS, cursor: str | None = None,
                       around: int | None = None) -> PageSlice:
        """Return whole sections of a page's Markdown that fit `max_tokens`, and the cursor to read on.

        Args:
            url: the page URL; with #anchor, reading starts at that section.
            max_tokens: the result's budget in LLM tokens (the whole Markdown result, heading included).
            cursor: where to go on, from the previous call's result (overrides the #anchor).
            around: with #anchor, also this many sections before and after the anchor's section
                (fewer when they do not all fit).

        Raises:
            NotOnShelfError: unknown page or anchor, or a cursor the page no longer matches.
        """
        page_url, _, anchor = url.partition("#")
        page = self._page(page_url)
        budget = _budget(max_tokens)
        markdown = self.store.get_page_markdown(page.url) or ""
        layout = PageLayout(markdown)
        counter = get_token_counter()
        encoded = markdown.encode("utf-8")
        total = len(encoded)
        byte_at = lambda offset: len(markdown[:offset].encode("utf-8"))

        def fits_from(start: int) -> Callable[[str], bool]:
            # The tail is priced at its longest (most bytes left, a cursor at the page's end), so it always fits.
            head = _slice_head(page, byte_at(start), total)
            tail = _slice_tail(page, total, 2 * total, page_cursor(total, page.content_hash))
            return lambda body: counter.count(head + body + tail) <= budget

        if around is not None and not anchor:
            raise ConfigError("around needs a URL with #anchor: the section to read around")
        if cursor is not None:
            start = self._cursor_offset(page, markdown, encoded, cursor)
            end = layout.fit(start, fits_from(start)) if start < len(markdown) else start
        elif anchor:
            index = layout.section_index(anchor)
            if index is None:
                raise NotOnShelfError(_unknown_anchor(page.url, anchor, layout))
            start, end = self._around(layout, index, max(0, around or 0), fits_from)
        else:
            start = 0
            end = layout.fit(0, fits_from(0)) if markdown else 0
        result = PageSlice(page, byte_at(start), byte_at(end), total, markdown[start:end], layout.render(start, end),
                           page_cursor(byte_at(end), page.content_hash) if end < len(markdown) else None, budget)
        result.tokens = counter.count(result.to_markdown())
        return result

    @staticmethod
    def _around(layout: PageLayout, index: int, around: int,
                fits_from: Callable[[int], Callable[[str], bool]]) -> tuple[int, int]:
        """Return the widest run of sections centred on `index` (at most `around` either side) that fits,
        or the fitting start of the anchor's section alone."""
        sections = layout.sections
        for width in range(around, -1, -1):
            start = sections[max(0, index - width)].start
            end = sections[min(len(sections) - 1, index + width)].end
            if fits_from(start)(layout.render(start, end)):
                return start, end
        start = sections[index].start
        return start, layout.fit(start, fits_from(start))

    @staticmethod
    def _cursor_offset(page: PageInfo, markdown: str, encoded: bytes, cursor: str) -> int:
        """Return the character offset a cursor names, checking it was given for this version of the page."""
        offset_text, _, digest = cursor.partition(":")
        if not offset_text.isdigit() or not 0 <= int(offset_text) <= len(encoded):
            raise NotOnShelfError(f"cursor {cursor!r} is not one read_page gave for {page.url}; "
                                  "read the page again without a cursor")
        if digest != (page.content_hash or "")[:8]:
            raise NotOnShelfError(f"{page.url} changed since cursor {cursor!r} was given (it was crawled again); "
                                  "read it again without a cursor, or from its #anchor")
        try:
            return len(encoded[: int(offset_text)].decode("utf-8"))
        except UnicodeDecodeError:
            raise NotOnShelfError(f"cursor {cursor!r} falls inside a character of {page.url}; "
                                  "use the cursor read_page returned") from None

    def list_sources(self) -> SourceList:
        """Return the shelf's sources, each marked in or out of the project's scope when there is one."""
        stats = self.store.list_sources()
        if self.scope is None:
            return SourceList(stats)
        versions = ShelfVersions.of(s.source.name for s in stats)
        in_scope = {}
        for name, entry in self.scope.sources.items():
            if name in versions.by_name:
                in_scope[versions.resolve(name, pins=self.scope.pins)] = entry.reason
        return SourceList(stats, in_scope)

    def list_pages(self, source: str, prefix: str | None = None, limit: int = 50, offset: int = 0) -> PageList:
        """Return a window of a source's pages (sorted by URL), `limit` at most 200."""
        source = self.resolve_source(source)
        limit = max(1, min(limit, MAX_PAGE_LIMIT))
        offset = max(0, min(offset, MAX_OFFSET))
        pages = self.store.list_pages(source, prefix=prefix, limit=limit, offset=offset)
        return PageList(source, self.store.count_pages(source, prefix=prefix), offset, pages)

    def read_page(self, url: str, start_chunk: int | None = None,
                  max_chunks: int = DEFAULT_READ_CHUNKS) -> PageWindow:
        """Return a page's chunks in order from `start_chunk` (or from the section `url#anchor` names)."""
        page_url, _, anchor = url.partition("#")
        page = self._page(page_url)
        max_chunks = max(1, min(max_chunks, MAX_K * 2))
        if start_chunk is not None:
            start_chunk = min(start_chunk, MAX_OFFSET)
        if start_chunk is None:
            start_chunk = self._anchor_chunk(page.url, anchor) if anchor else 0
        if not 0 <= start_chunk < max(page.chunks, 1):
            raise NotOnShelfError(f"{page.url} has {page.chunks} chunks (0–{page.chunks - 1}); "
                                  f"no chunk {start_chunk}")
        chunks = self.store.get_chunks(page.url, start=start_chunk, limit=max_chunks)
        return PageWindow(page, start_chunk, [passage_from_chunk(c, anchor, page) for c in chunks])

    def resolve_source(self, spec: str) -> str:
        """Return the key of `name` (its pinned or newest version) or `name@version`.

        Raises:
            NotOnShelfError: an unknown source; UnknownVersionError: an unknown version (listing those there are).
        """
        return ShelfVersions.of(self.store.source_names()).resolve(spec, pins=self.searcher.pins)

    def _page(self, url: str) -> PageInfo:
        # Agents drop or add the trailing slash of directory URLs; both name the same page.
        candidates = [url, url[:-1] if url.endswith("/") else url + "/"]
        for candidate in candidates:
            page = self.store.get_page(candidate)
            if page is not None:
                return page
        raise NotOnShelfError(f"no page {url} on the shelf; use a URL from search_docs or list_pages")

    def _anchor_chunk(self, url: str, anchor: str) -> int:
        for chunk in self.store.get_chunks(url):
            if chunk.anchor == anchor or any(s.anchor == anchor for s in chunk.sections):
                return chunk.chunk_number
        return 0
