"""A crawl's shared state in the database: its frontier of URLs with their outcomes, and the embedding claims.

Every worker reads and writes the same rows, so each step is one statement that is
right however many workers run it at once: a URL enters the frontier once (primary
key), an outcome is recorded once per URL (an upsert: a retried batch records it
again, harmlessly), and an embed hash is claimed by one task at a time (an upsert
that only takes over a claim of the same task, or one whose lease has run out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from psycopg_pool import ConnectionPool

EMBED_LEASE_SECONDS = 600
"""How long a claimed embedding batch stays claimed: a backstop, since the task that claimed it
takes it over again when it is retried after its worker died."""


class SharedFrontier:
    """The frontier, outcomes and embedding claims of the crawl jobs on one PostgreSQL shelf."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def add(self, job_id: str, pages: Sequence[tuple[str, int]], max_pages: int | None) -> tuple[list[tuple[str, int]], bool]:
        """Queue the pages not in the job's frontier yet, within `max_pages` in all; return those queued and
        whether the budget left some out."""
        if not pages:
            return [], False
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            # The job's row lock makes the budget check and the insert one step among all workers.
            cur.execute("SELECT 1 FROM docshelf_jobs WHERE id = %s FOR UPDATE", (job_id,))
            room = None
            if max_pages is not None:
                cur.execute("SELECT count(*) FROM docshelf_frontier WHERE job_id = %s", (job_id,))
                room = max(max_pages - cur.fetchone()[0], 0)  # type: ignore[index]
            urls = [url for url, _ in pages]
            cur.execute("SELECT url FROM docshelf_frontier WHERE job_id = %s AND url = ANY(%s)", (job_id, urls))
            present = {row[0] for row in cur.fetchall()}
            new = list({url: depth for url, depth in pages if url not in present}.items())
            truncated = room is not None and len(new) > room
            if room is not None:
                new = new[:room]
            if new:
                cur.executemany(
                    "INSERT INTO docshelf_frontier (job_id, url, depth) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [(job_id, url, depth) for url, depth in new],
                )
        return new, truncated

    def record(self, job_id: str, outcomes: Iterable[tuple[str, int, str, str | None]], worker: str) -> None:
        """Record the outcome of each (url, depth, status, reason) by `worker`: the URL is done, whoever queued it."""
        rows = [(job_id, url, depth, status, reason, worker) for url, depth, status, reason in outcomes]
        if not rows:
            return
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO docshelf_frontier (job_id, url, depth, outcome, reason, worker)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (job_id, url) DO UPDATE
                      SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason, worker = EXCLUDED.worker""",
                rows,
            )

    def outcome_counts(self, job_id: str) -> dict[str, int]:
        """Return how many URLs ended with each status so far."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT outcome, count(*) FROM docshelf_frontier WHERE job_id = %s AND outcome IS NOT NULL "
                "AND outcome <> 'duplicate' GROUP BY outcome", (job_id,)).fetchall()
        return {status: count for status, count in rows}

    def failures(self, job_id: str, limit: int = 200) -> list[dict[str, str]]:
        """Return the URLs that failed or were skipped, with their reasons."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT url, reason, outcome FROM docshelf_frontier WHERE job_id = %s AND outcome IN ('failed', 'skipped') "
                "ORDER BY url LIMIT %s", (job_id, limit)).fetchall()
        return [{"url": url, "reason": reason or "", "status": status} for url, reason, status in rows]

    def seen(self, job_id: str) -> set[str]:
        """Return every URL the job has an outcome for."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT url FROM docshelf_frontier WHERE job_id = %s AND outcome IS NOT NULL", (job_id,)).fetchall()
        return {row[0] for row in rows}

    def claim_embeddings(self, job_id: str, source: str, owner: int, limit: int) -> list[str]:
        """Claim up to `limit` embed hashes of `source` that lack a vector and no other task holds; return them.

        `owner` is the claiming task's queue id: a task retried after its worker died takes its
        own claims back at once, and others wait for the lease to run out.
        """
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                """WITH candidates AS (
                       SELECT DISTINCT c.embed_hash FROM site_pages c
                        WHERE c.source = %(source)s AND c.embedding IS NULL AND c.embed_hash <> ''
                          AND NOT EXISTS (SELECT 1 FROM docshelf_embed_claims k
                                           WHERE k.embed_hash = c.embed_hash AND k.owner <> %(owner)s
                                             AND (k.failed OR k.until > now()))
                        LIMIT %(limit)s)
                   INSERT INTO docshelf_embed_claims (embed_hash, job_id, owner, until)
                   SELECT embed_hash, %(job)s, %(owner)s, now() + make_interval(secs => %(lease)s) FROM candidates
                   ON CONFLICT (embed_hash) DO UPDATE
                      SET owner = EXCLUDED.owner, until = EXCLUDED.until, job_id = EXCLUDED.job_id
                    WHERE docshelf_embed_claims.owner = EXCLUDED.owner
                       OR (docshelf_embed_claims.until <= now() AND NOT docshelf_embed_claims.failed)
                   RETURNING embed_hash""",
                {"source": source, "owner": owner, "limit": limit, "job": job_id, "lease": EMBED_LEASE_SECONDS},
            ).fetchall()
        return [row[0] for row in rows]

    def release_embeddings(self, done: Sequence[str], failed: Sequence[str]) -> None:
        """Drop the claims of hashes now embedded; keep failed ones claimed for good, so nobody waits on them."""
        with self._pool.connection() as conn, conn.transaction():
            if done:
                conn.execute("DELETE FROM docshelf_embed_claims WHERE embed_hash = ANY(%s)", (list(done),))
            if failed:
                conn.execute("UPDATE docshelf_embed_claims SET failed = true WHERE embed_hash = ANY(%s)", (list(failed),))

    def work_left(self, job_id: str, source: str) -> bool:
        """Return True while a URL of the job waits for its outcome or a chunk of its source for its vector."""
        with self._pool.connection() as conn:
            row = conn.execute(
                """SELECT EXISTS (SELECT 1 FROM docshelf_frontier WHERE job_id = %(job)s AND outcome IS NULL)
                       OR EXISTS (SELECT 1 FROM site_pages c
                                   WHERE c.source = %(source)s AND c.embedding IS NULL AND c.embed_hash <> ''
                                     AND NOT EXISTS (SELECT 1 FROM docshelf_embed_claims k
                                                      WHERE k.embed_hash = c.embed_hash AND k.failed))""",
                {"job": job_id, "source": source},
            ).fetchone()
        return bool(row and row[0])

    def chunks_waiting(self, source: str) -> int:
        """Return how many chunks of `source` wait for a vector."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM site_pages WHERE source = %s AND embedding IS NULL AND embed_hash <> ''",
                (source,)).fetchone()
        return int(row[0]) if row else 0

    def stored_chunks(self, job_id: str) -> int:
        """Return how many chunks the pages this job stored with new content hold."""
        with self._pool.connection() as conn:
            row = conn.execute(
                """SELECT count(*) FROM site_pages c JOIN docshelf_frontier f ON f.url = c.url
                    WHERE f.job_id = %s AND f.outcome = 'ok'""", (job_id,)).fetchone()
        return int(row[0]) if row else 0

    def failed_embeddings(self, job_id: str) -> int:
        """Return how many embed hashes failed for good in this job."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM docshelf_embed_claims WHERE job_id = %s AND failed",
                               (job_id,)).fetchone()
        return int(row[0]) if row else 0
