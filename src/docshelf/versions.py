"""Source versions: `name@version` keys, their order, and which versions a search reads.

A source holds one or more versions of one documentation, each a crawl of its own
stored under the key `name@version` ("django@4.2"); an unversioned source is stored
under its bare name, so shelves from before versions open unchanged. Versions are
ordered as PEP 440 orders them (which covers semver's `1.2.3` and `v1.2`); a version
that cannot be ordered ("stable", "dev") is kept as given and sorted after every
orderable one, and an unversioned crawl after those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from docshelf.errors import DocshelfError


class NotOnShelfError(DocshelfError):
    """A source or page the caller named is not on the shelf; the message says what is."""


class UnknownVersionError(NotOnShelfError):
    """A source is on the shelf, but not at the version asked for; the message lists the versions it has."""


class SeveralVersionsError(DocshelfError):
    """A change that takes one version (remove) was given a source name that has several."""


def source_key(name: str, version: str | None) -> str:
    """Return the shelf key of a source's version: `name@version`, or `name` when unversioned.

    >>> source_key("django", "4.2")
    'django@4.2'
    """
    return f"{name}@{version}" if version else name


def split_key(key: str) -> tuple[str, str]:
    """Return (name, version) of a key or a `SOURCE[@VERSION]` argument; version "" when none.

    >>> split_key("django@4.2")
    ('django', '4.2')
    """
    name, _, version = key.partition("@")
    return name, version


def order_key(version: str) -> tuple[int, Version | str]:
    """Return a sort key putting versions oldest first; unorderable ones and "" (unversioned) first of all.

    Sorting by it and taking the last gives the newest version.
    """
    if not version:
        return (0, "")
    try:
        return (2, Version(version))
    except InvalidVersion:
        return (1, version)


def newest_first(versions: Iterable[str]) -> list[str]:
    """Return versions newest first (PEP 440 order; unorderable ones after, then "")."""
    return sorted(versions, key=order_key, reverse=True)


def nearest(versions: Sequence[str], wanted: str) -> str | None:
    """Return the version in `versions` nearest to `wanted`: equal, else same major.minor, else same major.

    Among several candidates of the same closeness, the newest. None when no version shares the major.
    """
    if wanted in versions:
        return wanted
    try:
        target = Version(wanted)
    except InvalidVersion:
        return None
    for width in (2, 1):
        close = [v for v in versions if _release(v)[:width] == target.release[:width] and len(_release(v)) >= 1]
        if close:
            return newest_first(close)[0]
    return None


def _release(version: str) -> tuple[int, ...]:
    try:
        return Version(version).release
    except InvalidVersion:
        return ()


@dataclass
class ShelfVersions:
    """The shelf's sources grouped by name, each with its versions newest first."""

    by_name: dict[str, list[str]]

    @classmethod
    def of(cls, keys: Iterable[str]) -> ShelfVersions:
        """Return the versions of the shelf whose source keys are `keys` (`Store.source_names()`)."""
        grouped: dict[str, list[str]] = {}
        for key in keys:
            name, version = split_key(key)
            grouped.setdefault(name, []).append(version)
        return cls({name: newest_first(versions) for name, versions in sorted(grouped.items())})

    def keys(self, name: str) -> list[str]:
        """Return every key of a source name, newest version first."""
        return [source_key(name, v) for v in self.by_name.get(name, [])]

    def only_version(self, spec: str) -> str:
        """Return the key of the one version `spec` names, for a change such as removing it.

        Raises:
            NotOnShelfError / UnknownVersionError: as `resolve`.
            SeveralVersionsError: a bare name of a source with several versions.
        """
        key = self.resolve(spec)
        name, version = split_key(spec)
        if not version and len(self.by_name[name]) > 1:
            raise SeveralVersionsError(f"{name} has several versions on the shelf ({self.describe(name)}); "
                                       f"name one as {name}@VERSION")
        return key

    def describe(self, name: str) -> str:
        """Return "4.2, 5.1" style text of a source's versions (newest first) for messages."""
        return ", ".join(v or "(unversioned)" for v in self.by_name.get(name, []))

    def resolve(self, spec: str, *, pins: Mapping[str, str] | None = None) -> str:
        """Return the key a `SOURCE[@VERSION]` argument names: that version, else the pin, else the newest.

        Raises:
            NotOnShelfError: no source of that name.
            UnknownVersionError: the source has no such version (the message lists those it has).
        """
        name, version = split_key(spec)
        if name not in self.by_name:
            known = ", ".join(self.by_name) or "none yet"
            raise NotOnShelfError(f"unknown source {name!r}; the shelf holds: {known}")
        versions = self.by_name[name]
        if version:
            if version not in versions:
                raise UnknownVersionError(
                    f"source {name!r} has no version {version!r} on the shelf; it has: {self.describe(name)}"
                    f" (add it with: docshelf add URL --source {name} --version {version})"
                )
            return source_key(name, version)
        pinned = (pins or {}).get(name)
        if pinned is not None and pinned in versions:
            return source_key(name, pinned)
        return source_key(name, versions[0])

    def search_keys(self, specs: Sequence[str], *, pins: Mapping[str, str] | None = None,
                    only_pinned: bool = False) -> tuple[str, ...]:
        """Return the keys a search over `specs` reads (() = the whole shelf needs no filter).

        With no specs: the pinned or newest version of every source (with `only_pinned`, of the pinned
        sources only: a project's scope); () when the shelf holds one version of each (the unfiltered
        search, exactly as before versions existed).

        Raises:
            NotOnShelfError: `only_pinned` and none of the pinned sources is on the shelf.
        """
        if specs:
            return tuple(dict.fromkeys(self.resolve(spec, pins=pins) for spec in specs))
        if only_pinned:
            names = [name for name in (pins or {}) if name in self.by_name]
            if not names:
                raise NotOnShelfError(
                    f"the project's scope names no source on the shelf ({', '.join(pins or {}) or 'none'}); "
                    "run docshelf project --add-missing, or search with --all-sources")
            return tuple(self.resolve(name, pins=pins) for name in names)
        if all(len(v) == 1 for v in self.by_name.values()):
            return ()
        return tuple(self.resolve(name, pins=pins) for name in self.by_name)


def same_page_key(url: str, version: str) -> str:
    """Return `url` with its version segment made generic, so one page's versions share a key.

    >>> same_page_key("https://d.org/en/4.2/topics/", "4.2")
    'https://d.org/en/{version}/topics/'
    """
    if not version:
        return url
    head, sep, rest = url.partition("://")
    segments = rest.split("/")
    generic = ["{version}" if s.lower().removeprefix("v") == version.lower() else s for s in segments]
    return head + sep + "/".join(generic)
