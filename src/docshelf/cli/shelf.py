"""What every `docshelf` command shares: the lazily opened shelf, JSON output, and error → exit code mapping."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from docshelf import config
from docshelf.errors import DocshelfError, ModelMismatchError

EXIT_PAGES_FAILED = 1
EXIT_CONFIG = 2


class ShelfContext:
    """Opens the shelf and the embedder lazily, so `--help` and BM25 searches stay fast."""

    def __init__(self, db: str, embedder: str | None) -> None:
        self.db = db
        self.embedder_name = embedder
        self._store = None
        self.project: str | None = None
        """--project DIR: the project whose `.docshelf.toml` scopes searches (default: the one we are in)."""
        self.all_sources = False
        """--all-sources: search the whole shelf whatever the project's scope."""

    def scope(self):
        """Return the project scope searches honour (`.docshelf.toml` of --project or of the folder we are in), or None.

        Raises:
            ConfigError: --project names a folder without a `.docshelf.toml`, or the file is malformed.
        """
        from pathlib import Path

        from docshelf.errors import ConfigError
        from docshelf.project.scope import SCOPE_FILE, find_scope, read_scope

        if self.all_sources:
            return None
        if self.project is not None:
            path = Path(self.project) / SCOPE_FILE
            if not path.is_file():
                raise ConfigError(f"--project {self.project}: no {SCOPE_FILE} there; write it with: "
                                  f"docshelf project {self.project}")
            return read_scope(path)
        return find_scope(Path.cwd())

    def searcher(self):
        """Return the shelf's hybrid searcher, scoped to the project's sources and versions when there is one."""
        from docshelf.search import HybridSearcher

        scope = self.scope()
        return HybridSearcher(self.store, self.embedder_factory(), pins=scope.pins if scope else None,
                              scoped=scope is not None)

    def tools(self):
        """Return the read tools over the shelf, with the project's scope."""
        from docshelf.shelf_tools import ShelfTools

        searcher = self.searcher()
        return ShelfTools(self.store, searcher, self.scope() if searcher.scoped else None)

    @property
    def store(self):
        if self._store is None:
            from docshelf.store import open_store

            self._store = open_store(self.db)
        return self._store

    def close(self) -> None:
        """Close the shelf if a command opened it (a PostgreSQL pool's threads end with it)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def embedder_factory(self):
        """Return a factory for the shelf's embedder: the one it was built with, else the configured one."""
        from docshelf.embed import get_embedder

        def factory():
            identity = self.store.embedder_identity()
            if identity and self.embedder_name and self.embedder_name != identity[0]:
                raise ModelMismatchError(
                    f"shelf {self.db} was built with embedding model {identity[0]} ({identity[1]} dims), "
                    f"not {self.embedder_name}; drop --embedder, or use another --db for the new model"
                )
            name = self.embedder_name or (identity[0] if identity else config.setting("DOCSHELF_EMBEDDER"))
            return get_embedder(name)

        return factory


def _set_project(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
    if value is not None:
        ctx.ensure_object(ShelfContext).project = value


def _set_all_sources(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(ShelfContext).all_sources = True


def scope_options(command: Any) -> Any:
    """Add --project DIR and --all-sources to a command that searches."""
    command = click.option("--all-sources", is_flag=True, expose_value=False, callback=_set_all_sources,
                           help="Search every source on the shelf, whatever the project's .docshelf.toml says.")(command)
    return click.option("--project", metavar="DIR", expose_value=False, callback=_set_project,
                        type=click.Path(file_okay=False),
                        help="Search the sources of this project's .docshelf.toml (default: the project of the "
                             "current folder, if it has one).")(command)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


@contextmanager
def config_errors() -> Iterator[None]:
    """Turn docshelf's own errors into one clear line and exit code 2."""
    try:
        yield
    except DocshelfError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


def check_sources(shelf: ShelfContext, sources: tuple[str, ...]) -> tuple[str, ...]:
    """Return the key of each `SOURCE[@VERSION]` (a bare name: its newest version); a usage error names those on the shelf."""
    from docshelf.versions import NotOnShelfError, ShelfVersions

    versions = ShelfVersions.of(shelf.store.source_names())
    try:
        return tuple(versions.resolve(spec) for spec in sources)
    except NotOnShelfError as exc:
        raise click.UsageError(str(exc)) from exc


allow_hosts_option = click.option(
    "--allow-hosts", "allow_hosts", envvar="DOCSHELF_ALLOW_HOSTS", metavar="CIDR,HOST",
    help="Private networks and host names crawls may reach, comma-separated, e.g. 10.0.0.0/8,docs.internal "
         "(env DOCSHELF_ALLOW_HOSTS). Without it, private, loopback, link-local and reserved addresses are refused.",
)
allow_folder_option = click.option(
    "--allow-folder", "allow_folders", multiple=True, metavar="DIR",
    type=click.Path(exists=True, file_okay=False),
    help="A folder clients may have crawled, with everything under it (repeatable). Without it, none.",
)


def access_policies(allow_hosts: str | None, allow_folders: tuple[str, ...]):
    """Return the (AccessPolicy, FolderPolicy) for crawls clients of `serve` or `mcp` start; exit 2 on a bad list."""
    from docshelf.access import AccessPolicy, FolderPolicy

    with config_errors():
        return AccessPolicy.for_clients(allow_hosts or ""), FolderPolicy.of(allow_folders)
