"""Exact vector search over an in-memory copy of a SQLite shelf's vectors.

sqlite-vec's vec0 scans every stored vector through SQLite on each query
(about 170 ms at 100 000 chunks here); the same exact search as one
float32 matrix product takes a few milliseconds. A long-lived process (the
server, the MCP server, `search --batch`) loads the vectors once and then
follows changes: a chunk is known by (id, embed hash), so a rewritten row
that reuses an id is reloaded, and only vectors that are new or changed are
read again. Memory: 4 × dim bytes per chunk (154 MB at 100 000 × 384).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import apsw
import numpy as np

_FULL_RELOAD_SHARE = 0.2
"""Past this share of changed chunks one scan of the vector table beats point lookups."""


class VectorMatrix:
    """The embedded chunks of one shelf as a matrix, kept in step with the shelf on every search.

    Args:
        conn: the shelf's connection (shared with its store; calls are serialised by a lock).
        dim: the shelf's vector size.
    """

    def __init__(self, conn: apsw.Connection, dim: int) -> None:
        self.conn = conn
        self.dim = dim
        self._lock = threading.Lock()
        self._ids = np.zeros(0, dtype=np.int64)
        self._hashes: list[str] = []
        self._sources = np.zeros(0, dtype=object)
        self._matrix = np.zeros((0, dim), dtype=np.float32)
        self._data_version: int | None = None
        self._stale = True

    def mark_stale(self) -> None:
        """Note that this connection wrote to the shelf (its own commits do not change data_version)."""
        self._stale = True

    def search(self, vector: np.ndarray, sources: Sequence[str] = (), limit: int = 100) -> list[tuple[int, float]]:
        """Return up to `limit` (chunk id, cosine similarity) pairs, best first, from `sources` or all."""
        with self._lock:
            self._sync()
            scores = self._matrix @ _unit(np.asarray(vector, dtype=np.float32))
            if sources:
                scores = np.where(np.isin(self._sources, list(sources)), scores, -np.inf)
            count = min(limit, int(np.isfinite(scores).sum()))
            if count == 0:
                return []
            top = np.argpartition(-scores, count - 1)[:count]
            top = top[np.lexsort((self._ids[top], -scores[top]))]  # ties (shared vectors): lower id first
            return [(int(self._ids[i]), float(scores[i])) for i in top]

    def _sync(self) -> None:
        version = self.conn.execute("PRAGMA data_version").fetchall()[0][0]
        if not self._stale and version == self._data_version:
            return
        # Only id and embed_hash: the (embed_hash, embedded) index covers them, so this reads the
        # index, not the chunk texts (50x faster than also asking for the source).
        rows = self.conn.execute("SELECT id, embed_hash FROM chunks INDEXED BY chunks_by_hash WHERE embedded = 1")
        self._apply(rows.fetchall())
        self._data_version, self._stale = version, False

    def _apply(self, rows: list[tuple[int, str]]) -> None:
        known = {(int(i), h): n for n, (i, h) in enumerate(zip(self._ids.tolist(), self._hashes))}
        keep = [known[row] for row in rows if row in known]
        new = [row for row in rows if row not in known]
        if not new and len(keep) == len(self._ids):
            return
        stored = self._read_vectors([i for i, _ in new], full=len(new) > _FULL_RELOAD_SHARE * max(len(rows), 1))
        new = [(i, h) for i, h in new if i in stored]
        kept = np.asarray(keep, dtype=np.int64)
        self._ids = np.concatenate([self._ids[kept], np.asarray([i for i, _ in new], dtype=np.int64)])
        self._hashes = [self._hashes[n] for n in keep] + [h for _, h in new]
        self._sources = np.concatenate([self._sources[kept], np.asarray([stored[i][1] for i, _ in new], dtype=object)])
        fresh = [_unit(stored[i][0]) for i, _ in new]
        self._matrix = np.concatenate([self._matrix[kept], np.stack(fresh) if fresh else np.zeros((0, self.dim), np.float32)])

    def _read_vectors(self, ids: list[int], *, full: bool) -> dict[int, tuple[np.ndarray, str]]:
        """Return {chunk id: (vector, source)} of the stored vectors of `ids` (one table scan when `full`)."""
        query = "SELECT chunk_id, embedding, source FROM chunk_vectors"
        if full:
            wanted = set(ids)
            rows = [row for row in self.conn.execute(query) if row[0] in wanted]
        else:
            rows = [row for chunk_id in ids for row in self.conn.execute(query + " WHERE chunk_id = ?", (chunk_id,))]
        return {i: (np.frombuffer(blob, dtype=np.float32), source) for i, blob, source in rows}


def _unit(vector: np.ndarray) -> np.ndarray:
    """Return `vector` scaled to length 1, as cosine similarity needs (imported records may not be)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
