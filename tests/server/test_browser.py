"""The web UI in Chromium against the real server: search, ask, add/refresh/remove a site, a hostile page.

The server runs on 127.0.0.1 over a copy of the widgets shelf into which the hostile fixture
site has been crawled, so the hostile page arrives through the same pipeline as any other.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from browser import CHROMIUM, LiveServer, launch_chromium
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from docshelf.access import AccessPolicy
from docshelf.llm import ResolvedModel
from docshelf.server.app import create_app
from docshelf.server.state import ServerConfig, ServerState
from servers import Server
from test_shelf_tools import crawl_site

NO_CHROMIUM = f"browser tests need Debian's chromium at {CHROMIUM} (apt install chromium)"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)

SITES = Path(__file__).parents[1] / "fixtures" / "sites"
TIMEOUT_MS = 30_000


@dataclass
class Live:
    """The running server and what the tests need to know about its shelf."""

    server: LiveServer
    state: ServerState
    widgets_base: str
    hostile_page: str


@dataclass
class Watched:
    """A browser page with the dialogs it opened and the Content-Security-Policy violations it reported."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    accept_dialogs: bool = False
    csp_violations: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def live(widgets_shelf: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Serve a shelf holding the widgets site and the hostile site, with no LLM configured."""
    folder = tmp_path_factory.mktemp("browser")
    shelf = folder / "shelf.db"
    shutil.copy(widgets_shelf[0], shelf)
    hostile_page = crawl_site(SITES.parent / "hostile", shelf, "hostile") + "/xss.html"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DOCSHELF_HOME", str(folder / "home"))  # no user config: ask answers with passages
        for name in ("DOCSHELF_LLM_MODEL", "DOCSHELF_LLM_BASE_URL", "DOCSHELF_DB", "DOCSHELF_EMBEDDER"):
            env.delenv(name, raising=False)
        # The sites the UI adds run on 127.0.0.1, which a server only crawls when its operator allows it.
        app = create_app(ServerConfig(db=str(shelf), mcp=False, access=AccessPolicy.for_clients("127.0.0.1")))
        with LiveServer(app) as server:
            yield Live(server, app.state.docshelf, widgets_shelf[1], hostile_page)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watched = Watched(page)

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        if watched.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            watched.csp_violations.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    yield watched
    context.close()
    assert watched.csp_violations == [], "our own pages must not need anything the policy forbids"


def test_search_and_click_through_to_the_stored_page(live: Live, watched: Watched) -> None:
    page = watched.page
    page.goto(live.server.url("/sources"))
    page.keyboard.press("/")  # from a page without a search box, "/" goes to search
    page.wait_for_url(live.server.url("/"))
    page.locator("body").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("WIDGETS_CACHE_TTL")
    page.keyboard.press("Enter")
    first = page.locator(".hit").first
    expect(first.locator("mark").first).to_have_text("WIDGETS_CACHE_TTL")
    expect(first.locator("a.original")).to_have_attribute(
        "href", re.compile(re.escape(f"{live.widgets_base}/configuration.html#")))
    expect(first.locator(".heading-path")).to_be_visible()

    page.keyboard.press("ArrowDown")  # the results are reachable from the box by keyboard
    assert page.evaluate("document.activeElement.closest('.hit-title') !== null")
    anchor = first.locator("a.original").get_attribute("href").partition("#")[2]
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/page\?url="))
    heading = page.locator(f"[id='{anchor}']")
    expect(heading).to_be_visible()
    assert page.evaluate("location.hash") == f"#{anchor}"
    expect(page.locator(".prose table").first).to_be_visible()
    original = page.locator("a.original")
    expect(original).to_have_attribute("href", f"{live.widgets_base}/configuration.html")


def test_page_view_highlights_code(live: Live, watched: Watched) -> None:
    page = watched.page
    page.goto(live.server.url(f"/page?url={live.widgets_base}/api.html"))
    string = page.locator("pre.highlight span.s2").first  # "fleet.server_card", a Python string
    expect(string).to_be_visible()
    colour = string.evaluate("e => getComputedStyle(e).color")
    plain = page.locator(".prose p").first.evaluate("e => getComputedStyle(e).color")
    assert colour != plain  # the highlight stylesheet loaded and applies


def test_ask_without_an_llm_shows_cited_passages(live: Live, watched: Watched) -> None:
    page = watched.page
    page.goto(live.server.url("/ask"))
    expect(page.get_by_text("No LLM is configured")).to_be_visible()
    page.get_by_label("Question").fill("How do I tessellate a widget into tiles?")
    page.keyboard.press("Enter")
    turn = page.locator(".turn").last
    expect(turn.locator(".question")).to_have_text("How do I tessellate a widget into tiles?")
    expect(turn.locator(".citations li").first).to_be_visible()
    expect(turn.locator(".answer-text")).to_contain_text("DOCSHELF_LLM_MODEL")  # how to add a model
    expect(turn.locator(".answer-text em", has_text="No LLM configured")).to_be_visible()

    refs = turn.locator("a.cite-ref")
    assert refs.count() >= 1 and refs.first.inner_text() == "[1]"
    hrefs = set(refs.evaluate_all("links => links.map(a => a.getAttribute('href'))"))
    assert hrefs == {f"#cite-{n}" for n in range(1, turn.locator(".citations li").count() + 1)}
    refs.first.click()
    assert page.evaluate("location.hash") == "#cite-1"
    expect(page.locator("#cite-1")).to_be_in_viewport()

    cited = page.locator("#cite-1 > a").first
    cited_url = page.locator("#cite-1 a.original").get_attribute("href")
    assert cited_url and cited_url.startswith(live.widgets_base)
    cited.click()
    page.wait_for_url(re.compile(r"/page\?url="))
    expect(page.locator("a.original")).to_have_attribute("href", cited_url.partition("#")[0])


# Records every status a crawl's row shows, so a test can tell the bar moved through them live.
RECORD_JOB_STATUSES = """() => {
  window.jobStatuses = [];
  new MutationObserver((changes) => changes.forEach((change) => {
    if (change.attributeName === "data-status") window.jobStatuses.push(change.target.dataset.status);
  })).observe(document.getElementById("jobs"), {subtree: true, attributes: true});
}"""


def test_add_refresh_and_remove_a_site(live: Live, watched: Watched) -> None:
    page = watched.page
    with Server(SITES / "mkdocs") as site:
        page.goto(live.server.url("/sources"))
        page.evaluate(RECORD_JOB_STATUSES)
        page.get_by_label("Site URL, or a folder on the server").fill(site.url("/"))
        page.get_by_label("Source name").fill("mkdocs_site")
        page.get_by_role("button", name="Add").click()
        job = page.locator(".job").first
        expect(job.locator(".job-source")).to_have_text("mkdocs_site")
        expect(job).to_have_attribute("data-status", "done", timeout=120_000)
        assert "running" in page.evaluate("window.jobStatuses")  # progress arrived while it crawled
        assert job.locator("progress").evaluate("e => e.value === e.max && e.max > 0")
        expect(job.locator(".job-status")).to_contain_text(re.compile(r"^done: 4 pages stored"))
        row = page.locator("tr[data-source='mkdocs_site']")  # the table reloads when the crawl ends
        expect(row.locator("td.num").first).to_have_text("4")

        row.get_by_role("button", name="Refresh").click()
        refresh = page.locator(".job").first
        expect(refresh.locator(".job-kind")).to_have_text("refresh")
        expect(refresh).to_have_attribute("data-status", "done", timeout=120_000)
        expect(refresh.locator(".job-status")).to_contain_text("0 pages stored, 4 unchanged")

    watched.accept_dialogs = True
    row.get_by_role("button", name="Remove").click()
    expect(page.locator("tr[data-source='mkdocs_site']")).to_have_count(0)
    assert watched.dialogs == ["confirm: Remove mkdocs_site and its 4 pages from the shelf?"]
    expect(page.locator("tr[data-source='widgets']")).to_be_visible()


def test_hostile_page_runs_nothing(live: Live, watched: Watched) -> None:
    page = watched.page
    page.goto(live.server.url("/?q=quarantine+escape&source=hostile"))
    page.locator(".hit-title a").first.click()
    page.wait_for_url(re.compile(r"/page\?url="))
    expect(page.locator(".prose")).to_contain_text("quarantines hostile markup")
    expect(page.locator(".prose")).to_contain_text("quarantine escape")
    page.wait_for_load_state("load")  # failed images have fired their error events by now
    assert page.locator(".prose script, .prose iframe, .prose svg").count() == 0
    assert page.locator(".prose [onerror], .prose [onload], .prose [onclick]").count() == 0
    assert page.locator(".prose a[href^='javascript' i]").count() == 0
    # The page showed its markup as text (escaped in its HTML); so does the stored copy, and none of it is live.
    expect(page.locator(".prose")).to_contain_text('<a href="javascript:window.__pwned = 1">quarantine escape</a>')
    expect(page.locator(".prose")).to_contain_text("<img src=\"x\" onerror=")
    assert page.locator(".prose a", has_text="quarantine escape").count() == 0
    page.locator(".prose img").first.dispatch_event("error")  # the page's real image: an error runs nothing

    page.goto(live.server.url("/ask"))  # the hostile passage streamed into an answer is inert too
    page.get_by_label("Question").fill("quarantine escape hostile markup")
    page.keyboard.press("Enter")
    expect(page.locator(".turn .citations li").first).to_be_visible()
    expect(page.locator(".turn .answer-text")).to_contain_text("quarantine escape")
    assert page.locator(".answer-text script, .answer-text [onerror]").count() == 0

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert watched.dialogs == []


def _slow_model() -> FunctionModel:
    """Return a model that searches once, then writes an answer citing the first passage, pausing mid-way."""

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise AssertionError("the server streams: only stream_function is used")

    async def stream(messages: list[ModelMessage],
                     info: AgentInfo) -> AsyncIterator[str | dict[int, DeltaToolCall]]:
        last = messages[-1].parts[-1]
        if last.part_kind != "tool-return":
            args = json.dumps({"query": "tessellate", "k": 2})
            yield {0: DeltaToolCall(name="search_docs", json_args=args)}
            return
        url = re.findall(r"<(http[^>]+)>", last.content)[0]
        yield "Tessellation splits a widget "
        await asyncio.sleep(1.5)  # long enough for the test to see the half-written answer
        yield f"into a grid of tiles ([tessellate]({url}))."

    return FunctionModel(reply, stream_function=stream)


def test_ask_with_a_model_streams_and_numbers_its_citations(live: Live, watched: Watched) -> None:
    page = watched.page
    live.state.model = ResolvedModel(_slow_model(), "function-model")
    try:
        page.goto(live.server.url("/ask"))
        expect(page.get_by_text("Answers are written by function-model")).to_be_visible()
        page.get_by_label("Question").fill("How do I tessellate?")
        page.get_by_role("button", name="Ask").click()
        turn = page.locator(".turn").last
        expect(turn.locator(".streaming")).to_have_text("Tessellation splits a widget ")
        assert turn.locator(".answer-text").count() == 0  # still streaming
        expect(turn.locator(".answer-text")).to_have_text(
            "Tessellation splits a widget into a grid of tiles (tessellate[1]).")
        expect(turn.locator(".answer-text sup.cite a.cite-ref")).to_have_attribute("href", "#cite-1")
        expect(turn.locator(".citations li")).to_have_count(1)
        expect(turn.locator("#cite-1 a.original")).to_have_attribute(
            "href", re.compile(re.escape(f"{live.widgets_base}/api.html#")))
        expect(page.get_by_label("Question")).to_be_focused()  # ready for the next question
    finally:
        live.state.model = None


def test_download_a_source_as_a_pack_and_upload_it_back(live: Live, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    page.goto(live.server.url("/sources"))
    row = page.locator("tr[data-source='hostile']")
    with page.expect_download() as download:
        row.get_by_role("link", name="Download as pack").click()
    assert download.value.suggested_filename == "hostile.docshelf"
    pack = tmp_path / "hostile.docshelf"
    download.value.save_as(pack)
    assert pack.read_bytes()[:16] == b"SQLite format 3\x00"

    page.get_by_label("Pack file").set_input_files(str(pack))
    page.get_by_role("button", name="Upload pack").click()
    replaced = re.compile(r"^Replaced hostile: \d+ pages, \d+ chunks \(\d+ vectors as packed, 0 embedded here\)")
    expect(page.locator("#pack-result")).to_contain_text(replaced)
    expect(page.locator("#pack-error")).to_be_hidden()

    (tmp_path / "broken.docshelf").write_bytes(pack.read_bytes()[:2048])
    page.get_by_label("Pack file").set_input_files(str(tmp_path / "broken.docshelf"))
    page.get_by_role("button", name="Upload pack").click()
    expect(page.locator("#pack-error")).to_contain_text("damaged")
    assert watched.csp_violations == []
