"""A project's scope on the shelf: `.docshelf.toml`, written by `docshelf project`, read by the commands that search.

    # written by `docshelf project`: search, ask, chat, mcp and serve started in this folder
    # (or given --project) read only these sources at these versions; --all-sources reads all.
    [sources.django]
    version = "4.2"
    package = "django"
    locked = "4.2.11"
    file = "uv.lock"
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from docshelf.errors import ConfigError
from docshelf.project.matching import DependencyStatus

SCOPE_FILE = ".docshelf.toml"
HEADER = """\
# written by `docshelf project`: search, ask, chat, mcp and serve started in this folder
# (or given --project) read only these sources at these versions; --all-sources reads all.
"""


@dataclass(frozen=True)
class ScopeEntry:
    """One source in scope, and why."""

    version: str
    """The version to read ("" for an unversioned source)."""
    package: str = ""
    locked: str = ""
    file: str = ""

    @property
    def reason(self) -> str:
        """Return why the source is in scope: "django 4.2.11 locked in uv.lock"."""
        if not self.package:
            return "listed in .docshelf.toml"
        locked = f" {self.locked} locked in {self.file}" if self.locked else f" declared in {self.file}" if self.file else ""
        return f"the project depends on {self.package}{locked}"


@dataclass
class ProjectScope:
    """The sources a project reads, by source name."""

    path: Path
    """The `.docshelf.toml` it came from."""
    sources: dict[str, ScopeEntry] = field(default_factory=dict)

    @property
    def pins(self) -> dict[str, str]:
        """{source name: version} for the searcher."""
        return {name: entry.version for name, entry in self.sources.items()}


def scope_from_statuses(path: Path, rows: Sequence[DependencyStatus]) -> ProjectScope:
    """Return the scope of the rows that have a source on the shelf (ok, or another version)."""
    scope = ProjectScope(path)
    for row in rows:
        if row.source is not None and row.version is not None and row.source not in scope.sources:
            dep = row.dependency
            scope.sources[row.source] = ScopeEntry(row.version, dep.name, dep.locked or "", dep.files[-1] if dep.files else "")
    return scope


def write_scope(scope: ProjectScope) -> None:
    """Write the scope to its `.docshelf.toml`, replacing what was there."""
    data = {"sources": {name: {k: v for k, v in vars(entry).items() if v or k == "version"}
                        for name, entry in sorted(scope.sources.items())}}
    scope.path.write_text(HEADER + tomli_w.dumps(data), encoding="utf-8")


def read_scope(path: Path) -> ProjectScope:
    """Return the scope a `.docshelf.toml` holds.

    Raises:
        ConfigError: the file is not TOML of that shape (the message names the file and line).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix it or run docshelf project again") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, dict) for v in sources.values()):
        raise ConfigError(f"{path}: expected [sources.NAME] tables with a version; run docshelf project again")
    return ProjectScope(path, {name: ScopeEntry(str(entry.get("version", "")), str(entry.get("package", "")),
                                                str(entry.get("locked", "")), str(entry.get("file", "")))
                               for name, entry in sources.items()})


def find_scope(start: Path) -> ProjectScope | None:
    """Return the scope of the project `start` is in (its `.docshelf.toml`, or a parent folder's), else None."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / SCOPE_FILE).is_file():
            return read_scope(folder / SCOPE_FILE)
    return None
