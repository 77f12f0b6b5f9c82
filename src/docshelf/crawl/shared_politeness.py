"""Per-host politeness kept in PostgreSQL, so crawl workers on many machines are polite together.

`SharedHostGates` has the interface of `HostGates` (`for_url(url).slot()`, `.pause()`,
a settable `.delay`), but its state lives in the database every worker shares:

Spacing. Table `docshelf_crawl_hosts` holds one row per host with `next_start`, the
earliest moment the next request to that host may start. A request books its start in
one statement, an `INSERT … ON CONFLICT DO UPDATE … RETURNING` (the row lock makes
concurrent bookings queue): start = greatest(now, next_start), next_start = start +
delay. "Now" is always the database's `clock_timestamp()`, so machines whose clocks
disagree still space their requests correctly; the worker only sleeps the returned
number of seconds. `pause()` moves `next_start` forward for everyone.

Limit. A host has `per_host` slots, session-level advisory locks on (hash of the host,
slot number). A request holds one, on a pooled connection kept for the request's whole
duration, and takes the slot *before* booking its start, so the time it waits for a
slot can never eat into the spacing. Advisory locks were chosen over lease rows with an
expiry because they belong to a session, so they go when it goes: a killed worker's
socket closes and PostgreSQL frees its slots at once, without a lease length to guess.
The two cases where the session would outlive its worker, a machine gone from the
network and a process hung but alive, are bounded by `idle_session_timeout`
(PostgreSQL 14 and later), set only while a slot is held, to the wait for the booked
start plus `max_hold`: the server ends a session that sits idle that long, which frees
its slot. A request that legitimately runs longer than `max_hold` loses its slot the
same way, so `max_hold` must exceed the crawl's request timeout.

The two-key advisory lock space is separate from the one-key space the store locks in
(`pg_advisory_xact_lock(bigint)`), so the two never collide. Two hosts whose 32-bit
hashes collide would merely share their slots.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

try:
    import psycopg
    from psycopg.conninfo import make_conninfo
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"shared crawl politeness needs psycopg and psycopg-pool ({exc.name} is missing): "
        "pip install 'docshelf[postgres]'"
    ) from exc

from docshelf.crawl.urls import host

logger = logging.getLogger(__name__)

SCHEMA_LOCK = "docshelf:crawl-hosts-schema"

CREATE_HOSTS = """
CREATE TABLE IF NOT EXISTS docshelf_crawl_hosts (
    host text PRIMARY KEY,
    next_start timestamptz NOT NULL,
    delay float8 NOT NULL DEFAULT 0
)
"""

# The WHERE runs row by row under LIMIT 1, so at most one slot is taken; the idle timeout
# is set only when one is.
TAKE_SLOT = """
SELECT slot, set_config('idle_session_timeout', (%(hold)s * 1000)::bigint::text, false)
  FROM generate_series(0, %(limit)s - 1) AS slot
 WHERE pg_try_advisory_lock(%(key)s, slot)
 LIMIT 1
"""

RELEASE_SLOT = "SELECT pg_advisory_unlock(%(key)s, %(slot)s), set_config('idle_session_timeout', '0', false)"

# Returns the seconds to wait for the booked start, and lets the session idle that much
# longer before the server ends it: `max_hold` counts from the start of the request.
# A worker that has not read the host's robots.txt yet (its first request is that file) books
# with the delay the row holds, which the last worker that read robots.txt wrote there.
BOOK_START = """
WITH booked AS (
    INSERT INTO docshelf_crawl_hosts AS h (host, next_start, delay)
    VALUES (%(host)s, clock_timestamp() + make_interval(secs => coalesce(%(delay)s, 0)), coalesce(%(delay)s, 0))
    ON CONFLICT (host) DO UPDATE
       SET next_start = greatest(h.next_start, clock_timestamp())
                        + make_interval(secs => coalesce(%(delay)s, h.delay)),
           delay = coalesce(%(delay)s, h.delay)
    RETURNING greatest(
        extract(epoch FROM h.next_start - make_interval(secs => h.delay) - clock_timestamp())::float8, 0
    ) AS wait, h.delay
)
SELECT wait, set_config('idle_session_timeout', ((wait + %(hold)s) * 1000)::bigint::text, false), delay
  FROM booked
"""

# A request that woke late (a busy machine) pushes the next start back by as much: the delay
# then holds between the requests as they really leave, not only as they were booked.
STARTED = """
UPDATE docshelf_crawl_hosts SET next_start = greatest(next_start, clock_timestamp() + make_interval(secs => %(delay)s))
 WHERE host = %(host)s
"""

PAUSE_HOST = """
INSERT INTO docshelf_crawl_hosts AS h (host, next_start)
VALUES (%(host)s, clock_timestamp() + make_interval(secs => %(seconds)s))
ON CONFLICT (host) DO UPDATE SET next_start = greatest(h.next_start, excluded.next_start)
"""


async def ensure_schema(conn: psycopg.AsyncConnection) -> None:
    """Create `docshelf_crawl_hosts` when missing.

    Under an advisory lock, because concurrent `CREATE TABLE IF NOT EXISTS` can still
    fail on the catalog's unique index when many workers start at once.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (SCHEMA_LOCK,))
        await conn.execute(CREATE_HOSTS)


