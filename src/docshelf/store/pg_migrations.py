"""Named, ordered schema migrations for the PostgreSQL shelf; none is ever edited once released.

The chunk table is the origin's `site_pages`, column for column, so tools
written for the origin (its `match_site_pages` function, its crawler's
INSERTs) keep working. docshelf only ADDS to it: columns it needs (source,
heading path, anchor, embed hash, full-text vector), and tables of its own
(`docshelf_*`). A database that already holds an origin-style `site_pages`
is adopted: nothing is dropped, renamed or rewritten in value.

Each migration runs in one transaction together with the row that records it,
under an advisory lock, so two processes opening a new shelf at once neither
race nor half-apply a migration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from docshelf.errors import StoreError
from docshelf.store.fts import STOPWORDS

if TYPE_CHECKING:
    import psycopg

Migration = Callable[["psycopg.Cursor"], None]

ORIGIN_COLUMNS = ("id", "url", "chunk_number", "title", "summary", "content", "metadata", "embedding")
"""Columns an existing `site_pages` must have to be adopted."""

MIGRATIONS_LOCK = "docshelf:migrations"
"""Advisory lock key (hashed) held while migrating."""


def m001_site_pages(cur: psycopg.Cursor) -> None:
    """Create the origin's `site_pages` table, or check that an existing one can be adopted.

    The embedding column starts without a dimension; `bind_embedder` fixes it
    (and builds the HNSW index) once the shelf's model is known.
    """
    cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    cur.execute("SELECT 1 FROM pg_class WHERE oid = to_regclass('site_pages')")
    if cur.fetchone() is not None:
        _check_adoptable(cur)
        return
    cur.execute(
        """
        CREATE TABLE site_pages (
            id bigserial PRIMARY KEY,
            url varchar NOT NULL,
            chunk_number integer NOT NULL,
            title varchar NOT NULL,
            summary varchar NOT NULL,
            content text NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            embedding vector,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (url, chunk_number)
        )
        """
    )
    cur.execute("CREATE INDEX idx_site_pages_metadata ON site_pages USING gin (metadata)")


def _check_adoptable(cur: psycopg.Cursor) -> None:
    cur.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'site_pages'::regclass AND attnum > 0 AND NOT attisdropped"
    )
    present = {row[0] for row in cur.fetchall()}
    missing = [c for c in ORIGIN_COLUMNS if c not in present]
    if missing:
        raise StoreError(
            f"this database has a table site_pages that is not an origin-style chunk table "
            f"(no column {', '.join(missing)}); docshelf will not touch it — use another database"
        )


def m002_docshelf_tables(cur: psycopg.Cursor) -> None:
    """Add docshelf's columns to `site_pages` and create its sources, pages and meta tables."""
    cur.execute(
        """
        CREATE TABLE docshelf_meta (key text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE docshelf_sources (
            name text PRIMARY KEY,
            root text NOT NULL,
            options jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at text NOT NULL,
            last_crawl_at text
        );
        CREATE TABLE docshelf_pages (
            url text PRIMARY KEY,
            source text NOT NULL REFERENCES docshelf_sources(name) ON DELETE CASCADE,
            title text NOT NULL DEFAULT '',
            markdown text,
            content_hash text,
            etag text,
            last_modified text,
            fetched_at text NOT NULL,
            status text NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
            error text
        );
        CREATE INDEX docshelf_pages_by_source ON docshelf_pages (source, url);
        """
    )
    # Every added column is nullable or has a default: the origin's crawler
    # INSERTs only its own columns and must keep working on an adopted table.
    cur.execute(
        """
        ALTER TABLE site_pages
            ADD COLUMN IF NOT EXISTS source text,
            ADD COLUMN IF NOT EXISTS heading_path jsonb NOT NULL DEFAULT '[]'::jsonb,
            ADD COLUMN IF NOT EXISTS anchor text,
            ADD COLUMN IF NOT EXISTS updated_dt text,
            ADD COLUMN IF NOT EXISTS embed_hash text,
            ADD COLUMN IF NOT EXISTS metadata_text text,
            ADD COLUMN IF NOT EXISTS index_headings text,
            ADD COLUMN IF NOT EXISTS index_terms text
        """
    )
    # A stored generated column keeps the index in step with every writer,
    # docshelf or not; weights mirror the SQLite shelf's bm25 column weights.
    cur.execute(
        """
        ALTER TABLE site_pages ADD COLUMN IF NOT EXISTS fts tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
            || setweight(to_tsvector('english'::regconfig, coalesce(index_headings, '')), 'B')
            || setweight(to_tsvector('english'::regconfig, coalesce(summary, '')), 'C')
            || to_tsvector('english'::regconfig, coalesce(content, '') || ' ' || coalesce(index_terms, ''))
        ) STORED
        """
    )
    # Inline, so a ranking scan reads one page per row instead of a TOAST fetch per
    # match (5x faster at 10k chunks): the embedding and content go out of line first.
    cur.execute("ALTER TABLE site_pages ALTER COLUMN fts SET STORAGE MAIN")
    cur.execute(
        """
        CREATE INDEX IF NOT EXISTS docshelf_site_pages_fts ON site_pages USING gin (fts);
        CREATE INDEX IF NOT EXISTS docshelf_site_pages_source ON site_pages (source);
        CREATE INDEX IF NOT EXISTS docshelf_site_pages_embed_hash ON site_pages (embed_hash);
        CREATE INDEX IF NOT EXISTS docshelf_site_pages_unadopted ON site_pages (id) WHERE source IS NULL;
        CREATE INDEX IF NOT EXISTS docshelf_site_pages_pending ON site_pages (source, id) WHERE embedding IS NULL;
        CREATE TABLE docshelf_record_texts (
            chunk_id bigint PRIMARY KEY REFERENCES site_pages(id) ON DELETE CASCADE,
            embedding text,
            metadata text
        );
        """
    )


