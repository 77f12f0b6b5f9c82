"""Whole crawls of the fixture sites: discovery, scope, normalisation, limits, streaming."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import pytest

from docshelf.crawl import CrawlOptions, crawl
from docshelf.errors import ConfigError, FetchError
from servers import Reply, Server


def test_sitemap_index_with_gzipped_child_from_robots_txt(serve, crawl_all, index_outcomes, fast):
    server = serve("sitemap_site")
    outcomes, run = crawl_all(server.url("/docs/"), fast)
    pages = index_outcomes(outcomes)
    assert set(pages) == {server.url("/docs/"), server.url("/docs/guide/"), server.url("/docs/api.html")}
    assert all(outcome.fetched for outcome in outcomes)
    assert outcomes[0].url == server.url("/docs/")  # the start page comes first, even with a sitemap
    assert (run.discovered_by, run.complete) == ("sitemap", True)
    # The sitemap is authoritative: a page it leaves out is not reached by links, and nothing out of scope is asked for.
    assert "/docs/unlisted.html" not in server.paths()
    assert "/blog/post.html" not in server.paths()
    assert server.paths().count("/docs/guide/") == 1


def test_plain_sitemap_xml_without_namespace(server: Server, crawl_all, fast):
    server.route("/docs/", Reply.html("<h1>Start</h1>"))
    server.route("/docs/a", Reply.html("<h1>A</h1>"))
    server.route(
        "/sitemap.xml",
        Reply(
            body=f"<urlset><url><loc> {server.url('/docs/a')} </loc></url></urlset>",
            headers={"Content-Type": "text/xml"},
        ),
    )
    outcomes, run = crawl_all(server.url("/docs/"), fast)
    assert [outcome.url for outcome in outcomes] == [server.url("/docs/"), server.url("/docs/a")]
    assert run.discovered_by == "sitemap"


def test_llms_txt_lists_markdown_pages(serve, crawl_all, index_outcomes, fast):
    server = serve("llms_site")
    outcomes, run = crawl_all(server.url("/docs/"), fast)
    pages = index_outcomes(outcomes)
    assert set(pages) == {server.url("/docs/"), server.url("/docs/intro.md"), server.url("/docs/api.md")}
    assert pages[server.url("/docs/intro.md")].fetched.kind == "markdown"
    assert pages[server.url("/docs/intro.md")].fetched.depth == 1
    assert pages[server.url("/docs/")].fetched.kind == "html"
    assert run.discovered_by == "llms.txt"
    assert "/docs/other.html" not in server.paths()
    assert "/blog/news.md" not in server.paths()
    assert "/sitemap.xml" not in server.paths()  # llms.txt found first, so no sitemap is read


def test_llms_txt_at_the_host_root(server: Server, crawl_all, fast):
    server.route("/docs/", Reply.html("<h1>Start</h1>"))
    server.route("/llms.txt", Reply(body="# Site\n\n- [Page](/docs/page.md)\n- [Other](/other/x.md)\n"))
    server.route("/docs/page.md", Reply(body="# Page\n\ntext", headers={"Content-Type": "text/plain"}))
    outcomes, run = crawl_all(server.url("/docs/"), fast)
    assert [outcome.url for outcome in outcomes] == [server.url("/docs/"), server.url("/docs/page.md")]
    assert outcomes[1].fetched.kind == "markdown"  # .md served as text/plain
    assert run.discovered_by == "llms.txt"
    assert server.paths().index("/docs/llms.txt") < server.paths().index("/llms.txt")


def test_spa_shell_is_not_an_llms_txt(server: Server, crawl_all, fast):
    server.route("/", Reply.html('<h1>App</h1><a href="/guide">guide</a>'))
    server.route("/llms.txt", Reply.html("<h1>App</h1> [x](/not-a-page)"))
    server.route("/guide", Reply.html("<h1>Guide</h1>"))
    outcomes, run = crawl_all(server.url("/"), fast)
    assert run.discovered_by == "links"
    assert [outcome.url for outcome in outcomes] == [server.url("/"), server.url("/guide")]


def test_link_following_normalises_and_stays_in_scope(serve, crawl_all, index_outcomes, fast):
    server = serve("links_site")
    outcomes, run = crawl_all(server.url("/docs/index.html"), fast)
    pages = index_outcomes(outcomes)
    expected = ["/docs/", "/docs/guide/", "/docs/ref.html", "/docs/sub/", "/docs/deep/page.html",
                "/docs/guide/level2.html", "/docs/guide/level3.html"]  # fmt: skip
    assert set(pages) == {server.url(path) for path in expected}
    assert all(outcome.fetched for outcome in outcomes)
    assert (run.discovered_by, run.complete) == ("links", True)
    requested = server.paths()
    for never in ("/outside.html", "/docs/logo.png", "/docs/manual.pdf", "/docs/style.css"):
        assert never not in requested
    # x/ and x/index.html are one page, fetched once; fragments never make a new URL.
    assert requested.count("/docs/guide/") == 1 and "/docs/guide/index.html" not in requested
    assert requested.count("/docs/ref.html") <= 1
    start = pages[server.url("/docs/")].fetched
    assert start.depth == 0
    assert server.url("/docs/guide/") in start.links
    assert not any(link.startswith(("mailto:", "javascript:")) or "#" in link for link in start.links)
    assert pages[server.url("/docs/deep/page.html")].fetched.depth == 2
    assert pages[server.url("/docs/guide/level3.html")].fetched.depth == 3


def test_canonical_url_names_the_page(server: Server, crawl_all, fast):
    server.route("/docs/", Reply.html('<a href="print.html">print view</a>'))
    server.route("/docs/print.html", Reply.html('<link rel="canonical" href="/docs/page.html"><h1>Page</h1>'))
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    assert [outcome.url for outcome in outcomes] == [server.url("/docs/"), server.url("/docs/page.html")]
    assert outcomes[1].fetched.url == server.url("/docs/page.html")


def test_canonical_out_of_scope_is_ignored(server: Server, crawl_all, fast):
    server.route(
        "/docs/", Reply.html('<link rel="canonical" href="https://mirror.invalid/docs/"><h1>Start</h1>')
    )
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    assert [outcome.url for outcome in outcomes] == [server.url("/docs/")]


def test_mangled_canonical_keeps_the_fetched_url(server: Server, crawl_all, fast):
    server.route("/docs/", Reply.html('<a href="guide/">guide</a>'))
    server.route("/docs/guide/", Reply.html(
        '<link rel="canonical" href="../../https://docs.example.org/guide/"><h1>Guide</h1>'))
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    assert [outcome.url for outcome in outcomes] == [server.url("/docs/"), server.url("/docs/guide/")]


def test_max_depth(serve, crawl_all, fast):
    server = serve("links_site")
    outcomes, run = crawl_all(server.url("/docs/"), replace(fast, max_depth=1))
    assert max(outcome.fetched.depth for outcome in outcomes) == 1
    assert server.url("/docs/guide/level2.html") not in {outcome.url for outcome in outcomes}
    assert "/docs/guide/level2.html" not in server.paths()
    assert run.complete  # everything within the depth limit was attempted


def test_max_pages_cuts_the_crawl_and_says_so(serve, crawl_all, fast):
    server = serve("links_site")
    outcomes, run = crawl_all(server.url("/docs/"), replace(fast, max_pages=3))
    assert len(outcomes) == 3
    assert not run.complete


def test_include_and_exclude_globs(serve, crawl_all, fast):
    server = serve("links_site")
    outcomes, _ = crawl_all(server.url("/docs/"), replace(fast, exclude=("*/guide/*",)))
    urls = {outcome.url for outcome in outcomes}
    assert not any("/guide/" in url for url in urls)
    assert server.url("/docs/ref.html") in urls
    assert not any("/guide/" in path for path in server.paths())

    outcomes, _ = crawl_all(server.url("/docs/"), replace(fast, include=("*/guide/*",)))
    # The start page is read for its links but not reported when the globs leave it out.
    assert {outcome.url for outcome in outcomes} == {
        server.url(path) for path in ("/docs/guide/", "/docs/guide/level2.html", "/docs/guide/level3.html")
    }


def test_start_url_without_trailing_slash_redirects_in_scope(serve, crawl_all, fast):
    server = serve("links_site")
    outcomes, _ = crawl_all(server.url("/docs"), fast)  # http.server answers 301 → /docs/
    assert outcomes[0].url == server.url("/docs/")
    assert server.url("/docs/guide/") in {outcome.url for outcome in outcomes}


def test_start_redirect_rebases_the_scope(server: Server, crawl_all, fast):
    server.route("/", Reply.redirect("/en/latest/"))
    server.route("/en/latest/", Reply.html('<a href="api.html">api</a> <a href="/other/">other</a>'))
    server.route("/en/latest/api.html", Reply.html("<h1>API</h1>"))
    outcomes, _ = crawl_all(server.url("/"), fast)
    assert [outcome.url for outcome in outcomes] == [
        server.url("/en/latest/"),
        server.url("/en/latest/api.html"),
    ]
    assert "/other/" not in server.paths()


def test_unreachable_start_is_a_config_error(crawl_all, fast):
    with socket.socket() as sock:  # a port nobody listens on: bound, then closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        ConfigError, match=rf"cannot reach http://127\.0\.0\.1:{port}/docs/: .* check the address"
    ):
        crawl_all(f"http://127.0.0.1:{port}/docs/", fast)


@pytest.mark.parametrize("status", [404, 410])
def test_missing_start_page_is_a_config_error(server: Server, crawl_all, fast, status):
    server.route("/docs/", Reply(status=status))
    with pytest.raises(ConfigError, match=f"HTTP {status}"):
        crawl_all(server.url("/docs/"), fast)


def test_failing_start_page_is_an_outcome(server: Server, crawl_all, fast):
    server.route("/docs/", Reply(status=500))
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    assert len(outcomes) == 1
    assert isinstance(outcomes[0].error, FetchError) and outcomes[0].error.reason == "HTTP 500"


def test_validators_give_not_modified(server: Server, crawl_all, fast):
    server.route(
        "/docs/",
        Reply.html(
            "<h1>Start</h1>",
        ),
    )
    server.route("/docs/llms.txt", Reply(body="- [Page](page.md)\n- [New](new.md)\n"))
    server.route("/docs/page.md", Reply(status=304, headers={"ETag": '"v1"'}))
    server.route(
        "/docs/new.md", Reply(body="# New", headers={"Content-Type": "text/markdown", "ETag": '"n1"'})
    )
    stored = {server.url("/docs/page.md"): ('"v1"', "Wed, 21 Oct 2015 07:28:00 GMT")}
    outcomes, _ = crawl_all(server.url("/docs/"), fast, validators=stored.get)
    pages = {outcome.url: outcome for outcome in outcomes}
    assert pages[server.url("/docs/page.md")].not_modified
    assert pages[server.url("/docs/new.md")].fetched.etag == '"n1"'
    sent = next(request.headers for request in server.requests if request.path == "/docs/page.md")
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    start = next(request.headers for request in server.requests if request.path == "/docs/")
    assert "If-None-Match" not in start


def test_link_following_never_asks_for_304(serve, crawl_all, fast):
    server = serve("links_site")

    def validators(url: str) -> tuple[str | None, str | None]:
        return '"stored"', None

    outcomes, _ = crawl_all(server.url("/docs/"), fast, validators=validators)
    assert all(outcome.fetched for outcome in outcomes)
    assert not any("If-None-Match" in request.headers for request in server.requests)


def test_outcomes_stream_as_fetches_complete(server: Server, fast):
    server.route("/docs/", Reply.html('<a href="slow">slow</a> <a href="fast">fast</a>'))
    server.route("/docs/slow", Reply.html("<h1>Slow</h1>", delay=1.0))
    server.route("/docs/fast", Reply.html("<h1>Fast</h1>"))

    async def first_two() -> list[str]:
        async with crawl(server.url("/docs/"), fast) as run:
            return [(await anext(run)).url, (await anext(run)).url]

    # The fast page is reported while the slow one, requested first, is still on its way.
    assert asyncio.run(first_two()) == [server.url("/docs/"), server.url("/docs/fast")]
    assert "/docs/slow" in server.paths()


def test_leaving_early_stops_the_crawl(serve, fast):
    server = serve("links_site")

    async def first_only() -> bool:
        run = crawl(server.url("/docs/"), fast)
        async with run:
            async for _ in run:
                break
        return run.complete

    assert asyncio.run(first_only()) is False


def test_injected_client_is_used_and_left_open(serve, fast):
    import httpx

    server = serve("links_site")

    async def go() -> tuple[int, bool]:
        async with httpx.AsyncClient() as client:
            outcomes = [outcome async for outcome in crawl(server.url("/docs/"), fast, client=client)]
            return len(outcomes), client.is_closed

    assert asyncio.run(go()) == (7, False)
    assert all(request.headers["User-Agent"] == CrawlOptions().user_agent for request in server.requests)


def test_no_scheme_means_https():
    from docshelf.crawl.crawler import start_url

    assert start_url("docs.example.com/en/") == "https://docs.example.com/en/"
    with pytest.raises(ConfigError):
        start_url("ftp://example.com/")
