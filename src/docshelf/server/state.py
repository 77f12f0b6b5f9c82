"""What one running server holds: its settings, the shelf, the read tools, the crawl jobs and the ask model.

The server answers requests on a thread pool, but an apsw connection refuses
a second thread while a first one runs a query on it (ThreadingViolationError).
So every store call of the server runs on a connection of its own, taken from
a `StorePool` for the length of that call: readers run side by side (WAL), and
no request ever shares a connection with another. The pool is small: each
SQLite connection that runs vector searches keeps its own copy of the vectors
in memory, and bench/serve_load.py measured no gain from more than two on two
cores; a caller waits for a free connection. Long reads (an export) take a
connection of their own instead, so they never hold up searches. A PostgreSQL
store already hands each call a pooled connection, so the pool lends that one
store to all.

The write paths (add, refresh, remove) live here rather than in the API so the
web UI enforces the same rules: nothing in read-only mode, and one crawl or
removal of a source at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from docshelf.access import AccessPolicy, FolderPolicy
from docshelf.cli.shelf import ShelfContext
from docshelf.crawl import default_source_name
from docshelf.crawl.base import CrawlOptions
from docshelf.errors import DocshelfError
from docshelf.jobs import MAX_PENDING_JOBS, CrawlJobs, Job, SourceBusyError, crawl_jobs
from docshelf.search import HybridSearcher
from docshelf.shelf_tools import ShelfTools
from docshelf.store import POSTGRES_SCHEMES, open_store
from docshelf.store.base import Store
from docshelf.versions import ShelfVersions

if TYPE_CHECKING:
    from docshelf.embed.base import Embedder
    from docshelf.llm import ResolvedModel
    from docshelf.packs import PackAddSummary
    from docshelf.project.scope import ProjectScope

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
POOL_SIZE = 2
"""SQLite connections the pool opens at most."""


@dataclass(frozen=True)
class ServerConfig:
    """How `docshelf serve` was started."""

    db: str
    embedder: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    """When set, every API call and UI page needs it (Bearer header or the login cookie)."""
    read_only: bool = False
    """No crawl, refresh or remove, in the UI or the API."""
    model: str | None = None
    """The LLM for ask (a Pydantic AI model string); None: the configured one, or the passages answer."""
    mcp: bool = True
    """Serve MCP streamable HTTP at /mcp (write tools only when not read-only)."""
    allowed_hosts: tuple[str, ...] | None = None
    """Host header names the server answers to (DNS-rebinding guard); None accepts any."""
    refresh_every: timedelta | None = None
    """Refresh each source version once its last crawl is this old, through the job queue; None: never."""
    scope: ProjectScope | None = None
    """The project scope searches honour (`docshelf serve` in a project with a `.docshelf.toml`); None: all."""
    access: AccessPolicy = field(default_factory=AccessPolicy.for_clients)
    """Where the crawls clients start may connect: no private address unless `--allow-hosts` names it."""
    folders: FolderPolicy = field(default_factory=FolderPolicy)
    """The folders clients may have crawled: none unless `--allow-folder` names them."""
    max_jobs: int = MAX_PENDING_JOBS
    """Crawl jobs queued or running at once; more get a 429 with Retry-After."""
    job_journal: Path | None | Literal["default"] = "default"
    """Where jobs are recorded, so a restart reports the interrupted ones (see `jobs.JobManager`)."""


class ReadOnlyError(DocshelfError):
    """A write was asked of a server started with --read-only."""


class StorePool:
    """Connections to one shelf, each lent to one caller at a time, opened as demand grows.

    Args:
        db: the shelf location (a SQLite path or a postgresql:// URL).
        size: connections open at most; a caller waits for a free one.
    """

    def __init__(self, db: str, size: int = POOL_SIZE) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._available = threading.BoundedSemaphore(size)
        self._free: list[Store] = []
        self._opened: list[Store] = []
        # A PostgreSQL store is thread-safe (a psycopg pool inside): one for every caller.
        self._shared = open_store(db) if db.startswith(POSTGRES_SCHEMES) else None
        # Open one now: a bad --db fails at startup, not at the first request.
        with self.connection() as store:
            self.location = store.location

    @contextmanager
    def connection(self) -> Iterator[Store]:
        """Lend a connection for the block; no other caller uses it until the block ends."""
        if self._shared is not None:
            yield self._shared
            return
        with self._available:
            with self._lock:
                store = self._free.pop() if self._free else None
            if store is None:
                store = open_store(self.db)
                with self._lock:
                    self._opened.append(store)
            try:
                yield store
            finally:
                with self._lock:
                    self._free.append(store)

    @contextmanager
    def dedicated(self) -> Iterator[Store]:
        """Lend a connection of its own, outside the pool, for a long stretch of calls (an export)."""
        if self._shared is not None:
            yield self._shared
            return
        store = open_store(self.db)
        try:
            yield store
        finally:
            store.close()

    def close(self) -> None:
        """Close every connection the pool opened."""
        with self._lock:
            stores = [*self._opened, *([self._shared] if self._shared else [])]
            self._opened, self._free = [], []
        for store in stores:
            store.close()


class PooledStore:
    """A Store whose every method call runs on a connection lent by a StorePool."""

    def __init__(self, pool: StorePool) -> None:
        self._pool = pool
        self.location = pool.location

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._pool.connection() as store:
                return getattr(store, name)(*args, **kwargs)

        return call

    def close(self) -> None:
        """Do nothing: the pool's owner closes its connections."""


class ServerShelf(ShelfContext):
    """The shelf as the server opens it: its store is pooled, and one embedder serves every thread."""

    def __init__(self, db: str, embedder: str | None) -> None:
        super().__init__(db, embedder)
        self.pool = StorePool(db)
        self._pooled = cast(Store, PooledStore(self.pool))
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()

    @property
    def store(self) -> Store:
        return self._pooled

    def shared_embedder(self) -> Embedder:
        """Return the shelf's embedder, built once (the local model is safe to share between threads)."""
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = super().embedder_factory()()
            return self._embedder

    def embedder_factory(self) -> Callable[[], Embedder]:
        return self.shared_embedder


class ServerState:
    """The shelf and its tools, opened once per server process and shared by every request."""

    def __init__(self, config: ServerConfig) -> None:
        from docshelf.llm import resolve_model

        self.config = config
        self.model: ResolvedModel | None = resolve_model(config.model)
        """The chat model of ask; None answers with passages."""
        self.shelf = ServerShelf(config.db, config.embedder)
        scope = config.scope
        self.tools = ShelfTools(
            self.shelf.store,
            HybridSearcher(self.shelf.store, self.shelf.embedder_factory(), pins=scope.pins if scope else None,
                           scoped=scope is not None),
            scope,
        )
        self.jobs: CrawlJobs | None = (
            None
            if config.read_only
            else crawl_jobs(config.db, self.shelf.embedder_factory(), access=config.access,
                            folders=config.folders, max_pending=config.max_jobs, journal=config.job_journal)
        )
        self._write_lock = threading.Lock()
        from docshelf.server.auth import LoginThrottle, Sessions

        self.sessions = Sessions()
        """Signs the login cookies; its secret is drawn at start and again at each logout."""
        self.login_throttle = LoginThrottle()
        self._stop_refreshing: threading.Event | None = None
        if self.jobs is not None and config.refresh_every is not None:
            self._stop_refreshing = self.jobs.refresh_every(config.refresh_every)

    def add_source(self, root: str, source: str | None = None, options: CrawlOptions | None = None,
                   version: str | None = None) -> Job:
        """Start a crawl of `root` into `source` (derived from the root when None); return the job at once.

        Raises:
            ReadOnlyError: the server is read-only.
            AccessDeniedError: the root is a private address or a folder the server may not read.
            SourceBusyError: that source is being crawled already.
            TooManyJobsError: the server has as many jobs queued or running as it takes.
        """
        jobs = self._writable()
        name = source or default_source_name(root)
        with self._write_lock:
            self._check_idle(jobs, name)
            return jobs.start_add(root, name, options, version)

    def resume_job(self, job_id: str) -> Job:
        """Run an interrupted or failed job again; return it.

        Raises:
            ReadOnlyError: the server is read-only.
            JobNotFoundError, JobNotResumableError, AccessDeniedError, SourceBusyError, TooManyJobsError.
        """
        jobs = self._writable()
        with self._write_lock:
            job = jobs.get(job_id)
            self._check_idle(jobs, job.source)
            return jobs.resume(job_id)

    def refresh_source(self, source: str) -> Job:
        """Start a re-crawl of a source with the root and options it was added with; return the job.

        Raises:
            ReadOnlyError: the server is read-only.
            NotOnShelfError: no such source.
            SourceBusyError: that source is being crawled already.
        """
        jobs = self._writable()
        with self._write_lock:
            self._check_idle(jobs, source)
            return jobs.start_refresh(self.tools.store, source)

    def remove_source(self, source: str) -> int:
        """Remove a source with its pages, chunks and vectors; return how many pages went.

        Raises:
            ReadOnlyError: the server is read-only.
            NotOnShelfError: no such source.
            SourceBusyError: a crawl of the source is queued or running.
        """
        jobs = self._writable()
        with self._write_lock:
            # A queued crawl has not created its source yet: busy comes before unknown.
            self._check_idle(jobs, source)
            # Raises the unknown-source error naming the known ones, or asks which version.
            key = ShelfVersions.of(self.tools.store.source_names()).only_version(source)
            return self.tools.store.remove_source(key)

    def add_pack(self, path: Path, *, reembed: bool = False) -> PackAddSummary:
        """Add (or replace) the source a verified pack holds, under the same write rules as a crawl.

        Raises:
            ReadOnlyError: the server is read-only.
            PackError: the pack is damaged or not a pack.
            ModelMismatchError: its vectors are of another model and `reembed` is off.
            SourceBusyError: that source is being crawled.
        """
        from docshelf.packs import add_pack, read_pack_info

        jobs = self._writable()
        name = read_pack_info(path).name
        with self._write_lock:
            self._check_idle(jobs, name)
            with self.shelf.pool.dedicated() as store:
                return add_pack(store, path, reembed=reembed, embedder_factory=self.shelf.embedder_factory())

    def _writable(self) -> CrawlJobs:
        if self.jobs is None:
            raise ReadOnlyError(
                "this server is read-only (started with --read-only): no crawl, refresh or remove"
            )
        return self.jobs

    @staticmethod
    def _check_idle(jobs: CrawlJobs, source: str) -> None:
        active = jobs.active_for(source)
        if active is not None:
            raise SourceBusyError(
                f"job {active.id} is already crawling {source!r} ({active.status}); "
                f"follow it at /api/jobs/{active.id} and try again when it has finished"
            )

    def close(self) -> None:
        """Stop the periodic refresh and close the shelf's connections."""
        if self._stop_refreshing is not None:
            self._stop_refreshing.set()
        if self.jobs is not None:
            self.jobs.close()
        self.shelf.pool.close()