def m003_search_functions(cur: psycopg.Cursor) -> None:
    """Create `match_site_pages` if the origin's is missing, and docshelf's search functions."""
    cur.execute("SELECT 1 FROM pg_proc WHERE proname = 'match_site_pages' AND pronamespace = current_schema()::regnamespace")
    if cur.fetchone() is None:
        cur.execute(MATCH_SITE_PAGES)
    stopwords = "ARRAY[" + ", ".join(f"'{w}'" for w in sorted(STOPWORDS)) + "]::text[]"
    cur.execute(QUERY_TERMS.replace("{stopwords}", stopwords))
    cur.execute(BM25)
    cur.execute(VECTOR)
    cur.execute(HYBRID)


# The origin's function, re-created from its description (origin-schema.md §2):
# same name, parameters, defaults, result columns, containment filter and order.
MATCH_SITE_PAGES = """
CREATE FUNCTION match_site_pages(query_embedding vector, match_count int DEFAULT 10, filter jsonb DEFAULT '{}'::jsonb)
RETURNS TABLE (id bigint, url varchar, chunk_number integer, title varchar, summary varchar, content text,
               metadata jsonb, similarity float)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT id, url, chunk_number, title, summary, content, metadata,
           1 - (site_pages.embedding <=> query_embedding) AS similarity
    FROM site_pages
    WHERE metadata @> filter
    ORDER BY site_pages.embedding <=> query_embedding
    LIMIT match_count;
END;
$$
"""

# Mirrors docshelf.store.fts.query_terms exactly (same pattern, strip, stopwords,
# case-sensitive de-duplication in first-seen order), so SQL users get the
# ranking the Python searcher gets. A change to query_terms needs a new migration.
QUERY_TERMS = """
CREATE OR REPLACE FUNCTION docshelf_query_terms(query_text text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(term ORDER BY first_seen), '{}'::text[])
    FROM (
        SELECT term, min(pos) AS first_seen
        FROM (
            SELECT btrim(m[1], '._:') AS term, pos
            FROM regexp_matches(query_text, '[A-Za-z0-9_]+(?:[.:][A-Za-z0-9_]+)*', 'g') WITH ORDINALITY AS r(m, pos)
        ) found
        WHERE term <> ''
          AND NOT (lower(term) = ANY({stopwords}))
          AND NOT (length(term) = 1 AND term !~ '^[0-9]$')
        GROUP BY term
    ) terms
$$
"""

