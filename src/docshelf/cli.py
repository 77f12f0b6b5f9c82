"""`docshelf …` — a thin command line over the library.

Exit codes: 0 ok, 1 some pages failed or some chunks' model enrichment failed
(the summary says which), 2 usage or configuration error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from docshelf import config
from docshelf.cli_ask import ask, chat, mcp_command
from docshelf.cli_enrich import (
    EXIT_CHUNKS_PENDING,
    context_choice,
    context_option,
    enrich_command,
    enrich_option,
    model_option,
    remember_enrichment,
    remembered_enrichment,
)
from docshelf.cli_records import copy_command, export_command, import_command
from docshelf.cli_serve import serve
from docshelf.cli_shelf import EXIT_PAGES_FAILED, ShelfContext, check_sources, config_errors, emit_json

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("--db", envvar="DOCSHELF_DB", metavar="PATH", help="The shelf file (env DOCSHELF_DB). Default: shelf.db in the user data dir.")
@click.option("--embedder", envvar="DOCSHELF_EMBEDDER", metavar="NAME", hidden=False,
              help="Embedding model for a new shelf (default local:all-MiniLM-L6-v2); an existing shelf keeps its own.")
@click.version_option(package_name="docshelf")
@click.pass_context
def cli(ctx: click.Context, db: str | None, embedder: str | None) -> None:
    """Turn documentation sites into a searchable, citable knowledge base.

    \b
    Example:
        docshelf add https://flask.palletsprojects.com/en/stable/
        docshelf search "how do I stream a response"
    """
    ctx.obj = ShelfContext(db or config.default_db(), embedder)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.pass_obj
def add(shelf: ShelfContext, url_or_path: str, source_name: str | None, include: tuple[str, ...],
        exclude: tuple[str, ...], max_pages: int | None, max_depth: int | None, concurrency: int,
        enrich: str | None, context: str | None, model: str | None, as_json: bool) -> None:
    """Crawl a documentation site or folder into the shelf (re-run it to refresh).

    \b
    Example:
        docshelf add https://docs.python.org/3/library/ --max-pages 200
        docshelf add ./docs --source mydocs
        docshelf add ./docs --enrich llm --model openai:gpt-4o-mini --context llm
    """
    from docshelf.cli_enrich import build_enricher, echo_failures, report_line
    from docshelf.cli_progress import IngestProgress
    from docshelf.crawl.base import CrawlOptions
    from docshelf.ingest import Ingestor

    from docshelf.crawl import default_source_name

    name = source_name or default_source_name(url_or_path)
    with config_errors():
        enrich, context, model = remembered_enrichment(shelf, name, enrich, context, model)
    if context is not None and enrich != "llm":
        raise click.UsageError(f"--context {context} needs --enrich llm")
    options = CrawlOptions(include=include, exclude=exclude, max_pages=max_pages, max_depth=max_depth,
                           concurrency=concurrency, per_host=min(concurrency, 4))
    with config_errors(), IngestProgress(enabled=not as_json, enriching=enrich == "llm") as progress:
        enricher = build_enricher(shelf, model, context_choice(context), progress) if enrich == "llm" else None
        ingestor = Ingestor(shelf.store, shelf.embedder_factory(), progress, enricher)
        summary = ingestor.add(url_or_path, source=name, options=options)
        remember_enrichment(shelf, name, enrich, context, model)
    if as_json:
        emit_json(summary.to_json())
    else:
        from docshelf.cli_render import render_summary

        render_summary(summary)
        if summary.enrichment is not None:
            click.echo(f"titles and summaries: {report_line(summary.enrichment)}")
            echo_failures(summary.enrichment, summary.source)
    if summary.pages_failed:
        sys.exit(EXIT_PAGES_FAILED)
    if summary.enrichment is not None and summary.enrichment["failed"]:
        sys.exit(EXIT_CHUNKS_PENDING)


@cli.command()
@click.argument("query", required=False)
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Search only this source (repeatable).")
@click.option("-k", "k", type=click.IntRange(min=1, max=200), default=10, show_default=True, help="Number of hits.")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "vector"]), default="hybrid", show_default=True)
@click.option("--batch", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSONL file of {"id", "question"} lines; prints {"id", "hits"} lines.')
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
@click.pass_obj
def search(shelf: ShelfContext, query: str | None, sources: tuple[str, ...], k: int, mode: str,
           batch: Path | None, as_json: bool) -> None:
    """Search the shelf: BM25 and vectors fused (hybrid) by default.

    \b
    Example:
        docshelf search "how do I stream a response" -k 5
        docshelf search --batch questions.jsonl --json > results.jsonl
    """
    from docshelf.search import HybridSearcher

    if (query is None) == (batch is None):
        raise click.UsageError("give either a QUERY or --batch FILE")
    with config_errors():
        check_sources(shelf, sources)
        searcher = HybridSearcher(shelf.store, shelf.embedder_factory())
        if batch is not None:
            _search_batch(searcher, batch, sources=sources, k=k, mode=mode)
            return
        hits = searcher.search(query or "", k=k, sources=sources, mode=mode)  # type: ignore[arg-type]
    if as_json:
        emit_json([h.to_json() for h in hits])
    else:
        from docshelf.cli_render import render_hits

        render_hits(query or "", hits)


def _search_batch(searcher, batch: Path, **options: Any) -> None:
    for number, line in enumerate(batch.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            question = item["question"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise click.UsageError(f"{batch}:{number}: expected a JSON object with 'id' and 'question' ({exc})")
        hits = searcher.search(question, **options)
        emit_json({"id": item.get("id"), "hits": [h.to_json() for h in hits]})


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def sources(shelf: ShelfContext, as_json: bool) -> None:
    """List the shelf's sources with their page, chunk and vector counts."""
    with config_errors():
        stats = shelf.store.list_sources()
    if as_json:
        emit_json([
            {"name": s.source.name, "root": s.source.root, "pages": s.pages, "pages_failed": s.pages_failed,
             "pages_skipped": s.pages_skipped, "chunks": s.chunks, "embedded": s.embedded,
             "created_at": s.source.created_at, "last_crawl_at": s.source.last_crawl_at}
            for s in stats
        ])
    else:
        from docshelf.cli_render import render_sources

        render_sources(stats, shelf.db)


