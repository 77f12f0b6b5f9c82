"""`docshelf search`, `sources`, `pages` and `show`: read what is on the shelf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from docshelf.cli.shelf import ShelfContext, check_sources, config_errors, emit_json, scope_options


@click.command()
@click.argument("query", required=False)
@click.option("--source", "sources", multiple=True, metavar="NAME[@VERSION]",
              help="Search only this source (repeatable): its newest version, or the one named (django@4.2).")
@click.option("-k", "k", type=click.IntRange(min=1, max=200), default=10, show_default=True, help="Number of hits.")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "vector"]), default="hybrid", show_default=True)
@click.option("--batch", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSONL file of {"id", "question"} lines; prints {"id", "hits"} lines.')
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
@scope_options
@click.pass_obj
def search(shelf: ShelfContext, query: str | None, sources: tuple[str, ...], k: int, mode: str,
           batch: Path | None, as_json: bool) -> None:
    """Search the shelf: BM25 and vectors fused (hybrid) by default.

    \b
    Example:
        docshelf search "how do I stream a response" -k 5
        docshelf search "select_for_update" --source django@4.2
        docshelf search --batch questions.jsonl --json > results.jsonl
    """
    if (query is None) == (batch is None):
        raise click.UsageError("give either a QUERY or --batch FILE")
    with config_errors():
        check_sources(shelf, sources)
        searcher = shelf.searcher()
        if batch is not None:
            _search_batch(searcher, batch, sources=sources, k=k, mode=mode)
            return
        hits = searcher.search(query or "", k=k, sources=sources, mode=mode)  # type: ignore[arg-type]
    if as_json:
        emit_json([h.to_json() for h in hits])
    else:
        from docshelf.cli.render import render_hits

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


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def sources(shelf: ShelfContext, as_json: bool) -> None:
    """List the shelf's sources, one row per version, with counts, failures and the age of the last crawl."""
    with config_errors():
        stats = shelf.store.list_sources()
    if as_json:
        from docshelf.cli.render import age

        emit_json([
            {"name": s.source.name, "source": s.source.base_name, "version": s.source.version,
             "root": s.source.root, "pages": s.pages, "pages_failed": s.pages_failed,
             "pages_skipped": s.pages_skipped, "chunks": s.chunks, "embedded": s.embedded,
             "created_at": s.source.created_at, "last_crawl_at": s.source.last_crawl_at,
             "age": age(s.source.last_crawl_at), "packages": s.source.packages}
            for s in stats
        ])
    else:
        from docshelf.cli.render import render_sources

        render_sources(stats, shelf.db)


@click.command()
@click.argument("source")
@click.option("--prefix", metavar="URL", help="Only pages whose URL starts with this.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def pages(shelf: ShelfContext, source: str, prefix: str | None, limit: int, offset: int, as_json: bool) -> None:
    """List a source's pages (paginated), with status and chunk counts."""
    with config_errors():
        (source,) = check_sources(shelf, (source,))
        rows = shelf.store.list_pages(source, prefix=prefix, limit=limit, offset=offset)
        total = shelf.store.count_pages(source, prefix=prefix)
    if as_json:
        emit_json({"source": source, "total": total, "offset": offset,
                    "pages": [{"url": p.url, "title": p.title, "status": p.status, "chunks": p.chunks,
                               "fetched_at": p.fetched_at, "changed_at": p.changed_at, "error": p.error}
                              for p in rows]})
    else:
        from docshelf.cli.render import render_pages

        render_pages(rows, total=total, offset=offset)


@click.command()
@click.argument("url")
@click.option("--chunk", "chunk_number", type=click.IntRange(min=0), help="Show only this chunk, with its record fields.")
@click.option("--max-tokens", type=click.IntRange(min=100, max=100_000),
              help="Show whole sections that fit this many LLM tokens (o200k_base), and the cursor to read on.")
@click.option("--cursor", metavar="CURSOR", help="Read on from the cursor a previous --max-tokens call printed.")
@click.option("--around", type=click.IntRange(min=0, max=50),
              help="With URL#anchor: also this many sections before and after it.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(shelf: ShelfContext, url: str, chunk_number: int | None, max_tokens: int | None, cursor: str | None,
         around: int | None, as_json: bool) -> None:
    """Show a stored page's Markdown, or one chunk of it, or as much as fits a token budget.

    \b
    Example:
        docshelf show https://docs.python.org/3/library/json.html --max-tokens 2000
        docshelf show 'https://docs.python.org/3/library/json.html#json.dumps' --around 1 --max-tokens 3000
    """
    if max_tokens is not None or cursor is not None or around is not None:
        if chunk_number is not None:
            raise click.UsageError("--chunk shows one chunk; --max-tokens, --cursor and --around read the page")
        _show_budgeted(shelf, url, max_tokens, cursor, around, as_json)
        return
    with config_errors():
        # A hash-routed app's pages keep their route (`…/#/install`); a citation adds `#anchor` after it.
        page_url = url if shelf.store.get_page(url) is not None else url.rsplit("#", 1)[0]
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
        from docshelf.cli.render import render_page

        render_page(info, chunks, shelf.store.get_page_markdown(page_url) if chunk_number is None else None)


def _chunk_json(chunk) -> dict[str, Any]:
    return {"url": chunk.url, "source": chunk.source, "chunk_number": chunk.chunk_number, "title": chunk.title,
            "summary": chunk.summary, "heading_path": chunk.heading_path, "anchor": chunk.anchor,
            "metadata": chunk.metadata, "content": chunk.content}


def _show_budgeted(shelf: ShelfContext, url: str, max_tokens: int | None, cursor: str | None, around: int | None,
                   as_json: bool) -> None:
    from docshelf.search import HybridSearcher
    from docshelf.shelf_tools import DEFAULT_READ_TOKENS, ShelfTools

    budget = max_tokens or DEFAULT_READ_TOKENS
    with config_errors():
        tools = ShelfTools(shelf.store, HybridSearcher(shelf.store, shelf.embedder_factory()))
        part = tools.read_page_text(url, budget, cursor, around)
    if as_json:
        emit_json(part.to_json())
        return
    click.echo(part.shown, nl=not part.shown.endswith("\n"))
    if part.cursor is not None:
        click.echo(f"[{part.total - part.end} bytes left: docshelf show {part.page.url} --max-tokens {budget} "
                   f"--cursor {part.cursor}]", err=True)
