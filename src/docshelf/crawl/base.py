"""What the crawler hands the pipeline: fetched documents and per-URL outcomes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from docshelf.errors import CrawlError

RenderMode = Literal["auto", "always", "never"]
ContentKind = Literal["html", "markdown", "text", "rst", "notebook", "openapi", "pdf"]
DiscoveryMethod = Literal["llms.txt", "sitemap", "links", "folder", "git", "llms-full.txt"]
Validators = Callable[[str], "tuple[str | None, str | None] | None"]
"""Looks up the stored (etag, last_modified) of a URL, or None when the URL was never stored."""
KnownLinks = Callable[[str], "list[str] | None"]
"""Looks up the outgoing links stored with a URL, or None when none are stored."""


@dataclass(frozen=True)
class CrawlOptions:
    """Scope and politeness for one crawl, as one value object.

    >>> CrawlOptions(include=["*/api/*"], max_pages=50)
    """

    include: tuple[str, ...] = ()
    """Globs matched against the full URL; when given, a URL must match one."""
    exclude: tuple[str, ...] = ()
    max_pages: int | None = None
    max_depth: int | None = None
    concurrency: int = 8
    """Requests in flight in total."""
    per_host: int = 4
    """Requests in flight per host."""
    timeout: float = 20.0
    """Seconds per request."""
    max_bytes: int = 10 * 1024 * 1024
    retries: int = 3
    """Retries on 429/5xx/timeouts, with exponential backoff honouring Retry-After."""
    backoff: float = 0.5
    max_retry_after: float = 60.0
    user_agent: str = "docshelf/0.1 (+https://github.com/docshelf/docshelf)"
    robots_agent: str = "docshelf"
    respect_robots: bool = True
    include_pdf: bool = False
    """Take PDF files (linked from pages, or in folders); a PDF named as the root is always taken."""
    render: RenderMode = "auto"
    """Render pages in Chromium: "auto" only app shells (see `crawl.app_shell`), "always", or "never"."""
    render_concurrency: int = 2
    """Pages rendered at once."""
    render_timeout: float = 30.0
    """Seconds for one page to load and settle in the browser."""
    prefer_llms_full: bool = False
    """When the site publishes `llms-full.txt`, read the documentation from it instead of crawling pages."""
    prefer_markdown: bool = False
    """Read a page from the Markdown twin it advertises (`<link rel="alternate" type="text/markdown">`)."""
    ref: str | None = None
    """For a Git repository: the branch, tag or commit to read (default: the remote's HEAD)."""
    path: str | None = None
    """For a Git repository: the folder holding the documentation (default: found, see `crawl.git`)."""


@dataclass
class Fetched:
    """A document the crawler fetched (or read from disk)."""

    url: str
    """Normalised URL of the document (after in-scope redirects / canonical), no fragment."""
    kind: ContentKind
    text: str
    """The document as text; "" for a binary kind (pdf), whose bytes are in `data`."""
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    depth: int = 0
    links: list[str] = field(default_factory=list)
    data: bytes | None = None
    """The raw bytes of a binary document (a PDF)."""


@dataclass
class CrawlOutcome:
    """What happened to one URL: fetched, unchanged (HTTP 304), or failed/skipped with a reason."""

    url: str
    fetched: Fetched | None = None
    not_modified: bool = False
    error: CrawlError | None = None
    depth: int = 0
    """Link hops from the start page (of a `not_modified` page: its stored links lie one further)."""


@dataclass
class CrawlReport:
    """How a crawl went as a whole, filled in while its outcomes are iterated."""

    discovered_by: DiscoveryMethod | None = None
    """Where the page list came from; set once discovery has run."""
    complete: bool = False
    """True once every URL in scope was attempted; False when cut by `max_pages` or stopped early.

    Only a complete crawl proves that a page missing from it is gone from the site.
    """
    commit: str | None = None
    """For a Git repository: the commit read."""
    ref: str | None = None
    """For a Git repository: the ref asked for (None: the remote's HEAD)."""
