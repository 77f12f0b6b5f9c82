"""Background crawl jobs: start one, get its id at once, poll its progress.

MCP clients time out long tool calls, and an HTTP request should not hold a
crawl; both start a job here and poll `JobManager.get(id)`. Jobs run one
at a time on a single worker thread, each with its own connection to the
shelf, so the shelf has exactly one crawl writing to it while readers go on.

Jobs are started by clients, so the manager applies the server's access policy
(`docshelf.access`): a start URL that resolves to a private address, or a folder
outside the allowed ones, is refused before a job exists. At most `max_pending`
jobs are queued or running at once (`TooManyJobsError` beyond).

Every job is written to a journal (JSON, in DOCSHELF_HOME/jobs) when it changes.
A server killed while a job was queued or running reports that job as
`interrupted` after its restart, and `resume(id)` runs it again (a crawl that
runs again skips the pages already stored unchanged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from docshelf.access import AccessPolicy, FolderPolicy, redact_url
from docshelf.crawl import default_source_name, is_local
from docshelf.crawl.base import CrawlOptions
from docshelf.crawl.crawler import start_url
from docshelf.crawl.local import local_path
from docshelf.embed.base import Embedder
from docshelf.errors import DocshelfError
from docshelf.models import utc_now
from docshelf.store import open_store
from docshelf.store.base import Store
from docshelf.versions import NotOnShelfError, ShelfVersions, split_key

JobKind = Literal["add", "refresh"]
JobStatus = Literal["queued", "running", "done", "failed", "interrupted", "cancelled"]
MAX_PENDING_JOBS = 4
"""Crawl jobs queued or running at once per server; more is refused until one ends."""
RETRY_AFTER_SECONDS = 30
"""What a refused client is told to wait before asking again."""
JOURNAL_JOBS = 200
"""Jobs the journal keeps, newest last; older finished ones are forgotten at the next restart."""

log = logging.getLogger(__name__)


class JobNotFoundError(DocshelfError):
    """No job has the id asked for."""


class TooManyJobsError(DocshelfError):
    """`max_pending` jobs are queued or running already; `retry_after` says when to ask again."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobNotResumableError(DocshelfError):
    """Only an interrupted or failed job can be resumed."""


class SourceBusyError(DocshelfError):
    """A crawl of the source is already queued or running."""


@dataclass
class Job:
    """One crawl of a source, and how far it got."""

    id: str
    kind: JobKind
    source: str
    root: str
    options: CrawlOptions = field(default_factory=CrawlOptions)
    version: str | None = None
    """The version the docs are of, when the caller stated it; None: detected (see `Ingestor.source_for`)."""
    status: JobStatus = "queued"
    pages_done: int = 0
    """Pages finished so far, whatever their outcome."""
    pages_by_status: dict[str, int] = field(default_factory=dict)
    chunks_waiting: int = 0
    embedded: int = 0
    created_at: str = field(default_factory=utc_now)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None
    """The ingest summary, once done."""
    worker: str | None = None
    """On a PostgreSQL shelf with workers: the worker that last ran a task of the job."""

    @property
    def finished(self) -> bool:
        """Return True when the job is done, failed, interrupted or cancelled (nothing runs it)."""
        return self.status in ("done", "failed", "interrupted", "cancelled")

    def to_json(self) -> dict[str, Any]:
        """Return the job as plain JSON data."""
        return {"id": self.id, "kind": self.kind, "source": self.source, "root": redact_url(self.root),
                "status": self.status, "pages_done": self.pages_done, "pages_by_status": self.pages_by_status,
                "embedded": self.embedded, "created_at": self.created_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "error": self.error, "summary": self.summary,
                "worker": self.worker}

    def to_markdown(self) -> str:
        """Return a short status report."""
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.pages_by_status.items())) or "no pages yet"
        text = (f"Job {self.id} ({self.kind} {self.source} from {redact_url(self.root)}): **{self.status}**\n"
                f"- pages: {self.pages_done} ({counts}); chunks embedded: {self.embedded}")
        if self.error:
            text += f"\n- error: {self.error}"
        if self.summary:
            s = self.summary
            text += (f"\n- result: {s['pages_ok']} pages stored, {s['pages_unchanged']} unchanged, "
                     f"{s['pages_failed']} failed, {s['pages_skipped']} skipped, {s['pages_removed']} removed; "
                     f"{s['chunks']} chunks in {s['seconds']:.1f}s")
        elif not self.finished:
            text += "\n- still running: ask job_status again in a few seconds"
        return text

    def journal_entry(self) -> dict[str, Any]:
        """Return everything needed to report the job, and run it again, after a restart."""
        return {**self.to_json(), "root": self.root, "options": asdict(self.options), "version": self.version,
                "chunks_waiting": self.chunks_waiting}

    @classmethod
    def from_journal(cls, data: dict[str, Any]) -> Job:
        """Return the job a journal entry describes."""
        known = {f.name for f in fields(cls)} - {"options"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   options=options_from_json(data.get("options") or {}))


class _JobProgress:
    """The pipeline's Progress, written into a job (under the manager's lock)."""

    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self.job = job
        self.lock = lock

    def page(self, url: str, status: str) -> None:
        with self.lock:
            self.job.pages_done += 1
            self.job.pages_by_status[status] = self.job.pages_by_status.get(status, 0) + 1

    def chunks_added(self, count: int) -> None:
        with self.lock:
            self.job.chunks_waiting += count

    def embedded(self, count: int) -> None:
        with self.lock:
            self.job.embedded += count


def add_job(root: str, source: str | None, options: CrawlOptions | None, version: str | None) -> Job:
    """Return a new, queued crawl of `root` into `source` (derived from the root when None)."""
    return Job(new_job_id(), "add", source or default_source_name(root), root, options or CrawlOptions(), version)


def refresh_job(store: Store, source: str) -> Job:
    """Return a new, queued re-crawl of a source with the root and options it was added with.

    Raises:
        NotOnShelfError: the shelf has no such source.
    """
    source = ShelfVersions.of(store.source_names()).resolve(source)
    stored = store.get_source(source)
    if stored is None:  # removed since the line above
        known = ", ".join(s.source.name for s in store.list_sources()) or "none yet"
        raise NotOnShelfError(f"unknown source {source!r}; the shelf holds: {known}")
    return Job(new_job_id(), "refresh", source, stored.root, options_from_json(stored.options))


def check_crawl_root(root: str, access: AccessPolicy, folders: FolderPolicy) -> None:
    """Refuse a crawl root a server's policy does not allow.

    Raises:
        AccessDeniedError: a folder outside `folders`, or a URL resolving to an address `access` refuses.
        ConfigError: the root is not a usable URL.
    """
    if is_local(root):
        folders.check(local_path(root))
    else:
        access.check_url(start_url(root))


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


class CrawlJobs(Protocol):
    """Where a server queues crawls: this process's `JobManager`, or the PostgreSQL queue of
    `docshelf.workers.QueueJobs` that workers on any machine take from."""

    def start_add(self, root: str, source: str | None = None, options: CrawlOptions | None = None,
                  version: str | None = None) -> Job: ...

    def start_refresh(self, store: Store, source: str) -> Job: ...

    def refresh_every(self, every: timedelta, *, check_every: float | None = None) -> threading.Event: ...

    def resume(self, job_id: str) -> Job: ...

    def check_root(self, root: str) -> None: ...

    def get(self, job_id: str) -> Job: ...

    def active_for(self, source: str) -> Job | None: ...

    def list(self) -> list[Job]: ...

    def close(self) -> None: ...


def crawl_jobs(db: str, embedder_factory: Callable[[], Embedder], *, access: AccessPolicy | None = None,
               folders: FolderPolicy | None = None, max_pending: int = MAX_PENDING_JOBS,
               journal: Path | None | Literal["default"] = "default") -> CrawlJobs:
    """Return where a server queues the crawls of the shelf at `db`.

    A PostgreSQL shelf: its own queue (`docshelf.workers.QueueJobs`), run by `docshelf worker`s
    on any machine and shared by every server on the shelf. A SQLite shelf: this process's
    `JobManager`, one crawl at a time on a thread.
    """
    from docshelf.store import POSTGRES_SCHEMES

    if db.startswith(POSTGRES_SCHEMES):
        from docshelf.workers import QueueJobs

        return QueueJobs(db, access=access, folders=folders, max_pending=max_pending)
    return JobManager(db, embedder_factory, access=access, folders=folders, max_pending=max_pending, journal=journal)


def options_from_json(data: dict[str, Any]) -> CrawlOptions:
    """Return the CrawlOptions a source was stored with (unknown keys from other versions ignored)."""
    known = {f.name for f in fields(CrawlOptions)}
    return CrawlOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})


