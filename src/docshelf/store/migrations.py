"""Named, ordered schema migrations for the SQLite shelf; none is ever edited once released.

Each migration runs in the same transaction as the row that records it, so a
shelf is never left half-migrated. Shelves built by older versions keep opening.
"""

from __future__ import annotations

from collections.abc import Callable

import apsw

Migration = Callable[[apsw.Connection], None]


def m001_initial(conn: apsw.Connection) -> None:
    """Create sources, pages, chunks and the full-text index."""
    conn.execute(
        """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE sources(
            name TEXT PRIMARY KEY,
            root TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            last_crawl_at TEXT
        );
        CREATE TABLE pages(
            url TEXT PRIMARY KEY,
            source TEXT NOT NULL REFERENCES sources(name) ON DELETE CASCADE,
            title TEXT NOT NULL DEFAULT '',
            markdown TEXT,
            content_hash TEXT,
            etag TEXT,
            last_modified TEXT,
            fetched_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
            error TEXT
        );
        CREATE INDEX pages_by_source ON pages(source, url);
        CREATE TABLE chunks(
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL REFERENCES pages(url) ON DELETE CASCADE,
            source TEXT NOT NULL,
            chunk_number INTEGER NOT NULL,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            content TEXT NOT NULL,
            heading_path TEXT NOT NULL DEFAULT '[]',
            anchor TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            updated_dt TEXT,
            embed_hash TEXT NOT NULL,
            embedded INTEGER NOT NULL DEFAULT 0,
            UNIQUE(url, chunk_number)
        );
        CREATE INDEX chunks_by_hash ON chunks(embed_hash, embedded);
        CREATE INDEX chunks_by_source ON chunks(source, embedded);
        -- contentless: the indexed text is prepared by docshelf (page title,
        -- heading path, body with identifiers split), not copied from chunks.
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            title, headings, body,
            content='', contentless_delete=1,
            tokenize="porter unicode61 tokenchars '_'"
        );
        """
    )


def m002_page_prior(conn: apsw.Connection) -> None:
    """Add each page's search prior, computed from the Markdown already stored."""
    from docshelf.page_kind import page_prior

    conn.execute("ALTER TABLE pages ADD COLUMN prior REAL NOT NULL DEFAULT 1.0")
    rows = conn.execute("SELECT url, markdown FROM pages WHERE markdown IS NOT NULL AND markdown != ''").fetchall()
    for url, markdown in rows:
        prior = page_prior(markdown)
        if prior != 1.0:
            conn.execute("UPDATE pages SET prior = ? WHERE url = ?", (prior, url))


def m003_record_texts(conn: apsw.Connection) -> None:
    """Add the table of record texts kept at import (exact float and JSON text for byte-exact export).

    IF NOT EXISTS: shelves written before this migration created it on first import.
    """
    conn.execute(
        """CREATE TABLE IF NOT EXISTS record_texts(url TEXT NOT NULL, chunk_number INTEGER NOT NULL,
           embedding TEXT, metadata TEXT, PRIMARY KEY (url, chunk_number))"""
    )


def m004_enrichment(conn: apsw.Connection) -> None:
    """Record who wrote each chunk's title and summary, its context sentence, and cache what a model wrote.

    Chunks stored before it keep enriched_by NULL ("not known": crawled ones were extractive, imported
    ones came with whatever their records held). The cache is keyed by model, prompt version and the hash
    of the prompt's text, so a re-crawled or unchanged chunk never asks the model again.
    """
    conn.execute(
        """
        ALTER TABLE chunks ADD COLUMN context TEXT;
        ALTER TABLE chunks ADD COLUMN enriched_by TEXT;
        CREATE TABLE enrichment_cache(
            model TEXT NOT NULL,
            prompt_version TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            context TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (model, prompt_version, content_hash)
        ) WITHOUT ROWID;
        """
    )


def m005_release_notes_by_level(conn: apsw.Connection) -> None:
    """Recompute every page's prior: release notes are now recognised per heading level (page_kind.py)."""
    _recompute_priors(conn)


def m006_release_notes_citing_issues(conn: apsw.Connection) -> None:
    """Recompute every page's prior: pages whose sections cite issues by number are release notes (page_kind.py)."""
    _recompute_priors(conn)


def m007_version_series(conn: apsw.Connection) -> None:
    """Give per-version pages (three or more titled alike but for a version) the release-notes prior."""
    from docshelf.page_kind import PRIORS, version_series_pages

    rows = conn.execute("SELECT url, source, title FROM pages WHERE status = 'ok'").fetchall()
    for url in version_series_pages(rows):
        conn.execute("UPDATE pages SET prior = min(prior, ?) WHERE url = ?", (PRIORS["release_notes"], url))


def m008_chunk_sections(conn: apsw.Connection) -> None:
    """Add where each section of a packed chunk starts (JSON [[offset, anchor, heading path], ...]; NULL: one)."""
    conn.execute("ALTER TABLE chunks ADD COLUMN sections TEXT")


def m009_navigation_by_entries(conn: apsw.Connection) -> None:
    """Recompute every page's prior: navigation is now told by entries (list items, table rows, link lines)
    and link text measured with whitespace collapsed (page_kind.py); per-version pages stay release notes.

    Chunks stored before keep their vectors; a page that is now navigation loses them when it is next stored.
    """
    _recompute_priors(conn)
    m007_version_series(conn)