# BM25-like ranking over the GIN index: each term is a phrase query; a chunk's
# score sums, over the terms it matches, idf(term) * ts_rank(term), divided by
# 1 + ln(1 + distinct lexemes). ts_rank alone has no idf, and a question's rare
# words are what find its answer; length(fts) is stored in the tsvector, where
# ts_rank's own length normalisation counts every position (5x slower).
# All four labels weigh the same: title and heading words already count more by
# appearing in several fields. PostgreSQL's default weights (title 10x body) let
# common title words outrank a rare body word: dev-set BM25 Hit@5 0.77, equal 0.92
# (the SQLite shelf: 0.90). The labels stay in `fts` for SQL users' own weights.
BM25 = """
CREATE OR REPLACE FUNCTION docshelf_bm25(terms text[], match_count int, sources text[] DEFAULT NULL,
                                         filter jsonb DEFAULT '{}'::jsonb)
RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    queries tsquery[];
    any_query tsquery;
    q tsquery;
BEGIN
    SELECT array_agg(tq ORDER BY i) INTO queries
    FROM (SELECT phraseto_tsquery('english', t) AS tq, i FROM unnest(terms) WITH ORDINALITY AS u(t, i)) parsed
    WHERE numnode(tq) > 0;
    IF queries IS NULL THEN
        RETURN;
    END IF;
    FOREACH q IN ARRAY queries LOOP
        any_query := CASE WHEN any_query IS NULL THEN q ELSE any_query || q END;
    END LOOP;
    RETURN QUERY
    WITH hits AS MATERIALIZED (
        SELECT p.id, t.i, ts_rank('{1, 1, 1, 1}', p.fts, t.tq, 0) / (1 + ln(1 + length(p.fts))) AS r
        FROM site_pages p CROSS JOIN LATERAL unnest(queries) WITH ORDINALITY AS t(tq, i)
        WHERE p.fts @@ any_query AND p.fts @@ t.tq
          AND (sources IS NULL OR p.source = ANY(sources)) AND p.metadata @> filter
    ),
    df AS (SELECT h.i, count(*)::double precision AS n FROM hits h GROUP BY h.i),
    total AS (
        SELECT greatest(
            (SELECT reltuples FROM pg_class WHERE oid = 'site_pages'::regclass),
            (SELECT count(DISTINCT h.id) FROM hits h)
        )::double precision AS n
    )
    SELECT h.id, sum(ln(1 + (total.n - df.n + 0.5) / (df.n + 0.5)) * h.r)::double precision AS score
    FROM hits h JOIN df ON df.i = h.i CROSS JOIN total
    GROUP BY h.id
    ORDER BY score DESC, h.id
    LIMIT match_count;
END;
$$
"""

# Both search functions plan each call for its own arguments: a generic plan
# cannot know how many chunks a query's terms match (4x slower at 10k chunks).
#
# Approximate nearest neighbours through HNSW (or the origin's IVFFlat).
# ef_search is 4x the candidates asked for (at least 400): with ef_search equal
# to the 100 candidates, HNSW missed enough true neighbours to cost the dev set
# vector Hit@5 0.85 vs 0.90 exact; at 400 it matched exact search (vector p50
# 18 -> 27 ms at 22k chunks). Iterative scans (pgvector >= 0.8) keep a filtered
# query from coming back short; the outer ORDER BY makes the order exact and
# ties deterministic.
VECTOR = """
CREATE OR REPLACE FUNCTION docshelf_vector(query_embedding vector, match_count int, sources text[] DEFAULT NULL,
                                           filter jsonb DEFAULT '{}'::jsonb)
RETURNS TABLE (id bigint, similarity double precision)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    PERFORM set_config('hnsw.ef_search', greatest(400, least(4 * match_count, 1000))::text, true);
    PERFORM set_config('ivfflat.probes', '10', true);
    BEGIN
        PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
        PERFORM set_config('ivfflat.iterative_scan', 'relaxed_order', true);
    EXCEPTION WHEN undefined_object OR invalid_parameter_value THEN
        NULL;  -- pgvector before 0.8: no iterative scans
    END;
    RETURN QUERY
    SELECT nearest.id, nearest.similarity FROM (
        SELECT p.id, (1 - (p.embedding <=> query_embedding))::double precision AS similarity
        FROM site_pages p
        WHERE p.embedding IS NOT NULL
          AND (sources IS NULL OR p.source = ANY(sources)) AND p.metadata @> filter
        ORDER BY p.embedding <=> query_embedding
        LIMIT match_count
    ) nearest
    ORDER BY nearest.similarity DESC, nearest.id;
END;
$$
"""

