"""The tasks a worker runs: one website crawl is many of them, taken by whichever worker is free.

- `open_site`: fetch the start page, find the pages (llms.txt, sitemap or links), queue them;
  a folder or Git repository is read whole by this one task instead (it is on that machine).
- `fetch_pages`: fetch, extract, chunk and store a batch of pages; queue the new links they have.
- `embed_chunks`: embed the chunks of the source that lack a vector, claiming batches as it goes.
- `finish_crawl`: once no URL and no chunk waits, remove the pages gone from the site, re-rank
  version series, index inbound link text, and mark the job done.

Each task is safe to run twice: pages are stored by URL (an upsert), a vector by embed hash,
outcomes by URL. That is what makes a worker killed mid-task harmless: procrastinate runs
its task again elsewhere once the worker's heartbeat stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from procrastinate import App, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from docshelf.access import AccessPolicy, OriginAuth, guarded_client, split_credentials
from docshelf.crawl.api_descriptions import split_api_descriptions
from docshelf.crawl.base import CrawlOptions, CrawlOutcome, CrawlReport
from docshelf.crawl.crawler import SiteCrawl, start_url
from docshelf.crawl.git import is_git_source
from docshelf.crawl.local import is_local
from docshelf.crawl.scope import Scope
from docshelf.crawl.urls import is_pdf
from docshelf.errors import ConfigError, EmbedError
from docshelf.ingest import (
    EMBED_BATCH,
    ChangeLog,
    Ingestor,
    IngestSummary,
    attach_inbound_text,
    chunk_embedding_text,
    mark_version_series,
    stored_validators,
)
from docshelf.jobs import options_from_json
from docshelf.models import utc_now
from docshelf.workers.context import JobRow, WorkerContext
from docshelf.workers.queue import CRAWL_QUEUE, EMBED_QUEUE

PAGE_BATCH = 16
"""Pages per `fetch_pages` task: enough to keep a task's fetches in flight, few enough to spread a site
over the workers and to lose little when one dies."""
MAX_ATTEMPTS = 4
"""Runs of a task that failed on something transient (a lost connection) before its job fails."""

Step = Callable[[WorkerContext, JobRow, JobContext], Awaitable[None]]


async def open_site(context: JobContext, job_id: str) -> None:
    await _run_step(context, job_id, _open_site)


async def fetch_pages(context: JobContext, job_id: str, pages: list[list[Any]]) -> None:
    async def step(work: WorkerContext, job: JobRow, ctx: JobContext) -> None:
        await _fetch_pages(work, job, ctx, [(str(url), int(depth)) for url, depth in pages])

    await _run_step(context, job_id, step)


async def embed_chunks(context: JobContext, job_id: str) -> None:
    await _run_step(context, job_id, _embed_chunks)


async def finish_crawl(context: JobContext, job_id: str) -> None:
    await _run_step(context, job_id, _finish_crawl)


TASKS = [(open_site, CRAWL_QUEUE), (fetch_pages, CRAWL_QUEUE), (embed_chunks, EMBED_QUEUE),
         (finish_crawl, CRAWL_QUEUE)]
"""Every task, with its queue; `queue.task_app` registers them as `docshelf:<name>`."""


def register_tasks(app: App) -> None:
    """Register docshelf's tasks on a procrastinate app (each app of a process: a worker reconnecting makes one)."""
    retry = RetryStrategy(max_attempts=MAX_ATTEMPTS, exponential_wait=2)
    for function, queue in TASKS:
        app.task(name=f"docshelf:{function.__name__}", queue=queue, retry=retry, pass_context=True)(function)


async def _run_step(context: JobContext, job_id: str, step: Step) -> None:
    """Run one step of a job that is still wanted; a permanent error, or the last attempt's, fails the job."""
    work: WorkerContext = context.additional_context["docshelf"]
    job = work.take_job(job_id)
    if job is None:  # cancelled, failed or done meanwhile: its remaining tasks end here
        return
    try:
        await step(work, job, context)
    except ConfigError as exc:  # the site or the options are wrong: running it again would not help
        work.fail_job(job_id, str(exc))
    except Exception as exc:
        if context.job.attempts >= MAX_ATTEMPTS:
            work.fail_job(job_id, f"{type(exc).__name__}: {exc} (gave up after {MAX_ATTEMPTS + 1} attempts)")
            return
        raise


# -- open_site -----------------------------------------------------------------------
async def _open_site(work: WorkerContext, job: JobRow, context: JobContext) -> None:
    options = options_from_json(job.options)
    if is_local(job.root) or is_git_source(job.root, options):
        await _crawl_whole(work, job)
        return
    ingestor = work.ingestor(job)
    name = await ingestor.source_for(job.root, job.source, job.version, options)
    existing = work.store.get_source(name)
    ingestor.register_source(job.root, name, options, existing)
    job = work.set_source(job.id, name, refresh=existing is not None)
    known = job.stored_before(work.store.page_states(name))
    start, auth = _start_and_auth(job.root)
    if is_pdf(start):  # a PDF the user names is always read; --include-pdf is about the PDFs a site links to
        options = replace(options, include_pdf=True)
        job = work.set_options(job.id, options)
    async with _site(work, job, options, start, auth) as site:
        opening = await site.open_site(stored_validators(known))
        outcomes = [outcome async for outcome in split_api_descriptions(_each(opening.outcomes))]
    stored = await asyncio.to_thread(_store_outcomes, work, job, ingestor, outcomes, known)
    queued, truncated = work.frontier.add(job.id, [(url, 1) for url in opening.pages], options.max_pages)
    work.set_discovery(job.id, opening.start, opening.method, complete=not truncated)
    await _queue_pages(context, job.id, queued)
    await _after_pages(context, work, job, stored)


async def _crawl_whole(work: WorkerContext, job: JobRow) -> None:
    """Read a folder or a Git repository in this one task, with the single-process pipeline."""
    summary = await work.ingestor(job, progress=work.frontier_progress(job.id)).add_async(
        job.root, source=job.source, options=options_from_json(job.options), version=job.version)
    work.end_job(job.id, summary)


# -- fetch_pages ----------------------------------------------------------------------
async def _fetch_pages(work: WorkerContext, job: JobRow, context: JobContext, pages: list[tuple[str, int]]) -> None:
    options = options_from_json(job.options)
    assert job.scope_start is not None, "fetch_pages runs after open_site"
    known = job.stored_before(work.store.page_states(job.source))
    _, auth = _start_and_auth(job.root)
    async with _site(work, job, options, job.scope_start, auth) as site:
        site.use_validators(job.discovered_by, stored_validators(known))
        outcomes = [outcome async for outcome in split_api_descriptions(site.fetch_batch(pages))]
    # Extraction and chunking are CPU work: off the event loop, which keeps the worker's heartbeat going.
    stored = await asyncio.to_thread(_store_outcomes, work, job, work.ingestor(job), outcomes, known)
    reported = {outcome.url for outcome in outcomes}
    # A URL that led to a page reported under another URL (a redirect, a canonical link) is done too.
    work.frontier.record(job.id, [(url, depth, "duplicate", None) for url, depth in pages if url not in reported],
                         work.name)
    if job.discovered_by == "links":
        links = _links_to_follow(work, job, options, outcomes)
        queued, truncated = work.frontier.add(job.id, links, options.max_pages)
        if truncated:
            work.set_discovery(job.id, job.scope_start, job.discovered_by, complete=False)
        await _queue_pages(context, job.id, queued)
    await _after_pages(context, work, job, stored)


def _links_to_follow(work: WorkerContext, job: JobRow, options: CrawlOptions,
                     outcomes: Sequence[CrawlOutcome]) -> list[tuple[str, int]]:
    """Return the in-scope links of the pages just fetched (the stored ones of a page not modified)."""
    assert job.scope_start is not None
    scope = Scope.for_start(job.scope_start, options)
    stored_links = None
    found: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.fetched is not None:
            links, depth = outcome.fetched.links, outcome.fetched.depth + 1
        elif outcome.not_modified:
            stored_links = stored_links if stored_links is not None else work.store.page_links(job.source)
            links, depth = stored_links.get(outcome.url) or [], outcome.depth + 1
        else:
            continue
        if options.max_depth is not None and depth > options.max_depth:
            continue
        for link in links:
            if scope.accepts(link):
                found[link] = min(depth, found.get(link, depth))
    return list(found.items())


# -- embed_chunks ---------------------------------------------------------------------
async def _embed_chunks(work: WorkerContext, job: JobRow, context: JobContext) -> None:
    embedder = work.embedder()
    owner = int(context.job.id or 0)
    while work.still_wanted(job.id):
        hashes = work.frontier.claim_embeddings(job.id, job.source, owner, EMBED_BATCH)
        if not hashes:
            break
        chunks = work.store.chunks_by_embed_hash(hashes)  # type: ignore[attr-defined]
        present = [h for h in hashes if h in chunks]
        texts = [chunk_embedding_text(chunks[h]) for h in present]
        async with work.embedding:
            try:
                vectors: list[Any] = list(await asyncio.to_thread(embedder.embed_documents, texts)) if texts else []
            except EmbedError:
                vectors = [await _embed_one(embedder, text) for text in texts]
        done = {h: v for h, v in zip(present, vectors) if v is not None}
        work.add_embedded(job.id, work.store.store_embeddings(done))
        failed = [h for h, v in zip(present, vectors) if v is None]
        # A hash whose chunks were replaced meanwhile has nothing left to embed: release it.
        work.frontier.release_embeddings([*done, *(h for h in hashes if h not in chunks)], failed)
    await _finish_when_done(context, work, job)


async def _embed_one(embedder: Any, text: str) -> Any:
    try:
        return (await asyncio.to_thread(embedder.embed_documents, [text]))[0]
    except EmbedError:
        return None


