"""Several servers on one PostgreSQL shelf: jobs are rows every replica sees, and survive a restart."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from docshelf.jobs import SourceBusyError
from docshelf.models import Source
from docshelf.store.postgres import PostgresStore
from docshelf.workers import QueueJobs
from servers import Server
from test_faults import tide_site
from workers.conftest import Workers, sql, wait_for


def test_a_job_queued_by_one_server_is_seen_by_another_and_outlives_both(dsn: str, workers: Workers) -> None:
    with Server() as site:
        first = QueueJobs(dsn, trust_start=True)
        job = first.start_add(tide_site(site), "tides@1")
        first.close()  # the server that queued it stops
        workers.start(1)
        second = QueueJobs(dsn)
        try:
            assert second.get(job.id).source == "tides@1"
            wait_for(dsn, [job.id], workers)
            done = second.get(job.id)
        finally:
            second.close()
    assert done.status == "done" and done.pages_by_status == {"ok": 41}
    assert done.worker == "w0" and done.summary is not None and done.summary["pages_ok"] == 41


def test_one_crawl_of_a_source_at_a_time_across_replicas(dsn: str) -> None:
    one, two = QueueJobs(dsn, trust_start=True), QueueJobs(dsn, trust_start=True)
    try:
        one.start_add("http://127.0.0.1:9/docs/", "tides@1")
        with pytest.raises(SourceBusyError, match="already crawling"):
            two.start_add("http://127.0.0.1:9/other/", "tides@2")
        assert two.active_for("tides") is not None
    finally:
        one.close()
        two.close()


def test_scheduled_refreshes_from_two_replicas_queue_one_job(dsn: str) -> None:
    store = PostgresStore(dsn)
    store.upsert_source(Source(name="tides", root="http://127.0.0.1:9/docs/", last_crawl_at="2020-01-01T00:00:00+00:00"))
    store.close()
    replicas = [QueueJobs(dsn, trust_start=True) for _ in range(2)]
    stops = [replica.refresh_every(timedelta(hours=1), check_every=0.05) for replica in replicas]
    try:
        time.sleep(1.5)
    finally:
        for stop in stops:
            stop.set()
        for replica in replicas:
            replica.close()
    assert sql(dsn, "SELECT kind, source, status FROM docshelf_jobs") == [("refresh", "tides", "queued")]
