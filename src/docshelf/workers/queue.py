"""The task queue: a procrastinate app on the shelf's own PostgreSQL database.

procrastinate over pgqueuer: both are maintained PostgreSQL queues, but procrastinate
runs on psycopg 3 (the driver the shelf already uses, so no second driver), and has what
a crawl split across machines needs built in: locks (one task per lock runs at a time),
queueing locks (at most one task per key waits), retry strategies, job cancellation,
worker heartbeats with a query for the jobs of workers that died, and LISTEN/NOTIFY so an
idle worker starts a new task at once.
"""

from __future__ import annotations

import psycopg
from procrastinate import App, PsycopgConnector
from procrastinate.schema import SchemaManager

from docshelf.store.pg_migrations import MIGRATIONS_LOCK

CRAWL_QUEUE = "crawl"
"""Opening sites and fetching pages: network-bound."""
EMBED_QUEUE = "embed"
"""Embedding chunks: CPU-bound."""
QUEUES = (CRAWL_QUEUE, EMBED_QUEUE)


def task_app(dsn: str) -> App:
    """Return the procrastinate app of the shelf at `dsn`, with docshelf's tasks (not opened)."""
    from docshelf.workers.tasks import register_tasks

    app = App(connector=PsycopgConnector(conninfo=dsn, min_size=1, max_size=8, kwargs={"connect_timeout": 10}))
    register_tasks(app)
    return app


def ensure_queue_schema(dsn: str) -> None:
    """Create procrastinate's tables in the shelf's database, unless they are there (any process may race here)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (MIGRATIONS_LOCK,))
        cur.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        row = cur.fetchone()
        if not (row and row[0]):
            cur.execute(SchemaManager.get_schema())