def m010_inbound_text(conn: apsw.Connection) -> None:
    """Give chunks the text of the site's links to them, indexed as a fourth full-text column `inbound`.

    The full-text table is contentless, so it is rebuilt from the chunks (with `fts_columns`,
    as a chunk is indexed when stored). Inbound text starts empty: the pass after the next
    crawl of each source (ingest.attach_inbound_text) fills it in.
    """
    import json

    from docshelf.store.base import sections_from_json
    from docshelf.store.fts import fts_columns, section_headings

    conn.execute(
        """
        ALTER TABLE chunks ADD COLUMN inbound TEXT NOT NULL DEFAULT '';
        DROP TABLE chunks_fts;
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            title, headings, body, inbound,
            content='', contentless_delete=1,
            tokenize="porter unicode61 tokenchars '_'"
        );
        """
    )
    rows = conn.execute(
        """SELECT c.id, coalesce(p.title, ''), c.heading_path, c.sections, c.content
           FROM chunks c LEFT JOIN pages p ON p.url = c.url"""
    )
    conn.executemany(
        "INSERT INTO chunks_fts(rowid, title, headings, body, inbound) VALUES (?, ?, ?, ?, '')",
        [(chunk_id, *fts_columns(title, section_headings(json.loads(path), sections_from_json(sections)), content))
         for chunk_id, title, path, sections, content in rows],
    )


def m011_inbound_fts(conn: apsw.Connection) -> None:
    """Move inbound link text out of `chunks_fts` into a full-text table of its own, `inbound_fts`.

    FTS5's bm25 normalises by the length of the whole row, so as a fourth column the inbound
    text of a section that many index entries point at lowered that section's score for the
    words of its own body. Both tables are contentless, so both are rebuilt from `chunks`.
    """
    import json

    from docshelf.store.base import sections_from_json
    from docshelf.store.fts import fts_columns, inbound_fts_text, section_headings

    conn.execute(
        """
        DROP TABLE chunks_fts;
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            title, headings, body,
            content='', contentless_delete=1,
            tokenize="porter unicode61 tokenchars '_'"
        );
        CREATE VIRTUAL TABLE inbound_fts USING fts5(
            inbound,
            content='', contentless_delete=1,
            tokenize="porter unicode61 tokenchars '_'"
        );
        """
    )
    rows = conn.execute(
        """SELECT c.id, coalesce(p.title, ''), c.heading_path, c.sections, c.content, c.inbound
           FROM chunks c LEFT JOIN pages p ON p.url = c.url"""
    ).fetchall()
    conn.executemany(
        "INSERT INTO chunks_fts(rowid, title, headings, body) VALUES (?, ?, ?, ?)",
        [(chunk_id, *fts_columns(title, section_headings(json.loads(path), sections_from_json(sections)), content))
         for chunk_id, title, path, sections, content, _ in rows],
    )
    conn.executemany(
        "INSERT INTO inbound_fts(rowid, inbound) VALUES (?, ?)",
        [(chunk_id, inbound_fts_text(inbound)) for chunk_id, *_, inbound in rows if inbound],
    )
def m012_versions_and_freshness(conn: apsw.Connection) -> None:
    """Give sources a version and the packages they document, pages when they last changed and their
    outgoing links, and keep a log of what each refresh changed.

    Existing sources become unversioned (their key stays their name: nothing moves); a page's
    last change is taken to be its last fetch, the best the shelf knows.
    """
    conn.execute(
        """
        ALTER TABLE sources ADD COLUMN version TEXT NOT NULL DEFAULT '';
        ALTER TABLE sources ADD COLUMN packages TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE pages ADD COLUMN changed_at TEXT;
        ALTER TABLE pages ADD COLUMN links TEXT;
        UPDATE pages SET changed_at = fetched_at WHERE status = 'ok';
        CREATE TABLE page_changes(
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            url TEXT NOT NULL,
            change TEXT NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
            diff_lines INTEGER NOT NULL DEFAULT 0,
            at TEXT NOT NULL
        );
        CREATE INDEX page_changes_by_source ON page_changes(source, at);
        """
    )


def _recompute_priors(conn: apsw.Connection) -> None:
    from docshelf.page_kind import page_prior

    rows = conn.execute("SELECT url, markdown, prior FROM pages WHERE markdown IS NOT NULL AND markdown != ''").fetchall()
    for url, markdown, prior in rows:
        if (new := page_prior(markdown)) != prior:
            conn.execute("UPDATE pages SET prior = ? WHERE url = ?", (new, url))


def m014_record_model(conn: apsw.Connection) -> None:
    """Keep whether an imported record named its vector's model, so its export says as much (records.py)."""
    conn.execute("ALTER TABLE record_texts ADD COLUMN embedding_model TEXT")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", m001_initial),
    ("m002_page_prior", m002_page_prior),
    ("m003_record_texts", m003_record_texts),
    ("m004_enrichment", m004_enrichment),
    ("m005_release_notes_by_level", m005_release_notes_by_level),
    ("m006_release_notes_citing_issues", m006_release_notes_citing_issues),
    ("m007_version_series", m007_version_series),
    ("m008_chunk_sections", m008_chunk_sections),
    ("m009_navigation_by_entries", m009_navigation_by_entries),
    ("m010_inbound_text", m010_inbound_text),
    ("m011_inbound_fts", m011_inbound_fts),
    ("m012_versions_and_freshness", m012_versions_and_freshness),
    ("m014_record_model", m014_record_model),
]


def apply_migrations(conn: apsw.Connection) -> list[str]:
    """Apply every pending migration in order; return the names applied.

    Each runs under BEGIN IMMEDIATE and re-checks what is applied, so two
    processes opening a new shelf at once do not both run it.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied = []
    for name, migration in MIGRATIONS:
        if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchall():
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchall():
                migration(conn)
                conn.execute(
                    "INSERT INTO migrations(name, applied_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (name,),
                )
                applied.append(name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied
