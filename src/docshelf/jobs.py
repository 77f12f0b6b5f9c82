"""Background crawl jobs: start one, get its id at once, poll its progress.

MCP clients time out long tool calls, and an HTTP request should not hold a
crawl; both start a job here and poll `JobManager.get(id)`. Jobs run one
at a time on a single worker thread, each with its own connection to the
shelf, so the shelf has exactly one crawl writing to it while readers go on.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, Literal

from docshelf.crawl import default_source_name
from docshelf.crawl.base import CrawlOptions
from docshelf.embed.base import Embedder
from docshelf.errors import DocshelfError
from docshelf.models import utc_now
from docshelf.store import open_store
from docshelf.store.base import Store
from docshelf.versions import NotOnShelfError, ShelfVersions, split_key

JobKind = Literal["add", "refresh"]
JobStatus = Literal["queued", "running", "done", "failed"]


class JobNotFoundError(DocshelfError):
    """No job has the id asked for."""


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

    @property
    def finished(self) -> bool:
        """Return True when the job is done or failed."""
        return self.status in ("done", "failed")

    def to_json(self) -> dict[str, Any]:
        """Return the job as plain JSON data."""
        return {"id": self.id, "kind": self.kind, "source": self.source, "root": self.root,
                "status": self.status, "pages_done": self.pages_done, "pages_by_status": self.pages_by_status,
                "embedded": self.embedded, "created_at": self.created_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "error": self.error, "summary": self.summary}

    def to_markdown(self) -> str:
        """Return a short status report."""
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.pages_by_status.items())) or "no pages yet"
        text = (f"Job {self.id} ({self.kind} {self.source} from {self.root}): **{self.status}**\n"
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
    """

    def __init__(self, db: str, embedder_factory: Callable[[], Embedder],
                 store_opener: Callable[[str], Store] = open_store) -> None:
        self.db = db
        self._embedder_factory = embedder_factory
        self._open = store_opener
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job] = queue.Queue()
        self._worker: threading.Thread | None = None

    def start_add(self, root: str, source: str | None = None, options: CrawlOptions | None = None,
                  version: str | None = None) -> Job:
        """Queue a crawl of `root` into `source` (derived from the root when None) at `version` (None: detected);
        return the job at once."""
        name = source or default_source_name(root)
        return self._submit(Job(_new_id(), "add", name, root, options or CrawlOptions(), version))

    def start_refresh(self, store: Store, source: str) -> Job:
        """Queue a re-crawl of a source with the root and options it was added with; return the job.

        Raises:
            NotOnShelfError: the shelf has no such source.
        """
        source = ShelfVersions.of(store.source_names()).resolve(source)
        stored = store.get_source(source)
        if stored is None:  # removed since the line above
            raise NotOnShelfError(f"unknown source {source!r}")
        return self._submit(Job(_new_id(), "refresh", source, stored.root, options_from_json(stored.options)))

    def refresh_every(self, every: timedelta, *, check_every: float | None = None) -> threading.Event:
        """Refresh each source version once it is older than `every`, in the background, through this queue.

        A thread looks for stale versions (`refresh.stale_sources`) every `check_every` seconds (default:
        a tenth of `every`, between 1 s and 10 min) and queues a refresh of each that has no job queued or
        running: the worker runs them one at a time, like every other job. Return the event that stops it.
        """
        from docshelf.refresh import stale_sources

        stop = threading.Event()
        interval = check_every if check_every is not None else min(max(every.total_seconds() / 10, 1.0), 600.0)

        def loop() -> None:
            while not stop.is_set():
                store = None
                try:
                    store = self._open(self.db)
                    for source in stale_sources(store, older_than=every):
                        if self.active_for(source.name) is None:
                            self.start_refresh(store, source.name)
                except DocshelfError:
                    pass  # the shelf could not be read this time; the next round tries again
                finally:
                    if store is not None:
                        store.close()
                stop.wait(interval)

        threading.Thread(target=loop, name="docshelf-refresh-every", daemon=True).start()
        return stop

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

    def _submit(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="docshelf-jobs", daemon=True)
                self._worker.start()
        self._queue.put(job)
        return job

    def _work(self) -> None:
        while True:
            self._run(self._queue.get())

    def _run(self, job: Job) -> None:
        from docshelf.ingest import Ingestor  # the crawl stack loads with the first job, not at startup

        with self._lock:
            job.status, job.started_at = "running", utc_now()
        store = None
        ending: dict[str, Any] = {}
        try:
            store = self._open(self.db)
            summary = Ingestor(store, self._embedder_factory, _JobProgress(job, self._lock)).add(
                job.root, source=job.source, options=job.options, version=job.version)
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


def _new_id() -> str:
    return uuid.uuid4().hex[:12]
