"""Crawl scope: which URLs belong to a crawl, decided from the start URL and the user's globs."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from posixpath import splitext
from urllib.parse import urlsplit

from docshelf.crawl.base import CrawlOptions
from docshelf.crawl.urls import host, is_asset, is_pdf, is_web_url, origin


@dataclass(frozen=True)
class Scope:
    """The part of the web a crawl may fetch: one host, one path prefix, minus what the globs rule out.

    >>> scope = Scope.for_start("https://docs.example.com/en/stable/", CrawlOptions())
    >>> scope.contains("https://docs.example.com/en/stable/api/")
    True
    """

    start: str
    """The normalised start URL."""
    host: str
    """`host[:port]`; the scheme may differ, so an http → https upgrade stays in scope."""
    prefix: str
    """Path prefix every URL in scope starts with; always ends with `/`."""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_pdf: bool = False
    """Whether PDF files are pages of this crawl (`--include-pdf`)."""

    @classmethod
    def for_start(cls, start: str, options: CrawlOptions) -> Scope:
        """Return the scope of a crawl that starts at the normalised URL `start`."""
        return cls(start, host(start), path_prefix(urlsplit(start).path), options.include, options.exclude,
                   options.include_pdf)

    @property
    def folder(self) -> str:
        """Return the URL of the start's folder (where a site-local `llms.txt` would be)."""
        return f"{origin(self.start)}{self.prefix}"

    def contains(self, url: str) -> bool:
        """Return True when the normalised `url` is on the start's host and under its path prefix."""
        parts = urlsplit(url)
        if not is_web_url(url) or parts.netloc != self.host:
            return False
        # "/docs" itself is in the scope of "/docs/" (servers redirect one to the other).
        return parts.path.startswith(self.prefix) or parts.path == self.prefix[:-1]

    def accepts(self, url: str) -> bool:
        """Return True when `url` should be fetched: in scope, not an asset, and allowed by the globs."""
        return (self.contains(url) and not is_asset(url) and (self.include_pdf or not is_pdf(url))
                and self.matches_globs(url))

    def matches_globs(self, url: str) -> bool:
        """Return True when `url` matches an include glob (if any) and no exclude glob."""
        return matches_globs((url,), self.include, self.exclude)


def path_prefix(path: str) -> str:
    """Return the folder a start path stands for: `/a/b.html` → `/a/`, `/a/b` → `/a/b/`, `/a/` → `/a/`.

    A last segment without an extension is taken as a folder whose trailing slash was
    left off (`https://docs.python.org/3`), since documentation sites nest pages under it.
    """
    folder, _, last = path.rpartition("/")
    if not last:
        return path or "/"
    if splitext(last)[1]:
        return f"{folder}/"
    return f"{path}/"


def matches_globs(names: tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Return True when one of `names` matches an include glob (or there are none) and none matches an exclude.

    Several names let a local file be matched by its relative path or by its `file://` URL.
    """
    if include and not any(fnmatchcase(name, glob) for name in names for glob in include):
        return False
    return not any(fnmatchcase(name, glob) for name in names for glob in exclude)
