"""Whole chunks in and out of a shelf — text, embed hash, vector — and `docshelf copy` between shelves.

The `Store` protocol serves the pipeline and search, which never need a
chunk's vector back. Export, import and copy do, so each backend offers
`ChunkAccess`: the PostgreSQL store implements it itself; for the SQLite
store it is an adapter here over its documented tables (`chunks`,
`chunk_vectors`). Vectors move as float32 arrays, exactly as stored, and are
never recomputed.

Record texts: a record's embedding and metadata are text, and the stores keep
values (float32 vectors; parsed JSON). When a record's text is not what the
writer would print for those values (more float digits than float32 holds,
other spacing, other key order), the original text is kept beside the chunk
and used on export for as long as it still says what the stored values say.
Records written by the origin and by docshelf never need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import apsw
import numpy as np

from docshelf.errors import ConfigError, StoreError
from docshelf.ingest import attach_inbound_text
from docshelf.models import Chunk, Page, PageInfo, Source
from docshelf.store.base import BulkLoader, SourcePage, Store
from docshelf.store.sqlite import SQLiteStore

PAGE_BATCH = 200
"""Pages listed, copied and vector-stored per round trip."""


@dataclass
class StoredChunk:
    """A chunk as a shelf holds it, with everything needed to write it elsewhere unchanged."""

    chunk: Chunk
    embed_hash: str
    vector: np.ndarray | None = None
    """float32, as stored; None while the chunk waits for its embedding."""
    texts: dict[str, str] = field(default_factory=dict)
    """Original record texts ("embedding", "metadata") kept at import, when the values alone cannot reproduce them;
    "embedding_model" is `records.MODEL_ABSENT` for a record that did not name its vector's model."""


StoredRow = tuple[Chunk, str, "np.ndarray | None", dict[str, str]]
"""(chunk, embed_hash, vector, record texts), as a backend returns a stored chunk."""


@runtime_checkable
class ChunkAccess(Protocol):
    """Reading and keeping whole chunks of a page (what export, import and copy need beyond `Store`)."""

    def stored_chunks(self, url: str) -> list[StoredRow]:
        """Return the page's chunks in order as (chunk, embed_hash, vector, texts)."""
        ...

    def keep_record_texts(self, url: str, texts: dict[int, dict[str, str]]) -> None:
        """Replace the record texts kept for the page's chunks (by chunk number)."""
        ...


def chunk_access(store: Store) -> ChunkAccess:
    """Return the ChunkAccess of a shelf: the store itself when it has one, else an adapter."""
    if isinstance(store, SQLiteStore):
        return SQLiteChunkAccess(store)
    if isinstance(store, ChunkAccess):
        return store
    raise ConfigError(f"shelf {store.location}: this backend cannot export or copy whole chunks")


def stored_chunks(access: ChunkAccess, url: str) -> list[StoredChunk]:
    """Return a page's chunks with their hashes, vectors and kept record texts."""
    return [StoredChunk(*row) for row in access.stored_chunks(url)]


class SQLiteChunkAccess:
    """ChunkAccess for the SQLite shelf, over its `chunks` and `chunk_vectors` tables.

    Record texts live in the `record_texts` table (migration m003), keyed by
    (url, chunk_number); a row outlives a re-crawl of its page but is then
    ignored, because export uses it only while it matches the stored values.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def stored_chunks(self, url: str) -> list[StoredRow]:
        chunks = self.store.get_chunks(url)
        rows = self._query("SELECT id, embed_hash, embedded FROM chunks WHERE url = ? ORDER BY chunk_number", (url,))
        texts = self._texts(url)
        return [
            (chunk, embed_hash, self._vector(chunk_id) if embedded else None, texts.get(chunk.chunk_number, {}))
            for chunk, (chunk_id, embed_hash, embedded) in zip(chunks, rows)
        ]

    def keep_record_texts(self, url: str, texts: dict[int, dict[str, str]]) -> None:
        with self.store.atomic():
            self.store.conn.execute("DELETE FROM record_texts WHERE url = ?", (url,))
            for number, kept in texts.items():
                self.store.conn.execute(
                    "INSERT INTO record_texts(url, chunk_number, embedding, metadata, embedding_model)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (url, number, kept.get("embedding"), kept.get("metadata"), kept.get("embedding_model")),
                )

    def _vector(self, chunk_id: int) -> np.ndarray | None:
        rows = self._query("SELECT embedding FROM chunk_vectors WHERE chunk_id = ?", (chunk_id,))
        return np.frombuffer(rows[0][0], dtype=np.float32).copy() if rows else None

    def _texts(self, url: str) -> dict[int, dict[str, str]]:
        rows = self._query(
            "SELECT chunk_number, embedding, metadata, embedding_model FROM record_texts WHERE url = ?", (url,)
        )
        return {
            n: {k: v for k, v in (("embedding", e), ("metadata", m), ("embedding_model", model)) if v}
            for n, e, m, model in rows
        }

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return list(self.store.conn.execute(sql, params))
        except apsw.Error as exc:
            raise StoreError(f"shelf {self.store.location}: reading chunks failed: {exc}") from exc


@dataclass
class CopySummary:
    """What `docshelf copy` moved."""

    sources: int = 0
    pages: int = 0
    chunks: int = 0
    vectors: int = 0

    def to_json(self) -> dict[str, int]:
        return {"sources": self.sources, "pages": self.pages, "chunks": self.chunks, "vectors": self.vectors}


def iter_pages(store: Store, source: str, batch: int = PAGE_BATCH) -> Iterator[list[PageInfo]]:
    """Yield a source's pages in URL order, `batch` at a time."""
    offset = 0
    while True:
        pages = store.list_pages(source, limit=batch, offset=offset)
        if pages:
            yield pages
        if len(pages) < batch:
            return
        offset += batch


