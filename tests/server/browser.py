"""Browser-test helpers: the real server on 127.0.0.1 in a thread, and Debian's Chromium under Playwright.

    with LiveServer(create_app(config)) as live, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(live.url("/"))

Nothing is downloaded: the browser is the system's /usr/bin/chromium (Playwright's own builds are
never installed), started with the switches that stop it calling home.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Playwright

from docshelf.crawl.render import CHROMIUM_ARGS as RENDER_ARGS

CHROMIUM = Path("/usr/bin/chromium")
# docshelf's own switches that stop Chromium calling home (crawl.render), and no sandbox:
# tests run as root, where Chromium's sandbox refuses to start.
CHROMIUM_ARGS = ["--no-sandbox", *RENDER_ARGS]


def launch_chromium(playwright: Playwright) -> Browser:
    """Return Debian's Chromium, headless, with background networking off."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


class LiveServer:
    """Serve an app with uvicorn on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, app: FastAPI) -> None:
        # Bind first, so the port is known before the server starts and no other process can take it.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="live-server", daemon=True)

    def url(self, path: str) -> str:
        """Return the absolute URL of a path on this server."""
        return self.base + path

    def start(self) -> None:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the live server failed to start; see the log above")
            self._thread.join(0.02)

    def stop(self) -> None:
        """Stop the server (running requests finish first, open event streams are cut)."""
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
