"""What a worker process holds across tasks: its shelf connection, embedder, host gates, and the job rows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from docshelf.crawl.base import CrawlOptions
from docshelf.crawl.politeness import Gates
from docshelf.crawl.robots import RobotsPolicy
from docshelf.crawl.shared_politeness import SharedHostGates
from docshelf.embed.base import Embedder
from docshelf.ingest import IndexSettings, Ingestor, IngestSummary, Progress, options_json
from docshelf.models import PageInfo
from docshelf.store.postgres import PostgresStore
from docshelf.versions import split_key
from docshelf.workers.frontier import SharedFrontier


@dataclass(frozen=True)
class JobRow:
    """A crawl job as its tasks read it from `docshelf_jobs`."""

    id: str
    kind: str
    source: str
    root: str
    options: dict[str, Any]
    version: str | None
    trust_start: bool
    refresh: bool
    scope_start: str | None
    discovered_by: Any
    complete: bool
    started_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobRow:
        return cls(row["id"], row["kind"], row["source"], row["root"], row["options"], row["version"],
                   row["trust_start"], row["refresh"], row["scope_start"], row["discovered_by"], row["complete"],
                   row["started_at"])

    def stored_before(self, states: dict[str, PageInfo]) -> dict[str, PageInfo]:
        """Return the page states as they were before this job: a page it stored already (a batch run again
        after its worker died) is stored again, and counted as this job's, rather than found unchanged."""
        if self.started_at is None:
            return states
        return {url: info for url, info in states.items()
                if not (info.changed_at and datetime.fromisoformat(info.changed_at) >= self.started_at)}


