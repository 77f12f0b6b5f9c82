"""The crawl of a website: start page, discovery, then a bounded pool of fetches streamed as outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx

from docshelf.access import (
    AccessDeniedError,
    AccessPolicy,
    OriginAuth,
    guarded_client,
    redact_url,
    split_credentials,
)
from docshelf.crawl.api_descriptions import split_api_descriptions
from docshelf.crawl.base import (
    CrawlOptions,
    CrawlOutcome,
    CrawlReport,
    DiscoveryMethod,
    Fetched,
    KnownLinks,
    Validators,
)
from docshelf.crawl.discover import Discovery, split_llms_full
from docshelf.crawl.fetcher import Fetcher, is_unreachable
from docshelf.crawl.frontier import Frontier
from docshelf.crawl.git import crawl_repository, is_git_source
from docshelf.crawl.local import crawl_folder, is_local
from docshelf.crawl.page import PageLoader
from docshelf.crawl.politeness import Gates
from docshelf.crawl.render import BrowserUnavailable, Renderer
from docshelf.crawl.robots import RobotsCache, RobotsPolicy
from docshelf.crawl.scope import Scope
from docshelf.crawl.urls import is_pdf, normalize_url
from docshelf.errors import BlockedFetch, ConfigError, CrawlError, FetchError, SkippedPage

SINGLE_DOCUMENT_KINDS = frozenset({"openapi", "pdf", "notebook", "rst"})
"""Kinds of start document that are the whole source: nothing is discovered from them."""


def crawl(
    root: str,
    options: CrawlOptions,
    *,
    validators: Validators | None = None,
    known_links: KnownLinks | None = None,
    client: httpx.AsyncClient | None = None,
    since_commit: str | None = None,
    stored_urls: Iterable[str] = (),
    access: AccessPolicy | None = None,
) -> CrawlRun:
    """Return the crawl of a website, local folder or Git repository as an async iterator of `CrawlOutcome`.

    Outcomes stream as fetches complete, one per URL attempted: fetched, `not_modified`
    (HTTP 304), or an `error` (`FetchError` = failed, `SkippedPage` = skipped, each with a
    short reason). Nothing is fetched until iteration starts.

    How pages are found, in order: the `llms.txt` in the start URL's folder, then at the
    host root; the sitemaps named in robots.txt, then `sitemap.xml` in the start's folder
    and at the root; else links followed breadth first from the start page. A page list
    from `llms.txt` or a sitemap is authoritative: its pages are fetched and no links are
    followed. The start page is always fetched first. `max_depth` counts link hops from
    the start page; the pages of a list are one hop away. `max_pages` counts fetches.

    Once iteration ends, the returned `CrawlRun` tells how it went:

    - `complete`: every URL in scope was attempted, so a stored page the crawl did not
      report is gone from the site and may be deleted. False when `max_pages` cut the
      crawl short, or when iteration stopped early.
    - `discovered_by`: "llms.txt", "sitemap", "links" or "folder".

    ```python
    async with crawl("https://docs.example.com/", CrawlOptions(max_pages=100)) as run:
        async for outcome in run:
            ...
    if run.complete:
        ...
    ```

    Args:
        root: an http(s) URL (`https://` is assumed when no scheme is given), a folder or
            file path, a `file://` URL, or a Git repository (see `crawl.git.is_git_source`).
        options: scope and politeness.
        validators: returns the stored (etag, last_modified) of a URL. Pages from a page
            list (and local files) are then requested conditionally and reported as
            `not_modified` when unchanged. A link-following crawl needs the links of every
            page: it requests a page conditionally only when `known_links` has its stored
            links, and follows those when the page is unchanged. The start page is always
            fetched in full.
        known_links: returns the outgoing links stored with a URL (see above).
        client: the `httpx.AsyncClient` to use (not closed here; it bypasses `access`); by
            default one is created and closed. Redirects are always followed by the crawler,
            to check each hop.
        since_commit: for a Git repository, the commit read last time: only the files changed
            since are read again (see `crawl.git`).
        stored_urls: for a Git repository, the URLs of the pages the source holds: an unchanged
            file keeps the URL (the commit) it was stored under.
        access: which addresses the crawl may connect to, checked at connect time on every
            request (`docshelf.access`); by default the CLI's: the start URL's host is trusted,
            other private, loopback, link-local, multicast or reserved addresses are refused.
            A refused request is recorded as a failure with reason `blocked: …`. (A Git
            repository is cloned by the git command: a client's repository URL is checked
            before the crawl starts, by `AccessPolicy.check_url`, not at connect time.)

    An OpenAPI / Swagger document is reported as its pages (`crawl.api_descriptions`); a start
    URL that is one document (an API description, a PDF, a notebook) is the whole crawl. With
    `options.render`, app shells are rendered in Chromium (`crawl.render`).

    Raises (from the first iteration step):
        ConfigError: the start URL cannot be reached or answers 404/410; a folder does not exist;
            git cannot clone the repository; `render="always"` without a browser.
        AccessDeniedError: the start page (or a redirect of it) leads to an address `access` refuses.
    """
    report = CrawlReport()
    policy = access or AccessPolicy.from_env()
    if is_git_source(root, options):
        outcomes = crawl_repository(root, options, report, validators, since_commit, stored_urls)
    elif is_local(root):
        # A client's folder was allowed, not the places its symlinks lead to.
        outcomes = crawl_folder(root, options, report, validators, confined=not policy.trust_start)
    else:
        # Credentials in the start URL are sent to its origin only, and kept out of every URL stored or shown.
        start, credentials = split_credentials(start_url(root))
        auth = OriginAuth(start, *credentials) if credentials else None
        policy = policy.for_crawl(start)
        if is_pdf(start):  # a PDF the user names is always read; --include-pdf is about the PDFs a site links to
            options = replace(options, include_pdf=True)
        outcomes = _crawl_site(start, options, report, validators, known_links, client, policy, auth)
    return CrawlRun(split_api_descriptions(outcomes), report)


class CrawlRun:
    """An async iterator of `CrawlOutcome`s that also reports whether the crawl was complete.

    Use it as an async context manager (or call `aclose()`) to stop the fetches in flight
    when you leave the loop early.
    """

    def __init__(self, outcomes: AsyncGenerator[CrawlOutcome, None] | AsyncIterator[CrawlOutcome],
                 report: CrawlReport) -> None:
        self._outcomes = outcomes
        self.report = report

    @property
    def complete(self) -> bool:
        """Return True once every URL in scope was attempted (not cut by `max_pages`, not stopped early)."""
        return self.report.complete

    @property
    def discovered_by(self) -> DiscoveryMethod | None:
        """Return where the page list came from: "llms.txt", "sitemap", "links" or "folder"."""
        return self.report.discovered_by

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> CrawlOutcome:
        return await self._outcomes.__anext__()

    async def aclose(self) -> None:
        """Stop the crawl, cancelling the fetches in flight."""
        await self._outcomes.aclose()  # type: ignore[union-attr]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def start_url(root: str) -> str:
    """Return the normalised start URL for a root given by the user, adding `https://` when it has no scheme.

    Raises:
        ConfigError: the root is not a usable http(s) URL.
    """
    root = root.strip()
    if "://" not in root:
        root = f"https://{root}"
    try:
        url = normalize_url(root)
    except ValueError as exc:
        raise ConfigError(f"{root} is not a valid URL: {exc}") from exc
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ConfigError(f"{root} is not an http(s) URL or a folder")
    return url


async def _crawl_site(
    start: str,
    options: CrawlOptions,
    report: CrawlReport,
    validators: Validators | None,
    known_links: KnownLinks | None,
    client: httpx.AsyncClient | None,
    policy: AccessPolicy,
    auth: httpx.Auth | None = None,
) -> AsyncGenerator[CrawlOutcome, None]:
    """Yield the outcomes of crawling the site at `start`, with a client of our own unless one is given."""
    async with _http_client(client, options, policy, auth) as http:
        site = SiteCrawl(http, start, options, report, known_links)
        try:
            await site.check_renderer()
            # aclosing: leaving early must cancel the fetches in flight before the client closes.
            async with aclosing(site.run(validators)) as outcomes:
                async for outcome in outcomes:
                    yield outcome
        finally:
            await site.close()


@asynccontextmanager
async def _http_client(
    client: httpx.AsyncClient | None, options: CrawlOptions, policy: AccessPolicy, auth: httpx.Auth | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Yield `client`, or a new client configured from `options`, guarded by `policy`, closed afterwards."""
    if client is not None:
        yield client
        return
    headers = {"User-Agent": options.user_agent}
    own = guarded_client(policy, headers=headers, timeout=options.timeout, follow_redirects=False, auth=auth)
    async with own:
        yield own


