"""Page lists a site publishes about itself: `llms.txt` and `sitemap.xml`.

A list found here is authoritative: the crawler fetches exactly the pages it names (in
scope), and does not follow links from them. Sites that publish a list keep it complete,
and following links on top would pull in the pages a site chose to leave out.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree  # type: ignore[import-untyped]

from docshelf.access import redact_url
from docshelf.crawl.base import DiscoveryMethod
from docshelf.crawl.content import looks_binary, media_type
from docshelf.crawl.fetcher import Fetcher
from docshelf.crawl.links import markdown_links
from docshelf.crawl.robots import RobotsPolicy
from docshelf.crawl.scope import Scope
from docshelf.crawl.urls import host, is_web_url, normalize_url, origin
from docshelf.errors import CrawlError

logger = logging.getLogger(__name__)

# The sitemap protocol allows 50 MB per file; a site needing more than 200 files is not documentation.
SITEMAP_MAX_BYTES = 50 * 1024 * 1024
MAX_SITEMAP_FILES = 200
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Sitemap:
    """What one sitemap file lists: pages (`<urlset>`) and further sitemaps (`<sitemapindex>`)."""

    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)


class Discovery:
    """Finds a site's own page list: `llms.txt` first, then its sitemaps."""

    def __init__(self, fetcher: Fetcher, scope: Scope, robots: RobotsPolicy, max_bytes: int) -> None:
        self._fetcher = fetcher
        self._scope = scope
        self._robots = robots
        self._max_bytes = max_bytes

    async def page_list(self) -> tuple[DiscoveryMethod, list[str]] | None:
        """Return how the pages were found and the in-scope pages, or None when the site lists none."""
        pages = await self.llms_txt()
        if pages:
            return "llms.txt", pages
        pages = await self.sitemap()
        if pages:
            return "sitemap", pages
        return None

    async def llms_txt(self) -> list[str]:
        """Return the in-scope pages linked from `llms.txt` in the start's folder, else at the host root."""
        for url in _distinct(f"{self._scope.folder}llms.txt", f"{origin(self._scope.start)}/llms.txt"):
            text = await self._text(url)
            pages = self._in_scope(parse_llms_txt(text, url)) if text else []
            if pages:
                return pages
        return []

    async def llms_full(self) -> tuple[str, str] | None:
        """Return the URL and text of `llms-full.txt` in the start's folder, else at the host root, or None."""
        for url in _distinct(f"{self._scope.folder}llms-full.txt", f"{origin(self._scope.start)}/llms-full.txt"):
            text = await self._text(url)
            if text and text.strip():
                return url, text
        return None

    async def sitemap(self) -> list[str]:
        """Return the in-scope pages of the sitemaps robots.txt names, else of the first `sitemap.xml` found."""
        pages = self._in_scope(await self._read_sitemaps(self._robots.sitemaps))
        if pages:
            return pages
        for url in _distinct(f"{self._scope.folder}sitemap.xml", f"{origin(self._scope.start)}/sitemap.xml"):
            pages = self._in_scope(await self._read_sitemaps([url]))
            if pages:
                return pages
        return []

    async def _read_sitemaps(self, urls: list[str]) -> list[str]:
        """Return the page URLs listed by the sitemaps at `urls` and by the sitemaps they index."""
        queue = deque(_distinct(*_loc_urls(urls)))
        seen = set(queue)
        pages: dict[str, None] = {}
        for _ in range(MAX_SITEMAP_FILES):
            if not queue:
                break
            url = queue.popleft()
            body = await self._body(url, SITEMAP_MAX_BYTES)
            sitemap = parse_sitemap(body) if body else Sitemap()
            pages.update(dict.fromkeys(sitemap.pages))
            for child in sitemap.sitemaps:
                # A sitemap index may only point at sitemaps on its own host.
                if child not in seen and host(child) == host(url):
                    seen.add(child)
                    queue.append(child)
        return list(pages)

    async def _text(self, url: str) -> str | None:
        """Return the body of a plain-text file at `url`, or None when it is missing or not text."""
        body = await self._body(url, self._max_bytes, text_only=True)
        return body.decode("utf-8", errors="replace") if body and not looks_binary(body) else None

    async def _body(self, url: str, max_bytes: int, *, text_only: bool = False) -> bytes | None:
        """Return the body at `url` when it answers 200, else None (a missing file is normal here)."""
        try:
            reply = await self._fetcher.get(url, check_hop=self._same_host, max_bytes=max_bytes)
        except CrawlError as exc:
            logger.info("no page list at %s: %s", redact_url(url), exc.reason)
            return None
        # Single-page apps answer every path with their HTML shell, which is no llms.txt.
        if reply.status != 200 or (
            text_only and media_type(reply.headers.get("content-type")) == "text/html"
        ):
            return None
        return reply.body

    async def _same_host(self, url: str) -> str | None:
        """Return a reason to refuse a redirect off the start's host, else None."""
        return None if host(url) == self._scope.host else f"redirect out of scope to {url}"

    def _in_scope(self, urls: list[str]) -> list[str]:
        """Return the URLs the crawl would fetch, in order."""
        return [url for url in urls if self._scope.accepts(url)]


