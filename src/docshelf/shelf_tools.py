"""The four read calls every front end shares: search_docs, list_sources, list_pages, read_page.

The agent, the MCP server and the HTTP API call these and nothing else to
read a shelf, so they all cite the same way: every passage carries its page
URL with the section anchor (the origin's RAG tool dropped URLs, D14), and
every result has a typed form (`.to_json()`) and a compact Markdown form
(`.to_markdown()`) capped in size with a hint saying how to page on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from docshelf.access import redact_url
from docshelf.errors import DocshelfError
from docshelf.models import Chunk, PageInfo, SearchHit, SourceStats
from docshelf.search import HybridSearcher
from docshelf.store.base import Store

MAX_OUTPUT_CHARS = 12_000
"""Size cap of one Markdown result: about 3k tokens, small enough for any agent's context."""
MAX_K = 30
MAX_PAGE_LIMIT = 200
DEFAULT_READ_CHUNKS = 20
MAX_QUERY_CHARS = 2000
"""The longest query searched: longer text is a paste of a document, not a question, and costs the FTS dearly."""
MAX_OFFSET = 1_000_000


class NotOnShelfError(DocshelfError):
    """A source or page the caller named is not on the shelf; the message says what is."""


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

    def to_json(self) -> dict[str, Any]:
        """Return this passage as plain JSON data."""
        return {**self.ref.to_json(), "page_url": self.ref.page_url, "source": self.source,
                "heading_path": self.heading_path, "content": self.content, "score": self.score}

    def to_markdown(self, number: int | None = None) -> str:
        """Return the passage as a Markdown block headed by its citation URL."""
        label = f"[{number}] " if number is not None else ""
        path = " › ".join(self.heading_path) or self.ref.title
        score = f" · score {self.score:.4f}" if self.score is not None else ""
        return (f"### {label}{path}\n<{self.ref.url}> · {self.source} · chunk {self.ref.chunk_number}{score}\n\n"
                f"{self.content.strip()}\n")


def passage_from_hit(hit: SearchHit) -> Passage:
    """Return the passage for a search hit."""
    return Passage(ChunkRef(hit.url, hit.page_url, hit.title, hit.chunk_number), hit.source,
                   hit.heading_path, hit.content, hit.score)


def passage_from_chunk(chunk: Chunk, anchor: str = "") -> Passage:
    """Return the passage for a stored chunk, cited at the section `anchor` names when the chunk holds it."""
    url = f"{chunk.url}#{anchor}"
    return Passage(ChunkRef(url if anchor and url in chunk.cite_urls else chunk.cite_url, chunk.url, chunk.title,
                            chunk.chunk_number), chunk.source, chunk.heading_path, chunk.content)


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

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data."""
        return {"query": self.query, "passages": [p.to_json() for p in self.passages]}

    def to_markdown(self, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Return the passages as Markdown, as many as fit in `max_chars`, with a hint when some were cut."""
        if not self.passages:
            return (f"No passages found for {self.query!r}. Try other words (names from the docs, "
                    "identifiers, error messages), another source, or list_pages to browse.")
        blocks = [p.to_markdown(n) for n, p in enumerate(self.passages, 1)]
        shown = _fit(blocks, max_chars)
        text = f"Search results for {self.query!r} ({len(self.passages)} passages):\n\n" + "\n".join(blocks[:shown])
        if shown < len(blocks):
            text += (f"\n[{len(blocks) - shown} more passages cut to keep this short: search with a narrower "
                     "query or a smaller k, or read_page a URL above.]\n")
        return text

    def shown_passages(self, max_chars: int = MAX_OUTPUT_CHARS) -> list[Passage]:
        """Return the passages `to_markdown(max_chars)` shows (the ones a reader actually saw)."""
        return self.passages[: _fit([p.to_markdown(n) for n, p in enumerate(self.passages, 1)], max_chars)]


@dataclass
class SourceList:
    """The shelf's sources with their counts."""

    sources: list[SourceStats]

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON data."""
        return {"sources": [{"name": s.source.name, "root": redact_url(s.source.root), "pages": s.pages,
                             "chunks": s.chunks, "last_crawl_at": s.source.last_crawl_at}
                            for s in self.sources]}

    def to_markdown(self, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Return one Markdown line per source."""
        if not self.sources:
            return "The shelf has no sources yet."
        lines = [f"- **{s.source.name}** — {redact_url(s.source.root)} ({s.pages} pages, {s.chunks} chunks)"
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
        return {"url": self.page.url, "title": self.page.title, "source": self.page.source,
                "total_chunks": self.page.chunks, "start_chunk": self.start_chunk,
                "passages": [p.to_json() for p in self.passages]}

    def to_markdown(self, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Return the chunks as Markdown, as many as fit, with the start_chunk to read next."""
        blocks = [p.to_markdown() for p in self.passages]
        shown = _fit(blocks, max_chars)
        end = self.start_chunk + shown
        head = (f"# {self.page.title}\n<{self.page.url}> · {self.page.source} · "
                f"chunks {self.start_chunk}–{end - 1} of {self.page.chunks}\n\n")
        text = head + "\n".join(blocks[:shown])
        if end < self.page.chunks:
            text += f"\n[Page continues: read_page(url={self.page.url!r}, start_chunk={end}).]\n"
        return text

    def shown_passages(self, max_chars: int = MAX_OUTPUT_CHARS) -> list[Passage]:
        """Return the passages `to_markdown(max_chars)` shows."""
        return self.passages[: _fit([p.to_markdown() for p in self.passages], max_chars)]


class ShelfTools:
    """The read calls over one shelf, with clear errors for unknown sources and URLs.

    Args:
        store: the shelf.
        searcher: its hybrid searcher (it loads the query embedder on first use).
    """

    def __init__(self, store: Store, searcher: HybridSearcher) -> None:
        self.store = store
        self.searcher = searcher

    def search_docs(self, query: str, source: str | Sequence[str] | None = None, k: int = 8) -> SearchResult:
        """Return the best passages for `query`, from one or more sources or all of them."""
        if len(query) > MAX_QUERY_CHARS:
            raise QueryTooLongError(f"the query is {len(query)} characters; search with at most {MAX_QUERY_CHARS}")
        sources = (source,) if isinstance(source, str) else tuple(source or ())
        for name in sources:
            self._check_source(name)
        k = max(1, min(k, MAX_K))
        hits = self.searcher.search(query, k=k, sources=sources, per_page=2)
        return SearchResult(query, [passage_from_hit(h) for h in hits])

    def list_sources(self) -> SourceList:
        """Return the shelf's sources."""
        return SourceList(self.store.list_sources())

    def list_pages(self, source: str, prefix: str | None = None, limit: int = 50, offset: int = 0) -> PageList:
        """Return a window of a source's pages (sorted by URL), `limit` at most 200."""
        self._check_source(source)
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
        return PageWindow(page, start_chunk, [passage_from_chunk(c, anchor) for c in chunks])

    def _check_source(self, name: str) -> None:
        if self.store.get_source(name) is None:
            known = ", ".join(s.source.name for s in self.store.list_sources()) or "none yet"
            raise NotOnShelfError(f"unknown source {name!r}; the shelf holds: {known}")

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
