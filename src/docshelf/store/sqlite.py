"""The embedded shelf: one SQLite file (WAL) with FTS5 for BM25 and sqlite-vec for vectors.

Opened through apsw because the stdlib sqlite3 here cannot load extensions.
A page and all its chunks are written in one transaction, so a reader (in
this process or another) never sees half a page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import apsw
import numpy as np

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
from docshelf.store.base import NOT_EMBEDDED, SourcePage, sections_from_json, sections_json
from docshelf.store.fts import chunk_headings, fts_columns, identifier_parts, inbound_fts_text, match_expression
from docshelf.store.migrations import apply_migrations
from docshelf.store.vector_matrix import VectorMatrix

# Weights in bm25() of the chunk's full-text columns (title, headings, body), then the multiplier
# of its inbound link text's bm25, which has a table of its own (docshelf.store.fts.inbound_fts_text):
# a term in the page title or a heading says more about a chunk than one in its body. The site's
# links to a chunk (docshelf.inbound) count for little: hybrid MRR@10 with multiplier 0 / 0.1 / 0.25
# / 0.5 was dev 0.878 / 0.877 / 0.857 / 0.856, own 0.859 / 0.867 / 0.867 / 0.882, fresh 0.881 / 0.881
# / 0.879 / 0.855 (bench/retrieval.py --inbound-weights): index entries are dense with API names, so
# they pull reference pages up for everyday words of a question as often as they find a section.
BM25_WEIGHTS = (4.0, 2.0, 1.0, 0.1)
FTS_COLUMNS = ("title", "headings", "body")

__all__ = ["BM25_WEIGHTS", "SQLiteStore", "identifier_parts"]



def _load_sqlite_vec(conn: apsw.Connection) -> None:
    import sqlite_vec

    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.enable_load_extension(False)


def _vector_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


class SQLiteStore:
    """A shelf in one SQLite file.

    Args:
        path: the shelf file, or ":memory:".
    """

    def __init__(self, path: str | Path, *, vectors_in_memory: bool = True) -> None:
        self.location = str(path)
        self.vectors_in_memory = vectors_in_memory
        self.bm25_weights = BM25_WEIGHTS
        self._vectors: VectorMatrix | None = None
        if self.location != ":memory:":
            file = Path(path)
            if file.is_dir():
                raise StoreError(f"--db {file} is a folder, not a shelf file: give a file path such as {file}/shelf.db")
            if not file.parent.is_dir():
                raise StoreError(f"--db {file}: folder {file.parent} does not exist; create it or choose another path")
        try:
            self.conn = apsw.Connection(self.location)
            self.conn.setbusytimeout(10_000)
            _load_sqlite_vec(self.conn)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            apply_migrations(self.conn)
        except apsw.Error as exc:
            raise StoreError(f"cannot open shelf {self.location}: {exc} — is it a docshelf SQLite file?") from exc
        self._dim: int | None = None
        identity = self.embedder_identity()
        if identity:
            self._dim = identity[1]

    # -- plumbing --------------------------------------------------------------
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run the block in one transaction (a savepoint when nested)."""
        try:
            with self.conn:
                yield
        except apsw.Error as exc:
            raise StoreError(f"shelf {self.location}: write failed: {_describe(exc)}") from exc
        finally:
            if self._vectors is not None:
                self._vectors.mark_stale()

    def _rows(self, sql: str, params: Sequence[object] | dict = ()) -> list[tuple]:
        try:
            return list(self.conn.execute(sql, params))
        except apsw.Error as exc:
            raise StoreError(f"shelf {self.location}: query failed: {_describe(exc)}") from exc

    def close(self) -> None:
        self.conn.close()

    # -- identity ------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def embedder_identity(self) -> tuple[str, int] | None:
        model = self._meta("embed_model")
        dim = self._meta("embed_dim")
        return (model, int(dim)) if model and dim else None

    def bind_embedder(self, model_id: str, dim: int) -> None:
        if self.embedder_identity() is None:
            with self.atomic():
                # OR IGNORE: another process may bind the new shelf first; the check below then decides.
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('embed_model', ?), ('embed_dim', ?)",
                    (model_id, str(dim)),
                )
                self.conn.execute(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS chunk_vectors USING vec0("
                    f"chunk_id INTEGER PRIMARY KEY, embedding float[{int(dim)}] distance_metric=cosine, source TEXT)"
                )
        current = self.embedder_identity()
        if current != (model_id, dim):
            assert current is not None
            raise ModelMismatchError(
                f"shelf {self.location} was built with embedding model {current[0]} ({current[1]} dims); "
                f"it cannot take vectors of {model_id} ({dim} dims). Use --embedder {current[0]}, "
                "or another --db for the new model."
            )
        self._dim = dim

    # -- sources -------------------------------------------------------------
    def upsert_source(self, source: Source) -> None:
        with self.atomic():
            self.conn.execute(
                """INSERT INTO sources(name, root, options, created_at, last_crawl_at, version, packages)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET root = excluded.root, options = excluded.options,
                   last_crawl_at = COALESCE(excluded.last_crawl_at, sources.last_crawl_at),
                   version = excluded.version, packages = excluded.packages""",
                (source.name, source.root, json.dumps(source.options), source.created_at, source.last_crawl_at,
                 source.version, json.dumps(source.packages)),
            )

    def get_source(self, name: str) -> Source | None:
        rows = self._rows(f"SELECT {_SOURCE_COLUMNS} FROM sources s WHERE s.name = ?", (name,))
        return _source(rows[0]) if rows else None

    def source_names(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT name FROM sources ORDER BY name")]

    def set_source_packages(self, name: str, packages: Sequence[str]) -> None:
        with self.atomic():
            self.conn.execute("UPDATE sources SET packages = ? WHERE name = ?", (json.dumps(list(packages)), name))

    def list_sources(self) -> list[SourceStats]:
        rows = self._rows(
            f"""SELECT {_SOURCE_COLUMNS},
                   (SELECT count(*) FROM pages p WHERE p.source = s.name AND p.status = 'ok'),
                   (SELECT count(*) FROM pages p WHERE p.source = s.name AND p.status = 'failed'),
                   (SELECT count(*) FROM pages p WHERE p.source = s.name AND p.status = 'skipped'),
                   (SELECT count(*) FROM chunks c WHERE c.source = s.name),
                   (SELECT count(*) FROM chunks c WHERE c.source = s.name AND c.embedded = 1)
               FROM sources s ORDER BY s.name"""
        )
        return [SourceStats(_source(r[:7]), *r[7:]) for r in rows]

    def remove_source(self, name: str) -> int:
        with self.atomic():
            urls = [r[0] for r in self.conn.execute("SELECT url FROM pages WHERE source = ?", (name,))]
            self._delete_chunks_of(urls)
            self.conn.execute("DELETE FROM pages WHERE source = ?", (name,))
            self.conn.execute("DELETE FROM sources WHERE name = ?", (name,))
            self.conn.execute("DELETE FROM page_changes WHERE source = ?", (name,))
        return len(urls)

    # -- pages ---------------------------------------------------------------
    def page_states(self, source: str) -> dict[str, PageInfo]:
        rows = self._rows(_PAGE_INFO_SQL + " WHERE p.source = ?", (source,))
        return {r[0]: _page_info(r) for r in rows}

    def replace_page(self, page: Page, chunks: Sequence[Chunk], embed_hashes: Sequence[str]) -> int:
        if len(chunks) != len(embed_hashes):
            raise ValueError("one embed hash per chunk")
        return self.write_pages([SourcePage(page, list(chunks), list(embed_hashes))])

    def write_pages(self, pages: Sequence[SourcePage]) -> int:
        pending = 0
        with self.atomic():
            for item in pages:
                vectors = item.vectors or [None] * len(item.chunks)
                missing = {h for h, v in zip(item.embed_hashes, vectors, strict=True) if v is None}
                known = self._vectors_for(missing)
                self._delete_chunks_of([item.page.url])
                self._upsert_page(item.page)
                for chunk, embed_hash, vector in zip(item.chunks, item.embed_hashes, vectors):
                    stored = known.get(embed_hash) if vector is None else vector
                    chunk_id = self._insert_chunk(chunk, item.page.title, embed_hash, embedded=stored is not None)
                    if stored is not None:
                        self._insert_vector(chunk_id, stored, chunk.source)
                    elif embed_hash != NOT_EMBEDDED:
                        pending += 1
        return pending

    def replace_source(self, source: Source, pages: Sequence[SourcePage]) -> int:
        pending = 0
        with self.atomic():
            urls = [r[0] for r in self.conn.execute("SELECT url FROM pages WHERE source = ?", (source.name,))]
            self._delete_chunks_of(list(dict.fromkeys([*urls, *(p.page.url for p in pages)])))
            self.conn.execute("DELETE FROM pages WHERE source = ?", (source.name,))
            self.upsert_source(source)
            for item in pages:
                self._upsert_page(item.page)
                vectors = item.vectors or [None] * len(item.chunks)
                for chunk, embed_hash, vector in zip(item.chunks, item.embed_hashes, vectors, strict=True):
                    chunk_id = self._insert_chunk(chunk, item.page.title, embed_hash, embedded=vector is not None)
                    if vector is not None:
                        self._insert_vector(chunk_id, vector, chunk.source)
                    elif embed_hash != NOT_EMBEDDED:
                        pending += 1
        return pending

    def record_failure(self, page: Page) -> None:
        with self.atomic():
            updated = self.conn.execute(
                "UPDATE pages SET status = ?, error = ?, fetched_at = ? WHERE url = ? RETURNING url",
                (page.status, page.error, page.fetched_at, page.url),
            ).fetchall()
            if not updated:
                self._upsert_page(page)

    def touch_page(self, url: str, fetched_at: str) -> None:
        with self.atomic():
            self.conn.execute("UPDATE pages SET fetched_at = ?, status = 'ok', error = NULL WHERE url = ?", (fetched_at, url))

    def page_links(self, source: str) -> dict[str, list[str]]:
        rows = self._rows("SELECT url, links FROM pages WHERE source = ? AND links IS NOT NULL", (source,))
        return {url: json.loads(links) for url, links in rows}

    def page_freshness(self, urls: Sequence[str]) -> dict[str, Freshness]:
        if not urls:
            return {}
        rows = self._rows(
            "SELECT url, fetched_at, changed_at FROM pages WHERE url IN (%s)" % ",".join("?" * len(urls)), list(urls)
        )
        return {url: Freshness(fetched, changed) for url, fetched, changed in rows}

    def record_changes(self, changes: Sequence[PageChange]) -> None:
        with self.atomic():
            self.conn.executemany(
                "INSERT INTO page_changes(source, url, change, diff_lines, at) VALUES (?, ?, ?, ?, ?)",
                [(c.source, c.url, c.change, c.diff_lines, c.at) for c in changes],
            )

    def list_changes(self, source: str, since: str | None = None) -> list[PageChange]:
        rows = self._rows(
            "SELECT source, url, change, at, diff_lines FROM page_changes WHERE source = ? AND at >= ? ORDER BY id",
            (source, since or ""),
        )
        return [PageChange(*r) for r in rows]

    def remove_pages(self, source: str, urls: Iterable[str]) -> int:
        urls = list(urls)
        with self.atomic():
            self._delete_chunks_of(urls)
            for url in urls:
                self.conn.execute("DELETE FROM pages WHERE source = ? AND url = ?", (source, url))
        return len(urls)

    def list_pages(self, source: str, prefix: str | None = None, limit: int = 100, offset: int = 0) -> list[PageInfo]:
        sql, params = _PAGE_INFO_SQL + " WHERE p.source = ?", [source]
        if prefix:
            sql += " AND substr(p.url, 1, length(?)) = ?"
            params += [prefix, prefix]
        rows = self._rows(sql + " ORDER BY p.url LIMIT ? OFFSET ?", [*params, limit, offset])
        return [_page_info(r) for r in rows]

    def count_pages(self, source: str, prefix: str | None = None) -> int:
        sql, params = "SELECT count(*) FROM pages WHERE source = ?", [source]
        if prefix:
            sql += " AND substr(url, 1, length(?)) = ?"
            params += [prefix, prefix]
        return self._rows(sql, params)[0][0]

    def get_page(self, url: str) -> PageInfo | None:
        rows = self._rows(_PAGE_INFO_SQL + " WHERE p.url = ?", (url,))
        return _page_info(rows[0]) if rows else None

    def get_page_markdown(self, url: str) -> str | None:
        rows = self._rows("SELECT markdown FROM pages WHERE url = ?", (url,))
        return rows[0][0] if rows else None

    def get_chunks(self, url: str, start: int = 0, limit: int | None = None) -> list[Chunk]:
        rows = self._rows(
            _CHUNK_SQL + " WHERE c.url = ? AND c.chunk_number >= ? ORDER BY c.chunk_number LIMIT ?",
            (url, start, -1 if limit is None else limit),
        )
        return [_chunk(r) for r in rows]

    # -- vectors -------------------------------------------------------------
    def pending_embeddings(
        self, source: str | None = None, limit: int = 256, *, enriched_by: str | None = None
    ) -> list[tuple[str, Chunk]]:
        where = "c.embedded = 0 AND c.embed_hash != ''" + (" AND c.source = ?" if source else "") + (" AND c.enriched_by = ?" if enriched_by else "")
        params: list[object] = [p for p in (source, enriched_by) if p]
        rows = self._rows(
            _CHUNK_SQL.replace("SELECT ", "SELECT c.embed_hash, ", 1)
            + f" WHERE {where} GROUP BY c.embed_hash ORDER BY c.id LIMIT ?",
            [*params, limit],
        )
        return [(r[0], _chunk(r[1:])) for r in rows]

    def store_embeddings(self, vectors: dict[str, np.ndarray]) -> int:
        updated = 0
        with self.atomic():
            for embed_hash, vector in vectors.items():
                rows = self.conn.execute(
                    "UPDATE chunks SET embedded = 1 WHERE embed_hash = ? AND embedded = 0 RETURNING id, source",
                    (embed_hash,),
                ).fetchall()
                for chunk_id, source in rows:
                    self._insert_vector(chunk_id, vector, source)
                updated += len(rows)
        return updated

    # -- enrichment ----------------------------------------------------------
    def chunks_to_enrich(
        self, source: str | None, enricher: str, with_context: bool | None, limit: int = 64
    ) -> list[tuple[str, str, Chunk]]:
        where = "(c.enriched_by IS NOT ? OR (c.context IS NOT NULL) != coalesce(?, c.context IS NOT NULL))"
        where += " AND c.embed_hash != ''"  # generated navigation: BM25 only, not worth a model's time
        where += " AND c.source = ?" if source else ""
        params: list[object] = [enricher, with_context, *([source] if source else [])]
        rows = self._rows(
            _CHUNK_SQL.replace("SELECT ", "SELECT c.embed_hash, coalesce(p.title, ''), ", 1)
            + f" LEFT JOIN pages p ON p.url = c.url WHERE {where} ORDER BY c.id LIMIT ?",
            [*params, limit],
        )
        return [(r[0], r[1], _chunk(r[2:])) for r in rows]

    def update_enrichments(self, changes: Sequence[tuple[str, Chunk, str]]) -> int:
        change = 0
        with self.atomic():
            known = self._vectors_for({new_hash for old_hash, _, new_hash in changes if new_hash != old_hash})
            for old_hash, chunk, new_hash in changes:
                rows = self.conn.execute(
                    """UPDATE chunks SET title = ?, summary = ?, context = ?, enriched_by = ?, embed_hash = ?
                       WHERE url = ? AND chunk_number = ? AND embed_hash = ? RETURNING id, embedded""",
                    (chunk.title, chunk.summary, chunk.context, chunk.enriched_by, new_hash,
                     chunk.url, chunk.chunk_number, old_hash),
                ).fetchall()
                if rows and new_hash != old_hash:
                    change += self._revector(rows[0][0], bool(rows[0][1]), chunk.source, known.get(new_hash))
        return change

    def get_enrichments(self, model: str, prompt_version: str, hashes: Iterable[str]) -> dict[str, Enrichment]:
        found: dict[str, Enrichment] = {}
        for content_hash in set(hashes):
            rows = self._rows(
                """SELECT title, summary, context FROM enrichment_cache
                   WHERE model = ? AND prompt_version = ? AND content_hash = ?""",
                (model, prompt_version, content_hash),
            )
            if rows:
                found[content_hash] = Enrichment(*rows[0])
        return found

    def put_enrichments(self, model: str, prompt_version: str, enrichments: dict[str, Enrichment]) -> None:
        now = utc_now()
        with self.atomic():
            for content_hash, e in enrichments.items():
                self.conn.execute(
                    """INSERT OR REPLACE INTO enrichment_cache(model, prompt_version, content_hash, title, summary,
                                                               context, created_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (model, prompt_version, content_hash, e.title, e.summary, e.context, now),
                )

    # -- search --------------------------------------------------------------
    def search_bm25(self, query: str, sources: Sequence[str] = (), limit: int = 100) -> list[tuple[int, float]]:
        expression = match_expression(query)
        if expression is None:
            return []
        *column_weights, inbound_weight = self.bm25_weights
        weights = ", ".join(str(float(w)) for w in column_weights)
        body_expression = expression
        if not all(column_weights):
            # A column weighted 0 is left out of the match too: its hits would still be candidates, scored 0.
            kept = [name for name, w in zip(FTS_COLUMNS, column_weights) if w]
            body_expression = "{" + " ".join(kept) + "} : (" + expression + ")"
        # A chunk's score is its own text's bm25 plus its inbound text's, each from its own table.
        # MATERIALIZED: bm25() only runs in a full-text query's own context, not a flattened union.
        sql = (f"WITH matches AS MATERIALIZED (SELECT rowid AS id, -bm25(chunks_fts, {weights}) AS score "
               "FROM chunks_fts WHERE chunks_fts MATCH ?")
        params: list[object] = [body_expression]
        if inbound_weight:
            sql += " UNION ALL SELECT rowid, -bm25(inbound_fts) * ? FROM inbound_fts WHERE inbound_fts MATCH ?"
            params += [float(inbound_weight), expression]
        sql += ") SELECT m.id, sum(m.score) AS total FROM matches m"
        if sources:
            sql += " JOIN chunks c ON c.id = m.id WHERE c.source IN (%s)" % ",".join("?" * len(sources))
            params += list(sources)
        sql += " GROUP BY m.id ORDER BY total DESC LIMIT ?"
        return [(r[0], r[1]) for r in self._rows(sql, [*params, limit])]

    def search_vector(self, vector: np.ndarray, sources: Sequence[str] = (), limit: int = 100) -> list[tuple[int, float]]:
        if self._dim is None:
            return []
        if self.vectors_in_memory:
            if self._vectors is None:
                self._vectors = VectorMatrix(self.conn, self._dim)
            try:
                return self._vectors.search(vector, sources, limit)
            except apsw.Error as exc:
                raise StoreError(f"shelf {self.location}: vector search failed: {exc}") from exc
        sql = "SELECT chunk_id, distance FROM chunk_vectors WHERE embedding MATCH ? AND k = ?"
        params: list[object] = [_vector_blob(vector), limit]
        if sources:
            sql += " AND source IN (%s)" % ",".join("?" * len(sources))
            params += list(sources)
        return [(r[0], 1.0 - r[1]) for r in self._rows(sql + " ORDER BY distance", params)]

    def page_priors(self, urls: Sequence[str]) -> dict[str, float]:
        if not urls:
            return {}
        rows = self._rows("SELECT url, prior FROM pages WHERE url IN (%s)" % ",".join("?" * len(urls)), list(urls))
        return dict(rows)

    def set_page_priors(self, priors: Mapping[str, float]) -> None:
        with self.atomic():
            for url, prior in priors.items():
                self.conn.execute("UPDATE pages SET prior = ? WHERE url = ?", (prior, url))

    def source_chunks(self, source: str) -> list[tuple[int, Chunk]]:
        rows = self._rows(
            _CHUNK_SQL.replace("SELECT ", "SELECT c.id, ", 1)
            + " WHERE c.source = ? ORDER BY c.url, c.chunk_number",
            (source,),
        )
        return [(r[0], _chunk(r[1:])) for r in rows]

    def set_inbound_text(self, source: str, texts: Mapping[int, str]) -> int:
        with self.atomic():
            stored = self.conn.execute("SELECT id, inbound FROM chunks WHERE source = ?", (source,))
            changes = [(chunk_id, text) for chunk_id, old in stored.fetchall()
                       if (text := texts.get(chunk_id, "")) != old]
            for chunk_id, text in changes:
                self.conn.execute("UPDATE chunks SET inbound = ? WHERE id = ?", (text, chunk_id))
                # A contentless FTS5 row cannot be updated in place: it is deleted and inserted again.
                self.conn.execute("DELETE FROM inbound_fts WHERE rowid = ?", (chunk_id,))
                if text:
                    self.conn.execute("INSERT INTO inbound_fts(rowid, inbound) VALUES (?, ?)",
                                      (chunk_id, inbound_fts_text(text)))
        return len(changes)

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        rows = self._rows(
            _CHUNK_SQL.replace("SELECT ", "SELECT c.id, ", 1) + " WHERE c.id IN (%s)" % ",".join("?" * len(ids)),
            list(ids),
        )
        return {r[0]: _chunk(r[1:]) for r in rows}

    # -- internals -------------------------------------------------------------
    def _vectors_for(self, hashes: set[str]) -> dict[str, bytes]:
        hashes = hashes - {NOT_EMBEDDED}
        if not hashes or self._dim is None:
            return {}
        found: dict[str, bytes] = {}
        for embed_hash in hashes:
            rows = self.conn.execute(
                """SELECT v.embedding FROM chunks c JOIN chunk_vectors v ON v.chunk_id = c.id
                   WHERE c.embed_hash = ? AND c.embedded = 1 LIMIT 1""",
                (embed_hash,),
            ).fetchall()
            if rows:
                found[embed_hash] = rows[0][0]
        return found

    def _revector(self, chunk_id: int, had_vector: bool, source: str, vector: bytes | None) -> int:
        """Give a chunk whose embedded text changed the vector already known for it, or none; return +1/0/-1 pending."""
        if had_vector:
            self.conn.execute("DELETE FROM chunk_vectors WHERE chunk_id = ?", (chunk_id,))
        if vector is not None:
            self._insert_vector(chunk_id, vector, source)
        self.conn.execute("UPDATE chunks SET embedded = ? WHERE id = ?", (int(vector is not None), chunk_id))
        return int(had_vector) - int(vector is not None)

    def _delete_chunks_of(self, urls: list[str]) -> None:
        for url in urls:
            ids = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE url = ?", (url,))]
            for chunk_id in ids:
                self.conn.execute("DELETE FROM chunks_fts WHERE rowid = ?", (chunk_id,))
                self.conn.execute("DELETE FROM inbound_fts WHERE rowid = ?", (chunk_id,))
                if self._dim is not None:
                    self.conn.execute("DELETE FROM chunk_vectors WHERE chunk_id = ?", (chunk_id,))
            self.conn.execute("DELETE FROM chunks WHERE url = ?", (url,))

    def _upsert_page(self, page: Page) -> None:
        self.conn.execute(
            """INSERT INTO pages(url, source, title, markdown, content_hash, etag, last_modified, fetched_at, status,
                                 error, prior, changed_at, links)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(url) DO UPDATE SET source = excluded.source, title = excluded.title,
               markdown = excluded.markdown, content_hash = excluded.content_hash, etag = excluded.etag,
               last_modified = excluded.last_modified, fetched_at = excluded.fetched_at,
               status = excluded.status, error = excluded.error, prior = excluded.prior,
               changed_at = coalesce(excluded.changed_at, pages.changed_at),
               links = coalesce(excluded.links, pages.links)""",
            (page.url, page.source, page.title, page.markdown, page.content_hash, page.etag,
             page.last_modified, page.fetched_at, page.status, page.error, page.prior,
             _changed_at(page), None if page.links is None else json.dumps(page.links)),
        )

    def _insert_chunk(self, chunk: Chunk, page_title: str, embed_hash: str, embedded: bool) -> int:
        (chunk_id,) = self.conn.execute(
            """INSERT INTO chunks(url, source, chunk_number, title, summary, content, heading_path, anchor,
                                  metadata, updated_dt, embed_hash, embedded, context, enriched_by, sections)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            (chunk.url, chunk.source, chunk.chunk_number, chunk.title, chunk.summary, chunk.content,
             json.dumps(chunk.heading_path, ensure_ascii=False), chunk.anchor,
             json.dumps(chunk.metadata, ensure_ascii=False), chunk.updated_dt, embed_hash, int(embedded),
             chunk.context, chunk.enriched_by, sections_json(chunk)),
        ).fetchone()
        self.conn.execute(
            "INSERT INTO chunks_fts(rowid, title, headings, body) VALUES (?, ?, ?, ?)",
            (chunk_id, *fts_columns(page_title, chunk_headings(chunk), chunk.content)),
        )
        return chunk_id

    def _insert_vector(self, chunk_id: int, vector: bytes | np.ndarray, source: str) -> None:
        blob = vector if isinstance(vector, bytes) else _vector_blob(vector)
        self.conn.execute(
            "INSERT OR REPLACE INTO chunk_vectors(chunk_id, embedding, source) VALUES (?, ?, ?)", (chunk_id, blob, source)
        )


_PAGE_INFO_SQL = """SELECT p.url, p.source, p.title, p.status,
    (SELECT count(*) FROM chunks c WHERE c.url = p.url), p.fetched_at, p.error,
    p.content_hash, p.etag, p.last_modified, p.changed_at FROM pages p"""

_SOURCE_COLUMNS = "s.name, s.root, s.options, s.created_at, s.last_crawl_at, s.version, s.packages"

_CHUNK_SQL = """SELECT c.url, c.source, c.chunk_number, c.title, c.summary, c.content, c.heading_path,
    c.anchor, c.metadata, c.updated_dt, c.context, c.enriched_by, c.sections FROM chunks c"""


def _changed_at(page: Page) -> str | None:
    """Return when a stored page's content changed: as given (a copy), else now for new content, else unknown."""
    return page.changed_at or (page.fetched_at if page.status == "ok" else None)


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
        url=row[0], source=row[1], chunk_number=row[2], title=row[3], summary=row[4], content=row[5],
        heading_path=json.loads(row[6]), anchor=row[7], metadata=json.loads(row[8]), updated_dt=row[9],
        context=row[10], enriched_by=row[11], sections=sections_from_json(row[12]),
    )


def _describe(exc: apsw.Error) -> str:
    """Return what a failed statement means for the user; a full disk says what to do."""
    if isinstance(exc, apsw.FullError):
        return (
            "the disk (or the shelf's size limit) is full; the pages stored so far are complete — "
            "free some space and run the command again to finish"
        )
    return str(exc)
