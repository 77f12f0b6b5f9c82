"""The shared vocabulary of docshelf: sources, pages, chunks and search hits.

Every stage passes these plain dataclasses to the next; none of them knows
about a backend. A `Chunk` is the record of the system docshelf descends
from (url, source, chunk_number, title, summary, embedding, metadata,
content), plus the heading path and section anchor that citations need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

PageStatus = Literal["ok", "failed", "skipped"]
SearchMode = Literal["hybrid", "bm25", "vector"]


def utc_now() -> str:
    """Return the current time as an ISO-8601 string with a UTC offset."""
    return datetime.now(UTC).isoformat()


@dataclass
class Source:
    """A documentation site or folder added to a shelf under one name."""

    name: str
    """Short identifier, e.g. `docs_python_org`; the record file calls it `session_id`."""
    root: str
    """The URL or `file://` path the source was added from."""
    options: dict[str, Any] = field(default_factory=dict)
    """The crawl options it was added with (include/exclude globs, limits), reused on refresh."""
    created_at: str = field(default_factory=utc_now)
    last_crawl_at: str | None = None
    packages: list[str] = field(default_factory=list)
    """The packages (PyPI or npm names) the documentation is about, for matching a project's dependencies."""

    @property
    def base_name(self) -> str:
        """The source's name without its version (`django` for `django@4.2`)."""
        return self.name.partition("@")[0]

    @property
    def version(self) -> str:
        """The documentation version this crawl holds ("4.2"), or "" when unversioned.

        A version is part of the name (`base@version`, see `docshelf.versions`), so each version of a
        source is a crawl of its own, refreshed and removed on its own."""
        return self.name.partition("@")[2]


@dataclass
class SourceStats:
    """A source with the counts `docshelf sources` shows."""

    source: Source
    pages: int
    pages_failed: int
    pages_skipped: int
    chunks: int
    embedded: int


@dataclass
class Page:
    """One fetched document, converted to Markdown."""

    url: str
    """Normalised URL without fragment (`file://` for local files)."""
    source: str
    title: str
    markdown: str
    content_hash: str
    """sha256 of `markdown`: an unchanged hash means nothing to re-chunk or re-embed."""
    fetched_at: str = field(default_factory=utc_now)
    etag: str | None = None
    last_modified: str | None = None
    status: PageStatus = "ok"
    error: str | None = None
    prior: float = 1.0
    """Search score multiplier from the page's structure (see `page_kind`): below 1 for indexes,
    source listings and release notes."""
    embeds: bool = True
    """Whether the page's chunks get vectors: generated navigation (indexes, tables of contents) is
    searchable by BM25 but never embedded. Decided when the page is built; not stored."""
    changed_at: str | None = None
    """When the content last changed; None means now, at `fetched_at` (a copy between shelves keeps the original's)."""
    links: list[str] | None = None
    """The page's outgoing links as crawled, kept so that a refresh answered 304 still follows them;
    None when not known (imported pages, folders)."""


@dataclass
class PageInfo:
    """A page as listed by the store, without its text."""

    url: str
    source: str
    title: str
    status: PageStatus
    chunks: int
    fetched_at: str
    error: str | None = None
    content_hash: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    changed_at: str | None = None
    """When the page's content was last stored changed (first stored, or its Markdown differed)."""


@dataclass(frozen=True)
class PageChange:
    """One line of a source's change log: a page a refresh added, changed or removed."""

    source: str
    url: str
    change: Literal["added", "changed", "removed"]
    at: str
    """When the refresh that saw it stored it."""
    diff_lines: int = 0
    """Lines added plus lines removed in the page's Markdown (0 for added and removed pages)."""

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "url": self.url, "change": self.change, "at": self.at,
                "diff_lines": self.diff_lines}


@dataclass(frozen=True)
class Freshness:
    """When a page was last fetched and when its content last changed."""

    fetched_at: str
    changed_at: str | None


