"""Politeness across workers: four workers crawling one host with Crawl-delay 1 s never arrive closer than 1 s."""

from __future__ import annotations

import itertools

from servers import Reply, Server
from workers.conftest import Workers, queue_add, sql, wait_for

PAGES = 24
"""Two batches of pages: two workers fetch at once."""


def test_four_workers_keep_one_crawl_delay(dsn: str, workers: Workers) -> None:
    with Server() as site:
        site.route("/robots.txt", Reply(body="User-agent: *\nCrawl-delay: 1\n", headers={"Content-Type": "text/plain"}))
        links = "".join(f'<li><a href="/docs/p{n}.html">page {n}</a></li>' for n in range(PAGES))
        site.route("/docs/", Reply.html(f"<html><head><title>Slow</title></head><body><main><h1>Slow docs</h1>"
                                        f"<ul>{links}</ul></main></body></html>"))
        for n in range(PAGES):
            body = " ".join(f"word{n}x{i} about the harbour" for i in range(80))
            site.route(f"/docs/p{n}.html", Reply.html(f"<html><head><title>Page {n}</title></head><body><main>"
                                                      f"<h1>Page {n}</h1><p>{body}</p></main></body></html>"))
        workers.start(4, "--concurrency", "2")
        job = queue_add(dsn, site.url("/docs/"), "slow", "--version", "1", "--concurrency", "8")
        [row] = wait_for(dsn, [job], workers)
        arrivals = sorted(request.started for request in site.requests if request.path.startswith("/docs/"))
    assert row["status"] == "done", row
    fetchers = sql(dsn, "SELECT DISTINCT worker FROM docshelf_frontier WHERE outcome = 'ok'")
    assert len(fetchers) >= 2, "one worker fetched every page: the test proves nothing"
    assert len(arrivals) >= PAGES + 1
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.95, [round(g, 3) for g in gaps]