# Reciprocal rank fusion of the two candidate lists, as docshelf.search does it
# (1 / (rrf_k + rank), rank from 1, summed) — the same numbers, in SQL.
HYBRID = """
CREATE OR REPLACE FUNCTION docshelf_hybrid_search(query_text text, query_embedding vector,
                                                  match_count int DEFAULT 10, filter jsonb DEFAULT '{}'::jsonb,
                                                  candidates int DEFAULT 100, rrf_k int DEFAULT 60)
RETURNS TABLE (id bigint, url varchar, chunk_number integer, title varchar, summary varchar, content text,
               metadata jsonb, score double precision)
LANGUAGE sql VOLATILE AS $$
    WITH bm25 AS (
        SELECT b.id, row_number() OVER (ORDER BY b.score DESC, b.id) AS rank
        FROM docshelf_bm25(docshelf_query_terms(query_text), candidates, NULL, filter) b
    ),
    vec AS (
        SELECT v.id, row_number() OVER (ORDER BY v.similarity DESC, v.id) AS rank
        FROM docshelf_vector(query_embedding, candidates, NULL, filter) v
        WHERE query_embedding IS NOT NULL
    ),
    fused AS (
        SELECT coalesce(bm25.id, vec.id) AS id,
               coalesce(1.0::double precision / (rrf_k + bm25.rank), 0)
               + coalesce(1.0::double precision / (rrf_k + vec.rank), 0) AS score
        FROM bm25 FULL OUTER JOIN vec ON vec.id = bm25.id
    )
    SELECT p.id, p.url, p.chunk_number, p.title, p.summary, p.content, p.metadata, fused.score
    FROM fused JOIN site_pages p ON p.id = fused.id
    ORDER BY fused.score DESC, p.id
    LIMIT match_count
$$
"""

def m004_page_prior(cur: psycopg.Cursor) -> None:
    """Add each page's search prior (see docshelf.page_kind), computed from the Markdown already stored."""
    from docshelf.page_kind import page_prior

    cur.execute("ALTER TABLE docshelf_pages ADD COLUMN IF NOT EXISTS prior double precision NOT NULL DEFAULT 1.0")
    cur.execute("SELECT url, markdown FROM docshelf_pages WHERE coalesce(markdown, '') <> ''")
    for url, markdown in cur.fetchall():
        prior = page_prior(markdown)
        if prior != 1.0:
            cur.execute("UPDATE docshelf_pages SET prior = %s WHERE url = %s", (prior, url))


def m005_enrichment(cur: psycopg.Cursor) -> None:
    """Record who wrote each chunk's title and summary, its context sentence, and cache what a model wrote.

    Rows stored before it (by docshelf or by the origin, whose titles its LLM wrote) keep enriched_by
    NULL: not known. The cache is keyed by model, prompt version and the hash of the prompt's text.
    """
    cur.execute(
        """
        ALTER TABLE site_pages
            ADD COLUMN IF NOT EXISTS context text,
            ADD COLUMN IF NOT EXISTS enriched_by text;
        CREATE TABLE docshelf_enrichment_cache (
            model text NOT NULL,
            prompt_version text NOT NULL,
            content_hash text NOT NULL,
            title text NOT NULL,
            summary text NOT NULL,
            context text,
            created_at text NOT NULL,
            PRIMARY KEY (model, prompt_version, content_hash)
        );
        """
    )


def m006_release_notes_by_level(cur: psycopg.Cursor) -> None:
    """Recompute every page's prior: release notes are now recognised per heading level (page_kind.py)."""
    _recompute_priors(cur)


def m008_release_notes_citing_issues(cur: psycopg.Cursor) -> None:
    """Recompute every page's prior: pages whose sections cite issues by number are release notes (page_kind.py)."""
    _recompute_priors(cur)


def m009_version_series(cur: psycopg.Cursor) -> None:
    """Give per-version pages (three or more titled alike but for a version) the release-notes prior."""
    from docshelf.page_kind import PRIORS, version_series_pages

    cur.execute("SELECT url, source, title FROM docshelf_pages WHERE status = 'ok'")
    for url in version_series_pages(cur.fetchall()):
        cur.execute("UPDATE docshelf_pages SET prior = least(prior, %s) WHERE url = %s", (PRIORS["release_notes"], url))


