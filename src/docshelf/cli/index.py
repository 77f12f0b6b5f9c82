"""`docshelf add` and `docshelf rm`: put a source on the shelf, take it off."""

from __future__ import annotations

import sys

import click

from docshelf.cli.enrich import (
    EXIT_CHUNKS_PENDING,
    context_choice,
    context_option,
    enrich_option,
    model_option,
    remember_enrichment,
    remembered_enrichment,
)
from docshelf.cli.shelf import (
    EXIT_PAGES_FAILED,
    ShelfContext,
    allow_hosts_option,
    check_sources,
    config_errors,
    emit_json,
)


@click.command()
@click.argument("url_or_path")
@click.option("--source", "source_name", metavar="NAME", help="Source name (default: derived from the host and path).")
@click.option("--include", multiple=True, metavar="GLOB", help="Only URLs matching this glob (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip URLs matching this glob (repeatable).")
@click.option("--max-pages", type=click.IntRange(min=1), help="Stop after this many pages.")
@click.option("--max-depth", type=click.IntRange(min=0), help="Follow links at most this deep from the start page.")
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=8, show_default=True,
              help="Requests in flight.")
@enrich_option
@context_option
@model_option
@allow_hosts_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.pass_obj
def add(shelf: ShelfContext, url_or_path: str, source_name: str | None, include: tuple[str, ...],
        exclude: tuple[str, ...], max_pages: int | None, max_depth: int | None, concurrency: int,
        enrich: str | None, context: str | None, model: str | None, allow_hosts: str | None,
        as_json: bool) -> None:
    """Crawl a documentation site or folder into the shelf (re-run it to refresh).

    The host you give is trusted; a redirect, sitemap or robots.txt leading elsewhere to a private,
    loopback, link-local or reserved address is refused unless --allow-hosts names it.

    \b
    Example:
        docshelf add https://docs.python.org/3/library/ --max-pages 200
        docshelf add ./docs --source mydocs
        docshelf add ./docs --enrich llm --model openai:gpt-4o-mini --context llm
    """
    from docshelf.access import AccessPolicy
    from docshelf.cli.enrich import build_enricher, echo_failures, report_line
    from docshelf.cli.progress import IngestProgress
    from docshelf.crawl import default_source_name
    from docshelf.crawl.base import CrawlOptions
    from docshelf.ingest import Ingestor

    name = source_name or default_source_name(url_or_path)
    with config_errors():
        access = AccessPolicy.parse(allow_hosts or "")
        enrich, context, model = remembered_enrichment(shelf, name, enrich, context, model)
    if context is not None and enrich != "llm":
        raise click.UsageError(f"--context {context} needs --enrich llm")
    options = CrawlOptions(include=include, exclude=exclude, max_pages=max_pages, max_depth=max_depth,
                           concurrency=concurrency, per_host=min(concurrency, 4))
    with config_errors(), IngestProgress(enabled=not as_json, enriching=enrich == "llm") as progress:
        enricher = build_enricher(shelf, model, context_choice(context), progress) if enrich == "llm" else None
        ingestor = Ingestor(shelf.store, shelf.embedder_factory(), progress, enricher, access=access)
        summary = ingestor.add(url_or_path, source=name, options=options)
        remember_enrichment(shelf, name, enrich, context, model)
    if as_json:
        emit_json(summary.to_json())
    else:
        from docshelf.cli.render import render_summary

        render_summary(summary)
        if summary.enrichment is not None:
            click.echo(f"titles and summaries: {report_line(summary.enrichment)}")
            echo_failures(summary.enrichment, summary.source)
    if summary.pages_failed:
        sys.exit(EXIT_PAGES_FAILED)
    if summary.enrichment is not None and summary.enrichment["failed"]:
        sys.exit(EXIT_CHUNKS_PENDING)


@click.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def rm(shelf: ShelfContext, source: str, as_json: bool) -> None:
    """Remove a source with all its pages, chunks and vectors."""
    with config_errors():
        check_sources(shelf, (source,))
        removed = shelf.store.remove_source(source)
    if as_json:
        emit_json({"source": source, "pages_removed": removed})
    else:
        click.echo(f"removed {source}: {removed} pages")