def host_key(name: str) -> int:
    """Return the signed 32-bit advisory lock key of a host (stable across processes, unlike hash())."""
    digest = hashlib.blake2b(f"docshelf:crawl-host:{name}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class SharedHostGate:
    """Admits requests to one host, counting the requests of every worker sharing the database."""

    def __init__(self, gates: SharedHostGates, name: str, limit: int) -> None:
        self._delay: float | None = None
        self._gates = gates
        self._host = name
        self._key = host_key(name)
        self._limit = limit
        # No point in more of this process's requests polling for a slot than there are slots.
        self._local = asyncio.Semaphore(limit)

    @property
    def delay(self) -> float:
        """Seconds between request starts (robots.txt Crawl-delay); 0 for none."""
        return self._delay or 0.0

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay = seconds

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Take one of the host's slots, wait for the booked start, and hold the slot for one request."""
        async with self._local:
            pool = await self._gates.pool()
            conn, slot = await self._take_slot(pool)
            try:
                await self._wait_turn(conn)
                yield
            finally:
                await self._release(pool, conn, slot)

    async def pause(self, seconds: float) -> None:
        """Hold back every worker's requests to this host for `seconds` (a server's Retry-After)."""
        pool = await self._gates.pool()
        async with pool.connection() as conn:
            await conn.execute(PAUSE_HOST, {"host": self._host, "seconds": seconds})

    async def _take_slot(self, pool: AsyncConnectionPool) -> tuple[psycopg.AsyncConnection, int]:
        """Return a connection holding one of the host's advisory-lock slots, polling until one is free."""
        params = {"limit": self._limit, "key": self._key, "hold": self._gates.max_hold}
        while True:
            conn = await pool.getconn()
            try:
                row = await (await conn.execute(TAKE_SLOT, params)).fetchone()
            except BaseException:
                # Cancelled, perhaps after the server took a slot: end the session, which frees it.
                await conn.close()
                await pool.putconn(conn)
                raise
            if row is not None:
                return conn, int(row[0])
            # Between attempts the connection goes back, so waiting requests do not starve the pool.
            await pool.putconn(conn)
            await asyncio.sleep(self._gates.poll)

    async def _wait_turn(self, conn: psycopg.AsyncConnection) -> None:
        """Book this request's start in the host's row, then sleep until it."""
        # None until robots.txt is read: then the delay other workers found holds.
        params = {"host": self._host, "delay": self._delay, "hold": self._gates.max_hold}
        row = await (await conn.execute(BOOK_START, params)).fetchone()
        if row is None:
            return
        wait, _, delay = row
        if wait > 0:
            await asyncio.sleep(wait)
        if delay > 0:
            await conn.execute(STARTED, {"host": self._host, "delay": delay})

    async def _release(self, pool: AsyncConnectionPool, conn: psycopg.AsyncConnection, slot: int) -> None:
        """Free the slot and return the connection; close the session when unsure the lock went."""
        try:
            await conn.execute(RELEASE_SLOT, {"key": self._key, "slot": slot})
        except psycopg.Error as exc:
            # Most likely the server ended the session after `max_hold`: the slot is free already.
            logger.warning("releasing a crawl slot of %s failed (%s); closing its session", self._host, exc)
            await conn.close()
        except BaseException:
            # Cancelled mid-release: a pooled session must never keep a slot, so end it.
            await conn.close()
            raise
        finally:
            await pool.putconn(conn)


class SharedHostGates:
    """One `SharedHostGate` per host, all backed by one PostgreSQL database.

    Opens its connection pool (and creates its table) on first use; `close()` it, or use
    `async with`, in the event loop that used it.

    Args:
        dsn: a `postgresql://` URL or libpq connection string.
        per_host: requests in flight per host across every worker.
        max_connections: the pool's size; a held slot keeps a connection, so give at
            least the crawl's concurrency plus its render concurrency.
        max_hold: seconds a request may hold its slot once started before the server
            ends its session, freeing it; bounds what a hung or vanished worker can block.
        poll: seconds between attempts to take a slot while all are held.
    """

    def __init__(
        self,
        dsn: str,
        per_host: int = 4,
        *,
        max_connections: int = 10,
        max_hold: float = 300.0,
        poll: float = 0.1,
    ) -> None:
        self.max_hold = max_hold
        self.poll = poll
        self._dsn = dsn
        self._per_host = per_host
        self._max_connections = max_connections
        self._gates: dict[str, SharedHostGate] = {}
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()

    def for_url(self, url: str) -> SharedHostGate:
        """Return the gate of the URL's host."""
        key = host(url)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = SharedHostGate(self, key, self._per_host)
        return gate

    async def pool(self) -> AsyncConnectionPool:
        """Return the open connection pool, opening it and creating the table the first time."""
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    make_conninfo(self._dsn, connect_timeout=10, application_name="docshelf-crawl-gates"),
                    min_size=1,
                    max_size=self._max_connections,
                    kwargs={"autocommit": True},
                    # Connections free up as requests end, so waiting for one is waiting for a slot.
                    timeout=self.max_hold,
                    open=False,
                )
                await pool.open(wait=True, timeout=30)
                try:
                    async with pool.connection() as conn:
                        await ensure_schema(conn)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        """Close the connection pool (its sessions' slots go with them)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> Self:
        await self.pool()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
