"""The web UI pages, in process: search, ask, sources, stored pages, static files, and hostile text."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from inert import active_parts

from docshelf.models import Page
from docshelf.server.ui import CONTENT_SECURITY_POLICY, stored_page_url
from docshelf.store import open_store
from test_shelf_tools import crawl_site

HOSTILE = Path(__file__).parents[1] / "fixtures" / "hostile"

MakeClient = Callable[..., TestClient]


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture
def base(widgets_shelf: tuple[Path, str]) -> str:
    return widgets_shelf[1]


def test_stored_page_url_keeps_the_anchor_outside_the_query() -> None:
    assert stored_page_url("http://h/a b.html#sec.1") == "/page?url=http%3A%2F%2Fh%2Fa+b.html#sec.1"
    assert stored_page_url("http://h/") == "/page?url=http%3A%2F%2Fh%2F"


def test_search_page_without_a_query_shows_the_form(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = response.text
    assert '<form class="search-form" role="search"' in html and 'data-slash-focus' in html
    assert '<label for="q"' in html and '<label for="source">' in html and '<label for="mode">' in html
    assert '<option value="widgets">widgets</option>' in html
    assert '<main id="main"' in html and '<nav aria-label="Main">' in html
    assert 'class="hits"' not in html


def test_search_results_mark_terms_and_link_page_and_original(client: TestClient, base: str) -> None:
    html = client.get("/", params={"q": "WIDGETS_CACHE_TTL"}).text
    assert "<mark>WIDGETS_CACHE_TTL</mark>" in html
    hits = re.findall(r'<li class="hit">.*?</li>', html, re.DOTALL)
    assert hits
    first = hits[0]
    original = re.search(r'<a class="original" href="([^"]+)"', first)
    assert original and original.group(1).startswith(f"{base}/configuration.html#")
    anchor = original.group(1).partition("#")[2]
    stored = f'/page?url={quote(base + "/configuration.html", safe="")}#{anchor}'
    assert f'href="{stored}"' in first
    assert 'class="heading-path"' in first and "›" in first  # the section's heading path
    assert re.search(r'class="freshness muted">fetched \d{4}-\d\d-\d\d, changed \d{4}-\d\d-\d\d<', first)


def test_search_mode_and_source_filter(client: TestClient) -> None:
    html = client.get("/", params={"q": "tessellate", "mode": "bm25", "source": "widgets"}).text
    assert '<option value="bm25" selected>' in html and '<option value="widgets" selected>' in html
    assert "<mark>tessellate</mark>" in html


def test_search_unknown_source_and_mode(client: TestClient) -> None:
    html = client.get("/", params={"q": "widgets", "source": "nope"}).text
    assert "unknown source &#39;nope&#39;; the shelf holds: widgets" in html
    html = client.get("/", params={"q": "tessellate", "mode": "psychic"}).text
    assert '<option value="hybrid" selected>' in html and "<mark>tessellate</mark>" in html


def test_search_with_no_hits(client: TestClient) -> None:
    html = client.get("/", params={"q": "zzzyzzx", "mode": "bm25"}).text
    assert "0 results for" in html and "Nothing on the shelf matches" in html


def test_query_text_is_escaped(client: TestClient) -> None:
    html = client.get("/", params={"q": '<script>alert(1)</script>"'}).text
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_page_view_renders_markdown_with_anchors_and_code(client: TestClient, base: str) -> None:
    response = client.get("/page", params={"url": f"{base}/api.html#widgets.Registry.lookup"})
    assert response.status_code == 200
    html = response.text
    assert '<h4 id="widgets.Registry.lookup">' in html and '<h2 id="registry">Registry</h2>' in html
    assert '<pre class="highlight"><code>' in html and '<span class="n">registry</span>' in html
    assert f'<a class="original" href="{base}/api.html"' in html
    assert "{#" not in html


def test_page_view_accepts_a_missing_trailing_slash(client: TestClient, base: str) -> None:
    assert client.get("/page", params={"url": f"{base}/"}).status_code == 200
    assert client.get("/page", params={"url": base}).status_code == 200


def test_unknown_page_is_a_404_html_page(client: TestClient, base: str) -> None:
    response = client.get("/page", params={"url": f"{base}/nope.html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert f"The shelf holds no page {base}/nope.html." in response.text
    assert "<h1>Not found</h1>" in response.text


def test_sources_page_lists_counts_and_actions(client: TestClient) -> None:
    html = client.get("/sources").text
    row = re.search(r'<tr data-source="widgets">.*?</tr>', html, re.DOTALL)
    assert row
    cells = re.findall(r'<td class="num">([^<]+)</td>', row.group(0))
    pages, chunks, embedded = cells
    assert int(pages) == 4 and int(chunks) > 4 and embedded == f"{chunks}/{chunks}"
    assert "<time datetime=" in row.group(0) and ">none<" in row.group(0)
    assert 'data-refresh="widgets"' in html and 'data-remove="widgets"' in html
    assert '<form class="add-form" id="add-form">' in html and "/static/sources.js" in html


def test_sources_page_shows_failures_with_reasons(make_client: MakeClient, shelf_copy: Path,
                                                  base: str) -> None:
    store = open_store(str(shelf_copy))
    try:
        store.record_failure(Page(url=f"{base}/broken.html", source="widgets", title="", markdown="",
                                  content_hash="", status="failed", error="HTTP 500 Internal Server Error"))
    finally:
        store.close()
    client = make_client()
    html = client.get("/sources").text
    assert "<summary>1 failed, 0 skipped</summary>" in html
    assert f"{base}/broken.html</a> — HTTP 500 Internal Server Error" in html
    page = client.get("/page", params={"url": f"{base}/broken.html"}).text
    assert "The last crawl of this page failed: HTTP 500 Internal Server Error." in page
    assert "No text was stored for this page." in page


def test_read_only_hides_add_refresh_and_remove(make_client: MakeClient) -> None:
    client = make_client(read_only=True)
    html = client.get("/sources").text
    assert 'class="badge"' in html and "read-only" in html
    for hidden in ("add-form", "data-refresh", "data-remove", "sources.js", "Add one below"):
        assert hidden not in html
    assert "data-refresh" not in client.get("/sources/table").text


def test_sources_table_fragment(client: TestClient) -> None:
    html = client.get("/sources/table").text
    assert html.lstrip().startswith('<table class="sources">') and "<html" not in html


def test_ask_page_has_a_labelled_form(client: TestClient) -> None:
    html = client.get("/ask", params={"q": "How do I tessellate?"}).text
    assert '<label for="question">' in html and ">How do I tessellate?</textarea>" in html
    assert '<script src="/static/ask.js" defer></script>' in html and 'aria-live="polite"' in html


def test_answer_fragment_numbers_and_links_citations(client: TestClient, base: str) -> None:
    url = f"{base}/api.html#widgets.Widget.tessellate"
    text = (f"Best passages:\n\n**[1]** Widgets — <{url}>\n\nSplit the widget.\n\n"
            "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=1</script>")
    response = client.post("/ask/render", json={
        "text": text, "citations": [{"url": url, "title": "Tessellate", "chunk_number": 2}]})
    assert response.status_code == 200
    html = response.text
    assert '<a href="#cite-1" class="cite-ref"' in html
    assert '<li id="cite-1">' in html and f'href="{stored_page_url(url)}">Tessellate</a>' in html
    assert f'<a class="original" href="{url}"' in html
    assert active_parts(html) == [] and "&lt;script&gt;" in html  # quoted, not run


def test_static_files_and_highlight_css(client: TestClient) -> None:
    for path in ("/static/docshelf.css", "/static/docshelf.js", "/static/ask.js", "/static/sources.js"):
        assert client.get(path).status_code == 200, path
    css = client.get("/highlight.css")
    assert css.headers["content-type"].startswith("text/css") and ".highlight" in css.text


def test_hostile_page_is_sanitised(make_client: MakeClient, shelf_copy: Path) -> None:
    page_url = crawl_site(HOSTILE, shelf_copy, "hostile") + "/xss.html"
    client = make_client()
    html = client.get("/page", params={"url": page_url}).text
    assert "quarantines hostile markup" in html and "quarantine escape" in html
    content = html.split('<div class="prose">', 1)[1].split("</article>", 1)[0]
    assert active_parts(content) == [], content
    results = client.get("/", params={"q": "quarantine escape", "mode": "bm25"}).text
    hits = results.split('<ol class="hits">')[1]
    assert "&lt;a href=&#34;javascript:" in hits  # quoted markup in a snippet is text
    assert "<script" not in hits and "<img" not in hits


def test_with_a_token_pages_need_the_login_cookie(make_client: MakeClient) -> None:
    client = make_client(token="s3cret")
    response = client.get("/sources", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=/sources")
    assert client.post("/login", data={"token": "s3cret", "next": "/sources"}).status_code == 200
    html = client.get("/sources").text
    assert '<form method="post" action="/logout">' in html and 'data-refresh="widgets"' in html
    assert client.get("/static/docshelf.js").status_code == 200
