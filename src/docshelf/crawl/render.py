"""Pages rendered in a headless Chromium: the system's browser, driven by Playwright, in a bounded pool.

The browser sends no request of its own: every request it makes is answered through
the crawl's `Fetcher` (the same per-host limits, Crawl-delay, retries, size cap and
robots.txt as plain fetches), the page itself with the body already fetched. Images,
fonts, media and stylesheets are refused, since text is all docshelf keeps.

Nothing is downloaded: the browser is `DOCSHELF_CHROMIUM` or Debian's `/usr/bin/chromium`.
A browser that crashes is replaced for the next page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from docshelf.crawl.app_shell import looks_like_app_shell
from docshelf.crawl.fetcher import Fetcher
from docshelf.crawl.urls import is_web_url, normalize_url
from docshelf.errors import CrawlError, FetchError

CHROMIUM_ENV = "DOCSHELF_CHROMIUM"
DEFAULT_CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-sync",
    "--disable-extensions",
    "--disable-breakpad",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB, which large pages exhaust
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
]
SKIPPED_RESOURCES = frozenset({"image", "media", "font", "stylesheet", "manifest", "websocket", "eventsource"})
INSTALL_HINT = ("install Chromium (Debian: apt-get install chromium) or set DOCSHELF_CHROMIUM to a Chromium binary, "
                "and the playwright package (pip install 'docshelf[render]'); docshelf downloads no browser")

RobotsCheck = Callable[[str], Awaitable[str | None]]


class BrowserUnavailable(Exception):
    """No browser can be started; the message says what to install."""


def chromium_path() -> Path:
    """Return the Chromium binary to drive: `DOCSHELF_CHROMIUM`, else the system's.

    Raises:
        BrowserUnavailable: no such binary, or playwright is not installed.
    """
    try:
        import playwright  # noqa: F401
    except ImportError as exc:
        raise BrowserUnavailable(f"JavaScript rendering needs the playwright package: {INSTALL_HINT}") from exc
    configured = os.environ.get(CHROMIUM_ENV)
    candidates = [configured] if configured else [*DEFAULT_CHROMIUM, shutil.which("chromium") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    where = f"{CHROMIUM_ENV}={configured} is no executable file" if configured else "no Chromium found"
    raise BrowserUnavailable(f"JavaScript rendering needs Chromium ({where}): {INSTALL_HINT}")


class Renderer:
    """Renders pages in one headless Chromium, at most `concurrency` at a time.

    Args:
        fetcher: answers every request the browser makes.
        robots: returns why a URL may not be fetched (robots.txt), or None.
        concurrency: pages open at once.
        timeout: seconds for one page to load and settle.
    """

    def __init__(self, fetcher: Fetcher, robots: RobotsCheck, *, concurrency: int = 2, timeout: float = 30.0) -> None:
        self._fetcher = fetcher
        self._robots = robots
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._launch = asyncio.Lock()
        self._playwright: Any = None
        self._browser: Any = None
        self._executable: Path | None = None
        self.rendered = 0
        self.browsers_started = 0

    async def render(self, url: str, html: bytes) -> str:
        """Return the DOM of the page at `url` (whose HTML is `html`) once its scripts have built it.

        Raises:
            FetchError: no browser ("…needs Chromium…"), a timeout, or a crash, with the reason.
        """
        async with self._slots:
            # A browser that died (rendering another page, or killed) is replaced and the page tried once more;
            # a page that takes the new browser down too fails with that reason.
            for attempt in (1, 2):
                browser = await self._browser_or_fail(url)
                try:
                    return await self._render_in(browser, url, html)
                except CrawlError:
                    raise
                except Exception as exc:  # Playwright's errors: a timeout, a crashed tab or browser
                    if _browser_gone(browser, exc):
                        await self._replace(browser)
                        if attempt == 1:
                            continue
                        raise FetchError(url, f"the browser crashed while rendering: {_first_line(exc)}") from exc
                    if type(exc).__name__ == "TimeoutError":
                        raise FetchError(url, f"rendering timed out after {self._timeout:g}s") from exc
                    raise FetchError(url, f"rendering failed: {_first_line(exc)}") from exc
            raise AssertionError("unreachable")

    async def check(self) -> None:
        """Start the browser now, so that a missing one is known before the crawl starts.

        Raises:
            BrowserUnavailable: with what to install.
        """
        await self._ensure_browser()

    async def close(self) -> None:
        """Close the browser and Playwright."""
        if self._browser is not None:
            await _quietly(self._browser.close())
            self._browser = None
        if self._playwright is not None:
            await _quietly(self._playwright.stop())
            self._playwright = None

    def browser_pid(self) -> int | None:
        """Return the process id of the browser (not its renderers), or None when none runs (or not on Linux)."""
        if self._executable is None:
            return None
        main = [pid for pid, args in browser_processes(self._executable) if not any(a.startswith("--type=") for a in args)]
        return main[0] if main else None

    def memory(self) -> int:
        """Return the resident memory of the browser and all its processes, in bytes (0 when none runs)."""
        return sum(_rss(pid) for pid, _ in browser_processes(self._executable)) if self._executable else 0

    async def _render_in(self, browser: Any, url: str, html: bytes) -> str:
        context = await browser.new_context(java_script_enabled=True, service_workers="block",
                                            user_agent=self._fetcher.user_agent)
        try:
            page = await context.new_page()
            await page.route("**/*", lambda route: self._answer(route, url, html))
            timeout_ms = self._timeout * 1000
            await page.goto(url, wait_until="load", timeout=timeout_ms)
            try:
                await _settled(page, timeout_ms)
            except Exception as exc:
                # A page that polls forever never goes idle: what it shows by now is used, unless it is
                # still the empty shell.
                html = str(await page.content())
                if looks_like_app_shell(html):
                    raise FetchError(url, f"rendering timed out after {self._timeout:g}s") from exc
                self.rendered += 1
                return html
            self.rendered += 1
            return str(await page.content())
        finally:
            await _quietly(context.close())

    async def _answer(self, route: Any, page_url: str, html: bytes) -> None:
        """Answer one request of the browser: the page from what was fetched, the rest through the fetcher."""
        request = route.request
        try:
            if request.resource_type in SKIPPED_RESOURCES or request.method not in ("GET", "HEAD"):
                await route.abort("blockedbyclient")
                return
            if not is_web_url(request.url):
                await route.abort("blockedbyclient")
                return
            url = normalize_url(request.url)
            if request.resource_type == "document" and request.is_navigation_request() \
                    and url.split("#")[0] == page_url.split("#")[0]:
                await route.fulfill(status=200, body=html, headers={"content-type": "text/html; charset=utf-8"})
                return
            if await self._robots(url):
                await route.abort("blockedbyclient")
                return
            reply = await self._fetcher.get(url.split("#")[0], check_hop=self._hop)
            headers = {k: v for k, v in reply.headers.items()
                       if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")}
            await route.fulfill(status=reply.status, headers=headers, body=reply.body)
        except Exception:  # noqa: BLE001 -- a refused fetch, or the page closed with its request in flight
            await _quietly(route.abort("failed"))

    async def _hop(self, url: str) -> str | None:
        return None if is_web_url(url) else f"redirect to a non-web URL {url}"


    async def _browser_or_fail(self, url: str) -> Any:
        try:
            return await self._ensure_browser()
        except BrowserUnavailable as exc:
            raise FetchError(url, str(exc)) from exc

    async def _ensure_browser(self) -> Any:
        async with self._launch:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            executable = self._executable = chromium_path()
            from playwright.async_api import async_playwright

            if self._playwright is None:
                self._playwright = await async_playwright().start()
            args = list(CHROMIUM_ARGS)
            if os.geteuid() == 0:
                args.append("--no-sandbox")  # Chromium's sandbox refuses to start as root (containers, CI)
            try:
                self._browser = await self._playwright.chromium.launch(
                    executable_path=str(executable), args=args, headless=True)
            except Exception as exc:
                raise BrowserUnavailable(f"Chromium at {executable} did not start: {_first_line(exc)}") from exc
            self.browsers_started += 1
            return self._browser

    async def _replace(self, browser: Any) -> None:
        """Drop a crashed browser; the next page starts a new one."""
        async with self._launch:
            if self._browser is browser:
                await _quietly(browser.close())
                self._browser = None


def browser_processes(executable: Path) -> list[tuple[int, list[str]]]:
    """Return (pid, arguments) of this process's descendants that run `executable` (Linux; [] elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], list(children.get(os.getpid(), []))
    target = executable.resolve()
    while queue:
        pid = queue.pop()
        queue.extend(children.get(pid, []))
        try:
            args = (proc / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
            exe = Path(proc / str(pid) / "exe").resolve()
            # Debian's /usr/bin/chromium is a shell script that execs /usr/lib/chromium/chromium.
            if exe == target or exe.name == target.name or "chrom" in exe.name:
                found.append((pid, args))
        except OSError:
            continue
    return found


# Main content has appeared: a main/article element with some words in it.
_CONTENT_SHOWN = """() => {
  const main = document.querySelector('main, article, [role=main]');
  return !!main && main.innerText.trim().split(/\\s+/).length >= %d;
}"""
MAIN_WORDS = 20


async def _settled(page: Any, timeout_ms: float) -> None:
    """Wait until the main content has appeared or the network has gone quiet, whichever comes first.

    Network idle (no request for 500 ms) is when a script that loads content has had its
    answers; a `<main>` with text is often sooner, and is all docshelf reads.

    Raises:
        TimeoutError (Playwright's): neither happened within `timeout_ms`.
    """
    waits = [asyncio.ensure_future(page.wait_for_load_state("networkidle", timeout=timeout_ms)),
             asyncio.ensure_future(page.wait_for_function(_CONTENT_SHOWN % MAIN_WORDS, timeout=timeout_ms,
                                                          polling=100))]
    try:
        pending = set(waits)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(not task.exception() for task in done):
                return
        waits[0].result()  # both failed: raise the network wait's timeout
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


def _browser_gone(browser: Any, exc: BaseException) -> bool:
    """Return True when `exc` means the browser itself is gone (Playwright may not have noticed yet)."""
    return not browser.is_connected() or "has been closed" in str(exc) or type(exc).__name__ == "TargetClosedError"


def _rss(pid: int) -> int:
    """Return a process's proportional resident memory (PSS) in bytes, 0 when it is gone.

    PSS splits pages shared between Chromium's processes among them, so the sum over the
    processes is the pool's real footprint (a sum of RSS would count shared libraries once per process).
    """
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        except OSError:
            continue
    return 0


async def _quietly(awaitable: Awaitable[Any]) -> None:
    with contextlib.suppress(Exception):  # closing something already gone
        await awaitable


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
