"""`docshelf refresh` and `docshelf changes`: keep the shelf fresh, and see what moved."""

from __future__ import annotations

import sys

import click

from docshelf.cli.shelf import EXIT_PAGES_FAILED, ShelfContext, check_sources, config_errors, emit_json


@click.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE[@VERSION]]...")
@click.option("--older-than", metavar="AGE", help="Only versions last crawled longer ago than this (30m, 24h, 7d, 2w).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per source refreshed.")
@click.pass_obj
def refresh(shelf: ShelfContext, sources: tuple[str, ...], older_than: str | None, as_json: bool) -> None:
    """Re-crawl sources with the root and options they were added with; unchanged pages cost a 304.

    A bare source name refreshes every version of it; no name refreshes the whole shelf. Each
    refresh logs the pages it added, changed and removed (see `docshelf changes`).

    \b
    Example:
        docshelf refresh --older-than 7d
        docshelf refresh django@5.1
    """
    from docshelf.cli.enrich import build_enricher, context_choice, remembered_enrichment
    from docshelf.cli.progress import IngestProgress
    from docshelf.cli.render import render_summary
    from docshelf.ingest import Ingestor
    from docshelf.jobs import options_from_json
    from docshelf.refresh import parse_duration, stale_sources

    with config_errors():
        age = parse_duration(older_than) if older_than else None
        check_sources(shelf, sources)
        stale = stale_sources(shelf.store, sources, age)
    if not stale and not as_json:
        click.echo("nothing to refresh" + (f": every version was crawled in the last {older_than}" if age else ""))
    failed = False
    for source in stale:
        with config_errors():
            enrich, context, model = remembered_enrichment(shelf, source.name, None, None, None)
        with config_errors(), IngestProgress(enabled=not as_json, enriching=enrich == "llm") as progress:
            enricher = build_enricher(shelf, model, context_choice(context), progress) if enrich == "llm" else None
            summary = Ingestor(shelf.store, shelf.embedder_factory(), progress, enricher).add(
                source.root, source=source.name, options=options_from_json(source.options))
        failed = failed or summary.pages_failed > 0
        if as_json:
            emit_json(summary.to_json())
        else:
            render_summary(summary)
    if failed:
        sys.exit(EXIT_PAGES_FAILED)


@click.command()
@click.argument("source", metavar="SOURCE[@VERSION]")
@click.option("--since", metavar="DATE", help="Only changes on or after this date or time (ISO, e.g. 2026-12-01).")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as a JSON list.")
@click.pass_obj
def changes(shelf: ShelfContext, source: str, since: str | None, as_json: bool) -> None:
    """List the pages each refresh of a source added, changed (with the size of the Markdown diff) and removed.

    \b
    Example:
        docshelf changes django@5.1 --since 2026-12-01
    """
    from datetime import datetime

    if since is not None:
        try:
            datetime.fromisoformat(since)  # compared as text with the logged ISO times
        except ValueError:
            raise click.BadParameter(f"{since!r} is not an ISO date such as 2026-12-01", param_hint="--since") from None
    with config_errors():
        (key,) = check_sources(shelf, (source,))
        log = shelf.store.list_changes(key, since)
    if as_json:
        emit_json([c.to_json() for c in log])
        return
    if not log:
        click.echo(f"no changes logged for {key}" + (f" since {since}" if since else "")
                   + " (the first crawl logs none; each refresh logs what it added, changed and removed)")
        return
    from docshelf.cli.render import render_changes

    render_changes(key, log)
