"""Who may talk to the server: the token check, the login form, and two guards for a server without a token.

With a token, every request but the login form needs it: as `Authorization: Bearer TOKEN`
(API clients, MCP) or as the session cookie the login form sets (the web UI). The cookie is
signed by itsdangerous with a secret the server draws at start and draws again at every logout
(which ends every session), carries its issue time and expires after `SESSION_SECONDS`; it holds
nothing of the token. It is HttpOnly and SameSite=Strict, so another site can neither read it
nor make the browser send it. Comparisons are constant-time, and a client that fails to log in
`MAX_LOGIN_FAILURES` times within `LOGIN_WINDOW_SECONDS` is refused (429) until the window passes.

Without a token (only on 127.0.0.1 unless the user insists otherwise), any web page the user
visits could still send requests to the server. Two guards close that: a write from a page of
another origin is refused (a browser always sends `Origin` with a cross-site POST or DELETE), and
when `allowed_hosts` is set a request naming another Host is refused (DNS rebinding, where an
attacker's domain resolves to 127.0.0.1).
"""

from __future__ import annotations

import hmac
import html
import json
import secrets
import threading
import time
from collections import deque
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.types import ASGIApp, Receive, Scope, Send

from docshelf.server.state import ServerConfig

COOKIE = "docshelf_session"
LOGIN_PATH = "/login"
OPEN_PATHS = (LOGIN_PATH, "/logout")
"""Paths that answer without the token: one cannot log in once the login page needs a login."""
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
JSON_PREFIXES = ("/api/", "/api", "/mcp", "/openapi.json")
"""Paths whose clients are programs: they get a 401 JSON error rather than a redirect to the login form."""


SESSION_SECONDS = 12 * 3600
"""How long a login lasts."""
MAX_LOGIN_FAILURES = 5
LOGIN_WINDOW_SECONDS = 60.0


class Sessions:
    """Issues and checks signed, expiring session cookies; `rotate()` (at logout) voids every one issued."""

    def __init__(self, max_age: int = SESSION_SECONDS) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._serializer = self._new_serializer()

    @staticmethod
    def _new_serializer() -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(secrets.token_bytes(32), salt="docshelf-session-v2")

    def issue(self) -> str:
        """Return a new session cookie value."""
        with self._lock:
            return self._serializer.dumps({"session": secrets.token_hex(8)})

    def valid(self, value: str | None) -> bool:
        """Return True for a cookie this server signed with its current secret, less than `max_age` seconds ago."""
        if not value:
            return False
        with self._lock:
            serializer = self._serializer
        try:
            serializer.loads(value, max_age=self.max_age)
        except (BadSignature, UnicodeError, ValueError):  # SignatureExpired is a BadSignature
            return False
        return True

    def rotate(self) -> None:
        """Draw a new secret: every session issued so far ends."""
        with self._lock:
            self._serializer = self._new_serializer()


