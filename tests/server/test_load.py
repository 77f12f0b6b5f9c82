"""50 concurrent clients on /api/search of a real `docshelf serve` while a crawl job writes to the same shelf.

The load loop is bench/serve_load.py's own (`http_clients`), so the test and the benchmark measure
the same thing. The window is DOCSHELF_LOAD_SECONDS long (default 60); every request must succeed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path

import httpx
from test_hardening import _serve
from test_serve_cli import free_port

from servers import Reply, Server

BENCH = Path(__file__).parents[2] / "bench" / "serve_load.py"
CLIENTS = 50
SITE_PAGES = 600


def load_bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("serve_load", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_fifty_clients_search_while_a_crawl_writes_with_no_error(shelf_copy: Path) -> None:
    bench = load_bench()
    seconds = float(os.environ.get("DOCSHELF_LOAD_SECONDS", "60"))
    with Server() as site:
        links = "".join(f'<a href="/docs/p{n}">page {n}</a> ' for n in range(SITE_PAGES))
        site.route("/docs/", Reply.html(f"<html><body><main><h1>Harbour</h1><p>{links}</p></main></body></html>"))
        for n in range(SITE_PAGES):
            body = " ".join(f"berth{n} tide {i} slack water pilotage" for i in range(40))
            site.route(f"/docs/p{n}", Reply.html(
                f"<html><head><title>Berth {n}</title></head><body><main><h1>Berth {n}</h1><p>{body}</p></main></body></html>",
                delay=0.05))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = _serve(shelf_copy, port)
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                job = http.post("/api/sources", json={"url": site.url("/docs/"), "source": "harbour", "concurrency": 2})
                assert job.status_code == 202, job.text
                job_id = job.json()["id"]
                while http.get(f"/api/jobs/{job_id}").json()["pages_done"] < 3:
                    time.sleep(0.2)  # the crawl is writing before the clients start
                before = http.get(f"/api/jobs/{job_id}").json()
                queries = ["cache timeout", "tessellate", "configure the widget", "berth tide", "install",
                           "WIDGETS_CACHE_TTL", "slack water", "how do I stream a response", "pilotage", "retries"]
                run = asyncio.run(bench.http_clients(base, CLIENTS, seconds, queries, seed=7))
                after = http.get(f"/api/jobs/{job_id}").json()
            print(f"\nload: {bench.Run.row(run)}  crawl: {before['pages_done']} → {after['pages_done']} pages "
                  f"({after['status']})")
            assert run.errors == 0
            assert len(run.latencies) >= CLIENTS
            assert after["pages_done"] > before["pages_done"]  # the crawl wrote while the clients searched
            assert after["status"] in ("running", "done"), after
        finally:
            server.terminate()
            server.wait(timeout=30)
