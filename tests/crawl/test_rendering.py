"""JavaScript-rendered pages: a real client-side app on 127.0.0.1, rendered in the system's Chromium."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from counting import CountingEmbedder
from docshelf.cli import cli
from docshelf.crawl import CrawlOptions
from docshelf.crawl.app_shell import looks_like_app_shell
from docshelf.crawl.render import chromium_path
from docshelf.embed import get_embedder
from docshelf.ingest import Ingestor
from docshelf.store.sqlite import SQLiteStore
from servers import Server

APP = Path(__file__).parents[1] / "fixtures" / "js_app"
needs_chromium = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")


def static_twin(folder: Path) -> Path:
    """Write the static build of the app's pages (same JSON, rendered here) and return its folder."""
    folder.mkdir()
    pages = json.loads((APP / "content" / "pages.json").read_text())
    nav = "".join(f'<li><a href="{p["route"]}.html">{html.escape(p["title"])}</a></li>' for p in pages)
    for entry in pages:
        page = json.loads((APP / "content" / f"{entry['route']}.json").read_text())
        blocks = [f'<h1 id="{page["id"]}">{html.escape(page["title"])}</h1>']
        for block in page["blocks"]:
            if block["type"] == "heading":
                blocks.append(f'<h{block["level"]} id="{block["id"]}">{html.escape(block["text"])}</h{block["level"]}>')
            elif block["type"] == "code":
                blocks.append(f'<pre><code class="language-{block["language"]}">{html.escape(block["code"])}</code></pre>')
            else:
                blocks.append(f"<p>{html.escape(block['text'])}</p>")
        (folder / f"{entry['route']}.html").write_text(
            f"<!doctype html><html><head><title>{html.escape(page['title'])} — Sprocketeer docs</title></head>"
            f"<body><nav><ul>{nav}</ul></nav><main>{''.join(blocks)}</main></body></html>", encoding="utf-8")
    return folder


def shelf_text(store: SQLiteStore, source: str) -> list[tuple[str, list[str], list[tuple[list[str], str | None, str]]]]:
    """Return what the shelf holds of a source, URLs aside: per page its title and chunks, sorted by title."""
    pages = []
    for page in store.list_pages(source):
        assert page.status == "ok", (page.url, page.error)
        chunks = [(c.heading_path, c.anchor, c.content) for c in store.get_chunks(page.url)]
        pages.append((page.title, chunks))
    return sorted(pages)


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder(get_embedder())


@pytest.mark.parametrize(
    ("body", "shell"),
    [
        ('<div id="root"></div><script src="main.js"></script>', True),
        ('<div id="app"><p>Loading…</p></div><script type="module" src="/x.js"></script>', True),
        ("<redoc spec-url='openapi.yaml'></redoc><script src='redoc.js'></script>", True),
        ("<main><h1>Guide</h1><p>" + "words " * 80 + "</p></main><script src='search.js'></script>", False),
        ("<main><h1>Short</h1><p>A short page without scripts.</p></main>", False),
    ],
)
def test_app_shell_detection(body: str, shell: bool) -> None:
    assert looks_like_app_shell(f"<html><body>{body}</body></html>") is shell


def test_a_scripted_page_whose_main_content_is_empty_needs_a_browser() -> None:
    from docshelf.crawl.app_shell import needs_browser

    # Enough words (navigation and footer) not to look like a shell, but an empty <main> the script fills.
    chrome = "<nav>" + " ".join(f"<a href='/p{i}'>Topic number {i}</a>" for i in range(20)) + "</nav>"
    empty = f"<html><body>{chrome}<main></main><script src='fill.js'></script></body></html>"
    full = f"<html><body>{chrome}<main><h1>Guide</h1><p>Real text here.</p></main><script></script></body></html>"
    assert not looks_like_app_shell(empty) and needs_browser(empty, "https://h/")
    assert not needs_browser(full, "https://h/")