def parse_llms_txt(text: str, url: str) -> list[str]:
    """Return the page URLs an `llms.txt` file links to (Markdown links), resolved against `url`."""
    return markdown_links(text, url)


_H1 = re.compile(r"^# +\S.*$", re.MULTILINE)
# Mintlify, Fern and others write each page's URL on the line after its title.
_SOURCE_LINE = re.compile(r"^\s*(?:Source|URL):\s*<?(\S+?)>?\s*$", re.IGNORECASE | re.MULTILINE)


def split_llms_full(text: str, url: str, accepts: Callable[[str], bool]) -> list[tuple[str, str]]:
    """Return the pages of an `llms-full.txt` as (URL, Markdown).

    A section under a `# ` title whose next lines name its page (`Source: https://…`)
    becomes that page (when `accepts` it); everything else stays one page at the file's
    own URL, in order, so no text is lost.
    """
    starts = _h1_offsets(text)
    sections = [text[a:b] for a, b in zip([0, *starts], [*starts, len(text)])]
    pages: dict[str, list[str]] = {}
    for section in sections:
        if not section.strip():
            continue
        head = "\n".join(section.split("\n")[:4])
        source = _SOURCE_LINE.search(head)
        page_url = url
        if source is not None:
            try:
                candidate = normalize_url(source.group(1), url)
            except ValueError:
                candidate = url
            if is_web_url(candidate) and accepts(candidate):
                page_url = candidate
                section = section.replace(source.group(0), "", 1)
        pages.setdefault(page_url, []).append(section.strip("\n"))
    return [(page_url, "\n\n".join(parts) + "\n") for page_url, parts in pages.items()]


def _h1_offsets(text: str) -> list[int]:
    """Return where each `# ` title line starts, leaving out lines inside code fences (shell comments)."""
    offsets, offset, fence = [], 0, ""
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker and (not fence or (marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence))):
            fence = "" if fence else marker.group(1)
        elif not fence and _H1.match(line):
            offsets.append(offset)
        offset += len(line) + 1
    return offsets


def parse_sitemap(body: bytes) -> Sitemap:
    """Return the page and sitemap URLs in a sitemap file, gzipped or not, namespaced or not.

    `<loc>` values are stripped of whitespace and deduplicated; an unparsable file lists nothing.
    """
    if body.startswith(_GZIP_MAGIC):
        body = _gunzip(body)
    # recover=True reads the sloppy XML many generators write; no entities or network, for safety.
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return Sitemap()
    kind = etree.QName(root).localname if root is not None else None
    if kind == "sitemapindex":
        return Sitemap(sitemaps=_locs(root, "sitemap"))
    if kind == "urlset":
        return Sitemap(pages=_locs(root, "url"))
    return Sitemap()


def _locs(root: etree._Element, entry: str) -> list[str]:
    """Return the distinct web URLs in the `<loc>` of each `<entry>` child of `root`."""
    # local-name() matches <loc> with the sitemaps.org namespace, another one, or none at all.
    texts = root.xpath("./*[local-name()=$entry]/*[local-name()='loc']/text()", entry=entry)
    return list(dict.fromkeys(_loc_urls(texts)))


def _loc_urls(locs: list[str]) -> list[str]:
    """Return the valid, normalised web URLs among `<loc>` texts."""
    urls = []
    for loc in locs:
        try:
            url = normalize_url(loc)
        except ValueError:
            continue
        if is_web_url(url):
            urls.append(url)
    return urls


def _gunzip(body: bytes) -> bytes:
    """Return the decompressed `body`, cut at `SITEMAP_MAX_BYTES` so a gzip bomb cannot fill memory."""
    try:
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(body, SITEMAP_MAX_BYTES)
    except zlib.error:
        return b""


def _distinct(*urls: str) -> list[str]:
    """Return `urls` without repeats, in order."""
    return list(dict.fromkeys(urls))