class WorkerContext:
    """One worker process's connections and caches, handed to every task it runs.

    Args:
        dsn: the shelf.
        embedder_factory: builds the shelf's embedder, once, at the first embedding task.
        name: the worker's name, written on the jobs it works on.
        gates_factory: the host gates for a crawl's options; default: gates shared through the shelf's
            database (`SharedHostGates`), so every worker on every machine keeps one Crawl-delay and one
            per-host limit.
    """

    def __init__(self, dsn: str, embedder_factory: Callable[[], Embedder], name: str,
                 gates_factory: Callable[[CrawlOptions], Gates] | None = None, *, connections: int = 4) -> None:
        self.dsn = dsn
        self.name = name
        self.store = PostgresStore(dsn, max_connections=connections)
        self._pool = ConnectionPool(dsn, min_size=1, max_size=connections, kwargs={"autocommit": True}, open=True)
        self.frontier = SharedFrontier(self._pool)
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self._gates_factory = gates_factory
        self._shared_gates: dict[int, SharedHostGates] = {}
        self._robots: dict[str, dict[str, RobotsPolicy]] = {}
        self.embedding = asyncio.Semaphore(1)
        """One embedding batch at a time per process: the embedder's own threads already use every core."""

    async def aclose(self) -> None:
        for gates in self._shared_gates.values():
            await gates.close()
        self.store.close()
        self._pool.close()

    # -- per-process resources ------------------------------------------------------
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._embedder_factory()
            self.store.bind_embedder(self._embedder.model_id, self._embedder.dim)
        return self._embedder

    def ingestor(self, job: JobRow, progress: Progress | None = None) -> Ingestor:
        from docshelf.access import AccessPolicy

        return Ingestor(self.store, self.embedder, progress, access=AccessPolicy.from_env(trust_start=job.trust_start),
                        settings=IndexSettings(dedup=False))

    def gates(self, options: CrawlOptions) -> Gates:
        """Return the host gates a crawl with `options` fetches through (shared by all tasks of this process)."""
        if self._gates_factory is not None:
            return self._gates_factory(options)
        gates = self._shared_gates.get(options.per_host)
        if gates is None:
            # A held slot keeps a connection: room for the requests in flight to two hosts, and bookings.
            gates = self._shared_gates[options.per_host] = SharedHostGates(
                self.dsn, options.per_host, max_connections=2 * options.per_host + 2,
                max_hold=options.timeout * 4 + 60)
        return gates

    def robots(self, job_id: str) -> dict[str, RobotsPolicy]:
        """Return the robots.txt policies read so far for a job, so each worker reads a host's once per job."""
        return self._robots.setdefault(job_id, {})

    def frontier_progress(self, job_id: str) -> Progress:
        return _FrontierProgress(self, job_id)

    # -- the job's row ------------------------------------------------------------------
    def take_job(self, job_id: str) -> JobRow | None:
        """Return the job if it is queued or running, marked running by this worker; None when it is not wanted."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                """UPDATE docshelf_jobs SET status = 'running', worker = %s, started_at = coalesce(started_at, now())
                    WHERE id = %s AND status IN ('queued', 'running') RETURNING *""", (self.name, job_id)).fetchone()
        return JobRow.from_row(row) if row else None

    def still_wanted(self, job_id: str) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT status FROM docshelf_jobs WHERE id = %s", (job_id,)).fetchone()
        return bool(row and row[0] == "running")

    def set_source(self, job_id: str, source: str, *, refresh: bool) -> JobRow:
        """Record the source key the crawl resolved to (`name@version`), and whether it refreshes one."""
        return self._update(job_id, "source = %s, base_name = %s, refresh = %s",
                            (source, split_key(source)[0], refresh))

    def set_options(self, job_id: str, options: CrawlOptions) -> JobRow:
        return self._update(job_id, "options = %s", (json.dumps(options_json(options)),))

    def set_discovery(self, job_id: str, scope_start: str, method: Any, *, complete: bool) -> None:
        """Record where the scope starts and how pages are found; `complete=False` is sticky (a budget cut)."""
        self._update(job_id, "scope_start = %s, discovered_by = %s, complete = complete AND %s",
                     (scope_start, method, complete))

    def add_embedded(self, job_id: str, count: int) -> None:
        if count:
            with self._pool.connection() as conn:
                conn.execute("UPDATE docshelf_jobs SET embedded = embedded + %s WHERE id = %s", (count, job_id))

    def embedded(self, job_id: str) -> int:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT embedded FROM docshelf_jobs WHERE id = %s", (job_id,)).fetchone()
        return int(row[0]) if row else 0

    def end_job(self, job_id: str, summary: IngestSummary) -> None:
        """Mark the job done with its summary, or failed when not one page could be stored."""
        stored = summary.pages_ok + summary.pages_unchanged
        error = None
        if stored == 0 and summary.failures:
            first = summary.failures[0]
            error = f"no page could be stored ({len(summary.failures)} failed); first: {first['url']}: {first['reason']}"
        with self._pool.connection() as conn:
            row = conn.execute("SELECT extract(epoch FROM now() - started_at) FROM docshelf_jobs WHERE id = %s",
                               (job_id,)).fetchone()
            summary.seconds = round(float(row[0] or 0), 3) if row else 0.0
            conn.execute(
                """UPDATE docshelf_jobs SET status = %s, error = %s, summary = %s, finished_at = now(), worker = %s
                    WHERE id = %s AND status = 'running'""",
                ("failed" if error else "done", error, json.dumps(summary.to_json()), self.name, job_id))

    def fail_job(self, job_id: str, error: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("""UPDATE docshelf_jobs SET status = 'failed', error = %s, finished_at = now(), worker = %s
                             WHERE id = %s AND status IN ('queued', 'running')""", (error, self.name, job_id))

    def _update(self, job_id: str, assignments: str, params: tuple) -> JobRow:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"UPDATE docshelf_jobs SET {assignments} WHERE id = %s RETURNING *",  # type: ignore[arg-type]
                              (*params, job_id)).fetchone()
        assert row is not None
        return JobRow.from_row(row)


class _FrontierProgress:
    """The single-process pipeline's Progress, recorded in the job's frontier (a folder or Git job)."""

    def __init__(self, work: WorkerContext, job_id: str) -> None:
        self._work = work
        self._job_id = job_id

    def page(self, url: str, status: str) -> None:
        self._work.frontier.record(self._job_id, [(url, 0, status, None)], self._work.name)

    def chunks_added(self, count: int) -> None: ...

    def embedded(self, count: int) -> None:
        self._work.add_embedded(self._job_id, count)
