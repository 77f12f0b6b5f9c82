"""The server shelf: PostgreSQL with pgvector (HNSW) and full-text search (tsvector, GIN).

The chunk table is the origin's `site_pages` (see `pg_migrations`), so a
Supabase database built by the origin is adopted as it is and its
`match_site_pages` keeps working. Every page write is one transaction and
takes only row locks plus an advisory lock on that page's URL, so several
`docshelf add` processes can fill one shelf at once, each on its own source.
Server errors become `StoreError` naming what docshelf was doing.
"""

from __future__ import annotations

import json
import random
import re
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.adapt import Dumper, Loader
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg.pq import Format
    from psycopg.types import TypeInfo
    from psycopg.types.json import Jsonb
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the PostgreSQL shelf needs psycopg and psycopg-pool ({exc.name} is missing): "
        "pip install 'docshelf[postgres]'"
    ) from exc

from docshelf.errors import ModelMismatchError, StoreError
from docshelf.models import (
    Chunk,
    Enrichment,
    Freshness,
    Page,
    PageChange,
    PageInfo,
    Source,
    SourceStats,
    utc_now,
)
from docshelf.records import MODELS_BY_DIM
from docshelf.store.base import NOT_EMBEDDED, SourcePage, sections_from_json
from docshelf.store.fts import chunk_headings, identifier_parts, query_terms
from docshelf.store.pg_migrations import apply_migrations

T = TypeVar("T")

HNSW_MAX_DIM = 2000
"""pgvector cannot build an HNSW index on wider `vector` columns; wider shelves search exactly."""

HNSW_INDEX = "docshelf_site_pages_embedding_hnsw"

BULK_INDEX_MEMORY = "1GB"
"""maintenance_work_mem for building the HNSW index after a bulk load: the graph of 100k 384-dim
vectors needs ~250 MB, and a build that outgrows its memory goes on several times slower."""

DEFERRED_INDEX_KEY = "vector_index_deferred"
"""docshelf_meta key present while a bulk load has the HNSW index dropped (see `PostgresStore.bulk_load`)."""

WRITE_RETRIES = 5
"""Attempts for a write that lost a deadlock or serialization race to another writer."""

_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b")
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


# -- vectors on the wire ----------------------------------------------------------
class _VectorDumper(Dumper):
    """Send a numpy array as pgvector's binary `vector` (int16 dim, int16 unused, float4 big-endian)."""

    format = Format.BINARY

    def dump(self, obj: np.ndarray) -> bytes:
        values = np.asarray(obj, dtype=">f4").ravel()
        return struct.pack(">HH", values.size, 0) + values.tobytes()


class _VectorTextDumper(Dumper):
    """Send a numpy array as a text `vector` ("[1.0,2.0]"); psycopg uses it inside arrays of vectors."""

    format = Format.TEXT

    def dump(self, obj: np.ndarray) -> bytes:
        values = np.asarray(obj, dtype=np.float32).ravel().tolist()
        return ("[" + ",".join(map(repr, values)) + "]").encode("ascii")


class _VectorBinaryLoader(Loader):
    """Read a binary `vector` as a float32 numpy array."""

    format = Format.BINARY

    def load(self, data: Any) -> np.ndarray:
        return np.frombuffer(bytes(data)[4:], dtype=">f4").astype(np.float32)


class _VectorTextLoader(Loader):
    """Read a text `vector` ("[1,2,3]") as a float32 numpy array."""

    format = Format.TEXT

    def load(self, data: Any) -> np.ndarray:
        text = bytes(data).decode("ascii").strip("[]")
        return np.array(text.split(",") if text else [], dtype=np.float32)


def _register_vector(conn: psycopg.Connection) -> None:
    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        raise StoreError("the pgvector extension is not installed in this database (CREATE EXTENSION vector)")
    info.register(conn)
    for dumper in (_VectorTextDumper, _VectorDumper):
        conn.adapters.register_dumper(np.ndarray, type(dumper.__name__, (dumper,), {"oid": info.oid}))
    conn.adapters.register_loader(info.oid, _VectorBinaryLoader)
    conn.adapters.register_loader(info.oid, _VectorTextLoader)


