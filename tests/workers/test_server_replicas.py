"""Two `serve` replicas on one PostgreSQL shelf: a crawl queued through one is followed, to its end, through the other."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docshelf.access import AccessPolicy
from docshelf.server.app import create_app
from docshelf.server.state import ServerConfig
from servers import Server
from workers.conftest import Workers

MKDOCS = Path(__file__).parent.parent / "fixtures" / "sites" / "mkdocs"


def test_replicas_share_jobs_and_a_restart_loses_none(dsn: str, workers: Workers,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSHELF_ALLOW_HOSTS", "127.0.0.1")  # the workers may crawl the test site
    config = ServerConfig(db=dsn, access=AccessPolicy.for_clients("127.0.0.1"))
    with Server(MKDOCS) as site:
        with TestClient(create_app(config)) as first:
            started = first.post("/api/sources", json={"url": site.url("/"), "source": "mk"})
            assert started.status_code == 202, started.text
            job = started.json()
            busy = first.post("/api/sources", json={"url": site.url("/"), "source": "mk"})
            assert busy.status_code == 409 and job["id"] in busy.text
        # That server has stopped; the job is on the shelf, and a worker and another replica carry on.
        workers.start(1)
        with TestClient(create_app(config)) as second:
            deadline = time.monotonic() + 120
            while (seen := second.get(f"/api/jobs/{job['id']}").json())["status"] not in ("done", "failed"):
                assert time.monotonic() < deadline, workers.log()
                time.sleep(0.2)
            listed = second.get("/api/jobs").json()["jobs"]
            hits = second.get("/api/search", params={"q": "installation"}).json()
    assert seen["status"] == "done", seen
    assert seen["pages_by_status"] == {"ok": 4} and seen["worker"] == "w0"
    assert [j["id"] for j in listed] == [job["id"]]
    assert hits["hits"] and all(hit["url"].startswith(site.url("/")) for hit in hits["hits"])
