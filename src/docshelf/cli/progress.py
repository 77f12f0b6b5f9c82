"""Progress bars for `docshelf add` and `docshelf enrich`: pages crawled, chunks enriched by a model and
chunks embedded, drawn on stderr."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class IngestProgress:
    """Implements the pipeline's `Progress` and the enricher's `EnrichProgress` with rich bars.

    Silent when disabled or not a terminal.

    Args:
        enabled: draw at all.
        crawling: show the pages bar (not for `docshelf enrich`, which crawls nothing).
        enriching: show the bar of chunks a model enriches.
    """

    def __init__(self, enabled: bool = True, *, crawling: bool = True, enriching: bool = False) -> None:
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self._bars = Progress(
            SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console, transient=False,
        )
        self._pages = self._bars.add_task("pages", total=None, detail="", visible=crawling)
        self._enriching = self._bars.add_task("enriching", total=0, detail="", visible=enriching)
        self._vectors = self._bars.add_task("embedding", total=0, detail="")
        self._counts = {"ok": 0, "unchanged": 0, "failed": 0, "skipped": 0}

    def __enter__(self) -> IngestProgress:
        if self.enabled:
            self._bars.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.enabled:
            self._bars.stop()

    def page(self, url: str, status: str) -> None:
        self._counts[status] = self._counts.get(status, 0) + 1
        detail = " ".join(f"{k} {v}" for k, v in self._counts.items() if v)
        self._bars.update(self._pages, advance=1, detail=detail)

    def chunks_added(self, count: int) -> None:
        task = self._bars.tasks[self._vectors]
        self._bars.update(self._vectors, total=(task.total or 0) + count)

    def embedded(self, count: int) -> None:
        self._bars.update(self._vectors, advance=count)

    def enrich_queued(self, count: int) -> None:
        task = self._bars.tasks[self._enriching]
        self._bars.update(self._enriching, total=(task.total or 0) + count)

    def enriched(self, count: int) -> None:
        self._bars.update(self._enriching, advance=count)
