"""Per-host politeness: at most N requests in flight, and request starts spaced by the Crawl-delay.

`HostGates` keeps that state in this process. `Gates` and `Gate` are the interface the
fetcher uses, so a crawl whose workers share one host across processes can pass
`docshelf.crawl.shared_politeness.SharedHostGates` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from docshelf.crawl.urls import host


class Gate(Protocol):
    """Admits requests to one host."""

    delay: float
    """Seconds between request starts (robots.txt Crawl-delay); 0 for none."""

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Wait until a request to the host may start, and hold its place while it runs."""
        ...

    async def pause(self, seconds: float) -> None:
        """Hold back every request to the host for `seconds` (a server's Retry-After)."""
        ...


class Gates(Protocol):
    """Hands out the gate of each host."""

    def for_url(self, url: str) -> Gate:
        """Return the gate of the URL's host."""
        ...


class HostGate:
    """Admits requests to one host: `limit` at a time, each start at least `delay` seconds after the last."""

    def __init__(self, limit: int, delay: float = 0.0) -> None:
        self.delay = delay
        """Seconds between request starts (robots.txt Crawl-delay); 0 for none."""
        self._slots = asyncio.Semaphore(limit)
        self._turn = asyncio.Lock()
        self._next_start = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot and this host's next start time, then hold the slot for one request."""
        async with self._slots:
            await self._wait_turn()
            yield

    async def pause(self, seconds: float) -> None:
        """Hold back every request to this host for `seconds` (a server's Retry-After)."""
        loop = asyncio.get_running_loop()
        self._next_start = max(self._next_start, loop.time() + seconds)

    async def _wait_turn(self) -> None:
        """Sleep until the next start time, then book the one after it."""
        # The lock queues waiters in order, so starts are spaced even when many requests wait at once.
        async with self._turn:
            loop = asyncio.get_running_loop()
            wait = self._next_start - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_start = max(self._next_start, loop.time()) + self.delay


class HostGates:
    """One `HostGate` per host, created on first use."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._gates: dict[str, HostGate] = {}

    def for_url(self, url: str) -> HostGate:
        """Return the gate of the URL's host."""
        key = host(url)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = HostGate(self._per_host)
        return gate
