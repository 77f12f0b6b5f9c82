"""Faults under workers: a worker SIGKILLed mid-crawl or mid-embed, a site that fails, PostgreSQL restarting."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psycopg

from servers import Reply, Server
from test_faults import PAGES, own_postgres, tide_site  # noqa: F401 -- own_postgres is a fixture
from workers.conftest import Workers, no_duplicates, queue_add, sql, wait_for


def pages_done(dsn: str) -> int:
    try:
        return sql(dsn, "SELECT count(*) FROM docshelf_frontier WHERE outcome IS NOT NULL")[0][0]
    except psycopg.Error:
        return 0


def wait_until(condition, team: Workers, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, team.log()
        time.sleep(0.1)


def whole_shelf(dsn: str) -> None:
    """Every page of the tide site stored once, whole, every chunk with its vector."""
    no_duplicates(dsn)
    assert sql(dsn, "SELECT count(DISTINCT url) FROM site_pages")[0][0] == PAGES + 1
    assert sql(dsn, "SELECT count(*) FROM site_pages WHERE embedding IS NULL AND embed_hash <> ''")[0][0] == 0


def test_a_worker_killed_mid_crawl_loses_nothing(dsn: str, workers: Workers) -> None:
    with Server() as site:
        job = queue_add(dsn, tide_site(site, delay=0.2), "tides", "--version", "1")
        victim, survivor = workers.start(2, "--concurrency", "2")
        wait_until(lambda: pages_done(dsn) >= 4, workers)
        victim.send_signal(signal.SIGKILL)
        [row] = wait_for(dsn, [job], workers)
    assert row["status"] == "done", row
    assert row["summary"]["pages_ok"] == PAGES + 1
    whole_shelf(dsn)
    assert survivor.poll() is None


def test_a_worker_killed_mid_embed_loses_nothing(dsn: str, workers: Workers) -> None:
    with Server() as site:
        job = queue_add(dsn, tide_site(site), "tides", "--version", "1")
        workers.start(1, "--queues", "crawl")
        [embedder] = workers.start(1, "--queues", "embed")
        wait_until(lambda: sql(dsn, "SELECT embedded FROM docshelf_jobs")[0][0] > 0, workers)
        embedder.send_signal(signal.SIGKILL)
        waiting = sql(dsn, "SELECT count(*) FROM site_pages WHERE embedding IS NULL AND embed_hash <> ''")[0][0]
        workers.start(1, "--queues", "embed")
        [row] = wait_for(dsn, [job], workers)
    assert waiting > 0, "the embedder was killed after it had finished: the test proves nothing"
    assert row["status"] == "done", row
    whole_shelf(dsn)
    # Each chunk got its vector once: the vectors stored add up to the chunks, none written twice.
    assert row["summary"]["embedded"] == sql(dsn, "SELECT count(*) FROM site_pages WHERE embed_hash <> ''")[0][0]


def test_a_site_that_fails_ends_failed_with_its_reason_and_the_queue_goes_on(dsn: str, workers: Workers) -> None:
    with Server() as site:
        site.route("/gone/", Reply(status=404, body=b"not here"))
        closed = Server()
        unreachable = closed.url("/docs/")
        closed._httpd.server_close()  # nothing listens on its port any more
        jobs = [queue_add(dsn, unreachable, "nowhere", "--version", "1"),
                queue_add(dsn, site.url("/gone/"), "gone", "--version", "1"),
                queue_add(dsn, tide_site(site), "tides", "--version", "1")]
        workers.start(1)
        nowhere, gone, tides = wait_for(dsn, jobs, workers)
    assert nowhere["status"] == "failed" and "cannot reach" in nowhere["error"], nowhere
    assert gone["status"] == "failed" and "404" in gone["error"], gone
    assert tides["status"] == "done", tides
    # Failed for good on the first attempt: not retried.
    assert sql(dsn, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")[0][0] == 0


def test_cancel_stops_a_job_and_says_so(dsn: str, workers: Workers) -> None:
    with Server() as site:
        job = queue_add(dsn, tide_site(site, delay=0.5), "tides", "--version", "1")
        workers.start(1, "--concurrency", "1")
        wait_until(lambda: pages_done(dsn) >= 1, workers)
        out = subprocess.run([sys.executable, "-m", "docshelf", "--db", dsn, "jobs", "cancel", job],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert "cancelled" in out.stdout
        [row] = wait_for(dsn, [job], workers)
        stopped_at = pages_done(dsn)
        time.sleep(2)
    assert row["status"] == "cancelled"
    assert pages_done(dsn) <= stopped_at + 16  # at most the batch in flight finishes
    assert pages_done(dsn) < PAGES
    again = subprocess.run([sys.executable, "-m", "docshelf", "--db", dsn, "jobs", "cancel", job],
                           capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 2 and "cancelled already" in again.stderr


def test_workers_carry_on_when_postgres_restarts(own_postgres, tmp_path) -> None:  # noqa: F811
    import psutil

    server, name = own_postgres
    dsn = server.get_uri(name)
    team = Workers(dsn, tmp_path)
    try:
        with Server() as site:
            job = queue_add(dsn, tide_site(site, delay=0.2), "tides", "--version", "1")
            team.start(2, "--concurrency", "2")
            wait_until(lambda: pages_done(dsn) >= 5, team)
            postmaster = psutil.Process(server.get_pid())
            children = postmaster.children(recursive=True)
            postmaster.send_signal(signal.SIGKILL)
            for child in children:
                child.send_signal(signal.SIGKILL)
            psutil.wait_procs([postmaster, *children], timeout=30)
            time.sleep(2)  # the workers find the database gone
            server.start()  # crash recovery, as after a power cut
            dsn = server.get_uri(name)
            [row] = wait_for(dsn, [job], team, timeout=300)
        assert row["status"] == "done", (row, team.log())
        whole_shelf(dsn)
        assert all(p.poll() is None for p in team.processes), team.log()
    finally:
        team.stop()