class LoginThrottle:
    """Counts failed logins per client; refuses a client with `max_failures` in the last `window` seconds."""

    def __init__(self, max_failures: int = MAX_LOGIN_FAILURES, window: float = LOGIN_WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Return the seconds `client` must wait before trying again, 0 when it may try now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self.max_failures:
                return 0
            return max(1, int(failures[0] + self.window - now + 0.999))

    def failed(self, client: str, now: float | None = None) -> None:
        """Record a failed login of `client`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(client, now).append(now)

    def succeeded(self, client: str) -> None:
        """Forget the failures of `client`."""
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(self._failures) > 10_000:  # many clients, each tried once: forget those with nothing recent
            for name in [name for name, times in self._failures.items() if not times]:
                del self._failures[name]
        return failures


def same_secret(given: str, expected: str) -> bool:
    """Return True when the two strings are equal, in time independent of where they differ."""
    return hmac.compare_digest(given.encode(), expected.encode())


def is_authorized(
    config: ServerConfig, authorization: str | None, cookie: str | None, sessions: Sessions | None = None
) -> bool:
    """Return True when no token is required, or the Bearer header carries it, or the session cookie is valid."""
    if config.token is None:
        return True
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and same_secret(credentials.strip(), config.token):
        return True
    return sessions is not None and sessions.valid(cookie)


def wants_json(path: str) -> bool:
    """Return True for the paths programs call (API, MCP, OpenAPI schema)."""
    return path == "/api" or path.startswith(JSON_PREFIXES)


def safe_next(target: str | None) -> str:
    """Return `target` when it is a path on this server, else "/" (login never redirects off-site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


class AccessGuard:
    """ASGI middleware: the Host check, the cross-origin write check, and the token check, in that order."""

    def __init__(self, app: ASGIApp, config: ServerConfig, sessions: Sessions | None = None) -> None:
        self.app = app
        self.config = config
        self.sessions = sessions or Sessions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        path = request.url.path
        host = _host_name(request.headers.get("host") or "")
        if self.config.allowed_hosts is not None and host not in self.config.allowed_hosts:
            return _error(
                403,
                "forbidden_host",
                f"this server does not answer to host {host!r}; use "
                f"http://{self.config.allowed_hosts[0]}:{self.config.port}/ (or start it with --token)",
            )
        if self.config.token is None:
            if request.method not in SAFE_METHODS and _cross_origin(request):
                return _error(403, "cross_origin", "writes from a page of another site are refused")
            return None
        if path in OPEN_PATHS or is_authorized(
            self.config, request.headers.get("authorization"), request.cookies.get(COOKIE), self.sessions
        ):
            return None
        if wants_json(path):
            return _error(
                401,
                "unauthorized",
                "this server needs its token: send 'Authorization: Bearer TOKEN' "
                "(the --token or DOCSHELF_TOKEN it was started with)",
                headers={"WWW-Authenticate": 'Bearer realm="docshelf"'},
            )
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}", status_code=303)


def _host_name(host: str) -> str:
    """Return the name in a Host header, without its port: `[::1]:8765` → `::1`, `LocalHost` → `localhost`."""
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return host.partition(":")[0].lower()


def _cross_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser, or a same-origin GET-like request: nothing a web page forged
    return urlsplit(origin).netloc.lower() != (request.headers.get("host") or "").lower()


def _error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps({"error": error, "detail": detail}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


# -- the login form ------------------------------------------------------------------------
router = APIRouter(include_in_schema=False)

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>docshelf — log in</title>
<style>
 body {{ font: 16px/1.5 system-ui, sans-serif; display: grid; place-items: center; min-height: 90vh;
        margin: 0;
        background: #f6f7f9; color: #1d2330; }}
 form {{ background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002;
        width: min(22rem, 90vw); }}
 h1 {{ font-size: 1.25rem; margin: 0 0 1rem; }}
 label {{ display: block; margin-bottom: .25rem; }}
 input[type=password] {{ width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; }}
 button {{ margin-top: 1rem; padding: .5rem 1rem; font: inherit; cursor: pointer; }}
 .error {{ color: #b00020; margin: 0 0 1rem; }}
 @media (prefers-color-scheme: dark) {{ body {{ background: #15181e; color: #e4e7ee; }}
   form {{ background: #1f232b; }} }}
</style></head>
<body><form method="post" action="/login">
<h1>docshelf</h1>{error}
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
<p><small>The token this server was started with
(<code>--token</code> or <code>DOCSHELF_TOKEN</code>).</small></p>
</form></body></html>
"""


def _login_page(target: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    shown = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(LOGIN_PAGE.format(error=shown, next=html.escape(target)), status_code=status)


def _config(request: Request) -> ServerConfig:
    config: ServerConfig = request.app.state.docshelf.config
    return config


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.docshelf.sessions
    return sessions


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get(LOGIN_PATH)
def login_form(request: Request, next: str = "/") -> Response:
    if _config(request).token is None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(safe_next(next))


@router.post(LOGIN_PATH)
def login(
    request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
) -> Response:
    config = _config(request)
    target = safe_next(next)
    if config.token is None:
        return RedirectResponse(target, status_code=303)
    throttle: LoginThrottle = request.app.state.docshelf.login_throttle
    client = _client(request)
    wait = throttle.retry_after(client)
    if wait:
        page = _login_page(target, f"Too many failed attempts; try again in {wait} seconds.", status=429)
        page.headers["Retry-After"] = str(wait)
        return page
    if not same_secret(token, config.token):
        throttle.failed(client)
        return _login_page(target, "That is not the token this server was started with.", status=401)
    throttle.succeeded(client)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        _sessions(request).issue(),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout(request: Request) -> Response:
    sessions = _sessions(request)
    # Only a logged-in caller ends the sessions: logout needs no token, so anyone could call it.
    if sessions.valid(request.cookies.get(COOKIE)):
        sessions.rotate()
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
