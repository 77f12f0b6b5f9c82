"""A real HTTP server for tests: serves a folder and programmable routes on 127.0.0.1.

    with Server(FIXTURES / "site") as server:
        server.route("/flaky", Reply(status=500), Reply(body="ok"))   # 500 first, then 200
        server.route("/old", Reply.redirect("/new/"))
        httpx.get(server.url("/flaky"))

Files are served as `http.server` serves them (a folder answers with its index.html, a
folder without a trailing slash redirects to one), except that `{{BASE}}` in a file,
gzipped ones included, becomes the server's base URL, so sitemaps can hold absolute
URLs of a server whose port is only known at run time. Every request is logged
(`server.requests`) and the server counts how many it handles at once (`max_in_flight`).

Other test folders import it by name (`from servers import Server, Reply`); the
top-level tests/conftest.py puts the tests folder on sys.path.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self
from urllib.parse import urlsplit

PLACEHOLDER = b"{{BASE}}"


@dataclass
class Reply:
    """One programmed response."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering."""
    send_length: bool = True
    """False leaves out Content-Length: the body ends when the connection closes."""

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        """Return a redirect to `location` (absolute, or a path on this server)."""
        return cls(status=status, headers={"Location": location})

    @classmethod
    def html(cls, body: str, *, delay: float = 0.0) -> Reply:
        """Return a 200 text/html reply."""
        return cls(body=body, headers={"Content-Type": "text/html; charset=utf-8"}, delay=delay)


@dataclass
class LoggedRequest:
    """A request the server received."""

    path: str
    headers: dict[str, str]
    started: float
    """`time.monotonic()` when the request arrived."""


class Server:
    """A threaded HTTP server on 127.0.0.1 and a random port; start/stop it or use it as a context manager."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.requests: list[LoggedRequest] = []
        self.max_in_flight = 0
        self._routes: dict[str, list[Reply]] = {}
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll interval makes stop() quick; the default half second adds up over many tests.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base(self) -> str:
        """Return `http://127.0.0.1:PORT` (no trailing slash)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str = "/") -> str:
        """Return the absolute URL of `path` on this server."""
        return f"{self.base}{path}"

    def route(self, path: str, *replies: Reply) -> None:
        """Answer GETs of `path` (with or without a query) with `replies` in turn; the last one repeats."""
        with self._lock:
            self._routes[path] = list(replies)

    def paths(self) -> list[str]:
        """Return the paths requested so far, in order of arrival."""
        with self._lock:
            return [request.path for request in self.requests]

    def start(self) -> Self:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, waking handlers that are still sleeping out a delay."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _next_reply(self, path: str) -> Reply | None:
        """Return the programmed reply for `path`, or None to serve from the folder."""
        with self._lock:
            replies = self._routes.get(path) or self._routes.get(urlsplit(path).path)
            if not replies:
                return None
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _enter(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(LoggedRequest(path, headers, time.monotonic()))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _handler_for(server: Server) -> type[SimpleHTTPRequestHandler]:
    """Return a request handler class bound to `server`."""

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # Set before the base __init__, which handles the request straight away.
            self.extensions_map = {**self.extensions_map, ".md": "text/markdown", ".txt": "text/plain"}
            super().__init__(*args, directory=str(server.directory or Path.cwd()), **kwargs)

        def do_GET(self) -> None:
            server._enter(self.path, dict(self.headers))
            try:
                reply = server._next_reply(self.path)
                if reply is not None:
                    self._send_reply(reply)
                elif server.directory is not None:
                    super().do_GET()
                else:
                    self.send_error(404)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout under test); nothing to answer
            finally:
                server._leave()

        def _send_reply(self, reply: Reply) -> None:
            if reply.delay and server._stopping.wait(reply.delay):
                return
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            location = reply.headers.get("Location", "")
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(
                    name, server.url(value) if name == "Location" and location.startswith("/") else value
                )
            if reply.status != 304 and reply.send_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if reply.status != 304:
                self.wfile.write(body)

        def send_head(self) -> BinaryIO | None:
            """Open a file (or a folder's index.html) with `{{BASE}}` replaced; leave the rest to http.server."""
            path = Path(self.translate_path(self.path))
            if path.is_dir() and urlsplit(self.path).path.endswith("/"):
                path = path / "index.html"
            if not path.is_file():
                return super().send_head()  # folder redirects and 404s, as http.server does them
            body = _templated(path.read_bytes(), server.base.encode())
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    return Handler


def _templated(body: bytes, base: bytes) -> bytes:
    """Return `body` with `{{BASE}}` replaced by `base`, inside gzip compression too."""
    if body.startswith(b"\x1f\x8b"):
        return gzip.compress(gzip.decompress(body).replace(PLACEHOLDER, base), mtime=0)
    return body.replace(PLACEHOLDER, base)