class JobManager:
    """Runs crawl jobs one after another on a background thread.

    Args:
        db: the shelf location; each job opens its own connection.
        embedder_factory: builds the shelf's document embedder.
        store_opener: opens a shelf by location.
        access: the addresses a client's crawl may reach; default: no private ones.
        folders: the folders a client's crawl may read; default: none.
        max_pending: jobs queued or running at once; more raise `TooManyJobsError`.
        journal: where jobs are recorded for a restart; default: a file in DOCSHELF_HOME/jobs
            named after the shelf; None in tests that want no file.
    """

    def __init__(self, db: str, embedder_factory: Callable[[], Embedder],
                 store_opener: Callable[[str], Store] = open_store, *,
                 access: AccessPolicy | None = None, folders: FolderPolicy | None = None,
                 max_pending: int = MAX_PENDING_JOBS, journal: Path | None | Literal["default"] = "default") -> None:
        self.db = db
        self.access = access or AccessPolicy.for_clients()
        self.folders = folders or FolderPolicy()
        self.max_pending = max_pending
        self._embedder_factory = embedder_factory
        self._open = store_opener
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._journal = default_journal(db) if journal == "default" else journal
        self._load_journal()

    def start_add(self, root: str, source: str | None = None, options: CrawlOptions | None = None,
                  version: str | None = None) -> Job:
        """Queue a crawl of `root` into `source` (derived from the root when None) at `version` (None: detected);
        return the job at once.

        Raises:
            AccessDeniedError: the root resolves to an address, or lies in a folder, the server refuses.
            TooManyJobsError: `max_pending` jobs are queued or running already.
        """
        job = add_job(root, source, options, version)
        self.check_root(job.root)
        return self._submit(job)

    def start_refresh(self, store: Store, source: str) -> Job:
        """Queue a re-crawl of a source with the root and options it was added with; return the job.

        Raises:
            NotOnShelfError: the shelf has no such source.
            AccessDeniedError: the source's root is now refused by the server's policy.
            TooManyJobsError: `max_pending` jobs are queued or running already.
        """
        job = refresh_job(store, source)
        self.check_root(job.root)
        return self._submit(job)

    def refresh_every(self, every: timedelta, *, check_every: float | None = None) -> threading.Event:
        """Refresh each source version once it is older than `every`, in the background, through this queue.

        A thread looks for stale versions (`refresh.stale_sources`) every `check_every` seconds (default:
        a tenth of `every`, between 1 s and 10 min) and queues a refresh of each that has no job queued or
        running: the worker runs them one at a time, like every other job. Return the event that stops it.
        A version whose root the server's access policy refuses is skipped (logged); with `max_pending`
        jobs queued or running, the rest wait for the next round.
        """
        from docshelf.access import AccessDeniedError
        from docshelf.refresh import stale_sources

        stop = threading.Event()
        interval = check_every if check_every is not None else min(max(every.total_seconds() / 10, 1.0), 600.0)

        def loop() -> None:
            while not stop.is_set():
                store = None
                try:
                    store = self._open(self.db)
                    for source in stale_sources(store, older_than=every):
                        if self.active_for(source.name) is not None:
                            continue
                        try:
                            self.start_refresh(store, source.name)
                        except AccessDeniedError as exc:
                            log.warning("not refreshing %s: %s", source.name, exc)
                except TooManyJobsError:
                    pass  # the queue is full; the next round queues the rest
                except DocshelfError:
                    pass  # the shelf could not be read this time; the next round tries again
                finally:
                    if store is not None:
                        store.close()
                stop.wait(interval)

        threading.Thread(target=loop, name="docshelf-refresh-every", daemon=True).start()
        return stop

    def resume(self, job_id: str) -> Job:
        """Run an interrupted (or failed) job again under its id; return it, queued.

        Raises:
            JobNotFoundError: no such job.
            JobNotResumableError: the job is queued, running or done.
            AccessDeniedError: its root is now refused by the server's policy.
            TooManyJobsError: `max_pending` jobs are queued or running already.
        """
        job = self.get(job_id)
        if job.status not in ("interrupted", "failed"):
            raise JobNotResumableError(f"job {job_id} is {job.status}; only an interrupted or failed job resumes")
        self.check_root(job.root)
        with self._lock:
            self._check_capacity()
            job.status, job.error, job.summary = "queued", None, None
            job.pages_done, job.pages_by_status, job.chunks_waiting, job.embedded = 0, {}, 0, 0
            job.started_at = job.finished_at = None
            self._write_journal()
        self._enqueue(job)
        return job

    def check_root(self, root: str) -> None:
        """Refuse a crawl root the server's policy does not allow.

        Raises:
            AccessDeniedError: a folder outside `folders`, or a URL resolving to an address `access` refuses.
            ConfigError: the root is not a usable URL.
        """
        check_crawl_root(root, self.access, self.folders)

    def get(self, job_id: str) -> Job:
        """Return the job with this id.

        Raises:
            JobNotFoundError: no such job in this process.
        """
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id!r} (jobs live as long as the server that started them)")
        return job

    def active_for(self, source: str) -> Job | None:
        """Return the queued or running job of a source (any version of it), if any."""
        name = split_key(source)[0]
        with self._lock:
            return next((j for j in self._jobs.values() if split_key(j.source)[0] == name and not j.finished), None)

    def list(self) -> list[Job]:
        """Return every job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def close(self) -> None:
        """Nothing to release: the worker thread is a daemon, and the journal is written as jobs change."""

    def _check_capacity(self) -> None:
        """Refuse another job when `max_pending` are queued or running (call with the lock held)."""
        pending = sum(not job.finished for job in self._jobs.values())
        if pending >= self.max_pending:
            raise TooManyJobsError(
                f"{pending} crawl jobs are queued or running, the most this server takes; "
                f"try again when one has finished (GET /api/jobs)"
            )

    def _submit(self, job: Job) -> Job:
        with self._lock:
            self._check_capacity()
            self._jobs[job.id] = job
            self._write_journal()
        self._enqueue(job)
        return job

    def _enqueue(self, job: Job) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="docshelf-jobs", daemon=True)
                self._worker.start()
        self._queue.put(job)

    def _load_journal(self) -> None:
        """Read the jobs of an earlier run: those it left queued or running are now interrupted."""
        if self._journal is None or not self._journal.is_file():
            return
        try:
            entries = json.loads(self._journal.read_text(encoding="utf-8"))
            jobs = [Job.from_journal(entry) for entry in entries]
        except (OSError, ValueError, TypeError) as exc:
            log.warning("cannot read the job journal %s (%s); starting without earlier jobs", self._journal, exc)
            return
        for job in jobs:
            if job.status in ("queued", "running"):
                job.error = (f"the server stopped while this job was {job.status}; "
                             f"resume it (POST /api/jobs/{job.id}/resume) or add the source again")
                job.status = "interrupted"
            self._jobs[job.id] = job
        with self._lock:
            self._write_journal()

    def _write_journal(self) -> None:
        """Write every job to the journal, atomically (call with the lock held)."""
        if self._journal is None:
            return
        try:
            self._journal.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._journal.with_suffix(".tmp")
            kept = list(self._jobs.values())[-JOURNAL_JOBS:]
            temporary.write_text(json.dumps([job.journal_entry() for job in kept]), encoding="utf-8")
            os.replace(temporary, self._journal)
        except OSError as exc:  # a full disk must not stop the crawl; the restart report is what is lost
            log.warning("cannot write the job journal %s: %s", self._journal, exc)

    def _work(self) -> None:
        while True:
            self._run(self._queue.get())

    def _run(self, job: Job) -> None:
        from docshelf.ingest import Ingestor  # the crawl stack loads with the first job, not at startup

        with self._lock:
            job.status, job.started_at = "running", utc_now()
            self._write_journal()
        store = None
        ending: dict[str, Any] = {}
        try:
            store = self._open(self.db)
            summary = Ingestor(store, self._embedder_factory, _JobProgress(job, self._lock),
                               access=self.access).add(job.root, source=job.source, options=job.options,
                                                       version=job.version)
            ending = {"summary": summary.to_json(), "status": "done"}
        except Exception as exc:  # noqa: BLE001 -- a job must end with a status, whatever failed inside it
            ending = {"error": f"{type(exc).__name__}: {exc}", "status": "failed"}
        finally:
            if store is not None:
                store.close()
            # Status and finish time change together: a reader that sees the job finished sees when.
            with self._lock:
                for name, value in ending.items():
                    setattr(job, name, value)
                job.finished_at = utc_now()
                self._write_journal()


def default_journal(db: str) -> Path:
    """Return the journal file of the jobs on the shelf at `db`: one per shelf, in DOCSHELF_HOME/jobs."""
    from docshelf import config

    location = db if "://" in db else str(Path(db).expanduser().resolve())
    return config.home() / "jobs" / f"{hashlib.sha256(location.encode()).hexdigest()[:16]}.json"