def public_location(dsn: str) -> str:
    """Return `dsn` without its password, for messages and `Store.location`."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return dsn.split("@")[-1]
    params.pop("password", None)
    host = params.get("host") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    user = f"{params['user']}@" if params.get("user") else ""
    return f"postgresql://{user}{host}{port}/{params.get('dbname', '')}"


def index_text(page_title: str, chunk: Chunk) -> tuple[str, str]:
    """Return (headings, terms): the extra text the full-text column indexes for a chunk.

    Headings (with the page title) rank like the SQLite shelf's headings
    column; terms are the parts of compound and dotted identifiers, so a
    question in words ("exist ok", "makedirs") finds `exist_ok` and `os.makedirs`.
    """
    headings = " ".join([page_title, *chunk_headings(chunk)])
    dotted = " ".join(m.group(0).replace(".", " ") for m in _DOTTED.finditer(chunk.content))
    return headings + " " + identifier_parts(headings), identifier_parts(chunk.content) + " " + dotted


def inbound_index_text(text: str) -> str:
    """Return the indexed form of a chunk's inbound link text: the text and its identifiers' parts, as for the body."""
    if not text:
        return ""
    dotted = " ".join(m.group(0).replace(".", " ") for m in _DOTTED.finditer(text))
    return f"{text} {identifier_parts(text)} {dotted}".rstrip()


class PostgresStore:
    """A shelf in a PostgreSQL database (pgvector required).

    Args:
        dsn: a `postgresql://` URL or libpq connection string.
        max_connections: the pool's size; a CLI process needs few.
    """

    def __init__(self, dsn: str, *, max_connections: int = 4) -> None:
        self.location = public_location(dsn)
        self._dim: int | None = None
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                apply_migrations(conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open PostgreSQL shelf {self.location}: {_message(exc)}") from exc
        self._pool = ConnectionPool(
            make_conninfo(dsn, connect_timeout=10),
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            configure=_register_vector,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=30)
            self._adopt_unowned_rows()
            self._finish_deferred_index()
            identity = self.embedder_identity()
        except BaseException as exc:
            self._pool.close()
            if isinstance(exc, psycopg.Error):
                raise StoreError(f"cannot open PostgreSQL shelf {self.location}: {_message(exc)}") from exc
            raise
        self._dim = identity[1] if identity else None

    # -- plumbing --------------------------------------------------------------
    def _run(self, purpose: str, work: Callable[[psycopg.Cursor], T], *, write: bool = True) -> T:
        """Return `work(cursor)` run in one transaction; retry lost deadlocks, translate server errors."""
        attempt = 1
        while True:
            try:
                with self._pool.connection() as conn, conn.transaction(), conn.cursor(binary=True) as cur:
                    if write:
                        # As the SQLite shelf's synchronous=NORMAL: a crash may lose the last
                        # writes (pages are re-crawled), never corrupt; commits skip the WAL flush wait.
                        cur.execute("SET LOCAL synchronous_commit = off")
                    return work(cur)
            except _RETRYABLE as exc:
                # The whole transaction is re-run: `work` computes everything it writes from scratch.
                if not write or attempt >= WRITE_RETRIES:
                    raise StoreError(f"PostgreSQL shelf {self.location}: {purpose} failed: {_message(exc)}") from exc
            except psycopg.Error as exc:
                raise StoreError(f"PostgreSQL shelf {self.location}: {purpose} failed: {_message(exc)}") from exc
            time.sleep(random.uniform(0.01, 0.05) * attempt)
            attempt += 1

    def _rows(self, purpose: str, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        """Return the rows of one read-only query."""

        def query(cur: psycopg.Cursor) -> list[tuple]:
            cur.execute(sql, params or None)
            return cur.fetchall()

        return self._run(purpose, query, write=False)

    def close(self) -> None:
        self._pool.close()

    # -- identity ------------------------------------------------------------
    def embedder_identity(self) -> tuple[str, int] | None:
        rows = self._rows(
            "reading the shelf's model", "SELECT key, value FROM docshelf_meta WHERE key IN ('embed_model', 'embed_dim')"
        )
        meta: dict[str, str] = dict(rows)
        model, dim = meta.get("embed_model"), meta.get("embed_dim")
        return (model, int(dim)) if model and dim else None

    def bind_embedder(self, model_id: str, dim: int) -> None:
        current = self.embedder_identity() or self._run(
            "recording the shelf's embedding model", lambda cur: self._bind(cur, model_id, dim)
        )
        if current != (model_id, dim):
            raise ModelMismatchError(
                f"shelf {self.location} was built with embedding model {current[0]} ({current[1]} dims); "
                f"it cannot take vectors of {model_id} ({dim} dims). Use --embedder {current[0]}, "
                "or another --db for the new model."
            )
        self._dim = dim

    def _bind(self, cur: psycopg.Cursor, model_id: str, dim: int) -> tuple[str, int]:
        """Record the model unless another process just did; fix the column's dimension; return the identity."""
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('docshelf:bind', 0))")
        cur.execute("SELECT key, value FROM docshelf_meta WHERE key IN ('embed_model', 'embed_dim')")
        meta: dict[str, str] = dict(cur.fetchall())
        if meta:
            return meta["embed_model"], int(meta["embed_dim"])
        column_dim = _embedding_column_dim(cur)
        if column_dim is not None and column_dim != dim:
            raise ModelMismatchError(
                f"shelf {self.location}: site_pages.embedding holds {column_dim}-dim vectors; "
                f"{model_id} makes {dim}-dim ones. Use another --db for this model."
            )
        cur.execute(
            "INSERT INTO docshelf_meta(key, value) VALUES ('embed_model', %s), ('embed_dim', %s)", (model_id, str(dim))
        )
        if column_dim is None:
            cur.execute(f"ALTER TABLE site_pages ALTER COLUMN embedding TYPE vector({int(dim)})")
        if dim <= HNSW_MAX_DIM:
            cur.execute(_CREATE_HNSW)
        return model_id, dim

    # -- bulk loads ------------------------------------------------------------
    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Write many vectors inside this block with the HNSW index built once at its end, where that is safe.

        Each vector inserted into a live HNSW index costs 1-2 ms, most of a copy's time;
        building the index over the loaded rows is several times faster and uses parallel
        workers. Only an index over no vectors at all (a new shelf) is dropped, so no one's
        searches lose an index they had: meanwhile vector search scans exactly. If the load
        is interrupted, the next open of the shelf builds the index (`_finish_deferred_index`).
        """
        deferred = self._run("preparing a bulk load", _drop_empty_vector_index)
        try:
            yield
        finally:
            if deferred:
                self._run("building the vector index", _build_deferred_index)

    # -- adoption --------------------------------------------------------------
    def _adopt_unowned_rows(self) -> None:
        """Give rows written by other tools (the origin's crawler) a source and a page, and the shelf a model.

        Runs at every open, and costs one index probe when there is nothing to adopt.
        """
        if self._rows("checking for unadopted rows", "SELECT EXISTS(SELECT 1 FROM site_pages WHERE source IS NULL)")[0][0]:
            self._run("adopting existing site_pages rows", _adopt_rows)
        if self.embedder_identity() is None:
            dim = self._run("reading the embedding column", _embedding_column_dim, write=False)
            if dim is not None and dim in MODELS_BY_DIM:
                self.bind_embedder(MODELS_BY_DIM[dim], dim)

    def _finish_deferred_index(self) -> None:
        """Build the HNSW index a bulk load dropped and did not get to build again (it was interrupted)."""
        if self._rows("checking the vector index", "SELECT EXISTS(SELECT 1 FROM docshelf_meta WHERE key = %s)",
                      (DEFERRED_INDEX_KEY,))[0][0]:
            self._run("building the vector index", _build_deferred_index)

    # -- sources -------------------------------------------------------------
    def upsert_source(self, source: Source) -> None:
        self._execute(
            f"saving source {source.name}",
            """INSERT INTO docshelf_sources(name, root, options, created_at, last_crawl_at, version, packages)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET root = excluded.root, options = excluded.options,
               last_crawl_at = COALESCE(excluded.last_crawl_at, docshelf_sources.last_crawl_at),
               version = excluded.version, packages = excluded.packages""",
            (source.name, source.root, Jsonb(source.options), source.created_at, source.last_crawl_at,
             source.version, Jsonb(source.packages)),
        )

    def get_source(self, name: str) -> Source | None:
        rows = self._rows(
            f"reading source {name}", f"SELECT {_SOURCE_COLUMNS} FROM docshelf_sources s WHERE s.name = %s", (name,)
        )
        return _source(rows[0]) if rows else None

    def source_names(self) -> list[str]:
        return [r[0] for r in self._rows("listing source names", 'SELECT name FROM docshelf_sources ORDER BY name COLLATE "C"')]

    def set_source_packages(self, name: str, packages: Sequence[str]) -> None:
        self._execute(f"saving the packages of {name}", "UPDATE docshelf_sources SET packages = %s WHERE name = %s",
                      (Jsonb(list(packages)), name))

    def list_sources(self) -> list[SourceStats]:
        rows = self._rows(
            "listing sources",
            f"""SELECT {_SOURCE_COLUMNS},
                   (SELECT count(*) FROM docshelf_pages p WHERE p.source = s.name AND p.status = 'ok'),
                   (SELECT count(*) FROM docshelf_pages p WHERE p.source = s.name AND p.status = 'failed'),
                   (SELECT count(*) FROM docshelf_pages p WHERE p.source = s.name AND p.status = 'skipped'),
                   (SELECT count(*) FROM site_pages c WHERE c.source = s.name),
                   (SELECT count(*) FROM site_pages c WHERE c.source = s.name AND c.embedding IS NOT NULL)
               FROM docshelf_sources s ORDER BY s.name COLLATE "C" """,
        )
        return [SourceStats(_source(r[:7]), *r[7:]) for r in rows]

    def remove_source(self, name: str) -> int:
        def remove(cur: psycopg.Cursor) -> int:
            cur.execute("SELECT url FROM docshelf_pages WHERE source = %s", (name,))
            urls = [r[0] for r in cur.fetchall()]
            cur.execute("DELETE FROM site_pages WHERE url = ANY(%s) OR source = %s", (urls, name))
            cur.execute("DELETE FROM docshelf_pages WHERE source = %s", (name,))
            cur.execute("DELETE FROM docshelf_sources WHERE name = %s", (name,))
            cur.execute("DELETE FROM docshelf_page_changes WHERE source = %s", (name,))
            return len(urls)

        return self._run(f"removing source {name}", remove)

    # -- pages ---------------------------------------------------------------
    def page_states(self, source: str) -> dict[str, PageInfo]:
        rows = self._rows(f"reading pages of {source}", _PAGE_INFO_SQL + " WHERE p.source = %s", (source,))
        return {r[0]: _page_info(r) for r in rows}

    def replace_page(self, page: Page, chunks: Sequence[Chunk], embed_hashes: Sequence[str]) -> int:
        if len(chunks) != len(embed_hashes):
            raise ValueError("one embed hash per chunk")
        return self.write_pages([SourcePage(page, list(chunks), list(embed_hashes))])

    def write_pages(self, pages: Sequence[SourcePage]) -> int:
        rows = _chunk_rows(pages)
        urls = sorted({item.page.url for item in pages})

        def write(cur: psycopg.Cursor) -> int:
            # Two writers of one URL would collide on (url, chunk_number); this serialises them
            # without touching other pages. Taken in URL order, so two batches cannot deadlock.
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('docshelf:page:' || u, 0))"
                " FROM (SELECT u FROM unnest(%s::text[]) u ORDER BY u) urls",
                (urls,),
            )
            missing = {row[_HASH] for row in rows if row[_VECTOR] is None and row[_HASH] != NOT_EMBEDDED}
            known = self._vectors_for(cur, missing)
            cur.execute("DELETE FROM site_pages WHERE url = ANY(%s)", (urls,))
            _upsert_pages(cur, [item.page for item in pages])
            return _copy_chunks(cur, [_with_known_vector(row, known) for row in rows])

        return self._run(f"writing page {urls[0]}" if len(urls) == 1 else f"writing {len(urls)} pages", write)

    def replace_source(self, source: Source, pages: Sequence[SourcePage]) -> int:
        rows = _chunk_rows(pages)

        def write(cur: psycopg.Cursor) -> int:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("docshelf:source:" + source.name,))
            cur.execute("SELECT url FROM docshelf_pages WHERE source = %s", (source.name,))
            urls = [r[0] for r in cur.fetchall()] + [item.page.url for item in pages]
            cur.execute("DELETE FROM site_pages WHERE url = ANY(%s) OR source = %s", (urls, source.name))
            cur.execute("DELETE FROM docshelf_pages WHERE source = %s", (source.name,))
            cur.execute(
                """INSERT INTO docshelf_sources(name, root, options, created_at, last_crawl_at, version, packages)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (name) DO UPDATE SET root = excluded.root, options = excluded.options,
                   created_at = excluded.created_at, last_crawl_at = excluded.last_crawl_at,
                   version = excluded.version, packages = excluded.packages""",
                (source.name, source.root, Jsonb(source.options), source.created_at, source.last_crawl_at,
                 source.version, Jsonb(source.packages)),
            )
            _upsert_pages(cur, [item.page for item in pages])
            return _copy_chunks(cur, rows)

        return self._run(f"replacing source {source.name}", write)

    def record_failure(self, page: Page) -> None:
        def write(cur: psycopg.Cursor) -> None:
            cur.execute(
                "UPDATE docshelf_pages SET status = %s, error = %s, fetched_at = %s WHERE url = %s",
                (page.status, page.error, page.fetched_at, page.url),
            )
            if cur.rowcount == 0:
                _upsert_page(cur, page)

        self._run(f"recording the failure of {page.url}", write)

    def touch_page(self, url: str, fetched_at: str) -> None:
        self._execute(
            f"marking {url} as seen",
            "UPDATE docshelf_pages SET fetched_at = %s, status = 'ok', error = NULL WHERE url = %s",
            (fetched_at, url),
        )

    def page_links(self, source: str) -> dict[str, list[str]]:
        rows = self._rows(f"reading the links of {source}",
                          "SELECT url, links FROM docshelf_pages WHERE source = %s AND links IS NOT NULL", (source,))
        return {url: list(links) for url, links in rows}

    def page_freshness(self, urls: Sequence[str]) -> dict[str, Freshness]:
        if not urls:
            return {}
        rows = self._rows("reading page dates",
                          "SELECT url, fetched_at, changed_at FROM docshelf_pages WHERE url = ANY(%s)", (list(urls),))
        return {url: Freshness(fetched, changed) for url, fetched, changed in rows}

    def record_changes(self, changes: Sequence[PageChange]) -> None:
        def write(cur: psycopg.Cursor) -> None:
            cur.executemany(
                "INSERT INTO docshelf_page_changes(source, url, change, diff_lines, at) VALUES (%s, %s, %s, %s, %s)",
                [(c.source, c.url, c.change, c.diff_lines, c.at) for c in changes],
            )

        if changes:
            self._run(f"logging {len(changes)} page changes", write)

    def list_changes(self, source: str, since: str | None = None) -> list[PageChange]:
        rows = self._rows(
            f"reading the changes of {source}",
            """SELECT source, url, change, at, diff_lines FROM docshelf_page_changes
               WHERE source = %s AND at >= %s ORDER BY id""",
            (source, since or ""),
        )
        return [PageChange(*r) for r in rows]

    def remove_pages(self, source: str, urls: Iterable[str]) -> int:
        urls = list(urls)

        def remove(cur: psycopg.Cursor) -> None:
            cur.execute("DELETE FROM site_pages WHERE url = ANY(%s)", (urls,))
            cur.execute("DELETE FROM docshelf_pages WHERE source = %s AND url = ANY(%s)", (source, urls))

        self._run(f"removing {len(urls)} pages of {source}", remove)
        return len(urls)

    def list_pages(self, source: str, prefix: str | None = None, limit: int = 100, offset: int = 0) -> list[PageInfo]:
        sql, params = _PAGE_INFO_SQL + " WHERE p.source = %s", [source]
        if prefix:
            sql += " AND left(p.url, length(%s)) = %s"
            params += [prefix, prefix]
        # COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
        rows = self._rows(f"listing pages of {source}", sql + ' ORDER BY p.url COLLATE "C" LIMIT %s OFFSET %s',
                          [*params, limit, offset])
        return [_page_info(r) for r in rows]

    def count_pages(self, source: str, prefix: str | None = None) -> int:
        sql, params = "SELECT count(*) FROM docshelf_pages WHERE source = %s", [source]
        if prefix:
            sql += " AND left(url, length(%s)) = %s"
            params += [prefix, prefix]
        return self._rows(f"counting pages of {source}", sql, params)[0][0]

    def get_page(self, url: str) -> PageInfo | None:
        rows = self._rows(f"reading page {url}", _PAGE_INFO_SQL + " WHERE p.url = %s", (url,))
        return _page_info(rows[0]) if rows else None

    def get_page_markdown(self, url: str) -> str | None:
        # Adopted pages have no Markdown of their own: their chunks, joined as the origin's agent joined them.
        rows = self._rows(
            f"reading page {url}",
            """SELECT coalesce(p.markdown, (SELECT string_agg(c.content, E'\\n\\n' ORDER BY c.chunk_number)
                                            FROM site_pages c WHERE c.url = p.url), '')
               FROM docshelf_pages p WHERE p.url = %s""",
            (url,),
        )
        return rows[0][0] if rows else None

    def get_chunks(self, url: str, start: int = 0, limit: int | None = None) -> list[Chunk]:
        rows = self._rows(
            f"reading chunks of {url}",
            _CHUNK_SQL + " WHERE c.url = %s AND c.chunk_number >= %s ORDER BY c.chunk_number LIMIT %s",
            (url, start, limit),
        )
        return [_chunk(r) for r in rows]

    # -- vectors -------------------------------------------------------------
    def pending_embeddings(
        self, source: str | None = None, limit: int = 256, *, enriched_by: str | None = None
    ) -> list[tuple[str, Chunk]]:
        where = ("c.embedding IS NULL AND c.embed_hash <> ''" + (" AND c.source = %s" if source else "")
                 + (" AND c.enriched_by = %s" if enriched_by else ""))
        params: list[Any] = [p for p in (source, enriched_by) if p]
        rows = self._rows(
            "finding chunks without vectors",
            f"""SELECT * FROM (
                    {_CHUNK_SQL.replace("SELECT ", "SELECT DISTINCT ON (c.embed_hash) c.embed_hash, c.id, ", 1)}
                    WHERE {where} ORDER BY c.embed_hash, c.id
                ) pending ORDER BY id LIMIT %s""",
            [*params, limit],
        )
        return [(r[0], _chunk(r[2:])) for r in rows]

    def chunks_by_embed_hash(self, hashes: Sequence[str]) -> dict[str, Chunk]:
        """Return a chunk stored under each embed hash (the text a vector is computed from); for the workers."""
        rows = self._rows(
            "reading chunks to embed",
            _CHUNK_SQL.replace("SELECT ", "SELECT DISTINCT ON (c.embed_hash) c.embed_hash, ", 1)
            + " WHERE c.embed_hash = ANY(%s) ORDER BY c.embed_hash, c.id",
            [list(hashes)],
        )
        return {r[0]: _chunk(r[1:]) for r in rows}

    def store_embeddings(self, vectors: dict[str, np.ndarray]) -> int:
        if not vectors:
            return 0
        hashes = sorted(vectors)

        def write(cur: psycopg.Cursor) -> int:
            cur.execute(
                """UPDATE site_pages c SET embedding = v.embedding
                   FROM unnest(%s::text[], %s::vector[]) AS v(embed_hash, embedding)
                   WHERE c.embed_hash = v.embed_hash AND c.embedding IS NULL""",
                (hashes, [np.asarray(vectors[h], dtype=np.float32) for h in hashes]),
            )
            return cur.rowcount

        return self._run(f"storing {len(vectors)} vectors", write)

    # -- enrichment ----------------------------------------------------------
    def chunks_to_enrich(
        self, source: str | None, enricher: str, with_context: bool | None, limit: int = 64
    ) -> list[tuple[str, str, Chunk]]:
        where = "(c.enriched_by IS DISTINCT FROM %s OR (c.context IS NOT NULL) <> coalesce(%s::boolean, c.context IS NOT NULL))"
        where += " AND c.embed_hash <> ''"  # generated navigation: BM25 only, not worth a model's time
        where += " AND c.source = %s" if source else ""
        params: list[Any] = [enricher, with_context, *([source] if source else [])]
        rows = self._rows(
            "finding chunks to enrich",
            _CHUNK_SQL.replace("SELECT ", "SELECT c.embed_hash, coalesce(p.title, ''), ", 1)
            + f" LEFT JOIN docshelf_pages p ON p.url = c.url WHERE {where} ORDER BY c.id LIMIT %s",
            [*params, limit],
        )
        return [(r[0] or "", r[1], _chunk(r[2:])) for r in rows]

    def update_enrichments(self, changes: Sequence[tuple[str, Chunk, str]]) -> int:
        def write(cur: psycopg.Cursor) -> int:
            known = self._vectors_for(cur, {new for old, _, new in changes if new != old})
            change = 0
            for old_hash, chunk, new_hash in changes:
                cur.execute(
                    """UPDATE site_pages c SET title = %s, summary = %s, context = %s, enriched_by = %s,
                           embed_hash = %s, embedding = CASE WHEN %s THEN c.embedding ELSE %s END
                       FROM site_pages prev WHERE prev.id = c.id
                           AND c.url = %s AND c.chunk_number = %s AND coalesce(c.embed_hash, '') = %s
                       RETURNING prev.embedding IS NULL, c.embedding IS NULL""",
                    (chunk.title, chunk.summary, chunk.context, chunk.enriched_by, new_hash, new_hash == old_hash,
                     known.get(new_hash), chunk.url, chunk.chunk_number, old_hash),
                )
                row = cur.fetchone()
                if row is not None:
                    change += int(row[1]) - int(row[0])
            return change

        return self._run(f"writing {len(changes)} enrichments", write)

    def get_enrichments(self, model: str, prompt_version: str, hashes: Iterable[str]) -> dict[str, Enrichment]:
        rows = self._rows(
            "reading the enrichment cache",
            """SELECT content_hash, title, summary, context FROM docshelf_enrichment_cache
               WHERE model = %s AND prompt_version = %s AND content_hash = ANY(%s)""",
            (model, prompt_version, sorted(set(hashes))),
        )
        return {r[0]: Enrichment(*r[1:]) for r in rows}

    def put_enrichments(self, model: str, prompt_version: str, enrichments: dict[str, Enrichment]) -> None:
        if not enrichments:
            return
        now = utc_now()

        def write(cur: psycopg.Cursor) -> None:
            cur.executemany(
                """INSERT INTO docshelf_enrichment_cache(model, prompt_version, content_hash, title, summary,
                                                         context, created_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (model, prompt_version, content_hash) DO UPDATE SET title = excluded.title,
                   summary = excluded.summary, context = excluded.context, created_at = excluded.created_at""",
                [(model, prompt_version, h, e.title, e.summary, e.context, now) for h, e in sorted(enrichments.items())],
            )

        self._run(f"caching {len(enrichments)} enrichments", write)

    # -- search --------------------------------------------------------------
    def search_bm25(self, query: str, sources: Sequence[str] = (), limit: int = 100) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms:
            return []
        rows = self._rows(
            "full-text search",
            "SELECT id, score FROM docshelf_bm25(%s::text[], %s, %s::text[])",
            (terms, limit, list(sources) or None),
        )
        return [(r[0], r[1]) for r in rows]

    def search_vector(self, vector: np.ndarray, sources: Sequence[str] = (), limit: int = 100) -> list[tuple[int, float]]:
        if self._dim is None:
            return []
        rows = self._rows(
            "vector search",
            "SELECT id, similarity FROM docshelf_vector(%s::vector, %s, %s::text[])",
            (np.asarray(vector, dtype=np.float32), limit, list(sources) or None),
        )
        return [(r[0], r[1]) for r in rows]

    def page_priors(self, urls: Sequence[str]) -> dict[str, float]:
        if not urls:
            return {}
        rows = self._rows("reading page priors", "SELECT url, prior FROM docshelf_pages WHERE url = ANY(%s)", (list(urls),))
        return {url: prior for url, prior in rows}

    def set_page_priors(self, priors: Mapping[str, float]) -> None:
        def update(cur: psycopg.Cursor) -> None:
            cur.executemany("UPDATE docshelf_pages SET prior = %s WHERE url = %s",
                            [(prior, url) for url, prior in priors.items()])

        self._run(f"setting the priors of {len(priors)} pages", update)

    def source_chunks(self, source: str) -> list[tuple[int, Chunk]]:
        rows = self._rows(
            f"reading chunks of {source}",
            _CHUNK_SQL.replace("SELECT ", "SELECT c.id, ", 1)
            + " WHERE c.source = %s ORDER BY c.url, c.chunk_number",
            (source,),
        )
        return [(r[0], _chunk(r[1:])) for r in rows]

    def set_inbound_text(self, source: str, texts: Mapping[int, str]) -> int:
        def write(cur: psycopg.Cursor) -> int:
            cur.execute("SELECT id, coalesce(index_inbound, '') FROM site_pages WHERE source = %s", (source,))
            changes = [
                (new or None, chunk_id)
                for chunk_id, old in cur.fetchall()
                if (new := inbound_index_text(texts.get(chunk_id, ""))) != old
            ]
            if changes:
                cur.executemany("UPDATE site_pages SET index_inbound = %s WHERE id = %s", changes)
            return len(changes)

        return self._run(f"setting the inbound link text of {source}", write)

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        rows = self._rows(
            "reading chunks", _CHUNK_SQL.replace("SELECT ", "SELECT c.id, ", 1) + " WHERE c.id = ANY(%s)", (list(ids),)
        )
        return {r[0]: _chunk(r[1:]) for r in rows}

    # -- whole records (export, import, copy) -----------------------------------
    def stored_chunks(self, url: str) -> list[tuple[Chunk, str, np.ndarray | None, dict[str, str]]]:
        """Return a page's chunks in order with embed hash, vector and the record texts kept at import."""
        rows = self._rows(
            f"reading chunks of {url}",
            _CHUNK_SQL.replace(
                "SELECT ", "SELECT c.embed_hash, c.embedding, r.embedding, r.metadata, r.embedding_model, ", 1
            ).replace(
                " FROM site_pages c", " FROM site_pages c LEFT JOIN docshelf_record_texts r ON r.chunk_id = c.id"
            )
            + " WHERE c.url = %s ORDER BY c.chunk_number",
            (url,),
        )
        return [
            (_chunk(r[5:]), r[0] or "", r[1],
             {k: v for k, v in (("embedding", r[2]), ("metadata", r[3]), ("embedding_model", r[4])) if v})
            for r in rows
        ]

    def keep_record_texts(self, url: str, texts: dict[int, dict[str, str]]) -> None:
        """Keep the exact record texts of a page's chunks (by chunk number), replacing the page's previous ones."""

        def write(cur: psycopg.Cursor) -> None:
            cur.execute(
                "DELETE FROM docshelf_record_texts WHERE chunk_id IN (SELECT id FROM site_pages WHERE url = %s)", (url,)
            )
            if texts:
                cur.executemany(
                    """INSERT INTO docshelf_record_texts(chunk_id, embedding, metadata, embedding_model)
                       SELECT id, %s, %s, %s FROM site_pages WHERE url = %s AND chunk_number = %s""",
                    [(t.get("embedding"), t.get("metadata"), t.get("embedding_model"), url, n)
                     for n, t in texts.items()],
                )

        self._run(f"keeping record texts of {url}", write)

    # -- internals -------------------------------------------------------------
    def _execute(self, purpose: str, sql: str, params: Sequence[Any]) -> None:
        def execute(cur: psycopg.Cursor) -> None:
            cur.execute(sql, params)

        self._run(purpose, execute)

    def _vectors_for(self, cur: psycopg.Cursor, hashes: set[str]) -> dict[str, np.ndarray]:
        if not hashes or self._dim is None:
            return {}
        cur.execute(
            """SELECT DISTINCT ON (embed_hash) embed_hash, embedding FROM site_pages
               WHERE embed_hash = ANY(%s) AND embedding IS NOT NULL""",
            (list(hashes),),
        )
        return dict(cur.fetchall())


def _message(exc: psycopg.Error) -> str:
    """Return the server's one-line reason for `exc`, without driver internals."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or str(exc).strip().splitlines()[0]


def _embedding_column_dim(cur: psycopg.Cursor) -> int | None:
    """Return the dimension `site_pages.embedding` is declared with, or None when it has none."""
    cur.execute(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'site_pages'::regclass AND attname = 'embedding'"
        " AND atttypmod > 0"
    )
    row = cur.fetchone()
    return int(row[0]) if row else None


def _drop_empty_vector_index(cur: psycopg.Cursor) -> bool:
    """Drop the HNSW index if it indexes no vector yet, noting so in docshelf_meta; return whether it was dropped."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (HNSW_INDEX,))
    if not cur.fetchone()[0]:  # type: ignore[index]
        return False  # wider than HNSW can index, or its owner dropped it: not ours to build
    with cur.connection.transaction() as savepoint:
        # Dropping first locks the table, so no vector can arrive between the check and the drop.
        cur.execute(f"DROP INDEX {HNSW_INDEX}")
        cur.execute("SELECT EXISTS(SELECT 1 FROM site_pages WHERE embedding IS NOT NULL)")
        if cur.fetchone()[0]:  # type: ignore[index]
            raise psycopg.Rollback(savepoint)
        cur.execute("INSERT INTO docshelf_meta(key, value) VALUES (%s, '') ON CONFLICT (key) DO NOTHING",
                    (DEFERRED_INDEX_KEY,))
        return True
    return False


def _build_deferred_index(cur: psycopg.Cursor) -> None:
    """Build the HNSW index over the rows loaded, with the memory a build in one pass needs."""
    cur.execute("DELETE FROM docshelf_meta WHERE key = %s", (DEFERRED_INDEX_KEY,))
    cur.execute(f"SET LOCAL maintenance_work_mem = '{BULK_INDEX_MEMORY}'")
    cur.execute(_CREATE_HNSW)


_CREATE_HNSW = f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON site_pages USING hnsw (embedding vector_cosine_ops)"


def _adopt_rows(cur: psycopg.Cursor) -> None:
    """Give every row without a source one (its metadata's), and its page and source a row of their own."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('docshelf:adopt', 0))")
    cur.execute(
        """
        WITH adopted AS (
            UPDATE site_pages SET
                source = coalesce(nullif(metadata->>'source', ''), 'site_pages'),
                embed_hash = coalesce(embed_hash, 'content:' || md5(content)),
                updated_dt = coalesce(updated_dt, metadata->>'crawled_at')
            WHERE source IS NULL
            RETURNING url, source, chunk_number, title, metadata
        ),
        new_sources AS (
            INSERT INTO docshelf_sources(name, root, created_at)
            SELECT source, coalesce(substring(min(url) from '^[A-Za-z][A-Za-z0-9+.-]*://[^/]+/?'), ''), %(now)s
            FROM adopted GROUP BY source
            ON CONFLICT (name) DO NOTHING
        )
        INSERT INTO docshelf_pages(url, source, title, fetched_at, status)
        SELECT DISTINCT ON (url) url, source, split_part(title, ' - ', 1), coalesce(metadata->>'crawled_at', %(now)s), 'ok'
        FROM adopted ORDER BY url, chunk_number
        ON CONFLICT (url) DO NOTHING
        """,
        {"now": utc_now()},
    )


def _upsert_pages(cur: psycopg.Cursor, pages: Sequence[Page]) -> None:
    """Insert or update pages' rows (one pipelined round trip however many pages)."""
    cur.executemany(_UPSERT_PAGE, [_page_row(page) for page in pages])


def _upsert_page(cur: psycopg.Cursor, page: Page) -> None:
    cur.execute(_UPSERT_PAGE, _page_row(page))


def _page_row(page: Page) -> tuple:
    return (page.url, page.source, page.title, page.markdown, page.content_hash, page.etag,
            page.last_modified, page.fetched_at, page.status, page.error, page.prior,
            page.changed_at or (page.fetched_at if page.status == "ok" else None),
            None if page.links is None else Jsonb(page.links))


_UPSERT_PAGE = """INSERT INTO docshelf_pages(url, source, title, markdown, content_hash, etag, last_modified,
        fetched_at, status, error, prior, changed_at, links)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (url) DO UPDATE SET source = excluded.source, title = excluded.title,
    markdown = excluded.markdown, content_hash = excluded.content_hash, etag = excluded.etag,
    last_modified = excluded.last_modified, fetched_at = excluded.fetched_at,
    status = excluded.status, error = excluded.error, prior = excluded.prior,
    changed_at = coalesce(excluded.changed_at, docshelf_pages.changed_at),
    links = coalesce(excluded.links, docshelf_pages.links)"""


def _chunk_rows(pages: Sequence[SourcePage]) -> list[tuple]:
    """Return the `site_pages` row of every chunk of `pages`, vector last (None: none given)."""
    return [
        _chunk_row(chunk, item.page.title, embed_hash, vector)
        for item in pages
        for chunk, embed_hash, vector in zip(item.chunks, item.embed_hashes, item.vectors or [None] * len(item.chunks),
                                             strict=True)
    ]


def _chunk_row(chunk: Chunk, page_title: str, embed_hash: str, vector: np.ndarray | None) -> tuple:
    """Return a chunk's values in `_CHUNK_COLUMNS` order."""
    headings, terms = index_text(page_title, chunk)
    return (
        chunk.url, chunk.chunk_number, chunk.title, chunk.summary, chunk.content, Jsonb(chunk.metadata),
        chunk.source, Jsonb(chunk.heading_path), chunk.anchor, chunk.updated_dt,
        json.dumps(chunk.metadata, ensure_ascii=False), embed_hash, headings, terms, chunk.context,
        chunk.enriched_by, Jsonb([s.to_json() for s in chunk.sections]) if chunk.sections else None,
        None if vector is None else np.asarray(vector, dtype=np.float32),
    )


def _with_known_vector(row: tuple, known: Mapping[str, np.ndarray]) -> tuple:
    """Return `row` with the vector already stored for its embed hash when it was given none."""
    return row if row[_VECTOR] is not None or row[_HASH] not in known else (*row[:_VECTOR], known[row[_HASH]])


def _copy_chunks(cur: psycopg.Cursor, rows: Sequence[tuple]) -> int:
    """Insert chunk rows, vectors included, with one binary COPY; return how many wait for a vector.

    A row written with its vector enters every index once; written without, and
    given the vector by a later UPDATE, it enters them all twice (HNSW, GIN, B-trees).
    """
    if rows:
        with cur.copy(f"COPY site_pages({', '.join(_CHUNK_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_CHUNK_COLUMNS.values()))
            for row in rows:
                copy.write_row(row)
    return sum(1 for row in rows if row[_VECTOR] is None and row[_HASH] != NOT_EMBEDDED)


_CHUNK_COLUMNS = {
    "url": "varchar", "chunk_number": "int4", "title": "varchar", "summary": "varchar", "content": "text",
    "metadata": "jsonb", "source": "text", "heading_path": "jsonb", "anchor": "text", "updated_dt": "text",
    "metadata_text": "text", "embed_hash": "text", "index_headings": "text", "index_terms": "text",
    "context": "text", "enriched_by": "text", "sections": "jsonb", "embedding": "vector",
}
"""The `site_pages` columns docshelf writes, with their types for binary COPY."""
_HASH, _VECTOR = 11, 17


_PAGE_INFO_SQL = """SELECT p.url, p.source, p.title, p.status,
    (SELECT count(*) FROM site_pages c WHERE c.url = p.url), p.fetched_at, p.error,
    p.content_hash, p.etag, p.last_modified, p.changed_at FROM docshelf_pages p"""

_SOURCE_COLUMNS = "s.name, s.root, s.options::text, s.created_at, s.last_crawl_at, s.version, s.packages::text"

# metadata_text keeps the key order docshelf wrote (jsonb sorts keys); it is
# used only while it still says what the jsonb column says, so a row edited
# by another tool reads back as edited.
_CHUNK_SQL = """SELECT c.url, c.source, c.chunk_number, c.title, c.summary, c.content, c.heading_path::text,
    c.anchor, CASE WHEN c.metadata_text IS NOT NULL AND c.metadata_text::jsonb = c.metadata
                   THEN c.metadata_text ELSE c.metadata::text END,
    c.updated_dt, c.context, c.enriched_by, c.sections FROM site_pages c"""


def _source(row: Sequence) -> Source:
    return Source(name=row[0], root=row[1], options=json.loads(row[2]), created_at=row[3], last_crawl_at=row[4],
                  packages=json.loads(row[6]))


def _page_info(row: Sequence) -> PageInfo:
    return PageInfo(
        url=row[0], source=row[1], title=row[2], status=row[3], chunks=row[4], fetched_at=row[5],
        error=row[6], content_hash=row[7], etag=row[8], last_modified=row[9], changed_at=row[10],
    )


def _chunk(row: Sequence) -> Chunk:
    return Chunk(
        url=row[0], source=row[1] or "", chunk_number=row[2], title=row[3], summary=row[4], content=row[5],
        heading_path=json.loads(row[6]), anchor=row[7], metadata=json.loads(row[8]), updated_dt=row[9],
        context=row[10], enriched_by=row[11], sections=sections_from_json(row[12]),
    )