@cli.command()
@click.argument("source")
@click.option("--prefix", metavar="URL", help="Only pages whose URL starts with this.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def pages(shelf: ShelfContext, source: str, prefix: str | None, limit: int, offset: int, as_json: bool) -> None:
    """List a source's pages (paginated), with status and chunk counts."""
    with config_errors():
        check_sources(shelf, (source,))
        rows = shelf.store.list_pages(source, prefix=prefix, limit=limit, offset=offset)
        total = shelf.store.count_pages(source, prefix=prefix)
    if as_json:
        emit_json({"source": source, "total": total, "offset": offset,
                    "pages": [{"url": p.url, "title": p.title, "status": p.status, "chunks": p.chunks,
                               "fetched_at": p.fetched_at, "error": p.error} for p in rows]})
    else:
        from docshelf.cli_render import render_pages

        render_pages(rows, total=total, offset=offset)


@cli.command()
@click.argument("url")
@click.option("--chunk", "chunk_number", type=click.IntRange(min=0), help="Show only this chunk, with its record fields.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(shelf: ShelfContext, url: str, chunk_number: int | None, as_json: bool) -> None:
    """Show a stored page's Markdown, or one chunk of it."""
    with config_errors():
        page_url = url.split("#", 1)[0]
        info = shelf.store.get_page(page_url)
        if info is None:
            raise click.UsageError(f"no page {page_url} in the shelf; list pages with: docshelf pages SOURCE")
        start = chunk_number or 0
        chunks = shelf.store.get_chunks(page_url, start=start, limit=1 if chunk_number is not None else None)
        if chunk_number is not None and not chunks:
            raise click.UsageError(f"{page_url} has {info.chunks} chunks (0–{info.chunks - 1}); no chunk {chunk_number}")
    if as_json:
        emit_json({"url": info.url, "source": info.source, "title": info.title, "status": info.status,
                    "error": info.error, "chunks": [_chunk_json(c) for c in chunks]})
    else:
        from docshelf.cli_render import render_page

        render_page(info, chunks, shelf.store.get_page_markdown(page_url) if chunk_number is None else None)


def _chunk_json(chunk) -> dict[str, Any]:
    return {"url": chunk.url, "source": chunk.source, "chunk_number": chunk.chunk_number, "title": chunk.title,
            "summary": chunk.summary, "heading_path": chunk.heading_path, "anchor": chunk.anchor,
            "metadata": chunk.metadata, "content": chunk.content}


@cli.command()
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


for command in (import_command, export_command, copy_command, ask, chat, mcp_command, serve, enrich_command):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="docshelf")
