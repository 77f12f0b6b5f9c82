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


def check_sources(shelf: ShelfContext, sources: tuple[str, ...]) -> None:
    for name in sources:
        if shelf.store.get_source(name) is None:
            known = ", ".join(s.source.name for s in shelf.store.list_sources()) or "none yet"
            raise click.UsageError(f"unknown source {name!r} (known: {known})")


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