@dataclass(frozen=True)
class SectionStart:
    """Where one section of the page begins inside a chunk that packs several."""

    offset: int
    """Character offset in the chunk's content."""
    anchor: str | None
    """The section's `id`, for `url#anchor` citations."""
    heading_path: list[str]
    """Headings from the page's top down to this section."""

    def to_json(self) -> list:
        return [self.offset, self.anchor, self.heading_path]

    @classmethod
    def from_json(cls, value: list) -> SectionStart:
        offset, anchor, heading_path = value
        return cls(int(offset), anchor, list(heading_path))


@dataclass
class Section:
    """A piece of a page's Markdown produced by the chunker, before enrichment."""

    content: str
    heading_path: list[str]
    """Headings shared by every section the chunk holds, e.g. `["argparse", "action"]`."""
    anchor: str | None
    """The `id` of the section this chunk starts in, for `url#anchor` citations."""
    sections: list[SectionStart] = field(default_factory=list)
    """Every section that begins in the chunk, in order, when it packs more than one; else empty."""


@dataclass
class Chunk:
    """One record: a part of a page with its title, summary and (maybe) embedding."""

    url: str
    source: str
    chunk_number: int
    """0-based position within its page."""
    title: str
    summary: str
    content: str
    heading_path: list[str] = field(default_factory=list)
    anchor: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    """At least {source, crawled_at, url_path, chunk_size}; `chunk_size == len(content)`."""
    embedding: list[float] | None = None
    updated_dt: str | None = None
    context: str | None = None
    """A model-written sentence placing the chunk in its page, embedded before it (`--context llm`); else None."""
    enriched_by: str | None = None
    """Who wrote title and summary: "extractive", "llm:<model>", or None when not known (imported records)."""
    sections: list[SectionStart] = field(default_factory=list)
    """The sections packed into the chunk when there are several (see `Section.sections`); else empty."""

    @property
    def cite_url(self) -> str:
        """The URL with the section anchor, when the chunk has one."""
        return f"{self.url}#{self.anchor}" if self.anchor else self.url

    @property
    def cite_urls(self) -> list[str]:
        """Every URL that cites this chunk: one per section it holds, the first section's first."""
        anchors = dict.fromkeys([self.anchor, *(s.anchor for s in self.sections)])
        return [f"{self.url}#{anchor}" if anchor else self.url for anchor in anchors]


@dataclass
class Enrichment:
    """A chunk's title, summary and context sentence as a model wrote them (the enrichment cache's value)."""

    title: str
    summary: str
    context: str | None = None


@dataclass
class SearchHit:
    """A chunk returned by search, with its fused score."""

    url: str
    """The page URL with `#anchor` of the section when there is one."""
    page_url: str
    source: str
    chunk_number: int
    title: str
    summary: str
    heading_path: list[str]
    content: str
    score: float
    version: str = ""
    """The version of the documentation the hit is from ("" when unversioned); `source` is then `base@version`."""
    fetched_at: str | None = None
    """When its page was last fetched."""
    changed_at: str | None = None
    """When its page's content last changed."""

    @property
    def freshness(self) -> str:
        """Return "fetched 2026-12-01, changed 2026-11-20" (dates only), or "" when not known."""
        return freshness_line(self.fetched_at, self.changed_at)

    def to_json(self) -> dict[str, Any]:
        """Return the `docshelf search --json` shape of this hit."""
        return {
            "url": self.url,
            "source": self.source.partition("@")[0],
            "version": self.version,
            "fetched_at": self.fetched_at,
            "changed_at": self.changed_at,
            "chunk_number": self.chunk_number,
            "title": self.title,
            "summary": self.summary,
            "heading_path": self.heading_path,
            "content": self.content,
            "score": self.score,
        }


def freshness_line(fetched_at: str | None, changed_at: str | None) -> str:
    """Return "fetched 2026-12-01, changed 2026-11-20" from two ISO times (either may be missing)."""
    parts = [f"fetched {fetched_at[:10]}"] if fetched_at else []
    if changed_at:
        parts.append(f"changed {changed_at[:10]}")
    return ", ".join(parts)
