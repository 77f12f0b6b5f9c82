"""The frontier: URLs waiting to be fetched, breadth first, each handed out and reported once."""

from __future__ import annotations

from collections import deque


class Frontier:
    """A first-in-first-out queue of URLs with their depth, that never hands out a URL twice.

    A URL is *taken* when it is handed out for fetching and *claimed* when an outcome is
    reported under it. Claims also cover URLs reached another way (a redirect target, a
    canonical URL), so a page reported once is neither fetched nor reported again.
    """

    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self._depths: dict[str, int] = {}
        self._taken: set[str] = set()
        self._claimed: set[str] = set()

    def add(self, url: str, depth: int) -> None:
        """Queue `url` at `depth`, unless it was seen before; a queued URL keeps its smallest depth."""
        if url in self._depths:
            self._depths[url] = min(self._depths[url], depth)
        elif url not in self._taken and url not in self._claimed:
            self._depths[url] = depth
            self._queue.append(url)

    def pop(self) -> tuple[str, int] | None:
        """Return the next URL to fetch and its depth, or None when none is waiting."""
        while self._queue:
            url = self._queue.popleft()
            depth = self._depths.pop(url)
            if url not in self._claimed:
                self._taken.add(url)
                return url, depth
        return None

    def claim(self, url: str) -> bool:
        """Record that `url` is accounted for (reported, or an alias of a reported page); False if it was."""
        if url in self._claimed:
            return False
        self._claimed.add(url)
        return True

    def has_pending(self) -> bool:
        """Return True while a queued URL is still to be fetched."""
        return any(url not in self._claimed for url in self._queue)
