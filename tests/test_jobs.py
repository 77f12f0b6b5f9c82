"""Background crawl jobs: ids at once, progress, completion, refresh and failure, on a real fixture site."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from docshelf.access import AccessPolicy, FolderPolicy
from docshelf.embed import get_embedder
from docshelf.jobs import Job, JobManager, JobNotFoundError
from docshelf.shelf_tools import NotOnShelfError
from docshelf.store import open_store
from servers import Server

SPHINX = Path(__file__).parent / "fixtures" / "sites" / "sphinx"


def wait(jobs: JobManager, job: Job, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while not jobs.get(job.id).finished:
        assert time.monotonic() < deadline, jobs.get(job.id).to_markdown()
        time.sleep(0.1)
    return jobs.get(job.id)


def test_a_crawl_job_runs_to_completion_and_a_refresh_skips_unchanged_pages(db_path: Path) -> None:
    jobs = JobManager(str(db_path), lambda: get_embedder(None), access=AccessPolicy.for_clients("127.0.0.1"))
    with Server(SPHINX) as server:
        job = jobs.start_add(server.url("/"), source="widgets")
        assert job.status in ("queued", "running") and len(job.id) == 12  # returned at once
        done = wait(jobs, job)
        assert done.status == "done", done.error
        assert done.pages_done == 4 and done.pages_by_status == {"ok": 4}
        assert done.summary["pages_ok"] == 4 and done.embedded == done.summary["chunks"] > 0
        assert "**done**" in done.to_markdown() and "4 pages stored" in done.to_markdown()

        store = open_store(str(db_path))
        refresh = wait(jobs, jobs.start_refresh(store, "widgets"))
        assert refresh.kind == "refresh" and refresh.root == server.url("/")
        assert refresh.summary["pages_unchanged"] == 4 and refresh.summary["chunks"] == 0
        assert [s.source.name for s in store.list_sources()] == ["widgets@2.4"]  # the version the site states
        store.close()
    assert jobs.active_for("widgets") is None and len(jobs.list()) == 2


def test_a_failing_job_ends_failed_with_its_error(db_path: Path, tmp_path: Path) -> None:
    jobs = JobManager(str(db_path), lambda: get_embedder(None), folders=FolderPolicy.of([tmp_path]))
    done = wait(jobs, jobs.start_add(str(tmp_path / "no-such-folder"), source="ghost"))
    assert done.status == "failed" and done.error and done.finished_at


def test_unknown_jobs_and_sources_are_clear_errors(db_path: Path) -> None:
    jobs = JobManager(str(db_path), lambda: get_embedder(None))
    with pytest.raises(JobNotFoundError, match="no job 'abc'"):
        jobs.get("abc")
    store = open_store(str(db_path))
    with pytest.raises(NotOnShelfError, match="unknown source 'nope'"):
        jobs.start_refresh(store, "nope")
    store.close()


def test_refresh_every_queues_a_refresh_of_each_stale_version_one_at_a_time(db_path: Path) -> None:
    from datetime import timedelta

    jobs = JobManager(str(db_path), lambda: get_embedder(None), access=AccessPolicy.for_clients("127.0.0.1"))
    with Server(SPHINX) as server:
        assert wait(jobs, jobs.start_add(server.url("/"), source="widgets")).status == "done"
        stop = jobs.refresh_every(timedelta(seconds=1), check_every=0.1)
        try:
            deadline = time.monotonic() + 30
            while not [j for j in jobs.list() if j.kind == "refresh" and j.finished]:
                assert time.monotonic() < deadline, "no refresh ran"
                time.sleep(0.1)
        finally:
            stop.set()
    refreshes = [j for j in jobs.list() if j.kind == "refresh"]
    assert refreshes[0].source == "widgets@2.4" and refreshes[0].status == "done"
    assert refreshes[0].summary["pages_unchanged"] == 4
    # never two jobs of one source at once
    assert sum(1 for j in refreshes if not j.finished) <= 1