def m012_inbound_text(cur: psycopg.Cursor) -> None:
    """Index the text of the site's links to each chunk (docshelf.inbound) in `fts`, labelled B as headings are.

    `index_inbound` holds it, prepared like `index_terms` (identifier parts added). A
    generated column's expression cannot be altered in place before PostgreSQL 17, so
    `fts` and its index are made again, as m002 made them plus the new column. The label
    only matters to SQL users' own weights: docshelf_bm25 weighs all four alike, so inbound
    words count as much as heading and body words. Inbound text starts empty: the pass
    after the next crawl of each source (ingest.attach_inbound_text) fills it in.
    """
    cur.execute(
        """
        ALTER TABLE site_pages ADD COLUMN IF NOT EXISTS index_inbound text;
        ALTER TABLE site_pages DROP COLUMN IF EXISTS fts;
        ALTER TABLE site_pages ADD COLUMN fts tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
            || setweight(to_tsvector('english'::regconfig, coalesce(index_headings, '')), 'B')
            || setweight(to_tsvector('english'::regconfig, coalesce(summary, '')), 'C')
            || to_tsvector('english'::regconfig, coalesce(content, '') || ' ' || coalesce(index_terms, ''))
            || setweight(to_tsvector('english'::regconfig, coalesce(index_inbound, '')), 'B')
        ) STORED;
        ALTER TABLE site_pages ALTER COLUMN fts SET STORAGE MAIN;
        CREATE INDEX IF NOT EXISTS docshelf_site_pages_fts ON site_pages USING gin (fts);
        """
    )


def m014_versions_and_freshness(cur: psycopg.Cursor) -> None:
    """Give sources a version and the packages they document, pages when they last changed and their
    outgoing links, and keep a log of what each refresh changed (as the SQLite shelf's m012).

    Existing sources become unversioned (their key stays their name: nothing moves); a page's
    last change is taken to be its last fetch, the best the shelf knows.
    """
    cur.execute(
        """
        ALTER TABLE docshelf_sources ADD COLUMN IF NOT EXISTS version text NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS packages jsonb NOT NULL DEFAULT '[]'::jsonb;
        ALTER TABLE docshelf_pages ADD COLUMN IF NOT EXISTS changed_at text,
            ADD COLUMN IF NOT EXISTS links jsonb;
        UPDATE docshelf_pages SET changed_at = fetched_at WHERE status = 'ok';
        CREATE TABLE docshelf_page_changes (
            id bigserial PRIMARY KEY,
            source text NOT NULL,
            url text NOT NULL,
            change text NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
            diff_lines integer NOT NULL DEFAULT 0,
            at text NOT NULL
        );
        CREATE INDEX docshelf_page_changes_by_source ON docshelf_page_changes (source, at);
        """
    )


def _recompute_priors(cur: psycopg.Cursor) -> None:
    from docshelf.page_kind import page_prior

    cur.execute("SELECT url, markdown, prior FROM docshelf_pages WHERE coalesce(markdown, '') <> ''")
    for url, markdown, prior in cur.fetchall():
        if (new := page_prior(markdown)) != prior:
            cur.execute("UPDATE docshelf_pages SET prior = %s WHERE url = %s", (new, url))


def m010_chunk_sections(cur: psycopg.Cursor) -> None:
    """Add where each section of a packed chunk starts (jsonb [[offset, anchor, heading path], ...]; NULL: one)."""
    cur.execute("ALTER TABLE site_pages ADD COLUMN IF NOT EXISTS sections jsonb")


def m011_navigation_by_entries(cur: psycopg.Cursor) -> None:
    """Recompute every page's prior: navigation is now told by entries (list items, table rows, link lines)
    and link text measured with whitespace collapsed (page_kind.py); per-version pages stay release notes."""
    _recompute_priors(cur)
    m009_version_series(cur)


def m007_vector_recall(cur: psycopg.Cursor) -> None:
    """Redefine docshelf_vector with a wider HNSW search (ef_search 4x the candidates, at least 400)."""
    cur.execute(VECTOR)


