"""One web page from URL to `CrawlOutcome`: fetch, vet the response, decode, collect links."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from docshelf.crawl.app_shell import needs_browser
from docshelf.crawl.base import CrawlOutcome, Fetched, RenderMode, Validators
from docshelf.crawl.content import content_kind, decode, media_type
from docshelf.crawl.fetcher import Fetcher, HopCheck, Reply
from docshelf.crawl.links import html_links, markdown_links
from docshelf.crawl.robots import RobotsCache
from docshelf.crawl.scope import Scope
from docshelf.errors import CrawlError, FetchError, SkippedPage

if TYPE_CHECKING:
    from docshelf.crawl.render import Renderer


class PageLoader:
    """Loads pages within one scope, sending the stored validators when it has them."""

    def __init__(self, fetcher: Fetcher, robots: RobotsCache, scope: Scope,
                 renderer: Renderer | None = None, render: RenderMode = "never") -> None:
        self.scope = scope
        self.validators: Validators | None = None
        """Stored (etag, last_modified) per URL; None sends no conditional requests."""
        self._fetcher = fetcher
        self._robots = robots
        self._renderer = renderer
        self._render = render if renderer is not None else "never"
        self.prefer_markdown = False
        """Read pages from the Markdown twins they advertise."""

    async def load(self, url: str, depth: int) -> CrawlOutcome:
        """Return the outcome of fetching `url`; a failure is an outcome, never an exception."""
        try:
            reply = await self.fetch(url)
            return await self.finish(self.outcome(reply, depth), reply)
        except CrawlError as exc:
            return CrawlOutcome(url, error=exc)

    async def finish(self, outcome: CrawlOutcome, reply: Reply) -> CrawlOutcome:
        """Return a page's outcome read from its Markdown twin (`prefer_markdown`), or rendered when it needs a browser.

        Raises:
            FetchError: the page needed a browser and rendering failed.
        """
        if self.prefer_markdown and outcome.fetched is not None and outcome.fetched.kind == "html":
            twin = await self.markdown_twin(outcome)
            if twin is not None:
                return twin
        return await self.rendered(outcome, reply)

    async def markdown_twin(self, outcome: CrawlOutcome) -> CrawlOutcome | None:
        """Return the page read from the Markdown twin it advertises, or None when it has none that answers.

        The page keeps its own URL (citations point at the HTML page) and its links (the twin's
        relative links may point at other `.md` files).
        """
        fetched = outcome.fetched
        assert fetched is not None
        twin = html_links(fetched.text, fetched.url).markdown
        if twin is None or not self.scope.contains(twin):
            return None
        try:
            reply = await self._fetcher.get(twin, check_hop=self._check_hop, check_content=self._check_content)
        except CrawlError:
            return None
        kind = content_kind(reply.headers.get("content-type"), reply.url)
        text = decode(reply.body, "markdown", reply.headers.get("content-type")) if reply.status == 200 else None
        if kind not in ("markdown", "text") or not text or not text.strip():
            return None
        return CrawlOutcome(outcome.url, fetched=replace(fetched, kind="markdown", text=text))

    async def rendered(self, outcome: CrawlOutcome, reply: Reply) -> CrawlOutcome:
        """Return `outcome` with the page's HTML as a browser renders it, when the render mode asks for it.

        Raises:
            FetchError: the page needed a browser and rendering failed (no browser, timeout, crash).
        """
        fetched = outcome.fetched
        if fetched is None or fetched.kind != "html" or self._renderer is None or self._render == "never":
            return outcome
        if self._render == "auto" and not needs_browser(fetched.text, fetched.url):
            return outcome
        html = await self._renderer.render(reply.url, reply.body)
        found = html_links(html, reply.url)
        return CrawlOutcome(outcome.url, fetched=replace(fetched, text=html, links=found.links))

    async def fetch(self, url: str, check_hop: HopCheck | None = None, *, conditional: bool = True) -> Reply:
        """Return the reply for `url`, following redirects that stay in scope (or that `check_hop` allows)."""
        # An API description stands for several pages (one per tag): a 304 for it would leave them unreported.
        conditional = conditional and content_kind(None, url) != "openapi"
        return await self._fetcher.get(
            url,
            check_hop=check_hop or self._check_hop,
            check_content=self._check_content,
            validators=self.validators if conditional else None,
        )

    def outcome(self, reply: Reply, depth: int) -> CrawlOutcome:
        """Return the outcome a final reply stands for.

        Raises:
            FetchError: an error status, undecodable bytes, an empty page.
            SkippedPage: a content type the crawler does not read.
        """
        if reply.status == 304 and reply.conditional:
            return CrawlOutcome(reply.url, not_modified=True, depth=depth)
        if not 200 <= reply.status < 300:
            raise FetchError(reply.url, f"HTTP {reply.status}")
        content_type = reply.headers.get("content-type")
        kind = content_kind(content_type, reply.url, include_pdf=self.scope.include_pdf)
        if kind is None:
            raise SkippedPage(reply.url, f"content type {media_type(content_type)}")
        if kind == "pdf":
            fetched = Fetched(reply.url, kind, "", status=reply.status, etag=reply.headers.get("etag"),
                              last_modified=reply.headers.get("last-modified"), depth=depth, data=reply.body)
            return CrawlOutcome(reply.url, fetched=fetched)
        text = decode(reply.body, kind, content_type)
        if text is None:
            raise FetchError(reply.url, "undecodable bytes")
        if not text.strip():
            raise FetchError(reply.url, "empty page")
        url, links = reply.url, []
        if kind == "html":
            found = html_links(text, reply.url)
            links = found.links
            # A canonical URL outside the scope would file the page under a place the crawl does not own;
            # an app shell names its root as canonical for every route of a hash router.
            if found.canonical and self.scope.accepts(found.canonical) and not urlsplit(reply.url).fragment:
                url = found.canonical
        elif kind == "markdown":
            links = markdown_links(text, reply.url)
        fetched = Fetched(
            url,
            kind,
            text,
            status=reply.status,
            etag=reply.headers.get("etag"),
            last_modified=reply.headers.get("last-modified"),
            depth=depth,
            links=links,
        )
        return CrawlOutcome(url, fetched=fetched)

    def _check_content(self, url: str, headers: httpx.Headers) -> None:
        """Refuse a response the crawl does not read, before its body is read (PDFs unless the scope takes them)."""
        check_content(url, headers, include_pdf=self.scope.include_pdf)

    async def _check_hop(self, url: str) -> str | None:
        """Return why the crawl may not follow a redirect to `url`, or None when it may."""
        if not self.scope.accepts(url):
            return f"redirect out of scope to {url}"
        return await self._robots.reason_to_skip(url)


def check_content(url: str, headers: httpx.Headers, *, include_pdf: bool = False) -> None:
    """Refuse a response whose Content-Type is not one docshelf reads, before its body is read.

    Raises:
        SkippedPage: "content type image/png" and the like ("application/pdf" unless `include_pdf`).
    """
    content_type = headers.get("content-type")
    if content_kind(content_type, url, include_pdf=include_pdf) is None:
        raise SkippedPage(url, f"content type {media_type(content_type)}")
