"""The team commands from the command line: worker, jobs, add --queue, and what they say on a SQLite shelf."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from docshelf.cli import cli
from servers import Server
from test_faults import PAGES, tide_site
from workers.conftest import Workers


@pytest.mark.parametrize("args", [["worker"], ["jobs"], ["jobs", "cancel", "abc"], ["add", "http://127.0.0.1:9/", "--queue"]])
def test_team_commands_on_a_sqlite_shelf_exit_2_and_say_why(args: list[str], db_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(db_path), *args])
    assert result.exit_code == 2, result.output
    assert "needs a PostgreSQL shelf" in result.stderr
    assert "Traceback" not in result.output


def test_worker_on_sqlite_says_add_needs_no_worker(db_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(db_path), "worker"])
    assert "`docshelf add` crawls and embeds in its own process, no worker needed" in result.stderr


def test_add_queue_wait_follows_the_job_to_its_end(dsn: str, workers: Workers) -> None:
    workers.start(1)
    with Server() as site:
        out = subprocess.run(
            [sys.executable, "-m", "docshelf", "--db", dsn, "add", tide_site(site), "--source", "tides",
             "--version", "1", "--queue", "--wait", "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)
    assert job["status"] == "done" and job["pages_by_status"] == {"ok": PAGES + 1}
    listed = subprocess.run([sys.executable, "-m", "docshelf", "--db", dsn, "jobs", "--json"],
                            capture_output=True, text=True, timeout=60, check=True)
    [row] = json.loads(listed.stdout)["jobs"]
    assert row["id"] == job["id"] and row["worker"] == "w0" and row["summary"]["pages_ok"] == PAGES + 1
    text = subprocess.run([sys.executable, "-m", "docshelf", "--db", dsn, "jobs"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert job["id"] in text and "done" in text and "tides@1" in text


def test_worker_rejects_an_unknown_queue(dsn: str) -> None:
    result = CliRunner().invoke(cli, ["--db", dsn, "worker", "--queues", "crawl,render"])
    assert result.exit_code == 2 and "render" in result.output

