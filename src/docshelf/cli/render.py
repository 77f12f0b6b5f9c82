"""How the CLI shows summaries, hits, sources and pages to a person (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from docshelf.ingest import IngestSummary
from docshelf.models import Chunk, PageChange, PageInfo, SearchHit, SourceStats

console = Console()


def render_summary(s: IngestSummary) -> None:
    console.print(
        f"[bold]{s.source}[/]: {s.pages_ok} pages stored, {s.pages_unchanged} unchanged, "
        f"{s.pages_failed} failed, {s.pages_skipped} skipped, {s.pages_removed} removed; "
        f"{s.chunks} chunks, {s.embedded} embedded in {s.seconds:.1f}s"
    )
    for failure in s.failures[:20]:
        console.print(f"  [red]{failure['status']}[/] {failure['url']} — {failure['reason']}")
    if len(s.failures) > 20:
        console.print(f"  … and {len(s.failures) - 20} more (docshelf pages {s.source} --json)")


def render_hits(query: str, hits: Sequence[SearchHit]) -> None:
    if not hits:
        console.print(f"no results for {query!r}")
        return
    for rank, hit in enumerate(hits, 1):
        where = hit.source.replace("@", " ")
        dates = f" · {hit.freshness}" if hit.freshness else ""
        console.print(f"[bold cyan]{rank}.[/] [bold]{hit.title}[/]  [dim]{where}{dates} · {hit.score:.4f}[/]",
                      highlight=False)
        console.print(f"   [link={hit.url}]{hit.url}[/link]")
        if hit.summary:
            console.print(f"   {hit.summary}", highlight=False)


def render_sources(stats: Sequence[SourceStats], db: str) -> None:
    if not stats:
        console.print(f"no sources in {db} yet — add one with: docshelf add URL_OR_PATH")
        return
    from docshelf.versions import newest_first

    newest = {}
    for s in stats:
        newest.setdefault(s.source.base_name, []).append(s.source.version)
    table = Table("source", "version", "root", "pages", "failed", "skipped", "chunks", "embedded", "last crawl", "age")
    for s in stats:
        version = s.source.version or "-"
        if s.source.version and newest_first(newest[s.source.base_name])[0] == s.source.version:
            version += " (newest)" if len(newest[s.source.base_name]) > 1 else ""
        table.add_row(s.source.base_name, version, s.source.root, str(s.pages),
                      f"[red]{s.pages_failed}[/]" if s.pages_failed else "0", str(s.pages_skipped),
                      str(s.chunks), f"{s.embedded}/{s.chunks}", (s.source.last_crawl_at or "")[:19],
                      age(s.source.last_crawl_at))
    console.print(table)


def age(iso: str | None) -> str:
    """Return how long ago an ISO time was, as "3d", "5h" or "12m" ("never" for None)."""
    from datetime import UTC, datetime

    if not iso:
        return "never"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return "now"


def render_pages(pages: Sequence[PageInfo], *, total: int, offset: int) -> None:
    table = Table("url", "title", "status", "chunks")
    for p in pages:
        table.add_row(p.url, p.title, p.status if p.status == "ok" else f"{p.status}: {p.error}", str(p.chunks))
    console.print(table)
    console.print(f"pages {offset + 1 if pages else offset}–{offset + len(pages)} of {total}")


def render_page(info: PageInfo, chunks: Sequence[Chunk], markdown: str | None) -> None:
    console.print(f"[bold]{info.title}[/]  [dim]{info.url} · {info.status} · {info.chunks} chunks[/]")
    if markdown is not None:
        console.print(Markdown(markdown))
        return
    for chunk in chunks:
        console.print(f"[dim]chunk {chunk.chunk_number} · {' › '.join(chunk.heading_path)} · {chunk.cite_url}[/]")
        console.print(f"[bold]{chunk.title}[/]\n[italic]{chunk.summary}[/]")
        console.print(Markdown(chunk.content))


def render_changes(source: str, log: Sequence[PageChange]) -> None:
    table = Table("refreshed", "change", "lines", "url", title=f"changes of {source}")
    colours = {"added": "green", "changed": "yellow", "removed": "red"}
    for c in log:
        table.add_row(c.at[:19].replace("T", " "), f"[{colours[c.change]}]{c.change}[/]",
                      str(c.diff_lines) if c.change == "changed" else "", c.url)
    console.print(table)


def render_project(rows: Sequence, files: Sequence[str]) -> None:
    table = Table("dependency", "locked", "shelf", "status", title=f"dependencies from {', '.join(files)}")
    colours = {"ok": "green", "other version on the shelf": "yellow", "not on the shelf": "red",
               "several sources": "yellow"}
    for row in rows:
        dep = row.dependency
        status = f"[{colours[row.status]}]{row.status}[/]" + (f"\n[dim]{row.hint}[/]" if row.hint else "")
        table.add_row(dep.name, dep.locked or dep.spec or "", row.key or "", status)
    console.print(table)
