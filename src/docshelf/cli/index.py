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
from docshelf.cli.shelf import EXIT_PAGES_FAILED, ShelfContext, config_errors, emit_json


@click.command()
@click.argument("url_or_path")
@click.option("--source", "source_name", metavar="NAME[@VERSION]",
              help="Source name (default: derived from the host and path, without a version segment).")
@click.option("--version", "version", metavar="VERSION",
              help="The version the docs are of (default: what the site states, e.g. Sphinx's VERSION or /en/4.2/; "
                   "none found: unversioned).")
@click.option("--package", "packages", multiple=True, metavar="NAME",
              help="A package (PyPI or npm name) these docs are about, for `docshelf project` (repeatable).")
@click.option("--include", multiple=True, metavar="GLOB", help="Only URLs matching this glob (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip URLs matching this glob (repeatable).")
@click.option("--max-pages", type=click.IntRange(min=1), help="Stop after this many pages.")
@click.option("--max-depth", type=click.IntRange(min=0), help="Follow links at most this deep from the start page.")
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=8, show_default=True,
              help="Requests in flight.")
@enrich_option
@context_option
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.pass_obj
def add(shelf: ShelfContext, url_or_path: str, source_name: str | None, version: str | None,
        packages: tuple[str, ...], include: tuple[str, ...],
        exclude: tuple[str, ...], max_pages: int | None, max_depth: int | None, concurrency: int,
        enrich: str | None, context: str | None, model: str | None, as_json: bool) -> None:
    """Crawl a documentation site or folder into the shelf (re-run it to refresh).

    \b
    Example:
        docshelf add https://docs.python.org/3/library/ --max-pages 200
        docshelf add ./docs --source mydocs
        docshelf add ./docs --enrich llm --model openai:gpt-4o-mini --context llm
        docshelf add https://docs.djangoproject.com/en/4.2/ --source django --package django
    """
    import asyncio

    from docshelf.cli.enrich import build_enricher, echo_failures, report_line
    from docshelf.cli.progress import IngestProgress
    from docshelf.crawl.base import CrawlOptions
    from docshelf.ingest import Ingestor

    if version is not None and (not version.strip() or "@" in version or "/" in version):
        raise click.BadParameter(f"{version!r} is not a version (e.g. 4.2, 5.1.3, v2)", param_hint="--version")
    with config_errors():
        ingestor = Ingestor(shelf.store, shelf.embedder_factory())
        name = asyncio.run(ingestor.source_for(url_or_path, source_name, version))
        enrich, context, model = remembered_enrichment(shelf, name, enrich, context, model)
    if context is not None and enrich != "llm":
        raise click.UsageError(f"--context {context} needs --enrich llm")
    options = CrawlOptions(include=include, exclude=exclude, max_pages=max_pages, max_depth=max_depth,
                           concurrency=concurrency, per_host=min(concurrency, 4))
    with config_errors(), IngestProgress(enabled=not as_json, enriching=enrich == "llm") as progress:
        ingestor.enricher = build_enricher(shelf, model, context_choice(context), progress) if enrich == "llm" else None
        ingestor.progress = progress
        # The key is settled: "" keeps an unversioned one from being detected again.
        summary = ingestor.add(url_or_path, source=name, options=options, packages=packages,
                               version=name.partition("@")[2])
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
@click.argument("source", metavar="SOURCE[@VERSION]")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def rm(shelf: ShelfContext, source: str, as_json: bool) -> None:
    """Remove a source, or one version of it, with all its pages, chunks and vectors.

    A source with several versions is removed one version at a time; removing one never touches
    another's pages, and removing the last one removes the source.

    \b
    Example:
        docshelf rm django@4.2
    """
    from docshelf.versions import NotOnShelfError, ShelfVersions

    with config_errors():
        try:
            source = ShelfVersions.of(shelf.store.source_names()).only_version(source)
        except NotOnShelfError as exc:
            raise click.UsageError(str(exc)) from exc
        removed = shelf.store.remove_source(source)
    if as_json:
        emit_json({"source": source, "pages_removed": removed})
    else:
        click.echo(f"removed {source}: {removed} pages")