# -- finish_crawl ---------------------------------------------------------------------
async def _finish_crawl(work: WorkerContext, job: JobRow, context: JobContext) -> None:
    if work.frontier.work_left(job.id, job.source):
        return  # queued by a task that saw the end before a retried one added work
    store = work.store
    changes = ChangeLog(job.source, refresh=job.refresh)
    removed = 0
    if job.complete:
        seen = work.frontier.seen(job.id)
        states = store.page_states(job.source)
        gone = [url for url in states if url not in seen]
        removed = store.remove_pages(job.source, gone) if gone else 0
        changes.removed(url for url in gone if states[url].status == "ok")
        if changes.entries:
            store.record_changes(changes.entries)
    mark_version_series(store, job.source)
    attach_inbound_text(store, job.source)
    source = store.get_source(job.source)
    if source is not None:
        store.upsert_source(replace(source, last_crawl_at=utc_now()))
    counts = work.frontier.outcome_counts(job.id)
    summary = IngestSummary(
        source=job.source, pages_ok=counts.get("ok", 0), pages_failed=counts.get("failed", 0),
        pages_skipped=counts.get("skipped", 0), pages_unchanged=counts.get("unchanged", 0), pages_removed=removed,
        chunks=work.frontier.stored_chunks(job.id), embedded=work.embedded(job.id),
        embed_failed=work.frontier.failed_embeddings(job.id), failures=work.frontier.failures(job.id),
    )
    work.end_job(job.id, summary)


# -- shared steps ---------------------------------------------------------------------
def _store_outcomes(work: WorkerContext, job: JobRow, ingestor: Ingestor, outcomes: Iterable[CrawlOutcome],
                    known: dict) -> int:
    """Store each outcome and record it in the frontier; return how many pages were stored with new content."""
    summary = IngestSummary(source=job.source)
    changes = ChangeLog(job.source, refresh=job.refresh)
    records = []
    for outcome in outcomes:
        # Each chunk keeps its own vector: which copy of a repeated text a worker sees first is not
        # deterministic across workers, and the exact embed hash already shares identical texts.
        status = ingestor.store_outcome(outcome, job.source, known, summary, None, changes)
        reason = outcome.error.reason if outcome.error is not None else None
        records.append((outcome.url, outcome.depth, status, reason))
    if changes.entries:
        work.store.record_changes(changes.entries)
    work.frontier.record(job.id, records, work.name)
    return summary.pages_ok


async def _after_pages(context: JobContext, work: WorkerContext, job: JobRow, stored: int) -> None:
    if stored:
        await context.app.configure_task("docshelf:embed_chunks", queue=EMBED_QUEUE).defer_async(job_id=job.id)
    await _finish_when_done(context, work, job)


async def _queue_pages(context: JobContext, job_id: str, pages: Sequence[tuple[str, int]]) -> None:
    task = context.app.configure_task("docshelf:fetch_pages", queue=CRAWL_QUEUE)
    for i in range(0, len(pages), PAGE_BATCH):
        await task.defer_async(job_id=job_id, pages=[[url, depth] for url, depth in pages[i : i + PAGE_BATCH]])


async def _finish_when_done(context: JobContext, work: WorkerContext, job: JobRow) -> None:
    """Queue the job's last step once nothing waits; whichever task sees that first queues it, once."""
    if work.frontier.work_left(job.id, job.source):
        return
    try:
        await context.app.configure_task(
            "docshelf:finish_crawl", queue=CRAWL_QUEUE, lock=f"finish:{job.id}", queueing_lock=f"finish:{job.id}",
        ).defer_async(job_id=job.id)
    except AlreadyEnqueued:
        pass


def _start_and_auth(root: str) -> tuple[str, OriginAuth | None]:
    """Return the start URL without credentials, and the auth sending them to its origin only."""
    start, credentials = split_credentials(start_url(root))
    return start, OriginAuth(start, *credentials) if credentials else None


@asynccontextmanager
async def _site(work: WorkerContext, job: JobRow, options: CrawlOptions, start: str,
                auth: OriginAuth | None) -> AsyncIterator[SiteCrawl]:
    """Yield a `SiteCrawl` of the job's site, sharing the worker's robots.txt cache and host gates."""
    policy = AccessPolicy.from_env(trust_start=job.trust_start).for_crawl(start)
    async with guarded_client(policy, headers={"User-Agent": options.user_agent}, timeout=options.timeout,
                              follow_redirects=False, auth=auth) as client:
        site = SiteCrawl(client, start, options, CrawlReport(), work.store.page_links(job.source).get,
                         gates=work.gates(options), robots=work.robots(job.id))
        try:
            await site.check_renderer()
            yield site
        finally:
            await site.close()


async def _each(outcomes: Iterable[CrawlOutcome]) -> AsyncIterator[CrawlOutcome]:
    for outcome in outcomes:
        yield outcome
