"""Politeness shared through PostgreSQL, measured at a real server while separate worker processes crawl it.

Each worker is its own Python process (gate_worker.py) with its own `SharedHostGates` on
one fresh database; the server, in this process, logs when each request arrives.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest

import docshelf
from docshelf.crawl.shared_politeness import SharedHostGates
from servers import Reply, Server
from store import shelves

pg_dsn = shelves.pg_dsn

WORKER = Path(__file__).with_name("gate_worker.py")
SRC = Path(docshelf.__file__).parents[1]
JITTER = 0.25
"""Seconds a request may reach the server late, on a busy machine, after the gate let it go."""


class Worker:
    """A running gate_worker.py process."""

    def __init__(self, dsn: str, urls: list[str], *, delay: float, per_host: int, max_hold: float) -> None:
        config = {"dsn": dsn, "urls": urls, "delay": delay, "per_host": per_host, "max_hold": max_hold}
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])},
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        assert line.strip() == "ready", self.process.communicate(timeout=30)

    def go(self) -> None:
        """Let the worker send its requests."""
        assert self.process.stdin
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 60.0) -> str:
        """Wait for the worker to end well; return its last line. Its log is left in `self.log`."""
        out, self.log = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0, self.log
        return out.strip().splitlines()[-1]


StartWorker = Callable[..., Worker]


@pytest.fixture
def start_worker() -> Iterator[StartWorker]:
    """Return a function that starts a worker and waits until it is ready; kills leftovers at the end."""
    started: list[Worker] = []

    def start(
        dsn: str, urls: list[str], *, delay: float = 0.0, per_host: int = 4, max_hold: float = 300.0
    ) -> Worker:
        worker = Worker(dsn, urls, delay=delay, per_host=per_host, max_hold=max_hold)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.communicate()


def arrival(server: Server, path: str, timeout: float) -> float:
    """Return when `path` reached the server, waiting up to `timeout` seconds for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in list(server.requests):
            if request.path == path:
                return request.started
        time.sleep(0.01)
    raise AssertionError(f"{path} never arrived; got {server.paths()}")


def test_crawl_delay_spaces_the_requests_of_four_processes(server: Server, pg_dsn: str, start_worker):
    paths = [f"/w{w}/p{n}" for w in range(4) for n in range(4)]
    for path in paths:
        server.route(path, Reply.html("<h1>ok</h1>"))
    workers = [
        start_worker(pg_dsn, [server.url(path) for path in paths[4 * w : 4 * w + 4]], delay=1.0)
        for w in range(4)
    ]
    for worker in workers:
        worker.go()
    for worker in workers:
        assert worker.finish() == "done 200 200 200 200"
    assert sorted(server.paths()) == sorted(paths)
    # The database books starts exactly 1 s apart, but on a loaded machine a request can reach the
    # server late (0.2 s has been seen on two busy cores) and the next one on time. Any span of k
    # gaps must still cover k delays, less one such lateness, which does not add up over the span.
    arrivals = sorted(request.started for request in server.requests)
    gaps = [round(later - earlier, 3) for earlier, later in pairwise(arrivals)]
    for first, earlier in enumerate(arrivals):
        for last in range(first + 1, len(arrivals)):
            assert arrivals[last] - earlier >= (last - first) * 1.0 - JITTER, gaps


def test_per_host_limit_holds_across_processes(server: Server, pg_dsn: str, start_worker):
    paths = [f"/w{w}/p{n}" for w in range(3) for n in range(4)]
    for path in paths:
        server.route(path, Reply.html("<h1>ok</h1>", delay=0.5))
    workers = [
        start_worker(pg_dsn, [server.url(path) for path in paths[4 * w : 4 * w + 4]], per_host=2)
        for w in range(3)
    ]
    for worker in workers:
        worker.go()
    for worker in workers:
        assert worker.finish() == "done 200 200 200 200"
    assert len(server.requests) == len(paths)
    assert server.max_in_flight == 2  # reached, so requests overlapped, and never passed


def test_a_killed_process_frees_its_slot(server: Server, pg_dsn: str, start_worker):
    server.route("/hang", Reply.html("<h1>late</h1>", delay=60))
    server.route("/next", Reply.html("<h1>ok</h1>"))
    holder = start_worker(pg_dsn, [server.url("/hang")], per_host=1)
    waiter = start_worker(pg_dsn, [server.url("/next")], per_host=1)
    holder.go()
    arrival(server, "/hang", timeout=10)
    waiter.go()
    time.sleep(1.0)
    assert "/next" not in server.paths()  # the one slot is taken
    killed = time.monotonic()
    holder.process.send_signal(signal.SIGKILL)
    assert arrival(server, "/next", timeout=10) - killed < 2.0
    assert waiter.finish() == "done 200"


def test_a_hung_process_loses_its_slot_after_max_hold(server: Server, pg_dsn: str, start_worker):
    server.route("/hang", Reply.html("<h1>late</h1>", delay=60))
    server.route("/next", Reply.html("<h1>ok</h1>"))
    holder = start_worker(pg_dsn, [server.url("/hang")], per_host=1, max_hold=1.0)
    waiter = start_worker(pg_dsn, [server.url("/next")], per_host=1)
    holder.go()
    arrival(server, "/hang", timeout=10)
    holder.process.send_signal(signal.SIGSTOP)  # alive, connected, and never coming back
    stopped = time.monotonic()
    waiter.go()
    waited = arrival(server, "/next", timeout=10) - stopped
    assert 0.3 < waited < 3.0, waited
    assert waiter.finish() == "done 200"


def test_waiting_for_the_booked_start_does_not_count_against_max_hold(
    server: Server, pg_dsn: str, start_worker
):
    server.route("/a", Reply.html("<h1>a</h1>"))
    server.route("/b", Reply.html("<h1>b</h1>"))
    # The second request holds the one slot while it waits 2 s for its start, longer than max_hold.
    worker = start_worker(pg_dsn, [server.url("/a"), server.url("/b")], delay=2.0, per_host=1, max_hold=1.0)
    worker.go()
    assert worker.finish() == "done 200 200"
    first, second = sorted(request.started for request in server.requests)
    assert second - first >= 1.9
    assert "crawl slot" not in worker.log  # the session was not ended under the waiting request


def test_pause_holds_back_another_process(server: Server, pg_dsn: str, start_worker):
    server.route("/after", Reply.html("<h1>ok</h1>"))
    worker = start_worker(pg_dsn, [server.url("/after")])

    async def pause() -> float:
        async with SharedHostGates(pg_dsn) as gates:
            paused = time.monotonic()
            await gates.for_url(server.url("/")).pause(1.0)
            return paused

    paused = asyncio.run(pause())
    worker.go()
    assert worker.finish() == "done 200"
    assert arrival(server, "/after", timeout=1) - paused >= 0.95
