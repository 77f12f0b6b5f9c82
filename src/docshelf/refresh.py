"""What is stale on a shelf, and refreshing it: the library under `docshelf refresh` and `serve --refresh-every`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from docshelf.errors import ConfigError
from docshelf.models import Source
from docshelf.store.base import Store
from docshelf.versions import ShelfVersions, split_key

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """Return the duration "30m", "24h", "7d" or "2w" stands for.

    Raises:
        ConfigError: not a number followed by one of s, m, h, d, w.
    """
    found = _DURATION.match(text)
    if not found or float(found.group(1)) <= 0:
        raise ConfigError(f"{text!r} is not a duration: use a number and a unit, e.g. 30m, 24h, 7d or 2w")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2).lower()])


def stale_sources(store: Store, specs: Sequence[str] = (), older_than: timedelta | None = None,
                  now: datetime | None = None) -> list[Source]:
    """Return the source versions to refresh: those `specs` name (every version of a bare name; all when empty),
    last crawled longer ago than `older_than` (all of them when None), least recently crawled first.

    Raises:
        NotOnShelfError / UnknownVersionError: a spec names nothing on the shelf.
    """
    versions = ShelfVersions.of(store.source_names())
    keys: list[str] = []
    for spec in specs:
        name, version = split_key(spec)
        keys += [versions.resolve(spec)] if version else [versions.resolve(spec), *versions.keys(name)]
    chosen = [s for key in dict.fromkeys(keys or store.source_names()) if (s := store.get_source(key)) is not None]
    if older_than is not None:
        cutoff = (now or datetime.now(UTC)) - older_than
        chosen = [s for s in chosen if s.last_crawl_at is None or datetime.fromisoformat(s.last_crawl_at) < cutoff]
    return sorted(chosen, key=lambda s: s.last_crawl_at or "")
