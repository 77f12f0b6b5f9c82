"""Fixtures for crawler tests: real HTTP servers on 127.0.0.1 serving fixture sites and programmed routes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from docshelf.crawl import CrawlOptions, CrawlOutcome, CrawlRun, crawl
from docshelf.crawl.base import Validators
from servers import Server  # tests/conftest.py puts the tests folder on sys.path

SITES = Path(__file__).parents[1] / "fixtures" / "crawl"

FAST = CrawlOptions(timeout=2.0, retries=1, backoff=0.01, max_retry_after=2.0)
"""Options that keep failing fetches quick under test."""


@pytest.fixture
def serve() -> Iterator[Callable[[str | None], Server]]:
    """Return a function that starts a server for a fixture site (or an empty one, for routes only)."""
    servers: list[Server] = []

    def start(site: str | None = None) -> Server:
        server = Server(SITES / site if site else None).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(serve: Callable[[str | None], Server]) -> Server:
    """Return a running server with no folder: every path needs a route."""
    return serve(None)


def collect(
    root: str, options: CrawlOptions = FAST, validators: Validators | None = None
) -> tuple[list[CrawlOutcome], CrawlRun]:
    """Return every outcome of a crawl, in the order yielded, and the finished run."""

    async def run() -> tuple[list[CrawlOutcome], CrawlRun]:
        crawl_run = crawl(root, options, validators=validators)
        async with crawl_run:
            return [outcome async for outcome in crawl_run], crawl_run

    return asyncio.run(run())


@pytest.fixture
def fast() -> CrawlOptions:
    """Return options that keep failing fetches quick: short timeout, one retry, tiny backoff."""
    return FAST


@pytest.fixture(scope="session")
def crawl_all() -> Callable[..., tuple[list[CrawlOutcome], CrawlRun]]:
    """Return `collect`: run a crawl to the end, synchronously."""
    return collect


def by_url(outcomes: list[CrawlOutcome]) -> dict[str, CrawlOutcome]:
    """Return outcomes keyed by URL, failing if a URL was reported twice."""
    urls = [outcome.url for outcome in outcomes]
    assert len(urls) == len(set(urls)), f"a URL was reported twice: {urls}"
    return {outcome.url: outcome for outcome in outcomes}


@pytest.fixture(scope="session")
def index_outcomes() -> Callable[[list[CrawlOutcome]], dict[str, CrawlOutcome]]:
    """Return `by_url`."""
    return by_url
