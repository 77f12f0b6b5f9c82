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
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, JSONServerSentEvent
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from docshelf.crawl import is_local
from docshelf.crawl.base import CrawlOptions
from docshelf.jobs import CrawlJobs, Job, JobNotFoundError
from docshelf.models import SearchMode
from docshelf.packs import PACK_SUFFIX, write_pack
from docshelf.records import RecordFormat, RecordWriter, export_pages
from docshelf.search import SEARCH_MODES
from docshelf.server.sse import Event, ask_events, job_events, job_snapshot
from docshelf.server.state import ServerState
from docshelf.shelf_tools import (
    DEFAULT_READ_CHUNKS,
    DEFAULT_READ_TOKENS,
    MAX_K,
    MAX_OFFSET,
    MAX_PAGE_LIMIT,
    MAX_QUERY_CHARS,
    MAX_TOKENS,
    MIN_TOKENS,
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


Budget = Annotated[int | None, Query(ge=MIN_TOKENS, le=MAX_TOKENS,
                                    description="Budget of the result in LLM tokens (o200k_base)")]


@router.get("/page", summary="A page's chunks in order (start_chunk, max_chunks), or its Markdown fitted to max_tokens")
def read_page(
    state: State,
    url: Annotated[str, Query(min_length=1, max_length=4000)],
    start_chunk: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    max_chunks: Annotated[int, Query(ge=1, le=2 * MAX_K)] = DEFAULT_READ_CHUNKS,
    max_tokens: Budget = None,
    cursor: Annotated[str | None, Query(description="Read on from here: the cursor the previous read returned")] = None,
    around: Annotated[int | None, Query(ge=0, le=50, description="With url#anchor: sections either side")] = None,
) -> dict[str, Any]:
    if max_tokens is None and cursor is None and around is None:
        return state.tools.read_page(url, start_chunk, max_chunks).to_json()
    if start_chunk is not None:
        raise HTTPException(400, "start_chunk pages by chunks; with max_tokens, cursor or around read on with cursor")
    if around is not None and "#" not in url:
        raise HTTPException(400, "around needs a URL with #anchor: the section to read around")
    return state.tools.read_page_text(url, max_tokens or DEFAULT_READ_TOKENS, cursor, around).to_json()


@router.get("/search", summary="Hybrid search: the hits of `docshelf search --json`")
def search(
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="The query")],
    source: Annotated[list[str], Query(max_length=50, description="Only these sources (repeatable): NAME (its newest "
                                                                  "version, or the project's) or NAME@VERSION")] = [],  # noqa: B006
    k: Annotated[int, Query(ge=1, le=SEARCH_MAX_K)] = 10,
    mode: Annotated[SearchMode, Query(description=" | ".join(SEARCH_MODES))] = "hybrid",
    max_tokens: Budget = None,
) -> dict[str, Any]:
    _require_sources(state, source)
    if max_tokens is not None:
        # The agent's shape: whole passages that fit, best first, and how many more matched (search_docs).
        if mode != "hybrid":
            raise HTTPException(400, "max_tokens fits hybrid results; drop mode or max_tokens")
        return state.tools.search_docs(q, source, min(k, MAX_K), max_tokens=max_tokens).to_json()
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


WRITE_RESPONSES_PACK: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The server is read-only"},
    400: {"model": ErrorBody, "description": "Not a pack, or a damaged one"},
    409: {"model": ErrorBody,
          "description": "The pack's vectors are of another model (send reembed), or its source is being crawled"},
}


@router.get(
    "/sources/{name}/pack",
    summary="The source as a pack file (docshelf add FILE adds it elsewhere without crawling or embedding)",
    response_class=FileResponse,
    responses={200: {"content": {"application/vnd.docshelf.pack": {}}}},
)
def download_pack(state: State, name: str) -> FileResponse:
    name = state.tools.resolve_source(name)  # NAME@VERSION, or NAME: its newest version (an unknown one: 404)
    folder = Path(tempfile.mkdtemp(prefix="docshelf-pack-"))
    try:
        with state.shelf.pool.dedicated() as store:
            info = write_pack(store, name, folder / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}{PACK_SUFFIX}")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    assert info.path is not None
    return FileResponse(info.path, media_type="application/vnd.docshelf.pack", filename=info.path.name,
                        headers={"X-Docshelf-Sha256": info.sha256},
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


@router.post(
    "/packs",
    responses={**WRITE_RESPONSES_PACK},
    summary="Add a pack file: its source is added, or replaced in one transaction, without crawling",
)
def upload_pack(state: State, pack: UploadFile, reembed: Annotated[bool, Form()] = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="docshelf-upload-") as folder:
        path = Path(folder) / "upload.docshelf"
        with path.open("wb") as fp:
            shutil.copyfileobj(pack.file, fp, 1 << 20)
        return state.add_pack(path, reembed=reembed).to_json()


# -- writing: crawl jobs ---------------------------------------------------------------------
class AddSourceRequest(BaseModel):
    """What to crawl, with the options of `docshelf add`."""

    url: str | None = Field(None, max_length=4000, description="The site's root URL (give url or path).")
    path: str | None = Field(None, max_length=4000, description="A folder or file on the server's disk (give url or path).")
    source: str | None = Field(
        None, pattern=SOURCE_NAME, description="Source name (default: from the URL or path)."
    )
    version: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,49}$",
        description="The version the docs are of (default: what the site states; none found: unversioned).",
    )
    include: list[str] = Field(default_factory=list, max_length=100, description="Only URLs matching one of these globs.")
    exclude: list[str] = Field(default_factory=list, max_length=100, description="Skip URLs matching these globs.")
    max_pages: int | None = Field(None, ge=1)
    max_depth: int | None = Field(None, ge=0)
    concurrency: int = Field(8, ge=1, le=64, description="Requests in flight.")
    render: Literal["auto", "always", "never"] = Field(
        "auto", description="Render pages in Chromium: auto renders only app shells (pages built by scripts).")
    include_pdf: bool = Field(False, description="Also read the PDFs a site links to or a folder holds.")
    ref: str | None = Field(None, description="Git repository: the branch, tag or commit to read.")
    docs_path: str | None = Field(None, description="Git repository: the folder holding the docs.")

    def root(self) -> str:
        """Return the crawl root, or raise a 400 saying what to give instead."""
        if (self.url is None) == (self.path is None):
            raise HTTPException(400, "give either url (a website) or path (a folder on the server), not both")
        if self.url is not None:
            if not re.match(r"^(https?|git\+https?|git\+ssh|ssh)://[^/\s]+", self.url):
                raise HTTPException(400, f"url {self.url!r} is not an http(s) URL or a Git repository URL; "
                                         "for a folder give path")
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
            render=self.render,
            include_pdf=self.include_pdf,
            ref=self.ref,
            path=self.docs_path,
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
    return _accepted(state.add_source(root, body.source, body.options(), body.version), response)


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


def _jobs(state: ServerState) -> CrawlJobs:
    if state.jobs is None:
        raise JobNotFoundError("this server is read-only: it runs no crawl jobs")
    return state.jobs


@router.get("/jobs", summary="The crawl jobs of this server (of every server, on a PostgreSQL shelf), oldest first")
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
