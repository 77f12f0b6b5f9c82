"""Small parts of the crawler: the frontier, Retry-After, sizes, per-host gates."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from itertools import pairwise

from docshelf.crawl.fetcher import format_size, retry_after_seconds
from docshelf.crawl.frontier import Frontier
from docshelf.crawl.politeness import HostGate


def test_frontier_is_fifo_and_hands_out_each_url_once():
    frontier = Frontier()
    frontier.add("a", 1)
    frontier.add("b", 2)
    frontier.add("b", 1)  # seen again closer to the start: keeps the smaller depth
    frontier.add("a", 1)
    assert frontier.pop() == ("a", 1)
    frontier.add("a", 1)  # taken already
    assert frontier.claim("b")  # reported under another URL's fetch (a redirect target)
    assert not frontier.claim("b")
    assert not frontier.has_pending()
    assert frontier.pop() is None


def test_frontier_pending():
    frontier = Frontier()
    frontier.add("a", 0)
    assert frontier.has_pending()


def test_retry_after_seconds():
    now = time.time()
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert 29 <= retry_after_seconds(formatdate(now + 30, usegmt=True), now=now) <= 30
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_format_size():
    assert format_size(10 * 1024 * 1024) == "10 MB"
    assert format_size(1536) == "1.5 KB"
    assert format_size(300) == "300 bytes"


def test_host_gate_spaces_starts_and_limits_slots():
    async def run() -> tuple[list[float], int]:
        gate = HostGate(limit=2, delay=0.05)
        starts: list[float] = []
        busy = 0
        peak = 0

        async def request() -> None:
            nonlocal busy, peak
            async with gate.slot():
                starts.append(time.monotonic())
                busy += 1
                peak = max(peak, busy)
                await asyncio.sleep(0.02)
                busy -= 1

        await asyncio.gather(*(request() for _ in range(5)))
        return starts, peak

    starts, peak = asyncio.run(run())
    assert peak <= 2
    assert min(b - a for a, b in pairwise(starts)) >= 0.045
