"""The FastAPI app: the API under /api, the web UI at /, MCP at /mcp, OpenAPI at /openapi.json and /docs.

Every error an API client can cause comes back as JSON `{error, detail}` with its status,
never a stack trace:

| status | error | when |
|---|---|---|
| 400 | bad_request | a parameter or body field is missing, malformed or out of range |
| 400 | blocked | a crawl of a private address or of a folder the server may not read (`--allow-hosts`, `--allow-folder`) |
| 401 | unauthorized | the server has a token and the request does not carry it (`auth.py`) |
| 403 | read_only, cross_origin, forbidden_host | a write to a read-only server; see `auth.py` |
| 404 | not_found | unknown source, page URL, chunk or job (or route) |
| 405 | method_not_allowed | a route asked with the wrong method |
| 409 | crawl_running | a crawl of that source is already queued or running |
| 409 | not_resumable | a resume of a job that is not interrupted or failed |
| 413 | too_large | a request body over the limit |
| 429 | too_many_jobs, too_many_attempts | the server's crawl jobs are full; too many failed logins (both with Retry-After) |
| 500 | server_error | the shelf failed (the message says how); anything else is logged, not shown |

Paths outside the API get the same statuses as a small HTML page instead (the web UI
renders its own errors; this is the fallback), and a missing token there redirects to /login.
"""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from docshelf.access import AccessDeniedError
from docshelf.errors import DocshelfError
from docshelf.jobs import JobNotFoundError, JobNotResumableError, TooManyJobsError
from docshelf.packs import PackError, PackModelError
from docshelf.server import api, auth, ui
from docshelf.server.limits import BodyLimit
from docshelf.server.state import ReadOnlyError, ServerConfig, ServerState, SourceBusyError
from docshelf.shelf_tools import NotOnShelfError, QueryTooLongError
from docshelf.versions import SeveralVersionsError

if TYPE_CHECKING:
    from mcp.server import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings

log = logging.getLogger(__name__)

DOMAIN_ERRORS: tuple[tuple[type[DocshelfError], int, str], ...] = (
    (NotOnShelfError, 404, "not_found"),
    (PackModelError, 409, "model_mismatch"),
    (PackError, 400, "bad_pack"),
    (JobNotFoundError, 404, "not_found"),
    (ReadOnlyError, 403, "read_only"),
    (SourceBusyError, 409, "crawl_running"),
    (SeveralVersionsError, 400, "bad_request"),
    (JobNotResumableError, 409, "not_resumable"),
    (AccessDeniedError, 400, "blocked"),
    (TooManyJobsError, 429, "too_many_jobs"),
    (QueryTooLongError, 400, "bad_request"),
)


def create_app(config: ServerConfig) -> FastAPI:
    """Return the app serving the shelf at `config.db`; `app.state.docshelf` is its ServerState."""
    state = ServerState(config)
    mcp_server = _mount_mcp(state) if config.mcp else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.callback(state.close)
            if mcp_server is not None:
                await stack.enter_async_context(mcp_server.session_manager.run())
            yield

    app = FastAPI(title="docshelf", summary="Search and ask a documentation shelf.", lifespan=lifespan)
    app.state.docshelf = state
    app.add_middleware(auth.AccessGuard, config=config, sessions=state.sessions)
    app.add_middleware(BodyLimit)  # added last, so it runs first: before the token check reads anything
    app.add_exception_handler(DocshelfError, _docshelf_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
    app.include_router(api.router, prefix="/api")
    app.include_router(auth.router)
    app.include_router(ui.router)
    if mcp_server is not None:
        app.router.routes.extend(
            mcp_server.streamable_http_app(
                streamable_http_path="/mcp", transport_security=_no_transport_checks()
            ).routes
        )
    return app


def _mount_mcp(state: ServerState) -> MCPServer:
    """Return the MCP server over the same tools and jobs (no write tools when read-only); mcp loads here."""
    from docshelf.mcp import build_server

    return build_server(state.tools, state.jobs)


def _no_transport_checks() -> TransportSecuritySettings:
    """Return MCP transport settings without its own Host and Origin checks: AccessGuard guards /mcp."""
    from mcp.server.transport_security import TransportSecuritySettings

    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def error_response(
    request: Request, status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """Return the error as JSON `{error, detail}` for API paths, as a small HTML page elsewhere."""
    if auth.wants_json(request.url.path):
        return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)
    title = f"{status} {HTTPStatus(status).phrase}"
    page = (
        f"<!doctype html><meta charset='utf-8'><title>{title} — docshelf</title>"
        f"<h1>{title}</h1><p>{html.escape(detail)}</p><p><a href='/'>docshelf</a></p>"
    )
    return HTMLResponse(page, status_code=status, headers=headers)


async def _docshelf_error(request: Request, exc: DocshelfError) -> Response:
    for kind, status, error in DOMAIN_ERRORS:
        if isinstance(exc, kind):
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyJobsError) else None
            return error_response(request, status, error, str(exc), headers=headers)
    log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return error_response(request, 500, "server_error", str(exc))


async def _http_error(request: Request, exc: HTTPException) -> Response:
    error = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    return error_response(request, exc.status_code, error, str(exc.detail), headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = [f"{_where(error.get('loc', ()))}: {error.get('msg', 'invalid')}" for error in exc.errors()]
    return error_response(request, 400, "bad_request", "; ".join(problems) or "invalid request")


def _where(loc: tuple[object, ...] | list[object]) -> str:
    """Return where a validation error is, in words: `query parameter k`, `body field question`."""
    kind, *rest = [*loc] or ["request"]
    name = ".".join(str(part) for part in rest)
    label = {"query": "query parameter", "path": "path parameter", "body": "body field", "header": "header"}
    if kind == "body" and (not rest or isinstance(rest[0], int)):
        return "body"
    return f"{label.get(str(kind), str(kind))} {name}".strip()


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "server_error", "unexpected error; the server log has the details")
