"""The web UI: search, ask, sources and stored pages, rendered on the server from the same library calls.

Pages read the shelf through `ServerState.tools` and `.shelf.store`; the two
live parts (an answer streaming in, a crawl's progress) are small scripts in
static/ that call the HTTP API from the browser. No page loads anything from
another origin, and every page carries a Content-Security-Policy that allows
only our own scripts and styles: the sanitiser in render.py is the first
defence against hostile crawled text, the policy the second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import BaseModel

from docshelf.errors import DocshelfError
from docshelf.models import PageInfo, SearchHit, SearchMode, SourceStats
from docshelf.server.render import highlight_css, render_answer, render_markdown, snippet
from docshelf.server.state import ServerState
from docshelf.shelf_tools import MAX_QUERY_CHARS, NotOnShelfError

HERE = Path(__file__).parent
SEARCH_K = 20
MAX_FAILURES_SHOWN = 50
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Our own scripts and styles only; images may come from the documentation sites pages were crawled from."""

router = APIRouter(include_in_schema=False)
router.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
templates = Jinja2Templates(directory=HERE / "templates")
_HIGHLIGHT_CSS = highlight_css()


def stored_page_url(url: str) -> str:
    """Return the UI address of the stored copy of `url` (a page URL, optionally with `#anchor`)."""
    page_url, _, anchor = url.partition("#")
    return "/page?" + urlencode({"url": page_url}) + (f"#{anchor}" if anchor else "")


templates.env.globals["stored_page_url"] = stored_page_url


def _state(request: Request) -> ServerState:
    return cast(ServerState, request.app.state.docshelf)


def _render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Return a rendered template with the settings every page shows and the security headers."""
    config = _state(request).config
    context = {"read_only": config.read_only, "signed_in": config.token is not None, **context}
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def not_found(request: Request, message: str) -> HTMLResponse:
    """Return the 404 page with a message saying what was not found."""
    return _render(request, "error.html", {"title": "Not found", "message": message}, status_code=404)


@dataclass
class HitView:
    """A search hit with its snippet, as the results list shows it."""

    hit: SearchHit
    snippet: Markup


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, q: str = "", source: str = "", mode: str = "hybrid") -> HTMLResponse:
    """Search the shelf: one box, a source filter and the retrieval mode; results under the form."""
    state = _state(request)
    names = [s.source.name for s in state.shelf.store.list_sources()]
    chosen_mode: SearchMode = cast(SearchMode, mode) if mode in get_args(SearchMode) else "hybrid"
    context: dict[str, Any] = {"q": q, "source": source, "mode": chosen_mode, "sources": names,
                               "modes": get_args(SearchMode), "hits": [], "error": None, "millis": None}
    if q.strip():
        context.update(_search(state, q, source, chosen_mode))
    return _render(request, "search.html", context)


def _search(state: ServerState, q: str, source: str, mode: SearchMode) -> dict[str, Any]:
    """Return the results part of the search page's context: hits with snippets, or an error to show."""
    # An unknown source (or version) is the searcher's error, shown below: `django` may name its newest version.
    if len(q) > MAX_QUERY_CHARS:
        return {"error": f"The query is {len(q)} characters long; search with at most {MAX_QUERY_CHARS}."}
    started = time.perf_counter()
    try:
        hits = state.tools.searcher.search(q, k=SEARCH_K, sources=(source,) if source else (), mode=mode,
                                           per_page=2)
    except DocshelfError as exc:
        return {"error": str(exc)}
    millis = (time.perf_counter() - started) * 1000
    return {"hits": [HitView(h, snippet(h.content, q)) for h in hits], "millis": millis}


@router.get("/ask", response_class=HTMLResponse)
def ask_page(request: Request, q: str = "") -> HTMLResponse:
    """The chat view; ask.js streams each answer from POST /api/ask."""
    state = _state(request)
    names = [s.source.name for s in state.shelf.store.list_sources()]
    model = state.model.label if state.model else None
    return _render(request, "ask.html", {"q": q, "sources": names, "model": model})


class Citation(BaseModel):
    """A cited chunk, as the `citations` event of /api/ask sends it."""

    url: str
    title: str = ""
    chunk_number: int | None = None


class AnswerToRender(BaseModel):
    """A finished answer: its Markdown and its numbered citations."""

    text: str
    citations: list[Citation] = []


@router.post("/ask/render", response_class=HTMLResponse)
def render_answer_fragment(request: Request, answer: AnswerToRender) -> HTMLResponse:
    """Return a streamed answer as sanitised HTML with its numbered, linked citations (an HTML fragment).

    The browser shows the raw text while it streams, then swaps in this, so Markdown is rendered and
    sanitised in one place (render.py) rather than by a second renderer in JavaScript.
    """
    html = render_answer(answer.text, [c.url for c in answer.citations])
    return _render(request, "_answer.html", {"html": html, "citations": answer.citations})


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request) -> HTMLResponse:
    """Every source with its counts and failures; add, refresh and remove unless read-only."""
    state = _state(request)
    jobs = [j for j in state.jobs.list() if not j.finished] if state.jobs else []
    return _render(request, "sources.html", {**_sources_context(state), "jobs": jobs})


@router.get("/sources/table", response_class=HTMLResponse)
def sources_table(request: Request) -> HTMLResponse:
    """Return just the sources table, which sources.js swaps in when a crawl finishes or a source goes."""
    return _render(request, "_sources_table.html", _sources_context(_state(request)))


def _sources_context(state: ServerState) -> dict[str, Any]:
    stats = state.shelf.store.list_sources()
    return {"stats": stats, "failures": {s.source.name: _failures(state, s) for s in stats}}


def _failures(state: ServerState, stats: SourceStats) -> list[PageInfo]:
    """Return the failed and skipped pages of a source (the first few), with their reasons."""
    if not stats.pages_failed and not stats.pages_skipped:
        return []
    pages = state.shelf.store.page_states(stats.source.name).values()
    return sorted((p for p in pages if p.status != "ok"), key=lambda p: p.url)[:MAX_FAILURES_SHOWN]


@router.get("/page", response_class=HTMLResponse)
def page_view(request: Request, url: str) -> HTMLResponse:
    """The stored copy of a page: its Markdown rendered, code highlighted, heading anchors kept."""
    tools = _state(request).tools
    try:
        page = tools.read_page(url.partition("#")[0], start_chunk=0, max_chunks=1).page
    except NotOnShelfError:
        return not_found(request, f"The shelf holds no page {url}.")
    markdown = tools.store.get_page_markdown(page.url)  # empty for a page that failed on its first crawl
    html = render_markdown(markdown) if markdown else None
    return _render(request, "page.html", {"page": page, "html": html})


@router.get("/highlight.css")
def highlight_stylesheet() -> Response:
    """The Pygments colours for highlighted code (generated, so they always match the classes used)."""
    return Response(_HIGHLIGHT_CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
