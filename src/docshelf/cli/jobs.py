"""`docshelf worker`, `docshelf jobs [cancel ID]` and `add --queue`: the team setup on a PostgreSQL shelf."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

from docshelf.cli.shelf import EXIT_CONFIG, ShelfContext, config_errors, emit_json
from docshelf.store import POSTGRES_SCHEMES

if TYPE_CHECKING:
    from docshelf.access import AccessPolicy
    from docshelf.crawl.base import CrawlOptions
    from docshelf.jobs import Job
    from docshelf.workers import QueueJobs

EXIT_JOB_FAILED = 1
"""`add --queue --wait` and `jobs cancel`: the job failed (or some of its pages did)."""
POLL_SECONDS = 1.0


def require_postgres(shelf: ShelfContext, what: str, why: str) -> None:
    """Exit 2 unless the shelf is PostgreSQL: `what` needs one, `why` says what to do on SQLite."""
    if not shelf.db.startswith(POSTGRES_SCHEMES):
        click.echo(f"Error: {what} needs a PostgreSQL shelf (--db postgresql://…), and {shelf.db} is SQLite; {why}",
                   err=True)
        sys.exit(EXIT_CONFIG)


def _queue_jobs(shelf: ShelfContext, **settings: object) -> QueueJobs:
    from docshelf.workers import QueueJobs

    return QueueJobs(shelf.db, **settings)  # type: ignore[arg-type]


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=2, show_default=True,
              help="Tasks run at once (embedding keeps a core busy; crawling mostly waits on the network).")
@click.option("--queues", default="crawl,embed", show_default=True, metavar="crawl,embed",
              help="Which tasks this worker takes: crawl (fetch, extract, chunk, store), embed, or both.")
@click.option("--lease", type=click.FloatRange(min=1), default=30.0, show_default=True, metavar="SECONDS",
              help="A worker silent this long is dead: its tasks are run again by the others.")
@click.option("--name", metavar="NAME", help="This worker's name in `docshelf jobs` (default: host:pid).")
@click.pass_obj
def worker(shelf: ShelfContext, concurrency: int, queues: str, lease: float, name: str | None) -> None:
    """Run crawl and embedding tasks from a PostgreSQL shelf's queue, until Ctrl-C.

    Start as many as you like, on as many machines as reach the database: a crawl queued
    by `docshelf add --queue`, `docshelf serve` or `docshelf mcp --allow-write` is split
    into tasks any of them takes. A worker that dies loses nothing: its tasks run again
    elsewhere once its lease runs out.

    \b
    Example:
        docshelf --db postgresql://docs@db/shelf worker --concurrency 4
        docshelf --db postgresql://docs@db/shelf worker --queues embed
    """
    import asyncio

    from docshelf.workers import run_worker
    from docshelf.workers.queue import QUEUES

    require_postgres(shelf, "docshelf worker",
                     "there `docshelf add` crawls and embeds in its own process, no worker needed")
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown or not chosen:
        raise click.BadParameter(f"{', '.join(unknown) or 'nothing'}: the queues are {', '.join(QUEUES)}",
                                 param_hint="--queues")
    with config_errors():
        shelf.store  # noqa: B018 -- open (and migrate) the shelf now: a bad --db fails here, with exit 2
        asyncio.run(run_worker(shelf.db, shelf.embedder_factory(), concurrency=concurrency, queues=chosen,
                               lease=lease, name=name))


@click.group("jobs", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as one JSON object.")
@click.pass_context
def jobs(ctx: click.Context, as_json: bool) -> None:
    """List the crawl jobs of a PostgreSQL shelf: state, worker, progress and errors.

    \b
    Example:
        docshelf --db postgresql://docs@db/shelf jobs
        docshelf --db postgresql://docs@db/shelf jobs cancel 3f2a9c1b7d0e
    """
    if ctx.invoked_subcommand is not None:
        return
    shelf: ShelfContext = ctx.obj
    require_postgres(shelf, "docshelf jobs", "its crawls run in `docshelf add` (a server lists its own at /api/jobs)")
    with config_errors():
        queue = _queue_jobs(shelf)
        try:
            listed = queue.list()
        finally:
            queue.close()
    if as_json:
        emit_json({"jobs": [job.to_json() for job in listed]})
        return
    if not listed:
        click.echo("no jobs yet (queue one with: docshelf add URL --queue)")
    for job in listed:
        click.echo(_job_line(job))


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def cancel(shelf: ShelfContext, job_id: str, as_json: bool) -> None:
    """Cancel a queued or running job (what it stored stays on the shelf)."""
    require_postgres(shelf, "docshelf jobs cancel", "its crawls run in `docshelf add`: stop it with Ctrl-C")
    with config_errors():
        queue = _queue_jobs(shelf)
        try:
            job = queue.cancel(job_id)
        finally:
            queue.close()
    if as_json:
        emit_json(job.to_json())
    else:
        click.echo(_job_line(job))


def queue_add(shelf: ShelfContext, root: str, name: str, options: CrawlOptions, access: AccessPolicy, *,
              wait: bool, as_json: bool) -> None:
    """`docshelf add --queue`: queue the crawl for the workers; with `wait`, follow it to its end."""
    require_postgres(shelf, "docshelf add --queue", "drop --queue: `docshelf add` crawls on its own there")
    with config_errors():
        queue = _queue_jobs(shelf, access=access, trust_start=True, max_pending=None)
        try:
            job = queue.start_add(root, name, options, version=name.partition("@")[2])
            if wait:
                job = _follow(queue, job, quiet=as_json)
        finally:
            queue.close()
    if as_json:
        emit_json(job.to_json())
    elif not wait:
        click.echo(f"queued job {job.id} ({name}); follow it with: docshelf jobs")
    if wait and (job.status != "done" or job.pages_by_status.get("failed")):
        sys.exit(EXIT_JOB_FAILED if job.status in ("done", "failed") else EXIT_CONFIG)


def _follow(queue: QueueJobs, job: Job, *, quiet: bool) -> Job:
    """Poll the job until it has finished, printing a line when its progress changes."""
    last = ""
    while not job.finished:
        time.sleep(POLL_SECONDS)
        job = queue.get(job.id)
        line = _job_line(job)
        if line != last and not quiet:
            click.echo(line, err=True)
            last = line
    return job


def _job_line(job: Job) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(job.pages_by_status.items())) or "no pages yet"
    line = (f"{job.id}  {job.status:<9} {job.kind:<7} {job.source}  pages: {job.pages_done} ({counts}); "
            f"embedded {job.embedded}")
    if job.chunks_waiting:
        line += f", {job.chunks_waiting} waiting"
    if job.worker:
        line += f"  [{job.worker}]"
    if job.error:
        line += f"\n    error: {job.error}"
    return line
