"""docshelf's errors, one tree, so callers can catch as narrowly as they need.

    DocshelfError
    ├── ConfigError          bad option, bad --db, missing optional dependency
    │   ├── ModelMismatchError   shelf built with another embedding model
    │   └── AccessDeniedError    a destination or folder refused by the access policy (in docshelf.access)
    ├── CrawlError           a page could not be fetched (carries the url)
    │   ├── FetchError           network failure, bad status, timeout, too many redirects
    │   │   └── BlockedFetch         the access policy refused the address (docshelf.access)
    │   └── SkippedPage          out of scope, robots-disallowed, wrong content type, too large
    ├── ExtractError         a page had no usable content (carries the url)
    ├── EmbedError           the embedder failed on a batch
    └── StoreError           the shelf could not be read or written

Library errors (apsw, httpx, onnxruntime) are translated at the edge of the
module that calls them and kept as `__cause__`.
"""

from __future__ import annotations


class DocshelfError(Exception):
    """Root of every error docshelf raises on purpose."""


class ConfigError(DocshelfError):
    """The user's configuration or options cannot work; the message says what to change."""


class ModelMismatchError(ConfigError):
    """The shelf was built with a different embedding model or dimension."""


class CrawlError(DocshelfError):
    """A page could not be crawled; `reason` is the short text recorded in the shelf."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{_redacted(url)}: {reason}")
        self.url = url
        self.reason = reason


class FetchError(CrawlError):
    """The fetch failed: network error, timeout, error status, redirect loop."""


class BlockedFetch(FetchError):
    """The access policy refused to connect to the address a URL resolved to (`blocked: …`)."""


class SkippedPage(CrawlError):
    """The page was deliberately not taken: robots.txt, content type, size, scope."""


class ExtractError(DocshelfError):
    """A page had no main content to convert."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class EmbedError(DocshelfError):
    """The embedder failed on a batch of texts."""


class StoreError(DocshelfError):
    """The shelf could not be opened, read or written."""


def _redacted(url: str) -> str:
    """Return `url` without credentials (an error message may end up in a log or a client's hands)."""
    from docshelf.access import redact_url  # access imports this module

    return redact_url(url)