def copy_shelf(src: Store, dst: Store, *, on_page: Callable[[str], None] | None = None) -> CopySummary:
    """Copy every source, page, chunk and vector of `src` into `dst`; return the counts.

    The destination is bound to the source shelf's embedding model first, so
    a mismatch fails before anything is written. Pages already in `dst` are
    replaced, `PAGE_BATCH` pages (with their vectors) per transaction. A
    PostgreSQL destination with no vectors yet builds its HNSW index once, at
    the end (`PostgresStore.bulk_load`).

    Raises:
        ModelMismatchError: `dst` holds vectors of another model.
    """
    if src.location == dst.location:
        raise ConfigError(f"--from and --to are the same shelf ({src.location})")
    identity = src.embedder_identity()
    if identity is not None:
        dst.bind_embedder(*identity)
    src_access, dst_access = chunk_access(src), chunk_access(dst)
    summary = CopySummary()
    with _bulk_load(dst):
        for stats in src.list_sources():
            _copy_source(src, dst, src_access, dst_access, stats.source, summary, on_page)
    return summary


def _bulk_load(store: Store) -> AbstractContextManager[None]:
    """Return the store's bulk-load context when it has one (PostgreSQL builds its vector index at the end)."""
    return store.bulk_load() if isinstance(store, BulkLoader) else nullcontext()


def _copy_source(src: Store, dst: Store, src_access: ChunkAccess, dst_access: ChunkAccess, source: Source,
                 summary: CopySummary, on_page: Callable[[str], None] | None) -> None:
    """Copy one source with its pages, chunks and vectors, adding what was copied to `summary`."""
    dst.upsert_source(source)
    summary.sources += 1
    links = src.page_links(source.name)
    for infos in iter_pages(src, source.name):
        batch = [(info, stored_chunks(src_access, info.url)) for info in infos]
        _copy_pages(src, dst, dst_access, batch, links)
        for info, chunks in batch:
            summary.pages += 1
            summary.chunks += len(chunks)
            summary.vectors += sum(c.vector is not None for c in chunks)
            if on_page is not None:
                on_page(info.url)
    # Derived from the pages just copied, as a crawl derives it: the destination indexes it its own way.
    attach_inbound_text(dst, source.name)


def _copy_pages(src: Store, dst: Store, dst_access: ChunkAccess, batch: list[tuple[PageInfo, list[StoredChunk]]],
                links: dict[str, list[str]]) -> None:
    """Write a batch of pages with their chunks and vectors in one transaction, then their kept record texts."""
    dst.write_pages([
        SourcePage(_page(src, info, links.get(info.url)), [c.chunk for c in chunks], [c.embed_hash for c in chunks],
                   [c.vector for c in chunks])
        for info, chunks in batch
    ])
    for info, chunks in batch:
        texts = {c.chunk.chunk_number: c.texts for c in chunks if c.texts}
        if texts:
            dst_access.keep_record_texts(info.url, texts)


def _page(src: Store, info: PageInfo, links: list[str] | None) -> Page:
    """Return a stored page as it is written elsewhere: everything `PageInfo` has, its Markdown and links."""
    return Page(
        url=info.url, source=info.source, title=info.title, markdown=src.get_page_markdown(info.url) or "",
        content_hash=info.content_hash or "", fetched_at=info.fetched_at, etag=info.etag,
        last_modified=info.last_modified, status=info.status, error=info.error,
        changed_at=info.changed_at, links=links,
    )
