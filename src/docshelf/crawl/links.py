"""Links out of a page: `<a href>` (resolved against `<base href>`), `<link rel=canonical>`, Markdown links."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser

from docshelf.crawl.urls import is_asset, is_web_url, normalize_url

# [text](url) or [text](<url> "title"); images (![alt](src)) are left out by the lookbehind.
_MARKDOWN_LINK = re.compile(r"""(?<!!)\[[^\]]*\]\(\s*(?:<([^>]*)>|([^)\s]+))(?:\s+["'][^)]*["'])?\s*\)""")


@dataclass
class PageLinks:
    """The links of one page, normalised, deduplicated and in document order."""

    links: list[str] = field(default_factory=list)
    """http(s) links that may be pages (assets such as images and PDFs left out)."""
    canonical: str | None = None
    """The page's `<link rel="canonical">` target, if it names an http(s) URL."""
    markdown: str | None = None
    """The page's Markdown twin, `<link rel="alternate" type="text/markdown" href>`, if it advertises one."""


def html_links(html: str, url: str) -> PageLinks:
    """Return the page links and canonical URL of the HTML document at `url`.

    Relative links resolve against `<base href>` when the document has one. Fragments are
    dropped, and `mailto:`, `javascript:` and other non-web links are left out, as are links
    marked `rel="nofollow"`: documentation themes mark so the links a crawler should not take,
    such as Sphinx's "Show Source" (the page's reStructuredText, a second copy of every page).
    """
    tree = LexborHTMLParser(html)
    base = url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = _resolve(base_node.attributes.get("href"), url) or url
    canonical = markdown = None
    for node in tree.css("link[rel][href]"):
        rel = (node.attributes.get("rel") or "").lower().split()
        if "canonical" in rel and canonical is None:
            canonical = _resolve(node.attributes.get("href"), base)
        elif "alternate" in rel and (node.attributes.get("type") or "").lower() in ("text/markdown", "text/x-markdown"):
            markdown = markdown or _resolve(node.attributes.get("href"), base)
    hrefs = (
        node.attributes.get("href")
        for node in tree.css("a[href]")
        if "nofollow" not in (node.attributes.get("rel") or "").lower().split()
    )
    return PageLinks(_page_links(hrefs, base), canonical, markdown)


def markdown_links(text: str, url: str) -> list[str]:
    """Return the page links of the Markdown document at `url` (`[text](target)` links)."""
    return _page_links((match.group(1) or match.group(2) for match in _MARKDOWN_LINK.finditer(text)), url)


def _page_links(hrefs: Iterable[str | None], base: str) -> list[str]:
    """Return the distinct web, non-asset URLs among `hrefs`, resolved against `base`, in order."""
    links: dict[str, None] = {}
    for href in hrefs:
        link = _resolve(href, base)
        if link is not None and not is_asset(link):
            links[link] = None
    return list(links)


def _resolve(href: str | None, base: str) -> str | None:
    """Return `href` resolved against `base` and normalised, or None unless it is a valid http(s) URL."""
    if not href or not href.strip() or _embeds_absolute_url(href):
        return None
    try:
        link = normalize_url(href, base)
    except ValueError:  # a malformed link in someone's page is not our error
        return None
    return link if is_web_url(link) else None


def _embeds_absolute_url(href: str) -> bool:
    """Return whether a relative `href` carries an absolute URL inside it, as in "../../https://example.org/x/".

    A documentation build that turns its site URL into a relative path writes such links and canonical
    URLs; resolved, they name pages that do not exist, and a page filed under one could never be
    fetched or cited again.
    """
    return "://" in href and not re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*:", href)
