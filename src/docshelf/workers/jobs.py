"""`QueueJobs`: crawl jobs queued in the shelf's PostgreSQL database, for workers on any machine to run.

It has the interface of the in-process `docshelf.jobs.JobManager` (`CrawlJobs`), so `serve`
and `mcp --allow-write` use one or the other by the shelf they open, and every replica of
a server sees the same jobs: they are rows of `docshelf_jobs`, their progress is counted
from the shared frontier. One crawl of a source at a time is a unique index, so it holds
across replicas too.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from docshelf.access import AccessPolicy, FolderPolicy
from docshelf.crawl.base import CrawlOptions
from docshelf.errors import DocshelfError, StoreError
from docshelf.ingest import options_json
from docshelf.jobs import (
    MAX_PENDING_JOBS,
    Job,
    JobNotFoundError,
    JobNotResumableError,
    SourceBusyError,
    TooManyJobsError,
    add_job,
    check_crawl_root,
    options_from_json,
    refresh_job,
)
from docshelf.store.base import Store
from docshelf.versions import split_key
from docshelf.workers.frontier import SharedFrontier
from docshelf.workers.queue import CRAWL_QUEUE, ensure_queue_schema, task_app

log = logging.getLogger(__name__)

LIST_LIMIT = 200
"""Jobs `list()` returns, newest last."""


class QueueJobs:
    """Crawl jobs in the PostgreSQL queue of the shelf at `dsn`.

    Args:
        dsn: the shelf's `postgresql://` URL.
        access: the addresses a client's crawl may reach; default: no private ones.
        folders: the folders a client's crawl may read; default: none.
        trust_start: the jobs' start hosts are trusted, as `docshelf add` trusts the one it is given
            (the CLI's `add --queue`); a server's clients are not.
        max_pending: jobs queued or running at once on the shelf; more raise `TooManyJobsError`.
    """

    def __init__(self, dsn: str, *, access: AccessPolicy | None = None, folders: FolderPolicy | None = None,
                 trust_start: bool = False, max_pending: int | None = MAX_PENDING_JOBS) -> None:
        from docshelf.store.postgres import PostgresStore

        PostgresStore(dsn, max_connections=1).close()  # the shelf's tables, migrated
        ensure_queue_schema(dsn)
        self.dsn = dsn
        self.access = access or (AccessPolicy.from_env() if trust_start else AccessPolicy.for_clients())
        self.folders = folders or FolderPolicy()
        self.trust_start = trust_start
        self.max_pending = max_pending
        self._pool = ConnectionPool(dsn, min_size=1, max_size=4, kwargs={"autocommit": True}, open=True)
        self.frontier = SharedFrontier(self._pool)
        self._app = task_app(dsn)
        self._app.open()
        self._refreshers: list[tuple[threading.Event, threading.Thread]] = []

    def close(self) -> None:
        """Stop the refresh loops (waiting for a check in progress), then close the connections they use."""
        for stop, thread in self._refreshers:
            stop.set()
            thread.join()
        self._app.close()
        self._pool.close()

    # -- the CrawlJobs interface ----------------------------------------------------
    def start_add(self, root: str, source: str | None = None, options: CrawlOptions | None = None,
                  version: str | None = None) -> Job:
        """Queue a crawl of `root` into `source` (derived from the root when None); return the job at once.

        Raises:
            AccessDeniedError: the root resolves to an address, or lies in a folder, the policy refuses.
            SourceBusyError: a crawl of that source is queued or running already.
            TooManyJobsError: `max_pending` jobs are queued or running already.
        """
        job = add_job(root, source, options, version)
        self.check_root(job.root)
        return self._submit(job)

    def start_refresh(self, store: Store, source: str) -> Job:
        """Queue a re-crawl of a source with the root and options it was added with; return the job.

        Raises:
            NotOnShelfError: the shelf has no such source.
            AccessDeniedError, SourceBusyError, TooManyJobsError: as `start_add`.
        """
        job = refresh_job(store, source)
        self.check_root(job.root)
        return self._submit(job)

    def refresh_every(self, every: timedelta, *, check_every: float | None = None) -> threading.Event:
        """Queue a refresh of each source version older than `every`, checking every `check_every` seconds.

        Any number of servers may do this on one shelf: a source already queued or running is
        skipped (the unique index), so exactly one refresh of it runs, on whichever worker takes it.
        """
        from docshelf.refresh import stale_sources
        from docshelf.store.postgres import PostgresStore

        stop = threading.Event()
        interval = check_every if check_every is not None else min(max(every.total_seconds() / 10, 1.0), 600.0)

        def loop() -> None:
            while not stop.is_set():
                try:
                    store = PostgresStore(self.dsn, max_connections=1)
                    try:
                        for source in stale_sources(store, older_than=every):
                            try:
                                self.start_refresh(store, source.name)
                            except (SourceBusyError, TooManyJobsError):
                                continue
                            except DocshelfError as exc:
                                log.warning("not refreshing %s: %s", source.name, exc)
                    finally:
                        store.close()
                except DocshelfError as exc:
                    log.warning("refresh check failed, trying again in %.0fs: %s", interval, exc)
                stop.wait(interval)

        thread = threading.Thread(target=loop, name="docshelf-refresh-every", daemon=True)
        self._refreshers.append((stop, thread))
        thread.start()
        return stop

    def resume(self, job_id: str) -> Job:
        """Queue a failed or cancelled job again under its id; its pages already stored unchanged are skipped.

        Raises:
            JobNotFoundError, JobNotResumableError, AccessDeniedError, SourceBusyError, TooManyJobsError.
        """
        job = self.get(job_id)
        if job.status not in ("failed", "cancelled", "interrupted"):
            raise JobNotResumableError(f"job {job_id} is {job.status}; only a failed or cancelled job resumes")
        self.check_root(job.root)
        with self._pool.connection() as conn, conn.transaction():
            self._check_capacity(conn)
            conn.execute("DELETE FROM docshelf_frontier WHERE job_id = %s", (job_id,))
            conn.execute("DELETE FROM docshelf_embed_claims WHERE job_id = %s", (job_id,))
            try:
                conn.execute(
                    """UPDATE docshelf_jobs SET status = 'queued', error = NULL, summary = NULL, embedded = 0,
                              complete = true, started_at = NULL, finished_at = NULL WHERE id = %s""", (job_id,))
            except pg_errors.UniqueViolation as exc:
                raise self._busy(job.source) from exc
        self._defer_open(job_id)
        return self.get(job_id)

    def check_root(self, root: str) -> None:
        """Refuse a crawl root the policy does not allow (see `JobManager.check_root`).

        A folder is read by whichever worker takes the job: it must be there on that machine too.
        """
        check_crawl_root(root, self.access, self.folders)

    def get(self, job_id: str) -> Job:
        """Return the job with this id, with its progress so far.

        Raises:
            JobNotFoundError: no such job on this shelf.
        """
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("SELECT * FROM docshelf_jobs WHERE id = %s", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {job_id!r} on this shelf (docshelf jobs lists them)")
        return self._job(row)

    def active_for(self, source: str) -> Job | None:
        """Return the queued or running job of a source (any version of it), if any."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("SELECT * FROM docshelf_jobs WHERE base_name = %s AND status IN ('queued', 'running')",
                              (split_key(source)[0],)).fetchone()
        return self._job(row) if row else None

    def list(self) -> list[Job]:
        """Return the latest jobs, oldest first."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute("SELECT * FROM (SELECT * FROM docshelf_jobs ORDER BY created_at DESC LIMIT %s) j "
                               "ORDER BY created_at", (LIST_LIMIT,)).fetchall()
        return [self._job(row) for row in rows]

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job: its waiting tasks end at once, those running at their next batch.

        What it stored so far stays on the shelf (and searchable); `resume` runs it again.

        Raises:
            JobNotFoundError: no such job.
            JobNotResumableError: the job has finished already.
        """
        job = self.get(job_id)
        with self._pool.connection() as conn:
            cur = conn.execute("UPDATE docshelf_jobs SET status = 'cancelled', finished_at = now(), "
                               "error = 'cancelled' WHERE id = %s AND status IN ('queued', 'running')", (job_id,))
        if cur.rowcount == 0:
            raise JobNotResumableError(f"job {job_id} is {job.status} already; nothing to cancel")
        return self.get(job_id)

    # -- plumbing ------------------------------------------------------------------
    def _submit(self, job: Job) -> Job:
        with self._pool.connection() as conn, conn.transaction():
            self._check_capacity(conn)
            try:
                conn.execute(
                    """INSERT INTO docshelf_jobs (id, kind, source, base_name, root, options, version, trust_start)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                    (job.id, job.kind, job.source, split_key(job.source)[0], job.root,
                     json.dumps(options_json(job.options)), job.version, self.trust_start),
                )
            except pg_errors.UniqueViolation as exc:
                raise self._busy(job.source) from exc
        self._defer_open(job.id)
        return self.get(job.id)

    def _defer_open(self, job_id: str) -> None:
        try:
            self._app.configure_task("docshelf:open_site", queue=CRAWL_QUEUE).defer(job_id=job_id)
        except Exception as exc:  # the job row exists: say so on it rather than leave it queued for nobody
            with self._pool.connection() as conn:
                conn.execute("UPDATE docshelf_jobs SET status = 'failed', error = %s WHERE id = %s",
                             (f"could not queue: {exc}", job_id))
            raise StoreError(f"could not queue job {job_id}: {exc}") from exc

    def _check_capacity(self, conn: psycopg.Connection) -> None:
        if self.max_pending is None:
            return
        row = conn.execute("SELECT count(*) FROM docshelf_jobs WHERE status IN ('queued', 'running')").fetchone()
        pending = int(row[0]) if row else 0
        if pending >= self.max_pending:
            raise TooManyJobsError(
                f"{pending} crawl jobs are queued or running on this shelf, the most it takes; "
                f"try again when one has finished (docshelf jobs)"
            )

    def _busy(self, source: str) -> SourceBusyError:
        active = self.active_for(source)
        which = f"job {active.id} ({active.status})" if active else "another job"
        return SourceBusyError(f"{which} is already crawling {source!r}; try again when it has finished "
                               f"(docshelf jobs)")

    def _job(self, row: dict[str, Any]) -> Job:
        counts = self.frontier.outcome_counts(row["id"])
        finished = row["status"] in ("done", "failed", "cancelled")
        return Job(
            id=row["id"], kind=row["kind"], source=row["source"], root=row["root"],
            options=options_from_json(row["options"]), version=row["version"], status=row["status"],
            pages_done=sum(counts.values()), pages_by_status=counts,
            chunks_waiting=0 if finished else self.frontier.chunks_waiting(row["source"]),
            embedded=row["embedded"], created_at=_iso(row["created_at"]), started_at=_iso(row["started_at"]),
            finished_at=_iso(row["finished_at"]), error=row["error"], summary=row["summary"], worker=row["worker"],
        )


def _iso(value: Any) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None