@needs_chromium
def test_a_client_side_app_gives_the_shelf_the_same_text_as_its_static_build(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    store = SQLiteStore(tmp_path / "shelf.db")
    ingestor = Ingestor(store, lambda: embedder)
    with Server(APP) as app:
        rendered = ingestor.add(app.url("/"), source="app", options=CrawlOptions(render="auto"), version="")
        app_requests = app.paths()
    with Server(static_twin(tmp_path / "static")) as static:
        plain = ingestor.add(static.url("/index.html"), source="static", options=CrawlOptions(render="never"))
    assert rendered.failures == [] and plain.failures == []
    urls = sorted(p.url for p in store.list_pages("app"))
    assert urls == [app.url("/"), app.url("/#/gears"), app.url("/#/install")]  # hash routes are pages
    assert rendered.pages_ok == plain.pages_ok == 3
    assert shelf_text(store, "app") == shelf_text(store, "static")
    # The page itself was fetched once; the browser's requests (script, JSON) went through the crawler.
    assert app_requests.count("/") == 3 and "/content/install.json" in app_requests and "/app.js" in app_requests
    db = str(tmp_path / "shelf.db")
    search = CliRunner().invoke(cli, ["--db", db, "search", "sprocketeer doctor chain standards", "--source", "app",
                                      "-k", "1", "--json"])
    [hit] = json.loads(search.stdout)
    assert hit["url"] == app.url("/#/install#checking")  # the section that says it
    show = CliRunner().invoke(cli, ["--db", db, "show", hit["url"], "--json"])
    assert show.exit_code == 0 and json.loads(show.stdout)["title"] == "Installing Sprocketeer"


@needs_chromium
def test_render_never_leaves_an_app_shell_as_an_empty_page(tmp_path: Path, embedder: CountingEmbedder) -> None:
    store = SQLiteStore(tmp_path / "shelf.db")
    with Server(APP) as app:
        summary = Ingestor(store, lambda: embedder).add(app.url("/"), source="app",
                                                       options=CrawlOptions(render="never"))
    assert summary.pages_ok == 0 and summary.failures[0]["reason"] in ("no main content", "empty page")


def test_without_chromium_auto_fails_the_pages_that_need_it_and_always_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCSHELF_CHROMIUM", str(tmp_path / "no-such-chromium"))
    db = str(tmp_path / "shelf.db")
    with Server(APP) as app:
        auto = CliRunner().invoke(cli, ["--db", db, "add", app.url("/"), "--json"])
        always = CliRunner().invoke(cli, ["--db", db, "add", app.url("/"), "--render", "always", "--json"])
    summary = json.loads(auto.stdout)
    assert auto.exit_code == 1
    [failure] = summary["failures"]
    assert "JavaScript rendering needs Chromium" in failure["reason"] and "apt-get install chromium" in failure["reason"]
    assert always.exit_code == 2
    assert "--render always: JavaScript rendering needs Chromium" in always.stderr
    assert "DOCSHELF_CHROMIUM" in always.stderr


def test_chromium_path_names_the_missing_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from docshelf.crawl.render import BrowserUnavailable

    monkeypatch.setenv("DOCSHELF_CHROMIUM", str(tmp_path / "nope"))
    with pytest.raises(BrowserUnavailable, match="is no executable file"):
        chromium_path()
    fake = tmp_path / "chromium"
    shutil.copy("/bin/true", fake)
    monkeypatch.setenv("DOCSHELF_CHROMIUM", str(fake))
    assert chromium_path() == fake


async def render_pages(urls: list[str], *, timeout: float = 10.0, kill_after_first: bool = False) -> list:
    """Render `urls` one by one with a fresh Renderer; return each HTML or the FetchError, and the renderer."""
    import os
    import signal

    import httpx

    from docshelf.crawl.fetcher import Fetcher
    from docshelf.crawl.render import Renderer
    from docshelf.errors import FetchError

    async def no_robots(url: str) -> None:
        return None

    results: list = []
    async with httpx.AsyncClient() as client:
        fetcher = Fetcher(client, CrawlOptions(timeout=5.0, retries=0))
        renderer = Renderer(fetcher, no_robots, timeout=timeout)
        try:
            for number, url in enumerate(urls):
                shell = (await client.get(url)).content
                try:
                    results.append(await renderer.render(url, shell))
                except FetchError as exc:
                    results.append(exc)
                if kill_after_first and number == 0:
                    pid = renderer.browser_pid()
                    assert pid is not None
                    os.kill(pid, signal.SIGKILL)
        finally:
            await renderer.close()
    return [results, renderer]


@needs_chromium
def test_a_page_that_never_renders_times_out_and_the_next_one_renders() -> None:
    import asyncio

    from docshelf.errors import FetchError
    from servers import Reply

    with Server(APP) as app:
        app.route("/content/gears.json", Reply(body=b"{}", delay=4.0))
        results, renderer = asyncio.run(render_pages([app.url("/#/gears"), app.url("/#/install")], timeout=1.0))
    assert isinstance(results[0], FetchError) and "rendering timed out after 1s" in results[0].reason
    assert "Checking the installation" in results[1]
    assert renderer.browsers_started == 1


@needs_chromium
def test_a_crashed_browser_is_replaced_and_rendering_goes_on() -> None:
    import asyncio

    with Server(APP) as app:
        results, renderer = asyncio.run(render_pages([app.url("/#/gears"), app.url("/#/install")],
                                                     kill_after_first=True))
    assert "Choosing a ratio" in results[0], results
    assert "Checking the installation" in str(results[1]), results
    assert renderer.browsers_started == 2


@needs_chromium
def test_the_browser_obeys_robots_txt_like_the_crawler(tmp_path: Path, embedder: CountingEmbedder) -> None:
    from servers import Reply

    store = SQLiteStore(tmp_path / "shelf.db")
    with Server(APP) as app:
        app.route("/robots.txt", Reply(body="User-agent: *\nDisallow: /content/\n",
                                       headers={"Content-Type": "text/plain"}))
        summary = Ingestor(store, lambda: embedder).add(
            app.url("/"), source="app", options=CrawlOptions(render="auto", render_timeout=3.0))
        requested = app.paths()
    # The content request was refused, so the page stays a shell with no main content.
    assert summary.pages_ok == 0 and summary.failures[0]["reason"] == "no main content"
    assert "/app.js" in requested and not any(path.startswith("/content/") for path in requested)
