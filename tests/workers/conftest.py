"""Worker fixtures: a fresh PostgreSQL shelf per test, worker processes, and waiting for a job's end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from store.shelves import drop_database, new_database

LEASE = "3"
"""Seconds of silence after which the tests' workers count as dead (the default is 30)."""


@pytest.fixture
def dsn() -> Iterator[str]:
    location = new_database()
    yield location
    drop_database(location)


class Workers:
    """`docshelf worker` processes on one shelf, stopped at the end of the test."""

    def __init__(self, dsn: str, logs: Path) -> None:
        self.dsn = dsn
        self.logs = logs
        self.processes: list[subprocess.Popen] = []
        self._files: list = []

    def start(self, count: int = 1, *args: str) -> list[subprocess.Popen]:
        started = []
        for _ in range(count):
            n = len(self.processes)
            log = open(self.logs / f"worker{n}.log", "w")  # noqa: SIM115 -- the process writes it until stopped
            self._files.append(log)
            started.append(subprocess.Popen(
                [sys.executable, "-m", "docshelf", "--db", self.dsn, "worker", "--lease", LEASE, "--name", f"w{n}",
                 *args], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()))
            self.processes.append(started[-1])
        return started

    def log(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("worker*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in self._files:
            log.close()


@pytest.fixture
def workers(dsn: str, tmp_path: Path) -> Iterator[Workers]:
    team = Workers(dsn, tmp_path)
    yield team
    team.stop()


def queue_add(dsn: str, url: str, source: str, *args: str) -> str:
    """Queue a crawl with `docshelf add --queue`; return the job id."""
    out = subprocess.run([sys.executable, "-m", "docshelf", "--db", dsn, "add", url, "--source", source, "--queue",
                          "--json", *args], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["id"]


def job_row(dsn: str, job_id: str) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute("SELECT status, error, summary, worker FROM docshelf_jobs WHERE id = %s", (job_id,))
        status, error, summary, worker = cur.fetchone()
    return {"status": status, "error": error, "summary": summary, "worker": worker}


def wait_for(dsn: str, job_ids: list[str], team: Workers, timeout: float = 240) -> list[dict]:
    """Wait until every job has finished; return their rows."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [job_row(dsn, job_id) for job_id in job_ids]
        if all(row["status"] in ("done", "failed", "cancelled") for row in rows):
            return rows
        assert time.monotonic() < deadline, f"jobs still running: {rows}\n{team.log()}"
        time.sleep(0.3)


def sql(dsn: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def no_duplicates(dsn: str) -> None:
    """Assert every page's chunks are numbered 0..n-1 exactly once."""
    rows = sql(dsn, "SELECT url, array_agg(chunk_number ORDER BY chunk_number) FROM site_pages GROUP BY url")
    for url, numbers in rows:
        assert numbers == list(range(len(numbers))), f"{url}: chunks {numbers}"
