"""`docshelf worker`: take crawl and embedding tasks from the shelf's queue until stopped.

Besides running tasks, every worker watches for the tasks of workers that died: a worker
whose heartbeat is older than `lease` seconds is gone, and its tasks are queued again
(procrastinate keeps the heartbeats; this loop acts on them). A task is safe to run
twice (`docshelf.workers.tasks`), so a task taken over by two workers costs time, never data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence

import psycopg
import psycopg_pool
from procrastinate.exceptions import ConnectorException

from docshelf.crawl.base import CrawlOptions
from docshelf.crawl.politeness import Gates
from docshelf.embed.base import Embedder
from docshelf.errors import StoreError
from docshelf.workers.context import WorkerContext
from docshelf.workers.queue import QUEUES, ensure_queue_schema, task_app

log = logging.getLogger(__name__)

RECONNECT_FIRST = 1.0
RECONNECT_MAX = 30.0
RECONNECTABLE = (psycopg.OperationalError, psycopg_pool.PoolTimeout, ConnectorException, StoreError)
"""What a lost database raises, from psycopg, its pool, procrastinate and the shelf."""

DEFAULT_LEASE = 30.0
"""Seconds without a heartbeat after which a worker counts as dead and its tasks run again elsewhere."""


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_worker(dsn: str, embedder_factory: Callable[[], Embedder], *, concurrency: int = 2,
                     queues: Sequence[str] = QUEUES, lease: float = DEFAULT_LEASE, name: str | None = None,
                     gates_factory: Callable[[CrawlOptions], Gates] | None = None) -> None:
    """Run a worker on the shelf at `dsn` until SIGINT/SIGTERM.

    Args:
        concurrency: tasks run at once (crawl tasks mostly wait on the network; an embedding task
            keeps one core busy, so more than the cores helps crawling only).
        queues: "crawl", "embed" or both: a machine without much CPU may only crawl.
        lease: seconds without a heartbeat after which a worker's tasks are run again by others.
    """
    name = name or default_worker_name()
    pause = RECONNECT_FIRST
    while True:
        try:
            await _work_until_stopped(dsn, embedder_factory, concurrency, queues, lease, name, gates_factory)
            return
        except RECONNECTABLE as exc:
            # The database restarted or the network dropped: what was running is run again (its
            # heartbeat stopped), so reconnecting and carrying on is all there is to do.
            log.warning("worker %s lost the shelf (%s); reconnecting in %.0fs", name, exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX)


async def _work_until_stopped(dsn: str, embedder_factory: Callable[[], Embedder], concurrency: int,
                              queues: Sequence[str], lease: float, name: str,
                              gates_factory: Callable[[CrawlOptions], Gates] | None) -> None:
    ensure_queue_schema(dsn)
    work = WorkerContext(dsn, embedder_factory, name, gates_factory, connections=concurrency + 2)
    app = task_app(dsn)
    try:
        async with app.open_async():
            rescuer = asyncio.create_task(_requeue_stalled(app, lease))
            try:
                await app.run_worker_async(
                    queues=list(queues), concurrency=concurrency, name=name,
                    additional_context={"docshelf": work}, update_heartbeat_interval=max(lease / 4, 0.5),
                    stalled_worker_timeout=lease, fetch_job_polling_interval=2.0, abort_job_polling_interval=2.0,
                    delete_jobs="successful",
                )
            finally:
                rescuer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rescuer
    finally:
        await work.aclose()


async def _requeue_stalled(app, lease: float) -> None:
    """Queue again, every few seconds, the tasks of workers whose heartbeat stopped (killed, machine lost)."""
    while True:
        await asyncio.sleep(max(lease / 3, 0.5))
        try:
            await app.job_manager.prune_stalled_workers(lease)
            for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=lease):
                log.warning("task %s (%s) lost its worker; queueing it again", job.id, job.task_name)
                await app.job_manager.retry_job(job)
        except Exception as exc:  # noqa: BLE001 -- a lost connection: the next round tries again
            log.warning("could not check for stalled tasks: %s", exc)
