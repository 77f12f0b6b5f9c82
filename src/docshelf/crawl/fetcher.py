"""HTTP GETs for the crawler: politeness, retries, a size cap, redirects checked hop by hop.

This is the one place that talks to httpx; every httpx exception is turned into a
`FetchError` here, with the original kept as `__cause__`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urldefrag, urljoin

import httpx

from docshelf.access import AccessDeniedError
from docshelf.crawl.base import CrawlOptions, Validators
from docshelf.crawl.politeness import Gates, HostGates
from docshelf.crawl.urls import normalize_url
from docshelf.errors import BlockedFetch, FetchError, SkippedPage

MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = "text/html,application/xhtml+xml,text/markdown,text/plain;q=0.9,*/*;q=0.1"

HopCheck = Callable[[str], Awaitable[str | None]]
"""Given a normalised redirect target, returns why it may not be followed, or None when it may."""
ContentCheck = Callable[[str, httpx.Headers], None]
"""Raises `SkippedPage` when a successful response's headers show it is not wanted, before its body is read."""

# Failures that may go away on their own; a refused connection or a bad address will not.
_TRANSIENT = (
    httpx.TimeoutException,
    TimeoutError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass
class Reply:
    """The final response to a GET: status, headers and (for a 2xx) the body."""

    url: str
    """Normalised URL of the last hop."""
    status: int
    headers: httpx.Headers
    body: bytes = b""
    conditional: bool = False
    """The last request carried If-None-Match / If-Modified-Since, so a 304 means "unchanged"."""


class Fetcher:
    """Sends GETs through one `httpx.AsyncClient`, politely and with retries."""

    def __init__(self, client: httpx.AsyncClient, options: CrawlOptions, gates: Gates | None = None) -> None:
        self._client = client
        self._options = options
        # SharedHostGates instead when workers on several machines crawl the same hosts.
        self.gates: Gates = gates or HostGates(options.per_host)
        self._blocked: dict[str, BlockedFetch] = {}

    def take_blocked(self) -> dict[str, BlockedFetch]:
        """Return the GETs the access policy refused since the last call, by the URL asked for."""
        blocked, self._blocked = self._blocked, {}
        return blocked

    @property
    def user_agent(self) -> str:
        """Return the User-Agent every request of the crawl sends."""
        return self._options.user_agent

    async def get(
        self,
        url: str,
        *,
        check_hop: HopCheck | None = None,
        check_content: ContentCheck | None = None,
        validators: Validators | None = None,
        max_bytes: int | None = None,
    ) -> Reply:
        """Return the final reply to a GET of `url`, following the redirects `check_hop` allows.

        Any final status is returned; callers decide what a 404 means to them.

        Args:
            url: the URL to fetch, normalised.
            check_hop: vets each redirect target; its reason becomes a `SkippedPage`.
            check_content: vets the headers of a 2xx response before its body is read.
            validators: stored (etag, last_modified) per URL, sent as conditional headers.
            max_bytes: body size cap (default: the crawl's `max_bytes`).

        Raises:
            BlockedFetch: the access policy refused the address of `url` or of a redirect hop.
            FetchError: network failure or timeout after retries, a redirect loop, too many redirects.
            SkippedPage: a redirect `check_hop` refused, content `check_content` refused, a body too large.
        """
        try:
            return await self._follow(url, check_hop, check_content, validators, max_bytes)
        except BlockedFetch as exc:
            blocked = BlockedFetch(url, exc.reason)
            self._blocked.setdefault(url, blocked)
            raise blocked from exc

    async def _follow(
        self,
        url: str,
        check_hop: HopCheck | None,
        check_content: ContentCheck | None,
        validators: Validators | None,
        max_bytes: int | None,
    ) -> Reply:
        """Return the final reply to a GET of `url`, following the redirects `check_hop` allows."""
        limit = self._options.max_bytes if max_bytes is None else max_bytes
        current, seen = url, {url}
        for _ in range(MAX_REDIRECTS + 1):
            headers, conditional = self._headers(validators(normalize_url(current)) if validators else None)
            reply = await self._get_with_retries(current, headers, check_content, limit)
            if reply.status not in REDIRECT_STATUSES:
                reply.conditional = conditional
                return reply
            current = _redirect_target(url, current, reply)
            target = _normalized_target(url, current)
            if current in seen:
                raise FetchError(url, "redirect loop")
            seen.add(current)
            reason = await check_hop(target) if check_hop else None
            if reason:
                raise SkippedPage(url, reason)
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    def _headers(self, stored: tuple[str | None, str | None] | None) -> tuple[dict[str, str], bool]:
        """Return the request headers, with conditional ones from the `stored` validators, and whether any were set."""
        headers = {"User-Agent": self._options.user_agent, "Accept": ACCEPT}
        etag, last_modified = stored or (None, None)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return headers, bool(etag or last_modified)

    async def _get_with_retries(
        self, url: str, headers: dict[str, str], check_content: ContentCheck | None, max_bytes: int
    ) -> Reply:
        """Return the reply to one GET (no redirects followed), retrying 429, 5xx and transient failures."""
        attempt = 0
        while True:
            last = attempt == self._options.retries
            try:
                reply = await self._get_once(url, headers, check_content, max_bytes)
            except FetchError as exc:
                if last or not isinstance(exc.__cause__, _TRANSIENT):
                    raise
                wait = self._backoff(attempt)
            else:
                if last or not _retryable_status(reply.status):
                    return reply
                wait = await self._wait_before_retry(url, reply, attempt)
            await asyncio.sleep(wait)
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        """Return the exponential backoff before retry number `attempt + 1`."""
        return float(self._options.backoff * 2**attempt)

    async def _wait_before_retry(self, url: str, reply: Reply, attempt: int) -> float:
        """Return how long to wait before retrying, honouring Retry-After for the whole host."""
        retry_after = retry_after_seconds(reply.headers.get("retry-after"))
        if retry_after is None:
            return self._backoff(attempt)
        wait = min(retry_after, self._options.max_retry_after)
        # The server asked the whole site to slow down, not just this one request.
        await self.gates.for_url(url).pause(wait)
        return wait

    async def _get_once(
        self, url: str, headers: dict[str, str], check_content: ContentCheck | None, max_bytes: int
    ) -> Reply:
        """Return the reply to exactly one GET, sent when the host's gate admits it."""
        timeout = self._options.timeout
        async with self.gates.for_url(url).slot():
            try:
                # httpx's timeout is per read; the outer one also stops a body that trickles in forever.
                async with asyncio.timeout(timeout):
                    return await self._send(url, headers, check_content, max_bytes)
            except AccessDeniedError as exc:  # raised at connect time by docshelf.access
                raise BlockedFetch(url, str(exc)) from exc
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise FetchError(url, f"timeout after {timeout:g}s") from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise FetchError(url, describe_error(exc)) from exc

    async def _send(
        self, url: str, headers: dict[str, str], check_content: ContentCheck | None, max_bytes: int
    ) -> Reply:
        """Return the reply to a GET, streaming a 2xx body up to `max_bytes`."""
        request = self._client.stream(
            "GET", url, headers=headers, timeout=self._options.timeout, follow_redirects=False
        )
        async with request as response:
            reply = Reply(normalize_url(url), response.status_code, response.headers)
            if response.is_success:
                if check_content:
                    check_content(url, response.headers)
                reply.body = await read_capped(response, url, max_bytes)
            return reply


async def read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    """Return the decoded body of `response`, stopping as soon as it passes `max_bytes`.

    Raises:
        SkippedPage: the body (as declared or as received) is larger than `max_bytes`.
    """
    too_large = SkippedPage(url, f"body over {format_size(max_bytes)}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    # Counting decoded bytes also stops a small gzip body that inflates without end.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta seconds or an HTTP date), or None.

    >>> retry_after_seconds("2")
    2.0
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max(0.0, (when - now_dt).total_seconds())


def format_size(size: int) -> str:
    """Return a byte count the way a person would write it: `10 MB`, `1.5 KB`, `300 bytes`."""
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{round(size / scale, 1):g} {unit}"
    return f"{size} bytes"


def describe_error(exc: Exception) -> str:
    """Return the short reason recorded for a network failure."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {detail}"
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return f"invalid URL: {detail}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {detail}"
    return f"network error: {detail}"


def is_unreachable(exc: FetchError) -> bool:
    """Return True when `exc` means the server could not be reached at all (refused, DNS, no connect)."""
    return isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol))


def _retryable_status(status: int) -> bool:
    """Return True for statuses worth retrying: 429 Too Many Requests and server errors."""
    return status == 429 or status >= 500


def _normalized_target(url: str, target: str) -> str:
    """Return the normalised redirect `target`, or raise `FetchError` for a malformed one."""
    try:
        return normalize_url(target)
    except ValueError as exc:
        raise FetchError(url, f"redirect to an invalid URL {target}") from exc


def _redirect_target(url: str, current: str, reply: Reply) -> str:
    """Return the absolute target (without fragment) of the redirect `reply` to a GET of `current`."""
    location: str = reply.headers.get("location", "").strip()
    if not location:
        raise FetchError(url, f"HTTP {reply.status} without a Location")
    # Requested as written, not normalised: a server that sends /x/ to /x/index.html must get that request.
    return urldefrag(urljoin(current, location)).url
