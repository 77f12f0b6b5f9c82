"""robots.txt: fetched once per host, parsed by protego, read as allow/deny, Crawl-delay and sitemaps."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from protego import Protego

from docshelf.access import redact_url
from docshelf.crawl.fetcher import Fetcher
from docshelf.crawl.urls import host, origin
from docshelf.errors import CrawlError

logger = logging.getLogger(__name__)

# RFC 9309 asks crawlers to read at least 500 KiB of a robots.txt; anything past that is ignored.
ROBOTS_MAX_BYTES = 512 * 1024


@dataclass
class RobotsPolicy:
    """What one host's robots.txt says to a user agent; an empty policy allows everything."""

    rules: Protego | None = None
    agent: str = "docshelf"
    sitemaps: list[str] = field(default_factory=list)

    def allows(self, url: str) -> bool:
        """Return True when robots.txt lets the agent fetch `url`."""
        return self.rules is None or bool(self.rules.can_fetch(url, self.agent))

    @property
    def crawl_delay(self) -> float:
        """Return the seconds to leave between request starts (0 when robots.txt sets none)."""
        delay = self.rules.crawl_delay(self.agent) if self.rules else None
        return float(delay or 0.0)


class RobotsCache:
    """Fetches each host's robots.txt once and applies its Crawl-delay to the host's gate.

    A 4xx robots.txt allows everything (RFC 9309); so, with a warning in the log, does a
    5xx or an unreachable one, since refusing the whole crawl would help nobody.
    """

    def __init__(self, fetcher: Fetcher, agent: str, *, enabled: bool = True,
                 known: dict[str, RobotsPolicy] | None = None) -> None:
        self._fetcher = fetcher
        self._agent = agent
        self._enabled = enabled
        self._policies: dict[str, RobotsPolicy] = known if known is not None else {}
        """By host; a worker passes the same dict to the crawls of one job's batches, to read robots.txt once."""
        self._gated: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    async def policy(self, url: str) -> RobotsPolicy:
        """Return the robots policy for the host of `url`, fetching its robots.txt the first time."""
        key = host(url)
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._policies:
                self._policies[key] = (
                    await self._load(url) if self._enabled else RobotsPolicy(agent=self._agent)
                )
            if key not in self._gated:
                self._gated.add(key)
                self._fetcher.gates.for_url(url).delay = self._policies[key].crawl_delay
        return self._policies[key]

    async def reason_to_skip(self, url: str) -> str | None:
        """Return "robots.txt disallows" when robots.txt forbids `url`, else None."""
        return None if (await self.policy(url)).allows(url) else "robots.txt disallows"

    async def _load(self, url: str) -> RobotsPolicy:
        """Return the policy parsed from the robots.txt at the origin of `url`."""
        robots_url = f"{origin(url)}/robots.txt"
        try:
            reply = await self._fetcher.get(robots_url, max_bytes=ROBOTS_MAX_BYTES)
        except CrawlError as exc:
            logger.warning(
                "%s unreadable (%s); crawling as if it allowed everything", redact_url(robots_url), exc.reason
            )
            return RobotsPolicy(agent=self._agent)
        if reply.status >= 500:
            logger.warning(
                "%s answered HTTP %d; crawling as if it allowed everything", redact_url(robots_url), reply.status
            )
        if reply.status != 200:
            return RobotsPolicy(agent=self._agent)
        rules = Protego.parse(reply.body.decode("utf-8", errors="replace"))
        return RobotsPolicy(rules, self._agent, list(rules.sitemaps))
