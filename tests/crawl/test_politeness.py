"""Politeness, measured on the server side: requests in flight, spacing of request starts, robots.txt."""

from __future__ import annotations

import logging
from dataclasses import replace

from docshelf.errors import SkippedPage
from servers import Reply, Server

PAGES = 8


def slow_site(server: Server, delay: float = 0.2) -> None:
    """Route a start page linking to `PAGES` pages that each take `delay` seconds to answer."""
    server.route("/docs/", Reply.html("".join(f'<a href="p{n}">{n}</a>' for n in range(PAGES))))
    for n in range(PAGES):
        server.route(f"/docs/p{n}", Reply.html(f"<h1>{n}</h1>", delay=delay))


def test_per_host_limit_is_never_exceeded(server: Server, crawl_all, fast):
    # Slow pages, so requests overlap even on a loaded machine and the limit is really reached.
    slow_site(server, delay=0.5)
    outcomes, _ = crawl_all(server.url("/docs/"), replace(fast, concurrency=8, per_host=3))
    assert len(outcomes) == 1 + PAGES
    assert server.max_in_flight == 3  # reached, so requests did run in parallel, and never passed


def test_total_concurrency_limit(server: Server, crawl_all, fast):
    slow_site(server, delay=0.5)
    outcomes, _ = crawl_all(server.url("/docs/"), replace(fast, concurrency=2, per_host=8))
    assert len(outcomes) == 1 + PAGES
    assert server.max_in_flight == 2


def test_robots_txt_disallow_and_crawl_delay(serve, crawl_all, index_outcomes, fast):
    server = serve("robots_site")
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    secret = index_outcomes(outcomes)[server.url("/docs/private/secret.html")]
    assert isinstance(secret.error, SkippedPage)
    assert secret.error.reason == "robots.txt disallows"
    assert "/docs/private/secret.html" not in server.paths()
    assert server.paths().count("/robots.txt") == 1
    assert server.paths()[0] == "/robots.txt"
    # The delay applies once robots.txt is read. Arrival times at the server jitter (on a loaded
    # machine, two requests started 0.2 s apart can arrive together), so the test checks each
    # arrival against the first rather than gap by gap: n requests cannot arrive sooner than n delays.
    starts = [request.started for request in server.requests[1:]]
    assert len(starts) >= 4
    for number, started in enumerate(starts):
        assert started - starts[0] >= 0.2 * number - 0.05, starts


def test_crawl_delay_ignored_when_robots_is_off(serve, crawl_all, fast):
    server = serve("robots_site")
    outcomes, _ = crawl_all(server.url("/docs/"), replace(fast, respect_robots=False))
    assert "/robots.txt" not in server.paths()
    assert server.url("/docs/private/secret.html") in {outcome.url for outcome in outcomes if outcome.fetched}


def test_robots_txt_server_error_allows_all_and_logs(server: Server, crawl_all, fast, caplog):
    server.route("/robots.txt", Reply(status=500))
    server.route("/docs/", Reply.html("<h1>Start</h1>"))
    with caplog.at_level(logging.WARNING, logger="docshelf.crawl.robots"):
        outcomes, _ = crawl_all(server.url("/docs/"), fast)
    assert outcomes[0].fetched is not None
    assert "HTTP 500" in caplog.text


def test_robots_txt_is_read_with_the_docshelf_agent(server: Server, crawl_all, fast):
    server.route(
        "/robots.txt",
        Reply(body="User-agent: docshelf\nDisallow: /docs/a\n\nUser-agent: *\nDisallow: /docs/b\n"),
    )
    server.route("/docs/", Reply.html('<a href="a">a</a> <a href="b">b</a>'))
    server.route("/docs/a", Reply.html("<h1>A</h1>"))
    server.route("/docs/b", Reply.html("<h1>B</h1>"))
    outcomes, _ = crawl_all(server.url("/docs/"), fast)
    pages = {outcome.url: outcome for outcome in outcomes}
    assert pages[server.url("/docs/a")].error.reason == "robots.txt disallows"
    assert pages[server.url("/docs/b")].fetched is not None  # the `*` group does not apply to docshelf


def test_retry_after_holds_back_the_whole_host(server: Server, crawl_all, fast):
    server.route("/docs/", Reply.html('<a href="busy">busy</a> <a href="calm">calm</a>'))
    server.route("/docs/busy", Reply(status=503, headers={"Retry-After": "1"}), Reply.html("<h1>Busy</h1>"))
    server.route("/docs/calm", Reply.html("<h1>Calm</h1>", delay=0.1))
    crawl_all(server.url("/docs/"), replace(fast, per_host=1))
    first_busy = next(request.started for request in server.requests if request.path == "/docs/busy")
    later = [request.started for request in server.requests if request.started > first_busy]
    # per_host=1 makes "calm" wait for "busy" to answer; Retry-After then holds it back too.
    assert later and min(later) - first_busy >= 0.95
