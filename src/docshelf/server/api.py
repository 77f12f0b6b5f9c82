"""The HTTP API under /api: one library call per endpoint, the same calls the CLI, the agent and MCP make.

Reads go through `ShelfTools` (and search through the same `HybridSearcher.search` and
`SearchHit.to_json` as `docshelf search --json`); writes through `ServerState`, which
enforces read-only mode and one crawl per source. Errors are JSON `{error, detail}`
(see `app.py` for the status of each). Sync endpoints run on the thread pool; the
shelf lends each store call a connection of its own (`state.StorePool`).
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, JSONServerSentEvent
from starlette.concurrency import run_in_threadpool

from docshelf.crawl import is_local
from docshelf.crawl.base import CrawlOptions
from docshelf.jobs import Job, JobManager, JobNotFoundError
from docshelf.models import SearchMode
from docshelf.records import RecordFormat, RecordWriter, export_pages
from docshelf.search import SEARCH_MODES
from docshelf.server.sse import Event, ask_events, job_events, job_snapshot
from docshelf.server.state import ServerState
from docshelf.shelf_tools import (
    DEFAULT_READ_CHUNKS,
    MAX_K,
    MAX_OFFSET,
    MAX_PAGE_LIMIT,
    MAX_QUERY_CHARS,
    NotOnShelfError,
)
from docshelf.transfer import chunk_access, stored_chunks

SEARCH_MAX_K = 200
"""As `docshelf search -k`."""
SOURCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
"""Source names the API accepts for new sources: they appear in URL paths."""


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(
        description="A short code: bad_request, unauthorized, read_only, not_found, conflict, …"
    )
    detail: str = Field(description="What went wrong and what to do about it.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Bad parameters"),
        (401, "No or wrong token"),
        (404, "Unknown source, page or job"),
    )
}

router = APIRouter(responses=ERROR_RESPONSES)


def get_state(request: Request) -> ServerState:
    """Return the server's state (the shelf, its tools and jobs)."""
    state: ServerState = request.app.state.docshelf
    return state


State = Annotated[ServerState, Depends(get_state)]


def _require_sources(state: ServerState, names: list[str]) -> None:
    for name in names:
        state.tools.list_pages(name, limit=1)  # raises NotOnShelfError naming the sources the shelf holds


def _sse(events: AsyncIterator[Event]) -> EventSourceResponse:
    async def encoded() -> AsyncIterator[JSONServerSentEvent]:
        async for event in events:
            yield JSONServerSentEvent(event.data, event=event.name)

    # No buffering by a reverse proxy: progress and tokens are only useful as they happen.
    return EventSourceResponse(encoded(), ping=15, headers={"X-Accel-Buffering": "no"})


# -- reading ---------------------------------------------------------------------------------
@router.get("/sources", summary="The shelf's sources with their page and chunk counts")
def list_sources(state: State) -> dict[str, Any]:
    return state.tools.list_sources().to_json()


@router.get("/sources/{name}/pages", summary="A window of a source's pages, sorted by URL")
def list_pages(
    state: State,
    name: str,
    prefix: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    return state.tools.list_pages(name, prefix, limit, offset).to_json()


@router.get("/page", summary="A page's chunks in order, from start_chunk or the section url#anchor names")
def read_page(
    state: State,
    url: Annotated[str, Query(min_length=1, max_length=4000)],
    start_chunk: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    max_chunks: Annotated[int, Query(ge=1, le=2 * MAX_K)] = DEFAULT_READ_CHUNKS,
) -> dict[str, Any]:
    return state.tools.read_page(url, start_chunk, max_chunks).to_json()


@router.get("/search", summary="Hybrid search: the hits of `docshelf search --json`")
def search(
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="The query")],
    source: Annotated[list[str], Query(max_length=50, description="Only these sources (repeatable)")] = [],  # noqa: B006
    k: Annotated[int, Query(ge=1, le=SEARCH_MAX_K)] = 10,
    mode: Annotated[SearchMode, Query(description=" | ".join(SEARCH_MODES))] = "hybrid",
) -> dict[str, Any]:
    _require_sources(state, source)
    hits = state.tools.searcher.search(q, k=k, sources=source, mode=mode)
    return {"query": q, "mode": mode, "hits": [h.to_json() for h in hits]}


class AskRequest(BaseModel):
    """A question for the shelf."""

    question: str = Field(min_length=1, max_length=4000)
    sources: list[str] = Field(
        default_factory=list, max_length=50, description="Answer only from these sources (all when empty)."
    )
    k: int = Field(8, ge=1, le=MAX_K, description="Passages per search for the passages answer (no model).")


@router.post(
    "/ask",
    summary="Answer a question with citations, streamed as server-sent events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Events: delta, tool_call, citations, usage, done (or error).",
        }
    },
)
async def ask(state: State, body: AskRequest) -> EventSourceResponse:
    await run_in_threadpool(_require_sources, state, body.sources)
    return _sse(ask_events(state, body.question, tuple(body.sources), body.k))


@router.get(
    "/export",
    summary="Stream the chunks as record files or JSONL, vectors included",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}, "application/x-ndjson": {}}}},
)
def export(
    state: State,
    source: str | None = None,
    url: str | None = None,
    fmt: Annotated[Literal["record", "jsonl"], Query(alias="format")] = "record",
) -> StreamingResponse:
    if source is not None:
        _require_sources(state, [source])
    if url is not None:
        page = state.tools.store.get_page(url)
        if page is None or (source is not None and page.source != source):
            raise NotOnShelfError(
                f"no page {url} on the shelf" + (f" in source {source!r}" if source else "")
            )
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", source or "shelf")
    suffix, media = (
        ("jsonl", "application/x-ndjson") if fmt == "jsonl" else ("txt", "text/plain; charset=utf-8")
    )
    return StreamingResponse(
        _export_stream(state, source, url, fmt),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="docshelf-{name}.{suffix}"'},
    )


