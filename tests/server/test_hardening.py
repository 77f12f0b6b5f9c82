"""What a client of a shared server cannot make it do: reach private addresses or folders, flood it, or lose a job.

The sites are real servers on 127.0.0.1, the shelf a real SQLite file, the server the real app
(in process, or `docshelf serve` as a subprocess killed with SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import apsw
import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from test_api import assert_error
from test_serve_cli import free_port

from docshelf.access import AccessPolicy, FolderPolicy
from docshelf.cli import cli
from docshelf.embed import get_embedder
from docshelf.jobs import JobManager
from docshelf.mcp import build_server, http_app
from docshelf.search import HybridSearcher
from docshelf.server.limits import MAX_BODY_BYTES
from docshelf.shelf_tools import QueryTooLongError, ShelfTools
from docshelf.store import open_store
from servers import Reply, Server

Client = Callable[..., TestClient]
PAGE = "<html><head><title>{0}</title></head><body><main><h1>{0}</h1><p>{1}</p></main></body></html>"


def wait_job(client: TestClient | httpx.Client, job_id: str, *, until: Callable[[dict], bool], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def finished(job: dict) -> bool:
    return job["status"] in ("done", "failed", "interrupted")


@pytest.fixture
def site() -> Server:
    server = Server().start()
    server.route("/docs/", Reply.html(PAGE.format("Tides", "The flood tide turns every six hours.")))
    yield server
    server.stop()


# -- outbound: the start URL, a rebinding name ---------------------------------------------------
def test_a_client_cannot_crawl_a_private_address(make_client: Client, site: Server) -> None:
    client = make_client()
    for url in (site.url("/docs/"), "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/"):
        response = client.post("/api/sources", json={"url": url, "source": "x"})
        assert_error(response, 400, "blocked", "allow it with --allow-hosts")
    assert "169.254.169.254 is a link-local address" in client.post(
        "/api/sources", json={"url": "http://169.254.169.254/"}
    ).json()["detail"]
    assert client.get("/api/jobs").json() == {"jobs": []} and site.paths() == []


def test_the_operator_allows_a_private_network(make_client: Client, site: Server) -> None:
    client = make_client(access=AccessPolicy.for_clients("127.0.0.0/8"))
    job = client.post("/api/sources", json={"url": site.url("/docs/"), "source": "tides"}).json()
    done = wait_job(client, job["id"], until=finished)
    assert done["status"] == "done" and done["pages_by_status"] == {"ok": 1}


def test_dns_rebinding_after_the_check_is_refused_at_connect(make_client: Client, site: Server) -> None:
    answers = ["93.184.216.34", "127.0.0.1"]  # public for the check, loopback for the crawl

    def resolver(host: str) -> list[str]:
        assert host == "rebind.test"
        return [answers.pop(0) if len(answers) > 1 else answers[0]]

    client = make_client(access=AccessPolicy.for_clients(resolver=resolver))
    port = site.url("/").rsplit(":", 1)[1].rstrip("/")
    started = client.post("/api/sources", json={"url": f"http://rebind.test:{port}/docs/", "source": "r"})
    assert started.status_code == 202, started.text
    done = wait_job(client, started.json()["id"], until=finished)
    assert done["status"] == "failed" and "blocked: 127.0.0.1 is a loopback address" in done["error"]
    assert site.paths() == []


# -- folders ---------------------------------------------------------------------------------------
def test_a_client_cannot_crawl_a_folder_outside_the_allowed_ones(make_client: Client, tmp_path: Path) -> None:
    allowed = tmp_path / "docs"
    allowed.mkdir()
    (allowed / "tides.md").write_text("# Tides\n\nThe flood tide turns every six hours and twelve minutes.\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "keys.md").write_text("# Keys\n\nthe password is swordfish\n")
    (allowed / "link").symlink_to(secret)
    (allowed / "keys.md").symlink_to(secret / "keys.md")

    closed = make_client()
    assert_error(closed.post("/api/sources", json={"path": str(allowed)}), 400, "blocked", "--allow-folder DIR")

    client = make_client(folders=FolderPolicy.of([allowed]))
    for path in ("/", str(secret), f"{allowed}/../secret", str(allowed / "link"), "/etc/passwd"):
        assert_error(client.post("/api/sources", json={"path": path}), 400, "blocked", "--allow-folder")
    # Existence is only told inside the allowed folders.
    assert_error(client.post("/api/sources", json={"path": "/no/such"}), 400, "blocked")
    assert_error(client.post("/api/sources", json={"path": str(allowed / "nope")}), 400, "bad_request", "does not exist")
    job = client.post("/api/sources", json={"path": str(allowed), "source": "notes"}).json()
    assert wait_job(client, job["id"], until=finished)["status"] == "done"
    pages = client.get("/api/sources/notes/pages").json()["pages"]
    assert {p["url"].rsplit("/", 1)[1]: p["status"] for p in pages} == {"keys.md": "skipped", "tides.md": "ok"}
    assert not client.get("/api/search", params={"q": "swordfish", "mode": "bm25"}).json()["hits"]


# -- bounds ------------------------------------------------------------------------------------------
def test_bodies_and_parameters_are_bounded(make_client: Client) -> None:
    client = make_client()
    huge = {"question": "x" * (MAX_BODY_BYTES + 10)}
    assert_error(client.post("/api/ask", json=huge), 413, "too_large")
    chunked = client.post("/api/ask", content=iter([b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"]))
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives
    assert_error(client.get("/api/search", params={"q": "q" * 2001}), 400, "bad_request", "query parameter q")
    assert_error(client.get("/api/search", params={"q": "cache", "k": 201}), 400, "bad_request")
    assert_error(client.get("/api/sources/widgets/pages", params={"limit": 201}), 400, "bad_request")
    assert_error(client.get("/api/sources/widgets/pages", params={"offset": 10**12}), 400, "bad_request")
    assert_error(client.get("/api/page", params={"url": "x", "max_chunks": 61}), 400, "bad_request")
    assert_error(client.post("/api/sources", json={"url": "http://example.org/", "include": ["*"] * 101}), 400, "bad_request")


def test_shelf_tools_refuse_a_query_past_the_limit(shelf_copy: Path) -> None:
    store = open_store(str(shelf_copy))
    tools = ShelfTools(store, HybridSearcher(store, lambda: get_embedder(None)))
    with pytest.raises(QueryTooLongError, match="at most 2000"):
        tools.search_docs("x" * 2001)
    assert tools.list_pages("widgets", offset=10**12).pages == []
    store.close()


def test_crawl_jobs_beyond_the_limit_get_429_with_retry_after(make_client: Client, site: Server) -> None:
    site.route("/slow/", Reply.html(PAGE.format("Slow", "slow page"), delay=3.0))
    client = make_client(access=AccessPolicy.for_clients("127.0.0.1"), max_jobs=1)
    first = client.post("/api/sources", json={"url": site.url("/slow/"), "source": "slow"})
    assert first.status_code == 202
    second = client.post("/api/sources", json={"url": site.url("/docs/"), "source": "other"})
    assert_error(second, 429, "too_many_jobs", "1 crawl jobs are queued or running")
    assert second.headers["retry-after"] == "30"
    wait_job(client, first.json()["id"], until=finished)
    assert client.post("/api/sources", json={"url": site.url("/docs/"), "source": "other"}).status_code == 202


# -- mcp --http ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5"])
def test_mcp_over_http_off_loopback_needs_a_token(shelf_copy: Path, host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCSHELF_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["--db", str(shelf_copy), "mcp", "--http", "--host", host])
    assert result.exit_code == 2 and f"--host {host} makes the shelf reachable" in result.output


def test_mcp_over_http_checks_the_token(shelf_copy: Path) -> None:
    store = open_store(str(shelf_copy))
    server = build_server(ShelfTools(store, HybridSearcher(store, lambda: get_embedder(None))))
    with TestClient(http_app(server, host="0.0.0.0", port=8765, token="t0ken")) as client:
        assert_error(client.post("/mcp", json={}), 401, "unauthorized")
        assert_error(client.post("/mcp", json={}, headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
        allowed = client.post(
            "/mcp",
            headers={"Authorization": "Bearer t0ken", "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        )
        assert allowed.status_code == 200, allowed.text
    store.close()


def test_mcp_add_source_refuses_private_addresses_and_folders(db_path: Path, tmp_path: Path) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    store = open_store(str(db_path))
    jobs = JobManager(str(db_path), lambda: get_embedder(None), journal=None)
    server = build_server(ShelfTools(store, HybridSearcher(store, lambda: get_embedder(None))), jobs)
    import asyncio

    for url, flag in (("http://127.0.0.1:9/docs/", "--allow-hosts"), ("/home", "--allow-folder"),
                      (str(tmp_path), "--allow-folder")):
        with pytest.raises(ToolError, match=flag):
            asyncio.run(server.call_tool("add_source", {"url": url}))
    assert jobs.list() == []
    store.close()


# -- a job the server was killed during --------------------------------------------------------------
def test_a_job_interrupted_by_sigkill_is_reported_and_resumes(shelf_copy: Path) -> None:
    with Server() as site:
        links = "".join(f'<a href="/docs/p{n}">page {n}</a> ' for n in range(40))
        site.route("/docs/", Reply.html(PAGE.format("Index", links)))
        for n in range(40):
            site.route(f"/docs/p{n}", Reply.html(PAGE.format(f"Page {n}", f"Paragraph number {n} of the tides."), delay=0.15))

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        first = _serve(shelf_copy, port)
        with httpx.Client(base_url=base, timeout=10) as http:
            job = http.post("/api/sources", json={"url": site.url("/docs/"), "source": "tides", "concurrency": 2}).json()
            wait_job(http, job["id"], until=lambda j: j["pages_done"] >= 5)
            os.kill(first.pid, signal.SIGKILL)  # mid-crawl, while the job writes
            first.wait(timeout=10)

        connection = apsw.Connection(str(shelf_copy))
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        connection.close()

        second = _serve(shelf_copy, port)
        try:
            with httpx.Client(base_url=base, timeout=10) as http:
                reported = http.get(f"/api/jobs/{job['id']}").json()
                assert reported["status"] == "interrupted", reported
                assert "stopped while this job was running" in reported["error"]
                assert http.get("/api/search", params={"q": "tides"}).status_code == 200  # the shelf opens and searches
                resumed = http.post(f"/api/jobs/{job['id']}/resume")
                assert resumed.status_code == 202 and resumed.json()["status"] in ("queued", "running")
                done = wait_job(http, job["id"], until=finished, timeout=120)
                assert done["status"] == "done", done
                assert done["summary"]["pages_ok"] + done["summary"]["pages_unchanged"] == 41
                assert_error(http.post(f"/api/jobs/{job['id']}/resume"), 409, "not_resumable")
                pages = http.get("/api/sources/tides/pages", params={"limit": 200}).json()
                assert pages["total"] == 41 and len({p["url"] for p in pages["pages"]}) == 41
        finally:
            second.terminate()
            second.wait(timeout=10)


def _serve(db: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "docshelf", "--db", str(db), "serve", "--port", str(port), "--allow-hosts", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
            return process
        except httpx.TransportError:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)


def test_the_web_ui_bounds_the_query_too(make_client: Client) -> None:
    page = make_client().get("/", params={"q": "x" * 2001})
    assert page.status_code == 200 and "search with at most 2000" in page.text
