"""A crawl worker process for test_shared_politeness.py: GETs URLs through `SharedHostGates`.

    python gate_worker.py '{"dsn": ..., "urls": [...], "delay": 1.0, "per_host": 4, "max_hold": 300}'

Opens the gates (pool and table) and prints "ready", so start-up time stays out of the
measurements; then waits for a line on stdin, sends every GET at once (the gates decide
when each goes out) and prints "done" with the statuses.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx

from docshelf.crawl.base import CrawlOptions
from docshelf.crawl.fetcher import Fetcher
from docshelf.crawl.shared_politeness import SharedHostGates


async def main(config: dict[str, Any]) -> None:
    options = CrawlOptions(timeout=120.0, retries=0, per_host=config["per_host"])
    gates = SharedHostGates(config["dsn"], config["per_host"], max_hold=config["max_hold"], poll=0.05)
    async with gates, httpx.AsyncClient(trust_env=False) as client:
        fetcher = Fetcher(client, options, gates)
        for url in config["urls"]:
            gates.for_url(url).delay = config["delay"]
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        replies = await asyncio.gather(*(fetcher.get(url) for url in config["urls"]))
    print("done", *(reply.status for reply in replies), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
