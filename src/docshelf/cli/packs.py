"""`docshelf pack`, `docshelf search-registry`, and the pack side of `docshelf add`: thin over packs.py and
pack_registry.py."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from docshelf.cli.shelf import ShelfContext, check_sources, config_errors, emit_json


@click.command("pack")
@click.argument("source", metavar="[SOURCE[@VERSION]]", required=False)
@click.option("--all", "all_sources", is_flag=True, help="Pack every source into the folder -o, with an index.json.")
@click.option("-o", "--output", metavar="FILE_OR_DIR", required=True,
              help="The pack file (NAME.docshelf), or with --all the registry folder.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_obj
def pack_command(shelf: ShelfContext, source: str | None, all_sources: bool, output: str, as_json: bool) -> None:
    """Write a source as one pack file anyone can `docshelf add` without crawling or embedding.

    The pack holds the pages, chunks and vectors, the embedding model, the crawl
    settings and date, and a checksum. The same content gives the same bytes.
    With --all, every source goes into a folder with an index.json: serve the
    folder with any static file server and it is a registry.

    A source with versions is packed one version at a time: SOURCE@VERSION, or
    SOURCE for its newest; the pack records the version, and adds it as that version.

    \b
    Example:
        docshelf pack flask -o flask.docshelf
        docshelf pack django@4.2 -o django-4.2.docshelf
        docshelf pack --all -o shelves/
        docshelf add flask.docshelf
    """
    from docshelf.packs import write_pack, write_packs

    if (source is None) == (not all_sources):
        raise click.UsageError("give either a SOURCE or --all")
    with config_errors():
        if all_sources:
            folder = Path(output)
            if folder.exists() and not folder.is_dir():
                raise click.UsageError(f"-o {output}: with --all give a folder, not a file")
            infos = write_packs(shelf.store, folder)
        else:
            (source,) = check_sources(shelf, (source or "",))  # a bare name: its newest version
            target = Path(output)
            if target.is_dir():
                target = target / f"{source}.docshelf"
            infos = [write_pack(shelf.store, source or "", target)]
    if as_json:
        emit_json([info.to_json() | {"path": str(info.path)} for info in infos])
        return
    for info in infos:
        click.echo(f"packed {info.name}: {info.manifest['pages']} pages, {info.manifest['chunks']} chunks "
                   f"({info.manifest['vectors']} vectors, {info.manifest['embed_model']}) → {info.path} "
                   f"({info.size:,} bytes, sha256 {info.sha256[:12]}…)")
    if all_sources:
        click.echo(f"wrote {Path(output) / 'index.json'}: serve {output} to share it as a registry")


@click.command("search-registry")
@click.argument("url")
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def search_registry_command(url: str, query: str | None, as_json: bool) -> None:
    """List the packs a registry offers (name, version, size, model), optionally only those matching QUERY.

    \b
    Example:
        docshelf search-registry https://example.org/shelves/
        docshelf add https://example.org/shelves/flask
    """
    from docshelf.pack_registry import registry_entries

    with config_errors():
        entries = registry_entries(url)
    if query:
        words = query.lower().split()
        entries = [e for e in entries if all(w in f"{e.entry['name']} {e.entry.get('root', '')}".lower() for w in words)]
    if as_json:
        emit_json([e.to_json() for e in entries])
        return
    if not entries:
        click.echo("no packs" + (f" matching {query!r}" if query else ""))
    for e in entries:
        entry = e.entry
        name = entry["name"] + (f"@{entry['version']}" if entry.get("version") else "")
        click.echo(f"{name:<30} {entry['pages']:>6} pages {entry['chunks']:>7} chunks  {entry['size']:>12,} bytes  "
                   f"{entry['model']}  {entry.get('date') or ''}  {e.url}")


def pack_location(location: str) -> tuple[str, str | None] | None:
    """Return (file path or URL of a pack, expected sha256 or None) when `location` names a pack, else None.

    A pack is a local `*.docshelf` file (or any docshelf pack file), an http(s) URL ending in `.docshelf`,
    or `https://host/folder/NAME[@VERSION]` (no trailing slash, no file extension) where
    `https://host/folder/index.json` is a registry offering NAME.
    """
    from docshelf.pack_registry import RegistryError, find_in_registry, is_url
    from docshelf.packs import PACK_SUFFIX, SQLITE_MAGIC

    if is_url(location):
        last = location.rsplit("/", 1)[-1]
        if last.endswith(PACK_SUFFIX):
            return location, None
        if location.endswith("/") or "." in last.partition("@")[0]:
            return None  # a site or a page: only NAME[@VERSION] can be a registry entry
        try:
            entry = find_in_registry(location)
        except RegistryError as exc:
            if "offers no" in str(exc):
                raise
            return None  # nothing there to ask: let the crawl report the site
        return (entry.url, entry.entry.get("checksum")) if entry else None
    path = Path(location)
    if path.is_file():
        if path.suffix == PACK_SUFFIX:
            return str(path), None
        with path.open("rb") as fp:
            if fp.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                return str(path), None
    return None


def add_pack_command(shelf: ShelfContext, location: str, expected_sha256: str | None, reembed: bool,
                     as_json: bool) -> None:
    """Add a pack (file or URL) to the shelf and report it: the `docshelf add` path for packs."""
    from docshelf.cli.progress import IngestProgress
    from docshelf.pack_registry import downloaded, is_url
    from docshelf.packs import add_pack

    with config_errors(), IngestProgress(enabled=not as_json, crawling=False) as progress:
        if is_url(location):
            with downloaded(location, expected_sha256) as path:
                summary = add_pack(shelf.store, path, reembed=reembed, embedder_factory=shelf.embedder_factory(),
                                   progress=progress)
        else:
            summary = add_pack(shelf.store, Path(location), reembed=reembed,
                               embedder_factory=shelf.embedder_factory(), progress=progress)
    if as_json:
        emit_json(summary.to_json())
    else:
        verb = "replaced" if summary.replaced else "added"
        click.echo(f"{verb} {summary.source} from {location}: {summary.pages} pages, {summary.chunks} chunks; "
                   f"{summary.vectors_used} vectors used as packed, {summary.embedded} embedded here "
                   f"({summary.model})")
        for note in summary.notes:
            click.echo(f"note: {note}", err=True)
    if summary.notes:
        sys.exit(1)