def _export_stream(
    state: ServerState, source: str | None, url: str | None, fmt: RecordFormat
) -> Iterator[bytes]:
    """Yield the export one page at a time, on a connection of its own held for the whole stream."""
    with state.shelf.pool.dedicated() as store:
        access = chunk_access(store)
        buffer = io.BytesIO()
        writer = RecordWriter.for_store(buffer, fmt, store)  # one writer: it separates records as a file does
        for info in export_pages(store, source=source, url=url):
            for stored in stored_chunks(access, info.url):
                writer.write(stored)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()


# -- writing: crawl jobs ---------------------------------------------------------------------
class AddSourceRequest(BaseModel):
    """What to crawl, with the options of `docshelf add`."""

    url: str | None = Field(None, max_length=4000, description="The site's root URL (give url or path).")
    path: str | None = Field(None, max_length=4000, description="A folder or file on the server's disk (give url or path).")
    source: str | None = Field(
        None, pattern=SOURCE_NAME, description="Source name (default: from the URL or path)."
    )
    include: list[str] = Field(default_factory=list, max_length=100, description="Only URLs matching one of these globs.")
    exclude: list[str] = Field(default_factory=list, max_length=100, description="Skip URLs matching these globs.")
    max_pages: int | None = Field(None, ge=1)
    max_depth: int | None = Field(None, ge=0)
    concurrency: int = Field(8, ge=1, le=64, description="Requests in flight.")

    def root(self) -> str:
        """Return the crawl root, or raise a 400 saying what to give instead."""
        if (self.url is None) == (self.path is None):
            raise HTTPException(400, "give either url (a website) or path (a folder on the server), not both")
        if self.url is not None:
            if not re.match(r"^https?://[^/\s]+", self.url):
                raise HTTPException(400, f"url {self.url!r} is not an http(s) URL; for a folder give path")
            return self.url
        assert self.path is not None
        if not is_local(self.path):
            raise HTTPException(400, f"path {self.path!r} is not a folder path; for a website give url")
        return self.path

    def options(self) -> CrawlOptions:
        """Return the crawl options, as `docshelf add` builds them."""
        return CrawlOptions(
            include=tuple(self.include),
            exclude=tuple(self.exclude),
            max_pages=self.max_pages,
            max_depth=self.max_depth,
            concurrency=self.concurrency,
            per_host=min(self.concurrency, 4),
        )


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The server is read-only"},
    409: {"model": ErrorBody, "description": "A crawl of that source is already queued or running"},
    429: {"model": ErrorBody, "description": "As many crawl jobs are queued or running as the server takes"},
}


def _accepted(job: Job, response: Response) -> dict[str, Any]:
    response.headers["Location"] = f"/api/jobs/{job.id}"
    return job_snapshot(job)


@router.post(
    "/sources",
    status_code=202,
    responses=WRITE_RESPONSES,
    summary="Start crawling a site or folder into the shelf; returns the job at once",
)
def add_source(state: State, body: AddSourceRequest, response: Response) -> dict[str, Any]:
    root = body.root()
    if body.path is not None and state.jobs is not None:
        # The policy first: whether a path exists is not for a client to learn outside the allowed folders.
        state.jobs.check_root(root)
        if not Path(root).expanduser().exists():
            raise HTTPException(400, f"path {body.path!r} does not exist on the server")
    return _accepted(state.add_source(root, body.source, body.options()), response)


@router.post(
    "/sources/{name}/refresh",
    status_code=202,
    responses=WRITE_RESPONSES,
    summary="Re-crawl a source with its original root and options; returns the job at once",
)
def refresh_source(state: State, name: str, response: Response) -> dict[str, Any]:
    return _accepted(state.refresh_source(name), response)


@router.delete(
    "/sources/{name}",
    responses=WRITE_RESPONSES,
    summary="Remove a source with all its pages, chunks and vectors",
)
def remove_source(state: State, name: str) -> dict[str, Any]:
    return {"source": name, "pages_removed": state.remove_source(name)}


def _jobs(state: ServerState) -> JobManager:
    if state.jobs is None:
        raise JobNotFoundError("this server is read-only: it runs no crawl jobs")
    return state.jobs


@router.get("/jobs", summary="Every crawl job of this server process, oldest first")
def list_jobs(state: State) -> dict[str, Any]:
    return {"jobs": [job_snapshot(job) for job in state.jobs.list()] if state.jobs else []}


@router.get("/jobs/{job_id}", summary="A crawl job's progress: pages by status, chunks, embedded")
def get_job(state: State, job_id: str) -> dict[str, Any]:
    return job_snapshot(_jobs(state).get(job_id))


@router.post(
    "/jobs/{job_id}/resume",
    status_code=202,
    responses=WRITE_RESPONSES,
    summary="Run an interrupted or failed crawl job again under its id; returns the job at once",
)
def resume_job(state: State, job_id: str, response: Response) -> dict[str, Any]:
    return _accepted(state.resume_job(job_id), response)


@router.get(
    "/jobs/{job_id}/events",
    summary="A crawl job's progress as server-sent events, to the end",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Events: progress (job snapshot) on each change, then end.",
        }
    },
)
def job_progress(state: State, job_id: str) -> EventSourceResponse:
    jobs = _jobs(state)
    jobs.get(job_id)  # an unknown job is a 404 before the stream starts
    return _sse(job_events(jobs, job_id))
