"""Pages that fail in every way a server can make them fail: each one is an outcome with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from docshelf.crawl import CrawlOptions, CrawlOutcome
from docshelf.errors import FetchError, SkippedPage
from servers import Reply, Server

OPTIONS = CrawlOptions(timeout=0.5, retries=2, backoff=0.01, max_retry_after=5.0, max_bytes=2000)

# path → the programmed replies (the last one repeats)
ROUTES: dict[str, list[Reply]] = {
    "/docs/gone-404": [Reply(status=404)],
    "/docs/gone-410": [Reply(status=410)],
    "/docs/flaky": [Reply(status=500), Reply.html("<h1>Flaky</h1>")],
    "/docs/down": [Reply(status=503)],
    "/docs/busy": [Reply(status=429, headers={"Retry-After": "1"}), Reply.html("<h1>Busy</h1>")],
    "/docs/slow": [Reply.html("<h1>Slow</h1>", delay=3.0)],
    "/docs/loop-a": [Reply.redirect("/docs/loop-b")],
    "/docs/loop-b": [Reply.redirect("/docs/loop-a")],
    "/docs/away": [Reply.redirect("https://elsewhere.invalid/docs/")],
    "/docs/up": [Reply.redirect("/outside/")],
    "/docs/bad-redirect": [Reply.redirect("http://127.0.0.1:99999/x")],
    "/docs/moved": [Reply.redirect("/docs/target", status=301)],
    "/docs/target": [Reply.html("<h1>Target</h1>")],
    "/docs/paper": [Reply(body=b"%PDF-1.4 ...", headers={"Content-Type": "application/pdf"})],
    "/docs/big": [Reply.html("<p>" + "x" * 5000 + "</p>")],
    "/docs/big-unannounced": [
        Reply(body="<p>" + "x" * 5000 + "</p>", headers={"Content-Type": "text/html"}, send_length=False)
    ],
    "/docs/binary": [Reply(body=bytes(range(256)) * 4, headers={"Content-Type": "text/html; charset=utf-8"})],
    "/docs/latin": [
        Reply(body="<p>café</p>".encode("cp1252"), headers={"Content-Type": "text/html; charset=utf-8"})
    ],
    "/docs/meta": [
        Reply(
            body='<meta charset="koi8-r"><p>мир</p>'.encode("koi8-r"), headers={"Content-Type": "text/html"}
        )
    ],
    "/docs/empty": [Reply(body=" \n\t ", headers={"Content-Type": "text/html"})],
    "/docs/notes.md": [
        Reply(body="# Notes\n\nSee [the API](api.md).", headers={"Content-Type": "application/octet-stream"})
    ],
    "/docs/api.md": [Reply(body="# API", headers={"Content-Type": "text/markdown; charset=utf-8"})],
    "/docs/plain.txt": [Reply(body="plain words", headers={"Content-Type": "text/plain"})],
}


@pytest.fixture(scope="module")
def site(crawl_all, index_outcomes) -> Iterator[tuple[Server, dict[str, CrawlOutcome]]]:
    """Crawl a start page linking to every misbehaving route once, for all the tests here."""
    server = Server().start()
    for path, replies in ROUTES.items():
        server.route(path, *replies)
    links = "".join(f'<a href="{path}">{path}</a>' for path in ROUTES)
    server.route("/docs/", Reply.html(f"<h1>Start</h1>{links}"))
    outcomes, _ = crawl_all(server.url("/docs/"), OPTIONS)
    yield (
        server,
        {url.removeprefix(server.base): outcome for url, outcome in index_outcomes(outcomes).items()},
    )
    server.stop()


@pytest.mark.parametrize(
    ("path", "error", "reason"),
    [
        ("/docs/gone-404", FetchError, "HTTP 404"),
        ("/docs/gone-410", FetchError, "HTTP 410"),
        ("/docs/down", FetchError, "HTTP 503"),
        ("/docs/slow", FetchError, "timeout after 0.5s"),
        ("/docs/loop-a", FetchError, "redirect loop"),
        ("/docs/away", SkippedPage, "redirect out of scope to https://elsewhere.invalid/docs/"),
        ("/docs/up", SkippedPage, "redirect out of scope to http://127.0.0.1:{port}/outside/"),
        ("/docs/bad-redirect", FetchError, "redirect to an invalid URL http://127.0.0.1:99999/x"),
        ("/docs/paper", SkippedPage, "content type application/pdf"),
        ("/docs/big", SkippedPage, "body over 2 KB"),
        ("/docs/big-unannounced", SkippedPage, "body over 2 KB"),
        ("/docs/binary", FetchError, "undecodable bytes"),
        ("/docs/empty", FetchError, "empty page"),
    ],
)
def test_failure_reasons(site, path, error, reason):
    server, pages = site
    outcome = pages[path]
    assert outcome.fetched is None
    assert type(outcome.error) is error
    assert outcome.error.reason == reason.format(port=server.base.rsplit(":", 1)[1])


def test_error_status_is_not_retried_but_server_errors_are(site):
    server, _ = site
    assert server.paths().count("/docs/gone-404") == 1
    assert server.paths().count("/docs/down") == 1 + OPTIONS.retries
    assert server.paths().count("/docs/slow") == 1 + OPTIONS.retries  # timeouts are retried too


def test_retry_after_a_server_error(site):
    _, pages = site
    assert pages["/docs/flaky"].fetched.text == "<h1>Flaky</h1>"


def test_retry_after_header_is_honoured(site):
    server, pages = site
    assert pages["/docs/busy"].fetched is not None
    busy = [request.started for request in server.requests if request.path == "/docs/busy"]
    assert len(busy) == 2 and busy[1] - busy[0] >= 0.95


def test_redirect_in_scope_reports_the_target(site):
    server, pages = site
    assert pages["/docs/target"].fetched.url == server.url("/docs/target")
    assert "/docs/moved" not in pages  # the alias of a page is not reported on its own


def test_mislabelled_windows_text_falls_back_to_cp1252(site):
    _, pages = site
    assert pages["/docs/latin"].fetched.text == "<p>café</p>"


def test_meta_charset_is_read(site):
    _, pages = site
    assert "мир" in pages["/docs/meta"].fetched.text


def test_markdown_and_text_kinds(site):
    server, pages = site
    notes = pages["/docs/notes.md"].fetched
    assert notes.kind == "markdown"  # .md served as application/octet-stream
    assert notes.links == [server.url("/docs/api.md")]
    assert pages["/docs/api.md"].fetched.kind == "markdown"
    assert pages["/docs/plain.txt"].fetched.kind == "text"


def test_pdf_body_is_not_downloaded_past_the_headers(server: Server, crawl_all, fast):
    server.route("/docs/", Reply.html('<a href="report">report</a>'))
    server.route(
        "/docs/report", Reply(body=b"%PDF" + b"0" * 100_000, headers={"Content-Type": "application/pdf"})
    )
    outcomes, _ = crawl_all(server.url("/docs/"), replace(fast, max_bytes=1000))
    assert outcomes[1].error.reason == "content type application/pdf"


def test_too_many_redirects(server: Server, crawl_all, fast):
    for hop in range(12):
        server.route(f"/docs/hop{hop}", Reply.redirect(f"/docs/hop{hop + 1}"))
    server.route("/docs/", Reply.html('<a href="hop0">start hopping</a>'))
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    assert outcomes[1].error.reason == "more than 10 redirects"


def test_redirect_to_a_robots_disallowed_page_is_skipped(server: Server, crawl_all, fast):
    server.route("/robots.txt", Reply(body="User-agent: *\nDisallow: /docs/private/\n"))
    server.route("/docs/", Reply.html('<a href="open">open</a>'))
    server.route("/docs/open", Reply.redirect("/docs/private/x"))
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    assert outcomes[1].error.reason == "robots.txt disallows"
    assert "/docs/private/x" not in server.paths()


def test_not_modified_without_validators_is_an_error(server: Server, crawl_all, fast):
    server.route("/docs/", Reply.html('<a href="odd">odd</a>'))
    server.route("/docs/odd", Reply(status=304))
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    assert outcomes[1].error.reason == "HTTP 304"