def m016_record_model(cur: psycopg.Cursor) -> None:
    """Keep whether an imported record named its vector's model, so its export says as much (records.py)."""
    cur.execute("ALTER TABLE docshelf_record_texts ADD COLUMN IF NOT EXISTS embedding_model text")


def m017_work_queue(cur: psycopg.Cursor) -> None:
    """Crawl jobs that workers on many machines share (`docshelf.workers`): the jobs, their frontier,
    the embedding batches taken, and the next request time of each host a crawl reaches."""
    cur.execute(
        """
        CREATE TABLE docshelf_jobs (
            id text PRIMARY KEY,
            kind text NOT NULL,
            source text NOT NULL,
            base_name text NOT NULL,
            root text NOT NULL,
            options jsonb NOT NULL,
            version text,
            trust_start boolean NOT NULL DEFAULT true,
            refresh boolean NOT NULL DEFAULT false,
            status text NOT NULL DEFAULT 'queued',
            worker text,
            scope_start text,
            discovered_by text,
            complete boolean NOT NULL DEFAULT true,
            embedded integer NOT NULL DEFAULT 0,
            error text,
            summary jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz
        );
        -- One crawl of a source (any version of it) at a time, whichever server queued it.
        CREATE UNIQUE INDEX docshelf_jobs_one_active ON docshelf_jobs (base_name)
            WHERE status IN ('queued', 'running');
        CREATE TABLE docshelf_frontier (
            job_id text NOT NULL REFERENCES docshelf_jobs (id) ON DELETE CASCADE,
            url text NOT NULL,
            depth integer NOT NULL,
            outcome text,
            reason text,
            worker text,
            PRIMARY KEY (job_id, url)
        );
        CREATE INDEX docshelf_frontier_waiting ON docshelf_frontier (job_id) WHERE outcome IS NULL;
        CREATE TABLE docshelf_embed_claims (
            embed_hash text PRIMARY KEY,
            job_id text NOT NULL REFERENCES docshelf_jobs (id) ON DELETE CASCADE,
            owner bigint NOT NULL,
            until timestamptz NOT NULL,
            failed boolean NOT NULL DEFAULT false
        );
        """
    )


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_site_pages", m001_site_pages),
    ("m002_docshelf_tables", m002_docshelf_tables),
    ("m003_search_functions", m003_search_functions),
    ("m004_page_prior", m004_page_prior),
    ("m005_enrichment", m005_enrichment),
    ("m006_release_notes_by_level", m006_release_notes_by_level),
    ("m007_vector_recall", m007_vector_recall),
    ("m008_release_notes_citing_issues", m008_release_notes_citing_issues),
    ("m009_version_series", m009_version_series),
    ("m010_chunk_sections", m010_chunk_sections),
    ("m011_navigation_by_entries", m011_navigation_by_entries),
    ("m012_inbound_text", m012_inbound_text),
    ("m014_versions_and_freshness", m014_versions_and_freshness),
    ("m016_record_model", m016_record_model),
    ("m017_work_queue", m017_work_queue),
]


def apply_migrations(conn: psycopg.Connection) -> list[str]:
    """Apply every pending migration in order, each in its own transaction; return the names applied."""
    if not _pending(conn):
        return []
    applied: list[str] = []
    for name, migration in MIGRATIONS:
        with conn.transaction(), conn.cursor() as cur:
            _lock(cur)
            cur.execute("SELECT 1 FROM docshelf_migrations WHERE name = %s", (name,))
            if cur.fetchone() is not None:
                continue  # another process applied it while we waited for the lock
            migration(cur)
            cur.execute("INSERT INTO docshelf_migrations(name) VALUES (%s)", (name,))
        applied.append(name)
    return applied


def _pending(conn: psycopg.Connection) -> list[str]:
    """Return the names of migrations not yet applied, creating the migrations table if needed."""
    with conn.transaction(), conn.cursor() as cur:
        _lock(cur)
        cur.execute(
            "CREATE TABLE IF NOT EXISTS docshelf_migrations"
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT name FROM docshelf_migrations")
        done = {row[0] for row in cur.fetchall()}
    return [name for name, _ in MIGRATIONS if name not in done]


def _lock(cur: psycopg.Cursor) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (MIGRATIONS_LOCK,))
