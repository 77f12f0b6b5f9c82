"""Which shelf source documents each dependency of a project, at which version.

A source documents a package when it says so (`docshelf add URL --package NAME`), when its
name is the package's name, or when the installed distribution's `Project-URL: Documentation`
lies under the source's root. Of the versions on the shelf, the one nearest the locked version
is chosen (same major.minor first, then same major).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from docshelf.crawl.naming import sanitise
from docshelf.crawl.version import without_version
from docshelf.models import Source
from docshelf.project.manifests import Dependency, normalise
from docshelf.versions import nearest, newest_first, source_key, split_key

Status = Literal["ok", "other version on the shelf", "not on the shelf", "several sources"]


@dataclass
class DependencyStatus:
    """One row of `docshelf project`: a dependency and the docs the shelf holds for it."""

    dependency: Dependency
    status: Status
    source: str | None = None
    """The matching source's name (without version)."""
    version: str | None = None
    """The version chosen on the shelf ("" for an unversioned source)."""
    versions: list[str] = field(default_factory=list)
    """Every version of the source on the shelf, newest first."""
    candidates: list[str] = field(default_factory=list)
    """The sources that all match, when there are several."""
    docs_url: str | None = None
    """The documentation URL of the installed distribution, when known."""
    matched_by: str = ""
    """Why the source matches: "package", "name" or "documentation URL"."""

    @property
    def key(self) -> str | None:
        return None if self.source is None else source_key(self.source, self.version)

    @property
    def hint(self) -> str:
        """What to do about a row that is not ok."""
        name = self.dependency.name
        if self.status == "not on the shelf":
            url = self.docs_url or "DOCS_URL"
            return f"docshelf add {url} --source {sanitise(name)} --package {name}"
        if self.status == "several sources":
            return f"choose one: docshelf add ROOT --source SOURCE --package {name} ({', '.join(self.candidates)})"
        if self.status == "other version on the shelf" and self.dependency.locked:
            return f"add the docs of {self.dependency.locked}: docshelf add URL --source {self.source} --version " \
                   f"{'.'.join(self.dependency.locked.split('.')[:2])}"
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"dependency": self.dependency.name, "ecosystem": self.dependency.ecosystem,
                "spec": self.dependency.spec, "locked": self.dependency.locked, "files": self.dependency.files,
                "status": self.status, "source": self.source, "version": self.version, "versions": self.versions,
                "candidates": self.candidates, "docs_url": self.docs_url, "matched_by": self.matched_by,
                "hint": self.hint}


def installed_docs_url(name: str) -> str | None:
    """Return the `Project-URL: Documentation` of an installed Python distribution, else None."""
    try:
        metadata = importlib.metadata.metadata(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in metadata.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower().replace("-", "").replace("_", "") in ("documentation", "docs"):
            return url.strip()
    return None


def match_dependencies(deps: Sequence[Dependency], sources: Sequence[Source]) -> list[DependencyStatus]:
    """Return each dependency's status against the shelf's sources (all versions of each)."""
    by_name: dict[str, list[Source]] = {}
    for source in sources:
        by_name.setdefault(source.base_name, []).append(source)
    return [_match(dep, by_name) for dep in deps]


def _match(dep: Dependency, by_name: dict[str, list[Source]]) -> DependencyStatus:
    docs_url = installed_docs_url(dep.name) if dep.ecosystem == "pypi" else None
    matches, how = _candidates(dep, by_name, docs_url)
    if not matches:
        return DependencyStatus(dep, "not on the shelf", docs_url=docs_url)
    if len(matches) > 1:
        return DependencyStatus(dep, "several sources", candidates=matches, docs_url=docs_url, matched_by=how)
    name = matches[0]
    versions = newest_first(split_key(s.name)[1] for s in by_name[name])
    if not dep.locked or versions == [""]:
        return DependencyStatus(dep, "ok", name, versions[0], versions, docs_url=docs_url, matched_by=how)
    chosen = nearest([v for v in versions if v], dep.locked)
    if chosen is not None and _same_minor(chosen, dep.locked):
        return DependencyStatus(dep, "ok", name, chosen, versions, docs_url=docs_url, matched_by=how)
    return DependencyStatus(dep, "other version on the shelf", name, chosen or versions[0], versions,
                            docs_url=docs_url, matched_by=how)


def _candidates(dep: Dependency, by_name: dict[str, list[Source]], docs_url: str | None) -> tuple[list[str], str]:
    tagged = [name for name, versions in by_name.items()
              if any(normalise(p, dep.ecosystem) == dep.key for s in versions for p in s.packages)]
    if tagged:
        return sorted(tagged), "package"
    named = [name for name in by_name if normalise(name, dep.ecosystem) == dep.key or name == sanitise(dep.name)]
    if named:
        return sorted(named), "name"
    if docs_url:
        rooted = [name for name, versions in by_name.items() if any(_under(docs_url, s.root) for s in versions)]
        if rooted:
            return sorted(rooted), "documentation URL"
    return [], ""


def _under(url: str, root: str) -> bool:
    """Return whether two documentation URLs name the same site: same host, one path under the other."""
    a, b = urlsplit(without_version(url)), urlsplit(without_version(root))
    if a.hostname is None or a.hostname.removeprefix("www.") != (b.hostname or "").removeprefix("www."):
        return False
    pa, pb = a.path.rstrip("/") + "/", b.path.rstrip("/") + "/"
    return pa.startswith(pb) or pb.startswith(pa)


def _same_minor(shelf: str, locked: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(shelf).release[:2] == Version(locked).release[:2][: len(Version(shelf).release)]
    except InvalidVersion:
        return shelf == locked