@dataclass(frozen=True)
class SiteOpening:
    """What the first step of a website crawl found (`SiteCrawl.open_site`)."""

    start: str
    """The scope's start URL: where the start URL led, after redirects."""
    outcomes: list[CrawlOutcome]
    """The start page's outcome (unless globs leave it out), llms-full.txt pages, refused discovery requests."""
    method: DiscoveryMethod | None
    """How the pages were found; None for a start document that is the whole source."""
    pages: list[str]
    """The pages to fetch next, one hop from the start page."""
    complete: bool
    """True when `outcomes` are the whole crawl (one document, or the site's llms-full.txt)."""


class SiteCrawl:
    """The state of one website crawl: scope, frontier, and the number of fetches started."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        start: str,
        options: CrawlOptions,
        report: CrawlReport,
        known_links: KnownLinks | None = None,
        *,
        gates: Gates | None = None,
        robots: dict[str, RobotsPolicy] | None = None,
    ) -> None:
        self._start = start
        self._known_links = known_links
        self._options = options
        self._report = report
        self._fetcher = Fetcher(client, options, gates)
        self._robots = RobotsCache(self._fetcher, options.robots_agent, enabled=options.respect_robots, known=robots)
        self.renderer = (
            Renderer(self._fetcher, self._robots.reason_to_skip, concurrency=options.render_concurrency,
                     timeout=options.render_timeout)
            if options.render != "never" else None
        )
        self._loader = PageLoader(self._fetcher, self._robots, Scope.for_start(start, options),
                                  self.renderer, options.render)
        self._loader.prefer_markdown = options.prefer_markdown
        self._frontier = Frontier()
        self._started = 0

    async def check_renderer(self) -> None:
        """With `render="always"`, start the browser now: a crawl that cannot render must not start.

        Raises:
            ConfigError: no browser, with what to install.
        """
        if self.renderer is None or self._options.render != "always":
            return
        try:
            await self.renderer.check()
        except BrowserUnavailable as exc:
            raise ConfigError(f"--render always: {exc}") from exc

    async def close(self) -> None:
        """Close the browser, when one was started."""
        if self.renderer is not None:
            await self.renderer.close()

    async def run(self, validators: Validators | None = None) -> AsyncGenerator[CrawlOutcome, None]:
        """Yield the start page's outcome, then those of every page discovered from it."""
        opening = await self.open_site(validators)
        for outcome in opening.outcomes:
            yield outcome
        if opening.complete:
            self._report.complete = True
            return
        for url in opening.pages:
            self._enqueue(url, 1)
        async with aclosing(self._fetch_frontier(follow_links=opening.method == "links")) as outcomes:
            async for outcome in outcomes:
                yield outcome
        for blocked in self._blocked_outcomes():
            yield blocked
        self._report.complete = not self._frontier.has_pending()

    async def open_site(self, validators: Validators | None = None) -> SiteOpening:
        """Fetch the start page and find the site's pages: the first step of a crawl, as `SiteOpening`."""
        first = await self._open()
        self._frontier.claim(first.url)
        outcomes = [first] if self._loader.scope.matches_globs(first.url) else []
        if first.fetched is not None and first.fetched.kind in SINGLE_DOCUMENT_KINDS:
            # `docshelf add https://…/openapi.yaml` (or a PDF, a notebook) means that document, not its site.
            return SiteOpening(self._loader.scope.start, outcomes, None, [], complete=True)
        if self._options.prefer_llms_full:
            full = await self._llms_full()
            if full:
                self._report.discovered_by = "llms-full.txt"
                outcomes += [outcome for outcome in full if self._frontier.claim(outcome.url)]
                return SiteOpening(self._loader.scope.start, outcomes, "llms-full.txt", [], complete=True)
        method, pages = await self._discover(first)
        outcomes += self._blocked_outcomes()
        self._report.discovered_by = method
        self.use_validators(method, validators)
        return SiteOpening(self._loader.scope.start, outcomes, method, pages, complete=False)

    def use_validators(self, method: DiscoveryMethod | None, validators: Validators | None) -> None:
        """Request pages conditionally with `validators`, as far as the way the pages were found allows."""
        if method != "links":
            self._loader.validators = validators
        elif validators is not None and self._known_links is not None:
            known = self._known_links
            # A 304 carries no links: ask conditionally only for pages whose links are stored.
            self._loader.validators = lambda url: validators(url) if known(url) is not None else None

    async def fetch_batch(self, pages: Iterable[tuple[str, int]]) -> AsyncGenerator[CrawlOutcome, None]:
        """Yield the outcomes of fetching `pages` (URL, depth), without following their links.

        A crawl split across processes (`docshelf.workers`) calls this once per batch: whoever
        runs the batch queues the links of its pages in the shared frontier.
        """
        for url, depth in pages:
            self._frontier.add(url, depth)
        async with aclosing(self._fetch_frontier(follow_links=False)) as outcomes:
            async for outcome in outcomes:
                yield outcome
        for blocked in self._blocked_outcomes():
            yield blocked

    def _blocked_outcomes(self) -> list[CrawlOutcome]:
        """Return a failure for each refused robots.txt, sitemap or llms.txt request not reported yet.

        A refused page is already its own outcome; these requests are not pages, but a refusal
        is recorded all the same, so the user sees what was blocked and how to allow it.
        """
        blocked = []
        for url, error in self._fetcher.take_blocked().items():
            if self._frontier.claim(url):
                blocked.append(CrawlOutcome(url, error=error))
        return blocked

    async def _open(self) -> CrawlOutcome:
        """Return the start page's outcome, and set the scope from where the start URL really is.

        The start page is fetched unconditionally: its links may be needed for discovery.
        Redirects of the start URL are followed wherever they go (`example.com` →
        `www.example.com/en/`), and the scope is the final URL's.

        Raises:
            ConfigError: the server cannot be reached, or the start page is not there.
        """
        start = self._start
        self._frontier.claim(start)
        reason = await self._robots.reason_to_skip(start)
        if reason:
            return CrawlOutcome(start, error=SkippedPage(start, reason))
        self._started += 1
        try:
            reply = await self._loader.fetch(start, self._robots.reason_to_skip, conditional=False)
        except BlockedFetch as exc:
            raise AccessDeniedError(f"cannot crawl {redact_url(start)}: {exc.reason}") from exc
        except FetchError as exc:
            if is_unreachable(exc):
                raise ConfigError(
                    f"cannot reach {redact_url(start)}: {exc.reason} — check the address"
                ) from exc
            return CrawlOutcome(start, error=exc)
        except SkippedPage as exc:
            return CrawlOutcome(start, error=exc)
        if reply.status in (404, 410):
            raise ConfigError(f"cannot reach {redact_url(start)}: HTTP {reply.status} — check the address")
        self._frontier.claim(reply.url)
        self._loader.scope = Scope.for_start(reply.url, self._options)
        try:
            return await self._loader.finish(self._loader.outcome(reply, depth=0), reply)
        except CrawlError as exc:
            return CrawlOutcome(start, error=exc)

    async def _llms_full(self) -> list[CrawlOutcome]:
        """Return the pages of the site's `llms-full.txt` (see `discover.split_llms_full`), or [] when it has none."""
        scope = self._loader.scope
        policy = await self._robots.policy(scope.start)
        found = await Discovery(self._fetcher, scope, policy, self._options.max_bytes).llms_full()
        if found is None:
            return []
        url, text = found
        pages = split_llms_full(text, url, scope.accepts)
        if self._options.max_pages is not None:
            pages = pages[: max(self._options.max_pages - self._started, 0)]
        return [CrawlOutcome(page_url, fetched=Fetched(page_url, "markdown", markdown, depth=1))
                for page_url, markdown in pages]

    async def _discover(self, first: CrawlOutcome) -> tuple[DiscoveryMethod, list[str]]:
        """Return how the pages were found and the pages to fetch after the start page."""
        scope = self._loader.scope
        policy = await self._robots.policy(scope.start)
        listed = await Discovery(self._fetcher, scope, policy, self._options.max_bytes).page_list()
        if listed:
            return listed
        links = first.fetched.links if first.fetched else []
        return "links", [link for link in links if scope.accepts(link)]

    async def _fetch_frontier(self, *, follow_links: bool) -> AsyncGenerator[CrawlOutcome, None]:
        """Yield outcomes as fetches complete, keeping up to `concurrency` fetches in flight."""
        in_flight: set[asyncio.Task[CrawlOutcome]] = set()
        try:
            while True:
                for skipped in await self._start_fetches(in_flight):
                    yield skipped
                if not in_flight:
                    return
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    outcome = task.result()
                    # A redirect or canonical URL may lead to a page already reported under that URL.
                    if not self._frontier.claim(outcome.url):
                        continue
                    if follow_links and outcome.fetched:
                        self._enqueue_links(outcome.fetched.links, outcome.fetched.depth + 1)
                    elif follow_links and outcome.not_modified and self._known_links is not None:
                        self._enqueue_links(self._known_links(outcome.url) or [], outcome.depth + 1)
                    yield outcome
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _start_fetches(self, in_flight: set[asyncio.Task[CrawlOutcome]]) -> list[CrawlOutcome]:
        """Start fetches from the frontier up to the limits; return the outcomes of URLs robots.txt rules out."""
        skipped = []
        while len(in_flight) < self._options.concurrency and self._budget_left():
            item = self._frontier.pop()
            if item is None:
                break
            url, depth = item
            reason = await self._robots.reason_to_skip(url)
            if reason:
                self._frontier.claim(url)
                skipped.append(CrawlOutcome(url, error=SkippedPage(url, reason)))
            else:
                self._started += 1
                in_flight.add(asyncio.create_task(self._loader.load(url, depth)))
        return skipped

    def _budget_left(self) -> bool:
        """Return True while `max_pages` allows another fetch."""
        return self._options.max_pages is None or self._started < self._options.max_pages

    def _enqueue_links(self, links: list[str], depth: int) -> None:
        """Queue the links of a page that are in scope."""
        for link in links:
            if self._loader.scope.accepts(link):
                self._enqueue(link, depth)

    def _enqueue(self, url: str, depth: int) -> None:
        """Queue `url` unless it lies deeper than `max_depth`."""
        if self._options.max_depth is None or depth <= self._options.max_depth:
            self._frontier.add(url, depth)
